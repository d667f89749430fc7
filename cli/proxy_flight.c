/* In-flight requests: the first cacheable miss for a call id becomes the
 * leader of a "flight" and goes upstream; identical requests that arrive
 * meanwhile park on the flight (no thread held) and run again when the
 * leader is done, finding the entry in the cache. A reaper thread sends
 * waiters whose wait exceeded the timeout upstream on their own. */

#include "proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The bucket of a call id: the first byte of the library's SHA-256 of
 * it, so that every id spreads over the buckets, preset keys (which a
 * client chooses) as well as computed ones. Only misses get here: the
 * hash is nothing next to the upstream call they wait for. */
static unsigned bucket_of(const char *key)
{
    uint8_t d[32];
    llmc_sha256(key, strlen(key), d);
    return (unsigned)d[0] % FLIGHT_BUCKETS;
}

/* Join the flight for r->key, or open one as its leader. Returns 1 when
 * r now waits (the job ends here), 0 when r leads. */
int px_join_flight(proxy_server *s, preq *r)
{
    unsigned b = bucket_of(r->key.data);
    pthread_mutex_lock(&s->fmu);
    flight *f = s->flights[b];
    while (f && strcmp(f->key, r->key.data) != 0)
        f = f->next;
    if (f) {
        if (!r->deadline_ns)
            r->deadline_ns = px_now_ns() + (uint64_t)s->cfg->coalesce_timeout_ms * 1000000u;
        if (px_now_ns() < r->deadline_ns) {
            r->wnext = f->waiters;
            f->waiters = r;
            r->coalesced = 1;
            pthread_mutex_unlock(&s->fmu);
            return 1;
        }
        /* Waited long enough: go upstream alongside the leader. */
        pthread_mutex_unlock(&s->fmu);
        return 0;
    }
    f = calloc(1, sizeof *f);
    if (f)
        f->key = strdup(r->key.data);
    if (!f || !f->key) {
        free(f);
        pthread_mutex_unlock(&s->fmu);
        return 0;
    }
    f->next = s->flights[b];
    s->flights[b] = f;
    r->leader = 1;
    pthread_mutex_unlock(&s->fmu);
    return 0;
}

/* A leader's answer is about to reach its client: land the flight
 * first. A request the client sends after reading that answer must not
 * join the finished flight, or it would take the leader's outcome (a
 * stale answer, say) without asking the provider itself. */
void px_land_before_answer(preq *r)
{
    if (r->leader)
        px_land_flight(r->srv, r);
}

/* The leader is done: its waiters run again (and find the entry). */
void px_land_flight(proxy_server *s, preq *r)
{
    unsigned b = bucket_of(r->key.data);
    preq *w = NULL;
    pthread_mutex_lock(&s->fmu);
    for (flight **pp = &s->flights[b]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, r->key.data) == 0) {
            flight *f = *pp;
            *pp = f->next;
            w = f->waiters;
            free(f->key);
            free(f);
            break;
        }
    }
    pthread_mutex_unlock(&s->fmu);
    r->leader = 0;
    while (w) {
        preq *n = w->wnext;
        w->wnext = NULL;
        w->pass = PASS_AGAIN;
        w->leader_stale = r->served_stale;
        px_enqueue(s, w);
        w = n;
    }
}

void *px_reaper_main(void *arg)
{
    proxy_server *s = arg;
    pthread_mutex_lock(&s->fmu);
    while (s->reaper_on) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->rcv, &s->fmu, &ts);
        uint64_t now = px_now_ns();
        preq *expired = NULL;
        for (int b = 0; b < FLIGHT_BUCKETS; b++) {
            for (flight *f = s->flights[b]; f; f = f->next) {
                for (preq **pp = &f->waiters; *pp;) {
                    preq *w = *pp;
                    if (now >= w->deadline_ns) {
                        *pp = w->wnext;
                        w->wnext = expired;
                        expired = w;
                    } else {
                        pp = &w->wnext;
                    }
                }
            }
        }
        if (expired) {
            pthread_mutex_unlock(&s->fmu);
            while (expired) {
                preq *n = expired->wnext;
                expired->wnext = NULL;
                expired->pass = PASS_ALONE;
                expired->coalesced = 0;
                atomic_fetch_add(&s->m.coalesce_timeouts, 1);
                px_enqueue(s, expired);
                expired = n;
            }
            pthread_mutex_lock(&s->fmu);
        }
    }
    pthread_mutex_unlock(&s->fmu);
    return NULL;
}
