/* Serving entries past their freshness (RFC 5861's two directives, for a
 * cache in front of an API):
 *
 *   stale-if-error          when the provider fails (5xx, 429 after the
 *                           retries, a timeout, a refused connection),
 *                           answer with an entry at most that far past
 *                           its freshness instead of the error
 *   stale-while-revalidate  answer with such an entry at once and refresh
 *                           it upstream in the background, once per key
 *                           (core/revalidate.c)
 *
 * The windows come from the call's controls (body "cache" member,
 * Cache-Control, llmc_request setters) or else the cache's options. An
 * entry is only stale-servable inside its own stale window too (the one
 * it was stored with, stale_until in the envelope): the backend drops it
 * after that. The fresh hit path pays one flag test; all of this runs
 * only when an entry turned out stale. */
#include "client_internal.h"

#include <string.h>

static int64_t sie_window(const llmc_call *k)
{
    return k->ctl.sie_ms >= 0 ? k->ctl.sie_ms : k->c->cache->stale_if_error_ms;
}

static int64_t swr_window(const llmc_call *k)
{
    return k->ctl.swr_ms >= 0 ? k->ctl.swr_ms : k->c->cache->stale_while_revalidate_ms;
}

unsigned llmc__stale_lookup_flags(const llmc_call *k)
{
    /* Embeddings (one entry per item) answer fresh items only. */
    if (k->ct->per_item)
        return 0;
    return sie_window(k) > 0 || swr_window(k) > 0 ? LLMC_ENTRY_STALE : 0;
}

int64_t llmc__stale_keep_ms(const llmc_call *k)
{
    if (!k->c->cache)
        return 0;
    int64_t a = sie_window(k), b = swr_window(k);
    return a > b ? a : b;
}

llmc_status llmc__stale_found(llmc_call *k, const llmc_lookup *lk, llmc_response *r)
{
    r->stale = 1;
    /* Revalidating needs a store at the end of it: with no-store the
     * refresh would be wasted, so such a call only uses stale-if-error. */
    if (lk->stale_ms <= swr_window(k) && !k->ctl.no_store) {
        k->serving_stale = 1;
        k->stale_age_ms = lk->age_ms;
        llmc__reval_start(k, lk->entry.created_ms);
        return LLMC_OK;
    }
    if (lk->stale_ms <= sie_window(k)) {
        k->stale = r;
        return LLMC_MISS;
    }
    llmc_response_free(r);
    return LLMC_MISS;
}

llmc_status llmc_call_take_stale(llmc_call *k, llmc_response **out)
{
    if (out)
        *out = NULL;
    if (!k || !out || !k->stale)
        return LLMC_MISS;
    *out = k->stale;
    k->stale = NULL;
    k->serving_stale = 1;
    k->stale_age_ms = llmc_response_cache_age_ms(*out);
    return LLMC_OK;
}

int llmc__stale_tap_cb(void *ud, struct json_object *chunk)
{
    llmc__stale_tap *t = ud;
    t->n++;
    return t->cb(t->ud, chunk);
}

/* The provider failures stale-if-error covers: its server failing,
 * rate limiting that outlasted the retries, or no answer at all. A
 * request the provider rejected (4xx) is the caller's to see. */
static int covered(llmc_status st)
{
    switch (st) {
    case LLMC_EUPSTREAM:
    case LLMC_ERATELIMIT:
    case LLMC_ETIMEDOUT:
    case LLMC_ECONN:
    case LLMC_EIO:
    case LLMC_EPROTO:
    case LLMC_ESTREAM:
        return 1;
    default:
        return 0;
    }
}

llmc_status llmc__stale_fallback(llmc_call *k, llmc_status st, llmc_chunk_cb cb, void *ud,
                                 size_t delivered, llmc_response **o, llmc_err *err)
{
    if (!k->stale || !covered(st) || delivered > 0)
        return st;
    llmc_response *r = k->stale;
    k->stale = NULL;
    k->serving_stale = 1;
    k->stale_age_ms = llmc_response_cache_age_ms(r);
    llmc__log("info", "provider failed (%s); answering with a stale entry",
              llmc_strerror(st));
    if (err)
        llmc_err_clear(err);
    if (cb) {
        json_object *ro = llmc_response_json(r);
        llmc_status rs = !ro ? llmc_err_set(err, LLMC_ECORRUPT, 0, "cached response unreadable")
                             : llmc__replay_as(k->ct->type, ro, cb, ud, err);
        if (rs != LLMC_OK) {
            llmc_response_free(r);
            return rs;
        }
    }
    *o = r;
    return LLMC_OK;
}
