/* llmcache: the caching completion client.
 *
 * The client routes OpenAI-format requests to a provider adapter
 * (provider.h), sends them over HTTP (libcurl, connections reused,
 * retries with backoff) and caches the normalised responses in an
 * attached llmc_cache, LiteLLM style: a second identical call is answered
 * from the cache and marked `"cache": true`.
 *
 * Routing: "provider/model" ("anthropic/claude-3-5-sonnet-latest",
 * "azure/my-deployment", "ollama/llama3") names the provider explicitly;
 * a bare name is inferred (gpt-*, o1*, o3*, text-embedding-*, ... ->
 * openai; claude-* -> anthropic; gemini-* -> gemini); the client option
 * `provider` (or the request field "custom_llm_provider") forces one.
 * Anything else is LLMC_ENOTFOUND with a message listing the known
 * providers.
 *
 * Cache controls, per request, with LiteLLM's meanings: no-cache (skip
 * the read), no-store (skip the write), ttl (seconds), s-maxage (maximum
 * accepted age, seconds), namespace, use-cache (opt in when the cache's
 * mode is default_off). Given either through llmc_request_set_cache_* or
 * as the request JSON's `"cache": {...}` member; the member is removed
 * before the request goes upstream and never enters the key.
 *
 * Thread safety: one llmc_client may be used by any number of threads at
 * once (the attached cache is shared likewise). llmc_client_free must not
 * race other calls. Requests and responses belong to one thread at a
 * time. */
#ifndef LLMCACHE_CLIENT_H
#define LLMCACHE_CLIENT_H

#include "common.h"
#include "options.h"
#include "cache.h"
#include "entry.h"
#include "keys.h"
#include "savings.h"
#include "call.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* llmc_client, llmc_request, llmc_response and llmc_chunk_cb are
 * declared in call.h. */


/* ------------------------------------------------------------------ */
/* Client. */

/* Create a client. `cache` (may be NULL: no caching) is borrowed: it must
 * outlive the client. Options (may be NULL), all optional:
 *   provider            force this provider for every model
 *   api_key, api_base, api_version
 *                       apply to every provider (request fields win)
 *   <provider>.api_key, <provider>.api_base, <provider>.api_version
 *                       for one provider ("anthropic.api_key"); win over
 *                       the generic ones
 *   timeout_ms          total time of one HTTP attempt (default 600000)
 *   connect_timeout_ms  (default 10000)
 *   max_retries         retries after the first attempt on 429, 5xx and
 *                       connection errors (default 2, 0..20)
 *   retry_base_ms       first backoff (default 500); doubles per retry,
 *                       with jitter, capped by retry_max_ms (default
 *                       30000); a Retry-After from the provider wins
 *                       (capped likewise)
 *   key_strategy        named key strategy (default: the cache's)
 *   scope_by_user       include `user` in keys (default: the cache's)
 *   memo_entries        slots of the request memo (default 1024, 0 = off):
 *                       an exact request text seen before is looked up
 *                       without parsing it or computing its key again
 *                       (only the provider's api_base environment
 *                       variables are re-checked)
 *   prices              price override merged over the default table
 *                       (savings.h): a path to a price file, or inline
 *                       JSON ({"my-model": {"input": 1, "output": 2}});
 *                       checked here, a bad one is LLMC_EINVAL / LLMC_EIO.
 *                       Without it the default table
 *                       (llmc_prices_default_path) is read on the first
 *                       llmc_response_saved.
 *   request_credentials use the request's api_key, api_base, base_url,
 *                       api_version, headers and extra_headers members
 *                       (default true); false for a server whose clients
 *                       must not choose the provider's endpoint or key
 *   models_only         answer only the models of llmc_client_add_model
 *                       (and mock_response requests); others are
 *                       LLMC_ENOTFOUND (default false)
 * Unknown options are LLMC_EINVAL naming the option. Credentials not given
 * here come from the environment at call time (OPENAI_API_KEY,
 * OPENAI_BASE_URL, AZURE_API_KEY, AZURE_API_BASE, AZURE_API_VERSION,
 * ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, GEMINI_API_KEY, OLLAMA_HOST). */
LLMC_API llmc_status llmc_client_new(llmc_cache *cache, const llmc_options *opts,
                                     llmc_client **out, llmc_err *err);

