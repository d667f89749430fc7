/* The local tier: a bounded in-process copy of what a shared backend
 * (Redis, Cluster, Sentinel, memcached, SQLite, a plugin) returned, so a
 * hit costs no round trip. It is the local backend's table (entries,
 * bytes, LRU), held by the cache handle and reached only through the
 * dispatcher's hooks, so every backend and every caller (library,
 * command, proxy) gets it through this one code path.
 *
 * What keeps a copy correct:
 *  - it never lives longer than l1_ttl, nor than the value's own expiry
 *    (the entry's expiry travels with the copy);
 *  - writes, deletes and flushes through this handle replace or drop the
 *    copy at once, and are published to every other process on the
 *    backend's channel when it has one (Redis pub/sub); a process drops
 *    its copy of each key (or namespace, or everything) it hears about;
 *  - with a channel, copies are served only while the subscription was
 *    confirmed by a round trip within l1_sync_ms: a process that stopped
 *    hearing (server gone, connection silently dead) stops serving from
 *    its tier within that bound, and empties it when it subscribes again
 *    (what was published meanwhile is lost);
 *  - a backend read that raced with an invalidation does not leave a
 *    copy: every invalidation bumps an epoch first, and a fill that sees
 *    the epoch moved since its read began drops what it put in;
 *  - keys carry their namespace (tenant) prefix, so a copy is found only
 *    under the exact key that stored it, and a namespace flush drops
 *    exactly the copies under that prefix.
 * Without a channel (memcached, SQLite) another process's delete reaches
 * this tier when the copy expires, at most l1_ttl later. */
#include "tier.h"

#include "builtins.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL "llmcache:l1"
#define SENDER_HEX 16
#define DEFAULT_ENTRIES 65536
#define DEFAULT_BYTES (64LL << 20)
#define DEFAULT_TTL_S 5
#define DEFAULT_SYNC_MS 1000
#define POLL_SLICE_MS 50
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)
#define BACKEND_HAS(ops, m) (LLMC_HAS_MEMBER(llmc_backend_ops, (ops), m) && (ops)->m)

struct llmc__tier {
    const llmc_backend_ops *l1ops; /* the local backend's table */
    void *l1;
    int64_t ttl_ms;
    int64_t sync_ns;  /* 0: no channel, always live */
    int64_t beat_ms;  /* subscriber round trip interval */
    char sender[SENDER_HEX + 1];
    _Atomic uint64_t epoch;
    /* Monotonic time of the last confirmed subscription round trip (taken
     * before it was sent); 0 while not subscribed. */
    _Atomic int64_t confirmed_ns;
    _Atomic uint64_t invalidations, resyncs, publish_failures;
    _Atomic uint64_t evictions_base; /* the local table's count at the last reset */

