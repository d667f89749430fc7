/* memcached backend against two real memcached processes started here. */
#include "llmcache/llmcache.h"
#include "support/testsrv.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#if LLMC_TEST_SASL
#include <sasl/sasl.h>
#endif

static testsrv srv[2];
static char url[256];

static int start_mc(testsrv *s, const char *name, int port)
{
    if (port <= 0) {
        if (testsrv_mkdir(s, name) != 0)
            return -1;
        port = testsrv_free_port();
    }
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-I", "1m", "-m", "32",
                    "-t", "1", "-u", "root", NULL};
    if (geteuid() != 0)
        argv[13] = NULL; /* -u is only needed (and allowed) as root */
    s->port = port;
    if (testsrv_spawn(s, argv) != 0)
        return -1;
    return testsrv_wait_tcp(s, port, 5000);
}

static void servers_up(void)
{
    ck_assert_int_eq(start_mc(&srv[0], "mc0", 0), 0);
    ck_assert_int_eq(start_mc(&srv[1], "mc1", 0), 0);
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d,127.0.0.1:%d?timeout_ms=500",
             srv[0].port, srv[1].port);
}

static void servers_down(void)
{
    testsrv_stop(&srv[0]);
    testsrv_stop(&srv[1]);
}

static llmc_cache *open_url(const char *extra)
{
    char u[512];
    snprintf(u, sizeof u, "%s%s", url, extra ? extra : "");
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc_cache_open(u, NULL, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", u, e.msg);
    return c;
}

static void expect_value(llmc_cache *c, const char *k, size_t kl, const char *v, size_t vl)
{
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, k, kl, &b);
    ck_assert_msg(st == LLMC_OK, "get %.*s: %s (%s)", (int)kl, k, llmc_status_name(st),
                  llmc_cache_errmsg(c));
    ck_assert_uint_eq(b.len, vl);
    ck_assert(memcmp(b.data, v, vl) == 0);
    llmc_buf_free(&b);
}

static llmc_status get_st(llmc_cache *c, const char *k)
{
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, k, strlen(k), &b);
    llmc_buf_free(&b);
    return st;
}

/* ------------------------------------------------------------------ */