/* Free a client and its connections, after waiting for its background
 * refreshes (llmc_client_wait_refreshes). NULL is accepted. */
LLMC_API void llmc_client_free(llmc_client *c);

/* Wait until no background refresh of c is running. A call answered
 * stale-while-revalidate (llmc_response_cache_stale) refreshes its entry
 * on a thread the client owns: one per key at a time (a second stale
 * answer for that key while it runs starts none), at most 32 at once;
 * the refresh calls the provider and stores the answer as the call
 * would have, and a failed one stores nothing. The caller's call returns
 * without waiting for it. A short-lived program that wants the refreshed
 * entry stored before it exits calls this (llmc_client_free does too).
 * Thread-safe; refreshes started meanwhile are waited for as well. */
LLMC_API void llmc_client_wait_refreshes(llmc_client *c);

/* The attached cache (borrowed), or NULL. */
LLMC_API llmc_cache *llmc_client_cache(const llmc_client *c);

/* List a model under `name` (a proxy's "model_list" entry): a request
 * for `name` goes to `target` ("provider/model" or a name the provider
 * is inferred from) with these settings (each may be NULL: the usual
 * lookup), which win over the request's and the options'. Strings are
 * copied. LLMC_EEXIST if the name is listed. Call before sharing the
 * client between threads. */
LLMC_API llmc_status llmc_client_add_model(llmc_client *c, const char *name,
                                           const char *target, const char *api_base,
                                           const char *api_key, const char *api_version,
                                           llmc_err *err);

/* Replace key computation with a callback (LiteLLM's get_cache_key
 * override). fn NULL restores the key strategy. The namespace prefix is
 * not added for the callback's keys. Call before sharing the client
 * between threads. */
LLMC_API void llmc_client_set_key_fn(llmc_client *c, llmc_key_fn fn, void *ud);

/* ------------------------------------------------------------------ */
/* Requests. A request is an OpenAI-format JSON object plus cache
 * controls. Build one with the setters, or parse raw JSON. */

/* A new empty request for model (copied; may be NULL and set later with
 * llmc_request_set_string(r, "model", ...)). NULL on allocation failure.
 * Free with llmc_request_free. */
LLMC_API llmc_request *llmc_request_new(const char *model);

/* Parse OpenAI-format JSON text json[0..len) (len LLMC_ZSTR = strlen). The
 * `cache` member, if any, is validated and turned into cache controls
 * (unknown control names or wrong types: LLMC_EINVAL naming them).
 * Invalid JSON or a non-object: LLMC_EINVAL with the parser's message.
 * Only standard JSON is taken: comments, single-quoted strings, trailing
 * commas and the like are LLMC_EINVAL naming the byte, as the provider
 * would refuse them too. A `cache.namespace` must pass
 * llmc_namespace_check. */
LLMC_API llmc_status llmc_request_from_json(const char *json, size_t len,
                                            llmc_request **out, llmc_err *err);

/* Free a request. NULL is accepted. */
LLMC_API void llmc_request_free(llmc_request *r);

/* Append {"role":role,"content":content} to "messages". */
LLMC_API llmc_status llmc_request_add_message(llmc_request *r, const char *role,
                                              const char *content);
/* Set a member to a string / integer / number / boolean / JSON text
 * (parsed; invalid text is LLMC_EINVAL). Replaces an earlier value. */
LLMC_API llmc_status llmc_request_set_string(llmc_request *r, const char *name,
                                             const char *value);
LLMC_API llmc_status llmc_request_set_int(llmc_request *r, const char *name, int64_t v);
LLMC_API llmc_status llmc_request_set_double(llmc_request *r, const char *name, double v);
LLMC_API llmc_status llmc_request_set_bool(llmc_request *r, const char *name, int v);
LLMC_API llmc_status llmc_request_set_json(llmc_request *r, const char *name,
                                           const char *json);
/* Append one string to "input" (embeddings; creates the array). */
LLMC_API llmc_status llmc_request_add_input(llmc_request *r, const char *text);

/* The request object (borrowed; valid until the request is freed). It
 * may be modified (json-c calls) to set anything the setters lack. */
LLMC_API struct json_object *llmc_request_json(llmc_request *r);

