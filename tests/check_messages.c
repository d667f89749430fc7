/* The Messages API call type (LLMC_CALL_MESSAGES) through the library's
 * prepared call, against the fake provider server speaking Anthropic's
 * Messages API (and OpenAI chat, for the translated path), over a local
 * and a SQLite cache: key material, native upstream with the API's
 * headers, plain and streamed misses and hits sharing one entry, the
 * event sequence of a replay, tool_use and thinking round trips, and the
 * streams that must store nothing (cut, error event, stopped client). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test_util.h"
#include "llmc_config.h"
#include "messages.h"

#define ANTH_KEY "sk-ant-test-0001"
#define VER_BETA {"anthropic-version", "2023-06-01", "anthropic-beta", "tools-2024-04-04", NULL}

static fp_server *fp;
static llmc_cache *cache;
static llmc_client *client;
static char base[128], oai_base[160];

static void setup_with(const char *url)
{
    fp = fp_start();
    ck_assert_msg(fp != NULL, "fake provider did not start");
    snprintf(base, sizeof base, "%s", fp_url(fp));
    snprintf(oai_base, sizeof oai_base, "%s/v1", fp_url(fp));
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &cache, &e) == LLMC_OK, "%s", e.msg);
    const char *kv[] = {"anthropic.api_key", ANTH_KEY, "anthropic.api_base", base,
                        "openai-compatible.api_base", oai_base, "max_retries", "0", NULL};
    client = tu_client(cache, kv);
}

static void setup(void)
{
    setup_with("local://");
}

static char dbpath[64];

static void setup_sqlite(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/llmc-msg-%d.db", (int)getpid());
    unlink(dbpath);
    char url[128];
    snprintf(url, sizeof url, "sqlite://%s?serializer=binary", dbpath);
    setup_with(url);
}

static void teardown(void)
{
    llmc_client_free(client);
    llmc_cache_close(cache);
    fp_stop(fp);
    if (dbpath[0])
        unlink(dbpath);
}

/* One call: prepare with the API headers, execute (streamed with cb). */
static llmc_status call(const char *body, const char *const *hdrs, llmc_chunk_cb cb, void *ud,
                        llmc_response **out, llmc_err *err)
{
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.api_headers = hdrs;
    llmc_call *k = NULL;
    llmc_status st = llmc_call_prepare(client, LLMC_CALL_MESSAGES, body, LLMC_ZSTR, &o, &k, err);
    if (st != LLMC_OK)
        return st;
    st = llmc_call_execute(k, cb, ud, out, err);
    llmc_call_free(k);
    return st;
}

static char *key_of(const char *body, const char *const *hdrs)
{
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.api_headers = hdrs;
    llmc_call *k = NULL;
    llmc_err err;
    llmc_status st = llmc_call_prepare(client, LLMC_CALL_MESSAGES, body, LLMC_ZSTR, &o, &k, &err);
    ck_assert_msg(st == LLMC_OK, "prepare %s: %s", body, err.msg);
    char *key = strdup(llmc_call_key(k));
    llmc_call_free(k);
    return key;
}

/* The body without "cache": what a hit must give back, besides it. */
static json_object *without_cache(llmc_response *r)
{
    json_object *o = NULL;
    json_object_deep_copy(llmc_response_json(r), &o, NULL);
    json_object_object_del(o, "cache");
    return o;
}

#define PLAIN(text)                                                                          \
    "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":256,\"messages\":[{\"role\":\"user\"," \
    "\"content\":\"" text "\"}]}"
#define STREAMED(text)                                                                       \
    "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":256,\"stream\":true,\"messages\":["  \
    "{\"role\":\"user\",\"content\":\"" text "\"}]}"

/* ------------------------------------------------------------------ */

