/* Lease renewal (include/llmcache/lease.h): llmc_cache_lease_renew over
 * real redis-server (TCP and unix socket), Redis Cluster and memcached
 * started by the test: it extends only the holder's lease, and really
 * moves its expiry; then the call path: two cache handles (as two
 * replicas have) over one server, the leader's upstream call lasting
 * several times lease_ms, make one upstream call between them, plain and
 * streamed; a lease taken away from a leader is no longer renewed and its
 * answer is still stored; the registry's rules for the new backend
 * member. The fake provider counts upstream calls; the assertions count
 * calls, states and the keeper's counters, never times. */
#include "client_test_util.h"
#include "llmc_config.h"
#include "support/redissrv.h"
#include "support/testsrv.h"
#include "support/rcluster.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static fp_server *fp;
static char base_v1[128];
static redissrv rs;

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(fp));
    ck_assert_msg(redissrv_start(&rs, REDISSRV_TCP) == 0, "redis-server did not start");
}

static void teardown(void)
{
    redissrv_stop(&rs);
    fp_stop(fp);
    curl_global_cleanup();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static llmc_client *client_for(llmc_cache *c)
{
    const char *kv[] = {"openai.api_key", "sk-test-secret-123", "openai.api_base", base_v1,
                        "max_retries", "0", NULL};
    return tu_client(c, kv);
}

#define CHAT(content)                                                                      \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" content "\"}]}"

/* One of llmc_cache_stats_foreach's counters; fails when absent. */
typedef struct stat_q {
    const char *name;
    int64_t v;
    int found;
} stat_q;

static void stat_cb(void *ud, const char *name, int64_t v)
{
    stat_q *q = ud;
    if (strcmp(name, q->name) == 0) {
        q->v = v;
        q->found = 1;
    }
}

static int64_t cache_stat(llmc_cache *c, const char *name)
{
    stat_q q = {name, 0, 0};
    llmc_cache_stats_foreach(c, stat_cb, &q);
    ck_assert_msg(q.found, "no counter %s", name);
    return q.v;
}

/* memcached on a free port (started by the test, stopped by the caller). */
static void memcached_start(testsrv *mc, const char *name, char *url, size_t n)
{
    memset(mc, 0, sizeof *mc);
    ck_assert_int_eq(testsrv_mkdir(mc, name), 0);
    int port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "32", "-t", "1",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[11] = NULL;
    ck_assert_msg(testsrv_spawn(mc, argv) == 0 && testsrv_wait_tcp(mc, port, 5000) == 0,
                  "memcached did not start");
    snprintf(url, n, "memcached://127.0.0.1:%d", port);
}

/* ------------------------------------------------------------------ */
/* The raw call. */

static const char wrong_token[] = "0123456789abcdef0123456789abcdef";

/* Holder's token only, on any backend with leases. */
static void renew_basics(llmc_cache *c, const char *key)
{
    size_t kl = strlen(key);
    char t1[LLMC_LEASE_TOKEN_LEN + 1], t2[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, kl, 60000, t1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, LLMC_TTL_DEFAULT), LLMC_OK);
    /* Another token: not extended, and the lease stays the holder's. */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, wrong_token, 60000), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, kl, 60000, t2), LLMC_EEXIST);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, kl, t1), LLMC_OK);
    /* Released: nothing to renew, and renewing does not bring it back. */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, 60000), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, kl, 60000, t2), LLMC_OK);
    /* The old holder cannot renew (or drop) the new holder's lease. */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, 60000), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, kl, t1), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t2, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, kl, t2), LLMC_OK);
    /* The lease is not the entry: the entry key stays a miss. */
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, key, kl, &v), LLMC_MISS);
    llmc_buf_free(&v);
    /* Bad input, named. */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, 0), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "lease time"));
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, -5), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, "short", 1000), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "token"));
    ck_assert_int_eq(llmc_cache_lease_renew(c, "", 0, t1, 1000), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, NULL, 1000), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_lease_renew(NULL, key, kl, t1, 1000), LLMC_EINVAL);
}

/* A lease that expired: the old holder's renewal misses and does not
 * bring it back; once another holder has it, it stays theirs. */
