/* Answers: OpenAI-style error objects (configured secrets scrubbed from
 * messages), the library's statuses mapped to HTTP, the x-llmcache-*
 * headers and access log, and the results workers hand back to a
 * suspended connection. */
#include "proxy_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* The Messages API's error types. */
static const char *anthropic_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* An OpenAI-style error object into out; on /v1/messages the Messages
 * API's {"type":"error","error":{"type","message"}}, so its SDKs raise
 * their usual exceptions. */
static void error_json_for(const preq *r, llmc_buf *out, int status, const char *code,
                           const char *msg);
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

static void error_json_for(const preq *r, llmc_buf *out, int status, const char *code,
                           const char *msg)
{
    if (r->ep != EP_MESSAGES) {
        error_json(out, status, code, msg);
        return;
    }
    json_object *o = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(e, "type", json_object_new_string(anthropic_error_type(status)));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(o, "error", e);
    llmc_buf_clear(out);
    llmc_buf_puts(out, json_object_to_json_string_ext(o, JSON_FLAGS));
    json_object_put(o);
}

/* The error event of a typed stream (Responses):
 * {"type":"error","code","message","param","sequence_number"}. */
static void typed_error_event(llmc_buf *out, int status, const char *code, const char *msg,
                              int64_t seq)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "code", json_object_new_string(code ? code : error_type(status)));
    json_object_object_add(o, "message", json_object_new_string(msg));
    json_object_object_add(o, "param", NULL);
    json_object_object_add(o, "sequence_number", json_object_new_int64(seq));
    llmc_buf_clear(out);
    llmc_buf_puts(out, json_object_to_json_string_ext(o, JSON_FLAGS));
    json_object_put(o);
}

int px_status_for(const llmc_err *e)
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

const char *px_error_code(const llmc_err *e, int status)
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

void px_add_cache_headers(preq *r, struct MHD_Response *resp, const char *status,
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
    if (r->k && llmc_call_bypass_reason(r->k))
        MHD_add_response_header(resp, "x-llmcache-bypass", llmc_call_bypass_reason(r->k));
    if (r->coalesced)
        MHD_add_response_header(resp, "x-llmcache-coalesced", "true");
    if (strcmp(status, "STALE") == 0)
        MHD_add_response_header(resp, "Warning", "110 - \"Response is Stale\"");
    px_semantic_headers(r, resp);
    if (r->saved_set && px_is_hit(status)) {
        char v[48];
        snprintf(v, sizeof v, "%llu", (unsigned long long)r->saved_tokens);
        MHD_add_response_header(resp, "x-llmcache-saved-tokens", v);
        const char *usd = "unknown";
        if (r->saved_priced) {
            /* Plain decimal, all the digits a few tokens need. */
            snprintf(v, sizeof v, "%.10f", r->saved_usd);
            size_t n = strlen(v);
            while (n > 1 && v[n - 1] == '0' && v[n - 2] != '.')
                v[--n] = '\0';
            usd = v;
        }
        MHD_add_response_header(resp, "x-llmcache-saved-usd", usd);
    }
}

/* A response went out: the time a hit took, for the dashboard. */
static void note_served(preq *r, const char *cstatus)
{
    if (px_is_hit(cstatus)) {
        atomic_fetch_add(&r->srv->m.hits_served, 1);
        atomic_fetch_add(&r->srv->m.hit_us, (px_now_ns() - r->t0) / 1000);
    }
}

void px_access_log(preq *r, int status, const char *cstatus)
{
    if (r->srv->cfg->quiet)
        return;
    fprintf(stderr, "llmcache serve: %s %s %d %s %.1fms\n", r->method, r->path, status,
            cstatus ? cstatus : "-", (double)(px_now_ns() - r->t0) / 1e6);
}

static enum MHD_Result queue(preq *r, int status, const char *ctype,
                             struct MHD_Response *resp, const char *cstatus, int64_t age_s,
                             const char *extra_key)
{
    MHD_add_response_header(resp, "Content-Type", ctype);
    px_add_cache_headers(r, resp, cstatus, age_s);
    if (extra_key)
        MHD_add_response_header(resp, "x-llmcache-key", extra_key);
    if (atomic_load(&r->srv->stopping) || r->close)
        MHD_add_response_header(resp, "Connection", "close");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", r->allow ? r->allow : "GET");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    px_count_status(r->srv, status);
    note_served(r, cstatus);
    px_access_log(r, status, cstatus);
    return ret;
}

/* Queue body (taken over: malloc'd, freed by libmicrohttpd). */
enum MHD_Result px_queue_owned(preq *r, int status, const char *ctype, char *body,
                                   size_t len, const char *cstatus, int64_t age_s,
                                   const char *extra_key)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    return queue(r, status, ctype, resp, cstatus, age_s, extra_key);
}

