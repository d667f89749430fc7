/* Backend conformance suite: the same cases run over every backend in the
 * table below. A backend joins by adding one entry: a name and setup /
 * teardown functions that start whatever it needs (real servers on free
 * loopback ports, temporary files) and hand back a URL.
 *
 * Servers are started once per backend in the parent process; Check forks
 * each test, and every test opens its own handle and uses keys unique to
 * it, so tests cannot see each other's data. */
#include "conformance.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmcache/llmcache.h"

static int local_setup(char *url, size_t n)
{
    snprintf(url, n, "local://");
    return 0;
}
static void noop_teardown(void) {}

static int local_small_setup(char *url, size_t n)
{
    /* one shard, exact LRU: exercises the eviction-limited layout */
    snprintf(url, n, "local://?max_entries=100000&max_bytes=%d", 48 << 20);
    return 0;
}

static const conf_backend BACKENDS[] = {
    {"local", local_setup, noop_teardown},
    {"local-1shard", local_small_setup, noop_teardown},
    CONF_EXTRA_BACKENDS
};

static char cur_url[1024];
static const char *cur_name;

/* Open the backend under test with extra query options ("" for none). */
static llmc_cache *open_cache(const char *extra)
{
    char url[1400];
    if (extra && *extra)
        snprintf(url, sizeof url, "%s%s%s", cur_url, strchr(cur_url, '?') ? "&" : "?", extra);
    else
        snprintf(url, sizeof url, "%s", cur_url);
    llmc_cache *c = NULL;
    llmc_err err;
    llmc_status st = llmc_cache_open(url, NULL, &c, &err);
    ck_assert_msg(st == LLMC_OK, "%s: open %s failed: %s", cur_name, url, err.msg);
    return c;
}

/* Keys unique to this test process. */
static void mkkey(char *buf, size_t n, const char *ns, const char *name)
{
    if (ns)
        snprintf(buf, n, "%s:%s-%d", ns, name, (int)getpid());
    else
        snprintf(buf, n, "%s-%d", name, (int)getpid());
}

static void mkns(char *buf, size_t n, const char *base)
{
    snprintf(buf, n, "%s%d", base, (int)getpid());
}

#define ASSERT_ST(expr, want)                                                  \
    do {                                                                       \
        llmc_status st_ = (expr);                                              \
        ck_assert_msg(st_ == (want), "%s: %s returned %s, want %s (%s)", cur_name, #expr, \
                      llmc_status_name(st_), llmc_status_name(want),           \
                      llmc_cache_errmsg(c));                                   \
    } while (0)

