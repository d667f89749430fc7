/* Private to the Redis Cluster / Sentinel backend (cluster.c,
 * cluster_router.c, cluster_batch.c): the context, the node record and the
 * router functions the operations call. See cluster.c for the design. Not
 * installed. */
#ifndef LLMC_REDIS_CLUSTER_IMPL_H
#define LLMC_REDIS_CLUSTER_IMPL_H

#include "conn.h"

#include <stdatomic.h>

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

/* Runs one request on connection c. A Redis error reply is handed back
 * in *er (the caller owns it) with LLMC_EBACKEND, so the router can
 * follow MOVED/ASK; other failures fill err. */
typedef llmc_status (*kfn)(cctx *x, llmc_rconn *c, uint64_t deadline, void *ud, redisReply **er,
                           llmc_err *err);

/* ---- cluster_router.c ---- */
/* "host:port" (IPv6 in brackets), " (tls)" appended for TLS. */
void llmc__rc_node_label(char *buf, size_t n, const char *host, int port, int tls);
/* The node for host:port, created (with its pool) on first use; NULL
 * with err filled when that fails. Nodes live as long as the context. */
cnode *llmc__rc_get_node(cctx *x, const char *host, int port, llmc_err *err);
/* Copies of the node list / the distinct masters of the slot table
 * (caller frees the array, not the nodes). */
cnode **llmc__rc_nodes_snapshot(cctx *x, size_t *n);
cnode **llmc__rc_masters_snapshot(cctx *x, size_t *n);
/* One command on a node's pool (acquire, send, read, release). */
llmc_status llmc__rc_node_cmd(cnode *n, int argc, const char *const *argv, const size_t *lens,
                              uint64_t deadline, redisReply **reply, llmc_err *err);
/* Reload the topology (force: even within the minimum gap). */
llmc_status llmc__rc_refresh(cctx *x, int force, llmc_err *err);
/* Refresh when the periodic interval has passed. */
void llmc__rc_maybe_periodic(cctx *x);
/* Run one single-key request on the node owning the key, following
 * MOVED/ASK/TRYAGAIN and refreshing the topology on failures. */
llmc_status llmc__rc_run_key(cctx *x, const char *key, size_t klen, const char *what, kfn fn,
                             void *ud, llmc_err *err);

/* ---- cluster.c: single-key operations (the batches fall back to them) ---- */
llmc_status llmc__rc_get(void *ctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err);
llmc_status llmc__rc_set(void *ctx, const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms, llmc_err *err);
llmc_status llmc__rc_del(void *ctx, const char *key, size_t klen, llmc_err *err);

/* ---- cluster_batch.c ---- */
llmc_status llmc__rc_mget(void *ctx, size_t n, const char *const *keys, const size_t *klens,
                          llmc_buf *vals, llmc_status *sts, llmc_err *err);
llmc_status llmc__rc_mset(void *ctx, size_t n, const llmc_kv *items, llmc_err *err);

#endif
