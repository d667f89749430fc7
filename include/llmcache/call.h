/* llmcache: the prepared call, the one request pipeline.
 *
 * Every cached call, whoever makes it (the convenience functions of
 * client.h, the llmcache command, the proxy), runs these steps, in the
 * spirit of SQLite's prepare / step / finalize:
 *
 *   llmc_call_prepare   parse the request once, read its cache controls,
 *                       validate it, route it to a provider and compute
 *                       its cache key (once: nothing later recomputes it)
 *   llmc_call_lookup    answer from the cache, or LLMC_MISS; never goes
 *                       upstream
 *   llmc_call_execute   call the provider, store the answer under the
 *                       prepared key, stream it to a callback (looks up
 *                       first if llmc_call_lookup was not called)
 *   llmc_call_free      release the call
 *
 * A caller that needs to act between the steps (the proxy coalesces
 * identical misses and sets HTTP headers) calls them one by one; the
 * convenience functions are prepare + execute + free.
 *
 *   llmc_call *k;
 *   if (llmc_call_prepare(client, LLMC_CALL_CHAT, body, len, NULL, &k, &err) != LLMC_OK)
 *       ... 400: err.msg names the field ...
 *   llmc_response *r = NULL;
 *   llmc_status st = llmc_call_lookup(k, NULL, NULL, &r, &err);
 *   if (st == LLMC_MISS)
 *       st = llmc_call_execute(k, NULL, NULL, &r, &err);
 *   llmc_call_free(k);
 *
 * Cache controls come from the body (LiteLLM's `"caching"` and
 * `"cache": {...}`, read by one set of rules whatever form the library
 * parsed the body in), from an llmc_request's setters, and from
 * llmc_call_opts (the HTTP headers a proxy receives). Those in
 * llmc_call_opts win.
 *
 * Thread safety: a call belongs to one thread at a time, but may move
 * between threads between steps (prepare on one, execute on another).
 * Any number of calls may share one client. */
#ifndef LLMCACHE_CALL_H
#define LLMCACHE_CALL_H

#include "common.h"
#include "entry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llmc_call llmc_call;
/* Length argument meaning "NUL-terminated, use strlen". */
#define LLMC_ZSTR ((size_t)-1)
/* Described in client.h. */
typedef struct llmc_client llmc_client;
typedef struct llmc_request llmc_request;
typedef struct llmc_response llmc_response;
struct json_object;
/* Receives each streamed chunk; returns 0 to go on, non-zero to stop
 * (see llmc_completion_stream in client.h). */
typedef int (*llmc_chunk_cb)(void *ud, struct json_object *chunk);

/* Cache controls given outside the request body, as text exactly as an
 * HTTP server receives them (NULL = not given). Initialise with
 * LLMC_CALL_OPTS_INIT so that struct_size is set. */
typedef struct llmc_call_opts {
    uint32_t struct_size;      /* sizeof(llmc_call_opts) */
    /* Cache-Control: "no-cache" (skip the read), "no-store" (skip the
     * write), "max-age=N" / "s-maxage=N" (the oldest answer accepted,
     * whole seconds), "stale-if-error=N" / "stale-while-revalidate=N"
     * (stale windows, seconds, as llmc_request_set_stale_if_error);
     * other directives are ignored. A malformed number is LLMC_EINVAL
     * naming the directive. */
    const char *cache_control;
    /* x-llmcache-ttl: TTL of the stored entry, whole seconds >= 0. */
    const char *ttl;
    /* x-llmcache-namespace: the key's namespace (replaces the body's).
     * Namespaces, wherever given, must pass llmc_namespace_check
     * (cache.h): no ':', '=', glob characters, white space or control
     * characters. A value beyond LLMC_TTL_MAX_S for `ttl` is refused. */
    const char *namespace_;
    /* A tenant's namespace: every key the call reads or writes lies
     * inside it, by the rule of llmc_request_set_tenant (client.h; the
     * two are one mechanism, applied where the final key is built): the
     * request's own namespace nests under it ("tenant:asked:<hex>"), a
     * preset key becomes "tenant:key=<key>" (no namespace holds '=', so
     * the two kinds never meet), embedding item keys and a key
     * function's keys are prefixed with "tenant:". NULL = none. */
    const char *tenant;
    /* Request headers the call type's API defines as part of the request
     * (llmc_call_type_info.headers: for messages `anthropic-version` and
     * `anthropic-beta`), as name, value, name, value, ..., NULL; a
     * repeated header is given once with its lines joined by ", ". They
     * enter the key and go upstream; names the call type does not read
     * are refused (LLMC_EINVAL naming them). NULL = none. */
    const char *const *api_headers;
} llmc_call_opts;

#define LLMC_CALL_OPTS_INIT {(uint32_t)sizeof(llmc_call_opts), NULL, NULL, NULL, NULL, NULL}

