/* The fake LLM provider server (see fake_provider.h). Plain sockets and
 * one thread per connection give full control over timing and framing:
 * slow answers, streams cut off mid-way, malformed bodies. */
#include "fake_provider.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

typedef struct fp_route {
    const char *method;
    const char *glob;
    fp_handler handler;
    void *ud;
} fp_route;

/* The built-in wire formats. To add a provider: one line per route. */
static const fp_route fp_builtin_routes[] = {
    {"POST", "/v1/chat/completions", fp_openai_chat, NULL},
    {"POST", "/v1/completions", fp_openai_completions, NULL},
    {"POST", "/v1/embeddings", fp_openai_embeddings, NULL},
    /* Azure: /openai/deployments/<name>/{chat/completions,completions,embeddings} */
    {"POST", "/openai/deployments/*/chat/completions", fp_openai_chat, NULL},
    {"POST", "/openai/deployments/*/completions", fp_openai_completions, NULL},
    {"POST", "/openai/deployments/*/embeddings", fp_openai_embeddings, NULL},
    {"POST", "/v1/responses", fp_openai_responses, NULL},
    {"POST", "/openai/responses", fp_openai_responses, NULL},
    /* Anthropic Messages API */
    {"POST", "/v1/messages", fp_anthropic_messages, NULL},
    /* Gemini (the key in x-goog-api-key; streams with ?alt=sse) */
    {"POST", "/v1beta/models/*:generateContent", fp_gemini_generate, NULL},
    {"POST", "/v1beta/models/*:streamGenerateContent", fp_gemini_stream, NULL},
    {"POST", "/v1beta/models/*:embedContent", fp_gemini_embed, NULL},
    {"POST", "/v1beta/models/*:batchEmbedContents", fp_gemini_batch_embed, NULL},
    /* Ollama native API */
    {"POST", "/api/chat", fp_ollama_chat, NULL},
    {"POST", "/api/generate", fp_ollama_generate, NULL},
    {"POST", "/api/embed", fp_ollama_embed, NULL},
};

typedef struct canned {
    int status;
    char *content_type;
    char *body;
    char *extra;
    int stream;
    struct canned *next;
} canned;

#define MAX_CONNS 256

struct fp_server {
    int lfd;
    int port;
    char url[64];
    pthread_t acceptor;
    volatile int stopping;
    pthread_mutex_t lock;
    fp_request **reqs;
    size_t n_reqs, cap_reqs;
    int n_conns;
    int conn_fds[MAX_CONNS];
    int conn_used[MAX_CONNS];
    int active;             /* connection threads alive */
    pthread_cond_t idle;    /* signalled when one ends */
    canned *queue_head, *queue_tail;
    int fail_n, fail_status, fail_retry_after;
    int malformed_n;
    int cut_events; /* -1 none */
    int hold_events; /* -1 none */
    int released;    /* fp_release called since the hold was armed */
    int hold_ended;  /* 1 released, 2 timed out */
    pthread_cond_t release;
    int delay_ms;
    fp_route *routes;
    size_t n_routes;
};

struct fp_conn {
    fp_server *srv;
    int fd;
    int responded;
    int streaming;
    int cut_after; /* events left before the cut, -1 = never */
    int hold_after; /* events left before the hold, -1 = never */
    int cut;
    int malformed_stream;
    int close_after;
};

/* ------------------------------------------------------------------ */
/* I/O helpers. */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* ------------------------------------------------------------------ */
/* Reply helpers. */

void fp_reply(fp_conn *c, int status, const char *content_type, const char *body, size_t len,
              const char *extra_headers)
{
    if (c->responded)
        return;
    c->responded = 1;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, reason(status), content_type ? content_type : "application/json",
                     len, extra_headers ? extra_headers : "",
                     c->close_after ? "Connection: close\r\n" : "");
    if (write_all(c->fd, head, (size_t)n) == 0 && len)
        write_all(c->fd, body, len);
}

