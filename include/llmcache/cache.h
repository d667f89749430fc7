/* llmcache: the cache handle and raw key/value operations.
 *
 * A cache is opened from a URL (`redis://...`, `sqlite:///path.db`,
 * `local://?max_entries=1000`) or from a type string plus options. The
 * operations here work on raw keys and values; they return the real
 * status (a down backend is an error here, unlike in the completion path,
 * which fails open).
 *
 * Thread safety: one llmc_cache may be shared by any number of threads
 * for every call except llmc_cache_close. Backends that are not
 * thread-safe themselves are serialised by the core.
 *
 * Errors: every call returns an llmc_status. LLMC_MISS is not an error.
 * On an error, llmc_cache_errmsg() tells what went wrong. */
#ifndef LLMCACHE_CACHE_H
#define LLMCACHE_CACHE_H

#include "common.h"
#include "options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct llmc_cache llmc_cache;

/* TTL values (milliseconds) for set calls. LLMC_TTL_DEFAULT uses the
 * cache's default TTL (option `ttl`, seconds); LLMC_TTL_NEVER stores
 * without expiry. Any positive value is a TTL in milliseconds. */
#define LLMC_TTL_DEFAULT (-1)
#define LLMC_TTL_NEVER 0
/* The longest TTL or maximum age accepted anywhere, in seconds (about
 * 3170 years): larger values are rejected (or, through the setters that
 * cannot fail, capped), never wrapped around. */
#define LLMC_TTL_MAX_S INT64_C(100000000000)

/* Namespaces. A namespace name is 1..LLMC_NAMESPACE_MAX bytes without
 * ':' (it ends the namespace part of a key, and separates a tenant from
 * its sub-namespaces), without '=' (a tenant's preset keys are
 * "tenant:key=<preset>", which no computed key can then equal), without
 * glob characters (* ? [ ] \, which scoped
 * flushes match keys with), white space or control characters. Every
 * place that accepts a namespace (the `namespace` option, a request's
 * controls, tenants, the proxy's headers) checks it with
 * llmc_namespace_check. */
#define LLMC_NAMESPACE_MAX 128

/* LLMC_OK if `ns` is a valid namespace name; otherwise LLMC_EINVAL with a
 * message in err (may be NULL) that names `what` (NULL = "namespace"),
 * quotes the value and says which character is not allowed. Thread-safe,
 * no allocation. */
LLMC_API llmc_status llmc_namespace_check(const char *ns, const char *what, llmc_err *err);

/* Cache modes (option `mode`): with default_on every completion through a
 * client with this cache is cached unless told otherwise; with
 * default_off only requests that opt in (`use-cache`) are. */
typedef enum llmc_cache_mode {
    LLMC_MODE_DEFAULT_ON = 0,
    LLMC_MODE_DEFAULT_OFF = 1
} llmc_cache_mode;

/* Open a cache from a URL. `url` NULL or "" means $LLMCACHE_URL, and if
 * that is unset too, "local://". Options in `opts` (may be NULL) are
 * merged with the URL's query options; an option given both ways takes
 * the value from `opts`.
 *
 * Common options (every backend): namespace, ttl (seconds, 0 = never
 * expires), max_entries, max_bytes, max_item_bytes, timeout_ms,
 * serializer (json|binary|registered name), key_strategy (v1|registered
 * name), mode (default_on|default_off), breaker_threshold,
 * breaker_cooldown_ms, scope_by_user, stale_if_error and
 * stale_while_revalidate (seconds, default 0: how long past its TTL an
 * entry is kept and may answer, marked stale, when the provider fails or
 * while it is refreshed; see llmc_request_set_stale_if_error in
 * client.h). Backends accept their own on top.
 *
 * An unknown scheme, an unknown option, a malformed URL or an out of
 * range number gives LLMC_EINVAL (or LLMC_ENOTFOUND / LLMC_ENOTBUILT for
 * an unknown or not-built-in backend) and a message naming the offending
 * part in `err` (may be NULL). Passwords never appear in messages.
 *
 * On success *out is a new handle; close it with llmc_cache_close. */
LLMC_API llmc_status llmc_cache_open(const char *url, const llmc_options *opts,
                                     llmc_cache **out, llmc_err *err);

/* Open a cache by backend type name ("local", "redis", "memcached",
 * "sqlite", or a registered name) with options. Options that a URL would
 * carry in its authority are options here: for network backends `host`,
 * `port`, `user`, `password`, `db`; for sqlite `path`. */
