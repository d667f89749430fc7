/* The caching proxy's HTTP server (libmicrohttpd): the HTTP glue.
 *
 * Threads: libmicrohttpd's pool (epoll, one per CPU by default) parses
 * HTTP and answers everything that does not wait: the non-streamed cache
 * hit is answered right there (the library prepares the call and looks
 * it up) because it is the product. Everything that waits (an upstream
 * call, a stream, a coalesced request) is handed to a pool of worker
 * threads (proxy_jobs.c) while the
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
#include "proxy_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Request head limits: the URL (414) and the header lines (431) are
 * checked here, below libmicrohttpd's per-connection buffer, so the
 * client gets a JSON error. A head too big for the buffer itself gets
 * libmicrohttpd's own 414/431 (an HTML body; libmicrohttpd 0.9.75 has no
 * way to replace it, and reads the whole head before calling us). The
 * buffer is kept small on purpose: libmicrohttpd zeroes the whole pool
 * between keep-alive requests (and half of it again when it shrinks the
 * read buffer for the response), which at 32 KiB was 7% of the proxy's
 * CPU on cached hits and at 16 KiB is under 4%. */
#define MAX_URL_BYTES 8192
#define MAX_HEADER_BYTES 12288
#define MHD_HEAD_BUFFER 16384

void px_preq_unref(preq *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    llmc_call_free(r->k); /* before the body it borrows */
    llmc_buf_free(&r->body);
    llmc_buf_free(&r->key);
    llmc_buf_free(&r->resp_key);
    llmc_buf_free(&r->matched_key);
    llmc_buf_free(&r->out);
    llmc_buf_free(&r->sbuf);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Prepare a completion / embedding request through the library (body
 * controls, the Cache-Control / x-llmcache-* headers and the tenant's
 * namespace are all read there): 0 ok, -1 answered. */
static int prepare(preq *r)
{
    proxy_server *s = r->srv;
    llmc_err err;
    llmc_err_clear(&err);
    if (r->body.len == 0) {
        px_queue_error(r, 400, NULL, "The request body is empty: send an OpenAI-format JSON "
                                  "object.");
        return -1;
    }
    /* Repeated Cache-Control lines count together; the x-llmcache-*
     * headers take one value each (a repeat is a 400 naming it). */
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    llmc_buf cc = LLMC_BUF_INIT;
    int answered = 0;
    if (px_header_all(r, "Cache-Control", &cc))
        o.cache_control = cc.data ? cc.data : "";
    o.ttl = px_header_single(r, "x-llmcache-ttl", &answered);
    if (!answered)
        o.namespace_ = px_header_single(r, "x-llmcache-namespace", &answered);
    if (answered) {
        llmc_buf_free(&cc);
        return -1;
    }
    o.tenant = r->tenant ? r->tenant->ns : NULL;
    /* Headers the call type's API makes part of the request. */
    const char *apih[2 * PX_API_HEADERS + 1] = {NULL};
    llmc_buf hv[PX_API_HEADERS];
    int nh = px_api_headers(r, apih, hv);
    if (nh > 0)
        o.api_headers = apih;
    llmc_status st =
        llmc_call_prepare(s->client, r->call, r->body.data, r->body.len, &o, &r->k, &err);
    for (int i = 0; i < PX_API_HEADERS; i++)
        llmc_buf_free(&hv[i]);
    llmc_buf_free(&cc);
    if (st != LLMC_OK) {
        int code = px_status_for(&err);
        px_queue_error(r, code, px_error_code(&err, code), "%s", err.msg);
        return -1;
    }
    if (llmc_call_wants_stream(r->k)) {
        llmc_call_type_info info;
        int streams = llmc_call_type_info_get(r->call, &info, sizeof info) == LLMC_OK &&
                      info.streams;
        if (!streams && r->ep == EP_TEXT) {
            px_queue_error(r, 400, NULL,
                        "\"stream\": true is supported on /v1/chat/completions only");
            return -1;
        }
        r->stream = streams;
        r->typed = streams && info.typed_events;
    }
    r->caching = llmc_call_caching(r->k);
    r->no_cache = r->caching && !llmc_call_reads_cache(r->k);
    r->no_store = r->caching && !llmc_call_stores(r->k);
    const char *id = llmc_call_id(r->k);
    if (id)
        llmc_buf_puts(&r->key, id);
    return 0;
}

/* Park the connection and hand the request to a worker. */
static enum MHD_Result dispatch(preq *r)
{
    atomic_fetch_add(&r->refs, 1);
    pthread_mutex_lock(&r->mu);
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mu);
    px_enqueue(r->srv, r);
    return MHD_YES;
}

