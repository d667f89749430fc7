/* Redis Cluster and Sentinel backends, against real servers
 * started here: a cluster of 3 masters with one replica each (created
 * with redis-cli --cluster create), and a master + replica + 3 sentinels.
 * The tests that break things (resharding, killing a master) run last
 * in their case; the servers live in the parent (unchecked fixtures),
 * the tests in Check's forked children. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/redis/conn.h"
#include "internal.h"
#include "support/rcluster.h"
#include "support/redissrv.h"


static rcluster clu;
static int cluster_up;
static rcluster tclu;
static redissrv certsrv; /* its TLS certificates serve the TLS cluster */
static int tls_up;
static rsentinel tsen;
static int tls_sentinel_up;
static rsentinel sen;
static int sentinel_up;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cluster_setup(void)
{
    cluster_up = rcluster_start(&clu, 3, 1) == 0;
}
static void cluster_teardown(void)
{
    rcluster_stop(&clu);
}
static void tls_setup(void)
{
    tls_up = redissrv_start(&certsrv, REDISSRV_TLS) == 0 &&
             rcluster_start_tls(&tclu, 3, 0, certsrv.ca, certsrv.cert, certsrv.key,
                                certsrv.client_cert, certsrv.client_key) == 0;
    tls_sentinel_up = tls_up && rsentinel_start_tls(&tsen, certsrv.ca, certsrv.cert, certsrv.key,
                                                    certsrv.client_cert,
                                                    certsrv.client_key) == 0;
}
static void tls_teardown(void)
{
    rsentinel_stop(&tsen);
    rcluster_stop(&tclu);
    redissrv_stop(&certsrv);
}
static void sentinel_setup(void)
{
    sentinel_up = rsentinel_start(&sen) == 0;
}
static void sentinel_teardown(void)
{
    rsentinel_stop(&sen);
}

/* The open fails, or it succeeds (a server that resets the connection
 * looks like one going away) and then every call fails: the status of the
 * open or of a ping. */
static llmc_status open_or_ping(const char *url, llmc_err *e)
{
    llmc_cache *c = NULL;
    llmc_err_clear(e);
    llmc_status st = llmc_cache_open(url, NULL, &c, e);
    if (st == LLMC_OK) {
        st = llmc_cache_ping(c);
        snprintf(e->msg, sizeof e->msg, "%s", llmc_cache_errmsg(c));
        llmc_cache_close(c);
    }
    return st;
}

static llmc_cache *open_url(const char *url, const char *opt1, const char *val1)
{
    llmc_options *o = llmc_options_new();
    if (opt1)
        llmc_options_set(o, opt1, val1);
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc_cache_open(url, o, &c, &e);
    llmc_options_free(o);
    ck_assert_msg(st == LLMC_OK, "open %s: %s: %s", url, llmc_status_name(st), e.msg);
    return c;
}

static llmc_cache *open_cluster(void)
{
    ck_assert_msg(cluster_up, "the cluster did not start");
    return open_url(clu.url, NULL, NULL);
}

static llmc_status open_err(const char *url, llmc_err *e)
{
    llmc_cache *c = NULL;
    llmc_err_clear(e);
    llmc_status st = llmc_cache_open(url, NULL, &c, e);
    if (st == LLMC_OK)
        llmc_cache_close(c);
    return st;
}

typedef struct statq {
    const char *name;
    int64_t value;
} statq;
static void stat_cb(void *ud, const char *name, int64_t v)
{
    statq *q = ud;
    if (strcmp(name, q->name) == 0)
        q->value = v;
}
static int64_t stat_of(llmc_cache *c, const char *name)
{
    statq q = {name, -1};
    llmc_cache_stats_foreach(c, stat_cb, &q);
    return q.value;
}

/* Every value encodes its key, so a reply for the wrong key is caught. */
static size_t value_for(char *buf, size_t n, const char *key)
{
    return (size_t)snprintf(buf, n, "value-of<%s>-padding-padding-padding", key);
}

/* ---- basics ---- */

START_TEST(t_slots_match_redis)
{
    /* The CRC16 check value from the cluster spec, hash tags, and
     * agreement with the server's own CLUSTER KEYSLOT. */
    ck_assert_uint_eq(llmc__redis_key_slot("123456789", 9), 12739);
    ck_assert_uint_eq(llmc__redis_key_slot("{user1}.a", 9), llmc__redis_key_slot("user1", 5));
    ck_assert_uint_eq(llmc__redis_key_slot("foo{}{bar}", 10),
                      llmc__redis_key_slot("foo{}{bar}", 10)); /* empty tag: whole key */
    ck_assert_uint_ne(llmc__redis_key_slot("foo{}{bar}", 10), llmc__redis_key_slot("bar", 3));
    ck_assert_uint_eq(llmc__redis_key_slot("foo{{bar}}zap", 13), llmc__redis_key_slot("{bar", 4));
    ck_assert_msg(cluster_up, "the cluster did not start");
    const char *keys[] = {"a", "llmc:3f2a", "{tag}x", "x{tag}y", "{}", "{a}{b}", "ns:{", "é"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *args[] = {"CLUSTER", "KEYSLOT", keys[i], NULL};
        long long s = rcluster_int(&clu, 0, args);
        ck_assert_msg(s == (long long)llmc__redis_key_slot(keys[i], strlen(keys[i])),
                      "slot of '%s': server %lld", keys[i], s);
    }
}
END_TEST

