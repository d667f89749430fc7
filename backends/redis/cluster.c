/* Redis Cluster and Redis Sentinel backends (issue 8), on top of the
 * connection layer in conn.c (one llmc_rpool per node).
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
 * Lifetime: nodes are only ever added while a context lives (a cluster
 * has few distinct addresses), so a node pointer read from the slot table
 * stays valid without a lock; the slots themselves are atomic pointers. */
#include "builtins.h"
#include "conn.h"
#include "connopts.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSLOTS 16384
#define DEFAULT_CLUSTER_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379
#define DEFAULT_REFRESH_MS 10000
/* An error-triggered topology refresh runs at most this often: during a
 * failover every request fails, and one refresh per request would turn
 * that into a storm against the surviving nodes. */
#define MIN_REFRESH_GAP_MS 100
#define MAX_HOPS 16
#define SCAN_COUNT "1000"
#define BATCH_CHUNK 512

enum { MODE_CLUSTER = 0, MODE_SENTINEL = 1 };

typedef struct cnode {
    char *host;
    int port;
    size_t idx;
    llmc_rpool pool;
} cnode;

typedef struct cctx {
    int mode;
    llmc_rnode_cfg tmpl;      /* auth, TLS, timeouts; host/port/label unset */
    int pool_size;
    int64_t cmd_ms;
    int64_t refresh_ms;       /* periodic refresh interval, 0 = off */
    char *tls_server_name;    /* explicit SNI, or NULL: each node's host */

    /* sentinel mode */
    char *master_name;
    llmc_rnode_cfg *sentinels; /* one config per sentinel address */
    size_t n_sentinels;
    _Atomic size_t sentinel_next;

    pthread_mutex_t nodes_lock;
    cnode **nodes;
    size_t n_nodes, cap_nodes;
    _Atomic size_t refresh_next;

    _Atomic(cnode *) slots[NSLOTS];

    pthread_mutex_t refresh_lock;
    _Atomic uint64_t last_refresh_try_ns, next_periodic_ns;
    llmc_err last_refresh_err; /* under refresh_lock */

    _Atomic uint64_t moved, ask, tryagain, retry_waits, refreshes, refresh_failures,
        master_changes, fallbacks;
} cctx;

static const char *const cluster_schemes[] = {"redis-cluster", "rediss-cluster", NULL};
static const char *const sentinel_schemes[] = {"redis-sentinel", "rediss-sentinel", NULL};
static const char *const cluster_options[] = {LLMC_REDIS_CONN_OPTION_NAMES, "tls",
                                              "refresh_interval_ms", NULL};
static const char *const sentinel_options[] = {
    LLMC_REDIS_CONN_OPTION_NAMES, "tls", "refresh_interval_ms", "db", "sentinel_user",
    "sentinel_password", "master_name", NULL};

/* ------------------------------------------------------------------ */
/* hash slots: CRC16 (XMODEM: poly 0x1021, init 0) of the key, or of its
 * hash tag (the part between the first '{' and the next '}' when that
 * part is not empty), mod 16384. */

static uint16_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
}

static uint16_t crc16(const char *s, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++)
        c = (uint16_t)((c << 8) ^ crc_table[((c >> 8) ^ (uint8_t)s[i]) & 0xff]);
    return c;
}

unsigned llmc__redis_key_slot(const char *key, size_t klen)
{
    pthread_once(&crc_once, crc_init);
    const char *open = memchr(key, '{', klen);
    if (open) {
        size_t start = (size_t)(open - key) + 1;
        const char *close = memchr(key + start, '}', klen - start);
        if (close && close > key + start)
            return crc16(key + start, (size_t)(close - (key + start))) & (NSLOTS - 1);
    }
    return crc16(key, klen) & (NSLOTS - 1);
}

/* ------------------------------------------------------------------ */
/* nodes */

static void node_label(char *buf, size_t n, const char *host, int port, int tls)
{
    if (strchr(host, ':'))
        snprintf(buf, n, "[%s]:%d%s", host, port, tls ? " (tls)" : "");
    else
        snprintf(buf, n, "%s:%d%s", host, port, tls ? " (tls)" : "");
}

/* Find or add the node host:port. NULL only when out of memory. */
static cnode *get_node(cctx *x, const char *host, int port, llmc_err *err)
{
    pthread_mutex_lock(&x->nodes_lock);
    for (size_t i = 0; i < x->n_nodes; i++)
        if (x->nodes[i]->port == port && strcmp(x->nodes[i]->host, host) == 0) {
            cnode *n = x->nodes[i];
            pthread_mutex_unlock(&x->nodes_lock);
            return n;
        }
    cnode *n = NULL;
    if (x->n_nodes == x->cap_nodes) {
        size_t cap = x->cap_nodes ? x->cap_nodes * 2 : 8;
        cnode **p = realloc(x->nodes, cap * sizeof *p);
        if (!p)
            goto oom;
        x->nodes = p;
        x->cap_nodes = cap;
    }
    n = calloc(1, sizeof *n);
    if (!n || !(n->host = llmc__strdup(host)))
        goto oom;
    n->port = port;
    llmc_rnode_cfg nc = x->tmpl;
    char label[300];
    node_label(label, sizeof label, host, port, x->tmpl.ssl_ctx != NULL);
    nc.host = n->host;
    nc.port = port;
    nc.label = label;
    nc.tls_server_name = x->tls_server_name;
    if (llmc__rpool_init(&n->pool, &nc, x->pool_size, err) != LLMC_OK)
        goto fail;
    n->idx = x->n_nodes;
    x->nodes[x->n_nodes++] = n;
    pthread_mutex_unlock(&x->nodes_lock);
    return n;
oom:
    llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
fail:
    if (n)
        free(n->host);
    free(n);
    pthread_mutex_unlock(&x->nodes_lock);
    return NULL;
}

