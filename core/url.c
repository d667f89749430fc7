/* Cache URL parsing: scheme://[user[:password]@]location[?query].
 *
 * The location is handed to the backend both raw (decoded) and parsed as
 * a host[:port] list plus path, because backends read it differently:
 * sqlite wants a file path, memcached a server list, redis host, port and
 * database. Nothing here logs or returns the password. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *llmc__pct_decode(const char *s, size_t n, int plus_is_space, size_t *outlen)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval((unsigned char)s[i + 1])) < 0 ||
                (l = hexval((unsigned char)s[i + 2])) < 0) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(h * 16 + l);
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = 0;
    if (outlen)
        *outlen = j;
    return out;
}

void llmc__url_free(llmc_url *u)
{
    if (!u)
        return;
    free(u->scheme);
    free(u->user);
    if (u->password) {
        /* scrub the secret before giving the memory back */
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    free(u->location);
    free(u->path);
    for (size_t i = 0; i < u->n_hosts; i++)
        free((char *)u->hosts[i].host);
    free(u->hosts);
    free(u->redacted);
    free(u->host_error);
    llmc_options_free(u->query);
    memset(u, 0, sizeof *u);
}

static int secret_option(const char *name)
{
    static const char *const secrets[] = {"password", "pass", "api_key", "apikey",
                                          "sasl_password", "token", "secret",
                                          "entry_secret"};
    for (size_t i = 0; i < LLMC_ARRAY_LEN(secrets); i++)
        if (llmc__strcaseeq(name, secrets[i]))
            return 1;
    return 0;
}

static llmc_status parse_hosts(llmc_url *u, const char *auth, size_t alen, llmc_err *err)
{
    if (alen == 0)
        return LLMC_OK;
    size_t cap = 1;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == ',')
            cap++;
    u->hosts = calloc(cap, sizeof *u->hosts);
    if (!u->hosts)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory parsing URL");
    size_t start = 0;
    while (start <= alen) {
        size_t end = start;
        while (end < alen && auth[end] != ',')
            end++;
        const char *h = auth + start;
        size_t hl = end - start;
        if (hl == 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "malformed URL %s: empty host in host list",
                                u->redacted);
        const char *host;
        size_t host_len;
        const char *port = NULL;
        size_t port_len = 0;
        if (h[0] == '[') {
            const char *rb = memchr(h, ']', hl);
            if (!rb)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: unterminated '[' in host", u->redacted);
            host = h + 1;
            host_len = (size_t)(rb - h - 1);
            if ((size_t)(rb - h) + 1 < hl) {
                if (rb[1] != ':')
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "malformed URL %s: junk after ']' in host",
                                        u->redacted);
                port = rb + 2;
                port_len = hl - (size_t)(rb - h) - 2;
            }
        } else {
            const char *colon = memchr(h, ':', hl);
            host = h;
            host_len = colon ? (size_t)(colon - h) : hl;
            if (colon) {
                port = colon + 1;
                port_len = hl - host_len - 1;
            }
        }
        int portnum = -1;
        if (port) {
            if (port_len == 0 || port_len > 5)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: bad port \"%.*s\"", u->redacted,
                                    (int)port_len, port);
            portnum = 0;
            for (size_t i = 0; i < port_len; i++) {
                if (!isdigit((unsigned char)port[i]))
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "malformed URL %s: port \"%.*s\" is not a number",
                                        u->redacted, (int)port_len, port);
                portnum = portnum * 10 + (port[i] - '0');
            }
            if (portnum < 1 || portnum > 65535)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: port %d out of range (1..65535)",
                                    u->redacted, portnum);
        }
        char *hd = llmc__pct_decode(host, host_len, 0, NULL);
        if (!hd)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "malformed URL %s: bad %%-escape in host", u->redacted);
        u->hosts[u->n_hosts].host = hd;
        u->hosts[u->n_hosts].port = portnum;
        u->n_hosts++;
        start = end + 1;
    }
    return LLMC_OK;
}

