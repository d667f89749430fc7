/* Stream plumbing without network: the SSE and NDJSON incremental
 * parsers (fed in every possible split), the chunk assembler, the replay
 * of a stored response and their round trip, retry timing helpers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_test_util.h"
#include "net.h"

typedef struct events {
    char log[4096];
    size_t n;
    int stop_at; /* return an error at this event (1-based), 0 = never */
} events;

static llmc_status record(void *ud, const char *event, const char *data, size_t len)
{
    events *ev = ud;
    ev->n++;
    size_t used = strlen(ev->log);
    snprintf(ev->log + used, sizeof ev->log - used, "[%s|%.*s]", event ? event : "-", (int)len,
             data);
    if (ev->stop_at && (int)ev->n == ev->stop_at)
        return LLMC_ECANCELED;
    return LLMC_OK;
}

static const char sse_text[] = "\xEF\xBB\xBF: keep-alive comment\r\n"
                               "event: message_start\r\n"
                               "data: {\"a\":1}\r\n"
                               "\r\n"
                               "data: line1\n"
                               "data: line2\n"
                               "id: 7\n"
                               "retry: 100\n"
                               "\n"
                               "event: ping\n"
                               "\n" /* no data: not dispatched */
                               "data:nospace\r"
                               "\r"
                               "data: [DONE]\n"
                               "\n";
static const char sse_want[] = "[message_start|{\"a\":1}][-|line1\nline2][-|nospace][-|[DONE]]";

START_TEST(t_sse_all_splits)
{
    size_t len = sizeof sse_text - 1;
    /* Every split point, and byte by byte. */
    for (size_t cut = 0; cut <= len; cut++) {
        llmc__sse p;
        llmc__sse_init(&p);
        events ev = {{0}, 0, 0};
        ck_assert_int_eq(llmc__sse_feed(&p, sse_text, cut, record, &ev), LLMC_OK);
        ck_assert_int_eq(llmc__sse_feed(&p, sse_text + cut, len - cut, record, &ev), LLMC_OK);
        ck_assert_int_eq(llmc__sse_finish(&p, record, &ev), LLMC_OK);
        ck_assert_msg(strcmp(ev.log, sse_want) == 0, "cut %zu: %s", cut, ev.log);
        llmc__sse_free(&p);
    }
    llmc__sse p;
    llmc__sse_init(&p);
    events ev = {{0}, 0, 0};
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(llmc__sse_feed(&p, sse_text + i, 1, record, &ev), LLMC_OK);
    llmc__sse_finish(&p, record, &ev);
    ck_assert_str_eq(ev.log, sse_want);
    llmc__sse_free(&p);
}
END_TEST

START_TEST(t_sse_finish_and_stop)
{
    llmc__sse p;
    llmc__sse_init(&p);
    events ev = {{0}, 0, 0};
    /* A last event whose blank line never came is dispatched at the end;
     * a partial line is not. */
    const char *t = "data: a\n\ndata: b\ndata: partial";
    ck_assert_int_eq(llmc__sse_feed(&p, t, strlen(t), record, &ev), LLMC_OK);
    ck_assert_str_eq(ev.log, "[-|a]");
    ck_assert_int_eq(llmc__sse_finish(&p, record, &ev), LLMC_OK);
    ck_assert_str_eq(ev.log, "[-|a][-|b]");
    llmc__sse_free(&p);
    /* The callback's error stops the feed. */
    llmc__sse_init(&p);
    events ev2 = {{0}, 0, 2};
    t = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    ck_assert_int_eq(llmc__sse_feed(&p, t, strlen(t), record, &ev2), LLMC_ECANCELED);
    ck_assert_int_eq(ev2.n, 2);
    llmc__sse_free(&p);
    /* Oversized events are refused. */
    llmc__sse_init(&p);
    p.max_event = 16;
    events ev3 = {{0}, 0, 0};
    t = "data: 0123456789012345678901234567890\n\n";
    ck_assert_int_eq(llmc__sse_feed(&p, t, strlen(t), record, &ev3), LLMC_ETOOBIG);
    llmc__sse_free(&p);
}
END_TEST

