/* The proxy (`llmcache serve`) while its cache is down: started with
 * redis-server down, then Redis started (hits without a restart); Redis
 * killed and restarted under load (no failed client request, hits
 * resume); the cache's state on /health, /cache/ping and /metrics.
 * Real redis-server and the fake provider, on loopback ports the test
 * picks; requests go through libcurl. */
#include "fake_provider.h"
#include "support/proxyproc.h"
#include "support/redissrv.h"
#include "support/testsrv.h"
#include "llmc_config.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static fp_server *fp;
static redissrv rs;
static testsrv px;
static testsrv mc; /* memcached, when a test starts one */
static int px_port;

/* One request; 0 if it completed at the HTTP level. */
static int request(const char *path, const char *body, px_reply *r)
{
    return px_request(px_port, path, body, NULL, 30, r, NULL);
}

static char *chat(const char *text, char *buf, size_t n)
{
    snprintf(buf, n,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             text);
    return buf;
}

static void proxy_start(const char *cache_url)
{
    /* A short breaker cool-down, so that the test does not wait long for
     * the cache to be tried again after Redis is back. */
    char api[256];
    snprintf(api, sizeof api, "%s/v1", fp_url(fp));
    px_conf c = {cache_url, "\"ttl\": 3600, \"connect_timeout_ms\": 500", api, 4, 16, NULL};
    ck_assert_msg(px_start(&px, "cache-down-proxy", &c, &px_port) == 0,
                  "llmcache serve did not start with its cache down");
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    ck_assert_msg(redissrv_start(&rs, REDISSRV_TCP) == 0, "redis-server did not start");
}

static void teardown(void)
{
    testsrv_stop(&px);
    if (mc.dir[0])
        testsrv_stop(&mc);
    redissrv_stop(&rs);
    fp_stop(fp);
    curl_global_cleanup();
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Send `body` until it is a HIT; bounded number of tries. */
static int until_hit(const char *body)
{
    px_reply r;
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(request("/v1/chat/completions", body, &r), 0);
        ck_assert_msg(r.status == 200, "HTTP %ld: %s", r.status, r.body);
        if (strcmp(r.xstatus, "HIT") == 0)
            return 1;
        usleep(50000);
    }
    return 0;
}

START_TEST(t_start_with_redis_down)
{
    redissrv_kill(&rs);
    proxy_start(rs.url);
    px_reply r;
    char b[512];
    /* Misses are served, the cache is reported down, still 200. */
    ck_assert_int_eq(request("/v1/chat/completions", chat("down at start", b, sizeof b), &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "echo: down at start"));
    ck_assert_str_ne(r.xstatus, "HIT");
    ck_assert_int_eq(request("/health", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"cache\":\"down\"") != NULL, "%s", r.body);
    ck_assert_int_eq(request("/cache/ping", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"cache\":\"down\"") != NULL, "%s", r.body);
    ck_assert_msg(strstr(r.body, REDISSRV_PASSWORD) == NULL, "password leaked: %s", r.body);
    ck_assert_int_eq(request("/metrics", NULL, &r), 0);
    ck_assert_msg(strstr(r.body, "\nllmcache_cache_up 0\n") != NULL, "%.400s", r.body);

    /* Redis comes up: the same proxy process uses it. */
    ck_assert_int_eq(redissrv_restart(&rs), 0);
    ck_assert_msg(until_hit(chat("after the restart", b, sizeof b)),
                  "no HIT after Redis came up");
    ck_assert_int_eq(request("/cache/ping", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"cache\":\"up\"") != NULL, "%s", r.body);
    ck_assert_int_eq(request("/metrics", NULL, &r), 0);
    ck_assert_msg(strstr(r.body, "\nllmcache_cache_up 1\n") != NULL, "%.400s", r.body);
    ck_assert_int_eq(request("/health", NULL, &r), 0);
    ck_assert_msg(strstr(r.body, "\"cache\":\"up\"") != NULL, "%s", r.body);
}
END_TEST

/* Clients sending a fixed set of requests in a loop while Redis is
 * killed and restarted. */
#define N_CLIENTS 4
#define N_PROMPTS 5

