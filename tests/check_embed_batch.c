/* Batched reads against real servers the suite starts (redis-server, a
 * 3-master Redis Cluster, two memcached, a SQLite file) and the fake
 * provider: llmc_cache_mget
 * through the local tier, llmc_cache_get_entries deciding every value
 * exactly as llmc_cache_get_entry does, and an embeddings request's
 * lookup as one backend read. Round trips are counted by the server
 * (redis INFO commandstats through redis-cli) or by the library's own
 * backend-read counter (get_count), never by timing. */
#include "llmc_config.h"

#include <check.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test_util.h"
#include "client_internal.h"
#include "conformance.h"
#include "support/rcluster.h"
#include "support/redissrv.h"
#include "support/testsrv.h"

#if LLMC_HAVE_CURL

/* ---- servers, started once in the parent (unchecked fixture) ---- */

static redissrv rs;
static rcluster rc;
static char mc_url[512], sq_url[512];
static int up_ok;

static void servers_up(void)
{
    up_ok = redissrv_start(&rs, REDISSRV_TCP) == 0 && rcluster_start(&rc, 3, 0) == 0 &&
            conf_memcached_setup(mc_url, sizeof mc_url) == 0 &&
            conf_sqlite_setup(sq_url, sizeof sq_url) == 0;
    if (!up_ok)
        fprintf(stderr, "embed_batch: a server did not start\n");
}

static void servers_down(void)
{
    redissrv_stop(&rs);
    rcluster_stop(&rc);
    conf_memcached_teardown();
    conf_sqlite_teardown();
}

/* The backends of the loop tests; whether each has a batch get. */
enum { B_REDIS, B_CLUSTER, B_MEMCACHED, B_SQLITE, N_BACKENDS };
static const char *const bnames[N_BACKENDS] = {"redis", "redis-cluster", "memcached", "sqlite"};
static const int native_mget[N_BACKENDS] = {1, 1, 1, 0};

