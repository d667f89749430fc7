/* A client's semantic state: the scopes it has read (each an index
 * instance over the scope's records, loaded lazily from the backend,
 * reread after semantic_refresh_ms so another replica's answers are
 * found, at most semantic_max_scopes in memory, the least recently used
 * dropped first), the search with its threshold, guards and verifier, and
 * the histogram of best similarities. */
#include "hash.h"
#include "internal.h"
#include "semantic.h"
#include "vecdot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Candidates taken from the index and scored again exactly against the
 * records' float vectors (an int8 index ranks approximately). */
#define TOP_K 8
#define NBUCKETS 256

static const double bounds[LLMC_SEMANTIC_BUCKETS] = {0.5,  0.6,  0.7,   0.8,  0.85, 0.9,
                                                    0.925, 0.95, 0.975, 0.99, 0.999, 1.0};

typedef struct scope {
    char *key;              /* where its records live */
    pthread_mutex_t lock;   /* the index and records */
    const llmc_index_ops *ops;
    void *ix;
    llmc__semrecs recs;     /* record i is id i in the index */
    int64_t loaded_ms;      /* 0 = never read */
    uint64_t last_used;
    int refs;               /* guarded by the state's lock */
    struct scope *next;
} scope;

struct llmc__sem {
    llmc__semcfg cfg;
    const llmc_index_ops *ix;
    const llmc_verifier_ops *verifier;
    llmc_verifier_fn vfn;
    void *vud;
    pthread_mutex_t lock;   /* the scope table */
    scope *buckets[NBUCKETS];
    size_t nscopes;
    uint64_t tick;
    /* statistics */
    _Atomic uint64_t hit_b[LLMC_SEMANTIC_BUCKETS], miss_b[LLMC_SEMANTIC_BUCKETS];
    _Atomic uint64_t hits, misses, lookups, no_candidate, ineligible, guard_rejects,
        verifier_rejects, stored;
    _Atomic uint64_t hit_sum_u, miss_sum_u; /* sums in millionths */
};

llmc_status llmc__sem_new(llmc_cache *cache, const llmc_options *client_opts, llmc__sem **out,
                          llmc_err *err)
{
    *out = NULL;
    llmc__semcfg cfg;
    llmc__semcfg_default(&cfg);
    llmc_status st;
    if (cache && (st = llmc__semcfg_read(cache->opts, &cfg, "option", err)) != LLMC_OK)
        return st;
    if ((st = llmc__semcfg_read(client_opts, &cfg, "client option", err)) != LLMC_OK)
        return st;
    if (!cfg.enabled || !cache)
        return LLMC_OK;
    llmc__sem *s = calloc(1, sizeof *s);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    s->cfg = cfg;
    s->ix = llmc_find_index(cfg.index);
    s->verifier = cfg.verifier[0] ? llmc_find_verifier(cfg.verifier) : NULL;
    if (!s->ix || (cfg.verifier[0] && !s->verifier)) {
        free(s);
        return llmc_err_set(err, LLMC_ENOTFOUND, 0, "semantic index or verifier vanished");
    }
    /* A plugin's index or verifier stays loaded while the client uses it
     * (llmc_plugin_unload answers LLMC_EBUSY). */
    llmc__plugin_acquire(&s->ix->hdr);
    llmc__plugin_acquire(s->verifier ? &s->verifier->hdr : NULL);
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return LLMC_OK;
}

static void scope_free(scope *sc)
{
    if (sc->ix)
        sc->ops->close(sc->ix);
    llmc__semrecs_free(&sc->recs);
    pthread_mutex_destroy(&sc->lock);
    free(sc->key);
    free(sc);
}

void llmc__sem_free(llmc__sem *s)
{
    if (!s)
        return;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (scope *sc = s->buckets[b], *nx; sc; sc = nx) {
            nx = sc->next;
            scope_free(sc);
        }
    pthread_mutex_destroy(&s->lock);
    llmc__plugin_release(&s->ix->hdr);
    llmc__plugin_release(s->verifier ? &s->verifier->hdr : NULL);
    free(s);
}

