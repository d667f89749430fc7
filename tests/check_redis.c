/* Redis backend suite: real redis-server instances started here (plain
 * TCP with requirepass and an ACL user, TLS with generated certificates,
 * a Unix socket), checked from outside with redis-cli and raw hiredis. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "internal.h"
#include "support/redissrv.h"

static redissrv tcp, tls, uni;
static int servers_up;

/* A server started by one test (in Check's forked child): stopped at the
 * end of the test or at exit; if an assertion fails, Check ends the child
 * with _exit and the server dies with it (PR_SET_PDEATHSIG, redissrv.c). */
static redissrv *own_srv;
static void stop_own_srv(void)
{
    if (own_srv) {
        if (own_srv->srv.pid > 0)
            kill(own_srv->srv.pid, SIGCONT); /* in case it was left stopped */
        redissrv_stop(own_srv);
        own_srv = NULL;
    }
}
static void own_server(redissrv *r, redissrv_kind kind)
{
    ck_assert_int_eq(redissrv_start(r, kind), 0);
    own_srv = r;
    atexit(stop_own_srv);
}

static void suite_setup(void)
{
    servers_up = redissrv_start(&tcp, REDISSRV_TCP) == 0 &&
                 redissrv_start(&tls, REDISSRV_TLS) == 0 &&
                 redissrv_start(&uni, REDISSRV_UNIX) == 0;
}

static void suite_teardown(void)
{
    redissrv_stop(&tcp);
    redissrv_stop(&tls);
    redissrv_stop(&uni);
}

/* The URL of transport i: TCP, TLS, Unix socket (loop tests). */
static const char *transport_url(int i)
{
    static char unix_url[400];
    snprintf(unix_url, sizeof unix_url, "unix://%s", uni.sock);
    return i == 0 ? tcp.url : i == 1 ? tls.url : unix_url;
}

static llmc_cache *open_ok(const char *url, const llmc_options *o)
{
    ck_assert_msg(servers_up, "redis servers did not start");
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc_cache_open(url, o, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s: %s", url, llmc_status_name(st), e.msg);
    return c;
}

static llmc_status open_err(const char *url, const llmc_options *o, llmc_err *e)
{
    llmc_cache *c = NULL;
    llmc_err_clear(e);
    llmc_status st = llmc_cache_open(url, o, &c, e);
    if (st == LLMC_OK)
        llmc_cache_close(c);
    return st;
}

static char *cli1(redissrv *r, const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *args[5] = {a0, a1, a2, a3, NULL};
    char *out = redissrv_cli(r, args);
    ck_assert_msg(out != NULL, "redis-cli failed");
    return out;
}

static void kv_roundtrip(llmc_cache *c, const char *prefix)
{
    char key[128];
    snprintf(key, sizeof key, "%s:k1", prefix);
    const char val[] = "hello\0world\r\n$-1\r\n";
    ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, sizeof val, LLMC_TTL_NEVER),
                     LLMC_OK);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_OK);
    ck_assert_uint_eq(b.len, sizeof val);
    ck_assert(memcmp(b.data, val, sizeof val) == 0);
    ck_assert_int_eq(llmc_cache_exists(c, key, strlen(key)), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, key, strlen(key)), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, key, strlen(key)), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_exists(c, key, strlen(key)), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_buf_free(&b);
}

/* ---- basics over the three transports ---- */

START_TEST(t_sizes_roundtrip)
{
    llmc_cache *c = open_ok(transport_url(_i), NULL);
    ck_assert_str_eq(llmc_cache_backend_name(c), "redis");
    ck_assert(llmc_cache_caps(c) & LLMC_CAP_THREAD_SAFE);
    kv_roundtrip(c, "tcp");
    /* Values of several sizes, including ones bigger than a read chunk. */
    size_t sizes[] = {0, 1, 1500, 20000, 65536, 65537, 1 << 20};
    char *big = malloc(1 << 20);
    for (size_t i = 0; i < (size_t)(1 << 20); i++)
        big[i] = (char)(i * 7 + 3);
    llmc_buf b = LLMC_BUF_INIT;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(llmc_cache_set(c, "tcp:big", 7, big, sizes[i], 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get(c, "tcp:big", 7, &b), LLMC_OK);
        ck_assert_uint_eq(b.len, sizes[i]);
        ck_assert(sizes[i] == 0 || memcmp(b.data, big, sizes[i]) == 0);
    }
    free(big);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_tls_roundtrip)
{
    llmc_cache *c = open_ok(tls.url, NULL);
    kv_roundtrip(c, "tls");
    ck_assert_int_eq(llmc_cache_set(c, "tls:seen", 8, "over-tls", 8, 0), LLMC_OK);
    char *out = cli1(&tls, "GET", "tls:seen", NULL, NULL);
    ck_assert_msg(strstr(out, "over-tls") != NULL, "redis-cli --tls saw: %s", out);
    free(out);
    /* A big value crosses many TLS records. */
    size_t n = 300000;
    char *v = malloc(n);
    for (size_t i = 0; i < n; i++)
        v[i] = (char)(i % 251);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_set(c, "tls:big", 7, v, n, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "tls:big", 7, &b), LLMC_OK);
    ck_assert_uint_eq(b.len, n);
    ck_assert(memcmp(b.data, v, n) == 0);
    free(v);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_unix_roundtrip)
{
    char url[600];
    snprintf(url, sizeof url, "unix://%s?db=2", uni.sock);
    llmc_cache *c = open_ok(url, NULL);
    kv_roundtrip(c, "unix");
    ck_assert_int_eq(llmc_cache_set(c, "unix:seen", 9, "in-db-2", 7, 0), LLMC_OK);
    char *out = cli1(&uni, "-n", "2", "GET", "unix:seen");
    ck_assert_msg(strstr(out, "in-db-2") != NULL, "redis-cli -n 2 saw: %s", out);
    free(out);
    out = cli1(&uni, "-n", "0", "EXISTS", "unix:seen");
    ck_assert_msg(strstr(out, "0") != NULL, "key leaked into db 0: %s", out);
    free(out);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_select_db_in_path)
{
    char url[300];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d/3", REDISSRV_PASSWORD, tcp.port);
    llmc_cache *c = open_ok(url, NULL);
    ck_assert_int_eq(llmc_cache_set(c, "db3:key", 7, "three", 5, 0), LLMC_OK);
    char *out = cli1(&tcp, "-n", "3", "GET", "db3:key");
    ck_assert_msg(strstr(out, "three") != NULL, "redis-cli -n 3 saw: %s", out);
    free(out);
    llmc_cache_close(c);
}
END_TEST

