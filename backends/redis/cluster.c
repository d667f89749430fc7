/* Redis Cluster and Redis Sentinel backends, on top of the connection
 * layer (conn.h; one llmc_rpool per node).
 *
 * Both share one router: a table of 16384 hash slots, each pointing at
 * the node (master) that serves it. In a cluster the table comes from
 * CLUSTER SLOTS and is corrected by MOVED replies; with Sentinel every
 * slot points at the one current master, found with SENTINEL
 * GET-MASTER-ADDR-BY-NAME and confirmed with ROLE. Everything above the
 * router (single-key requests with redirects and retries, batches split
 * per node and slot, flush/scan over every master) is the same code.
 *
 * URL forms:
 *   redis-cluster://[user:password@]host:port[,host:port...]
 *   rediss-cluster://...                     (or tls=1) TLS
 *   redis-sentinel://[user:password@]host:26379[,host:port...]/master-name
 *   rediss-sentinel://...                    (or tls=1) TLS
 *
 * Files: cluster.c (the backend tables, single-key and every-master
 * operations, open/close), cluster_router.c (hash slots, nodes, topology
 * refresh, redirects), cluster_batch.c (mget/mset split per node and
 * slot); cluster_impl.h holds what they share.
 *
 * Lifetime: nodes are only ever added while a context lives (a cluster
 * has few distinct addresses), so a node pointer read from the slot table
 * stays valid without a lock; the slots themselves are atomic pointers. */
#include "builtins.h"
#include "cluster_impl.h"
#include "connopts.h"
#include "pubsub.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const cluster_schemes[] = {"redis-cluster", "rediss-cluster", NULL};
static const char *const sentinel_schemes[] = {"redis-sentinel", "rediss-sentinel", NULL};
static const char *const cluster_options[] = {LLMC_REDIS_CONN_OPTION_NAMES, "tls",
                                              "refresh_interval_ms", NULL};
static const char *const sentinel_options[] = {
    LLMC_REDIS_CONN_OPTION_NAMES, "tls", "refresh_interval_ms", "db", "sentinel_user",
    "sentinel_password", "master_name", NULL};

/* ---- single-key operations ---- */

typedef struct get_req {
    const char *key;
    size_t klen;
    llmc_buf *out;
} get_req;

static llmc_status send_cmd(llmc_rconn *c, int argc, const char *const *av, const size_t *al,
                        uint64_t deadline, llmc_err *err)
{
    if (llmc__rconn_append(c, argc, av, al) != LLMC_OK) {
        llmc__rconn_mark_broken(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    return llmc__rconn_flush(c, deadline, err);
}

static llmc_status get_fn(cctx *x, llmc_rconn *c, uint64_t deadline, void *ud, redisReply **er,
                          llmc_err *err)
{
    LLMC_UNUSED(x);
    get_req *q = ud;
    const char *av[2] = {"GET", q->key};
    size_t al[2] = {3, q->klen};
    llmc_status st = send_cmd(c, 2, av, al, deadline, err);
    if (st != LLMC_OK)
        return st;
    int nil = 0;
    redisReply *r = NULL;
    st = llmc__rconn_read_bulk(c, deadline, q->out, &nil, &r, err);
    if (st != LLMC_OK)
        return st;
    if (!r)
        return nil ? LLMC_MISS : LLMC_OK;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return LLMC_MISS;
    }
    if (r->type == REDIS_REPLY_STRING) {
        st = llmc_buf_set(q->out, r->str, r->len) == LLMC_OK
                 ? LLMC_OK
                 : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        freeReplyObject(r);
        return st;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        *er = r;
        return LLMC_EBACKEND;
    }
    freeReplyObject(r);
    return llmc_err_set(err, LLMC_EPROTO, 0, "redis-cluster: unexpected reply to GET");
}

llmc_status llmc__rc_get(void *ctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    get_req q = {key, klen, out};
    return llmc__rc_run_key(ctx, key, klen, "GET", get_fn, &q, err);
}

/* A command whose reply is a status or an integer. */
typedef struct simple_req {
    int argc;
    const char *const *argv;
    const size_t *lens;
    int type;
    long long integer;
} simple_req;

static llmc_status simple_fn(cctx *x, llmc_rconn *c, uint64_t deadline, void *ud,
                             redisReply **er, llmc_err *err)
{
    LLMC_UNUSED(x);
    simple_req *q = ud;
    llmc_status st = send_cmd(c, q->argc, q->argv, q->lens, deadline, err);
    if (st != LLMC_OK)
        return st;
    redisReply *r = NULL;
    st = llmc__rconn_read_simple(c, deadline, &q->type, &q->integer, &r, err);
    if (st != LLMC_OK)
        return st;
    if (!r)
        return LLMC_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        *er = r;
        return LLMC_EBACKEND;
    }
    q->type = r->type;
    freeReplyObject(r);
    return LLMC_OK;
}

