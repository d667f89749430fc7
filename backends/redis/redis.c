/* The Redis backend: URL and option handling, and the cache operations
 * on top of the connection pool in conn.c.
 *
 * URL forms:
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://...                    TLS (tls_ca, tls_cert, tls_key,
 *                                   tls_server_name, tls_verify=0)
 *   unix:///path/to/redis.sock?db=N
 * Opened by type ("redis") without a host, $REDIS_URL is used, else
 * 127.0.0.1:6379. */
#include "builtins.h"
#include "conn.h"
#include "connopts.h"
#include "pubsub.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define DEFAULT_PORT 6379
#define SCAN_COUNT "1000"
/* Batches are cut into pipelined chunks of this many keys so one huge
 * call does not build one huge request or reply. */
#define BATCH_CHUNK 512

typedef struct rctx {
    llmc_rpool pool;
    int64_t cmd_timeout_ms;
    int db;
} rctx;

static const char *const redis_schemes[] = {"redis", "rediss", "unix", NULL};
static const char *const redis_options[] = {LLMC_REDIS_CONN_OPTION_NAMES, "db", "host", "port",
                                            "socket", NULL};

/* ------------------------------------------------------------------ */
/* configuration */

static llmc_status parse_db(const char *s, const char *what, int *out, llmc_err *err)
{
    int64_t v;
    llmc_status st = llmc_parse_i64(s, what, 0, INT_MAX, &v, err);
    if (st == LLMC_OK)
        *out = (int)v;
    return st;
}