static llmc_cache *open_url(const char *base, const char *extra)
{
    ck_assert_msg(up_ok, "servers are not up");
    char url[2000];
    snprintf(url, sizeof url, "%s%s%s", base, extra && *extra ? (strchr(base, '?') ? "&" : "?") : "",
             extra ? extra : "");
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(url, NULL, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", url, e.msg);
    return c;
}

static llmc_cache *open_backend(int b, const char *extra)
{
    return open_url(b == B_REDIS     ? rs.url
                    : b == B_CLUSTER ? rc.url
                    : b == B_MEMCACHED ? mc_url
                                       : sq_url,
                    extra);
}

static llmc_stats stats(llmc_cache *c)
{
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    return s;
}

/* Calls of one redis command since the last reset. */
static long calls(const char *cmd)
{
    long n = redissrv_calls(&rs, cmd);
    ck_assert_msg(n >= 0, "redis-server did not answer INFO commandstats");
    return n;
}

static void reset_calls(void)
{
    ck_assert_int_eq(redissrv_reset_calls(&rs), 0);
    ck_assert_int_eq(calls("mget"), 0);
}

/* The same over every master of the cluster. */
static long cluster_calls(const char *cmd)
{
    const char *args[] = {"INFO", "commandstats", NULL};
    char pat[64];
    snprintf(pat, sizeof pat, "cmdstat_%s:calls=", cmd);
    long n = 0;
    for (int i = 0; i < rc.n; i++) {
        char *out = rcluster_cli(&rc, i, args);
        ck_assert_ptr_nonnull(out);
        char *p = strstr(out, pat);
        n += p ? strtol(p + strlen(pat), NULL, 10) : 0;
        free(out);
    }
    return n;
}

static void cluster_reset_calls(void)
{
    const char *args[] = {"CONFIG", "RESETSTAT", NULL};
    for (int i = 0; i < rc.n; i++)
        free(rcluster_cli(&rc, i, args));
}

/* Reset the server's command counts where the suite can read them. */
static void reset_server_calls(int b)
{
    if (b == B_REDIS)
        reset_calls();
    else if (b == B_CLUSTER)
        cluster_reset_calls();
}

/* An embeddings lookup of n items reached the server as batch reads
 * only: one MGET on a single Redis, one per hash slot on the cluster
 * (sent together: the library counts one backend read). */
static void expect_batch_reads(int b, long n)
{
    if (b == B_REDIS) {
        ck_assert_int_eq(calls("mget"), 1);
        ck_assert_int_eq(calls("get"), 0);
    } else if (b == B_CLUSTER) {
        long m = cluster_calls("mget");
        ck_assert_msg(m >= 1 && m <= n, "cluster: %ld MGETs for %ld keys", m, n);
        ck_assert_int_eq(cluster_calls("get"), 0);
    }
}

static void wait_live(llmc_cache *c)
{
    for (int i = 0; i < 1000 && !stats(c).l1_live; i++)
        usleep(10000);
    ck_assert_uint_eq(stats(c).l1_live, 1);
}

static void wait_invalidations(llmc_cache *c, uint64_t n)
{
    for (int i = 0; i < 1000 && stats(c).l1_invalidations < n; i++)
        usleep(10000);
    ck_assert_uint_ge(stats(c).l1_invalidations, n);
}

static void put_entry(llmc_cache *c, const char *key, const char *body)
{
    ck_assert_int_eq(llmc_cache_put_entry(c, key, strlen(key), LLMC_CALL_CHAT, body,
                                          strlen(body), 600000, 0),
                     LLMC_OK);
}

/* The bytes stored at key, read by a handle without a tier. */
static void raw_of(llmc_cache *plain, const char *key, llmc_buf *out)
{
    ck_assert_int_eq(llmc_cache_get(plain, key, strlen(key), out), LLMC_OK);
}

/* Batch get of NULL-terminated keys into vals/sts (n at most 16). */
static size_t mget(llmc_cache *c, const char *const *keys, llmc_buf *vals, llmc_status *sts)
{
    size_t n = 0, kl[16];
    while (keys[n]) {
        kl[n] = strlen(keys[n]);
        n++;
    }
    ck_assert_int_eq(llmc_cache_mget(c, n, keys, kl, vals, sts), LLMC_OK);
    return n;
}

static void expect_same(const llmc_buf *a, const llmc_buf *b, const char *what)
{
    ck_assert_msg(a->len == b->len && memcmp(a->data, b->data, a->len) == 0,
                  "%s: the batch read returned other bytes", what);
}

/* ---- (a) llmc_cache_mget on a cache with a local tier ---- */

START_TEST(mget_through_tier)
{
    llmc_cache *a = open_url(rs.url, "l1_ttl=600");
    llmc_cache *b = open_url(rs.url, "l1_ttl=600"); /* another process, as far as a knows */
    llmc_cache *plain = open_url(rs.url, NULL);     /* no tier: reads what Redis holds */
    wait_live(a);
    wait_live(b);
    ck_assert_int_eq(llmc_cache_flush_all(plain), LLMC_OK);
    put_entry(plain, "mg:k0", "{\"v\":0}");
    put_entry(plain, "mg:k1", "{\"v\":1}");
    put_entry(plain, "mg:k2", "{\"v\":2}");
    put_entry(plain, "mg:k3", "{\"v\":3}");
    ck_assert_int_eq(llmc_cache_set(plain, "mg:raw", 6, "not an entry", 12, 600000), LLMC_OK);
    llmc_buf want[6] = {LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT,
                        LLMC_BUF_INIT};
    const char *keys[] = {"mg:k0", "mg:k1", "mg:k2", "mg:k3", "mg:raw", "mg:absent", NULL};
    for (int i = 0; i < 5; i++)
        raw_of(plain, keys[i], &want[i]);

    /* First batch: one MGET, the entries are kept (a raw value is not:
     * its expiry cannot be known, as for a single get). */
    llmc_buf v[16] = {LLMC_BUF_INIT};
    llmc_status sts[16];
    llmc_cache_stats_reset(a);
    reset_calls();
    size_t n = mget(a, keys, v, sts);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(sts[i], LLMC_OK);
        expect_same(&v[i], &want[i], keys[i]);
    }
    ck_assert_int_eq(sts[5], LLMC_MISS);
    ck_assert_int_eq(calls("mget"), 1);
    ck_assert_int_eq(calls("get"), 0);
    llmc_stats s = stats(a);
    ck_assert_uint_eq(s.l1_fills, 4);
    ck_assert_uint_eq(s.l1_hits, 0);
    ck_assert_uint_eq(s.hits, 5);
    ck_assert_uint_eq(s.misses, 1);
    ck_assert_uint_eq(s.get_count, 1);

    /* Second batch: the four entries come from the tier; only the raw
     * value and the absent key go out, in one MGET. */
    reset_calls();
    llmc_cache_stats_reset(a);
    ck_assert_uint_eq(mget(a, keys, v, sts), n);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(sts[i], LLMC_OK);
        expect_same(&v[i], &want[i], keys[i]);
    }
    ck_assert_int_eq(sts[5], LLMC_MISS);
    ck_assert_int_eq(calls("mget"), 1);
    s = stats(a);
    ck_assert_uint_eq(s.l1_hits, 4);
    ck_assert_uint_eq(s.l1_misses, 2);
    ck_assert_uint_eq(s.hits, 5);
    ck_assert_uint_eq(s.misses, 1);

    /* All in the tier: no round trip at all. */
    const char *cached[] = {"mg:k3", "mg:k0", NULL};
    reset_calls();
    mget(a, cached, v, sts);
    ck_assert_int_eq(sts[0], LLMC_OK);
    ck_assert_int_eq(sts[1], LLMC_OK);
    expect_same(&v[0], &want[3], "mg:k3");
    expect_same(&v[1], &want[0], "mg:k0");
    ck_assert_int_eq(calls("mget"), 0);
    ck_assert_int_eq(calls("get"), 0);

    /* Mixed, with duplicates: tier, backend, missing, each twice. */
    put_entry(plain, "mg:k4", "{\"v\":4}");
    llmc_buf want4 = LLMC_BUF_INIT;
    raw_of(plain, "mg:k4", &want4);
    const char *mixed[] = {"mg:k0", "mg:k4", "mg:absent", "mg:k0", "mg:k4", "mg:absent", "mg:k1",
                           NULL};
    reset_calls();
    llmc_cache_stats_reset(a);
    mget(a, mixed, v, sts);
    const llmc_status mixed_want[] = {LLMC_OK, LLMC_OK, LLMC_MISS, LLMC_OK, LLMC_OK, LLMC_MISS,
                                      LLMC_OK};
    for (size_t i = 0; i < 7; i++)
        ck_assert_msg(sts[i] == mixed_want[i], "mixed %zu: %s", i, llmc_status_name(sts[i]));
    expect_same(&v[0], &want[0], "mg:k0");
    expect_same(&v[3], &want[0], "mg:k0 again");
    expect_same(&v[1], &want4, "mg:k4");
    expect_same(&v[4], &want4, "mg:k4 again");
    expect_same(&v[6], &want[1], "mg:k1");
    ck_assert_int_eq(calls("mget"), 1);
    ck_assert_int_eq(calls("get"), 0);
    s = stats(a);
    ck_assert_uint_eq(s.l1_hits, 3);
    ck_assert_uint_eq(s.hits, 5);
    ck_assert_uint_eq(s.misses, 2);
    /* k4 was kept: now from the tier. */
    const char *k4[] = {"mg:k4", NULL};
    reset_calls();
    mget(a, k4, v, sts);
    ck_assert_int_eq(sts[0], LLMC_OK);
    ck_assert_int_eq(calls("mget"), 0);

    /* Written and deleted through another handle: a drops its copies
     * when it hears of it, and the next batch reads Redis, exactly as a
     * single get does. */
    uint64_t inv0 = stats(a).l1_invalidations;
    put_entry(b, "mg:k1", "{\"v\":\"one, rewritten\"}");
    ck_assert_int_eq(llmc_cache_del(b, "mg:k2", 5), LLMC_OK);
    wait_invalidations(a, inv0 + 2);
    llmc_buf new1 = LLMC_BUF_INIT;
    raw_of(plain, "mg:k1", &new1);
    ck_assert(new1.len != want[1].len || memcmp(new1.data, want[1].data, new1.len) != 0);
    const char *after[] = {"mg:k0", "mg:k1", "mg:k2", NULL};
    reset_calls();
    mget(a, after, v, sts);
    ck_assert_int_eq(sts[0], LLMC_OK);
    ck_assert_int_eq(sts[1], LLMC_OK);
    ck_assert_int_eq(sts[2], LLMC_MISS);
    expect_same(&v[0], &want[0], "mg:k0");
    expect_same(&v[1], &new1, "mg:k1 after the rewrite");
    ck_assert_int_eq(calls("mget"), 1);
    /* And a single get agrees, from the copy the batch kept. */
    llmc_buf one = LLMC_BUF_INIT;
    reset_calls();
    ck_assert_int_eq(llmc_cache_get(a, "mg:k1", 5, &one), LLMC_OK);
    expect_same(&one, &new1, "single get of mg:k1");
    ck_assert_int_eq(llmc_cache_get(a, "mg:k2", 5, &one), LLMC_MISS);
    ck_assert_int_eq(calls("get"), 1); /* only the deleted key */

    for (int i = 0; i < 16; i++)
        llmc_buf_free(&v[i]);
    for (int i = 0; i < 6; i++)
        llmc_buf_free(&want[i]);
    llmc_buf_free(&want4);
    llmc_buf_free(&new1);
    llmc_buf_free(&one);
    llmc_cache_close(a);
    llmc_cache_close(b);
    llmc_cache_close(plain);
}
END_TEST

