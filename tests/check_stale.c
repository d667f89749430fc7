/* Stale answers when the provider fails (stale-if-error) and while an
 * entry is refreshed (stale-while-revalidate), through the prepared call,
 * over every backend (local, sqlite, redis, memcached, redis-cluster:
 * real servers on free loopback ports) against the fake provider.
 *
 * Most cases plant an entry whose freshness ended a minute ago (the
 * envelope written as a store would write it, at the call's key), so no
 * case waits for a TTL; t_real_expiry lets one run out. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client_test_util.h"
#include "conformance.h"
#include "support/rcluster.h"
#include "support/testsrv.h"

typedef struct backend {
    const char *name;
    int (*setup)(char *url, size_t n);
    void (*teardown)(void);
    char url[512];
    int up;
    int l1; /* with the local tier in front */
} backend;

static int local_setup(char *url, size_t n)
{
    snprintf(url, n, "local://");
    return 0;
}

static backend backends[] = {
    {"local", local_setup, NULL, "", 0, 0},
    {"sqlite", conf_sqlite_setup, conf_sqlite_teardown, "", 0, 0},
    {"redis", conf_redis_setup, conf_redis_teardown, "", 0, 0},
    {"memcached", conf_memcached_setup, conf_memcached_teardown, "", 0, 0},
    {"redis-cluster", conf_redis_cluster_setup, conf_redis_cluster_teardown, "", 0, 0},
    /* the same redis-server as "redis", through the local tier */
    {"redis+l1", NULL, NULL, "", 0, 1},
};
#define NB ((int)(sizeof backends / sizeof backends[0]))

static fp_server *srv;
static llmc_cache *cache;
static llmc_client *cl;
static char base_v1[128];

#define CHAT(content, extra)                                                                   \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" content     \
    "\"}]" extra "}"

static const char STALE_BODY[] =
    "{\"id\":\"chatcmpl-old\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"stale "
    "answer\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
    "\"completion_tokens\":2,\"total_tokens\":5}}";

static llmc_client *client_with(const char *api_base, const char *timeout_ms)
{
    const char *kv[] = {"openai.api_key", "sk-test", "openai.api_base", api_base, "max_retries",
                        "1", "retry_base_ms", "1", "retry_max_ms", "5", "timeout_ms",
                        timeout_ms ? timeout_ms : "20000", NULL};
    return tu_client(cache, kv);
}

/* Open backend i with these cache options ("name", "value", ..., NULL)
 * and a client against the fake provider. */
static void begin(int i, const char *const *opts)
{
    ck_assert_msg(backends[i].up, "backend %s did not start", backends[i].name);
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    llmc_options *o = llmc_options_new();
    for (size_t k = 0; opts && opts[k]; k += 2)
        ck_assert_int_eq(llmc_options_set(o, opts[k], opts[k + 1]), LLMC_OK);
    if (backends[i].l1)
        ck_assert_int_eq(llmc_options_set(o, "l1", "1"), LLMC_OK);
    llmc_err e;
    ck_assert_msg(llmc_cache_open(backends[i].url, o, &cache, &e) == LLMC_OK, "%s: %s",
                  backends[i].name, e.msg);
    llmc_options_free(o);
    ck_assert_int_eq(llmc_cache_flush_all(cache), LLMC_OK);
    cl = client_with(base_v1, NULL);
}

static void end(void)
{
    llmc_client_free(cl);
    llmc_cache_close(cache);
    fp_stop(srv);
    cl = NULL;
    cache = NULL;
    srv = NULL;
}

/* Write STALE_BODY at the key `req` is cached under: created two minutes
 * ago, fresh until a minute ago, stale-servable for window_left_ms more
 * (negative: the window ended that long ago). */
