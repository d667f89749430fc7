/* Internals shared by the files of the proxy server: the request
 * (preq), the server (proxy_server) and the functions one file offers
 * the others. Who does what:
 *   proxy_http.c     HTTP glue: libmicrohttpd callbacks, authentication,
 *                    preparing a request through the library, queueing
 *                    answers, streams, start and stop
 *   proxy_reply.c    answers: OpenAI-style errors (secrets scrubbed), the
 *                    x-llmcache-* headers, results handed back by workers
 *   proxy_jobs.c     the worker pool and the calls it runs (lookup,
 *                    execute, results back to the connection)
 *   proxy_flight.c   in-flight requests: coalescing identical misses
 *   proxy_metrics.c  counters and GET /metrics
 *   proxy_admin.c    /cache/ping, /cache/delete, /cache/flush, /v1/models
 *   proxy_cache_state.c  whether the cache answers (/health, /metrics)
 *   proxy_semantic.c HIT-SEMANTIC headers and the similarity histogram
 * Not installed. */
#ifndef LLMC_PROXY_INTERNAL_H
#define LLMC_PROXY_INTERNAL_H

#include "proxy.h"
#include "proxy_ui.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <json-c/json.h>
#include <microhttpd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

enum endpoint {
    EP_UNKNOWN,
    EP_CHAT,
    EP_TEXT,
    EP_EMBED,
    EP_RESPONSES,
    EP_MESSAGES,
    EP_MODELS,
    EP_HEALTH,
    EP_METRICS,
    EP_PING,
    EP_DELETE,
    EP_FLUSH,
    EP_UI,
    EP_UI_DATA,
    EP_COUNT_
};
/* The completion endpoints are EP_CHAT..EP_LAST_CALL. */
#define EP_LAST_CALL EP_MESSAGES

/* Buckets of the upstream latency histogram (proxy_metrics.c). */
#define N_LAT 14

typedef struct metrics {
    _Atomic uint64_t requests[EP_COUNT_];
    _Atomic uint64_t hits[EP_COUNT_];
    _Atomic uint64_t misses[EP_COUNT_];
    _Atomic uint64_t bypass[EP_COUNT_];
    _Atomic uint64_t coalesced;
    _Atomic uint64_t coalesce_timeouts;
    _Atomic uint64_t stale; /* answered with an entry past its freshness */
    _Atomic uint64_t coalesced_remote; /* answered by another replica's call */
    _Atomic uint64_t status_2xx, status_4xx, status_5xx;
    _Atomic uint64_t errors_upstream, errors_client, errors_internal, auth_failures;
    _Atomic uint64_t bytes_from_cache, tokens_from_cache;
    _Atomic uint64_t upstream_calls;
    _Atomic uint64_t lat_buckets[N_LAT + 1];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t client_aborts;
    _Atomic int64_t inflight;
    _Atomic uint64_t hits_served, hit_us; /* hits answered, their time in the proxy */
} metrics;

typedef struct preq preq;

typedef struct flight {
    struct flight *next;
    char *key;
    preq *waiters;
} flight;

#define FLIGHT_BUCKETS 256

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
    llmc_savings *savings;     /* what hits saved, per model/tenant/endpoint */
    const llmc_prices *prices; /* the client's table; NULL = none readable */
    proxy_ui *ui;

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
    unsigned head_seen; /* which of the headers the proxy reads are in the
                           head (bits of proxy_http.c's list), so lookups
                           of absent ones skip the walk over the head */
    uint64_t t0;
    atomic_int refs;
    int handled;   /* the request was looked at (final access-handler call) */
    int queued;    /* a response was queued */
    llmc_buf body;
    int too_big;
    int close;     /* answer with Connection: close (malformed framing) */
    const char *allow; /* the Allow header of a 405 */
    const proxy_key *tenant;

    /* Completion requests: the library's prepared call. */
    llmc_call *k;
    llmc_call_type call;
    int stream;
    int caching, no_cache, no_store;
    llmc_buf key;  /* the call's id: its cache key, what it coalesces by */
    llmc_buf resp_key; /* x-llmcache-key of an embedding call (first item) */
    enum pass pass;
    int leader;
    int coalesced;
    int answered_hit; /* the answer came from the cache */
    /* stale-if-error: this request's provider call failed and a stale
     * entry answered; a waiter woken by such a leader answers stale too
     * rather than try the failing provider again. */
    int served_stale;
    int leader_stale;
    int semantic;     /* ... from a semantic lookup: */
    double similarity;
    llmc_buf matched_key;
    uint64_t deadline_ns;
    preq *wnext;   /* next waiter on a flight */
    preq *qnext;   /* next in the job queue */

    /* Results, under mu. */
    pthread_mutex_t mu;
    int suspended;
    int gone;
    int ready;          /* a plain result (or an error) is in out */
    int streaming;      /* stream chunks are flowing through sbuf */
    int typed;          /* chunks are typed events (event: lines, no [DONE]) */
    int64_t events;     /* typed events sent, for an error event's number */
    int s_done;
    int status;
    llmc_buf out;       /* plain body */
    const char *ctype;
    const char *cache_status;
    int64_t age_s;
    llmc_buf sbuf;
    size_t spos;
    /* What this hit saved, for the response headers. */
    int saved_set, saved_priced;
    uint64_t saved_tokens;
    double saved_usd;
};

static inline uint64_t px_now_ns(void)
{
    return llmc_mono_ns();
}

/* HTTP glue (proxy_http.c). */
void px_preq_unref(preq *r);