/* Copy of the node list (caller frees). */
static cnode **nodes_snapshot(cctx *x, size_t *n)
{
    pthread_mutex_lock(&x->nodes_lock);
    cnode **v = malloc((x->n_nodes ? x->n_nodes : 1) * sizeof *v);
    *n = 0;
    if (v) {
        memcpy(v, x->nodes, x->n_nodes * sizeof *v);
        *n = x->n_nodes;
    }
    pthread_mutex_unlock(&x->nodes_lock);
    return v;
}

/* The distinct nodes that own slots (the masters), caller frees. */
static cnode **masters_snapshot(cctx *x, size_t *n)
{
    size_t cap = 0;
    pthread_mutex_lock(&x->nodes_lock);
    cap = x->n_nodes;
    pthread_mutex_unlock(&x->nodes_lock);
    cnode **v = malloc((cap ? cap : 1) * sizeof *v);
    unsigned char *seen = calloc(cap ? cap : 1, 1);
    *n = 0;
    if (!v || !seen) {
        free(v);
        free(seen);
        return NULL;
    }
    for (size_t s = 0; s < NSLOTS; s++) {
        cnode *m = atomic_load_explicit(&x->slots[s], memory_order_acquire);
        if (m && m->idx < cap && !seen[m->idx]) {
            seen[m->idx] = 1;
            v[(*n)++] = m;
        }
    }
    free(seen);
    return v;
}

static int backing_off(cnode *n)
{
    pthread_mutex_lock(&n->pool.lock);
    int r = llmc_mono_ns() < n->pool.next_connect_ns;
    pthread_mutex_unlock(&n->pool.lock);
    return r;
}

/* One command on a node's pool (retried once on a fresh connection when
 * a reused one had gone stale). */
static llmc_status node_cmd(cnode *n, int argc, const char *const *argv, const size_t *lens,
                            uint64_t deadline, redisReply **reply, llmc_err *err)
{
    for (int attempt = 0;; attempt++) {
        llmc_rconn *c = NULL;
        int fresh = 0;
        llmc_status st = llmc__rpool_acquire(&n->pool, deadline, &c, &fresh, err);
        if (st != LLMC_OK)
            return st;
        uint64_t rx0 = llmc__rconn_rx_bytes(c);
        st = llmc__rconn_command(c, argc, argv, lens, deadline, reply, err);
        n->pool.commands++;
        int retry = st == LLMC_ECONN && attempt == 0 && !fresh && llmc__rconn_broken(c) &&
                    llmc__rconn_rx_bytes(c) == rx0;
        llmc__rpool_release(&n->pool, c);
        if (!retry)
            return st;
        n->pool.retries++;
    }
}

static int reply_is(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->type == REDIS_REPLY_ERROR && r->str && r->len >= n &&
           memcmp(r->str, prefix, n) == 0;
}

/* ------------------------------------------------------------------ */
/* topology */

static int slot_int(const redisReply *r, long long *v)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return -1;
    *v = r->integer;
    return 0;
}