/* ---- TTLs, checked with Redis's own PTTL ---- */

START_TEST(t_ttl_px)
{
    llmc_cache *c = open_ok(tcp.url, NULL);
    long long pttl = 0;
    ck_assert_int_eq(llmc_cache_set(c, "ttl:a", 5, "v", 1, 5000), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&tcp, &pttl, "PTTL %s", "ttl:a"), 0);
    ck_assert_msg(pttl > 0 && pttl <= 5000, "PTTL %lld", pttl);
    int64_t t = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, "ttl:a", 5, &t), LLMC_OK);
    ck_assert(t > 0 && t <= 5000);

    ck_assert_int_eq(llmc_cache_set(c, "ttl:never", 9, "v", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&tcp, &pttl, "PTTL %s", "ttl:never"), 0);
    ck_assert_int_eq(pttl, -1);
    ck_assert_int_eq(llmc_cache_ttl(c, "ttl:never", 9, &t), LLMC_OK);
    ck_assert_int_eq(t, -1);
    ck_assert_int_eq(llmc_cache_ttl(c, "ttl:absent", 10, &t), LLMC_MISS);

    /* A key that expires is gone for Redis and for us. */
    ck_assert_int_eq(llmc_cache_set(c, "ttl:short", 9, "v", 1, 30), LLMC_OK);
    llmc_buf b = LLMC_BUF_INIT;
    for (int i = 0; i < 200 && llmc_cache_get(c, "ttl:short", 9, &b) == LLMC_OK; i++)
        usleep(10000);
    ck_assert_int_eq(llmc_cache_get(c, "ttl:short", 9, &b), LLMC_MISS);
    llmc_buf_free(&b);
    llmc_cache_close(c);

    /* The cache's default TTL (option ttl, seconds) becomes PX. */
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "ttl", "60");
    c = open_ok(tcp.url, o);
    ck_assert_int_eq(llmc_cache_set(c, "ttl:def", 7, "v", 1, LLMC_TTL_DEFAULT), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&tcp, &pttl, "PTTL %s", "ttl:def"), 0);
    ck_assert_msg(pttl > 55000 && pttl <= 60000, "PTTL %lld", pttl);
    /* mset: per-item TTLs */
    llmc_kv items[2] = {{"ttl:m1", 6, "a", 1, 7000}, {"ttl:m2", 6, "b", 1, LLMC_TTL_NEVER}};
    ck_assert_int_eq(llmc_cache_mset(c, 2, items), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&tcp, &pttl, "PTTL %s", "ttl:m1"), 0);
    ck_assert_msg(pttl > 0 && pttl <= 7000, "PTTL %lld", pttl);
    ck_assert_int_eq(redissrv_raw_int(&tcp, &pttl, "PTTL %s", "ttl:m2"), 0);
    ck_assert_int_eq(pttl, -1);
    llmc_cache_close(c);
    llmc_options_free(o);
}
END_TEST

/* ---- batches ---- */

