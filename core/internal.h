/* llmcache internals shared across core files. Not installed. */
#ifndef LLMC_INTERNAL_H
#define LLMC_INTERNAL_H

#include "llmc_config.h"
#include "llmcache/llmcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define LLMC_UNUSED(x) ((void)(x))
#define LLMC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* a + b, saturated at INT64_MIN / INT64_MAX: token counts come from
 * providers and cached entries and may be anything. */
static inline int64_t llmc__sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* ---- strings ---- */
int llmc__strcaseeq(const char *a, const char *b);
char *llmc__strdup(const char *s);
struct llmc_entry;
/* entry.c: HMAC-SHA256 of an entry under `secret` for `key` into out;
 * 0 on success. */
int llmc__entry_mac(const unsigned char *secret, size_t slen, const char *key, size_t klen,
                    const struct llmc_entry *e, uint8_t out[32]);
char *llmc__strndup(const char *s, size_t n);

/* Per-thread scratch buffers, freed at thread exit. */
enum { LLMC_TLS_KEYMAT, LLMC_TLS_ENCODE, LLMC_TLS_COUNT_ };
llmc_buf *llmc__tls_buf(int which);

/* ---- registry ---- */
/* Called by the registry when a name is unknown; implemented by the plugin
 * loader. Returns 1 if something was loaded (the caller looks again). */
int llmc__plugin_autoload(llmc_kind kind, const char *name);
/* Caches take a reference on the plugin that provides a table they use
 * (backend, serializer, key strategy) so it cannot be unloaded under
 * them. No-ops for tables that do not come from a plugin; NULL ok. */
void llmc__plugin_acquire(const llmc_component *t);
void llmc__plugin_release(const llmc_component *t);
/* Remove every table registered with this origin (plugin unload). */
size_t llmc__registry_remove_origin(const char *origin);
/* The built-in tables and the backends left out of the build:
 * builtins.h. */

/* Entry calls (entry.c) reach the backend through these: get and set
 * with the dispatcher's checks, timing and breaker, but without hit/miss
 * accounting, which the entry layer does itself. */
llmc_status llmc__cache_get_raw(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                                llmc_err *e);
/* As llmc__cache_get_raw, straight to the backend: no local tier. */
llmc_status llmc__cache_get_backend(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                                    llmc_err *e);
/* The backend's answer to a batch of n keys (no local tier): one mget
 * when the backend has one, else one get per key, timed and counted as
 * backend reads. vals[i] points at key i's buffer. Returns non-OK (*e
 * says why, every sts[i] holds it) when the whole batch failed; else
 * sts[i] per key (LLMC_OK, LLMC_MISS or an error, the first one's message
 * in *e). stop_on_failure: emulated, the keys after one whose get failed
 * against the backend (llmc__status_is_backend_failure) are not asked,
 * and the call returns that failure: one timeout for the batch. */
llmc_status llmc__cache_mget_backend(llmc_cache *c, size_t n, const char *const *keys,
                                     const size_t *klens, llmc_buf *const *vals,
                                     llmc_status *sts, int stop_on_failure, llmc_err *e);
llmc_status llmc__cache_set_raw(llmc_cache *c, const char *key, size_t klen, const void *val,
                                size_t vlen, int64_t ttl_ms, llmc_err *e);

/* ---- price table of a client (core/savings.c) ---- */
/* Loaded at most once, on first use or at client creation when the
 * client was given a "prices" option; a load error is kept and reported
 * to every caller. */
typedef struct llmc__prices_slot {
    pthread_mutex_t mu;
    int tried;
    llmc_status st;
    llmc_prices *p;
    char *override; /* the "prices" option, or NULL */
    char msg[LLMC_ERRMSG_MAX];
} llmc__prices_slot;
llmc_status llmc__prices_slot_init(llmc__prices_slot *s, const char *override, int now,
                                   llmc_err *err);
const llmc_prices *llmc__prices_slot_get(llmc__prices_slot *s, llmc_err *err);
void llmc__prices_slot_free(llmc__prices_slot *s);

/* ---- URL parsing ---- */
typedef struct llmc_url {
    char *scheme;      /* lower-cased */
    char *user;        /* decoded or NULL */
    char *password;    /* decoded or NULL */
    char *location;    /* decoded, without userinfo */
    char *path;        /* decoded, "" if none */
    llmc_host *hosts;
    size_t n_hosts;
    char *redacted;    /* whole URL with password -> *** */
    llmc_status host_status; /* non-OK: the location is not a host list */
    char *host_error;        /* ...and why (for backends that need hosts) */
    llmc_options *query; /* decoded query options */
} llmc_url;