void fp_reply_json(fp_conn *c, int status, const char *json)
{
    size_t len = strlen(json);
    pthread_mutex_lock(&c->srv->lock);
    int mal = c->srv->malformed_n > 0;
    if (mal)
        c->srv->malformed_n--;
    pthread_mutex_unlock(&c->srv->lock);
    if (mal && len > 2)
        len = len / 2; /* a JSON text cut in half is never valid JSON */
    fp_reply(c, status, "application/json", json, len, NULL);
}

static void do_cut(fp_conn *c)
{
    c->cut = 1;
    /* Close without the terminating chunk: the client sees a body that
     * broke off. */
    shutdown(c->fd, SHUT_RDWR);
}

void fp_stream_begin(fp_conn *c, const char *content_type)
{
    if (c->responded)
        return;
    c->responded = 1;
    c->streaming = 1;
    pthread_mutex_lock(&c->srv->lock);
    c->cut_after = c->srv->cut_events;
    c->srv->cut_events = -1;
    c->hold_after = c->srv->hold_events;
    c->srv->hold_events = -1;
    if (c->srv->malformed_n > 0) {
        c->malformed_stream = 1;
        c->srv->malformed_n--;
    }
    pthread_mutex_unlock(&c->srv->lock);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n"
                     "Cache-Control: no-cache\r\n\r\n",
                     content_type ? content_type : "text/event-stream");
    write_all(c->fd, head, (size_t)n);
    if (c->cut_after == 0)
        do_cut(c);
}

int fp_stream_write(fp_conn *c, const char *data, size_t len)
{
    if (c->cut)
        return -1;
    if (len == 0)
        return 0;
    char hdr[32];
    int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
    if (write_all(c->fd, hdr, (size_t)n) || write_all(c->fd, data, len) ||
        write_all(c->fd, "\r\n", 2)) {
        c->cut = 1;
        return -1;
    }
    return 0;
}

/* Wait for fp_release (which may have come already: the client can see
 * the last event before this thread gets here). A test whose client never
 * releases (it did not see the events while the stream was held) gets
 * the rest of the stream after 20 s rather than a hang, and fails on
 * fp_hold_released. */
static void hold(fp_conn *c)
{
    fp_server *s = c->srv;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&s->lock);
    while (!s->released && !s->stopping &&
           pthread_cond_timedwait(&s->release, &s->lock, &until) == 0)
        ;
    s->hold_ended = s->released ? 1 : 2;
    pthread_mutex_unlock(&s->lock);
}

static int event_done(fp_conn *c)
{
    if (c->hold_after > 0 && --c->hold_after == 0)
        hold(c);
    if (c->cut_after > 0 && --c->cut_after == 0) {
        do_cut(c);
        return -1;
    }
    return 0;
}

static int malformed_first(fp_conn *c, int sse)
{
    if (!c->malformed_stream)
        return 0;
    c->malformed_stream = 0;
    const char *bad = sse ? "data: {\"id\": \"broken\", \"choices\": [\n\n" : "{\"broken\": [\n";
    return fp_stream_write(c, bad, strlen(bad));
}

int fp_sse_event(fp_conn *c, const char *event, const char *data)
{
    if (c->cut || malformed_first(c, 1) < 0)
        return -1;
    size_t len = strlen(data) + (event ? strlen(event) : 0) + 32;
    char *buf = malloc(len);
    if (!buf)
        return -1;
    int n = event ? snprintf(buf, len, "event: %s\ndata: %s\n\n", event, data)
                  : snprintf(buf, len, "data: %s\n\n", data);
    int rc = fp_stream_write(c, buf, (size_t)n);
    free(buf);
    if (rc < 0)
        return -1;
    return event_done(c);
}

int fp_ndjson_line(fp_conn *c, const char *json)
{
    if (c->cut || malformed_first(c, 0) < 0)
        return -1;
    size_t len = strlen(json);
    char *buf = malloc(len + 2);
    if (!buf)
        return -1;
    memcpy(buf, json, len);
    buf[len] = '\n';
    int rc = fp_stream_write(c, buf, len + 1);
    free(buf);
    if (rc < 0)
        return -1;
    return event_done(c);
}