void llmc__sem_set_verifier(llmc__sem *s, llmc_verifier_fn fn, void *ud)
{
    if (!s)
        return;
    s->vfn = fn;
    s->vud = ud;
}

const llmc__semcfg *llmc__sem_cfg(const llmc__sem *s)
{
    return s ? &s->cfg : NULL;
}

void llmc__sem_count_ineligible(llmc__sem *s)
{
    if (s)
        s->ineligible++;
}

void llmc__sem_stats(llmc__sem *s, llmc_semantic_stats *out)
{
    uint32_t size = out->struct_size;
    memset(out, 0, sizeof *out);
    out->struct_size = size;
    memcpy(out->bounds, bounds, sizeof bounds);
    if (!s)
        return;
    for (int i = 0; i < LLMC_SEMANTIC_BUCKETS; i++) {
        out->hit_buckets[i] = s->hit_b[i];
        out->miss_buckets[i] = s->miss_b[i];
    }
    out->hits = s->hits;
    out->misses = s->misses;
    out->hit_sum = (double)s->hit_sum_u / 1e6;
    out->miss_sum = (double)s->miss_sum_u / 1e6;
    out->lookups = s->lookups;
    out->no_candidate = s->no_candidate;
    out->ineligible = s->ineligible;
    out->guard_rejects = s->guard_rejects;
    out->verifier_rejects = s->verifier_rejects;
    out->stored = s->stored;
}

static void observe(llmc__sem *s, double best, int hit)
{
    if (best < 0)
        best = 0;
    if (best > 1)
        best = 1;
    _Atomic uint64_t *b = hit ? s->hit_b : s->miss_b;
    for (int i = 0; i < LLMC_SEMANTIC_BUCKETS; i++)
        if (best <= bounds[i])
            b[i]++;
    if (hit) {
        s->hits++;
        s->hit_sum_u += (uint64_t)(best * 1e6);
    } else {
        s->misses++;
        s->miss_sum_u += (uint64_t)(best * 1e6);
    }
}

/* ------------------------------------------------------------------ */
/* Scopes. */

static size_t bucket_of(const char *k)
{
    return (size_t)(llmc__hash64(k, strlen(k)) % NBUCKETS);
}

/* Drop the least recently used idle scope (state lock held). */
static void evict_one(llmc__sem *s)
{
    scope **victim = NULL;
    for (size_t b = 0; b < NBUCKETS; b++)
        for (scope **pp = &s->buckets[b]; *pp; pp = &(*pp)->next)
            if ((*pp)->refs == 0 && (!victim || (*pp)->last_used < (*victim)->last_used))
                victim = pp;
    if (!victim)
        return;
    scope *v = *victim;
    *victim = v->next;
    s->nscopes--;
    scope_free(v);
}

static scope *scope_get(llmc__sem *s, const char *key)
{
    pthread_mutex_lock(&s->lock);
    size_t b = bucket_of(key);
    scope *sc = s->buckets[b];
    while (sc && strcmp(sc->key, key) != 0)
        sc = sc->next;
    if (!sc) {
        while (s->nscopes >= (size_t)s->cfg.max_scopes) {
            size_t before = s->nscopes;
            evict_one(s);
            if (s->nscopes == before)
                break;
        }
        sc = calloc(1, sizeof *sc);
        if (sc && !(sc->key = llmc__strdup(key))) {
            free(sc);
            sc = NULL;
        }
        if (sc) {
            pthread_mutex_init(&sc->lock, NULL);
            sc->ops = s->ix;
            sc->next = s->buckets[b];
            s->buckets[b] = sc;
            s->nscopes++;
        }
    }
    if (sc) {
        sc->refs++;
        sc->last_used = ++s->tick;
    }
    pthread_mutex_unlock(&s->lock);
    return sc;
}

static void scope_put(llmc__sem *s, scope *sc)
{
    pthread_mutex_lock(&s->lock);
    sc->refs--;
    pthread_mutex_unlock(&s->lock);
}