START_TEST(t_basic)
{
    llmc_cache *c = open_cluster();
    ck_assert_str_eq(llmc_cache_backend_name(c), "redis-cluster");
    ck_assert(llmc_cache_caps(c) & LLMC_CAP_THREAD_SAFE);
    const char *key = "basic:k1";
    const char val[] = "hello\0cluster";
    ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, sizeof val, 60000), LLMC_OK);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_OK);
    ck_assert_uint_eq(b.len, sizeof val);
    ck_assert(memcmp(b.data, val, sizeof val) == 0);
    int64_t ttl = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, key, strlen(key), &ttl), LLMC_OK);
    ck_assert(ttl > 0 && ttl <= 60000);
    /* Redis's own PTTL agrees (redis-cli -c follows the redirect). */
    const char *pttl[] = {"PTTL", key, NULL};
    char *out = rcluster_cli_port(clu.node[0].port, 1, pttl);
    ck_assert_ptr_nonnull(out);
    long long spt = atoll(out);
    free(out);
    ck_assert_msg(spt > 0 && spt <= 60000, "server PTTL %lld", spt);
    ck_assert_int_eq(llmc_cache_exists(c, key, strlen(key)), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, key, strlen(key)), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, key, strlen(key)), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ttl(c, key, strlen(key), &ttl), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    ck_assert(stat_of(c, "nodes") >= 3); /* replicas are listed once synced */
    ck_assert_int_eq(stat_of(c, "masters"), 3);
    ck_assert_int_eq(stat_of(c, "slots_covered"), 16384);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_keys_on_every_master)
{
    llmc_cache *c = open_cluster();
    char key[64], val[128];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "spread:%d", i);
        size_t vl = value_for(val, sizeof val, key);
        ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, vl, LLMC_TTL_NEVER), LLMC_OK);
    }
    int masters = 0;
    for (int i = 0; i < clu.n; i++) {
        if (rcluster_is_master(&clu, i) != 1)
            continue;
        masters++;
        const char *args[] = {"DBSIZE", NULL};
        long long n = rcluster_int(&clu, i, args);
        ck_assert_msg(n > 0, "master %d (port %d) holds no keys", i, clu.node[i].port);
    }
    ck_assert_int_eq(masters, 3);
    /* What the library stored is what redis-cli -c reads. */
    const char *get[] = {"GET", "spread:7", NULL};
    char *out = rcluster_cli_port(clu.node[1].port, 1, get);
    ck_assert_ptr_nonnull(out);
    value_for(val, sizeof val, "spread:7");
    ck_assert_msg(strncmp(out, val, strlen(val)) == 0, "redis-cli -c GET: %s", out);
    free(out);
    /* Hash tags keep keys together. */
    const char *tagged[] = {"{conv42}:a", "{conv42}:b", "{conv42}:c"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(llmc_cache_set(c, tagged[i], strlen(tagged[i]), "x", 1, LLMC_TTL_NEVER),
                         LLMC_OK);
    char slot[16];
    snprintf(slot, sizeof slot, "%u", llmc__redis_key_slot("conv42", 6));
    const char *cnt[] = {"CLUSTER", "COUNTKEYSINSLOT", slot, NULL};
    long long total = 0;
    for (int i = 0; i < clu.n; i++)
        if (rcluster_is_master(&clu, i) == 1) {
            long long v = rcluster_int(&clu, i, cnt);
            total += v > 0 ? v : 0;
        }
    ck_assert_int_eq(total, 3);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_batches_flush_scan)
{
    llmc_cache *c = open_cluster();
    enum { N = 200 };
    char keys[N + 10][48], vals[N][128];
    const char *kp[N + 10];
    size_t kl[N + 10];
    llmc_kv items[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "batchns:%d", i);
        size_t vl = value_for(vals[i], sizeof vals[i], keys[i]);
        items[i] = (llmc_kv){keys[i], strlen(keys[i]), vals[i], vl, i % 2 ? 60000 : 0};
    }
    /* Keys over every slot owner in one call: no CROSSSLOT. */
    ck_assert_int_eq(llmc_cache_mset(c, N, items), LLMC_OK);
    for (int i = 0; i < N + 10; i++) {
        if (i >= N)
            snprintf(keys[i], sizeof keys[i], "batchns:absent%d", i);
        kp[i] = keys[i];
        kl[i] = strlen(keys[i]);
    }
    llmc_buf *bv = calloc(N + 10, sizeof *bv);
    llmc_status sts[N + 10];
    ck_assert_int_eq(llmc_cache_mget(c, N + 10, kp, kl, bv, sts), LLMC_OK);
    for (int i = 0; i < N + 10; i++) {
        if (i >= N) {
            ck_assert_int_eq(sts[i], LLMC_MISS);
            continue;
        }
        ck_assert_int_eq(sts[i], LLMC_OK);
        ck_assert_uint_eq(bv[i].len, strlen(vals[i]));
        ck_assert(memcmp(bv[i].data, vals[i], bv[i].len) == 0);
    }
    /* Another namespace survives the flush. */
    ck_assert_int_eq(llmc_cache_set(c, "otherns:keep", 12, "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "batchnsx:keep", 13, "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    uint64_t deleted = 0;
    ck_assert_int_eq(llmc_cache_flush(c, "batchns", &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, N);
    ck_assert_int_eq(llmc_cache_mget(c, N, kp, kl, bv, sts), LLMC_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(sts[i], LLMC_MISS);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "otherns:keep", 12, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "batchnsx:keep", 13, &b), LLMC_OK);
    llmc_buf_free(&b);
    for (int i = 0; i < N + 10; i++)
        llmc_buf_free(&bv[i]);
    free(bv);
    llmc_cache_close(c);
}
END_TEST

static int count_cb(void *ud, const char *key, size_t klen)
{
    (void)key;
    (void)klen;
    (*(int *)ud)++;
    return 0;
}

START_TEST(t_scan_all_masters)
{
    llmc_cache *c = open_cluster();
    char key[64];
    for (int i = 0; i < 120; i++) {
        snprintf(key, sizeof key, "scanme:%d", i);
        ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    }
    int n = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "scanme:", 7, count_cb, &n), LLMC_OK);
    ck_assert_int_eq(n, 120);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_errors)
{
    ck_assert_msg(cluster_up, "the cluster did not start");
    llmc_err e;
    char url[512];
    /* Wrong password: EAUTH, and the password is not echoed. */
    snprintf(url, sizeof url, "redis-cluster://:wrong-Secret-99@127.0.0.1:%d", clu.node[0].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_EAUTH);
    ck_assert_ptr_null(strstr(e.msg, "wrong-Secret-99"));
    /* Nobody listening: the handle opens (the servers may be starting)
     * and each call says why it failed. */
    int dead = testsrv_free_port();
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d?connect_timeout_ms=500", dead);
    ck_assert_int_eq(open_err(url, &e), LLMC_OK);
    {
        llmc_cache *dc = open_url(url, NULL, NULL);
        llmc_buf db = LLMC_BUF_INIT;
        ck_assert_int_eq(llmc_cache_get(dc, "dead:k", 6, &db), LLMC_ECONN);
        ck_assert_int_eq(llmc_cache_ping(dc), LLMC_ECONN);
        llmc_cache_close(dc);
    }
    /* Configuration errors still fail the open. */
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d?refresh_interval_ms=x", dead);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    /* A dead seed is skipped when another one answers. */
    snprintf(url, sizeof url, "redis-cluster://:%s@127.0.0.1:%d,127.0.0.1:%d?connect_timeout_ms=500",
             RCLUSTER_PASSWORD, dead, clu.node[1].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_OK);
    /* A host name as seed; the nodes are then learnt by address. */
    snprintf(url, sizeof url, "redis-cluster://:%s@localhost:%d", RCLUSTER_PASSWORD,
             clu.node[2].port);
    llmc_cache *c = open_url(url, NULL, NULL);
    ck_assert_int_eq(llmc_cache_set(c, "seed:k", 6, "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(stat_of(c, "masters"), 3);
    llmc_cache_close(c);
    /* A cluster has only database 0. */
    snprintf(url, sizeof url, "redis-cluster://:%s@127.0.0.1:%d/3", RCLUSTER_PASSWORD,
             clu.node[0].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "database 0") != NULL, "%s", e.msg);
    /* TLS options without TLS. */
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d?tls_ca=/x", clu.node[0].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "tls_ca") != NULL, "%s", e.msg);
    /* Unknown option. */
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d?bogus=1", clu.node[0].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    /* A plain (non-cluster) server. */
    redissrv plain;
    ck_assert_int_eq(redissrv_start(&plain, REDISSRV_TCP), 0);
    snprintf(url, sizeof url, "redis-cluster://:%s@127.0.0.1:%d", REDISSRV_PASSWORD, plain.port);
    llmc_status st = open_err(url, &e);
    redissrv_stop(&plain);
    ck_assert_int_eq(st, LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "not a cluster") != NULL, "%s", e.msg);
    ck_assert_ptr_null(strstr(e.msg, REDISSRV_PASSWORD));
    snprintf(url, sizeof url, "rediss-cluster://127.0.0.1:%d?tls=0", clu.node[0].port);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    ck_assert_int_eq(open_err("redis-sentinel://127.0.0.1:26379/a?master_name=b", &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "twice") != NULL, "%s", e.msg);
    /* Sentinel URL without a master name. */
    ck_assert_int_eq(open_err("redis-sentinel://127.0.0.1:26379", &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "master name") != NULL, "%s", e.msg);
}
END_TEST