llmc_status llmc__url_parse(const char *url, llmc_url *out, llmc_err *err);
void llmc__url_free(llmc_url *u);
/* Percent-decode s[0..n) into a new string; -1 on bad escapes. */
char *llmc__pct_decode(const char *s, size_t n, int plus_is_space, size_t *outlen);

/* ---- the cache handle ---- */
#define LLMC_STAT_SLOTS 16
#define LLMC_HIST_BUCKETS 160

typedef struct llmc_stat_slot {
    _Atomic uint64_t hits, misses, sets, deletes, errors, corrupt, mac_failures;
    _Atomic uint64_t bytes_read, bytes_written;
    _Atomic uint64_t get_count, get_ns_total, get_ns_max;
    _Atomic uint64_t set_count, set_ns_total, set_ns_max;
    _Atomic uint64_t get_hist[LLMC_HIST_BUCKETS];
    _Atomic uint64_t set_hist[LLMC_HIST_BUCKETS];
    _Atomic uint64_t l1_hits, l1_misses, l1_fills; /* the local tier (tier.c) */
} __attribute__((aligned(64))) llmc_stat_slot;

typedef struct llmc__tier llmc__tier;
typedef struct llmc__lease_keeper llmc__lease_keeper;
typedef struct llmc__lease_hold llmc__lease_hold;

struct llmc_cache {
    const llmc_backend_ops *ops;
    void *ctx;
    uint32_t caps;
    pthread_mutex_t serial_lock; /* used when the backend isn't thread-safe */
    bool serialize;
    char *url_redacted;
    char *namespace_;
    char *name;
    int64_t default_ttl_ms;
    /* Default stale windows (options stale_if_error,
     * stale_while_revalidate), ms; 0 = off. */
    int64_t stale_if_error_ms;
    int64_t stale_while_revalidate_ms;
    uint64_t max_item_bytes;
    int64_t timeout_ms;
    llmc_cache_mode mode;
    int scope_by_user;
    const llmc_serializer_ops *ser;
    const llmc_key_strategy_ops *keys;
    llmc_options *opts;
    /* entry_secret (or LLMCACHE_ENTRY_SECRET): HMAC key of stored entries,
     * NULL when unset. Kept out of opts so no option listing shows it. */
    unsigned char *entry_secret;
    size_t entry_secret_len;

    /* circuit breaker (used by soft entry calls) */
    int64_t breaker_threshold;   /* consecutive failures; 0 = disabled */
    int64_t breaker_cooldown_ms;
    _Atomic int64_t consecutive_failures;
    _Atomic int64_t breaker_open_until_ns; /* 0 = closed */
    _Atomic int breaker_probe;            /* a probe is in flight */
    _Atomic uint64_t breaker_trips, breaker_skips;
    _Atomic int breaker_logged_state;
    /* Bumped when a failing backend answers again: a thread whose last
     * soft call failed stops skipping stores once it changes. */
    _Atomic uint64_t recover_gen;
    uint64_t uid;                      /* unique per handle in this process */
    _Atomic uint64_t stores_skipped;   /* soft stores not attempted (see entry.c) */
    /* Damaged storage reported by the backend itself (LLMC_ECORRUPT from
     * a backend call, e.g. SQLite's SQLITE_CORRUPT). */
    _Atomic uint64_t corrupt_reads;
    _Atomic int storage_corrupt;       /* 1 from the first report until a repair */
    /* The local tier in front of the backend (l1_* options), or NULL. */
    llmc__tier *tier;

    /* Coalescing across processes (core/lease.c). */
    int coalesce;                /* leases in use */
    int64_t lease_ms, coalesce_timeout_ms, coalesce_poll_ms;
    llmc__lease_keeper *keeper;  /* renews held leases (core/lease_keeper.c) */

    /* last error */
    pthread_mutex_t err_lock;
    llmc_err last_err;

    llmc_stat_slot slots[LLMC_STAT_SLOTS];
};

/* Leases (core/lease.c): read the coalescing options at open (after
 * ops and opts are set); the fail-open forms the prepared call uses:
 * take -> LLMC_OK (token filled), LLMC_EEXIST (another holder), anything
 * else: go on without (not coalescing, breaker open, backend failed). */
