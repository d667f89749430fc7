/* The Responses API call type through the library's prepared call,
 * against the fake provider speaking Responses (plain and typed SSE
 * events) on a real loopback port, over the local and SQLite backends:
 * the row, the key material, the never-cached members, plain and
 * streamed misses and hits sharing one entry, faithful replay (tool
 * calls, reasoning summaries), streams that must not be stored, Azure,
 * translation through another provider's chat adapter and the 400s where
 * it cannot translate, translated streams passed on as they arrive, the
 * stream parser, replayer and chat-chunk converter on their own. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_test_util.h"
#include "calltype_responses.h"

static fp_server *srv;
static llmc_cache *cache;
static llmc_client *cl;
static char base_v1[128];
static char dir[64];

static void begin_url(const char *url)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &cache, &e) == LLMC_OK, "%s", e.msg);
    const char *kv[] = {"openai.api_key", "sk-test-secret-123", "openai.api_base", base_v1,
                        "azure.api_key", "az-secret-456", "azure.api_base", fp_url(srv),
                        "azure.api_version", "2025-04-01-preview",
                        "anthropic.api_key", "ant-secret-789", "anthropic.api_base", fp_url(srv),
                        "max_retries", "0", NULL};
    cl = tu_client(cache, kv);
}

static void begin(void)
{
    begin_url("local://");
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

#define REQ(text, extra) "{\"model\":\"gpt-4o-mini\",\"input\":\"" text "\"" extra "}"

/* One call through the prepared call: the status, the response (caller
 * frees) and, for a stream, the events. */
static llmc_status run(const char *json, tu_chunks *events, llmc_response **out, llmc_err *e)
{
    llmc_call *k = NULL;
    llmc_status st = llmc_call_prepare(cl, LLMC_CALL_RESPONSES, json, LLMC_ZSTR, NULL, &k, e);
    if (st != LLMC_OK)
        return st;
    st = llmc_call_execute(k, events ? tu_chunk_cb : NULL, events, out, e);
    llmc_call_free(k);
    return st;
}

static llmc_response *ok(const char *json, tu_chunks *events)
{
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = run(json, events, &r, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", llmc_status_name(st), e.msg);
    ck_assert_ptr_nonnull(r);
    return r;
}

static char *key_of(const char *json)
{
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_msg(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, json, LLMC_ZSTR, NULL, &k, &e) ==
                      LLMC_OK, "%s", e.msg);
    char *s = strdup(llmc_call_key(k) ? llmc_call_key(k) : "");
    llmc_call_free(k);
    return s;
}

/* "type1 type2 ..." of an event list. */
static void types_of(const tu_chunks *c, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < tu_nchunks(c); i++)
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s", i ? " " : "",
                                 tu_str(json_object_array_get_idx(c->arr, i), "type"));
}

/* Joined "delta" of the events of one type, and how many there were. */
static int join_deltas(const tu_chunks *c, const char *type, char *out, size_t cap)
{
    int n = 0;
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < tu_nchunks(c); i++) {
        json_object *e = json_object_array_get_idx(c->arr, i);
        if (strcmp(tu_str(e, "type"), type) != 0)
            continue;
        n++;
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s", tu_str(e, "delta"));
    }
    return n;
}

static size_t count_type(const tu_chunks *c, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < tu_nchunks(c); i++)
        n += strcmp(tu_str(json_object_array_get_idx(c->arr, i), "type"), type) == 0;
    return n;
}

/* ------------------------------------------------------------------ */

START_TEST(t_row)
{
    llmc_call_type t;
    ck_assert_int_eq(llmc_call_type_for_path("/v1/responses", &t), LLMC_OK);
    ck_assert_int_eq(t, LLMC_CALL_RESPONSES);
    ck_assert_int_eq(llmc_call_type_for_path("/responses", &t), LLMC_OK);
    ck_assert_int_eq(t, LLMC_CALL_RESPONSES);
    llmc_call_type_info info;
    ck_assert_int_eq(llmc_call_type_info_get(LLMC_CALL_RESPONSES, &info, sizeof info), LLMC_OK);
    ck_assert_str_eq(info.name, "responses");
    ck_assert_int_eq(info.streams, 1);
    ck_assert_int_eq(info.typed_events, 1);
    ck_assert_int_eq(llmc_call_type_info_get(LLMC_CALL_CHAT, &info, sizeof info), LLMC_OK);
    ck_assert_int_eq(info.typed_events, 0);
    ck_assert_int_eq(llmc_call_type_parse("responses", &t), LLMC_OK);
    ck_assert_int_eq(t, LLMC_CALL_RESPONSES);
    ck_assert_str_eq(llmc_call_type_name(LLMC_CALL_RESPONSES), "responses");
}
END_TEST

START_TEST(t_validation)
{
    begin();
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(run("{\"model\":\"gpt-4o-mini\"}", NULL, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"input\" is missing"));
    ck_assert_int_eq(run("{\"model\":\"gpt-4o-mini\",\"input\":5}", NULL, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"input\""));
    ck_assert_int_eq(run(REQ("x", ",\"instructions\":[1]"), NULL, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"instructions\""));
    ck_assert_int_eq(run("{\"input\":\"x\"}", NULL, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"model\""));
    ck_assert_uint_eq(fp_count(srv), 0);
    end();
}
END_TEST