/* CLUSTER SLOTS from node `from`: fill `map` (unset slots stay NULL). */
static llmc_status cluster_slots_from(cctx *x, cnode *from, cnode **map, llmc_err *err)
{
    const char *av[2] = {"CLUSTER", "SLOTS"};
    size_t al[2] = {7, 5};
    redisReply *r = NULL;
    llmc_status st = node_cmd(from, 2, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
    if (st != LLMC_OK)
        return st;
    if (r->type == REDIS_REPLY_ERROR) {
        if (r->str && strstr(r->str, "cluster support disabled"))
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-cluster: %s is not a cluster node (cluster support "
                              "disabled): use a redis:// URL for a single server",
                              from->pool.cfg.label);
        else
            st = llmc__redis_error_reply(r, "CLUSTER SLOTS", from->pool.cfg.label,
                                         x->tmpl.password, err);
        freeReplyObject(r);
        return st;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        st = llmc_err_set(err, LLMC_EPROTO, r->type,
                          "redis-cluster: unexpected reply type %d to CLUSTER SLOTS from %s",
                          r->type, from->pool.cfg.label);
        freeReplyObject(r);
        return st;
    }
    size_t covered = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        long long lo, hi, port;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || slot_int(e->element[0], &lo) ||
            slot_int(e->element[1], &hi) || lo < 0 || hi >= NSLOTS || lo > hi)
            continue;
        redisReply *m = e->element[2];
        if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            m->element[0]->type != REDIS_REPLY_STRING || slot_int(m->element[1], &port) ||
            port <= 0 || port > 65535)
            continue;
        /* An empty endpoint means "the address you reached me on"; "?"
         * means unknown. */
        const char *host = m->element[0]->str;
        if (!*host)
            host = from->host;
        else if (strcmp(host, "?") == 0)
            continue;
        cnode *n = get_node(x, host, (int)port, err);
        if (!n) {
            freeReplyObject(r);
            return LLMC_ENOMEM;
        }
        for (long long s = lo; s <= hi; s++)
            map[s] = n;
        /* Remember the replicas too: they can answer CLUSTER SLOTS when
         * their master is down. */
        for (size_t k = 3; k < e->elements; k++) {
            redisReply *rp = e->element[k];
            long long rport;
            if (rp->type == REDIS_REPLY_ARRAY && rp->elements >= 2 &&
                rp->element[0]->type == REDIS_REPLY_STRING &&
                !slot_int(rp->element[1], &rport) && rport > 0 && rport < 65536 &&
                strcmp(rp->element[0]->str, "?") != 0)
                get_node(x, *rp->element[0]->str ? rp->element[0]->str : from->host,
                         (int)rport, NULL);
        }
        covered += (size_t)(hi - lo + 1);
    }
    freeReplyObject(r);
    if (covered == 0)
        return llmc_err_set(err, LLMC_EBACKEND, 0,
                            "redis-cluster: %s serves no slots (the cluster is not set up yet: "
                            "redis-cli --cluster create)",
                            from->pool.cfg.label);
    return LLMC_OK;
}

static llmc_status cluster_refresh(cctx *x, cnode **map, llmc_err *err)
{
    size_t n = 0;
    cnode **v = nodes_snapshot(x, &n);
    if (!v)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc_err_set(err, LLMC_ECONN, 0, "redis-cluster: no node known");
    /* Start somewhere else each time, and ask nodes that are backing off
     * (just failed) last, so a dead node does not slow refreshes down. */
    size_t start = atomic_fetch_add(&x->refresh_next, 1);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            cnode *node = v[(start + k) % n];
            if (backing_off(node) != (pass == 1))
                continue;
            memset(map, 0, NSLOTS * sizeof *map);
            st = cluster_slots_from(x, node, map, err);
            if (st == LLMC_OK || st == LLMC_EINVAL || st == LLMC_EAUTH || st == LLMC_ENOMEM)
                goto out;
        }
    }
out:
    free(v);
    return st;
}

static llmc_status sentinel_refresh(cctx *x, cnode **map, llmc_err *err)
{
    llmc_status st = LLMC_ECONN;
    size_t start = atomic_load(&x->sentinel_next);
    for (size_t k = 0; k < x->n_sentinels; k++) {
        size_t si = (start + k) % x->n_sentinels;
        const llmc_rnode_cfg *sc = &x->sentinels[si];
        llmc_rconn *c = NULL;
        uint64_t dl = llmc__deadline_after_ms(sc->connect_timeout_ms);
        st = llmc__rconn_open(sc, dl, &c, err);
        if (st != LLMC_OK)
            continue;
        const char *av[3] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", x->master_name};
        size_t al[3] = {8, 23, strlen(x->master_name)};
        redisReply *r = NULL;
        st = llmc__rconn_command(c, 3, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
        llmc__rconn_close(c);
        if (st != LLMC_OK)
            continue;
        if (r->type == REDIS_REPLY_NIL) {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "redis-sentinel: sentinel %s does not know a master named '%s'",
                              sc->label, x->master_name);
            freeReplyObject(r);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            st = llmc__redis_error_reply(r, "SENTINEL GET-MASTER-ADDR-BY-NAME", sc->label,
                                         sc->password, err);
            freeReplyObject(r);
            continue;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING) {
            st = llmc_err_set(err, LLMC_EPROTO, r->type,
                              "redis-sentinel: unexpected reply to SENTINEL "
                              "GET-MASTER-ADDR-BY-NAME from %s",
                              sc->label);
            freeReplyObject(r);
            continue;
        }
        int64_t port;
        llmc_err perr;
        if (llmc_parse_i64(r->element[1]->str, "port", 1, 65535, &port, &perr) != LLMC_OK) {
            st = llmc_err_set(err, LLMC_EPROTO, 0, "redis-sentinel: %s gave a bad port",
                              sc->label);
            freeReplyObject(r);
            continue;
        }
        cnode *m = get_node(x, r->element[0]->str, (int)port, err);
        freeReplyObject(r);
        if (!m)
            return LLMC_ENOMEM;
        /* The sentinels may lag behind a failover: make sure the node
         * really is a master before sending writes to it. */
        const char *rv[1] = {"ROLE"};
        size_t rl[1] = {4};
        st = node_cmd(m, 1, rv, rl, llmc__deadline_after_ms(x->cmd_ms), &r, err);
        if (st != LLMC_OK)
            continue;
        if (r->type == REDIS_REPLY_ERROR) {
            st = llmc__redis_error_reply(r, "ROLE", m->pool.cfg.label, x->tmpl.password, err);
            freeReplyObject(r);
            if (st == LLMC_EAUTH)
                return st;
            continue;
        }
        int is_master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                        r->element[0]->type == REDIS_REPLY_STRING &&
                        strcmp(r->element[0]->str, "master") == 0;
        freeReplyObject(r);
        if (!is_master) {
            st = llmc_err_set(err, LLMC_ECONN, 0,
                              "redis-sentinel: %s (named master of '%s' by sentinel %s) is not "
                              "a master (failover in progress?)",
                              m->pool.cfg.label, x->master_name, sc->label);
            continue;
        }
        for (size_t s = 0; s < NSLOTS; s++)
            map[s] = m;
        atomic_store(&x->sentinel_next, si);
        return LLMC_OK;
    }
    if (x->n_sentinels == 0)
        st = llmc_err_set(err, LLMC_EINVAL, 0, "redis-sentinel: no sentinel address");
    return st;
}

