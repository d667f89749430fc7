/* The prepared call's wait for an identical call made by another process
 * sharing the cache (include/llmcache/lease.h): on a miss, before going
 * upstream, take the entry's lease or wait for the entry. A call that
 * goes upstream holding the lease hands it to the lease keeper
 * (core/lease_keeper.c), which renews it until the call is done. In-process
 * coalescing (the proxy's flights) sits in front of this: only the one
 * call per process that would go upstream gets here. */
#include "client_internal.h"

#include <time.h>

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int coalescible(const llmc_call *k)
{
    const llmc_cache *c = k->c->cache;
    return c && llmc_cache_coalesces(c) && !k->no_wait && k->caching && !k->ctl.no_cache &&
           !k->ctl.no_store && !k->ct->per_item && k->kl > 0 && !k->read_failed;
}

/* Look again; a hit found this way is marked as coalesced. */
static llmc_status look_again(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **o,
                              llmc_err *err)
{
    k->coalesced = 1; /* seen by cb during a replay (llmc_call_coalesced) */
    llmc_status st = llmc_call_lookup(k, cb, ud, o, err);
    if (st == LLMC_OK && *o)
        (*o)->coalesced = 1;
    if (st != LLMC_OK)
        k->coalesced = 0;
    return st;
}

llmc_status llmc__call_coalesce(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **o,
                                llmc_err *err)
{
    k->lease_held = 0;
    k->lease_hold = NULL;
    k->coalesced = 0;
    if (!coalescible(k))
        return LLMC_MISS;
    llmc_cache *c = k->c->cache;
    uint64_t deadline = llmc_mono_ns() + (uint64_t)c->coalesce_timeout_ms * 1000000u;
    for (;;) {
        llmc_status st = llmc__lease_take_soft(c, k->kp, k->kl, k->lease_token);
        if (st == LLMC_OK) {
            k->lease_held = 1;
            /* The entry may have landed between our lookup and the
             * lease (its leader stored and dropped the lease, or failed
             * after another stored it): one more look before going up. */
            st = look_again(k, cb, ud, o, err);
            if (st == LLMC_MISS && err)
                llmc_err_clear(err);
            if (st != LLMC_MISS) {
                llmc__lease_drop_soft(c, k->kp, k->kl, k->lease_token);
                k->lease_held = 0;
            } else {
                /* Upstream next, for as long as it takes. */
                k->lease_hold = llmc__lease_keep(c, k->kp, k->kl, k->lease_token);
            }
            return st;
        }
        if (st != LLMC_EEXIST)
            return LLMC_MISS; /* the cache fails: go upstream alone */
        uint64_t now = llmc_mono_ns();
        if (now >= deadline)
            return LLMC_MISS; /* waited long enough */
        int64_t left_ms = (int64_t)((deadline - now) / 1000000u) + 1;
        sleep_ms(left_ms < c->coalesce_poll_ms ? left_ms : c->coalesce_poll_ms);
        st = look_again(k, cb, ud, o, err);
        if (st != LLMC_MISS)
            return st;
        if (err)
            llmc_err_clear(err);
        if (k->read_failed)
            return LLMC_MISS; /* the cache stopped answering */
    }
}

void llmc__call_coalesce_done(llmc_call *k)
{
    if (!k->lease_held)
        return;
    /* The keeper starts no renewal after this; one already on its way
     * may land after the drop, finds the lease gone (or another
     * holder's) and leaves it. */
    llmc__lease_let_go(k->c->cache, k->lease_hold);
    k->lease_hold = NULL;
    llmc__lease_drop_soft(k->c->cache, k->kp, k->kl, k->lease_token);
    k->lease_held = 0;
}

int llmc_call_coalesced(const llmc_call *k)
{
    return k ? k->coalesced : 0;
}

void llmc_call_set_coalesce(llmc_call *k, int on)
{
    if (k)
        k->no_wait = !on;
}
