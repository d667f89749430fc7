/* The local tier: a bounded in-process copy (the local backend) in front
 * of a shared backend, chosen by the l1_* cache options. The dispatcher
 * (cache.c) and the entry calls (entry.c) reach it through these hooks
 * only; see tier.c for the rules that keep its copies correct. Not
 * installed. */
#ifndef LLMC_TIER_H
#define LLMC_TIER_H

#include "internal.h"

/* The option names, for the dispatcher's list of common options. */
#define LLMC_TIER_OPTION_NAMES "l1", "l1_entries", "l1_bytes", "l1_ttl", "l1_sync_ms"

/* Read the l1_* options of c (after the backend opened) and, when they
 * ask for a tier, create it in c->tier (NULL otherwise). Refuses bad
 * values, a tier over the local backend, and l1_sync_ms on a backend
 * without pub/sub, naming the option. */
llmc_status llmc__tier_open(llmc_cache *c, llmc_err *err);
/* Stop the subscriber and free the tier; before the backend closes. */
void llmc__tier_close(llmc_cache *c);

/* A copy of key into out: LLMC_OK (counted as a tier hit) or LLMC_MISS.
 * *epoch (may be NULL) receives the value to hand to llmc__tier_fill
 * after a backend read. */
llmc_status llmc__tier_get(llmc_cache *c, const char *key, size_t klen, llmc_buf *out,
                           uint64_t *epoch);
/* The epoch to take before a backend read whose value may be kept. */
uint64_t llmc__tier_epoch(llmc_cache *c);
/* Keep a copy of what the backend returned for key, read after `epoch`
 * was taken; expires_ms is the value's own expiry (Unix ms, 0 = none).
 * Dropped when an invalidation arrived meanwhile. */
void llmc__tier_fill(llmc_cache *c, const char *key, size_t klen, const void *val, size_t vlen,
                     int64_t expires_ms, uint64_t epoch);
/* As fill, for a value the backend returned without an expiry we know:
 * kept only if it decodes as an entry of the cache's serializer. */
void llmc__tier_fill_raw(llmc_cache *c, const char *key, size_t klen, const void *val,
                         size_t vlen, uint64_t epoch);
/* After a write of key through this handle (resolved ttl_ms, 0 = none);
 * ok: the backend took it. Replaces the copy and tells other processes. */
void llmc__tier_written(llmc_cache *c, const char *key, size_t klen, const void *val,
                        size_t vlen, int64_t ttl_ms, int ok);
/* After a delete of key; ok: the backend answered (deleted or absent). */
void llmc__tier_deleted(llmc_cache *c, const char *key, size_t klen, int ok);
/* After a flush of the keys under "prefix:" (prefix NULL: everything). */
void llmc__tier_flushed(llmc_cache *c, const char *prefix, int ok);
/* Add the tier's counters to s (llmc_cache_stats). */
void llmc__tier_stats(llmc_cache *c, llmc_stats *s);
/* Zero the counters the tier keeps itself (llmc_cache_stats_reset). */
void llmc__tier_stats_reset(llmc_cache *c);
/* Report the tier's counters as "l1_..." name/value pairs. */
void llmc__tier_stats_foreach(llmc_cache *c, llmc_stat_cb cb, void *ud);

#endif
