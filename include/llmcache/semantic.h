/* llmcache: semantic lookups, their vector index and their verifier.
 *
 * A semantic lookup answers a chat request from a cached answer to a
 * request that means the same. It is off unless the cache or the client
 * turns it on (option semantic=1) and it only ever compares the text of
 * the last user turn: everything else (tenant, namespace, model, every
 * answer-changing parameter, the system prompt, earlier turns, tools)
 * must be equal, because the candidates are searched only inside the
 * request's scope, the v1 key of the request with that text removed.
 * docs/semantic.md describes the whole path and when not to use it.
 *
 * Two component kinds belong to it, registered like backends
 * (registry.h) and loadable from plugins (plugin.h):
 *
 *   index     (LLMC_KIND_INDEX)     vectors of one scope -> the nearest
 *             ones. Built in: "flat" (exact search over float32 vectors)
 *             and "flat-int8" (exact search over vectors quantised to
 *             8 bits, a quarter of the memory and bandwidth). A plugin
 *             may add another (HNSW, a vector database).
 *   verifier  (LLMC_KIND_VERIFIER)  a last say over a candidate that
 *             passed the threshold and the guards.
 *
 * Thread safety: the library calls one index instance from one thread at
 * a time (it holds a lock per scope), so an index need not lock; a
 * verifier may be called from any number of threads at once. */
#ifndef LLMCACHE_SEMANTIC_H
#define LLMCACHE_SEMANTIC_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "component.h"
#include "call.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* The index kind. */

/* What an index instance is opened for (initialise every member; the
 * struct may grow, struct_size says how far). */
typedef struct llmc_index_config {
    uint32_t struct_size; /* sizeof(llmc_index_config) */
    const char *scope;    /* the scope's key (borrowed for the call): an
                             index that keeps vectors elsewhere keys them
                             by it */
    size_t dim;           /* dimensions of every vector, >= 1 */
    size_t capacity;      /* the most vectors the library will add before
                             removing one; a hint */
} llmc_index_config;

typedef struct llmc_index_ops {
    llmc_component hdr;
    /* A new, empty instance for one scope in *ctx. Required. */
    llmc_status (*open)(const llmc_index_config *cfg, void **ctx, llmc_err *err);
    /* Free an instance (NULL accepted). Required. */
    void (*close)(void *ctx);
    /* Add vec[0..dim) (unit length, finite) under `id`, replacing any
     * vector already there under that id. The vector is copied. LLMC_OK
     * or LLMC_ENOMEM. Required. */
    llmc_status (*add)(void *ctx, uint64_t id, const float *vec, llmc_err *err);
    /* Remove the vector under `id`: LLMC_OK, or LLMC_MISS when none.
     * Required. */
    llmc_status (*remove)(void *ctx, uint64_t id);
    /* The at most k vectors most similar to query[0..dim) (unit length),
     * best first: ids[i] and scores[i] (the dot product, i.e. the cosine
     * similarity, in [-1, 1]). Returns how many were written. Required. */
    size_t (*search)(void *ctx, const float *query, size_t k, uint64_t *ids, float *scores);
    /* How many vectors the instance holds. Required. */
    size_t (*count)(void *ctx);
} llmc_index_ops;

/* Register an index table (not copied: it must outlive its use).
 * LLMC_EEXIST when the name is taken; LLMC_EINVAL naming a missing
 * function. Thread-safe. */
LLMC_API llmc_status llmc_register_index(const llmc_index_ops *ops, llmc_err *err);
/* Find by name (case-insensitive; asks the plugin loader when unknown);
 * NULL when none. Thread-safe. */
LLMC_API const llmc_index_ops *llmc_find_index(const char *name);

/* ------------------------------------------------------------------ */
/* The verifier kind, and the callback form of the same check. */

/* One candidate a semantic lookup is about to serve. Everything is
 * borrowed and valid during the call only. */
typedef struct llmc_semantic_candidate {
    uint32_t struct_size;       /* sizeof(llmc_semantic_candidate) */
    const char *prompt;         /* the request's last user text */
    size_t prompt_len;
    const char *cached_prompt;  /* the last user text of the cached request */
    size_t cached_prompt_len;
    const char *cached_key;     /* the cache key of the cached answer */
    const char *cached_body;    /* the cached answer (OpenAI-format JSON) */
    size_t cached_body_len;
    double similarity;          /* cosine similarity of the two prompts */
    const char *model;          /* the request's model (no provider prefix) */
} llmc_semantic_candidate;

/* Return non-zero to accept the candidate, 0 to reject it (the lookup is
 * then a miss and the fresh answer is stored). */
typedef int (*llmc_verifier_fn)(void *ud, const llmc_semantic_candidate *cand);

typedef struct llmc_verifier_ops {
    llmc_component hdr;
    /* Accept (non-zero) or reject (0). Required. Must be thread-safe. */
    int (*verify)(const llmc_semantic_candidate *cand);
} llmc_verifier_ops;

LLMC_API llmc_status llmc_register_verifier(const llmc_verifier_ops *ops, llmc_err *err);
LLMC_API const llmc_verifier_ops *llmc_find_verifier(const char *name);