/* Cache controls (override what the JSON `cache` member said). */
LLMC_API void llmc_request_set_no_cache(llmc_request *r, int on);   /* skip read */
LLMC_API void llmc_request_set_no_store(llmc_request *r, int on);   /* skip write */
/* TTL of the stored entry in seconds (0 = never expires, -1 = the cache's
 * default; more than LLMC_TTL_MAX_S is capped to it). */
LLMC_API void llmc_request_set_ttl(llmc_request *r, int64_t seconds);
/* Maximum accepted age of a cached answer in seconds (-1 = any; capped
 * at LLMC_TTL_MAX_S). */
LLMC_API void llmc_request_set_s_maxage(llmc_request *r, int64_t seconds);
/* Stale windows in seconds (-1 = the cache's option; capped at
 * LLMC_TTL_MAX_S), the body's "stale-if-error" and
 * "stale-while-revalidate" controls. stale-if-error: when the provider
 * fails (5xx, 429 after the retries, a timeout, a refused connection),
 * answer with an entry at most this long past its freshness, marked
 * stale. stale-while-revalidate: answer with such an entry at once and
 * refresh it in the background (see llmc_client_wait_refreshes). A store
 * keeps the entry for its TTL plus the larger window. */
LLMC_API void llmc_request_set_stale_if_error(llmc_request *r, int64_t seconds);
LLMC_API void llmc_request_set_stale_while_revalidate(llmc_request *r, int64_t seconds);
/* Namespace for this request's key (copied; NULL = the cache's). A name
 * llmc_namespace_check refuses is LLMC_EINVAL (the request unchanged). */
LLMC_API llmc_status llmc_request_set_namespace(llmc_request *r, const char *ns);
/* Confine the request to a tenant (copied; NULL = not confined), for a
 * server that answers several mutually untrusting clients from one cache
 * (the proxy's tenants). Every key the request reads or writes then
 * starts with "<tenant>:", whatever the request says:
 *   computed keys      "<tenant>:<digest>", or "<tenant>:<ns>:<digest>"
 *                      when the request names a namespace (it becomes a
 *                      sub-namespace; the cache's own namespace is not
 *                      used);
 *   a preset key       "<tenant>:key=<preset>", whatever the preset says
 *                      (so a preset can only name the tenant's own keys);
 *   embedding items    each item's key likewise;
 *   a key function's   prefixed with "<tenant>:" unless it already starts
 *   key                so.
 * The rule is applied where the final key is built, after the JSON's
 * controls (however spelled) and the setters, so no request text can
 * escape it. An invalid name (llmc_namespace_check) is LLMC_EINVAL. */
LLMC_API llmc_status llmc_request_set_tenant(llmc_request *r, const char *tenant);
/* Opt in (1) or out (0) of caching; -1 = the cache's mode decides. */
LLMC_API void llmc_request_set_use_cache(llmc_request *r, int on);
/* Use this exact cache key (copied; NULL = compute it). */
LLMC_API llmc_status llmc_request_set_cache_key(llmc_request *r, const char *key);

/* The cache controls a request carries: what its JSON said (`cache`,
 * `caching`, whatever the spelling of the member names) with the
 * setters' changes on top. Strings are borrowed from the request (valid
 * until it is changed or freed). */
typedef struct llmc_cache_controls {
    int no_cache;           /* 1: do not read the cache */
    int no_store;           /* 1: do not store the answer */
    int64_t ttl_ms;         /* LLMC_TTL_DEFAULT, LLMC_TTL_NEVER or ms */
    int64_t max_age_ms;     /* oldest answer accepted; -1 = any */
    int use_cache;          /* 1 opt in, 0 opt out, -1 the cache's mode decides */
    const char *namespace_; /* NULL = the cache's (or the tenant's) */
    const char *key;        /* preset key, or NULL */
    const char *tenant;     /* llmc_request_set_tenant, or NULL */
} llmc_cache_controls;

/* Fill *out with r's controls (r NULL: the defaults). */
LLMC_API void llmc_request_get_controls(const llmc_request *r, llmc_cache_controls *out);

/* 1 if a call of r through c would use the cache at all (c has a cache
 * and, by its mode and r's `caching` / `use-cache`, r is cached); 0 when
 * it bypasses the cache. no-cache and no-store are separate (see
 * llmc_request_get_controls). Thread-safe for concurrent readers. */
