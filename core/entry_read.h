/* The two halves of an entry read that every way of fetching the stored
 * bytes shares: one key (llmc_cache_get_entry, entry.c) or a batch
 * (llmc_cache_get_entries, entry_batch.c). Keeping them in one place is
 * what makes a value read in a batch accepted or refused exactly as a
 * single read would. Not installed. */
#ifndef LLMC_ENTRY_READ_H
#define LLMC_ENTRY_READ_H

#include "internal.h"

/* The stored bytes for key are in out->raw: decode them with the cache's
 * serializer and check them (envelope, key digest, MAC under the
 * entry_secret, expiry, max_age_ms, the stale window with
 * LLMC_ENTRY_STALE), count the outcome (hit, miss, corrupt, MAC failure),
 * delete a corrupt value, and keep a fresh one in the local tier unless
 * from_tier says it came from there (epoch: taken before the backend read
 * began, see llmc__tier_fill). Returns LLMC_OK (out->entry, age_ms and
 * stale_ms filled) or LLMC_MISS. */
llmc_status llmc__entry_check(llmc_cache *c, const char *key, size_t klen, int64_t max_age_ms,
                              unsigned flags, int from_tier, uint64_t epoch, llmc_lookup *out);

/* A backend read for an entry failed with st (*e may hold its message):
 * count it, record it on the handle, and return what the entry read
 * returns for it under flags (LLMC_MISS when soft, st with
 * LLMC_ENTRY_REPORT or without LLMC_ENTRY_SOFT). */
llmc_status llmc__entry_failed(llmc_cache *c, llmc_status st, llmc_err *e, unsigned flags);

#endif