    llmc_cache *c;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static int has_channel(const llmc_backend_ops *ops)
{
    return BACKEND_HAS(ops, publish) && BACKEND_HAS(ops, subscribe) &&
           BACKEND_HAS(ops, sub_poll) && BACKEND_HAS(ops, sub_ping) &&
           BACKEND_HAS(ops, sub_close);
}

static int live(const llmc__tier *t)
{
    if (!t->sync_ns)
        return 1;
    int64_t conf = atomic_load_explicit(&t->confirmed_ns, memory_order_acquire);
    return conf && (int64_t)llmc_mono_ns() - conf < t->sync_ns;
}

/* ---- invalidation ---- */

/* Drop copies: key (kind 'k'), "prefix:" (kind 'p') or all ('a'). The
 * epoch moves first so that a fill in flight sees it (see fill). */
static void drop(llmc__tier *t, char kind, const char *p, size_t n)
{
    atomic_fetch_add(&t->epoch, 1);
    llmc_err e;
    uint64_t gone = 0;
    if (kind == 'k')
        t->l1ops->del(t->l1, p, n, &e);
    else if (kind == 'p')
        t->l1ops->flush(t->l1, p, n, &gone, &e);
    else
        t->l1ops->flush_all(t->l1, &e);
}

/* Tell the other processes (best effort: a lost message leaves their
 * copies to l1_ttl, and the backend call it follows usually failed too). */
static void publish(llmc__tier *t, char kind, const char *p, size_t n)
{
    if (!t->sync_ns)
        return;
    llmc_buf m = LLMC_BUF_INIT;
    if (llmc_buf_append(&m, t->sender, SENDER_HEX) != LLMC_OK ||
        llmc_buf_append(&m, &kind, 1) != LLMC_OK || (n && llmc_buf_append(&m, p, n) != LLMC_OK)) {
        llmc_buf_free(&m);
        ADD(t->publish_failures, 1);
        return;
    }
    llmc_cache *c = t->c;
    llmc_err e;
    llmc_err_clear(&e);
    if (c->serialize)
        pthread_mutex_lock(&c->serial_lock);
    llmc_status st = c->ops->publish(c->ctx, CHANNEL, m.data, m.len, &e);
    if (c->serialize)
        pthread_mutex_unlock(&c->serial_lock);
    if (st != LLMC_OK) {
        if (atomic_fetch_add(&t->publish_failures, 1) == 0)
            llmc__log("warn", "cache %s: local tier: cannot publish an invalidation (%s); "
                      "other processes keep their copies up to l1_ttl",
                      c->url_redacted, e.msg[0] ? e.msg : llmc_strerror(st));
    }
    llmc_buf_free(&m);
}

static void on_message(void *ud, const void *msg, size_t len)
{
    llmc__tier *t = ud;
    const char *m = msg;
    if (len < SENDER_HEX + 1)
        return; /* not ours: ignore */
    if (memcmp(m, t->sender, SENDER_HEX) == 0)
        return; /* our own: already applied */
    char kind = m[SENDER_HEX];
    const char *p = m + SENDER_HEX + 1;
    size_t n = len - SENDER_HEX - 1;
    if ((kind == 'k' && n) || (kind == 'p' && n) || kind == 'a') {
        drop(t, kind, p, n);
        ADD(t->invalidations, 1);
    }
}

/* ---- the subscriber ---- */

/* Sleep up to ms unless closing; returns 1 when closing. */
static int pause_ms(llmc__tier *t, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0)
        ;
    int stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    return stop;
}

static int stopping(llmc__tier *t)
{
    pthread_mutex_lock(&t->mu);
    int s = t->stop;
    pthread_mutex_unlock(&t->mu);
    return s;
}