void fp_stream_end(fp_conn *c)
{
    if (c->cut)
        return;
    write_all(c->fd, "0\r\n\r\n", 5);
}

/* ------------------------------------------------------------------ */
/* Requests. */

static void request_free(fp_request *r)
{
    if (!r)
        return;
    free(r->target);
    free(r->path);
    free(r->query);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r);
}

const char *fp_header_get(const fp_request *r, const char *name)
{
    for (size_t i = 0; r && i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* Parse one request out of buf[0..len); returns bytes used, 0 if
 * incomplete, -1 if malformed. */
static long parse_request(const char *buf, size_t len, fp_request **out)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i;
            break;
        }
    if (!end)
        return 0;
    fp_request *r = calloc(1, sizeof *r);
    const char *p = buf;
    const char *eol = strstr(p, "\r\n");
    char line[8192];
    size_t ll = (size_t)(eol - p) < sizeof line - 1 ? (size_t)(eol - p) : sizeof line - 1;
    memcpy(line, p, ll);
    line[ll] = '\0';
    char target[8000];
    if (sscanf(line, "%15s %7999s", r->method, target) != 2) {
        request_free(r);
        return -1;
    }
    r->target = strdup(target);
    char *q = strchr(target, '?');
    r->query = strdup(q ? q + 1 : "");
    if (q)
        *q = '\0';
    r->path = strdup(target);
    p = eol + 2;
    size_t clen = 0;
    while (p < end) {
        eol = strstr(p, "\r\n");
        if (!eol || eol > end)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            r->headers = realloc(r->headers, (r->n_headers + 1) * sizeof *r->headers);
            fp_header *h = &r->headers[r->n_headers++];
            h->name = strndup(p, (size_t)(colon - p));
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            h->value = strndup(v, (size_t)(eol - v));
            if (strcasecmp(h->name, "Content-Length") == 0)
                clen = (size_t)strtoul(h->value, NULL, 10);
        }
        p = eol + 2;
    }
    size_t head = (size_t)(end - buf) + 4;
    if (len < head + clen) {
        request_free(r);
        return 0;
    }
    r->body = malloc(clen + 1);
    memcpy(r->body, buf + head, clen);
    r->body[clen] = '\0';
    r->body_len = clen;
    *out = r;
    return (long)(head + clen);
}

/* ------------------------------------------------------------------ */
/* Serving. */

static void answer(fp_conn *c, const fp_request *req)
{
    fp_server *s = c->srv;
    pthread_mutex_lock(&s->lock);
    int delay = s->delay_ms;
    int fail = 0, fail_status = 0, retry_after = -1;
    if (s->fail_n > 0) {
        s->fail_n--;
        fail = 1;
        fail_status = s->fail_status;
        retry_after = s->fail_retry_after;
    }
    canned *cn = NULL;
    if (!fail && s->queue_head) {
        cn = s->queue_head;
        s->queue_head = cn->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (delay > 0)
        sleep_ms(delay);
    if (fail) {
        char extra[64] = "";
        if (retry_after >= 0)
            snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry_after);
        char body[256];
        snprintf(body, sizeof body,
                 "{\"error\":{\"message\":\"fake failure %d\",\"type\":\"%s\",\"code\":null}}",
                 fail_status, fail_status == 429 ? "rate_limit_exceeded" : "server_error");
        fp_reply(c, fail_status, "application/json", body, strlen(body), extra);
        return;
    }
    if (cn) {
        if (cn->stream) {
            fp_stream_begin(c, cn->content_type);
            /* One event per blank-line-separated block (SSE) or line. */
            int sse = strstr(cn->content_type, "event-stream") != NULL;
            const char *p = cn->body;
            while (*p && !c->cut) {
                const char *e = sse ? strstr(p, "\n\n") : strchr(p, '\n');
                size_t n = e ? (size_t)(e - p) + (sse ? 2 : 1) : strlen(p);
                if (malformed_first(c, sse) < 0 || fp_stream_write(c, p, n) < 0)
                    break;
                if (event_done(c) < 0)
                    break;
                p += n;
            }
            fp_stream_end(c);
        } else {
            fp_reply(c, cn->status, cn->content_type, cn->body, strlen(cn->body), cn->extra);
        }
        free(cn->content_type);
        free(cn->body);
        free(cn->extra);
        free(cn);
        return;
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        fp_route *r = &s->routes[i];
        if (strcasecmp(r->method, req->method) == 0 && fnmatch(r->glob, req->path, 0) == 0) {
            r->handler(c, req, r->ud);
            if (!c->responded)
                fp_reply_json(c, 500, "{\"error\":{\"message\":\"handler gave no answer\"}}");
            return;
        }
    }
    char body[512];
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"no route for %s %.300s\"}}",
             req->method, req->path);
    fp_reply(c, 404, "application/json", body, strlen(body), NULL);
}