/* Prepare a call of type `type` from its API's JSON text (OpenAI format;
 * LLMC_CALL_MESSAGES: an Anthropic Messages API request)
 * json[0..len) (len LLMC_ZSTR = strlen). The text is borrowed: it must
 * stay valid and unchanged until llmc_call_free. `opts` may be NULL (and
 * is not kept). On LLMC_OK *out is a new call (free with llmc_call_free);
 * otherwise *out is NULL and err says why: LLMC_EINVAL for a bad request
 * or control (the message names the member or header), LLMC_ENOTFOUND /
 * LLMC_ENOTSUP for a model no provider serves in this way. Nothing is
 * looked up or sent. A text the client prepared before (the request
 * memo, client option memo_entries) is prepared without parsing. */
LLMC_API llmc_status llmc_call_prepare(llmc_client *c, llmc_call_type type, const char *json,
                                       size_t len, const llmc_call_opts *opts,
                                       llmc_call **out, llmc_err *err);

/* The same from a request built with the llmc_request API. The request
 * is borrowed (not modified): it must outlive the call. */
LLMC_API llmc_status llmc_call_prepare_request(llmc_client *c, llmc_call_type type,
                                               const llmc_request *req,
                                               const llmc_call_opts *opts, llmc_call **out,
                                               llmc_err *err);

/* Answer from the cache: LLMC_OK with a new response in *out (out may be
 * NULL when only `cb` is wanted; the response is marked as a hit:
 * "cache": true), or LLMC_MISS (caching off, no-cache, absent, too old,
 * unreadable: the cache never fails a call). An entry past its freshness
 * but inside the call's stale-while-revalidate window is LLMC_OK too,
 * marked stale (llmc_response_cache_stale), and its refresh starts in
 * the background (llmc_client_wait_refreshes); one inside the
 * stale-if-error window is LLMC_MISS, kept by the call for execute. With
 * cb non-NULL (call types that stream: chat, responses, messages) a hit
 * is also replayed to cb as chunks (responses, messages: as the API's
 * typed events, each with its "type"); cb returning
 * non-zero ends it with LLMC_ECANCELED. Each call goes to the backend
 * (a proxy looks again after an identical request finished). */
LLMC_API llmc_status llmc_call_lookup(llmc_call *k, llmc_chunk_cb cb, void *ud,
                                      llmc_response **out, llmc_err *err);

/* Complete the call: look up first unless llmc_call_lookup already did,
 * then call the provider, store the answer under the prepared key (unless
 * no-store, caching off, an empty, failed or incomplete answer) and
 * return it in *out (may be NULL when cb is given). When the provider
 * fails (5xx, 429 after the retries, a timeout, a refused connection,
 * before any chunk was streamed) and the lookup found an entry inside
 * the call's stale-if-error window, that entry is the answer: LLMC_OK,
 * marked stale, replayed to cb. With cb, the answer
 * is streamed as chat.completion.chunk objects (LLMC_CALL_RESPONSES and
 * LLMC_CALL_MESSAGES: the API's typed events, each with its "type")
 * (borrowed, valid during the callback) as they arrive; a stream is stored
 * only when it completed (responses: reached response.completed;
 * messages: message_stop and a stop_reason). Errors as for
 * llmc_client_call (client.h). May be called
 * once per call. */
LLMC_API llmc_status llmc_call_execute(llmc_call *k, llmc_chunk_cb cb, void *ud,
                                       llmc_response **out, llmc_err *err);

/* Free a call. NULL is accepted. */
LLMC_API void llmc_call_free(llmc_call *k);

/* What the call resolved to. Strings are borrowed: valid until
 * llmc_call_free. */
/* The cache key (embeddings: the first item's), or NULL when caching is
 * off for this call. */
LLMC_API const char *llmc_call_key(const llmc_call *k);
/* A string equal for two calls exactly when they read and write the same
 * entries (the key; for embeddings a digest of every item's key): what a
 * proxy coalesces identical requests by. NULL when caching is off. */
LLMC_API const char *llmc_call_id(const llmc_call *k);
/* Entries the call reads and writes (1, or the embedding input items),
 * and item i's key (NULL when caching is off). */
LLMC_API size_t llmc_call_item_count(const llmc_call *k);
LLMC_API const char *llmc_call_item_key(const llmc_call *k, size_t i);
/* 1 when the cache takes part at all (the cache's mode, "caching",
 * use-cache). */
LLMC_API int llmc_call_caching(const llmc_call *k);
/* 1 when lookup reads the cache (caching and not no-cache). */
LLMC_API int llmc_call_reads_cache(const llmc_call *k);
/* 1 when execute would store a good answer (caching and not no-store). */
LLMC_API int llmc_call_stores(const llmc_call *k);
/* 1 when the request said "stream": true. */
LLMC_API int llmc_call_wants_stream(const llmc_call *k);
/* The request member that keeps this call out of the cache whatever the
 * controls say, because the answer depends on state the provider holds
 * (Responses: "previous_response_id", "conversation"): nothing is read
 * or written, llmc_call_caching is 0 and a proxy marks it BYPASS. NULL
 * when none. Borrowed static string. */