START_TEST(t_plain_miss_then_hit)
{
    const char *h[] = VER_BETA;
    llmc_response *r1 = NULL, *r2 = NULL;
    llmc_err err;
    ck_assert_int_eq(call(PLAIN("plain hello"), h, NULL, NULL, &r1, &err), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r1));
    ck_assert(llmc_response_cache_stored(r1));
    ck_assert_uint_eq(fp_count(fp), 1);
    /* Native upstream: the path, the API's headers, the key, the body. */
    const fp_request *rq = fp_last(fp);
    ck_assert_str_eq(rq->path, "/v1/messages");
    ck_assert_str_eq(fp_header_get(rq, "anthropic-version"), "2023-06-01");
    ck_assert_str_eq(fp_header_get(rq, "anthropic-beta"), "tools-2024-04-04");
    ck_assert_str_eq(fp_header_get(rq, "x-api-key"), ANTH_KEY);
    json_object *sent = tu_body(rq);
    ck_assert_str_eq(tu_str(sent, "messages.0.content"), "plain hello");
    ck_assert_int_eq(tu_int(sent, "max_tokens"), 256);
    ck_assert_ptr_null(tu_get(sent, "stream"));
    json_object_put(sent);
    json_object *j1 = llmc_response_json(r1);
    ck_assert_str_eq(tu_str(j1, "type"), "message");
    ck_assert_str_eq(tu_str(j1, "content.0.text"), "echo: plain hello");
    ck_assert_str_eq(llmc_response_content(r1), "echo: plain hello");

    ck_assert_int_eq(call(PLAIN("plain hello"), h, NULL, NULL, &r2, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r2));
    ck_assert_uint_eq(fp_count(fp), 1);
    json_object *j2 = llmc_response_json(r2);
    ck_assert(json_object_get_boolean(tu_get(j2, "cache")));
    json_object *b2 = without_cache(r2);
    ck_assert(json_object_equal(j1, b2));
    json_object_put(b2);
    ck_assert_str_eq(llmc_response_cache_key(r1), llmc_response_cache_key(r2));
    llmc_response_free(r1);
    llmc_response_free(r2);
}
END_TEST