static void plant_for(llmc_client *c, const char *req, int64_t window_left_ms)
{
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(c, LLMC_CALL_CHAT, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    const char *key = llmc_call_key(k);
    ck_assert_ptr_nonnull(key);
    int64_t now = llmc_now_ms();
    llmc_entry en;
    memset(&en, 0, sizeof en);
    en.call = LLMC_CALL_CHAT;
    en.created_ms = now - 120000;
    en.expires_ms = now - 60000;
    en.stale_until_ms = now + window_left_ms;
    en.upstream_ms = 700;
    llmc_sha256(key, strlen(key), en.key_sha256);
    en.body = STALE_BODY;
    en.body_len = sizeof STALE_BODY - 1;
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_entry_encode(llmc_cache_serializer_name(cache), &en, &b, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(cache, key, strlen(key), b.data, b.len, 600000), LLMC_OK);
    llmc_buf_free(&b);
    llmc_call_free(k);
}

static void plant(const char *req, int64_t window_left_ms)
{
    plant_for(cl, req, window_left_ms);
}

static const char *content(llmc_response *r)
{
    return llmc_response_content(r) ? llmc_response_content(r) : "(none)";
}

/* The answer to req must be the planted stale one, marked stale. */
static void expect_stale(llmc_client *c, const char *req, const char *what)
{
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = llmc_completion_json(c, req, LLMC_ZSTR, &r, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", what, e.msg);
    ck_assert_msg(llmc_response_cache_stale(r), "%s: not marked stale", what);
    ck_assert(llmc_response_cache_hit(r));
    ck_assert_str_eq(content(r), "stale answer");
    ck_assert_msg(llmc_response_cache_age_ms(r) >= 120000, "%s: age %lld", what,
                  (long long)llmc_response_cache_age_ms(r));
    ck_assert(!llmc_response_cache_stored(r));
    llmc_response_free(r);
}

static const char *const SIE[] = {"ttl", "60", "stale_if_error", "600", NULL};

/* A fresh entry is a plain hit, whatever the windows. */
START_TEST(t_fresh_hit)
{
    begin(_i, SIE);
    const char *req = CHAT("fresh", "");
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    ck_assert(llmc_response_cache_stored(r));
    llmc_response_free(r);
    /* the store keeps it for the TTL plus the window */
    llmc_call *k = NULL;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(cache, llmc_call_key(k), strlen(llmc_call_key(k)), -1,
                                          0, &l), LLMC_OK);
    ck_assert_int_eq(l.entry.version, 3);
    ck_assert_int_eq(l.entry.expires_ms - l.entry.created_ms, 60000);
    ck_assert_int_eq(l.entry.stale_until_ms - l.entry.expires_ms, 600000);
    llmc_lookup_free(&l);
    int64_t ttl = 0;
    llmc_status ts = llmc_cache_ttl(cache, llmc_call_key(k), strlen(llmc_call_key(k)), &ttl);
    if (ts != LLMC_ENOTSUP) {
        ck_assert_int_eq(ts, LLMC_OK);
        ck_assert_msg(ttl > 600000 && ttl <= 660000, "%s: backend ttl %lld", backends[_i].name,
                      (long long)ttl);
    }
    llmc_call_free(k);
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r));
    ck_assert(!llmc_response_cache_stale(r));
    ck_assert_uint_eq(fp_count(srv), 1);
    llmc_response_free(r);
    end();
}
END_TEST

/* The provider failing in each way stale-if-error covers: the stale
 * entry answers, marked stale. */
START_TEST(t_sie_provider_faults)
{
    begin(_i, SIE);
    const char *req = CHAT("faults", "");
    plant(req, 600000);

    fp_fail_next(srv, 10, 500, -1);
    expect_stale(cl, req, "500");
    ck_assert_uint_eq(fp_count(srv), 2); /* the first attempt and one retry */

    fp_reset(srv);
    fp_fail_next(srv, 10, 429, 0);
    expect_stale(cl, req, "429");
    ck_assert_uint_eq(fp_count(srv), 2);

    fp_reset(srv);
    fp_fail_next(srv, 10, 503, -1);
    expect_stale(cl, req, "503");

    /* connection refused: nothing listens on that port (another
     * api_base is another key: the entry is planted for that one) */
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/v1", testsrv_free_port());
    llmc_client *c2 = client_with(dead, NULL);
    plant_for(c2, req, 600000);
    expect_stale(c2, req, "connection refused");
    llmc_client_free(c2);

    /* a request the provider rejects (4xx) is the caller's to see */
    fp_reset(srv);
    fp_fail_next(srv, 10, 400, -1);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_ne(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert_ptr_null(r);

    /* and once the provider answers, the fresh answer replaces it */
    fp_reset(srv);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    ck_assert(llmc_response_cache_stored(r));
    ck_assert_str_eq(content(r), "echo: faults");
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r) && !llmc_response_cache_stale(r));
    llmc_response_free(r);
    end();
}
END_TEST