static llmc_status run_simple(cctx *x, const char *key, size_t klen, int argc,
                              const char *const *av, const size_t *al, int want, long long *out,
                              llmc_err *err)
{
    simple_req q = {argc, av, al, 0, 0};
    llmc_status st = llmc__rc_run_key(x, key, klen, av[0], simple_fn, &q, err);
    if (st != LLMC_OK)
        return st;
    if (q.type != want)
        return llmc_err_set(err, LLMC_EPROTO, q.type,
                            "redis-cluster: unexpected reply type %d to %s", q.type, av[0]);
    if (out)
        *out = q.integer;
    return LLMC_OK;
}

llmc_status llmc__rc_set(void *ctx, const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms, llmc_err *err)
{
    const char *av[5];
    size_t al[5];
    char px[24];
    int n = llmc__redis_set_args(av, al, px, sizeof px, key, klen, val, vlen, ttl_ms);
    return run_simple(ctx, key, klen, n, av, al, REDIS_REPLY_STATUS, NULL, err);
}

llmc_status llmc__rc_del(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    const char *av[2] = {"UNLINK", key};
    size_t al[2] = {6, klen};
    long long n = 0;
    llmc_status st = run_simple(ctx, key, klen, 2, av, al, REDIS_REPLY_INTEGER, &n, err);
    return st != LLMC_OK ? st : n > 0 ? LLMC_OK : LLMC_MISS;
}

static llmc_status c_exists(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    const char *av[2] = {"EXISTS", key};
    size_t al[2] = {6, klen};
    long long n = 0;
    llmc_status st = run_simple(ctx, key, klen, 2, av, al, REDIS_REPLY_INTEGER, &n, err);
    return st != LLMC_OK ? st : n > 0 ? LLMC_OK : LLMC_MISS;
}

static llmc_status c_lease_acquire(void *ctx, const char *key, size_t klen, const char *token,
                                   size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    const char *av[6];
    size_t al[6];
    char px[24];
    int n = llmc__redis_lease_take_args(av, al, px, sizeof px, key, klen, token, tlen, ttl_ms);
    simple_req q = {n, av, al, 0, 0};
    llmc_status st = llmc__rc_run_key(ctx, key, klen, av[0], simple_fn, &q, err);
    if (st != LLMC_OK)
        return st;
    if (q.type == REDIS_REPLY_NIL)
        return LLMC_EEXIST;
    if (q.type != REDIS_REPLY_STATUS)
        return llmc_err_set(err, LLMC_EPROTO, q.type,
                            "redis-cluster: unexpected reply type %d to SET NX", q.type);
    return LLMC_OK;
}

static llmc_status c_lease_release(void *ctx, const char *key, size_t klen, const char *token,
                                   size_t tlen, llmc_err *err)
{
    const char *av[5];
    size_t al[5];
    int n = llmc__redis_lease_drop_args(av, al, key, klen, token, tlen);
    long long deleted = 0;
    llmc_status st = run_simple(ctx, key, klen, n, av, al, REDIS_REPLY_INTEGER, &deleted, err);
    return st != LLMC_OK ? st : deleted > 0 ? LLMC_OK : LLMC_MISS;
}

