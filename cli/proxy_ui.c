/* The dashboard's data: a ring of counter samples taken by a sampler
 * thread, the backend's state, recent errors, and the /ui/data JSON. */
#include "proxy_ui.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define UI_TOP 10
#define UI_BACKEND_EVERY 1 /* samples between backend checks */

typedef struct ui_sample {
    int64_t t_ms; /* unix ms */
    ui_counters c;
    double usd, saved_s;
    uint64_t saved_tokens;
} ui_sample;

typedef struct ui_error {
    int64_t t_ms;
    int status;
    char path[64];
    char msg[240];
} ui_error;

typedef struct backend_state {
    int checked;
    int up;
    double ping_ms;
    char err[200];
    llmc_stats st;
    int have_st;
    json_object *extra; /* backend-specific counters */
} backend_state;

struct proxy_ui {
    llmc_cache *cache;
    llmc_savings *savings;
    const llmc_prices *prices;
    char prices_msg[300];
    ui_read_fn read;
    void *ud;
    int64_t started_ms;

    pthread_mutex_t mu; /* everything below */
    ui_sample ring[UI_SAMPLES];
    size_t head, n;
    ui_error errors[UI_ERRORS];
    size_t ehead, en;
    backend_state be;

    pthread_t th;
    int running;
    int stop;
    pthread_cond_t cv;
};

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stat_cb(void *ud, const char *name, int64_t value)
{
    json_object_object_add(ud, name, json_object_new_int64(value));
}

/* Ping and counters of the backend, outside the lock (may wait on the
 * network), then published. */
static void check_backend(proxy_ui *u)
{
    backend_state b;
    memset(&b, 0, sizeof b);
    b.checked = 1;
    if (u->cache) {
        uint64_t t0 = llmc_mono_ns();
        llmc_status st = llmc_cache_ping(u->cache);
        b.ping_ms = (double)(llmc_mono_ns() - t0) / 1e6;
        b.up = st == LLMC_OK;
        if (!b.up)
            snprintf(b.err, sizeof b.err, "%s", llmc_cache_errmsg(u->cache));
        b.have_st = llmc_cache_stats(u->cache, &b.st, sizeof b.st) == LLMC_OK;
        b.extra = json_object_new_object();
        llmc_cache_stats_foreach(u->cache, stat_cb, b.extra);
    }
    pthread_mutex_lock(&u->mu);
    json_object *old = u->be.extra;
    u->be = b;
    pthread_mutex_unlock(&u->mu);
    json_object_put(old);
}

static void take_sample(proxy_ui *u)
{
    ui_sample s;
    memset(&s, 0, sizeof s);
    s.t_ms = unix_ms();
    u->read(u->ud, &s.c);
    llmc_savings_row tot;
    llmc_savings_total(u->savings, &tot);
    s.usd = tot.usd;
    s.saved_s = tot.seconds;
    s.saved_tokens = tot.tokens;
    pthread_mutex_lock(&u->mu);
    u->ring[u->head] = s;
    u->head = (u->head + 1) % UI_SAMPLES;
    if (u->n < UI_SAMPLES)
        u->n++;
    pthread_mutex_unlock(&u->mu);
}