/* A provider that answers only after the client gave up. Last in its
 * test: the fake provider's delayed handlers finish before fp_stop
 * returns (fp_reset would pull their requests away). */
START_TEST(t_sie_timeout)
{
    begin(_i, SIE);
    const char *req = CHAT("slow", "");
    plant(req, 600000);
    fp_set_delay_ms(srv, 1500);
    llmc_client *c2 = client_with(base_v1, "200");
    expect_stale(c2, req, "timeout");
    llmc_client_free(c2);
    end();
}
END_TEST

/* Outside the window the error reaches the caller: the entry's own
 * window ended, the request asks for a shorter one, or none at all. */
START_TEST(t_sie_outside_window)
{
    begin(_i, SIE);
    llmc_response *r = NULL;
    llmc_err e;
    const char *req = CHAT("past", "");
    plant(req, -1000);
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_EUPSTREAM);
    ck_assert_ptr_null(r);

    /* stale by a minute; the request accepts 30 s (Cache-Control) */
    const char *req2 = CHAT("short", "");
    plant(req2, 600000);
    fp_reset(srv);
    fp_fail_next(srv, 10, 500, -1);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.cache_control = "stale-if-error=30";
    llmc_call *k = NULL;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, req2, LLMC_ZSTR, &o, &k, &e), LLMC_OK);
    ck_assert_int_eq(llmc_call_execute(k, NULL, NULL, &r, &e), LLMC_EUPSTREAM);
    ck_assert(!llmc_call_stale(k));
    llmc_call_free(k);
    /* ... and 120 s does it */
    fp_reset(srv);
    fp_fail_next(srv, 10, 500, -1);
    o.cache_control = "no-transform, stale-if-error=120";
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, req2, LLMC_ZSTR, &o, &k, &e), LLMC_OK);
    ck_assert_int_eq(llmc_call_execute(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_stale(r));
    ck_assert(llmc_call_stale(k));
    llmc_response_free(r);
    llmc_call_free(k);

    /* the body's control turns it off for one request */
    fp_reset(srv);
    fp_fail_next(srv, 10, 500, -1);
    const char *off = CHAT("short", ",\"cache\":{\"stale-if-error\":0}");
    ck_assert_int_eq(llmc_completion_json(cl, off, LLMC_ZSTR, &r, &e), LLMC_EUPSTREAM);
    /* the same control with the body's window on a cache without one */
    llmc_client_free(cl);
    llmc_cache_close(cache);
    llmc_err oe;
    ck_assert_int_eq(llmc_cache_open(backends[_i].url, NULL, &cache, &oe), LLMC_OK);
    cl = client_with(base_v1, NULL);
    plant(req2, 600000); /* (a new local:// cache is empty) */
    fp_reset(srv);
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, req2, LLMC_ZSTR, &r, &e), LLMC_EUPSTREAM);
    fp_reset(srv);
    fp_fail_next(srv, 10, 500, -1);
    expect_stale(cl, CHAT("short", ",\"cache\":{\"stale-if-error\":3600}"), "body control");
    /* a bad window names the control */
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("x", ",\"cache\":{\"stale-if-error\":-1}"),
                                          LLMC_ZSTR, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "stale-if-error"));
    o.cache_control = "stale-while-revalidate=soon";
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, req2, LLMC_ZSTR, &o, &k, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "stale-while-revalidate"));
    end();
}
END_TEST

