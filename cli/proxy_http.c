/* The caching proxy's HTTP server (libmicrohttpd).
 *
 * Threads: libmicrohttpd's pool (epoll, one per CPU by default) parses
 * HTTP and answers everything that does not wait: the non-streamed cache
 * hit is computed right there (parse, key, backend get, splice) because
 * it is the product. Everything that waits (an upstream call, a stream, a
 * coalesced request) is handed to a pool of worker threads while the
 * connection is suspended (MHD_suspend_connection), so a slow provider
 * never blocks the HTTP threads; the worker resumes the connection when
 * the answer, or the next stream chunk, is there.
 *
 * Coalescing: the first cacheable miss for a key becomes the leader of a
 * "flight" and goes upstream; identical requests that arrive meanwhile
 * park on the flight (no thread held). When the leader is done they run
 * again and find the entry in the cache. A reaper thread sends waiters
 * whose wait exceeded the timeout upstream on their own.
 *
 * Lifetime of a request (preq): one reference for libmicrohttpd (dropped
 * in the request-completed callback) and one per queued job. The
 * connection pointer is only used while the request is live and not
 * completed; `gone` marks a finished or aborted connection so a worker
 * never resumes a dead one. */
#include "proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

enum endpoint {
    EP_UNKNOWN,
    EP_CHAT,
    EP_TEXT,
    EP_EMBED,
    EP_MODELS,
    EP_HEALTH,
    EP_METRICS,
    EP_PING,
    EP_DELETE,
    EP_FLUSH,
    EP_COUNT_
};

static const char *const ep_label[EP_COUNT_] = {
    "other", "chat", "completions", "embeddings", "models", "health",
    "metrics", "cache_ping", "cache_delete", "cache_flush",
};

/* Upstream latency histogram bounds, seconds. */
static const double lat_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                    1,     2.5,  5,     10,   30,  60,  120};
#define N_LAT (sizeof lat_bounds / sizeof lat_bounds[0])

typedef struct metrics {
    _Atomic uint64_t requests[EP_COUNT_];
    _Atomic uint64_t hits[EP_COUNT_];
    _Atomic uint64_t misses[EP_COUNT_];
    _Atomic uint64_t bypass[EP_COUNT_];
    _Atomic uint64_t coalesced;
    _Atomic uint64_t coalesce_timeouts;
    _Atomic uint64_t status_2xx, status_4xx, status_5xx;
    _Atomic uint64_t errors_upstream, errors_client, errors_internal, auth_failures;
    _Atomic uint64_t bytes_from_cache, tokens_from_cache;
    _Atomic uint64_t upstream_calls;
    _Atomic uint64_t lat_buckets[N_LAT + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t client_aborts;
    _Atomic int64_t inflight;
} metrics;

typedef struct preq preq;

typedef struct flight {
    struct flight *next;
    char *key;
    preq *waiters;
} flight;

#define FLIGHT_BUCKETS 256

/* The request -> key memo. Computing a key means parsing the JSON,
 * routing, canonicalising and hashing; for a body seen before (byte for
 * byte, same endpoint, tenant and namespace header) the key is the same,
 * so the hit path can skip all of it. Only bodies without cache controls
 * of their own are memoised: their key depends on nothing else. */
#define MEMO_SLOTS 4096
typedef struct memo_slot {
    pthread_mutex_t mu;
    uint64_t h;
    char *blob;      /* endpoint, tenant, namespace header, body */
    size_t blob_len;
    char *key;
    size_t key_len;
    int stream;
} memo_slot;

struct proxy_server {
    const proxy_config *cfg;
    llmc_cache *cache;
    llmc_client *client;
    struct MHD_Daemon *mhd;
    int port;
    atomic_int stopping;
    atomic_int nontcp; /* a Unix-socket connection was added */
    metrics m;
    char *models_json;
    size_t models_len;
    char **secrets; /* provider and proxy keys, scrubbed from messages */
    size_t n_secrets;

    /* Worker pool. */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    preq *qhead, *qtail;
    int qstop;
    pthread_t *workers;
    int n_workers;

    /* Coalescing. */
    pthread_mutex_t fmu;
    flight *flights[FLIGHT_BUCKETS];
    pthread_t reaper;
    int reaper_on;
    pthread_cond_t rcv;

    memo_slot *memo;

    /* Graceful stop. */
    pthread_mutex_t imu;
    pthread_cond_t icv;
};

enum pass { PASS_FIRST, PASS_AGAIN, PASS_ALONE };

struct preq {
    proxy_server *srv;
    struct MHD_Connection *conn;
    enum endpoint ep;
    const char *method;
    char path[64];
    uint64_t t0;
    atomic_int refs;
    int handled;   /* the request was looked at (final access-handler call) */
    int queued;    /* a response was queued */
    llmc_buf body;
    int too_big;
    const proxy_key *tenant;

    /* Completion requests. */
    llmc_request *req;
    llmc_call_type call;
    int stream;
    int caching, no_cache, no_store;
    int64_t max_age_ms;
    llmc_buf key;  /* the cache key (chat/text), or the coalescing key */
    llmc_buf resp_key; /* x-llmcache-key of an embedding call (first item) */
    enum pass pass;
    int leader;
    int coalesced;
    uint64_t deadline_ns;
    preq *wnext;   /* next waiter on a flight */
    preq *qnext;   /* next in the job queue */

    /* Results, under mu. */
    pthread_mutex_t mu;
    int suspended;
    int gone;
    int ready;          /* a plain result (or an error) is in out */
    int streaming;      /* stream chunks are flowing through sbuf */
    int s_done;
    int status;
    llmc_buf out;       /* plain body */
    const char *ctype;
    const char *cache_status;
    int64_t age_s;
    llmc_buf sbuf;
    size_t spos;
};

/* ------------------------------------------------------------------ */
/* Small helpers. */

static uint64_t now_ns(void)
{
    return llmc_mono_ns();
}

static void preq_unref(preq *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    llmc_request_free(r->req);
    llmc_buf_free(&r->body);
    llmc_buf_free(&r->key);
    llmc_buf_free(&r->resp_key);
    llmc_buf_free(&r->out);
    llmc_buf_free(&r->sbuf);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Replace any configured secret inside msg with "***": provider error
 * messages can quote what they were sent. */
static void scrub(const proxy_server *s, char *msg)
{
    for (size_t i = 0; i < s->n_secrets; i++) {
        size_t n = strlen(s->secrets[i]);
        if (n < 4)
            continue;
        char *p;
        while ((p = strstr(msg, s->secrets[i])) != NULL) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, strlen(p + n) + 1);
        }
    }
}

static const char *error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* An OpenAI-style error object into out. */
static void error_json(llmc_buf *out, int status, const char *code, const char *msg)
{
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "type", json_object_new_string(error_type(status)));
    json_object_object_add(e, "param", NULL);
    json_object_object_add(e, "code", code ? json_object_new_string(code) : NULL);
    json_object_object_add(o, "error", e);
    llmc_buf_clear(out);
    llmc_buf_puts(out, json_object_to_json_string_ext(o, JSON_FLAGS));
    json_object_put(o);
}

static int status_for(const llmc_err *e)
{
    switch (e->status) {
    case LLMC_EAUTH:
    case LLMC_ERATELIMIT:
    case LLMC_ECONTEXT:
    case LLMC_EBADREQUEST:
    case LLMC_EUPSTREAM:
    case LLMC_EPROVIDER:
        if (e->native >= 400 && e->native <= 599)
            return (int)e->native;
        break;
    default:
        break;
    }
    switch (e->status) {
    case LLMC_EINVAL:
    case LLMC_ECONTEXT:
    case LLMC_EBADREQUEST:
    case LLMC_ENOTSUP:
        return 400;
    case LLMC_ENOTFOUND:
        return 404;
    case LLMC_EAUTH:
        return 401;
    case LLMC_EPERM:
        return 403;
    case LLMC_ETOOBIG:
        return 413;
    case LLMC_ERATELIMIT:
        return 429;
    case LLMC_ETIMEDOUT:
        return 504;
    case LLMC_ECONN:
    case LLMC_ESTREAM:
    case LLMC_EPROTO:
    case LLMC_EUPSTREAM:
    case LLMC_EPROVIDER:
        return 502;
    default:
        return 500;
    }
}

