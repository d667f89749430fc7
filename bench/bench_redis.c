/* Redis backend benchmark against a raw hiredis baseline, same server,
 * same run.
 *
 * Starts its own redis-server on a free loopback port (or uses
 * $LLMC_BENCH_REDIS_URL), then measures, for llmcache and for a plain
 * blocking hiredis loop (redisCommand GET/SET; one MGET command for the
 * batch):
 *   get and set with 1.5 KB and 20 KB values, 1 connection and N threads
 *   the full hit path (llmc_key_compute + llmc_cache_get_entry decode)
 *   MGET of 100 keys
 *   an embeddings request of 64 inputs answered from the cache (16 and
 *   1536 dimensions): the lookup's read one get per item (as before
 *   batching) and batched, the whole request (JSON in, merged response
 *   out), and the same with a local tier, each against one raw MGET of
 *   the same 64 stored values
 * Baseline and llmcache alternate in short blocks so that both see the
 * same machine load; ratios are llmcache / baseline throughput.
 *
 * Environment: LLMC_BENCH_THREADS (default 4), LLMC_BENCH_SECONDS (per
 * case and side, default 1.0), LLMC_BENCH_REDIS_URL, LLMC_BENCH_ONLY (run
 * only the cases whose name contains this text). */
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "../tests/support/testsrv.h"

#define NKEYS 100
#define MAX_SAMPLES 400000

typedef struct side {
    double *lat; /* microseconds */
    size_t n, cap;
    double secs;
    uint64_t ops;
} side;

typedef struct result {
    double ops, p50, p99;
} result;

static const char *g_host = "127.0.0.1";
static int g_port;
static char g_pass[256];
static int g_db;
static char g_url[1024];
static int g_threads = 4;
static double g_seconds = 1.0;
static int g_failed_targets;
static const char *g_only; /* LLMC_BENCH_ONLY: run cases whose name contains it */

static int wanted(const char *name)
{
    return !g_only || !*g_only || strstr(name, g_only) != NULL;
}

static double now_us(void)
{
    return (double)llmc_mono_ns() / 1000.0;
}

static void side_add(side *s, double us)
{
    if (s->n < s->cap)
        s->lat[s->n++] = us;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static result side_result(side *s)
{
    result r = {0, 0, 0};
    if (!s->n || s->secs <= 0)
        return r;
    qsort(s->lat, s->n, sizeof *s->lat, cmp_d);
    r.ops = (double)s->ops / s->secs;
    r.p50 = s->lat[s->n / 2];
    r.p99 = s->lat[(size_t)((double)s->n * 0.99)];
    return r;
}

static void side_init(side *s)
{
    memset(s, 0, sizeof *s);
    s->cap = MAX_SAMPLES;
    s->lat = malloc(s->cap * sizeof *s->lat);
}

static void report(const char *name, side *ours, side *base, double target)
{
    result o = side_result(ours), b = side_result(base);
    double ratio = b.ops > 0 ? o.ops / b.ops : 0;
    const char *verdict = "";
    if (target > 0) {
        verdict = ratio >= target ? "ok" : "BELOW TARGET";
        if (ratio < target)
            g_failed_targets++;
    }
    printf("%-30s %10.0f %8.1f %8.1f | %10.0f %8.1f %8.1f | %5.2fx", name, o.ops, o.p50, o.p99,
           b.ops, b.p50, b.p99, ratio);
    if (target > 0)
        printf("  (target %.1fx: %s)", target, verdict);
    printf("\n");
    fflush(stdout);
    free(ours->lat);
    free(base->lat);
}

/* ---- baseline connections ---- */

static redisContext *raw_connect(void)
{
    redisContext *c = redisConnect(g_host, g_port);
    if (!c || c->err) {
        fprintf(stderr, "bench: hiredis connect failed: %s\n", c ? c->errstr : "?");
        exit(1);
    }
    if (g_pass[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", g_pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "bench: AUTH failed\n");
            exit(1);
        }
        freeReplyObject(r);
    }
    if (g_db) {
        redisReply *r = redisCommand(c, "SELECT %d", g_db);
        freeReplyObject(r);
    }
    return c;
}

static llmc_cache *our_open_ser(int pool, const char *ser)
{
    char url[1200];
    snprintf(url, sizeof url, "%s%spool_size=%d%s%s", g_url, strchr(g_url, '?') ? "&" : "?",
             pool, ser ? "&serializer=" : "", ser ? ser : "");
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(url, NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "bench: open failed: %s\n", e.msg);
        exit(1);
    }
    return c;
}

