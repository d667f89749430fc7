/* The lease keeper: while a call that holds the lease of its entry key
 * is upstream, its lease is renewed every lease_ms / 3, so an upstream
 * call longer than lease_ms (a reasoning model, a long stream) is still
 * made once across every process sharing the cache.
 *
 * One thread per cache, started with the first lease it keeps and
 * stopped at llmc_cache_close. A thread of its own rather than a hook in
 * the HTTP transfer: it renews on time whatever the call is doing (a
 * blocking request, a stream, a wait between retries, a slow stream
 * consumer, a provider that answers in-process), and at any lease_ms
 * (libcurl's progress callback comes about once a second when the
 * transfer is idle, too seldom for a short lease). The backend calls go
 * through core/lease.c, serialised there for a backend that is not
 * thread-safe.
 *
 * Why lease_ms / 3: a lease renewed then has two more chances (two more
 * periods) before it would lapse, so one renewal that fails or is slow
 * (up to the cache's timeout_ms) does not lose it.
 *
 * A renewal that finds the lease gone or another holder's (LLMC_MISS)
 * stops renewing that lease: another process may be upstream by now, and
 * this call goes on and stores its answer all the same. A renewal that
 * fails on the backend counts for the circuit breaker and is tried again
 * one period later. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct llmc__lease_hold {
    llmc__lease_hold *next;
    char *key;
    size_t klen;
    char token[LLMC_LEASE_TOKEN_LEN + 1];
    uint64_t due_ns;
    int busy;    /* being renewed right now, outside the lock */
    int dropped; /* let go while busy: the keeper frees it */
    int lost;    /* found gone or another holder's: no more renewals */
};

struct llmc__lease_keeper {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: a new hold, or stop */
    pthread_t thread;
    int started, stop;
    uint64_t period_ns;
    llmc__lease_hold *holds;
    size_t n_holds;
    _Atomic uint64_t renewals, lost, failures;
};