/* A slot migration by hand, stopped half way: the library must follow
 * ASK (with ASKING) for the key already moved, read the others from the
 * source, and split a batch that the source answers with TRYAGAIN. */
START_TEST(t_ask_redirect)
{
    llmc_cache *c = open_cluster();
    const char *ka = "{asktest}a", *kb = "{asktest}b", *kc = "{asktest}c";
    char va[128], vb[128], vc[128];
    size_t la = value_for(va, sizeof va, ka), lb = value_for(vb, sizeof vb, kb),
           lc = value_for(vc, sizeof vc, kc);
    ck_assert_int_eq(llmc_cache_set(c, ka, strlen(ka), va, la, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, kb, strlen(kb), vb, lb, LLMC_TTL_NEVER), LLMC_OK);
    char slot[16];
    snprintf(slot, sizeof slot, "%u", llmc__redis_key_slot("asktest", 7));
    int src = -1, dst = -1;
    const char *cnt[] = {"CLUSTER", "COUNTKEYSINSLOT", slot, NULL};
    for (int i = 0; i < clu.n; i++) {
        if (rcluster_is_master(&clu, i) != 1)
            continue;
        if (rcluster_int(&clu, i, cnt) == 2)
            src = i;
        else if (dst < 0)
            dst = i;
    }
    ck_assert(src >= 0 && dst >= 0);
    char src_id[64], dst_id[64], dport[16];
    ck_assert_int_eq(rcluster_node_id(&clu, src, src_id, sizeof src_id), 0);
    ck_assert_int_eq(rcluster_node_id(&clu, dst, dst_id, sizeof dst_id), 0);
    snprintf(dport, sizeof dport, "%d", clu.node[dst].port);
    const char *imp[] = {"CLUSTER", "SETSLOT", slot, "IMPORTING", src_id, NULL};
    const char *mig[] = {"CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id, NULL};
    const char *mv[] = {"MIGRATE", "127.0.0.1", dport, "", "0", "5000", "AUTH",
                        RCLUSTER_PASSWORD, "KEYS", ka, NULL};
    char *out = rcluster_cli(&clu, dst, imp);
    ck_assert_msg(out && strncmp(out, "OK", 2) == 0, "IMPORTING: %s", out ? out : "?");
    free(out);
    out = rcluster_cli(&clu, src, mig);
    ck_assert_msg(out && strncmp(out, "OK", 2) == 0, "MIGRATING: %s", out ? out : "?");
    free(out);
    out = rcluster_cli(&clu, src, mv);
    ck_assert_msg(out && strncmp(out, "OK", 2) == 0, "MIGRATE: %s", out ? out : "?");
    free(out);

    llmc_buf b = LLMC_BUF_INIT;
    int64_t ask0 = stat_of(c, "redirects_ask");
    ck_assert_int_eq(llmc_cache_get(c, ka, strlen(ka), &b), LLMC_OK); /* ASK -> dst */
    ck_assert(b.len == la && memcmp(b.data, va, la) == 0);
    ck_assert_int_gt(stat_of(c, "redirects_ask"), ask0);
    ck_assert_int_eq(llmc_cache_get(c, kb, strlen(kb), &b), LLMC_OK); /* still on src */
    ck_assert(b.len == lb && memcmp(b.data, vb, lb) == 0);
    /* A new key of a migrating slot is created on the target (ASK). */
    ck_assert_int_eq(llmc_cache_set(c, kc, strlen(kc), vc, lc, LLMC_TTL_NEVER), LLMC_OK);
    const char *dbs[] = {"DBSIZE", NULL};
    long long before = rcluster_int(&clu, dst, dbs);
    ck_assert_int_ge(before, 2);
    /* A batch over the half-moved slot: MGET gets TRYAGAIN or ASK on the
     * source; the library splits it. */
    const char *keys[3] = {ka, kb, kc};
    size_t kl[3] = {strlen(ka), strlen(kb), strlen(kc)};
    llmc_buf bv[3];
    llmc_status sts[3];
    memset(bv, 0, sizeof bv);
    ck_assert_int_eq(llmc_cache_mget(c, 3, keys, kl, bv, sts), LLMC_OK);
    const char *want[3] = {va, vb, vc};
    size_t wl[3] = {la, lb, lc};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sts[i], LLMC_OK);
        ck_assert(bv[i].len == wl[i] && memcmp(bv[i].data, want[i], wl[i]) == 0);
        llmc_buf_free(&bv[i]);
    }
    /* Finish the migration: the slot now belongs to dst (MOVED). */
    const char *mv2[] = {"MIGRATE", "127.0.0.1", dport, "", "0", "5000", "AUTH",
                         RCLUSTER_PASSWORD, "KEYS", kb, NULL};
    free(rcluster_cli(&clu, src, mv2));
    const char *own[] = {"CLUSTER", "SETSLOT", slot, "NODE", dst_id, NULL};
    free(rcluster_cli(&clu, dst, own));
    free(rcluster_cli(&clu, src, own));
    for (int i = 0; i < clu.n; i++)
        if (i != src && i != dst && rcluster_is_master(&clu, i) == 1)
            free(rcluster_cli(&clu, i, own));
    int64_t moved0 = stat_of(c, "redirects_moved");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(llmc_cache_get(c, keys[i], kl[i], &b), LLMC_OK);
        ck_assert(b.len == wl[i] && memcmp(b.data, want[i], wl[i]) == 0);
    }
    ck_assert_int_gt(stat_of(c, "redirects_moved"), moved0);
    ck_assert_int_eq(rcluster_wait_ok(&clu, 30000), 0);
    /* Leave a cluster every node agrees on, for the reshard test. */
    ck_assert_int_eq(rcluster_wait_agree(&clu, 30000), 0);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