static llmc_cache *our_open(int pool)
{
    return our_open_ser(pool, NULL);
}

static char g_keys[NKEYS][48];
static size_t g_klens[NKEYS];

/* ---- single connection get/set ---- */

typedef enum op { OP_GET, OP_SET } op;

static void one_conn(const char *name, op which, size_t vlen, double target)
{
    if (!wanted(name))
        return;
    llmc_cache *c = our_open(1);
    redisContext *rc = raw_connect();
    char *val = malloc(vlen);
    memset(val, 'v', vlen);
    for (int i = 0; i < NKEYS; i++) {
        g_klens[i] = (size_t)snprintf(g_keys[i], sizeof g_keys[i], "bench:%zu:%d", vlen, i);
        llmc_cache_set(c, g_keys[i], g_klens[i], val, vlen, 0);
    }
    side o, b;
    side_init(&o);
    side_init(&b);
    llmc_buf buf = LLMC_BUF_INIT;
    const int block = 200;
    double end = now_us() + g_seconds * 2e6;
    for (int round = 0; now_us() < end; round++) {
        for (int pass = 0; pass < 2; pass++) {
            int ours = (pass + round) % 2;
            side *s = ours ? &o : &b;
            double t0 = now_us();
            for (int i = 0; i < block; i++) {
                int k = i % NKEYS;
                double a = now_us();
                if (ours) {
                    llmc_status st = which == OP_GET
                                         ? llmc_cache_get(c, g_keys[k], g_klens[k], &buf)
                                         : llmc_cache_set(c, g_keys[k], g_klens[k], val, vlen,
                                                          0);
                    if (st != LLMC_OK) {
                        fprintf(stderr, "bench: %s: %s\n", name, llmc_cache_errmsg(c));
                        exit(1);
                    }
                } else {
                    redisReply *r = which == OP_GET
                                        ? redisCommand(rc, "GET %b", g_keys[k], g_klens[k])
                                        : redisCommand(rc, "SET %b %b", g_keys[k], g_klens[k],
                                                       val, vlen);
                    if (!r) {
                        fprintf(stderr, "bench: hiredis: %s\n", rc->errstr);
                        exit(1);
                    }
                    freeReplyObject(r);
                }
                side_add(s, now_us() - a);
            }
            s->secs += (now_us() - t0) / 1e6;
            s->ops += (uint64_t)block;
        }
    }
    report(name, &o, &b, target);
    llmc_buf_free(&buf);
    free(val);
    redisFree(rc);
    llmc_cache_close(c);
}

/* ---- N threads ---- */

typedef struct tctx {
    llmc_cache *c;   /* ours: shared handle */
    int ours;
    op which;
    size_t vlen;
    const char *val;
    double until;
    side s;
} tctx;

static void *thread_main(void *p)
{
    tctx *t = p;
    redisContext *rc = t->ours ? NULL : raw_connect();
    llmc_buf buf = LLMC_BUF_INIT;
    double t0 = now_us();
    for (int i = 0; now_us() < t->until; i++) {
        int k = i % NKEYS;
        double a = now_us();
        if (t->ours) {
            llmc_status st = t->which == OP_GET
                                 ? llmc_cache_get(t->c, g_keys[k], g_klens[k], &buf)
                                 : llmc_cache_set(t->c, g_keys[k], g_klens[k], t->val, t->vlen, 0);
            if (st != LLMC_OK) {
                fprintf(stderr, "bench: thread: %s\n", llmc_cache_errmsg(t->c));
                exit(1);
            }
        } else {
            redisReply *r = t->which == OP_GET
                                ? redisCommand(rc, "GET %b", g_keys[k], g_klens[k])
                                : redisCommand(rc, "SET %b %b", g_keys[k], g_klens[k], t->val,
                                               t->vlen);
            if (!r)
                exit(1);
            freeReplyObject(r);
        }
        side_add(&t->s, now_us() - a);
        t->s.ops++;
    }
    t->s.secs = (now_us() - t0) / 1e6;
    llmc_buf_free(&buf);
    if (rc)
        redisFree(rc);
    return NULL;
}