START_TEST(t_ndjson)
{
    const char *t = "{\"a\":1}\n\n  {\"b\":2}\r\n{\"c\":3}";
    size_t len = strlen(t);
    for (size_t cut = 0; cut <= len; cut++) {
        llmc__ndjson p;
        llmc__ndjson_init(&p);
        events ev = {{0}, 0, 0};
        ck_assert_int_eq(llmc__ndjson_feed(&p, t, cut, record, &ev), LLMC_OK);
        ck_assert_int_eq(llmc__ndjson_feed(&p, t + cut, len - cut, record, &ev), LLMC_OK);
        ck_assert_int_eq(llmc__ndjson_finish(&p, record, &ev), LLMC_OK);
        ck_assert_msg(strcmp(ev.log, "[-|{\"a\":1}][-|{\"b\":2}][-|{\"c\":3}]") == 0, "cut %zu: %s",
                      cut, ev.log);
        llmc__ndjson_free(&p);
    }
}
END_TEST

/* ------------------------------------------------------------------ */

static const char stored[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
    "\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_9\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\"The answer is forty-two, "
    "naturally. \xC3\xA9\xC3\xA9\xC3\xA9\xE2\x82\xAC\xE2\x82\xAC.\","
    "\"reasoning_content\":\"Let me think about the question for a while.\","
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"arguments\":\"{\\\"x\\\":1,\\\"y\\\":\\\"long argument text here\\\"}\"}},"
    "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
    "\"{}\"}}]},\"finish_reason\":\"tool_calls\"},{\"index\":1,\"message\":{\"role\":"
    "\"assistant\",\"content\":\"Second choice.\"},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,\"total_tokens\":30}}";

static llmc_status collect(void *ud, struct json_object *chunk)
{
    tu_chunk_cb(ud, chunk);
    return LLMC_OK;
}

START_TEST(t_replay_roundtrip)
{
    json_object *resp = tu_parse(stored);
    tu_chunks ch = {0};
    ck_assert_int_eq(llmc__replay(resp, collect, &ch), LLMC_OK);
    size_t n = tu_nchunks(&ch);
    ck_assert_int_gt(n, 8);
    /* Content came in several deltas, never splitting UTF-8. */
    int pieces = 0;
    char joined[512];
    tu_join(&ch, "content", joined, sizeof joined, &pieces);
    ck_assert_int_ge(pieces, 3);
    for (size_t i = 0; i < n; i++) {
        const char *s = tu_str(json_object_array_get_idx(ch.arr, i), "choices.0.delta.content");
        if (s && *s)
            ck_assert_msg(((unsigned char)s[0] & 0xC0) != 0x80, "split UTF-8 at chunk %zu", i);
    }
    /* Role first, usage only in the last chunk, with a finish_reason. */
    json_object *first = json_object_array_get_idx(ch.arr, 0);
    json_object *last = json_object_array_get_idx(ch.arr, n - 1);
    ck_assert_str_eq(tu_str(first, "choices.0.delta.role"), "assistant");
    ck_assert_str_eq(tu_str(first, "object"), "chat.completion.chunk");
    ck_assert_str_eq(tu_str(first, "id"), "chatcmpl-1");
    ck_assert_str_eq(tu_str(first, "system_fingerprint"), "fp_9");
    ck_assert_int_eq(tu_int(last, "usage.total_tokens"), 30);
    ck_assert_str_eq(tu_str(last, "choices.0.finish_reason"), "length");
    for (size_t i = 0; i + 1 < n; i++)
        ck_assert_ptr_null(tu_get(json_object_array_get_idx(ch.arr, i), "usage"));
    /* Assembling the replay gives the stored response back. */
    llmc__assembler *a = llmc__assembler_new();
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(llmc__assembler_add(a, json_object_array_get_idx(ch.arr, i)), LLMC_OK);
    json_object *back = llmc__assembler_result(a);
    ck_assert_msg(json_object_equal(back, resp), "round trip differs:\n%s\n%s",
                  json_object_to_json_string(back), json_object_to_json_string(resp));
    json_object_put(back);
    llmc__assembler_free(a);
    tu_chunks_free(&ch);
    json_object_put(resp);
}
END_TEST

START_TEST(t_assembler_interleaved)
{
    /* Chunks as providers send them: tool call arguments in fragments,
     * usage in a chunk without choices, choices interleaved. */
    const char *chunks[] = {
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"B\"}}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"tool_calls\":[{\"index\":0,\"id\":\"t1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"},"
        "\"finish_reason\":\"stop\"}]}",
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"
        "\"total_tokens\":3}}",
    };
    llmc__assembler *a = llmc__assembler_new();
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        json_object *o = tu_parse(chunks[i]);
        ck_assert_int_eq(llmc__assembler_add(a, o), LLMC_OK);
        json_object_put(o);
    }
    json_object *r = llmc__assembler_result(a);
    ck_assert_str_eq(tu_str(r, "object"), "chat.completion");
    ck_assert_int_eq(tu_int(r, "created"), 5);
    ck_assert_int_eq(tu_int(r, "choices.0.index"), 0);
    ck_assert_str_eq(tu_str(r, "choices.0.message.tool_calls.0.function.arguments"), "{\"a\":1}");
    ck_assert(json_object_is_type(tu_get(r, "choices.0.message.content"), json_type_null));
    ck_assert_str_eq(tu_str(r, "choices.1.message.content"), "Bb");
    ck_assert_str_eq(tu_str(r, "choices.1.finish_reason"), "stop");
    ck_assert_int_eq(tu_int(r, "usage.total_tokens"), 3);
    ck_assert(llmc__response_storable(LLMC_CALL_CHAT, r));
    json_object_put(r);
    llmc__assembler_free(a);
    a = llmc__assembler_new();
    ck_assert_ptr_null(llmc__assembler_result(a));
    llmc__assembler_free(a);
}
END_TEST

