/* Many processes sharing one cache: leases (include/llmcache/lease.h)
 * over real redis-server, Redis Cluster and memcached; identical misses
 * of several cache handles (as separate processes have) go upstream once,
 * plain and streamed; a dead leader's lease expires on its own; a waiter
 * gives up after the coalescing timeout. Then `llmcache serve` twice over
 * one redis-server: 20 concurrent identical requests split across the two
 * make one upstream call; a paused (SIGSTOP) Redis under concurrent
 * requests. The fake provider counts upstream calls; the assertions count
 * calls and statuses. Times are measured and printed, and only bounded by
 * generous limits that a hang would exceed. */
#include "client_test_util.h"
#include "llmc_config.h"
#include "support/proxyproc.h"
#include "support/redissrv.h"
#include "support/testsrv.h"
#if LLMC_HAVE_REDIS
#include "support/rcluster.h"
#endif

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static fp_server *fp;
static char base_v1[128];
static redissrv rs;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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

static llmc_client *client_for(llmc_cache *c)
{
    const char *kv[] = {"openai.api_key", "sk-test-secret-123", "openai.api_base", base_v1,
                        "max_retries", "0", NULL};
    return tu_client(c, kv);
}

#define CHAT(content)                                                                      \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" content "\"}]}"

/* ------------------------------------------------------------------ */
/* The lease calls themselves. */

static void lease_basics(llmc_cache *c, const char *key)
{
    char t1[LLMC_LEASE_TOKEN_LEN + 1], t2[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_coalesces(c), 1);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 60000, t1), LLMC_OK);
    ck_assert_uint_eq(strlen(t1), LLMC_LEASE_TOKEN_LEN);
    /* Held: nobody else gets it, not even the same handle. */
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 60000, t2), LLMC_EEXIST);
    ck_assert_str_eq(t2, "");
    /* Only the holder's token drops it. */
    char wrong[LLMC_LEASE_TOKEN_LEN + 1];
    memset(wrong, 'a', LLMC_LEASE_TOKEN_LEN);
    wrong[LLMC_LEASE_TOKEN_LEN] = 0;
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), wrong), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 60000, t2), LLMC_EEXIST);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), t1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), t1), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 60000, t2), LLMC_OK);
    ck_assert_str_ne(t1, t2);
    /* The lease is not the entry: the entry key stays a miss. */
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, key, strlen(key), &b), LLMC_MISS);
    llmc_buf_free(&b);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), t2), LLMC_OK);
    /* Bad arguments are refused by name. */
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 0, t1), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "lease time"));
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), "short"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "", 0, 1000, t1), LLMC_EINVAL);
}

