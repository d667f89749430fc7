/* Redis connection layer, RESP: commands written into the connection's
 * reusable output buffer, replies parsed by hiredis's redisReader, and the
 * hot reply shapes (bulk string, MGET array, status, integer) parsed in
 * place without allocating; error replies mapped to statuses with the
 * password scrubbed; small command builders the backends share. */
#include "conn_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* errors */

/* Copy s into out, replacing every occurrence of the secret by "***". */
static void scrub(char *out, size_t cap, const char *s, size_t slen, const char *secret)
{
    size_t sl = secret ? strlen(secret) : 0;
    size_t o = 0;
    for (size_t i = 0; i < slen && o + 1 < cap;) {
        if (sl >= 3 && i + sl <= slen && memcmp(s + i, secret, sl) == 0) {
            for (const char *r = "***"; *r && o + 1 < cap; r++)
                out[o++] = *r;
            i += sl;
            continue;
        }
        unsigned char ch = (unsigned char)s[i++];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[o] = 0;
}

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

llmc_status llmc__redis_error_reply(const redisReply *r, const char *what,
                                    const char *label, const char *secret, llmc_err *err)
{
    char text[300];
    scrub(text, sizeof text, r->str ? r->str : "", r->str ? r->len : 0, secret);
    llmc_status st = LLMC_EBACKEND;
    const char *hint = "";
    if (starts(text, "NOAUTH")) {
        st = LLMC_EAUTH;
        hint = " (the server requires a password: give one in the URL)";
    } else if (starts(text, "WRONGPASS") || starts(text, "ERR invalid password") ||
               starts(text, "ERR invalid username-password") ||
               (starts(text, "ERR") && strstr(text, "AUTH") && strstr(text, "password"))) {
        st = LLMC_EAUTH;
    } else if (starts(text, "NOPERM")) {
        st = LLMC_EPERM;
    } else if (starts(text, "MOVED") || starts(text, "ASK ") || starts(text, "CLUSTERDOWN")) {
        hint = " (this is a Redis Cluster node: use a redis-cluster:// URL)";
    }
    return llmc_err_set(err, st, 0, "redis at %s: %s: %s%s", label, what, text, hint);
}

/* ------------------------------------------------------------------ */
/* commands */

static llmc_status out_reserve(llmc_rconn *c, size_t extra)
{
    if (c->out_len + extra <= c->out_cap)
        return LLMC_OK;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + extra)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return LLMC_ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return LLMC_OK;
}