static const char *error_code(const llmc_err *e, int status)
{
    if (e->status == LLMC_ECONTEXT)
        return "context_length_exceeded";
    if (status == 401)
        return "invalid_api_key";
    if (status == 404 && e->status == LLMC_ENOTFOUND)
        return "model_not_found";
    if (status == 429)
        return "rate_limit_exceeded";
    return NULL;
}

static void count_status(proxy_server *s, int status)
{
    if (status < 300)
        atomic_fetch_add(&s->m.status_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&s->m.status_4xx, 1);
    else
        atomic_fetch_add(&s->m.status_5xx, 1);
}

/* ------------------------------------------------------------------ */
/* Queueing responses (HTTP threads only). */

static void add_cache_headers(preq *r, struct MHD_Response *resp, const char *status,
                              int64_t age_s)
{
    if (!status)
        return;
    char age[32];
    MHD_add_response_header(resp, "x-llmcache-status", status);
    if (r->ep == EP_EMBED ? r->resp_key.len > 0 : (r->key.len && r->caching))
        MHD_add_response_header(resp, "x-llmcache-key",
                                r->ep == EP_EMBED ? r->resp_key.data : r->key.data);
    snprintf(age, sizeof age, "%lld", (long long)(age_s > 0 ? age_s : 0));
    MHD_add_response_header(resp, "age", age);
    if (r->coalesced)
        MHD_add_response_header(resp, "x-llmcache-coalesced", "true");
}

static void access_log(preq *r, int status, const char *cstatus)
{
    if (r->srv->cfg->quiet)
        return;
    fprintf(stderr, "llmcache serve: %s %s %d %s %.1fms\n", r->method, r->path, status,
            cstatus ? cstatus : "-", (double)(now_ns() - r->t0) / 1e6);
}

/* Queue body (taken over: malloc'd, freed by libmicrohttpd). */
static enum MHD_Result queue_owned(preq *r, int status, const char *ctype, char *body,
                                   size_t len, const char *cstatus, int64_t age_s,
                                   const char *extra_key)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    add_cache_headers(r, resp, cstatus, age_s);
    if (extra_key)
        MHD_add_response_header(resp, "x-llmcache-key", extra_key);
    if (atomic_load(&r->srv->stopping))
        MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    count_status(r->srv, status);
    access_log(r, status, cstatus);
    return ret;
}

static enum MHD_Result queue_buf(preq *r, int status, const char *ctype, llmc_buf *b,
                                 const char *cstatus, int64_t age_s)
{
    size_t len = b->len;
    char *p = b->data ? malloc(len + 1) : malloc(1);
    if (!p)
        return MHD_NO;
    if (len)
        memcpy(p, b->data, len);
    return queue_owned(r, status, ctype, p, len, cstatus, age_s, NULL);
}