static void *subscriber(void *arg)
{
    llmc__tier *t = arg;
    llmc_cache *c = t->c;
    const llmc_backend_ops *ops = c->ops;
    void *sub = NULL;
    int64_t backoff = BACKOFF_MIN_MS;
    int down_logged = 0;
    while (!stopping(t)) {
        llmc_err e;
        llmc_err_clear(&e);
        if (!sub) {
            llmc_status st = ops->subscribe(c->ctx, CHANNEL, &sub, &e);
            if (st != LLMC_OK) {
                sub = NULL;
                if (!down_logged++)
                    llmc__log("warn", "cache %s: local tier: cannot subscribe (%s); the tier "
                              "is not used until it can", c->url_redacted,
                              e.msg[0] ? e.msg : llmc_strerror(st));
                if (pause_ms(t, backoff))
                    break;
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            /* Whatever was published while we were not listening is lost:
             * start from nothing. */
            drop(t, 'a', NULL, 0);
            ADD(t->resyncs, 1);
            if (down_logged)
                llmc__log("warn", "cache %s: local tier: subscribed again", c->url_redacted);
            down_logged = 0;
            backoff = BACKOFF_MIN_MS;
        }
        int64_t t0 = (int64_t)llmc_mono_ns();
        llmc_status st = ops->sub_ping(sub, on_message, t, &e);
        if (st == LLMC_OK) {
            atomic_store_explicit(&t->confirmed_ns, t0, memory_order_release);
            /* Short waits, so that closing the cache is not held up. */
            int64_t until = t0 + t->beat_ms * 1000000;
            while (st == LLMC_OK && (int64_t)llmc_mono_ns() < until && !stopping(t))
                st = ops->sub_poll(sub, POLL_SLICE_MS, on_message, t, &e);
        }
        if (st != LLMC_OK) {
            atomic_store(&t->confirmed_ns, 0);
            atomic_fetch_add(&t->epoch, 1);
            ops->sub_close(sub);
            sub = NULL;
            if (!down_logged++)
                llmc__log("warn", "cache %s: local tier: subscription lost (%s); the tier is "
                          "not used until it is back", c->url_redacted,
                          e.msg[0] ? e.msg : llmc_strerror(st));
        }
    }
    atomic_store(&t->confirmed_ns, 0);
    if (sub)
        ops->sub_close(sub);
    return NULL;
}

/* ---- open / close ---- */

static const char *const tier_options[] = {LLMC_TIER_OPTION_NAMES, NULL};

llmc_status llmc__tier_open(llmc_cache *c, llmc_err *err)
{
    c->tier = NULL;
    const char *given = NULL;
    for (const char *const *p = tier_options; *p && !given; p++)
        if (llmc_options_get(c->opts, *p))
            given = *p;
    if (!given)
        return LLMC_OK;
    int on = 1;
    llmc_status st = llmc_options_get_bool(c->opts, "l1", 1, &on, err);
    if (st != LLMC_OK)
        return st;
    if (!on) {
        for (const char *const *p = tier_options + 1; *p; p++)
            if (llmc_options_get(c->opts, *p))
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "option %s: the local tier is off (l1=0); drop one of them",
                                    *p);
        return LLMC_OK;
    }
    if (c->ops == &llmc__backend_local)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "option %s: the local backend is already in-process; the local "
                            "tier (l1_*) goes in front of a shared backend (redis, "
                            "redis-cluster, redis-sentinel, memcached, sqlite)", given);
    int64_t entries, bytes, ttl_s, sync_ms;
    if ((st = llmc_options_get_i64(c->opts, "l1_entries", 1, 100000000, DEFAULT_ENTRIES,
                                   &entries, err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "l1_bytes", 4096, 1LL << 40, DEFAULT_BYTES, &bytes,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "l1_ttl", 1, 3600, DEFAULT_TTL_S, &ttl_s, err)) !=
            LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "l1_sync_ms", 100, 60000, DEFAULT_SYNC_MS, &sync_ms,
                                   err)) != LLMC_OK)
        return st;
    int channel = has_channel(c->ops);
    if (!channel && llmc_options_get(c->opts, "l1_sync_ms"))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "option l1_sync_ms: cache backend %s has no pub/sub channel; its "
                            "local tier is bounded by l1_ttl alone", c->name);

    llmc__tier *t = calloc(1, sizeof *t);
    if (!t)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    t->c = c;
    t->l1ops = &llmc__backend_local;
    t->ttl_ms = ttl_s * 1000;
    t->sync_ns = channel ? sync_ms * 1000000 : 0;
    t->beat_ms = sync_ms / 4;
    pthread_mutex_init(&t->mu, NULL);
    /* pause_ms waits against the monotonic clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    uint8_t rnd[32];
    char seed[96];
    snprintf(seed, sizeof seed, "%p %llu %llu %ld", (void *)t, (unsigned long long)llmc_mono_ns(),
             (unsigned long long)c->uid, (long)getpid());
    llmc_sha256(seed, strlen(seed), rnd);
    llmc_hex(rnd, SENDER_HEX / 2, t->sender);

    /* The local backend's own limits, from the l1_* values. */
    llmc_options *lo = llmc_options_new();
    char eb[32], bb[32];
    snprintf(eb, sizeof eb, "%lld", (long long)entries);
    snprintf(bb, sizeof bb, "%lld", (long long)bytes);
    st = lo ? LLMC_OK : LLMC_ENOMEM;
    if (st == LLMC_OK && (st = llmc_options_set(lo, "max_bytes", bb)) == LLMC_OK)
        st = llmc_options_set(lo, "max_entries", eb);
    if (st != LLMC_OK) {
        llmc_options_free(lo);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_backend_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    cfg.scheme = "local";
    cfg.url_redacted = "local://";
    cfg.location = "";
    cfg.path = "";
    cfg.max_entries = (uint64_t)entries;
    cfg.max_bytes = (uint64_t)bytes;
    cfg.timeout_ms = c->timeout_ms;
    cfg.options = lo;
    st = t->l1ops->open(&cfg, &t->l1, err);
    llmc_options_free(lo);
    if (st != LLMC_OK) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return st;
    }
    c->tier = t;
    if (channel) {
        if (pthread_create(&t->thread, NULL, subscriber, t) != 0) {
            llmc__tier_close(c);
            return llmc_err_set(err, LLMC_ENOMEM, 0,
                                "local tier: cannot start its subscriber thread");
        }
        t->thread_started = 1;
    }
    return LLMC_OK;
}