/* ---- load while the topology changes ---- */

typedef struct loader {
    llmc_cache *c;
    const char *prefix;
    int nkeys;
    atomic_int stop;
    atomic_long ok, errors, wrong, misses, batches;
    atomic_int last_error;
} loader;

static void *load_fn(void *p)
{
    loader *l = p;
    char key[64], val[128];
    llmc_buf b = LLMC_BUF_INIT;
    for (long i = 0; !atomic_load(&l->stop); i++) {
        snprintf(key, sizeof key, "%s:%ld", l->prefix, i % l->nkeys);
        size_t vl = value_for(val, sizeof val, key);
        llmc_status st = llmc_cache_set(l->c, key, strlen(key), val, vl, LLMC_TTL_NEVER);
        if (st != LLMC_OK) {
            l->errors++;
            l->last_error = st;
            continue;
        }
        st = llmc_cache_get(l->c, key, strlen(key), &b);
        if (st == LLMC_OK) {
            if (b.len != vl || memcmp(b.data, val, vl) != 0)
                l->wrong++;
            else
                l->ok++;
        } else if (st == LLMC_MISS) {
            l->misses++;
        } else {
            l->errors++;
            l->last_error = st;
        }
        if (i % 16 == 0) {
            /* A batch over many slots too. */
            enum { B = 24 };
            char bk[B][64];
            const char *kp[B];
            size_t kl[B];
            llmc_buf bv[B];
            llmc_status sts[B];
            memset(bv, 0, sizeof bv);
            for (int j = 0; j < B; j++) {
                snprintf(bk[j], sizeof bk[j], "%s:%ld", l->prefix, (i + j * 7) % l->nkeys);
                kp[j] = bk[j];
                kl[j] = strlen(bk[j]);
            }
            st = llmc_cache_mget(l->c, B, kp, kl, bv, sts);
            if (st != LLMC_OK) {
                l->errors++;
                l->last_error = st;
            }
            for (int j = 0; j < B; j++) {
                if (sts[j] == LLMC_OK) {
                    size_t el = value_for(val, sizeof val, bk[j]);
                    if (bv[j].len != el || memcmp(bv[j].data, val, el) != 0)
                        l->wrong++;
                } else if (sts[j] != LLMC_MISS && st == LLMC_OK) {
                    l->errors++;
                    l->last_error = sts[j];
                }
                llmc_buf_free(&bv[j]);
            }
            l->batches++;
        }
    }
    llmc_buf_free(&b);
    return NULL;
}