static void *sampler_main(void *arg)
{
    proxy_ui *u = arg;
    unsigned k = 0;
    pthread_mutex_lock(&u->mu);
    while (!u->stop) {
        pthread_mutex_unlock(&u->mu);
        take_sample(u);
        if (k++ % UI_BACKEND_EVERY == 0)
            check_backend(u);
        pthread_mutex_lock(&u->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += UI_SAMPLE_MS / 1000;
        ts.tv_nsec += (long)(UI_SAMPLE_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!u->stop && pthread_cond_timedwait(&u->cv, &u->mu, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

proxy_ui *proxy_ui_start(llmc_cache *cache, llmc_savings *savings, const llmc_prices *prices,
                         const char *prices_msg, ui_read_fn read, void *ud)
{
    proxy_ui *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->cache = cache;
    u->savings = savings;
    u->prices = prices;
    snprintf(u->prices_msg, sizeof u->prices_msg, "%s", prices_msg ? prices_msg : "");
    u->read = read;
    u->ud = ud;
    u->started_ms = unix_ms();
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    if (pthread_create(&u->th, NULL, sampler_main, u) != 0) {
        proxy_ui_stop(u);
        return NULL;
    }
    u->running = 1;
    return u;
}

void proxy_ui_stop(proxy_ui *u)
{
    if (!u)
        return;
    if (u->running) {
        pthread_mutex_lock(&u->mu);
        u->stop = 1;
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
        pthread_join(u->th, NULL);
    }
    json_object_put(u->be.extra);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
}

void proxy_ui_note_error(proxy_ui *u, int status, const char *path, const char *msg)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    ui_error *e = &u->errors[u->ehead];
    e->t_ms = unix_ms();
    e->status = status;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "");
    u->ehead = (u->ehead + 1) % UI_ERRORS;
    if (u->en < UI_ERRORS)
        u->en++;
    pthread_mutex_unlock(&u->mu);
}

/* ------------------------------------------------------------------ */
/* Savings by one label. */

typedef struct agg {
    char *label;
    uint64_t hits, tokens, unpriced;
    double usd, seconds;
} agg;

typedef struct agg_set {
    agg *a;
    size_t n, cap;
    int by_tenant;
    json_object *rows; /* every row, for the table */
} agg_set;

static void agg_row(void *ud, const llmc_savings_row *r)
{
    agg_set *s = ud;
    const char *l = s->by_tenant ? r->tenant : r->model;
    size_t i;
    for (i = 0; i < s->n; i++)
        if (strcmp(s->a[i].label, l) == 0)
            break;
    if (i == s->n) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 16;
            agg *na = realloc(s->a, nc * sizeof *na);
            if (!na)
                return;
            s->a = na;
            s->cap = nc;
        }
        memset(&s->a[i], 0, sizeof s->a[i]);
        s->a[i].label = strdup(l);
        if (!s->a[i].label)
            return;
        s->n++;
    }
    agg *g = &s->a[i];
    g->hits += r->hits;
    g->tokens += r->tokens;
    g->unpriced += r->unpriced_hits;
    g->usd += r->usd;
    g->seconds += r->seconds;
}

static int agg_cmp(const void *a, const void *b)
{
    const agg *x = a, *y = b;
    if (x->usd != y->usd)
        return x->usd < y->usd ? 1 : -1;
    if (x->hits != y->hits)
        return x->hits < y->hits ? 1 : -1;
    return strcmp(x->label, y->label);
}

static json_object *top_of(llmc_savings *sv, int by_tenant, const llmc_prices *prices)
{
    agg_set s;
    memset(&s, 0, sizeof s);
    s.by_tenant = by_tenant;
    llmc_savings_foreach(sv, agg_row, &s);
    qsort(s.a, s.n, sizeof *s.a, agg_cmp);
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < s.n; i++) {
        if (i < UI_TOP) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "name", json_object_new_string(s.a[i].label));
            json_object_object_add(o, "hits", json_object_new_int64((int64_t)s.a[i].hits));
            json_object_object_add(o, "tokens", json_object_new_int64((int64_t)s.a[i].tokens));
            json_object_object_add(o, "usd", json_object_new_double(s.a[i].usd));
            json_object_object_add(o, "seconds", json_object_new_double(s.a[i].seconds));
            json_object_object_add(o, "unpriced_hits",
                                   json_object_new_int64((int64_t)s.a[i].unpriced));
            if (!by_tenant)
                json_object_object_add(
                    o, "priced",
                    json_object_new_boolean(llmc_prices_lookup(prices, s.a[i].label, NULL, NULL)));
            json_object_array_add(arr, o);
        }
        free(s.a[i].label);
    }
    free(s.a);
    return arr;
}

/* ------------------------------------------------------------------ */
/* The document. */