/* ---- llmc_cache_get_entries decides as llmc_cache_get_entry ---- */

#define SECRET "entry_secret=batch-test-secret"

/* The cases, planted under two prefixes: "s" read one by one, "m" in
 * one batch. */
enum { C_OK, C_GARBAGE, C_TRUNCATED, C_FOREIGN, C_NO_MAC, C_TOO_OLD, C_ABSENT, C_OK2, N_CASES };
static const char *const case_names[N_CASES] = {"ok",      "garbage", "truncated", "foreign",
                                                "no-mac",  "too-old", "absent",    "ok2"};

static void plant(llmc_cache *w, llmc_cache *nomac, const char *prefix)
{
    char k[64], k2[64];
    llmc_buf raw = LLMC_BUF_INIT;
    for (int i = 0; i < N_CASES; i++) {
        snprintf(k, sizeof k, "eb:%s:%s", prefix, case_names[i]);
        switch (i) {
        case C_OK:
        case C_OK2:
        case C_TOO_OLD:
            put_entry(w, k, "{\"answer\":42}");
            break;
        case C_GARBAGE:
            ck_assert_int_eq(llmc_cache_set(w, k, strlen(k), "{garbage", 8, 600000), LLMC_OK);
            break;
        case C_TRUNCATED:
            put_entry(w, k, "{\"answer\":\"to be cut in half\"}");
            raw_of(w, k, &raw);
            ck_assert_int_eq(llmc_cache_set(w, k, strlen(k), raw.data, raw.len / 2, 600000),
                             LLMC_OK);
            break;
        case C_FOREIGN:
            snprintf(k2, sizeof k2, "eb:%s:elsewhere", prefix);
            put_entry(w, k2, "{\"answer\":\"not yours\"}");
            raw_of(w, k2, &raw);
            ck_assert_int_eq(llmc_cache_set(w, k, strlen(k), raw.data, raw.len, 600000), LLMC_OK);
            break;
        case C_NO_MAC:
            put_entry(nomac, k, "{\"answer\":\"unsigned\"}");
            break;
        default:
            break;
        }
    }
    llmc_buf_free(&raw);
}