static void wait_progress(loader *l, long more, int timeout_ms)
{
    long start = l->ok;
    long long end = now_ms() + timeout_ms;
    while (l->ok < start + more && now_ms() < end)
        usleep(20000);
}

START_TEST(t_reshard_under_load)
{
    /* A generous timeout: what is tested is that redirects never surface,
     * not how fast a loaded machine answers. */
    ck_assert_msg(cluster_up, "the cluster did not start");
    llmc_cache *c = open_url(clu.url, "command_timeout_ms", "5000");
    loader l;
    memset(&l, 0, sizeof l);
    l.c = c;
    l.prefix = "reshard";
    l.nkeys = 3000;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, load_fn, &l);
    wait_progress(&l, 500, 30000);
    ck_assert_msg(rcluster_wait_agree(&clu, 30000) == 0, "the nodes do not agree on the slots");
    /* Move 1000 slots from one master to another while the load runs. */
    int from = -1, to = -1;
    for (int i = 0; i < clu.n; i++)
        if (rcluster_is_master(&clu, i) == 1) {
            if (from < 0)
                from = i;
            else if (to < 0)
                to = i;
        }
    ck_assert(from >= 0 && to >= 0);
    char from_id[64], to_id[64], addr[32], port[16];
    ck_assert_int_eq(rcluster_node_id(&clu, from, from_id, sizeof from_id), 0);
    ck_assert_int_eq(rcluster_node_id(&clu, to, to_id, sizeof to_id), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", clu.node[from].port);
    snprintf(port, sizeof port, "%d", clu.node[from].port);
    const char *argv[] = {"redis-cli", "-a", RCLUSTER_PASSWORD, "--no-auth-warning",
                          "--cluster", "reshard", addr, "--cluster-from", from_id,
                          "--cluster-to", to_id, "--cluster-slots", "1000", "--cluster-yes",
                          NULL};
    int rc = testsrv_run(clu.node[from].srv.dir, (char *const *)argv);
    ck_assert_msg(rc == 0, "redis-cli --cluster reshard failed (see %s/run.log)",
                  clu.node[from].srv.dir);
    wait_progress(&l, 500, 30000);
    atomic_store(&l.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    int64_t moved = stat_of(c, "redirects_moved"), ask = stat_of(c, "redirects_ask");
    fprintf(stderr,
            "reshard: ok %ld, misses %ld, errors %ld, wrong %ld, batches %ld; MOVED %lld, ASK "
            "%lld, refreshes %lld\n",
            (long)l.ok, (long)l.misses, (long)l.errors, (long)l.wrong, (long)l.batches,
            (long long)moved, (long long)ask, (long long)stat_of(c, "refreshes"));
    ck_assert_msg(l.errors == 0, "%ld errors surfaced during resharding (last %s)",
                  (long)l.errors, llmc_status_name((llmc_status)l.last_error));
    ck_assert_int_eq(l.wrong, 0);
    /* The slots really moved, and the client now routes them directly. */
    ck_assert(moved + ask > 0);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_failover_under_load)
{
    llmc_cache *c = open_cluster();
    loader l;
    memset(&l, 0, sizeof l);
    l.c = c;
    l.prefix = "failover";
    l.nkeys = 2000;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, load_fn, &l);
    wait_progress(&l, 300, 30000);
    int victim = -1;
    for (int i = 0; i < clu.n && victim < 0; i++)
        if (rcluster_is_master(&clu, i) == 1 && rcluster_replica_of(&clu, i) >= 0)
            victim = i;
    ck_assert(victim >= 0);
    int heir = rcluster_replica_of(&clu, victim);
    fprintf(stderr, "failover: killing master port %d, replica port %d\n",
            clu.node[victim].port, clu.node[heir].port);
    rcluster_kill(&clu, victim);
    /* The replica is promoted by the cluster (node timeout 2 s); if that
     * takes too long on a loaded machine, force it. */
    long long end = now_ms() + 20000;
    while (rcluster_is_master(&clu, heir) != 1 && now_ms() < end)
        usleep(100000);
    if (rcluster_is_master(&clu, heir) != 1) {
        const char *args[] = {"CLUSTER", "FAILOVER", "TAKEOVER", NULL};
        free(rcluster_cli(&clu, heir, args));
        end = now_ms() + 20000;
        while (rcluster_is_master(&clu, heir) != 1 && now_ms() < end)
            usleep(100000);
    }
    ck_assert_msg(rcluster_is_master(&clu, heir) == 1, "the replica was not promoted");
    ck_assert_int_eq(rcluster_wait_ok(&clu, 30000), 0);
    /* The cache recovers on its own once the new master is known. */
    long errs_before = l.errors;
    wait_progress(&l, 1000, 30000);
    atomic_store(&l.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr,
            "failover: ok %ld, misses %ld, errors %ld (during failover), wrong %ld; refreshes "
            "%lld\n",
            (long)l.ok, (long)l.misses, (long)l.errors, (long)l.wrong,
            (long long)stat_of(c, "refreshes"));
    ck_assert_int_eq(l.wrong, 0);
    (void)errs_before;
    /* Every key works afterwards. */
    char key[64], val[128];
    llmc_buf b = LLMC_BUF_INIT;
    int fails = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "after:%d", i);
        size_t vl = value_for(val, sizeof val, key);
        if (llmc_cache_set(c, key, strlen(key), val, vl, LLMC_TTL_NEVER) != LLMC_OK) {
            fails++;
            continue;
        }
        ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_OK);
        ck_assert(b.len == vl && memcmp(b.data, val, vl) == 0);
    }
    ck_assert_int_eq(fails, 0);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    ck_assert_int_eq(stat_of(c, "masters"), 3);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