START_TEST(t_key_material)
{
    begin();
    char *base = key_of(REQ("hello", ",\"temperature\":0.5"));
    /* Never in the key: stream, metadata, user, store, credentials,
     * member order and number spelling. */
    static const char *const same[] = {
        REQ("hello", ",\"temperature\":0.5,\"stream\":true"),
        REQ("hello", ",\"temperature\":0.50,\"metadata\":{\"a\":\"b\"}"),
        REQ("hello", ",\"temperature\":5e-1,\"user\":\"u1\""),
        REQ("hello", ",\"temperature\":0.5,\"store\":false"),
        REQ("hello", ",\"temperature\":0.5,\"store\":true,\"api_key\":\"sk-other\""),
        "{\"temperature\":0.5,\"input\":\"hello\",\"model\":\"gpt-4o-mini\"}",
        NULL};
    for (int i = 0; same[i]; i++) {
        char *k = key_of(same[i]);
        ck_assert_msg(strcmp(k, base) == 0, "%s keyed apart", same[i]);
        free(k);
    }
    /* Everything that can change the answer. */
    static const char *const differ[] = {
        REQ("hello!", ",\"temperature\":0.5"),
        REQ("hello", ",\"temperature\":0.6"),
        REQ("hello", ",\"temperature\":0.5,\"instructions\":\"be brief\""),
        REQ("hello", ",\"temperature\":0.5,\"tools\":[{\"type\":\"function\",\"name\":\"f\"}]"),
        REQ("hello", ",\"temperature\":0.5,\"tool_choice\":\"required\""),
        REQ("hello", ",\"temperature\":0.5,\"text\":{\"format\":{\"type\":\"json_object\"}}"),
        REQ("hello", ",\"temperature\":0.5,\"reasoning\":{\"effort\":\"high\"}"),
        REQ("hello", ",\"temperature\":0.5,\"max_output_tokens\":100"),
        REQ("hello", ",\"temperature\":0.5,\"top_p\":0.9"),
        REQ("hello", ",\"temperature\":0.5,\"truncation\":\"auto\""),
        REQ("hello", ",\"temperature\":0.5,\"include\":[\"reasoning.encrypted_content\"]"),
        "{\"model\":\"gpt-4o-mini\",\"temperature\":0.5,\"input\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"input_text\",\"text\":\"hello\"},{\"type\":\"input_image\","
        "\"image_url\":\"data:image/png;base64,iVBORw0KGgo=\"}]}]}",
        "{\"model\":\"gpt-4o-mini\",\"temperature\":0.5,\"input\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"input_text\",\"text\":\"hello\"},{\"type\":\"input_image\","
        "\"image_url\":\"data:image/png;base64,iVBORw0KGgp=\"}]}]}",
        "{\"model\":\"gpt-4o\",\"input\":\"hello\",\"temperature\":0.5}",
        NULL};
    char *seen[32];
    int n = 0;
    for (int i = 0; differ[i]; i++) {
        char *k = key_of(differ[i]);
        ck_assert_msg(strcmp(k, base) != 0, "%s keyed with the base", differ[i]);
        for (int j = 0; j < n; j++)
            ck_assert_msg(strcmp(k, seen[j]) != 0, "%s keyed as %d", differ[i], j);
        seen[n++] = k;
    }
    for (int j = 0; j < n; j++)
        free(seen[j]);
    /* The same fields as a chat call are another entry. */
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT,
                                       "{\"model\":\"gpt-4o-mini\",\"input\":\"hello\","
                                       "\"temperature\":0.5,\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"hello\"}]}",
                                       LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    ck_assert_str_ne(llmc_call_key(k), base);
    llmc_call_free(k);
    /* The material names the call type and leaves store out. */
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_RESPONSES;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    json_object *req = tu_parse(REQ("hello", ",\"store\":true,\"include\":[]"));
    in.request = req;
    llmc_buf key = LLMC_BUF_INIT, mat = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_key_compute("v1", &in, &key, &mat, &e), LLMC_OK);
    ck_assert_str_eq(mat.data, "{\"call\":\"responses\",\"model\":\"gpt-4o-mini\",\"params\":"
                               "{\"include\":[],\"input\":\"hello\"},\"provider\":\"openai\","
                               "\"v\":1}");
    llmc_buf_free(&key);
    llmc_buf_free(&mat);
    json_object_put(req);
    free(base);
    end();
}
END_TEST

START_TEST(t_never_cached)
{
    begin();
    static const char *const reqs[] = {
        REQ("follow up", ",\"previous_response_id\":\"resp_abc\""),
        REQ("in a conversation", ",\"conversation\":\"conv_123\""),
        REQ("in a conversation", ",\"conversation\":{\"id\":\"conv_123\"}"), NULL};
    static const char *const why[] = {"previous_response_id", "conversation", "conversation"};
    for (int i = 0; reqs[i]; i++) {
        llmc_call *k = NULL;
        llmc_err e;
        ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, reqs[i], LLMC_ZSTR, NULL,
                                           &k, &e), LLMC_OK);
        ck_assert_int_eq(llmc_call_caching(k), 0);
        ck_assert_ptr_null(llmc_call_key(k));
        ck_assert_str_eq(llmc_call_bypass_reason(k), why[i]);
        llmc_call_free(k);
        size_t before = fp_count(srv);
        for (int round = 0; round < 2; round++) {
            llmc_response *r = ok(reqs[i], NULL);
            ck_assert_int_eq(llmc_response_cache_hit(r), 0);
            ck_assert_int_eq(llmc_response_cache_stored(r), 0);
            llmc_response_free(r);
        }
        /* Both went upstream, passing the member through. */
        ck_assert_uint_eq(fp_count(srv) - before, 2);
        json_object *b = tu_body(fp_last(srv));
        ck_assert_ptr_nonnull(tu_get(b, why[i]));
        json_object_put(b);
    }
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(cache, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.sets, 0);
    /* A null previous_response_id is the same as none. */
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES,
                                       REQ("x", ",\"previous_response_id\":null"), LLMC_ZSTR,
                                       NULL, &k, &e), LLMC_OK);
    ck_assert_int_eq(llmc_call_caching(k), 1);
    ck_assert_ptr_null(llmc_call_bypass_reason(k));
    llmc_call_free(k);
    end();
}
END_TEST

START_TEST(t_plain_miss_hit)
{
    begin();
    llmc_response *r = ok(REQ("plain hello", ",\"store\":false,\"metadata\":{\"t\":\"1\"}"), NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "response");
    ck_assert_str_eq(tu_str(o, "output.0.content.0.text"), "echo: plain hello");
    ck_assert_uint_eq(fp_count(srv), 1);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->path, "/v1/responses");
    ck_assert_str_eq(fp_header_get(q, "Authorization"), "Bearer sk-test-secret-123");
    json_object *b = tu_body(q);
    ck_assert_str_eq(tu_str(b, "model"), "gpt-4o-mini");
    ck_assert_str_eq(tu_str(b, "input"), "plain hello");
    ck_assert_ptr_null(tu_get(b, "stream"));
    ck_assert_ptr_nonnull(tu_get(b, "metadata")); /* passed through, not keyed */
    json_object_put(b);
    llmc_response_free(r);
    /* Second call, store flipped: a hit, marked, upstream untouched. */
    r = ok(REQ("plain hello", ",\"store\":true"), NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    o = llmc_response_json(r);
    ck_assert(json_object_get_boolean(tu_get(o, "cache")));
    ck_assert_str_eq(tu_str(o, "output.0.content.0.text"), "echo: plain hello");
    ck_assert_uint_eq(fp_count(srv), 1);
    llmc_response_free(r);
    end();
}
END_TEST