START_TEST(t_key_material)
{
    const char *h[] = VER_BETA;
    char *k0 = key_of("{\"model\":\"claude-x\",\"max_tokens\":9,\"system\":[{\"type\":\"text\","
                      "\"text\":\"S\"}],\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":"
                      "\"object\"}}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"text\",\"text\":\"hi\"},{\"type\":\"tool_result\",\"tool_use_id\":\"u1\","
                      "\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]},{\"role\":\"assistant\","
                      "\"content\":[{\"type\":\"tool_use\",\"id\":\"u2\",\"name\":\"t\",\"input\":"
                      "{\"a\":1}}]}]}",
                      h);
    /* cache_control markers (system, tools, message and nested tool_result
     * blocks), stream, metadata, store, member order and number spelling:
     * the same key. */
    const char *same[] = {
        "{\"stream\":true,\"metadata\":{\"user_id\":\"u-9\"},\"store\":true,\"max_tokens\":9.0,"
        "\"model\":\"claude-x\",\"system\":[{\"type\":\"text\",\"text\":\"S\",\"cache_control\":{"
        "\"type\":\"ephemeral\"}}],\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":"
        "\"object\"},\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"hi\",\"cache_control\":{\"type\":\"ephemeral\","
        "\"ttl\":\"1h\"}},{\"type\":\"tool_result\",\"tool_use_id\":\"u1\",\"cache_control\":{"
        "\"type\":\"ephemeral\"},\"content\":[{\"type\":\"text\",\"text\":\"r\",\"cache_control\":"
        "{\"type\":\"ephemeral\"}}]}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"u2\",\"name\":\"t\",\"input\":{\"a\":1},\"cache_control\":{\"type\":"
        "\"ephemeral\"}}]}]}",
        NULL};
    for (int i = 0; same[i]; i++) {
        char *k = key_of(same[i], h);
        ck_assert_msg(strcmp(k, k0) == 0, "same request, other key: %s", same[i]);
        free(k);
    }
    /* What can change the answer: a different key each. A "cache_control"
     * inside a tool's input is the tool's data, not a marker. */
    const char *differ[] = {
        "{\"model\":\"claude-x\",\"max_tokens\":9,\"system\":[{\"type\":\"text\",\"text\":\"S\"}],"
        "\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\"}}],\"messages\":[{\"role\":"
        "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"tool_result\","
        "\"tool_use_id\":\"u1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]},{\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"u2\",\"name\":\"t\",\"input\":{"
        "\"a\":1,\"cache_control\":{\"type\":\"ephemeral\"}}}]}]}",
        "{\"model\":\"claude-x\",\"max_tokens\":9,\"temperature\":0.5,\"system\":[{\"type\":\"text\","
        "\"text\":\"S\"}],\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"u1\",\"content\":[{\"type\":\"text\",\"text\":\"r\"}]}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"u2\",\"name\":\"t\","
        "\"input\":{\"a\":1}}]}]}",
        NULL};
    for (int i = 0; differ[i]; i++) {
        char *k = key_of(differ[i], h);
        ck_assert_msg(strcmp(k, k0) != 0, "different request, same key: %s", differ[i]);
        free(k);
    }
    /* Each of these differs from the plain request only in one part. */
    const char *plain = "{\"model\":\"claude-x\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"q\"}]}";
    const char *b1[] = {"anthropic-version", "2023-06-01", "anthropic-beta", "b2,a1", NULL};
    const char *b2[] = {"anthropic-version", "2023-06-01", "anthropic-beta", " a1 , b2,a1", NULL};
    const char *b3[] = {"anthropic-version", "2023-06-01", "anthropic-beta", "a1", NULL};
    const char *v2[] = {"anthropic-version", "2024-01-01", "anthropic-beta", "b2,a1", NULL};
    char *kb1 = key_of(plain, b1), *kb2 = key_of(plain, b2), *kb3 = key_of(plain, b3),
         *kv2 = key_of(plain, v2), *knone = key_of(plain, NULL);
    ck_assert_str_eq(kb1, kb2); /* order, spaces and repeats of betas mean nothing */
    ck_assert_str_ne(kb1, kb3);
    ck_assert_str_ne(kb1, kv2);
    ck_assert_str_ne(kb1, knone);
    const char *params[] = {"\"top_k\":5", "\"top_p\":0.5", "\"stop_sequences\":[\"x\"]",
                            "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}",
                            "\"tool_choice\":{\"type\":\"any\"}", "\"system\":\"be brief\"",
                            NULL};
    for (int i = 0; params[i]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"claude-x\",\"max_tokens\":9,%s,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"q\"}]}",
                 params[i]);
        char *k = key_of(body, NULL);
        ck_assert_msg(strcmp(k, knone) != 0, "%s did not change the key", params[i]);
        free(k);
    }
    /* The material, as llmcache key --explain shows it. */
    llmc_request *req = NULL;
    llmc_err err;
    ck_assert_int_eq(llmc_request_from_json(plain, LLMC_ZSTR, &req, &err), LLMC_OK);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.api_headers = b2;
    llmc_buf key = LLMC_BUF_INIT, mat = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_client_request_key_ex(client, LLMC_CALL_MESSAGES, req, &o, 0, &key, &mat,
                                                &err),
                     LLMC_OK);
    ck_assert_str_eq(key.data, kb1);
    char want[512];
    snprintf(want, sizeof want,
             "{\"api_base\":\"%s\",\"call\":\"messages\",\"model\":\"claude-x\",\"params\":{"
             "\"anthropic-beta\":[\"a1\",\"b2\"],\"anthropic-version\":\"2023-06-01\","
             "\"max_tokens\":9,\"messages\":[{\"content\":\"q\",\"role\":\"user\"}]},"
             "\"provider\":\"anthropic\",\"v\":1}",
             base);
    ck_assert_str_eq(mat.data, want);
    llmc_buf_free(&key);
    llmc_buf_free(&mat);
    llmc_request_free(req);
    free(k0);
    free(kb1);
    free(kb2);
    free(kb3);
    free(kv2);
    free(knone);
}
END_TEST

/* A tenant's messages keys lie in its namespace, as every call's. */
START_TEST(t_tenant_confined)
{
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.tenant = "team-a";
    o.namespace_ = "sub";
    llmc_call *k = NULL;
    llmc_err err;
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_MESSAGES,
                                       "{\"model\":\"claude-x\",\"max_tokens\":9,\"cache\":{"
                                       "\"key\":\"other:abc\"},\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"q\"}]}",
                                       LLMC_ZSTR, &o, &k, &err),
                     LLMC_OK);
    ck_assert_str_eq(llmc_call_key(k), "team-a:key=other:abc");
    llmc_call_free(k);
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_MESSAGES, PLAIN("q"), LLMC_ZSTR, &o, &k,
                                       &err),
                     LLMC_OK);
    ck_assert(strncmp(llmc_call_key(k), "team-a:sub:", 11) == 0);
    llmc_call_free(k);
}
END_TEST

