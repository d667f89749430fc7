/* The dispatcher: opens caches, validates arguments, resolves TTLs,
 * measures and counts every backend call, serialises backends that are
 * not thread-safe, emulates what a backend lacks and keeps the circuit
 * breaker used by the fail-open (soft) entry calls.
 *
 * Past 800 lines on purpose: every part works on the cache handle's
 * private state through the same wrappers (argument checks, timing and
 * stat slots, the serialising lock, error recording), and splitting it
 * would turn those wrappers into cross-file internals for no reader's
 * benefit. */
#include "builtins.h"
#include "internal.h"
#include "semantic.h"
#include "tier.h"

#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <string.h>

/* An optional backend function the table both reaches (a table built
 * against an older header may end before it) and sets. */
#define BACKEND_HAS(c, m) (LLMC_HAS_MEMBER(llmc_backend_ops, (c)->ops, m) && (c)->ops->m)

#define MAX_KEY_BYTES (64 * 1024)
#define MAX_TTL_SECONDS (10LL * 366 * 24 * 3600)

static const char *const common_options[] = {
    "namespace", "ttl", "max_entries", "max_bytes", "max_item_bytes", "timeout_ms",
    "serializer", "key_strategy", "mode", "breaker_threshold", "breaker_cooldown_ms",
    "scope_by_user", "entry_secret", "stale_if_error", "stale_while_revalidate",
    LLMC_TIER_OPTION_NAMES, "coalesce", "lease_ms", "coalesce_timeout_ms",
    "coalesce_poll_ms", NULL};

/* ---- stats ---- */

static _Atomic unsigned next_slot;
static __thread int my_slot = -1;

llmc_stat_slot *llmc__stat_slot(llmc_cache *c)
{
    if (my_slot < 0)
        my_slot = (int)(atomic_fetch_add(&next_slot, 1) % LLMC_STAT_SLOTS);
    return &c->slots[my_slot];
}

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

static inline unsigned hist_bucket(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned lg = 63u - (unsigned)__builtin_clzll(ns);
    unsigned sub = (unsigned)(ns >> (lg - 2)) & 3u;
    unsigned b = lg * 4 + sub - 4;
    return b < LLMC_HIST_BUCKETS ? b : LLMC_HIST_BUCKETS - 1;
}

/* Lower bound of a bucket, the value we report for it. */
static uint64_t bucket_value(unsigned b)
{
    if (b < 4)
        return b;
    unsigned lg = (b + 4) / 4;
    unsigned sub = (b + 4) % 4;
    return (1ull << lg) + ((uint64_t)sub << (lg - 2));
}

static inline void atomic_max(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static inline void record_get(llmc_cache *c, uint64_t ns)
{
    llmc_stat_slot *s = llmc__stat_slot(c);
    ADD(s->get_count, 1);
    ADD(s->get_ns_total, ns);
    atomic_max(&s->get_ns_max, ns);
    ADD(s->get_hist[hist_bucket(ns)], 1);
}

static inline void record_set(llmc_cache *c, uint64_t ns)
{
    llmc_stat_slot *s = llmc__stat_slot(c);
    ADD(s->set_count, 1);
    ADD(s->set_ns_total, ns);
    atomic_max(&s->set_ns_max, ns);
    ADD(s->set_hist[hist_bucket(ns)], 1);
}

static uint64_t percentile(const uint64_t *hist, uint64_t total, double q)
{
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    uint64_t acc = 0;
    for (unsigned b = 0; b < LLMC_HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc > want)
            return bucket_value(b);
    }
    return bucket_value(LLMC_HIST_BUCKETS - 1);
}

llmc_status llmc_cache_stats(llmc_cache *c, llmc_stats *out, size_t size)
{
    if (!c || !out || size == 0)
        return LLMC_EINVAL;
    llmc_stats s;
    memset(&s, 0, sizeof s);
    uint64_t gh[LLMC_HIST_BUCKETS] = {0}, sh[LLMC_HIST_BUCKETS] = {0};
    for (int i = 0; i < LLMC_STAT_SLOTS; i++) {
        llmc_stat_slot *t = &c->slots[i];
#define L(f) atomic_load_explicit(&t->f, memory_order_relaxed)
        s.hits += L(hits);
        s.misses += L(misses);
        s.sets += L(sets);
        s.deletes += L(deletes);
        s.errors += L(errors);
        s.corrupt += L(corrupt);
        s.mac_failures += L(mac_failures);
        s.bytes_read += L(bytes_read);
        s.bytes_written += L(bytes_written);
        s.get_count += L(get_count);
        s.get_ns_total += L(get_ns_total);
        if (L(get_ns_max) > s.get_ns_max)
            s.get_ns_max = L(get_ns_max);
        s.set_count += L(set_count);
        s.set_ns_total += L(set_ns_total);
        if (L(set_ns_max) > s.set_ns_max)
            s.set_ns_max = L(set_ns_max);
        for (int b = 0; b < LLMC_HIST_BUCKETS; b++) {
            gh[b] += L(get_hist[b]);
            sh[b] += L(set_hist[b]);
        }
#undef L
    }
    s.get_ns_p50 = percentile(gh, s.get_count, 0.50);
    s.get_ns_p99 = percentile(gh, s.get_count, 0.99);
    s.set_ns_p50 = percentile(sh, s.set_count, 0.50);
    s.set_ns_p99 = percentile(sh, s.set_count, 0.99);
    s.breaker_trips = atomic_load(&c->breaker_trips);
    s.breaker_skips = atomic_load(&c->breaker_skips);
    s.breaker_open = atomic_load(&c->breaker_open_until_ns) != 0;
    s.stores_skipped = atomic_load(&c->stores_skipped);
    s.corrupt_reads = atomic_load(&c->corrupt_reads);
    s.storage_corrupt = atomic_load(&c->storage_corrupt) != 0;
    llmc__tier_stats(c, &s);
    llmc__lease_keeper_fill(c, &s);
    memcpy(out, &s, size < sizeof s ? size : sizeof s);
    return LLMC_OK;
}

void llmc_cache_stats_reset(llmc_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < LLMC_STAT_SLOTS; i++)
        memset((void *)&c->slots[i], 0, sizeof c->slots[i]);
    atomic_store(&c->breaker_trips, 0);
    atomic_store(&c->breaker_skips, 0);
    atomic_store(&c->stores_skipped, 0);
    atomic_store(&c->corrupt_reads, 0);
    llmc__tier_stats_reset(c);
    llmc__lease_keeper_stats_reset(c);
}