static llmc_status c_lease_renew(void *ctx, const char *key, size_t klen, const char *token,
                                 size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    const char *av[6];
    size_t al[6];
    char px[24];
    int n = llmc__redis_lease_renew_args(av, al, px, sizeof px, key, klen, token, tlen, ttl_ms);
    long long extended = 0;
    llmc_status st = run_simple(ctx, key, klen, n, av, al, REDIS_REPLY_INTEGER, &extended, err);
    return st != LLMC_OK ? st : extended > 0 ? LLMC_OK : LLMC_MISS;
}

static llmc_status c_ttl(void *ctx, const char *key, size_t klen, int64_t *ttl_ms, llmc_err *err)
{
    const char *av[2] = {"PTTL", key};
    size_t al[2] = {4, klen};
    long long n = 0;
    llmc_status st = run_simple(ctx, key, klen, 2, av, al, REDIS_REPLY_INTEGER, &n, err);
    if (st != LLMC_OK)
        return st;
    if (n == -2)
        return LLMC_MISS;
    *ttl_ms = n < 0 ? -1 : n;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* every master: flush(namespace), scan, ping */

static llmc_status no_masters(cctx *x, llmc_err *err)
{
    llmc_err last;
    pthread_mutex_lock(&x->refresh_lock);
    last = x->last_refresh_err;
    pthread_mutex_unlock(&x->refresh_lock);
    return llmc_err_set(err, LLMC_ECONN, 0, "redis-%s: no master known (%s)",
                        x->mode == MODE_CLUSTER ? "cluster" : "sentinel",
                        last.msg[0] ? last.msg : "not connected");
}

/* Pipelined UNLINK, one key per command (keys of one SCAN page may be in
 * different slots). Keys that moved meanwhile are deleted through the
 * router. */
static llmc_status unlink_page(cctx *x, cnode *n, redisReply *keys, uint64_t *deleted,
                               llmc_err *err)
{
    llmc_rconn *c = NULL;
    int fresh;
    uint64_t deadline = llmc__deadline_after_ms(x->cmd_ms);
    unsigned char *redo = calloc(keys->elements, 1);
    if (!redo)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rpool_acquire(&n->pool, deadline, &c, &fresh, err);
    if (st != LLMC_OK) {
        free(redo);
        return st;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const char *av[2] = {"UNLINK", keys->element[i]->str ? keys->element[i]->str : ""};
        size_t al[2] = {6, keys->element[i]->len};
        if (llmc__rconn_append(c, 2, av, al) != LLMC_OK) {
            llmc__rconn_mark_broken(c);
            llmc__rpool_release(&n->pool, c);
            free(redo);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
    }
    st = llmc__rconn_flush(c, deadline, err);
    for (size_t i = 0; st == LLMC_OK && i < keys->elements; i++) {
        redisReply *r = NULL;
        int type = 0;
        long long v = 0;
        st = llmc__rconn_read_simple(c, deadline, &type, &v, &r, err);
        if (st != LLMC_OK)
            break;
        if (r) {
            redo[i] = r->type == REDIS_REPLY_ERROR;
            freeReplyObject(r);
        } else if (type == REDIS_REPLY_INTEGER && v > 0) {
            *deleted += (uint64_t)v;
        }
    }
    n->pool.commands++;
    llmc__rpool_release(&n->pool, c);
    /* Keys that moved meanwhile (MOVED/ASK): through the router, after
     * giving the connection back (the router may need this pool). */
    for (size_t i = 0; st == LLMC_OK && i < keys->elements; i++)
        if (redo[i] &&
            llmc__rc_del(x, keys->element[i]->str, keys->element[i]->len, NULL) == LLMC_OK)
            (*deleted)++;
    free(redo);
    return st;
}

static llmc_status scan_node(cctx *x, cnode *n, const char *pat, size_t patlen, int unlink,
                             uint64_t *deleted, llmc_scan_cb cb, void *ud, int *stop,
                             llmc_err *err)
{
    char cursor[32] = "0";
    for (;;) {
        const char *av[6] = {"SCAN", cursor, "MATCH", pat, "COUNT", SCAN_COUNT};
        size_t al[6] = {4, strlen(cursor), 5, patlen, 5, strlen(SCAN_COUNT)};
        redisReply *r = NULL;
        llmc_status st =
            llmc__rc_node_cmd(n, 6, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
        if (st != LLMC_OK)
            return st;
        if (r->type == REDIS_REPLY_ERROR) {
            st = llmc__redis_error_reply(r, "SCAN", n->pool.cfg.label, x->tmpl.password, err);
            freeReplyObject(r);
            return st;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            return llmc_err_set(err, LLMC_EPROTO, 0, "redis at %s: unexpected reply to SCAN",
                                n->pool.cfg.label);
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = 0;
        redisReply *keys = r->element[1];
        if (unlink && keys->elements > 0) {
            st = unlink_page(x, n, keys, deleted, err);
            if (st != LLMC_OK) {
                freeReplyObject(r);
                return st;
            }
        } else if (cb) {
            for (size_t i = 0; i < keys->elements; i++) {
                redisReply *k = keys->element[i];
                if (k->type == REDIS_REPLY_STRING && cb(ud, k->str, k->len) != 0) {
                    *stop = 1;
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

static llmc_status over_masters(cctx *x, const char *pat, size_t patlen, int unlink,
                                uint64_t *deleted, llmc_scan_cb cb, void *ud, llmc_err *err)
{
    llmc__rc_maybe_periodic(x);
    size_t nm = 0;
    cnode **m = llmc__rc_masters_snapshot(x, &nm);
    if (!m)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (nm == 0) {
        /* No topology yet (the servers were down so far): learn it now
         * and go on with what it found. */
        free(m);
        llmc__rc_refresh(x, 0, NULL);
        m = llmc__rc_masters_snapshot(x, &nm);
        if (!m)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        if (nm == 0) {
            free(m);
            return no_masters(x, err);
        }
    }
    llmc_status st = LLMC_OK;
    int stop = 0;
    for (size_t i = 0; i < nm && !stop; i++) {
        st = scan_node(x, m[i], pat, patlen, unlink, deleted, cb, ud, &stop, err);
        if (st != LLMC_OK) {
            if (st == LLMC_ECONN || st == LLMC_ETIMEDOUT)
                llmc__rc_refresh(x, 0, NULL);
            break;
        }
    }
    free(m);
    return st;
}

static llmc_status c_flush(void *ctx, const char *ns, size_t nslen, uint64_t *deleted,
                           llmc_err *err)
{
    llmc_buf pat = LLMC_BUF_INIT;
    if (llmc__redis_match_pattern(&pat, ns, nslen, ":*") != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    uint64_t d = 0;
    llmc_status st = over_masters(ctx, pat.data, pat.len, 1, &d, NULL, NULL, err);
    llmc_buf_free(&pat);
    if (deleted)
        *deleted = d;
    return st;
}

static llmc_status c_scan(void *ctx, const char *prefix, size_t plen, llmc_scan_cb cb, void *ud,
                          llmc_err *err)
{
    llmc_buf pat = LLMC_BUF_INIT;
    if (llmc__redis_match_pattern(&pat, prefix ? prefix : "", prefix ? plen : 0, "*") != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = over_masters(ctx, pat.data, pat.len, 0, NULL, cb, ud, err);
    llmc_buf_free(&pat);
    return st;
}

/* The same command on every master; `want` is the expected reply type. */
static llmc_status all_masters(cctx *x, const char *cmd, int want, int64_t *sum, llmc_err *err)
{
    llmc__rc_maybe_periodic(x);
    size_t nm = 0;
    cnode **m = llmc__rc_masters_snapshot(x, &nm);
    if (!m)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (nm == 0) {
        /* No topology yet (the servers were down so far): learn it now
         * and go on with what it found. */
        free(m);
        llmc__rc_refresh(x, 0, NULL);
        m = llmc__rc_masters_snapshot(x, &nm);
        if (!m)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        if (nm == 0) {
            free(m);
            return no_masters(x, err);
        }
    }
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < nm && st == LLMC_OK; i++) {
        const char *av[1] = {cmd};
        size_t al[1] = {strlen(cmd)};
        redisReply *r = NULL;
        st = llmc__rc_node_cmd(m[i], 1, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
        if (st != LLMC_OK) {
            llmc__rc_refresh(x, 0, NULL);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR)
            st = llmc__redis_error_reply(r, cmd, m[i]->pool.cfg.label, x->tmpl.password, err);
        else if (r->type != want)
            st = llmc_err_set(err, LLMC_EPROTO, r->type, "redis at %s: unexpected reply to %s",
                              m[i]->pool.cfg.label, cmd);
        else if (sum && r->type == REDIS_REPLY_INTEGER)
            *sum += r->integer;
        freeReplyObject(r);
    }
    free(m);
    return st;
}

static llmc_status c_ping(void *ctx, llmc_err *err)
{
    return all_masters(ctx, "PING", REDIS_REPLY_STATUS, NULL, err);
}

/* ---- invalidation channel of the local tier ----
 * A PUBLISH on any node of a cluster reaches the subscribers of every
 * node (and a master's replicas relay its messages), so one master is
 * enough for either side; round robin spreads the subscribers. */

static _Atomic size_t pub_next;

static cnode *some_master(cctx *x, llmc_err *err)
{
    size_t nm = 0;
    cnode **m = llmc__rc_masters_snapshot(x, &nm);
    if (m && nm == 0) {
        free(m);
        llmc__rc_refresh(x, 0, NULL);
        m = llmc__rc_masters_snapshot(x, &nm);
    }
    if (!m) {
        llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        return NULL;
    }
    cnode *n = nm ? m[atomic_fetch_add(&pub_next, 1) % nm] : NULL;
    free(m);
    if (!n)
        no_masters(x, err);
    return n;
}

static llmc_status c_publish(void *ctx, const char *channel, const void *msg, size_t len,
                             llmc_err *err)
{
    cctx *x = ctx;
    cnode *n = some_master(x, err);
    if (!n)
        return err->status;
    const char *av[3] = {"PUBLISH", channel, msg};
    size_t al[3] = {7, strlen(channel), len};
    redisReply *r = NULL;
    llmc_status st = llmc__rc_node_cmd(n, 3, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
    if (st == LLMC_OK && r->type == REDIS_REPLY_ERROR)
        st = llmc__redis_error_reply(r, "PUBLISH", n->pool.cfg.label, x->tmpl.password, err);
    if (r)
        freeReplyObject(r);
    if (st == LLMC_ECONN || st == LLMC_ETIMEDOUT)
        llmc__rc_refresh(x, 0, NULL);
    return st;
}

static llmc_status c_subscribe(void *ctx, const char *channel, void **sub, llmc_err *err)
{
    cctx *x = ctx;
    cnode *n = some_master(x, err);
    if (!n)
        return err->status;
    llmc_status st = llmc__rsub_open(&n->pool.cfg, channel, (llmc_rsub **)sub, err);
    if (st == LLMC_ECONN || st == LLMC_ETIMEDOUT)
        llmc__rc_refresh(x, 0, NULL);
    return st;
}

static llmc_status c_flush_all(void *ctx, llmc_err *err)
{
    return all_masters(ctx, "FLUSHDB", REDIS_REPLY_STATUS, NULL, err);
}

static llmc_status c_stats(void *ctx, llmc_stat_cb cb, void *ud)
{
    cctx *x = ctx;
    size_t nn = 0, nm = 0;
    cnode **v = llmc__rc_nodes_snapshot(x, &nn);
    cnode **m = llmc__rc_masters_snapshot(x, &nm);
    int64_t open = 0, waits = 0, connects = 0, reconnects = 0, cfail = 0, broken = 0,
            timeouts = 0, retries = 0, requests = 0;
    for (size_t i = 0; v && i < nn; i++) {
        llmc_rpool *p = &v[i]->pool;
        pthread_mutex_lock(&p->lock);
        open += p->n_open;
        pthread_mutex_unlock(&p->lock);
        waits += (int64_t)p->waits;
        connects += (int64_t)p->connects;
        reconnects += (int64_t)p->reconnects;
        cfail += (int64_t)p->connect_failures;
        broken += (int64_t)p->broken;
        timeouts += (int64_t)p->timeouts;
        retries += (int64_t)p->retries;
        requests += (int64_t)p->commands;
    }
    size_t covered = 0;
    for (size_t s = 0; s < NSLOTS; s++)
        covered += atomic_load(&x->slots[s]) != NULL;
    cb(ud, "nodes", (int64_t)nn);
    cb(ud, "masters", (int64_t)nm);
    cb(ud, "slots_covered", (int64_t)covered);
    cb(ud, "pool_size", x->pool_size);
    cb(ud, "pool_open", open);
    cb(ud, "pool_waits", waits);
    cb(ud, "connects", connects);
    cb(ud, "reconnects", reconnects);
    cb(ud, "connect_failures", cfail);
    cb(ud, "broken_connections", broken);
    cb(ud, "timeouts", timeouts);
    cb(ud, "retries", retries);
    cb(ud, "requests", requests);
    cb(ud, "redirects_moved", (int64_t)x->moved);
    cb(ud, "redirects_ask", (int64_t)x->ask);
    cb(ud, "redirects", (int64_t)(x->moved + x->ask));
    cb(ud, "tryagain", (int64_t)x->tryagain);
    cb(ud, "retry_waits", (int64_t)x->retry_waits);
    cb(ud, "batch_fallbacks", (int64_t)x->fallbacks);
    cb(ud, "refreshes", (int64_t)x->refreshes);
    cb(ud, "refresh_failures", (int64_t)x->refresh_failures);
    if (x->mode == MODE_SENTINEL) {
        cb(ud, "sentinels", (int64_t)x->n_sentinels);
        cb(ud, "master_changes", (int64_t)x->master_changes);
        if (nm == 1)
            cb(ud, "master_port", m[0]->port);
    }
    free(v);
    free(m);
    /* Best effort: keys over all masters. */
    int64_t keys = 0;
    llmc_err e;
    if (all_masters(x, "DBSIZE", REDIS_REPLY_INTEGER, &keys, &e) == LLMC_OK)
        cb(ud, "dbsize", keys);
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* open / close */

static void c_close(void *ctx)
{
    cctx *x = ctx;
    if (!x)
        return;
    for (size_t i = 0; i < x->n_nodes; i++) {
        llmc__rpool_destroy(&x->nodes[i]->pool);
        free(x->nodes[i]->host);
        free(x->nodes[i]);
    }
    free(x->nodes);
    for (size_t i = 0; i < x->n_sentinels; i++)
        llmc__rnode_cfg_free(&x->sentinels[i]);
    free(x->sentinels);
    free(x->master_name);
    free(x->tls_server_name);
    llmc__rnode_cfg_free(&x->tmpl);
    pthread_mutex_destroy(&x->nodes_lock);
    pthread_mutex_destroy(&x->refresh_lock);
    free(x);
}

static llmc_status open_common(const llmc_backend_config *cfg, int mode, void **out,
                               llmc_err *err)
{
    *out = NULL;
    const char *what = mode == MODE_CLUSTER ? "redis-cluster" : "redis-sentinel";
    const llmc_options *o = cfg->options;
    llmc_status st;
    if (cfg->n_hosts == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            mode == MODE_CLUSTER
                                ? "redis-cluster: no node address (redis-cluster://host:port"
                                  "[,host:port...])"
                                : "redis-sentinel: no sentinel address "
                                  "(redis-sentinel://host:26379[,host:port...]/master-name)");
    cctx *x = calloc(1, sizeof *x);
    if (!x)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    x->mode = mode;
    pthread_mutex_init(&x->nodes_lock, NULL);
    pthread_mutex_init(&x->refresh_lock, NULL);

    int tls = cfg->scheme && strncmp(cfg->scheme, "rediss", 6) == 0;
    int tls_opt = 0;
    if ((st = llmc_options_get_bool(o, "tls", tls, &tls_opt, err)) != LLMC_OK)
        goto fail;
    if (tls && !tls_opt) {
        st = llmc_err_set(err, LLMC_EINVAL, 0, "%s: tls=0 contradicts the %s:// scheme", what,
                          cfg->scheme);
        goto fail;
    }
    tls = tls_opt;
    llmc_ropts ro = {o, NULL};
    if ((st = llmc__redis_conn_options(what, &ro, tls,
                                       mode == MODE_CLUSTER ? "rediss-cluster:// or tls=1"
                                                            : "rediss-sentinel:// or tls=1",
                                       cfg->timeout_ms, cfg->user, cfg->password, &x->tmpl,
                                       &x->pool_size, err)) != LLMC_OK)
        goto fail;
    /* Nodes are learnt later: each gets its own copy of the SNI name. */
    x->tls_server_name = x->tmpl.tls_server_name;
    x->tmpl.tls_server_name = NULL;
    x->cmd_ms = x->tmpl.command_timeout_ms;
    int64_t db = 0;
    if ((st = llmc_options_get_i64(o, "refresh_interval_ms", 0, 86400000, DEFAULT_REFRESH_MS,
                                   &x->refresh_ms, err)) != LLMC_OK)
        goto fail;

    const char *path = cfg->path ? cfg->path : "";
    while (*path == '/')
        path++;
    int default_port = mode == MODE_CLUSTER ? DEFAULT_CLUSTER_PORT : DEFAULT_SENTINEL_PORT;
    if (mode == MODE_CLUSTER) {
        /* Redis Cluster has only database 0. */
        if (*path && strcmp(path, "0") != 0) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-cluster: a cluster has only database 0 (URL path '/%s')",
                              path);
            goto fail;
        }
        for (size_t i = 0; i < cfg->n_hosts; i++) {
            int port = cfg->hosts[i].port > 0 ? cfg->hosts[i].port : default_port;
            if (!llmc__rc_get_node(x, cfg->hosts[i].host, port, err)) {
                st = LLMC_ENOMEM;
                goto fail;
            }
        }
    } else {
        const char *mo = llmc_options_get(o, "master_name");
        if (*path && mo && strcmp(path, mo) != 0) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-sentinel: master name given twice ('%s' in the URL path, "
                              "master_name=%s)",
                              path, mo);
            goto fail;
        }
        const char *mn = *path ? path : mo;
        if (!mn || !*mn) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-sentinel: no master name "
                              "(redis-sentinel://host:26379/master-name)");
            goto fail;
        }
        if (strchr(mn, '/')) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-sentinel: bad master name '%s' (give the database with "
                              "option db=N)",
                              mn);
            goto fail;
        }
        x->master_name = llmc__strdup(mn);
        if ((st = llmc_options_get_i64(o, "db", 0, INT_MAX, 0, &db, err)) != LLMC_OK)
            goto fail;
        x->tmpl.db = (int)db;
        x->sentinels = calloc(cfg->n_hosts, sizeof *x->sentinels);
        if (!x->sentinels || !x->master_name) {
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            goto fail;
        }
        const char *su = llmc_options_get(o, "sentinel_user");
        const char *sp = llmc_options_get(o, "sentinel_password");
        for (size_t i = 0; i < cfg->n_hosts; i++) {
            llmc_rnode_cfg *sc = &x->sentinels[i];
            int port = cfg->hosts[i].port > 0 ? cfg->hosts[i].port : default_port;
            char label[300];
            llmc__rc_node_label(label, sizeof label, cfg->hosts[i].host, port, tls);
            sc->host = llmc__strdup(cfg->hosts[i].host);
            sc->port = port;
            sc->label = llmc__strdup(label);
            sc->ssl_ctx = x->tmpl.ssl_ctx;
            if (sc->ssl_ctx)
                SSL_CTX_up_ref(sc->ssl_ctx);
            sc->tls_verify = x->tmpl.tls_verify;
            sc->tls_server_name = x->tls_server_name ? llmc__strdup(x->tls_server_name) : NULL;
            sc->user = su && *su ? llmc__strdup(su) : NULL;
            sc->password = sp ? llmc__strdup(sp) : NULL;
            sc->connect_timeout_ms = x->tmpl.connect_timeout_ms;
            sc->command_timeout_ms = x->tmpl.command_timeout_ms;
            x->n_sentinels++;
            if (!sc->host || !sc->label) {
                st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
                goto fail;
            }
        }
    }
    /* Learn the topology now, so a wrong password or master name fails
     * the open with a clear message. When no node or sentinel can be
     * reached the handle opens anyway with an empty slot table: every
     * call refreshes it (rate-limited), so the cache is used as soon as
     * the servers answer. */
    st = llmc__rc_refresh(x, 1, err);
    if (llmc__redis_unreachable(st)) {
        llmc__log("warn", "%s; opened anyway, the cache is used once the servers answer",
                  err && err->msg[0] ? err->msg : llmc_strerror(st));
        llmc_err_clear(err);
    } else if (st != LLMC_OK) {
        goto fail;
    }
    *out = x;
    return LLMC_OK;
fail:
    c_close(x);
    return st;
}

static llmc_status cluster_open(const llmc_backend_config *cfg, void **out, llmc_err *err)
{
    return open_common(cfg, MODE_CLUSTER, out, err);
}

static llmc_status sentinel_open(const llmc_backend_config *cfg, void **out, llmc_err *err)
{
    return open_common(cfg, MODE_SENTINEL, out, err);
}

#define REDIS_CAPS                                                                         \
    (LLMC_CAP_TTL | LLMC_CAP_BATCH | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE |        \
     LLMC_CAP_PERSISTENT | LLMC_CAP_DISTRIBUTED | LLMC_CAP_SCAN | LLMC_CAP_REMOTE)

const llmc_backend_ops llmc__backend_redis_cluster = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "redis-cluster",
                               "Redis Cluster (slot routing, MOVED/ASK, pooled per node)"),
    .schemes = cluster_schemes,
    .options = cluster_options,
    .caps = REDIS_CAPS,
    .open = cluster_open,
    .close = c_close,
    .get = llmc__rc_get,
    .set = llmc__rc_set,
    .del = llmc__rc_del,
    .exists = c_exists,
    .mget = llmc__rc_mget,
    .mset = llmc__rc_mset,
    .flush = c_flush,
    .flush_all = c_flush_all,
    .ping = c_ping,
    .stats = c_stats,
    .scan = c_scan,
    .ttl = c_ttl,
    .publish = c_publish,
    .subscribe = c_subscribe,
    .sub_poll = llmc__rsub_poll,
    .sub_ping = llmc__rsub_ping,
    .sub_close = llmc__rsub_close,
    .lease_acquire = c_lease_acquire,
    .lease_release = c_lease_release,
    .lease_renew = c_lease_renew,
};

const llmc_backend_ops llmc__backend_redis_sentinel = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "redis-sentinel",
                               "Redis behind Sentinel (follows failovers)"),
    .schemes = sentinel_schemes,
    .options = sentinel_options,
    .caps = REDIS_CAPS,
    .open = sentinel_open,
    .close = c_close,
    .get = llmc__rc_get,
    .set = llmc__rc_set,
    .del = llmc__rc_del,
    .exists = c_exists,
    .mget = llmc__rc_mget,
    .mset = llmc__rc_mset,
    .flush = c_flush,
    .flush_all = c_flush_all,
    .ping = c_ping,
    .stats = c_stats,
    .scan = c_scan,
    .ttl = c_ttl,
    .publish = c_publish,
    .subscribe = c_subscribe,
    .sub_poll = llmc__rsub_poll,
    .sub_ping = llmc__rsub_ping,
    .sub_close = llmc__rsub_close,
    .lease_acquire = c_lease_acquire,
    .lease_release = c_lease_release,
    .lease_renew = c_lease_renew,
};
