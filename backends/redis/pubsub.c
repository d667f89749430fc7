/* Redis pub/sub for the local tier's invalidations: one subscribed
 * connection of our own (never pooled: a subscribed connection cannot
 * run other commands), SUBSCRIBE, PING round trips that prove the
 * subscription still works, and message delivery. Publishing is an
 * ordinary PUBLISH on a pooled connection (each backend does it).
 *
 * Replies are parsed by the connection layer (hiredis's reader); a wait
 * for messages polls the socket, so an idle subscription is not a
 * timeout. Any failure closes the subscription: the caller subscribes
 * again. */
#include "pubsub.h"

#include "conn_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct llmc_rsub {
    llmc_rnode_cfg cfg; /* the connection's label points into it */
    llmc_rconn *c;
    int64_t cmd_ms;
};

/* Bytes already received and not yet parsed: the reader's buffer, the
 * fast paths' read-ahead, TLS records decrypted or buffered. */
static int buffered(const llmc_rconn *c)
{
    if (c->in_pos < c->in_len)
        return 1;
    if (c->reader && c->reader->pos < c->reader->len)
        return 1;
    if (c->ssl && (SSL_pending(c->ssl) > 0 || BIO_ctrl_pending(c->rbio) > 0))
        return 1;
    return 0;
}

/* 1: something to read, 0: nothing within wait_ms, -1: poll failed. */
static int wait_readable(llmc_rconn *c, int64_t wait_ms)
{
    if (buffered(c))
        return 1;
    struct pollfd p = {c->fd, POLLIN, 0};
    int r;
    do {
        r = poll(&p, 1, (int)wait_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return -1;
    return r > 0;
}

static int elem_is(const redisReply *r, size_t i, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_ARRAY && r->elements > i && r->element[i] &&
           (r->element[i]->type == REDIS_REPLY_STRING ||
            r->element[i]->type == REDIS_REPLY_STATUS) &&
           r->element[i]->len == n && strncasecmp(r->element[i]->str, s, n) == 0;
}

/* Read one reply: a message goes to cb; *kind says what it was. */
enum { R_MESSAGE, R_PONG, R_SUBSCRIBED, R_OTHER };

static llmc_status read_one(llmc_rsub *s, llmc_message_cb cb, void *ud, int *kind,
                            llmc_err *err)
{
    redisReply *r = NULL;
    llmc_status st = llmc__rconn_read(s->c, llmc__deadline_after_ms(s->cmd_ms), &r, err);
    if (st != LLMC_OK)
        return st;
    *kind = R_OTHER;
    if (r->type == REDIS_REPLY_ERROR) {
        st = llmc__redis_error_reply(r, "SUBSCRIBE", s->cfg.label, s->cfg.password, err);
        llmc__rconn_mark_broken(s->c);
    } else if (elem_is(r, 0, "message") && r->elements == 3 &&
               r->element[2]->type == REDIS_REPLY_STRING) {
        *kind = R_MESSAGE;
        if (cb)
            cb(ud, r->element[2]->str, r->element[2]->len);
    } else if (elem_is(r, 0, "pong")) {
        *kind = R_PONG;
    } else if (elem_is(r, 0, "subscribe")) {
        *kind = R_SUBSCRIBED;
    }
    freeReplyObject(r);
    return st;
}

llmc_status llmc__rsub_open(const llmc_rnode_cfg *cfg, const char *channel, llmc_rsub **out,
                            llmc_err *err)
{
    *out = NULL;
    llmc_rsub *s = calloc(1, sizeof *s);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rnode_cfg_copy(&s->cfg, cfg, err);
    if (st != LLMC_OK) {
        free(s);
        return st;
    }
    s->cmd_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : 1000;
    st = llmc__rconn_open(&s->cfg, llmc__deadline_after_ms(cfg->connect_timeout_ms), &s->c, err);
    if (st == LLMC_OK) {
        const char *av[2] = {"SUBSCRIBE", channel};
        size_t al[2] = {9, strlen(channel)};
        redisReply *r = NULL;
        st = llmc__rconn_command(s->c, 2, av, al, llmc__deadline_after_ms(s->cmd_ms), &r, err);
        if (st == LLMC_OK && r->type == REDIS_REPLY_ERROR)
            st = llmc__redis_error_reply(r, "SUBSCRIBE", s->cfg.label, s->cfg.password, err);
        else if (st == LLMC_OK && !elem_is(r, 0, "subscribe"))
            st = llmc_err_set(err, LLMC_EPROTO, 0,
                              "redis at %s: unexpected reply to SUBSCRIBE", s->cfg.label);
        if (r)
            freeReplyObject(r);
    }
    if (st != LLMC_OK) {
        llmc__rsub_close(s);
        return st;
    }
    *out = s;
    return LLMC_OK;
}

llmc_status llmc__rsub_poll(void *sub, int64_t wait_ms, llmc_message_cb cb, void *ud,
                            llmc_err *err)
{
    llmc_rsub *s = sub;
    uint64_t end = llmc__deadline_after_ms(wait_ms);
    for (;;) {
        uint64_t now = llmc_mono_ns();
        int64_t left = now >= end ? 0 : (int64_t)((end - now) / 1000000);
        int r = wait_readable(s->c, left);
        if (r < 0) {
            llmc__rconn_mark_broken(s->c);
            return llmc_err_set(err, LLMC_ECONN, errno, "redis at %s: subscription: poll "
                                "failed", s->cfg.label);
        }
        if (r == 0)
            return LLMC_OK;
        int kind;
        llmc_status st = read_one(s, cb, ud, &kind, err);
        if (st != LLMC_OK)
            return st;
        if (left == 0 && !buffered(s->c))
            return LLMC_OK;
    }
}

llmc_status llmc__rsub_ping(void *sub, llmc_message_cb cb, void *ud, llmc_err *err)
{
    llmc_rsub *s = sub;
    const char *av[1] = {"PING"};
    size_t al[1] = {4};
    if (llmc__rconn_append(s->c, 1, av, al) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rconn_flush(s->c, llmc__deadline_after_ms(s->cmd_ms), err);
    for (int kind = R_OTHER; st == LLMC_OK && kind != R_PONG;)
        st = read_one(s, cb, ud, &kind, err);
    return st;
}

void llmc__rsub_close(void *sub)
{
    llmc_rsub *s = sub;
    if (!s)
        return;
    if (s->c)
        llmc__rconn_close(s->c);
    llmc__rnode_cfg_free(&s->cfg);
    free(s);
}