START_TEST(t_lease_redis)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "lease_ms=5000");
    lease_basics(c, "team-a:0123abcd");
    /* The lease key sits in the entry's namespace, with the cache's lease
     * time (PTTL over a raw connection). */
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "team-a:ff", 9, LLMC_TTL_DEFAULT, t), LLMC_OK);
    long long pttl = -3;
    ck_assert_int_eq(redissrv_raw_int(&rs, &pttl, "PTTL %s", "team-a:lease=ff"), 0);
    ck_assert_msg(pttl > 0 && pttl <= 5000, "PTTL %lld", pttl);
    ck_assert_int_eq(llmc_cache_lease_release(c, "team-a:ff", 9, t), LLMC_OK);
    /* A dead holder's lease expires by itself. */
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "dead:1", 6, 100, t), LLMC_OK);
    int tries = 0;
    char t2[LLMC_LEASE_TOKEN_LEN + 1];
    while (llmc_cache_lease_acquire(c, "dead:1", 6, 100, t2) == LLMC_EEXIST && tries < 1000) {
        usleep(10000);
        tries++;
    }
    ck_assert_msg(tries < 1000, "the lease never expired");
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_lease_key_and_options)
{
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_lease_key("t:sub:abc", 9, &b), LLMC_OK);
    ck_assert_str_eq(b.data, "t:lease=sub:abc");
    ck_assert_int_eq(llmc_lease_key("abc", 3, &b), LLMC_OK);
    ck_assert_str_eq(b.data, "lease=abc");
    ck_assert_int_eq(llmc_lease_key("t:key=x:lease", 13, &b), LLMC_OK);
    ck_assert_str_eq(b.data, "t:lease=key=x:lease");
    llmc_buf_free(&b);

    /* A tenant's call: its lease is inside the tenant's namespace. */
    llmc_cache *c = tu_cache_open_query(rs.url, "namespace=admin");
    llmc_client *cl = client_for(c);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.tenant = "team-a";
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT,
                                       "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
                                       "\"user\",\"content\":\"x\"}],\"cache\":{\"key\":"
                                       "\"other:thing\"}}",
                                       LLMC_ZSTR, &o, &k, &e),
                     LLMC_OK);
    llmc_buf lk = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_lease_key(llmc_call_key(k), strlen(llmc_call_key(k)), &lk), LLMC_OK);
    ck_assert_msg(strncmp(lk.data, "team-a:lease=", 13) == 0, "%s", lk.data);
    llmc_buf_free(&lk);
    llmc_call_free(k);
    llmc_client_free(cl);
    llmc_cache_close(c);

    /* coalesce=false turns it off; asking for it where there are no
     * leases is an open error naming the option. */
    c = tu_cache_open_query(rs.url, "coalesce=false");
    ck_assert_int_eq(llmc_cache_coalesces(c), 0);
    llmc_cache_close(c);
    c = NULL;
    ck_assert_int_eq(llmc_cache_open("local://?coalesce=true", NULL, &c, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "coalesce") != NULL, "%s", e.msg);
    ck_assert_int_eq(llmc_cache_open("local://", NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_coalesces(c), 0);
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    ck_assert_int_eq(llmc_cache_lease_acquire(c, "k", 1, 1000, t), LLMC_ENOTSUP);
    llmc_cache_close(c);
    static const char *const bad[][2] = {
        {"redis://127.0.0.1:1?lease_ms=0", "lease_ms"},
        {"redis://127.0.0.1:1?lease_ms=-5", "lease_ms"},
        {"redis://127.0.0.1:1?lease_ms=99999999999", "lease_ms"},
        {"redis://127.0.0.1:1?coalesce=maybe", "coalesce"},
        {"redis://127.0.0.1:1?coalesce_poll_ms=0", "coalesce_poll_ms"},
        {"redis://127.0.0.1:1?coalesce_timeout_ms=1e3", "coalesce_timeout_ms"},
        {"local://?coalesce=1", "coalesce"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = NULL;
        ck_assert_int_eq(llmc_cache_open(bad[i][0], NULL, &c, &e), LLMC_EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(e.msg, bad[i][1]) != NULL, "%s: %s", bad[i][0], e.msg);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Several handles (one per simulated process) over one Redis. */

#define N_PROCS 4
#define PER_PROC 3

typedef struct worker {
    tu_call c;
    pthread_barrier_t *go;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    pthread_barrier_wait(w->go);
    tu_call_run(&w->c);
    return NULL;
}

static void run_workers(const char *url_query, const char *body, int streams, int *hits,
                        int *coalesced)
{
    llmc_cache *c[N_PROCS];
    llmc_client *cl[N_PROCS];
    for (int i = 0; i < N_PROCS; i++) {
        c[i] = tu_cache_open_query(rs.url, url_query);
        cl[i] = client_for(c[i]);
    }
    worker w[N_PROCS * PER_PROC];
    pthread_t t[N_PROCS * PER_PROC];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N_PROCS * PER_PROC);
    for (int i = 0; i < N_PROCS * PER_PROC; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c.cl = cl[i % N_PROCS];
        w[i].c.body = body;
        w[i].c.stream = streams && (i % 2);
        w[i].go = &go;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    *hits = *coalesced = 0;
    for (int i = 0; i < N_PROCS * PER_PROC; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].c.st == LLMC_OK, "call %d: %s", i, w[i].c.text);
        ck_assert_msg(strstr(w[i].c.text, "echo: ") != NULL, "call %d: %s", i, w[i].c.text);
        if (w[i].c.stream)
            ck_assert_int_gt(w[i].c.chunks, 0);
        *hits += w[i].c.hit;
        *coalesced += w[i].c.coalesced;
    }
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N_PROCS; i++) {
        llmc_client_free(cl[i]);
        llmc_cache_close(c[i]);
    }
}