LLMC_API llmc_status llmc_cache_open_type(const char *type, const llmc_options *opts,
                                          llmc_cache **out, llmc_err *err);

/* Close the handle and free everything it owns. NULL is accepted. No
 * other call may be running on the handle. */
LLMC_API void llmc_cache_close(llmc_cache *c);

/* The message of the last failed call made on this handle by any thread.
 * The returned pointer is a thread-local copy, valid until this thread's
 * next llmc_cache_errmsg call. Never NULL ("" if no error yet). */
LLMC_API const char *llmc_cache_errmsg(llmc_cache *c);
/* Status and native code (hiredis, memcached, SQLite, ...) of the last
 * failed call on this handle. */
LLMC_API llmc_status llmc_cache_errcode(llmc_cache *c);
LLMC_API long llmc_cache_native_errcode(llmc_cache *c);

/* Get the value stored at key[0..klen). On LLMC_OK `out` holds a copy
 * (the caller owns the buffer and frees it with llmc_buf_free; passing
 * the same buffer again reuses its memory). LLMC_MISS when absent or
 * expired. */
LLMC_API llmc_status llmc_cache_get(llmc_cache *c, const char *key, size_t klen,
                                    llmc_buf *out);

/* Store val[0..vlen) at key[0..klen), replacing any old value.
 * ttl_ms: LLMC_TTL_DEFAULT, LLMC_TTL_NEVER or milliseconds > 0.
 * LLMC_ETOOBIG if vlen exceeds max_item_bytes or the backend's limit;
 * nothing is written then. */
LLMC_API llmc_status llmc_cache_set(llmc_cache *c, const char *key, size_t klen,
                                    const void *val, size_t vlen, int64_t ttl_ms);

/* Delete a key. LLMC_OK if it existed, LLMC_MISS if not (backends that
 * cannot tell return LLMC_OK). */
LLMC_API llmc_status llmc_cache_del(llmc_cache *c, const char *key, size_t klen);

/* LLMC_OK if the key holds a live value, LLMC_MISS if not. */
LLMC_API llmc_status llmc_cache_exists(llmc_cache *c, const char *key, size_t klen);

/* Remaining time to live of a key in milliseconds: *ttl_ms = -1 when it
 * never expires. LLMC_MISS when absent; LLMC_ENOTSUP when the backend
 * cannot tell. */
LLMC_API llmc_status llmc_cache_ttl(llmc_cache *c, const char *key, size_t klen,
                                    int64_t *ttl_ms);

/* Batch get of n keys. vals[i] and sts[i] receive each key's value and
 * status (LLMC_OK or LLMC_MISS, or an error). The return value is LLMC_OK
 * if every key was looked up (hits and misses alike), else the first
 * error. vals[] are caller-owned buffers as in llmc_cache_get. Keys may
 * repeat.
 *
 * One backend call for the whole batch where the backend has a batch get
 * (Redis MGET, split per hash slot on a cluster; memcached multi-get);
 * one get per key otherwise (SQLite, plugins without mget). With a local
 * tier (l1_* options) each key is looked up there first, exactly as
 * llmc_cache_get does (counted in l1_hits and hits), only the keys it did
 * not hold go to the backend, and what the backend returns is kept when
 * llmc_cache_get would keep it (an entry envelope whose expiry is known).
 * Raw API: backend errors are returned, never turned into misses.
 * Thread-safe like the cache handle. */
LLMC_API llmc_status llmc_cache_mget(llmc_cache *c, size_t n, const char *const *keys,
                                     const size_t *klens, llmc_buf *vals,
                                     llmc_status *sts);

/* One item of a batch set. ttl_ms as in llmc_cache_set. */
typedef struct llmc_kv {
    const char *key;
    size_t klen;
    const void *val;
    size_t vlen;
    int64_t ttl_ms;
} llmc_kv;

/* Batch set. Items over max_item_bytes make the whole call fail with
 * LLMC_ETOOBIG before anything is written. */
LLMC_API llmc_status llmc_cache_mset(llmc_cache *c, size_t n, const llmc_kv *items);

/* Delete every key of namespace `ns` (keys that start with "ns:").
 * `ns` NULL means the cache's own namespace option; LLMC_EINVAL if
 * neither is set (use llmc_cache_flush_all to delete everything).
 * Other namespaces are untouched. *deleted (may be NULL) receives the
 * number of keys removed, where the backend can count them. */
