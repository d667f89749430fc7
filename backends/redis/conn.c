/* Redis connection layer, one connection: node configs, open (connect,
 * TLS handshake, AUTH/SELECT/PING in one round trip), close and the
 * broken-state accessors. The layer's other files: socket.c (sockets and
 * deadlines), tls.c, resp.c (commands and replies), pool.c. */
#include "conn_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* config */

void llmc__rnode_cfg_free(llmc_rnode_cfg *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->unix_path);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    free(c->tls_server_name);
    free(c->user);
    if (c->password) {
        /* Do not leave the secret in freed memory. */
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->label);
    memset(c, 0, sizeof *c);
}

llmc_status llmc__rnode_cfg_copy(llmc_rnode_cfg *dst, const llmc_rnode_cfg *src,
                                 llmc_err *err)
{
    memset(dst, 0, sizeof *dst);
    dst->port = src->port;
    dst->tls_verify = src->tls_verify;
    dst->db = src->db;
    dst->connect_timeout_ms = src->connect_timeout_ms;
    dst->command_timeout_ms = src->command_timeout_ms;
    int fail = 0;
#define DUP(f)                                                                 \
    if (src->f && !(dst->f = llmc__strdup(src->f)))                            \
        fail = 1;
    DUP(host)
    DUP(unix_path)
    DUP(tls_server_name)
    DUP(user)
    DUP(password)
    DUP(label)
#undef DUP
    if (src->ssl_ctx) {
        SSL_CTX_up_ref(src->ssl_ctx);
        dst->ssl_ctx = src->ssl_ctx;
    }
    if (fail) {
        llmc__rnode_cfg_free(dst);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    return LLMC_OK;
}

int llmc__rconn_broken(const llmc_rconn *c)
{
    return c->broken;
}

void llmc__rconn_mark_broken(llmc_rconn *c)
{
    c->broken = 1;
}

uint64_t llmc__rconn_rx_bytes(const llmc_rconn *c)
{
    return c->rx_bytes;
}

void llmc__rconn_close(llmc_rconn *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl); /* frees both BIOs */
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->out);
    free(c);
}

/* AUTH, SELECT and a PING, pipelined in one round trip. The PING tells a
 * server that requires a password we did not give (NOAUTH) apart from a
 * working connection. */
static llmc_status handshake(llmc_rconn *c, const llmc_rnode_cfg *cfg, uint64_t deadline_ns,
                             llmc_err *err)
{
    int n = 0;
    const char *user = cfg->user && *cfg->user ? cfg->user : NULL;
    if (cfg->password || user) {
        const char *pw = cfg->password ? cfg->password : "";
        const char *av[3] = {"AUTH", user, pw};
        size_t al[3] = {4, user ? strlen(user) : 0, strlen(pw)};
        if (user)
            llmc__rconn_append(c, 3, av, al);
        else {
            av[1] = pw;
            al[1] = al[2];
            llmc__rconn_append(c, 2, av, al);
        }
        n++;
    }
    char dbs[16];
    if (cfg->db > 0) {
        snprintf(dbs, sizeof dbs, "%d", cfg->db);
        const char *av[2] = {"SELECT", dbs};
        size_t al[2] = {6, strlen(dbs)};
        llmc__rconn_append(c, 2, av, al);
        n++;
    }
    const char *pv[1] = {"PING"};
    size_t pl[1] = {4};
    if (llmc__rconn_append(c, 1, pv, pl) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    n++;
    llmc_status st = llmc__rconn_flush(c, deadline_ns, err);
    llmc_status first = LLMC_OK;
    llmc_err tmp;
    for (int i = 0; i < n && st == LLMC_OK; i++) {
        redisReply *r = NULL;
        st = llmc__rconn_read(c, deadline_ns, &r, err);
        if (st != LLMC_OK)
            break;
        if (r->type == REDIS_REPLY_ERROR && first == LLMC_OK) {
            char what[160];
            snprintf(what, sizeof what, "PING");
            int idx = i;
            if (cfg->password || user) {
                if (idx == 0) {
                    if (user)
                        snprintf(what, sizeof what, "authentication failed for user '%.100s'",
                                 user);
                    else
                        snprintf(what, sizeof what, "authentication failed");
                }
                idx--;
            }
            if (cfg->db > 0 && idx == 0)
                snprintf(what, sizeof what, "SELECT %d", cfg->db);
            first = llmc__redis_error_reply(r, what, c->label, cfg->password, &tmp);
        }
        freeReplyObject(r);
    }
    if (st != LLMC_OK)
        return st == LLMC_ETIMEDOUT
                   ? llmc_err_set(err, LLMC_ETIMEDOUT, ETIMEDOUT,
                                  "redis at %s: connection handshake timed out (the server "
                                  "accepted but does not answer)",
                                  c->label)
                   : st;
    if (first != LLMC_OK) {
        if (err)
            *err = tmp;
        return first;
    }
    return LLMC_OK;
}

llmc_status llmc__rconn_open(const llmc_rnode_cfg *cfg, uint64_t deadline_ns,
                             llmc_rconn **out, llmc_err *err)
{
    *out = NULL;
    llmc_rconn *c = calloc(1, sizeof *c);
    if (!c)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    c->fd = -1;
    c->label = cfg->label ? cfg->label : "?";
    c->reader = redisReaderCreate();
    if (!c->reader) {
        free(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    c->reader->maxbuf = RCONN_READER_KEEP;
    llmc_status st =
        cfg->unix_path ? llmc__rsock_connect_unix(c, cfg->unix_path, deadline_ns, err)
                       : llmc__rsock_connect_tcp(c, cfg->host, cfg->port, deadline_ns, err);
    if (st == LLMC_OK && cfg->ssl_ctx)
        st = llmc__rtls_handshake(c, cfg, deadline_ns, err);
    if (st == LLMC_OK)
        st = handshake(c, cfg, deadline_ns, err);
    if (st != LLMC_OK) {
        llmc__rconn_close(c);
        return st;
    }
    c->rx_bytes = 0;
    *out = c;
    return LLMC_OK;
}