/* A stream whose provider fails gets the stale answer replayed. */
START_TEST(t_sie_stream)
{
    begin(_i, SIE);
    const char *req = CHAT("streamed", ",\"stream\":true");
    plant(req, 600000);
    fp_fail_next(srv, 10, 502, -1);
    tu_chunks ch = {NULL, 0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert(llmc_response_cache_stale(r));
    char text[256];
    tu_join(&ch, "content", text, sizeof text, NULL);
    ck_assert_str_eq(text, "stale answer");
    tu_chunks_free(&ch);
    llmc_response_free(r);
    end();
}
END_TEST

typedef struct swr_arg {
    const char *req;
    int stale, fresh, bad;
} swr_arg;

static void *swr_worker(void *p)
{
    swr_arg *a = p;
    llmc_response *r = NULL;
    llmc_err e;
    if (llmc_completion_json(cl, a->req, LLMC_ZSTR, &r, &e) != LLMC_OK)
        a->bad = 1;
    else if (llmc_response_cache_stale(r) && strcmp(content(r), "stale answer") == 0)
        a->stale = 1;
    else if (llmc_response_cache_hit(r) && strncmp(content(r), "echo: ", 6) == 0)
        a->fresh = 1;
    else
        a->bad = 1;
    llmc_response_free(r);
    return NULL;
}

/* stale-while-revalidate: the stale answer at once, one refresh however
 * many ask at the same time, then the refreshed answer as a plain hit. */
START_TEST(t_swr)
{
    const char *const opts[] = {"ttl", "60", NULL};
    begin(_i, opts);
    const char *req = CHAT("revalidate", ",\"cache\":{\"stale-while-revalidate\":600}");
    plant(req, 600000);
    /* The refresh takes a while, so the requests overlap it. */
    fp_set_delay_ms(srv, 300);
    enum { N = 8 };
    pthread_t t[N];
    swr_arg a[N];
    for (int i = 0; i < N; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].req = req;
        ck_assert_int_eq(pthread_create(&t[i], NULL, swr_worker, &a[i]), 0);
    }
    int stale = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(!a[i].bad, "request %d got neither the stale nor the fresh answer", i);
        stale += a[i].stale;
    }
    ck_assert_int_ge(stale, 1);
    llmc_client_wait_refreshes(cl);
    ck_assert_uint_eq(fp_count(srv), 1);
    fp_set_delay_ms(srv, 0);
    llmc_response *r = NULL;
    llmc_err e;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
        ck_assert(llmc_response_cache_hit(r));
        ck_assert(!llmc_response_cache_stale(r));
        ck_assert_str_eq(content(r), "echo: revalidate");
        llmc_response_free(r);
    }
    ck_assert_uint_eq(fp_count(srv), 1);

    /* A refresh that fails stores nothing: stale again, and the next
     * stale answer tries again. */
    req = CHAT("revalidate again", ",\"cache\":{\"stale-while-revalidate\":600}");
    plant(req, 600000);
    fp_reset(srv);
    fp_fail_next(srv, 2, 500, -1);
    expect_stale(cl, req, "swr, refresh failing");
    llmc_client_wait_refreshes(cl);
    ck_assert_uint_eq(fp_count(srv), 2);
    expect_stale(cl, req, "swr, after the failed refresh");
    llmc_client_wait_refreshes(cl);
    ck_assert_uint_eq(fp_count(srv), 3);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r) && !llmc_response_cache_stale(r));
    llmc_response_free(r);

    /* the prepared call says it answered stale; the cache's default
     * window applies when the request names none */
    llmc_client_free(cl);
    llmc_cache_close(cache);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "stale_while_revalidate", "600");
    llmc_err oe;
    ck_assert_int_eq(llmc_cache_open(backends[_i].url, o, &cache, &oe), LLMC_OK);
    llmc_options_free(o);
    cl = client_with(base_v1, NULL);
    const char *plain = CHAT("revalidate", "");
    plant(plain, 600000);
    fp_reset(srv);
    llmc_call *k = NULL;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, plain, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_call_lookup(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert(llmc_call_stale(k));
    ck_assert(llmc_response_cache_stale(r));
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_wait_refreshes(cl);
    ck_assert_uint_eq(fp_count(srv), 1);
    end();
}
END_TEST

/* Without a planted entry: a real TTL runs out, the entry stays for its
 * window and answers when the provider fails. */
START_TEST(t_real_expiry)
{
    const char *const opts[] = {"ttl", "1", "stale_if_error", "60", NULL};
    begin(_i, opts);
    const char *req = CHAT("expires", "");
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_stored(r));
    llmc_response_free(r);
    usleep(1300 * 1000); /* past the 1 s TTL (waiting, not measuring) */
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_stale(r));
    ck_assert_str_eq(content(r), "echo: expires");
    ck_assert_int_ge(llmc_response_cache_age_ms(r), 1000);
    llmc_response_free(r);
    end();
}
END_TEST

