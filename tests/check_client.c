/* The caching completion client over real backends (a table: local, a
 * SQLite file, Redis when built in) and the fake provider server: hits
 * and misses, what changes a key, LiteLLM cache controls in the JSON and
 * through the API, modes, streams (pass-through, assembly, cut-offs,
 * replay), embeddings with partial hits, retries, failures that must not
 * be cached, fail-open, key callbacks and presets, threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test_util.h"
#include "internal.h"
#include "net.h"
#include "support/testsrv.h"

#if LLMC_HAVE_CURL

/* ------------------------------------------------------------------ */
/* Backends under test. Each entry's setup starts what it needs (once per
 * run, in the parent process) and fills in the URL. */

typedef struct backend_case {
    const char *name;
    int (*setup)(struct backend_case *b);
    void (*teardown)(struct backend_case *b);
    char url[512];
    testsrv srv;
    int ready;
} backend_case;

static int local_setup(backend_case *b)
{
    snprintf(b->url, sizeof b->url, "local://");
    return 0;
}

#if LLMC_HAVE_SQLITE
static int sqlite_setup(backend_case *b)
{
    if (testsrv_mkdir(&b->srv, "client-sqlite") != 0)
        return -1;
    snprintf(b->url, sizeof b->url, "sqlite://%s/client.db", b->srv.dir);
    return 0;
}

static void dir_teardown(backend_case *b)
{
    testsrv_stop(&b->srv);
}
#endif

#if LLMC_HAVE_REDIS
static int redis_setup(backend_case *b)
{
    if (testsrv_mkdir(&b->srv, "client-redis") != 0)
        return -1;
    int port = testsrv_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", b->srv.dir, NULL};
    if (testsrv_spawn(&b->srv, argv) != 0 || testsrv_wait_tcp(&b->srv, port, 10000) != 0)
        return -1;
    snprintf(b->url, sizeof b->url, "redis://127.0.0.1:%d/0", port);
    return 0;
}
#endif

static backend_case backends[] = {
    {"local", local_setup, NULL, "", {0}, 0},
#if LLMC_HAVE_SQLITE
    {"sqlite", sqlite_setup, dir_teardown, "", {0}, 0},
#endif
#if LLMC_HAVE_REDIS
    {"redis", redis_setup, dir_teardown, "", {0}, 0},
#endif
};
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

static void backends_up(void)
{
    for (int i = 0; i < N_BACKENDS; i++) {
        backends[i].ready = backends[i].setup(&backends[i]) == 0;
        if (!backends[i].ready)
            fprintf(stderr, "backend %s: setup failed\n", backends[i].name);
    }
}

static void backends_down(void)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (backends[i].teardown)
            backends[i].teardown(&backends[i]);
}

/* ------------------------------------------------------------------ */
/* Per-test context. */

static fp_server *srv;
static llmc_cache *cache;
static llmc_client *cl;
static char base_v1[128];
static const char *bname;

static llmc_cache *open_cache(int i, const char *query)
{
    backend_case *b = &backends[i];
    ck_assert_msg(b->ready, "backend %s not ready", b->name);
    char url[700];
    snprintf(url, sizeof url, "%s%s%s", b->url, query && *query ? (strchr(b->url, '?') ? "&" : "?") : "",
             query ? query : "");
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &c, &e) == LLMC_OK, "%s: %s", url, e.msg);
    return c;
}