llmc_status llmc_cache_stats_foreach(llmc_cache *c, llmc_stat_cb cb, void *ud)
{
    if (!c || !cb)
        return LLMC_EINVAL;
    llmc_status st = LLMC_OK;
    if (BACKEND_HAS(c, stats)) {
        if (c->serialize)
            pthread_mutex_lock(&c->serial_lock);
        st = c->ops->stats(c->ctx, cb, ud);
        if (c->serialize)
            pthread_mutex_unlock(&c->serial_lock);
    }
    llmc__tier_stats_foreach(c, cb, ud);
    llmc__lease_keeper_stats(c, cb, ud);
    return st;
}

/* ---- errors ---- */

llmc_status llmc__cache_fail(llmc_cache *c, const llmc_err *e)
{
    pthread_mutex_lock(&c->err_lock);
    c->last_err = *e;
    if (!c->last_err.msg[0])
        snprintf(c->last_err.msg, sizeof c->last_err.msg, "%s", llmc_strerror(e->status));
    pthread_mutex_unlock(&c->err_lock);
    return e->status;
}

static llmc_status fail(llmc_cache *c, llmc_status st, const char *fmt, ...)
    LLMC_PRINTF(3, 4);
static llmc_status fail(llmc_cache *c, llmc_status st, const char *fmt, ...)
{
    llmc_err e;
    va_list ap;
    va_start(ap, fmt);
    llmc_err_vset(&e, st, 0, fmt, ap);
    va_end(ap);
    return llmc__cache_fail(c, &e);
}

/* A backend call failed: record its error, count it. */
static llmc_status backend_fail(llmc_cache *c, llmc_status st, llmc_err *e, const char *op)
{
    if (e->status != st || !e->msg[0])
        llmc_err_set(e, st, e->native, "%s %s: %s", c->name, op, llmc_strerror(st));
    ADD(llmc__stat_slot(c)->errors, 1);
    if (st == LLMC_ECORRUPT)
        llmc__storage_corrupt(c, e);
    return llmc__cache_fail(c, e);
}

const char *llmc_cache_errmsg(llmc_cache *c)
{
    static __thread char copy[LLMC_ERRMSG_MAX];
    if (!c)
        return "no cache handle";
    pthread_mutex_lock(&c->err_lock);
    memcpy(copy, c->last_err.msg, sizeof copy);
    pthread_mutex_unlock(&c->err_lock);
    return copy;
}

llmc_status llmc_cache_errcode(llmc_cache *c)
{
    if (!c)
        return LLMC_EINVAL;
    pthread_mutex_lock(&c->err_lock);
    llmc_status st = c->last_err.status;
    pthread_mutex_unlock(&c->err_lock);
    return st;
}

long llmc_cache_native_errcode(llmc_cache *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->err_lock);
    long n = c->last_err.native;
    pthread_mutex_unlock(&c->err_lock);
    return n;
}

/* ---- circuit breaker ---- */

bool llmc__status_is_backend_failure(llmc_status st)
{
    switch (st) {
    case LLMC_ECONN:
    case LLMC_ETIMEDOUT:
    case LLMC_EIO:
    case LLMC_EPROTO:
    case LLMC_EBACKEND:
    case LLMC_EBUSY:
    case LLMC_EAUTH:
    case LLMC_ENOMEM:
        return true;
    default:
        return false;
    }
}

bool llmc__breaker_allow(llmc_cache *c)
{
    if (c->breaker_threshold <= 0)
        return true;
    int64_t until = atomic_load(&c->breaker_open_until_ns);
    if (until == 0)
        return true;
    if ((int64_t)llmc_mono_ns() < until) {
        atomic_fetch_add(&c->breaker_skips, 1);
        return false;
    }
    /* Cool-down over: let exactly one caller probe the backend. */
    int expected = 0;
    if (atomic_compare_exchange_strong(&c->breaker_probe, &expected, 1))
        return true;
    atomic_fetch_add(&c->breaker_skips, 1);
    return false;
}

void llmc__breaker_record(llmc_cache *c, llmc_status st)
{
    /* Failures are counted even with the breaker disabled: the
     * skipped-store rule (llmc__soft_stalled) needs to know when a failing
     * backend answers again. */
    if (llmc__status_is_backend_failure(st)) {
        int64_t n = atomic_fetch_add(&c->consecutive_failures, 1) + 1;
        if (c->breaker_threshold <= 0)
            return;
        int64_t until = (int64_t)llmc_mono_ns() + c->breaker_cooldown_ms * 1000000;
        if (atomic_exchange(&c->breaker_probe, 0) == 1) {
            atomic_store(&c->breaker_open_until_ns, until); /* probe failed */
        } else if (n >= c->breaker_threshold) {
            int64_t zero = 0;
            if (atomic_compare_exchange_strong(&c->breaker_open_until_ns, &zero, until)) {
                atomic_fetch_add(&c->breaker_trips, 1);
                llmc__log("warn",
                          "cache %s: %lld consecutive failures (%s); skipping it for %lld ms",
                          c->url_redacted, (long long)n, llmc_strerror(st),
                          (long long)c->breaker_cooldown_ms);
            }
        }
    } else {
        /* Only write shared state on a transition: this runs on every hit. */
        if (atomic_load_explicit(&c->consecutive_failures, memory_order_relaxed) != 0) {
            atomic_store(&c->consecutive_failures, 0);
            atomic_fetch_add(&c->recover_gen, 1);
        }
        if (c->breaker_threshold <= 0)
            return;
        if (atomic_load_explicit(&c->breaker_probe, memory_order_relaxed) != 0)
            atomic_store(&c->breaker_probe, 0);
        if (atomic_load_explicit(&c->breaker_open_until_ns, memory_order_relaxed) != 0 &&
            atomic_exchange(&c->breaker_open_until_ns, 0) != 0)
            llmc__log("warn", "cache %s: backend answers again; circuit closed",
                      c->url_redacted);
    }
}

/* ---- one request, one cache timeout ----
 *
 * A completion reads the cache, calls the provider, then stores. When the
 * read reached a stalled backend and timed out, the store would wait the
 * same timeout again. So each thread remembers whether its last soft call
 * on a handle failed, and a soft store is skipped while that is so and no
 * call on the handle has succeeded since (the recovery generation is
 * unchanged). The read and the store of one request run on one thread
 * (client and proxy alike), which makes this per request without any
 * state in the request. Reads always go to the backend, so the cache is
 * used again as soon as it answers. */

static _Atomic uint64_t next_uid = 1;
static __thread uint64_t stall_uid;
static __thread uint64_t stall_gen;

void llmc__soft_failed(llmc_cache *c)
{
    stall_uid = c->uid;
    stall_gen = atomic_load(&c->recover_gen);
}