START_TEST(t_bad_requests)
{
    llmc_call *k = NULL;
    llmc_err err;
    /* A body member named as an API header would be keyed as the header. */
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_MESSAGES,
                                       "{\"model\":\"claude-x\",\"anthropic-version\":\"1\","
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
                                       LLMC_ZSTR, NULL, &k, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "anthropic-version"));
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_MESSAGES, "{\"model\":\"claude-x\"}",
                                       LLMC_ZSTR, NULL, &k, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"messages\""));
    /* Headers a call type does not read are refused, not dropped. */
    const char *h[] = {"x-other", "1", NULL};
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.api_headers = h;
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_MESSAGES, PLAIN("q"), LLMC_ZSTR, &o, &k,
                                       &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "x-other"));
    const char *hv[] = {"anthropic-beta", "x", NULL};
    o.api_headers = hv;
    ck_assert_int_eq(llmc_call_prepare(client, LLMC_CALL_CHAT,
                                       "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"q\"}]}",
                                       LLMC_ZSTR, &o, &k, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "anthropic-beta"));
    ck_assert_uint_eq(fp_count(fp), 0);
}
END_TEST

/* Streamed miss, streamed hit, plain hit: one entry. */
START_TEST(t_stream_then_plain)
{
    const char *h[] = VER_BETA;
    llmc_err err;
    tu_chunks c1 = {NULL, 0}, c2 = {NULL, 0};
    llmc_response *r1 = NULL, *r2 = NULL, *r3 = NULL;
    ck_assert_int_eq(call(STREAMED("stream one"), h, tu_chunk_cb, &c1, &r1, &err), LLMC_OK);
    ck_assert(llmc_response_cache_stored(r1));
    ck_assert_uint_eq(fp_count(fp), 1);
    json_object *sent = tu_body(fp_last(fp));
    ck_assert(json_object_get_boolean(tu_get(sent, "stream")));
    json_object_put(sent);
    char t1[1024], t2[1024];
    tu_types(&c1, t1, sizeof t1, 0);
    ck_assert_str_eq(t1, "message_start content_block_start ping content_block_delta "
                         "content_block_delta content_block_stop message_delta message_stop");
    ck_assert_str_eq(tu_str(llmc_response_json(r1), "content.0.text"), "echo: stream one");

    ck_assert_int_eq(call(STREAMED("stream one"), h, tu_chunk_cb, &c2, &r2, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r2));
    ck_assert_uint_eq(fp_count(fp), 1);
    tu_types(&c2, t2, sizeof t2, 0);
    /* The replay: the same event types in the same order, the text over
     * several deltas (the fake sent two; the replay splits its own). */
    ck_assert_ptr_nonnull(strstr(t2, "message_start content_block_start ping content_block_delta"));
    ck_assert_ptr_nonnull(strstr(t2, "content_block_stop message_delta message_stop"));
    size_t deltas = 0;
    llmc_buf joined = LLMC_BUF_INIT;
    for (size_t i = 0; i < tu_nchunks(&c2); i++) {
        json_object *ev = json_object_array_get_idx(c2.arr, i);
        if (tu_str(ev, "delta.text")) {
            deltas++;
            llmc_buf_puts(&joined, tu_str(ev, "delta.text"));
        }
    }
    ck_assert_uint_ge(deltas, 2);
    ck_assert_str_eq(joined.data, "echo: stream one");
    llmc_buf_free(&joined);
    ck_assert(json_object_get_boolean(tu_get(json_object_array_get_idx(c2.arr, 0),
                                             "message.cache")));
    /* The assembled replay is the stored message. */
    llmc__msg_asm *a = llmc__msg_asm_new();
    for (size_t i = 0; i < tu_nchunks(&c2); i++)
        ck_assert_int_eq(llmc__msg_asm_add(a, json_object_array_get_idx(c2.arr, i)), LLMC_OK);
    ck_assert(llmc__msg_asm_stopped(a));
    json_object *again = llmc__msg_asm_result(a);
    llmc__msg_asm_free(a);
    ck_assert(json_object_equal(again, llmc_response_json(r2)));
    json_object_put(again);

    /* The streamed miss answers a later plain call. */
    ck_assert_int_eq(call(PLAIN("stream one"), h, NULL, NULL, &r3, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r3));
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_str_eq(llmc_response_content(r3), "echo: stream one");
    tu_chunks_free(&c1);
    tu_chunks_free(&c2);
    llmc_response_free(r1);
    llmc_response_free(r2);
    llmc_response_free(r3);
}
END_TEST