START_TEST(t_handles_share_one_upstream_call)
{
    fp_set_delay_ms(fp, 400); /* the calls overlap */
    int hits, coalesced;
    run_workers("coalesce_poll_ms=20", CHAT("shared across processes"), 0, &hits, &coalesced);
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_eq(hits, N_PROCS * PER_PROC - 1);
    ck_assert_int_ge(coalesced, 1);
    printf("replicas: %d calls on %d handles, 1 upstream call, %d answered by waiting\n",
           N_PROCS * PER_PROC, N_PROCS, coalesced);
}
END_TEST

START_TEST(t_streams_wait_and_replay)
{
    fp_set_delay_ms(fp, 400);
    int hits, coalesced;
    run_workers("coalesce_poll_ms=20", CHAT("streamed across processes"), 1, &hits,
                &coalesced);
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_eq(hits, N_PROCS * PER_PROC - 1);
}
END_TEST

/* Without coalescing every handle that missed goes upstream. */
START_TEST(t_coalesce_off_goes_upstream)
{
    fp_set_delay_ms(fp, 300);
    int hits, coalesced;
    run_workers("coalesce=false", CHAT("not coalesced"), 0, &hits, &coalesced);
    ck_assert_uint_gt(fp_count(fp), 1);
    ck_assert_int_eq(coalesced, 0);
}
END_TEST

/* A leader that died holding the lease: the next call waits until the
 * lease expires, then goes upstream itself (once). */
START_TEST(t_dead_leader_lease_expires)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "coalesce_poll_ms=20");
    llmc_client *cl = client_for(c);
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, CHAT("dead leader"), LLMC_ZSTR,
                                       NULL, &k, &e),
                     LLMC_OK);
    char t[LLMC_LEASE_TOKEN_LEN + 1], key[256];
    snprintf(key, sizeof key, "%s", llmc_call_key(k));
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 600, t), LLMC_OK);
    uint64_t t0 = now_ms();
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_call_execute(k, NULL, NULL, &r, &e), LLMC_OK);
    uint64_t took = now_ms() - t0;
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    ck_assert_uint_eq(fp_count(fp), 1);
    printf("replicas: a dead leader's 600 ms lease held the next call back %llu ms\n",
           (unsigned long long)took);
    ck_assert_msg(took < 30000, "waited %llu ms", (unsigned long long)took);
    llmc_response_free(r);
    llmc_call_free(k);
    /* Its own lease is gone after the store: a new one can be taken. */
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 600, t), LLMC_OK);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), t), LLMC_OK);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

/* A lease held longer than the waiter's patience: it goes upstream after
 * coalesce_timeout_ms, and does not drop the other holder's lease. */
START_TEST(t_waiter_gives_up_after_timeout)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "coalesce_timeout_ms=200&coalesce_poll_ms=20");
    llmc_client *cl = client_for(c);
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, CHAT("slow leader"), LLMC_ZSTR,
                                       NULL, &k, &e),
                     LLMC_OK);
    char t[LLMC_LEASE_TOKEN_LEN + 1], t2[LLMC_LEASE_TOKEN_LEN + 1];
    const char *key = llmc_call_key(k);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 600000, t), LLMC_OK);
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_call_execute(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 1000, t2), LLMC_EEXIST);
    ck_assert_int_eq(llmc_cache_lease_release(c, key, strlen(key), t), LLMC_OK);
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

