/* Whether the proxy's cache answers, for /health, /cache/ping and
 * /metrics. The proxy keeps serving while its cache is down (lookups miss,
 * stores are skipped by the library's circuit breaker), so this is
 * reported, never turned into an HTTP error.
 *
 * /health is polled by load balancers, often many times a second: it
 * reuses a result up to STATE_MAX_AGE_MS old, and only one thread pings
 * at a time (the others report the last result meanwhile). */
#include "proxy.h"

#include <pthread.h>
#include <stdatomic.h>
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