static void renew_after_expiry(llmc_cache *c, const char *key, int64_t short_ms)
{
    size_t kl = strlen(key);
    char t1[LLMC_LEASE_TOKEN_LEN + 1], t2[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, kl, short_ms, t1), LLMC_OK);
    int tries = 0;
    while (llmc_cache_lease_acquire(c, key, kl, 60000, t2) == LLMC_EEXIST && tries < 2000) {
        sleep_ms(10);
        tries++;
    }
    ck_assert_msg(tries < 2000, "the lease never expired");
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t1, 60000), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, kl, t2), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, kl, t2, 60000), LLMC_MISS);
}

START_TEST(t_renew_redis)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "lease_ms=5000");
    renew_basics(c, "team-a:0123abcd");
    renew_after_expiry(c, "team-a:expiring", 100);

    /* The expiry really moves: PTTL of the lease key, from outside. */
    const char *key = "team-a:ff";
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    long long pttl = 0;
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 1000, t), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", "team-a:lease=ff"), 0);
    ck_assert_int_le(pttl, 1000);
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, strlen(key), t, 600000), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", "team-a:lease=ff"), 0);
    ck_assert_int_gt(pttl, 300000);
    /* LLMC_TTL_DEFAULT is the cache's lease_ms (5000). */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, strlen(key), t, LLMC_TTL_DEFAULT), LLMC_OK);
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", "team-a:lease=ff"), 0);
    ck_assert_int_gt(pttl, 1000);
    ck_assert_int_le(pttl, 5000);
    /* Another token's renewal to 1 ms did not touch it. */
    ck_assert_int_eq(llmc_cache_lease_renew(c, key, strlen(key), wrong_token, 1), LLMC_MISS);
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", "team-a:lease=ff"), 0);
    ck_assert_int_gt(pttl, 1000);
    /* Still there after its first TTL (1000 ms) has passed. */
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "team-a:aa", 9, 1000, t), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, "team-a:aa", 9, t, 60000), LLMC_OK);
    sleep_ms(1500);
    long long n = 0;
    ck_assert_int_eq(redissrv_raw_int(&rs, &n, "EXISTS %s", "team-a:lease=aa"), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(llmc_cache_lease_release(c, "team-a:aa", 9, t), LLMC_OK);
    llmc_cache_close(c);

    /* A cache without leases cannot renew. */
    c = tu_cache_open_query("local://", "max_entries=10");
    ck_assert_int_eq(llmc_cache_lease_renew(c, "k", 1, wrong_token, 1000), LLMC_ENOTSUP);
    llmc_cache_close(c);
}
END_TEST

/* unix:// goes through the same backend code as redis:// and rediss://. */
START_TEST(t_renew_redis_unix)
{
    redissrv us;
    ck_assert_msg(redissrv_start(&us, REDISSRV_UNIX) == 0, "redis-server (unix) did not start");
    llmc_cache *c = tu_cache_open_query(us.url, "lease_ms=5000");
    renew_basics(c, "u:1");
    renew_after_expiry(c, "u:2", 100);
    llmc_cache_close(c);
    redissrv_stop(&us);
}
END_TEST

START_TEST(t_renew_memcached)
{
    testsrv mc;
    char url[128];
    memcached_start(&mc, "lease-renew-mc", url, sizeof url);
    llmc_cache *c = tu_cache_open_query(url, "lease_ms=2000");
    renew_basics(c, "team-a:0123abcd");
    /* memcached rounds leases up to whole seconds: 1000 ms is 1 s. */
    renew_after_expiry(c, "team-a:expiring", 1000);
    /* The expiry really moves: of two 1 s leases, the renewed one is
     * still held after 2.5 s, the other one is gone. */
    char t1[LLMC_LEASE_TOKEN_LEN + 1], t2[LLMC_LEASE_TOKEN_LEN + 1], t3[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "m:renewed", 9, 1000, t1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "m:left", 6, 1000, t2), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, "m:renewed", 9, t1, 60000), LLMC_OK);
    sleep_ms(2500);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "m:renewed", 9, 60000, t3), LLMC_EEXIST);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "m:left", 6, 60000, t3), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_release(c, "m:renewed", 9, t1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_release(c, "m:left", 6, t3), LLMC_OK);
    /* A key memcached cannot spell as is (mapped to a hash) works alike. */
    renew_basics(c, "team-a:with space and \xc3\xa9");
    llmc_cache_close(c);
    /* And over the binary protocol. */
    c = tu_cache_open_query(url, "lease_ms=2000&binary=true");
    renew_basics(c, "team-b:binary");
    llmc_cache_close(c);
    testsrv_stop(&mc);
}
END_TEST