static int count_events(void *ud, struct json_object *ev)
{
    json_object *t = NULL;
    if (json_object_object_get_ex(ev, "type", &t))
        (*(int *)ud)++;
    return 0;
}

/* The Responses call type: a stale answer comes back as the provider
 * fails, plain and streamed (replayed as the API's typed events); and
 * stale-while-revalidate refreshes it through that API. */
START_TEST(t_responses)
{
    const char *const opts[] = {"ttl", "1", "stale_if_error", "600", NULL};
    begin(_i, opts);
    const char *req = "{\"model\":\"gpt-4o-mini\",\"input\":\"stale responses\"}";
    llmc_call *k = NULL;
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_msg(llmc_call_execute(k, NULL, NULL, &r, &e) == LLMC_OK, "%s", e.msg);
    ck_assert(llmc_response_cache_stored(r));
    llmc_response_free(r);
    llmc_call_free(k);
    usleep(1300 * 1000); /* past the 1 s TTL */
    fp_fail_next(srv, 100, 500, -1);
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_msg(llmc_call_execute(k, NULL, NULL, &r, &e) == LLMC_OK, "%s", e.msg);
    ck_assert(llmc_response_cache_stale(r));
    ck_assert_ptr_nonnull(strstr(llmc_response_text(r, NULL), "stale responses"));
    llmc_response_free(r);
    llmc_call_free(k);
    const char *sreq = "{\"model\":\"gpt-4o-mini\",\"input\":\"stale responses\","
                       "\"stream\":true}";
    int events = 0;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, sreq, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_msg(llmc_call_execute(k, count_events, &events, &r, &e) == LLMC_OK, "%s", e.msg);
    ck_assert(llmc_call_stale(k));
    ck_assert_int_ge(events, 2);
    llmc_response_free(r);
    llmc_call_free(k);
    /* revalidated through the Responses API */
    fp_reset(srv);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.cache_control = "stale-while-revalidate=600";
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, req, LLMC_ZSTR, &o, &k, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_call_lookup(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_stale(r));
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_wait_refreshes(cl);
    ck_assert_uint_eq(fp_count(srv), 1);
    ck_assert_str_eq(fp_last(srv)->path, "/v1/responses");
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_call_lookup(k, NULL, NULL, &r, &e), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r) && !llmc_response_cache_stale(r));
    llmc_response_free(r);
    llmc_call_free(k);
    end();
}
END_TEST

/* The Messages call type against the fake provider speaking it natively:
 * a stale answer as the provider fails (5xx, 429; never a 4xx), plain
 * and streamed (replayed as the same Messages event types as the stream
 * that stored it); stale-while-revalidate refreshes it through that API
 * with the call's anthropic-version, a failed refresh storing nothing. */
#define MSG_REQ(extra)                                                                       \
    "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":64,\"messages\":[{\"role\":"       \
    "\"user\",\"content\":\"stale messages\"}]" extra "}"

static llmc_status msg_call(llmc_client *c, const char *req, const char *cache_control,
                            tu_chunks *ch, llmc_response **r, llmc_call **kp, llmc_err *e)
{
    static const char *const h[] = {"anthropic-version", "2023-06-01", NULL};
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.api_headers = h;
    o.cache_control = cache_control;
    o.ttl = cache_control ? "600" : NULL; /* a refreshed entry stays fresh to the end */
    llmc_call *k = NULL;
    llmc_status st = llmc_call_prepare(c, LLMC_CALL_MESSAGES, req, LLMC_ZSTR, &o, &k, e);
    ck_assert_msg(st == LLMC_OK, "prepare: %s", e->msg);
    st = kp ? llmc_call_lookup(k, NULL, NULL, r, e)
            : llmc_call_execute(k, ch ? tu_chunk_cb : NULL, ch, r, e);
    if (kp)
        *kp = k;
    else
        llmc_call_free(k);
    return st;
}