/* Refresh the slot table. force: ignore the rate limit (open). Does not
 * wait for a refresh another thread is running. Returns LLMC_OK when this
 * call refreshed successfully. */
static llmc_status refresh(cctx *x, int force, llmc_err *err)
{
    uint64_t now = llmc_mono_ns();
    if (!force &&
        now - atomic_load(&x->last_refresh_try_ns) < (uint64_t)MIN_REFRESH_GAP_MS * 1000000ull)
        return LLMC_EBUSY;
    if (force)
        pthread_mutex_lock(&x->refresh_lock);
    else if (pthread_mutex_trylock(&x->refresh_lock) != 0)
        return LLMC_EBUSY;
    atomic_store(&x->last_refresh_try_ns, now);
    cnode **map = calloc(NSLOTS, sizeof *map);
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st;
    if (!map)
        st = llmc_err_set(&e, LLMC_ENOMEM, 0, "out of memory");
    else
        st = x->mode == MODE_CLUSTER ? cluster_refresh(x, map, &e) : sentinel_refresh(x, map, &e);
    if (st == LLMC_OK) {
        cnode *old0 = atomic_load(&x->slots[0]);
        for (size_t s = 0; s < NSLOTS; s++)
            atomic_store_explicit(&x->slots[s], map[s], memory_order_release);
        if (x->mode == MODE_SENTINEL && old0 && old0 != map[0])
            x->master_changes++;
        x->refreshes++;
        if (x->refresh_ms > 0)
            atomic_store(&x->next_periodic_ns,
                         llmc_mono_ns() + (uint64_t)x->refresh_ms * 1000000ull);
    } else {
        x->refresh_failures++;
        x->last_refresh_err = e;
    }
    pthread_mutex_unlock(&x->refresh_lock);
    free(map);
    if (st != LLMC_OK && err)
        *err = e;
    return st;
}