static enum MHD_Result queue_error(preq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result queue_error(preq *r, int status, const char *code, const char *fmt, ...)
{
    char msg[LLMC_ERRMSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    scrub(r->srv, msg);
    llmc_buf b = LLMC_BUF_INIT;
    error_json(&b, status, code, msg);
    if (status == 401)
        atomic_fetch_add(&r->srv->m.auth_failures, 1);
    else if (status < 500)
        atomic_fetch_add(&r->srv->m.errors_client, 1);
    else
        atomic_fetch_add(&r->srv->m.errors_internal, 1);
    enum MHD_Result ret = queue_buf(r, status, "application/json", &b, NULL, 0);
    llmc_buf_free(&b);
    return ret;
}

static enum MHD_Result queue_json(preq *r, int status, json_object *o)
{
    size_t len;
    const char *s = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    char *p = malloc(len + 1);
    if (!p) {
        json_object_put(o);
        return MHD_NO;
    }
    memcpy(p, s, len + 1);
    json_object_put(o);
    return queue_owned(r, status, "application/json", p, len, NULL, 0, NULL);
}

/* ------------------------------------------------------------------ */
/* Results from workers. */

/* Wake the connection if it is parked (caller holds r->mu). */
static void wake(preq *r)
{
    if (r->suspended && !r->gone) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
    }
}

static void finish_plain(preq *r, int status, llmc_buf *body, const char *cstatus,
                         int64_t age_s)
{
    pthread_mutex_lock(&r->mu);
    llmc_buf tmp = r->out;
    r->out = *body;
    *body = tmp;
    r->status = status;
    r->ctype = "application/json";
    r->cache_status = cstatus;
    r->age_s = age_s;
    r->ready = 1;
    wake(r);
    pthread_mutex_unlock(&r->mu);
}

static int upstream_status(llmc_status st)
{
    switch (st) {
    case LLMC_EAUTH:
    case LLMC_ERATELIMIT:
    case LLMC_EUPSTREAM:
    case LLMC_EPROVIDER:
    case LLMC_ECONN:
    case LLMC_ETIMEDOUT:
    case LLMC_ESTREAM:
    case LLMC_EBADREQUEST:
    case LLMC_ECONTEXT:
    case LLMC_EPROTO:
        return 1;
    default:
        return 0;
    }
}

/* A failed call: an OpenAI-style error with the provider's status, or,
 * when stream headers are already out, an error event that ends the
 * stream (as OpenAI does). */
static void finish_error(preq *r, const llmc_err *e)
{
    int status = status_for(e);
    char msg[LLMC_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", e->msg[0] ? e->msg : llmc_strerror(e->status));
    scrub(r->srv, msg);
    if (e->status == LLMC_ECANCELED)
        ; /* the client left: nobody to count it for */
    else if (upstream_status(e->status))
        atomic_fetch_add(&r->srv->m.errors_upstream, 1);
    else if (status < 500)
        atomic_fetch_add(&r->srv->m.errors_client, 1);
    else
        atomic_fetch_add(&r->srv->m.errors_internal, 1);
    llmc_buf b = LLMC_BUF_INIT;
    error_json(&b, status, error_code(e, status), msg);
    pthread_mutex_lock(&r->mu);
    if (r->streaming) {
        llmc_buf_puts(&r->sbuf, "data: ");
        llmc_buf_append(&r->sbuf, b.data, b.len);
        llmc_buf_puts(&r->sbuf, "\n\n");
        r->s_done = 1;
        wake(r);
        pthread_mutex_unlock(&r->mu);
        llmc_buf_free(&b);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    finish_plain(r, status, &b, r->caching ? "MISS" : "BYPASS", 0);
    llmc_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* The hit path: an entry's body with "cache":true spliced in. */

static char *hit_body(const char *body, size_t blen, size_t *outlen)
{
    static const char mark[] = "\"cache\":true";
    size_t i = 0;
    while (i < blen && isspace((unsigned char)body[i]))
        i++;
    if (i >= blen || body[i] != '{')
        return NULL;
    size_t j = i + 1;
    while (j < blen && isspace((unsigned char)body[j]))
        j++;
    int empty = j < blen && body[j] == '}';
    size_t tl = blen + sizeof mark - 1 + (empty ? 0 : 1);
    char *p = malloc(tl + 1), *q = p;
    if (!p)
        return NULL;
    memcpy(q, body, i + 1);
    q += i + 1;
    memcpy(q, mark, sizeof mark - 1);
    q += sizeof mark - 1;
    if (!empty)
        *q++ = ',';
    memcpy(q, body + i + 1, blen - i - 1);
    q[blen - i - 1] = '\0';
    *outlen = tl;
    return p;
}

static uint64_t total_tokens(const char *body, size_t len)
{
    static const char pat[] = "\"total_tokens\":";
    const char *p = memmem(body, len, pat, sizeof pat - 1);
    if (!p)
        return 0;
    long long v = strtoll(p + sizeof pat - 1, NULL, 10);
    return v > 0 ? (uint64_t)v : 0;
}

static void count_hit(proxy_server *s, enum endpoint ep, size_t bytes, uint64_t tokens)
{
    atomic_fetch_add(&s->m.hits[ep], 1);
    atomic_fetch_add(&s->m.bytes_from_cache, bytes);
    atomic_fetch_add(&s->m.tokens_from_cache, tokens);
}

/* Look the request's key up. 1 = hit (body in *out, malloc'd), 0 = miss. */
static int lookup(preq *r, char **out, size_t *outlen, int64_t *age_s)
{
    llmc_lookup lk = LLMC_LOOKUP_INIT;
    llmc_status st = llmc_cache_get_entry(r->srv->cache, r->key.data, r->key.len,
                                          r->max_age_ms, LLMC_ENTRY_SOFT, &lk);
    int hit = 0;
    if (st == LLMC_OK && lk.entry.call == r->call) {
        *out = hit_body(lk.entry.body, lk.entry.body_len, outlen);
        if (*out) {
            *age_s = lk.age_ms / 1000;
            hit = 1;
            count_hit(r->srv, r->ep, lk.entry.body_len,
                      total_tokens(lk.entry.body, lk.entry.body_len));
        }
    }
    llmc_lookup_free(&lk);
    return hit;
}

/* ------------------------------------------------------------------ */
/* Jobs. */

static void enqueue(proxy_server *s, preq *r)
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

static unsigned bucket_of(const char *key)
{
    /* Keys end in hex digests: any few bytes are well mixed. */
    unsigned h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % FLIGHT_BUCKETS;
}

/* Join the flight for r->key, or open one as its leader. Returns 1 when
 * r now waits (the job ends here), 0 when r leads. */
static int join_flight(proxy_server *s, preq *r)
{
    unsigned b = bucket_of(r->key.data);
    pthread_mutex_lock(&s->fmu);
    flight *f = s->flights[b];
    while (f && strcmp(f->key, r->key.data) != 0)
        f = f->next;
    if (f) {
        if (!r->deadline_ns)
            r->deadline_ns = now_ns() + (uint64_t)s->cfg->coalesce_timeout_ms * 1000000u;
        if (now_ns() < r->deadline_ns) {
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

/* The leader is done: its waiters run again (and find the entry). */
static void land_flight(proxy_server *s, preq *r)
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
        atomic_fetch_add(&s->m.coalesced, 1);
        enqueue(s, w);
        w = n;
    }
}

static void *reaper_main(void *arg)
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
        uint64_t now = now_ns();
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
                enqueue(s, expired);
                expired = n;
            }
            pthread_mutex_lock(&s->fmu);
        }
    }
    pthread_mutex_unlock(&s->fmu);
    return NULL;
}

static void observe_upstream(proxy_server *s, uint64_t ns)
{
    double sec = (double)ns / 1e9;
    size_t i = 0;
    while (i < N_LAT && sec > lat_bounds[i])
        i++;
    atomic_fetch_add(&s->m.lat_buckets[i], 1);
    atomic_fetch_add(&s->m.lat_sum_us, ns / 1000);
    atomic_fetch_add(&s->m.upstream_calls, 1);
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
    llmc_buf_puts(&r->sbuf, "data: ");
    llmc_buf_append(&r->sbuf, s, len);
    llmc_buf_puts(&r->sbuf, "\n\n");
    if (!r->streaming) {
        r->streaming = 1;
        r->status = 200;
    }
    wake(r);
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

static void run_completion(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    const char *cstatus = miss_status(r);
    int64_t age_s = 0;
    int read_cache = r->caching && !r->no_cache;
    if (read_cache) {
        if (!r->stream) {
            char *body;
            size_t blen;
            if (lookup(r, &body, &blen, &age_s)) {
                llmc_buf b = {body, blen, blen + 1};
                finish_plain(r, 200, &b, "HIT", age_s);
                llmc_buf_free(&b);
                return;
            }
        } else {
            llmc_lookup lk = LLMC_LOOKUP_INIT;
            if (llmc_cache_get_entry(s->cache, r->key.data, r->key.len, r->max_age_ms,
                                     LLMC_ENTRY_SOFT, &lk) == LLMC_OK &&
                lk.entry.call == r->call) {
                /* The library replays it (and counts nothing upstream). */
                cstatus = "HIT";
                age_s = lk.age_ms / 1000;
                count_hit(s, r->ep, lk.entry.body_len,
                          total_tokens(lk.entry.body, lk.entry.body_len));
            }
            llmc_lookup_free(&lk);
        }
        if (strcmp(cstatus, "HIT") != 0) {
            /* Just looked: the library need not look again. */
            llmc_request_set_no_cache(r->req, 1);
        }
    }
    int hit = strcmp(cstatus, "HIT") == 0;
    if (!hit) {
        if (r->caching)
            atomic_fetch_add(&s->m.misses[r->ep], 1);
        else
            atomic_fetch_add(&s->m.bypass[r->ep], 1);
    }
    pthread_mutex_lock(&r->mu);
    r->cache_status = cstatus;
    r->age_s = age_s;
    pthread_mutex_unlock(&r->mu);

    llmc_response *resp = NULL;
    uint64_t t0 = now_ns();
    llmc_status st = llmc_client_call(s->client, r->call, r->req, r->stream ? on_chunk : NULL,
                                      r, &resp, &err);
    if (!hit && llmc_response_attempts(resp) > 0)
        observe_upstream(s, now_ns() - t0);
    else if (!hit && st != LLMC_OK && st != LLMC_EINVAL && st != LLMC_ECANCELED)
        observe_upstream(s, now_ns() - t0);
    if (st == LLMC_ECANCELED) {
        atomic_fetch_add(&s->m.client_aborts, 1);
    }
    if (r->stream) {
        if (st != LLMC_OK) {
            finish_error(r, &err);
        } else {
            pthread_mutex_lock(&r->mu);
            if (!r->streaming) {
                r->streaming = 1;
                r->status = 200;
            }
            llmc_buf_puts(&r->sbuf, "data: [DONE]\n\n");
            r->s_done = 1;
            wake(r);
            pthread_mutex_unlock(&r->mu);
        }
        llmc_response_free(resp);
        return;
    }
    if (st != LLMC_OK) {
        finish_error(r, &err);
        return;
    }
    size_t len;
    const char *text = llmc_response_text(resp, &len);
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_set(&b, text, len);
    if (llmc_response_cache_hit(resp)) {
        cstatus = "HIT";
        age_s = llmc_response_cache_age_ms(resp) / 1000;
    }
    finish_plain(r, 200, &b, cstatus, age_s);
    llmc_buf_free(&b);
    llmc_response_free(resp);
}

static void run_embedding(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    llmc_response *resp = NULL;
    uint64_t t0 = now_ns();
    llmc_status st = llmc_client_call(s->client, LLMC_CALL_EMBEDDING, r->req, NULL, NULL,
                                      &resp, &err);
    if (st != LLMC_OK) {
        if (st != LLMC_EINVAL)
            observe_upstream(s, now_ns() - t0);
        atomic_fetch_add(&s->m.misses[EP_EMBED], 1);
        finish_error(r, &err);
        return;
    }
    if (llmc_response_attempts(resp) > 0)
        observe_upstream(s, now_ns() - t0);
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
        cstatus = miss_status(r);
    size_t len;
    const char *text = llmc_response_text(resp, &len);
    if (strcmp(cstatus, "HIT") == 0)
        count_hit(s, EP_EMBED, len, total_tokens(text, len));
    else if (strcmp(cstatus, "BYPASS") == 0)
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
    finish_plain(r, 200, &b, cstatus, age > 0 ? age / 1000 : 0);
    llmc_buf_free(&b);
    llmc_response_free(resp);
}

static void run_job(preq *r)
{
    proxy_server *s = r->srv;
    int coalescible = s->cfg->coalesce && r->caching && !r->no_cache && !r->no_store &&
                      r->key.len > 0 && r->pass != PASS_ALONE;
    if (coalescible && join_flight(s, r))
        return; /* parked on a flight; the reference travels with it */
    if (r->ep == EP_EMBED)
        run_embedding(r);
    else
        run_completion(r);
    if (r->leader)
        land_flight(s, r);
    preq_unref(r);
}

static void *worker_main(void *arg)
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

/* ------------------------------------------------------------------ */
/* Request preparation (HTTP thread). */

static const proxy_model *find_model(const proxy_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}

/* Constant-time comparison, so a key cannot be guessed byte by byte from
 * response times. */
static int key_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
    return diff == 0;
}

static const char *header(preq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* 0 ok (r->tenant set), -1 answered 401. */
static int authenticate(preq *r)
{
    const proxy_config *c = r->srv->cfg;
    if (c->n_keys == 0)
        return 0;
    const char *k = NULL;
    const char *h = header(r, "Authorization");
    if (h) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer ", 7) == 0) {
            k = h + 7;
            while (*k == ' ')
                k++;
        }
    }
    if (!k)
        k = header(r, "x-api-key");
    if (!k)
        k = header(r, "api-key");
    if (k) {
        size_t kl = strlen(k);
        while (kl && k[kl - 1] == ' ')
            kl--;
        for (size_t i = 0; i < c->n_keys; i++) {
            if (key_equal(k, kl, c->keys[i].key)) {
                r->tenant = &c->keys[i];
                return 0;
            }
        }
    }
    queue_error(r, 401, "invalid_api_key",
                k ? "Incorrect API key provided to the llmcache proxy."
                  : "You didn't provide an API key. Send it as \"Authorization: Bearer "
                    "<key>\".");
    return -1;
}