/* The request head (proxy_head.c). */
/* Request framing a front end and this server could read differently
 * (request smuggling) is refused before the request is accepted:
 * repeated differing Content-Length lines, Content-Length beside
 * Transfer-Encoding, a header name that is not an HTTP token
 * ("Content-Length : 5", which libmicrohttpd would otherwise keep as an
 * unknown header and then run the body as the next request), and folded
 * (obs-fold) lines. libmicrohttpd 0.9.75 takes a folded line by appending
 * it to the header's *name*, so a fold shows as a name with white space
 * or ':' in it ("X-A: 1\r\n Content-Length: 5"), or as a name that
 * extends one of the headers that frame or control a request
 * ("Content-Length: 0\r\n 93" arrives as "Content-Length93"). A
 * one-word fold of some other header only renames that header, which
 * nothing here reads. */
typedef struct px_framing {
    int n_cl, cl_differ, n_te, bad_name;
    const char *cl;
    const char *bad; /* the offending name */
    size_t url, headers; /* the head's sizes: URL with its query, header lines */
    unsigned seen;       /* bits: which of read_headers are present */
} px_framing;

/* Reads the head into f (sizes, framing headers, which of the headers
 * the proxy reads are present); NULL when the framing is sound, else
 * what is wrong (a constant, or written into buf). */
const char *px_bad_framing(struct MHD_Connection *conn, const char *url, px_framing *f,
                           char *buf, size_t bufsz);
/* A header's value (the first line); NULL when absent. */
const char *px_header(preq *r, const char *name);
/* Every line of a request header joined with ", " (as HTTP combines
 * repeated lines) into out; returns the number of lines (0: absent). */
int px_header_all(preq *r, const char *name, llmc_buf *out);
/* A header that takes one value: NULL when absent; when repeated, a 400
 * naming it is queued and *answered set. */
const char *px_header_single(preq *r, const char *name, int *answered);

/* The call type's API headers (llmc_call_opts.api_headers) of a
 * request: names_values holds 2 * PX_API_HEADERS + 1 pointers, bufs
 * PX_API_HEADERS buffers the caller frees. */
#define PX_API_HEADERS 4
int px_api_headers(preq *r, const char **names_values, llmc_buf *bufs);

/* The API keys (proxy_auth.c): 0 when the request may go on (r->tenant
 * set when keys are configured), -1 when a 401 (or a 400 for repeated
 * credentials) was queued. */
int px_authenticate(preq *r);

/* answers: errors, headers, results from workers (proxy_reply.c). */
int px_status_for(const llmc_err *e);
const char *px_error_code(const llmc_err *e, int status);
void px_add_cache_headers(preq *r, struct MHD_Response *resp, const char *status,
                              int64_t age_s);
void px_access_log(preq *r, int status, const char *cstatus);
enum MHD_Result px_queue_owned(preq *r, int status, const char *ctype, char *body,
                                   size_t len, const char *cstatus, int64_t age_s,
                                   const char *extra_key);
enum MHD_Result px_queue_buf(preq *r, int status, const char *ctype, llmc_buf *b,
                                 const char *cstatus, int64_t age_s);
/* A 200 with the response's text as the body, sent without a copy:
 * resp is taken over (freed once libmicrohttpd is done with it). */
enum MHD_Result px_queue_hit(preq *r, llmc_response *resp, const char *cstatus,
                             int64_t age_s);
enum MHD_Result px_queue_error(preq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result px_queue_json(preq *r, int status, json_object *o);
void px_wake(preq *r);
void px_finish_plain(preq *r, int status, llmc_buf *body, const char *cstatus,
                         int64_t age_s);
void px_finish_error(preq *r, const llmc_err *e);

/* metrics (proxy_metrics.c). */
void px_count_status(proxy_server *s, int status);
void px_count_hit(preq *r, size_t bytes, const llmc_saving *sv);
void px_ui_read(void *server, ui_counters *out);
void px_observe_upstream(proxy_server *s, uint64_t ns);
enum MHD_Result px_handle_metrics(preq *r);

/* semantic lookups (proxy_semantic.c). */
void px_semantic_note(preq *r, const llmc_response *resp);
void px_semantic_headers(preq *r, struct MHD_Response *resp);
void px_semantic_metrics(proxy_server *s, llmc_buf *b);
/* HIT or HIT-SEMANTIC: an answer from the cache. */
static inline int px_is_hit(const char *cstatus)
{
    return cstatus && cstatus[0] == 'H' && cstatus[1] == 'I' && cstatus[2] == 'T' &&
           (cstatus[3] == '\0' || cstatus[3] == '-');
}

/* in-flight requests and coalescing (proxy_flight.c). */
int px_join_flight(proxy_server *s, preq *r);
void px_land_flight(proxy_server *s, preq *r);
/* Land r's flight if it leads one; called before any answer of r is
 * released to its client. */
void px_land_before_answer(preq *r);
void *px_reaper_main(void *arg);

/* the work queue and the calls it runs (proxy_jobs.c). */
void px_enqueue(proxy_server *s, preq *r);
void px_took_hit(preq *r, llmc_response *resp, const char **cstatus, int64_t *age_s);
void *px_worker_main(void *arg);

/* admin endpoints (proxy_admin.c). */
enum MHD_Result px_handle_delete(preq *r);
enum MHD_Result px_handle_flush(preq *r);
enum MHD_Result px_handle_ping(preq *r);
/* the dashboard: GET /ui and /ui/data (admin keys only), and the Basic
 * authentication challenge a browser needs; 1 when it was answered. */
enum MHD_Result px_handle_ui(preq *r);
int px_ui_challenge(preq *r);
void px_build_models(proxy_server *s);

#endif