typedef struct conn_arg {
    fp_server *srv;
    int fd;
    int slot;
    int id;
} conn_arg;

static void *conn_main(void *p)
{
    conn_arg *a = p;
    fp_server *s = a->srv;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        fp_request *req = NULL;
        long used = len ? parse_request(buf, len, &req) : 0;
        if (used < 0)
            break;
        if (used == 0) {
            if (len + 4096 > cap) {
                cap *= 2;
                buf = realloc(buf, cap);
            }
            ssize_t n = recv(a->fd, buf + len, cap - len - 1, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            continue;
        }
        req->conn_id = a->id;
        memmove(buf, buf + used, len - (size_t)used);
        len -= (size_t)used;
        buf[len] = '\0';
        pthread_mutex_lock(&s->lock);
        if (s->n_reqs == s->cap_reqs) {
            s->cap_reqs = s->cap_reqs ? s->cap_reqs * 2 : 64;
            s->reqs = realloc(s->reqs, s->cap_reqs * sizeof *s->reqs);
        }
        s->reqs[s->n_reqs++] = req;
        pthread_mutex_unlock(&s->lock);
        fp_conn c = {.srv = s, .fd = a->fd, .cut_after = -1, .hold_after = -1};
        const char *conn_hdr = fp_header_get(req, "Connection");
        c.close_after = conn_hdr && strcasecmp(conn_hdr, "close") == 0;
        answer(&c, req);
        if (c.cut || c.close_after)
            break;
    }
    free(buf);
    pthread_mutex_lock(&s->lock);
    close(a->fd);
    s->conn_fds[a->slot] = -1;
    s->conn_used[a->slot] = 0;
    s->active--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    free(a);
    return NULL;
}

static void *accept_main(void *p)
{
    fp_server *s = p;
    while (!s->stopping) {
        struct pollfd pf = {s->lfd, POLLIN, 0};
        int pr = poll(&pf, 1, 100);
        if (pr <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&s->lock);
        int slot = -1;
        for (int i = 0; i < MAX_CONNS; i++)
            if (!s->conn_used[i]) {
                slot = i;
                break;
            }
        if (slot < 0) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        s->conn_used[slot] = 1;
        s->conn_fds[slot] = fd;
        int id = ++s->n_conns;
        conn_arg *a = malloc(sizeof *a);
        *a = (conn_arg){s, fd, slot, id};
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, a) != 0) {
            s->conn_used[slot] = 0;
            s->conn_fds[slot] = -1;
            close(fd);
            free(a);
        } else {
            pthread_detach(t);
            s->active++;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

fp_server *fp_start(void)
{
    fp_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->cut_events = -1;
    s->hold_events = -1;
    pthread_cond_init(&s->release, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        s->conn_fds[i] = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0; /* the kernel picks a free port: no race with others */
    socklen_t al = sizeof a;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(s->lfd, 64) != 0 || getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    size_t nb = sizeof fp_builtin_routes / sizeof fp_builtin_routes[0];
    s->routes = malloc(nb * sizeof *s->routes);
    memcpy(s->routes, fp_builtin_routes, nb * sizeof *s->routes);
    s->n_routes = nb;
    if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        close(s->lfd);
        free(s->routes);
        free(s);
        return NULL;
    }
    return s;
}

static void clear_state(fp_server *s)
{
    for (size_t i = 0; i < s->n_reqs; i++)
        request_free(s->reqs[i]);
    s->n_reqs = 0;
    while (s->queue_head) {
        canned *c = s->queue_head;
        s->queue_head = c->next;
        free(c->content_type);
        free(c->body);
        free(c->extra);
        free(c);
    }
    s->queue_tail = NULL;
    s->fail_n = 0;
    s->malformed_n = 0;
    s->cut_events = -1;
    s->hold_events = -1;
    s->delay_ms = 0;
}

void fp_stop(fp_server *s)
{
    if (!s)
        return;
    s->stopping = 1;
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->release);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conn_used[i] && s->conn_fds[i] >= 0)
            shutdown(s->conn_fds[i], SHUT_RDWR);
    while (s->active > 0)
        pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    clear_state(s);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->release);
    free(s->reqs);
    free(s->routes);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