/* Namespace for this request: the tenant's, with the request's own
 * namespace nested inside it ("team-a:experiments"). NULL = the cache's. */
static int effective_ns(preq *r, const char *asked, llmc_buf *out)
{
    llmc_buf_clear(out);
    /* '=' is kept out of namespaces: tenants' preset keys use it, so the
     * two kinds of key never collide. */
    if (asked && (!*asked || strpbrk(asked, " \t\r\n=")))
        return -1;
    if (r->tenant && r->tenant->ns) {
        llmc_buf_puts(out, r->tenant->ns);
        if (asked) {
            llmc_buf_puts(out, ":");
            llmc_buf_puts(out, asked);
        }
        return 0;
    }
    if (asked)
        llmc_buf_puts(out, asked);
    return 0;
}

typedef struct body_controls {
    int no_cache, no_store, use_cache;
    int64_t max_age_ms;
    const char *ns, *key;
    json_object *root; /* owns the strings */
} body_controls;

static int seconds_ms(json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return -1;
    double d = json_object_get_double(v);
    if (!(d >= 0) || d > 1e11)
        return -1;
    *out = (int64_t)(d * 1000.0 + 0.5);
    return 0;
}

/* LiteLLM's `cache: {...}` as far as the proxy needs it (the library
 * validates it fully when it parses the request). Only parsed when the
 * body mentions "cache", so the hit path parses once. */
static void read_body_controls(const char *body, size_t len, body_controls *bc)
{
    memset(bc, 0, sizeof *bc);
    bc->use_cache = -1;
    bc->max_age_ms = -1;
    if (!memmem(body, len, "\"cach", 5))
        return;
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return;
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return;
    }
    bc->root = o;
    json_object *c, *v;
    if (json_object_object_get_ex(o, "caching", &c) && json_object_is_type(c, json_type_boolean))
        bc->use_cache = json_object_get_boolean(c);
    if (!json_object_object_get_ex(o, "cache", &c) || !json_object_is_type(c, json_type_object))
        return;
    if (json_object_object_get_ex(c, "no-cache", &v))
        bc->no_cache = json_object_get_boolean(v);
    if (json_object_object_get_ex(c, "no-store", &v))
        bc->no_store = json_object_get_boolean(v);
    if (json_object_object_get_ex(c, "use-cache", &v))
        bc->use_cache = json_object_get_boolean(v);
    if (json_object_object_get_ex(c, "s-maxage", &v) ||
        json_object_object_get_ex(c, "s-max-age", &v))
        seconds_ms(v, &bc->max_age_ms);
    if (json_object_object_get_ex(c, "namespace", &v) && json_object_is_type(v, json_type_string))
        bc->ns = json_object_get_string(v);
    if (json_object_object_get_ex(c, "key", &v) && json_object_is_type(v, json_type_string))
        bc->key = json_object_get_string(v);
}

/* Cache-Control: no-cache, no-store, max-age=N (the longest age accepted
 * from the cache, as in HTTP); -1 with *bad set on a malformed value. */
static int parse_cache_control(const char *h, preq *r, const char **bad)
{
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        size_t n = (size_t)(e - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 8 && strncasecmp(p, "no-cache", 8) == 0) {
            r->no_cache = 1;
        } else if (n == 8 && strncasecmp(p, "no-store", 8) == 0) {
            r->no_store = 1;
        } else if ((n > 8 && strncasecmp(p, "max-age=", 8) == 0) ||
                   (n > 9 && strncasecmp(p, "s-maxage=", 9) == 0)) {
            const char *v = p + (p[0] == 's' || p[0] == 'S' ? 9 : 8);
            char *end;
            errno = 0;
            long long s = strtoll(v, &end, 10);
            if (errno || end != p + n || s < 0) {
                *bad = "Cache-Control max-age must be a whole number of seconds >= 0";
                return -1;
            }
            r->max_age_ms = s > INT64_MAX / 1000 ? INT64_MAX : s * 1000;
        }
        /* Other directives (private, max-stale, ...) do not apply. */
        p = e;
    }
    return 0;
}

/* Prepare a completion / embedding request: 0 ok, -1 answered. */
static int prepare(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    if (r->body.len == 0) {
        queue_error(r, 400, NULL, "The request body is empty: send an OpenAI-format JSON "
                                  "object.");
        return -1;
    }
    body_controls bc;
    read_body_controls(r->body.data, r->body.len, &bc);
    llmc_status st = llmc_request_from_json(r->body.data, r->body.len, &r->req, &err);
    if (st != LLMC_OK) {
        json_object_put(bc.root);
        queue_error(r, 400, NULL, "%s", err.msg);
        return -1;
    }
    json_object *o = llmc_request_json(r->req), *v;
    /* Credentials and endpoints are the server's business: a client must
     * not redirect the server's provider key to a host of its choosing. */
    static const char *const strip[] = {"api_key", "api_base", "base_url", "api_version",
                                        "extra_headers", "headers", NULL};
    for (int i = 0; strip[i]; i++)
        json_object_object_del(o, strip[i]);
    if (!json_object_object_get_ex(o, "model", &v) || !json_object_is_type(v, json_type_string)) {
        json_object_put(bc.root);
        queue_error(r, 400, NULL, "request field \"model\" is %s",
                    v ? "not a string" : "missing");
        return -1;
    }
    const char *mname = json_object_get_string(v);
    const proxy_model *pm = find_model(s->cfg, mname);
    if (pm) {
        llmc_request_set_string(r->req, "model", pm->target);
        if (pm->api_base)
            llmc_request_set_string(r->req, "api_base", pm->api_base);
        if (pm->api_key)
            llmc_request_set_string(r->req, "api_key", pm->api_key);
        if (pm->api_version)
            llmc_request_set_string(r->req, "api_version", pm->api_version);
    } else if (!s->cfg->allow_unlisted && !json_object_object_get_ex(o, "mock_response", NULL)) {
        json_object_put(bc.root);
        queue_error(r, 404, "model_not_found",
                    "The model `%s` does not exist or is not served by this proxy (see GET "
                    "/v1/models).",
                    mname);
        return -1;
    }
    if (json_object_object_get_ex(o, "stream", &v) && json_object_get_boolean(v)) {
        if (r->ep == EP_TEXT) {
            json_object_put(bc.root);
            queue_error(r, 400, NULL,
                        "\"stream\": true is supported on /v1/chat/completions only");
            return -1;
        }
        r->stream = r->ep == EP_CHAT;
    }

    /* Cache controls: body first, headers win. */
    r->no_cache = bc.no_cache;
    r->no_store = bc.no_store;
    r->max_age_ms = bc.max_age_ms;
    const char *bad = NULL, *h;
    if ((h = header(r, "Cache-Control")) && parse_cache_control(h, r, &bad) != 0) {
        json_object_put(bc.root);
        queue_error(r, 400, NULL, "%s", bad);
        return -1;
    }
    if ((h = header(r, "x-llmcache-ttl"))) {
        char *end;
        errno = 0;
        long long t = strtoll(h, &end, 10);
        if (errno || *end || end == h || t < 0) {
            json_object_put(bc.root);
            queue_error(r, 400, NULL,
                        "header x-llmcache-ttl must be a whole number of seconds >= 0");
            return -1;
        }
        llmc_request_set_ttl(r->req, t);
    }
    if (r->no_cache)
        llmc_request_set_no_cache(r->req, 1);
    if (r->no_store)
        llmc_request_set_no_store(r->req, 1);
    if (r->max_age_ms >= 0)
        llmc_request_set_s_maxage(r->req, r->max_age_ms / 1000);
    const char *asked = header(r, "x-llmcache-namespace");
    if (!asked)
        asked = bc.ns;
    llmc_buf ns = LLMC_BUF_INIT;
    if (effective_ns(r, asked, &ns) != 0) {
        json_object_put(bc.root);
        llmc_buf_free(&ns);
        queue_error(r, 400, NULL,
                    "the cache namespace must be non-empty, without white space or '='");
        return -1;
    }
    if (ns.len)
        llmc_request_set_namespace(r->req, ns.data);
    if (bc.key && r->tenant && r->tenant->ns) {
        /* A preset key stays inside the tenant's namespace. */
        llmc_buf k = LLMC_BUF_INIT;
        llmc_buf_printf(&k, "%s:key=%s", r->tenant->ns, bc.key);
        llmc_request_set_cache_key(r->req, k.data);
        llmc_buf_free(&k);
    }
    llmc_buf_free(&ns);
    int use_cache = bc.use_cache;
    json_object_put(bc.root);
    r->caching = s->cache != NULL &&
                 (llmc_cache_get_mode(s->cache) == LLMC_MODE_DEFAULT_OFF ? use_cache == 1
                                                                          : use_cache != 0);
    r->call = r->ep == EP_CHAT ? LLMC_CALL_CHAT
              : r->ep == EP_TEXT ? LLMC_CALL_TEXT
                                 : LLMC_CALL_EMBEDDING;
    if (r->caching) {
        if (r->call != LLMC_CALL_EMBEDDING) {
            st = llmc_client_request_key(s->client, r->call, r->req, 0, &r->key, NULL, &err);
        } else {
            /* Coalescing key of an embedding call: all its item keys. */
            json_object *in = NULL;
            json_object_object_get_ex(o, "input", &in);
            size_t n = 1;
            if (json_object_is_type(in, json_type_array) && json_object_array_length(in) > 0 &&
                !json_object_is_type(json_object_array_get_idx(in, 0), json_type_int))
                n = json_object_array_length(in);
            llmc_buf all = LLMC_BUF_INIT, k = LLMC_BUF_INIT;
            st = LLMC_OK;
            for (size_t i = 0; i < n && st == LLMC_OK; i++) {
                st = llmc_client_request_key(s->client, r->call, r->req, i, &k, NULL, &err);
                llmc_buf_append(&all, k.data, k.len);
                llmc_buf_puts(&all, "\n");
            }
            if (st == LLMC_OK) {
                uint8_t d[32];
                char hex[65];
                llmc_sha256(all.data, all.len, d);
                llmc_hex(d, 32, hex);
                llmc_buf_printf(&r->key, "embeddings:%s", hex);
            }
            llmc_buf_free(&all);
            llmc_buf_free(&k);
        }
        if (st != LLMC_OK) {
            int code = status_for(&err);
            queue_error(r, code, error_code(&err, code), "%s", err.msg);
            return -1;
        }
    }
    return 0;
}

