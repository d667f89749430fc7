/* A fake LLM provider: a real HTTP/1.1 server on a free 127.0.0.1 port
 * (plain sockets, one thread per connection, keep-alive), started by the
 * test setup. It speaks each provider's wire format through routes
 * (method + path glob -> handler), records every request, counts
 * connections and requests, and can be told to misbehave: answer 429 with
 * Retry-After, 500, slowly, with malformed JSON, or cut a stream off.
 *
 * Extension point (adding a provider's wire format):
 *   1. write the handlers in tests/fake_provider_<name>.c using the reply
 *      helpers below (fp_reply_json, fp_stream_begin, fp_sse_event,
 *      fp_ndjson_line, fp_stream_end);
 *   2. declare them in the "Built-in wire formats" section below;
 *   3. add one line per route to fp_builtin_routes[] in fake_provider.c
 *      and the file to tests/meson.build (fake_provider_sources).
 * Handlers run on the connection's thread; they must only use the reply
 * helpers and their arguments. Faults (fp_fail_next, fp_malformed_next,
 * fp_cut_stream_next, fp_set_delay_ms) are applied by the server around
 * whatever handler answers, so every wire format gets them for free. */
#ifndef LLMC_FAKE_PROVIDER_H
#define LLMC_FAKE_PROVIDER_H

#include <stddef.h>

typedef struct fp_server fp_server;
typedef struct fp_conn fp_conn;

typedef struct fp_header {
    char *name;
    char *value;
} fp_header;

/* One recorded request. */
typedef struct fp_request {
    char method[16];
    char *target;            /* as sent: path plus "?query" */
    char *path;              /* without the query */
    char *query;             /* after '?', "" if none */
    fp_header *headers;
    size_t n_headers;
    char *body;              /* NUL-terminated */
    size_t body_len;
    int conn_id;             /* 1-based number of the TCP connection */
} fp_request;

typedef void (*fp_handler)(fp_conn *c, const fp_request *req, void *ud);

/* Start / stop. fp_start returns NULL if the server could not start. */
fp_server *fp_start(void);
void fp_stop(fp_server *s);
int fp_port(const fp_server *s);
/* "http://127.0.0.1:<port>" (static per server). */
const char *fp_url(const fp_server *s);

/* Forget recorded requests, queued replies and faults (keeps routes). */
void fp_reset(fp_server *s);

/* Recorded requests (answered ones and faulted ones alike). Pointers
 * stay valid until fp_reset / fp_stop. Thread-safe. */
size_t fp_count(fp_server *s);
const fp_request *fp_request_at(fp_server *s, size_t i);
const fp_request *fp_last(fp_server *s);
/* Number of TCP connections accepted so far. */
int fp_connections(fp_server *s);
/* Header value by name (case-insensitive) or NULL. */
const char *fp_header_get(const fp_request *r, const char *name);

/* Add a route at run time (after the built-ins; first match wins).
 * path_glob is an fnmatch(3) pattern over the path without the query,
 * where a star matches any run of characters (so a Gemini route is
 * "/v1beta/models/" STAR ":generateContent"). */
void fp_add_route(fp_server *s, const char *method, const char *path_glob, fp_handler h,
                  void *ud);

/* Canned replies, consumed in FIFO order one per request before any
 * route: status, content type, body, extra header lines
 * ("Name: value\r\n...", may be NULL). */
void fp_push_reply(fp_server *s, int status, const char *content_type, const char *body,
                   const char *extra_headers);
/* A canned streamed reply: `raw` is sent with chunked encoding, split
 * into events at blank lines (SSE) or at newlines (NDJSON), one write +
 * flush per event, so cut-offs and incremental parsing are exercised. */
void fp_push_stream(fp_server *s, const char *content_type, const char *raw);

/* Faults. The next n requests get `status` (with "Retry-After:
 * <retry_after_s>" when retry_after_s >= 0) and an OpenAI-style error
 * body. */