START_TEST(t_renew_cluster)
{
    rcluster rc;
    memset(&rc, 0, sizeof rc);
    ck_assert_msg(rcluster_start(&rc, 3, 0) == 0, "redis cluster did not start");
    llmc_cache *c = tu_cache_open_query(rc.url, "lease_ms=5000");
    /* Keys over several slots (so over several masters). */
    for (int i = 0; i < 12; i++) {
        char key[32];
        snprintf(key, sizeof key, "ns%d:%08x", i, (unsigned)(i * 2654435761u));
        renew_basics(c, key);
    }
    renew_after_expiry(c, "nsx:expiring", 100);
    llmc_cache_close(c);
    rcluster_stop(&rc);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The call path: two handles, one upstream call. */

typedef tu_call job;

static void *job_main(void *p)
{
    tu_call_run(p);
    return NULL;
}

/* Until the fake provider has n requests (the leader is upstream). */
static void wait_requests(size_t n)
{
    int tries = 0;
    while (fp_count(fp) < n && tries < 3000) {
        sleep_ms(10);
        tries++;
    }
    ck_assert_msg(fp_count(fp) >= n, "the leader never went upstream");
}

/* The leader on handle 0 goes upstream for delay_ms (several lease_ms);
 * once it is there, the same request on handle 1 (another replica, its
 * own connections) waits for it instead of going upstream too. The
 * lease times leave the keeper's thread room on a loaded machine (a
 * renewal is due every lease_ms / 3): a lease lost to scheduling would
 * read as a second upstream call. */
static void one_upstream_call(const char *url, const char *query, int delay_ms, int stream,
                              const char *body)
{
    llmc_cache *c[2];
    llmc_client *cl[2];
    for (int i = 0; i < 2; i++) {
        c[i] = tu_cache_open_query(url, query);
        cl[i] = client_for(c[i]);
    }
    fp_set_delay_ms(fp, delay_ms);
    job a = {cl[0], body, stream, LLMC_OK, 0, 0, 0, 0, ""};
    job b = {cl[1], body, 0, LLMC_OK, 0, 0, 0, 0, ""};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, job_main, &a), 0);
    wait_requests(1);
    ck_assert_int_eq(pthread_create(&tb, NULL, job_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(a.st == LLMC_OK, "leader: %s", a.text);
    ck_assert_msg(b.st == LLMC_OK, "waiter: %s", b.text);
    ck_assert_ptr_nonnull(strstr(a.text, "echo: "));
    ck_assert_str_eq(a.text, b.text);
    if (stream)
        ck_assert_int_gt(a.chunks, 0);
    /* One upstream call: the leader's, stored; the other was answered
     * by waiting for it. */
    ck_assert_msg(fp_count(fp) == 1,
                  "%zu upstream calls (leader: %lld renewals, %lld lost, %lld failed)",
                  fp_count(fp), (long long)cache_stat(c[0], "lease_renewals"),
                  (long long)cache_stat(c[0], "lease_renewals_lost"),
                  (long long)cache_stat(c[0], "lease_renewals_failed"));
    ck_assert_int_eq(a.hit, 0);
    ck_assert_int_eq(a.stored, 1);
    ck_assert_int_eq(b.hit, 1);
    ck_assert_int_eq(b.coalesced, 1);
    /* The leader's lease was renewed while it was upstream, and is no
     * longer kept. */
    ck_assert_int_gt(cache_stat(c[0], "lease_renewals"), 0);
    ck_assert_int_eq(cache_stat(c[0], "lease_renewals_lost"), 0);
    ck_assert_int_eq(cache_stat(c[0], "leases_kept"), 0);
    printf("lease_renew: %s: one upstream call of %d ms, %lld renewals\n", query, delay_ms,
           (long long)cache_stat(c[0], "lease_renewals"));
    for (int i = 0; i < 2; i++) {
        llmc_client_free(cl[i]);
        llmc_cache_close(c[i]);
    }
}

START_TEST(t_long_call_once_redis)
{
    one_upstream_call(rs.url, "lease_ms=1000&coalesce_poll_ms=20", 3000, 0,
                      CHAT("a long answer over redis"));
}
END_TEST

START_TEST(t_long_stream_once_redis)
{
    one_upstream_call(rs.url, "lease_ms=1000&coalesce_poll_ms=20", 3000, 1,
                      CHAT("a long stream over redis"));
}
END_TEST

START_TEST(t_long_call_once_memcached)
{
    testsrv mc;
    char url[128];
    memcached_start(&mc, "lease-renew-mc-call", url, sizeof url);
    /* Whole seconds there: a 2 s lease lasts 1 to 2 s. */
    one_upstream_call(url, "lease_ms=2000&coalesce_poll_ms=20", 4500, 0,
                      CHAT("a long answer over memcached"));
    testsrv_stop(&mc);
}
END_TEST

/* A lease taken from the leader while it is upstream (it expired and
 * another holder took it): the leader's next renewal finds it and stops
 * renewing, leaves the other holder's lease alone, and still stores its
 * answer. */
START_TEST(t_lost_lease_not_renewed)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "lease_ms=1000&coalesce_poll_ms=20");
    llmc_cache *other = tu_cache_open_query(rs.url, "lease_ms=1000");
    llmc_client *cl = client_for(c);
    const char *body = CHAT("a lease taken away");
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, body, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    char key[256];
    snprintf(key, sizeof key, "%s", llmc_call_key(k));
    llmc_call_free(k);
    llmc_buf lk = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_lease_key(key, strlen(key), &lk), LLMC_OK);

    fp_set_delay_ms(fp, 3000);
    job a = {cl, body, 0, LLMC_OK, 0, 0, 0, 0, ""};
    pthread_t ta;
    ck_assert_int_eq(pthread_create(&ta, NULL, job_main, &a), 0);
    wait_requests(1);
    long long n = 0;
    ck_assert_int_eq(redissrv_raw_int(&rs, &n, "DEL %s", lk.data), 0);
    ck_assert_int_eq(n, 1); /* the leader's lease was there */
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(other, key, strlen(key), 600000, t), LLMC_OK);
    pthread_join(ta, NULL);
    ck_assert_msg(a.st == LLMC_OK, "%s", a.text);
    ck_assert_int_eq(a.hit, 0);
    ck_assert_int_eq(a.stored, 1);
    ck_assert_uint_eq(fp_count(fp), 1);
    /* Exactly one renewal found it lost: after it, no more. */
    ck_assert_int_eq(cache_stat(c, "lease_renewals_lost"), 1);
    ck_assert_int_eq(cache_stat(c, "leases_kept"), 0);
    /* The other holder's lease kept its own expiry, and is still theirs. */
    long long pttl = 0;
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", lk.data), 0);
    ck_assert_int_gt(pttl, 300000);
    ck_assert_int_eq(llmc_cache_lease_release(other, key, strlen(key), t), LLMC_OK);
    llmc_buf_free(&lk);
    llmc_client_free(cl);
    llmc_cache_close(other);
    llmc_cache_close(c);
}
END_TEST