START_TEST(t_mget_mset)
{
    llmc_cache *c = open_ok(transport_url(_i), NULL);
    enum { N = 1300 }; /* more than one pipelined chunk */
    static char keys[N][32], vals[N][48];
    const char *kp[N];
    size_t kl[N];
    llmc_kv items[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "batch:%d", i);
        snprintf(vals[i], sizeof vals[i], "value-%d", i * 31);
        kp[i] = keys[i];
        kl[i] = strlen(keys[i]);
        items[i] = (llmc_kv){keys[i], kl[i], vals[i], strlen(vals[i]), 0};
    }
    /* store the even ones only */
    static llmc_kv even[N / 2];
    for (int i = 0; i < N / 2; i++)
        even[i] = items[2 * i];
    ck_assert_int_eq(llmc_cache_mset(c, N / 2, even), LLMC_OK);
    static llmc_buf out[N];
    static llmc_status sts[N];
    memset(out, 0, sizeof out);
    ck_assert_int_eq(llmc_cache_mget(c, N, kp, kl, out, sts), LLMC_OK);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            ck_assert_int_eq(sts[i], LLMC_OK);
            ck_assert_uint_eq(out[i].len, strlen(vals[i]));
            ck_assert(memcmp(out[i].data, vals[i], out[i].len) == 0);
        } else {
            ck_assert_int_eq(sts[i], LLMC_MISS);
        }
        llmc_buf_free(&out[i]);
    }

    /* Values of mixed sizes around the read chunk (64 KB), with misses
     * in between: every way a value can straddle reads. */
    enum { M = 24 };
    static char *big[M];
    static size_t blen[M];
    for (int i = 0; i < M; i++) {
        blen[i] = (size_t)(i % 3 == 2 ? 0 : (i * 7919) % 70000 + (i % 4) * 16384);
        big[i] = malloc(blen[i] + 1);
        for (size_t j = 0; j < blen[i]; j++)
            big[i][j] = (char)(j * 13 + (size_t)i);
        if (i % 5 != 4)
            ck_assert_int_eq(llmc_cache_set(c, keys[i], kl[i], big[i], blen[i], 0), LLMC_OK);
        else
            llmc_cache_del(c, keys[i], kl[i]);
    }
    ck_assert_int_eq(llmc_cache_mget(c, M, kp, kl, out, sts), LLMC_OK);
    for (int i = 0; i < M; i++) {
        if (i % 5 == 4) {
            ck_assert_int_eq(sts[i], LLMC_MISS);
        } else {
            ck_assert_int_eq(sts[i], LLMC_OK);
            ck_assert_uint_eq(out[i].len, blen[i]);
            ck_assert(memcmp(out[i].data, big[i], blen[i]) == 0);
        }
        llmc_buf_free(&out[i]);
        free(big[i]);
    }
    llmc_cache_close(c);
}
END_TEST

/* ---- namespaces: flush, scan, prefix visible to redis-cli ---- */

static int count_cb(void *ud, const char *key, size_t klen)
{
    (void)key;
    (void)klen;
    (*(int *)ud)++;
    return 0;
}

static int stop_cb(void *ud, const char *key, size_t klen)
{
    (void)key;
    (void)klen;
    return ++(*(int *)ud) >= 3;
}

START_TEST(t_flush_namespace)
{
    llmc_cache *c = open_ok(tcp.url, NULL);
    char k[64];
    /* "ns" and look-alikes: "ns2", a namespace with glob characters. */
    for (int i = 0; i < 2500; i++) {
        int n = snprintf(k, sizeof k, "fl:%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, (size_t)n, "x", 1, 0), LLMC_OK);
    }
    ck_assert_int_eq(llmc_cache_set(c, "fl2:a", 5, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "f*:a", 4, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "f\\:a", 4, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "f:a", 3, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "fl", 2, "x", 1, 0), LLMC_OK);

    int seen = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "fl:", 3, count_cb, &seen), LLMC_OK);
    ck_assert_int_eq(seen, 2500);
    seen = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "fl:", 3, stop_cb, &seen), LLMC_OK);
    ck_assert_int_eq(seen, 3);
    /* glob characters in a prefix are literal */
    seen = 0;
    ck_assert_int_eq(llmc_cache_scan(c, "f*", 2, count_cb, &seen), LLMC_OK);
    ck_assert_int_eq(seen, 1);

    uint64_t deleted = 0;
    ck_assert_int_eq(llmc_cache_flush(c, "f\\", &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, 1); /* "f\\:a" only, not "f:a" */
    ck_assert_int_eq(llmc_cache_flush(c, "fl", &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, 2500);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "fl2:a", 5, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "fl", 2, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "fl:7", 4, &b), LLMC_MISS);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_namespace_visible_to_cli)
{
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "namespace", "teamA");
    llmc_cache *c = open_ok(tcp.url, o);
    /* A completion key computed with the cache's namespace. */
    json_object *req = json_tokener_parse(
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    in.request = req;
    in.namespace_ = llmc_cache_namespace(c);
    llmc_buf key = LLMC_BUF_INIT;
    llmc_err e;
    ck_assert_int_eq(llmc_key_compute(NULL, &in, &key, NULL, &e), LLMC_OK);
    ck_assert(strncmp(key.data, "teamA:", 6) == 0);
    const char body[] = "{\"id\":\"x\",\"choices\":[]}";
    ck_assert_int_eq(llmc_cache_put_entry(c, key.data, key.len, LLMC_CALL_CHAT, body,
                                          sizeof body - 1, 60000, 0),
                     LLMC_OK);
    char *out = cli1(&tcp, "--scan", "--pattern", "teamA:*", NULL);
    ck_assert_msg(strstr(out, key.data) != NULL, "redis-cli --scan: %s", out);
    free(out);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, key.data, key.len, -1, 0, &l), LLMC_OK);
    ck_assert_uint_eq(l.entry.body_len, sizeof body - 1);
    llmc_lookup_free(&l);
    uint64_t deleted = 0;
    ck_assert_int_eq(llmc_cache_flush(c, NULL, &deleted), LLMC_OK);
    ck_assert_uint_eq(deleted, 1);
    json_object_put(req);
    llmc_buf_free(&key);
    llmc_cache_close(c);
    llmc_options_free(o);
}
END_TEST