/* A streamed miss, then a streamed hit: the same event types in the same
 * order, the text over several deltas. */
static void stream_twice(const char *json, const char *delta_type, const char *want)
{
    tu_chunks a = {0}, b = {0};
    size_t before = fp_count(srv);
    llmc_response *r = ok(json, &a);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    r = ok(json, &b);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_uint_eq(fp_count(srv) - before, 1);
    char ta[4096], tb[4096];
    types_of(&a, ta, sizeof ta);
    types_of(&b, tb, sizeof tb);
    ck_assert_str_eq(ta, tb);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(a.arr, 0), "type"), "response.created");
    ck_assert_str_eq(tu_str(json_object_array_get_idx(b.arr, tu_nchunks(&b) - 1), "type"),
                     "response.completed");
    char da[2048], db[2048];
    int na = join_deltas(&a, delta_type, da, sizeof da);
    int nb = join_deltas(&b, delta_type, db, sizeof db);
    ck_assert_int_gt(nb, 1);
    ck_assert_int_eq(na, nb);
    ck_assert_str_eq(da, db);
    ck_assert_str_eq(db, want);
    /* Sequence numbers count from 0 without gaps. */
    for (size_t i = 0; i < tu_nchunks(&b); i++)
        ck_assert_int_eq(tu_int(json_object_array_get_idx(b.arr, i), "sequence_number"), (int)i);
    /* The replay is the original, event for event, but for the hit mark
     * in the response objects. */
    for (size_t i = 0; i < tu_nchunks(&b); i++) {
        json_object *ea = json_object_array_get_idx(a.arr, i),
                    *eb = json_object_array_get_idx(b.arr, i), *rr;
        if (json_object_object_get_ex(eb, "response", &rr))
            json_object_object_del(rr, "cache");
        ck_assert_msg(json_object_equal(ea, eb), "event %zu differs:\n%s\n%s", i,
                      json_object_to_json_string(ea), json_object_to_json_string(eb));
    }
    tu_chunks_free(&a);
    tu_chunks_free(&b);
}

START_TEST(t_stream_replay)
{
    begin();
    stream_twice(REQ("tell me a long story about caches", ",\"stream\":true"),
                 "response.output_text.delta", "echo: tell me a long story about caches");
    end();
}
END_TEST

START_TEST(t_stream_tool_call)
{
    begin();
    stream_twice(REQ("CALL_TOOL please", ",\"stream\":true,\"tools\":[{\"type\":\"function\","
                                         "\"name\":\"get_weather\",\"parameters\":{}}]"),
                 "response.function_call_arguments.delta", "{\"city\":\"Paris\",\"unit\":\"c\"}");
    end();
}
END_TEST

START_TEST(t_stream_reasoning)
{
    begin();
    stream_twice(REQ("THINK about the answer", ",\"stream\":true,\"reasoning\":{\"effort\":"
                                               "\"low\",\"summary\":\"auto\"}"),
                 "response.reasoning_summary_text.delta",
                 "Thinking about: THINK about the answer");
    end();
}
END_TEST

START_TEST(t_plain_and_stream_share)
{
    begin();
    /* A plain miss answers a later stream... */
    llmc_response *r = ok(REQ("shared one", ""), NULL);
    llmc_response_free(r);
    tu_chunks ev = {0};
    r = ok(REQ("shared one", ",\"stream\":true"), &ev);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    char d[512];
    ck_assert_int_gt(join_deltas(&ev, "response.output_text.delta", d, sizeof d), 1);
    ck_assert_str_eq(d, "echo: shared one");
    ck_assert_uint_eq(count_type(&ev, "response.output_item.added"), 1);
    tu_chunks_free(&ev);
    /* ...and a streamed miss a later plain call. */
    r = ok(REQ("shared two", ",\"stream\":true"), &ev);
    llmc_response_free(r);
    tu_chunks_free(&ev);
    r = ok(REQ("shared two", ""), NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "output.0.content.0.text"), "echo: shared two");
    llmc_response_free(r);
    ck_assert_uint_eq(fp_count(srv), 2);
    /* llmc_response_replay of a hit gives the typed events too. */
    r = ok(REQ("shared two", ""), NULL);
    llmc_err e;
    ck_assert_int_eq(llmc_response_replay(r, tu_chunk_cb, &ev, &e), LLMC_OK);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(ev.arr, 0), "type"), "response.created");
    tu_chunks_free(&ev);
    llmc_response_free(r);
    end();
}
END_TEST

/* Streams that must store nothing: the next identical call goes
 * upstream again. */
static void not_stored(const char *json, void (*arm)(void), llmc_status want, int stop_after)
{
    size_t before = fp_count(srv);
    if (arm)
        arm();
    tu_chunks ev = {0};
    ev.stop_after = stop_after;
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = run(json, &ev, &r, &e);
    ck_assert_msg(st == want, "%s: got %s (%s)", json, llmc_status_name(st), e.msg);
    llmc_response_free(r);
    tu_chunks_free(&ev);
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(cache, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.sets, 0);
    ck_assert_uint_eq(fp_count(srv) - before, 1);
}

static void arm_cut(void)
{
    fp_cut_stream_next(srv, 5);
}

static void arm_malformed(void)
{
    fp_malformed_next(srv, 1);
}

START_TEST(t_stream_not_stored)
{
    begin();
    not_stored(REQ("FAIL_STREAM now", ",\"stream\":true"), NULL, LLMC_EUPSTREAM, 0);
    not_stored(REQ("ERROR_EVENT now", ",\"stream\":true"), NULL, LLMC_EUPSTREAM, 0);
    not_stored(REQ("INCOMPLETE now", ",\"stream\":true"), NULL, LLMC_EUPSTREAM, 0);
    not_stored(REQ("cut me off please", ",\"stream\":true"), arm_cut, LLMC_ESTREAM, 0);
    not_stored(REQ("malformed events", ",\"stream\":true"), arm_malformed, LLMC_EPROTO, 0);
    /* The client went away after three events. */
    not_stored(REQ("client leaves early", ",\"stream\":true"), NULL, LLMC_ECANCELED, 3);
    /* Plain answers that are not complete. */
    llmc_response *r = ok(REQ("INCOMPLETE plain", ""), NULL);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    r = ok(REQ("FAIL_STREAM plain", ""), NULL);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(cache, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.sets, 0);
    end();
}
END_TEST