/* The memo's identity of a request: everything the key depends on
 * besides the (static) configuration. */
static void memo_blob(preq *r, const char *nsh, llmc_buf *out)
{
    llmc_buf_clear(out);
    llmc_buf_printf(out, "%d\n%p\n%s\n", (int)r->ep, (const void *)r->tenant,
                    nsh ? nsh : "\x01");
    llmc_buf_append(out, r->body.data, r->body.len);
}

static uint64_t memo_hash(const char *p, size_t n)
{
    /* FNV-1a over 8-byte words: equality is checked byte for byte, the
     * hash only picks the slot. */
    uint64_t h = 1469598103934665603ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h ^ (h >> 32);
}

static int memo_find(proxy_server *s, preq *r, const llmc_buf *blob, uint64_t h)
{
    memo_slot *m = &s->memo[h % MEMO_SLOTS];
    int found = 0;
    pthread_mutex_lock(&m->mu);
    if (m->blob && m->h == h && m->blob_len == blob->len &&
        memcmp(m->blob, blob->data, blob->len) == 0) {
        llmc_buf_set(&r->key, m->key, m->key_len);
        r->stream = m->stream;
        found = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

static void memo_store(proxy_server *s, preq *r, const llmc_buf *blob, uint64_t h)
{
    char *b = malloc(blob->len + 1), *k = malloc(r->key.len + 1);
    if (!b || !k) {
        free(b);
        free(k);
        return;
    }
    memcpy(b, blob->data, blob->len);
    memcpy(k, r->key.data, r->key.len + 1);
    memo_slot *m = &s->memo[h % MEMO_SLOTS];
    pthread_mutex_lock(&m->mu);
    char *ob = m->blob, *ok = m->key;
    m->h = h;
    m->blob = b;
    m->blob_len = blob->len;
    m->key = k;
    m->key_len = r->key.len;
    m->stream = r->stream;
    pthread_mutex_unlock(&m->mu);
    free(ob);
    free(ok);
}

/* Park the connection and hand the request to a worker. */
static enum MHD_Result dispatch(preq *r)
{
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&r->mu);
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mu);
    enqueue(r->srv, r);
    return MHD_YES;
}

static enum MHD_Result handle_completion(preq *r)
{
    proxy_server *s = r->srv;
    const char *nsh = header(r, "x-llmcache-namespace");
    int memoable = s->memo && r->ep != EP_EMBED && r->body.len > 0 &&
                   !memmem(r->body.data, r->body.len, "\"cach", 5);
    llmc_buf blob = LLMC_BUF_INIT;
    uint64_t h = 0;
    if (memoable) {
        memo_blob(r, nsh, &blob);
        h = memo_hash(blob.data, blob.len);
        if (memo_find(s, r, &blob, h)) {
            const char *cc = header(r, "Cache-Control"), *bad;
            r->call = r->ep == EP_CHAT ? LLMC_CALL_CHAT : LLMC_CALL_TEXT;
            r->caching = 1;
            if (!r->stream && (!cc || parse_cache_control(cc, r, &bad) == 0) && !r->no_cache) {
                char *body;
                size_t blen;
                int64_t age_s;
                if (lookup(r, &body, &blen, &age_s)) {
                    llmc_buf_free(&blob);
                    return queue_owned(r, 200, "application/json", body, blen, "HIT", age_s,
                                       NULL);
                }
            }
            /* Not a plain hit: do it all properly. */
            llmc_buf_clear(&r->key);
            r->no_cache = 0;
            r->max_age_ms = -1;
            r->stream = 0;
        }
    }
    if (prepare(r) != 0) {
        llmc_buf_free(&blob);
        return MHD_YES;
    }
    if (memoable && r->caching && r->key.len)
        memo_store(s, r, &blob, h);
    llmc_buf_free(&blob);
    if (r->call != LLMC_CALL_EMBEDDING && !r->stream && r->caching && !r->no_cache) {
        char *body;
        size_t blen;
        int64_t age_s;
        if (lookup(r, &body, &blen, &age_s))
            return queue_owned(r, 200, "application/json", body, blen, "HIT", age_s, NULL);
    }
    return dispatch(r);
}

/* SSE out of the stream buffer; parks the connection when it is empty. */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    preq *r = cls;
    pthread_mutex_lock(&r->mu);
    if (r->spos < r->sbuf.len) {
        size_t n = r->sbuf.len - r->spos;
        if (n > max)
            n = max;
        memcpy(buf, r->sbuf.data + r->spos, n);
        r->spos += n;
        if (r->spos == r->sbuf.len) {
            r->spos = 0;
            llmc_buf_clear(&r->sbuf);
        }
        pthread_mutex_unlock(&r->mu);
        return (ssize_t)n;
    }
    if (r->s_done) {
        pthread_mutex_unlock(&r->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* A worker woke the connection: queue what it produced. */
static enum MHD_Result on_resumed(preq *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->streaming) {
        const char *cs = r->cache_status;
        int64_t age = r->age_s;
        pthread_mutex_unlock(&r->mu);
        struct MHD_Response *resp =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, NULL);
        if (!resp)
            return MHD_NO;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        add_cache_headers(r, resp, cs, age);
        enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
        MHD_destroy_response(resp);
        r->queued = 1;
        count_status(r->srv, 200);
        access_log(r, 200, cs);
        return ret;
    }
    if (r->ready) {
        llmc_buf b = r->out;
        r->out = (llmc_buf)LLMC_BUF_INIT;
        int status = r->status;
        const char *cs = r->cache_status, *ct = r->ctype;
        int64_t age = r->age_s;
        pthread_mutex_unlock(&r->mu);
        enum MHD_Result ret = queue_buf(r, status, ct ? ct : "application/json", &b, cs, age);
        llmc_buf_free(&b);
        return ret;
    }
    /* Woken early (should not happen): park again. */
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mu);
    return MHD_YES;
}