LLMC_API const char *llmc_call_bypass_reason(const llmc_call *k);
LLMC_API llmc_call_type llmc_call_kind(const llmc_call *k);
/* The provider the model resolved to and the model without its prefix. */
LLMC_API const char *llmc_call_provider(const llmc_call *k);
LLMC_API const char *llmc_call_model(const llmc_call *k);
/* 1 once the call answered from a stale entry: a lookup that served one
 * by stale-while-revalidate, or an execute whose provider call failed
 * and that answered by stale-if-error. A streaming callback can ask it
 * before the first chunk to label the stream. */
LLMC_API int llmc_call_stale(const llmc_call *k);
/* Age in ms of the stale entry the call answered with; -1 when
 * llmc_call_stale is 0. */
LLMC_API int64_t llmc_call_stale_age_ms(const llmc_call *k);
/* The stale answer the last llmc_call_lookup kept for stale-if-error
 * (it returned LLMC_MISS and found an entry inside the call's
 * stale-if-error window): LLMC_OK with it in *out (a new response, the
 * caller's; llmc_call_stale becomes 1), else LLMC_MISS. For a caller
 * that knows the provider is failing right now (a proxy whose identical
 * request was just answered stale) and answers without calling it
 * again. */
LLMC_API llmc_status llmc_call_take_stale(llmc_call *k, llmc_response **out);
/* 1 when llmc_call_execute answers from the cache because it waited for
 * an identical call of another process sharing the cache (lease.h): set
 * before a stream's replay starts, so a chunk callback can tell a replay
 * from a fresh answer. */
LLMC_API int llmc_call_coalesced(const llmc_call *k);
/* on = 0: llmc_call_execute neither waits for nor leases against other
 * processes (a caller that already waited its time for an identical
 * call goes upstream at once). Default 1: as the cache's coalesce
 * option says. */
LLMC_API void llmc_call_set_coalesce(llmc_call *k, int on);
/* TTL the answer would be stored with, ms (LLMC_TTL_DEFAULT: the
 * cache's). */
LLMC_API int64_t llmc_call_ttl_ms(const llmc_call *k);

/* The namespace a call confined to `tenant` (may be NULL) uses when it
 * asks for `asked` (may be NULL), by the rule of llmc_call_opts.tenant:
 * "tenant:asked", "tenant", "asked", or "" when neither. For admin
 * operations that must stay inside a tenant's namespace as its calls do
 * (llmc_cache_flush_in flushes such a namespace). LLMC_EINVAL, with
 * llmc_namespace_check's message, when either is not a valid name. out
 * is the caller's. Thread-safe. */
LLMC_API llmc_status llmc_namespace_resolve(const char *tenant, const char *asked,
                                            llmc_buf *out, llmc_err *err);

/* ------------------------------------------------------------------ */
/* The call types. Each is one row of the library's call-type table:
 * request validation, key material, hit marking, stream capture and
 * replay, and the proxy paths that serve it. */
typedef struct llmc_call_type_info {
    uint32_t struct_size;      /* sizeof(llmc_call_type_info) */
    llmc_call_type type;
    const char *name;          /* "chat", "text", "embedding", "responses",
                                  "messages" */
    const char *const *paths;  /* proxy paths, NULL-terminated */
    int streams;               /* can be streamed */
    const char *label;         /* short label for metrics */
    /* Streamed chunks are this API's typed events (each has a "type"):
     * sent as SSE "event: <type>" + "data:" lines, with no "[DONE]"
     * terminator (Responses, Messages). 0: chat chunks ("data:" lines,
     * "[DONE]"). */
    int typed_events;
    /* Request headers that are part of this call's request (see
     * llmc_call_opts.api_headers), NULL-terminated; NULL = none. */
    const char *const *headers;
} llmc_call_type_info;

/* Fill *out (size = sizeof *out) for a call type. LLMC_ENOTFOUND for a
 * type without a row. Static strings. Thread-safe. */
LLMC_API llmc_status llmc_call_type_info_get(llmc_call_type t, llmc_call_type_info *out,
                                             size_t size);
/* The call type a proxy path serves ("/v1/chat/completions" -> chat,
 * "/v1/messages" -> messages);
 * LLMC_ENOTFOUND when none. Thread-safe. */
LLMC_API llmc_status llmc_call_type_for_path(const char *path, llmc_call_type *out);
/* The call type a request body is, by the member that names it:
 * "messages" (chat), else "prompt" (text), else "input" (embeddings);
 * LLMC_CALL_RAW when none or not JSON. Thread-safe. */
LLMC_API llmc_call_type llmc_call_type_of_request(const char *json, size_t len);

#ifdef __cplusplus
}
#endif
#endif