static void roundtrip(const char *extra)
{
    llmc_cache *c = open_url(extra);
    ck_assert_int_eq(llmc_cache_set(c, "alpha", 5, "one", 3, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "alpha", 5, "one", 3);
    ck_assert_int_eq(llmc_cache_set(c, "alpha", 5, "two\0x", 5, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "alpha", 5, "two\0x", 5);
    ck_assert_int_eq(llmc_cache_del(c, "alpha", 5), LLMC_OK);
    ck_assert_int_eq(get_st(c, "alpha"), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_del(c, "alpha", 5), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_cache_close(c);
}

START_TEST(test_roundtrip_text)
{
    roundtrip(NULL);
}
END_TEST

START_TEST(test_roundtrip_binary_protocol)
{
    roundtrip("&binary=1");
}
END_TEST

START_TEST(test_awkward_keys)
{
    llmc_cache *c = open_url(NULL);
    char longk[600];
    memset(longk, 'k', sizeof longk);
    const char *keys[] = {"with space", "tab\there", "~tilde", "new\nline", "bin\0ary", longk,
                          "x"};
    size_t lens[] = {10, 8, 6, 8, 7, sizeof longk, 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char v[32];
        int vl = snprintf(v, sizeof v, "value-%zu", i);
        llmc_status st = llmc_cache_set(c, keys[i], lens[i], v, (size_t)vl, LLMC_TTL_NEVER);
        ck_assert_msg(st == LLMC_OK, "set key #%zu: %s", i, llmc_cache_errmsg(c));
    }
    /* Every key is found again with its own value: the mapping is
     * deterministic and does not collide; a fresh handle finds them too. */
    llmc_cache *c2 = open_url(NULL);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char v[32];
        int vl = snprintf(v, sizeof v, "value-%zu", i);
        expect_value(c, keys[i], lens[i], v, (size_t)vl);
        expect_value(c2, keys[i], lens[i], v, (size_t)vl);
    }
    /* "bin\0ary" and "bin" are different keys */
    ck_assert_int_eq(get_st(c, "bin"), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_del(c, longk, sizeof longk), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, longk, sizeof longk, &(llmc_buf)LLMC_BUF_INIT), LLMC_MISS);
    llmc_cache_close(c2);
    llmc_cache_close(c);
}
END_TEST

static int scan_noop(void *ud, const char *k, size_t kl)
{
    (void)ud;
    (void)k;
    (void)kl;
    return 0;
}

static int64_t stat_val;
static const char *stat_want;
static void stat_cb(void *ud, const char *name, int64_t v)
{
    (void)ud;
    if (strcmp(name, stat_want) == 0)
        stat_val = v;
}

static int64_t backend_stat(llmc_cache *c, const char *name)
{
    stat_want = name;
    stat_val = -1;
    ck_assert_int_eq(llmc_cache_stats_foreach(c, stat_cb, NULL), LLMC_OK);
    return stat_val;
}

START_TEST(test_keys_spread_over_both_servers)
{
    llmc_cache *c = open_url(NULL);
    /* Count the sets each server received (cmd_set only grows), not
     * curr_items: memcached reclaims flushed items lazily, so items of
     * earlier tests may still be counted there. */
    int64_t a0 = backend_stat(c, "server0_cmd_set"), b0 = backend_stat(c, "server1_cmd_set");
    for (int i = 0; i < 200; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "spread-%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, (size_t)kl, "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    }
    ck_assert_int_eq(backend_stat(c, "servers"), 2);
    ck_assert_int_eq(backend_stat(c, "servers_up"), 2);
    int64_t a = backend_stat(c, "server0_cmd_set") - a0, b = backend_stat(c, "server1_cmd_set") - b0;
    ck_assert_int_eq(a + b, 200);
    ck_assert_int_gt(a, 20); /* ketama spreads; neither server gets (almost) nothing */
    ck_assert_int_gt(b, 20);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_oversized_value)
{
    llmc_cache *c = open_url(NULL);
    size_t big = 2u << 20; /* the servers run with -I 1m */
    char *v = malloc(big);
    ck_assert_ptr_nonnull(v);
    memset(v, 'v', big);
    ck_assert_int_eq(llmc_cache_set(c, "big", 3, "small", 5, LLMC_TTL_NEVER), LLMC_OK);
    llmc_status st = llmc_cache_set(c, "big", 3, v, big, LLMC_TTL_NEVER);
    ck_assert_int_eq(st, LLMC_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "item size limit"));
    /* Nothing half-written: the key reads as the old value or a miss. */
    llmc_buf b = LLMC_BUF_INIT;
    st = llmc_cache_get(c, "big", 3, &b);
    ck_assert(st == LLMC_MISS || (st == LLMC_OK && b.len == 5 && memcmp(b.data, "small", 5) == 0));
    /* The connection is still usable after the refusal. */
    ck_assert_int_eq(llmc_cache_set(c, "after", 5, "ok", 2, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "after", 5, "ok", 2);
    llmc_buf_free(&b);
    free(v);
    llmc_cache_close(c);
}
END_TEST

/* Ask one server for a key's remaining TTL with the meta protocol
 * ("mg <key> t"): -2 if the server does not hold it. */
static long server_ttl(int port, const char *key)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[300], resp[256] = "";
    int n = snprintf(req, sizeof req, "mg %s t\r\n", key);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - (size_t)got)) > 0) {
        got += r;
        if (strstr(resp, "\r\n"))
            break;
    }
    close(fd);
    long t = -2;
    if (strncmp(resp, "HD", 2) == 0) {
        const char *p = strstr(resp, " t");
        t = p ? strtol(p + 2, NULL, 10) : -3;
    }
    return t;
}