void llmc__soft_ok(llmc_cache *c)
{
    if (stall_uid == c->uid)
        stall_uid = 0;
}

bool llmc__soft_stalled(llmc_cache *c)
{
    if (stall_uid != c->uid)
        return false;
    if (stall_gen != atomic_load(&c->recover_gen)) {
        stall_uid = 0;
        return false;
    }
    return true;
}

void llmc__store_skipped(llmc_cache *c)
{
    atomic_fetch_add(&c->stores_skipped, 1);
    atomic_fetch_add(&c->breaker_skips, 1);
}

/* ---- damaged storage ---- */

void llmc__storage_corrupt(llmc_cache *c, const llmc_err *e)
{
    atomic_fetch_add(&c->corrupt_reads, 1);
    if (atomic_exchange(&c->storage_corrupt, 1) == 0)
        llmc__log("warn",
                  "cache %s: the backend reports damaged storage (%s); affected entries "
                  "read as misses until it is repaired (llmcache cache check --repair)",
                  c->url_redacted, e && e->msg[0] ? e->msg : "corrupt");
}

/* ---- option handling and open ---- */

static int in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (llmc__strcaseeq(*list, name))
            return 1;
    return 0;
}


/* The entry MAC secret: the entry_secret option, else the
 * LLMCACHE_ENTRY_SECRET environment variable (empty there = unset). It
 * is moved out of the options so that no listing of them (option lookup,
 * the backend, stats) can show it; the URL form is redacted by url.c. */
static llmc_status take_entry_secret(llmc_cache *c, llmc_err *err)
{
    const char *sec = llmc_options_get(c->opts, "entry_secret");
    if (sec && !*sec)
        return llmc_err_set(err, LLMC_EINVAL, 0, "option entry_secret: the secret is empty");
    if (!sec) {
        sec = getenv("LLMCACHE_ENTRY_SECRET");
        if (sec && !*sec)
            sec = NULL;
    }
    if (sec) {
        size_t n = strlen(sec);
        c->entry_secret = malloc(n);
        if (!c->entry_secret)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        memcpy(c->entry_secret, sec, n);
        c->entry_secret_len = n;
    }
    llmc_options_unset(c->opts, "entry_secret");
    return LLMC_OK;
}