START_TEST(t_flush_all_selected_db_only)
{
    char url[300];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d/5", REDISSRV_PASSWORD, tcp.port);
    llmc_cache *c0 = open_ok(tcp.url, NULL);
    llmc_cache *c5 = open_ok(url, NULL);
    ck_assert_int_eq(llmc_cache_set(c0, "keep:me", 7, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c5, "gone:me", 7, "x", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_flush_all(c5), LLMC_OK);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c5, "gone:me", 7, &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c0, "keep:me", 7, &b), LLMC_OK);
    llmc_buf_free(&b);
    llmc_cache_close(c0);
    llmc_cache_close(c5);
}
END_TEST

/* ---- authentication ---- */

START_TEST(t_acl_user)
{
    char url[300];
    snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d", REDISSRV_ACL_USER,
             REDISSRV_ACL_PASS, tcp.port);
    llmc_cache *c = open_ok(url, NULL);
    kv_roundtrip(c, "acl");
    llmc_cache_close(c);

    llmc_err e;
    snprintf(url, sizeof url, "redis://%s:Wrong-Secret-77@127.0.0.1:%d", REDISSRV_ACL_USER,
             tcp.port);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EAUTH);
    ck_assert_msg(strstr(e.msg, "Wrong-Secret-77") == NULL, "password leaked: %s", e.msg);
    ck_assert_msg(strstr(e.msg, REDISSRV_ACL_USER) != NULL, "message: %s", e.msg);

    /* an ACL user without the right to write: EPERM, with Redis's text */
    snprintf(url, sizeof url, "redis://%s:%s@127.0.0.1:%d", REDISSRV_RO_USER, REDISSRV_RO_PASS,
             tcp.port);
    c = open_ok(url, NULL);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "acl:none", 8, &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_set(c, "acl:ro", 6, "v", 1, 0), LLMC_EPERM);
    ck_assert_msg(strstr(llmc_cache_errmsg(c), "NOPERM") != NULL, "%s", llmc_cache_errmsg(c));
    ck_assert_msg(strstr(llmc_cache_errmsg(c), REDISSRV_RO_PASS) == NULL, "%s",
                  llmc_cache_errmsg(c));
    llmc_buf_free(&b);
    llmc_cache_close(c);

    /* user and password as options (open by type) */
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "host", "127.0.0.1");
    llmc_options_set_int(o, "port", tcp.port);
    llmc_options_set(o, "user", REDISSRV_ACL_USER);
    llmc_options_set(o, "password", REDISSRV_ACL_PASS);
    ck_assert_int_eq(llmc_cache_open_type("redis", o, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_cache_close(c);
    llmc_options_free(o);
}
END_TEST

START_TEST(t_wrong_password)
{
    char url[300];
    llmc_err e;
    snprintf(url, sizeof url, "redis://:Not-The-Pw-123@127.0.0.1:%d", tcp.port);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EAUTH);
    ck_assert_msg(strstr(e.msg, "Not-The-Pw-123") == NULL, "password leaked: %s", e.msg);
    ck_assert_msg(strstr(e.msg, "authentication failed") != NULL, "message: %s", e.msg);
    ck_assert_msg(strstr(e.msg, "127.0.0.1") != NULL, "message: %s", e.msg);
    /* no password at all on a server that wants one */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", tcp.port);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EAUTH);
    ck_assert_msg(strstr(e.msg, "NOAUTH") != NULL, "message: %s", e.msg);
}
END_TEST

/* ---- bad configuration ---- */

START_TEST(t_bad_config)
{
    char url[600];
    llmc_err e;
    ck_assert_int_eq(open_err("redis://h1:1,h2:2", NULL, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "one host") != NULL, "%s", e.msg);
    ck_assert_int_eq(open_err("redis://127.0.0.1:6379/abc", NULL, &e), LLMC_EINVAL);
    ck_assert_int_eq(open_err("redis://127.0.0.1:6379?pool_size=0", NULL, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "pool_size") != NULL, "%s", e.msg);
    ck_assert_int_eq(open_err("redis://127.0.0.1:6379?tls_ca=/x", NULL, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "rediss://") != NULL, "%s", e.msg);
    ck_assert_int_eq(open_err("unix://", NULL, &e), LLMC_EINVAL);
    ck_assert_int_eq(open_err("redis://127.0.0.1:6379?bogus=1", NULL, &e), LLMC_EINVAL);
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d?tls_ca=/nonexistent/ca.pem", tls.port);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "tls_ca") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(t_error_reply)
{
    llmc_cache *c = open_ok(tcp.url, NULL);
    long long n;
    ck_assert_int_eq(redissrv_raw_int(&tcp, &n, "RPUSH %s %s", "err:list", "x"), 0);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "err:list", 8, &b), LLMC_EBACKEND);
    ck_assert_msg(strstr(llmc_cache_errmsg(c), "WRONGTYPE") != NULL, "%s",
                  llmc_cache_errmsg(c));
    /* The connection stays usable after an error reply. */
    ck_assert_int_eq(llmc_cache_set(c, "err:ok", 6, "v", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "err:ok", 6, &b), LLMC_OK);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