static size_t put_len(char *p, char kind, size_t n)
{
    char tmp[24];
    size_t i = 0;
    do {
        tmp[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t o = 0;
    p[o++] = kind;
    while (i)
        p[o++] = tmp[--i];
    p[o++] = '\r';
    p[o++] = '\n';
    return o;
}

llmc_status llmc__rconn_append(llmc_rconn *c, int argc, const char *const *argv,
                               const size_t *lens)
{
    /* RESP array of bulk strings, written straight into the reusable
     * output buffer (no allocation per command once it has grown). */
    size_t need = 24;
    for (int i = 0; i < argc; i++)
        need += 24 + lens[i] + 2;
    if (out_reserve(c, need) != LLMC_OK)
        return LLMC_ENOMEM;
    char *p = c->out + c->out_len;
    p += put_len(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p += put_len(p, '$', lens[i]);
        if (lens[i])
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    c->out_len = (size_t)(p - c->out);
    return LLMC_OK;
}

llmc_status llmc__rconn_flush(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err)
{
    if (c->broken)
        return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken", c->label);
    llmc_status st = c->ssl ? llmc__rtls_write(c, c->out, c->out_len, deadline_ns, err)
                            : llmc__rsock_send_all(c, c->out, c->out_len, deadline_ns, err);
    c->out_len = 0;
    if (c->out_cap > RCONN_OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return st;
}

/* Hand bytes that the fast paths read ahead to the reader. */
static llmc_status in_to_reader(llmc_rconn *c, llmc_err *err)
{
    if (c->in_pos < c->in_len &&
        redisReaderFeed(c->reader, c->in + c->in_pos, c->in_len - c->in_pos) != REDIS_OK) {
        c->broken = 1;
        return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: out of memory", c->label);
    }
    c->in_pos = c->in_len = 0;
    return LLMC_OK;
}

llmc_status llmc__rconn_read(llmc_rconn *c, uint64_t deadline_ns, redisReply **reply,
                             llmc_err *err)
{
    *reply = NULL;
    int poll_first = 1;
    llmc_status st = in_to_reader(c, err);
    if (st != LLMC_OK)
        return st;
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            c->broken = 1;
            return llmc_err_set(err, LLMC_EPROTO, c->reader->err,
                                "redis at %s: protocol error: %s", c->label, c->reader->errstr);
        }
        if (r) {
            *reply = r;
            return LLMC_OK;
        }
        if (c->broken)
            return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken",
                                c->label);
        size_t got = 0;
        st = llmc__rconn_recv(c, c->in, sizeof c->in, &got, deadline_ns, poll_first, err);
        if (st != LLMC_OK)
            return st;
        poll_first = 0;
        if (redisReaderFeed(c->reader, c->in, got) != REDIS_OK) {
            c->broken = 1;
            return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: out of memory", c->label);
        }
    }
}

/* ---- fast paths: bulk strings received straight into llmc_buf ----
 *
 * GET and MGET replies are bulk strings (or arrays of them). Parsing them
 * here lets the payload go from the kernel into the caller's buffer with
 * one copy, where the reader would copy it into its buffer, then into a
 * reply object, then we would copy it out again. Anything unexpected
 * (error replies, pipelined leftovers in the reader) goes the general
 * way. Bytes read ahead stay in c->in[in_pos..in_len); the general path
 * hands them to the reader first, so at most one of the two holds
 * unparsed input at any time. */

static llmc_status proto_err(llmc_rconn *c, llmc_err *err, const char *what)
{
    c->broken = 1;
    return llmc_err_set(err, LLMC_EPROTO, 0, "redis at %s: protocol error: %s", c->label, what);
}

/* Make sure at least one unread byte is buffered. */
static llmc_status in_fill(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, llmc_err *err)
{
    if (c->in_pos < c->in_len)
        return LLMC_OK;
    c->in_pos = c->in_len = 0;
    size_t got = 0;
    llmc_status st = llmc__rconn_recv(c, c->in, sizeof c->in, &got, deadline_ns, *poll_first, err);
    *poll_first = 0;
    if (st == LLMC_OK)
        c->in_len = got;
    return st;
}

/* Consume one line; *line and *len give its text without the type byte and
 * CRLF (valid until the next read). Lines here are short. */
static llmc_status in_line(llmc_rconn *c, uint64_t deadline_ns, int *poll_first,
                           const char **line, size_t *len, llmc_err *err)
{
    for (;;) {
        char *start = c->in + c->in_pos;
        size_t avail = c->in_len - c->in_pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl) {
            if (nl - start < 2 || nl[-1] != '\r')
                return proto_err(c, err, "bad line");
            *line = start + 1;
            *len = (size_t)(nl - start) - 2;
            c->in_pos += (size_t)(nl - start) + 1;
            return LLMC_OK;
        }
        if (avail > 200)
            return proto_err(c, err, "line too long");
        memmove(c->in, start, avail);
        c->in_pos = 0;
        c->in_len = avail;
        size_t got = 0;
        llmc_status st = llmc__rconn_recv(c, c->in + avail, sizeof c->in - avail, &got, deadline_ns,
                                   *poll_first, err);
        *poll_first = 0;
        if (st != LLMC_OK)
            return st;
        c->in_len += got;
    }
}

/* Consume one header or integer line ("$123", "*100", ":-2"): its number
 * in *num. */
static llmc_status in_header(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, long long *num,
                             llmc_err *err)
{
    const char *p;
    size_t n;
    llmc_status st = in_line(c, deadline_ns, poll_first, &p, &n, err);
    if (st != LLMC_OK)
        return st;
    const char *end = p + n;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || end - p > 18)
        return proto_err(c, err, "bad number");
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return proto_err(c, err, "bad number");
        v = v * 10 + (*p - '0');
    }
    *num = neg ? -v : v;
    return LLMC_OK;
}

