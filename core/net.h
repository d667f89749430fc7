/* Internals of the completion client: HTTP (libcurl), SSE / NDJSON
 * framing, stream assembly and replay. Not installed. */
#ifndef LLMC_NET_H
#define LLMC_NET_H

#include "internal.h"

#include <stddef.h>

struct json_object;

/* Does a provider table reach member m (built against an older header,
 * it may end before it)? LLMC_HAS_MEMBER (component.h) for providers. */
#define llmc__provider_has(ops, m) LLMC_HAS_MEMBER(llmc_provider_ops, ops, m)

/* ---- SSE (text/event-stream) and NDJSON incremental parsers ----
 * Feed bytes as they arrive, in pieces of any size; complete events go to
 * the callback. A callback's non-OK status stops the feed and is
 * returned. */
typedef llmc_status (*llmc__event_cb)(void *ud, const char *event, const char *data,
                                      size_t data_len);

typedef struct llmc__sse {
    llmc_buf line;    /* the current, incomplete line */
    llmc_buf event;   /* "event:" of the event being built */
    llmc_buf data;    /* joined "data:" lines */
    int has_data;     /* a data field was seen */
    int skip_lf;      /* the previous byte was CR (CRLF line ends) */
    int started;      /* past a possible BOM */
    int bom;          /* bytes of a BOM matched so far (it may be split) */
    size_t max_event; /* refuse events larger than this (0 = 64 MiB) */
} llmc__sse;

void llmc__sse_init(llmc__sse *p);
void llmc__sse_free(llmc__sse *p);
llmc_status llmc__sse_feed(llmc__sse *p, const char *data, size_t len, llmc__event_cb cb,
                           void *ud);
/* End of input: an event whose lines were complete but whose blank line
 * never came is dispatched; a partial last line is dropped. */
llmc_status llmc__sse_finish(llmc__sse *p, llmc__event_cb cb, void *ud);

typedef struct llmc__ndjson {
    llmc_buf line;
    size_t max_line; /* 0 = 64 MiB */
} llmc__ndjson;

void llmc__ndjson_init(llmc__ndjson *p);
void llmc__ndjson_free(llmc__ndjson *p);
/* Each non-blank line goes to cb(ud, NULL, line, len) without its
 * newline (and CR). */
llmc_status llmc__ndjson_feed(llmc__ndjson *p, const char *data, size_t len,
                              llmc__event_cb cb, void *ud);
/* End of input: a last line without newline is dispatched. */
llmc_status llmc__ndjson_finish(llmc__ndjson *p, llmc__event_cb cb, void *ud);

/* ---- HTTP ---- */
typedef struct llmc__http llmc__http;

typedef struct llmc__http_config {
    int64_t timeout_ms;         /* total per attempt; 0 = none */
    int64_t connect_timeout_ms;
    int max_retries;            /* retries after the first attempt */
    int64_t retry_base_ms;
    int64_t retry_max_ms;       /* cap of one wait; a longer Retry-After
                                   ends the retries */
} llmc__http_config;

/* Raw body bytes of a 2xx streamed response as they arrive. */
typedef llmc_status (*llmc__http_data_cb)(void *ud, const char *data, size_t len);

typedef struct llmc__http_result {
    long status;            /* HTTP status of the last attempt */
    llmc_buf headers;       /* its header block */
    llmc_buf body;          /* its body (unless it went to data_cb) */
    int64_t retry_after_ms; /* -1 if none */
    int attempts;           /* attempts made */
    int streamed;           /* body went to data_cb */
} llmc__http_result;

void llmc__http_result_init(llmc__http_result *r);
void llmc__http_result_free(llmc__http_result *r);

llmc_status llmc__http_new(llmc__http **out, llmc_err *err);
void llmc__http_free(llmc__http *h);

/* Send `req` with retries (429, 5xx, connection errors and timeouts, as
 * long as nothing was passed to data_cb yet). LLMC_OK when a response was
 * received, whatever its status (the caller maps non-2xx); LLMC_ECONN /
 * LLMC_ETIMEDOUT / LLMC_EIO for transport failures after the retries;
 * data_cb's status when it stopped the transfer (err left as data_cb set
 * it); LLMC_ESTREAM when a streamed body broke off. With data_cb non-NULL
 * a 2xx body goes to it and not to res->body. Thread-safe. */
llmc_status llmc__http_perform(llmc__http *h, const llmc__http_config *cfg,
                               const llmc_http_request *req, llmc__http_data_cb data_cb,
                               void *ud, llmc__http_result *res, llmc_err *err);

/* Retry-After (delta seconds or HTTP-date) or retry-after-ms out of a
 * header block, in ms; -1 if absent. */
int64_t llmc__retry_after_ms(const char *headers, size_t len);

/* The wait before retry number `attempt` (1-based): exponential from
 * base, capped, with jitter in [50%, 100%]. */
int64_t llmc__backoff_ms(const llmc__http_config *cfg, int attempt);

/* ---- streams ---- */
/* Assembles chat.completion.chunk objects into one chat.completion. */
typedef struct llmc__assembler llmc__assembler;
llmc__assembler *llmc__assembler_new(void);
void llmc__assembler_free(llmc__assembler *a);
llmc_status llmc__assembler_add(llmc__assembler *a, struct json_object *chunk);
/* The assembled response (new reference) or NULL when nothing came. */
struct json_object *llmc__assembler_result(llmc__assembler *a);

/* Replay a stored chat.completion as chunks: role, reasoning and content
 * in several deltas, tool calls (header, then argument pieces),
 * finish_reason, usage in the last chunk. */
llmc_status llmc__replay(struct json_object *resp, llmc_chunk_sink sink, void *ud);

/* Is a normalised response worth storing (choices with content / tool
 * calls / text; an embedding)? */
int llmc__response_storable(llmc_call_type call, struct json_object *resp);
/* 1 when every choice of an assembled (streamed) response carries the
 * provider's finish_reason: only then did the stream really complete. */
int llmc__response_finished(struct json_object *resp);

#endif