llmc_status llmc__lease_configure(llmc_cache *c, llmc_err *err);
llmc_status llmc__lease_take_soft(llmc_cache *c, const char *key, size_t klen, char *token);
void llmc__lease_drop_soft(llmc_cache *c, const char *key, size_t klen, const char *token);
/* 1 when the backend can renew leases (lease_renew). */
int llmc__lease_renewable(const llmc_cache *c);
/* One renewal of the lease on entry `key` to lease_ms, fail open:
 * LLMC_OK renewed, LLMC_MISS gone or another holder's, LLMC_ENOTSUP not
 * tried (no renew op, breaker open), else the backend's error (counted
 * by the breaker, recorded as the handle's last error). */
llmc_status llmc__lease_renew_soft(llmc_cache *c, const char *key, size_t klen,
                                   const char *token);

/* The lease keeper (core/lease_keeper.c): renews every lease a call keeps
 * every lease_ms / 3 on a thread of its own until the call lets go.
 * keeper_open (at open, after llmc__lease_configure): c->keeper, or NULL
 * when the cache does not coalesce or cannot renew. keep: copies key and
 * token; NULL when there is no keeper (the lease then lasts lease_ms).
 * let_go (NULL ok): after it returns the keeper starts no renewal of h;
 * call it before dropping the lease. keeper_close: stops and joins the
 * thread (before the backend closes). Thread-safe but for open/close. */
llmc_status llmc__lease_keeper_open(llmc_cache *c, llmc_err *err);
llmc__lease_hold *llmc__lease_keep(llmc_cache *c, const char *key, size_t klen,
                                   const char *token);
void llmc__lease_let_go(llmc_cache *c, llmc__lease_hold *h);
void llmc__lease_keeper_close(llmc_cache *c);
/* leases_kept, lease_renewals, lease_renewals_lost, lease_renewals_failed
 * (llmc_cache_stats_foreach), and their reset. */
void llmc__lease_keeper_stats(llmc_cache *c, llmc_stat_cb cb, void *ud);
/* The keeper's counters into the lease_* fields of s. */
void llmc__lease_keeper_fill(llmc_cache *c, llmc_stats *s);
void llmc__lease_keeper_stats_reset(llmc_cache *c);

/* Record the error of a failed call on the handle; returns e->status. */
llmc_status llmc__cache_fail(llmc_cache *c, const llmc_err *e);
/* Circuit breaker. allow(): may this soft call reach the backend?
 * record(): outcome of a call that did. */
bool llmc__breaker_allow(llmc_cache *c);
void llmc__breaker_record(llmc_cache *c, llmc_status st);
bool llmc__status_is_backend_failure(llmc_status st);
/* A backend call answered LLMC_ECORRUPT (its storage is damaged): count
 * it and log the first report (once per transition). */
void llmc__storage_corrupt(llmc_cache *c, const llmc_err *e);
/* Per-thread memory of the last soft call on a handle: failed() marks
 * that this thread's last soft call on c reached the backend and failed,
 * ok() clears it, stalled() says whether it is still marked and the
 * backend has not answered anyone since. */
void llmc__soft_failed(llmc_cache *c);
void llmc__soft_ok(llmc_cache *c);
bool llmc__soft_stalled(llmc_cache *c);
/* Count a soft store not attempted because its request's read failed. */
void llmc__store_skipped(llmc_cache *c);
/* As llmc_cache_put_entry_ex; *stored (may be NULL) is 1 only when the
 * entry was really written. */
llmc_status llmc__put_entry(llmc_cache *c, const char *key, size_t klen, llmc_call_type call,
                            const char *body, size_t blen, int64_t ttl_ms, int64_t upstream_ms,
                            unsigned flags, int *stored);
/* As llmc__put_entry, keeping the entry stale_ms past its TTL (-1: the
 * cache's window, llmc__cache_stale_window). */
llmc_status llmc__put_entry_kept(llmc_cache *c, const char *key, size_t klen,
                                 llmc_call_type call, const char *body, size_t blen,
                                 int64_t ttl_ms, int64_t stale_ms, int64_t upstream_ms,
                                 unsigned flags, int *stored);
/* The larger of the cache's two stale windows, ms (0 for NULL). */
int64_t llmc__cache_stale_window(const llmc_cache *c);
/* Bound of TTL plus stale window, so the sum never overflows. */
#define LLMC__MAX_KEEP_MS (INT64_MAX / 4)
llmc_stat_slot *llmc__stat_slot(llmc_cache *c);

/* Logging: one line to stderr when LLMCACHE_LOG is set (or always for
 * warnings); never contains secrets. */
void llmc__log(const char *level, const char *fmt, ...) LLMC_PRINTF(2, 3);

#endif
