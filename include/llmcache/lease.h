/* llmcache: leases, how processes sharing one cache coalesce identical
 * misses.
 *
 * Several processes (proxy replicas behind a load balancer, workers of
 * one application) sharing a Redis, Redis Cluster or memcached cache can
 * miss the same request at once. With leases only one of them goes
 * upstream: the first to miss takes a short lease on the entry's key
 * (Redis: SET <lease key> <token> NX PX <lease_ms>), calls the provider,
 * stores the answer, then drops the lease. The others poll the cache
 * for the entry (and the lease) every coalesce_poll_ms; they return the
 * entry as soon as it is there, take the lease themselves when it is gone
 * without an entry (the leader failed: one of them goes upstream next),
 * and go upstream on their own once coalesce_timeout_ms has passed.
 *
 * While the leader's upstream call runs, a thread of the cache (one per
 * cache handle, started with the first lease it keeps) renews the lease
 * every lease_ms / 3 back to lease_ms, only while it still holds the
 * leader's token (llmc_cache_lease_renew), so a call longer than
 * lease_ms (a reasoning model, a long stream) is still made once. A
 * leader that dies stops renewing: its lease expires at most lease_ms
 * later. A renewal that finds the lease gone or another holder's stops
 * renewing it (the call goes on and stores its answer); one that fails
 * on the backend counts for the circuit breaker and is tried again a
 * period later. The counters leases_kept, lease_renewals,
 * lease_renewals_lost and lease_renewals_failed (renewals not made:
 * backend errors, breaker open) appear in llmc_cache_stats_foreach.
 * memcached keeps leases in whole seconds and its clock ticks in
 * seconds, so a lease there may end up to a second early: give it a
 * lease_ms of 2000 or more for renewals to keep it.
 *
 * llmc_call_execute (call.h) does all this by itself when the cache
 * coalesces (llmc_cache_coalesces): every caller of the library, the
 * proxy and the command included, gets it. Calls that do not read or do
 * not store the cache (no-cache, no-store, caching off) and embeddings
 * calls (one entry per input item) never wait. A hit found by waiting is
 * marked llmc_response_coalesced (client.h).
 *
 * Cache options (URL query or llmc_options; all optional):
 *   coalesce=true|false      use leases (default: true when the backend
 *                            has them: redis, rediss, unix, redis-cluster,
 *                            redis-sentinel, memcached; true on a backend
 *                            without leases is an open error)
 *   lease_ms=N               lease time, 1..3600000 (default 30000): how
 *                            long a dead leader holds the others back;
 *                            a live leader's lease is renewed every
 *                            lease_ms / 3 while its call runs
 *   coalesce_timeout_ms=N    the longest a call waits for another's
 *                            answer, 0..3600000 (default 60000; 0 = never
 *                            wait, the lease is still taken)
 *   coalesce_poll_ms=N       how often a waiting call looks, 1..60000
 *                            (default 50)
 *
 * The lease of an entry key lives inside the entry's first namespace
 * (llmc_lease_key), so a tenant's leases are inside the tenant's space
 * like its entries, and a lease key is never an entry key. */
#ifndef LLMCACHE_LEASE_H
#define LLMCACHE_LEASE_H

#include "common.h"
#include "cache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Length of a lease token (hex digits, without the NUL). */
#define LLMC_LEASE_TOKEN_LEN 32

/* 1 when calls on this cache coalesce across processes: its backend has
 * leases and the option coalesce is not false. Thread-safe. */
LLMC_API int llmc_cache_coalesces(const llmc_cache *c);

/* The key of the lease on entry key[0..klen): "<ns>:lease=<rest>" for
 * "<ns>:<rest>", "lease=<key>" for a key without ':'. Namespaces hold no
 * '=' and computed keys end in hex digits, so no entry key of a tenant
 * or namespace equals a lease key. out is the caller's. Thread-safe. */
LLMC_API llmc_status llmc_lease_key(const char *key, size_t klen, llmc_buf *out);

/* Take the lease on entry `key` for ttl_ms (> 0, or LLMC_TTL_DEFAULT for
 * the cache's lease_ms): LLMC_OK with a new random token in token (NUL-
 * terminated), LLMC_EEXIST when another holder has it, LLMC_ENOTSUP when
 * the backend has no leases, or the backend's error (see
 * llmc_cache_errmsg). Raw API: no circuit breaker, every error reported.
 * Thread-safe. */
LLMC_API llmc_status llmc_cache_lease_acquire(llmc_cache *c, const char *key, size_t klen,
                                              int64_t ttl_ms,
                                              char token[LLMC_LEASE_TOKEN_LEN + 1]);

/* Drop the lease on entry `key` if it still holds `token`: LLMC_OK when
 * dropped, LLMC_MISS when it had expired or is another holder's (left
 * alone). Thread-safe. */
LLMC_API llmc_status llmc_cache_lease_release(llmc_cache *c, const char *key, size_t klen,
                                              const char *token);

/* Extend the lease on entry `key` to ttl_ms from now (> 0, or
 * LLMC_TTL_DEFAULT for the cache's lease_ms) if it still holds `token`,
 * atomically: LLMC_OK when extended, LLMC_MISS when it had expired, was
 * dropped or is another holder's (left alone), LLMC_ENOTSUP when the
 * backend has no leases or cannot renew them (a backend plugin without
 * lease_renew), or the backend's error (see llmc_cache_errmsg). Raw API:
 * no circuit breaker, every error reported. Calls made with
 * llmc_call_execute have their lease renewed for them; this is for a
 * caller that takes leases itself. Thread-safe. */
LLMC_API llmc_status llmc_cache_lease_renew(llmc_cache *c, const char *key, size_t klen,
                                            const char *token, int64_t ttl_ms);

#ifdef __cplusplus
}
#endif
#endif