/* Fill the node config from the backend config (and $REDIS_URL). */
static llmc_status build_cfg(const llmc_backend_config *cfg, llmc_rnode_cfg *nc, int *pool_size,
                             int64_t *cmd_ms, llmc_err *err)
{
    llmc_status st = LLMC_OK;
    llmc_url env;
    int have_env = 0;
    memset(&env, 0, sizeof env);
    memset(nc, 0, sizeof *nc);
    llmc_ropts o = {cfg->options, NULL};

    const char *scheme = cfg->scheme ? cfg->scheme : "redis";
    const llmc_host *hosts = cfg->hosts;
    size_t n_hosts = cfg->n_hosts;
    const char *user = cfg->user, *password = cfg->password;
    const char *path = cfg->path ? cfg->path : "";
    const char *location = cfg->location ? cfg->location : "";

    /* Opened by type without an address: $REDIS_URL, else the default. */
    if (llmc__strcaseeq(scheme, "redis") && n_hosts == 0 && !*location &&
        !llmc_options_get(cfg->options, "host") && !llmc_options_get(cfg->options, "socket")) {
        const char *eu = getenv("REDIS_URL");
        if (eu && *eu) {
            llmc_err uerr;
            llmc_err_clear(&uerr);
            if (llmc__url_parse(eu, &env, &uerr) != LLMC_OK)
                return llmc_err_set(err, LLMC_EINVAL, 0, "REDIS_URL: %s", uerr.msg);
            have_env = 1;
            if (!llmc__redis_in_list(redis_schemes, env.scheme)) {
                st = llmc_err_set(err, LLMC_EINVAL, 0,
                                  "REDIS_URL: scheme '%s' is not a redis URL (redis://, "
                                  "rediss://, unix://)",
                                  env.scheme);
                goto out;
            }
            for (size_t i = 0; i < llmc_options_count(env.query); i++) {
                const char *n = llmc_options_name_at(env.query, i);
                if (!llmc__redis_in_list(redis_options, n)) {
                    st = llmc_err_set(err, LLMC_EINVAL, 0,
                                      "REDIS_URL: option '%s' is not a redis connection "
                                      "option (give it to the cache instead)",
                                      n);
                    goto out;
                }
            }
            scheme = env.scheme;
            hosts = env.hosts;
            n_hosts = env.n_hosts;
            /* The cache's own user/password options win over REDIS_URL's. */
            if (!user)
                user = llmc_options_get(cfg->options, "user");
            if (!user)
                user = env.user;
            if (!password)
                password = llmc_options_get(cfg->options, "password");
            if (!password)
                password = env.password;
            path = env.path ? env.path : "";
            location = env.location ? env.location : "";
            o.env = env.query;
        }
    }

    int is_unix = llmc__strcaseeq(scheme, "unix");
    int is_tls = llmc__strcaseeq(scheme, "rediss");
    const char *sock = llmc__ropt(&o, "socket");
    char label[300];

    if (is_unix || (sock && *sock)) {
        if (is_tls) {
            st = llmc_err_set(err, LLMC_EINVAL, 0, "redis: TLS over a unix socket is not supported");
            goto out;
        }
        const char *p = sock && *sock ? sock : (*path ? path : location);
        if (!p || !*p) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis: unix URL without a socket path (unix:///path/to/redis.sock)");
            goto out;
        }
        nc->unix_path = llmc__strdup(p);
        snprintf(label, sizeof label, "unix:%s", p);
        const char *dbs = llmc__ropt(&o, "db");
        if (dbs && (st = parse_db(dbs, "option 'db'", &nc->db, err)) != LLMC_OK)
            goto out;
    } else {
        if (n_hosts > 1) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis: one host expected, got %zu (for several nodes use "
                              "redis-cluster)",
                              n_hosts);
            goto out;
        }
        const char *host = n_hosts ? hosts[0].host : llmc__ropt(&o, "host");
        int64_t port = n_hosts && hosts[0].port > 0 ? hosts[0].port : -1;
        if (!host || !*host)
            host = "127.0.0.1";
        if (port < 0 &&
            (st = llmc__ropt_i64(&o, "port", 1, 65535, DEFAULT_PORT, &port, err)) != LLMC_OK)
            goto out;
        if (port < 1 || port > 65535) {
            st = llmc_err_set(err, LLMC_EINVAL, 0, "redis: port %lld out of range 1..65535",
                              (long long)port);
            goto out;
        }
        nc->host = llmc__strdup(host);
        nc->port = (int)port;
        if (strchr(host, ':'))
            snprintf(label, sizeof label, "[%s]:%d%s", host, (int)port, is_tls ? " (tls)" : "");
        else
            snprintf(label, sizeof label, "%s:%d%s", host, (int)port, is_tls ? " (tls)" : "");
        /* db: "/N" in the URL, else option db. */
        const char *p = path;
        while (*p == '/')
            p++;
        if (*p) {
            if ((st = parse_db(p, "redis URL database (the /N after the host)", &nc->db, err)) !=
                LLMC_OK)
                goto out;
            const char *dbs = llmc__ropt(&o, "db");
            int dbo;
            if (dbs && (parse_db(dbs, "option 'db'", &dbo, err) != LLMC_OK || dbo != nc->db)) {
                st = llmc_err_set(err, LLMC_EINVAL, 0,
                                  "redis: database given twice (URL path /%d and option db=%s)",
                                  nc->db, dbs);
                goto out;
            }
        } else {
            const char *dbs = llmc__ropt(&o, "db");
            if (dbs && (st = parse_db(dbs, "option 'db'", &nc->db, err)) != LLMC_OK)
                goto out;
        }
    }

    if ((st = llmc__redis_conn_options("redis", &o, is_tls, "a rediss:// URL", cfg->timeout_ms,
                                       user, password, nc, pool_size, err)) != LLMC_OK)
        goto out;
    *cmd_ms = nc->command_timeout_ms;
    nc->label = llmc__strdup(label);
    if (!nc->label || (!nc->unix_path && !nc->host)) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto out;
    }
out:
    if (st != LLMC_OK)
        llmc__rnode_cfg_free(nc);
    if (have_env)
        llmc__url_free(&env);
    return st;
}

/* ------------------------------------------------------------------ */
/* running requests */

