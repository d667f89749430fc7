/* llmcache: the provider adapter interface, for authors of providers.
 *
 * A provider adapter is a const table of functions registered under a
 * name ("openai", "anthropic", ...). Adapters are pure translation over
 * json-c: they never do I/O and never touch the cache. The client (core)
 * resolves the provider, the credentials and the endpoint, owns libcurl
 * and the retries, parses SSE/NDJSON framing, assembles streams and
 * caches; an adapter only
 *
 *   - builds the provider's HTTP request from the normalised OpenAI-format
 *     request (build_request),
 *   - turns the provider's HTTP response into the OpenAI format
 *     (parse_response),
 *   - turns each stream event into zero or more OpenAI
 *     `chat.completion.chunk` objects (parse_stream_event),
 *   - turns an HTTP error into an llmc_status and message (map_error).
 *
 * Normalised shapes (what every adapter must produce):
 *   chat:      {"id","object":"chat.completion","created","model",
 *               "choices":[{"index","message":{"role":"assistant",
 *               "content", ["reasoning_content"], ["tool_calls":[{"id",
 *               "type":"function","function":{"name","arguments"}}]]},
 *               "finish_reason"}], "usage":{"prompt_tokens",
 *               "completion_tokens","total_tokens", ...}}
 *   text:      {"id","object":"text_completion","created","model",
 *               "choices":[{"index","text","finish_reason"}],"usage"}
 *   embedding: {"object":"list","data":[{"object":"embedding","index",
 *               "embedding":[...]}],"model","usage":{"prompt_tokens",
 *               "total_tokens"}}   (indexes relative to the request sent)
 *   chunk:     {"id","object":"chat.completion.chunk","created","model",
 *               "choices":[{"index","delta":{["role"],["content"],
 *               ["reasoning_content"],["tool_calls":[{"index",["id"],
 *               ["type"],"function":{["name"],["arguments"]}}]]},
 *               "finish_reason"}], ["usage"]}
 *
 * Secrets: the api key reaches the adapter only in llmc_provider_call;
 * it may be written into request headers (or, where a provider insists,
 * the URL) and nowhere else: never into messages, never into the body.
 * Headers that carry a secret are added with llmc_http_request_add_secret
 * so the core can redact them in logs and error messages.
 *
 * Thread safety: an adapter's functions may be called from many threads
 * at once; all per-call state lives in the arguments (and the stream
 * state). */
#ifndef LLMCACHE_PROVIDER_H
#define LLMCACHE_PROVIDER_H

#include "common.h"
#include "options.h"
#include "backend.h"
#include "entry.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* ------------------------------------------------------------------ */
/* The resolved call, given to every adapter function. */

typedef struct llmc_provider_call {
    uint32_t struct_size;       /* sizeof(llmc_provider_call) */
    llmc_call_type call;        /* LLMC_CALL_CHAT, _TEXT, _EMBEDDING, or
                                   _MESSAGES for a provider with
                                   LLMC_PROVIDER_MESSAGES */
    const char *provider;       /* the adapter's registry name */
    const char *model;          /* model without the "provider/" prefix;
                                   for azure, the deployment name */
    const char *api_base;       /* resolved endpoint, never NULL, no
                                   trailing '/': option, request field, env
                                   var or the adapter's default */
    const char *api_key;        /* NULL when none was configured. Secret. */
    const char *api_version;    /* NULL when none (azure: always set) */
    int stream;                 /* 1 when the caller asked for a stream */
    const llmc_options *options; /* the client's options (read-only), for
                                    provider-specific settings */
    /* Appended (read it only when struct_size reaches it): request
     * headers the caller's API defines as part of the request, name,
     * value, ..., NULL (LLMC_CALL_MESSAGES: anthropic-version and
     * anthropic-beta as the client sent them), or NULL. */
    const char *const *api_headers;
} llmc_provider_call;

/* ------------------------------------------------------------------ */
/* HTTP request description (filled by build_request, sent by the core). */

typedef enum llmc_stream_format {
    LLMC_STREAM_NONE = 0,   /* one body, parsed by parse_response */
    LLMC_STREAM_SSE = 1,    /* text/event-stream: events go to
                               parse_stream_event(event name, data) */
    LLMC_STREAM_NDJSON = 2  /* one JSON value per line: each line goes to
                               parse_stream_event(NULL, line) */
} llmc_stream_format;

