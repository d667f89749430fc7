/* Redis Cluster / Sentinel batches (mget, mset). */
#include "cluster_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* batches: keys grouped by node, and within a node by slot; each node's
 * commands are pipelined, and all nodes are written to before any reply
 * is read, so the nodes work in parallel. A key whose reply is a
 * redirect or an error of the cluster (or whose node failed) is retried
 * alone through llmc__rc_run_key, which follows MOVED/ASK: no CROSSSLOT and no
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
    llmc__rc_maybe_periodic(x);
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

llmc_status llmc__rc_mget(void *ctx, size_t n, const char *const *keys, const size_t *klens,
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
        sts[i] = llmc__rc_get(x, keys[i], klens[i], &vals[i], &e);
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

llmc_status llmc__rc_mset(void *ctx, size_t n, const llmc_kv *items, llmc_err *err)
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
        st = llmc__rc_set(x, it->key, it->klen, it->val, it->vlen, it->ttl_ms, &e);
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
