/* The request head: which of the headers the proxy reads are present
 * (noted in one pass, so a lookup for an absent one costs nothing),
 * reading them (repeated lines combined, single-valued ones checked),
 * and the framing checks every request passes before it is accepted. */
#include "proxy_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The headers every completion asks for, present or not: the framing
 * pass notes which are there (preq.head_seen). */
static const struct {
    const char *name;
    size_t len;
} read_headers[] = {{"Cache-Control", 13},  {"x-llmcache-ttl", 14}, {"x-llmcache-namespace", 20},
                    {"Authorization", 13},  {"x-api-key", 9},       {"api-key", 7}};
#define N_READ_HEADERS (sizeof read_headers / sizeof read_headers[0])

/* Which of read_headers `name` (of length len) is; -1 for none. */
static int read_header_index(const char *name, size_t len)
{
    for (size_t i = 0; i < N_READ_HEADERS; i++)
        if (len == read_headers[i].len && strcasecmp(name, read_headers[i].name) == 0)
            return (int)i;
    return -1;
}

/* 0 when the head is known not to hold the header `name`. */
static int maybe_present(const preq *r, const char *name)
{
    int i = read_header_index(name, strlen(name));
    return i < 0 || ((r->head_seen >> i) & 1u);
}

const char *px_header(preq *r, const char *name)
{
    if (!maybe_present(r, name))
        return NULL;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

typedef struct header_lines {
    const char *name;
    llmc_buf *out;
    int n;
} header_lines;

static enum MHD_Result collect_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    header_lines *h = cls;
    if (key && strcasecmp(key, h->name) == 0) {
        if (h->n++)
            llmc_buf_puts(h->out, ", ");
        llmc_buf_puts(h->out, value ? value : "");
    }
    return MHD_YES;
}

/* Repeated header lines are combined as HTTP says (RFC 9110, 5.3). */
int px_header_all(preq *r, const char *name, llmc_buf *out)
{
    header_lines h = {name, out, 0};
    llmc_buf_clear(out);
    if (!maybe_present(r, name))
        return 0;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_line, &h);
    return h.n;
}

const char *px_header_single(preq *r, const char *name, int *answered)
{
    llmc_buf b = LLMC_BUF_INIT;
    int n = px_header_all(r, name, &b);
    llmc_buf_free(&b);
    if (n > 1) {
        px_queue_error(r, 400, NULL, "header %s is given %d times; send it once", name, n);
        *answered = 1;
        return NULL;
    }
    return n ? px_header(r, name) : NULL;
}

/* The headers the call type reads as part of its request (the Messages
 * API's anthropic-version, anthropic-beta), each with its lines joined,
 * into names/values (name, value, ..., NULL; values in bufs). Returns
 * how many were present. */
int px_api_headers(preq *r, const char **names_values, llmc_buf *bufs)
{
    llmc_call_type_info info;
    int n = 0;
    for (int i = 0; i < PX_API_HEADERS; i++)
        bufs[i] = (llmc_buf)LLMC_BUF_INIT;
    if (llmc_call_type_info_get(r->call, &info, sizeof info) != LLMC_OK || !info.headers)
        return 0;
    for (const char *const *h = info.headers; *h && n < PX_API_HEADERS; h++) {
        if (px_header_all(r, *h, &bufs[n]) == 0)
            continue;
        names_values[2 * n] = *h;
        names_values[2 * n + 1] = bufs[n].data ? bufs[n].data : "";
        n++;
    }
    names_values[2 * n] = NULL;
    return n;
}

static int is_token(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch))
            continue;
        switch (ch) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

/* One pass over the head for every check (it runs on every request). */
static enum MHD_Result check_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    static const struct {
        const char *name;
        size_t len;
    } controlling[] = {
        {"content-length", 14}, {"transfer-encoding", 17}, {"cache-control", 13},
        {"authorization", 13},  {"x-llmcache-ttl", 14},    {"x-llmcache-namespace", 20},
    };
    px_framing *f = cls;
    size_t kl = key ? strlen(key) : 0, vl = value ? strlen(value) : 0;
    if (kind == MHD_GET_ARGUMENT_KIND) {
        f->url += kl + vl + 2; /* '&' or '?', '=' */
        return MHD_YES;
    }
    f->headers += kl + vl + 4; /* ": ", CRLF */
    if (!key)
        return MHD_YES;
    int bad = !is_token(key, kl);
    for (size_t i = 0; !bad && i < sizeof controlling / sizeof controlling[0]; i++)
        bad = kl > controlling[i].len &&
              strncasecmp(key, controlling[i].name, controlling[i].len) == 0;
    if (bad && !f->bad_name) {
        f->bad_name = 1;
        f->bad = key;
    }
    if (kl == 14 && strcasecmp(key, "Content-Length") == 0) {
        if (f->n_cl++ && strcmp(f->cl, value ? value : "") != 0)
            f->cl_differ = 1;
        f->cl = value ? value : "";
    } else if (kl == 17 && strcasecmp(key, "Transfer-Encoding") == 0) {
        f->n_te++;
    } else {
        int i = read_header_index(key, kl);
        if (i >= 0)
            f->seen |= 1u << i;
    }
    return MHD_YES;
}

/* Reads the head into f; NULL when the framing is sound, else what is
 * wrong (in buf). */
const char *px_bad_framing(struct MHD_Connection *conn, const char *url, px_framing *f,
                           char *buf, size_t bufsz)
{
    memset(f, 0, sizeof *f);
    f->url = strlen(url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND | MHD_HEADER_KIND, check_line, f);
    if (f->bad_name) {
        char name[48];
        size_t i = 0;
        for (const char *p = f->bad; *p && i + 1 < sizeof name; p++)
            name[i++] = (unsigned char)*p >= ' ' && (unsigned char)*p < 0x7f ? *p : '?';
        name[i] = '\0';
        snprintf(buf, bufsz,
                 "header name \"%s\" is not a valid header name (white space before ':', "
                 "or a folded header line)",
                 name);
        return buf;
    }
    if (f->cl_differ)
        return "Content-Length is given more than once with different values";
    if (f->n_cl && f->n_te)
        return "Content-Length and Transfer-Encoding are both given";
    if (f->n_te > 1)
        return "Transfer-Encoding is given more than once";
    if (f->n_cl && (!*f->cl || f->cl[strspn(f->cl, "0123456789")] != '\0'))
        return "Content-Length is not a decimal number";
    return NULL;
}
