/* llmcache: cache keys.
 *
 * A key strategy turns a request into a cache key. The default, "v1",
 * hashes the RFC 8785 (JCS) canonical form of
 *
 *   {"v":1,"call":"chat|text|embedding|messages","provider":...,"model":...,
 *    "api_base":<only when not the provider default>,"params":{...}}
 *
 * with SHA-256; the key is "<namespace>:<hex>" or "<hex>". `params` holds
 * every request member except model, credentials and transport (api_key,
 * api_base, base_url, api_version, headers, extra_headers, timeout,
 * request_timeout, max_retries, num_retries), stream, stream_options,
 * metadata, the cache controls (cache, caching) and user (unless the cache
 * scopes by user). For embeddings, `input` is the one item. For messages
 * (the Anthropic Messages API), the request without its cache_control
 * markers and `store`, with the anthropic-version and anthropic-beta
 * headers as members of the same names. */
#ifndef LLMCACHE_KEYS_H
#define LLMCACHE_KEYS_H

#include "common.h"
#include "backend.h"
#include "entry.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

typedef struct llmc_key_input {
    uint32_t struct_size;          /* sizeof(llmc_key_input) */
    llmc_call_type call;
    const char *provider;          /* resolved provider name, e.g. "openai" */
    const char *model;             /* model without the provider prefix */
    const char *api_base;          /* NULL when the provider's default */
    const struct json_object *request; /* the OpenAI-format request object */
    const struct json_object *input_item; /* embeddings: the one input item */
    const char *namespace_;        /* NULL or "" for none */
    int scope_by_user;             /* include `user` in the key */
} llmc_key_input;

/* A request text already tokenized by the client (opaque: only the
 * library's own strategies can read it). */
typedef struct llmc_key_tokens llmc_key_tokens;

typedef struct llmc_key_strategy_ops {
    llmc_component hdr;
    /* Write the final key (namespace prefix included) to `key`. When
     * `material` is non-NULL, also write the human-readable material the
     * key was derived from (for `llmcache key --explain`). */
    llmc_status (*compute)(const llmc_key_input *in, llmc_buf *key,
                           llmc_buf *material, llmc_err *err);
    /* Optional capability (present when hdr.struct_size reaches it, may
     * be NULL): the same key as compute, byte for byte, from the request
     * text's tokens instead of a parsed object, so that a hit needs no
     * json-c parse. in->request and in->input_item are NULL. Any status
     * but LLMC_OK declines: the client parses the text and calls compute.
     * Called for chat and text calls only. */
    llmc_status (*compute_tokens)(const llmc_key_input *in, const llmc_key_tokens *tokens,
                                  llmc_buf *key, llmc_buf *material, llmc_err *err);
} llmc_key_strategy_ops;

/* Register a named strategy (table not copied). LLMC_EEXIST if taken. */
LLMC_API llmc_status llmc_register_key_strategy(const llmc_key_strategy_ops *ops,
                                                llmc_err *err);
/* Look up by name; NULL if unknown. */
LLMC_API const llmc_key_strategy_ops *llmc_find_key_strategy(const char *name);

/* Compute a key with the named strategy (NULL = "v1"). */
LLMC_API llmc_status llmc_key_compute(const char *strategy, const llmc_key_input *in,
                                      llmc_buf *key, llmc_buf *material, llmc_err *err);

/* A caller-supplied key function, the equivalent of LiteLLM's
 * get_cache_key override: write the key into `key`; return LLMC_OK, or an
 * error to fail the call. The namespace prefix is NOT added for you. */
typedef llmc_status (*llmc_key_fn)(void *ud, const llmc_key_input *in, llmc_buf *key);

/* Append the RFC 8785 canonical form of a JSON value to `out`.
 * LLMC_EINVAL for values JSON cannot hold (NaN, infinity). */
LLMC_API llmc_status llmc_json_canonicalize(const struct json_object *v, llmc_buf *out);

/* Is this request member left out of v1 key material? (Case-sensitive, as
 * JSON member names are.) `user` counts as excluded here; scope_by_user
 * puts it back. */
LLMC_API int llmc_key_param_excluded(const char *name);

#ifdef __cplusplus
}
#endif
#endif
