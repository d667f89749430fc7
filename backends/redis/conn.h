/* Redis connection layer: one connection = one node, plain TCP, TLS
 * (OpenSSL) or a Unix socket, with poll-based deadlines on every step.
 * Commands are written as RESP into a reusable per-connection buffer;
 * replies are parsed by hiredis's redisReader, except the hot shapes
 * (bulk string, MGET array, status, integer), which are parsed in place
 * without allocating. A connection is used by one thread at a time (the
 * pool hands it out).
 *
 * A pool (llmc_rpool) holds up to `size` connections to one node and is
 * safe to share between threads: its mutex is only held to hand
 * connections out and back, never across a network round trip. Redis
 * Cluster / Sentinel reuse this by keeping one pool per node.
 *
 * For Redis Cluster / Sentinel: fill one llmc_rnode_cfg per node (the
 * same SSL_CTX can be shared, see llmc__redis_tls_ctx_new), keep one
 * llmc_rpool per node, and route each request to the pool of the node
 * that owns the key; a MOVED/ASK error reply arrives as an ordinary
 * reply (llmc__rconn_read), so the router can follow it.
 *
 * Not installed; internal to libllmcache. */
#ifndef LLMC_REDIS_CONN_H
#define LLMC_REDIS_CONN_H

#include "internal.h"

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

/* Where and how to connect. Strings are owned by the config (see
 * llmc__rnode_cfg_free); the SSL_CTX is shared and reference counted by
 * OpenSSL (SSL_CTX_up_ref). */
typedef struct llmc_rnode_cfg {
    char *host;              /* TCP host (NULL for a Unix socket) */
    int port;
    char *unix_path;         /* Unix socket path, or NULL */
    SSL_CTX *ssl_ctx;        /* non-NULL: TLS */
    char *tls_server_name;   /* SNI and certificate name; NULL: host */
    int tls_verify;          /* 1: verify peer certificate and name */
    char *user;              /* ACL user or NULL */
    char *password;          /* secret, or NULL */
    int db;                  /* SELECT index (0: no SELECT) */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    char *label;             /* "host:port" / "unix:/path" for messages */
} llmc_rnode_cfg;

void llmc__rnode_cfg_free(llmc_rnode_cfg *c);
/* A client TLS context: CA file or directory (NULL: the system store),
 * optional client certificate chain and key (PEM; the key may be in the
 * certificate file). LLMC_EINVAL naming the file that failed to load. */
llmc_status llmc__redis_tls_ctx_new(const char *ca, const char *cert, const char *key,
                                    SSL_CTX **out, llmc_err *err);
/* Deep copy (the SSL_CTX gets a reference). */
llmc_status llmc__rnode_cfg_copy(llmc_rnode_cfg *dst, const llmc_rnode_cfg *src,
                                 llmc_err *err);

/* One connection. Fields are private to conn.c except where noted. */
typedef struct llmc_rconn llmc_rconn;

/* Connect, do the TLS handshake, AUTH and SELECT, all before `deadline_ns`
 * (monotonic). Failure statuses: LLMC_ECONN (refused, unreachable, connect
 * timeout, TLS handshake or certificate failure), LLMC_EAUTH (wrong
 * password/user), LLMC_ETIMEDOUT (server accepted but did not answer),
 * LLMC_EBACKEND (other error reply, e.g. SELECT out of range). */
llmc_status llmc__rconn_open(const llmc_rnode_cfg *cfg, uint64_t deadline_ns,
                             llmc_rconn **out, llmc_err *err);
void llmc__rconn_close(llmc_rconn *c);

/* Append one command to the connection's output buffer (no I/O). */
llmc_status llmc__rconn_append(llmc_rconn *c, int argc, const char *const *argv,
                               const size_t *lens);
/* Send everything appended. */
llmc_status llmc__rconn_flush(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err);
/* Read the next reply (caller frees it with freeReplyObject). A Redis
 * error reply is returned as a reply, not as a failure; failures are I/O,
 * timeout and protocol errors. */
llmc_status llmc__rconn_read(llmc_rconn *c, uint64_t deadline_ns, redisReply **reply,
                             llmc_err *err);
/* Read a reply that is normally a bulk string straight into `out`
 * (LLMC_OK with *nil = 0), or nil (*nil = 1); any other reply (errors
 * included) is returned in *other for the caller to handle and free. */
llmc_status llmc__rconn_read_bulk(llmc_rconn *c, uint64_t deadline_ns, llmc_buf *out,
                                  int *nil, redisReply **other, llmc_err *err);
/* Read a status ("+OK") or integer reply without allocating: *type is
 * REDIS_REPLY_STATUS or REDIS_REPLY_INTEGER (*integer set); any other
 * reply (errors included) comes back in *other. */
llmc_status llmc__rconn_read_simple(llmc_rconn *c, uint64_t deadline_ns, int *type,
                                    long long *integer, redisReply **other, llmc_err *err);