static llmc_status open_common(const char *type_or_url, int is_url, const llmc_options *opts,
                               llmc_cache **out, llmc_err *err)
{
    llmc_err dummy;
    if (!err)
        err = &dummy;
    llmc_err_clear(err);
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_cache_open: out is NULL");
    *out = NULL;
    llmc_status st = llmc_init();
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "llmcache failed to initialise its registries");

    const char *url = type_or_url;
    if (is_url && (!url || !*url)) {
        url = getenv("LLMCACHE_URL");
        if (!url || !*url)
            url = "local://";
    }
    if (!is_url && (!url || !*url))
        return llmc_err_set(err, LLMC_EINVAL, 0, "cache type is empty");

    llmc_url u;
    if (is_url) {
        st = llmc__url_parse(url, &u, err);
    } else {
        /* A type string is a URL without location. */
        if (strstr(url, "://"))
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "cache type \"%.64s\" looks like a URL; use llmc_cache_open",
                                url);
        st = llmc__url_parse(url, &u, err);
    }
    if (st != LLMC_OK) {
        llmc__url_free(&u);
        return st;
    }

    llmc_options *merged = NULL;
    llmc_cache *c = NULL;
    const llmc_backend_ops *ops = llmc_find_backend(u.scheme);
    if (!ops) {
        const char *feat = llmc__backend_not_built(u.scheme);
        if (feat) {
            st = llmc_err_set(err, LLMC_ENOTBUILT, 0,
                              "cache backend \"%s\" is not built into this llmcache (feature "
                              "%s was disabled or its library missing at build time)",
                              u.scheme, feat);
        } else {
            char *names = llmc_registry_names(LLMC_KIND_BACKEND);
            st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                              "unknown cache type or URL scheme \"%.64s\" (known: %s)",
                              u.scheme, names ? names : "");
            free(names);
        }
        goto done;
    }

    if (ops->caps & LLMC_CAP_FILE_LOCATION) {
        for (size_t i = 0; i < u.n_hosts; i++)
            free((char *)u.hosts[i].host);
        free(u.hosts);
        u.hosts = NULL;
        u.n_hosts = 0;
    } else if (u.host_status != LLMC_OK) {
        st = llmc_err_set(err, u.host_status, 0, "%s", u.host_error ? u.host_error : "bad host");
        goto done;
    }

    merged = u.query ? llmc_options_dup(u.query) : llmc_options_new();
    if (!merged) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < llmc_options_count(opts); i++) {
        st = llmc_options_set(merged, llmc_options_name_at(opts, i),
                              llmc_options_value_at(opts, i));
        if (st != LLMC_OK) {
            llmc_err_set(err, st, 0, "invalid option \"%.64s\"",
                         llmc_options_name_at(opts, i) ? llmc_options_name_at(opts, i) : "");
            goto done;
        }
    }
    for (size_t i = 0; i < llmc_options_count(merged); i++) {
        const char *name = llmc_options_name_at(merged, i);
        if (!in_list(common_options, name) && !in_list(ops->options, name) &&
            !in_list(llmc__sem_option_names, name)) {
            llmc_buf known = LLMC_BUF_INIT;
            for (const char *const *p = common_options; *p; p++)
                llmc_buf_printf(&known, "%s%s", known.len ? ", " : "", *p);
            for (const char *const *p = ops->options; p && *p; p++)
                llmc_buf_printf(&known, ", %s", *p);
            llmc_buf_puts(&known, ", semantic, semantic_*");
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "unknown option \"%.64s\" for cache backend %s (known: %s)", name,
                              ops->hdr.name, known.data ? known.data : "");
            llmc_buf_free(&known);
            goto done;
        }
    }

    /* The stats slots are cache-line aligned: plain calloc is not enough. */
    if (posix_memalign((void **)&c, 64, sizeof *c) != 0)
        c = NULL;
    else
        memset(c, 0, sizeof *c);
    if (!c) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    pthread_mutex_init(&c->serial_lock, NULL);
    pthread_mutex_init(&c->err_lock, NULL);
    c->uid = atomic_fetch_add(&next_uid, 1);
    c->ops = ops;
    llmc__plugin_acquire(&ops->hdr); /* a plugin backend stays loaded */
    c->caps = ops->caps;
    c->serialize = !(ops->caps & LLMC_CAP_THREAD_SAFE);
    c->name = llmc__strdup(ops->hdr.name);
    c->url_redacted = llmc__strdup(u.redacted);
    c->opts = merged;
    merged = NULL;

    if ((st = take_entry_secret(c, err)) != LLMC_OK)
        goto done;
    llmc__semcfg semcfg;
    llmc__semcfg_default(&semcfg);
    if ((st = llmc__semcfg_read(c->opts, &semcfg, "option", err)) != LLMC_OK)
        goto done;
    const char *ns = llmc_options_get(c->opts, "namespace");
    if (ns) {
        st = llmc_namespace_check(ns, "option \"namespace\"", err);
        if (st != LLMC_OK)
            goto done;
        c->namespace_ = llmc__strdup(ns);
    }
    int64_t v;
    if ((st = llmc_options_get_i64(c->opts, "ttl", 0, MAX_TTL_SECONDS, 0, &v, err)) != LLMC_OK)
        goto done;
    c->default_ttl_ms = v * 1000;
    if ((st = llmc_options_get_i64(c->opts, "stale_if_error", 0, MAX_TTL_SECONDS, 0, &v,
                                   err)) != LLMC_OK)
        goto done;
    c->stale_if_error_ms = v * 1000;
    if ((st = llmc_options_get_i64(c->opts, "stale_while_revalidate", 0, MAX_TTL_SECONDS, 0, &v,
                                   err)) != LLMC_OK)
        goto done;
    c->stale_while_revalidate_ms = v * 1000;
    int64_t max_entries, max_bytes, max_item;
    if ((st = llmc_options_get_i64(c->opts, "max_entries", 0, INT64_MAX / 2, 0, &max_entries,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "max_bytes", 0, INT64_MAX / 2, 0, &max_bytes,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "max_item_bytes", 0, INT64_MAX / 2, 0, &max_item,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "timeout_ms", 1, 600000, 2000, &c->timeout_ms,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "breaker_threshold", 0, 1000000, 5,
                                   &c->breaker_threshold, err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "breaker_cooldown_ms", 1, 3600000, 5000,
                                   &c->breaker_cooldown_ms, err)) != LLMC_OK ||
        (st = llmc_options_get_bool(c->opts, "scope_by_user", 0, &c->scope_by_user, err)) !=
            LLMC_OK ||
        (st = llmc__lease_configure(c, err)) != LLMC_OK)
        goto done;
    c->max_item_bytes = (uint64_t)max_item;
    const char *mode = llmc_options_get(c->opts, "mode");
    if (!mode || llmc__strcaseeq(mode, "default_on"))
        c->mode = LLMC_MODE_DEFAULT_ON;
    else if (llmc__strcaseeq(mode, "default_off"))
        c->mode = LLMC_MODE_DEFAULT_OFF;
    else {
        st = llmc_err_set(err, LLMC_EINVAL, 0,
                          "option mode: \"%.64s\" is not a cache mode (default_on, "
                          "default_off)", mode);
        goto done;
    }
    const char *sname = llmc_options_get(c->opts, "serializer");
    c->ser = llmc_find_serializer(sname ? sname : "json");
    llmc__plugin_acquire(c->ser ? &c->ser->hdr : NULL);
    if (!c->ser) {
        char *names = llmc_registry_names(LLMC_KIND_SERIALIZER);
        st = llmc_err_set(err, LLMC_ENOTFOUND, 0, "option serializer: unknown serializer "
                          "\"%.64s\" (known: %s)", sname, names ? names : "");
        free(names);
        goto done;
    }
    const char *kname = llmc_options_get(c->opts, "key_strategy");
    c->keys = llmc_find_key_strategy(kname ? kname : "v1");
    llmc__plugin_acquire(c->keys ? &c->keys->hdr : NULL);
    if (!c->keys) {
        char *names = llmc_registry_names(LLMC_KIND_KEY_STRATEGY);
        st = llmc_err_set(err, LLMC_ENOTFOUND, 0, "option key_strategy: unknown key strategy "
                          "\"%.64s\" (known: %s)", kname, names ? names : "");
        free(names);
        goto done;
    }

    llmc_backend_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.struct_size = sizeof cfg;
    cfg.scheme = u.scheme;
    cfg.url_redacted = u.redacted;
    cfg.user = u.user;
    cfg.password = u.password;
    cfg.location = u.location;
    cfg.hosts = u.hosts;
    cfg.n_hosts = u.n_hosts;
    cfg.path = u.path;
    cfg.namespace_ = c->namespace_;
    cfg.default_ttl_ms = c->default_ttl_ms;
    cfg.max_entries = (uint64_t)max_entries;
    cfg.max_bytes = (uint64_t)max_bytes;
    cfg.max_item_bytes = (uint64_t)max_item;
    cfg.timeout_ms = c->timeout_ms;
    cfg.options = c->opts;
    llmc_err_clear(err);
    st = ops->open(&cfg, &c->ctx, err);
    if (st != LLMC_OK) {
        c->ctx = NULL;
        if (!err->msg[0])
            llmc_err_set(err, st, err->native, "cache %s: open failed: %s", u.redacted,
                         llmc_strerror(st));
        goto done;
    }
    if ((st = llmc__tier_open(c, err)) != LLMC_OK)
        goto done;
    *out = c;
    c = NULL;
done:
    if (c)
        llmc_cache_close(c);
    llmc_options_free(merged);
    llmc__url_free(&u);
    return st;
}

llmc_status llmc_cache_open(const char *url, const llmc_options *opts, llmc_cache **out,
                            llmc_err *err)
{
    return open_common(url, 1, opts, out, err);
}

llmc_status llmc_cache_open_type(const char *type, const llmc_options *opts,
                                 llmc_cache **out, llmc_err *err)
{
    return open_common(type, 0, opts, out, err);
}

void llmc_cache_close(llmc_cache *c)
{
    if (!c)
        return;
    llmc__lease_keeper_close(c); /* it renews through the backend */
    llmc__tier_close(c); /* its subscriber uses the backend */
    if (c->ctx)
        c->ops->close(c->ctx);
    /* After close: the backend's code may live in a plugin. */
    llmc__plugin_release(c->ops ? &c->ops->hdr : NULL);
    llmc__plugin_release(c->ser ? &c->ser->hdr : NULL);
    llmc__plugin_release(c->keys ? &c->keys->hdr : NULL);
    pthread_mutex_destroy(&c->serial_lock);
    pthread_mutex_destroy(&c->err_lock);
    free(c->name);
    free(c->url_redacted);
    free(c->namespace_);
    if (c->entry_secret) {
        OPENSSL_cleanse(c->entry_secret, c->entry_secret_len);
        free(c->entry_secret);
    }
    llmc_options_free(c->opts);
    free(c);
}