START_TEST(test_long_and_short_ttl)
{
    llmc_cache *c = open_url(NULL);
    int64_t forty_days_ms = 40LL * 24 * 3600 * 1000;
    ck_assert_int_eq(llmc_cache_set(c, "ttl-long", 8, "L", 1, forty_days_ms), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "ttl-never", 9, "N", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "ttl-short", 9, "S", 1, 1000), LLMC_OK);
    /* stored and readable, not treated as an absolute time in 1970 */
    expect_value(c, "ttl-long", 8, "L", 1);
    expect_value(c, "ttl-never", 9, "N", 1);
    /* the server holds it for about 40 days */
    long t = server_ttl(srv[0].port, "ttl-long");
    if (t == -2)
        t = server_ttl(srv[1].port, "ttl-long");
    ck_assert_int_gt(t, 39L * 24 * 3600);
    ck_assert_int_le(t, 40L * 24 * 3600 + 5);
    long tn = server_ttl(srv[0].port, "ttl-never");
    if (tn == -2)
        tn = server_ttl(srv[1].port, "ttl-never");
    ck_assert_int_eq(tn, -1); /* no expiry */
    sleep(3);
    ck_assert_int_eq(get_st(c, "ttl-short"), LLMC_MISS);
    expect_value(c, "ttl-long", 8, "L", 1);
    ck_assert_int_eq(llmc_cache_ttl(c, "ttl-long", 8, &(int64_t){0}), LLMC_ENOTSUP);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_namespace_flush_isolation)
{
    llmc_cache *c = open_url(NULL);
    llmc_cache *other = open_url(NULL); /* stands for another process */
    const char *ka[] = {"nsa:1", "nsa:2", "nsa:3"};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(llmc_cache_set(c, ka[i], 5, "A", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "nsb:1", 5, "B", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "nsab:1", 6, "AB", 2, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "plain", 5, "P", 1, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(other, "nsa:1", 5, "A", 1);

    uint64_t deleted = 99;
    ck_assert_int_eq(llmc_cache_flush(c, "nsa", &deleted), LLMC_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get_st(c, ka[i]), LLMC_MISS);
        ck_assert_int_eq(get_st(other, ka[i]), LLMC_MISS); /* never an old entry */
    }
    expect_value(c, "nsb:1", 5, "B", 1);
    expect_value(c, "nsab:1", 6, "AB", 2);
    expect_value(c, "plain", 5, "P", 1);

    /* the namespace is usable again after the flush */
    ck_assert_int_eq(llmc_cache_set(c, "nsa:1", 5, "A2", 2, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "nsa:1", 5, "A2", 2);
    expect_value(other, "nsa:1", 5, "A2", 2);

    /* batch reads apply the same rule */
    const char *keys[] = {"nsa:1", "nsa:2", "nsb:1", "plain", "missing"};
    size_t lens[] = {5, 5, 5, 5, 7};
    llmc_buf vals[5] = {LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT, LLMC_BUF_INIT};
    llmc_status sts[5];
    ck_assert_int_eq(llmc_cache_mget(c, 5, keys, lens, vals, sts), LLMC_OK);
    ck_assert_int_eq(sts[0], LLMC_OK);
    ck_assert_int_eq(sts[1], LLMC_MISS);
    ck_assert_int_eq(sts[2], LLMC_OK);
    ck_assert_int_eq(sts[3], LLMC_OK);
    ck_assert_int_eq(sts[4], LLMC_MISS);
    ck_assert_int_eq(vals[0].len, 2);
    ck_assert(memcmp(vals[2].data, "B", 1) == 0);
    for (int i = 0; i < 5; i++)
        llmc_buf_free(&vals[i]);

    /* the counter itself lost (eviction, restart): old entries stay dead */
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "nsc:1", 5, "C", 1, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "nsc:1", 5, "C", 1);
    llmc_cache_close(other);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_mget_across_servers)
{
    llmc_cache *c = open_url(NULL);
    enum { N = 40 };
    char kb[N][16];
    const char *keys[N];
    size_t lens[N];
    llmc_buf vals[N];
    llmc_status sts[N];
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)snprintf(kb[i], sizeof kb[i], "mg-%d", i);
        keys[i] = kb[i];
        vals[i] = (llmc_buf)LLMC_BUF_INIT;
        if (i % 2 == 0)
            ck_assert_int_eq(llmc_cache_set(c, kb[i], lens[i], kb[i], lens[i], 0), LLMC_OK);
        else
            llmc_cache_del(c, kb[i], lens[i]);
    }
    ck_assert_int_eq(llmc_cache_mget(c, N, keys, lens, vals, sts), LLMC_OK);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            ck_assert_int_eq(sts[i], LLMC_OK);
            ck_assert_uint_eq(vals[i].len, lens[i]);
            ck_assert(memcmp(vals[i].data, kb[i], lens[i]) == 0);
        } else {
            ck_assert_int_eq(sts[i], LLMC_MISS);
        }
        llmc_buf_free(&vals[i]);
    }
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_unsupported_and_bad_options)
{
    llmc_cache *c = open_url(NULL);
    ck_assert_int_eq(llmc_cache_scan(c, "", 0, scan_noop, NULL), LLMC_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "enumerate"));
    llmc_cache_close(c);

    llmc_err e;
    c = NULL;
    ck_assert_int_eq(llmc_cache_open("memcached://127.0.0.1:1?distribution=random", NULL, &c, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "distribution"));
    ck_assert_int_eq(llmc_cache_open("memcached://127.0.0.1:1?pool_size=0", NULL, &c, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "pool_size"));
    ck_assert_int_eq(llmc_cache_open("memcached://127.0.0.1:1?nosuch=1", NULL, &c, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_null(c);
    /* An empty host in the list: a clear error naming it (the message was
     * built from freed memory; ASan/valgrind saw a use-after-free). */
    static const char *const empty_host[] = {"memcached://a,:11211", "memcached://:11211",
                                             "memcached://127.0.0.1:1,:2,b:3"};
    for (size_t i = 0; i < sizeof empty_host / sizeof empty_host[0]; i++) {
        ck_assert_int_eq(llmc_cache_open(empty_host[i], NULL, &c, &e), LLMC_EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(e.msg, "empty host") != NULL && strstr(e.msg, "server #") != NULL, "%s: %s", empty_host[i], e.msg);
    }
    /* More servers than libmemcached's ketama continuum holds: a clear
     * error (libmemcached itself aborts the process); modula takes them. */
    llmc_buf many = LLMC_BUF_INIT;
    llmc_buf_puts(&many, "memcached://");
    for (int i = 0; i < 101; i++)
        llmc_buf_printf(&many, "%s127.0.0.1:%d", i ? "," : "", 20000 + i);
    ck_assert_int_eq(llmc_cache_open(many.data, NULL, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, "has 101 servers") && strstr(e.msg, "at most 100"), "%s", e.msg);
    llmc_buf_puts(&many, "?distribution=modula");
    ck_assert_int_eq(llmc_cache_open(many.data, NULL, &c, &e), LLMC_OK);
    llmc_cache_close(c);
    llmc_buf_free(&many);
}
END_TEST

START_TEST(test_sasl_against_server_without_sasl)
{
    /* Debian's libmemcached has SASL; against a server that does not
     * speak it the failure is clear and never shows the password. */
    char u[256];
    snprintf(u, sizeof u, "memcached://alice:s3cretpw@127.0.0.1:%d?timeout_ms=500", srv[0].port);
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(u, NULL, &c, &e);
    if (st == LLMC_OK) {
        st = llmc_cache_set(c, "k", 1, "v", 1, 0);
        ck_assert_int_ne(st, LLMC_OK);
        ck_assert_ptr_null(strstr(llmc_cache_errmsg(c), "s3cretpw"));
        ck_assert_ptr_null(strstr(llmc_cache_url(c), "s3cretpw"));
        llmc_cache_close(c);
    } else {
        ck_assert_ptr_null(strstr(e.msg, "s3cretpw"));
    }
    snprintf(u, sizeof u, "memcached://alice@127.0.0.1:%d", srv[0].port);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "password"));
}
END_TEST