static void merge(side *dst, side *src)
{
    for (size_t i = 0; i < src->n; i++)
        side_add(dst, src->lat[i]);
    dst->ops += src->ops;
}

static void n_threads(const char *name, op which, size_t vlen, double target)
{
    char full[128];
    snprintf(full, sizeof full, "%s %d thr", name, g_threads);
    if (!wanted(full))
        return;
    llmc_cache *c = our_open(g_threads);
    char *val = malloc(vlen);
    memset(val, 'v', vlen);
    for (int i = 0; i < NKEYS; i++) {
        g_klens[i] = (size_t)snprintf(g_keys[i], sizeof g_keys[i], "bench:%zu:%d", vlen, i);
        llmc_cache_set(c, g_keys[i], g_klens[i], val, vlen, 0);
    }
    side o, b;
    side_init(&o);
    side_init(&b);
    /* Alternate phases of 250 ms so both sides see the same load. */
    int phases = (int)(g_seconds * 4) < 2 ? 2 : (int)(g_seconds * 4);
    tctx *ts = calloc((size_t)g_threads, sizeof *ts);
    pthread_t *th = calloc((size_t)g_threads, sizeof *th);
    for (int ph = 0; ph < 2 * phases; ph++) {
        int ours = ph % 2;
        double until = now_us() + 250000;
        for (int i = 0; i < g_threads; i++) {
            ts[i] = (tctx){c, ours, which, vlen, val, until, {0}};
            ts[i].s.cap = MAX_SAMPLES / (size_t)g_threads / (size_t)phases;
            ts[i].s.lat = malloc(ts[i].s.cap * sizeof(double));
        }
        double t0 = now_us();
        for (int i = 0; i < g_threads; i++)
            pthread_create(&th[i], NULL, thread_main, &ts[i]);
        for (int i = 0; i < g_threads; i++)
            pthread_join(th[i], NULL);
        double secs = (now_us() - t0) / 1e6;
        side *s = ours ? &o : &b;
        s->secs += secs;
        for (int i = 0; i < g_threads; i++) {
            merge(s, &ts[i].s);
            free(ts[i].s.lat);
        }
    }
    report(full, &o, &b, target);
    free(ts);
    free(th);
    free(val);
    llmc_cache_close(c);
}

/* ---- hit path: key computation + get_entry + decode ---- */

static void hit_path(const char *name, size_t body_len, const char *ser)
{
    if (!wanted(name))
        return;
    llmc_cache *c = our_open_ser(1, ser);
    redisContext *rc = raw_connect();
    /* A chat request and a response body of the wanted size. */
    json_object *req = json_tokener_parse(
        "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"messages\":[{\"role\":\"system\","
        "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"What is the "
        "capital of France?\"}]}");
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    in.request = req;
    in.namespace_ = "bench";
    llmc_buf key = LLMC_BUF_INIT;
    llmc_err e;
    if (llmc_key_compute(NULL, &in, &key, NULL, &e) != LLMC_OK) {
        fprintf(stderr, "bench: key: %s\n", e.msg);
        exit(1);
    }
    char *body = malloc(body_len + 1);
    int n = snprintf(body, body_len, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
                                     "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                     "\"assistant\",\"content\":\"");
    /* A well-formed response object, as the client stores (the json
     * serializer embeds JSON bodies verbatim; anything else is base64). */
    memset(body + n, 'x', body_len - (size_t)n - 5);
    memcpy(body + body_len - 5, "\"}}]}", 5);
    body[body_len] = 0;
    if (llmc_cache_put_entry(c, key.data, key.len, LLMC_CALL_CHAT, body, body_len, 0, 0) !=
        LLMC_OK) {
        fprintf(stderr, "bench: put_entry: %s\n", llmc_cache_errmsg(c));
        exit(1);
    }
    side o, b;
    side_init(&o);
    side_init(&b);
    llmc_buf k2 = LLMC_BUF_INIT;
    llmc_lookup l = LLMC_LOOKUP_INIT;
    const int block = 200;
    double end = now_us() + g_seconds * 2e6;
    for (int round = 0; now_us() < end; round++) {
        for (int pass = 0; pass < 2; pass++) {
            int ours = (pass + round) % 2;
            side *s = ours ? &o : &b;
            double t0 = now_us();
            for (int i = 0; i < block; i++) {
                double a = now_us();
                if (ours) {
                    llmc_buf_clear(&k2);
                    if (llmc_key_compute(NULL, &in, &k2, NULL, &e) != LLMC_OK ||
                        llmc_cache_get_entry(c, k2.data, k2.len, -1, LLMC_ENTRY_SOFT, &l) !=
                            LLMC_OK ||
                        l.entry.body_len != body_len) {
                        fprintf(stderr, "bench: hit path failed: %s\n", llmc_cache_errmsg(c));
                        exit(1);
                    }
                } else {
                    redisReply *r = redisCommand(rc, "GET %b", key.data, key.len);
                    if (!r || r->type != REDIS_REPLY_STRING)
                        exit(1);
                    freeReplyObject(r);
                }
                side_add(s, now_us() - a);
            }
            s->secs += (now_us() - t0) / 1e6;
            s->ops += (uint64_t)block;
        }
    }
    report(name, &o, &b, 0);
    llmc_lookup_free(&l);
    llmc_buf_free(&k2);
    llmc_buf_free(&key);
    json_object_put(req);
    free(body);
    redisFree(rc);
    llmc_cache_close(c);
}