LLMC_API llmc_status llmc_cache_flush(llmc_cache *c, const char *ns, uint64_t *deleted);

/* Flush inside a tenant (see llmc_request_set_tenant): with `ns` the
 * tenant's sub-namespace "tenant:ns:" only, with `ns` NULL everything of
 * the tenant ("tenant:", its sub-namespaces included). `tenant` NULL is
 * llmc_cache_flush(c, ns, deleted). Both names must pass
 * llmc_namespace_check (LLMC_EINVAL otherwise). */
LLMC_API llmc_status llmc_cache_flush_in(llmc_cache *c, const char *tenant, const char *ns,
                                         uint64_t *deleted);

/* Delete everything the backend holds (for Redis: the selected database;
 * for memcached: every server). Explicitly named because it is drastic. */
LLMC_API llmc_status llmc_cache_flush_all(llmc_cache *c);

/* Check that the backend answers. LLMC_ECORRUPT when it answers but has
 * reported damaged storage since the handle was opened (see
 * llmc_cache_check). */
LLMC_API llmc_status llmc_cache_ping(llmc_cache *c);

/* Visit every live key that starts with prefix[0..plen) (plen 0: all).
 * The callback returns 0 to go on, non-zero to stop. LLMC_ENOTSUP for
 * backends that cannot enumerate keys (memcached). Keys written during
 * the scan may or may not be seen. */
typedef int (*llmc_scan_cb)(void *ud, const char *key, size_t klen);
LLMC_API llmc_status llmc_cache_scan(llmc_cache *c, const char *prefix, size_t plen,
                                     llmc_scan_cb cb, void *ud);

/* The same keys as one list, for a caller that works through them after
 * the listing (a copy between caches): keys back to back in `bytes`, key
 * i is lens[i] bytes long. *out is the caller's (it need not be
 * initialised; free with llmc_key_list_free, also after a failure).
 * LLMC_ENOTSUP as for llmc_cache_scan. */
typedef struct llmc_key_list {
    llmc_buf bytes;
    size_t *lens;
    size_t n, cap;
} llmc_key_list;
#define LLMC_KEY_LIST_INIT {LLMC_BUF_INIT, NULL, 0, 0}
LLMC_API llmc_status llmc_cache_list_keys(llmc_cache *c, const char *prefix, size_t plen,
                                          llmc_key_list *out);
/* Free a list's memory (the struct itself is the caller's). NULL ok. */
LLMC_API void llmc_key_list_free(llmc_key_list *l);

/* Counters of one cache handle since it was opened (or last reset).
 * Latencies are of the backend call as seen by the core, in nanoseconds;
 * percentiles come from a log-scale histogram with four buckets per
 * power of two (within 19% of the true value). */
typedef struct llmc_stats {
    uint64_t hits, misses, sets, deletes, errors;
    uint64_t corrupt;         /* entries that failed verification */
    uint64_t bytes_read, bytes_written;
    uint64_t get_count, get_ns_total, get_ns_max, get_ns_p50, get_ns_p99;
    uint64_t set_count, set_ns_total, set_ns_max, set_ns_p50, set_ns_p99;
    uint64_t breaker_trips;   /* times the circuit breaker opened */
    uint64_t breaker_skips;   /* soft calls skipped while it was open */
    uint32_t breaker_open;    /* 1 while open */
    uint64_t mac_failures;    /* with an entry_secret: entries whose MAC was
                                 missing or wrong (each also a miss) */
    /* Soft stores not attempted because the same thread's cache read of
     * that request had just failed (a stalled backend then costs one
     * timeout per request, not two); the answer is reported not stored. */
    uint64_t stores_skipped;
    /* Backend calls that found the backend's own storage damaged (e.g. a
     * SQLite page that fails its checks); each is also a miss or error. */
    uint64_t corrupt_reads;
    uint32_t storage_corrupt; /* 1 once damage was reported, until repaired */
    /* The local tier (l1_* options; all zero without one). A hit from it
     * is also counted in `hits` but not in get_count (no backend call). */
    uint32_t l1_enabled;      /* 1 when the cache has a local tier */
    uint32_t l1_live;         /* 1 while the tier may serve (for Redis: its
                                 subscription was confirmed recently) */
    uint64_t l1_hits, l1_misses;
    uint64_t l1_fills;        /* copies taken from the backend or a write */
    uint64_t l1_evictions;    /* copies dropped for room (entries, bytes) */
    uint64_t l1_invalidations; /* deletes/flushes received from other processes */
    uint64_t l1_resyncs;      /* subscriptions (re)established; each empties the tier */
    /* Leases renewed while their call is upstream (lease.h; all zero when
     * the cache does not coalesce or its backend cannot renew). */
    uint64_t leases_kept;           /* held right now by calls upstream */
    uint64_t lease_renewals;        /* renewals that extended a lease */
    uint64_t lease_renewals_lost;   /* found it expired or another holder's */
    uint64_t lease_renewals_failed; /* the backend failed (counted by the breaker) */
} llmc_stats;

