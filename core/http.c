/* HTTP for the provider adapters, over libcurl.
 *
 * Connections are reused: easy handles are kept in a pool (an easy
 * handle keeps its connections alive between transfers) and all handles
 * share one connection cache and DNS cache through a share handle, so a
 * connection opened by one thread serves the next call on any thread.
 * Retries follow the usual client policy: 429, 5xx, connection errors and
 * timeouts are retried with exponential backoff and jitter, a Retry-After
 * from the server is honoured (a wait longer than retry_max_ms ends the
 * retries rather than being cut short), and nothing is retried once part
 * of a streamed body has been handed to the caller. */
#include "net.h"

#include <string.h>

#if LLMC_HAVE_CURL

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define POOL_MAX 16
#define MAX_BODY (256u * 1024u * 1024u)

struct llmc__http {
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL *pool[POOL_MAX];
    int n_pool;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *e, curl_lock_data d, curl_lock_access a, void *ud)
{
    LLMC_UNUSED(e);
    LLMC_UNUSED(a);
    llmc__http *h = ud;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&h->locks[d]);
}

static void share_unlock(CURL *e, curl_lock_data d, void *ud)
{
    LLMC_UNUSED(e);
    llmc__http *h = ud;
    if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&h->locks[d]);
}

llmc_status llmc__http_new(llmc__http **out, llmc_err *err)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return llmc_err_set(err, LLMC_EINTERNAL, global_rc, "curl_global_init failed: %s",
                            curl_easy_strerror(global_rc));
    llmc__http *h = calloc(1, sizeof *h);
    if (!h)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->locks[i], NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    h->share = curl_share_init();
    if (!h->share) {
        llmc__http_free(h);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "curl_share_init failed");
    }
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    *out = h;
    return LLMC_OK;
}

void llmc__http_free(llmc__http *h)
{
    if (!h)
        return;
    /* Easy handles first: they reference the share. */
    for (int i = 0; i < h->n_pool; i++)
        curl_easy_cleanup(h->pool[i]);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->locks[i]);
    pthread_mutex_destroy(&h->pool_lock);
    free(h);
}

static CURL *pool_get(llmc__http *h)
{
    CURL *e = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool > 0)
        e = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->pool_lock);
    if (!e)
        e = curl_easy_init();
    return e;
}

static void pool_put(llmc__http *h, CURL *e)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool < POOL_MAX) {
        h->pool[h->n_pool++] = e;
        e = NULL;
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (e)
        curl_easy_cleanup(e);
}

void llmc__http_result_init(llmc__http_result *r)
{
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
}

void llmc__http_result_free(llmc__http_result *r)
{
    llmc_buf_free(&r->headers);
    llmc_buf_free(&r->body);
    llmc__http_result_init(r);
}

/* ------------------------------------------------------------------ */
/* Retry policy. */

int64_t llmc__retry_after_ms(const char *headers, size_t len)
{
    llmc_http_response r;
    memset(&r, 0, sizeof r);
    r.headers = headers;
    r.headers_len = len;
    char v[128];
    if (llmc_http_response_header(&r, "retry-after-ms", v, sizeof v)) {
        char *end;
        errno = 0;
        double ms = strtod(v, &end);
        if (end != v && errno == 0 && ms >= 0 && ms < 1e12)
            return (int64_t)ms;
    }
    if (llmc_http_response_header(&r, "retry-after", v, sizeof v)) {
        char *end;
        errno = 0;
        double s = strtod(v, &end);
        if (end != v && *end == '\0' && errno == 0 && s >= 0 && s < 1e9)
            return (int64_t)(s * 1000.0);
        time_t t = curl_getdate(v, NULL);
        if (t != (time_t)-1) {
            int64_t ms = (int64_t)t * 1000 - llmc_now_ms();
            return ms > 0 ? ms : 0;
        }
    }
    return -1;
}