/* A plain miss replayed as a stream; llmc_response_replay on a hit. */
START_TEST(t_plain_then_stream)
{
    llmc_err err;
    llmc_response *r1 = NULL, *r2 = NULL;
    tu_chunks c = {NULL, 0}, c3 = {NULL, 0};
    ck_assert_int_eq(call(PLAIN("plain first"), NULL, NULL, NULL, &r1, &err), LLMC_OK);
    ck_assert_int_eq(call(STREAMED("plain first"), NULL, tu_chunk_cb, &c, &r2, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r2));
    ck_assert_uint_eq(fp_count(fp), 1);
    char t[1024];
    tu_types(&c, t, sizeof t, 0);
    ck_assert_ptr_nonnull(strstr(t, "message_start content_block_start ping content_block_delta"));
    ck_assert_ptr_nonnull(strstr(t, "message_delta message_stop"));
    ck_assert_int_eq(llmc_response_replay(r2, tu_chunk_cb, &c3, &err), LLMC_OK);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(c3.arr, 0), "type"), "message_start");
    tu_chunks_free(&c);
    tu_chunks_free(&c3);
    llmc_response_free(r1);
    llmc_response_free(r2);
}
END_TEST

/* tool_use and thinking (with its signature) survive store and replay,
 * streamed and plain. */
START_TEST(t_tool_and_thinking_round_trip)
{
    const char *body_s = "{\"model\":\"claude-x\",\"max_tokens\":2048,\"stream\":true,\"thinking\":"
                         "{\"type\":\"enabled\",\"budget_tokens\":1024},\"tools\":[{\"name\":"
                         "\"lookup\",\"input_schema\":{\"type\":\"object\"}}],\"messages\":[{"
                         "\"role\":\"user\",\"content\":\"find it\"}]}";
    llmc_err err;
    tu_chunks c1 = {NULL, 0}, c2 = {NULL, 0};
    llmc_response *r1 = NULL, *r2 = NULL, *r3 = NULL;
    ck_assert_int_eq(call(body_s, NULL, tu_chunk_cb, &c1, &r1, &err), LLMC_OK);
    json_object *m = llmc_response_json(r1);
    ck_assert_str_eq(tu_str(m, "content.0.type"), "thinking");
    ck_assert_str_eq(tu_str(m, "content.0.thinking"), "thinking about find it");
    ck_assert_str_eq(tu_str(m, "content.0.signature"), "sig_fake01");
    ck_assert_str_eq(tu_str(m, "content.1.text"), "echo: find it");
    ck_assert_str_eq(tu_str(m, "content.2.type"), "tool_use");
    ck_assert_str_eq(tu_str(m, "content.2.input.q"), "x");
    ck_assert_str_eq(tu_str(m, "stop_reason"), "tool_use");
    ck_assert(llmc_response_cache_stored(r1));

    ck_assert_int_eq(call(body_s, NULL, tu_chunk_cb, &c2, &r2, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r2));
    ck_assert_uint_eq(fp_count(fp), 1);
    char t1[2048], t2[2048];
    tu_types(&c1, t1, sizeof t1, 0);
    tu_types(&c2, t2, sizeof t2, 0);
    /* Block by block the same kinds of events; the replay may split the
     * texts into another number of deltas. */
    size_t sig = 0, json_deltas = 0, thinking = 0;
    for (size_t i = 0; i < tu_nchunks(&c2); i++) {
        const char *dt = tu_str(json_object_array_get_idx(c2.arr, i), "delta.type");
        sig += dt && strcmp(dt, "signature_delta") == 0;
        json_deltas += dt && strcmp(dt, "input_json_delta") == 0;
        thinking += dt && strcmp(dt, "thinking_delta") == 0;
    }
    ck_assert_uint_eq(sig, 1);
    ck_assert_uint_ge(json_deltas, 1);
    ck_assert_uint_ge(thinking, 2);
    json_object *b2 = without_cache(r2);
    ck_assert(json_object_equal(b2, llmc_response_json(r1)));
    json_object_put(b2);
    /* The same through the plain call. */
    const char *body_p = "{\"model\":\"claude-x\",\"max_tokens\":2048,\"thinking\":"
                         "{\"type\":\"enabled\",\"budget_tokens\":1024},\"tools\":[{\"name\":"
                         "\"lookup\",\"input_schema\":{\"type\":\"object\"}}],\"messages\":[{"
                         "\"role\":\"user\",\"content\":\"find it\"}]}";
    ck_assert_int_eq(call(body_p, NULL, NULL, NULL, &r3, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r3));
    ck_assert_str_eq(tu_str(llmc_response_json(r3), "content.0.signature"), "sig_fake01");
    tu_chunks_free(&c1);
    tu_chunks_free(&c2);
    llmc_response_free(r1);
    llmc_response_free(r2);
    llmc_response_free(r3);
}
END_TEST