static int exists(llmc_cache *c, const char *key)
{
    llmc_status st = llmc_cache_exists(c, key, strlen(key));
    ck_assert(st == LLMC_OK || st == LLMC_MISS);
    return st == LLMC_OK;
}

START_TEST(get_entries_decides_as_single)
{
    int b = _i;
    llmc_cache *w = open_backend(b, SECRET);
    llmc_cache *nomac = open_backend(b, NULL);
    ck_assert_int_eq(llmc_cache_flush_all(w), LLMC_OK);
    plant(w, nomac, "s");
    plant(w, nomac, "m");
    usleep(20 * 1000); /* the too-old case is read with max_age 10 ms */

    /* One by one. */
    llmc_cache *r1 = open_backend(b, SECRET);
    llmc_status single[N_CASES];
    char body[N_CASES][128];
    int single_left[N_CASES];
    char k[64];
    for (int i = 0; i < N_CASES; i++) {
        snprintf(k, sizeof k, "eb:s:%s", case_names[i]);
        llmc_lookup l = LLMC_LOOKUP_INIT;
        single[i] = llmc_cache_get_entry(r1, k, strlen(k), i == C_TOO_OLD ? 10 : -1,
                                         LLMC_ENTRY_SOFT, &l);
        snprintf(body[i], sizeof body[i], "%.*s", single[i] == LLMC_OK ? (int)l.entry.body_len : 0,
                 single[i] == LLMC_OK ? l.entry.body : "");
        llmc_lookup_free(&l);
        single_left[i] = exists(w, k);
    }
    llmc_stats s1 = stats(r1);

    /* In one batch (max_age_ms is one value for a batch: the too-old
     * case is read in a second batch of its own). */
    llmc_cache *r2 = open_backend(b, SECRET);
    const char *keys[N_CASES];
    size_t kl[N_CASES];
    char kb[N_CASES][64];
    llmc_lookup outs[N_CASES];
    llmc_status sts[N_CASES];
    size_t n = 0;
    for (int i = 0; i < N_CASES; i++) {
        outs[i] = (llmc_lookup)LLMC_LOOKUP_INIT;
        if (i == C_TOO_OLD)
            continue;
        snprintf(kb[n], sizeof kb[n], "eb:m:%s", case_names[i]);
        keys[n] = kb[n];
        kl[n] = strlen(kb[n]);
        n++;
    }
    ck_assert_int_eq(llmc_cache_get_entries(r2, n, keys, kl, -1, LLMC_ENTRY_SOFT, outs, sts),
                     LLMC_OK);
    const char *old_key = "eb:m:too-old";
    size_t old_len = strlen(old_key);
    llmc_status old_st;
    ck_assert_int_eq(llmc_cache_get_entries(r2, 1, &old_key, &old_len, 10, LLMC_ENTRY_SOFT,
                                            &outs[n], &old_st),
                     LLMC_OK);
    llmc_stats s2 = stats(r2);

    for (int i = 0, j = 0; i < N_CASES; i++) {
        size_t at = i == C_TOO_OLD ? n : (size_t)j++;
        llmc_status st = i == C_TOO_OLD ? old_st : sts[at];
        ck_assert_msg(st == single[i], "%s %s: batch %s, single %s", bnames[b], case_names[i],
                      llmc_status_name(st), llmc_status_name(single[i]));
        if (st == LLMC_OK) {
            char got[128];
            snprintf(got, sizeof got, "%.*s", (int)outs[at].entry.body_len, outs[at].entry.body);
            ck_assert_str_eq(got, body[i]);
            ck_assert_int_eq(outs[at].entry.call, LLMC_CALL_CHAT);
        }
        snprintf(k, sizeof k, "eb:m:%s", case_names[i]);
        ck_assert_msg(exists(w, k) == single_left[i], "%s %s: %s after the batch read",
                      bnames[b], case_names[i], single_left[i] ? "deleted" : "kept");
    }
    /* The expected outcomes themselves, so that both paths agreeing on
     * something wrong cannot pass. */
    ck_assert_int_eq(single[C_OK], LLMC_OK);
    ck_assert_int_eq(single[C_OK2], LLMC_OK);
    ck_assert_int_eq(single[C_GARBAGE], LLMC_MISS);
    ck_assert_int_eq(single_left[C_GARBAGE], 0);
    ck_assert_int_eq(single_left[C_TRUNCATED], 0);
    ck_assert_int_eq(single_left[C_FOREIGN], 0);
    ck_assert_int_eq(single[C_NO_MAC], LLMC_MISS);
    ck_assert_int_eq(single_left[C_NO_MAC], 1);
    ck_assert_int_eq(single[C_TOO_OLD], LLMC_MISS);
    ck_assert_int_eq(single_left[C_TOO_OLD], 1);
    /* The same counts. */
    ck_assert_uint_eq(s2.hits, s1.hits);
    ck_assert_uint_eq(s2.misses, s1.misses);
    ck_assert_uint_eq(s2.corrupt, s1.corrupt);
    ck_assert_uint_eq(s2.corrupt, 3);
    ck_assert_uint_eq(s2.mac_failures, s1.mac_failures);
    ck_assert_uint_eq(s2.mac_failures, 1);
    /* Backend reads: one per key against one per batch where there is a
     * batch get (two batches here). */
    ck_assert_uint_eq(s1.get_count, N_CASES);
    ck_assert_uint_eq(s2.get_count, native_mget[b] ? 2 : N_CASES);

    /* Bad arguments: refused before anything is read. */
    const char *bad[] = {"eb:m:ok", NULL};
    size_t bl[] = {7, 0};
    ck_assert_int_eq(llmc_cache_get_entries(r2, 2, bad, bl, -1, 0, outs, sts), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_get_entries(r2, 1, NULL, bl, -1, 0, outs, sts), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_get_entries(NULL, 1, bad, bl, -1, 0, outs, sts), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_get_entries(r2, 0, NULL, NULL, -1, 0, NULL, NULL), LLMC_OK);
    for (int i = 0; i < N_CASES; i++)
        llmc_lookup_free(&outs[i]);
    llmc_cache_close(r1);
    llmc_cache_close(r2);
    llmc_cache_close(w);
    llmc_cache_close(nomac);
}
END_TEST