START_TEST(t_messages)
{
    const char *const opts[] = {"ttl", "1", "stale_if_error", "600", NULL};
    begin(_i, opts);
    const char *kv[] = {"anthropic.api_key", "sk-ant-test", "anthropic.api_base", fp_url(srv),
                        "max_retries", "0", NULL};
    llmc_client *mc = tu_client(cache, kv);
    llmc_response *r = NULL;
    llmc_err e;
    tu_chunks first = {NULL, 0}, again = {NULL, 0};
    ck_assert_msg(msg_call(mc, MSG_REQ(",\"stream\":true"), NULL, &first, &r, NULL, &e) ==
                      LLMC_OK, "%s", e.msg);
    ck_assert(llmc_response_cache_stored(r));
    llmc_response_free(r);
    usleep(1300 * 1000); /* past the 1 s TTL */

    static const int faults[] = {500, 429, 503};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        fp_fail_next(srv, 1, faults[i], faults[i] == 429 ? 0 : -1);
        ck_assert_msg(msg_call(mc, MSG_REQ(""), NULL, NULL, &r, NULL, &e) == LLMC_OK,
                      "%d: %s", faults[i], e.msg);
        ck_assert_msg(llmc_response_cache_stale(r), "%d: not marked stale", faults[i]);
        ck_assert_str_eq(content(r), "echo: stale messages");
        ck_assert_int_ge(llmc_response_cache_age_ms(r), 1000);
        llmc_response_free(r);
    }
    fp_fail_next(srv, 1, 502, -1);
    ck_assert_msg(msg_call(mc, MSG_REQ(",\"stream\":true"), NULL, &again, &r, NULL, &e) ==
                      LLMC_OK, "%s", e.msg);
    ck_assert(llmc_response_cache_stale(r));
    llmc_response_free(r);
    char t1[512], t2[512];
    tu_types(&first, t1, sizeof t1, 1);
    tu_types(&again, t2, sizeof t2, 1);
    ck_assert_str_eq(t2, t1);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(again.arr, 0), "type"), "message_start");
    tu_chunks_free(&first);
    tu_chunks_free(&again);
    /* a request the provider rejects (4xx) is the caller's to see */
    fp_fail_next(srv, 1, 400, -1);
    ck_assert_int_ne(msg_call(mc, MSG_REQ(""), NULL, NULL, &r, NULL, &e), LLMC_OK);
    ck_assert_ptr_null(r);

    /* stale-while-revalidate: the first refresh fails and stores nothing
     * (stale again), the next one stores the provider's answer. */
    fp_reset(srv);
    fp_fail_next(srv, 1, 500, -1);
    llmc_call *k = NULL;
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(msg_call(mc, MSG_REQ(""), "stale-while-revalidate=600", NULL, &r, &k,
                                  &e), LLMC_OK);
        ck_assert(llmc_call_stale(k) && llmc_response_cache_stale(r));
        llmc_response_free(r);
        llmc_call_free(k);
        llmc_client_wait_refreshes(mc);
        ck_assert_uint_eq(fp_count(srv), (size_t)round + 1);
    }
    ck_assert_str_eq(fp_last(srv)->path, "/v1/messages");
    ck_assert_str_eq(fp_header_get(fp_last(srv), "anthropic-version"), "2023-06-01");
    ck_assert_int_eq(msg_call(mc, MSG_REQ(""), "stale-while-revalidate=600", NULL, &r, &k, &e),
                     LLMC_OK);
    ck_assert(llmc_response_cache_hit(r) && !llmc_response_cache_stale(r));
    ck_assert_str_eq(content(r), "echo: stale messages");
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_wait_refreshes(mc);
    ck_assert_uint_eq(fp_count(srv), 2);
    llmc_client_free(mc);
    end();
}
END_TEST