/* ---- MGET of 100 keys ---- */

static void mget100(const char *name, size_t vlen, double target)
{
    if (!wanted(name))
        return;
    llmc_cache *c = our_open(1);
    redisContext *rc = raw_connect();
    char *val = malloc(vlen);
    memset(val, 'm', vlen);
    const char *kp[NKEYS + 1];
    size_t kl[NKEYS + 1];
    kp[0] = "MGET";
    kl[0] = 4;
    for (int i = 0; i < NKEYS; i++) {
        g_klens[i] = (size_t)snprintf(g_keys[i], sizeof g_keys[i], "bench:m%zu:%d", vlen, i);
        kp[i + 1] = g_keys[i];
        kl[i + 1] = g_klens[i];
        llmc_cache_set(c, g_keys[i], g_klens[i], val, vlen, 0);
    }
    llmc_buf vals[NKEYS];
    llmc_status sts[NKEYS];
    memset(vals, 0, sizeof vals);
    side o, b;
    side_init(&o);
    side_init(&b);
    const int block = 20;
    double end = now_us() + g_seconds * 2e6;
    for (int round = 0; now_us() < end; round++) {
        for (int pass = 0; pass < 2; pass++) {
            int ours = (pass + round) % 2;
            side *s = ours ? &o : &b;
            double t0 = now_us();
            for (int i = 0; i < block; i++) {
                double a = now_us();
                if (ours) {
                    if (llmc_cache_mget(c, NKEYS, kp + 1, kl + 1, vals, sts) != LLMC_OK ||
                        sts[NKEYS - 1] != LLMC_OK) {
                        fprintf(stderr, "bench: mget: %s\n", llmc_cache_errmsg(c));
                        exit(1);
                    }
                } else {
                    redisAppendCommandArgv(rc, NKEYS + 1, kp, kl);
                    void *r = NULL;
                    if (redisGetReply(rc, &r) != REDIS_OK || !r)
                        exit(1);
                    freeReplyObject(r);
                }
                side_add(s, now_us() - a);
            }
            s->secs += (now_us() - t0) / 1e6;
            s->ops += (uint64_t)block;
        }
    }
    report(name, &o, &b, target);
    for (int i = 0; i < NKEYS; i++)
        llmc_buf_free(&vals[i]);
    free(val);
    redisFree(rc);
    llmc_cache_close(c);
}

/* ---- an embeddings request of 64 inputs, every item cached ---- */

#define EMB_N 64

typedef struct emb_ctx {
    llmc_cache *c;
    llmc_client *cl;
    const char *req;
    const char *keys[EMB_N];
    size_t klens[EMB_N];
    llmc_lookup lks[EMB_N];
    llmc_status sts[EMB_N];
    redisContext *rc;
    const char *argv[EMB_N + 1]; /* MGET + the item keys */
    size_t argl[EMB_N + 1];
} emb_ctx;

static void emb_fail(emb_ctx *x, const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, llmc_cache_errmsg(x->c));
    exit(1);
}

/* What the lookup read before batching: one get_entry per item. */
static void emb_per_item(emb_ctx *x)
{
    for (int i = 0; i < EMB_N; i++)
        if (llmc_cache_get_entry(x->c, x->keys[i], x->klens[i], -1, LLMC_ENTRY_SOFT,
                                 &x->lks[i]) != LLMC_OK)
            emb_fail(x, "per-item read");
}