/* ------------------------------------------------------------------ */
/* The built-in offline embedder ("local"). */

/* Embed text[0..len) into out[0..dim) with the built-in embedder: hashed
 * word and character-trigram features of the text lower-cased, with
 * punctuation and white space runs dropped, scaled to unit length. Two
 * texts that differ only in case, white space, punctuation or word order
 * get the same vector. No model, no network; deterministic on every
 * platform. Text with no letters or digits gives the zero vector and
 * LLMC_MISS (it cannot be compared); LLMC_EINVAL for dim outside
 * 8..65536 or NULL pointers. Thread-safe. */
LLMC_API llmc_status llmc_embed_local(const char *text, size_t len, float *out, size_t dim);

/* ------------------------------------------------------------------ */
/* What semantic lookups found: a histogram of the best similarity of
 * each lookup that had a candidate, split by outcome, so that an
 * operator can pick a threshold from data. Buckets are cumulative
 * (Prometheus style): bucket i counts similarities <= bounds[i]; the last
 * bound is 1.0. */
#define LLMC_SEMANTIC_BUCKETS 12

typedef struct llmc_semantic_stats {
    uint32_t struct_size;       /* sizeof(llmc_semantic_stats) */
    double bounds[LLMC_SEMANTIC_BUCKETS];
    uint64_t hit_buckets[LLMC_SEMANTIC_BUCKETS];
    uint64_t miss_buckets[LLMC_SEMANTIC_BUCKETS];
    uint64_t hits, misses;      /* lookups with a candidate, by outcome */
    double hit_sum, miss_sum;   /* sums of their best similarities */
    uint64_t lookups;           /* semantic lookups tried */
    uint64_t no_candidate;      /* ... whose scope held nothing */
    uint64_t ineligible;        /* requests never compared (turns, tools,
                                   non-text content, opted out) */
    uint64_t guard_rejects;     /* candidates refused by a guard */
    uint64_t verifier_rejects;  /* candidates refused by the verifier */
    uint64_t stored;            /* vectors added */
} llmc_semantic_stats;

/* ------------------------------------------------------------------ */
/* The client's side. Semantic lookups are on for a client when its cache
 * was opened with semantic=1 (or the client's options say so; the
 * client's options win over the cache's, option by option):
 *
 *   semantic                 1 to turn on (default 0)
 *   semantic_threshold       similarity a candidate needs, (0, 1]
 *                            (default 0.95)
 *   semantic_min_threshold   the operator's minimum: no request, and no
 *                            semantic_threshold, goes below it
 *   semantic_model           "local" (the built-in embedder, default) or
 *                            "provider/model" for an embeddings model
 *                            called through this client (its per-item
 *                            embedding cache applies)
 *   semantic_dim             dimensions of the local embedder (384)
 *   semantic_max_turns       user turns beyond which a conversation is
 *                            never compared (2)
 *   semantic_index           index kind ("flat-int8", or "flat", or a
 *                            plugin's)
 *   semantic_max_per_scope   records kept per scope, newest first (1000)
 *   semantic_refresh_ms      a scope read from the backend is read again
 *                            after this long, so another replica's
 *                            answers are found (1000)
 *   semantic_max_scopes      scopes held in memory (1024, least recently
 *                            used dropped)
 *   semantic_verifier        a registered verifier's name
 *
 * Per request, the "cache" controls {"semantic": false} (opt out) and
 * {"semantic_threshold": 0.98} (raise; a lower value than the
 * configured one is ignored), or the setters below. */

/* Install a verifier callback (fn NULL removes it); called with every
 * candidate that passed the threshold and the guards, before the
 * verifier named by semantic_verifier. Call before sharing the client
 * between threads. Does nothing when semantic lookups are off. */
LLMC_API void llmc_client_set_verifier(llmc_client *c, llmc_verifier_fn fn, void *ud);
/* 1 when the client does semantic lookups. */
LLMC_API int llmc_client_semantic_enabled(const llmc_client *c);
/* Fill *out (size = sizeof *out): the histogram and counters since the
 * client was created. LLMC_ENOTSUP (and zeros, bounds filled) when
 * semantic lookups are off; LLMC_EINVAL for NULL or a short size.
 * Thread-safe. */
LLMC_API llmc_status llmc_client_semantic_stats(const llmc_client *c, llmc_semantic_stats *out,
                                                size_t size);
/* 1 when the response is a semantic hit (status HIT-SEMANTIC), with the
 * similarity of the matched prompt in *similarity (may be NULL);
 * llmc_response_cache_key is then the matched entry's key. 0 otherwise. */
LLMC_API int llmc_response_semantic(const llmc_response *r, double *similarity);
/* Per request: opt out (0), back in (1) or the client's setting (-1). */
LLMC_API void llmc_request_set_semantic(llmc_request *r, int on);
/* Per request: a stricter threshold, (0, 1]; LLMC_EINVAL otherwise. A
 * value below the configured threshold changes nothing. */
LLMC_API llmc_status llmc_request_set_semantic_threshold(llmc_request *r, double t);

#ifdef __cplusplus
}
#endif
#endif