/* ---- properties ---- */

const char *llmc_cache_backend_name(const llmc_cache *c) { return c ? c->name : NULL; }
const char *llmc_cache_url(const llmc_cache *c) { return c ? c->url_redacted : NULL; }
const char *llmc_cache_namespace(const llmc_cache *c) { return c ? c->namespace_ : NULL; }
int64_t llmc_cache_default_ttl(const llmc_cache *c) { return c ? c->default_ttl_ms : 0; }
llmc_cache_mode llmc_cache_get_mode(const llmc_cache *c)
{
    return c ? c->mode : LLMC_MODE_DEFAULT_ON;
}
const char *llmc_cache_serializer_name(const llmc_cache *c)
{
    return c ? c->ser->hdr.name : NULL;
}
const char *llmc_cache_key_strategy_name(const llmc_cache *c)
{
    return c ? c->keys->hdr.name : NULL;
}
uint32_t llmc_cache_caps(const llmc_cache *c) { return c ? c->caps : 0; }
const char *llmc_cache_option(const llmc_cache *c, const char *name)
{
    return c ? llmc_options_get(c->opts, name) : NULL;
}

/* ---- operations ---- */

#define LOCK(c)                                                                \
    do {                                                                       \
        if ((c)->serialize)                                                    \
            pthread_mutex_lock(&(c)->serial_lock);                             \
    } while (0)
#define UNLOCK(c)                                                              \
    do {                                                                       \
        if ((c)->serialize)                                                    \
            pthread_mutex_unlock(&(c)->serial_lock);                           \
    } while (0)

static llmc_status check_key(llmc_cache *c, const char *key, size_t klen)
{
    if (!key || klen == 0)
        return fail(c, LLMC_EINVAL, "empty key");
    if (klen > MAX_KEY_BYTES)
        return fail(c, LLMC_EINVAL, "key of %zu bytes is longer than the %d byte limit", klen,
                    MAX_KEY_BYTES);
    return LLMC_OK;
}

static llmc_status resolve_ttl(llmc_cache *c, int64_t ttl_ms, int64_t *out)
{
    if (ttl_ms == LLMC_TTL_DEFAULT) {
        *out = c->default_ttl_ms;
        return LLMC_OK;
    }
    if (ttl_ms < 0 || ttl_ms > MAX_TTL_SECONDS * 1000)
        return fail(c, LLMC_EINVAL, "ttl %lld ms is invalid (LLMC_TTL_DEFAULT, 0 for no expiry, "
                    "or 1..%lld ms)", (long long)ttl_ms, MAX_TTL_SECONDS * 1000);
    *out = ttl_ms;
    return LLMC_OK;
}

llmc_status llmc__cache_get_backend(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                                    llmc_err *e)
{
    uint64_t t0 = llmc_mono_ns();
    LOCK(c);
    llmc_status st = c->ops->get(c->ctx, key, klen, out, e);
    UNLOCK(c);
    record_get(c, llmc_mono_ns() - t0);
    return st;
}

/* Get without hit/miss accounting (entry calls count themselves). */
llmc_status llmc__cache_get_raw(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                                llmc_err *e)
{
    if (!c->tier)
        return llmc__cache_get_backend(c, key, klen, out, e);
    uint64_t epoch;
    if (llmc__tier_get(c, key, klen, out, &epoch) == LLMC_OK)
        return LLMC_OK;
    size_t len0 = out->len;
    llmc_status st = llmc__cache_get_backend(c, key, klen, out, e);
    if (st == LLMC_OK)
        llmc__tier_fill_raw(c, key, klen, out->data + len0, out->len - len0, epoch);
    return st;
}

llmc_status llmc_cache_get(llmc_cache *c, const char *key, size_t klen, llmc_buf *out)
{
    if (!c || !out)
        return LLMC_EINVAL;
    llmc_status st = check_key(c, key, klen);
    if (st != LLMC_OK)
        return st;
    llmc_err e;
    e.status = LLMC_OK;
    e.msg[0] = 0;
    e.native = 0;
    st = llmc__cache_get_raw(c, key, klen, out, &e);
    llmc_stat_slot *s = llmc__stat_slot(c);
    if (st == LLMC_OK) {
        ADD(s->hits, 1);
        ADD(s->bytes_read, out->len);
    } else if (st == LLMC_MISS) {
        ADD(s->misses, 1);
    } else {
        return backend_fail(c, st, &e, "get");
    }
    return st;
}

llmc_status llmc__cache_set_raw(llmc_cache *c, const char *key, size_t klen, const void *val,
                                size_t vlen, int64_t ttl_ms, llmc_err *e)
{
    if (c->max_item_bytes && vlen > c->max_item_bytes)
        return llmc_err_set(e, LLMC_ETOOBIG, 0,
                            "value of %zu bytes exceeds max_item_bytes (%llu)", vlen,
                            (unsigned long long)c->max_item_bytes);
    uint64_t t0 = llmc_mono_ns();
    LOCK(c);
    llmc_status st = c->ops->set(c->ctx, key, klen, val, vlen, ttl_ms, e);
    UNLOCK(c);
    record_set(c, llmc_mono_ns() - t0);
    if (c->tier)
        llmc__tier_written(c, key, klen, val, vlen, ttl_ms, st == LLMC_OK);
    if (st == LLMC_OK) {
        llmc_stat_slot *s = llmc__stat_slot(c);
        ADD(s->sets, 1);
        ADD(s->bytes_written, vlen);
    }
    return st;
}

llmc_status llmc_cache_set(llmc_cache *c, const char *key, size_t klen, const void *val,
                           size_t vlen, int64_t ttl_ms)
{
    if (!c)
        return LLMC_EINVAL;
    llmc_status st = check_key(c, key, klen);
    if (st != LLMC_OK)
        return st;
    if (!val && vlen)
        return fail(c, LLMC_EINVAL, "value is NULL with length %zu", vlen);
    int64_t ttl = 0;
    if ((st = resolve_ttl(c, ttl_ms, &ttl)) != LLMC_OK)
        return st;
    llmc_err e;
    llmc_err_clear(&e);
    st = llmc__cache_set_raw(c, key, klen, val ? val : "", vlen, ttl, &e);
    if (st == LLMC_ETOOBIG)
        return llmc__cache_fail(c, &e);
    if (st != LLMC_OK)
        return backend_fail(c, st, &e, "set");
    return st;
}