/* Streams that did not complete store nothing. */
START_TEST(t_incomplete_streams_not_stored)
{
    llmc_err err;
    llmc_response *r = NULL;
    tu_chunks c = {NULL, 0};
    /* Upstream cut after three events. */
    fp_cut_stream_next(fp, 3);
    ck_assert_int_ne(call(STREAMED("cut short"), NULL, tu_chunk_cb, &c, &r, &err), LLMC_OK);
    ck_assert_ptr_null(r);
    tu_chunks_free(&c);
    /* An error event in the middle. */
    fp_push_stream(fp, "text/event-stream",
                   "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                   "\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
                   "\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,"
                   "\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":"
                   "\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
                   "\"text\":\"\"}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                   "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    ck_assert_int_eq(call(STREAMED("errored"), NULL, tu_chunk_cb, &c, &r, &err), LLMC_EUPSTREAM);
    ck_assert_ptr_nonnull(strstr(err.msg, "overloaded_error"));
    ck_assert_uint_eq(tu_nchunks(&c), 2);
    tu_chunks_free(&c);
    /* message_delta but no message_stop: not complete either. */
    fp_push_stream(fp, "text/event-stream",
                   "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                   "\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
                   "\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,"
                   "\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":"
                   "\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
                   "\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\","
                   "\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n");
    ck_assert_int_eq(call(STREAMED("no stop"), NULL, tu_chunk_cb, &c, &r, &err), LLMC_ESTREAM);
    tu_chunks_free(&c);
    /* A client that stops reading. */
    c.stop_after = 3;
    ck_assert_int_eq(call(STREAMED("stopped"), NULL, tu_chunk_cb, &c, &r, &err), LLMC_ECANCELED);
    tu_chunks_free(&c);
    size_t before = fp_count(fp);
    /* None of them was stored: each goes upstream again. */
    const char *again[] = {PLAIN("cut short"), PLAIN("errored"), PLAIN("no stop"),
                           PLAIN("stopped"), NULL};
    for (int i = 0; again[i]; i++) {
        ck_assert_int_eq(call(again[i], NULL, NULL, NULL, &r, &err), LLMC_OK);
        ck_assert(!llmc_response_cache_hit(r));
        llmc_response_free(r);
        r = NULL;
    }
    ck_assert_uint_eq(fp_count(fp), before + 4);
}
END_TEST

START_TEST(t_upstream_errors)
{
    llmc_err err;
    llmc_response *r = NULL;
    fp_push_reply(fp, 429,
                  "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                  "\"slow down\"}}",
                  NULL);
    ck_assert_int_eq(call(PLAIN("limited"), NULL, NULL, NULL, &r, &err), LLMC_ERATELIMIT);
    ck_assert_int_eq(err.native, 429);
    ck_assert_ptr_nonnull(strstr(err.msg, "slow down"));
    ck_assert_ptr_null(strstr(err.msg, ANTH_KEY));
    /* A 200 that is not a message is not stored. */
    fp_push_reply(fp, 200, "application/json", "{\"type\":\"completion\",\"x\":1}", NULL);
    ck_assert_int_eq(call(PLAIN("odd"), NULL, NULL, NULL, &r, &err), LLMC_EPROTO);
    ck_assert_int_eq(call(PLAIN("odd"), NULL, NULL, NULL, &r, &err), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    llmc_response_free(r);
}
END_TEST

/* Another provider: translated through its chat adapter, stored and
 * replayed in the Messages shapes. */
START_TEST(t_translated_provider)
{
    const char *plain = "{\"model\":\"openai-compatible/some-model\",\"max_tokens\":64,"
                        "\"system\":\"be brief\",\"stop_sequences\":[\"END\"],\"messages\":[{"
                        "\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                        "\"translated hi\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}";
    llmc_err err;
    llmc_response *r1 = NULL, *r2 = NULL;
    ck_assert_int_eq(call(plain, NULL, NULL, NULL, &r1, &err), LLMC_OK);
    const fp_request *rq = fp_last(fp);
    ck_assert_str_eq(rq->path, "/v1/chat/completions");
    json_object *sent = tu_body(rq);
    ck_assert_str_eq(tu_str(sent, "messages.0.role"), "system");
    ck_assert_str_eq(tu_str(sent, "messages.1.content.0.text"), "translated hi");
    ck_assert_ptr_null(tu_get(sent, "messages.1.content.0.cache_control"));
    ck_assert_str_eq(tu_str(sent, "stop.0"), "END");
    json_object_put(sent);
    json_object *m = llmc_response_json(r1);
    ck_assert_str_eq(tu_str(m, "type"), "message");
    ck_assert_str_eq(tu_str(m, "content.0.type"), "text");
    ck_assert_ptr_nonnull(strstr(tu_str(m, "content.0.text"), "translated hi"));
    ck_assert_str_eq(tu_str(m, "stop_reason"), "end_turn");
    ck_assert_int_ge(tu_int(m, "usage.input_tokens"), 0);
    llmc_response_free(r1);
    r1 = NULL;
    /* Streamed: a hit, replayed as Messages events. */
    const char *streamed = "{\"model\":\"openai-compatible/some-model\",\"max_tokens\":64,"
                           "\"stream\":true,\"system\":\"be brief\",\"stop_sequences\":[\"END\"],"
                           "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"translated hi\"}]}]}";
    tu_chunks c = {NULL, 0};
    ck_assert_int_eq(call(streamed, NULL, tu_chunk_cb, &c, &r2, &err), LLMC_OK);
    ck_assert(llmc_response_cache_hit(r2));
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(c.arr, 0), "type"), "message_start");
    tu_chunks_free(&c);
    /* A streamed miss through the translation. */
    const char *other = "{\"model\":\"openai-compatible/some-model\",\"max_tokens\":64,"
                        "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"translated stream\"}]}";
    llmc_response *r3 = NULL;
    ck_assert_int_eq(call(other, NULL, tu_chunk_cb, &c, &r3, &err), LLMC_OK);
    ck_assert_uint_eq(fp_count(fp), 2);
    char t[2048];
    tu_types(&c, t, sizeof t, 0);
    ck_assert_ptr_nonnull(strstr(t, "message_start content_block_start ping content_block_delta"));
    ck_assert_ptr_nonnull(strstr(t, "content_block_stop message_delta message_stop"));
    ck_assert(llmc_response_cache_stored(r3));
    tu_chunks_free(&c);
    /* What chat cannot carry: a 400 naming it, nothing sent. */
    const char *refused[][2] = {
        {"\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},", "thinking"},
        {"\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],",
         "tools[0].type"},
        {"\"container\":\"c1\",", "container"},
        {NULL, NULL}};
    for (int i = 0; refused[i][0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"openai-compatible/some-model\",\"max_tokens\":64,%s\"messages\":["
                 "{\"role\":\"user\",\"content\":\"q\"}]}",
                 refused[i][0]);
        ck_assert_int_eq(call(body, NULL, NULL, NULL, &r1 /* unused on error */, &err),
                         LLMC_EINVAL);
        ck_assert_msg(strstr(err.msg, refused[i][1]) != NULL, "%s", err.msg);
    }
    ck_assert_int_eq(call("{\"model\":\"openai-compatible/m\",\"max_tokens\":9,\"messages\":[{"
                          "\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{}}]}]}",
                          NULL, NULL, NULL, &r1, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "messages[0].content[0].type \"document\""));
    ck_assert_uint_eq(fp_count(fp), 2);
    llmc_response_free(r2);
    llmc_response_free(r3);
}
END_TEST