START_TEST(t_set_get_del)
{
    llmc_cache *c = open_cache("");
    char k[128];
    mkkey(k, sizeof k, NULL, "basic");
    llmc_buf v = LLMC_BUF_INIT;
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_MISS);
    ASSERT_ST(llmc_cache_exists(c, k, strlen(k)), LLMC_MISS);
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "hello", 5, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, 5);
    ck_assert_mem_eq(v.data, "hello", 5);
    ASSERT_ST(llmc_cache_exists(c, k, strlen(k)), LLMC_OK);
    /* overwrite with a shorter and then a longer value */
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "hi", 2, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, 2);
    ck_assert_mem_eq(v.data, "hi", 2);
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "a longer value", 14, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, 14);
    ck_assert_mem_eq(v.data, "a longer value", 14);
    llmc_status d = llmc_cache_del(c, k, strlen(k));
    ck_assert_msg(d == LLMC_OK, "%s: del of a present key: %s", cur_name, llmc_status_name(d));
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_MISS);
    d = llmc_cache_del(c, k, strlen(k));
    ck_assert_msg(d == LLMC_MISS || d == LLMC_OK, "%s: del of a missing key: %s", cur_name,
                  llmc_status_name(d));
    ASSERT_ST(llmc_cache_ping(c), LLMC_OK);
    llmc_stats s;
    ASSERT_ST(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.hits, 3);
    ck_assert_uint_eq(s.misses, 2);
    ck_assert_uint_eq(s.sets, 3);
    ck_assert_uint_ge(s.get_count, 5);
    ck_assert_uint_ge(s.bytes_written, 21);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_binary_values)
{
    llmc_cache *c = open_cache("");
    char k[128];
    mkkey(k, sizeof k, NULL, "bin");
    unsigned char val[300];
    for (int i = 0; i < 300; i++)
        val[i] = (unsigned char)(i * 7);
    val[0] = 0;
    val[150] = 0;
    llmc_buf v = LLMC_BUF_INIT;
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), val, sizeof val, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, sizeof val);
    ck_assert_mem_eq(v.data, val, sizeof val);
    /* one byte */
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "\0", 1, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, 1);
    ck_assert_int_eq(v.data[0], 0);
    /* keys with spaces, newlines, non-ASCII and NUL bytes */
    const char weird[] = "key with spaces\n\ttabs \xc3\xa9\0nul";
    ASSERT_ST(llmc_cache_set(c, weird, sizeof weird - 1, "w", 1, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, weird, sizeof weird - 1, &v), LLMC_OK);
    ck_assert_mem_eq(v.data, "w", 1);
    /* a key that differs only after the NUL is another key */
    const char weird2[] = "key with spaces\n\ttabs \xc3\xa9\0nux";
    ASSERT_ST(llmc_cache_get(c, weird2, sizeof weird2 - 1, &v), LLMC_MISS);
    /* long key */
    char longkey[1000];
    memset(longkey, 'k', sizeof longkey);
    memcpy(longkey, k, strlen(k));
    ASSERT_ST(llmc_cache_set(c, longkey, sizeof longkey, "L", 1, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, longkey, sizeof longkey, &v), LLMC_OK);
    ck_assert_mem_eq(v.data, "L", 1);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_big_value)
{
    llmc_cache *c = open_cache("");
    char k[128];
    mkkey(k, sizeof k, NULL, "big");
    size_t n = 5u << 20;
    char *val = malloc(n);
    for (size_t i = 0; i < n; i++)
        val[i] = (char)(i * 2654435761u >> 13);
    llmc_buf v = LLMC_BUF_INIT;
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), val, n, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_uint_eq(v.len, n);
    ck_assert(memcmp(v.data, val, n) == 0);
    llmc_cache_del(c, k, strlen(k));
    free(val);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_ttl)
{
    /* default TTL of 1 s; per-call override; TTL 0 = never */
    llmc_cache *c = open_cache("ttl=1");
    char kd[128], kn[128], ko[128];
    mkkey(kd, sizeof kd, NULL, "ttl-default");
    mkkey(kn, sizeof kn, NULL, "ttl-never");
    mkkey(ko, sizeof ko, NULL, "ttl-override");
    ck_assert_int_eq(llmc_cache_default_ttl(c), 1000);
    ASSERT_ST(llmc_cache_set(c, kd, strlen(kd), "d", 1, LLMC_TTL_DEFAULT), LLMC_OK);
    ASSERT_ST(llmc_cache_set(c, kn, strlen(kn), "n", 1, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_set(c, ko, strlen(ko), "o", 1, 60000), LLMC_OK);
    int64_t t = 0;
    llmc_status st = llmc_cache_ttl(c, kn, strlen(kn), &t);
    if (st != LLMC_ENOTSUP) {
        ck_assert_msg(st == LLMC_OK, "%s ttl: %s", cur_name, llmc_status_name(st));
        ck_assert_int_eq(t, -1);
        ASSERT_ST(llmc_cache_ttl(c, ko, strlen(ko), &t), LLMC_OK);
        ck_assert_msg(t > 55000 && t <= 60000, "%s: ttl of override is %lld", cur_name,
                      (long long)t);
        ASSERT_ST(llmc_cache_ttl(c, kd, strlen(kd), &t), LLMC_OK);
        ck_assert_msg(t > 0 && t <= 1000, "%s: ttl of default is %lld", cur_name, (long long)t);
    }
    llmc_buf v = LLMC_BUF_INIT;
    ASSERT_ST(llmc_cache_get(c, kd, strlen(kd), &v), LLMC_OK);
    usleep(2200 * 1000);
    ASSERT_ST(llmc_cache_get(c, kd, strlen(kd), &v), LLMC_MISS);
    ASSERT_ST(llmc_cache_exists(c, kd, strlen(kd)), LLMC_MISS);
    ASSERT_ST(llmc_cache_get(c, kn, strlen(kn), &v), LLMC_OK);
    ck_assert_mem_eq(v.data, "n", 1);
    ASSERT_ST(llmc_cache_get(c, ko, strlen(ko), &v), LLMC_OK);
    ck_assert_mem_eq(v.data, "o", 1);
    /* invalid TTLs are refused, not clamped */
    ASSERT_ST(llmc_cache_set(c, kn, strlen(kn), "x", 1, -5), LLMC_EINVAL);
    llmc_cache_del(c, kn, strlen(kn));
    llmc_cache_del(c, ko, strlen(ko));
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_namespace_flush)
{
    llmc_cache *c = open_cache("");
    char nsa[64], nsb[64];
    mkns(nsa, sizeof nsa, "nsa");
    mkns(nsb, sizeof nsb, "nsb");
    char k[200];
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "%s:k%d", nsa, i);
        ASSERT_ST(llmc_cache_set(c, k, strlen(k), "a", 1, LLMC_TTL_NEVER), LLMC_OK);
        snprintf(k, sizeof k, "%s:k%d", nsb, i);
        ASSERT_ST(llmc_cache_set(c, k, strlen(k), "b", 1, LLMC_TTL_NEVER), LLMC_OK);
    }
    /* a key that merely starts with the namespace's name is not in it */
    snprintf(k, sizeof k, "%sx:k", nsa);
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "x", 1, LLMC_TTL_NEVER), LLMC_OK);
    uint64_t deleted = 0;
    ASSERT_ST(llmc_cache_flush(c, nsa, &deleted), LLMC_OK);
    llmc_buf v = LLMC_BUF_INIT;
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "%s:k%d", nsa, i);
        ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_MISS);
        snprintf(k, sizeof k, "%s:k%d", nsb, i);
        ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
        ck_assert_mem_eq(v.data, "b", 1);
    }
    snprintf(k, sizeof k, "%sx:k", nsa);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    /* writing again after a flush works */
    snprintf(k, sizeof k, "%s:k1", nsa);
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "again", 5, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_OK);
    ck_assert_mem_eq(v.data, "again", 5);
    ASSERT_ST(llmc_cache_flush(c, nsb, NULL), LLMC_OK);
    ASSERT_ST(llmc_cache_flush(c, nsa, NULL), LLMC_OK);
    snprintf(k, sizeof k, "%sx:k", nsa);
    llmc_cache_del(c, k, strlen(k));
    /* a tenant's sub-namespace ("tenant:sub:"), alone where the backend
     * can; memcached keeps one generation per top-level namespace */
    char ks[200], kt[200];
    snprintf(ks, sizeof ks, "%s:sub:k", nsa);
    snprintf(kt, sizeof kt, "%s:k", nsa);
    ASSERT_ST(llmc_cache_set(c, ks, strlen(ks), "s", 1, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_set(c, kt, strlen(kt), "t", 1, LLMC_TTL_NEVER), LLMC_OK);
    llmc_status fs = llmc_cache_flush_in(c, nsa, "sub", NULL);
    if (strcmp(cur_name, "memcached") == 0) {
        ck_assert_msg(fs == LLMC_ENOTSUP, "%s: flush_in gave %s", cur_name, llmc_status_name(fs));
    } else {
        ck_assert_msg(fs == LLMC_OK, "%s: flush_in gave %s (%s)", cur_name,
                      llmc_status_name(fs), llmc_cache_errmsg(c));
        ASSERT_ST(llmc_cache_get(c, ks, strlen(ks), &v), LLMC_MISS);
        ASSERT_ST(llmc_cache_get(c, kt, strlen(kt), &v), LLMC_OK);
    }
    ASSERT_ST(llmc_cache_flush_in(c, nsa, NULL, NULL), LLMC_OK);
    ASSERT_ST(llmc_cache_get(c, ks, strlen(ks), &v), LLMC_MISS);
    ASSERT_ST(llmc_cache_get(c, kt, strlen(kt), &v), LLMC_MISS);
    ASSERT_ST(llmc_cache_flush_in(c, nsa, "s*", NULL), LLMC_EINVAL);
    /* bad namespaces are refused */
    ASSERT_ST(llmc_cache_flush(c, "a:b", NULL), LLMC_EINVAL);
    ASSERT_ST(llmc_cache_flush(c, "*", NULL), LLMC_EINVAL);
    ASSERT_ST(llmc_cache_flush(c, NULL, NULL), LLMC_EINVAL); /* no namespace option */
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_batch)
{
    llmc_cache *c = open_cache("");
    enum { N = 50 };
    char keys[N + 2][64];
    const char *kp[N + 2];
    size_t kl[N + 2];
    char vals[N][32];
    llmc_kv items[N];
    for (int i = 0; i < N + 2; i++) {
        snprintf(keys[i], sizeof keys[i], "batch%d-%d", i, (int)getpid());
        kp[i] = keys[i];
        kl[i] = strlen(keys[i]);
    }
    for (int i = 0; i < N; i++) {
        snprintf(vals[i], sizeof vals[i], "value-%d", i * 31);
        items[i].key = kp[i];
        items[i].klen = kl[i];
        items[i].val = vals[i];
        items[i].vlen = strlen(vals[i]);
        items[i].ttl_ms = i % 2 ? LLMC_TTL_NEVER : 60000;
    }
    ASSERT_ST(llmc_cache_mset(c, N, items), LLMC_OK);
    llmc_buf out[N + 2];
    llmc_status sts[N + 2];
    memset(out, 0, sizeof out);
    ASSERT_ST(llmc_cache_mget(c, N + 2, kp, kl, out, sts), LLMC_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(sts[i] == LLMC_OK, "%s: mget item %d: %s", cur_name, i,
                      llmc_status_name(sts[i]));
        ck_assert_uint_eq(out[i].len, strlen(vals[i]));
        ck_assert_mem_eq(out[i].data, vals[i], out[i].len);
    }
    ck_assert_int_eq(sts[N], LLMC_MISS);
    ck_assert_int_eq(sts[N + 1], LLMC_MISS);
    /* an oversized item fails the whole batch before anything is written */
    llmc_cache *small = open_cache("max_item_bytes=10");
    llmc_kv two[2] = {{kp[N], kl[N], "ok", 2, LLMC_TTL_NEVER},
                      {kp[N + 1], kl[N + 1], "much too long value", 19, LLMC_TTL_NEVER}};
    llmc_status st = llmc_cache_mset(small, 2, two);
    ck_assert_int_eq(st, LLMC_ETOOBIG);
    ck_assert_int_eq(llmc_cache_get(small, kp[N], kl[N], &out[0]), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_set(small, kp[N], kl[N], "0123456789X", 11, 0), LLMC_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(small), "max_item_bytes"));
    llmc_cache_close(small);
    for (int i = 0; i < N + 2; i++)
        llmc_buf_free(&out[i]);
    for (int i = 0; i < N; i++)
        llmc_cache_del(c, kp[i], kl[i]);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_entries)
{
    llmc_cache *c = open_cache("");
    char k[128];
    mkkey(k, sizeof k, "ent", "entry");
    const char body[] = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
    ASSERT_ST(llmc_cache_put_entry(c, k, strlen(k), LLMC_CALL_CHAT, body, sizeof body - 1,
                                   60000, 0), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), -1, 0, &l), LLMC_OK);
    ck_assert_uint_eq(l.entry.body_len, sizeof body - 1);
    ck_assert_mem_eq(l.entry.body, body, sizeof body - 1);
    ck_assert_int_eq(l.entry.call, LLMC_CALL_CHAT);
    ck_assert_int_ge(l.age_ms, 0);
    /* the same bytes under another key are foreign: a miss */
    char k2[128];
    mkkey(k2, sizeof k2, "ent", "other");
    ASSERT_ST(llmc_cache_set(c, k2, strlen(k2), l.raw.data, l.raw.len, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get_entry(c, k2, strlen(k2), -1, 0, &l), LLMC_MISS);
    /* ...and is deleted */
    llmc_buf v = LLMC_BUF_INIT;
    ASSERT_ST(llmc_cache_get(c, k2, strlen(k2), &v), LLMC_MISS);
    /* truncated value: a miss, deleted */
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), -1, 0, &l), LLMC_OK);
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), l.raw.data, l.raw.len - 3, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), -1, 0, &l), LLMC_MISS);
    ASSERT_ST(llmc_cache_get(c, k, strlen(k), &v), LLMC_MISS);
    /* garbage */
    ASSERT_ST(llmc_cache_set(c, k, strlen(k), "garbage", 7, LLMC_TTL_NEVER), LLMC_OK);
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), -1, 0, &l), LLMC_MISS);
    llmc_stats s;
    llmc_cache_stats(c, &s, sizeof s);
    ck_assert_uint_eq(s.corrupt, 3);
    /* max age */
    ASSERT_ST(llmc_cache_put_entry(c, k, strlen(k), LLMC_CALL_CHAT, body, sizeof body - 1,
                                   60000, 0), LLMC_OK);
    usleep(30 * 1000);
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), 0, 0, &l), LLMC_MISS);
    ASSERT_ST(llmc_cache_get_entry(c, k, strlen(k), 60000, 0, &l), LLMC_OK);
    llmc_cache_del(c, k, strlen(k));
    llmc_lookup_free(&l);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

