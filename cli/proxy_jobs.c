/* The worker pool and the calls it runs: what waits (an upstream call, a
 * stream, a coalesced request) runs here through the library's prepared
 * call, while the connection is suspended; results go back to the
 * connection under its mutex. */

#include "proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void px_enqueue(proxy_server *s, preq *r)
{
    r->qnext = NULL;
    pthread_mutex_lock(&s->qmu);
    if (s->qtail)
        s->qtail->qnext = r;
    else
        s->qhead = r;
    s->qtail = r;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

/* Stream chunks from the library into the connection's buffer. Returns
 * non-zero (stop: nothing is stored) once the client has gone. */
static int on_chunk(void *ud, struct json_object *chunk)
{
    preq *r = ud;
    size_t len;
    const char *s = json_object_to_json_string_length(chunk, JSON_FLAGS, &len);
    pthread_mutex_lock(&r->mu);
    if (r->gone || atomic_load(&r->srv->stopping) > 1) {
        pthread_mutex_unlock(&r->mu);
        return 1;
    }
    if (r->typed) {
        /* Typed events name themselves on an event: line, as the API
         * sends them. */
        json_object *t;
        const char *type = json_object_object_get_ex(chunk, "type", &t)
                               ? json_object_get_string(t) : NULL;
        /* Never a line break inside the event line (the library refuses
         * such types; this is where the line is written). */
        if (type && !strpbrk(type, "\r\n"))
            llmc_buf_printf(&r->sbuf, "event: %s\n", type);
        r->events++;
    }
    llmc_buf_puts(&r->sbuf, "data: ");
    llmc_buf_append(&r->sbuf, s, len);
    llmc_buf_puts(&r->sbuf, "\n\n");
    if (!r->streaming) {
        r->streaming = 1;
        r->status = 200;
        /* The provider failed and the library replays a stale entry:
         * the headers, sent with this first chunk, say so. */
        if (llmc_call_stale(r->k) && !r->answered_hit) {
            r->cache_status = "STALE";
            r->age_s = llmc_call_stale_age_ms(r->k) / 1000;
            atomic_fetch_add(&r->srv->m.stale, 1);
        } else if (llmc_call_coalesced(r->k)) {
            /* A replay of what another replica's identical call stored. */
            r->cache_status = "HIT";
            r->age_s = 0;
            r->coalesced = 1;
        }
    }
    px_wake(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static const char *miss_status(const preq *r)
{
    if (!r->caching)
        return "BYPASS";
    if (r->no_cache)
        return r->no_store ? "BYPASS" : "REFRESH";
    return r->no_store ? "MISS-NOSTORE" : "MISS";
}

/* A miss says MISS (or REFRESH) only when the answer was really stored:
 * a store that failed or was skipped (backend down or read-only, an
 * answer that must not be cached) is reported as not stored. */
static const char *unstored_status(const char *cstatus, const llmc_response *resp)
{
    if (llmc_response_cache_stored(resp))
        return cstatus;
    if (strcmp(cstatus, "MISS") == 0)
        return "MISS-NOSTORE";
    if (strcmp(cstatus, "REFRESH") == 0)
        return "BYPASS";
    return cstatus;
}

/* A hit from the library's lookup: count it, then hand it on. */
void px_took_hit(preq *r, llmc_response *resp, const char **cstatus, int64_t *age_s)
{
    size_t len;
    llmc_saving sv;
    llmc_response_text(resp, &len);
    llmc_response_saved(resp, &sv, NULL);
    px_count_hit(r, len, &sv);
    r->answered_hit = 1;
    px_semantic_note(r, resp);
    *cstatus = r->semantic ? "HIT-SEMANTIC" : "HIT";
    if (llmc_response_cache_stale(resp)) {
        /* stale-while-revalidate: answered now, refreshed behind it */
        *cstatus = "STALE";
        atomic_fetch_add(&r->srv->m.stale, 1);
    }
    int64_t age = llmc_response_cache_age_ms(resp);
    *age_s = age > 0 ? age / 1000 : 0;
}

static void finish_stream(preq *r)
{
    px_land_before_answer(r);
    pthread_mutex_lock(&r->mu);
    if (!r->streaming) {
        r->streaming = 1;
        r->status = 200;
    }
    if (!r->typed)
        llmc_buf_puts(&r->sbuf, "data: [DONE]\n\n");
    r->s_done = 1;
    px_wake(r);
    pthread_mutex_unlock(&r->mu);
}

static void run_completion(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    const char *cstatus = miss_status(r);
    int64_t age_s = 0;
    llmc_response *resp = NULL;
    llmc_status st = LLMC_MISS;
    /* The HTTP thread looked a plain request up already; a stream, or a
     * request woken by its flight's leader, looks (again) here. */
    if (r->caching && !r->no_cache && (r->stream || r->pass != PASS_FIRST))
        st = llmc_call_lookup(r->k, NULL, NULL, &resp, &err);
    if (st == LLMC_MISS && r->pass == PASS_AGAIN && r->leader_stale &&
        llmc_call_take_stale(r->k, &resp) == LLMC_OK) {
        /* The identical request just ahead of this one found the provider
         * failing and answered stale: so does this one, without asking
         * the provider again. */
        st = LLMC_OK;
        r->served_stale = 1;
    }
    if (st == LLMC_OK) {
        px_took_hit(r, resp, &cstatus, &age_s);
        pthread_mutex_lock(&r->mu);
        r->cache_status = cstatus;
        r->age_s = age_s;
        pthread_mutex_unlock(&r->mu);
        if (r->stream) {
            st = llmc_response_replay(resp, on_chunk, r, &err);
            if (st == LLMC_OK)
                finish_stream(r);
            else
                px_finish_error(r, &err);
        } else {
            size_t len;
            const char *text = llmc_response_text(resp, &len);
            llmc_buf b = LLMC_BUF_INIT;
            llmc_buf_set(&b, text, len);
            px_finish_plain(r, 200, &b, cstatus, age_s);
            llmc_buf_free(&b);
        }
        llmc_response_free(resp);
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->cache_status = cstatus;
    r->age_s = age_s;
    pthread_mutex_unlock(&r->mu);

    /* A waiter that gave up on this process's leader does not wait for
     * the same lease again across replicas. */
    if (r->pass == PASS_ALONE)
        llmc_call_set_coalesce(r->k, 0);
    uint64_t t0 = px_now_ns();
    st = llmc_call_execute(r->k, r->stream ? on_chunk : NULL, r, &resp, &err);
    if (st == LLMC_OK && llmc_call_coalesced(r->k)) {
        /* Another replica's identical call answered it (it waited on
         * that call's lease): a hit. */
        px_took_hit(r, resp, &cstatus, &age_s);
        pthread_mutex_lock(&r->mu);
        r->coalesced = 1;
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add(&s->m.coalesced_remote, 1);
        if (r->stream) {
            finish_stream(r);
        } else {
            size_t len;
            const char *text = llmc_response_text(resp, &len);
            llmc_buf b = LLMC_BUF_INIT;
            llmc_buf_set(&b, text, len);
            px_finish_plain(r, 200, &b, cstatus, age_s);
            llmc_buf_free(&b);
        }
        llmc_response_free(resp);
        return;
    }
    if (r->caching)
        atomic_fetch_add(&s->m.misses[r->ep], 1);
    else
        atomic_fetch_add(&s->m.bypass[r->ep], 1);
    if (llmc_response_attempts(resp) > 0)
        px_observe_upstream(s, px_now_ns() - t0);
    else if (st != LLMC_OK && st != LLMC_EINVAL && st != LLMC_ECANCELED)
        px_observe_upstream(s, px_now_ns() - t0);
    if (st == LLMC_ECANCELED)
        atomic_fetch_add(&s->m.client_aborts, 1);
    if (st != LLMC_OK) {
        px_finish_error(r, &err);
        llmc_response_free(resp);
        return;
    }
    if (r->stream) {
        finish_stream(r);
        llmc_response_free(resp);
        return;
    }
    size_t len;
    const char *text = llmc_response_text(resp, &len);
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_set(&b, text, len);
    if (llmc_response_cache_stale(resp)) {
        /* The provider failed; a stale entry answered (stale-if-error). */
        r->served_stale = 1;
        atomic_fetch_add(&s->m.stale, 1);
        int64_t age = llmc_response_cache_age_ms(resp);
        px_finish_plain(r, 200, &b, "STALE", age > 0 ? age / 1000 : 0);
    } else {
        px_finish_plain(r, 200, &b, unstored_status(cstatus, resp), age_s);
    }
    llmc_buf_free(&b);
    llmc_response_free(resp);
}

static void run_embedding(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    llmc_response *resp = NULL;
    uint64_t t0 = px_now_ns();
    llmc_status st = llmc_call_execute(r->k, NULL, NULL, &resp, &err);
    if (st != LLMC_OK) {
        if (st != LLMC_EINVAL)
            px_observe_upstream(s, px_now_ns() - t0);
        atomic_fetch_add(&s->m.misses[EP_EMBED], 1);
        px_finish_error(r, &err);
        return;
    }
    if (llmc_response_attempts(resp) > 0)
        px_observe_upstream(s, px_now_ns() - t0);
    size_t n = llmc_response_item_count(resp), hits = 0;
    for (size_t i = 0; i < n; i++)
        hits += llmc_response_item_hit(resp, i) ? 1 : 0;
    const char *cstatus;
    if (!r->caching || !llmc_response_cache_key(resp))
        cstatus = "BYPASS";
    else if (n > 0 && hits == n)
        cstatus = "HIT";
    else if (hits > 0)
        cstatus = "PARTIAL";
    else
        cstatus = unstored_status(miss_status(r), resp);
    size_t len;
    const char *text = llmc_response_text(resp, &len);
    if (strcmp(cstatus, "HIT") == 0) {
        llmc_saving sv;
        llmc_response_saved(resp, &sv, NULL);
        px_count_hit(r, len, &sv);
    } else if (strcmp(cstatus, "BYPASS") == 0)
        atomic_fetch_add(&s->m.bypass[EP_EMBED], 1);
    else
        atomic_fetch_add(&s->m.misses[EP_EMBED], 1);
    /* The first item's key identifies the call (each item has its own);
     * r->key stays the coalescing key (the flight is found by it). */
    if (llmc_response_cache_key(resp))
        llmc_buf_puts(&r->resp_key, llmc_response_cache_key(resp));
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_set(&b, text, len);
    int64_t age = llmc_response_cache_age_ms(resp);
    px_finish_plain(r, 200, &b, cstatus, age > 0 ? age / 1000 : 0);
    llmc_buf_free(&b);
    llmc_response_free(resp);
}

static void run_job(preq *r)
{
    proxy_server *s = r->srv;
    int coalescible = s->cfg->coalesce && r->caching && !r->no_cache && !r->no_store &&
                      r->key.len > 0 && r->pass != PASS_ALONE;
    if (coalescible && px_join_flight(s, r))
        return; /* parked on a flight; the reference travels with it */
    if (r->ep == EP_EMBED)
        run_embedding(r);
    else
        run_completion(r);
    if (r->leader)
        px_land_flight(s, r);
    /* A waiter can be woken more than once (its leader failed, it waited
     * on the next one): it counts as coalesced once, when a leader's
     * upstream call answered it. */
    if (r->pass == PASS_AGAIN && r->answered_hit)
        atomic_fetch_add(&s->m.coalesced, 1);
    px_preq_unref(r);
}

void *px_worker_main(void *arg)
{
    proxy_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !s->qstop)
            pthread_cond_wait(&s->qcv, &s->qmu);
        if (!s->qhead) {
            pthread_mutex_unlock(&s->qmu);
            return NULL;
        }
        preq *r = s->qhead;
        s->qhead = r->qnext;
        if (!s->qhead)
            s->qtail = NULL;
        pthread_mutex_unlock(&s->qmu);
        run_job(r);
    }
}