static llmc_status sink_cb(void *ud, struct json_object *ev)
{
    return tu_chunk_cb(ud, ev) ? LLMC_ECANCELED : LLMC_OK;
}

/* assemble(replay(m)) == m for blocks the fake does not send. */
START_TEST(t_replay_round_trip)
{
    const char *msg =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"ZZZ\"},{\"type\":\"text\","
        "\"text\":\"caf\\u00e9 \\u00e9t\\u00e9 \\ud83d\\ude00 long enough to be split into "
        "pieces\",\"citations\":[{\"type\":\"char_location\",\"cited_text\":\"x\","
        "\"document_index\":0,\"start_char_index\":0,\"end_char_index\":1}]},{\"type\":"
        "\"server_tool_use\",\"id\":\"srv_1\",\"name\":\"web_search\",\"input\":{\"query\":"
        "\"q\",\"n\":[1,2.5,{\"deep\":null}]}},{\"type\":\"web_search_tool_result\","
        "\"tool_use_id\":\"srv_1\",\"content\":[]},{\"type\":\"tool_use\",\"id\":\"t\","
        "\"name\":\"f\",\"input\":{}}],\"stop_reason\":\"pause_turn\",\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":5,\"output_tokens\":7,\"cache_read_input_tokens\":3,"
        "\"server_tool_use\":{\"web_search_requests\":1}}}";
    json_object *m = tu_parse(msg);
    ck_assert(llmc__msg_storable(m));
    ck_assert(llmc__msg_finished(m));
    tu_chunks c = {NULL, 0};
    ck_assert_int_eq(llmc__msg_replay(m, sink_cb, &c), LLMC_OK);
    llmc__msg_asm *a = llmc__msg_asm_new();
    for (size_t i = 0; i < tu_nchunks(&c); i++)
        ck_assert_int_eq(llmc__msg_asm_add(a, json_object_array_get_idx(c.arr, i)), LLMC_OK);
    json_object *back = llmc__msg_asm_result(a);
    llmc__msg_asm_free(a);
    ck_assert_msg(json_object_equal(m, back), "%s\n!=\n%s", json_object_to_json_string(m),
                  json_object_to_json_string(back));
    json_object_put(back);
    tu_chunks_free(&c);
    /* Not worth storing: only empty text, an error, no type. */
    const char *bad[] = {"{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\"}]}",
                         "{\"type\":\"message\",\"content\":[]}",
                         "{\"type\":\"error\",\"error\":{}}",
                         "{\"type\":\"message\",\"content\":[{\"text\":\"x\"}]}", NULL};
    for (int i = 0; bad[i]; i++) {
        json_object *b = tu_parse(bad[i]);
        ck_assert_msg(!llmc__msg_storable(b), "%s", bad[i]);
        json_object_put(b);
    }
    json_object_put(m);
}
END_TEST