/* Build the index over the records (scope lock held). */
static llmc_status rebuild(scope *sc, size_t dim)
{
    if (sc->ix) {
        sc->ops->close(sc->ix);
        sc->ix = NULL;
    }
    llmc_index_config cfg = {sizeof cfg, sc->key, dim, sc->recs.n};
    llmc_err e;
    llmc_status st = sc->ops->open(&cfg, &sc->ix, &e);
    for (size_t i = 0; i < sc->recs.n && st == LLMC_OK; i++)
        st = sc->ops->add(sc->ix, (uint64_t)i, sc->recs.v[i].vec, &e);
    if (st != LLMC_OK && sc->ix) {
        sc->ops->close(sc->ix);
        sc->ix = NULL;
    }
    return st;
}

/* Read the scope's records from the backend again (scope lock held). A
 * backend that fails leaves what is in memory. */
static void reload(llmc__sem *s, llmc_cache *cache, scope *sc, size_t dim, int64_t now)
{
    llmc__semrecs fresh;
    memset(&fresh, 0, sizeof fresh);
    llmc_status st = llmc__semrecs_load(cache, sc->key, dim, &fresh);
    if (st != LLMC_OK && st != LLMC_MISS) {
        llmc__semrecs_free(&fresh);
        if (sc->recs.dim == dim)
            return;
    }
    llmc__semrecs_trim(&fresh, now, (size_t)s->cfg.max_per_scope);
    llmc__semrecs_free(&sc->recs);
    sc->recs = fresh;
    sc->recs.dim = dim;
    sc->loaded_ms = now;
    rebuild(sc, dim);
}

static void ensure_loaded(llmc__sem *s, llmc_cache *cache, scope *sc, size_t dim)
{
    int64_t now = llmc_now_ms();
    if (sc->loaded_ms == 0 || sc->recs.dim != dim || now - sc->loaded_ms >= s->cfg.refresh_ms ||
        now < sc->loaded_ms)
        reload(s, cache, sc, dim, now);
}

/* ------------------------------------------------------------------ */
/* Search and add. */

typedef struct cand {
    char *key;
    char *prompt;
    size_t plen;
    float score;
} cand;

static int verify(llmc__sem *s, const llmc__semcall *sc, const cand *c, const char *model,
                  const llmc_lookup *lk)
{
    if (!s->vfn && !s->verifier)
        return 1;
    llmc_semantic_candidate sv;
    memset(&sv, 0, sizeof sv);
    sv.struct_size = sizeof sv;
    sv.prompt = sc->prompt;
    sv.prompt_len = sc->prompt_len;
    sv.cached_prompt = c->prompt;
    sv.cached_prompt_len = c->plen;
    sv.cached_key = c->key;
    sv.cached_body = lk->entry.body;
    sv.cached_body_len = lk->entry.body_len;
    sv.similarity = c->score;
    sv.model = model;
    if (s->vfn && !s->vfn(s->vud, &sv))
        return 0;
    if (s->verifier && !s->verifier->verify(&sv))
        return 0;
    return 1;
}