START_TEST(t_assembler_no_choices)
{
    /* Only chunks with "choices": [] (a usage-only stream): no choice was
     * ever allocated, and the result must not sort a NULL array. */
    llmc__assembler *a = llmc__assembler_new();
    json_object *o = tu_parse("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                              "\"model\":\"m\",\"choices\":[]}");
    ck_assert_int_eq(llmc__assembler_add(a, o), LLMC_OK);
    json_object_put(o);
    json_object *r = llmc__assembler_result(a);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(json_object_array_length(tu_get(r, "choices")), 0);
    json_object_put(r);
    llmc__assembler_free(a);
}
END_TEST

START_TEST(t_storable)
{
    struct {
        llmc_call_type call;
        const char *json;
        int want;
    } cases[] = {
        {LLMC_CALL_CHAT, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}", 1},
        {LLMC_CALL_CHAT, "{\"choices\":[{\"message\":{\"content\":\"\"}}]}", 0},
        {LLMC_CALL_CHAT, "{\"choices\":[{\"message\":{\"content\":null}}]}", 0},
        {LLMC_CALL_CHAT, "{\"choices\":[]}", 0},
        {LLMC_CALL_CHAT, "{\"error\":{\"message\":\"x\"},\"choices\":[{\"message\":{\"content\":\"x\"}}]}", 0},
        {LLMC_CALL_CHAT, "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{}]}}]}", 1},
        {LLMC_CALL_TEXT, "{\"choices\":[{\"text\":\"x\"}]}", 1},
        {LLMC_CALL_TEXT, "{\"choices\":[{\"text\":\"\"}]}", 0},
        {LLMC_CALL_EMBEDDING, "{\"data\":[{\"embedding\":[1]}]}", 1},
        {LLMC_CALL_EMBEDDING, "{\"data\":[]}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *o = tu_parse(cases[i].json);
        ck_assert_msg(llmc__response_storable(cases[i].call, o) == cases[i].want, "case %zu", i);
        json_object_put(o);
    }
}
END_TEST

#if LLMC_HAVE_CURL
START_TEST(t_retry_helpers)
{
    const char *h = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nX: y\r\n\r\n";
    ck_assert_int_eq(llmc__retry_after_ms(h, strlen(h)), 3000);
    h = "HTTP/1.1 429 x\r\nretry-after-ms: 250\r\nRetry-After: 3\r\n\r\n";
    ck_assert_int_eq(llmc__retry_after_ms(h, strlen(h)), 250);
    h = "HTTP/1.1 429 x\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n";
    ck_assert_int_eq(llmc__retry_after_ms(h, strlen(h)), 0); /* in the past */
    h = "HTTP/1.1 429 x\r\n\r\n";
    ck_assert_int_eq(llmc__retry_after_ms(h, strlen(h)), -1);
    llmc__http_config cfg = {0, 0, 5, 100, 1000};
    for (int i = 0; i < 200; i++) {
        int64_t d1 = llmc__backoff_ms(&cfg, 1), d3 = llmc__backoff_ms(&cfg, 3),
                d9 = llmc__backoff_ms(&cfg, 9);
        ck_assert(d1 >= 50 && d1 <= 100);
        ck_assert(d3 >= 200 && d3 <= 400);
        ck_assert(d9 >= 500 && d9 <= 1000);
    }
}
END_TEST
#endif

START_TEST(t_http_helpers)
{
    llmc_http_request r;
    llmc_http_request_init(&r);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_int_eq(llmc_http_request_add_header(&r, "X-A", "1"), LLMC_OK);
    ck_assert_int_eq(llmc_http_request_add_secret(&r, "Authorization", "Bearer k"), LLMC_OK);
    ck_assert_int_eq(llmc_http_request_add_header(&r, "x-a", "2"), LLMC_OK);
    ck_assert_int_eq(r.n_headers, 2);
    ck_assert_str_eq(llmc_http_request_header(&r, "X-A"), "2");
    ck_assert_int_eq(r.headers[1].secret, 1);
    ck_assert_int_eq(llmc_http_request_add_header(&r, "X-B", "a\r\nX-C: b"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_http_url_append_escaped(&r.url, "a b/c?d&é"), LLMC_OK);
    ck_assert_str_eq(r.url.data, "a%20b%2Fc%3Fd%26%C3%A9");
    llmc_http_request_free(&r);
    llmc_http_response resp = {sizeof resp, 200, "HTTP/1.1 200 OK\r\nContent-Type:  text/x \r\n",
                               0, "", 0, -1};
    resp.headers_len = strlen(resp.headers);
    char v[32];
    ck_assert_int_eq(llmc_http_response_header(&resp, "content-type", v, sizeof v), 1);
    ck_assert_str_eq(v, "text/x");
    ck_assert_int_eq(llmc_http_response_header(&resp, "content", v, sizeof v), 0);
    ck_assert(llmc_provider_is_context_error("This model's maximum context length is 8192"));
    ck_assert(llmc_provider_is_context_error("prompt is too long: 200000 tokens > 199999"));
    ck_assert(!llmc_provider_is_context_error("invalid temperature"));
    char id[64];
    llmc_provider_new_id("chatcmpl-", id, sizeof id);
    ck_assert_int_eq(strlen(id), 9 + 24);
    char id2[64];
    llmc_provider_new_id("chatcmpl-", id2, sizeof id2);
    ck_assert_str_ne(id, id2);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");
    tcase_add_test(tc, t_sse_all_splits);
    tcase_add_test(tc, t_sse_finish_and_stop);
    tcase_add_test(tc, t_ndjson);
    tcase_add_test(tc, t_replay_roundtrip);
    tcase_add_test(tc, t_assembler_interleaved);
    tcase_add_test(tc, t_assembler_no_choices);
    tcase_add_test(tc, t_storable);
#if LLMC_HAVE_CURL
    tcase_add_test(tc, t_retry_helpers);
#endif
    tcase_add_test(tc, t_http_helpers);
    suite_add_tcase(s, tc);
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