LLMC_API int llmc_client_caching(const llmc_client *c, const llmc_request *r);

/* ------------------------------------------------------------------ */
/* Calls. Each takes a request (not modified; may be reused) or raw JSON
 * text (len LLMC_ZSTR = strlen), and on LLMC_OK returns a new response in *out
 * (free with llmc_response_free). On failure *out is NULL and err (may be
 * NULL) says why: LLMC_EINVAL (bad request, the message names the
 * field), LLMC_ENOTFOUND (unknown provider / model), LLMC_EAUTH,
 * LLMC_ERATELIMIT, LLMC_ECONTEXT, LLMC_EBADREQUEST, LLMC_EUPSTREAM (the
 * provider's answer, err->native = HTTP status), LLMC_ETIMEDOUT,
 * LLMC_ECONN, LLMC_ESTREAM (stream cut off), LLMC_ECANCELED. The cache
 * never fails a call: a backend that is down is a miss. */

LLMC_API llmc_status llmc_completion(llmc_client *c, const llmc_request *req,
                                     llmc_response **out, llmc_err *err);
LLMC_API llmc_status llmc_completion_json(llmc_client *c, const char *json, size_t len,
                                          llmc_response **out, llmc_err *err);

/* Legacy text completion ("prompt" instead of "messages"). */
LLMC_API llmc_status llmc_text_completion(llmc_client *c, const llmc_request *req,
                                          llmc_response **out, llmc_err *err);
LLMC_API llmc_status llmc_text_completion_json(llmc_client *c, const char *json,
                                               size_t len, llmc_response **out,
                                               llmc_err *err);

/* Embeddings: "input" is a string or an array (of strings or token
 * arrays). Each item has its own cache entry; only the missing items go
 * upstream, in one request, and the result is merged in input order. */
LLMC_API llmc_status llmc_embedding(llmc_client *c, const llmc_request *req,
                                    llmc_response **out, llmc_err *err);
LLMC_API llmc_status llmc_embedding_json(llmc_client *c, const char *json, size_t len,
                                         llmc_response **out, llmc_err *err);

/* Streaming chat completion. cb receives each normalised
 * chat.completion.chunk (borrowed: valid during the call; take a
 * reference with json_object_get to keep it) and returns 0 to go on or
 * non-zero to stop (the call then ends with LLMC_ECANCELED and nothing is
 * stored). On a miss chunks are passed on as they arrive and the
 * assembled response is stored only if the stream completed; on a hit the
 * stored response is replayed as a chunk sequence. *out (may be NULL if
 * not wanted) receives the assembled (or cached) full response. The
 * request's "stream" member is ignored here. */
LLMC_API llmc_status llmc_completion_stream(llmc_client *c, const llmc_request *req,
                                            llmc_chunk_cb cb, void *ud,
                                            llmc_response **out, llmc_err *err);
LLMC_API llmc_status llmc_completion_stream_json(llmc_client *c, const char *json,
                                                 size_t len, llmc_chunk_cb cb, void *ud,
                                                 llmc_response **out, llmc_err *err);

/* The generic form of all of the above: call type, and stream when cb is
 * non-NULL (chat only). */
LLMC_API llmc_status llmc_client_call(llmc_client *c, llmc_call_type call,
                                      const llmc_request *req, llmc_chunk_cb cb,
                                      void *ud, llmc_response **out, llmc_err *err);

/* Compute the cache key a request would use (for `llmcache key`), and
 * with material != NULL the canonical key material. For embeddings, the
 * key of input item `item` (0 for a single string). */
LLMC_API llmc_status llmc_client_request_key(llmc_client *c, llmc_call_type call,
                                             const llmc_request *req, size_t item,
                                             llmc_buf *key, llmc_buf *material,
                                             llmc_err *err);
/* The same with the controls and API headers a prepared call would be
 * given (llmc_call_opts, call.h; NULL = none): the key of a Messages API
 * request depends on its anthropic-version and anthropic-beta headers. */
LLMC_API llmc_status llmc_client_request_key_ex(llmc_client *c, llmc_call_type call,
                                                const llmc_request *req,
                                                const llmc_call_opts *opts, size_t item,
                                                llmc_buf *key, llmc_buf *material,
                                                llmc_err *err);

/* ------------------------------------------------------------------ */
/* Responses. */