llmc_status llmc_cache_del(llmc_cache *c, const char *key, size_t klen)
{
    if (!c)
        return LLMC_EINVAL;
    llmc_status st = check_key(c, key, klen);
    if (st != LLMC_OK)
        return st;
    llmc_err e;
    llmc_err_clear(&e);
    LOCK(c);
    st = c->ops->del(c->ctx, key, klen, &e);
    UNLOCK(c);
    if (c->tier)
        llmc__tier_deleted(c, key, klen, st == LLMC_OK || st == LLMC_MISS);
    if (st == LLMC_OK)
        ADD(llmc__stat_slot(c)->deletes, 1);
    else if (st != LLMC_MISS)
        return backend_fail(c, st, &e, "del");
    return st;
}

llmc_status llmc_cache_exists(llmc_cache *c, const char *key, size_t klen)
{
    if (!c)
        return LLMC_EINVAL;
    llmc_status st = check_key(c, key, klen);
    if (st != LLMC_OK)
        return st;
    llmc_err e;
    llmc_err_clear(&e);
    if (BACKEND_HAS(c, exists)) {
        LOCK(c);
        st = c->ops->exists(c->ctx, key, klen, &e);
        UNLOCK(c);
    } else {
        llmc_buf tmp = LLMC_BUF_INIT;
        LOCK(c);
        st = c->ops->get(c->ctx, key, klen, &tmp, &e);
        UNLOCK(c);
        llmc_buf_free(&tmp);
    }
    if (st != LLMC_OK && st != LLMC_MISS)
        return backend_fail(c, st, &e, "exists");
    return st;
}

llmc_status llmc_cache_ttl(llmc_cache *c, const char *key, size_t klen, int64_t *ttl_ms)
{
    if (!c || !ttl_ms)
        return LLMC_EINVAL;
    llmc_status st = check_key(c, key, klen);
    if (st != LLMC_OK)
        return st;
    if (!BACKEND_HAS(c, ttl))
        return fail(c, LLMC_ENOTSUP, "cache backend %s cannot report TTLs", c->name);
    llmc_err e;
    llmc_err_clear(&e);
    LOCK(c);
    st = c->ops->ttl(c->ctx, key, klen, ttl_ms, &e);
    UNLOCK(c);
    if (st != LLMC_OK && st != LLMC_MISS)
        return backend_fail(c, st, &e, "ttl");
    return st;
}

llmc_status llmc__cache_mget_backend(llmc_cache *c, size_t n, const char *const *keys,
                                     const size_t *klens, llmc_buf *const *vals,
                                     llmc_status *sts, int stop_on_failure, llmc_err *e)
{
    if (n == 0)
        return LLMC_OK;
    if (BACKEND_HAS(c, mget)) {
        /* The backend's table takes an array of buffers: the caller's
         * (wherever they live) are moved in and back out. */
        llmc_buf one, *tmp = n == 1 ? &one : malloc(n * sizeof *tmp);
        if (!tmp) {
            for (size_t i = 0; i < n; i++)
                sts[i] = LLMC_ENOMEM;
            return llmc_err_set(e, LLMC_ENOMEM, 0, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            tmp[i] = *vals[i];
        uint64_t t0 = llmc_mono_ns();
        LOCK(c);
        llmc_status st = c->ops->mget(c->ctx, n, keys, klens, tmp, sts, e);
        UNLOCK(c);
        record_get(c, llmc_mono_ns() - t0);
        for (size_t i = 0; i < n; i++)
            *vals[i] = tmp[i];
        if (tmp != &one)
            free(tmp);
        if (st != LLMC_OK)
            for (size_t i = 0; i < n; i++)
                sts[i] = st;
        return st;
    }
    /* Emulated: one get per key. The first failure's message is kept. */
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        llmc_err ei;
        llmc_err_clear(&ei);
        sts[i] = llmc__cache_get_backend(c, keys[i], klens[i], vals[i], &ei);
        if (sts[i] == LLMC_OK || sts[i] == LLMC_MISS)
            continue;
        if (!failed++)
            *e = ei;
        if (stop_on_failure && llmc__status_is_backend_failure(sts[i])) {
            for (size_t j = i + 1; j < n; j++)
                sts[j] = sts[i];
            return sts[i];
        }
    }
    return LLMC_OK;
}

llmc_status llmc_cache_mget(llmc_cache *c, size_t n, const char *const *keys,
                            const size_t *klens, llmc_buf *vals, llmc_status *sts)
{
    if (!c || (n && (!keys || !klens || !vals || !sts)))
        return LLMC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        llmc_status st = check_key(c, keys[i], klens[i]);
        if (st != LLMC_OK)
            return st;
    }
    if (n == 0)
        return LLMC_OK;
    /* What the local tier holds is answered from it; the backend is asked
     * once for the rest (the keys in need[0..m), packed). */
    struct {
        const char **keys;
        size_t *klens, *idx;
        llmc_buf **vals;
        llmc_status *sts;
    } need;
    void *block = malloc(n * (sizeof *need.keys + 2 * sizeof *need.klens + sizeof *need.vals +
                              sizeof *need.sts));
    if (!block)
        return fail(c, LLMC_ENOMEM, "out of memory");
    need.keys = block;
    need.vals = (llmc_buf **)(need.keys + n);
    need.klens = (size_t *)(need.vals + n);
    need.idx = need.klens + n;
    need.sts = (llmc_status *)(need.idx + n);
    uint64_t epoch = llmc__tier_epoch(c);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->tier && llmc__tier_get(c, keys[i], klens[i], &vals[i], NULL) == LLMC_OK) {
            sts[i] = LLMC_OK;
            continue;
        }
        need.keys[m] = keys[i];
        need.klens[m] = klens[i];
        need.vals[m] = &vals[i];
        need.idx[m++] = i;
    }
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc__cache_mget_backend(c, m, need.keys, need.klens, need.vals, need.sts,
                                              0, &e);
    for (size_t j = 0; j < m; j++)
        sts[need.idx[j]] = need.sts[j];
    if (st != LLMC_OK) {
        free(block);
        return backend_fail(c, st, &e, "mget");
    }
    int native = BACKEND_HAS(c, mget);
    llmc_stat_slot *s = llmc__stat_slot(c);
    for (size_t i = 0; i < n; i++) {
        if (sts[i] == LLMC_OK) {
            ADD(s->hits, 1);
            ADD(s->bytes_read, vals[i].len);
        } else if (sts[i] == LLMC_MISS) {
            ADD(s->misses, 1);
        } else if (!native) {
            /* Emulated: each get failed on its own; the first says why. */
            if (st == LLMC_OK)
                st = backend_fail(c, sts[i], &e, "get");
        } else {
            ADD(s->errors, 1);
            if (st == LLMC_OK) {
                llmc_err_set(&e, sts[i], 0, "%s mget: key %zu: %s", c->name, i,
                             llmc_strerror(sts[i]));
                st = llmc__cache_fail(c, &e);
            }
        }
    }
    /* Keep copies of what the backend returned (after the epoch check,
     * as a single get does). */
    for (size_t j = 0; c->tier && j < m; j++)
        if (need.sts[j] == LLMC_OK)
            llmc__tier_fill_raw(c, need.keys[j], need.klens[j], need.vals[j]->data,
                                need.vals[j]->len, epoch);
    free(block);
    return st;
}