void llmc__tier_close(llmc_cache *c)
{
    llmc__tier *t = c ? c->tier : NULL;
    if (!t)
        return;
    if (t->thread_started) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    t->l1ops->close(t->l1);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    c->tier = NULL;
}

/* ---- reads and fills ---- */

uint64_t llmc__tier_epoch(llmc_cache *c)
{
    return c->tier ? atomic_load(&c->tier->epoch) : 0;
}

llmc_status llmc__tier_get(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                           uint64_t *epoch)
{
    llmc__tier *t = c->tier;
    if (epoch)
        *epoch = atomic_load(&t->epoch);
    llmc_stat_slot *s = llmc__stat_slot(c);
    if (!live(t)) {
        ADD(s->l1_misses, 1);
        return LLMC_MISS;
    }
    llmc_err e;
    size_t len0 = out->len;
    llmc_status st = t->l1ops->get(t->l1, key, klen, out, &e);
    if (st == LLMC_OK) {
        ADD(s->l1_hits, 1);
        return LLMC_OK;
    }
    out->len = len0;
    ADD(s->l1_misses, 1);
    return LLMC_MISS;
}

/* Put a copy that expires at the earlier of l1_ttl and expires_ms. */
static void put(llmc_cache *c, const char *key, size_t klen, const void *val, size_t vlen,
                int64_t expires_ms)
{
    llmc__tier *t = c->tier;
    int64_t ttl = t->ttl_ms;
    if (expires_ms) {
        int64_t left = expires_ms - llmc_now_ms();
        if (left <= 0)
            return;
        if (left < ttl)
            ttl = left;
    }
    llmc_err e;
    if (t->l1ops->set(t->l1, key, klen, val, vlen, ttl, &e) == LLMC_OK)
        ADD(llmc__stat_slot(c)->l1_fills, 1);
}

void llmc__tier_fill(llmc_cache *c, const char *key, size_t klen, const void *val, size_t vlen,
                     int64_t expires_ms, uint64_t epoch)
{
    llmc__tier *t = c->tier;
    if (!t || !live(t) || atomic_load(&t->epoch) != epoch)
        return;
    put(c, key, klen, val, vlen, expires_ms);
    /* An invalidation that began after our read may have dropped the key
     * before we put it in: it moved the epoch first, so look again. */
    if (atomic_load(&t->epoch) != epoch) {
        llmc_err e;
        t->l1ops->del(t->l1, key, klen, &e);
    }
}

void llmc__tier_fill_raw(llmc_cache *c, const char *key, size_t klen, const void *val,
                         size_t vlen, uint64_t epoch)
{
    if (!c->tier || !live(c->tier))
        return;
    llmc_entry en;
    memset(&en, 0, sizeof en);
    llmc_buf scratch = LLMC_BUF_INIT;
    llmc_err e;
    llmc_status st = c->ser->decode(val, vlen, &en, &scratch, &e);
    llmc_buf_free(&scratch);
    if (st == LLMC_OK)
        llmc__tier_fill(c, key, klen, val, vlen, en.expires_ms, epoch);
}

/* ---- writes through this handle ---- */