/* ------------------------------------------------------------------ */
/* Other endpoints. */

static void metric(llmc_buf *b, const char *name, const char *type, const char *help)
{
    llmc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static enum MHD_Result handle_metrics(preq *r)
{
    proxy_server *s = r->srv;
    metrics *m = &s->m;
    llmc_buf b = LLMC_BUF_INIT;
    metric(&b, "llmcache_requests_total", "counter", "HTTP requests by endpoint.");
    for (int e = 1; e < EP_COUNT_; e++)
        llmc_buf_printf(&b, "llmcache_requests_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->requests[e]));
    metric(&b, "llmcache_cache_hits_total", "counter", "Answers served from the cache.");
    for (int e = EP_CHAT; e <= EP_EMBED; e++)
        llmc_buf_printf(&b, "llmcache_cache_hits_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->hits[e]));
    metric(&b, "llmcache_cache_misses_total", "counter",
           "Cacheable requests that went upstream.");
    for (int e = EP_CHAT; e <= EP_EMBED; e++)
        llmc_buf_printf(&b, "llmcache_cache_misses_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->misses[e]));
    metric(&b, "llmcache_cache_bypass_total", "counter",
           "Requests with caching off (use-cache false, no cache).");
    for (int e = EP_CHAT; e <= EP_EMBED; e++)
        llmc_buf_printf(&b, "llmcache_cache_bypass_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->bypass[e]));
    metric(&b, "llmcache_coalesced_total", "counter",
           "Requests that waited for an identical in-flight request instead of going "
           "upstream.");
    llmc_buf_printf(&b, "llmcache_coalesced_total %llu\n",
                    (unsigned long long)atomic_load(&m->coalesced));
    metric(&b, "llmcache_coalesce_timeouts_total", "counter",
           "Waiters that gave up waiting and went upstream themselves.");
    llmc_buf_printf(&b, "llmcache_coalesce_timeouts_total %llu\n",
                    (unsigned long long)atomic_load(&m->coalesce_timeouts));
    metric(&b, "llmcache_responses_total", "counter", "Responses by status class.");
    llmc_buf_printf(&b,
                    "llmcache_responses_total{class=\"2xx\"} %llu\n"
                    "llmcache_responses_total{class=\"4xx\"} %llu\n"
                    "llmcache_responses_total{class=\"5xx\"} %llu\n",
                    (unsigned long long)atomic_load(&m->status_2xx),
                    (unsigned long long)atomic_load(&m->status_4xx),
                    (unsigned long long)atomic_load(&m->status_5xx));
    metric(&b, "llmcache_errors_total", "counter", "Errors by kind.");
    llmc_buf_printf(&b,
                    "llmcache_errors_total{kind=\"upstream\"} %llu\n"
                    "llmcache_errors_total{kind=\"client\"} %llu\n"
                    "llmcache_errors_total{kind=\"auth\"} %llu\n"
                    "llmcache_errors_total{kind=\"internal\"} %llu\n",
                    (unsigned long long)atomic_load(&m->errors_upstream),
                    (unsigned long long)atomic_load(&m->errors_client),
                    (unsigned long long)atomic_load(&m->auth_failures),
                    (unsigned long long)atomic_load(&m->errors_internal));
    metric(&b, "llmcache_client_aborts_total", "counter",
           "Streams stopped because the client went away (nothing stored).");
    llmc_buf_printf(&b, "llmcache_client_aborts_total %llu\n",
                    (unsigned long long)atomic_load(&m->client_aborts));
    metric(&b, "llmcache_cache_bytes_served_total", "counter",
           "Response body bytes served from the cache.");
    llmc_buf_printf(&b, "llmcache_cache_bytes_served_total %llu\n",
                    (unsigned long long)atomic_load(&m->bytes_from_cache));
    metric(&b, "llmcache_cache_tokens_served_total", "counter",
           "usage.total_tokens of the responses served from the cache (tokens not bought).");
    llmc_buf_printf(&b, "llmcache_cache_tokens_served_total %llu\n",
                    (unsigned long long)atomic_load(&m->tokens_from_cache));
    metric(&b, "llmcache_upstream_latency_seconds", "histogram",
           "Duration of calls to the providers (with retries).");
    uint64_t cum = 0;
    for (size_t i = 0; i < N_LAT; i++) {
        cum += atomic_load(&m->lat_buckets[i]);
        llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
                        lat_bounds[i], (unsigned long long)cum);
    }
    cum += atomic_load(&m->lat_buckets[N_LAT]);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_sum %.6f\n",
                    (double)atomic_load(&m->lat_sum_us) / 1e6);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_count %llu\n",
                    (unsigned long long)cum);
    metric(&b, "llmcache_inflight_requests", "gauge", "Requests being handled.");
    llmc_buf_printf(&b, "llmcache_inflight_requests %lld\n",
                    (long long)atomic_load(&m->inflight));
    llmc_stats st;
    if (s->cache && llmc_cache_stats(s->cache, &st, sizeof st) == LLMC_OK) {
        metric(&b, "llmcache_backend_operations_total", "counter",
               "Cache backend operations by result.");
        llmc_buf_printf(&b,
                        "llmcache_backend_operations_total{op=\"get\",result=\"hit\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"get\",result=\"miss\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"set\",result=\"ok\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"any\",result=\"error\"} %llu\n",
                        (unsigned long long)st.hits, (unsigned long long)st.misses,
                        (unsigned long long)st.sets, (unsigned long long)st.errors);
        metric(&b, "llmcache_backend_get_latency_seconds", "summary",
               "Backend get latency (log-scale histogram percentiles).");
        llmc_buf_printf(&b,
                        "llmcache_backend_get_latency_seconds{quantile=\"0.5\"} %.9f\n"
                        "llmcache_backend_get_latency_seconds{quantile=\"0.99\"} %.9f\n"
                        "llmcache_backend_get_latency_seconds_sum %.9f\n"
                        "llmcache_backend_get_latency_seconds_count %llu\n",
                        (double)st.get_ns_p50 / 1e9, (double)st.get_ns_p99 / 1e9,
                        (double)st.get_ns_total / 1e9, (unsigned long long)st.get_count);
        metric(&b, "llmcache_backend_corrupt_total", "counter",
               "Stored entries that failed verification (deleted, counted as misses).");
        llmc_buf_printf(&b, "llmcache_backend_corrupt_total %llu\n",
                        (unsigned long long)st.corrupt);
        metric(&b, "llmcache_entry_mac_failures_total", "counter",
               "Entries whose MAC was missing or wrong under entry_secret (misses).");
        llmc_buf_printf(&b, "llmcache_entry_mac_failures_total %llu\n",
                        (unsigned long long)st.mac_failures);
        metric(&b, "llmcache_backend_breaker_open", "gauge",
               "1 while the circuit breaker skips the backend.");
        llmc_buf_printf(&b, "llmcache_backend_breaker_open %u\n", st.breaker_open);
    }
    enum MHD_Result ret =
        queue_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL, 0);
    llmc_buf_free(&b);
    return ret;
}

static json_object *parse_body_object(preq *r, int allow_empty)
{
    if (r->body.len == 0 && allow_empty)
        return json_object_new_object();
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, r->body.data ? r->body.data : "",
                                                 (int)r->body.len)
                         : NULL;
    enum json_tokener_error je = tok ? json_tokener_get_error(tok) : json_tokener_error_size;
    json_tokener_free(tok);
    if (!o || je != json_tokener_success || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        queue_error(r, 400, NULL, "the request body must be a JSON object%s%s",
                    je != json_tokener_success ? ": " : "",
                    je != json_tokener_success ? json_tokener_error_desc(je) : "");
        return NULL;
    }
    return o;
}