typedef struct thr_arg {
    llmc_cache *c;
    int id;
    int errors;
} thr_arg;

static void *hammer(void *p)
{
    thr_arg *a = p;
    llmc_buf v = LLMC_BUF_INIT;
    char k[96], val[96];
    for (int i = 0; i < 1500; i++) {
        snprintf(k, sizeof k, "thr%d-%d-k%d", (int)getpid(), a->id, i % 100);
        int vl = snprintf(val, sizeof val, "t%d-i%d", a->id, i);
        if (llmc_cache_set(a->c, k, strlen(k), val, (size_t)vl, 60000) != LLMC_OK)
            a->errors++;
        llmc_status st = llmc_cache_get(a->c, k, strlen(k), &v);
        if (st != LLMC_OK || v.len != (size_t)vl || memcmp(v.data, val, (size_t)vl) != 0)
            a->errors++;
        if (i % 10 == 0 && llmc_cache_del(a->c, k, strlen(k)) != LLMC_OK)
            a->errors++;
        /* read a key another thread writes: any of its values, or a miss */
        snprintf(k, sizeof k, "thr%d-%d-k%d", (int)getpid(), (a->id + 1) % 8, i % 100);
        st = llmc_cache_get(a->c, k, strlen(k), &v);
        if (st == LLMC_OK && (v.len < 2 || v.data[0] != 't'))
            a->errors++;
        else if (st != LLMC_OK && st != LLMC_MISS)
            a->errors++;
    }
    llmc_buf_free(&v);
    return NULL;
}