static atomic_int stop_load, failed, served;

static void *client_loop(void *p)
{
    int id = (int)(intptr_t)p;
    char b[512], text[64];
    px_reply r;
    for (int i = 0; !atomic_load(&stop_load); i++) {
        snprintf(text, sizeof text, "under load %d", (i + id) % N_PROMPTS);
        if (request("/v1/chat/completions", chat(text, b, sizeof b), &r) != 0 ||
            r.status != 200 || !strstr(r.body, "echo: under load"))
            atomic_fetch_add(&failed, 1);
        atomic_fetch_add(&served, 1);
    }
    return NULL;
}

static void wait_served(int more)
{
    int target = atomic_load(&served) + more;
    for (int i = 0; i < 3000 && atomic_load(&served) < target; i++)
        usleep(10000);
    ck_assert_msg(atomic_load(&served) >= target, "the clients stalled (%d of %d requests)",
                  atomic_load(&served), target);
}

START_TEST(t_redis_restart_under_load)
{
    proxy_start(rs.url);
    char b[512];
    ck_assert(until_hit(chat("under load 0", b, sizeof b)));
    pthread_t t[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, client_loop, (void *)(intptr_t)i), 0);
    wait_served(40);
    redissrv_kill(&rs);
    wait_served(40);
    ck_assert_int_eq(redissrv_restart(&rs), 0);
    /* Hits resume while the load goes on: count the tries until a fresh
     * request is a HIT (a MISS stores it, the next one hits), and print
     * how long that took after the restart. */
    uint64_t t0 = mono_ms();
    int tries = 0;
    px_reply r;
    for (; tries < 1000; tries++) {
        ck_assert_int_eq(request("/v1/chat/completions", chat("after restart", b, sizeof b), &r),
                         0);
        ck_assert_int_eq(r.status, 200);
        if (strcmp(r.xstatus, "HIT") == 0)
            break;
        usleep(10000);
    }
    ck_assert_msg(tries < 1000, "no HIT after the restart");
    printf("cache_down: hits resumed %llu ms after redis-server restarted (%d requests)\n",
           (unsigned long long)(mono_ms() - t0), tries + 1);
    wait_served(40);
    atomic_store(&stop_load, 1);
    for (int i = 0; i < N_CLIENTS; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&failed), 0);
    ck_assert_int_ge(atomic_load(&served), 120);
    /* The restarted Redis is empty: its entries come back and hit. */
    for (int k = 0; k < N_PROMPTS; k++) {
        char text[64];
        snprintf(text, sizeof text, "under load %d", k);
        ck_assert_msg(until_hit(chat(text, b, sizeof b)), "no HIT for '%s' after the restart",
                      text);
    }
}
END_TEST

/* memcached down: answers served, the cache reported down; memcached
 * started on that port: hits, without restarting the proxy. */
START_TEST(t_memcached_down)
{
    ck_assert_int_eq(testsrv_mkdir(&mc, "cache-down-mc"), 0);
    int port = testsrv_free_port();
    char url[128];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d?retry_timeout_s=1", port);
    proxy_start(url);
    px_reply r;
    char b[512];
    ck_assert_int_eq(request("/v1/chat/completions", chat("memcached down", b, sizeof b), &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "echo: memcached down"));
    ck_assert_str_ne(r.xstatus, "HIT");
    ck_assert_int_eq(request("/health", NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "\"cache\":\"down\"") != NULL, "%s", r.body);

    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "32", "-t", "1",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[11] = NULL; /* -u is only needed (and allowed) as root */
    ck_assert_msg(testsrv_spawn(&mc, argv) == 0 && testsrv_wait_tcp(&mc, port, 5000) == 0,
                  "memcached did not start");
    ck_assert_msg(until_hit(chat("memcached back", b, sizeof b)),
                  "no HIT after memcached came up");
    ck_assert_int_eq(request("/cache/ping", NULL, &r), 0);
    ck_assert_msg(strstr(r.body, "\"cache\":\"up\"") != NULL, "%s", r.body);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_down");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_start_with_redis_down);
    tcase_add_test(tc, t_redis_restart_under_load);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(tc, t_memcached_down);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? 0 : 1;
}