/* Start the fake server, open the backend (emptied) and a client. */
static void begin(int i, const char *query, const char *const *extra_kv)
{
    bname = backends[i].name;
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    cache = open_cache(i, query);
    ck_assert_int_eq(llmc_cache_flush_all(cache), LLMC_OK);
    const char *kv[32] = {"openai.api_key", "sk-test-secret-123", "openai.api_base", base_v1,
                          "max_retries", "2", "retry_base_ms", "1", "retry_max_ms", "200"};
    int n = 10;
    for (int k = 0; extra_kv && extra_kv[k]; k++)
        kv[n++] = extra_kv[k];
    kv[n] = NULL;
    cl = tu_client(cache, kv);
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

#define CHAT(content, extra)                                                   \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" content  \
    "\"}]" extra "}"

/* Run a chat call that must succeed; returns the response. */
static llmc_response *chat_ok(const char *json)
{
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = llmc_completion_json(cl, json, LLMC_ZSTR, &r, &e);
    ck_assert_msg(st == LLMC_OK, "[%s] %s: %s", bname, llmc_status_name(st), e.msg);
    return r;
}

/* ------------------------------------------------------------------ */

START_TEST(t_miss_then_hit)
{
    begin(_i, NULL, NULL);
    const char *req = CHAT("What is 2+2?", ",\"temperature\":0");
    llmc_response *r1 = chat_ok(req);
    ck_assert_int_eq(fp_count(srv), 1);
    ck_assert_int_eq(llmc_response_cache_hit(r1), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r1), 1);
    ck_assert_int_eq(llmc_response_cache_age_ms(r1), -1);
    ck_assert_ptr_null(tu_get(llmc_response_json(r1), "cache"));
    const char *key = llmc_response_cache_key(r1);
    ck_assert_ptr_nonnull(key);
    ck_assert_int_eq(strlen(key), 64);

    llmc_response *r2 = chat_ok(req);
    ck_assert_int_eq(fp_count(srv), 1); /* no upstream call */
    ck_assert_int_eq(llmc_response_cache_hit(r2), 1);
    ck_assert_str_eq(llmc_response_cache_key(r2), key);
    ck_assert_int_ge(llmc_response_cache_age_ms(r2), 0);
    ck_assert_int_eq(llmc_response_attempts(r2), 0);
    /* "cache": true at the top level of the text, the rest unchanged. */
    size_t len;
    const char *text = llmc_response_text(r2, &len);
    ck_assert_int_eq(strncmp(text, "{\"cache\":true,", 14), 0);
    ck_assert_int_eq(len, strlen(text));
    json_object *o2 = llmc_response_json(r2);
    ck_assert(json_object_get_boolean(tu_get(o2, "cache")));
    json_object_object_del(o2, "cache");
    ck_assert(json_object_equal(o2, llmc_response_json(r1)));
    ck_assert_str_eq(llmc_response_content(r2), "echo: What is 2+2?");
    ck_assert_str_eq(llmc_response_provider(r2), "openai");
    ck_assert_str_eq(llmc_response_model(r2), "gpt-4o-mini");
    llmc_response_free(r1);
    llmc_response_free(r2);

    /* Same request, other spelling: member order, whitespace, 0 vs 0.0,
     * transport fields, metadata, stream flag: still a hit. */
    llmc_response *r3 = chat_ok("{ \"temperature\" : 0.0, \"messages\":[{\"content\":"
                                "\"What is 2+2?\",\"role\":\"user\"}], \"model\":\"openai/gpt-4o-mini\","
                                "\"timeout\":12,\"metadata\":{\"run\":1},\"api_key\":\"sk-other\","
                                "\"stream\":false}");
    ck_assert_int_eq(llmc_response_cache_hit(r3), 1);
    ck_assert_int_eq(fp_count(srv), 1);
    llmc_response_free(r3);
    end();
}
END_TEST