llmc_status llmc__lease_keeper_open(llmc_cache *c, llmc_err *err)
{
    if (!c->coalesce || !llmc__lease_renewable(c))
        return LLMC_OK; /* nothing to renew: leases last lease_ms */
    llmc__lease_keeper *k = calloc(1, sizeof *k);
    if (!k)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    pthread_mutex_init(&k->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    int64_t period_ms = c->lease_ms / 3;
    k->period_ns = (uint64_t)(period_ms > 0 ? period_ms : 1) * 1000000u;
    c->keeper = k;
    return LLMC_OK;
}

static void hold_free(llmc__lease_hold *h)
{
    free(h->key);
    free(h);
}

static void unlink_hold(llmc__lease_keeper *k, llmc__lease_hold *h)
{
    for (llmc__lease_hold **p = &k->holds; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            k->n_holds--;
            return;
        }
}

/* The hold due first among those still renewed; NULL when none. */
static llmc__lease_hold *next_due(llmc__lease_keeper *k)
{
    llmc__lease_hold *best = NULL;
    for (llmc__lease_hold *h = k->holds; h; h = h->next)
        if (!h->lost && !h->busy && (!best || h->due_ns < best->due_ns))
            best = h;
    return best;
}

static void wait_until(llmc__lease_keeper *k, uint64_t when_ns)
{
    struct timespec ts = {(time_t)(when_ns / 1000000000u), (long)(when_ns % 1000000000u)};
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

static void *keeper_main(void *arg)
{
    llmc_cache *c = arg;
    llmc__lease_keeper *k = c->keeper;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        llmc__lease_hold *h = next_due(k);
        if (!h) {
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        uint64_t now = llmc_mono_ns();
        if (h->due_ns > now) {
            wait_until(k, h->due_ns);
            continue; /* a hold may have come or gone meanwhile */
        }
        /* The key and token stay put while busy: let_go only marks a
         * busy hold, and the call does not touch its copy. */
        h->busy = 1;
        pthread_mutex_unlock(&k->mu);
        llmc_status st = llmc__lease_renew_soft(c, h->key, h->klen, h->token);
        pthread_mutex_lock(&k->mu);
        h->busy = 0;
        if (st == LLMC_OK)
            atomic_fetch_add(&k->renewals, 1);
        else if (st == LLMC_MISS)
            atomic_fetch_add(&k->lost, 1);
        else
            atomic_fetch_add(&k->failures, 1);
        if (h->dropped) {
            unlink_hold(k, h);
            hold_free(h);
            continue;
        }
        if (st == LLMC_MISS) {
            h->lost = 1;
            llmc__log("info",
                      "cache %s: a lease was lost while its call was upstream (expired or "
                      "taken by another holder): no longer renewed",
                      c->url_redacted);
        }
        h->due_ns = llmc_mono_ns() + k->period_ns;
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

llmc__lease_hold *llmc__lease_keep(llmc_cache *c, const char *key, size_t klen,
                                   const char *token)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k || !token[0])
        return NULL;
    llmc__lease_hold *h = calloc(1, sizeof *h);
    char *kc = h ? malloc(klen ? klen : 1) : NULL;
    if (!kc) {
        free(h);
        return NULL; /* out of memory: the lease lasts lease_ms */
    }
    memcpy(kc, key, klen);
    h->key = kc;
    h->klen = klen;
    memcpy(h->token, token, LLMC_LEASE_TOKEN_LEN + 1);
    h->due_ns = llmc_mono_ns() + k->period_ns;
    pthread_mutex_lock(&k->mu);
    if (!k->started && !k->stop) {
        int rc = pthread_create(&k->thread, NULL, keeper_main, c);
        if (rc == 0) {
            k->started = 1;
        } else {
            pthread_mutex_unlock(&k->mu);
            llmc__log("warn", "cache %s: cannot start the lease keeper thread (%s): leases "
                      "last lease_ms", c->url_redacted, strerror(rc));
            hold_free(h);
            return NULL;
        }
    }
    h->next = k->holds;
    k->holds = h;
    k->n_holds++;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return h;
}

void llmc__lease_let_go(llmc_cache *c, llmc__lease_hold *h)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k || !h)
        return;
    pthread_mutex_lock(&k->mu);
    if (h->busy) {
        h->dropped = 1; /* freed by the keeper when its renewal returns */
    } else {
        unlink_hold(k, h);
        hold_free(h);
    }
    pthread_mutex_unlock(&k->mu);
}

void llmc__lease_keeper_close(llmc_cache *c)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_broadcast(&k->cv);
    int started = k->started;
    pthread_mutex_unlock(&k->mu);
    if (started)
        pthread_join(k->thread, NULL);
    /* Holds left by calls still running would be a use after close; a
     * closed cache has no calls. */
    while (k->holds) {
        llmc__lease_hold *h = k->holds;
        k->holds = h->next;
        hold_free(h);
    }
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
    c->keeper = NULL;
}

void llmc__lease_keeper_fill(llmc_cache *c, llmc_stats *s)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    s->leases_kept = k->n_holds;
    pthread_mutex_unlock(&k->mu);
    s->lease_renewals = atomic_load(&k->renewals);
    s->lease_renewals_lost = atomic_load(&k->lost);
    s->lease_renewals_failed = atomic_load(&k->failures);
}

void llmc__lease_keeper_stats(llmc_cache *c, llmc_stat_cb cb, void *ud)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    int64_t kept = (int64_t)k->n_holds;
    pthread_mutex_unlock(&k->mu);
    cb(ud, "leases_kept", kept);
    cb(ud, "lease_renewals", (int64_t)atomic_load(&k->renewals));
    cb(ud, "lease_renewals_lost", (int64_t)atomic_load(&k->lost));
    cb(ud, "lease_renewals_failed", (int64_t)atomic_load(&k->failures));
}

void llmc__lease_keeper_stats_reset(llmc_cache *c)
{
    llmc__lease_keeper *k = c ? c->keeper : NULL;
    if (!k)
        return;
    atomic_store(&k->renewals, 0);
    atomic_store(&k->lost, 0);
    atomic_store(&k->failures, 0);
}