START_TEST(t_upstream_error)
{
    begin();
    fp_fail_next(srv, 1, 400, -1);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(run(REQ("bad one", ""), NULL, &r, &e), LLMC_EBADREQUEST);
    ck_assert_int_eq(e.native, 400);
    ck_assert_ptr_null(strstr(e.msg, "sk-test-secret-123"));
    end();
}
END_TEST

START_TEST(t_azure)
{
    begin();
    llmc_response *r = ok("{\"model\":\"azure/my-deployment\",\"input\":\"azure hi\"}", NULL);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "output.0.content.0.text"), "echo: azure hi");
    llmc_response_free(r);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->path, "/openai/responses");
    ck_assert_str_eq(q->query, "api-version=2025-04-01-preview");
    ck_assert_str_eq(fp_header_get(q, "api-key"), "az-secret-456");
    ck_assert_ptr_null(fp_header_get(q, "Authorization"));
    json_object *b = tu_body(q);
    ck_assert_str_eq(tu_str(b, "model"), "my-deployment");
    json_object_put(b);
    tu_chunks ev = {0};
    r = ok("{\"model\":\"azure/my-deployment\",\"input\":\"azure hi\",\"stream\":true}", &ev);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_uint_eq(fp_count(srv), 1);
    llmc_response_free(r);
    tu_chunks_free(&ev);
    end();
}
END_TEST

START_TEST(t_translated)
{
    begin();
    const char *req = "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"instructions\":"
                      "\"be kind\",\"max_output_tokens\":50,\"input\":[{\"role\":\"user\","
                      "\"content\":[{\"type\":\"input_text\",\"text\":\"via messages\"}]}]}";
    llmc_response *r = ok(req, NULL);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "response");
    ck_assert_str_eq(tu_str(o, "status"), "completed");
    ck_assert_str_eq(tu_str(o, "output.0.type"), "message");
    ck_assert_str_eq(tu_str(o, "output.0.content.0.text"), "echo: via messages");
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->path, "/v1/messages");
    json_object *b = tu_body(q);
    ck_assert_str_eq(tu_str(b, "system"), "be kind");
    ck_assert_int_eq(tu_int(b, "max_tokens"), 50);
    json_object_put(b);
    /* A stream of it is the replay of the answer. */
    tu_chunks ev = {0};
    char sreq[1024];
    snprintf(sreq, sizeof sreq, "%.*s,\"stream\":true}", (int)strlen(req) - 1, req);
    r = ok(sreq, &ev);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    char d[256];
    ck_assert_int_gt(join_deltas(&ev, "response.output_text.delta", d, sizeof d), 1);
    ck_assert_str_eq(d, "echo: via messages");
    llmc_response_free(r);
    tu_chunks_free(&ev);
    ck_assert_uint_eq(fp_count(srv), 1);
    /* What chat cannot carry: a 400 naming the field, nothing sent. */
    static const struct {
        const char *extra, *field;
    } bad[] = {
        {",\"tools\":[{\"type\":\"web_search\"}]", "tools[0].type"},
        {",\"include\":[\"reasoning.encrypted_content\"]", "\"include\""},
        {",\"truncation\":\"auto\"", "\"truncation\""},
        {",\"reasoning\":{\"summary\":\"auto\"}", "reasoning.summary"},
        {",\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":\"low\"}", "text.verbosity"},
        {",\"background\":true", "\"background\""},
        {",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\","
         "\"file_id\":\"f\"}]}]", "input[0].content[0].type"},
        {",\"input\":[{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]}]", "input[0].type"},
    };
    size_t before = fp_count(srv);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char j[1024];
        snprintf(j, sizeof j, "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"input\":\"x\"%s}",
                 bad[i].extra);
        llmc_err e;
        ck_assert_int_eq(run(j, NULL, &r, &e), LLMC_EINVAL);
        ck_assert_msg(strstr(e.msg, bad[i].field) != NULL, "%s: %s", bad[i].extra, e.msg);
    }
    ck_assert_uint_eq(fp_count(srv), before);
    end();
}
END_TEST

START_TEST(t_translated_tools)
{
    begin();
    /* A function tool and a tool-result turn translate both ways. */
    const char *req = "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"tools\":[{\"type\":"
                      "\"function\",\"name\":\"get_weather\",\"parameters\":{\"type\":"
                      "\"object\"}}],\"input\":[{\"role\":\"user\",\"content\":\"weather?\"},"
                      "{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":"
                      "\"get_weather\",\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
                      "\"call_id\":\"call_1\",\"output\":\"sunny\"}]}";
    llmc_response *r = ok(req, NULL);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "output.0.content.0.text"),
                     "echo: tool said sunny");
    llmc_response_free(r);
    json_object *b = tu_body(fp_last(srv));
    ck_assert_str_eq(tu_str(b, "tools.0.name"), "get_weather");
    ck_assert_str_eq(tu_str(b, "messages.1.content.0.type"), "tool_use");
    ck_assert_str_eq(tu_str(b, "messages.2.content.0.type"), "tool_result");
    json_object_put(b);
    end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Translated streams: the chat stream of a provider without a Responses
 * endpoint reaches the caller as Responses events while it arrives. */

#define ANT_REQ(text, extra)                                                                  \
    "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"stream\":true,\"input\":\"" text "\"" \
    extra "}"

/* The stream's shape: "type item_id output_index" per event, a run of
 * deltas of one item counted once (a replay cuts text into its own
 * pieces). */
static void shape_of(const tu_chunks *c, char *out, size_t cap)
{
    size_t used = 0;
    const char *prev_type = "", *prev_item = "";
    out[0] = '\0';
    for (size_t i = 0; i < tu_nchunks(c); i++) {
        json_object *e = json_object_array_get_idx(c->arr, i), *oi;
        const char *t = tu_str(e, "type");
        const char *item = json_object_object_get_ex(e, "item_id", NULL) ? tu_str(e, "item_id")
                         : json_object_object_get_ex(e, "item", NULL)    ? tu_str(e, "item.id")
                                                                         : "-";
        size_t tl = strlen(t);
        int is_delta = tl > 6 && strcmp(t + tl - 6, ".delta") == 0;
        if (is_delta && strcmp(t, prev_type) == 0 && strcmp(item, prev_item) == 0)
            continue;
        prev_type = t;
        prev_item = item;
        int idx = json_object_object_get_ex(e, "output_index", &oi) ? json_object_get_int(oi) : -1;
        used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s %s %d\n", t, item,
                                 idx);
    }
}

