/* Cache controls given outside the request body: the HTTP forms a proxy
 * receives (Cache-Control, x-llmcache-ttl, x-llmcache-namespace) and a
 * tenant's namespace, as llmc_call_opts; they win over the body's
 * controls (read by llmc__read_controls, core/request.c). Also the
 * joining of a tenant and its sub-namespace (llmc_namespace_resolve);
 * the names themselves follow llmc_namespace_check (core/options.c), and
 * the confinement is applied where keys are built (core/call.c). */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Controls given outside the body (HTTP headers at the proxy, options of
 * the command, the tenant). They win over the body's. */


static int64_t secs_to_ms(long long s)
{
    return s > INT64_MAX / 1000 ? INT64_MAX : (int64_t)s * 1000;
}

static int whole_seconds(const char *p, size_t n, long long *out)
{
    if (n == 0 || n > 18)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Cache-Control: no-cache, no-store, max-age=N / s-maxage=N (the longest
 * age accepted from the cache, as in HTTP); other directives do not
 * apply to a cache in front of an API and are ignored. */
static llmc_status parse_cache_control(const char *h, llmc__outer *oc, llmc_err *err)
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
            oc->no_cache = 1;
        } else if (n == 8 && strncasecmp(p, "no-store", 8) == 0) {
            oc->no_store = 1;
        } else if ((n >= 8 && strncasecmp(p, "max-age=", 8) == 0) ||
                   (n >= 9 && strncasecmp(p, "s-maxage=", 9) == 0)) {
            size_t skip = (p[0] == 's' || p[0] == 'S') ? 9 : 8;
            long long s;
            if (whole_seconds(p + skip, n - skip, &s) != 0)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "header Cache-Control: %.*s must be a whole number of "
                                    "seconds >= 0",
                                    (int)(skip - 1), p);
            oc->max_age_ms = secs_to_ms(s);
        }
        p = e;
    }
    return LLMC_OK;
}

llmc_status llmc__read_outer(const llmc_call_opts *o, llmc__outer *oc, llmc_err *err)
{
    memset(oc, 0, sizeof *oc);
    oc->max_age_ms = -1;
    oc->ttl_ms = -2;
    if (!o)
        return LLMC_OK;
    if (o->struct_size < offsetof(llmc_call_opts, namespace_) + sizeof o->namespace_)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_call_opts: struct_size too small");
    llmc_status st;
    if (o->cache_control && (st = parse_cache_control(o->cache_control, oc, err)) != LLMC_OK)
        return st;
    if (o->ttl) {
        long long s;
        if (whole_seconds(o->ttl, strlen(o->ttl), &s) != 0 || s > LLMC_TTL_MAX_S)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "header x-llmcache-ttl must be a whole number of seconds from 0 "
                                "to %lld",
                                (long long)LLMC_TTL_MAX_S);
        oc->ttl_ms = secs_to_ms(s);
    }
    if (o->namespace_) {
        if ((st = llmc_namespace_check(o->namespace_, "header x-llmcache-namespace", err)) !=
            LLMC_OK)
            return st;
        oc->ns = o->namespace_;
    }
    if (o->struct_size >= offsetof(llmc_call_opts, tenant) + sizeof o->tenant && o->tenant) {
        if ((st = llmc_namespace_check(o->tenant, "tenant", err)) != LLMC_OK)
            return st;
        oc->tenant = o->tenant;
    }
    if (o->struct_size >= offsetof(llmc_call_opts, api_headers) + sizeof o->api_headers)
        oc->api_headers = o->api_headers;
    return LLMC_OK;
}

llmc_status llmc__apply_outer(llmc__controls *ctl, const llmc__outer *oc)
{
    if (oc->no_cache)
        ctl->no_cache = 1;
    if (oc->no_store)
        ctl->no_store = 1;
    if (oc->max_age_ms >= 0)
        ctl->max_age_ms = oc->max_age_ms;
    if (oc->ttl_ms != -2)
        ctl->ttl_ms = oc->ttl_ms;
    if (oc->ns) {
        char *n = llmc__strdup(oc->ns);
        if (!n)
            return LLMC_ENOMEM;
        free(ctl->ns);
        ctl->ns = n;
    }
    if (oc->tenant) {
        /* Only recorded here: the confinement is applied where the key
         * is built (llmc__compute_key), after every control. */
        char *t = llmc__strdup(oc->tenant);
        if (!t)
            return LLMC_ENOMEM;
        free(ctl->tenant);
        ctl->tenant = t;
    }
    if (oc->api_headers) {
        int failed;
        char **h = llmc__headers_dup(oc->api_headers, &failed);
        if (failed)
            return LLMC_ENOMEM;
        llmc__headers_free(ctl->api_headers);
        ctl->api_headers = h;
    }
    return LLMC_OK;
}

char **llmc__headers_dup(const char *const *h, int *failed)
{
    *failed = 0;
    if (!h)
        return NULL;
    size_t n = 0;
    while (h[n])
        n++;
    char **d = calloc(n + 1, sizeof *d);
    for (size_t i = 0; d && i < n; i++)
        if (!(d[i] = llmc__strdup(h[i]))) {
            llmc__headers_free(d);
            d = NULL;
        }
    if (!d)
        *failed = 1;
    return d;
}

void llmc__headers_free(char **h)
{
    for (size_t i = 0; h && h[i]; i++)
        free(h[i]);
    free(h);
}

const char *llmc__headers_get(const char *const *h, const char *name)
{
    for (size_t i = 0; h && h[i] && h[i + 1]; i += 2)
        if (strcasecmp(h[i], name) == 0)
            return h[i + 1];
    return NULL;
}

llmc_status llmc_namespace_resolve(const char *tenant, const char *asked, llmc_buf *out,
                                   llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_namespace_resolve: out is NULL");
    llmc_buf_clear(out);
    llmc_status st = LLMC_OK;
    if ((tenant && (st = llmc_namespace_check(tenant, "tenant", err)) != LLMC_OK) ||
        (asked && (st = llmc_namespace_check(asked, NULL, err)) != LLMC_OK))
        return st;
    if (tenant)
        st = llmc_buf_puts(out, tenant);
    if (st == LLMC_OK && tenant && asked)
        st = llmc_buf_puts(out, ":");
    if (st == LLMC_OK && asked)
        st = llmc_buf_puts(out, asked);
    if (st == LLMC_OK && !out->data)
        st = llmc_buf_reserve(out, 1);
    if (st == LLMC_OK)
        out->data[out->len] = '\0';
    return st == LLMC_OK ? LLMC_OK : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
}