/* Receive an n-byte payload and its CRLF into out. */
static llmc_status in_payload(llmc_rconn *c, uint64_t deadline_ns, size_t n, llmc_buf *out,
                              llmc_err *err)
{
    llmc_buf_clear(out);
    if (llmc_buf_reserve(out, n + 2) != LLMC_OK) {
        c->broken = 1; /* the payload stays unread */
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory for a %zu byte value", n);
    }
    size_t avail = c->in_len - c->in_pos;
    size_t done = avail < n + 2 ? avail : n + 2;
    memcpy(out->data, c->in + c->in_pos, done);
    c->in_pos += done;
    while (done < n + 2) {
        size_t want = n + 2 - done, got = 0;
        llmc_status st;
        if (want >= sizeof c->in / 4) {
            /* Big remainder: straight into the destination, never past
             * this payload. */
            st = llmc__rconn_recv(c, out->data + done, want, &got, deadline_ns, 0, err);
            if (st != LLMC_OK)
                goto fail;
            done += got;
        } else {
            /* Small remainder: read a chunk (likely holding the next
             * replies too) and copy our part. */
            c->in_pos = c->in_len = 0;
            st = llmc__rconn_recv(c, c->in, sizeof c->in, &got, deadline_ns, 0, err);
            if (st != LLMC_OK)
                goto fail;
            c->in_len = got;
            size_t take = got < want ? got : want;
            memcpy(out->data + done, c->in, take);
            c->in_pos = take;
            done += take;
        }
        continue;
    fail:
        llmc_buf_clear(out);
        return st;
    }
    if (out->data[n] != '\r' || out->data[n + 1] != '\n') {
        llmc_buf_clear(out);
        return proto_err(c, err, "bulk string not terminated");
    }
    out->len = n;
    out->data[n] = 0;
    return LLMC_OK;
}

/* Peek at the reply's first byte; 0 with *other set if the reply must go
 * the general way. */
static llmc_status fast_start(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, char want,
                              int *fast, redisReply **other, llmc_err *err)
{
    *fast = 0;
    if (c->reader->len > c->reader->pos)
        return llmc__rconn_read(c, deadline_ns, other, err);
    llmc_status st = in_fill(c, deadline_ns, poll_first, err);
    if (st != LLMC_OK)
        return st;
    if (c->in[c->in_pos] != want)
        return llmc__rconn_read(c, deadline_ns, other, err);
    *fast = 1;
    return LLMC_OK;
}

llmc_status llmc__rconn_read_bulk(llmc_rconn *c, uint64_t deadline_ns, llmc_buf *out,
                                  int *nil, redisReply **other, llmc_err *err)
{
    *other = NULL;
    *nil = 0;
    int poll_first = 1, fast;
    llmc_status st = fast_start(c, deadline_ns, &poll_first, '$', &fast, other, err);
    if (st != LLMC_OK || !fast)
        return st;
    long long n;
    if ((st = in_header(c, deadline_ns, &poll_first, &n, err)) != LLMC_OK)
        return st;
    if (n < 0) {
        *nil = 1;
        return LLMC_OK;
    }
    return in_payload(c, deadline_ns, (size_t)n, out, err);
}

llmc_status llmc__rconn_read_simple(llmc_rconn *c, uint64_t deadline_ns, int *type,
                                    long long *integer, redisReply **other, llmc_err *err)
{
    *other = NULL;
    *integer = 0;
    int poll_first = 1, fast;
    llmc_status st = LLMC_OK;
    if (c->reader->len > c->reader->pos)
        return llmc__rconn_read(c, deadline_ns, other, err);
    if ((st = in_fill(c, deadline_ns, &poll_first, err)) != LLMC_OK)
        return st;
    char t = c->in[c->in_pos];
    fast = t == '+' || t == ':';
    if (!fast)
        return llmc__rconn_read(c, deadline_ns, other, err);
    if (t == ':') {
        *type = REDIS_REPLY_INTEGER;
        return in_header(c, deadline_ns, &poll_first, integer, err);
    }
    const char *line;
    size_t len;
    *type = REDIS_REPLY_STATUS;
    return in_line(c, deadline_ns, &poll_first, &line, &len, err);
}