/* Sequence numbers count from 0 without gaps. */
static void assert_sequence(const tu_chunks *c)
{
    for (size_t i = 0; i < tu_nchunks(c); i++)
        ck_assert_int_eq(tu_int(json_object_array_get_idx(c->arr, i), "sequence_number"), (int)i);
}

/* The response of the last event (response.completed), without the hit
 * mark. */
static json_object *completed_of(const tu_chunks *c)
{
    json_object *e = json_object_array_get_idx(c->arr, tu_nchunks(c) - 1);
    ck_assert_str_eq(tu_str(e, "type"), "response.completed");
    json_object *r = tu_get(e, "response");
    json_object_object_del(r, "cache");
    return r;
}

typedef struct held_log {
    tu_chunks ev;
    int deltas_before_release;
} held_log;

/* Records the events; at the first text delta, lets the held provider
 * go on. */
static int release_on_delta(void *ud, json_object *ev)
{
    held_log *h = ud;
    if (strcmp(tu_str(ev, "type"), "response.output_text.delta") == 0 &&
        h->deltas_before_release++ == 0)
        fp_release(srv);
    return tu_chunk_cb(&h->ev, ev);
}

/* A streamed miss through Anthropic: the first text delta reaches the
 * caller while the provider holds the rest of its stream, one delta per
 * chat chunk; the stored response replays (the hit) as the same items
 * with the same ids, and answers a plain call. */
START_TEST(t_translated_stream)
{
    begin();
    const char *req = ANT_REQ("stream me incrementally", "");
    /* message_start, content_block_start, ping, the first text delta:
     * then the provider waits until the caller saw that delta. */
    fp_hold_stream_next(srv, 4);
    held_log h = {{0}, 0};
    llmc_call *k = NULL;
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, req, LLMC_ZSTR, NULL, &k, &e),
                     LLMC_OK);
    llmc_status st = llmc_call_execute(k, release_on_delta, &h, &r, &e);
    llmc_call_free(k);
    ck_assert_msg(st == LLMC_OK, "%s", e.msg);
    ck_assert_msg(fp_hold_released(srv), "the first delta arrived only after the provider "
                                         "finished");
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    ck_assert_uint_eq(fp_count(srv), 1);
    ck_assert_str_eq(fp_last(srv)->path, "/v1/messages");
    json_object *body = tu_body(fp_last(srv));
    ck_assert_int_eq(json_object_get_boolean(tu_get(body, "stream")), 1);
    json_object_put(body);
    tu_chunks *a = &h.ev;
    /* The fake provider writes the text in two deltas: two events. */
    char da[256], db[256];
    ck_assert_int_eq(join_deltas(a, "response.output_text.delta", da, sizeof da), 2);
    ck_assert_str_eq(da, "echo: stream me incrementally");
    char ta[4096];
    types_of(a, ta, sizeof ta);
    ck_assert_str_eq(ta, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.output_text.delta "
                         "response.output_text.delta response.output_text.done "
                         "response.content_part.done response.output_item.done "
                         "response.completed");
    assert_sequence(a);
    json_object *first = json_object_array_get_idx(a->arr, 0);
    ck_assert_str_eq(tu_str(first, "response.status"), "in_progress");
    ck_assert_str_eq(tu_str(first, "response.model"), "claude-3-5-haiku-latest");
    ck_assert_uint_eq(json_object_array_length(tu_get(first, "response.output")), 0);
    /* The completed response is the answer returned and stored: its ids
     * are the ones the events carried. */
    json_object *ca = completed_of(a), *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(ca, "id"), tu_str(first, "response.id"));
    ck_assert_str_eq(tu_str(o, "id"), tu_str(first, "response.id"));
    ck_assert_str_eq(tu_str(o, "status"), "completed");
    ck_assert_str_eq(tu_str(o, "output.0.id"), tu_str(json_object_array_get_idx(a->arr, 4),
                                                      "item_id"));
    ck_assert_str_eq(tu_str(o, "output.0.content.0.text"), "echo: stream me incrementally");
    ck_assert_int_gt(tu_int(o, "usage.output_tokens"), 0);
    llmc_response_free(r);

    /* The hit: the replay of the stored response, the same shape. */
    tu_chunks b = {0};
    r = ok(req, &b);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_uint_eq(fp_count(srv), 1);
    char sa[4096], sb[4096];
    shape_of(a, sa, sizeof sa);
    shape_of(&b, sb, sizeof sb);
    ck_assert_str_eq(sa, sb);
    join_deltas(&b, "response.output_text.delta", db, sizeof db);
    ck_assert_str_eq(da, db);
    assert_sequence(&b);
    /* Event for event, but for the delta pieces: the same objects. */
    for (size_t i = 0; i < 4; i++) {
        json_object *ea = json_object_array_get_idx(a->arr, i),
                    *eb = json_object_array_get_idx(b.arr, i), *rr;
        if (json_object_object_get_ex(eb, "response", &rr))
            json_object_object_del(rr, "cache");
        ck_assert_msg(json_object_equal(ea, eb), "event %zu differs:\n%s\n%s", i,
                      json_object_to_json_string(ea), json_object_to_json_string(eb));
    }
    ck_assert(json_object_equal(ca, completed_of(&b)));
    /* A plain call is answered by the same entry. */
    char plain[256];
    snprintf(plain, sizeof plain, "%s", req);
    char *s = strstr(plain, "\"stream\":true,");
    memmove(s, s + 14, strlen(s + 14) + 1);
    r = ok(plain, NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "output.0.content.0.text"),
                     "echo: stream me incrementally");
    llmc_response_free(r);
    ck_assert_uint_eq(fp_count(srv), 1);
    tu_chunks_free(a);
    tu_chunks_free(&b);
    end();
}
END_TEST

/* Text then a tool call: a message item, then a function_call item whose
 * arguments arrive as the provider's pieces; the hit replays both. */