START_TEST(t_answer_changing_params_miss)
{
    begin(_i, NULL, NULL);
    static const char *const variants[] = {
        CHAT("hello", ""),
        CHAT("hello!", ""),
        CHAT("hello", ",\"temperature\":0.7"),
        CHAT("hello", ",\"temperature\":0.8"),
        CHAT("hello", ",\"max_tokens\":10"),
        CHAT("hello", ",\"top_p\":0.9"),
        CHAT("hello", ",\"seed\":1"),
        CHAT("hello", ",\"stop\":[\"x\"]"),
        CHAT("hello", ",\"response_format\":{\"type\":\"json_object\"}"),
        CHAT("hello", ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]"),
        CHAT("hello", ",\"some_provider_param\":1"),
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}",
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"hello\"}]}",
        ("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
         "\"api_base\":\"BASE2\"}"),
    };
    size_t n = sizeof variants / sizeof variants[0];
    char buf[512];
    for (size_t round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            /* A different api_base (same server, other spelling of the
             * host) is a different endpoint: a different key. */
            const char *v = variants[i];
            char *b2 = strstr(v, "BASE2");
            if (b2) {
                snprintf(buf, sizeof buf, "%.*shttp://localhost:%d/v1%s", (int)(b2 - v), v,
                         fp_port(srv), b2 + 5);
                v = buf;
            }
            llmc_response *r = chat_ok(v);
            ck_assert_msg(llmc_response_cache_hit(r) == (int)round, "[%s] variant %zu round %zu",
                          bname, i, round);
            llmc_response_free(r);
        }
        ck_assert_int_eq(fp_count(srv), n); /* second round: all hits */
    }
    /* user is not part of the key by default */
    llmc_response *r = chat_ok(CHAT("hello", ",\"user\":\"alice\""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_controls_json)
{
    begin(_i, NULL, NULL);
    /* no-store: answered, not stored. The control never goes upstream. */
    llmc_response *r = chat_ok(CHAT("a", ",\"cache\":{\"no-store\":true}"));
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    json_object *b = tu_body(fp_last(srv));
    ck_assert_ptr_null(tu_get(b, "cache"));
    json_object_put(b);
    llmc_response_free(r);
    r = chat_ok(CHAT("a", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_response_free(r);
    /* no-cache: skip the read (upstream again) but store the new answer. */
    r = chat_ok(CHAT("a", ",\"cache\":{\"no-cache\":true}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(fp_count(srv), 3);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    r = chat_ok(CHAT("a", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    /* ttl: the entry expires in that many seconds. */
    r = chat_ok(CHAT("ttl", ",\"cache\":{\"ttl\":100}"));
    int64_t ttl = -5;
    llmc_status ts = llmc_cache_ttl(cache, llmc_response_cache_key(r),
                                    strlen(llmc_response_cache_key(r)), &ttl);
    if (ts != LLMC_ENOTSUP) {
        ck_assert_int_eq(ts, LLMC_OK);
        ck_assert_int_gt(ttl, 0);
        ck_assert_int_le(ttl, 100000);
    }
    llmc_response_free(r);
    /* s-maxage: older entries are not accepted. */
    r = chat_ok(CHAT("old", ""));
    llmc_response_free(r);
    usleep(30000);
    size_t n = fp_count(srv);
    r = chat_ok(CHAT("old", ",\"cache\":{\"s-maxage\":3600}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    r = chat_ok(CHAT("old", ",\"cache\":{\"s-maxage\":0.01}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(fp_count(srv), n + 1);
    llmc_response_free(r);
    /* namespace: its own key space, prefixed. */
    r = chat_ok(CHAT("a", ",\"cache\":{\"namespace\":\"team1\"}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(strncmp(llmc_response_cache_key(r), "team1:", 6), 0);
    llmc_response_free(r);
    r = chat_ok(CHAT("a", ",\"cache\":{\"namespace\":\"team1\"}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    /* use-cache false opts out even in default_on mode. */
    n = fp_count(srv);
    r = chat_ok(CHAT("a", ",\"cache\":{\"use-cache\":false}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_ptr_null(llmc_response_cache_key(r));
    ck_assert_int_eq(fp_count(srv), n + 1);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_controls_api)
{
    begin(_i, NULL, NULL);
    llmc_request *q = llmc_request_new("gpt-4o-mini");
    ck_assert_int_eq(llmc_request_add_message(q, "user", "api"), LLMC_OK);
    ck_assert_int_eq(llmc_request_set_double(q, "temperature", 0.2), LLMC_OK);
    llmc_request_set_no_store(q, 1);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    llmc_request_set_no_store(q, 0);
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    /* The built request and the same JSON share the entry. */
    r = chat_ok("{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"api\"}],"
                "\"temperature\":0.2}");
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    llmc_request_set_no_cache(q, 1);
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    llmc_request_set_no_cache(q, 0);
    ck_assert_int_eq(llmc_request_set_namespace(q, "apins"), LLMC_OK);
    llmc_request_set_ttl(q, 50);
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(strncmp(llmc_response_cache_key(r), "apins:", 6), 0);
    llmc_response_free(r);
    llmc_request_set_s_maxage(q, 0);
    usleep(5000);
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    /* Cache controls set through the "cache" member are validated. */
    ck_assert_int_eq(llmc_request_set_json(q, "cache", "{\"bogus\":1}"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_request_set_json(q, "cache", "{\"no-store\":true}"), LLMC_OK);
    ck_assert_ptr_null(tu_get(llmc_request_json(q), "cache"));
    llmc_request_free(q);
    end();
}
END_TEST

START_TEST(t_mode_default_off)
{
    begin(_i, "mode=default_off", NULL);
    llmc_response *r = chat_ok(CHAT("off", ""));
    r = (llmc_response_free(r), chat_ok(CHAT("off", "")));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_ptr_null(llmc_response_cache_key(r));
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    /* Opt in with use-cache (and LiteLLM's caching: true). */
    r = chat_ok(CHAT("off", ",\"cache\":{\"use-cache\":true}"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    r = chat_ok(CHAT("off", ",\"caching\":true"));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 3);
    end();
}
END_TEST

START_TEST(t_no_secrets_stored)
{
    begin(_i, NULL, NULL);
    llmc_response *r = chat_ok(CHAT("secret?", ",\"api_key\":\"sk-request-secret-999\""));
    const char *key = llmc_response_cache_key(r);
    ck_assert_ptr_null(strstr(key, "sk-"));
    llmc_buf raw = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(cache, key, strlen(key), &raw), LLMC_OK);
    ck_assert(memmem(raw.data, raw.len, "sk-request-secret-999", 21) == NULL);
    ck_assert(memmem(raw.data, raw.len, "sk-test-secret-123", 18) == NULL);
    ck_assert(memmem(raw.data, raw.len, "echo: secret?", 13) != NULL);
    /* The key material shows why: no credentials in it. */
    llmc_request *q = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_request_from_json(CHAT("secret?", ",\"api_key\":\"sk-request-secret-999\""),
                                            LLMC_ZSTR, &q, &e),
                     LLMC_OK);
    llmc_buf k = LLMC_BUF_INIT, mat = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_client_request_key(cl, LLMC_CALL_CHAT, q, 0, &k, &mat, &e), LLMC_OK);
    ck_assert_str_eq(k.data, key);
    ck_assert_ptr_null(strstr(mat.data, "sk-"));
    ck_assert_ptr_nonnull(strstr(mat.data, "\"provider\":\"openai\""));
    ck_assert_ptr_nonnull(strstr(mat.data, "\"model\":\"gpt-4o-mini\""));
    llmc_buf_free(&k);
    llmc_buf_free(&mat);
    llmc_buf_free(&raw);
    llmc_request_free(q);
    llmc_response_free(r);
    /* Failed calls don't quote the key either. */
    fp_push_reply(srv, 401, NULL, "{\"error\":{\"message\":\"Incorrect API key\"}}", NULL);
    r = NULL;
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("x401", ""), LLMC_ZSTR, &r, &e), LLMC_EAUTH);
    ck_assert_ptr_null(strstr(e.msg, "sk-test"));
    end();
}
END_TEST

START_TEST(t_stream_miss_store_hit_replay)
{
    begin(_i, NULL, NULL);
    const char *req = CHAT("tell me a long story about caches", "");
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e) ==
                      LLMC_OK,
                  "%s", e.msg);
    char joined[512];
    int pieces;
    tu_join(&ch, "content", joined, sizeof joined, &pieces);
    ck_assert_str_eq(joined, "echo: tell me a long story about caches");
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    tu_chunks_free(&ch);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 1);
    /* A plain call shares the entry. */
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "echo: tell me a long story about caches");
    ck_assert_int_gt(tu_int(llmc_response_json(r), "usage.total_tokens"), 0);
    llmc_response_free(r);
    /* A streamed hit replays: several content deltas, finish_reason,
     * usage in the last chunk. */
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(fp_count(srv), 1);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    tu_join(&ch, "content", joined, sizeof joined, &pieces);
    ck_assert_str_eq(joined, "echo: tell me a long story about caches");
    ck_assert_int_ge(pieces, 3);
    size_t n = tu_nchunks(&ch);
    json_object *last = json_object_array_get_idx(ch.arr, n - 1);
    ck_assert_str_eq(tu_str(last, "choices.0.finish_reason"), "stop");
    ck_assert_int_gt(tu_int(last, "usage.total_tokens"), 0);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(ch.arr, 0), "choices.0.delta.role"),
                     "assistant");
    tu_chunks_free(&ch);
    llmc_response_free(r);
    /* And a plain miss then a streamed hit. */
    r = chat_ok(CHAT("plain first", ""));
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_stream_json(cl, CHAT("plain first", ""), LLMC_ZSTR,
                                                 tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    tu_join(&ch, "content", joined, sizeof joined, NULL);
    ck_assert_str_eq(joined, "echo: plain first");
    tu_chunks_free(&ch);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_stream_tool_calls_replay)
{
    begin(_i, NULL, NULL);
    const char *req = CHAT("CALL_TOOL please", ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]");
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    json_object *first = json_object_get(llmc_response_json(r));
    tu_chunks_free(&ch);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(fp_count(srv), 1);
    /* Reassemble the replayed chunks: same tool call. */
    llmc__assembler *a = llmc__assembler_new();
    for (size_t i = 0; i < tu_nchunks(&ch); i++)
        llmc__assembler_add(a, json_object_array_get_idx(ch.arr, i));
    json_object *back = llmc__assembler_result(a);
    ck_assert_str_eq(tu_str(back, "choices.0.message.tool_calls.0.function.arguments"),
                     "{\"city\":\"Paris\",\"unit\":\"c\"}");
    ck_assert_str_eq(tu_str(back, "choices.0.message.tool_calls.0.id"), "call_fake1");
    ck_assert_str_eq(tu_str(back, "choices.0.finish_reason"), "tool_calls");
    ck_assert(json_object_equal(back, first));
    json_object_put(back);
    json_object_put(first);
    llmc__assembler_free(a);
    tu_chunks_free(&ch);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_stream_cut_not_stored)
{
    begin(_i, NULL, NULL);
    const char *req = CHAT("this stream will break", "");
    fp_cut_stream_next(srv, 3);
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e);
    ck_assert_msg(st == LLMC_ESTREAM, "%s: %s", llmc_status_name(st), e.msg);
    ck_assert_int_eq(tu_nchunks(&ch), 3); /* passed on before the cut */
    ck_assert_ptr_null(r);
    tu_chunks_free(&ch);
    /* Nothing was cached: the next call goes upstream, completes, and
     * is stored. */
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_response_free(r);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    /* A stream stopped by the caller is not stored either. */
    ch.stop_after = 2;
    ck_assert_int_eq(llmc_completion_stream_json(cl, CHAT("stopped", ""), LLMC_ZSTR, tu_chunk_cb,
                                                 &ch, &r, &e),
                     LLMC_ECANCELED);
    tu_chunks_free(&ch);
    r = chat_ok(CHAT("stopped", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_not_stored_on_error_or_empty)
{
    begin(_i, NULL, NULL);
    llmc_err e;
    llmc_response *r = NULL;
    /* Provider error (after retries): not stored, error returned. */
    fp_fail_next(srv, 3, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("err", ""), LLMC_ZSTR, &r, &e), LLMC_EUPSTREAM);
    ck_assert_int_eq(fp_count(srv), 3);
    /* Malformed JSON: not stored. */
    fp_malformed_next(srv, 1);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("err", ""), LLMC_ZSTR, &r, &e), LLMC_EPROTO);
    /* Empty answer: returned but not stored. */
    fp_push_reply(srv, 200, NULL,
                  "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
                  "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
                  "\"finish_reason\":\"stop\"}]}",
                  NULL);
    r = chat_ok(CHAT("err", ""));
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    fp_push_reply(srv, 200, NULL, "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[]}",
                  NULL);
    r = chat_ok(CHAT("err", ""));
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    /* Finally a real answer is stored and then hit. */
    size_t n = fp_count(srv);
    r = chat_ok(CHAT("err", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    r = chat_ok(CHAT("err", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(fp_count(srv), n + 1);
    llmc_response_free(r);
    end();
}
END_TEST

START_TEST(t_foreign_entry_is_miss)
{
    /* Something else stored at the request's key (a valid envelope whose
     * body is not a response): a miss, answered upstream, overwritten. */
    begin(_i, NULL, NULL);
    const char *req = CHAT("foreign", "");
    llmc_request *q = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_request_from_json(req, LLMC_ZSTR, &q, &e), LLMC_OK);
    llmc_buf k = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_client_request_key(cl, LLMC_CALL_CHAT, q, 0, &k, NULL, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_put_entry(cache, k.data, k.len, LLMC_CALL_CHAT, "not json", 8,
                                          LLMC_TTL_NEVER, 0),
                     LLMC_OK);
    llmc_response *r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_str_eq(llmc_response_content(r), "echo: foreign");
    llmc_response_free(r);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    /* Raw garbage (no envelope) at the key: also a miss. */
    ck_assert_int_eq(llmc_cache_set(cache, k.data, k.len, "garbage", 7, LLMC_TTL_NEVER), LLMC_OK);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_buf_free(&k);
    llmc_request_free(q);
    end();
}
END_TEST

START_TEST(t_upstream_time_stored)
{
    /* A miss stores how long the upstream call took; the hit's lookup
     * returns it (what the hit saved). */
    begin(_i, NULL, NULL);
    const char *req = CHAT("timed", "");
    llmc_response *r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    llmc_request *q = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_request_from_json(req, LLMC_ZSTR, &q, &e), LLMC_OK);
    llmc_buf k = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_client_request_key(cl, LLMC_CALL_CHAT, q, 0, &k, NULL, &e), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(cache, k.data, k.len, -1, 0, &l), LLMC_OK);
    ck_assert_int_ge(l.entry.upstream_ms, 1);
    llmc_lookup_free(&l);
    llmc_buf_free(&k);
    llmc_request_free(q);
    end();
}
END_TEST

START_TEST(t_retries)
{
    begin(_i, NULL, NULL);
    llmc_err e;
    llmc_response *r = NULL;
    /* Two 500s then success: three attempts, one answer. */
    fp_fail_next(srv, 2, 500, -1);
    r = chat_ok(CHAT("retry", ""));
    ck_assert_int_eq(llmc_response_attempts(r), 3);
    ck_assert_int_eq(fp_count(srv), 3);
    llmc_response_free(r);
    /* 429 with Retry-After: 0 is retried. */
    fp_fail_next(srv, 1, 429, 0);
    r = chat_ok(CHAT("retry 429", ""));
    ck_assert_int_eq(llmc_response_attempts(r), 2);
    llmc_response_free(r);
    /* Retries stop at the limit. */
    size_t n = fp_count(srv);
    fp_fail_next(srv, 10, 503, -1);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("retry more", ""), LLMC_ZSTR, &r, &e),
                     LLMC_EUPSTREAM);
    ck_assert_int_eq(fp_count(srv), n + 3);
    ck_assert_int_eq(e.native, 503);
    fp_reset(srv);
    /* A Retry-After longer than we may wait ends the retries at once. */
    fp_fail_next(srv, 10, 429, 30);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("retry later", ""), LLMC_ZSTR, &r, &e),
                     LLMC_ERATELIMIT);
    ck_assert_int_eq(fp_count(srv), 1);
    ck_assert_ptr_nonnull(strstr(e.msg, "retry after 30000 ms"));
    fp_reset(srv);
    /* 4xx other than 429 are not retried. */
    fp_push_reply(srv, 400, NULL, "{\"error\":{\"message\":\"bad\"}}", NULL);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("no retry", ""), LLMC_ZSTR, &r, &e),
                     LLMC_EBADREQUEST);
    ck_assert_int_eq(fp_count(srv), 1);
    /* The request's num_retries wins. */
    fp_fail_next(srv, 10, 500, -1);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("r", ",\"num_retries\":0"), LLMC_ZSTR, &r, &e),
                     LLMC_EUPSTREAM);
    ck_assert_int_eq(fp_count(srv), 2);
    end();
}
END_TEST