/* ---- TLS verification ---- */

START_TEST(t_tls_verify)
{
    char url[1400];
    llmc_err e;
    /* wrong CA: refused (the server answered: a configuration error,
     * so the open fails) */
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d?tls_ca=%s&tls_cert=%s&tls_key=%s",
             tls.port, tls.other_ca, tls.client_cert, tls.client_key);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EAUTH);
    ck_assert_msg(strstr(e.msg, "verif") != NULL, "%s", e.msg);
    /* same, with verification explicitly off: accepted */
    strcat(url, "&tls_verify=0");
    llmc_cache *c = open_ok(url, NULL);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_cache_close(c);
    /* right CA, wrong name */
    snprintf(url, sizeof url,
             "rediss://127.0.0.1:%d?tls_ca=%s&tls_cert=%s&tls_key=%s&tls_server_name=evil.example",
             tls.port, tls.ca, tls.client_cert, tls.client_key);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EAUTH);
    /* right CA, the certificate's DNS name */
    snprintf(url, sizeof url,
             "rediss://127.0.0.1:%d?tls_ca=%s&tls_cert=%s&tls_key=%s&tls_server_name=localhost",
             tls.port, tls.ca, tls.client_cert, tls.client_key);
    c = open_ok(url, NULL);
    llmc_cache_close(c);
    /* no client certificate: the server resets the connection after the
     * handshake, which cannot be told from a server going away: the
     * handle opens (with a warning) and every call fails */
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d?tls_ca=%s", tls.port, tls.ca);
    llmc_cache *nc = NULL;
    llmc_err_clear(&e);
    llmc_status nst = llmc_cache_open(url, NULL, &nc, &e);
    if (nst == LLMC_OK) {
        nst = llmc_cache_ping(nc);
        snprintf(e.msg, sizeof e.msg, "%s", llmc_cache_errmsg(nc));
        llmc_cache_close(nc);
    }
    ck_assert_msg(nst == LLMC_EAUTH || nst == LLMC_ECONN, "%s: %s", llmc_status_name(nst),
                  e.msg);
    /* plain redis:// against the TLS port: a clear failure, no hang */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?connect_timeout_ms=500", tls.port);
    /* (the open may succeed when the server just closes: each call then
     * fails with the reason) */
    llmc_cache *pc = NULL;
    llmc_err_clear(&e);
    llmc_status st = llmc_cache_open(url, NULL, &pc, &e);
    if (st == LLMC_OK) {
        st = llmc_cache_ping(pc);
        snprintf(e.msg, sizeof e.msg, "%s", llmc_cache_errmsg(pc));
        llmc_cache_close(pc);
    }
    ck_assert_msg(st == LLMC_ECONN || st == LLMC_ETIMEDOUT || st == LLMC_EPROTO, "%s: %s",
                  llmc_status_name(st), e.msg);
}
END_TEST

/* ---- failures ---- */

START_TEST(t_unreachable)
{
    llmc_err e;
    char url[200];
    int port = testsrv_free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?connect_timeout_ms=300", port);
    /* Nobody listening is not an open error: the handle opens and each
     * call says why it failed. */
    llmc_cache *c = NULL;
    llmc_err_clear(&e);
    ck_assert_msg(llmc_cache_open(url, NULL, &c, &e) == LLMC_OK, "open: %s", e.msg);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "u:1", 3, &b), LLMC_ECONN);
    ck_assert_msg(strstr(llmc_cache_errmsg(c), "cannot connect") != NULL, "%s",
                  llmc_cache_errmsg(c));
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_ECONN);
    llmc_cache_close(c);
    ck_assert_int_eq(open_err("redis://no-such-host.invalid:6379?connect_timeout_ms=300", NULL,
                              &e),
                     LLMC_OK);
    /* Configuration errors still fail the open at once. */
    ck_assert_int_eq(open_err("redis://127.0.0.1:1?connect_timeout_ms=abc", NULL, &e),
                     LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "connect_timeout_ms") != NULL, "%s", e.msg);
    ck_assert_int_eq(open_err("redis://127.0.0.1:1?no_such_option=1", NULL, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "no_such_option") != NULL, "%s", e.msg);
    ck_assert_int_eq(open_err("rediss://127.0.0.1:1?tls_ca=/no/such/ca.pem", NULL, &e),
                     LLMC_EINVAL);
    llmc_buf_free(&b);
}
END_TEST

/* Opened while the server is down, the same handle is used as soon as
 * the server answers: no reopen. */
START_TEST(t_open_down_then_up)
{
    redissrv r;
    own_server(&r, REDISSRV_TCP);
    redissrv_kill(&r);
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_err_clear(&e);
    ck_assert_msg(llmc_cache_open(r.url, NULL, &c, &e) == LLMC_OK, "open: %s", e.msg);
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_set(c, "od:1", 4, "v", 1, 0);
    ck_assert_msg(st == LLMC_ECONN, "set while down: %s", llmc_status_name(st));
    ck_assert_msg(strstr(llmc_cache_errmsg(c), REDISSRV_PASSWORD) == NULL, "leak: %s",
                  llmc_cache_errmsg(c));
    ck_assert_int_eq(redissrv_restart(&r), 0);
    /* The reconnect backoff is at most a second: poll, bounded. */
    st = LLMC_ECONN;
    for (int i = 0; i < 200 && st != LLMC_OK; i++) {
        st = llmc_cache_set(c, "od:1", 4, "v", 1, 0);
        if (st != LLMC_OK)
            usleep(25000);
    }
    ck_assert_int_eq(st, LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "od:1", 4, &b), LLMC_OK);
    ck_assert_int_eq(b.len, 1);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_buf_free(&b);
    llmc_cache_close(c);
    stop_own_srv();
}
END_TEST