void llmc__tier_written(llmc_cache *c, const char *key, size_t klen, const void *val,
                        size_t vlen, int64_t ttl_ms, int ok)
{
    llmc__tier *t = c->tier;
    drop(t, 'k', key, klen);
    if (!ok)
        return;
    publish(t, 'k', key, klen);
    if (live(t))
        put(c, key, klen, val, vlen, ttl_ms ? llmc_now_ms() + ttl_ms : 0);
}

void llmc__tier_deleted(llmc_cache *c, const char *key, size_t klen, int ok)
{
    drop(c->tier, 'k', key, klen);
    if (ok)
        publish(c->tier, 'k', key, klen);
}

void llmc__tier_flushed(llmc_cache *c, const char *prefix, int ok)
{
    size_t n = prefix ? strlen(prefix) : 0;
    drop(c->tier, prefix ? 'p' : 'a', prefix, n);
    if (ok)
        publish(c->tier, prefix ? 'p' : 'a', prefix, n);
}

/* ---- stats ---- */

typedef struct l1_counts {
    int64_t entries, bytes, evictions;
} l1_counts;

static void count_cb(void *ud, const char *name, int64_t v)
{
    l1_counts *k = ud;
    if (strcmp(name, "entries") == 0)
        k->entries = v;
    else if (strcmp(name, "memory_bytes") == 0)
        k->bytes = v;
    else if (strcmp(name, "evictions") == 0)
        k->evictions = v;
}

void llmc__tier_stats(llmc_cache *c, llmc_stats *s)
{
    llmc__tier *t = c->tier;
    if (!t)
        return;
    s->l1_enabled = 1;
    s->l1_live = (uint32_t)live(t);
    for (int i = 0; i < LLMC_STAT_SLOTS; i++) {
        s->l1_hits += atomic_load_explicit(&c->slots[i].l1_hits, memory_order_relaxed);
        s->l1_misses += atomic_load_explicit(&c->slots[i].l1_misses, memory_order_relaxed);
        s->l1_fills += atomic_load_explicit(&c->slots[i].l1_fills, memory_order_relaxed);
    }
    l1_counts k = {0, 0, 0};
    t->l1ops->stats(t->l1, count_cb, &k);
    uint64_t base = atomic_load(&t->evictions_base);
    s->l1_evictions = (uint64_t)k.evictions > base ? (uint64_t)k.evictions - base : 0;
    s->l1_invalidations = atomic_load(&t->invalidations);
    s->l1_resyncs = atomic_load(&t->resyncs);
}

void llmc__tier_stats_reset(llmc_cache *c)
{
    llmc__tier *t = c->tier;
    if (!t)
        return;
    atomic_store(&t->invalidations, 0);
    atomic_store(&t->resyncs, 0);
    atomic_store(&t->publish_failures, 0);
    l1_counts k = {0, 0, 0};
    t->l1ops->stats(t->l1, count_cb, &k);
    atomic_store(&t->evictions_base, (uint64_t)k.evictions);
}

void llmc__tier_stats_foreach(llmc_cache *c, llmc_stat_cb cb, void *ud)
{
    llmc__tier *t = c->tier;
    if (!t)
        return;
    llmc_stats s;
    memset(&s, 0, sizeof s);
    llmc__tier_stats(c, &s);
    l1_counts k = {0, 0, 0};
    t->l1ops->stats(t->l1, count_cb, &k);
    cb(ud, "l1_live", s.l1_live);
    cb(ud, "l1_entries", k.entries);
    cb(ud, "l1_bytes", k.bytes);
    cb(ud, "l1_hits", (int64_t)s.l1_hits);
    cb(ud, "l1_misses", (int64_t)s.l1_misses);
    cb(ud, "l1_fills", (int64_t)s.l1_fills);
    cb(ud, "l1_evictions", (int64_t)s.l1_evictions);
    cb(ud, "l1_invalidations", (int64_t)s.l1_invalidations);
    cb(ud, "l1_resyncs", (int64_t)s.l1_resyncs);
    cb(ud, "l1_publish_failures", (int64_t)atomic_load(&t->publish_failures));
    cb(ud, "l1_ttl_ms", t->ttl_ms);
    cb(ud, "l1_sync_ms", t->sync_ns / 1000000);
}