/* What a hit saved, from the Messages API's usage: input_tokens leaves
 * out the prompt-cache tokens, which the prompt counts. */
START_TEST(t_saving_from_usage)
{
    const char *m = "{\"type\":\"message\",\"model\":\"claude-3-5-haiku-latest\",\"content\":[{"
                    "\"type\":\"text\",\"text\":\"x\"}],\"usage\":{\"input_tokens\":10,"
                    "\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":100,"
                    "\"output_tokens\":7}}";
    llmc_saving sv;
    llmc_saving_compute(NULL, m, strlen(m), NULL, 12, &sv);
    ck_assert(sv.has_usage);
    ck_assert_uint_eq(sv.input_tokens, 115);
    ck_assert_uint_eq(sv.cached_input_tokens, 100);
    ck_assert_uint_eq(sv.output_tokens, 7);
    ck_assert_uint_eq(sv.tokens, 122);
    ck_assert_str_eq(sv.model, "claude-3-5-haiku-latest");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("messages");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_plain_miss_then_hit);
    tcase_add_test(tc, t_key_material);
    tcase_add_test(tc, t_bad_requests);
    tcase_add_test(tc, t_tenant_confined);
    tcase_add_test(tc, t_stream_then_plain);
    tcase_add_test(tc, t_plain_then_stream);
    tcase_add_test(tc, t_tool_and_thinking_round_trip);
    tcase_add_test(tc, t_incomplete_streams_not_stored);
    tcase_add_test(tc, t_upstream_errors);
    tcase_add_test(tc, t_translated_provider);
    tcase_add_test(tc, t_replay_round_trip);
    tcase_add_test(tc, t_saving_from_usage);
    suite_add_tcase(s, tc);
#ifdef LLMC_HAVE_SQLITE
    /* The same entries through SQLite and the binary serializer. */
    TCase *tq = tcase_create("sqlite");
    tcase_add_checked_fixture(tq, setup_sqlite, teardown);
    tcase_set_timeout(tq, 60);
    tcase_add_test(tq, t_plain_miss_then_hit);
    tcase_add_test(tq, t_stream_then_plain);
    tcase_add_test(tq, t_tool_and_thinking_round_trip);
    suite_add_tcase(s, tq);
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
