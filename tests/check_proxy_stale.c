/* The proxy (`llmcache serve`) answering with stale entries: the
 * provider answering 500 or 429 (or refusing streams) while the entry is
 * past its TTL but inside its stale window gives x-llmcache-status:
 * STALE, an age and a Warning: 110; past the window the error goes
 * through; stale-while-revalidate answers STALE at once and refreshes
 * the entry upstream once, then HIT. Real redis-server and the fake
 * provider on loopback ports the test picks; requests through libcurl. */
#include "fake_provider.h"
#include "support/proxyproc.h"
#include "support/redissrv.h"
#include "support/testsrv.h"
#include "llmc_config.h"

#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static fp_server *fp;
static redissrv rs;
static testsrv px;
static int px_port;

/* One request with an optional extra header (and, to /v1/messages, the
 * anthropic-version its clients send); 0 if it completed at the HTTP
 * level. */
static int request(const char *path, const char *body, const char *header, px_reply *r)
{
    const char *hd[3] = {NULL, NULL, NULL};
    int n = 0;
    if (header)
        hd[n++] = header;
    if (strcmp(path, "/v1/messages") == 0)
        hd[n++] = "anthropic-version: 2023-06-01";
    return px_request(px_port, path, body, hd, 30, r, NULL);
}

static char *chat(const char *text, int stream, char *buf, size_t n)
{
    snprintf(buf, n,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]%s}",
             text, stream ? ",\"stream\":true" : "");
    return buf;
}

/* Upstream requests whose body holds `text`. */
static size_t upstream_calls(const char *text)
{
    size_t n = 0;
    for (size_t i = 0; i < fp_count(fp); i++) {
        const fp_request *q = fp_request_at(fp, i);
        if (q && q->body && strstr(q->body, text))
            n++;
    }
    return n;
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    ck_assert_msg(redissrv_start(&rs, REDISSRV_TCP) == 0, "redis-server did not start");
    /* Entries are fresh for 1 s and kept 10 min past that for
     * stale-if-error; no retries, so a fault is one upstream request. */
    char api[256];
    snprintf(api, sizeof api, "%s/v1", fp_url(fp));
    px_conf c = {rs.url, "\"ttl\": 1, \"stale_if_error\": 600", api, 4, 16, NULL};
    ck_assert_msg(px_start(&px, "stale-proxy", &c, &px_port) == 0, "llmcache serve did not start");
}

static void teardown(void)
{
    testsrv_stop(&px);
    redissrv_stop(&rs);
    fp_stop(fp);
    curl_global_cleanup();
}

/* Store the answer to body (posted to path), then let its 1 s TTL run
 * out (a wait, not a measurement). */
static void store_then_expire(const char *path, const char *body, const char *header)
{
    px_reply r;
    ck_assert_int_eq(request(path, body, header, &r), 0);
    ck_assert_msg(r.status == 200, "HTTP %ld: %s", r.status, r.body);
    ck_assert_str_eq(r.xstatus, "MISS");
    usleep(1300 * 1000);
}

static void assert_stale(const px_reply *r, const char *content)
{
    ck_assert_msg(r->status == 200, "HTTP %ld: %s", r->status, r->body);
    ck_assert_str_eq(r->xstatus, "STALE");
    ck_assert_str_eq(r->warning, "110 - \"Response is Stale\"");
    ck_assert_msg(atoi(r->age) >= 1, "age %s", r->age);
    ck_assert_msg(strstr(r->body, content) != NULL, "%s", r->body);
}