/* What it reads now: one batch. */
static void emb_batch(emb_ctx *x)
{
    if (llmc_cache_get_entries(x->c, EMB_N, x->keys, x->klens, -1, LLMC_ENTRY_SOFT, x->lks,
                               x->sts) != LLMC_OK)
        emb_fail(x, "batch read");
    for (int i = 0; i < EMB_N; i++)
        if (x->sts[i] != LLMC_OK)
            emb_fail(x, "batch read item");
}

/* The whole request: JSON in, merged response out, "cache": true. */
static void emb_call(emb_ctx *x)
{
    llmc_response *r = NULL;
    llmc_err e;
    if (llmc_embedding_json(x->cl, x->req, LLMC_ZSTR, &r, &e) != LLMC_OK ||
        !llmc_response_cache_hit(r)) {
        fprintf(stderr, "bench: embeddings call not a hit: %s\n", e.msg);
        exit(1);
    }
    llmc_response_free(r);
}

/* The baseline: the same 64 stored values in one MGET over raw hiredis. */
static void emb_base(emb_ctx *x)
{
    redisAppendCommandArgv(x->rc, EMB_N + 1, x->argv, x->argl);
    redisReply *r = NULL;
    if (redisGetReply(x->rc, (void **)&r) != REDIS_OK || !r || r->type != REDIS_REPLY_ARRAY ||
        r->elements != EMB_N)
        exit(1);
    freeReplyObject(r);
}

static void emb_alternate(const char *name, void (*ours)(emb_ctx *), emb_ctx *x)
{
    if (!wanted(name))
        return;
    side o, b;
    side_init(&o);
    side_init(&b);
    const int block = 10;
    double end = now_us() + g_seconds * 2e6;
    for (int round = 0; now_us() < end; round++) {
        for (int pass = 0; pass < 2; pass++) {
            int mine = (pass + round) % 2;
            side *s = mine ? &o : &b;
            double t0 = now_us();
            for (int i = 0; i < block; i++) {
                double a = now_us();
                if (mine)
                    ours(x);
                else
                    emb_base(x);
                side_add(s, now_us() - a);
            }
            s->secs += (now_us() - t0) / 1e6;
            s->ops += (uint64_t)block;
        }
    }
    report(name, &o, &b, 0);
}

static llmc_client *emb_client(llmc_cache *c)
{
    /* Never contacted: every item is cached, and a miss fails the run. */
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "openai.api_key", "sk-bench");
    llmc_options_set(o, "openai.api_base", "http://127.0.0.1:9/v1");
    llmc_client *cl = NULL;
    llmc_err e;
    if (llmc_client_new(c, o, &cl, &e) != LLMC_OK) {
        fprintf(stderr, "bench: client: %s\n", e.msg);
        exit(1);
    }
    llmc_options_free(o);
    return cl;
}

/* 64 inputs of `dims`-dimension vectors stored as the client stores
 * them, then the lookup read per item and batched, the full request, and
 * the full request with a local tier, each against one raw MGET of the
 * same values. */