llmc_status llmc__sem_search(llmc__sem *s, llmc_cache *cache, llmc__semcall *sc,
                             const char *model, const char *key_prefix, size_t prefix_len,
                             int64_t max_age_ms, llmc__semhit *hit)
{
    memset(hit, 0, sizeof *hit);
    s->lookups++;
    scope *scp = scope_get(s, sc->store_key);
    if (!scp)
        return LLMC_MISS;
    cand cands[TOP_K];
    size_t nc = 0;
    pthread_mutex_lock(&scp->lock);
    ensure_loaded(s, cache, scp, sc->dim);
    if (scp->ix) {
        uint64_t ids[TOP_K];
        float scores[TOP_K];
        size_t got = scp->ops->search(scp->ix, sc->vec, TOP_K, ids, scores);
        for (size_t i = 0; i < got; i++) {
            if (ids[i] >= scp->recs.n)
                continue; /* a plugin index answering nonsense */
            const llmc__semrec *r = &scp->recs.v[ids[i]];
            cands[nc].key = llmc__strdup(r->key);
            cands[nc].prompt = malloc(r->prompt_len + 1);
            if (!cands[nc].key || !cands[nc].prompt) {
                free(cands[nc].key);
                free(cands[nc].prompt);
                break;
            }
            memcpy(cands[nc].prompt, r->prompt, r->prompt_len + 1);
            cands[nc].plen = r->prompt_len;
            float exact = llmc__dot_f32(sc->vec, r->vec, sc->dim);
            cands[nc].score = isfinite(exact) ? exact : -1.0f;
            nc++;
        }
    }
    pthread_mutex_unlock(&scp->lock);
    scope_put(s, scp);
    if (nc == 0) {
        s->no_candidate++;
        return LLMC_MISS;
    }
    /* Best first by the exact score (insertion sort of a few). */
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && cands[j].score > cands[j - 1].score; j--) {
            cand t = cands[j];
            cands[j] = cands[j - 1];
            cands[j - 1] = t;
        }
    double best = cands[0].score;
    llmc_status result = LLMC_MISS;
    for (size_t i = 0; i < nc && result == LLMC_MISS; i++) {
        cand *c = &cands[i];
        if (c->score < sc->threshold)
            break; /* best first: the rest are lower */
        const char *why = NULL;
        /* Every matched key must lie in the request's namespace: a
         * scope's records cannot send a tenant's request to another's
         * entry, whatever they say. */
        size_t kl = strlen(c->key);
        if (kl <= prefix_len || memcmp(c->key, key_prefix, prefix_len) != 0 ||
            memchr(c->key + prefix_len, ':', kl - prefix_len))
            continue;
        if (!llmc__sem_guards_agree(sc->prompt, sc->prompt_len, c->prompt, c->plen, &why)) {
            s->guard_rejects++;
            llmc__log("debug", "semantic candidate refused: %s", why ? why : "guard");
            continue;
        }
        llmc_lookup lk = LLMC_LOOKUP_INIT;
        if (llmc_cache_get_entry(cache, c->key, kl, max_age_ms, LLMC_ENTRY_SOFT, &lk) != LLMC_OK ||
            lk.entry.call != LLMC_CALL_CHAT) {
            llmc_lookup_free(&lk);
            continue; /* expired or gone: its record goes at the next store */
        }
        if (!verify(s, sc, c, model, &lk)) {
            s->verifier_rejects++;
            llmc_lookup_free(&lk);
            break; /* a rejected candidate is a miss */
        }
        hit->key = c->key;
        c->key = NULL;
        hit->similarity = c->score;
        hit->lk = lk;
        result = LLMC_OK;
    }
    observe(s, result == LLMC_OK ? hit->similarity : best, result == LLMC_OK);
    for (size_t i = 0; i < nc; i++) {
        free(cands[i].key);
        free(cands[i].prompt);
    }
    return result;
}

void llmc__sem_add(llmc__sem *s, llmc_cache *cache, const llmc__semcall *sc, const char *key,
                   int64_t ttl_ms)
{
    scope *scp = scope_get(s, sc->store_key);
    if (!scp)
        return;
    int64_t now = llmc_now_ms();
    if (ttl_ms == LLMC_TTL_DEFAULT)
        ttl_ms = cache->default_ttl_ms;
    pthread_mutex_lock(&scp->lock);
    /* Merge with what other writers stored since we read. */
    reload(s, cache, scp, sc->dim, now);
    if (llmc__semrecs_add(&scp->recs, key, sc->prompt, sc->prompt_len,
                          ttl_ms > 0 ? now + ttl_ms : 0, sc->vec) == LLMC_OK) {
        llmc__semrecs_trim(&scp->recs, now, (size_t)s->cfg.max_per_scope);
        llmc__semrecs_save(cache, scp->key, &scp->recs, now);
        rebuild(scp, sc->dim);
        s->stored++;
    }
    pthread_mutex_unlock(&scp->lock);
    scope_put(s, scp);
}

void llmc__semcall_free(llmc__semcall *sc)
{
    if (!sc)
        return;
    free(sc->scope);
    free(sc->store_key);
    free(sc->prompt);
    free(sc->vec);
    free(sc);
}