START_TEST(t_timeouts_and_connection_errors)
{
    const char *kv[] = {"timeout_ms", "300", NULL};
    begin(_i, NULL, kv);
    llmc_err e;
    llmc_response *r = NULL;
    fp_set_delay_ms(srv, 2000);
    ck_assert_int_eq(llmc_completion_json(cl, CHAT("slow", ",\"max_retries\":0"), LLMC_ZSTR, &r, &e),
                     LLMC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(e.msg, "/v1/chat/completions"));
    fp_set_delay_ms(srv, 0);
    /* Nothing listening: connection refused, retried, then ECONN. */
    int port = testsrv_free_port();
    char req[256];
    snprintf(req, sizeof req,
             "{\"model\":\"gpt-4o\",\"api_base\":\"http://127.0.0.1:%d/v1\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"x\"}]}",
             port);
    ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_ECONN);
    ck_assert_ptr_nonnull(strstr(e.msg, "after 3 attempts"));
    end();
}
END_TEST

START_TEST(t_connection_reuse)
{
    begin(_i, NULL, NULL);
    for (int i = 0; i < 5; i++) {
        char req[200];
        snprintf(req, sizeof req, CHAT("reuse %d", ""), i);
        llmc_response *r = chat_ok(req);
        llmc_response_free(r);
    }
    ck_assert_int_eq(fp_count(srv), 5);
    ck_assert_int_eq(fp_connections(srv), 1);
    end();
}
END_TEST