void fp_fail_next(fp_server *s, int n, int status, int retry_after_s);
/* The next n non-streamed bodies are truncated into malformed JSON; the
 * next n streams carry a malformed data line first. */
void fp_malformed_next(fp_server *s, int n);
/* The next stream is cut off (connection closed without the final chunk)
 * after `events` events. */
void fp_cut_stream_next(fp_server *s, int events);
/* The next stream stops after `events` events (written and flushed)
 * until fp_release, so a test proves its client saw those events while
 * the provider had not finished: the client releases when it sees them,
 * and fp_hold_released says, once the stream ended, whether the hold
 * ended that way (1) rather than by its 20 s limit or not at all (0). A
 * release before the hold begins counts. */
void fp_hold_stream_next(fp_server *s, int events);
void fp_release(fp_server *s);
int fp_hold_released(fp_server *s);
/* Wait this long before answering every request (0 = off). */
void fp_set_delay_ms(fp_server *s, int ms);

/* ---- reply helpers for handlers ---- */
void fp_reply(fp_conn *c, int status, const char *content_type, const char *body,
              size_t len, const char *extra_headers);
void fp_reply_json(fp_conn *c, int status, const char *json);
/* Start a 200 chunked stream. */
void fp_stream_begin(fp_conn *c, const char *content_type);
/* Write raw bytes as one chunk; returns -1 when the stream was cut (stop
 * writing then). */
int fp_stream_write(fp_conn *c, const char *data, size_t len);
/* "event: <event>\n" (when event != NULL) "data: <data>\n\n". Counts as
 * one event for fp_cut_stream_next. */
int fp_sse_event(fp_conn *c, const char *event, const char *data);
/* "<json>\n" as one event. */
int fp_ndjson_line(fp_conn *c, const char *json);
/* Final zero-length chunk (unless cut). */
void fp_stream_end(fp_conn *c);

/* ---- Built-in wire formats (handlers in fake_provider*.c) ----
 * Default handlers answer from the request so different requests get
 * different answers: the assistant text is "echo: <last message content
 * or prompt>", embeddings are deterministic vectors of the input text. A
 * request with "stream": true gets the provider's stream format. */
void fp_openai_chat(fp_conn *c, const fp_request *req, void *ud);
void fp_openai_completions(fp_conn *c, const fp_request *req, void *ud);
void fp_openai_embeddings(fp_conn *c, const fp_request *req, void *ud);
/* OpenAI Responses: POST /v1/responses, Azure /openai/responses (JSON or
 * typed SSE events; see fake_provider_responses.c for the steering words). */
void fp_openai_responses(fp_conn *c, const fp_request *req, void *ud);
/* Anthropic: POST /v1/messages (JSON or SSE events; 401 without x-api-key). */
void fp_anthropic_messages(fp_conn *c, const fp_request *req, void *ud);
/* Gemini: POST /v1beta/models/STAR:generateContent, :streamGenerateContent
 * (SSE), :embedContent, :batchEmbedContents (403 without x-goog-api-key,
 * 400 "API key not valid" for the key "bad"). */
void fp_gemini_generate(fp_conn *c, const fp_request *req, void *ud);
void fp_gemini_stream(fp_conn *c, const fp_request *req, void *ud);
void fp_gemini_embed(fp_conn *c, const fp_request *req, void *ud);
void fp_gemini_batch_embed(fp_conn *c, const fp_request *req, void *ud);
/* Ollama: POST /api/chat (JSON or NDJSON; streams unless "stream": false),
 * /api/generate, /api/embed (404 for the model "missing"). */
void fp_ollama_chat(fp_conn *c, const fp_request *req, void *ud);
void fp_ollama_generate(fp_conn *c, const fp_request *req, void *ud);
void fp_ollama_embed(fp_conn *c, const fp_request *req, void *ud);

/* Deterministic fake embedding of a text: dims floats in [-1, 1]. */
void fp_fake_vector(const char *text, size_t len, double *out, int dims);

#endif