/* The response as JSON text (OpenAI format; with "cache": true at the top
 * level on a hit). Borrowed: lives as long as the response. */
LLMC_API const char *llmc_response_text(const llmc_response *r, size_t *len);
/* The response as a json-c object, parsed on first use (borrowed; NULL
 * only on allocation failure). */
LLMC_API struct json_object *llmc_response_json(llmc_response *r);
/* choices[0].message.content (chat), choices[0].text (text), for a
 * Responses API response the text of the first output_text part of its
 * first message item, for a Messages API answer its first text block's
 * text; NULL when there is none. Borrowed. */
LLMC_API const char *llmc_response_content(llmc_response *r);

/* 1 if the answer came from the cache (for embeddings: every item did).
 * A stale answer is one too. */
LLMC_API int llmc_response_cache_hit(const llmc_response *r);
/* 1 if the answer is a cached entry past its freshness, served because
 * the provider failed (stale-if-error) or while it is refreshed in the
 * background (stale-while-revalidate); a proxy says STALE. Its age is
 * llmc_response_cache_age_ms. */
LLMC_API int llmc_response_cache_stale(const llmc_response *r);
/* The cache key used (for embeddings, the first item's), or NULL when
 * caching was off for the call. Borrowed. */
LLMC_API const char *llmc_response_cache_key(const llmc_response *r);
/* Age of the cached entry in ms on a hit (embeddings: the oldest item);
 * -1 on a miss. */
LLMC_API int64_t llmc_response_cache_age_ms(const llmc_response *r);
/* 1 if the fresh answer was handed to the cache for storing (a failing
 * backend drops it silently: the cache's stats count that). 0 when it was
 * not stored: no-store, caching off, empty or incomplete answer. */
LLMC_API int llmc_response_cache_stored(const llmc_response *r);
/* 1 if the answer came from the cache after this call waited for an
 * identical call of another process sharing the cache to store it (see
 * lease.h); llmc_response_cache_hit is 1 too. */
LLMC_API int llmc_response_coalesced(const llmc_response *r);
/* Embeddings: number of input items, and per item its key, whether it
 * was a hit. */
LLMC_API size_t llmc_response_item_count(const llmc_response *r);
LLMC_API const char *llmc_response_item_key(const llmc_response *r, size_t i);
LLMC_API int llmc_response_item_hit(const llmc_response *r, size_t i);
/* The resolved provider name and model (without prefix). Borrowed. */
LLMC_API const char *llmc_response_provider(const llmc_response *r);
LLMC_API const char *llmc_response_model(const llmc_response *r);
/* Number of HTTP attempts made for this call (0 on a full hit). */
LLMC_API int llmc_response_attempts(const llmc_response *r);

/* What serving this response from the cache saved: the tokens of the
 * original call (its usage), their price in dollars, and the original
 * call's upstream latency (0 = unknown: stored before latencies were
 * kept). For embeddings, the items that hit (usd from their tokens; the
 * time only when every item hit). LLMC_OK with *out filled; LLMC_MISS
 * with *out zeroed when nothing came from the cache. When the price table
 * cannot be read, the status of that (LLMC_EIO, LLMC_EINVAL) with the
 * reason in err, and *out still holds tokens and time with priced = 0.
 * The client that made the response must still be alive. Thread safe
 * for different responses. */
LLMC_API llmc_status llmc_response_saved(const llmc_response *r, llmc_saving *out,
                                         llmc_err *err);

/* The client's price table (loaded on first use), borrowed for the
 * client's lifetime; NULL with the reason in err when it cannot be read.
 * Thread safe. */
LLMC_API const llmc_prices *llmc_client_prices(llmc_client *c, llmc_err *err);
/* Replay a chat response (a hit from llmc_call_lookup, or any stored
 * chat.completion) to cb as chat.completion.chunk objects: role, content
 * in several deltas, tool calls, finish_reason, usage last. cb returning
 * non-zero stops it with LLMC_ECANCELED. The response is not changed. */
LLMC_API llmc_status llmc_response_replay(llmc_response *r, llmc_chunk_cb cb, void *ud,
                                          llmc_err *err);

/* Free a response. NULL is accepted. */
LLMC_API void llmc_response_free(llmc_response *r);

#ifdef __cplusplus
}
#endif
#endif