START_TEST(t_text_completion_cached)
{
    begin(_i, NULL, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    const char *req = "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Once upon\",\"max_tokens\":5}";
    ck_assert_int_eq(llmc_text_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_text_completion_json(cl, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "echo: Once upon");
    llmc_response_free(r);
    /* A chat call with the same fields is another entry (call type). */
    ck_assert_int_eq(fp_count(srv), 1);
    end();
}
END_TEST

START_TEST(t_embeddings_partial_hits)
{
    begin(_i, NULL, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_embedding_json(cl,
                                      "{\"model\":\"text-embedding-3-small\",\"input\":[\"alpha\","
                                      "\"beta\",\"gamma\"]}",
                                      LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    ck_assert_int_eq(fp_count(srv), 1);
    json_object *first = json_object_get(llmc_response_json(r));
    ck_assert_int_eq(llmc_response_item_count(r), 3);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    ck_assert_str_ne(llmc_response_item_key(r, 0), llmc_response_item_key(r, 1));
    int64_t first_tokens = tu_int(first, "usage.prompt_tokens");
    ck_assert_int_gt(first_tokens, 0);
    llmc_response_free(r);

    /* beta and alpha cached, delta new: only delta goes upstream. */
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\",\"input\":[\"beta\","
                                         "\"delta\",\"alpha\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(fp_count(srv), 2);
    json_object *sent = tu_body(fp_last(srv));
    ck_assert_str_eq(json_object_to_json_string_ext(tu_get(sent, "input"), JSON_C_TO_STRING_PLAIN),
                     "[\"delta\"]");
    json_object_put(sent);
    json_object *o = llmc_response_json(r);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_item_hit(r, 0), 1);
    ck_assert_int_eq(llmc_response_item_hit(r, 1), 0);
    ck_assert_int_eq(llmc_response_item_hit(r, 2), 1);
    ck_assert_ptr_null(tu_get(o, "cache"));
    for (int i = 0; i < 3; i++) {
        char p[32];
        snprintf(p, sizeof p, "data.%d.index", i);
        ck_assert_int_eq(tu_int(o, p), i);
    }
    ck_assert(json_object_equal(tu_get(o, "data.0.embedding"), tu_get(first, "data.1.embedding")));
    ck_assert(json_object_equal(tu_get(o, "data.2.embedding"), tu_get(first, "data.0.embedding")));
    ck_assert(!json_object_equal(tu_get(o, "data.1.embedding"), tu_get(o, "data.0.embedding")));
    /* Usage: the fresh item's tokens plus the cached items' share. */
    ck_assert_int_gt(tu_int(o, "usage.prompt_tokens"), 0);
    ck_assert_int_eq(tu_int(o, "usage.prompt_tokens"), tu_int(o, "usage.total_tokens"));
    llmc_response_free(r);

    /* All cached: no upstream, "cache": true. A single string input is
     * the same entry as that item in a list. */
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\",\"input\":\"gamma\"}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(fp_count(srv), 2);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    o = llmc_response_json(r);
    ck_assert(json_object_get_boolean(tu_get(o, "cache")));
    ck_assert(json_object_equal(tu_get(o, "data.0.embedding"), tu_get(first, "data.2.embedding")));
    llmc_response_free(r);
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\",\"input\":[\"gamma\","
                                         "\"alpha\",\"beta\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(fp_count(srv), 2);
    ck_assert_int_eq(tu_int(llmc_response_json(r), "usage.prompt_tokens"), first_tokens);
    llmc_response_free(r);
    /* Another model or dimensions: other entries. */
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\",\"dimensions\":4,"
                                         "\"input\":[\"alpha\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(fp_count(srv), 3);
    llmc_response_free(r);
    /* A wrong item count from upstream is a protocol error, nothing stored. */
    fp_push_reply(srv, 200, NULL,
                  "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                  "\"embedding\":[1,2]}],\"model\":\"m\"}",
                  NULL);
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\",\"input\":[\"x1\","
                                         "\"x2\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_EPROTO);
    json_object_put(first);
    end();
}
END_TEST

START_TEST(t_mock_cached)
{
    begin(_i, NULL, NULL);
    const char *req = "{\"model\":\"mock/demo\",\"mock_response\":\"Cached hello\",\"messages\":[{"
                      "\"role\":\"user\",\"content\":\"hi\"}]}";
    llmc_response *r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "Cached hello");
    llmc_response_free(r);
    /* A different mock_response is a different answer: a different key. */
    r = chat_ok("{\"model\":\"mock/demo\",\"mock_response\":\"Other\",\"messages\":[{\"role\":"
                "\"user\",\"content\":\"hi\"}]}");
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_str_eq(llmc_response_content(r), "Other");
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 0);
    end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Keys: callback, preset, named strategy. */

static llmc_status my_key(void *ud, const llmc_key_input *in, llmc_buf *key)
{
    int *calls = ud;
    (*calls)++;
    /* Key only on provider + model: every prompt shares the answer. */
    return llmc_buf_printf(key, "custom:%s:%s", in->provider, in->model);
}

START_TEST(t_key_fn_and_preset)
{
    begin(_i, NULL, NULL);
    int calls = 0;
    llmc_client_set_key_fn(cl, my_key, &calls);
    llmc_response *r = chat_ok(CHAT("one", ""));
    ck_assert_str_eq(llmc_response_cache_key(r), "custom:openai:gpt-4o-mini");
    llmc_response_free(r);
    r = chat_ok(CHAT("two", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "echo: one");
    llmc_response_free(r);
    ck_assert_int_eq(calls, 2);
    llmc_client_set_key_fn(cl, NULL, NULL);
    /* Preset key through the JSON and through the API. */
    r = chat_ok(CHAT("three", ",\"cache\":{\"key\":\"my-preset\"}"));
    ck_assert_str_eq(llmc_response_cache_key(r), "my-preset");
    llmc_response_free(r);
    llmc_request *q = llmc_request_new("gpt-4o-mini");
    llmc_request_add_message(q, "user", "four");
    llmc_request_set_cache_key(q, "my-preset");
    llmc_err e;
    ck_assert_int_eq(llmc_completion(cl, q, &r, &e), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "echo: three");
    llmc_response_free(r);
    llmc_request_free(q);
    end();
}
END_TEST

static llmc_status prefix_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *material,
                                  llmc_err *err)
{
    llmc_buf k = LLMC_BUF_INIT;
    llmc_status st = llmc_key_compute("v1", in, &k, material, err);
    if (st == LLMC_OK)
        st = llmc_buf_printf(key, "pfx-%s", k.data);
    llmc_buf_free(&k);
    return st;
}

static const llmc_key_strategy_ops prefix_strategy = {
    LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "client-test-prefix", "v1 with a prefix"),
    prefix_compute,
};

START_TEST(t_named_key_strategy)
{
    llmc_err e;
    llmc_init();
    llmc_register_key_strategy(&prefix_strategy, &e);
    const char *kv[] = {"key_strategy", "client-test-prefix", NULL};
    begin(_i, NULL, kv);
    llmc_response *r = chat_ok(CHAT("strategy", ""));
    ck_assert_int_eq(strncmp(llmc_response_cache_key(r), "pfx-", 4), 0);
    llmc_response_free(r);
    r = chat_ok(CHAT("strategy", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    end();
    /* And chosen by the cache's own option. */
    begin(_i, "key_strategy=client-test-prefix", NULL);
    r = chat_ok(CHAT("strategy", ""));
    ck_assert_int_eq(strncmp(llmc_response_cache_key(r), "pfx-", 4), 0);
    llmc_response_free(r);
    end();
}
END_TEST


START_TEST(t_memo_exact)
{
    /* Repeated request texts take the memo path; anything the key depends
     * on outside the text (here OPENAI_BASE_URL) is re-checked. */
    srv = fp_start();
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    cache = open_cache(_i, NULL);
    ck_assert_int_eq(llmc_cache_flush_all(cache), LLMC_OK);
    const char *kv[] = {"openai.api_key", "k", NULL};
    cl = tu_client(cache, kv);
    bname = backends[_i].name;
    setenv("OPENAI_BASE_URL", base_v1, 1);
    const char *req = CHAT("memo", "");
    llmc_response *r = chat_ok(req);
    char key1[128];
    snprintf(key1, sizeof key1, "%s", llmc_response_cache_key(r));
    llmc_response_free(r);
    for (int i = 0; i < 3; i++) {
        r = chat_ok(req);
        ck_assert_int_eq(llmc_response_cache_hit(r), 1);
        ck_assert_str_eq(llmc_response_cache_key(r), key1);
        ck_assert_str_eq(llmc_response_model(r), "gpt-4o-mini");
        ck_assert_str_eq(llmc_response_provider(r), "openai");
        llmc_response_free(r);
    }
    ck_assert_int_eq(fp_count(srv), 1);
    /* Same text, other endpoint through the environment: another key. */
    char other[160];
    snprintf(other, sizeof other, "http://localhost:%d/v1", fp_port(srv));
    setenv("OPENAI_BASE_URL", other, 1);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_str_ne(llmc_response_cache_key(r), key1);
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    /* A deleted entry is a miss even though the text is memoised. */
    setenv("OPENAI_BASE_URL", base_v1, 1);
    ck_assert_int_eq(llmc_cache_del(cache, key1, strlen(key1)), LLMC_OK);
    r = chat_ok(req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    /* A streamed call of a memoised text replays. */
    tu_chunks ch = {0};
    llmc_err e;
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    char joined[128];
    tu_join(&ch, "content", joined, sizeof joined, NULL);
    ck_assert_str_eq(joined, "echo: memo");
    tu_chunks_free(&ch);
    llmc_response_free(r);
    /* A key callback set later bypasses the memo. */
    int calls = 0;
    llmc_client_set_key_fn(cl, my_key, &calls);
    r = chat_ok(req);
    ck_assert_int_eq(calls, 1);
    llmc_response_free(r);
    unsetenv("OPENAI_BASE_URL");
    end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads sharing one client and cache. */

typedef struct worker {
    int id;
    int ok;
    int hits;
} worker;

static void *work(void *p)
{
    worker *w = p;
    for (int i = 0; i < 20; i++) {
        char req[200], want[64];
        snprintf(req, sizeof req, CHAT("thread prompt %d", ""), i % 5);
        snprintf(want, sizeof want, "echo: thread prompt %d", i % 5);
        llmc_response *r = NULL;
        llmc_err e;
        if (llmc_completion_json(cl, req, LLMC_ZSTR, &r, &e) == LLMC_OK) {
            const char *c = llmc_response_content(r);
            if (c && strcmp(c, want) == 0)
                w->ok++;
            w->hits += llmc_response_cache_hit(r);
        }
        llmc_response_free(r);
    }
    return NULL;
}

START_TEST(t_threads)
{
    begin(_i, NULL, NULL);
    pthread_t t[4];
    worker w[4] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    int ok = 0, hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
        hits += w[i].hits;
    }
    ck_assert_int_eq(ok, 80);
    /* Each prompt goes upstream at most once per thread that missed it at
     * the same moment; the rest are hits. */
    ck_assert_int_le(fp_count(srv), 20);
    ck_assert_int_eq(hits + (int)fp_count(srv), 80);
    end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fail-open: a backend that always fails never fails a completion. */

static llmc_status broken_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    LLMC_UNUSED(cfg);
    LLMC_UNUSED(err);
    *ctx = (void *)1;
    return LLMC_OK;
}
static void broken_close(void *ctx)
{
    LLMC_UNUSED(ctx);
}
static llmc_status broken_get(void *ctx, const char *k, size_t kl, llmc_buf *out, llmc_err *err)
{
    LLMC_UNUSED(ctx);
    LLMC_UNUSED(k);
    LLMC_UNUSED(kl);
    LLMC_UNUSED(out);
    return llmc_err_set(err, LLMC_ECONN, 111, "backend down (test)");
}
static llmc_status broken_set(void *ctx, const char *k, size_t kl, const void *v, size_t vl,
                              int64_t ttl, llmc_err *err)
{
    LLMC_UNUSED(ctx);
    LLMC_UNUSED(k);
    LLMC_UNUSED(kl);
    LLMC_UNUSED(v);
    LLMC_UNUSED(vl);
    LLMC_UNUSED(ttl);
    return llmc_err_set(err, LLMC_ECONN, 111, "backend down (test)");
}
static llmc_status broken_del(void *ctx, const char *k, size_t kl, llmc_err *err)
{
    return broken_get(ctx, k, kl, NULL, err);
}

static const llmc_backend_ops broken_backend = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "client-broken", "always fails"),
    .caps = LLMC_CAP_THREAD_SAFE | LLMC_CAP_REMOTE,
    .open = broken_open,
    .close = broken_close,
    .get = broken_get,
    .set = broken_set,
    .del = broken_del,
};

START_TEST(t_fail_open)
{
    llmc_err e;
    llmc_init();
    llmc_register_backend(&broken_backend, &e);
    srv = fp_start();
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    ck_assert_int_eq(llmc_cache_open("client-broken://", NULL, &cache, &e), LLMC_OK);
    const char *kv[] = {"openai.api_key", "k", "openai.api_base", base_v1, NULL};
    cl = tu_client(cache, kv);
    bname = "broken";
    for (int i = 0; i < 3; i++) {
        llmc_response *r = chat_ok(CHAT("still works", ""));
        ck_assert_int_eq(llmc_response_cache_hit(r), 0);
        ck_assert_str_eq(llmc_response_content(r), "echo: still works");
        llmc_response_free(r);
    }
    ck_assert_int_eq(fp_count(srv), 3);
    llmc_stats st;
    llmc_cache_stats(cache, &st, sizeof st);
    ck_assert_uint_gt(st.errors + st.breaker_skips, 0);
    end();
}
END_TEST

START_TEST(t_no_cache_attached)
{
    srv = fp_start();
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    const char *kv[] = {"openai.api_key", "k", "openai.api_base", base_v1, NULL};
    cl = tu_client(NULL, kv);
    cache = NULL;
    bname = "none";
    llmc_response *r = chat_ok(CHAT("nocache", ""));
    llmc_response_free(r);
    r = chat_ok(CHAT("nocache", ""));
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_ptr_null(llmc_response_cache_key(r));
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 2);
    end();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("backends");
    tcase_add_unchecked_fixture(tc, backends_up, backends_down);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_miss_then_hit, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_answer_changing_params_miss, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_controls_json, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_controls_api, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_mode_default_off, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_no_secrets_stored, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_stream_miss_store_hit_replay, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_stream_tool_calls_replay, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_stream_cut_not_stored, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_not_stored_on_error_or_empty, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_text_completion_cached, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_embeddings_partial_hits, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_mock_cached, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_key_fn_and_preset, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_named_key_strategy, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_threads, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_memo_exact, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_foreign_entry_is_miss, 0, N_BACKENDS);
    tcase_add_loop_test(tc, t_upstream_time_stored, 0, N_BACKENDS);
    suite_add_tcase(s, tc);
    /* HTTP behaviour does not depend on the backend: local only. */
    TCase *th = tcase_create("http");
    tcase_add_unchecked_fixture(th, backends_up, backends_down);
    tcase_set_timeout(th, 120);
    tcase_add_loop_test(th, t_retries, 0, 1);
    tcase_add_loop_test(th, t_timeouts_and_connection_errors, 0, 1);
    tcase_add_loop_test(th, t_connection_reuse, 0, 1);
    tcase_add_test(th, t_fail_open);
    tcase_add_test(th, t_no_cache_attached);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    /* Backends print their own diagnostics; the credentials of the
     * developer's shell must not leak into tests. */
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("LLMCACHE_URL");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#else /* !LLMC_HAVE_CURL */

int main(void)
{
    /* Built without libcurl: no HTTP providers to test (77 = skipped). */
    return 77;
}

#endif