llmc_status llmc__rconn_read_mget(llmc_rconn *c, uint64_t deadline_ns, size_t n, llmc_buf *vals,
                                  llmc_status *sts, redisReply **other, llmc_err *err)
{
    *other = NULL;
    int poll_first = 1, fast;
    llmc_status st = fast_start(c, deadline_ns, &poll_first, '*', &fast, other, err);
    if (st != LLMC_OK || !fast)
        return st;
    long long count;
    if ((st = in_header(c, deadline_ns, &poll_first, &count, err)) != LLMC_OK)
        return st;
    if (count != (long long)n)
        return proto_err(c, err, "MGET answered with the wrong number of values");
    for (size_t i = 0; i < n; i++) {
        if ((st = in_fill(c, deadline_ns, &poll_first, err)) != LLMC_OK)
            return st;
        if (c->in[c->in_pos] != '$')
            return proto_err(c, err, "MGET element is not a bulk string");
        long long len;
        if ((st = in_header(c, deadline_ns, &poll_first, &len, err)) != LLMC_OK)
            return st;
        if (len < 0) {
            sts[i] = LLMC_MISS;
            continue;
        }
        if ((st = in_payload(c, deadline_ns, (size_t)len, &vals[i], err)) != LLMC_OK)
            return st;
        sts[i] = LLMC_OK;
    }
    return LLMC_OK;
}

llmc_status llmc__rconn_command(llmc_rconn *c, int argc, const char *const *argv,
                                const size_t *lens, uint64_t deadline_ns,
                                redisReply **reply, llmc_err *err)
{
    if (llmc__rconn_append(c, argc, argv, lens) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rconn_flush(c, deadline_ns, err);
    if (st != LLMC_OK)
        return st;
    return llmc__rconn_read(c, deadline_ns, reply, err);
}

int llmc__redis_set_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                         const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms)
{
    av[0] = "SET";
    al[0] = 3;
    av[1] = key;
    al[1] = klen;
    av[2] = val ? (const char *)val : "";
    al[2] = vlen;
    if (ttl_ms <= 0)
        return 3;
    av[3] = "PX";
    al[3] = 2;
    av[4] = pxbuf;
    al[4] = (size_t)snprintf(pxbuf, pxcap, "%lld", (long long)ttl_ms);
    return 5;
}

int llmc__redis_lease_take_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                                const char *key, size_t klen, const char *token, size_t tlen,
                                int64_t ttl_ms)
{
    av[0] = "SET";
    al[0] = 3;
    av[1] = key;
    al[1] = klen;
    av[2] = token;
    al[2] = tlen;
    av[3] = "NX";
    al[3] = 2;
    av[4] = "PX";
    al[4] = 2;
    av[5] = pxbuf;
    al[5] = (size_t)snprintf(pxbuf, pxcap, "%lld", (long long)(ttl_ms > 0 ? ttl_ms : 1));
    return 6;
}

/* Delete only our own lease: one that expired and was taken by another
 * holder must stay. */
static const char lease_drop_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

int llmc__redis_lease_drop_args(const char **av, size_t *al, const char *key, size_t klen,
                                const char *token, size_t tlen)
{
    av[0] = "EVAL";
    al[0] = 4;
    av[1] = lease_drop_script;
    al[1] = sizeof lease_drop_script - 1;
    av[2] = "1";
    al[2] = 1;
    av[3] = key;
    al[3] = klen;
    av[4] = token;
    al[4] = tlen;
    return 5;
}

/* Extend only our own lease, in one step: between a separate GET and
 * PEXPIRE the lease could expire and be taken by another holder, whose
 * lease we would then extend. */
static const char lease_renew_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], "
    "ARGV[2]) else return 0 end";

int llmc__redis_lease_renew_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                                 const char *key, size_t klen, const char *token, size_t tlen,
                                 int64_t ttl_ms)
{
    av[0] = "EVAL";
    al[0] = 4;
    av[1] = lease_renew_script;
    al[1] = sizeof lease_renew_script - 1;
    av[2] = "1";
    al[2] = 1;
    av[3] = key;
    al[3] = klen;
    av[4] = token;
    al[4] = tlen;
    av[5] = pxbuf;
    al[5] = (size_t)snprintf(pxbuf, pxcap, "%lld", (long long)(ttl_ms > 0 ? ttl_ms : 1));
    return 6;
}

llmc_status llmc__redis_match_pattern(llmc_buf *b, const char *s, size_t n, const char *suffix)
{
    llmc_buf_clear(b);
    if (llmc_buf_reserve(b, 2 * n + 4) != LLMC_OK)
        return LLMC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
            b->data[b->len++] = '\\';
        b->data[b->len++] = ch;
    }
    b->data[b->len] = 0;
    return llmc_buf_puts(b, suffix);
}