START_TEST(t_provider_fails_while_stale)
{
    char b[512];
    const char *body = chat("stale if error", 0, b, sizeof b);
    store_then_expire("/v1/chat/completions", body, NULL);
    px_reply r;
    fp_fail_next(fp, 1, 500, -1);
    ck_assert_int_eq(request("/v1/chat/completions", body, NULL, &r), 0);
    assert_stale(&r, "echo: stale if error");
    fp_fail_next(fp, 1, 429, 0);
    ck_assert_int_eq(request("/v1/chat/completions", body, NULL, &r), 0);
    assert_stale(&r, "echo: stale if error");
    ck_assert_uint_eq(upstream_calls("stale if error"), 3);

    /* A request that accepts no stale answer gets the error. */
    fp_fail_next(fp, 1, 500, -1);
    ck_assert_int_eq(request("/v1/chat/completions", body, "Cache-Control: stale-if-error=0",
                             &r), 0);
    ck_assert_int_ge(r.status, 500); /* the provider's error, passed on */
    ck_assert_str_ne(r.xstatus, "STALE");

    /* A stream gets the stale answer replayed, labelled STALE. */
    char sb[512];
    const char *sbody = chat("stale if error", 1, sb, sizeof sb);
    fp_fail_next(fp, 1, 503, -1);
    ck_assert_int_eq(request("/v1/chat/completions", sbody, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "STALE");
    ck_assert_str_eq(r.warning, "110 - \"Response is Stale\"");
    ck_assert_msg(strstr(r.body, "data: [DONE]") != NULL, "%s", r.body);

    /* The provider answers again: a fresh answer, then hits. */
    ck_assert_int_eq(request("/v1/chat/completions", body, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "MISS");
    ck_assert_int_eq(request("/v1/chat/completions", body, NULL, &r), 0);
    ck_assert_str_eq(r.xstatus, "HIT");
    ck_assert_str_eq(r.warning, "");

    ck_assert_int_eq(request("/metrics", NULL, NULL, &r), 0);
    ck_assert_msg(strstr(r.body, "\nllmcache_stale_total 3\n") != NULL, "%s", r.body);
}
END_TEST

/* Past the window (the request's) the provider's error goes through. */
START_TEST(t_past_window)
{
    char b[512];
    const char *body = chat("too old", 0, b, sizeof b);
    store_then_expire("/v1/chat/completions", body, NULL);
    px_reply r;
    fp_fail_next(fp, 1, 429, 0);
    ck_assert_int_eq(request("/v1/chat/completions", body, NULL, &r), 0);
    ck_assert_str_eq(r.xstatus, "STALE");
    usleep(1100 * 1000); /* more than a second past its freshness now */
    fp_fail_next(fp, 1, 429, 0);
    ck_assert_int_eq(request("/v1/chat/completions", body, "Cache-Control: stale-if-error=1",
                             &r), 0);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_ne(r.xstatus, "STALE");
}
END_TEST

/* The refresh lands in the background: poll (bounded) for the HIT. */
static void await_hit(const char *path, const char *body, const char *header)
{
    px_reply r;
    int hit = 0;
    for (int i = 0; i < 100 && !hit; i++) {
        ck_assert_int_eq(request(path, body, header, &r), 0);
        ck_assert_int_eq(r.status, 200);
        hit = strcmp(r.xstatus, "HIT") == 0;
        if (!hit)
            usleep(50 * 1000);
    }
    ck_assert_msg(hit, "no HIT after the background refresh");
}

typedef struct swr_arg {
    const char *body;
    const char *header;
    px_reply r;
    int rc;
} swr_arg;

static void *swr_worker(void *p)
{
    swr_arg *a = p;
    a->rc = request("/v1/chat/completions", a->body, a->header, &a->r);
    return NULL;
}

/* Identical requests while the provider fails: the first goes upstream
 * and answers stale; those that waited for it answer stale too, without
 * trying the failing provider again. */
START_TEST(t_coalesced_while_failing)
{
    char b[512];
    const char *body = chat("outage", 0, b, sizeof b);
    store_then_expire("/v1/chat/completions", body, NULL);
    fp_fail_next(fp, 100, 500, -1);
    fp_set_delay_ms(fp, 1000); /* the others arrive while the first is upstream */
    enum { N = 6 };
    pthread_t t[N];
    swr_arg a[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].body = body;
        ck_assert_int_eq(pthread_create(&t[i], NULL, swr_worker, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].rc, 0);
        assert_stale(&a[i].r, "echo: outage");
    }
    fp_set_delay_ms(fp, 0);
    ck_assert_uint_eq(upstream_calls("outage"), 2); /* the store, one failed call */
}
END_TEST

/* stale-while-revalidate through the proxy: STALE at once to every
 * concurrent request, one refresh upstream, then HIT with the new
 * answer. */
START_TEST(t_stale_while_revalidate)
{
    char b[512];
    const char *body = chat("revalidate me", 0, b, sizeof b);
    store_then_expire("/v1/chat/completions", body, "Cache-Control: stale-while-revalidate=600");
    ck_assert_uint_eq(upstream_calls("revalidate me"), 1);
    fp_set_delay_ms(fp, 300); /* the refresh overlaps the requests */
    enum { N = 6 };
    pthread_t t[N];
    swr_arg a[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].body = body;
        a[i].header = "Cache-Control: stale-while-revalidate=600";
        ck_assert_int_eq(pthread_create(&t[i], NULL, swr_worker, &a[i]), 0);
    }
    int stale = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].rc, 0);
        ck_assert_int_eq(a[i].r.status, 200);
        ck_assert_msg(strcmp(a[i].r.xstatus, "STALE") == 0 || strcmp(a[i].r.xstatus, "HIT") == 0,
                      "status %s", a[i].r.xstatus);
        stale += strcmp(a[i].r.xstatus, "STALE") == 0;
    }
    ck_assert_int_ge(stale, 1);
    await_hit("/v1/chat/completions", body, "Cache-Control: stale-while-revalidate=600");
    ck_assert_uint_eq(upstream_calls("revalidate me"), 2);
    fp_set_delay_ms(fp, 0);
}
END_TEST