/* ---- (b) embeddings: the lookup is one backend read ---- */

static fp_server *srv;

static llmc_client *client_on(llmc_cache *c)
{
    static char base[160];
    snprintf(base, sizeof base, "%s/v1", fp_url(srv));
    const char *kv[] = {"openai.api_key", "sk-test-batch", "openai.api_base", base, NULL};
    return tu_client(c, kv);
}

/* An embeddings request of n inputs "<tag> <i>"; new_every > 0 replaces
 * every new_every-th input (i % new_every == new_every - 1) by a new one. */
static void emb_request(char *out, size_t cap, const char *tag, int n, int new_every)
{
    size_t len = (size_t)snprintf(out, cap, "{\"model\":\"text-embedding-3-small\",\"input\":[");
    for (int i = 0; i < n; i++) {
        int fresh = new_every > 0 && i % new_every == new_every - 1;
        len += (size_t)snprintf(out + len, cap - len, "%s\"%s %s%d\"", i ? "," : "", tag,
                                fresh ? "new " : "", i);
    }
    snprintf(out + len, cap - len, "]}");
}

static llmc_response *embed(llmc_client *cl, const char *req)
{
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = llmc_embedding_json(cl, req, LLMC_ZSTR, &r, &e);
    ck_assert_msg(st == LLMC_OK, "embeddings: %s", e.msg);
    return r;
}

#define N_INPUTS 20