START_TEST(t_translated_stream_tools)
{
    begin();
    const char *req = ANT_REQ("weather now?", ",\"tools\":[{\"type\":\"function\",\"name\":"
                                              "\"get_weather\",\"parameters\":{\"type\":"
                                              "\"object\"}}]");
    tu_chunks a = {0}, b = {0};
    llmc_response *r = ok(req, &a);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "output.0.type"), "message");
    ck_assert_str_eq(tu_str(o, "output.1.type"), "function_call");
    ck_assert_str_eq(tu_str(o, "output.1.name"), "get_weather");
    ck_assert_str_eq(tu_str(o, "output.1.call_id"), "toolu_fake01");
    ck_assert_str_eq(tu_str(o, "output.1.arguments"), "{\"q\": \"x\"}");
    llmc_response_free(r);
    char d[256];
    ck_assert_int_eq(join_deltas(&a, "response.function_call_arguments.delta", d, sizeof d), 2);
    ck_assert_str_eq(d, "{\"q\": \"x\"}");
    char ta[4096];
    types_of(&a, ta, sizeof ta);
    ck_assert_str_eq(ta, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.output_text.delta "
                         "response.output_text.delta response.output_text.done "
                         "response.content_part.done response.output_item.done "
                         "response.output_item.added response.function_call_arguments.delta "
                         "response.function_call_arguments.delta "
                         "response.function_call_arguments.done response.output_item.done "
                         "response.completed");
    assert_sequence(&a);
    json_object *added = json_object_array_get_idx(a.arr, 9);
    ck_assert_int_eq(tu_int(added, "output_index"), 1);
    ck_assert_str_eq(tu_str(added, "item.type"), "function_call");
    ck_assert_str_eq(tu_str(added, "item.status"), "in_progress");
    ck_assert_str_eq(tu_str(added, "item.name"), "get_weather");
    ck_assert_str_eq(tu_str(added, "item.arguments"), "");
    r = ok(req, &b);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    char sa[4096], sb[4096];
    shape_of(&a, sa, sizeof sa);
    shape_of(&b, sb, sizeof sb);
    ck_assert_str_eq(sa, sb);
    /* The function call's output_item.added is the same object both ways
     * (the replay cuts the text into more pieces: it comes later). */
    json_object *hit_added = NULL;
    for (size_t i = 0; i < tu_nchunks(&b) && !hit_added; i++) {
        json_object *x = json_object_array_get_idx(b.arr, i);
        if (strcmp(tu_str(x, "type"), "response.output_item.added") == 0 &&
            tu_int(x, "output_index") == 1)
            hit_added = x;
    }
    ck_assert_ptr_nonnull(hit_added);
    json_object_object_del(added, "sequence_number");
    json_object_object_del(hit_added, "sequence_number");
    ck_assert_msg(json_object_equal(added, hit_added), "%s\n%s", json_object_to_json_string(added),
                  json_object_to_json_string(hit_added));
    ck_assert(json_object_equal(completed_of(&a), completed_of(&b)));
    ck_assert_uint_eq(fp_count(srv), 1);
    tu_chunks_free(&a);
    tu_chunks_free(&b);
    end();
}
END_TEST

static int stop_at_delta(void *ud, json_object *ev)
{
    tu_chunks *c = ud;
    tu_chunk_cb(c, ev);
    return strcmp(tu_str(ev, "type"), "response.output_text.delta") == 0;
}

/* A translated stream that breaks off, or that the caller leaves, stores
 * nothing; what arrived before the cut was passed on. */
START_TEST(t_translated_stream_cut)
{
    begin();
    /* Cut after message_start, content_block_start, ping and one delta. */
    fp_cut_stream_next(srv, 4);
    tu_chunks ev = {0};
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = run(ANT_REQ("cut me short", ""), &ev, &r, &e);
    ck_assert_msg(st == LLMC_ESTREAM, "%s: %s", llmc_status_name(st), e.msg);
    ck_assert_ptr_null(r);
    char d[256];
    ck_assert_int_eq(join_deltas(&ev, "response.output_text.delta", d, sizeof d), 1);
    ck_assert_uint_eq(count_type(&ev, "response.completed"), 0);
    tu_chunks_free(&ev);
    /* The caller stops at the first delta. */
    llmc_call *k = NULL;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_RESPONSES, ANT_REQ("leave early", ""),
                                       LLMC_ZSTR, NULL, &k, &e), LLMC_OK);
    st = llmc_call_execute(k, stop_at_delta, &ev, &r, &e);
    llmc_call_free(k);
    ck_assert_int_eq(st, LLMC_ECANCELED);
    ck_assert_uint_eq(count_type(&ev, "response.output_text.delta"), 1);
    tu_chunks_free(&ev);
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(cache, &s, sizeof s), LLMC_OK);
    ck_assert_uint_eq(s.sets, 0);
    /* Both go upstream again. */
    size_t before = fp_count(srv);
    r = ok(ANT_REQ("cut me short", ""), &ev);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    tu_chunks_free(&ev);
    ck_assert_uint_eq(fp_count(srv) - before, 1);
    end();
}
END_TEST

/* The converter on its own, fed chat chunks as adapters write them: a
 * role-only first chunk, a second choice (not followed), empty and
 * absent content, reasoning, a tool call split over chunks (its id and
 * name first, the arguments in pieces, a second call by index), a
 * usage-only last chunk. */
static int to_chunks(void *ud, json_object *ev)
{
    return tu_chunk_cb(ud, ev);
}

static void feed(llmc__rconv *cv, const char *chunk)
{
    json_object *c = tu_parse(chunk);
    ck_assert_int_eq(llmc__rconv_chunk(cv, c), 0);
    json_object_put(c);
}

