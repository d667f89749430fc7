/* Batched entry reads (llmc_cache_get_entries): the entries of many keys
 * for one backend round trip, as an embeddings request with many inputs
 * needs. The local tier answers what it holds; the backend is asked once
 * for the rest (its mget, or one get per key where it has none); each
 * value is then checked by the code a single read uses (entry_read.h), so
 * a value is accepted or refused exactly as llmc_cache_get_entry would.
 *
 * Fail-open (LLMC_ENTRY_SOFT) treats the batch as one backend call: the
 * breaker is asked once and hears one outcome, a failure is counted once,
 * and where gets are emulated the keys after a failed one are not asked,
 * so a stalled backend costs one timeout for the whole batch. */
#include "entry_read.h"
#include "internal.h"
#include "tier.h"

#include <stdlib.h>
#include <string.h>

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

llmc_status llmc_cache_get_entries(llmc_cache *c, size_t n, const char *const *keys,
                                   const size_t *klens, int64_t max_age_ms, unsigned flags,
                                   llmc_lookup *outs, llmc_status *sts)
{
    if (!c || (n && (!keys || !klens || !outs || !sts)))
        return LLMC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!keys[i] || !klens[i])
            return LLMC_EINVAL;
    if (n == 0)
        return LLMC_OK;
    int soft = (flags & LLMC_ENTRY_SOFT) != 0;
    /* The keys the tier did not hold, packed for the backend. */
    struct {
        const char **keys;
        llmc_buf **vals;
        size_t *klens, *idx;
        llmc_status *sts;
        unsigned char *tier; /* per key of the batch: answered by the tier */
    } need;
    void *block = malloc(n * (sizeof *need.keys + sizeof *need.vals + 2 * sizeof *need.klens +
                              sizeof *need.sts + 1));
    if (!block) {
        for (size_t i = 0; i < n; i++)
            sts[i] = LLMC_ENOMEM;
        return LLMC_ENOMEM;
    }
    need.keys = block;
    need.vals = (llmc_buf **)(need.keys + n);
    need.klens = (size_t *)(need.vals + n);
    need.idx = need.klens + n;
    need.sts = (llmc_status *)(need.idx + n);
    need.tier = (unsigned char *)(need.sts + n);

    /* Taken before any read: a copy is kept only if no invalidation
     * arrived since (llmc__tier_fill). */
    uint64_t epoch = llmc__tier_epoch(c);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        need.tier[i] =
            c->tier && llmc__tier_get(c, keys[i], klens[i], &outs[i].raw, NULL) == LLMC_OK;
        sts[i] = LLMC_OK;
        if (need.tier[i])
            continue;
        need.keys[m] = keys[i];
        need.klens[m] = klens[i];
        need.vals[m] = &outs[i].raw;
        need.idx[m++] = i;
    }

    llmc_stat_slot *s = llmc__stat_slot(c);
    if (m && soft && !llmc__breaker_allow(c)) {
        /* The circuit is open: what the tier did not hold misses. */
        for (size_t j = 0; j < m; j++) {
            ADD(s->misses, 1);
            sts[need.idx[j]] = LLMC_MISS;
        }
        m = 0;
    }
    if (m) {
        llmc_err e;
        llmc_err_clear(&e);
        llmc_status whole =
            llmc__cache_mget_backend(c, m, need.keys, need.klens, need.vals, need.sts, soft, &e);
        if (soft) {
            /* One backend call, one outcome: its failure, or the first
             * key's failure, or success. */
            llmc_status outcome = whole;
            for (size_t j = 0; j < m && outcome == LLMC_OK; j++)
                if (llmc__status_is_backend_failure(need.sts[j]))
                    outcome = need.sts[j];
            llmc__breaker_record(c, outcome);
            if (llmc__status_is_backend_failure(outcome))
                llmc__soft_failed(c);
            else
                llmc__soft_ok(c);
        }
        int reported = 0;
        for (size_t j = 0; j < m; j++) {
            size_t i = need.idx[j];
            llmc_status st = need.sts[j];
            if (st == LLMC_OK)
                continue;
            if (st == LLMC_MISS) {
                ADD(s->misses, 1);
                sts[i] = LLMC_MISS;
            } else if (whole != LLMC_OK && st == whole && reported) {
                /* The same failed call, already counted and recorded:
                 * each key it left unanswered is one more miss. */
                if (soft)
                    ADD(s->misses, 1);
                sts[i] = soft && !(flags & LLMC_ENTRY_REPORT) ? LLMC_MISS : st;
            } else {
                llmc_err ei;
                if (!reported++)
                    ei = e;
                else
                    llmc_err_set(&ei, st, 0, "%s mget: key %zu: %s", c->name, i,
                                 llmc_strerror(st));
                sts[i] = llmc__entry_failed(c, st, &ei, flags);
            }
        }
    }

    /* Every value that arrived is decoded and checked as a single read's
     * is, in the caller's order. */
    llmc_status ret = LLMC_OK;
    for (size_t i = 0; i < n; i++) {
        if (sts[i] == LLMC_OK)
            sts[i] = llmc__entry_check(c, keys[i], klens[i], max_age_ms, flags, need.tier[i],
                                       epoch, &outs[i]);
        if (ret == LLMC_OK && sts[i] != LLMC_OK && sts[i] != LLMC_MISS)
            ret = sts[i];
    }
    free(block);
    return ret;
}