static llmc_cache *shared;
static void *hammer(void *arg)
{
    long id = (long)arg;
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        char k[32], v[32];
        int kl = snprintf(k, sizeof k, "t%ld:%d", id, i % 50);
        int vl = snprintf(v, sizeof v, "v%ld-%d", id, i);
        if (llmc_cache_set(shared, k, (size_t)kl, v, (size_t)vl, 0) != LLMC_OK) {
            if (!bad)
                fprintf(stderr, "thread set: %s\n", llmc_cache_errmsg(shared));
            bad++;
        }
        llmc_buf b = LLMC_BUF_INIT;
        if (llmc_cache_get(shared, k, (size_t)kl, &b) != LLMC_OK || b.len != (size_t)vl ||
            memcmp(b.data, v, (size_t)vl) != 0)
            bad++;
        llmc_buf_free(&b);
    }
    return (void *)bad;
}

START_TEST(test_threads_share_one_handle)
{
    shared = open_url("&pool_size=3");
    ck_assert(llmc_cache_caps(shared) & LLMC_CAP_THREAD_SAFE);
    pthread_t th[6];
    for (long i = 0; i < 6; i++)
        pthread_create(&th[i], NULL, hammer, (void *)i);
    long bad = 0;
    for (int i = 0; i < 6; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (long)r;
    }
    ck_assert_int_eq(bad, 0);
    llmc_cache_close(shared);
}
END_TEST