/* Run the command; its exit status, stdout and stderr (malloc'd). */
static int run_cli(char **out, char **err, const char *const *args)
{
    const char *bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin && access(bin, X_OK) == 0, "LLMCACHE_BIN not set or not executable");
    char po[] = "/tmp/llmc-stale-out-XXXXXX", pe[] = "/tmp/llmc-stale-err-XXXXXX";
    int fo = mkstemp(po), fe = mkstemp(pe);
    ck_assert(fo >= 0 && fe >= 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32];
        int n = 0;
        argv[n++] = bin;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int fds[2] = {fo, fe};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        off_t len = lseek(fds[i], 0, SEEK_END);
        *dst[i] = calloc(1, (size_t)len + 1);
        ck_assert_int_eq(pread(fds[i], *dst[i], (size_t)len, 0), len);
        close(fds[i]);
    }
    unlink(po);
    unlink(pe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The command: a stale answer while the provider fails, exit 0 and a
 * STALE status line. */
START_TEST(t_cli)
{
    begin(1, NULL); /* the fake provider; the command opens its own file */
    char url[600];
    snprintf(url, sizeof url, "%s-cli?ttl=1&stale_if_error=600", backends[1].url);
    const char *args[] = {"complete", "-v", "--cache", url, "--model", "gpt-4o-mini",
                          "--api-base", base_v1, "--api-key", "sk-test", "--retries", "0",
                          "--user", "from the command", "--text", NULL};
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(run_cli(&out, &err, args), 0);
    ck_assert_msg(strstr(err, "llmcache: MISS") && strstr(err, "(stored)"), "%s", err);
    free(out);
    free(err);
    usleep(1300 * 1000); /* past the 1 s TTL */
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(run_cli(&out, &err, args), 0);
    ck_assert_msg(strstr(err, "llmcache: STALE age=") != NULL, "%s", err);
    ck_assert_msg(strstr(out, "echo: from the command") != NULL, "%s", out);
    free(out);
    free(err);
    /* past the request's window: the provider's error, a failure exit */
    const char *strict[] = {"complete", "-v", "--cache", url, "--model", "gpt-4o-mini",
                            "--api-base", base_v1, "--api-key", "sk-test", "--retries", "0",
                            "--cache-control", "stale-if-error=0", "--user",
                            "from the command", "--text", NULL};
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_ne(run_cli(&out, &err, strict), 0);
    ck_assert_msg(strstr(err, "STALE") == NULL, "%s", err);
    free(out);
    free(err);
    /* the same for a Messages call (--api messages) */
    fp_reset(srv);
    const char *msg[] = {"complete", "-v", "--cache", url, "--api", "messages", "--header",
                         "anthropic-version:2023-06-01", "--model", "gpt-4o-mini",
                         "--api-base", base_v1, "--api-key", "sk-test", "--retries", "0",
                         "--user", "a messages call", "--text", NULL};
    ck_assert_msg(run_cli(&out, &err, msg) == 0, "%s", err);
    ck_assert_msg(strstr(err, "llmcache: MISS") && strstr(err, "(stored)"), "%s", err);
    free(out);
    free(err);
    usleep(1300 * 1000); /* past the 1 s TTL */
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_msg(run_cli(&out, &err, msg) == 0, "%s", err);
    ck_assert_msg(strstr(err, "llmcache: STALE age=") != NULL, "%s", err);
    ck_assert_msg(strstr(out, "echo: a messages call") != NULL, "%s", out);
    free(out);
    free(err);
    end();
}
END_TEST

int main(void)
{
    llmc_init();
    for (int i = 0; i < NB; i++)
        if (backends[i].setup)
            backends[i].up = backends[i].setup(backends[i].url, sizeof backends[i].url) == 0;
    memcpy(backends[5].url, backends[2].url, sizeof backends[5].url);
    backends[5].up = backends[2].up;
    Suite *s = suite_create("stale");
    TCase *tc = tcase_create("stale");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_fresh_hit, 0, NB);
    tcase_add_loop_test(tc, t_sie_provider_faults, 0, NB);
    tcase_add_loop_test(tc, t_sie_timeout, 0, NB);
    tcase_add_loop_test(tc, t_sie_outside_window, 0, NB);
    tcase_add_loop_test(tc, t_sie_stream, 0, NB);
    tcase_add_loop_test(tc, t_swr, 0, NB);
    tcase_add_loop_test(tc, t_real_expiry, 0, NB);
    tcase_add_test(tc, t_cli);
    tcase_add_loop_test(tc, t_responses, 0, 3);
    tcase_add_loop_test(tc, t_messages, 0, 3);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int i = 0; i < NB; i++)
        if (backends[i].teardown)
            backends[i].teardown();
    return failed ? 1 : 0;
}