static enum MHD_Result handle_completion(preq *r)
{
    if (prepare(r) != 0)
        return MHD_YES;
    if (r->ep != EP_EMBED && !r->stream && r->caching && !r->no_cache) {
        /* The plain hit is answered on the HTTP thread: it waits for
         * nothing but the backend. */
        llmc_response *resp = NULL;
        if (llmc_call_lookup(r->k, NULL, NULL, &resp, NULL) == LLMC_OK) {
            const char *cstatus;
            int64_t age_s;
            px_took_hit(r, resp, &cstatus, &age_s);
            return px_queue_hit(r, resp, cstatus, age_s);
        }
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
        px_add_cache_headers(r, resp, cs, age);
        enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
        MHD_destroy_response(resp);
        r->queued = 1;
        px_count_status(r->srv, 200);
        px_access_log(r, 200, cs);
        return ret;
    }
    if (r->ready) {
        llmc_buf b = r->out;
        r->out = (llmc_buf)LLMC_BUF_INIT;
        int status = r->status;
        const char *cs = r->cache_status, *ct = r->ctype;
        int64_t age = r->age_s;
        pthread_mutex_unlock(&r->mu);
        enum MHD_Result ret = px_queue_buf(r, status, ct ? ct : "application/json", &b, cs, age);
        llmc_buf_free(&b);
        return ret;
    }
    /* Woken early (should not happen): park again. */
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    pthread_mutex_unlock(&r->mu);
    return MHD_YES;
}

/* Completion endpoints come from the library's call-type table (a new
 * call type is a new row there, served here by its paths); the rest are
 * the proxy's own. */