/* A TCP server that answers every connection with an HTTP response, to
 * stand for "something that is not Redis". */
typedef struct fake_srv {
    int fd, port, conns;
} fake_srv;

static void *fake_main(void *p)
{
    fake_srv *f = p;
    for (int i = 0; i < f->conns; i++) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            break;
        const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        ssize_t w = write(c, resp, sizeof resp - 1);
        (void)w;
        usleep(100000);
        close(c);
    }
    return NULL;
}

START_TEST(t_not_redis)
{
    fake_srv f = {socket(AF_INET, SOCK_STREAM, 0), 0, 1};
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(f.fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(f.fd, (struct sockaddr *)&a, &al);
    f.port = ntohs(a.sin_port);
    ck_assert_int_eq(listen(f.fd, 4), 0);
    pthread_t th;
    pthread_create(&th, NULL, fake_main, &f);
    char url[200];
    llmc_err e;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?connect_timeout_ms=2000", f.port);
    ck_assert_int_eq(open_err(url, NULL, &e), LLMC_EPROTO);
    ck_assert_msg(strstr(e.msg, "protocol error") != NULL, "%s", e.msg);
    pthread_join(th, NULL);
    close(f.fd);
}
END_TEST

typedef struct kstats {
    int64_t reconnects, pool_size, pool_waits, connects;
} kstats;

static void stat_cb(void *ud, const char *name, int64_t v)
{
    kstats *k = ud;
    if (!strcmp(name, "reconnects"))
        k->reconnects = v;
    else if (!strcmp(name, "pool_size"))
        k->pool_size = v;
    else if (!strcmp(name, "pool_waits"))
        k->pool_waits = v;
    else if (!strcmp(name, "connects"))
        k->connects = v;
}

/* Kill the server under an open handle, then restart it on the same
 * port (or socket): errors within the timeout while it is down, misses
 * on the fail-open path (with the circuit breaker tripping), and the same
 * handle works again once it is back. Over TCP, TLS and a Unix socket. */
START_TEST(t_kill_and_restart)
{
    static const redissrv_kind kinds[] = {REDISSRV_TCP, REDISSRV_TLS, REDISSRV_UNIX};
    static redissrv r;
    own_server(&r, kinds[_i]);
    char url[1600];
    snprintf(url, sizeof url,
             "%s%scommand_timeout_ms=500&connect_timeout_ms=500&pool_size=4"
             "&breaker_threshold=3&breaker_cooldown_ms=100",
             r.url, strchr(r.url, '?') ? "&" : "?");
    llmc_cache *c = open_ok(url, NULL);
    ck_assert_int_eq(llmc_cache_put_entry(c, "kr:1", 4, LLMC_CALL_CHAT, "{}", 2, 0, 0), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "kr:1", 4, -1, LLMC_ENTRY_SOFT, &l), LLMC_OK);

    redissrv_kill(&r);
    llmc_buf b = LLMC_BUF_INIT;
    for (int i = 0; i < 5; i++) {
        llmc_status st = llmc_cache_get(c, "kr:1", 4, &b);
        ck_assert_msg(st == LLMC_ECONN || st == LLMC_ETIMEDOUT, "get after kill: %s",
                      llmc_status_name(st));
        ck_assert_msg(strstr(llmc_cache_errmsg(c), REDISSRV_PASSWORD) == NULL, "leak: %s",
                      llmc_cache_errmsg(c));
        /* the completion path fails open */
        ck_assert_int_eq(llmc_cache_get_entry(c, "kr:1", 4, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
        ck_assert_int_eq(llmc_cache_put_entry(c, "kr:2", 4, LLMC_CALL_CHAT, "{}", 2, 0,
                                              LLMC_ENTRY_SOFT),
                         LLMC_OK);
    }
    ck_assert_int_ne(llmc_cache_ping(c), LLMC_OK);
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    ck_assert_uint_ge(s.breaker_trips, 1);

    ck_assert_int_eq(redissrv_restart(&r), 0);
    /* The same handle recovers once the server is back (after the
     * reconnect backoff, at most a second). */
    llmc_status st = LLMC_ECONN;
    for (int i = 0; i < 200 && st != LLMC_OK; i++) {
        st = llmc_cache_set(c, "kr:3", 4, "back", 4, 0);
        if (st != LLMC_OK)
            usleep(25000);
    }
    ck_assert_int_eq(st, LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "kr:3", 4, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "kr:1", 4, &b), LLMC_MISS); /* fresh server, no data */
    /* and the fail-open path closes its breaker again after a probe */
    ck_assert_int_eq(llmc_cache_put_entry(c, "kr:4", 4, LLMC_CALL_CHAT, "{}", 2, 0, 0),
                     LLMC_OK);
    st = LLMC_MISS;
    for (int i = 0; i < 100 && st != LLMC_OK; i++) {
        st = llmc_cache_get_entry(c, "kr:4", 4, -1, LLMC_ENTRY_SOFT, &l);
        if (st != LLMC_OK)
            usleep(20000);
    }
    ck_assert_int_eq(st, LLMC_OK);
    kstats k = {0};
    ck_assert_int_eq(llmc_cache_stats_foreach(c, stat_cb, &k), LLMC_OK);
    ck_assert_int_ge(k.reconnects, 1);
    ck_assert_int_eq(k.pool_size, 4);
    llmc_buf_free(&b);
    llmc_lookup_free(&l);
    llmc_cache_close(c);
    stop_own_srv();
}
END_TEST

typedef struct stall_arg {
    llmc_cache *c;
    llmc_status st;
} stall_arg;

static void *stall_get(void *p)
{
    stall_arg *a = p;
    llmc_buf b = LLMC_BUF_INIT;
    a->st = llmc_cache_get(a->c, "st:1", 4, &b);
    llmc_buf_free(&b);
    return NULL;
}

START_TEST(t_stalled_server_times_out)
{
    static redissrv r;
    own_server(&r, REDISSRV_UNIX);
    char url[600];
    snprintf(url, sizeof url,
             "unix://%s?command_timeout_ms=300&connect_timeout_ms=300&pool_size=1", r.sock);
    llmc_cache *c = open_ok(url, NULL);
    ck_assert_int_eq(llmc_cache_set(c, "st:1", 4, "v", 1, 0), LLMC_OK);
    kill(r.srv.pid, SIGSTOP);
    /* Two callers on a one-connection pool against a server that does not
     * answer: one holds the connection until its timeout, the other waits
     * for it (counted), and both come back with ETIMEDOUT. */
    pthread_t th;
    stall_arg a = {c, LLMC_OK};
    pthread_create(&th, NULL, stall_get, &a);
    usleep(50000);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "st:1", 4, &b), LLMC_ETIMEDOUT);
    ck_assert_msg(strstr(llmc_cache_errmsg(c), "timed out") != NULL ||
                      strstr(llmc_cache_errmsg(c), "no free connection") != NULL,
                  "%s", llmc_cache_errmsg(c));
    pthread_join(th, NULL);
    ck_assert_int_eq(a.st, LLMC_ETIMEDOUT);
    kstats k = {0};
    llmc_cache_stats_foreach(c, stat_cb, &k);
    ck_assert_int_ge(k.pool_waits, 1);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "st:1", 4, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    kill(r.srv.pid, SIGCONT);
    /* the timed-out connection was dropped; a new one works (after the
     * reconnect backoff) */
    llmc_status st = LLMC_ETIMEDOUT;
    for (int i = 0; i < 200 && st != LLMC_OK; i++) {
        st = llmc_cache_get(c, "st:1", 4, &b);
        if (st != LLMC_OK)
            usleep(25000);
    }
    ck_assert_int_eq(st, LLMC_OK);
    llmc_buf_free(&b);
    llmc_lookup_free(&l);
    llmc_cache_close(c);
    stop_own_srv();
}
END_TEST