/* ---- TLS ---- */

START_TEST(t_tls_cluster)
{
    ck_assert_msg(tls_up, "the TLS cluster did not start");
    /* rediss-cluster:// and redis-cluster://...&tls=1 alike. */
    char url[2200];
    snprintf(url, sizeof url, "%s", tclu.url);
    if (_i == 1) {
        memmove(url + 5, url + 6, strlen(url + 6) + 1); /* rediss- -> redis- */
        strcat(url, "&tls=1");
    }
    llmc_cache *c = open_url(url, NULL, NULL);
    enum { N = 60 };
    char keys[N][32], vals[N][128];
    llmc_kv items[N];
    const char *kp[N];
    size_t kl[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "tls%d:%d", _i, i);
        size_t vl = value_for(vals[i], sizeof vals[i], keys[i]);
        items[i] = (llmc_kv){keys[i], strlen(keys[i]), vals[i], vl, 0};
        kp[i] = keys[i];
        kl[i] = strlen(keys[i]);
    }
    ck_assert_int_eq(llmc_cache_mset(c, N, items), LLMC_OK);
    llmc_buf bv[N];
    llmc_status sts[N];
    memset(bv, 0, sizeof bv);
    ck_assert_int_eq(llmc_cache_mget(c, N, kp, kl, bv, sts), LLMC_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(sts[i], LLMC_OK);
        ck_assert(bv[i].len == strlen(vals[i]) && memcmp(bv[i].data, vals[i], bv[i].len) == 0);
        llmc_buf_free(&bv[i]);
    }
    ck_assert_int_eq(stat_of(c, "masters"), 3);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    uint64_t deleted = 0;
    char ns[8];
    snprintf(ns, sizeof ns, "tls%d", _i);
    ck_assert_int_eq(llmc_cache_flush(c, ns, &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, N);
    llmc_cache_close(c);
    /* Without the client certificate the server refuses (or resets the
     * connection after the handshake). */
    llmc_err e;
    snprintf(url, sizeof url, "rediss-cluster://:%s@127.0.0.1:%d?tls_ca=%s&connect_timeout_ms=2000",
             RCLUSTER_PASSWORD, tclu.node[0].port, certsrv.ca);
    ck_assert_int_ne(open_or_ping(url, &e), LLMC_OK);
}
END_TEST