llmc_status llmc_cache_mset(llmc_cache *c, size_t n, const llmc_kv *items)
{
    if (!c || (n && !items))
        return LLMC_EINVAL;
    if (n == 0)
        return LLMC_OK;
    llmc_kv *res = malloc(n * sizeof *res);
    if (!res)
        return fail(c, LLMC_ENOMEM, "out of memory");
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < n && st == LLMC_OK; i++) {
        res[i] = items[i];
        if ((st = check_key(c, items[i].key, items[i].klen)) != LLMC_OK)
            break;
        if (!items[i].val && items[i].vlen) {
            st = fail(c, LLMC_EINVAL, "mset item %zu: value is NULL", i);
            break;
        }
        if (!res[i].val)
            res[i].val = "";
        if (c->max_item_bytes && items[i].vlen > c->max_item_bytes) {
            st = fail(c, LLMC_ETOOBIG,
                      "mset item %zu: value of %zu bytes exceeds max_item_bytes (%llu); "
                      "nothing was written", i, items[i].vlen,
                      (unsigned long long)c->max_item_bytes);
            break;
        }
        st = resolve_ttl(c, items[i].ttl_ms, &res[i].ttl_ms);
    }
    if (st != LLMC_OK) {
        free(res);
        return st;
    }
    llmc_err e;
    llmc_err_clear(&e);
    if (BACKEND_HAS(c, mset)) {
        uint64_t t0 = llmc_mono_ns();
        LOCK(c);
        st = c->ops->mset(c->ctx, n, res, &e);
        UNLOCK(c);
        record_set(c, llmc_mono_ns() - t0);
        for (size_t i = 0; c->tier && i < n; i++)
            llmc__tier_written(c, res[i].key, res[i].klen, res[i].val, res[i].vlen,
                               res[i].ttl_ms, st == LLMC_OK);
        if (st == LLMC_OK) {
            llmc_stat_slot *s = llmc__stat_slot(c);
            ADD(s->sets, n);
            for (size_t i = 0; i < n; i++)
                ADD(s->bytes_written, res[i].vlen);
        } else if (st == LLMC_ETOOBIG) {
            llmc__cache_fail(c, &e);
        } else {
            backend_fail(c, st, &e, "mset");
        }
    } else {
        for (size_t i = 0; i < n && st == LLMC_OK; i++) {
            llmc_err_clear(&e);
            st = llmc__cache_set_raw(c, res[i].key, res[i].klen, res[i].val, res[i].vlen,
                                     res[i].ttl_ms, &e);
            if (st == LLMC_ETOOBIG)
                llmc__cache_fail(c, &e);
            else if (st != LLMC_OK)
                backend_fail(c, st, &e, "set");
        }
    }
    free(res);
    return st;
}

/* Appends each key the backend's scan gives to a key list. */
typedef struct collect {
    llmc_key_list *l;
    int oom;
} collect;

static int collect_cb(void *ud, const char *key, size_t klen)
{
    collect *col = ud;
    llmc_key_list *l = col->l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        size_t *nl = realloc(l->lens, cap * sizeof *nl);
        if (!nl) {
            col->oom = 1;
            return 1;
        }
        l->lens = nl;
        l->cap = cap;
    }
    if (llmc_buf_append(&l->bytes, key, klen) != LLMC_OK) {
        col->oom = 1;
        return 1;
    }
    l->lens[l->n++] = klen;
    return 0;
}

void llmc_key_list_free(llmc_key_list *l)
{
    if (!l)
        return;
    llmc_buf_free(&l->bytes);
    free(l->lens);
    memset(l, 0, sizeof *l);
}

/* The backend's scan into a list, under the handle's lock (LLMC_OK, or
 * the failure in *e). */
static llmc_status list_keys(llmc_cache *c, const char *prefix, size_t plen, llmc_key_list *l,
                             llmc_err *e)
{
    collect col = {l, 0};
    LOCK(c);
    llmc_status st = c->ops->scan(c->ctx, plen ? prefix : "", plen, collect_cb, &col, e);
    UNLOCK(c);
    if (st == LLMC_OK && col.oom)
        st = llmc_err_set(e, LLMC_ENOMEM, 0, "out of memory listing keys");
    return st;
}
static llmc_status flush_prefix(llmc_cache *c, const char *ns, int native_ok,
                                uint64_t *deleted);

llmc_status llmc_cache_flush(llmc_cache *c, const char *ns, uint64_t *deleted)
{
    if (!c)
        return LLMC_EINVAL;
    if (deleted)
        *deleted = 0;
    if (!ns)
        ns = c->namespace_;
    if (!ns)
        return fail(c, LLMC_EINVAL, "flush needs a namespace (none given and the cache has "
                    "no namespace option); llmc_cache_flush_all deletes everything");
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc_namespace_check(ns, NULL, &e);
    if (st != LLMC_OK)
        return llmc__cache_fail(c, &e);
    return flush_prefix(c, ns, 1, deleted);
}

llmc_status llmc_cache_flush_in(llmc_cache *c, const char *tenant, const char *ns,
                                uint64_t *deleted)
{
    if (!c)
        return LLMC_EINVAL;
    if (!tenant)
        return llmc_cache_flush(c, ns, deleted);
    if (deleted)
        *deleted = 0;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc_namespace_check(tenant, "tenant", &e);
    if (st == LLMC_OK && ns)
        st = llmc_namespace_check(ns, NULL, &e);
    if (st != LLMC_OK)
        return llmc__cache_fail(c, &e);
    if (!ns)
        return flush_prefix(c, tenant, 1, deleted);
    /* Both names are valid (no ':', no glob characters): the joined
     * prefix matches exactly the keys under "tenant:ns:". A backend's own
     * flush takes a key's namespace to end at its first ':' (memcached
     * keeps a generation per namespace, the file plugin a directory), so
     * a sub-namespace is flushed by listing and deleting its keys. */
    char path[2 * LLMC_NAMESPACE_MAX + 2];
    snprintf(path, sizeof path, "%s:%s", tenant, ns);
    return flush_prefix(c, path, 0, deleted);
}