typedef llmc_status (*req_fn)(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud,
                              llmc_err *err);

/* Run one request on a pooled connection. A request that failed on a
 * reused connection before anything came back is retried once on a new
 * connection: the old one had gone stale while idle (server restarted,
 * idle timeout), and every request here is idempotent. */
static llmc_status run(rctx *x, req_fn fn, void *ud, llmc_err *err)
{
    for (int attempt = 0;; attempt++) {
        uint64_t deadline = llmc__deadline_after_ms(x->cmd_timeout_ms);
        llmc_rconn *c = NULL;
        int fresh = 0;
        llmc_status st = llmc__rpool_acquire(&x->pool, deadline, &c, &fresh, err);
        if (st != LLMC_OK)
            return st;
        uint64_t rx0 = llmc__rconn_rx_bytes(c);
        st = fn(x, c, deadline, ud, err);
        x->pool.commands++;
        int retry = st == LLMC_ECONN && attempt == 0 && !fresh && llmc__rconn_broken(c) &&
                    llmc__rconn_rx_bytes(c) == rx0;
        if (st == LLMC_ETIMEDOUT)
            x->pool.timeouts++;
        llmc__rpool_release(&x->pool, c);
        if (!retry)
            return st;
        x->pool.retries++;
    }
}

static llmc_status unexpected(rctx *x, llmc_rconn *c, const redisReply *r, const char *what,
                              llmc_err *err)
{
    LLMC_UNUSED(c);
    return llmc_err_set(err, LLMC_EPROTO, r->type, "redis at %s: unexpected reply type %d to %s",
                        x->pool.cfg.label, r->type, what);
}

static llmc_status reply_error(rctx *x, const redisReply *r, const char *what, llmc_err *err)
{
    return llmc__redis_error_reply(r, what, x->pool.cfg.label, x->pool.cfg.password, err);
}

/* One command, one reply handled by `on_reply`. */
typedef struct cmd_req {
    int argc;
    const char *const *argv;
    const size_t *lens;
    llmc_status (*on_reply)(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err);
    void *ud;
} cmd_req;

static llmc_status cmd_fn(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud, llmc_err *err)
{
    cmd_req *q = ud;
    if (llmc__rconn_append(c, q->argc, q->argv, q->lens) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rconn_flush(c, deadline, err);
    if (st != LLMC_OK)
        return st;
    /* Status and integer replies are read without building a reply
     * object; the handlers only look at type and integer for those. */
    redisReply simple, *r = NULL;
    memset(&simple, 0, sizeof simple);
    long long integer = 0;
    st = llmc__rconn_read_simple(c, deadline, &simple.type, &integer, &r, err);
    if (st != LLMC_OK)
        return st;
    if (!r) {
        simple.integer = integer;
        return q->on_reply(x, c, &simple, q->ud, err);
    }
    if (r->type == REDIS_REPLY_ERROR)
        st = reply_error(x, r, q->argv[0], err);
    else
        st = q->on_reply(x, c, r, q->ud, err);
    freeReplyObject(r);
    return st;
}

static llmc_status run_cmd(rctx *x, int argc, const char *const *argv, const size_t *lens,
                           llmc_status (*on_reply)(rctx *, llmc_rconn *, redisReply *, void *,
                                                   llmc_err *),
                           void *ud, llmc_err *err)
{
    cmd_req q = {argc, argv, lens, on_reply, ud};
    return run(x, cmd_fn, &q, err);
}

/* ------------------------------------------------------------------ */
/* operations */

typedef struct get_req {
    const char *key;
    size_t klen;
    llmc_buf *out;
} get_req;

static llmc_status get_fn(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud, llmc_err *err)
{
    get_req *q = ud;
    const char *av[2] = {"GET", q->key};
    size_t al[2] = {3, q->klen};
    if (llmc__rconn_append(c, 2, av, al) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rconn_flush(c, deadline, err);
    if (st != LLMC_OK)
        return st;
    int nil = 0;
    redisReply *r = NULL;
    st = llmc__rconn_read_bulk(c, deadline, q->out, &nil, &r, err);
    if (st != LLMC_OK)
        return st;
    if (!r)
        return nil ? LLMC_MISS : LLMC_OK;
    if (r->type == REDIS_REPLY_NIL)
        st = LLMC_MISS;
    else if (r->type == REDIS_REPLY_ERROR)
        st = reply_error(x, r, "GET", err);
    else if (r->type != REDIS_REPLY_STRING)
        st = unexpected(x, c, r, "GET", err);
    else if (llmc_buf_set(q->out, r->str, r->len) != LLMC_OK)
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    freeReplyObject(r);
    return st;
}

static llmc_status r_get(void *ctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    get_req q = {key, klen, out};
    return run(ctx, get_fn, &q, err);
}

static llmc_status ok_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    if (r->type != REDIS_REPLY_STATUS)
        return unexpected(x, c, r, ud ? (const char *)ud : "command", err);
    return LLMC_OK;
}

static llmc_status r_set(void *ctx, const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms, llmc_err *err)
{
    const char *av[5];
    size_t al[5];
    char px[24];
    int n = llmc__redis_set_args(av, al, px, sizeof px, key, klen, val, vlen, ttl_ms);
    return run_cmd(ctx, n, av, al, ok_reply, "SET", err);
}

static llmc_status count_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(x, c, r, ud, err);
    return r->integer > 0 ? LLMC_OK : LLMC_MISS;
}