static void embeddings64(int dims)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "embeddings 64 x %dd", dims);
    static const char *const rows[] = {"read per item", "read batched", "request hit",
                                       "request hit l1"};
    int any = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char row[128];
        snprintf(row, sizeof row, "%s %s", prefix, rows[i]);
        any |= wanted(row);
    }
    if (!any)
        return;
    static char req[EMB_N * 40 + 128];
    size_t len = (size_t)snprintf(req, sizeof req,
                                  "{\"model\":\"text-embedding-3-small\",\"input\":[");
    for (int i = 0; i < EMB_N; i++)
        len += (size_t)snprintf(req + len, sizeof req - len, "%s\"bench input %d of %d\"",
                                i ? "," : "", i, dims);
    snprintf(req + len, sizeof req - len, "]}");

    static emb_ctx x;
    memset(&x, 0, sizeof x);
    x.c = our_open(1);
    x.cl = emb_client(x.c);
    x.req = req;
    x.rc = raw_connect();
    llmc_call *k = NULL;
    llmc_err e;
    if (llmc_call_prepare(x.cl, LLMC_CALL_EMBEDDING, req, LLMC_ZSTR, NULL, &k, &e) != LLMC_OK ||
        llmc_call_item_count(k) != EMB_N) {
        fprintf(stderr, "bench: prepare: %s\n", e.msg);
        exit(1);
    }
    llmc_buf body = LLMC_BUF_INIT;
    x.argv[0] = "MGET";
    x.argl[0] = 4;
    for (int i = 0; i < EMB_N; i++) {
        x.keys[i] = strdup(llmc_call_item_key(k, (size_t)i));
        x.klens[i] = strlen(x.keys[i]);
        x.argv[i + 1] = x.keys[i];
        x.argl[i + 1] = x.klens[i];
        x.lks[i] = (llmc_lookup)LLMC_LOOKUP_INIT;
        llmc_buf_clear(&body);
        llmc_buf_puts(&body, "{\"object\":\"embedding\",\"embedding\":[");
        for (int d = 0; d < dims; d++)
            llmc_buf_printf(&body, "%s%.8f", d ? "," : "", (double)((i * 7919 + d * 104729) % 20000) / 10000.0 - 1.0);
        llmc_buf_printf(&body, "],\"model\":\"text-embedding-3-small\",\"prompt_tokens\":5}");
        if (llmc_cache_put_entry(x.c, x.keys[i], x.klens[i], LLMC_CALL_EMBEDDING, body.data,
                                 body.len, 0, 0) != LLMC_OK)
            emb_fail(&x, "put_entry");
    }
    llmc_buf_free(&body);
    llmc_call_free(k);

    char name[96];
    snprintf(name, sizeof name, "%s read per item", prefix);
    emb_alternate(name, emb_per_item, &x);
    snprintf(name, sizeof name, "%s read batched", prefix);
    emb_alternate(name, emb_batch, &x);
    snprintf(name, sizeof name, "%s request hit", prefix);
    emb_alternate(name, emb_call, &x);

    /* The same request on a handle with a local tier (warmed once). */
    llmc_cache *plain = x.c;
    llmc_client *plain_cl = x.cl;
    char url[1200];
    snprintf(url, sizeof url, "%s%sl1_ttl=3600", g_url, strchr(g_url, '?') ? "&" : "?");
    if (llmc_cache_open(url, NULL, &x.c, &e) != LLMC_OK) {
        fprintf(stderr, "bench: open l1: %s\n", e.msg);
        exit(1);
    }
    x.cl = emb_client(x.c);
    for (int i = 0; i < 500; i++) {
        llmc_stats st;
        llmc_cache_stats(x.c, &st, sizeof st);
        if (st.l1_live)
            break;
        usleep(10000);
    }
    emb_call(&x);
    snprintf(name, sizeof name, "%s request hit l1", prefix);
    emb_alternate(name, emb_call, &x);
    llmc_client_free(x.cl);
    llmc_cache_close(x.c);

    for (int i = 0; i < EMB_N; i++) {
        llmc_lookup_free(&x.lks[i]);
        free((char *)x.keys[i]);
    }
    llmc_client_free(plain_cl);
    llmc_cache_close(plain);
    redisFree(x.rc);
}

/* ---- redis-benchmark, for reference ---- */

static void redis_benchmark(size_t vlen, int clients, const char *tests)
{
    const char *rb = testsrv_which("redis-benchmark");
    if (!rb)
        return;
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "'%s' -h %s -p %d %s%s%s -n %d -c %d -P 1 -d %zu -t %s -q --csv 2>/dev/null", rb,
             g_host, g_port, g_pass[0] ? "-a '" : "", g_pass, g_pass[0] ? "' --no-auth-warning" : "",
             (int)(30000 * g_seconds), clients, vlen, tests);
    FILE *f = popen(cmd, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "\"test\"", 6) == 0)
            continue;
        line[strcspn(line, "\n")] = 0;
        printf("  redis-benchmark -d %zu -c %d -P 1: %s\n", vlen, clients, line);
    }
    pclose(f);
}