/* The cache going away while a call waits: the call does not hang on it. */
START_TEST(t_redis_dies_while_waiting)
{
    llmc_cache *c = tu_cache_open_query(rs.url, "coalesce_poll_ms=20&timeout_ms=300");
    llmc_client *cl = client_for(c);
    char t[LLMC_LEASE_TOKEN_LEN + 1];
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, CHAT("redis dies"), LLMC_ZSTR, NULL,
                                       &k, &e),
                     LLMC_OK);
    const char *key = llmc_call_key(k);
    ck_assert_int_eq(llmc_cache_lease_acquire(c, key, strlen(key), 600000, t), LLMC_OK);
    ck_assert_int_eq(llmc_call_lookup(k, NULL, NULL, NULL, &e), LLMC_MISS);
    redissrv_kill(&rs);
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_call_execute(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert_ptr_nonnull(strstr(llmc_response_content(r), "echo: redis dies"));
    ck_assert_uint_eq(fp_count(fp), 1);
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

#if LLMC_HAVE_MEMCACHED
START_TEST(t_lease_memcached)
{
    testsrv mc;
    memset(&mc, 0, sizeof mc);
    ck_assert_int_eq(testsrv_mkdir(&mc, "replicas-mc"), 0);
    int port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "32", "-t", "1",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[11] = NULL;
    ck_assert_msg(testsrv_spawn(&mc, argv) == 0 && testsrv_wait_tcp(&mc, port, 5000) == 0,
                  "memcached did not start");
    char url[128];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d", port);
    llmc_cache *c = tu_cache_open_query(url, "lease_ms=1000");
    lease_basics(c, "team-a:0123abcd");
    llmc_cache_close(c);

    /* And the completion path over it: one upstream call. */
    fp_set_delay_ms(fp, 400);
    llmc_cache *h[2];
    llmc_client *cl[2];
    for (int i = 0; i < 2; i++) {
        h[i] = tu_cache_open_query(url, "coalesce_poll_ms=20");
        cl[i] = client_for(h[i]);
    }
    worker w[4];
    pthread_t t[4];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c.cl = cl[i % 2];
        w[i].c.body = CHAT("memcached shared");
        w[i].go = &go;
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].c.st == LLMC_OK, "%s", w[i].c.text);
    }
    pthread_barrier_destroy(&go);
    ck_assert_uint_eq(fp_count(fp), 1);
    for (int i = 0; i < 2; i++) {
        llmc_client_free(cl[i]);
        llmc_cache_close(h[i]);
    }
    testsrv_stop(&mc);
}
END_TEST
#endif

START_TEST(t_lease_cluster)
{
    rcluster rc;
    memset(&rc, 0, sizeof rc);
    ck_assert_msg(rcluster_start(&rc, 3, 0) == 0, "redis cluster did not start");
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(rc.url, NULL, &c, &e) == LLMC_OK, "%s", e.msg);
    /* Keys over several slots (so over several masters). */
    for (int i = 0; i < 12; i++) {
        char key[32];
        snprintf(key, sizeof key, "ns%d:%08x", i, (unsigned)(i * 2654435761u));
        lease_basics(c, key);
    }
    llmc_cache_close(c);
    rcluster_stop(&rc);
}
END_TEST

/* ------------------------------------------------------------------ */
/* `llmcache serve` replicas over one redis-server. */

typedef struct proxy {
    testsrv srv;
    int port;
} proxy;

static void proxy_start_cfg(proxy *p, const char *name, const char *cache_url,
                            const char *cache_opts, const char *extra);

static void proxy_start(proxy *p, const char *name, const char *cache_url, const char *cache_opts)
{
    proxy_start_cfg(p, name, cache_url, cache_opts, "");
}

/* extra: more members of the configuration object (",\"x\": ..."). */
static void proxy_start_cfg(proxy *p, const char *name, const char *cache_url,
                            const char *cache_opts, const char *extra)
{
    memset(p, 0, sizeof *p);
    char opts[256];
    snprintf(opts, sizeof opts, "\"ttl\": 3600%s%s", cache_opts ? ", " : "",
             cache_opts ? cache_opts : "");
    px_conf c = {cache_url, opts, base_v1, 4, 32, extra};
    ck_assert_msg(px_start(&p->srv, name, &c, &p->port) == 0, "llmcache serve did not start");
}

/* One request; 0 if it completed at the HTTP level. */
static int request(int port, const char *path, const char *body, px_reply *r)
{
    return px_request(port, path, body, NULL, 60, r, NULL);
}