static json_object *u64(uint64_t v)
{
    return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

void proxy_ui_data(proxy_ui *u, int64_t since_ms, llmc_buf *out)
{
    json_object *o = json_object_new_object();
    json_object *series = json_object_new_object();
    const char *const cols[] = {"t",        "requests", "hits",     "misses",  "errors",
                                "up_calls", "up_us",    "hit_n",    "hit_us",  "usd",
                                "tokens",   "saved_s"};
    enum { NCOLS = sizeof cols / sizeof cols[0] };
    json_object *col[NCOLS];
    for (int i = 0; i < NCOLS; i++) {
        col[i] = json_object_new_array();
        json_object_object_add(series, cols[i], col[i]);
    }
    ui_counters now;
    memset(&now, 0, sizeof now);
    u->read(u->ud, &now);
    llmc_savings_row tot;
    llmc_savings_total(u->savings, &tot);

    pthread_mutex_lock(&u->mu);
    for (size_t k = 0; k < u->n; k++) {
        const ui_sample *s = &u->ring[(u->head + UI_SAMPLES - u->n + k) % UI_SAMPLES];
        if (s->t_ms <= since_ms)
            continue;
        json_object_array_add(col[0], json_object_new_int64(s->t_ms));
        json_object_array_add(col[1], u64(s->c.requests));
        json_object_array_add(col[2], u64(s->c.hits));
        json_object_array_add(col[3], u64(s->c.misses));
        json_object_array_add(col[4], u64(s->c.errors));
        json_object_array_add(col[5], u64(s->c.upstream_calls));
        json_object_array_add(col[6], u64(s->c.upstream_us));
        json_object_array_add(col[7], u64(s->c.hits_timed));
        json_object_array_add(col[8], u64(s->c.hit_us));
        json_object_array_add(col[9], json_object_new_double(s->usd));
        json_object_array_add(col[10], u64(s->saved_tokens));
        json_object_array_add(col[11], json_object_new_double(s->saved_s));
    }
    json_object *errs = json_object_new_array();
    for (size_t k = 0; k < u->en; k++) {
        const ui_error *e = &u->errors[(u->ehead + UI_ERRORS - 1 - k) % UI_ERRORS];
        json_object *eo = json_object_new_object();
        json_object_object_add(eo, "t", json_object_new_int64(e->t_ms));
        json_object_object_add(eo, "status", json_object_new_int(e->status));
        json_object_object_add(eo, "path", json_object_new_string(e->path));
        json_object_object_add(eo, "message", json_object_new_string(e->msg));
        json_object_array_add(errs, eo);
    }
    json_object *be = json_object_new_object();
    if (u->cache) {
        json_object_object_add(be, "name",
                               json_object_new_string(llmc_cache_backend_name(u->cache)));
        json_object_object_add(be, "url", json_object_new_string(llmc_cache_url(u->cache)));
    }
    json_object_object_add(be, "checked", json_object_new_boolean(u->be.checked));
    json_object_object_add(be, "up", json_object_new_boolean(u->be.up));
    json_object_object_add(be, "ping_ms", json_object_new_double(u->be.ping_ms));
    if (u->be.err[0])
        json_object_object_add(be, "error", json_object_new_string(u->be.err));
    if (u->be.have_st) {
        json_object_object_add(be, "breaker_open", json_object_new_boolean(u->be.st.breaker_open));
        json_object_object_add(be, "errors", u64(u->be.st.errors));
        json_object_object_add(be, "get_p50_ms",
                               json_object_new_double((double)u->be.st.get_ns_p50 / 1e6));
        json_object_object_add(be, "get_p99_ms",
                               json_object_new_double((double)u->be.st.get_ns_p99 / 1e6));
    }
    if (u->be.extra)
        json_object_object_add(be, "stats", json_object_get(u->be.extra));
    pthread_mutex_unlock(&u->mu);

    json_object_object_add(o, "now", json_object_new_int64(unix_ms()));
    json_object_object_add(o, "started", json_object_new_int64(u->started_ms));
    json_object_object_add(o, "sample_ms", json_object_new_int(UI_SAMPLE_MS));
    json_object_object_add(o, "version", json_object_new_string(llmc_version()));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "requests", u64(now.requests));
    json_object_object_add(t, "hits", u64(now.hits));
    json_object_object_add(t, "misses", u64(now.misses));
    json_object_object_add(t, "bypass", u64(now.bypass));
    json_object_object_add(t, "errors", u64(now.errors));
    uint64_t cacheable = now.hits + now.misses;
    json_object_object_add(t, "hit_ratio",
                           json_object_new_double(cacheable ? (double)now.hits / (double)cacheable
                                                            : 0.0));
    json_object_object_add(t, "upstream_calls", u64(now.upstream_calls));
    json_object_object_add(t, "upstream_avg_ms",
                           json_object_new_double(now.upstream_calls
                                                      ? (double)now.upstream_us / 1e3 /
                                                            (double)now.upstream_calls
                                                      : 0.0));
    json_object_object_add(t, "hit_avg_ms",
                           json_object_new_double(now.hits_timed ? (double)now.hit_us / 1e3 /
                                                                       (double)now.hits_timed
                                                                 : 0.0));
    json_object_object_add(t, "inflight", json_object_new_int64(now.inflight));
    json_object_object_add(t, "saved_usd", json_object_new_double(tot.usd));
    json_object_object_add(t, "saved_tokens", u64(tot.tokens));
    json_object_object_add(t, "saved_seconds", json_object_new_double(tot.seconds));
    json_object_object_add(t, "unpriced_hits", u64(tot.unpriced_hits));
    json_object_object_add(t, "untimed_hits", u64(tot.untimed_hits));
    json_object_object_add(o, "totals", t);
    json_object_object_add(o, "series", series);
    json_object_object_add(o, "top_models", top_of(u->savings, 0, u->prices));
    json_object_object_add(o, "top_tenants", top_of(u->savings, 1, NULL));
    json_object_object_add(o, "backend", be);
    json_object_object_add(o, "errors", errs);
    json_object *pr = json_object_new_object();
    json_object_object_add(pr, "loaded", json_object_new_boolean(u->prices != NULL));
    json_object_object_add(pr, "models", json_object_new_int64((int64_t)llmc_prices_count(u->prices)));
    if (llmc_prices_as_of(u->prices))
        json_object_object_add(pr, "as_of", json_object_new_string(llmc_prices_as_of(u->prices)));
    if (llmc_prices_source(u->prices))
        json_object_object_add(pr, "source",
                               json_object_new_string(llmc_prices_source(u->prices)));
    if (u->prices_msg[0])
        json_object_object_add(pr, "error", json_object_new_string(u->prices_msg));
    json_object_object_add(o, "prices", pr);

    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    llmc_buf_set(out, s, len);
    json_object_put(o);
}
