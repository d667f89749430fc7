/* Redis Cluster / Sentinel routing: hash slots, the node list, the
 * topology (CLUSTER SLOTS, or the master Sentinel names) and single-key
 * requests that follow redirects. See cluster.c for the design. */
#include "cluster_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void llmc__rc_node_label(char *buf, size_t n, const char *host, int port, int tls)
{
    if (strchr(host, ':'))
        snprintf(buf, n, "[%s]:%d%s", host, port, tls ? " (tls)" : "");
    else
        snprintf(buf, n, "%s:%d%s", host, port, tls ? " (tls)" : "");
}

/* Find or add the node host:port. NULL only when out of memory. */
cnode *llmc__rc_get_node(cctx *x, const char *host, int port, llmc_err *err)
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
    llmc__rc_node_label(label, sizeof label, host, port, x->tmpl.ssl_ctx != NULL);
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
cnode **llmc__rc_nodes_snapshot(cctx *x, size_t *n)
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
cnode **llmc__rc_masters_snapshot(cctx *x, size_t *n)
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
llmc_status llmc__rc_node_cmd(cnode *n, int argc, const char *const *argv, const size_t *lens,
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
    llmc_status st =
        llmc__rc_node_cmd(from, 2, av, al, llmc__deadline_after_ms(x->cmd_ms), &r, err);
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
        cnode *n = llmc__rc_get_node(x, host, (int)port, err);
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
                llmc__rc_get_node(x, *rp->element[0]->str ? rp->element[0]->str : from->host,
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
    cnode **v = llmc__rc_nodes_snapshot(x, &n);
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
        cnode *m = llmc__rc_get_node(x, r->element[0]->str, (int)port, err);
        freeReplyObject(r);
        if (!m)
            return LLMC_ENOMEM;
        /* The sentinels may lag behind a failover: make sure the node
         * really is a master before sending writes to it. */
        const char *rv[1] = {"ROLE"};
        size_t rl[1] = {4};
        st = llmc__rc_node_cmd(m, 1, rv, rl, llmc__deadline_after_ms(x->cmd_ms), &r, err);
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
 * wait for a llmc__rc_refresh another thread is running. Returns LLMC_OK when this
 * call refreshed successfully. */
llmc_status llmc__rc_refresh(cctx *x, int force, llmc_err *err)
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

void llmc__rc_maybe_periodic(cctx *x)
{
    if (x->refresh_ms <= 0)
        return;
    uint64_t due = atomic_load(&x->next_periodic_ns);
    if (due && llmc_mono_ns() >= due)
        llmc__rc_refresh(x, 0, NULL);
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ */
/* single-key requests with redirects */


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
    return llmc__rc_get_node(x, host, (int)port, NULL);
}

llmc_status llmc__rc_run_key(cctx *x, const char *key, size_t klen, const char *what, kfn fn,
                             void *ud, llmc_err *err)
{
    llmc__rc_maybe_periodic(x);
    unsigned slot = llmc__redis_key_slot(key, klen);
    uint64_t deadline = llmc__deadline_after_ms(x->cmd_ms);
    cnode *ask = NULL;
    llmc_status last = LLMC_ECONN;
    int stale_retry = 0;
    for (int hop = 0; hop < MAX_HOPS; hop++) {
        cnode *n = ask ? ask : atomic_load_explicit(&x->slots[slot], memory_order_acquire);
        if (!n) {
            llmc__rc_refresh(x, 0, NULL);
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
            llmc__rc_refresh(x, 0, NULL);
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
            /* A MOVED usually means a whole range moved: llmc__rc_refresh (rate
             * limited) so the other slots follow without one MOVED each. */
            llmc__rc_refresh(x, 0, NULL);
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
            llmc__rc_refresh(x, 0, NULL);
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