static long long metric(int port, const char *name)
{
    px_reply r;
    ck_assert_int_eq(request(port, "/metrics", NULL, &r), 0);
    char pat[160];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r.body, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

typedef struct client_job {
    int port;
    const char *body;
    pthread_barrier_t *go;
    int rc;
    uint64_t ms;
    px_reply r;
} client_job;

static void *client_main(void *p)
{
    client_job *j = p;
    pthread_barrier_wait(j->go);
    uint64_t t0 = now_ms();
    j->rc = request(j->port, "/v1/chat/completions", j->body, &j->r);
    j->ms = now_ms() - t0;
    return NULL;
}

#define N_REQ 20

/* Requests in parallel, request i to ports[i % nports]. */
static void run_clients(client_job *j, int n, const int *ports, int nports, const char *body,
                        const char *body_odd)
{
    pthread_t t[N_REQ];
    pthread_barrier_t go;
    ck_assert_int_le(n, N_REQ);
    pthread_barrier_init(&go, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        memset(&j[i], 0, sizeof j[i]);
        j[i].port = ports[i % nports];
        j[i].body = (i % 2 && body_odd) ? body_odd : body;
        j[i].go = &go;
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &j[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
}

START_TEST(t_two_proxies_one_upstream_call)
{
    proxy a, b;
    proxy_start(&a, "replica-a", rs.url, "\"coalesce_poll_ms\": 20");
    proxy_start(&b, "replica-b", rs.url, "\"coalesce_poll_ms\": 20");
    fp_set_delay_ms(fp, 1000); /* long enough for all 20 to overlap */
    int ports[2] = {a.port, b.port};
    client_job j[N_REQ];
    const char *body = CHAT("twenty identical requests");
    const char *sbody =
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"twenty identical requests\"}]}";
    run_clients(j, N_REQ, ports, 2, body, sbody);
    int miss = 0, hit = 0;
    for (int i = 0; i < N_REQ; i++) {
        ck_assert_msg(j[i].rc == 0 && j[i].r.status == 200, "request %d: HTTP %ld %s", i,
                      j[i].r.status, j[i].r.body);
        if (i % 2) /* a stream: the answer comes in pieces */
            ck_assert_msg(strstr(j[i].r.body, "\"finish_reason\":\"stop\"") != NULL &&
                              strstr(j[i].r.body, "data: [DONE]") != NULL,
                          "stream %d: %s", i, j[i].r.body);
        else
            ck_assert_msg(strstr(j[i].r.body, "echo: twenty identical requests") != NULL,
                          "request %d: %s", i, j[i].r.body);
        miss += strcmp(j[i].r.xstatus, "MISS") == 0;
        hit += strcmp(j[i].r.xstatus, "HIT") == 0;
    }
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_eq(miss, 1);
    ck_assert_int_eq(hit, N_REQ - 1);
    /* The replica that did not go upstream waited on the other's lease. */
    long long ra = metric(a.port, "llmcache_coalesced_replicas_total");
    long long rb = metric(b.port, "llmcache_coalesced_replicas_total");
    ck_assert_int_ge(ra + rb, 1);
    printf("replicas: %d requests over 2 proxies: 1 upstream call, %d HIT (%lld + %lld waited "
           "on the other replica)\n",
           N_REQ, hit, ra, rb);
    testsrv_stop(&a.srv);
    testsrv_stop(&b.srv);
}
END_TEST

/* An upstream call three times as long as the lease: the leader's
 * replica renews its lease while it waits, so the other replica's
 * requests keep waiting for its answer instead of taking the lapsed
 * lease and calling upstream again; /metrics shows the renewals. */
START_TEST(t_two_proxies_lease_outlives_lease_ms)
{
    proxy a, b;
    const char *opts = "\"lease_ms\": 1000, \"coalesce_poll_ms\": 20";
    proxy_start(&a, "replica-renew-a", rs.url, opts);
    proxy_start(&b, "replica-renew-b", rs.url, opts);
    fp_set_delay_ms(fp, 3500);
    int ports[2] = {a.port, b.port};
    client_job j[4];
    run_clients(j, 4, ports, 2, CHAT("longer than the lease"), NULL);
    int miss = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(j[i].rc == 0 && j[i].r.status == 200, "request %d: HTTP %ld %s", i,
                      j[i].r.status, j[i].r.body);
        ck_assert_ptr_nonnull(strstr(j[i].r.body, "echo: longer than the lease"));
        miss += strcmp(j[i].r.xstatus, "MISS") == 0;
    }
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_int_eq(miss, 1);
    long long ok = 0;
    for (int i = 0; i < 2; i++) {
        long long v = metric(ports[i], "llmcache_lease_renewals_total{result=\"ok\"}");
        ck_assert_int_ge(v, 0); /* present on a coalescing cache */
        ok += v;
        ck_assert_int_eq(metric(ports[i], "llmcache_lease_renewals_total{result=\"lost\"}"), 0);
        ck_assert_int_eq(metric(ports[i], "llmcache_leases_kept"), 0);
    }
    ck_assert_int_ge(ok, 1);
    printf("replicas: an upstream call of 3500 ms under a 1000 ms lease: 1 upstream call, "
           "%lld renewals\n", ok);
    testsrv_stop(&a.srv);
    testsrv_stop(&b.srv);
}
END_TEST

/* Coalescing switched off in the proxies' configuration: each replica
 * goes upstream. */
START_TEST(t_two_proxies_coalescing_off)
{
    proxy a, b;
    const char *off = ",\n \"coalescing\": {\"enabled\": false}";
    proxy_start_cfg(&a, "replica-off-a", rs.url, NULL, off);
    proxy_start_cfg(&b, "replica-off-b", rs.url, NULL, off);
    fp_set_delay_ms(fp, 500);
    int ports[2] = {a.port, b.port};
    client_job j[4];
    run_clients(j, 4, ports, 2, CHAT("not coalesced across replicas"), NULL);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(j[i].rc == 0 && j[i].r.status == 200, "request %d: HTTP %ld", i,
                      j[i].r.status);
    ck_assert_uint_ge(fp_count(fp), 2);
    ck_assert_int_eq(metric(a.port, "llmcache_coalesced_replicas_total"), 0);
    ck_assert_int_eq(metric(b.port, "llmcache_coalesced_replicas_total"), 0);
    testsrv_stop(&a.srv);
    testsrv_stop(&b.srv);
}
END_TEST

/* The replica that went upstream dies (SIGKILL) holding the lease: the
 * other replica's identical request waits until the lease expires, then
 * goes upstream itself. */
START_TEST(t_proxy_leader_killed)
{
    proxy a, b;
    proxy_start(&a, "replica-dies", rs.url, "\"lease_ms\": 1000, \"coalesce_poll_ms\": 20");
    proxy_start(&b, "replica-lives", rs.url, "\"lease_ms\": 1000, \"coalesce_poll_ms\": 20");
    fp_set_delay_ms(fp, 5000);
    client_job j[1];
    int ports[1] = {a.port};
    pthread_t t;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 1);
    memset(&j[0], 0, sizeof j[0]);
    j[0].port = ports[0];
    j[0].body = CHAT("the leader dies");
    j[0].go = &go;
    ck_assert_int_eq(pthread_create(&t, NULL, client_main, &j[0]), 0);
    for (int i = 0; i < 1000 && fp_count(fp) < 1; i++)
        usleep(10000);
    ck_assert_uint_eq(fp_count(fp), 1); /* A is upstream, holding the lease */
    testsrv_kill(&a.srv, 1);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&go);
    ck_assert_int_ne(j[0].rc, 0); /* its client lost the connection */
    fp_set_delay_ms(fp, 0);
    uint64_t t0 = now_ms();
    px_reply r;
    ck_assert_int_eq(request(b.port, "/v1/chat/completions", CHAT("the leader dies"), &r), 0);
    uint64_t took = now_ms() - t0;
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "MISS");
    ck_assert_ptr_nonnull(strstr(r.body, "echo: the leader dies"));
    ck_assert_uint_eq(fp_count(fp), 2);
    printf("replicas: leader killed holding a 1000 ms lease; the other replica answered after "
           "%llu ms\n",
           (unsigned long long)took);
    ck_assert_int_eq(request(b.port, "/v1/chat/completions", CHAT("the leader dies"), &r), 0);
    ck_assert_str_eq(r.xstatus, "HIT");
    testsrv_stop(&a.srv);
    testsrv_stop(&b.srv);
}
END_TEST