typedef struct llmc_http_header {
    char *name;             /* owned */
    char *value;            /* owned */
    int secret;             /* redact in logs/messages */
} llmc_http_header;

typedef struct llmc_http_request {
    uint32_t struct_size;   /* sizeof(llmc_http_request) */
    const char *method;     /* static string; "POST" by default */
    llmc_buf url;           /* absolute URL, query included */
    llmc_buf body;          /* request body (may be empty for GET) */
    llmc_http_header *headers; /* owned array, see the helpers below */
    size_t n_headers;
    size_t cap_headers;
    llmc_stream_format stream_format; /* how to read the response body */
    int url_has_secret;     /* the URL carries a key: redact it in messages */
} llmc_http_request;

/* Initialise / release a request description. Free accepts a zeroed or
 * initialised struct and leaves it re-initialised. */
LLMC_API void llmc_http_request_init(llmc_http_request *r);
LLMC_API void llmc_http_request_free(llmc_http_request *r);
/* Add a header (name and value copied). A later header with the same
 * name (case-insensitive) replaces the earlier one, so the caller's
 * extra headers can override an adapter's. LLMC_ENOMEM on failure. */
LLMC_API llmc_status llmc_http_request_add_header(llmc_http_request *r, const char *name,
                                                  const char *value);
/* The same for a header carrying a credential (Authorization, api-key,
 * x-api-key, x-goog-api-key): it is redacted wherever the request is
 * described (logs, error messages). */
LLMC_API llmc_status llmc_http_request_add_secret(llmc_http_request *r, const char *name,
                                                  const char *value);
/* The value of a header by name (case-insensitive), or NULL. */
LLMC_API const char *llmc_http_request_header(const llmc_http_request *r, const char *name);
/* Set the body to the compact JSON text of `v` and add
 * "Content-Type: application/json". */
LLMC_API llmc_status llmc_http_request_set_json(llmc_http_request *r, struct json_object *v);
/* Append `s` to the URL percent-encoded for a path segment or query
 * value (RFC 3986 unreserved characters kept). */
LLMC_API llmc_status llmc_http_url_append_escaped(llmc_buf *url, const char *s);

/* ------------------------------------------------------------------ */
/* HTTP response (given to parse_response and map_error). */

typedef struct llmc_http_response {
    uint32_t struct_size;   /* sizeof(llmc_http_response) */
    long status;            /* HTTP status code */
    const char *headers;    /* raw header block ("Name: value\r\n"...),
                               of the final response only */
    size_t headers_len;
    const char *body;       /* NUL-terminated; may contain NULs */
    size_t body_len;
    int64_t retry_after_ms; /* parsed Retry-After (seconds or HTTP date)
                               or retry-after-ms; -1 when absent */
} llmc_http_response;

/* The value of a response header (case-insensitive name), trimmed;
 * copies up to outsz-1 bytes into out. Returns 1 if found, 0 if not. */
LLMC_API int llmc_http_response_header(const llmc_http_response *r, const char *name,
                                       char *out, size_t outsz);

/* ------------------------------------------------------------------ */
/* Streaming. The adapter hands each normalised chunk to the sink. The
 * sink borrows the chunk (the adapter releases it after the call); a
 * non-OK return (e.g. LLMC_ECANCELED when the application stopped the
 * stream) must be returned by parse_stream_event at once. */
typedef llmc_status (*llmc_chunk_sink)(void *ud, struct json_object *chunk);

/* ------------------------------------------------------------------ */
/* The adapter table. */