/* Fill *out (size `size`, pass sizeof(llmc_stats)) with the handle's
 * counters. */
LLMC_API llmc_status llmc_cache_stats(llmc_cache *c, llmc_stats *out, size_t size);

/* Visit backend-specific counters (entries, pool waits, ...) as
 * name/value pairs. */
typedef void (*llmc_stat_cb)(void *ud, const char *name, int64_t value);
LLMC_API llmc_status llmc_cache_stats_foreach(llmc_cache *c, llmc_stat_cb cb, void *ud);

/* Result of llmc_cache_check. */
typedef struct llmc_check_result {
    uint32_t damaged;   /* 1 if the storage failed its check */
    uint32_t repaired;  /* 1 if LLMC_CHECK_REPAIR rebuilt it */
    uint64_t problems;  /* problems the check listed (it stops at 100) */
    uint64_t kept;      /* repair: entries copied into the rebuilt storage */
    uint64_t expired;   /* repair: expired entries left out */
    uint64_t unreadable; /* repair: damaged spans skipped (their entries are lost) */
    char detail[256];   /* the first problem, for people; "" when healthy */
} llmc_check_result;

/* Flags for llmc_cache_check. */
enum {
    /* Rebuild damaged storage from what can still be read. The SQLite
     * backend copies every readable, unexpired entry into a fresh file
     * and puts it in place of the damaged one; no other process may use
     * the file meanwhile (LLMC_EBUSY if one visibly does). */
    LLMC_CHECK_REPAIR = 1u << 0
};

/* Check the backend's own storage for damage (SQLite: PRAGMA
 * integrity_check) and, with LLMC_CHECK_REPAIR, repair it. Fills *out
 * (size `size`, pass sizeof(llmc_check_result)). Returns LLMC_OK when the
 * storage is healthy or was repaired, LLMC_ECORRUPT when it is damaged
 * and was not repaired, LLMC_ENOTSUP for backends without a storage check
 * (network servers check their own files). A healthy or repaired result
 * clears the handle's storage_corrupt state. Not to be run concurrently
 * with other calls on a handle whose backend is not thread-safe; the
 * SQLite backend serialises it with its other calls. */
LLMC_API llmc_status llmc_cache_check(llmc_cache *c, unsigned flags, llmc_check_result *out,
                                      size_t size);

/* Reset the handle's counters to zero. */
LLMC_API void llmc_cache_stats_reset(llmc_cache *c);

/* Properties of an open cache. Strings live as long as the handle. */
LLMC_API const char *llmc_cache_backend_name(const llmc_cache *c);
/* The URL with any password replaced by "***". */
LLMC_API const char *llmc_cache_url(const llmc_cache *c);
/* The namespace option, or NULL. */
LLMC_API const char *llmc_cache_namespace(const llmc_cache *c);
/* The default TTL in ms (0 = never expires). */
LLMC_API int64_t llmc_cache_default_ttl(const llmc_cache *c);
LLMC_API llmc_cache_mode llmc_cache_get_mode(const llmc_cache *c);
/* Names of the configured serializer and key strategy. */
LLMC_API const char *llmc_cache_serializer_name(const llmc_cache *c);
LLMC_API const char *llmc_cache_key_strategy_name(const llmc_cache *c);
/* Capability bits of the backend (LLMC_CAP_*, see backend.h). */
LLMC_API uint32_t llmc_cache_caps(const llmc_cache *c);
/* Value of any option the cache was opened with (URL or API), or NULL. */
LLMC_API const char *llmc_cache_option(const llmc_cache *c, const char *name);

#ifdef __cplusplus
}
#endif
#endif