/* Redis gone while the leader is upstream: its renewals fail, count for
 * the circuit breaker (nothing else reaches the cache meanwhile, so the
 * breaker can only open on them), and the call still answers. */
START_TEST(t_failed_renewals_open_breaker)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "lease_ms=1000&timeout_ms=300&breaker_threshold=3");
    llmc_client *cl = client_for(c);
    fp_set_delay_ms(fp, 3000);
    job a = {cl, CHAT("redis dies under a renewed lease"), 0, LLMC_OK, 0, 0, 0, 0, ""};
    pthread_t ta;
    ck_assert_int_eq(pthread_create(&ta, NULL, job_main, &a), 0);
    wait_requests(1);
    redissrv_kill(&rs);
    pthread_join(ta, NULL);
    ck_assert_msg(a.st == LLMC_OK, "%s", a.text);
    ck_assert_ptr_nonnull(strstr(a.text, "echo: redis dies under a renewed lease"));
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_ge(cache_stat(c, "lease_renewals_failed"), 3);
    ck_assert_int_eq(cache_stat(c, "lease_renewals_lost"), 0);
    ck_assert_int_eq(cache_stat(c, "leases_kept"), 0);
    llmc_stats st;
    ck_assert_int_eq(llmc_cache_stats(c, &st, sizeof st), LLMC_OK);
    ck_assert_uint_ge(st.breaker_trips, 1);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The registry's rules for lease_renew. */