int main(void)
{
    const char *s = getenv("LLMC_BENCH_THREADS");
    if (s && atoi(s) > 0)
        g_threads = atoi(s);
    g_only = getenv("LLMC_BENCH_ONLY");
    s = getenv("LLMC_BENCH_SECONDS");
    if (s && atof(s) > 0)
        g_seconds = atof(s);

    testsrv srv;
    memset(&srv, 0, sizeof srv);
    int own = 0;
    const char *url = getenv("LLMC_BENCH_REDIS_URL");
    if (url && *url) {
        llmc_url u;
        llmc_err e;
        if (llmc__url_parse(url, &u, &e) != LLMC_OK || u.n_hosts != 1) {
            fprintf(stderr, "bench: LLMC_BENCH_REDIS_URL: %s\n",
                    u.n_hosts != 1 ? "need one redis://host:port" : e.msg);
            return 1;
        }
        static char host[256];
        snprintf(host, sizeof host, "%s", u.hosts[0].host);
        g_host = host;
        g_port = u.hosts[0].port > 0 ? u.hosts[0].port : 6379;
        if (u.password)
            snprintf(g_pass, sizeof g_pass, "%s", u.password);
        if (u.path && u.path[0] == '/' && u.path[1])
            g_db = atoi(u.path + 1);
        snprintf(g_url, sizeof g_url, "%s", url);
        llmc__url_free(&u);
    } else {
        if (testsrv_mkdir(&srv, "bench-redis") != 0)
            return 1;
        g_port = testsrv_free_port();
        char port[16];
        snprintf(port, sizeof port, "%d", g_port);
        char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", NULL};
        if (testsrv_spawn(&srv, argv) != 0 || testsrv_wait_tcp(&srv, g_port, 10000) != 0) {
            fprintf(stderr, "bench: cannot start redis-server\n");
            testsrv_stop(&srv);
            return 1;
        }
        own = 1;
        snprintf(g_url, sizeof g_url, "redis://127.0.0.1:%d", g_port);
    }

    redisContext *rc = raw_connect();
    redisReply *info = redisCommand(rc, "INFO server");
    const char *ver = info && info->str ? strstr(info->str, "redis_version:") : NULL;
    char vbuf[32] = "?";
    if (ver)
        sscanf(ver, "redis_version:%31[^\r\n]", vbuf);
    if (info)
        freeReplyObject(info);
    redisFree(rc);
    printf("llmcache %s redis backend benchmark: redis-server %s at %s:%d, %ld CPUs, "
           "%d threads, %.1f s per side and case\n",
           llmc_version(), vbuf, g_host, g_port, sysconf(_SC_NPROCESSORS_ONLN), g_threads,
           g_seconds);
    printf("baseline: blocking hiredis %d.%d.%d (redisCommand; one MGET command for the "
           "batch), alternating with llmcache in short blocks\n",
           HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    printf("%-30s %10s %8s %8s | %10s %8s %8s | %s\n", "case", "ops/s", "p50 us", "p99 us",
           "base ops/s", "p50 us", "p99 us", "ratio");

    one_conn("get 1.5KB 1 conn", OP_GET, 1536, 0.9);
    one_conn("get 20KB 1 conn", OP_GET, 20480, 0.9);
    one_conn("set 1.5KB 1 conn", OP_SET, 1536, 0);
    one_conn("set 20KB 1 conn", OP_SET, 20480, 0);
    n_threads("get 1.5KB", OP_GET, 1536, 0.8);
    n_threads("get 20KB", OP_GET, 20480, 0.8);
    n_threads("set 1.5KB", OP_SET, 1536, 0);
    n_threads("set 20KB", OP_SET, 20480, 0);
    hit_path("hit path 1.5KB json (vs GET)", 1536, "json");
    hit_path("hit path 20KB json (vs GET)", 20480, "json");
    hit_path("hit path 1.5KB binary (vs GET)", 1536, "binary");
    hit_path("hit path 20KB binary (vs GET)", 20480, "binary");
    mget100("mget 100 x 1.5KB", 1536, 0.8);
    mget100("mget 100 x 20KB", 20480, 0.8);
    embeddings64(16);
    embeddings64(1536);

    if (g_only && *g_only)
        goto done;
    printf("reference, redis-benchmark --csv: test, requests/s, avg, min, p50, p95, p99, max "
           "latency (ms):\n");
    redis_benchmark(1536, 1, "get,set");
    redis_benchmark(1536, g_threads, "get");
    redis_benchmark(20480, 1, "get");

done:
    printf("%s\n", g_failed_targets ? "some targets missed" : "all targets met");
    if (own)
        testsrv_stop(&srv);
    return 0;
}