static llmc_status parse_query(llmc_url *u, const char *q, size_t qlen, llmc_err *err)
{
    size_t start = 0;
    while (start < qlen) {
        size_t end = start;
        while (end < qlen && q[end] != '&')
            end++;
        if (end > start) {
            const char *kv = q + start;
            size_t kvl = end - start;
            const char *eq = memchr(kv, '=', kvl);
            if (!eq)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: query option \"%.*s\" has no value "
                                    "(write name=value)",
                                    u->redacted, (int)(kvl > 64 ? 64 : kvl), kv);
            char *k = llmc__pct_decode(kv, (size_t)(eq - kv), 1, NULL);
            char *v = llmc__pct_decode(eq + 1, kvl - (size_t)(eq - kv) - 1, 1, NULL);
            if (!k || !v || !*k) {
                free(k);
                free(v);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: bad query option near \"%.*s\"",
                                    u->redacted, (int)(kvl > 64 ? 64 : kvl), kv);
            }
            if (llmc_options_get(u->query, k)) {
                llmc_err_set(err, LLMC_EINVAL, 0, "URL %s: option %s given twice",
                             u->redacted, k);
                free(k);
                free(v);
                return LLMC_EINVAL;
            }
            llmc_status st = llmc_options_set(u->query, k, v);
            free(k);
            free(v);
            if (st != LLMC_OK)
                return llmc_err_set(err, st, 0, "out of memory parsing URL");
        }
        start = end + 1;
    }
    return LLMC_OK;
}

/* Build the redacted form: the password and secret-looking query values
 * become "***". */
static char *redact(const char *url, const char *scheme_end, const char *pw,
                    size_t pwlen, const char *qstart)
{
    llmc_buf b = LLMC_BUF_INIT;
    if (pw) {
        llmc_buf_append(&b, url, (size_t)(pw - url));
        llmc_buf_puts(&b, "***");
        const char *after = pw + pwlen;
        llmc_buf_append(&b, after, (size_t)((qstart ? qstart : url + strlen(url)) - after));
    } else {
        llmc_buf_append(&b, url, (size_t)((qstart ? qstart : url + strlen(url)) - url));
    }
    (void)scheme_end;
    if (qstart) {
        /* copy the query, hiding secret values */
        const char *q = qstart;
        llmc_buf_append(&b, "?", 1);
        q++;
        int first = 1;
        while (*q && *q != '#') {
            const char *e = q;
            while (*e && *e != '&' && *e != '#')
                e++;
            const char *eq = memchr(q, '=', (size_t)(e - q));
            if (!first)
                llmc_buf_append(&b, "&", 1);
            first = 0;
            if (eq) {
                /* Judge the name as the option parser will see it
                 * (decoded), so "entry%5Fsecret" is hidden too; a name
                 * that does not decode hides its value. */
                char *name = llmc__pct_decode(q, (size_t)(eq - q), 1, NULL);
                llmc_buf_append(&b, q, (size_t)(eq - q) + 1);
                int hide = !name || secret_option(name);
                free(name);
                if (hide)
                    llmc_buf_puts(&b, "***");
                else
                    llmc_buf_append(&b, eq + 1, (size_t)(e - eq - 1));
            } else {
                llmc_buf_append(&b, q, (size_t)(e - q));
            }
            q = *e == '&' ? e + 1 : e;
        }
    }
    if (!b.data)
        llmc_buf_puts(&b, "");
    return b.data;
}