START_TEST(t_threads)
{
    llmc_cache *c = open_cache("");
    pthread_t th[8];
    thr_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i].c = c;
        args[i].id = i;
        args[i].errors = 0;
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    int errors = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        errors += args[i].errors;
    }
    ck_assert_msg(errors == 0, "%s: %d errors across threads (last: %s)", cur_name, errors,
                  llmc_cache_errmsg(c));
    llmc_stats s;
    llmc_cache_stats(c, &s, sizeof s);
    ck_assert_uint_eq(s.sets, 8 * 1500);
    ck_assert_uint_eq(s.errors, 0);
    llmc_cache_close(c);
}
END_TEST

static Suite *conformance_suite(const char *name)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_set_get_del);
    tcase_add_test(tc, t_binary_values);
    tcase_add_test(tc, t_big_value);
    tcase_add_test(tc, t_ttl);
    tcase_add_test(tc, t_namespace_flush);
    tcase_add_test(tc, t_batch);
    tcase_add_test(tc, t_entries);
    tcase_add_test(tc, t_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    /* Optional argument: run only the named backend. */
    const char *only = argc > 1 ? argv[1] : getenv("LLMC_CONFORMANCE_ONLY");
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof BACKENDS / sizeof BACKENDS[0]; i++) {
        const conf_backend *b = &BACKENDS[i];
        if (only && *only && strcmp(only, b->name) != 0)
            continue;
        cur_name = b->name;
        if (b->setup(cur_url, sizeof cur_url) != 0) {
            fprintf(stderr, "conformance: setting up backend %s failed\n", b->name);
            failed++;
            continue;
        }
        fprintf(stderr, "conformance: %s at %s\n", b->name, cur_url);
        SRunner *sr = srunner_create(conformance_suite(b->name));
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
        ran += srunner_ntests_run(sr);
        srunner_free(sr);
        b->teardown();
    }
    if (ran == 0) {
        fprintf(stderr, "conformance: no backend ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