static llmc_status r_del(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    const char *av[2] = {"UNLINK", key};
    size_t al[2] = {6, klen};
    return run_cmd(ctx, 2, av, al, count_reply, "UNLINK", err);
}

static llmc_status r_exists(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    const char *av[2] = {"EXISTS", key};
    size_t al[2] = {6, klen};
    return run_cmd(ctx, 2, av, al, count_reply, "EXISTS", err);
}

static llmc_status lease_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    LLMC_UNUSED(ud);
    if (r->type == REDIS_REPLY_NIL)
        return LLMC_EEXIST;
    if (r->type != REDIS_REPLY_STATUS)
        return unexpected(x, c, r, "SET NX", err);
    return LLMC_OK;
}

static llmc_status r_lease_acquire(void *ctx, const char *key, size_t klen, const char *token,
                                   size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    const char *av[6];
    size_t al[6];
    char px[24];
    int n = llmc__redis_lease_take_args(av, al, px, sizeof px, key, klen, token, tlen, ttl_ms);
    return run_cmd(ctx, n, av, al, lease_reply, NULL, err);
}

static llmc_status r_lease_release(void *ctx, const char *key, size_t klen, const char *token,
                                   size_t tlen, llmc_err *err)
{
    const char *av[5];
    size_t al[5];
    int n = llmc__redis_lease_drop_args(av, al, key, klen, token, tlen);
    return run_cmd(ctx, n, av, al, count_reply, "EVAL", err);
}

static llmc_status r_lease_renew(void *ctx, const char *key, size_t klen, const char *token,
                                 size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    const char *av[6];
    size_t al[6];
    char px[24];
    int n = llmc__redis_lease_renew_args(av, al, px, sizeof px, key, klen, token, tlen, ttl_ms);
    return run_cmd(ctx, n, av, al, count_reply, "EVAL", err);
}

static llmc_status pttl_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(x, c, r, "PTTL", err);
    if (r->integer == -2)
        return LLMC_MISS;
    *(int64_t *)ud = r->integer < 0 ? -1 : r->integer;
    return LLMC_OK;
}

static llmc_status r_ttl(void *ctx, const char *key, size_t klen, int64_t *ttl_ms, llmc_err *err)
{
    const char *av[2] = {"PTTL", key};
    size_t al[2] = {4, klen};
    return run_cmd(ctx, 2, av, al, pttl_reply, ttl_ms, err);
}