/* One server killed: the other keeps serving; restarted: used again. */
START_TEST(test_server_killed_and_restarted)
{
    llmc_cache *c = open_url("&retry_timeout_s=1");
    enum { N = 60 };
    char kb[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(kb[i], sizeof kb[i], "kr-%d", i);
        ck_assert_int_eq(llmc_cache_set(c, kb[i], strlen(kb[i]), "v", 1, 0), LLMC_OK);
    }
    int dead_port = srv[1].port;
    testsrv_kill(&srv[1], 1);

    char portstr[16];
    snprintf(portstr, sizeof portstr, ":%d", dead_port);
    int ok = 0, failed = 0;
    for (int round = 0; round < 2; round++) {
        ok = failed = 0;
        for (int i = 0; i < N; i++) {
            llmc_status st = get_st(c, kb[i]);
            if (st == LLMC_OK) {
                ok++;
            } else {
                /* a key of the dead server: a clear error (or a miss), in time */
                ck_assert_msg(st == LLMC_ECONN || st == LLMC_ETIMEDOUT || st == LLMC_MISS,
                              "unexpected %s", llmc_status_name(st));
                if (st != LLMC_MISS)
                    ck_assert_msg(strstr(llmc_cache_errmsg(c), portstr) != NULL,
                                  "message does not name the dead server: %s",
                                  llmc_cache_errmsg(c));
                failed++;
            }
        }
        ck_assert_int_gt(ok, 0);   /* the live server's keys */
        ck_assert_int_gt(failed, 0);
    }
    /* the cache keeps working: new writes to the live server succeed */
    int written = 0;
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "new-%d", i);
        if (llmc_cache_set(c, k, strlen(k), "n", 1, 0) == LLMC_OK) {
            written++;
            expect_value(c, k, strlen(k), "n", 1);
        }
    }
    ck_assert_int_gt(written, 0);
    ck_assert_int_ne(llmc_cache_ping(c), LLMC_OK);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), portstr));

    /* restart on the same port: after the retry timeout it is used again */
    ck_assert_int_eq(start_mc(&srv[1], "mc1", dead_port), 0);
    int all_ok = 0;
    for (int attempt = 0; attempt < 100 && !all_ok; attempt++) {
        all_ok = 1;
        for (int i = 0; i < N; i++)
            if (llmc_cache_set(c, kb[i], strlen(kb[i]), "w", 1, 0) != LLMC_OK)
                all_ok = 0;
        if (!all_ok)
            usleep(200 * 1000);
    }
    ck_assert_msg(all_ok, "restarted server not used again");
    for (int i = 0; i < N; i++)
        expect_value(c, kb[i], strlen(kb[i]), "w", 1);
    ck_assert_int_eq(backend_stat(c, "servers_up"), 2);
    ck_assert_int_gt(backend_stat(c, "server1_curr_items"), 0);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_cache_close(c);
}
END_TEST

#if LLMC_TEST_SASL
/* A memcached with SASL (-S) and a sasldb holding one user, created
 * here through libsasl2 (no saslpasswd2 needed). */
static testsrv sasl_srv;