static void maybe_periodic(cctx *x)
{
    if (x->refresh_ms <= 0)
        return;
    uint64_t due = atomic_load(&x->next_periodic_ns);
    if (due && llmc_mono_ns() >= due)
        refresh(x, 0, NULL);
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* single-key requests with redirects */

/* Runs one request on connection c. A Redis error reply is handed back
 * in *er (the caller owns it) with LLMC_EBACKEND, so the router can
 * follow MOVED/ASK; other failures fill err. */
typedef llmc_status (*kfn)(cctx *x, llmc_rconn *c, uint64_t deadline, void *ud, redisReply **er,
                           llmc_err *err);

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the target node. */
static cnode *redirect_target(cctx *x, const redisReply *r, cnode *from, unsigned *slot)
{
    const char *p = strchr(r->str, ' ');
    if (!p)
        return NULL;
    char *end;
    unsigned long s = strtoul(p + 1, &end, 10);
    if (end == p + 1 || *end != ' ' || s >= NSLOTS)
        return NULL;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return NULL;
    long port = strtol(colon + 1, &end, 10);
    if (port <= 0 || port > 65535)
        return NULL;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return NULL;
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (hl == 0)
        snprintf(host, sizeof host, "%s", from->host);
    *slot = (unsigned)s;
    return get_node(x, host, (int)port, NULL);
}

static llmc_status run_key(cctx *x, const char *key, size_t klen, const char *what, kfn fn,
                           void *ud, llmc_err *err)
{
    maybe_periodic(x);
    unsigned slot = llmc__redis_key_slot(key, klen);
    uint64_t deadline = llmc__deadline_after_ms(x->cmd_ms);
    cnode *ask = NULL;
    llmc_status last = LLMC_ECONN;
    int stale_retry = 0;
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        cnode *n = ask ? ask : atomic_load_explicit(&x->slots[slot], memory_order_acquire);
        if (!n) {
            refresh(x, 0, NULL);
            n = atomic_load(&x->slots[slot]);
            if (!n) {
                if (llmc_mono_ns() + 20000000ull < deadline) {
                    pause_ms(20);
                    continue;
                }
                return llmc_err_set(err, LLMC_ECONN, 0,
                                    "redis-%s: no node serves hash slot %u (cluster down or "
                                    "failover in progress)",
                                    x->mode == MODE_CLUSTER ? "cluster" : "sentinel", slot);
            }
        }
        llmc_rconn *c = NULL;
        int fresh = 0;
        llmc_status st = llmc__rpool_acquire(&n->pool, deadline, &c, &fresh, err);
        redisReply *er = NULL;
        int retry_stale = 0;
        if (st == LLMC_OK) {
            uint64_t rx0 = llmc__rconn_rx_bytes(c);
            if (ask) {
                /* One-shot: the next command on this connection may touch
                 * the importing slot. */
                const char *av[1] = {"ASKING"};
                size_t al[1] = {6};
                redisReply *r = NULL;
                st = llmc__rconn_command(c, 1, av, al, deadline, &r, err);
                if (st == LLMC_OK)
                    freeReplyObject(r);
            }
            if (st == LLMC_OK)
                st = fn(x, c, deadline, ud, &er, err);
            n->pool.commands++;
            retry_stale = st == LLMC_ECONN && !fresh && !stale_retry && llmc__rconn_broken(c) &&
                          llmc__rconn_rx_bytes(c) == rx0;
            if (st == LLMC_ETIMEDOUT)
                n->pool.timeouts++;
            llmc__rpool_release(&n->pool, c);
        }
        if (!er) {
            if (st == LLMC_OK || st == LLMC_MISS)
                return st;
            if (retry_stale) {
                /* The connection went stale while idle: once more on a
                 * new one (every request here is idempotent). */
                stale_retry = 1;
                n->pool.retries++;
                hop--;
                continue;
            }
            if (st != LLMC_ECONN && st != LLMC_ETIMEDOUT)
                return st;
            /* The node is unreachable: maybe the topology changed (a
             * failover). Retry only if the slot now points elsewhere, so
             * errors come back fast while the cluster still lists the
             * dead master. */
            ask = NULL;
            refresh(x, 0, NULL);
            cnode *now = atomic_load(&x->slots[slot]);
            if (now && now != n && llmc_mono_ns() < deadline)
                continue;
            return st;
        }
        /* Redirects and transient cluster states. */
        unsigned rslot;
        cnode *to;
        if (reply_is(er, "MOVED ") && (to = redirect_target(x, er, n, &rslot))) {
            freeReplyObject(er);
            x->moved++;
            atomic_store(&x->slots[rslot], to);
            ask = NULL;
            /* A MOVED usually means a whole range moved: refresh (rate
             * limited) so the other slots follow without one MOVED each. */
            refresh(x, 0, NULL);
            atomic_store(&x->slots[rslot], to);
            continue;
        }
        if (reply_is(er, "ASK ") && (to = redirect_target(x, er, n, &rslot))) {
            freeReplyObject(er);
            x->ask++;
            ask = to;
            continue;
        }
        int wait_ms = 0, down = 0;
        if (reply_is(er, "TRYAGAIN")) {
            /* A multi-key request during a slot migration: it resolves in
             * moments. */
            x->tryagain++;
            wait_ms = 10;
        } else if (reply_is(er, "CLUSTERDOWN") || reply_is(er, "READONLY") ||
                   reply_is(er, "MASTERDOWN") || reply_is(er, "LOADING")) {
            down = 1;
        }
        last = llmc__redis_error_reply(er, what, n->pool.cfg.label, x->tmpl.password, err);
        freeReplyObject(er);
        ask = NULL;
        if (down) {
            /* A failover is under way, or this is a demoted master: look
             * again and retry at once if the slot moved to another node;
             * otherwise fail fast (a cache must not make callers wait for
             * a failover to finish). */
            refresh(x, 0, NULL);
            cnode *now = atomic_load(&x->slots[slot]);
            if (now && now != n && llmc_mono_ns() < deadline)
                continue;
            return last;
        }
        if (!wait_ms || llmc_mono_ns() + (uint64_t)wait_ms * 1000000ull >= deadline)
            return last;
        x->retry_waits++;
        pause_ms(wait_ms);
    }
    return llmc_err_set(err, last == LLMC_OK ? LLMC_EBACKEND : last, 0,
                        "redis-%s: too many redirects for one request (%s)",
                        x->mode == MODE_CLUSTER ? "cluster" : "sentinel", what);
}

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

static llmc_status c_get(void *ctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    get_req q = {key, klen, out};
    return run_key(ctx, key, klen, "GET", get_fn, &q, err);
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
    llmc_status st = run_key(x, key, klen, av[0], simple_fn, &q, err);
    if (st != LLMC_OK)
        return st;
    if (q.type != want)
        return llmc_err_set(err, LLMC_EPROTO, q.type,
                            "redis-cluster: unexpected reply type %d to %s", q.type, av[0]);
    if (out)
        *out = q.integer;
    return LLMC_OK;
}