static void free_response(void *cls)
{
    llmc_response_free(cls);
}

enum MHD_Result px_queue_hit(preq *r, llmc_response *hit, const char *cstatus, int64_t age_s)
{
    size_t len;
    const char *text = llmc_response_text(hit, &len);
    /* libmicrohttpd only reads the buffer; it is the response's own text. */
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        len, (void *)(uintptr_t)text, free_response, hit);
    if (!resp) {
        llmc_response_free(hit);
        return MHD_NO;
    }
    return queue(r, 200, "application/json", resp, cstatus, age_s, NULL);
}

enum MHD_Result px_queue_buf(preq *r, int status, const char *ctype, llmc_buf *b,
                                 const char *cstatus, int64_t age_s)
{
    size_t len = b->len;
    char *p = b->data ? malloc(len + 1) : malloc(1);
    if (!p)
        return MHD_NO;
    if (len)
        memcpy(p, b->data, len);
    return px_queue_owned(r, status, ctype, p, len, cstatus, age_s, NULL);
}

enum MHD_Result px_queue_error(preq *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result px_queue_error(preq *r, int status, const char *code, const char *fmt, ...)
{
    char msg[LLMC_ERRMSG_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    scrub(r->srv, msg);
    if (status != 401)
        proxy_ui_note_error(r->srv->ui, status, r->path, msg);
    llmc_buf b = LLMC_BUF_INIT;
    error_json_for(r, &b, status, code, msg);
    if (status == 401)
        atomic_fetch_add(&r->srv->m.auth_failures, 1);
    else if (status < 500)
        atomic_fetch_add(&r->srv->m.errors_client, 1);
    else
        atomic_fetch_add(&r->srv->m.errors_internal, 1);
    enum MHD_Result ret = px_queue_buf(r, status, "application/json", &b, NULL, 0);
    llmc_buf_free(&b);
    return ret;
}

enum MHD_Result px_queue_json(preq *r, int status, json_object *o)
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
    return px_queue_owned(r, status, "application/json", p, len, NULL, 0, NULL);
}

/* Wake the connection if it is parked (caller holds r->mu). */
void px_wake(preq *r)
{
    if (r->suspended && !r->gone) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
    }
}

void px_finish_plain(preq *r, int status, llmc_buf *body, const char *cstatus,
                         int64_t age_s)
{
    px_land_before_answer(r);
    pthread_mutex_lock(&r->mu);
    llmc_buf tmp = r->out;
    r->out = *body;
    *body = tmp;
    r->status = status;
    r->ctype = "application/json";
    r->cache_status = cstatus;
    r->age_s = age_s;
    r->ready = 1;
    if (px_is_hit(cstatus))
        r->answered_hit = 1;
    px_wake(r);
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
void px_finish_error(preq *r, const llmc_err *e)
{
    px_land_before_answer(r);
    int status = px_status_for(e);
    char msg[LLMC_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", e->msg[0] ? e->msg : llmc_strerror(e->status));
    scrub(r->srv, msg);
    if (e->status != LLMC_ECANCELED)
        proxy_ui_note_error(r->srv->ui, status, r->path, msg);
    if (e->status == LLMC_ECANCELED)
        ; /* the client left: nobody to count it for */
    else if (upstream_status(e->status))
        atomic_fetch_add(&r->srv->m.errors_upstream, 1);
    else if (status < 500)
        atomic_fetch_add(&r->srv->m.errors_client, 1);
    else
        atomic_fetch_add(&r->srv->m.errors_internal, 1);
    llmc_buf b = LLMC_BUF_INIT;
    error_json_for(r, &b, status, px_error_code(e, status), msg);
    pthread_mutex_lock(&r->mu);
    if (r->streaming) {
        /* The Messages API's error event carries its usual error object. */
        if (r->typed && r->ep != EP_MESSAGES)
            typed_error_event(&b, status, px_error_code(e, status), msg, r->events);
        llmc_buf_puts(&r->sbuf, r->typed ? "event: error\ndata: " : "data: ");
        llmc_buf_append(&r->sbuf, b.data, b.len);
        llmc_buf_puts(&r->sbuf, "\n\n");
        r->s_done = 1;
        px_wake(r);
        pthread_mutex_unlock(&r->mu);
        llmc_buf_free(&b);
        return;
    }
    pthread_mutex_unlock(&r->mu);
    px_finish_plain(r, status, &b, r->caching ? "MISS" : "BYPASS", 0);
    llmc_buf_free(&b);
}
