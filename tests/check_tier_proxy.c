/* Two `llmcache serve` processes sharing one redis-server, both with the
 * local tier (l1_* options on the cache URL): hits from the tier cost no
 * Redis round trip (INFO commandstats), /metrics shows the tier, and a
 * namespace flush through one proxy reaches the other's tier. Real
 * redis-server and the fake provider on loopback ports the test picks. */
#include "fake_provider.h"
#include "support/proxyproc.h"
#include "support/redissrv.h"
#include "support/testsrv.h"
#include "llmc_config.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static fp_server *fp;
static redissrv rs;
static testsrv px[2];
static int px_port[2];

/* One request to proxy i (body NULL: GET), in namespace exp1. */
static void request(int i, const char *path, const char *body, px_reply *r)
{
    static const char *const hd[] = {"x-llmcache-namespace: exp1", NULL};
    const char *err;
    ck_assert_msg(px_request(px_port[i], path, body, hd, 30, r, &err) == 0, "127.0.0.1:%d%s: %s",
                  px_port[i], path, err);
}

static void proxy_start(int i, const char *cache_url)
{
    char name[32];
    snprintf(name, sizeof name, "tier-proxy%d", i);
    char api[256];
    snprintf(api, sizeof api, "%s/v1", fp_url(fp));
    px_conf c = {cache_url, "\"ttl\": 3600, \"l1_ttl\": 600", api, 2, 4, NULL};
    ck_assert_msg(px_start(&px[i], name, &c, &px_port[i]) == 0, "llmcache serve did not start");
}

/* A metric's value from proxy i's /metrics, -1 when absent. */
static double metric(int i, const char *name)
{
    px_reply r;
    request(i, "/metrics", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    char pat[200];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r.body, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* Calls of one redis command since the last reset. */
static long redis_calls(const char *cmd)
{
    long n = redissrv_calls(&rs, cmd);
    ck_assert_msg(n >= 0, "redis-server did not answer INFO commandstats");
    return n;
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
    testsrv_stop(&px[0]);
    testsrv_stop(&px[1]);
    redissrv_stop(&rs);
    fp_stop(fp);
    curl_global_cleanup();
}

static const char BODY[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"tiered\"}]}";

START_TEST(t_two_proxies_share_redis)
{
    proxy_start(0, rs.url);
    proxy_start(1, rs.url);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 1000 && metric(i, "llmcache_l1_live") != 1; j++)
            usleep(10000);
    ck_assert(metric(0, "llmcache_l1_live") == 1 && metric(1, "llmcache_l1_live") == 1);

    px_reply r;
    request(0, "/v1/chat/completions", BODY, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "MISS");
    /* Proxy 1 gets it from Redis, then from its tier (its copy of the
     * answer may be dropped once by proxy 0's message about the store:
     * poll until a hit comes from the tier). */
    int from_tier = 0;
    for (int j = 0; j < 500 && !from_tier; j++) {
        double h0 = metric(1, "llmcache_l1_operations_total{result=\"hit\"}");
        request(1, "/v1/chat/completions", BODY, &r);
        ck_assert_str_eq(r.xstatus, "HIT");
        from_tier = metric(1, "llmcache_l1_operations_total{result=\"hit\"}") > h0;
        if (!from_tier)
            usleep(10000);
    }
    ck_assert(from_tier);
    ck_assert_int_eq(redissrv_reset_calls(&rs), 0);
    for (int j = 0; j < 5; j++) {
        request(1, "/v1/chat/completions", BODY, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.xstatus, "HIT");
        ck_assert_ptr_nonnull(strstr(r.body, "echo: tiered"));
    }
    ck_assert_int_eq(redis_calls("get"), 0);
    ck_assert(metric(1, "llmcache_l1_fills_total") >= 1);
    ck_assert(metric(1, "llmcache_l1_resyncs_total") >= 1);

    /* A namespace flush through proxy 0 reaches proxy 1's tier. */
    request(0, "/cache/flush", "{\"namespace\":\"exp1\"}", &r);
    ck_assert_msg(r.status == 200, "flush: HTTP %ld %s", r.status, r.body);
    int gone = 0;
    for (int j = 0; j < 500 && !gone; j++) {
        request(1, "/v1/chat/completions", BODY, &r);
        ck_assert_int_eq(r.status, 200);
        gone = strcmp(r.xstatus, "HIT") != 0;
        if (!gone)
            usleep(10000);
    }
    ck_assert_msg(gone, "proxy 1 still answers from its tier after the flush");
    ck_assert(metric(1, "llmcache_l1_invalidations_total") >= 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tier_proxy");
    TCase *tc = tcase_create("tier_proxy");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_two_proxies_share_redis);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