START_TEST(t_converter)
{
    json_object *req = tu_parse("{\"model\":\"m\",\"input\":\"hi\",\"temperature\":0.5}");
    tu_chunks ev = {0};
    llmc__rconv *cv = llmc__rconv_new(req, to_chunks, &ev);
    ck_assert_ptr_nonnull(cv);
#define CH(d) "{\"id\":\"c1\",\"created\":7,\"model\":\"m-1\",\"choices\":[" d "]}"
    feed(cv, CH("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"reasoning_content\":\"let me \"}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"reasoning_content\":\"think\"}}"));
    feed(cv, CH("{\"index\":1,\"delta\":{\"content\":\"OTHER CHOICE\"}},"
                "{\"index\":0,\"delta\":{\"content\":\"Hello\"}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"content\":null}}"));
    feed(cv, CH("{\"delta\":{\"content\":\" there\"}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\","
                "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                "{\"arguments\":\"{\\\"a\\\":\"}}]}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                "{\"arguments\":\"1}\"}}]}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\","
                "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}"));
    feed(cv, CH("{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}"));
    feed(cv, "{\"id\":\"c1\",\"created\":7,\"model\":\"m-1\",\"choices\":[],\"usage\":"
             "{\"prompt_tokens\":3,\"completion_tokens\":9}}");
#undef CH
    char t[4096];
    types_of(&ev, t, sizeof t);
    ck_assert_str_eq(t, "response.created response.in_progress "
                        "response.output_item.added response.reasoning_summary_part.added "
                        "response.reasoning_summary_text.delta "
                        "response.reasoning_summary_text.delta "
                        "response.reasoning_summary_text.done "
                        "response.reasoning_summary_part.done response.output_item.done "
                        "response.output_item.added response.content_part.added "
                        "response.output_text.delta response.output_text.delta "
                        "response.output_text.done response.content_part.done "
                        "response.output_item.done "
                        "response.output_item.added response.function_call_arguments.delta "
                        "response.function_call_arguments.delta "
                        "response.function_call_arguments.done response.output_item.done "
                        "response.output_item.added response.function_call_arguments.delta");
    json_object *first = json_object_array_get_idx(ev.arr, 0);
    ck_assert_str_eq(tu_str(first, "response.model"), "m-1");
    ck_assert_int_eq(tu_int(first, "response.created_at"), 7);
    ck_assert_str_eq(tu_str(first, "response.status"), "in_progress");
    ck_assert_double_eq(json_object_get_double(tu_get(first, "response.temperature")), 0.5);
    /* The translation of the assembled answer; the converter gives it the
     * ids and items the events showed. */
    json_object *chat = tu_parse(
        "{\"id\":\"c1\",\"created\":7,\"model\":\"m-1\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"Hello there\",\"reasoning_content\":"
        "\"let me think\",\"tool_calls\":[{\"id\":\"call_a\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}},{\"id\":\"call_b\",\"type\":"
        "\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},\"finish_reason\":"
        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9}}");
    json_object *resp = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc__responses_from_chat(chat, req, &resp, &e), LLMC_OK);
    json_object *plain = NULL;
    ck_assert_int_eq(json_object_deep_copy(resp, &plain, NULL), 0);
    size_t before = tu_nchunks(&ev);
    ck_assert_int_eq(llmc__rconv_finish(cv, resp), 0);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(ev.arr, tu_nchunks(&ev) - 1), "type"),
                     "response.completed");
    ck_assert_uint_eq(tu_nchunks(&ev) - before, 3);
    ck_assert_str_eq(tu_str(resp, "id"), tu_str(first, "response.id"));
    ck_assert_int_eq(tu_int(resp, "usage.total_tokens"), 12);
    /* The same items as the plain translation, but for their ids. */
    json_object *out = tu_get(resp, "output"), *pout = tu_get(plain, "output");
    ck_assert_uint_eq(json_object_array_length(out), 4);
    ck_assert_uint_eq(json_object_array_length(pout), 4);
    for (size_t i = 0; i < 4; i++) {
        json_object *x = json_object_array_get_idx(out, i), *y = json_object_array_get_idx(pout, i);
        json_object_object_del(x, "id");
        json_object_object_del(y, "id");
    }
    ck_assert_msg(json_object_equal(out, pout), "%s\n%s", json_object_to_json_string(out),
                  json_object_to_json_string(pout));
    json_object_put(plain);
    json_object_put(resp);
    json_object_put(chat);
    llmc__rconv_free(cv);
    tu_chunks_free(&ev);

    /* A tool call the stream goes back to after another item began:
     * refused by name, nothing more sent. */
    cv = llmc__rconv_new(req, to_chunks, &ev);
    json_object *c = tu_parse("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
                              "\"x\",\"function\":{\"name\":\"f\"}}]}}]}");
    ck_assert_int_eq(llmc__rconv_chunk(cv, c), 0);
    json_object_put(c);
    c = tu_parse("{\"choices\":[{\"delta\":{\"content\":\"text\"}}]}");
    ck_assert_int_eq(llmc__rconv_chunk(cv, c), 0);
    json_object_put(c);
    c = tu_parse("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                 "{\"arguments\":\"{}\"}}]}}]}");
    size_t n = tu_nchunks(&ev);
    ck_assert_int_ne(llmc__rconv_chunk(cv, c), 0);
    json_object_put(c);
    ck_assert_uint_eq(tu_nchunks(&ev), n);
    ck_assert_int_eq(llmc__rconv_error(cv, &e), LLMC_EPROTO);
    ck_assert_ptr_nonnull(strstr(e.msg, "tool call 0"));
    llmc__rconv_free(cv);
    tu_chunks_free(&ev);

    /* A stream with no chunk at all still opens and completes. */
    cv = llmc__rconv_new(req, to_chunks, &ev);
    json_object *empty = tu_parse("{\"id\":\"r\",\"object\":\"response\",\"status\":"
                                  "\"completed\",\"output\":[]}");
    ck_assert_int_eq(llmc__rconv_finish(cv, empty), 0);
    types_of(&ev, t, sizeof t);
    ck_assert_str_eq(t, "response.created response.in_progress response.completed");
    json_object_put(empty);
    llmc__rconv_free(cv);
    tu_chunks_free(&ev);
    json_object_put(req);
}
END_TEST

START_TEST(t_mock)
{
    begin();
    llmc_response *r = ok(REQ("mocked", ",\"mock_response\":\"a mocked answer\""), NULL);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "output.0.content.0.text"), "a mocked answer");
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    r = ok(REQ("mocked", ",\"mock_response\":\"a mocked answer\""), NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_uint_eq(fp_count(srv), 0);
    end();
}
END_TEST