/* The Messages API on /v1/messages (the model's provider speaks chat:
 * translated) while the provider fails: STALE with age and Warning, a
 * stream replayed as Messages events, a 4xx passed on; then
 * stale-while-revalidate: STALE at once, one refresh, HIT. */
START_TEST(t_messages)
{
    const char *body = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"stale messages\"}]}";
    store_then_expire("/v1/messages", body, NULL);
    px_reply r;
    static const int faults[] = {500, 429};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        fp_fail_next(fp, 1, faults[i], faults[i] == 429 ? 0 : -1);
        ck_assert_int_eq(request("/v1/messages", body, NULL, &r), 0);
        assert_stale(&r, "echo: stale messages");
        json_object *m = json_tokener_parse(r.body), *t = NULL;
        ck_assert_msg(m && json_object_object_get_ex(m, "type", &t) &&
                          strcmp(json_object_get_string(t), "message") == 0,
                      "not a Message: %s", r.body);
        json_object_put(m);
    }
    const char *sbody = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"stream\":true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"stale messages\"}]}";
    fp_fail_next(fp, 1, 503, -1);
    ck_assert_int_eq(request("/v1/messages", sbody, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "STALE");
    ck_assert_str_eq(r.warning, "110 - \"Response is Stale\"");
    ck_assert_msg(strstr(r.body, "event: message_start") &&
                      strstr(r.body, "event: content_block_delta") &&
                      strstr(r.body, "event: message_stop") && !strstr(r.body, "[DONE]"),
                  "%s", r.body);
    /* a request the provider rejects is the caller's to see */
    fp_fail_next(fp, 1, 400, -1);
    ck_assert_int_eq(request("/v1/messages", body, NULL, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_ne(r.xstatus, "STALE");
    ck_assert_uint_eq(upstream_calls("stale messages"), 5);

    /* The refresh stores with the body's TTL: fresh for the rest of
     * the test ("cache" is never part of the key). */
    const char *swr = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"cache\":{"
                      "\"stale-while-revalidate\":600,\"ttl\":600},\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"stale messages\"}]}";
    ck_assert_int_eq(request("/v1/messages", swr, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.xstatus, "STALE");
    ck_assert_str_eq(r.warning, "110 - \"Response is Stale\"");
    await_hit("/v1/messages", swr, NULL);
    ck_assert_uint_eq(upstream_calls("stale messages"), 6);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_stale");
    TCase *tc = tcase_create("proxy");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_provider_fails_while_stale);
    tcase_add_test(tc, t_past_window);
    tcase_add_test(tc, t_stale_while_revalidate);
    tcase_add_test(tc, t_coalesced_while_failing);
    tcase_add_test(tc, t_messages);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