static enum endpoint route_of(const char *url, llmc_call_type *call)
{
    if (llmc_call_type_for_path(url, call) == LLMC_OK) {
        switch (*call) {
        case LLMC_CALL_CHAT: return EP_CHAT;
        case LLMC_CALL_TEXT: return EP_TEXT;
        case LLMC_CALL_EMBEDDING: return EP_EMBED;
        case LLMC_CALL_RESPONSES: return EP_RESPONSES;
        case LLMC_CALL_MESSAGES: return EP_MESSAGES;
        default: return EP_UNKNOWN;
        }
    }
    static const struct {
        const char *path;
        enum endpoint ep;
    } routes[] = {
        {"/v1/models", EP_MODELS}, {"/models", EP_MODELS},     {"/health", EP_HEALTH},
        {"/metrics", EP_METRICS},  {"/cache/ping", EP_PING},   {"/cache/delete", EP_DELETE},
        {"/cache/flush", EP_FLUSH}, {"/ui", EP_UI},              {"/ui/data", EP_UI_DATA},
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
        return px_queue_error(r, 413, "request_too_large",
                           "The request body is larger than the proxy's limit of %zu bytes.",
                           s->cfg->max_body);
    if (r->ep == EP_UNKNOWN)
        return px_queue_error(r, 404, "not_found", "No route for %s %s", r->method, r->path);
    int post = (r->ep >= EP_CHAT && r->ep <= EP_LAST_CALL) || r->ep == EP_DELETE ||
               r->ep == EP_FLUSH;
    /* HEAD is GET without the body (libmicrohttpd leaves it out); only
     * the health check offers it, for load balancers that probe so. */
    int head_ok = r->ep == EP_HEALTH && strcmp(r->method, "HEAD") == 0;
    if (strcmp(r->method, post ? "POST" : "GET") != 0 && !head_ok) {
        r->allow = post ? "POST" : r->ep == EP_HEALTH ? "GET, HEAD" : "GET";
        return px_queue_error(r, 405, "method_not_allowed", "%s needs %s", r->path,
                              post ? "POST" : "GET");
    }
    if (r->ep == EP_HEALTH) {
        json_object *o = json_object_new_object();
        int stop = atomic_load(&s->stopping) != 0;
        json_object_object_add(o, "status", json_object_new_string(stop ? "stopping" : "ok"));
        json_object_object_add(o, "version", json_object_new_string(llmc_version()));
        if (s->cache)
            json_object_object_add(o, "cache", json_object_new_string(
                                                   proxy_cache_state_up(s->cache) ? "up" : "down"));
        return px_queue_json(r, stop ? 503 : 200, o);
    }
    if (px_ui_challenge(r))
        return MHD_YES;
    if (!(r->ep == EP_METRICS && s->cfg->metrics_public) && px_authenticate(r) != 0)
        return MHD_YES;
    switch (r->ep) {
    case EP_CHAT:
    case EP_TEXT:
    case EP_EMBED:
    case EP_RESPONSES:
    case EP_MESSAGES:
        return handle_completion(r);
    case EP_MODELS: {
        char *p = malloc(s->models_len + 1);
        if (!p)
            return MHD_NO;
        memcpy(p, s->models_json, s->models_len + 1);
        return px_queue_owned(r, 200, "application/json", p, s->models_len, NULL, 0, NULL);
    }
    case EP_METRICS:
        return px_handle_metrics(r);
    case EP_PING:
        return px_handle_ping(r);
    case EP_DELETE:
        return px_handle_delete(r);
    case EP_FLUSH:
        return px_handle_flush(r);
    case EP_UI:
    case EP_UI_DATA:
        return px_handle_ui(r);
    default:
        return px_queue_error(r, 404, "not_found", "No route for %s", r->path);
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
        r->t0 = px_now_ns();
        atomic_init(&r->refs, 1);
        pthread_mutex_init(&r->mu, NULL);
        size_t ul = strnlen(url, sizeof r->path - 1); /* the path, cut to fit */
        memcpy(r->path, url, ul);
        r->path[ul] = '\0';
        r->ep = route_of(url, &r->call);
        atomic_fetch_add(&s->m.requests[r->ep], 1);
        atomic_fetch_add(&s->m.inflight, 1);
        *con_cls = r;
        char why[160];
        px_framing f;
        const char *bad = px_bad_framing(conn, url, &f, why, sizeof why);
        r->head_seen = f.seen;
        if (bad) {
            /* Answer and close: nothing after this request's head can be
             * trusted to start where we think it does. */
            r->handled = 1;
            r->close = 1;
            return px_queue_error(r, 400, "bad_request", "Malformed request framing: %s.", bad);
        }
        /* Our limits sit below libmicrohttpd's buffer (MHD_HEAD_BUFFER), so
         * an oversized head gets an OpenAI-style JSON error from here
         * rather than libmicrohttpd's HTML page (which remains only for
         * heads too big for its buffer or that it cannot parse at all). */
        if (f.url > MAX_URL_BYTES) {
            r->handled = 1;
            r->close = 1;
            return px_queue_error(r, 414, "uri_too_long",
                                  "The request URL is longer than %d bytes.", MAX_URL_BYTES);
        }
        if (f.headers > MAX_HEADER_BYTES) {
            r->handled = 1;
            r->close = 1;
            return px_queue_error(r, 431, "request_header_fields_too_large",
                                  "The request headers are larger than %d bytes.",
                                  MAX_HEADER_BYTES);
        }
        const char *cl = f.cl; /* the one value (repeats that differ were refused) */
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
    px_preq_unref(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    proxy_server *s = cls;
    /* libmicrohttpd's own complaints (a client's malformed request, a
     * dropped connection) are access-log material, not errors of ours. */
    if (s->cfg->quiet)
        return;
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
    px_build_models(s);
    s->savings = llmc_savings_new(0);
    llmc_err perr;
    llmc_err_clear(&perr);
    s->prices = client ? llmc_client_prices(client, &perr) : NULL;
    if (!s->prices)
        fprintf(stderr,
                "llmcache serve: no price table (%s): hits count tokens and time saved, not "
                "dollars\n",
                client ? perr.msg : "no client");
    s->ui = s->savings ? proxy_ui_start(cache, s->savings, s->prices,
                                        s->prices ? NULL : perr.msg, px_ui_read, s)
                       : NULL;
    if (!s->ui) {
        snprintf(err, errsz, "cannot start the dashboard sampler");
        proxy_server_stop(s);
        return NULL;
    }
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
        if (pthread_create(&s->workers[i], &attr, px_worker_main, s) != 0)
            break;
        started++;
    }
    pthread_attr_destroy(&attr);
    s->n_workers = started;
    s->reaper_on = 1;
    if (started == 0 || pthread_create(&s->reaper, NULL, px_reaper_main, s) != 0) {
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
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MHD_HEAD_BUFFER,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_LISTEN_BACKLOG_SIZE,
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
        uint64_t deadline = px_now_ns() + (uint64_t)s->cfg->shutdown_timeout_ms * 1000000u;
        pthread_mutex_lock(&s->imu);
        while (atomic_load(&s->m.inflight) > 0 && px_now_ns() < deadline) {
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
    proxy_ui_stop(s->ui);
    llmc_savings_free(s->savings);
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