/* Flags. */
enum {
    LLMC_PROVIDER_CHAT = 1u << 0,      /* chat completions */
    LLMC_PROVIDER_TEXT = 1u << 1,      /* legacy text completions */
    LLMC_PROVIDER_EMBEDDING = 1u << 2, /* embeddings */
    LLMC_PROVIDER_STREAM = 1u << 3,    /* streamed chat completions */
    LLMC_PROVIDER_NEEDS_KEY = 1u << 4, /* refuse to call without api_key */
    LLMC_PROVIDER_NEEDS_BASE = 1u << 5,/* no default endpoint: api_base must
                                          be configured (azure, compatible) */
    LLMC_PROVIDER_NEEDS_VERSION = 1u << 6, /* api_version must resolve */
    LLMC_PROVIDER_LOCAL = 1u << 7,     /* answers without network through
                                          respond_local (mock) */
    LLMC_PROVIDER_MESSAGES = 1u << 8   /* speaks the Anthropic Messages API
                                          natively: LLMC_CALL_MESSAGES calls
                                          get the request, answer and stream
                                          events in that API's own shapes
                                          (others are translated from chat) */
};

typedef struct llmc_provider_ops {
    llmc_component hdr;         /* name = the routing prefix ("openai") */
    uint32_t flags;             /* LLMC_PROVIDER_* */

    /* Endpoint and credentials. Environment variables are NULL-terminated
     * lists tried in order (may be NULL); options and request fields win
     * over the environment, the environment over the defaults. */
    const char *default_api_base;     /* e.g. "https://api.openai.com/v1";
                                         NULL with LLMC_PROVIDER_NEEDS_BASE */
    const char *default_api_version;  /* NULL if the provider has none */
    const char *const *env_api_key;   /* {"OPENAI_API_KEY", NULL} */
    const char *const *env_api_base;  /* {"OPENAI_BASE_URL", NULL} */
    const char *const *env_api_version; /* {"AZURE_API_VERSION", NULL} */

    /* Optional: does this bare model name (no "provider/" prefix) belong
     * to this provider? ("claude-3-5-sonnet-latest" -> anthropic). Tried
     * in registration order; the first match wins. */
    int (*match_model)(const char *model);

    /* Build the HTTP request. `request` is the normalised OpenAI-format
     * request (a JSON object) with the cache controls, credentials,
     * transport fields, mock_response and `stream` already removed (use
     * call->stream); `model` in it may still carry the prefix, use
     * call->model. Do not modify it
     * (deep-copy what you need to change). For embeddings, `input` is
     * always an array of the items to embed (only the cache misses).
     * Set out->url, out->body, headers, out->stream_format (SSE/NDJSON
     * when call->stream). Errors: LLMC_EINVAL / LLMC_ENOTSUP with a
     * message naming the offending field. `out` is initialised by the
     * core. */
    llmc_status (*build_request)(const llmc_provider_call *call,
                                 struct json_object *request,
                                 llmc_http_request *out, llmc_err *err);

    /* Parse a successful (2xx) non-streamed response into the normalised
     * object for call->call (see the top of this file). *out receives a
     * new reference. A body that is not what the provider documents:
     * LLMC_EPROTO. An error reported inside a 2xx body: map it as
     * map_error would. */
    llmc_status (*parse_response)(const llmc_provider_call *call,
                                  const llmc_http_response *resp,
                                  struct json_object **out, llmc_err *err);

    /* Optional per-stream state (both NULL if the adapter keeps none).
     * stream_new is called once per streamed call before the first event;
     * stream_free once after the last, whatever happened. */
    llmc_status (*stream_new)(const llmc_provider_call *call, void **state,
                              llmc_err *err);
    void (*stream_free)(void *state);

    /* Parse one stream event: SSE gives the event name (NULL when the
     * event had no "event:" field) and the data (data lines joined with
     * '\n'); NDJSON gives event NULL and one line. Deliver zero or more
     * normalised chunks to sink. Set *done = 1 when the provider signalled
     * a normal end of stream ("[DONE]", message_stop, "done": true, a
     * final finishReason); later events are still delivered until the
     * body ends. A stream is complete (and may be cached) only if *done
     * was set and the transfer ended cleanly. An error event: return its
     * mapped status. Required when flags has LLMC_PROVIDER_STREAM. */
    llmc_status (*parse_stream_event)(void *state, const llmc_provider_call *call,
                                      const char *event, const char *data,
                                      size_t data_len, llmc_chunk_sink sink,
                                      void *sink_ud, int *done, llmc_err *err);

    /* Optional: map a non-2xx response to a status and message (native =
     * HTTP status). NULL means llmc_provider_map_error_default. Return
     * LLMC_EAUTH (401/403), LLMC_ERATELIMIT (429), LLMC_ECONTEXT (context
     * length exceeded), LLMC_EBADREQUEST (other 4xx), LLMC_EUPSTREAM
     * (5xx), LLMC_EPROVIDER (anything else). Never quote credentials. */
    llmc_status (*map_error)(const llmc_provider_call *call,
                             const llmc_http_response *resp, llmc_err *err);

    /* Optional, with LLMC_PROVIDER_LOCAL: answer without the network.
     * `request` is the request *before* mock_response was removed.
     * *out receives the normalised response (a new reference); the core
     * replays it as chunks when a stream was asked for. */
    llmc_status (*respond_local)(const llmc_provider_call *call,
                                 struct json_object *request,
                                 struct json_object **out, llmc_err *err);

    /* Optional (present when hdr.struct_size reaches it; may be NULL):
     * request members that make this provider answer whatever the model
     * names (NULL-terminated), LiteLLM's mock_response. The model still
     * names the provider the key is computed for, when it names one. */
    const char *const *claims;
} llmc_provider_ops;