START_TEST(t_tls_sentinel)
{
    ck_assert_msg(tls_sentinel_up, "the TLS sentinel setup did not start");
    llmc_cache *c = open_url(tsen.url, NULL, NULL);
    ck_assert_str_eq(llmc_cache_backend_name(c), "redis-sentinel");
    ck_assert_int_eq(stat_of(c, "master_port"), tsen.node[0].port);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_set(c, "tsent:k", 7, "over-tls", 8, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "tsent:k", 7, &b), LLMC_OK);
    ck_assert(b.len == 8 && memcmp(b.data, "over-tls", 8) == 0);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_buf_free(&b);
    llmc_cache_close(c);
    /* Plain TCP to the TLS sentinel port: the open or every call fails. */
    char url[512];
    llmc_err e;
    snprintf(url, sizeof url, "redis-sentinel://:%s@127.0.0.1:%d/%s?connect_timeout_ms=1000",
             RCLUSTER_PASSWORD, tsen.sentinel[0].port, RSENTINEL_MASTER);
    ck_assert_int_ne(open_or_ping(url, &e), LLMC_OK);
}
END_TEST

/* ---- Sentinel ---- */

START_TEST(t_sentinel_failover)
{
    ck_assert_msg(sentinel_up, "the sentinel setup did not start");
    llmc_cache *c = open_url(sen.url, "refresh_interval_ms", "500");
    ck_assert_str_eq(llmc_cache_backend_name(c), "redis-sentinel");
    ck_assert_int_eq(stat_of(c, "master_port"), sen.node[0].port);
    char key[64], val[128];
    llmc_buf b = LLMC_BUF_INIT;
    snprintf(key, sizeof key, "sent:before");
    size_t vl = value_for(val, sizeof val, key);
    ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, vl, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);

    loader l;
    memset(&l, 0, sizeof l);
    l.c = c;
    l.prefix = "sent";
    l.nkeys = 500;
    pthread_t th;
    pthread_create(&th, NULL, load_fn, &l);
    wait_progress(&l, 200, 30000);
    /* Force a failover; sentinels refuse until they know a good
     * replica, so retry for a while. */
    const char *fo[] = {"SENTINEL", "FAILOVER", RSENTINEL_MASTER, NULL};
    long long end = now_ms() + 40000;
    int started = 0;
    while (!started && now_ms() < end) {
        char *out = rsentinel_cli(&sen, 0, fo);
        started = out && strncmp(out, "OK", 2) == 0;
        free(out);
        if (!started)
            usleep(500000);
    }
    ck_assert_msg(started, "SENTINEL FAILOVER was not accepted");
    end = now_ms() + 40000;
    while (rsentinel_master_port(&sen) != sen.node[1].port && now_ms() < end)
        usleep(100000);
    ck_assert_int_eq(rsentinel_master_port(&sen), sen.node[1].port);
    /* Writes continue, on the new master. */
    snprintf(key, sizeof key, "sent:after");
    vl = value_for(val, sizeof val, key);
    int landed = 0;
    end = now_ms() + 30000;
    while (!landed && now_ms() < end) {
        if (llmc_cache_set(c, key, strlen(key), val, vl, LLMC_TTL_NEVER) == LLMC_OK) {
            const char *get[] = {"GET", key, NULL};
            char *out = rcluster_cli_port(sen.node[1].port, 0, get);
            landed = out && strncmp(out, val, vl) == 0;
            free(out);
        }
        if (!landed)
            usleep(100000);
    }
    ck_assert_msg(landed, "a write after the failover did not reach the new master");
    wait_progress(&l, 300, 30000);
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "sentinel: ok %ld, misses %ld, errors %ld, wrong %ld, master changes %lld\n",
            (long)l.ok, (long)l.misses, (long)l.errors, (long)l.wrong,
            (long long)stat_of(c, "master_changes"));
    ck_assert_int_eq(l.wrong, 0);
    ck_assert_int_eq(stat_of(c, "master_port"), sen.node[1].port);
    ck_assert(stat_of(c, "master_changes") >= 1);
    /* Writes after the failover all succeed. */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "sent:post:%d", i);
        vl = value_for(val, sizeof val, key);
        ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, vl, LLMC_TTL_NEVER), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_OK);
        ck_assert(b.len == vl && memcmp(b.data, val, vl) == 0);
    }
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_sentinel_errors)
{
    ck_assert_msg(sentinel_up, "the sentinel setup did not start");
    llmc_err e;
    char url[512];
    snprintf(url, sizeof url, "redis-sentinel://:%s@127.0.0.1:%d/nosuchmaster?sentinel_password=%s",
             RCLUSTER_PASSWORD, sen.sentinel[0].port, RSENTINEL_PASSWORD);
    ck_assert_int_eq(open_err(url, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "nosuchmaster") != NULL, "%s", e.msg);
    /* Wrong master password. */
    snprintf(url, sizeof url, "redis-sentinel://:badpass-77@127.0.0.1:%d/%s?sentinel_password=%s",
             sen.sentinel[0].port, RSENTINEL_MASTER, RSENTINEL_PASSWORD);
    ck_assert_int_eq(open_err(url, &e), LLMC_EAUTH);
    ck_assert_ptr_null(strstr(e.msg, "badpass-77"));
    /* Sentinels that need a password, and none (or a wrong one) given. */
    snprintf(url, sizeof url, "redis-sentinel://:%s@127.0.0.1:%d/%s", RCLUSTER_PASSWORD,
             sen.sentinel[0].port, RSENTINEL_MASTER);
    ck_assert_int_eq(open_err(url, &e), LLMC_EAUTH);
    snprintf(url, sizeof url, "redis-sentinel://:%s@127.0.0.1:%d/%s?sentinel_password=nope-55",
             RCLUSTER_PASSWORD, sen.sentinel[0].port, RSENTINEL_MASTER);
    ck_assert_int_eq(open_err(url, &e), LLMC_EAUTH);
    ck_assert_ptr_null(strstr(e.msg, "nope-55"));
    /* A dead sentinel first in the list is skipped. */
    snprintf(url, sizeof url,
             "redis-sentinel://:%s@127.0.0.1:%d,127.0.0.1:%d/%s?sentinel_password=%s"
             "&connect_timeout_ms=500",
             RCLUSTER_PASSWORD, testsrv_free_port(), sen.sentinel[1].port, RSENTINEL_MASTER,
             RSENTINEL_PASSWORD);
    ck_assert_int_eq(open_err(url, &e), LLMC_OK);
    /* No sentinel answers: the handle opens, each call fails with the
     * reason, the master password is not in it. */
    snprintf(url, sizeof url,
             "redis-sentinel://:%s@127.0.0.1:%d/%s?connect_timeout_ms=300&command_timeout_ms=300",
             RCLUSTER_PASSWORD, testsrv_free_port(), RSENTINEL_MASTER);
    {
        llmc_cache *dc = open_url(url, NULL, NULL);
        llmc_buf db = LLMC_BUF_INIT;
        ck_assert_int_eq(llmc_cache_set(dc, "sdead:k", 7, "v", 1, 0), LLMC_ECONN);
        ck_assert_int_eq(llmc_cache_get(dc, "sdead:k", 7, &db), LLMC_ECONN);
        ck_assert_int_eq(llmc_cache_ping(dc), LLMC_ECONN);
        ck_assert_ptr_null(strstr(llmc_cache_errmsg(dc), RCLUSTER_PASSWORD));
        llmc_cache_close(dc);
    }
    /* db=N selects a database on the master. */
    llmc_cache *d = open_url(sen.url, "db", "3");
    ck_assert_int_eq(llmc_cache_set(d, "sdb:k", 5, "in-db-3", 7, LLMC_TTL_NEVER), LLMC_OK);
    llmc_cache_close(d);
    const char *get3[] = {"-n", "3", "GET", "sdb:k", NULL};
    char *out = rcluster_cli_port(sen.node[0].port, 0, get3);
    ck_assert_msg(out && strncmp(out, "in-db-3", 7) == 0, "GET in db 3: %s", out ? out : "?");
    free(out);
    const char *get0[] = {"GET", "sdb:k", NULL};
    out = rcluster_cli_port(sen.node[0].port, 0, get0);
    ck_assert_msg(out && strncmp(out, "in-db-3", 7) != 0, "the key is in db 0 too");
    free(out);
    /* Batches, flush and scan through the sentinel-found master. */
    llmc_cache *c = open_url(sen.url, NULL, NULL);
    llmc_kv items[3] = {{"sb:1", 4, "a", 1, 0}, {"sb:2", 4, "b", 1, 0}, {"sb:3", 4, "c", 1, 0}};
    ck_assert_int_eq(llmc_cache_mset(c, 3, items), LLMC_OK);
    int n = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "sb:", 3, count_cb, &n), LLMC_OK);
    ck_assert_int_eq(n, 3);
    uint64_t deleted = 0;
    ck_assert_int_eq(llmc_cache_flush(c, "sb", &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, 3);
    llmc_cache_close(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("redis_cluster");
    TCase *tc = tcase_create("cluster");
    tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, t_slots_match_redis);
    tcase_add_test(tc, t_basic);
    tcase_add_test(tc, t_keys_on_every_master);
    tcase_add_test(tc, t_batches_flush_scan);
    tcase_add_test(tc, t_scan_all_masters);
    tcase_add_test(tc, t_errors);
    tcase_add_test(tc, t_ask_redirect);
    tcase_add_test(tc, t_reshard_under_load);
    tcase_add_test(tc, t_failover_under_load);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("tls");
    tcase_add_unchecked_fixture(tt, tls_setup, tls_teardown);
    tcase_set_timeout(tt, 120);
    tcase_add_loop_test(tt, t_tls_cluster, 0, 2);
    tcase_add_test(tt, t_tls_sentinel);
    suite_add_tcase(s, tt);
    TCase *ts = tcase_create("sentinel");
    tcase_add_unchecked_fixture(ts, sentinel_setup, sentinel_teardown);
    tcase_set_timeout(ts, 150);
    tcase_add_test(ts, t_sentinel_errors);
    tcase_add_test(ts, t_sentinel_failover);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    llmc_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