START_TEST(embeddings_one_batch_read)
{
    int b = _i;
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    llmc_cache *c = open_backend(b, NULL);
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_OK);
    llmc_client *cl = client_on(c);
    char req[4096], req2[4096];
    emb_request(req, sizeof req, bnames[b], N_INPUTS, 0);

    llmc_response *r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    ck_assert_int_eq(fp_count(srv), 1);
    json_object *first = json_object_get(llmc_response_json(r));
    llmc_response_free(r);

    /* Cached: no upstream call, and one backend read for twenty items. */
    llmc_cache_stats_reset(c);
    reset_server_calls(b);
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(fp_count(srv), 1);
    ck_assert(json_object_equal(tu_get(llmc_response_json(r), "data"), tu_get(first, "data")));
    llmc_response_free(r);
    llmc_stats s = stats(c);
    ck_assert_uint_eq(s.hits, N_INPUTS);
    ck_assert_uint_eq(s.get_count, native_mget[b] ? 1 : N_INPUTS);
    expect_batch_reads(b, N_INPUTS);

    /* Four new inputs among twenty: only those go upstream, in order,
     * and the cache is still read once. */
    emb_request(req2, sizeof req2, bnames[b], N_INPUTS, 5);
    llmc_cache_stats_reset(c);
    reset_server_calls(b);
    r = embed(cl, req2);
    ck_assert_int_eq(fp_count(srv), 2);
    json_object *sent = tu_body(fp_last(srv));
    char want_in[256];
    snprintf(want_in, sizeof want_in, "[\"%s new 4\",\"%s new 9\",\"%s new 14\",\"%s new 19\"]",
             bnames[b], bnames[b], bnames[b], bnames[b]);
    ck_assert_str_eq(json_object_to_json_string_ext(tu_get(sent, "input"), JSON_C_TO_STRING_PLAIN),
                     want_in);
    json_object_put(sent);
    for (int i = 0; i < N_INPUTS; i++)
        ck_assert_int_eq(llmc_response_item_hit(r, (size_t)i), i % 5 != 4);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    /* The cached items' vectors are the first call's. */
    char p[64];
    snprintf(p, sizeof p, "data.3.embedding");
    ck_assert(json_object_equal(tu_get(llmc_response_json(r), p), tu_get(first, p)));
    llmc_response_free(r);
    s = stats(c);
    ck_assert_uint_eq(s.hits, N_INPUTS - 4);
    ck_assert_uint_eq(s.misses, 4);
    ck_assert_uint_eq(s.get_count, native_mget[b] ? 1 : N_INPUTS);
    ck_assert_uint_eq(s.sets, 4);
    expect_batch_reads(b, N_INPUTS);

    /* A damaged item: a miss that is deleted and fetched again, the
     * others hits, exactly as a single read treats it. */
    r = embed(cl, req);
    const char *k7 = llmc_response_item_key(r, 7);
    char key7[256];
    snprintf(key7, sizeof key7, "%s", k7);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_cache_set(c, key7, strlen(key7), "\x01garbage", 8, 600000), LLMC_OK);
    llmc_cache_stats_reset(c);
    r = embed(cl, req);
    ck_assert_int_eq(fp_count(srv), 3);
    sent = tu_body(fp_last(srv));
    snprintf(want_in, sizeof want_in, "[\"%s 7\"]", bnames[b]);
    ck_assert_str_eq(json_object_to_json_string_ext(tu_get(sent, "input"), JSON_C_TO_STRING_PLAIN),
                     want_in);
    json_object_put(sent);
    for (int i = 0; i < N_INPUTS; i++)
        ck_assert_int_eq(llmc_response_item_hit(r, (size_t)i), i != 7);
    ck_assert(json_object_equal(tu_get(llmc_response_json(r), "data"), tu_get(first, "data")));
    llmc_response_free(r);
    s = stats(c);
    ck_assert_uint_eq(s.corrupt, 1);
    ck_assert_uint_eq(s.deletes, 1);
    ck_assert_uint_eq(s.sets, 1); /* stored again */
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(fp_count(srv), 3);
    llmc_response_free(r);

    json_object_put(first);
    llmc_client_free(cl);
    llmc_cache_close(c);
    fp_stop(srv);
}
END_TEST

/* ---- (c) with a local tier, a repeated request does not reach Redis ---- */

START_TEST(embeddings_tier_no_round_trip)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    llmc_cache *plain = open_url(rs.url, NULL);
    ck_assert_int_eq(llmc_cache_flush_all(plain), LLMC_OK);
    llmc_cache *a = open_url(rs.url, "l1_ttl=600");
    wait_live(a);
    llmc_client *w = client_on(plain), *cl = client_on(a);
    char req[4096];
    emb_request(req, sizeof req, "tiered", N_INPUTS, 0);

    /* Stored by another handle: a's first request reads Redis once and
     * keeps the entries; its second one does not reach Redis at all. */
    llmc_response *r = embed(w, req);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    reset_calls();
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(calls("mget"), 1);
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_uint_eq(stats(a).l1_fills, N_INPUTS);
    reset_calls();
    llmc_cache_stats_reset(a);
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(calls("mget"), 0);
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_int_eq(calls("set"), 0);
    llmc_stats s = stats(a);
    ck_assert_uint_eq(s.l1_hits, N_INPUTS);
    ck_assert_uint_eq(s.get_count, 0);
    ck_assert_int_eq(fp_count(srv), 1);

    /* New inputs among them: the tier answers the rest, Redis is asked
     * once for the new ones, which are then stored (through the tier). */
    emb_request(req, sizeof req, "tiered", N_INPUTS, 10);
    reset_calls();
    llmc_cache_stats_reset(a);
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    ck_assert_int_eq(calls("mget"), 1);
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_uint_eq(stats(a).l1_hits, N_INPUTS - 2);
    reset_calls();
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(calls("mget"), 0);
    ck_assert_int_eq(calls("get"), 0);

    llmc_client_free(w);
    llmc_client_free(cl);
    llmc_cache_close(a);
    llmc_cache_close(plain);
    fp_stop(srv);
}
END_TEST

/* ---- a backend without a batch get that stops answering ---- */

/* SQLite has no mget: the batch is one get per item. A file another
 * connection holds locked (rollback journal, BEGIN EXCLUSIVE) makes the
 * first get wait busy_timeout_ms and fail: the other items are not
 * asked, and the stores that follow are skipped. One wait per request. */