/* Read an MGET reply of n values straight into vals[] / sts[] (LLMC_OK
 * or LLMC_MISS each); any other reply (an error) comes back in *other. */
llmc_status llmc__rconn_read_mget(llmc_rconn *c, uint64_t deadline_ns, size_t n, llmc_buf *vals,
                                  llmc_status *sts, redisReply **other, llmc_err *err);
/* append + flush + read. */
llmc_status llmc__rconn_command(llmc_rconn *c, int argc, const char *const *argv,
                                const size_t *lens, uint64_t deadline_ns,
                                redisReply **reply, llmc_err *err);

/* True after an I/O, timeout or protocol failure: the stream position is
 * unknown and the connection must not be reused. */
int llmc__rconn_broken(const llmc_rconn *c);
/* Mark a connection unusable (a caller gave up with replies pending). */
void llmc__rconn_mark_broken(llmc_rconn *c);
/* Bytes received on this connection so far: a request that failed on a
 * reused connection before receiving anything can be retried safely on a
 * new one (the old one had gone stale while idle). */
uint64_t llmc__rconn_rx_bytes(const llmc_rconn *c);

/* Map a Redis error reply to a status and fill err (secrets removed). */
llmc_status llmc__redis_error_reply(const redisReply *r, const char *what,
                                    const char *label, const char *secret, llmc_err *err);

/* A connect or command that failed because the server cannot be
 * reached (refused, unresolvable, timed out), as opposed to a server that
 * answered with a refusal (wrong password, unknown database, bad TLS
 * peer). Open tolerates the first kind only. */
static inline int llmc__redis_unreachable(llmc_status st)
{
    return st == LLMC_ECONN || st == LLMC_ETIMEDOUT;
}

/* ---- pool ---- */

typedef struct llmc_rpool {
    llmc_rnode_cfg cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    llmc_rconn **idle;       /* stack of idle connections */
    int n_idle;
    int n_open;              /* idle + in use */
    int size;                /* maximum connections */
    int closing;
    /* reconnect backoff: after a failed connect, no new connect before
     * next_connect_ns; the delay doubles up to a cap and resets on
     * success. */
    uint64_t next_connect_ns;
    int64_t backoff_ms;
    llmc_err last_connect_err; /* reported while backing off */

    _Atomic uint64_t waits, wait_us, connects, reconnects, connect_failures,
        broken, timeouts, retries, commands;
} llmc_rpool;

llmc_status llmc__rpool_init(llmc_rpool *p, const llmc_rnode_cfg *cfg, int size,
                             llmc_err *err);
void llmc__rpool_destroy(llmc_rpool *p);
/* Take a connection (reusing an idle one, opening a new one, or waiting
 * for one until the deadline; waits are counted). *fresh says whether it
 * was just opened. */
llmc_status llmc__rpool_acquire(llmc_rpool *p, uint64_t deadline_ns, llmc_rconn **out,
                                int *fresh, llmc_err *err);
/* Give it back; broken connections are closed and their slot freed. */
void llmc__rpool_release(llmc_rpool *p, llmc_rconn *c);

/* Deadline helper: now + ms. */
uint64_t llmc__deadline_after_ms(int64_t ms);

/* Fill argv/arglen for SET key val [PX ttl_ms] (no PX when ttl_ms <= 0);
 * pxbuf holds the TTL digits. Returns argc (3 or 5). */
int llmc__redis_set_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                         const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms);

/* Leases (cross-process coalescing). SET key token NX PX ttl_ms
 * (argc 6; the reply is +OK when taken, nil when held), the
 * compare-and-delete script: EVAL <script> 1 key token (argc 5; the
 * reply is the number of keys deleted), and the compare-and-pexpire
 * script: EVAL <script> 1 key token ttl_ms (argc 6, pxbuf holds the
 * digits; the reply is 1 when extended, 0 when absent or another
 * holder's). */
int llmc__redis_lease_take_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                                const char *key, size_t klen, const char *token, size_t tlen,
                                int64_t ttl_ms);
int llmc__redis_lease_drop_args(const char **av, size_t *al, const char *key, size_t klen,
                                const char *token, size_t tlen);
int llmc__redis_lease_renew_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                                 const char *key, size_t klen, const char *token, size_t tlen,
                                 int64_t ttl_ms);

/* The Redis Cluster hash slot of a key (CRC16 of the key or of its
 * {hash tag}, mod 16384); cluster.c routes by it, the tests check it
 * against the spec's values. */
unsigned llmc__redis_key_slot(const char *key, size_t klen);

/* Glob-escape s[0..n) for SCAN MATCH into b, then append `suffix` ("*"). */
llmc_status llmc__redis_match_pattern(llmc_buf *b, const char *s, size_t n, const char *suffix);

#endif