/* ---- threads ---- */

typedef struct targ {
    llmc_cache *c;
    int id;
    int errors;
} targ;

static void *worker(void *p)
{
    targ *a = p;
    llmc_buf b = LLMC_BUF_INIT;
    char key[64], val[64];
    for (int i = 0; i < 300; i++) {
        int kl = snprintf(key, sizeof key, "thr:%d:%d", a->id, i % 50);
        int vl = snprintf(val, sizeof val, "v-%d-%d", a->id, i);
        if (llmc_cache_set(a->c, key, (size_t)kl, val, (size_t)vl, 60000) != LLMC_OK)
            a->errors++;
        if (llmc_cache_get(a->c, key, (size_t)kl, &b) != LLMC_OK || b.len != (size_t)vl ||
            memcmp(b.data, val, (size_t)vl) != 0)
            a->errors++;
        if (i % 50 == 0) {
            const char *ks[2] = {key, "thr:none"};
            size_t kls[2] = {(size_t)kl, 8};
            llmc_buf vs[2] = {LLMC_BUF_INIT, LLMC_BUF_INIT};
            llmc_status sts[2];
            if (llmc_cache_mget(a->c, 2, ks, kls, vs, sts) != LLMC_OK || sts[0] != LLMC_OK ||
                sts[1] != LLMC_MISS)
                a->errors++;
            llmc_buf_free(&vs[0]);
            llmc_buf_free(&vs[1]);
        }
    }
    llmc_buf_free(&b);
    return NULL;
}

START_TEST(t_many_threads)
{
    char url[1500];
    snprintf(url, sizeof url, "%s?pool_size=3", tcp.url);
    llmc_cache *c = open_ok(url, NULL);
    enum { T = 12 };
    pthread_t th[T];
    targ args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (targ){c, i, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].errors, 0);
    }
    kstats k = {0};
    llmc_cache_stats_foreach(c, stat_cb, &k);
    ck_assert_int_le(k.connects, 3); /* never more connections than the pool allows */
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.errors, 0);
    ck_assert_uint_ge(s.hits, (uint64_t)T * 300);
    llmc_cache_close(c);
}
END_TEST