int fp_port(const fp_server *s)
{
    return s->port;
}

const char *fp_url(const fp_server *s)
{
    return s->url;
}

void fp_reset(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    clear_state(s);
    pthread_mutex_unlock(&s->lock);
}

size_t fp_count(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n_reqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

const fp_request *fp_request_at(fp_server *s, size_t i)
{
    pthread_mutex_lock(&s->lock);
    const fp_request *r = i < s->n_reqs ? s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

const fp_request *fp_last(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    const fp_request *r = s->n_reqs ? s->reqs[s->n_reqs - 1] : NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int fp_connections(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->n_conns;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void fp_add_route(fp_server *s, const char *method, const char *path_glob, fp_handler h,
                  void *ud)
{
    pthread_mutex_lock(&s->lock);
    s->routes = realloc(s->routes, (s->n_routes + 1) * sizeof *s->routes);
    s->routes[s->n_routes++] = (fp_route){method, path_glob, h, ud};
    pthread_mutex_unlock(&s->lock);
}

static void push(fp_server *s, canned *c)
{
    pthread_mutex_lock(&s->lock);
    if (s->queue_tail)
        s->queue_tail->next = c;
    else
        s->queue_head = c;
    s->queue_tail = c;
    pthread_mutex_unlock(&s->lock);
}

void fp_push_reply(fp_server *s, int status, const char *content_type, const char *body,
                   const char *extra_headers)
{
    canned *c = calloc(1, sizeof *c);
    c->status = status;
    c->content_type = xstrdup(content_type ? content_type : "application/json");
    c->body = xstrdup(body ? body : "");
    c->extra = xstrdup(extra_headers);
    push(s, c);
}

void fp_push_stream(fp_server *s, const char *content_type, const char *raw)
{
    canned *c = calloc(1, sizeof *c);
    c->status = 200;
    c->stream = 1;
    c->content_type = xstrdup(content_type ? content_type : "text/event-stream");
    c->body = xstrdup(raw ? raw : "");
    push(s, c);
}

void fp_fail_next(fp_server *s, int n, int status, int retry_after_s)
{
    pthread_mutex_lock(&s->lock);
    s->fail_n = n;
    s->fail_status = status;
    s->fail_retry_after = retry_after_s;
    pthread_mutex_unlock(&s->lock);
}

void fp_malformed_next(fp_server *s, int n)
{
    pthread_mutex_lock(&s->lock);
    s->malformed_n = n;
    pthread_mutex_unlock(&s->lock);
}

void fp_cut_stream_next(fp_server *s, int events)
{
    pthread_mutex_lock(&s->lock);
    s->cut_events = events;
    pthread_mutex_unlock(&s->lock);
}

void fp_hold_stream_next(fp_server *s, int events)
{
    pthread_mutex_lock(&s->lock);
    s->hold_events = events;
    s->released = 0;
    s->hold_ended = 0;
    pthread_mutex_unlock(&s->lock);
}

int fp_hold_released(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    int r = s->hold_ended == 1;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void fp_release(fp_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->released = 1;
    pthread_cond_broadcast(&s->release);
    pthread_mutex_unlock(&s->lock);
}

void fp_set_delay_ms(fp_server *s, int ms)
{
    pthread_mutex_lock(&s->lock);
    s->delay_ms = ms;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* OpenAI wire format. */

void fp_fake_vector(const char *text, size_t len, double *out, int dims)
{
    /* FNV-1a per dimension: deterministic, different per text. */
    for (int d = 0; d < dims; d++) {
        uint64_t h = 1469598103934665603ull ^ (uint64_t)(d * 7919);
        for (size_t i = 0; i < len; i++) {
            h ^= (unsigned char)text[i];
            h *= 1099511628211ull;
        }
        out[d] = ((double)(h % 20001) - 10000.0) / 10000.0;
    }
}

/* The text of the last message (string content, or the text parts). */
static void last_message_text(json_object *req, char *out, size_t outsz)
{
    out[0] = '\0';
    json_object *msgs, *m, *content;
    if (!json_object_object_get_ex(req, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array) || json_object_array_length(msgs) == 0)
        return;
    m = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
    if (!json_object_object_get_ex(m, "content", &content))
        return;
    if (json_object_is_type(content, json_type_string)) {
        snprintf(out, outsz, "%s", json_object_get_string(content));
        return;
    }
    if (json_object_is_type(content, json_type_array)) {
        size_t used = 0;
        for (size_t i = 0; i < json_object_array_length(content); i++) {
            json_object *part = json_object_array_get_idx(content, i), *t;
            if (json_object_object_get_ex(part, "text", &t))
                used += (size_t)snprintf(out + used, used < outsz ? outsz - used : 0, "%s",
                                         json_object_get_string(t));
        }
    }
}

static const char *req_model(json_object *req)
{
    json_object *m;
    return json_object_object_get_ex(req, "model", &m) ? json_object_get_string(m) : "fake";
}

static int want_stream(json_object *req)
{
    json_object *v;
    return json_object_object_get_ex(req, "stream", &v) && json_object_get_boolean(v);
}

static int want_usage(json_object *req)
{
    json_object *so, *v;
    return json_object_object_get_ex(req, "stream_options", &so) &&
           json_object_object_get_ex(so, "include_usage", &v) && json_object_get_boolean(v);
}

static json_object *parse_body(fp_conn *c, const fp_request *r)
{
    json_object *o = json_tokener_parse(r->body);
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        fp_reply_json(c, 400, "{\"error\":{\"message\":\"body is not a JSON object\","
                              "\"type\":\"invalid_request_error\"}}");
        return NULL;
    }
    return o;
}

static void send_obj(fp_conn *c, json_object *o)
{
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static int sse_obj(fp_conn *c, json_object *o)
{
    int rc = fp_sse_event(c, NULL, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return rc;
}

static json_object *chunk(const char *model)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string("chatcmpl-fake"));
    json_object_object_add(o, "object", json_object_new_string("chat.completion.chunk"));
    json_object_object_add(o, "created", json_object_new_int64(1700000000));
    json_object_object_add(o, "model", json_object_new_string(model));
    json_object_object_add(o, "choices", json_object_new_array());
    return o;
}

static json_object *chunk_delta(json_object *ch)
{
    json_object *choices, *c = json_object_new_object(), *d = json_object_new_object();
    json_object_object_get_ex(ch, "choices", &choices);
    json_object_object_add(c, "index", json_object_new_int(0));
    json_object_object_add(c, "delta", d);
    json_object_object_add(c, "finish_reason", NULL);
    json_object_array_add(choices, c);
    return d;
}

void fp_openai_chat(fp_conn *c, const fp_request *r, void *ud)
{
    (void)ud;
    json_object *req = parse_body(c, r);
    if (!req)
        return;
    char text[4096];
    last_message_text(req, text, sizeof text);
    char answer_text[4200];
    snprintf(answer_text, sizeof answer_text, "echo: %s", text);
    int tool = strstr(text, "CALL_TOOL") != NULL;
    const char *model = req_model(req);
    int prompt_tokens = (int)(strlen(r->body) / 4), completion_tokens = (int)strlen(answer_text) / 4;
    if (!want_stream(req)) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string("chatcmpl-fake"));
        json_object_object_add(o, "object", json_object_new_string("chat.completion"));
        json_object_object_add(o, "created", json_object_new_int64(1700000000));
        json_object_object_add(o, "model", json_object_new_string(model));
        json_object *choices = json_object_new_array(), *ch = json_object_new_object();
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        if (tool) {
            json_object_object_add(msg, "content", NULL);
            json_object *tcs = json_object_new_array(), *tc = json_object_new_object(),
                        *fn = json_object_new_object();
            json_object_object_add(tc, "id", json_object_new_string("call_fake1"));
            json_object_object_add(tc, "type", json_object_new_string("function"));
            json_object_object_add(fn, "name", json_object_new_string("get_weather"));
            json_object_object_add(fn, "arguments",
                                   json_object_new_string("{\"city\":\"Paris\",\"unit\":\"c\"}"));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(tcs, tc);
            json_object_object_add(msg, "tool_calls", tcs);
        } else {
            json_object_object_add(msg, "content", json_object_new_string(answer_text));
        }
        json_object_object_add(ch, "index", json_object_new_int(0));
        json_object_object_add(ch, "message", msg);
        json_object_object_add(ch, "finish_reason",
                               json_object_new_string(tool ? "tool_calls" : "stop"));
        json_object_array_add(choices, ch);
        json_object_object_add(o, "choices", choices);
        json_object *u = json_object_new_object();
        json_object_object_add(u, "prompt_tokens", json_object_new_int(prompt_tokens));
        json_object_object_add(u, "completion_tokens", json_object_new_int(completion_tokens));
        json_object_object_add(u, "total_tokens",
                               json_object_new_int(prompt_tokens + completion_tokens));
        json_object_object_add(o, "usage", u);
        send_obj(c, o);
        json_object_put(o);
        json_object_put(req);
        return;
    }
    fp_stream_begin(c, "text/event-stream");
    json_object *k = chunk(model);
    json_object_object_add(chunk_delta(k), "role", json_object_new_string("assistant"));
    if (sse_obj(c, k) < 0)
        goto out;
    if (tool) {
        k = chunk(model);
        json_object *d = chunk_delta(k), *tcs = json_object_new_array(),
                    *tc = json_object_new_object(), *fn = json_object_new_object();
        json_object_object_add(tc, "index", json_object_new_int(0));
        json_object_object_add(tc, "id", json_object_new_string("call_fake1"));
        json_object_object_add(tc, "type", json_object_new_string("function"));
        json_object_object_add(fn, "name", json_object_new_string("get_weather"));
        json_object_object_add(fn, "arguments", json_object_new_string(""));
        json_object_object_add(tc, "function", fn);
        json_object_array_add(tcs, tc);
        json_object_object_add(d, "tool_calls", tcs);
        if (sse_obj(c, k) < 0)
            goto out;
        static const char *const parts[] = {"{\"city\":", "\"Paris\",", "\"unit\":\"c\"}"};
        for (int i = 0; i < 3; i++) {
            k = chunk(model);
            d = chunk_delta(k);
            tcs = json_object_new_array();
            tc = json_object_new_object();
            fn = json_object_new_object();
            json_object_object_add(tc, "index", json_object_new_int(0));
            json_object_object_add(fn, "arguments", json_object_new_string(parts[i]));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(tcs, tc);
            json_object_object_add(d, "tool_calls", tcs);
            if (sse_obj(c, k) < 0)
                goto out;
        }
    } else {
        size_t len = strlen(answer_text);
        for (size_t off = 0; off < len; off += 5) {
            k = chunk(model);
            json_object_object_add(chunk_delta(k), "content",
                                   json_object_new_string_len(answer_text + off,
                                                              (int)(len - off < 5 ? len - off : 5)));
            if (sse_obj(c, k) < 0)
                goto out;
        }
    }
    k = chunk(model);
    chunk_delta(k);
    {
        json_object *choices;
        json_object_object_get_ex(k, "choices", &choices);
        json_object_object_add(json_object_array_get_idx(choices, 0), "finish_reason",
                               json_object_new_string(tool ? "tool_calls" : "stop"));
    }
    if (sse_obj(c, k) < 0)
        goto out;
    if (want_usage(req)) {
        k = chunk(model);
        json_object *u = json_object_new_object();
        json_object_object_add(u, "prompt_tokens", json_object_new_int(prompt_tokens));
        json_object_object_add(u, "completion_tokens", json_object_new_int(completion_tokens));
        json_object_object_add(u, "total_tokens",
                               json_object_new_int(prompt_tokens + completion_tokens));
        json_object_object_add(k, "usage", u);
        if (sse_obj(c, k) < 0)
            goto out;
    }
    if (fp_sse_event(c, NULL, "[DONE]") < 0)
        goto out;
    fp_stream_end(c);
out:
    json_object_put(req);
}

void fp_openai_completions(fp_conn *c, const fp_request *r, void *ud)
{
    (void)ud;
    json_object *req = parse_body(c, r);
    if (!req)
        return;
    json_object *p;
    const char *prompt = json_object_object_get_ex(req, "prompt", &p) && json_object_is_type(p, json_type_string)
                             ? json_object_get_string(p)
                             : "";
    char text[4200];
    snprintf(text, sizeof text, "echo: %s", prompt);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string("cmpl-fake"));
    json_object_object_add(o, "object", json_object_new_string("text_completion"));
    json_object_object_add(o, "created", json_object_new_int64(1700000000));
    json_object_object_add(o, "model", json_object_new_string(req_model(req)));
    json_object *choices = json_object_new_array(), *ch = json_object_new_object();
    json_object_object_add(ch, "text", json_object_new_string(text));
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "logprobs", NULL);
    json_object_object_add(ch, "finish_reason", json_object_new_string("stop"));
    json_object_array_add(choices, ch);
    json_object_object_add(o, "choices", choices);
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int((int)strlen(prompt) / 4 + 1));
    json_object_object_add(u, "completion_tokens", json_object_new_int((int)strlen(text) / 4));
    json_object_object_add(u, "total_tokens",
                           json_object_new_int((int)strlen(prompt) / 4 + 1 + (int)strlen(text) / 4));
    json_object_object_add(o, "usage", u);
    send_obj(c, o);
    json_object_put(o);
    json_object_put(req);
}