START_TEST(t_sqlite_entry)
{
    snprintf(dir, sizeof dir, "/tmp/llmc-resp-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof url, "sqlite://%s/c.db", dir);
    begin_url(url);
    tu_chunks ev = {0};
    llmc_response *r = ok(REQ("on disk", ",\"stream\":true"), &ev);
    llmc_response_free(r);
    tu_chunks_free(&ev);
    r = ok(REQ("on disk", ""), NULL);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    /* The entry says which call type it is. */
    llmc_lookup lk = LLMC_LOOKUP_INIT;
    char *k = key_of(REQ("on disk", ""));
    ck_assert_int_eq(llmc_cache_get_entry(cache, k, strlen(k), -1, 0, &lk), LLMC_OK);
    ck_assert_int_eq(lk.entry.call, LLMC_CALL_RESPONSES);
    llmc_lookup_free(&lk);
    free(k);
    end();
    char path[128];
    snprintf(path, sizeof path, "%s/c.db", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The parser and replayer on their own. */

typedef struct sink_log {
    json_object *arr;
} sink_log;

static llmc_status to_log(void *ud, json_object *ev)
{
    sink_log *l = ud;
    json_object_array_add(l->arr, json_object_get(ev));
    return LLMC_OK;
}

START_TEST(t_parser)
{
    llmc__rstream s;
    llmc__rstream_init(&s);
    json_object *ev = NULL;
    llmc_err e;
    static const struct {
        const char *event, *data;
        llmc_status want;
        const char *msg;
    } bad[] = {
        {NULL, "not json", LLMC_EPROTO, "Responses stream event"},
        {NULL, "[1,2]", LLMC_EPROTO, "not a JSON object"},
        {NULL, "{\"x\":1}", LLMC_EPROTO, "no \"type\""},
        {NULL, "{\"type\":\"a\\ndata: {}\"}", LLMC_EPROTO, "control character"},
        {"response.created", "{\"type\":\"response.completed\",\"response\":{}}", LLMC_EPROTO,
         "differs"},
        {NULL, "{\"type\":\"response.completed\"}", LLMC_EPROTO, "without a response"},
        {NULL, "{\"type\":\"error\",\"code\":\"rate_limit\",\"message\":\"slow down\"}",
         LLMC_EUPSTREAM, "rate_limit: slow down"},
        {NULL, "{\"type\":\"response.failed\",\"response\":{\"error\":{\"message\":\"boom\"}}}",
         LLMC_EUPSTREAM, "failed (boom)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmc_status st = llmc__rstream_event(&s, "openai", bad[i].event, bad[i].data,
                                             strlen(bad[i].data), &ev, &e);
        ck_assert_msg(st == bad[i].want, "%zu: %s", i, llmc_status_name(st));
        ck_assert_ptr_null(ev);
        ck_assert_msg(strstr(e.msg, bad[i].msg) != NULL, "%zu: %s", i, e.msg);
    }
    ck_assert_int_eq(s.done, 0);
    const char *done = "{\"type\":\"response.completed\",\"response\":{\"status\":\"completed\"}}";
    ck_assert_int_eq(llmc__rstream_event(&s, "openai", "response.completed", done, strlen(done),
                                         &ev, &e), LLMC_OK);
    ck_assert_ptr_nonnull(ev);
    json_object_put(ev);
    ck_assert_int_eq(s.done, 1);
    ck_assert_str_eq(tu_str(s.final, "status"), "completed");
    ck_assert_int_eq(llmc__rstream_event(&s, "openai", NULL, done, strlen(done), &ev, &e),
                     LLMC_EPROTO);
    llmc__rstream_free(&s);
}
END_TEST

START_TEST(t_replayer)
{
    /* Pieces: after a space, at most 16 bytes, whole UTF-8 sequences. */
    ck_assert_uint_eq(llmc__responses_piece_len("ab cd", 5), 3);
    ck_assert_uint_eq(llmc__responses_piece_len("abcdefghijklmnopqrstu", 21), 16);
    const char *u = "abcdefghijklmno\xc3\xa9z"; /* é straddles byte 16 */
    ck_assert_uint_eq(llmc__responses_piece_len(u, strlen(u)), 17);
    json_object *resp = tu_parse(
        "{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"usage\":{\"x\":1},"
        "\"output\":[{\"id\":\"m1\",\"type\":\"message\",\"status\":\"completed\",\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"refusal\",\"refusal\":\"I can not do that\"}]},"
        "{\"id\":\"ws\",\"type\":\"web_search_call\",\"status\":\"completed\"}]}");
    sink_log l = {json_object_new_array()};
    ck_assert_int_eq(llmc__responses_replay_sink(resp, to_log, &l), LLMC_OK);
    tu_chunks c = {l.arr, 0};
    char t[2048];
    types_of(&c, t, sizeof t);
    ck_assert_str_eq(t, "response.created response.in_progress response.output_item.added "
                        "response.content_part.added response.refusal.delta "
                        "response.refusal.delta response.refusal.delta response.refusal.delta "
                        "response.refusal.delta response.refusal.done "
                        "response.content_part.done response.output_item.done "
                        "response.output_item.added response.output_item.done "
                        "response.completed");
    json_object *first = json_object_array_get_idx(l.arr, 0);
    ck_assert_str_eq(tu_str(first, "response.status"), "in_progress");
    ck_assert_uint_eq(json_object_array_length(tu_get(first, "response.output")), 0);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(l.arr, 2), "item.status"), "in_progress");
    ck_assert_str_eq(tu_str(json_object_array_get_idx(l.arr, 14), "response.status"),
                     "completed");
    json_object_put(l.arr);
    json_object_put(resp);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("responses");
    TCase *tc = tcase_create("responses");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_row);
    tcase_add_test(tc, t_validation);
    tcase_add_test(tc, t_key_material);
    tcase_add_test(tc, t_never_cached);
    tcase_add_test(tc, t_plain_miss_hit);
    tcase_add_test(tc, t_stream_replay);
    tcase_add_test(tc, t_stream_tool_call);
    tcase_add_test(tc, t_stream_reasoning);
    tcase_add_test(tc, t_plain_and_stream_share);
    tcase_add_test(tc, t_stream_not_stored);
    tcase_add_test(tc, t_upstream_error);
    tcase_add_test(tc, t_azure);
    tcase_add_test(tc, t_translated);
    tcase_add_test(tc, t_translated_tools);
    tcase_add_test(tc, t_translated_stream);
    tcase_add_test(tc, t_translated_stream_tools);
    tcase_add_test(tc, t_translated_stream_cut);
    tcase_add_test(tc, t_converter);
    tcase_add_test(tc, t_mock);
    tcase_add_test(tc, t_sqlite_entry);
    tcase_add_test(tc, t_parser);
    tcase_add_test(tc, t_replayer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    llmc_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