/* ---- REDIS_URL ---- */

START_TEST(t_redis_url_env)
{
    setenv("REDIS_URL", tcp.url, 1);
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_cache_open_type("redis", NULL, &c, &e), LLMC_OK);
    kv_roundtrip(c, "env");
    llmc_cache_close(c);
    /* options of the cache win over REDIS_URL's */
    char u[1500];
    snprintf(u, sizeof u, "%s?pool_size=2", tcp.url);
    setenv("REDIS_URL", u, 1);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "pool_size", "5");
    ck_assert_int_eq(llmc_cache_open_type("redis", o, &c, &e), LLMC_OK);
    kstats k = {0};
    llmc_cache_stats_foreach(c, stat_cb, &k);
    ck_assert_int_eq(k.pool_size, 5);
    llmc_cache_close(c);
    llmc_options_free(o);
    /* a REDIS_URL with a wrong password: EAUTH, password not echoed */
    snprintf(u, sizeof u, "redis://:Env-Wrong-Pw@127.0.0.1:%d", tcp.port);
    setenv("REDIS_URL", u, 1);
    ck_assert_int_eq(llmc_cache_open_type("redis", NULL, &c, &e), LLMC_EAUTH);
    ck_assert_msg(strstr(e.msg, "Env-Wrong-Pw") == NULL, "%s", e.msg);
    /* ... unless the cache is given the right one as an option */
    o = llmc_options_new();
    llmc_options_set(o, "password", REDISSRV_PASSWORD);
    ck_assert_int_eq(llmc_cache_open_type("redis", o, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    llmc_cache_close(c);
    llmc_options_free(o);
    /* an explicit URL ignores REDIS_URL */
    ck_assert_int_eq(open_err(tcp.url, NULL, &e), LLMC_OK);
    unsetenv("REDIS_URL");
}
END_TEST

START_TEST(t_stats)
{
    llmc_cache *c = open_ok(tcp.url, NULL);
    kstats k = {0};
    ck_assert_int_eq(llmc_cache_stats_foreach(c, stat_cb, &k), LLMC_OK);
    ck_assert_int_eq(k.pool_size, 8);
    ck_assert_int_eq(k.connects, 1);
    llmc_cache_close(c);
}
END_TEST

/* The single-node, Cluster and Sentinel backends read their connection
 * options with one parser: the same option gets the same verdict and
 * message in all three (checked before any connection is made). */
START_TEST(t_connection_options_shared)
{
    static const char *const bases[] = {"redis://127.0.0.1:1", "redis-cluster://127.0.0.1:1",
                                        "redis-sentinel://127.0.0.1:1/m"};
    static const struct {
        const char *query;
        const char *msg;
    } cases[] = {
        {"pool_size=0", "option pool_size: 0 is out of range (1..1024)"},
        {"pool_size=1025", "option pool_size: 1025 is out of range (1..1024)"},
        {"command_timeout_ms=abc", "option command_timeout_ms: \"abc\" is not an integer"},
        {"connect_timeout_ms=0", "option connect_timeout_ms: 0 is out of range"},
        {"tls_ca=/nonexistent", "option 'tls_ca' needs TLS: use"},
        {"tls_verify=0", "option 'tls_verify' needs TLS: use"},
        {"tls_server_name=x", "option 'tls_server_name' needs TLS: use"},
    };
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char url[256];
            snprintf(url, sizeof url, "%s?%s", bases[b], cases[i].query);
            llmc_cache *c = NULL;
            llmc_err e;
            llmc_err_clear(&e);
            ck_assert_int_eq(llmc_cache_open(url, NULL, &c, &e), LLMC_EINVAL);
            ck_assert_ptr_null(c);
            ck_assert_msg(strstr(e.msg, cases[i].msg), "%s: \"%s\" not in \"%s\"", url,
                          cases[i].msg, e.msg);
        }
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("redis");
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, t_sizes_roundtrip, 0, 3);
    tcase_add_test(tc, t_tls_roundtrip);
    tcase_add_test(tc, t_unix_roundtrip);
    tcase_add_test(tc, t_select_db_in_path);
    tcase_add_test(tc, t_ttl_px);
    tcase_add_loop_test(tc, t_mget_mset, 0, 3);
    tcase_add_test(tc, t_flush_namespace);
    tcase_add_test(tc, t_namespace_visible_to_cli);
    tcase_add_test(tc, t_flush_all_selected_db_only);
    tcase_add_test(tc, t_acl_user);
    tcase_add_test(tc, t_wrong_password);
    tcase_add_test(tc, t_bad_config);
    tcase_add_test(tc, t_error_reply);
    tcase_add_test(tc, t_tls_verify);
    tcase_add_test(tc, t_unreachable);
    tcase_add_test(tc, t_open_down_then_up);
    tcase_add_test(tc, t_not_redis);
    tcase_add_loop_test(tc, t_kill_and_restart, 0, 3);
    tcase_add_test(tc, t_stalled_server_times_out);
    tcase_add_test(tc, t_many_threads);
    tcase_add_test(tc, t_redis_url_env);
    tcase_add_test(tc, t_stats);
    tcase_add_test(tc, t_connection_options_shared);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(redis_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