/* Redis paused under concurrent distinct requests: each is answered
 * within one cache timeout plus the upstream time. */
START_TEST(t_proxy_redis_paused)
{
    proxy a;
    proxy_start(&a, "replica-paused", rs.url, "\"timeout_ms\": 300, \"breaker_threshold\": 1000");
    px_reply r;
    ck_assert_int_eq(request(a.port, "/v1/chat/completions", CHAT("warm"), &r), 0);
    ck_assert_str_eq(r.xstatus, "MISS");
    fp_set_delay_ms(fp, 200);
    ck_assert_int_eq(kill(rs.srv.pid, SIGSTOP), 0);
    client_job j[10];
    int ports[1] = {a.port};
    pthread_t t[10];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 10);
    char bodies[10][160];
    for (int i = 0; i < 10; i++) {
        memset(&j[i], 0, sizeof j[i]);
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"paused %d\"}]}",
                 i);
        j[i].port = ports[0];
        j[i].body = bodies[i];
        j[i].go = &go;
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_main, &j[i]), 0);
    }
    uint64_t worst = 0;
    for (int i = 0; i < 10; i++) {
        pthread_join(t[i], NULL);
        if (j[i].ms > worst)
            worst = j[i].ms;
    }
    pthread_barrier_destroy(&go);
    kill(rs.srv.pid, SIGCONT);
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(j[i].rc == 0 && j[i].r.status == 200, "request %d: HTTP %ld %s", i,
                      j[i].r.status, j[i].r.body);
        ck_assert_str_eq(j[i].r.xstatus, "MISS-NOSTORE");
    }
    /* One read each, no store and no lease attempted. */
    ck_assert_int_eq(metric(a.port, "llmcache_backend_stores_skipped_total"), 10);
    printf("replicas: Redis paused: 10 concurrent requests, slowest %llu ms (cache timeout "
           "300 ms + upstream 200 ms)\n",
           (unsigned long long)worst);
    /* A hang on the paused server would take the curl timeout (60 s). */
    ck_assert_msg(worst < 20000, "slowest request took %llu ms", (unsigned long long)worst);
    testsrv_stop(&a.srv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replicas");
    TCase *tc = tcase_create("leases");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_lease_redis);
    tcase_add_test(tc, t_lease_key_and_options);
    tcase_add_test(tc, t_handles_share_one_upstream_call);
    tcase_add_test(tc, t_streams_wait_and_replay);
    tcase_add_test(tc, t_coalesce_off_goes_upstream);
    tcase_add_test(tc, t_dead_leader_lease_expires);
    tcase_add_test(tc, t_waiter_gives_up_after_timeout);
    tcase_add_test(tc, t_redis_dies_while_waiting);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(tc, t_lease_memcached);
#endif
    suite_add_tcase(s, tc);
    TCase *cl = tcase_create("cluster");
    tcase_set_timeout(cl, 120);
    tcase_add_checked_fixture(cl, setup, teardown);
    tcase_add_test(cl, t_lease_cluster);
    suite_add_tcase(s, cl);
#if LLMC_HAVE_MHD
    TCase *px = tcase_create("proxies");
    tcase_set_timeout(px, 180);
    tcase_add_checked_fixture(px, setup, teardown);
    tcase_add_test(px, t_two_proxies_one_upstream_call);
    tcase_add_test(px, t_two_proxies_lease_outlives_lease_ms);
    tcase_add_test(px, t_two_proxies_coalescing_off);
    tcase_add_test(px, t_proxy_leader_killed);
    tcase_add_test(px, t_proxy_redis_paused);
    suite_add_tcase(s, px);
#endif
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