static llmc_status b_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    (void)cfg;
    (void)err;
    *ctx = (void *)1;
    return LLMC_OK;
}
static void b_close(void *ctx)
{
    (void)ctx;
}
static llmc_status b_get(void *ctx, const char *k, size_t kl, llmc_buf *out, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)out; (void)err;
    return LLMC_MISS;
}
static llmc_status b_set(void *ctx, const char *k, size_t kl, const void *v, size_t vl,
                         int64_t ttl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)v; (void)vl; (void)ttl; (void)err;
    return LLMC_OK;
}
static llmc_status b_del(void *ctx, const char *k, size_t kl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)err;
    return LLMC_MISS;
}
static llmc_status b_acquire(void *ctx, const char *k, size_t kl, const char *t, size_t tl,
                             int64_t ttl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)t; (void)tl; (void)ttl; (void)err;
    return LLMC_OK;
}
static llmc_status b_release(void *ctx, const char *k, size_t kl, const char *t, size_t tl,
                             llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)t; (void)tl; (void)err;
    return LLMC_OK;
}
static int renew_trap_calls;
static llmc_status b_renew_trap(void *ctx, const char *k, size_t kl, const char *t, size_t tl,
                                int64_t ttl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)t; (void)tl; (void)ttl; (void)err;
    renew_trap_calls++;
    return LLMC_EINTERNAL;
}

/* Renew without the two it extends. */
static const char *const lonely_schemes[] = {"renewonly", NULL};
static const llmc_backend_ops renew_only_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "renew-only", "test"),
    .schemes = lonely_schemes,
    .open = b_open, .close = b_close, .get = b_get, .set = b_set, .del = b_del,
    .lease_renew = b_renew_trap,
};

/* A plugin built before lease_renew: its table ends at lease_release,
 * and the member that follows in memory is a trap. */
static const char *const old_schemes[] = {"oldleases", NULL};
static const llmc_backend_ops old_lease_ops = {
    .hdr = {LLMC_ABI_MAJOR, 0,
            (uint32_t)(offsetof(llmc_backend_ops, lease_release) + sizeof(void *)),
            "old-leases", "test"},
    .schemes = old_schemes,
    .open = b_open, .close = b_close, .get = b_get, .set = b_set, .del = b_del,
    .lease_acquire = b_acquire, .lease_release = b_release, .lease_renew = b_renew_trap,
};

START_TEST(t_registry_rules)
{
    llmc_err e;
    ck_assert_int_eq(llmc_register_backend(&renew_only_ops, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "lease_renew") && strstr(e.msg, "lease_acquire"), "%s", e.msg);
    ck_assert_ptr_null(llmc_find_backend("renew-only"));

    ck_assert_int_eq(llmc_register_backend(&old_lease_ops, &e), LLMC_OK);
    llmc_cache *c = NULL;
    ck_assert_msg(llmc_cache_open("oldleases://?lease_ms=300", NULL, &c, &e) == LLMC_OK, "%s",
                  e.msg);
    /* It still coalesces, without renewals. */
    ck_assert_int_eq(llmc_cache_coalesces(c), 1);
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "k", 1, 1000, t), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_renew(c, "k", 1, t, 1000), LLMC_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "cannot renew"));
    ck_assert_int_eq(llmc_cache_lease_release(c, "k", 1, t), LLMC_OK);
    /* A call over it goes upstream holding a lease nobody renews. */
    llmc_client *cl = client_for(c);
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("old plugin"), LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert_ptr_nonnull(strstr(llmc_response_content(r), "echo: old plugin"));
    llmc_response_free(r);
    ck_assert_int_eq(renew_trap_calls, 0);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("lease_renew");
    TCase *raw = tcase_create("raw");
    tcase_set_timeout(raw, 120);
    tcase_add_checked_fixture(raw, setup, teardown);
    tcase_add_test(raw, t_renew_redis);
    tcase_add_test(raw, t_renew_redis_unix);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(raw, t_renew_memcached);
#endif
    tcase_add_test(raw, t_renew_cluster);
    suite_add_tcase(s, raw);

    TCase *calls = tcase_create("calls");
    tcase_set_timeout(calls, 120);
    tcase_add_checked_fixture(calls, setup, teardown);
    tcase_add_test(calls, t_long_call_once_redis);
    tcase_add_test(calls, t_long_stream_once_redis);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(calls, t_long_call_once_memcached);
#endif
    tcase_add_test(calls, t_lost_lease_not_renewed);
    tcase_add_test(calls, t_failed_renewals_open_breaker);
    suite_add_tcase(s, calls);

    TCase *reg = tcase_create("registry");
    tcase_add_checked_fixture(reg, setup, teardown);
    tcase_add_test(reg, t_registry_rules);
    suite_add_tcase(s, reg);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
