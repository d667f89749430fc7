/* The local backend's own behaviour: LRU order, limits, expiry purge,
 * stats. (Generic behaviour is in the conformance suite.) */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

typedef struct stat_find {
    const char *name;
    int64_t value;
} stat_find;

static void find_stat(void *ud, const char *name, int64_t v)
{
    stat_find *f = ud;
    if (strcmp(f->name, name) == 0)
        f->value = v;
}

static int64_t backend_stat(llmc_cache *c, const char *name)
{
    stat_find f = {name, -1};
    llmc_cache_stats_foreach(c, find_stat, &f);
    return f.value;
}

static llmc_cache *open_url(const char *url)
{
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &c, &e) == LLMC_OK, "%s", e.msg);
    return c;
}

START_TEST(t_lru_entries)
{
    llmc_cache *c = open_url("local://?max_entries=3");
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_set(c, "a", 1, "1", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "b", 1, "2", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "c", 1, "3", 1, 0), LLMC_OK);
    /* touch a: b is now the least recently used */
    ck_assert_int_eq(llmc_cache_get(c, "a", 1, &v), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "d", 1, "4", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "b", 1, &v), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, "a", 1, &v), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "c", 1, &v), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "d", 1, &v), LLMC_OK);
    ck_assert_int_eq(backend_stat(c, "entries"), 3);
    ck_assert_int_eq(backend_stat(c, "evictions"), 1);
    ck_assert_int_eq(backend_stat(c, "shards"), 1);
    /* overwriting does not grow the count */
    ck_assert_int_eq(llmc_cache_set(c, "d", 1, "44", 2, 0), LLMC_OK);
    ck_assert_int_eq(backend_stat(c, "entries"), 3);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_lru_bytes)
{
    llmc_cache *c = open_url("local://?max_bytes=10000");
    char val[3000];
    memset(val, 'v', sizeof val);
    char k[16];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "k%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), val, sizeof val, 0), LLMC_OK);
        ck_assert_int_le(backend_stat(c, "memory_bytes"), 10000);
    }
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "k9", 2, &v), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k8", 2, &v), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k0", 2, &v), LLMC_MISS);
    /* one value bigger than the whole budget is refused, not half-stored */
    char *big = calloc(1, 20000);
    ck_assert_int_eq(llmc_cache_set(c, "big", 3, big, 20000, 0), LLMC_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "max_bytes"));
    ck_assert_int_eq(llmc_cache_get(c, "big", 3, &v), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, "k9", 2, &v), LLMC_OK);
    free(big);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_expiry_purge)
{
    llmc_cache *c = open_url("local://?max_entries=1000");
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_set(c, "old", 3, "x", 1, 50), LLMC_OK);
    usleep(100 * 1000);
    /* writes purge expired entries at the cold end */
    ck_assert_int_eq(llmc_cache_set(c, "new", 3, "y", 1, 0), LLMC_OK);
    ck_assert_int_eq(backend_stat(c, "entries"), 1);
    ck_assert_int_eq(backend_stat(c, "expirations"), 1);
    ck_assert_int_eq(llmc_cache_get(c, "old", 3, &v), LLMC_MISS);
    /* scan skips expired entries and honours the prefix */
    ck_assert_int_eq(llmc_cache_set(c, "p:1", 3, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "p:2", 3, "x", 1, 30), LLMC_OK);
    usleep(60 * 1000);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

static int count_cb(void *ud, const char *k, size_t kl)
{
    (void)k;
    (void)kl;
    (*(int *)ud)++;
    return 0;
}

START_TEST(t_scan_flush_all)
{
    llmc_cache *c = open_url("local://");
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "%s:%d", i % 2 ? "odd" : "even", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "x", 1, 0), LLMC_OK);
    }
    ck_assert_int_eq(llmc_cache_set(c, "odd:gone", 8, "x", 1, 20), LLMC_OK);
    usleep(40 * 1000);
    int n = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "odd:", 4, count_cb, &n), LLMC_OK);
    ck_assert_int_eq(n, 50);
    n = 0;
    ck_assert_int_eq(llmc_cache_scan(c, NULL, 0, count_cb, &n), LLMC_OK);
    ck_assert_int_eq(n, 100);
    ck_assert_int_eq(backend_stat(c, "shards"), 16);
    uint64_t del = 0;
    ck_assert_int_eq(llmc_cache_flush(c, "even", &del), LLMC_OK);
    ck_assert_uint_eq(del, 50);
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_OK);
    ck_assert_int_eq(backend_stat(c, "entries"), 0);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_stats_latency)
{
    llmc_cache *c = open_url("local://");
    llmc_buf v = LLMC_BUF_INIT;
    for (int i = 0; i < 1000; i++) {
        llmc_cache_set(c, "k", 1, "value", 5, 0);
        llmc_cache_get(c, "k", 1, &v);
    }
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.get_count, 1000);
    ck_assert_uint_eq(s.set_count, 1000);
    ck_assert_uint_eq(s.hits, 1000);
    ck_assert_uint_eq(s.bytes_read, 5000);
    ck_assert_uint_gt(s.get_ns_total, 0);
    ck_assert_uint_le(s.get_ns_p50, s.get_ns_p99);
    ck_assert_uint_le(s.get_ns_p99, s.get_ns_max);
    /* a smaller struct (older caller) gets a prefix */
    uint64_t first2[2];
    ck_assert_int_eq(llmc_cache_stats(c, (llmc_stats *)(void *)first2, sizeof first2), LLMC_OK);
    ck_assert_uint_eq(first2[0], 1000);
    llmc_cache_stats_reset(c);
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.hits, 0);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("local");
    tcase_add_test(tc, t_lru_entries);
    tcase_add_test(tc, t_lru_bytes);
    tcase_add_test(tc, t_expiry_purge);
    tcase_add_test(tc, t_scan_flush_all);
    tcase_add_test(tc, t_stats_latency);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