static llmc_status c_set(void *ctx, const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms, llmc_err *err)
{
    const char *av[5];
    size_t al[5];
    char px[24];
    int n = llmc__redis_set_args(av, al, px, sizeof px, key, klen, val, vlen, ttl_ms);
    return run_simple(ctx, key, klen, n, av, al, REDIS_REPLY_STATUS, NULL, err);
}

static llmc_status c_del(void *ctx, const char *key, size_t klen, llmc_err *err)
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
/* batches: keys grouped by node, and within a node by slot; each node's
 * commands are pipelined, and all nodes are written to before any reply
 * is read, so the nodes work in parallel. A key whose reply is a
 * redirect or an error of the cluster (or whose node failed) is retried
 * alone through run_key, which follows MOVED/ASK: no CROSSSLOT and no
 * redirect ever reaches the caller. */

typedef struct bkey {
    size_t i;       /* index in the caller's arrays */
    unsigned slot;
    cnode *node;
} bkey;

static int bkey_cmp(const void *a, const void *b)
{
    const bkey *x = a, *y = b;
    uintptr_t nx = (uintptr_t)x->node, ny = (uintptr_t)y->node;
    if (nx != ny)
        return nx < ny ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

typedef struct bgroup {
    cnode *node;
    size_t start, end; /* range in the sorted bkey array */
    llmc_rconn *c;
    int sent;
} bgroup;

/* Sort keys by node and slot and cut them into node groups. */
static llmc_status plan(cctx *x, size_t n, const char *const *keys, const size_t *klens,
                        bkey **pk, bgroup **pg, size_t *ng, llmc_err *err)
{
    maybe_periodic(x);
    bkey *k = malloc(n * sizeof *k);
    bgroup *g = calloc(n, sizeof *g);
    if (!k || !g) {
        free(k);
        free(g);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        k[i].i = i;
        k[i].slot = llmc__redis_key_slot(keys[i], klens[i]);
        k[i].node = atomic_load_explicit(&x->slots[k[i].slot], memory_order_acquire);
    }
    qsort(k, n, sizeof *k, bkey_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && k[j].node == k[i].node)
            j++;
        g[m].node = k[i].node;
        g[m].start = i;
        g[m].end = j;
        m++;
        i = j;
    }
    *pk = k;
    *pg = g;
    *ng = m;
    return LLMC_OK;
}

/* Acquire a connection for each group (NULL node: none) and let `add`
 * append its commands; flush. Groups that fail are left with c = NULL. */
static void send_groups(cctx *x, bgroup *g, size_t ng, uint64_t deadline,
                        int (*add)(cctx *x, llmc_rconn *c, bgroup *g, void *ud), void *ud)
{
    for (size_t gi = 0; gi < ng; gi++) {
        bgroup *b = &g[gi];
        b->c = NULL;
        if (!b->node)
            continue;
        llmc_err e;
        llmc_rconn *c = NULL;
        int fresh;
        if (llmc__rpool_acquire(&b->node->pool, deadline, &c, &fresh, &e) != LLMC_OK)
            continue;
        if (add(x, c, b, ud) != 0 || llmc__rconn_flush(c, deadline, &e) != LLMC_OK) {
            llmc__rconn_mark_broken(c);
            llmc__rpool_release(&b->node->pool, c);
            continue;
        }
        b->node->pool.commands++;
        b->c = c;
    }
}

typedef struct mget_req {
    const char *const *keys;
    const size_t *klens;
    bkey *k;
    llmc_buf *pv;      /* caller's buffers, permuted into bkey order */
    llmc_status *psts;
    unsigned char *redo; /* per bkey position: retry alone */
} mget_req;

/* Runs of keys of one slot inside a group, cut at BATCH_CHUNK. */
static size_t run_end(const bkey *k, size_t i, size_t end)
{
    size_t j = i + 1;
    while (j < end && k[j].slot == k[i].slot && j - i < BATCH_CHUNK)
        j++;
    return j;
}

static int mget_add(cctx *x, llmc_rconn *c, bgroup *b, void *ud)
{
    LLMC_UNUSED(x);
    mget_req *q = ud;
    const char *av[BATCH_CHUNK + 1];
    size_t al[BATCH_CHUNK + 1];
    for (size_t i = b->start; i < b->end;) {
        size_t j = run_end(q->k, i, b->end);
        av[0] = "MGET";
        al[0] = 4;
        for (size_t t = i; t < j; t++) {
            av[t - i + 1] = q->keys[q->k[t].i];
            al[t - i + 1] = q->klens[q->k[t].i];
        }
        if (llmc__rconn_append(c, (int)(j - i) + 1, av, al) != LLMC_OK)
            return -1;
        i = j;
    }
    return 0;
}

