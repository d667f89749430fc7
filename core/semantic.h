/* Internals of semantic lookups (see include/llmcache/semantic.h and
 * docs/semantic.md):
 *
 *   semantic_config.c  the options (cache URL, client) and their checks
 *   semantic_guard.c   numbers, negations and quoted strings must agree
 *   semantic_call.c    which requests are compared, the scope key, the
 *                      last user text, the embedding of it, the hooks
 *                      of the prepared call and the public setters
 *   semantic_store.c   a scope's records persisted in the cache backend
 *   semantic.c         the per-client state: scopes in memory, lookup,
 *                      store, verifier, statistics
 * Not installed. */
#ifndef LLMC_SEMANTIC_INTERNAL_H
#define LLMC_SEMANTIC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "llmcache/llmcache.h"

/* ---- configuration ---- */
#define LLMC__SEM_NAME_MAX 256
/* Longest last user text compared (bytes); longer ones are never. */
#define LLMC__SEM_MAX_PROMPT (16 * 1024)

typedef struct llmc__semcfg {
    int enabled;                 /* semantic */
    double threshold;            /* semantic_threshold, default 0.95 */
    double min_threshold;        /* semantic_min_threshold: no request goes lower */
    char model[LLMC__SEM_NAME_MAX]; /* semantic_model: "local" or provider/model */
    int64_t max_turns;           /* semantic_max_turns: user turns, default 2 */
    char index[65];              /* semantic_index, default "flat-int8" */
    int64_t max_per_scope;       /* semantic_max_per_scope, default 1000 */
    int64_t dim;                 /* semantic_dim (local embedder), default 384 */
    int64_t refresh_ms;          /* semantic_refresh_ms: reread a scope after */
    int64_t max_scopes;          /* semantic_max_scopes held in memory */
    char verifier[65];           /* semantic_verifier: a registered verifier */
} llmc__semcfg;

/* The option names, NULL-terminated (the cache's and the client's known
 * lists include them). */
extern const char *const llmc__sem_option_names[];

void llmc__semcfg_default(llmc__semcfg *cfg);
/* Lay the semantic options present in `o` over *cfg, checking each:
 * LLMC_EINVAL / LLMC_ENOTFOUND naming the option. `what` prefixes the
 * messages ("option", "client option"). */
llmc_status llmc__semcfg_read(const llmc_options *o, llmc__semcfg *cfg, const char *what,
                              llmc_err *err);

/* ---- guards ---- */
/* 1 when the two texts carry the same numbers, the same number of
 * negations and the same quoted strings; 0 otherwise (`why` names the
 * guard, static). */
int llmc__sem_guards_agree(const char *a, size_t an, const char *b, size_t bn,
                           const char **why);

/* ---- a scope's records as stored in the backend ---- */
typedef struct llmc__semrec {
    char *key;          /* the entry's cache key */
    char *prompt;       /* its last user text */
    size_t prompt_len;
    int64_t expires_ms; /* wall clock; 0 = never */
    float *vec;         /* dim floats, unit length */
} llmc__semrec;

typedef struct llmc__semrecs {
    size_t dim, n, cap;
    llmc__semrec *v;
} llmc__semrecs;

void llmc__semrecs_free(llmc__semrecs *r);
/* Append a record (strings and vector copied). */
llmc_status llmc__semrecs_add(llmc__semrecs *r, const char *key, const char *prompt,
                              size_t plen, int64_t expires_ms, const float *vec);
/* Drop expired records and all but the newest `max` ones. */
void llmc__semrecs_trim(llmc__semrecs *r, int64_t now_ms, size_t max);
/* The bytes of a scope (versioned, length-checked) and back. Decoding
 * anything else (truncated, foreign, another dimension) is LLMC_ECORRUPT
 * and leaves *out empty. */
llmc_status llmc__semrecs_encode(const llmc__semrecs *r, llmc_buf *out);
llmc_status llmc__semrecs_decode(const char *p, size_t n, size_t dim, llmc__semrecs *out);
/* Read / write a scope's records under `skey` in the cache (soft: a
 * failing backend is an empty scope, a dropped write). */
llmc_status llmc__semrecs_load(llmc_cache *c, const char *skey, size_t dim,
                               llmc__semrecs *out);
llmc_status llmc__semrecs_save(llmc_cache *c, const char *skey, const llmc__semrecs *r,
                               int64_t now_ms);

/* ---- per-client state (semantic.c) ---- */
typedef struct llmc__sem llmc__sem;

/* Build the client's state from the cache's options and the client's
 * (which win). *out NULL when semantic lookups are off. */
llmc_status llmc__sem_new(llmc_cache *cache, const llmc_options *client_opts, llmc__sem **out,
                          llmc_err *err);
void llmc__sem_free(llmc__sem *s);
void llmc__sem_set_verifier(llmc__sem *s, llmc_verifier_fn fn, void *ud);
const llmc__semcfg *llmc__sem_cfg(const llmc__sem *s);
void llmc__sem_stats(llmc__sem *s, llmc_semantic_stats *out);
/* Count a lookup that could not be compared. */
void llmc__sem_count_ineligible(llmc__sem *s);

/* What one call found out (owned by the call). */
typedef struct llmc__semcall {
    char *scope;        /* the scope's key (the v1 key without the text) */
    char *store_key;    /* where the scope's records live */
    char *prompt;       /* the last user text */
    size_t prompt_len;
    float *vec;         /* its embedding */
    size_t dim;
    double threshold;   /* the effective threshold of this call */
} llmc__semcall;

void llmc__semcall_free(llmc__semcall *sc);

/* The best candidate a lookup found (for the caller to serve). */
typedef struct llmc__semhit {
    char *key;          /* matched entry key (owned) */
    double similarity;
    llmc_lookup lk;     /* its entry */
} llmc__semhit;

/* Search the scope for a candidate that passes the threshold, the guards
 * and the verifier: LLMC_OK with *hit filled (free hit->key and hit->lk),
 * or LLMC_MISS. `tenant_ns` is the prefix every matched key must carry. */
llmc_status llmc__sem_search(llmc__sem *s, llmc_cache *cache, llmc__semcall *sc,
                             const char *model, const char *key_prefix, size_t prefix_len,
                             int64_t max_age_ms, llmc__semhit *hit);
/* Record the answer stored under `key` for this call's prompt. */
void llmc__sem_add(llmc__sem *s, llmc_cache *cache, const llmc__semcall *sc, const char *key,
                   int64_t ttl_ms);

#endif