START_TEST(sqlite_locked_one_wait)
{
    testsrv dir;
    ck_assert_int_eq(testsrv_mkdir(&dir, "batch-locked"), 0);
    char path[400], url[600];
    snprintf(path, sizeof path, "%s/locked.db", dir.dir);
    snprintf(url, sizeof url, "sqlite://%s?journal_mode=delete&busy_timeout_ms=200", path);
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    llmc_cache *c = open_url(url, NULL);
    llmc_client *cl = client_on(c);
    char req[4096];
    emb_request(req, sizeof req, "locked", 5, 0);
    llmc_response *r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);

    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    llmc_cache_stats_reset(c);
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(llmc_response_item_hit(r, i), 0);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_stats s = stats(c);
    ck_assert_uint_eq(s.get_count, 1); /* the first item's read only */
    ck_assert_uint_eq(s.errors, 1);
    ck_assert_uint_eq(s.misses, 5);
    ck_assert_uint_eq(s.set_count, 0);
    ck_assert_uint_eq(s.stores_skipped, 5);
    ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* Unlocked: read again at once, all five from the cache. */
    r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_client_free(cl);
    llmc_cache_close(c);
    fp_stop(srv);
    testsrv_stop(&dir);
}
END_TEST

/* ---- (e) a hit serves each vector's text as the provider wrote it ---- */

/* Numbers json-c keeps as read: signed zero, subnormal, exponents in
 * either case, more digits than a double needs. */
#define V_TRICKY "[-0.0,1e-300,0.1,5e-324,1E+5,-2.5E-3,1.0,0.30000000000000004,7]"
/* The provider's spaces: json-c's print (stored and served) drops them. */
#define V_SPACED "[0.125, -1.5e-07, 3, 1E-2]"
#define V_PLAIN "[0.125,-1.5e-07,3,1E-2]"
/* base64 (encoding_format): a string. */
#define V_B64 "\"AAAAAAAA8D8AAAAAAAAAwA==\""
/* An integer beyond int64: json-c reads it unsigned, and prints it back. */
#define V_BIG "[12345678901234567890,-1]"
#define ITEM(i, v) "{\"object\":\"embedding\",\"index\":" #i ",\"embedding\":" v "}"

static llmc_response *embed_hit(llmc_client *cl, const char *req)
{
    llmc_response *r = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    return r;
}