/* Delete the keys under "ns:" (ns already checked); native_ok 0: only
 * by scan + delete. */
static llmc_status flush_prefix(llmc_cache *c, const char *ns, int native_ok,
                                uint64_t *deleted)
{
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st;
    uint64_t n = 0;
    if (BACKEND_HAS(c, flush) && native_ok) {
        LOCK(c);
        st = c->ops->flush(c->ctx, ns, strlen(ns), &n, &e);
        UNLOCK(c);
    } else if (BACKEND_HAS(c, scan)) {
        /* Emulate: list the namespace's keys, then delete them. */
        llmc_key_list col = LLMC_KEY_LIST_INIT;
        char prefix[2 * LLMC_NAMESPACE_MAX + 3];
        int pl = snprintf(prefix, sizeof prefix, "%s:", ns);
        st = list_keys(c, prefix, (size_t)pl, &col, &e);
        size_t off = 0;
        for (size_t i = 0; st == LLMC_OK && i < col.n; i++) {
            LOCK(c);
            llmc_status d = c->ops->del(c->ctx, col.bytes.data + off, col.lens[i], &e);
            UNLOCK(c);
            off += col.lens[i];
            if (d == LLMC_OK)
                n++;
            else if (d != LLMC_MISS)
                st = d;
        }
        llmc_key_list_free(&col);
    } else {
        return fail(c, LLMC_ENOTSUP, "cache backend %s cannot flush a namespace", c->name);
    }
    if (c->tier)
        llmc__tier_flushed(c, ns, st == LLMC_OK);
    if (st != LLMC_OK)
        return backend_fail(c, st, &e, "flush");
    if (deleted)
        *deleted = n;
    return LLMC_OK;
}

llmc_status llmc_cache_flush_all(llmc_cache *c)
{
    if (!c)
        return LLMC_EINVAL;
    if (!BACKEND_HAS(c, flush_all))
        return fail(c, LLMC_ENOTSUP, "cache backend %s cannot flush everything", c->name);
    llmc_err e;
    llmc_err_clear(&e);
    LOCK(c);
    llmc_status st = c->ops->flush_all(c->ctx, &e);
    UNLOCK(c);
    if (c->tier)
        llmc__tier_flushed(c, NULL, st == LLMC_OK);
    if (st != LLMC_OK)
        return backend_fail(c, st, &e, "flush_all");
    return st;
}

llmc_status llmc_cache_ping(llmc_cache *c)
{
    if (!c)
        return LLMC_EINVAL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = LLMC_OK;
    if (BACKEND_HAS(c, ping)) {
        LOCK(c);
        st = c->ops->ping(c->ctx, &e);
        UNLOCK(c);
        if (st != LLMC_OK)
            return backend_fail(c, st, &e, "ping");
        /* The backend answers: an open circuit need not wait for its
         * cool-down (a proxy's health checks bring hits back at once). */
        llmc__breaker_record(c, LLMC_OK);
    }
    if (atomic_load(&c->storage_corrupt))
        return fail(c, LLMC_ECORRUPT,
                    "cache %s answers, but its storage is damaged (%llu corrupt reads since "
                    "open); check and repair it (llmcache cache check --repair)",
                    c->url_redacted, (unsigned long long)atomic_load(&c->corrupt_reads));
    return st;
}

llmc_status llmc_cache_check(llmc_cache *c, unsigned flags, llmc_check_result *out,
                             size_t size)
{
    if (!c || !out || size == 0)
        return LLMC_EINVAL;
    if (flags & ~(unsigned)LLMC_CHECK_REPAIR)
        return fail(c, LLMC_EINVAL, "llmc_cache_check: unknown flags 0x%x", flags);
    llmc_check_result r;
    memset(&r, 0, sizeof r);
    memset(out, 0, size);
    if (!BACKEND_HAS(c, check))
        return fail(c, LLMC_ENOTSUP,
                    "cache backend %s has no storage check (a server checks its own files)",
                    c->name);
    llmc_err e;
    llmc_err_clear(&e);
    LOCK(c);
    llmc_status st = c->ops->check(c->ctx, flags, &r, &e);
    UNLOCK(c);
    memcpy(out, &r, size < sizeof r ? size : sizeof r);
    if (st == LLMC_OK) {
        if (atomic_exchange(&c->storage_corrupt, 0) != 0)
            llmc__log("warn", "cache %s: storage %s", c->url_redacted,
                      r.repaired ? "repaired" : "checked: no damage found");
        return LLMC_OK;
    }
    if (st == LLMC_ECORRUPT) {
        atomic_store(&c->storage_corrupt, 1);
        if (!e.msg[0])
            llmc_err_set(&e, st, 0, "cache %s: storage is damaged: %s", c->name, r.detail);
        return llmc__cache_fail(c, &e);
    }
    return backend_fail(c, st, &e, "check");
}

llmc_status llmc_cache_list_keys(llmc_cache *c, const char *prefix, size_t plen,
                                 llmc_key_list *out)
{
    if (!c || !out || (plen && !prefix))
        return LLMC_EINVAL;
    llmc_key_list init = LLMC_KEY_LIST_INIT;
    *out = init;
    if (!BACKEND_HAS(c, scan))
        return fail(c, LLMC_ENOTSUP, "cache backend %s cannot enumerate keys", c->name);
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = list_keys(c, prefix, plen, out, &e);
    if (st != LLMC_OK) {
        llmc_key_list_free(out);
        return backend_fail(c, st, &e, "scan");
    }
    return LLMC_OK;
}

llmc_status llmc_cache_scan(llmc_cache *c, const char *prefix, size_t plen, llmc_scan_cb cb,
                            void *ud)
{
    if (!c || !cb || (plen && !prefix))
        return LLMC_EINVAL;
    if (!BACKEND_HAS(c, scan))
        return fail(c, LLMC_ENOTSUP, "cache backend %s cannot enumerate keys", c->name);
    llmc_err e;
    llmc_err_clear(&e);
    /* Collect first so the callback runs without backend locks held and
     * may call back into the cache. */
    llmc_key_list col = LLMC_KEY_LIST_INIT;
    llmc_status st = list_keys(c, prefix, plen, &col, &e);
    size_t off = 0;
    for (size_t i = 0; st == LLMC_OK && i < col.n; i++) {
        if (cb(ud, col.bytes.data + off, col.lens[i]))
            break;
        off += col.lens[i];
    }
    llmc_key_list_free(&col);
    if (st != LLMC_OK)
        return backend_fail(c, st, &e, "scan");
    return st;
}