/* Register a provider (table not copied; it must outlive the process).
 * LLMC_EEXIST if the name is taken; LLMC_EABI for a foreign ABI or a
 * too small struct_size; LLMC_EINVAL when build_request/parse_response
 * (or respond_local for LOCAL providers, parse_stream_event for STREAM
 * ones) are missing. Thread-safe. */
LLMC_API llmc_status llmc_register_provider(const llmc_provider_ops *ops, llmc_err *err);

/* Look up a provider by name (case-insensitive); NULL if unknown. */
LLMC_API const llmc_provider_ops *llmc_find_provider(const char *name);

/* The provider a bare model name is inferred to (first registered
 * provider whose match_model accepts it), or NULL. */
LLMC_API const llmc_provider_ops *llmc_infer_provider(const char *model);

/* ------------------------------------------------------------------ */
/* Helpers for adapters. */

/* The generic error mapping: status from the HTTP code (401/403 EAUTH,
 * 429 ERATELIMIT, 400/404/413/422 EBADREQUEST or ECONTEXT when the
 * message speaks of the context length / maximum tokens, 5xx EUPSTREAM),
 * message "<provider>: HTTP <code>: <provider's message>" where the
 * provider's message is taken from {"error":{"message"}}, {"error":"..."}
 * or {"message"} (else a short excerpt of the body), plus the retry-after
 * for 429. Returns the status (also in err). */
LLMC_API llmc_status llmc_provider_map_error_default(const llmc_provider_call *call,
                                                     const llmc_http_response *resp,
                                                     llmc_err *err);

/* Does this error message text say "context length exceeded" in one of
 * the usual wordings (OpenAI, Anthropic, Gemini, Ollama, vLLM)? */
LLMC_API int llmc_provider_is_context_error(const char *msg);

/* Parse JSON text data[0..len), any JSON value (bare scalars too), into
 * *out (a new reference; NULL for a JSON null, as json-c represents it).
 * LLMC_EPROTO with a message naming `what` and the parser's complaint for
 * invalid or truncated text or data after the value. */
LLMC_API llmc_status llmc_json_parse(const char *data, size_t len, const char *what,
                                     struct json_object **out, llmc_err *err);

/* A fresh id such as "chatcmpl-<24 random hex>" for providers whose
 * responses carry none. `out` must hold at least strlen(prefix)+26
 * bytes. */
LLMC_API void llmc_provider_new_id(const char *prefix, char *out, size_t outsz);

/* A new chunk object {"id","object":"chat.completion.chunk","created",
 * "model","choices":[]} (new reference), for adapters to fill in. */
LLMC_API struct json_object *llmc_chunk_new(const char *id, int64_t created,
                                            const char *model);
/* Append {"index":index,"delta":{},"finish_reason":null} to a chunk's
 * choices and return the (borrowed) delta object, to add role, content,
 * reasoning_content, tool_calls to. */
LLMC_API struct json_object *llmc_chunk_add_choice(struct json_object *chunk, int index);
/* Set choices[i].finish_reason of a chunk (string, copied). */
LLMC_API void llmc_chunk_set_finish(struct json_object *chunk, int i, const char *reason);

#ifdef __cplusplus
}
#endif
#endif