void fp_openai_embeddings(fp_conn *c, const fp_request *r, void *ud)
{
    (void)ud;
    json_object *req = parse_body(c, r);
    if (!req)
        return;
    json_object *in;
    if (!json_object_object_get_ex(req, "input", &in)) {
        fp_reply_json(c, 400, "{\"error\":{\"message\":\"input is required\"}}");
        json_object_put(req);
        return;
    }
    json_object *o = json_object_new_object(), *data = json_object_new_array();
    int single = !json_object_is_type(in, json_type_array) ||
                 (json_object_array_length(in) > 0 &&
                  json_object_is_type(json_object_array_get_idx(in, 0), json_type_int));
    size_t n = single ? 1 : json_object_array_length(in);
    int tokens = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *it = single ? in : json_object_array_get_idx(in, i);
        const char *t = json_object_to_json_string_ext(it, JSON_C_TO_STRING_PLAIN);
        double v[4];
        fp_fake_vector(t, strlen(t), v, 4);
        json_object *e = json_object_new_object(), *vec = json_object_new_array();
        for (int d = 0; d < 4; d++)
            json_object_array_add(vec, json_object_new_double(v[d]));
        json_object_object_add(e, "object", json_object_new_string("embedding"));
        json_object_object_add(e, "index", json_object_new_int((int)i));
        json_object_object_add(e, "embedding", vec);
        json_object_array_add(data, e);
        tokens += (int)strlen(t) / 4 + 1;
    }
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", data);
    json_object_object_add(o, "model", json_object_new_string(req_model(req)));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int(tokens));
    json_object_object_add(u, "total_tokens", json_object_new_int(tokens));
    json_object_object_add(o, "usage", u);
    send_obj(c, o);
    json_object_put(o);
    json_object_put(req);
}