static enum MHD_Result handle_delete(preq *r)
{
    json_object *o = parse_body_object(r, 0), *keys;
    if (!o)
        return MHD_YES;
    if (!json_object_object_get_ex(o, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        json_object_put(o);
        return queue_error(r, 400, NULL, "field \"keys\" must be an array of key strings");
    }
    size_t n = json_object_array_length(keys);
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(keys, i);
        if (!json_object_is_type(k, json_type_string) || json_object_get_string_len(k) == 0) {
            json_object_put(o);
            return queue_error(r, 400, NULL, "field \"keys[%zu]\" must be a non-empty string",
                               i);
        }
        if (r->tenant && r->tenant->ns) {
            size_t nl = strlen(r->tenant->ns);
            const char *ks = json_object_get_string(k);
            if (strncmp(ks, r->tenant->ns, nl) != 0 || ks[nl] != ':') {
                json_object_put(o);
                return queue_error(r, 403, "permission_denied",
                                   "field \"keys[%zu]\": the key is outside your namespace", i);
            }
        }
    }
    uint64_t deleted = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(keys, i);
        llmc_status st = llmc_cache_del(r->srv->cache, json_object_get_string(k),
                                        (size_t)json_object_get_string_len(k));
        if (st == LLMC_OK) {
            deleted++;
        } else if (st != LLMC_MISS) {
            json_object_put(o);
            return queue_error(r, 503, "cache_unavailable", "cache delete failed: %s",
                               llmc_cache_errmsg(r->srv->cache));
        }
    }
    json_object_put(o);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "deleted", json_object_new_int64((int64_t)deleted));
    return queue_json(r, 200, res);
}

static enum MHD_Result handle_flush(preq *r)
{
    json_object *o = parse_body_object(r, 1), *v;
    if (!o)
        return MHD_YES;
    const char *asked = header(r, "x-llmcache-namespace");
    int all = 0;
    if (json_object_object_get_ex(o, "namespace", &v)) {
        if (!json_object_is_type(v, json_type_string)) {
            json_object_put(o);
            return queue_error(r, 400, NULL, "field \"namespace\" must be a string");
        }
        asked = json_object_get_string(v);
    }
    if (json_object_object_get_ex(o, "all", &v))
        all = json_object_get_boolean(v);
    llmc_buf ns = LLMC_BUF_INIT;
    if (effective_ns(r, asked, &ns) != 0) {
        json_object_put(o);
        return queue_error(r, 400, NULL,
                           "the namespace must be non-empty, without white space or '='");
    }
    json_object_put(o);
    if (!ns.len && llmc_cache_namespace(r->srv->cache))
        llmc_buf_puts(&ns, llmc_cache_namespace(r->srv->cache));
    llmc_status st;
    uint64_t deleted = 0;
    if (ns.len) {
        st = llmc_cache_flush(r->srv->cache, ns.data, &deleted);
    } else if (all) {
        st = llmc_cache_flush_all(r->srv->cache);
    } else {
        return queue_error(r, 400, NULL,
                           "say which namespace to flush: {\"namespace\": \"...\"} or the "
                           "x-llmcache-namespace header ({\"all\": true} flushes everything)");
    }
    if (st != LLMC_OK) {
        llmc_buf_free(&ns);
        return queue_error(r, st == LLMC_ENOTSUP ? 501 : 503, NULL, "cache flush failed: %s",
                           llmc_cache_errmsg(r->srv->cache));
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "flushed", json_object_new_boolean(1));
    json_object_object_add(res, "namespace", ns.len ? json_object_new_string(ns.data) : NULL);
    json_object_object_add(res, "deleted", json_object_new_int64((int64_t)deleted));
    llmc_buf_free(&ns);
    return queue_json(r, 200, res);
}

static enum MHD_Result handle_ping(preq *r)
{
    uint64_t t0 = now_ns();
    llmc_status st = llmc_cache_ping(r->srv->cache);
    double ms = (double)(now_ns() - t0) / 1e6;
    if (st != LLMC_OK)
        return queue_error(r, 503, "cache_unavailable", "cache ping failed: %s",
                           llmc_cache_errmsg(r->srv->cache));
    json_object *res = json_object_new_object();
    json_object_object_add(res, "status", json_object_new_string("ok"));
    json_object_object_add(res, "backend",
                           json_object_new_string(llmc_cache_backend_name(r->srv->cache)));
    json_object_object_add(res, "latency_ms", json_object_new_double(ms));
    return queue_json(r, 200, res);
}

static enum endpoint route_of(const char *url)
{
    static const struct {
        const char *path;
        enum endpoint ep;
    } routes[] = {
        {"/v1/chat/completions", EP_CHAT}, {"/chat/completions", EP_CHAT},
        {"/v1/completions", EP_TEXT},      {"/completions", EP_TEXT},
        {"/v1/embeddings", EP_EMBED},      {"/embeddings", EP_EMBED},
        {"/v1/models", EP_MODELS},         {"/models", EP_MODELS},
        {"/health", EP_HEALTH},            {"/metrics", EP_METRICS},
        {"/cache/ping", EP_PING},          {"/cache/delete", EP_DELETE},
        {"/cache/flush", EP_FLUSH},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].ep;
    return EP_UNKNOWN;
}

static enum MHD_Result handle(preq *r)
{
    proxy_server *s = r->srv;
    if (r->too_big)
        return queue_error(r, 413, "request_too_large",
                           "The request body is larger than the proxy's limit of %zu bytes.",
                           s->cfg->max_body);
    if (r->ep == EP_UNKNOWN)
        return queue_error(r, 404, "not_found", "No route for %s %s", r->method, r->path);
    int post = r->ep == EP_CHAT || r->ep == EP_TEXT || r->ep == EP_EMBED || r->ep == EP_DELETE ||
               r->ep == EP_FLUSH;
    if (strcmp(r->method, post ? "POST" : "GET") != 0)
        return queue_error(r, 405, "method_not_allowed", "%s needs %s", r->path,
                           post ? "POST" : "GET");
    if (r->ep == EP_HEALTH) {
        json_object *o = json_object_new_object();
        int stop = atomic_load(&s->stopping) != 0;
        json_object_object_add(o, "status", json_object_new_string(stop ? "stopping" : "ok"));
        json_object_object_add(o, "version", json_object_new_string(llmc_version()));
        return queue_json(r, stop ? 503 : 200, o);
    }
    if (!(r->ep == EP_METRICS && s->cfg->metrics_public) && authenticate(r) != 0)
        return MHD_YES;
    switch (r->ep) {
    case EP_CHAT:
    case EP_TEXT:
    case EP_EMBED:
        return handle_completion(r);
    case EP_MODELS: {
        char *p = malloc(s->models_len + 1);
        if (!p)
            return MHD_NO;
        memcpy(p, s->models_json, s->models_len + 1);
        return queue_owned(r, 200, "application/json", p, s->models_len, NULL, 0, NULL);
    }
    case EP_METRICS:
        return handle_metrics(r);
    case EP_PING:
        return handle_ping(r);
    case EP_DELETE:
        return handle_delete(r);
    case EP_FLUSH:
        return handle_flush(r);
    default:
        return queue_error(r, 404, "not_found", "No route for %s", r->path);
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    proxy_server *s = cls;
    preq *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->t0 = now_ns();
        r->max_age_ms = -1;
        atomic_init(&r->refs, 1);
        pthread_mutex_init(&r->mu, NULL);
        snprintf(r->path, sizeof r->path, "%s", url);
        r->ep = route_of(url);
        atomic_fetch_add(&s->m.requests[r->ep], 1);
        atomic_fetch_add(&s->m.inflight, 1);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > s->cfg->max_body) {
                r->too_big = 1;
                r->handled = 1;
                /* Answer at once instead of reading a body we refuse. */
                return handle(r);
            }
            if (n)
                llmc_buf_reserve(&r->body, (size_t)n);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big) {
            if (r->body.len + *upload_size > s->cfg->max_body)
                r->too_big = 1;
            else
                llmc_buf_append(&r->body, upload_data, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->queued)
        return MHD_YES;
    if (!r->handled) {
        r->handled = 1;
        return handle(r);
    }
    return on_resumed(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    proxy_server *s = cls;
    preq *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    pthread_mutex_lock(&r->mu);
    r->gone = 1;
    r->conn = NULL;
    pthread_mutex_unlock(&r->mu);
    (void)toe;
    pthread_mutex_lock(&s->imu);
    atomic_fetch_sub(&s->m.inflight, 1);
    pthread_cond_broadcast(&s->icv);
    pthread_mutex_unlock(&s->imu);
    preq_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    proxy_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Unix-socket connections (proxy_server_add_connection) take no TCP
     * options; libmicrohttpd says so on every one of them. */
    if (s && atomic_load(&s->nontcp) &&
        (strncmp(msg, "Setting TCP_", 12) == 0 || strncmp(msg, "Failed to push the data", 23) == 0))
        return;
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    fprintf(stderr, "llmcache serve: http: %s\n", msg);
}

/* ------------------------------------------------------------------ */
/* Start / stop. */

static void build_models(proxy_server *s)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    for (size_t i = 0; i < s->cfg->n_models; i++) {
        const proxy_model *m = &s->cfg->models[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_string(m->name));
        json_object_object_add(e, "object", json_object_new_string("model"));
        json_object_object_add(e, "created", json_object_new_int(0));
        json_object_object_add(e, "owned_by", json_object_new_string(m->provider));
        json_object_array_add(arr, e);
    }
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", arr);
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    s->models_json = strdup(t);
    s->models_len = len;
    json_object_put(o);
}