llmc_status llmc__url_parse(const char *url, llmc_url *u, llmc_err *err)
{
    memset(u, 0, sizeof *u);
    if (!url || !*url)
        return llmc_err_set(err, LLMC_EINVAL, 0, "empty cache URL");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "malformed URL: control character at offset %d",
                                (int)(p - url));
    const char *sep = strstr(url, "://");
    const char *p = url;
    if (!isalpha((unsigned char)*p))
        goto bad_scheme;
    const char *stop = sep ? sep : url + strlen(url);
    for (p = url; p < stop; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.' && *p != '_')
            goto bad_scheme;
    u->query = llmc_options_new();
    if (!u->query)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory parsing URL");
    u->scheme = llmc__strndup(url, (size_t)(stop - url));
    for (char *s = u->scheme; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
    if (!sep) {
        /* A bare type string ("local", "redis"): no location, no query. */
        u->location = llmc__strdup("");
        u->path = llmc__strdup("");
        u->redacted = llmc__strdup(url);
        return LLMC_OK;
    }
    const char *rest = sep + 3;
    const char *q = strpbrk(rest, "?#");
    const char *rest_end = q ? q : rest + strlen(rest);
    const char *qstart = (q && *q == '?') ? q : NULL;
    /* authority ends at the first '/' */
    const char *slash = memchr(rest, '/', (size_t)(rest_end - rest));
    const char *auth_end = slash ? slash : rest_end;
    const char *at = NULL;
    for (const char *s = rest; s < auth_end; s++)
        if (*s == '@')
            at = s;
    const char *pw = NULL;
    size_t pwlen = 0;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if (colon) {
            pw = colon + 1;
            pwlen = (size_t)(at - colon - 1);
        }
    }
    u->redacted = redact(url, sep, pw, pwlen, qstart);
    if (!u->redacted)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory parsing URL");
    const char *loc = rest;
    if (at) {
        const char *ue = pw ? pw - 1 : at;
        if (ue > rest) {
            u->user = llmc__pct_decode(rest, (size_t)(ue - rest), 0, NULL);
            if (!u->user)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: bad %%-escape in user name", u->redacted);
        }
        if (pw) {
            u->password = llmc__pct_decode(pw, pwlen, 0, NULL);
            if (!u->password)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "malformed URL %s: bad %%-escape in password", u->redacted);
        }
        loc = at + 1;
    }
    u->location = llmc__pct_decode(loc, (size_t)(rest_end - loc), 0, NULL);
    if (!u->location)
        return llmc_err_set(err, LLMC_EINVAL, 0, "malformed URL %s: bad %%-escape",
                            u->redacted);
    /* Whether the location is a host list depends on the backend (a sqlite
     * or file URL names a path: "sqlite://:memory:", "file://rel/dir"), which
     * is not known yet: keep a host-list error for the caller to raise. */
    llmc_err herr;
    llmc_err_clear(&herr);
    llmc_status st = parse_hosts(u, loc, (size_t)(auth_end - loc), &herr);
    if (st != LLMC_OK) {
        for (size_t i = 0; i < u->n_hosts; i++)
            free((char *)u->hosts[i].host);
        free(u->hosts);
        u->hosts = NULL;
        u->n_hosts = 0;
        u->host_status = st;
        u->host_error = llmc__strdup(herr.msg);
    }
    u->path = slash ? llmc__pct_decode(slash, (size_t)(rest_end - slash), 0, NULL)
                    : llmc__strdup("");
    if (!u->path)
        return llmc_err_set(err, LLMC_EINVAL, 0, "malformed URL %s: bad %%-escape in path",
                            u->redacted);
    if (qstart) {
        const char *qe = strchr(qstart, '#');
        st = parse_query(u, qstart + 1, qe ? (size_t)(qe - qstart - 1) : strlen(qstart + 1),
                         err);
        if (st != LLMC_OK)
            return st;
    }
    return LLMC_OK;

bad_scheme:
    {
        /* Don't echo the whole thing: it may hold a password. */
        size_t n = 0;
        while (url[n] && url[n] != ':' && url[n] != '@' && n < 32)
            n++;
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "malformed cache URL \"%.*s...\": expected scheme://... "
                            "(e.g. local://, redis://host:6379, sqlite:///path.db)",
                            (int)n, url);
    }
}