START_TEST(embeddings_hit_text_verbatim)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    llmc_cache *c = open_backend(0, NULL);
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_OK);
    llmc_client *cl = client_on(c);
    const char *req = "{\"model\":\"text-embedding-3-small\",\"input\":[\"va\",\"vb\",\"vc\","
                      "\"vd\"]}";
    fp_push_reply(srv, 200, "application/json",
                  "{\"object\":\"list\",\"data\":[" ITEM(0, V_TRICKY) "," ITEM(1, V_SPACED) ","
                  ITEM(2, V_B64) "," ITEM(3, V_BIG) "],\"model\":\"te\\/st-\\u00e9mb\","
                  "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}",
                  NULL);
    llmc_response *fresh = embed(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(fresh), 0);
    ck_assert_int_eq(llmc_response_cache_stored(fresh), 1);
    const char *want = "{\"object\":\"list\",\"data\":[" ITEM(0, V_TRICKY) "," ITEM(1, V_PLAIN)
                       "," ITEM(2, V_B64) "," ITEM(3, V_BIG) "],\"model\":\"te/st-\xc3\xa9mb\","
                       "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";
    ck_assert_str_eq(llmc_response_text(fresh, NULL), want);

    /* The hit: the same text after "cache":true, byte for byte; three of
     * the four vectors copied from the stored text (the big integer is
     * not in int64, so json-c prints that one, to the same text). */
    uint64_t v0 = llmc__embed_verbatim_items();
    llmc_response *hit = embed_hit(cl, req);
    ck_assert_uint_eq(llmc__embed_verbatim_items(), v0 + 3);
    size_t hl = 0;
    const char *ht = llmc_response_text(hit, &hl);
    ck_assert_uint_eq(hl, strlen(ht));
    ck_assert_int_eq(strncmp(ht, "{\"cache\":true,", 14), 0);
    ck_assert_str_eq(ht + 14, want + 1);

    /* The tree view: real arrays of doubles, as the provider's numbers. */
    json_object *j = llmc_response_json(hit);
    ck_assert_ptr_nonnull(j);
    json_object *a = tu_get(j, "data.0.embedding");
    ck_assert(json_object_is_type(a, json_type_array));
    ck_assert_uint_eq(json_object_array_length(a), 9);
    const double dv[] = {-0.0, 1e-300, 0.1, 5e-324, 1E+5, -2.5E-3, 1.0, 0.30000000000000004, 7};
    for (size_t i = 0; i < 9; i++) {
        json_object *x = json_object_array_get_idx(a, i);
        ck_assert(json_object_is_type(x, i == 8 ? json_type_int : json_type_double));
        double got = json_object_get_double(x);
        ck_assert_msg(memcmp(&got, &dv[i], sizeof got) == 0, "element %zu: %.17g", i, got);
    }
    ck_assert(signbit(json_object_get_double(json_object_array_get_idx(a, 0))));
    ck_assert_uint_eq(json_object_get_uint64(tu_get(j, "data.3.embedding.0")),
                      12345678901234567890ull);
    ck_assert_str_eq(tu_str(j, "data.2.embedding"), "AAAAAAAA8D8AAAAAAAAAwA==");
    ck_assert_int_eq(tu_int(j, "data.1.index"), 1);
    ck_assert_str_eq(tu_str(j, "model"), "te/st-\xc3\xa9mb");
    ck_assert(json_object_equal(tu_get(j, "data"), tu_get(llmc_response_json(fresh), "data")));
    /* ...which prints back to the text. */
    ck_assert_str_eq(json_object_to_json_string_ext(
                         j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                     ht);
    llmc_response_free(hit);
    llmc_response_free(fresh);

    /* A partial hit: the cached items and the new one in input order. */
    fp_push_reply(srv, 200, "application/json",
                  "{\"object\":\"list\",\"data\":[" ITEM(0, "[2.5e-1,-0.0]") "],"
                  "\"model\":\"te\\/st-\\u00e9mb\","
                  "\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}",
                  NULL);
    llmc_response *part = embed(cl, "{\"model\":\"text-embedding-3-small\",\"input\":[\"vc\","
                                    "\"v new\",\"va\",\"vb\"]}");
    ck_assert_int_eq(fp_count(srv), 2);
    json_object *sent = tu_body(fp_last(srv));
    ck_assert_str_eq(json_object_to_json_string_ext(tu_get(sent, "input"), JSON_C_TO_STRING_PLAIN),
                     "[\"v new\"]");
    json_object_put(sent);
    ck_assert_int_eq(llmc_response_cache_hit(part), 0);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(llmc_response_item_hit(part, i), i != 1);
    const char *pw = "{\"object\":\"list\",\"data\":[" ITEM(0, V_B64) "," ITEM(1, "[2.5e-1,-0.0]")
                     "," ITEM(2, V_TRICKY) "," ITEM(3, V_PLAIN) "],\"model\":\"te/st-\xc3\xa9mb\","
                     "\"usage\":";
    ck_assert_int_eq(strncmp(llmc_response_text(part, NULL), pw, strlen(pw)), 0);
    j = llmc_response_json(part);
    ck_assert_ptr_nonnull(j);
    ck_assert(signbit(json_object_get_double(tu_get(j, "data.1.embedding.1"))));
    ck_assert(json_object_get_double(tu_get(j, "data.2.embedding.1")) == 1e-300);
    llmc_response_free(part);

    /* Bodies written elsewhere (white space, escapes, "-0"): json-c reads
     * and prints them, as before, never copied as they are. */
    llmc_response *keys = embed_hit(cl, req);
    const char *foreign[3] = {
        "{\"object\":\"embedding\",\"embedding\":[1.50, 2],\"model\":\"m\",\"prompt_tokens\":2}",
        "{\"embedding\":[-0,3],\"prompt_tokens\":2}",
        "{\"embedding\":\"AB\\/C\",\"prompt_tokens\":2}"};
    for (size_t i = 0; i < 3; i++) {
        const char *k = llmc_response_item_key(keys, i);
        ck_assert_int_eq(llmc_cache_put_entry(c, k, strlen(k), LLMC_CALL_EMBEDDING, foreign[i],
                                              strlen(foreign[i]), 600000, 0),
                         LLMC_OK);
    }
    llmc_response_free(keys);
    v0 = llmc__embed_verbatim_items();
    hit = embed_hit(cl, req);
    ck_assert_uint_eq(llmc__embed_verbatim_items(), v0);
    const char *fw = "{\"cache\":true,\"object\":\"list\",\"data\":[" ITEM(0, "[1.50,2]") ","
                     ITEM(1, "[0,3]") "," ITEM(2, "\"AB/C\"") "," ITEM(3, V_BIG) "],";
    ck_assert_int_eq(strncmp(llmc_response_text(hit, NULL), fw, strlen(fw)), 0);
    llmc_response_free(hit);

    llmc_client_free(cl);
    llmc_cache_close(c);
    fp_stop(srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("embed_batch");
    TCase *t = tcase_create("batch");
    tcase_add_unchecked_fixture(t, servers_up, servers_down);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, mget_through_tier);
    tcase_add_loop_test(t, get_entries_decides_as_single, 0, N_BACKENDS);
    tcase_add_loop_test(t, embeddings_one_batch_read, 0, N_BACKENDS);
    tcase_add_test(t, embeddings_tier_no_round_trip);
    tcase_add_test(t, sqlite_locked_one_wait);
    tcase_add_test(t, embeddings_hit_text_verbatim);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("LLMCACHE_URL");
    unsetenv("LLMCACHE_ENTRY_SECRET");
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#else /* !LLMC_HAVE_CURL */

int main(void)
{
    return 77; /* built without libcurl: no provider calls to batch */
}

#endif