static llmc_status pong_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    LLMC_UNUSED(ud);
    if (r->type != REDIS_REPLY_STATUS)
        return unexpected(x, c, r, "PING", err);
    return LLMC_OK;
}

static llmc_status r_ping(void *ctx, llmc_err *err)
{
    const char *av[1] = {"PING"};
    size_t al[1] = {4};
    return run_cmd(ctx, 1, av, al, pong_reply, NULL, err);
}

static llmc_status r_flush_all(void *ctx, llmc_err *err)
{
    const char *av[1] = {"FLUSHDB"};
    size_t al[1] = {7};
    return run_cmd(ctx, 1, av, al, ok_reply, "FLUSHDB", err);
}

/* ---- batches ---- */

typedef struct mget_req {
    size_t n;
    const char *const *keys;
    const size_t *klens;
    llmc_buf *vals;
    llmc_status *sts;
} mget_req;

static llmc_status mget_fn(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud, llmc_err *err)
{
    mget_req *q = ud;
    const char *avs[BATCH_CHUNK + 1];
    size_t als[BATCH_CHUNK + 1];
    size_t nchunks = (q->n + BATCH_CHUNK - 1) / BATCH_CHUNK;
    /* All chunks are pipelined: one write, then the replies in order. */
    for (size_t ci = 0; ci < nchunks; ci++) {
        size_t off = ci * BATCH_CHUNK, m = q->n - off < BATCH_CHUNK ? q->n - off : BATCH_CHUNK;
        avs[0] = "MGET";
        als[0] = 4;
        for (size_t i = 0; i < m; i++) {
            avs[i + 1] = q->keys[off + i];
            als[i + 1] = q->klens[off + i];
        }
        if (llmc__rconn_append(c, (int)m + 1, avs, als) != LLMC_OK)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_status st = llmc__rconn_flush(c, deadline, err);
    if (st != LLMC_OK)
        return st;
    llmc_status result = LLMC_OK;
    for (size_t ci = 0; ci < nchunks; ci++) {
        size_t off = ci * BATCH_CHUNK, m = q->n - off < BATCH_CHUNK ? q->n - off : BATCH_CHUNK;
        redisReply *r = NULL;
        st = llmc__rconn_read_mget(c, deadline, m, q->vals + off, q->sts + off, &r, err);
        if (st != LLMC_OK)
            return st;
        if (!r)
            continue;
        if (r->type == REDIS_REPLY_ERROR) {
            llmc_err e;
            llmc_status es = reply_error(x, r, "MGET", &e);
            for (size_t i = 0; i < m; i++)
                q->sts[off + i] = es;
            if (result == LLMC_OK) {
                result = es;
                if (err)
                    *err = e;
            }
            freeReplyObject(r);
        } else {
            st = unexpected(x, c, r, "MGET", err);
            freeReplyObject(r);
            llmc__rconn_mark_broken(c); /* later chunks' replies are still pending */
            return st;
        }
    }
    return result;
}

static llmc_status r_mget(void *ctx, size_t n, const char *const *keys, const size_t *klens,
                          llmc_buf *vals, llmc_status *sts, llmc_err *err)
{
    if (n == 0)
        return LLMC_OK;
    mget_req q = {n, keys, klens, vals, sts};
    return run(ctx, mget_fn, &q, err);
}

typedef struct mset_req {
    size_t n;
    const llmc_kv *items;
} mset_req;

static llmc_status mset_fn(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud, llmc_err *err)
{
    mset_req *q = ud;
    llmc_status result = LLMC_OK;
    for (size_t off = 0; off < q->n; off += BATCH_CHUNK) {
        size_t m = q->n - off < BATCH_CHUNK ? q->n - off : BATCH_CHUNK;
        for (size_t i = 0; i < m; i++) {
            const llmc_kv *it = &q->items[off + i];
            const char *av[5];
            size_t al[5];
            char px[24];
            int argc = llmc__redis_set_args(av, al, px, sizeof px, it->key, it->klen, it->val, it->vlen,
                                it->ttl_ms);
            if (llmc__rconn_append(c, argc, av, al) != LLMC_OK)
                return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        llmc_status st = llmc__rconn_flush(c, deadline, err);
        if (st != LLMC_OK)
            return st;
        /* Read every reply, even after an error, to keep the connection
         * in step. */
        for (size_t i = 0; i < m; i++) {
            redisReply *r = NULL;
            int type = 0;
            long long ignored;
            st = llmc__rconn_read_simple(c, deadline, &type, &ignored, &r, err);
            if (st != LLMC_OK)
                return st;
            if (!r) {
                if (type != REDIS_REPLY_STATUS && result == LLMC_OK)
                    result = llmc_err_set(err, LLMC_EPROTO, type,
                                          "redis at %s: unexpected reply type %d to SET",
                                          x->pool.cfg.label, type);
                continue;
            }
            if (result == LLMC_OK) {
                if (r->type == REDIS_REPLY_ERROR)
                    result = reply_error(x, r, "SET", err);
                else if (r->type != REDIS_REPLY_STATUS)
                    result = unexpected(x, c, r, "SET", err);
            }
            freeReplyObject(r);
        }
        deadline = llmc__deadline_after_ms(x->cmd_timeout_ms);
    }
    return result;
}

static llmc_status r_mset(void *ctx, size_t n, const llmc_kv *items, llmc_err *err)
{
    if (n == 0)
        return LLMC_OK;
    mset_req q = {n, items};
    return run(ctx, mset_fn, &q, err);
}

/* ---- SCAN based: flush(namespace) and scan(prefix) ---- */

typedef struct scan_req {
    const char *pat;
    size_t patlen;
    int unlink;               /* flush: UNLINK what SCAN finds */
    uint64_t deleted;
    llmc_scan_cb cb;          /* scan: visit */
    void *ud;
} scan_req;

static llmc_status scan_fn(rctx *x, llmc_rconn *c, uint64_t deadline, void *ud, llmc_err *err)
{
    scan_req *q = ud;
    char cursor[32] = "0";
    LLMC_UNUSED(deadline);
    for (;;) {
        /* Each round trip gets its own timeout: a namespace can be big. */
        uint64_t dl = llmc__deadline_after_ms(x->cmd_timeout_ms);
        const char *av[6] = {"SCAN", cursor, "MATCH", q->pat, "COUNT", SCAN_COUNT};
        size_t al[6] = {4, strlen(cursor), 5, q->patlen, 5, strlen(SCAN_COUNT)};
        redisReply *r = NULL;
        llmc_status st = llmc__rconn_command(c, 6, av, al, dl, &r, err);
        if (st != LLMC_OK)
            return st;
        if (r->type == REDIS_REPLY_ERROR) {
            st = reply_error(x, r, "SCAN", err);
            freeReplyObject(r);
            return st;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            st = unexpected(x, c, r, "SCAN", err);
            freeReplyObject(r);
            return st;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = 0;
        redisReply *keys = r->element[1];
        if (q->unlink && keys->elements > 0) {
            size_t m = keys->elements;
            const char **kv = malloc((m + 1) * sizeof *kv);
            size_t *kl = malloc((m + 1) * sizeof *kl);
            if (!kv || !kl) {
                free(kv);
                free(kl);
                freeReplyObject(r);
                return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            }
            kv[0] = "UNLINK";
            kl[0] = 6;
            for (size_t i = 0; i < m; i++) {
                kv[i + 1] = keys->element[i]->str ? keys->element[i]->str : "";
                kl[i + 1] = keys->element[i]->len;
            }
            redisReply *u = NULL;
            st = llmc__rconn_command(c, (int)m + 1, kv, kl,
                                     llmc__deadline_after_ms(x->cmd_timeout_ms), &u, err);
            free(kv);
            free(kl);
            if (st == LLMC_OK) {
                if (u->type == REDIS_REPLY_INTEGER)
                    q->deleted += (uint64_t)(u->integer > 0 ? u->integer : 0);
                else if (u->type == REDIS_REPLY_ERROR)
                    st = reply_error(x, u, "UNLINK", err);
                else
                    st = unexpected(x, c, u, "UNLINK", err);
                freeReplyObject(u);
            }
            if (st != LLMC_OK) {
                freeReplyObject(r);
                return st;
            }
        } else if (q->cb) {
            for (size_t i = 0; i < keys->elements; i++) {
                redisReply *k = keys->element[i];
                if (k->type != REDIS_REPLY_STRING)
                    continue;
                if (q->cb(q->ud, k->str, k->len) != 0) {
                    freeReplyObject(r);
                    return LLMC_OK;
                }
            }
        }
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            return LLMC_OK;
    }
}

static llmc_status r_flush(void *ctx, const char *ns, size_t nslen, uint64_t *deleted,
                           llmc_err *err)
{
    llmc_buf pat = LLMC_BUF_INIT;
    if (llmc__redis_match_pattern(&pat, ns, nslen, ":*") != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    scan_req q = {pat.data, pat.len, 1, 0, NULL, NULL};
    llmc_status st = run(ctx, scan_fn, &q, err);
    llmc_buf_free(&pat);
    if (deleted)
        *deleted = q.deleted;
    return st;
}

static llmc_status r_scan(void *ctx, const char *prefix, size_t plen, llmc_scan_cb cb, void *ud,
                          llmc_err *err)
{
    llmc_buf pat = LLMC_BUF_INIT;
    if (llmc__redis_match_pattern(&pat, prefix ? prefix : "", prefix ? plen : 0, "*") != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    scan_req q = {pat.data, pat.len, 0, 0, cb, ud};
    llmc_status st = run(ctx, scan_fn, &q, err);
    llmc_buf_free(&pat);
    return st;
}

/* ---- stats ---- */

static llmc_status dbsize_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(x, c, r, "DBSIZE", err);
    *(int64_t *)ud = r->integer;
    return LLMC_OK;
}

static llmc_status r_stats(void *ctx, llmc_stat_cb cb, void *ud)
{
    rctx *x = ctx;
    llmc_rpool *p = &x->pool;
    pthread_mutex_lock(&p->lock);
    int open = p->n_open, idle = p->n_idle;
    pthread_mutex_unlock(&p->lock);
    cb(ud, "pool_size", p->size);
    cb(ud, "pool_open", open);
    cb(ud, "pool_idle", idle);
    cb(ud, "pool_waits", (int64_t)p->waits);
    cb(ud, "pool_wait_us", (int64_t)p->wait_us);
    cb(ud, "connects", (int64_t)p->connects);
    cb(ud, "reconnects", (int64_t)p->reconnects);
    cb(ud, "connect_failures", (int64_t)p->connect_failures);
    cb(ud, "broken_connections", (int64_t)p->broken);
    cb(ud, "timeouts", (int64_t)p->timeouts);
    cb(ud, "retries", (int64_t)p->retries);
    cb(ud, "requests", (int64_t)p->commands);
    cb(ud, "db", x->db);
    /* Best effort: the server's key count for the selected database. */
    int64_t n = -1;
    llmc_err e;
    const char *av[1] = {"DBSIZE"};
    size_t al[1] = {6};
    if (run_cmd(x, 1, av, al, dbsize_reply, &n, &e) == LLMC_OK)
        cb(ud, "dbsize", n);
    return LLMC_OK;
}

/* ---- invalidation channel of the local tier ---- */

static llmc_status int_reply(rctx *x, llmc_rconn *c, redisReply *r, void *ud, llmc_err *err)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(x, c, r, ud, err);
    return LLMC_OK;
}

static llmc_status r_publish(void *ctx, const char *channel, const void *msg, size_t len,
                             llmc_err *err)
{
    const char *av[3] = {"PUBLISH", channel, msg};
    size_t al[3] = {7, strlen(channel), len};
    return run_cmd(ctx, 3, av, al, int_reply, "PUBLISH", err);
}

static llmc_status r_subscribe(void *ctx, const char *channel, void **sub, llmc_err *err)
{
    rctx *x = ctx;
    return llmc__rsub_open(&x->pool.cfg, channel, (llmc_rsub **)sub, err);
}

/* ---- open/close ---- */

static llmc_status r_open(const llmc_backend_config *cfg, void **out, llmc_err *err)
{
    *out = NULL;
    llmc_rnode_cfg nc;
    int pool_size = LLMC_REDIS_DEFAULT_POOL;
    int64_t cmd_ms = LLMC_REDIS_DEFAULT_COMMAND_MS;
    llmc_status st = build_cfg(cfg, &nc, &pool_size, &cmd_ms, err);
    if (st != LLMC_OK)
        return st;
    rctx *x = calloc(1, sizeof *x);
    if (!x) {
        llmc__rnode_cfg_free(&nc);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    x->cmd_timeout_ms = cmd_ms;
    x->db = nc.db;
    st = llmc__rpool_init(&x->pool, &nc, pool_size, err);
    llmc__rnode_cfg_free(&nc);
    if (st != LLMC_OK) {
        free(x);
        return st;
    }
    /* Try to connect now, so a wrong password or database fails the open
     * with a clear message. A server that cannot be reached is not an
     * open error: it may be starting together with this process. The
     * handle opens, calls fail (and fail open through the cache's
     * breaker) and the pool connects as soon as the server answers. */
    llmc_rconn *c = NULL;
    int fresh;
    st = llmc__rpool_acquire(&x->pool, llmc__deadline_after_ms(x->pool.cfg.connect_timeout_ms),
                             &c, &fresh, err);
    if (llmc__redis_unreachable(st)) {
        llmc__log("warn", "%s; opened anyway, the cache is used once the server answers",
                  err && err->msg[0] ? err->msg : llmc_strerror(st));
        llmc_err_clear(err);
    } else if (st != LLMC_OK) {
        llmc__rpool_destroy(&x->pool);
        free(x);
        return st;
    } else {
        llmc__rpool_release(&x->pool, c);
    }
    *out = x;
    return LLMC_OK;
}

static void r_close(void *ctx)
{
    rctx *x = ctx;
    if (!x)
        return;
    llmc__rpool_destroy(&x->pool);
    free(x);
}

const llmc_backend_ops llmc__backend_redis = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "redis",
                               "Redis over TCP, TLS or a unix socket (pooled, pipelined)"),
    .schemes = redis_schemes,
    .options = redis_options,
    .caps = LLMC_CAP_TTL | LLMC_CAP_BATCH | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE |
            LLMC_CAP_PERSISTENT | LLMC_CAP_DISTRIBUTED | LLMC_CAP_SCAN | LLMC_CAP_REMOTE,
    .open = r_open,
    .close = r_close,
    .get = r_get,
    .set = r_set,
    .del = r_del,
    .exists = r_exists,
    .mget = r_mget,
    .mset = r_mset,
    .flush = r_flush,
    .flush_all = r_flush_all,
    .ping = r_ping,
    .stats = r_stats,
    .scan = r_scan,
    .ttl = r_ttl,
    .publish = r_publish,
    .subscribe = r_subscribe,
    .sub_poll = llmc__rsub_poll,
    .sub_ping = llmc__rsub_ping,
    .sub_close = llmc__rsub_close,
    .lease_acquire = r_lease_acquire,
    .lease_release = r_lease_release,
    .lease_renew = r_lease_renew,
};