static uint64_t jitter_next(void)
{
    static __thread uint64_t s;
    if (s == 0)
        s = llmc_mono_ns() ^ (uint64_t)(uintptr_t)&s ^ 0x9E3779B97F4A7C15ull;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

int64_t llmc__backoff_ms(const llmc__http_config *cfg, int attempt)
{
    int64_t base = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 0;
    int64_t cap = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : INT64_MAX / 4;
    int64_t d = base;
    for (int i = 1; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    /* Jitter in [50%, 100%] so that clients that failed together do not
     * retry together. */
    if (d > 1)
        d = d / 2 + (int64_t)(jitter_next() % (uint64_t)(d / 2 + 1));
    return d;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* One transfer. */

typedef struct xfer {
    CURL *e;
    llmc__http_result *res;
    llmc__http_data_cb cb;
    void *ud;
    llmc_status cb_status;
    int too_big;
} xfer;

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    /* A new status line starts a new response (1xx interim responses). */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        llmc_buf_clear(&x->res->headers);
    if (x->res->headers.len + len > 1024 * 1024)
        return 0;
    if (llmc_buf_append(&x->res->headers, p, len) != LLMC_OK)
        return 0;
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->cb) {
        long code = 0;
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            x->res->streamed = 1;
            llmc_status st = x->cb(x->ud, p, len);
            if (st != LLMC_OK) {
                x->cb_status = st;
                return 0;
            }
            return len;
        }
    }
    if (x->res->body.len + len > MAX_BODY) {
        x->too_big = 1;
        return 0;
    }
    if (llmc_buf_append(&x->res->body, p, len) != LLMC_OK) {
        x->cb_status = LLMC_ENOMEM;
        return 0;
    }
    return len;
}

/* The URL for messages: without its query when that carries a key. */
static void url_for_msg(const llmc_http_request *req, char *out, size_t outsz)
{
    const char *u = req->url.data ? req->url.data : "";
    size_t n = strlen(u);
    if (req->url_has_secret) {
        const char *q = strchr(u, '?');
        if (q)
            n = (size_t)(q - u);
    }
    if (n >= outsz)
        n = outsz - 1;
    memcpy(out, u, n);
    out[n] = '\0';
}

static int retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

