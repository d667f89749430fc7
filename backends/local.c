/* The local backend: an in-process hash table with LRU eviction and TTL
 * expiry, sharded so threads rarely meet on a lock.
 *
 * Each shard has its own mutex, chained hash table and LRU list. Limits
 * (max_entries, max_bytes) are split evenly over the shards; when a limit
 * is small the table uses a single shard so eviction order is exact LRU.
 * get, set and del are O(1) (amortised over table growth). */
#include "builtins.h"
#include "hash.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define NSHARDS_MAX 16
#define DEFAULT_MAX_BYTES (256ull << 20)

/* LRU links come first so a node pointer is also the entry pointer. */
typedef struct lnode {
    struct lnode *prev, *next;
} lnode;

typedef struct lentry {
    lnode lru;
    struct lentry *hnext;
    uint64_t hash;
    int64_t expires_ms;
    size_t klen, vlen;
    char data[];
} lentry;

typedef struct shard {
    pthread_mutex_t lock;
    lentry **buckets;
    size_t nbuckets;
    size_t count;
    size_t bytes;
    lnode lru; /* sentinel: lru.next = most recent */
    uint64_t max_entries, max_bytes;
    uint64_t evictions, expirations;
} __attribute__((aligned(64))) shard;

typedef struct local {
    shard shards[NSHARDS_MAX];
    unsigned nshards;
    unsigned shard_shift;
} local;

static size_t entry_bytes(const lentry *e) { return sizeof *e + e->klen + e->vlen; }

static void lru_unlink(lentry *e)
{
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
}

static void lru_push_front(shard *s, lentry *e)
{
    e->lru.next = s->lru.next;
    e->lru.prev = &s->lru;
    s->lru.next->prev = &e->lru;
    s->lru.next = &e->lru;
}

#define NODE_ENTRY(n) ((lentry *)(void *)(n))

static lentry **find_slot(shard *s, uint64_t h, const char *key, size_t klen)
{
    lentry **pp = &s->buckets[h & (s->nbuckets - 1)];
    while (*pp) {
        lentry *e = *pp;
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return pp;
        pp = &e->hnext;
    }
    return pp;
}

/* Unlink e from its bucket (pp points at the link to it) and the LRU. */
static void remove_at(shard *s, lentry **pp)
{
    lentry *e = *pp;
    *pp = e->hnext;
    lru_unlink(e);
    s->count--;
    s->bytes -= entry_bytes(e);
    free(e);
}

static void remove_entry(shard *s, lentry *e)
{
    remove_at(s, find_slot(s, e->hash, e->data, e->klen));
}

static int grow(shard *s)
{
    size_t nb = s->nbuckets * 2;
    lentry **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < s->nbuckets; i++) {
        lentry *e = s->buckets[i];
        while (e) {
            lentry *n = e->hnext;
            lentry **slot = &b[e->hash & (nb - 1)];
            e->hnext = *slot;
            *slot = e;
            e = n;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return 0;
}

static inline shard *shard_of(local *l, uint64_t h)
{
    return &l->shards[l->nshards == 1 ? 0 : (h >> l->shard_shift)];
}

static inline int expired(const lentry *e, int64_t *now)
{
    if (!e->expires_ms)
        return 0;
    if (!*now)
        *now = llmc_now_ms();
    return *now >= e->expires_ms;
}

static void local_close(void *ctx)
{
    local *l = ctx;
    if (!l)
        return;
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        lnode *n = s->lru.next;
        while (n != &s->lru) {
            lnode *next = n->next;
            free(NODE_ENTRY(n));
            n = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(l);
}

static llmc_status local_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    if (cfg->location && *cfg->location)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "local cache URL takes no host or path (got \"%.64s\"); write "
                            "local:// or local://?max_entries=N", cfg->location);
    local *l = NULL;
    if (posix_memalign((void **)&l, 64, sizeof *l) != 0)
        l = NULL;
    else
        memset(l, 0, sizeof *l);
    if (!l)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    uint64_t max_entries = cfg->max_entries;
    uint64_t max_bytes = cfg->max_bytes;
    if (!llmc_options_get(cfg->options, "max_bytes"))
        max_bytes = DEFAULT_MAX_BYTES;
    /* Split limits over shards only when each shard still gets a sizeable
     * share; small limits keep exact LRU order in one shard. */
    int many = (max_entries == 0 || max_entries >= 16384) &&
               (max_bytes == 0 || max_bytes >= (64ull << 20));
    l->nshards = many ? NSHARDS_MAX : 1;
    l->shard_shift = 60; /* top 4 bits of the hash pick one of 16 shards */
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->nbuckets = 64;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        s->lru.next = s->lru.prev = &s->lru;
        s->max_entries = max_entries ? (max_entries + l->nshards - 1) / l->nshards : 0;
        s->max_bytes = max_bytes ? (max_bytes + l->nshards - 1) / l->nshards : 0;
        if (!s->buckets) {
            l->nshards = i + 1;
            local_close(l);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
    }
    *ctx = l;
    return LLMC_OK;
}

