/* Private to the Redis connection layer (conn.c, socket.c, tls.c,
 * resp.c, pool.c): the connection record and what the files call in each
 * other. Backends use conn.h only. Not installed. */
#ifndef LLMC_REDIS_CONN_IMPL_H
#define LLMC_REDIS_CONN_IMPL_H

#include "conn.h"

#define RCONN_CHUNK 65536
/* Keep up to this much unused reader buffer between replies, so 20 KB
 * values do not cost a realloc per command (hiredis's default is 16 KB). */
#define RCONN_READER_KEEP (1024 * 1024)
/* Output buffers bigger than this are released after use. */
#define RCONN_OUT_KEEP (1024 * 1024)

struct llmc_rconn {
    int fd;
    SSL *ssl;          /* NULL for plain connections */
    BIO *rbio, *wbio;  /* memory BIOs owned by ssl */
    redisReader *reader;
    int broken;
    uint64_t rx_bytes;
    const char *label; /* points into the pool's config */
    char *out;         /* pending command bytes */
    size_t out_len, out_cap;
    char in[RCONN_CHUNK];
    size_t in_pos, in_len; /* read ahead by the fast paths, not yet parsed */
    char net[16384];   /* ciphertext staging for TLS */
};

/* ---- socket.c: non-blocking sockets, every wait bounded by the
 * deadline (monotonic ns). Failures mark the connection broken. ---- */
llmc_status llmc__rsock_connect_unix(llmc_rconn *c, const char *path, uint64_t deadline_ns,
                                     llmc_err *err);
/* Resolve (bounded by the deadline too) and connect, trying each address. */
llmc_status llmc__rsock_connect_tcp(llmc_rconn *c, const char *host, int port,
                                    uint64_t deadline_ns, llmc_err *err);
llmc_status llmc__rsock_send_all(llmc_rconn *c, const char *p, size_t len,
                                 uint64_t deadline_ns, llmc_err *err);
/* Receive at least one byte (poll_first: wait before the first recv). */
llmc_status llmc__rsock_recv(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                             uint64_t deadline_ns, int poll_first, llmc_err *err);

/* ---- tls.c: TLS over memory BIOs, on the socket functions above ---- */
llmc_status llmc__rtls_handshake(llmc_rconn *c, const llmc_rnode_cfg *cfg,
                                 uint64_t deadline_ns, llmc_err *err);
llmc_status llmc__rtls_write(llmc_rconn *c, const char *p, size_t len, uint64_t deadline_ns,
                             llmc_err *err);
llmc_status llmc__rtls_read(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                            uint64_t deadline_ns, llmc_err *err);

/* Receive whatever is available, plain or TLS (the RESP reader's only
 * way to the network). Inline: it sits on every reply's path. */
static inline llmc_status llmc__rconn_recv(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                                           uint64_t deadline_ns, int poll_first,
                                           llmc_err *err)
{
    if (c->broken)
        return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken", c->label);
    return c->ssl ? llmc__rtls_read(c, buf, cap, got, deadline_ns, err)
                  : llmc__rsock_recv(c, buf, cap, got, deadline_ns, poll_first, err);
}

#endif