static void add_secret(proxy_server *s, const char *v)
{
    if (!v || strlen(v) < 4)
        return;
    char **n = realloc(s->secrets, (s->n_secrets + 1) * sizeof *n);
    if (!n)
        return;
    s->secrets = n;
    s->secrets[s->n_secrets] = strdup(v);
    if (s->secrets[s->n_secrets])
        s->n_secrets++;
}

proxy_server *proxy_server_start(const proxy_config *cfg, llmc_cache *cache,
                                 llmc_client *client, char *err, size_t errsz)
{
    proxy_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->cache = cache;
    s->client = client;
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_mutex_init(&s->fmu, NULL);
    pthread_cond_init(&s->rcv, NULL);
    pthread_mutex_init(&s->imu, NULL);
    pthread_cond_init(&s->icv, NULL);
    build_models(s);
    s->memo = calloc(MEMO_SLOTS, sizeof *s->memo);
    for (size_t i = 0; s->memo && i < MEMO_SLOTS; i++)
        pthread_mutex_init(&s->memo[i].mu, NULL);
    for (size_t i = 0; i < cfg->n_models; i++)
        add_secret(s, cfg->models[i].api_key);
    for (size_t i = 0; i < cfg->n_keys; i++)
        add_secret(s, cfg->keys[i].key);
    static const char *const envs[] = {"OPENAI_API_KEY", "AZURE_API_KEY", "ANTHROPIC_API_KEY",
                                       "GEMINI_API_KEY", NULL};
    for (int i = 0; envs[i]; i++)
        add_secret(s, getenv(envs[i]));
    if (cfg->client_opts) {
        for (size_t i = 0; i < llmc_options_count(cfg->client_opts); i++) {
            const char *n = llmc_options_name_at(cfg->client_opts, i);
            size_t nl = strlen(n);
            if (nl >= 7 && strcmp(n + nl - 7, "api_key") == 0)
                add_secret(s, llmc_options_value_at(cfg->client_opts, i));
        }
    }

    s->n_workers = cfg->workers > 0 ? cfg->workers : 64;
    s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    int started = 0;
    for (int i = 0; s->workers && i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i], &attr, worker_main, s) != 0)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    s->n_workers = started;
    s->reaper_on = 1;
    if (started == 0 || pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        snprintf(err, errsz, "cannot start worker threads");
        s->reaper_on = 0;
        proxy_server_stop(s);
        return NULL;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        /* A host name ("localhost"): its first address. */
        struct addrinfo hints, *ai = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        int gr = getaddrinfo(cfg->host, NULL, &hints, &ai);
        if (gr != 0 || !ai || ai->ai_addrlen > sizeof ss) {
            snprintf(err, errsz, "listen address \"%s\": %s", cfg->host,
                     gr ? gai_strerror(gr) : "no address");
            if (ai)
                freeaddrinfo(ai);
            proxy_server_stop(s);
            return NULL;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ai->ai_family == AF_INET6) {
            a6->sin6_port = htons((uint16_t)cfg->port);
            flags |= MHD_USE_IPv6;
        } else {
            a4->sin_port = htons((uint16_t)cfg->port);
        }
        freeaddrinfo(ai);
    }
    int threads = cfg->threads;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
        /* A hit on a network cache waits for a round trip on the HTTP
         * thread: more threads keep the CPUs busy meanwhile. */
        if (cache && (llmc_cache_caps(cache) & LLMC_CAP_REMOTE))
            threads *= 4;
    }
    flags |= MHD_USE_EPOLL;
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        1024u, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errsz, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
                 errno ? strerror(errno) : "libmicrohttpd could not start");
        proxy_server_stop(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
}

int proxy_server_port(const proxy_server *s)
{
    return s->port;
}

int proxy_server_add_connection(proxy_server *s, int fd)
{
    /* The socket's own peer address: for a Unix socket libmicrohttpd
     * then leaves the TCP options (NODELAY, CORK) alone. */
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    memset(&peer, 0, sizeof peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 || plen > sizeof peer) {
        close(fd);
        return -1;
    }
    if (!s->mhd || atomic_load(&s->stopping)) {
        close(fd);
        return -1;
    }
    if (peer.ss_family == AF_UNIX)
        atomic_store(&s->nontcp, 1);
    return MHD_add_connection(s->mhd, fd, (const struct sockaddr *)&peer, plen) == MHD_YES ? 0
                                                                                          : -1;
}

int proxy_server_stop(proxy_server *s)
{
    if (!s)
        return 0;
    atomic_store(&s->stopping, 1);
    int clean = 1;
    if (s->mhd) {
        /* Stop accepting; let what is in flight finish. */
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
        uint64_t deadline = now_ns() + (uint64_t)s->cfg->shutdown_timeout_ms * 1000000u;
        pthread_mutex_lock(&s->imu);
        while (atomic_load(&s->m.inflight) > 0 && now_ns() < deadline) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->icv, &s->imu, &ts);
        }
        pthread_mutex_unlock(&s->imu);
        if (atomic_load(&s->m.inflight) > 0) {
            /* Requests still parked: libmicrohttpd must not be stopped with
             * suspended connections, and the process is about to exit. */
            fprintf(stderr,
                    "llmcache serve: %lld request(s) still in flight after the shutdown "
                    "timeout; exiting without waiting for them\n",
                    (long long)atomic_load(&s->m.inflight));
            clean = 0;
            atomic_store(&s->stopping, 2);
        } else {
            MHD_stop_daemon(s->mhd);
        }
        s->mhd = NULL;
    }
    if (!clean)
        return -1; /* threads may still use s: leave it to the exit */
    pthread_mutex_lock(&s->qmu);
    s->qstop = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    if (s->reaper_on) {
        pthread_mutex_lock(&s->fmu);
        s->reaper_on = 0;
        pthread_cond_signal(&s->rcv);
        pthread_mutex_unlock(&s->fmu);
        pthread_join(s->reaper, NULL);
    }
    free(s->workers);
    for (size_t i = 0; s->memo && i < MEMO_SLOTS; i++) {
        free(s->memo[i].blob);
        free(s->memo[i].key);
        pthread_mutex_destroy(&s->memo[i].mu);
    }
    free(s->memo);
    free(s->models_json);
    for (size_t i = 0; i < s->n_secrets; i++)
        free(s->secrets[i]);
    free(s->secrets);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_destroy(&s->fmu);
    pthread_cond_destroy(&s->rcv);
    pthread_mutex_destroy(&s->imu);
    pthread_cond_destroy(&s->icv);
    free(s);
    return 0;
}