static llmc_status local_get(void *ctx, const char *key, size_t klen, llmc_buf *out,
                             llmc_err *err)
{
    local *l = ctx;
    uint64_t h = llmc__hash64(key, klen);
    shard *s = shard_of(l, h);
    int64_t now = 0;
    pthread_mutex_lock(&s->lock);
    lentry **pp = find_slot(s, h, key, klen);
    lentry *e = *pp;
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        return LLMC_MISS;
    }
    if (expired(e, &now)) {
        remove_at(s, pp);
        s->expirations++;
        pthread_mutex_unlock(&s->lock);
        return LLMC_MISS;
    }
    if (s->lru.next != &e->lru) {
        lru_unlink(e);
        lru_push_front(s, e);
    }
    llmc_status st = llmc_buf_set(out, e->data + e->klen, e->vlen);
    pthread_mutex_unlock(&s->lock);
    if (st != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory copying a %zu byte value",
                            e->vlen);
    return LLMC_OK;
}

static llmc_status local_set(void *ctx, const char *key, size_t klen, const void *val,
                             size_t vlen, int64_t ttl_ms, llmc_err *err)
{
    local *l = ctx;
    uint64_t h = llmc__hash64(key, klen);
    shard *s = shard_of(l, h);
    if (klen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2)
        return llmc_err_set(err, LLMC_ETOOBIG, 0, "value too large");
    lentry *e = malloc(sizeof *e + klen + vlen);
    if (!e)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory storing %zu bytes", vlen);
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    e->expires_ms = ttl_ms > 0 ? llmc_now_ms() + ttl_ms : 0;
    e->hnext = NULL;
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, val, vlen);
    if (s->max_bytes && entry_bytes(e) > s->max_bytes) {
        size_t need = entry_bytes(e);
        free(e);
        return llmc_err_set(err, LLMC_ETOOBIG, 0,
                            "value of %zu bytes (%zu with key and overhead) does not fit in "
                            "the local cache's max_bytes share of %llu", vlen, need,
                            (unsigned long long)s->max_bytes);
    }
    pthread_mutex_lock(&s->lock);
    lentry **pp = find_slot(s, h, key, klen);
    if (*pp)
        remove_at(s, pp);
    else
        pp = NULL;
    if (s->count + 1 > s->nbuckets)
        grow(s); /* a failed grow only lengthens chains */
    lentry **slot = &s->buckets[h & (s->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    lru_push_front(s, e);
    s->count++;
    s->bytes += entry_bytes(e);
    /* Evict from the cold end; expired entries there go first anyway. */
    while ((s->max_entries && s->count > s->max_entries) ||
           (s->max_bytes && s->bytes > s->max_bytes)) {
        lentry *victim = NODE_ENTRY(s->lru.prev);
        if (victim == e)
            break;
        remove_entry(s, victim);
        s->evictions++;
    }
    /* Opportunistic purge: drop an expired entry from the cold end. */
    lentry *tail = NODE_ENTRY(s->lru.prev);
    int64_t now = 0;
    if (&tail->lru != &s->lru && tail != e && expired(tail, &now)) {
        remove_entry(s, tail);
        s->expirations++;
    }
    pthread_mutex_unlock(&s->lock);
    return LLMC_OK;
}

static llmc_status local_del(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    (void)err;
    local *l = ctx;
    uint64_t h = llmc__hash64(key, klen);
    shard *s = shard_of(l, h);
    int64_t now = 0;
    pthread_mutex_lock(&s->lock);
    lentry **pp = find_slot(s, h, key, klen);
    llmc_status st = LLMC_MISS;
    if (*pp) {
        st = expired(*pp, &now) ? LLMC_MISS : LLMC_OK;
        remove_at(s, pp);
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static llmc_status local_exists(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    (void)err;
    local *l = ctx;
    uint64_t h = llmc__hash64(key, klen);
    shard *s = shard_of(l, h);
    int64_t now = 0;
    pthread_mutex_lock(&s->lock);
    lentry *e = *find_slot(s, h, key, klen);
    llmc_status st = e && !expired(e, &now) ? LLMC_OK : LLMC_MISS;
    pthread_mutex_unlock(&s->lock);
    return st;
}

static llmc_status local_ttl(void *ctx, const char *key, size_t klen, int64_t *ttl_ms,
                             llmc_err *err)
{
    (void)err;
    local *l = ctx;
    uint64_t h = llmc__hash64(key, klen);
    shard *s = shard_of(l, h);
    int64_t now = 0;
    pthread_mutex_lock(&s->lock);
    lentry *e = *find_slot(s, h, key, klen);
    llmc_status st = LLMC_MISS;
    if (e && !expired(e, &now)) {
        st = LLMC_OK;
        if (!e->expires_ms)
            *ttl_ms = -1;
        else
            *ttl_ms = e->expires_ms - (now ? now : llmc_now_ms());
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

static llmc_status local_flush(void *ctx, const char *ns, size_t nslen, uint64_t *deleted,
                               llmc_err *err)
{
    (void)err;
    local *l = ctx;
    uint64_t count = 0;
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        lnode *n = s->lru.next;
        while (n != &s->lru) {
            lentry *e = NODE_ENTRY(n);
            n = n->next;
            if (e->klen > nslen && e->data[nslen] == ':' && memcmp(e->data, ns, nslen) == 0) {
                remove_entry(s, e);
                count++;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    *deleted = count;
    return LLMC_OK;
}

static llmc_status local_flush_all(void *ctx, llmc_err *err)
{
    (void)err;
    local *l = ctx;
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        while (s->lru.next != &s->lru)
            remove_entry(s, NODE_ENTRY(s->lru.next));
        pthread_mutex_unlock(&s->lock);
    }
    return LLMC_OK;
}

static llmc_status local_scan(void *ctx, const char *prefix, size_t plen, llmc_scan_cb cb,
                              void *ud, llmc_err *err)
{
    (void)err;
    local *l = ctx;
    int64_t now = 0;
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        int stop = 0;
        for (lnode *n = s->lru.next; n != &s->lru && !stop; n = n->next) {
            lentry *e = NODE_ENTRY(n);
            if (e->klen >= plen && memcmp(e->data, prefix, plen) == 0 && !expired(e, &now))
                stop = cb(ud, e->data, e->klen);
        }
        pthread_mutex_unlock(&s->lock);
        if (stop)
            break;
    }
    return LLMC_OK;
}

static llmc_status local_stats(void *ctx, llmc_stat_cb cb, void *ud)
{
    local *l = ctx;
    uint64_t count = 0, bytes = 0, ev = 0, ex = 0;
    for (unsigned i = 0; i < l->nshards; i++) {
        shard *s = &l->shards[i];
        pthread_mutex_lock(&s->lock);
        count += s->count;
        bytes += s->bytes;
        ev += s->evictions;
        ex += s->expirations;
        pthread_mutex_unlock(&s->lock);
    }
    cb(ud, "entries", (int64_t)count);
    cb(ud, "memory_bytes", (int64_t)bytes);
    cb(ud, "evictions", (int64_t)ev);
    cb(ud, "expirations", (int64_t)ex);
    cb(ud, "shards", (int64_t)l->nshards);
    return LLMC_OK;
}

static const char *const local_schemes[] = {"local", "memory", NULL};

const llmc_backend_ops llmc__backend_local = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "local",
                               "in-process hash table, LRU + TTL, sharded locks"),
    .schemes = local_schemes,
    .options = NULL,
    .caps = LLMC_CAP_TTL | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE | LLMC_CAP_SCAN,
    .open = local_open,
    .close = local_close,
    .get = local_get,
    .set = local_set,
    .del = local_del,
    .exists = local_exists,
    .flush = local_flush,
    .flush_all = local_flush_all,
    .stats = local_stats,
    .scan = local_scan,
    .ttl = local_ttl,
};