static llmc_status c_mget(void *ctx, size_t n, const char *const *keys, const size_t *klens,
                          llmc_buf *vals, llmc_status *sts, llmc_err *err)
{
    cctx *x = ctx;
    if (n == 0)
        return LLMC_OK;
    bkey *k = NULL;
    bgroup *g = NULL;
    size_t ng = 0;
    llmc_status st = plan(x, n, keys, klens, &k, &g, &ng, err);
    if (st != LLMC_OK)
        return st;
    llmc_buf *pv = malloc(n * sizeof *pv);
    llmc_status *psts = malloc(n * sizeof *psts);
    unsigned char *redo = calloc(n, 1);
    if (!pv || !psts || !redo) {
        free(pv);
        free(psts);
        free(redo);
        free(k);
        free(g);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    for (size_t t = 0; t < n; t++) {
        pv[t] = vals[k[t].i];
        psts[t] = LLMC_MISS;
    }
    mget_req q = {keys, klens, k, pv, psts, redo};
    uint64_t deadline = llmc__deadline_after_ms(x->cmd_ms);
    send_groups(x, g, ng, deadline, mget_add, &q);
    for (size_t gi = 0; gi < ng; gi++) {
        bgroup *b = &g[gi];
        if (!b->c) {
            memset(redo + b->start, 1, b->end - b->start);
            continue;
        }
        for (size_t i = b->start; i < b->end;) {
            size_t j = run_end(k, i, b->end);
            if (llmc__rconn_broken(b->c)) {
                memset(redo + i, 1, j - i);
                i = j;
                continue;
            }
            redisReply *r = NULL;
            llmc_err e;
            st = llmc__rconn_read_mget(b->c, deadline, j - i, pv + i, psts + i, &r, &e);
            if (st != LLMC_OK) {
                memset(redo + i, 1, j - i);
            } else if (r) {
                /* MOVED/ASK/TRYAGAIN/...: those keys go alone. */
                if (r->type != REDIS_REPLY_ERROR)
                    llmc__rconn_mark_broken(b->c);
                freeReplyObject(r);
                memset(redo + i, 1, j - i);
            }
            i = j;
        }
        llmc__rpool_release(&b->node->pool, b->c);
        b->c = NULL;
    }
    /* Give the buffers back, then retry what needs it key by key. */
    for (size_t t = 0; t < n; t++) {
        vals[k[t].i] = pv[t];
        sts[k[t].i] = psts[t];
    }
    size_t failed = 0;
    llmc_status first = LLMC_OK;
    for (size_t t = 0; t < n; t++) {
        if (!redo[t])
            continue;
        size_t i = k[t].i;
        x->fallbacks++;
        llmc_err e;
        llmc_err_clear(&e);
        sts[i] = c_get(x, keys[i], klens[i], &vals[i], &e);
        if (sts[i] != LLMC_OK && sts[i] != LLMC_MISS) {
            failed++;
            if (first == LLMC_OK) {
                first = sts[i];
                if (err)
                    *err = e;
            }
        }
    }
    free(pv);
    free(psts);
    free(redo);
    free(k);
    free(g);
    return failed == n ? first : LLMC_OK;
}

typedef struct mset_req {
    const llmc_kv *items;
    bkey *k;
    unsigned char *redo;
} mset_req;

static int mset_add(cctx *x, llmc_rconn *c, bgroup *b, void *ud)
{
    LLMC_UNUSED(x);
    mset_req *q = ud;
    for (size_t t = b->start; t < b->end; t++) {
        const llmc_kv *it = &q->items[q->k[t].i];
        const char *av[5];
        size_t al[5];
        char px[24];
        int argc = llmc__redis_set_args(av, al, px, sizeof px, it->key, it->klen, it->val, it->vlen,
                            it->ttl_ms);
        if (llmc__rconn_append(c, argc, av, al) != LLMC_OK)
            return -1;
    }
    return 0;
}

static llmc_status c_mset(void *ctx, size_t n, const llmc_kv *items, llmc_err *err)
{
    cctx *x = ctx;
    if (n == 0)
        return LLMC_OK;
    const char **keys = calloc(n, sizeof *keys);
    size_t *klens = calloc(n, sizeof *klens);
    unsigned char *redo = calloc(n, 1);
    if (!keys || !klens || !redo) {
        free(keys);
        free(klens);
        free(redo);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = items[i].key;
        klens[i] = items[i].klen;
    }
    bkey *k = NULL;
    bgroup *g = NULL;
    size_t ng = 0;
    llmc_status st = plan(x, n, keys, klens, &k, &g, &ng, err);
    free(keys);
    free(klens);
    if (st != LLMC_OK) {
        free(redo);
        return st;
    }
    /* Big batches go in chunks so one call does not build one huge
     * request: each chunk is planned the same way. */
    mset_req q = {items, k, redo};
    for (size_t off = 0; off < n; off += BATCH_CHUNK * 4) {
        size_t lim = off + BATCH_CHUNK * 4 < n ? off + BATCH_CHUNK * 4 : n;
        bgroup *cg = calloc(ng, sizeof *cg);
        size_t cng = 0;
        if (!cg) {
            memset(redo + off, 1, lim - off);
            continue;
        }
        for (size_t gi = 0; gi < ng; gi++) {
            size_t s = g[gi].start > off ? g[gi].start : off;
            size_t e = g[gi].end < lim ? g[gi].end : lim;
            if (s < e) {
                cg[cng] = g[gi];
                cg[cng].start = s;
                cg[cng].end = e;
                cng++;
            }
        }
        uint64_t deadline = llmc__deadline_after_ms(x->cmd_ms);
        send_groups(x, cg, cng, deadline, mset_add, &q);
        for (size_t gi = 0; gi < cng; gi++) {
            bgroup *b = &cg[gi];
            if (!b->c) {
                memset(redo + b->start, 1, b->end - b->start);
                continue;
            }
            for (size_t t = b->start; t < b->end; t++) {
                if (llmc__rconn_broken(b->c)) {
                    redo[t] = 1;
                    continue;
                }
                redisReply *r = NULL;
                int type = 0;
                long long ignored;
                llmc_err e;
                if (llmc__rconn_read_simple(b->c, deadline, &type, &ignored, &r, &e) !=
                    LLMC_OK) {
                    redo[t] = 1;
                    continue;
                }
                if (r) {
                    type = r->type;
                    freeReplyObject(r);
                }
                if (type != REDIS_REPLY_STATUS)
                    redo[t] = 1;
            }
            llmc__rpool_release(&b->node->pool, b->c);
            b->c = NULL;
        }
        free(cg);
    }
    llmc_status result = LLMC_OK;
    for (size_t t = 0; t < n; t++) {
        if (!redo[t])
            continue;
        const llmc_kv *it = &items[k[t].i];
        x->fallbacks++;
        llmc_err e;
        llmc_err_clear(&e);
        st = c_set(x, it->key, it->klen, it->val, it->vlen, it->ttl_ms, &e);
        if (st != LLMC_OK && result == LLMC_OK) {
            result = st;
            if (err)
                *err = e;
        }
    }
    free(redo);
    free(k);
    free(g);
    return result;
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
        if (redo[i] && c_del(x, keys->element[i]->str, keys->element[i]->len, NULL) == LLMC_OK)
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
        llmc_status st = node_cmd(n, 6, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
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
    maybe_periodic(x);
    size_t nm = 0;
    cnode **m = masters_snapshot(x, &nm);
    if (!m)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (nm == 0) {
        free(m);
        refresh(x, 0, NULL);
        return no_masters(x, err);
    }
    llmc_status st = LLMC_OK;
    int stop = 0;
    for (size_t i = 0; i < nm && !stop; i++) {
        st = scan_node(x, m[i], pat, patlen, unlink, deleted, cb, ud, &stop, err);
        if (st != LLMC_OK) {
            if (st == LLMC_ECONN || st == LLMC_ETIMEDOUT)
                refresh(x, 0, NULL);
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
    maybe_periodic(x);
    size_t nm = 0;
    cnode **m = masters_snapshot(x, &nm);
    if (!m)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (nm == 0) {
        free(m);
        refresh(x, 0, NULL);
        return no_masters(x, err);
    }
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < nm && st == LLMC_OK; i++) {
        const char *av[1] = {cmd};
        size_t al[1] = {strlen(cmd)};
        redisReply *r = NULL;
        st = node_cmd(m[i], 1, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
        if (st != LLMC_OK) {
            refresh(x, 0, NULL);
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

static llmc_status c_flush_all(void *ctx, llmc_err *err)
{
    return all_masters(ctx, "FLUSHDB", REDIS_REPLY_STATUS, NULL, err);
}

static llmc_status c_stats(void *ctx, llmc_stat_cb cb, void *ud)
{
    cctx *x = ctx;
    size_t nn = 0, nm = 0;
    cnode **v = nodes_snapshot(x, &nn);
    cnode **m = masters_snapshot(x, &nm);
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
            if (!get_node(x, cfg->hosts[i].host, port, err)) {
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
            node_label(label, sizeof label, cfg->hosts[i].host, port, tls);
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
    /* Learn the topology now, so a wrong address, password or master
     * name fails the open with a clear message. */
    if ((st = refresh(x, 1, err)) != LLMC_OK)
        goto fail;
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
    .get = c_get,
    .set = c_set,
    .del = c_del,
    .exists = c_exists,
    .mget = c_mget,
    .mset = c_mset,
    .flush = c_flush,
    .flush_all = c_flush_all,
    .ping = c_ping,
    .stats = c_stats,
    .scan = c_scan,
    .ttl = c_ttl,
};

const llmc_backend_ops llmc__backend_redis_sentinel = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "redis-sentinel",
                               "Redis behind Sentinel (follows failovers)"),
    .schemes = sentinel_schemes,
    .options = sentinel_options,
    .caps = REDIS_CAPS,
    .open = sentinel_open,
    .close = c_close,
    .get = c_get,
    .set = c_set,
    .del = c_del,
    .exists = c_exists,
    .mget = c_mget,
    .mset = c_mset,
    .flush = c_flush,
    .flush_all = c_flush_all,
    .ping = c_ping,
    .stats = c_stats,
    .scan = c_scan,
    .ttl = c_ttl,
};