static void sasl_up(void)
{
    ck_assert_int_eq(testsrv_mkdir(&sasl_srv, "mc-sasl"), 0);
    char conf[400];
    snprintf(conf, sizeof conf, "%s/memcached.conf", sasl_srv.dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "mech_list: plain\nsasldb_path: %s/sasldb2\n", sasl_srv.dir);
    fclose(f);
    setenv("SASL_CONF_PATH", sasl_srv.dir, 1);
    ck_assert_int_eq(sasl_server_init(NULL, "memcached"), SASL_OK);
    sasl_conn_t *conn = NULL;
    ck_assert_int_eq(sasl_server_new("memcached", NULL, NULL, NULL, NULL, NULL, 0, &conn), SASL_OK);
    ck_assert_int_eq(sasl_setpass(conn, "alice", "s3cretpw", 8, NULL, 0, SASL_SET_CREATE), SASL_OK);
    sasl_dispose(&conn);
    int port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-S", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "16",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[10] = NULL;
    sasl_srv.port = port;
    ck_assert_int_eq(testsrv_spawn(&sasl_srv, argv), 0);
    ck_assert_int_eq(testsrv_wait_tcp(&sasl_srv, port, 5000), 0);
}

static void sasl_down(void)
{
    testsrv_stop(&sasl_srv);
}

START_TEST(test_sasl_auth)
{
    char u[256];
    llmc_cache *c = NULL;
    llmc_err e;
    snprintf(u, sizeof u, "memcached://alice:s3cretpw@127.0.0.1:%d?timeout_ms=1000", sasl_srv.port);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_OK);
    ck_assert_ptr_null(strstr(llmc_cache_url(c), "s3cretpw"));
    ck_assert_msg(llmc_cache_set(c, "sk", 2, "sv", 2, 0) == LLMC_OK, "%s", llmc_cache_errmsg(c));
    expect_value(c, "sk", 2, "sv", 2);
    ck_assert_int_eq(llmc_cache_flush(c, "ns", NULL), LLMC_OK);
    llmc_cache_close(c);

    snprintf(u, sizeof u, "memcached://alice:wrongpw@127.0.0.1:%d?timeout_ms=1000", sasl_srv.port);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "sk", 2, "x", 1, 0), LLMC_EAUTH);
    ck_assert_ptr_null(strstr(llmc_cache_errmsg(c), "wrongpw"));
    llmc_cache_close(c);

    /* no credentials: the server refuses to talk */
    snprintf(u, sizeof u, "memcached://127.0.0.1:%d?timeout_ms=500", sasl_srv.port);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_OK);
    ck_assert_int_ne(llmc_cache_set(c, "sk", 2, "x", 1, 0), LLMC_OK);
    llmc_cache_close(c);
}
END_TEST
#endif

static Suite *memcached_suite(void)
{
    Suite *s = suite_create("memcached");
    TCase *tc = tcase_create("two servers");
    tcase_add_unchecked_fixture(tc, servers_up, servers_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_text);
    tcase_add_test(tc, test_roundtrip_binary_protocol);
    tcase_add_test(tc, test_awkward_keys);
    tcase_add_test(tc, test_keys_spread_over_both_servers);
    tcase_add_test(tc, test_oversized_value);
    tcase_add_test(tc, test_long_and_short_ttl);
    tcase_add_test(tc, test_namespace_flush_isolation);
    tcase_add_test(tc, test_mget_across_servers);
    tcase_add_test(tc, test_unsupported_and_bad_options);
    tcase_add_test(tc, test_sasl_against_server_without_sasl);
    tcase_add_test(tc, test_threads_share_one_handle);
    suite_add_tcase(s, tc);

    TCase *tk = tcase_create("failover");
    /* runs in the test process itself: it kills and restarts a server */
    tcase_add_checked_fixture(tk, servers_up, servers_down);
    tcase_set_timeout(tk, 90);
    tcase_add_test(tk, test_server_killed_and_restarted);
    suite_add_tcase(s, tk);
#if LLMC_TEST_SASL
    TCase *ts = tcase_create("sasl");
    tcase_add_unchecked_fixture(ts, sasl_up, sasl_down);
    tcase_set_timeout(ts, 30);
    tcase_add_test(ts, test_sasl_auth);
    suite_add_tcase(s, ts);
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(memcached_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
