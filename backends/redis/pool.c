/* Redis connection layer, the per-node pool: up to `size` connections,
 * handed out and back under a mutex that is never held across a network
 * round trip, with reconnect backoff after failed connects. */
#include "conn_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* pool */

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

llmc_status llmc__rpool_init(llmc_rpool *p, const llmc_rnode_cfg *cfg, int size,
                             llmc_err *err)
{
    memset(p, 0, sizeof *p);
    if (size < 1)
        size = 1;
    p->size = size;
    p->idle = calloc((size_t)size, sizeof *p->idle);
    if (!p->idle)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rnode_cfg_copy(&p->cfg, cfg, err);
    if (st != LLMC_OK) {
        free(p->idle);
        p->idle = NULL;
        return st;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->backoff_ms = BACKOFF_MIN_MS;
    return LLMC_OK;
}

void llmc__rpool_destroy(llmc_rpool *p)
{
    if (!p->idle)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    for (int i = 0; i < p->n_idle; i++)
        llmc__rconn_close(p->idle[i]);
    p->n_idle = 0;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->idle);
    p->idle = NULL;
    llmc__rnode_cfg_free(&p->cfg);
}

llmc_status llmc__rpool_acquire(llmc_rpool *p, uint64_t deadline_ns, llmc_rconn **out,
                                int *fresh, llmc_err *err)
{
    int waited = 0;
    uint64_t wait_start = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->n_idle > 0) {
            *out = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->lock);
            *fresh = 0;
            break;
        }
        uint64_t now = llmc_mono_ns();
        int backing_off = now < p->next_connect_ns;
        if (p->n_open < p->size && !(backing_off && p->n_open > 0)) {
            if (backing_off) {
                /* A connect failed a moment ago: answer at once with that
                 * error instead of hammering a server that is down. */
                llmc_err e = p->last_connect_err;
                int64_t in_ms = (int64_t)((p->next_connect_ns - now) / 1000000ull);
                pthread_mutex_unlock(&p->lock);
                return llmc_err_set(err, e.status ? e.status : LLMC_ECONN, e.native,
                                    "%s (next reconnect attempt in %lld ms)", e.msg,
                                    (long long)in_ms);
            }
            p->n_open++;
            uint64_t had = p->connects;
            pthread_mutex_unlock(&p->lock);

            llmc_rconn *c = NULL;
            llmc_err e;
            llmc_err_clear(&e);
            llmc_status st = llmc__rconn_open(&p->cfg, llmc__deadline_after_ms(
                                                           p->cfg.connect_timeout_ms),
                                              &c, &e);
            pthread_mutex_lock(&p->lock);
            if (st != LLMC_OK) {
                p->n_open--;
                p->connect_failures++;
                p->last_connect_err = e;
                p->next_connect_ns = llmc_mono_ns() + (uint64_t)p->backoff_ms * 1000000ull;
                p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                   : p->backoff_ms * 2;
                pthread_cond_signal(&p->cond);
                pthread_mutex_unlock(&p->lock);
                if (err)
                    *err = e;
                return st;
            }
            p->connects++;
            if (had > 0)
                p->reconnects++;
            p->backoff_ms = BACKOFF_MIN_MS;
            p->next_connect_ns = 0;
            pthread_mutex_unlock(&p->lock);
            *out = c;
            *fresh = 1;
            break;
        }
        /* Every connection is busy (or, while reconnects are held back,
         * the ones still open are): wait for one to come back. */
        if (!waited) {
            waited = 1;
            wait_start = now;
            p->waits++;
        }
        /* While backing off, wake up when a reconnect is allowed again. */
        uint64_t until = backing_off && p->next_connect_ns < deadline_ns ? p->next_connect_ns
                                                                          : deadline_ns;
        struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
        int r = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        if (r == ETIMEDOUT && p->n_idle == 0 && llmc_mono_ns() >= deadline_ns) {
            int size = p->size;
            pthread_mutex_unlock(&p->lock);
            p->wait_us += (llmc_mono_ns() - wait_start) / 1000;
            return llmc_err_set(err, LLMC_ETIMEDOUT, ETIMEDOUT,
                                "redis at %s: no free connection in the pool (pool_size=%d) "
                                "before the timeout",
                                p->cfg.label, size);
        }
    }
    if (waited)
        p->wait_us += (llmc_mono_ns() - wait_start) / 1000;
    return LLMC_OK;
}

void llmc__rpool_release(llmc_rpool *p, llmc_rconn *c)
{
    if (!c)
        return;
    if (c->broken) {
        llmc__rconn_close(c);
        pthread_mutex_lock(&p->lock);
        p->n_open--;
        p->broken++;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->idle[p->n_idle++] = c;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