llmc_status llmc__http_perform(llmc__http *h, const llmc__http_config *cfg,
                               const llmc_http_request *req, llmc__http_data_cb data_cb,
                               void *ud, llmc__http_result *res, llmc_err *err)
{
    char where[300];
    url_for_msg(req, where, sizeof where);
    if (!req->url.data || !req->url.len)
        return llmc_err_set(err, LLMC_EINVAL, 0, "HTTP request without URL");

    /* Header list, built once for all attempts. "Expect:" stops curl from
     * waiting for 100-continue on larger bodies (one round trip less). */
    struct curl_slist *hl = NULL;
    llmc_buf line = LLMC_BUF_INIT;
    int have_ct = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        llmc_buf_clear(&line);
        llmc_buf_printf(&line, "%s: %s", req->headers[i].name, req->headers[i].value);
        struct curl_slist *n = curl_slist_append(hl, line.data ? line.data : "");
        if (!n) {
            curl_slist_free_all(hl);
            llmc_buf_free(&line);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        hl = n;
        if (llmc__strcaseeq(req->headers[i].name, "Content-Type"))
            have_ct = 1;
    }
    llmc_buf_free(&line);
    struct curl_slist *n2 = curl_slist_append(hl, "Expect:");
    if (n2 && !have_ct && req->body.len)
        n2 = curl_slist_append(n2, "Content-Type: application/json");
    if (!n2) {
        curl_slist_free_all(hl);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    hl = n2;

    CURL *e = pool_get(h);
    if (!e) {
        curl_slist_free_all(hl);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "curl_easy_init failed");
    }
    const char *method = req->method ? req->method : "POST";
    llmc_status result = LLMC_OK;
    char ebuf[CURL_ERROR_SIZE];
    int max_retries = cfg->max_retries > 0 ? cfg->max_retries : 0;

    for (int attempt = 1;; attempt++) {
        llmc_buf_clear(&res->headers);
        llmc_buf_clear(&res->body);
        res->status = 0;
        res->retry_after_ms = -1;
        res->streamed = 0;
        res->attempts = attempt;
        xfer x = {e, res, data_cb, ud, LLMC_OK, 0};
        ebuf[0] = '\0';

        curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_URL, req->url.data);
        curl_easy_setopt(e, CURLOPT_SHARE, h->share);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        /* An adapter's or caller's User-Agent header wins over this. */
        curl_easy_setopt(e, CURLOPT_USERAGENT, "llmcache/" LLMC_VERSION_STRING);
        if (cfg->timeout_ms > 0)
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
        if (cfg->connect_timeout_ms > 0)
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
        if (strcmp(method, "GET") == 0) {
            curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body.data ? req->body.data : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
            if (strcmp(method, "POST") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);

        CURLcode rc = curl_easy_perform(e);
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        res->status = code;
        res->retry_after_ms = llmc__retry_after_ms(res->headers.data, res->headers.len);

        if (rc == CURLE_WRITE_ERROR && x.cb_status != LLMC_OK) {
            /* The stream consumer stopped: its status and message win. */
            result = x.cb_status;
            if (result == LLMC_ENOMEM)
                llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory reading the response");
            break;
        }
        if (x.too_big) {
            result = llmc_err_set(err, LLMC_ETOOBIG, 0, "%s %s: response body over %u bytes",
                                  method, where, MAX_BODY);
            break;
        }
        if (rc == CURLE_OK) {
            int retry = (code == 429 || (code >= 500 && code <= 599)) && attempt <= max_retries;
            if (!retry) {
                result = LLMC_OK;
                break;
            }
            int64_t wait = res->retry_after_ms >= 0 ? res->retry_after_ms
                                                    : llmc__backoff_ms(cfg, attempt);
            if (cfg->retry_max_ms > 0 && wait > cfg->retry_max_ms) {
                /* The server asks for longer than we may wait: give the
                 * caller its answer now instead of retrying too early. */
                result = LLMC_OK;
                break;
            }
            llmc__log("info", "%s %s: HTTP %ld, retry %d/%d in %lld ms", method, where, code,
                      attempt, max_retries, (long long)wait);
            sleep_ms(wait);
            continue;
        }
        /* Transport failure. */
        const char *why = ebuf[0] ? ebuf : curl_easy_strerror(rc);
        if (res->streamed) {
            /* Part of the body went to the caller: no retry possible. */
            if (rc == CURLE_OPERATION_TIMEDOUT)
                result = llmc_err_set(err, LLMC_ETIMEDOUT, rc, "%s %s: stream timed out: %s",
                                      method, where, why);
            else
                result = llmc_err_set(err, LLMC_ESTREAM, rc, "%s %s: stream broke off: %s",
                                      method, where, why);
            break;
        }
        if (retryable_curl(rc) && attempt <= max_retries) {
            int64_t wait = llmc__backoff_ms(cfg, attempt);
            llmc__log("info", "%s %s: %s, retry %d/%d in %lld ms", method, where, why,
                      attempt, max_retries, (long long)wait);
            sleep_ms(wait);
            continue;
        }
        llmc_status st = rc == CURLE_OPERATION_TIMEDOUT ? LLMC_ETIMEDOUT
                         : (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                            rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SEND_ERROR ||
                            rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                            rc == CURLE_SSL_CONNECT_ERROR)
                             ? LLMC_ECONN
                             : LLMC_EIO;
        if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
            st = LLMC_EINVAL;
        result = llmc_err_set(err, st, rc, "%s %s: %s (after %d attempt%s)", method, where,
                              why, attempt, attempt == 1 ? "" : "s");
        break;
    }

    /* Detach per-call pointers before the handle goes back to the pool. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    pool_put(h, e);
    curl_slist_free_all(hl);
    return result;
}

#else /* !LLMC_HAVE_CURL */

llmc_status llmc__http_new(llmc__http **out, llmc_err *err)
{
    *out = NULL;
    return llmc_err_set(err, LLMC_ENOTBUILT, 0,
                        "HTTP providers were not built in (libcurl missing at build time)");
}

void llmc__http_free(llmc__http *h)
{
    LLMC_UNUSED(h);
}

void llmc__http_result_init(llmc__http_result *r)
{
    memset(r, 0, sizeof *r);
    r->retry_after_ms = -1;
}

void llmc__http_result_free(llmc__http_result *r)
{
    llmc_buf_free(&r->headers);
    llmc_buf_free(&r->body);
    llmc__http_result_init(r);
}

int64_t llmc__retry_after_ms(const char *headers, size_t len)
{
    LLMC_UNUSED(headers);
    LLMC_UNUSED(len);
    return -1;
}

int64_t llmc__backoff_ms(const llmc__http_config *cfg, int attempt)
{
    LLMC_UNUSED(attempt);
    return cfg->retry_base_ms;
}

llmc_status llmc__http_perform(llmc__http *h, const llmc__http_config *cfg,
                               const llmc_http_request *req, llmc__http_data_cb data_cb,
                               void *ud, llmc__http_result *res, llmc_err *err)
{
    LLMC_UNUSED(h);
    LLMC_UNUSED(cfg);
    LLMC_UNUSED(req);
    LLMC_UNUSED(data_cb);
    LLMC_UNUSED(ud);
    LLMC_UNUSED(res);
    return llmc_err_set(err, LLMC_ENOTBUILT, 0, "HTTP providers were not built in");
}

#endif
