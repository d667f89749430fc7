/* Whether the proxy's cache answers, for /health, /cache/ping and
 * /metrics. The proxy keeps serving while its cache is down (lookups miss,
 * stores are skipped by the library's circuit breaker), so this is
 * reported, never turned into an HTTP error.
 *
 * /health is polled by load balancers, often many times a second: it
 * reuses a result up to STATE_MAX_AGE_MS old, and only one thread pings
 * at a time (the others report the last result meanwhile).
 *
 * While the cache is down, or the library's circuit breaker skips it, a
 * watcher pings it every WATCH_MS: a successful ping closes the breaker,
 * so hits resume within about that much of the backend answering again
 * instead of after the breaker's cool-down. */
#include "proxy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define STATE_MAX_AGE_MS 1000

static pthread_mutex_t ping_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t checked_ns; /* 0 = never */
static atomic_int last_up = 1;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void proxy_cache_state_note(llmc_status ping_status)
{
    atomic_store(&last_up, ping_status == LLMC_OK);
    atomic_store(&checked_ns, mono_ns());
}

int proxy_cache_state_up(llmc_cache *cache)
{
    uint64_t when = atomic_load(&checked_ns);
    if (when && mono_ns() - when < (uint64_t)STATE_MAX_AGE_MS * 1000000ull)
        return atomic_load(&last_up);
    if (pthread_mutex_trylock(&ping_lock) != 0)
        return atomic_load(&last_up);
    proxy_cache_state_note(llmc_cache_ping(cache));
    pthread_mutex_unlock(&ping_lock);
    return atomic_load(&last_up);
}

#define WATCH_MS 250

static pthread_t watcher;
static int watching;
static int watch_stop;
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv = PTHREAD_COND_INITIALIZER;

static void *watch_main(void *arg)
{
    llmc_cache *cache = arg;
    pthread_mutex_lock(&watch_mu);
    while (!watch_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&watch_cv, &watch_mu, &ts);
        if (watch_stop)
            break;
        pthread_mutex_unlock(&watch_mu);
        llmc_stats st;
        memset(&st, 0, sizeof st);
        int skipped = llmc_cache_stats(cache, &st, sizeof st) == LLMC_OK && st.breaker_open;
        if ((skipped || !atomic_load(&last_up)) && pthread_mutex_trylock(&ping_lock) == 0) {
            proxy_cache_state_note(llmc_cache_ping(cache));
            pthread_mutex_unlock(&ping_lock);
        }
        pthread_mutex_lock(&watch_mu);
    }
    pthread_mutex_unlock(&watch_mu);
    return NULL;
}

int proxy_cache_watch_start(llmc_cache *cache)
{
    watch_stop = 0;
    if (pthread_create(&watcher, NULL, watch_main, cache) != 0)
        return -1;
    watching = 1;
    return 0;
}

void proxy_cache_watch_stop(void)
{
    if (!watching)
        return;
    pthread_mutex_lock(&watch_mu);
    watch_stop = 1;
    pthread_cond_signal(&watch_cv);
    pthread_mutex_unlock(&watch_mu);
    pthread_join(watcher, NULL);
    watching = 0;
}
