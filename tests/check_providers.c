/* Provider adapters: the exact HTTP each adapter sends (method, path,
 * query, headers, body) to the fake provider server, and the normalised
 * result, errors and streams it makes of the provider's answers. No cache
 * here: caching is check_client's business. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_test_util.h"
#include "internal.h"
#include "../providers/adapters.h"

#if LLMC_HAVE_CURL

static fp_server *srv;
static char base_v1[128];

static void setup(void)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
    /* The environment must not leak into the tests. */
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("OPENAI_API_BASE");
    unsetenv("AZURE_API_KEY");
    unsetenv("AZURE_API_BASE");
    unsetenv("AZURE_API_VERSION");
    unsetenv("AZURE_OPENAI_API_KEY");
    unsetenv("AZURE_OPENAI_ENDPOINT");
    unsetenv("OPENAI_API_VERSION");
}

static void teardown(void)
{
    fp_stop(srv);
    srv = NULL;
}

static llmc_client *openai_client(void)
{
    const char *kv[] = {"openai.api_key", "sk-test-123", "openai.api_base", base_v1,
                        "max_retries", "0", NULL};
    return tu_client(NULL, kv);
}

/* ------------------------------------------------------------------ */
/* openai */

/* llmc_json_parse takes any JSON value, bare scalars included, and
 * refuses truncated or trailing input by name. */
START_TEST(t_json_parse_scalars)
{
    const char *ok[] = {"0", "true", "12.5", " 7 ", "\"s\"", "null", "[1]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_object *o = NULL;
        llmc_err e;
        ck_assert_msg(llmc_json_parse(ok[i], strlen(ok[i]), "value", &o, &e) == LLMC_OK,
                      "%s: %s", ok[i], e.msg);
        json_object_put(o);
    }
    json_object *o = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_json_parse("tru", 3, "value", &o, &e), LLMC_EPROTO);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(llmc_json_parse("1 2", 3, "value", &o, &e), LLMC_EPROTO);
    ck_assert_ptr_nonnull(strstr(e.msg, "after the JSON value"));
    ck_assert_int_eq(llmc_json_parse("{\"a\":", 5, "value", &o, &e), LLMC_EPROTO);
    ck_assert_ptr_nonnull(strstr(e.msg, "value"));
}
END_TEST

START_TEST(t_openai_chat_http)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    const char *req = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\","
                      "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                      "\"temperature\":0.5,\"max_tokens\":20,\"user\":\"u1\","
                      "\"cache\":{\"no-store\":true},\"metadata\":{\"trace\":\"x\"},"
                      "\"stream\":false,\"timeout\":30}";
    ck_assert_msg(llmc_completion_json(c, req, LLMC_ZSTR, &r, &e) == LLMC_OK, "%s", e.msg);
    ck_assert_int_eq(fp_count(srv), 1);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->method, "POST");
    ck_assert_str_eq(q->target, "/v1/chat/completions");
    ck_assert_str_eq(fp_header_get(q, "Authorization"), "Bearer sk-test-123");
    ck_assert_str_eq(fp_header_get(q, "Content-Type"), "application/json");
    ck_assert_ptr_null(fp_header_get(q, "Expect"));
    ck_assert_str_eq(fp_header_get(q, "User-Agent"), "llmcache/" LLMC_VERSION_STRING);
    json_object *b = tu_body(q);
    /* Exactly the answer-relevant members, model first. */
    ck_assert_str_eq(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                     "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\","
                     "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"temperature\":0.5,\"max_tokens\":20,\"user\":\"u1\"}");
    json_object_put(b);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "chat.completion");
    ck_assert_str_eq(tu_str(o, "choices.0.message.role"), "assistant");
    ck_assert_str_eq(llmc_response_content(r), "echo: hi");
    ck_assert_str_eq(tu_str(o, "choices.0.finish_reason"), "stop");
    ck_assert_int_gt(tu_int(o, "usage.total_tokens"), 0);
    ck_assert_str_eq(llmc_response_provider(r), "openai");
    ck_assert_str_eq(llmc_response_model(r), "gpt-4o-mini");
    ck_assert_int_eq(llmc_response_attempts(r), 1);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_prefix_and_inference)
{
    llmc_client *c = openai_client();
    static const char *const models[] = {"openai/gpt-4o-mini", "gpt-4o", "o1-mini", "o3-mini",
                                         "chatgpt-4o-latest", NULL};
    for (int i = 0; models[i]; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                 models[i]);
        llmc_response *r = NULL;
        llmc_err e;
        ck_assert_msg(llmc_completion_json(c, req, LLMC_ZSTR, &r, &e) == LLMC_OK, "%s: %s",
                      models[i], e.msg);
        json_object *b = tu_body(fp_last(srv));
        const char *want = strchr(models[i], '/') ? strchr(models[i], '/') + 1 : models[i];
        ck_assert_str_eq(tu_str(b, "model"), want);
        json_object_put(b);
        llmc_response_free(r);
    }
    ck_assert_ptr_eq(llmc_infer_provider("text-embedding-3-small"), llmc_find_provider("openai"));
    ck_assert_ptr_eq(llmc_infer_provider("gpt-3.5-turbo"), llmc_find_provider("openai"));
    ck_assert_ptr_null(llmc_infer_provider("llama3"));
    const llmc_provider_ops *cl = llmc_infer_provider("claude-3-5-sonnet-latest");
    ck_assert(cl == NULL || strcmp(cl->hdr.name, "anthropic") == 0);
    const llmc_provider_ops *ge = llmc_infer_provider("gemini-1.5-flash");
    ck_assert(ge == NULL || strcmp(ge->hdr.name, "gemini") == 0);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_unknown_provider)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"llama3\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "llama3"));
    ck_assert_ptr_nonnull(strstr(e.msg, "openai"));
    ck_assert_ptr_nonnull(strstr(e.msg, "azure"));
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"nosuch/x\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"nosuch\" is not a known provider"));
    ck_assert_ptr_null(r);
    ck_assert_int_eq(fp_count(srv), 0);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_stream_http)
{
    llmc_client *c = openai_client();
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_stream_json(c,
                                              "{\"model\":\"gpt-4o-mini\",\"messages\":[{"
                                              "\"role\":\"user\",\"content\":\"stream me\"}]}",
                                              LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->target, "/v1/chat/completions");
    ck_assert_str_eq(fp_header_get(q, "Accept"), "text/event-stream");
    json_object *b = tu_body(q);
    ck_assert(json_object_get_boolean(tu_get(b, "stream")));
    ck_assert(json_object_get_boolean(tu_get(b, "stream_options.include_usage")));
    json_object_put(b);
    char joined[256];
    int pieces;
    tu_join(&ch, "content", joined, sizeof joined, &pieces);
    ck_assert_str_eq(joined, "echo: stream me");
    ck_assert_int_gt(pieces, 1);
    ck_assert_str_eq(tu_str(json_object_array_get_idx(ch.arr, 0), "object"),
                     "chat.completion.chunk");
    /* The assembled response. */
    ck_assert_str_eq(llmc_response_content(r), "echo: stream me");
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "chat.completion");
    ck_assert_str_eq(tu_str(o, "choices.0.finish_reason"), "stop");
    ck_assert_int_gt(tu_int(o, "usage.total_tokens"), 0);
    tu_chunks_free(&ch);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_stream_tool_calls)
{
    llmc_client *c = openai_client();
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_stream_json(c,
                                              "{\"model\":\"gpt-4o-mini\",\"messages\":[{"
                                              "\"role\":\"user\",\"content\":\"CALL_TOOL\"}],"
                                              "\"tools\":[{\"type\":\"function\",\"function\":"
                                              "{\"name\":\"get_weather\"}}]}",
                                              LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "choices.0.message.tool_calls.0.id"), "call_fake1");
    ck_assert_str_eq(tu_str(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    ck_assert_str_eq(tu_str(o, "choices.0.message.tool_calls.0.function.arguments"),
                     "{\"city\":\"Paris\",\"unit\":\"c\"}");
    ck_assert_str_eq(tu_str(o, "choices.0.finish_reason"), "tool_calls");
    ck_assert_ptr_nonnull(tu_get(o, "choices.0.message"));
    ck_assert(json_object_is_type(tu_get(o, "choices.0.message.content"), json_type_null));
    tu_chunks_free(&ch);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_text_http)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_text_completion_json(c,
                                            "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":"
                                            "\"Say this\",\"max_tokens\":7}",
                                            LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->target, "/v1/completions");
    json_object *b = tu_body(q);
    ck_assert_str_eq(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                     "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"Say this\","
                     "\"max_tokens\":7}");
    json_object_put(b);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "text_completion");
    ck_assert_str_eq(tu_str(o, "choices.0.text"), "echo: Say this");
    ck_assert_str_eq(llmc_response_content(r), "echo: Say this");
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_embeddings_http)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_embedding_json(c,
                                      "{\"model\":\"text-embedding-3-small\",\"input\":[\"a\","
                                      "\"b\"],\"dimensions\":4}",
                                      LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->target, "/v1/embeddings");
    json_object *b = tu_body(q);
    ck_assert_str_eq(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                     "{\"model\":\"text-embedding-3-small\",\"dimensions\":4,\"input\":[\"a\","
                     "\"b\"]}");
    json_object_put(b);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "list");
    ck_assert_int_eq(json_object_array_length(tu_get(o, "data")), 2);
    ck_assert_int_eq(tu_int(o, "data.1.index"), 1);
    ck_assert_int_eq(json_object_array_length(tu_get(o, "data.0.embedding")), 4);
    ck_assert_int_gt(tu_int(o, "usage.prompt_tokens"), 0);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_openai_env_credentials)
{
    setenv("OPENAI_API_KEY", "sk-env-456", 1);
    setenv("OPENAI_BASE_URL", base_v1, 1);
    llmc_client *c = tu_client(NULL, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"x\"}]}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "Authorization"), "Bearer sk-env-456");
    llmc_response_free(r);
    /* A request field wins over the environment. */
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"gpt-4o\",\"api_key\":\"sk-req-789\","
                                          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "Authorization"), "Bearer sk-req-789");
    json_object *b = tu_body(fp_last(srv));
    ck_assert_ptr_null(tu_get(b, "api_key"));
    json_object_put(b);
    llmc_response_free(r);
    /* Without any key: a clear error naming the variable, no request. */
    unsetenv("OPENAI_API_KEY");
    size_t n = fp_count(srv);
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_EAUTH);
    ck_assert_ptr_nonnull(strstr(e.msg, "OPENAI_API_KEY"));
    ck_assert_int_eq(fp_count(srv), n);
    unsetenv("OPENAI_BASE_URL");
    llmc_client_free(c);
}
END_TEST

START_TEST(t_extra_headers)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"gpt-4o\",\"extra_headers\":{\"X-Trace\":"
                                          "\"t1\"},\"messages\":[{\"role\":\"user\",\"content\":"
                                          "\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "X-Trace"), "t1");
    llmc_response_free(r);
    /* Header injection is refused. */
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"gpt-4o\",\"extra_headers\":{\"X-A\":"
                                          "\"a\\r\\nX-B: b\"},\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "extra_headers"));
    llmc_client_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors. */

static llmc_status call_simple(llmc_client *c, llmc_err *e)
{
    llmc_response *r = NULL;
    llmc_status st = llmc_completion_json(c,
                                          "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, e);
    llmc_response_free(r);
    return st;
}

START_TEST(t_error_mapping)
{
    llmc_client *c = openai_client();
    llmc_err e;
    fp_push_reply(srv, 401, NULL,
                  "{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":"
                  "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
                  NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_EAUTH);
    ck_assert_int_eq(e.native, 401);
    ck_assert_ptr_nonnull(strstr(e.msg, "Incorrect API key provided"));
    ck_assert_ptr_null(strstr(e.msg, "sk-test-123"));

    fp_push_reply(srv, 400, NULL,
                  "{\"error\":{\"message\":\"This model's maximum context length is 128000 "
                  "tokens.\",\"type\":\"invalid_request_error\",\"code\":"
                  "\"context_length_exceeded\"}}",
                  NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_ECONTEXT);
    fp_push_reply(srv, 400, NULL, "{\"error\":{\"message\":\"Invalid value for temperature\"}}",
                  NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_EBADREQUEST);
    ck_assert_ptr_nonnull(strstr(e.msg, "temperature"));
    fp_push_reply(srv, 429, NULL, "{\"error\":{\"message\":\"Rate limit reached\"}}",
                  "Retry-After: 7\r\n");
    ck_assert_int_eq(call_simple(c, &e), LLMC_ERATELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "retry after 7000 ms"));
    fp_push_reply(srv, 503, "text/html", "<html>bad gateway</html>", NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_EUPSTREAM);
    ck_assert_ptr_nonnull(strstr(e.msg, "bad gateway"));
    /* A 200 with a malformed body is a protocol error. */
    fp_push_reply(srv, 200, NULL, "{\"id\":\"x\",\"choices\":[", NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_EPROTO);
    fp_push_reply(srv, 200, NULL, "{\"id\":\"x\"}", NULL);
    ck_assert_int_eq(call_simple(c, &e), LLMC_EPROTO);
    ck_assert_ptr_nonnull(strstr(e.msg, "choices"));
    llmc_client_free(c);
}
END_TEST

START_TEST(t_stream_errors)
{
    llmc_client *c = openai_client();
    llmc_err e;
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    const char *req = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    /* An error event in the stream. */
    fp_push_stream(srv, "text/event-stream",
                   "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                   "\"assistant\"},\"finish_reason\":null}]}\n\n"
                   "data: {\"error\":{\"message\":\"The server had an error\",\"type\":"
                   "\"server_error\"}}\n\n");
    ck_assert_int_eq(llmc_completion_stream_json(c, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_EUPSTREAM);
    ck_assert_ptr_nonnull(strstr(e.msg, "The server had an error"));
    ck_assert_ptr_null(r);
    tu_chunks_free(&ch);
    /* No [DONE] from openai: the stream is incomplete. */
    fp_push_stream(srv, "text/event-stream",
                   "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                   "\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n");
    ck_assert_int_eq(llmc_completion_stream_json(c, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_ESTREAM);
    tu_chunks_free(&ch);
    /* An HTTP error before the stream starts is mapped like any other. */
    fp_push_reply(srv, 401, NULL, "{\"error\":{\"message\":\"bad key\"}}", NULL);
    ck_assert_int_eq(llmc_completion_stream_json(c, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_EAUTH);
    ck_assert_int_eq(tu_nchunks(&ch), 0);
    /* A malformed event. */
    fp_malformed_next(srv, 1);
    ck_assert_int_eq(llmc_completion_stream_json(c, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_EPROTO);
    tu_chunks_free(&ch);
    /* The callback stops the stream. */
    ch.stop_after = 2;
    ck_assert_int_eq(llmc_completion_stream_json(c, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_ECANCELED);
    ck_assert_int_eq(tu_nchunks(&ch), 2);
    tu_chunks_free(&ch);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_verbatim_openai_response)
{
    /* A response as OpenAI documents it, with tool calls, refusal,
     * logprobs and usage details: passed through intact. */
    llmc_client *c = openai_client();
    const char *body =
        "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":1741569952,"
        "\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"location\\\":"
        "\\\"Boston, MA\\\"}\"}}],\"refusal\":null,\"annotations\":[]},\"logprobs\":null,"
        "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":82,"
        "\"completion_tokens\":17,\"total_tokens\":99,\"prompt_tokens_details\":{"
        "\"cached_tokens\":0,\"audio_tokens\":0}},\"service_tier\":\"default\","
        "\"system_fingerprint\":\"fp_1\"}";
    fp_push_reply(srv, 200, NULL, body, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"weather?\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    json_object *want = tu_parse(body);
    ck_assert(json_object_equal(want, llmc_response_json(r)));
    json_object_put(want);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* azure */

START_TEST(t_azure_http)
{
    const char *kv[] = {"azure.api_key", "az-secret", "azure.api_base", fp_url(srv),
                        "azure.api_version", "2024-06-01", NULL};
    llmc_client *c = tu_client(NULL, kv);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"azure/my-gpt4o\",\"messages\":[{\"role\":"
                                       "\"user\",\"content\":\"hi\"}],\"temperature\":0}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->method, "POST");
    ck_assert_str_eq(q->target,
                     "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01");
    ck_assert_str_eq(fp_header_get(q, "api-key"), "az-secret");
    ck_assert_ptr_null(fp_header_get(q, "Authorization"));
    json_object *b = tu_body(q);
    ck_assert_str_eq(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0}");
    json_object_put(b);
    ck_assert_str_eq(llmc_response_content(r), "echo: hi");
    ck_assert_str_eq(llmc_response_provider(r), "azure");
    llmc_response_free(r);
    /* Embeddings and text completions use the same deployment scheme. */
    ck_assert_int_eq(llmc_embedding_json(c, "{\"model\":\"azure/emb\",\"input\":\"x\"}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(fp_last(srv)->target,
                     "/openai/deployments/emb/embeddings?api-version=2024-06-01");
    llmc_response_free(r);
    ck_assert_int_eq(llmc_text_completion_json(c, "{\"model\":\"azure/inst\",\"prompt\":\"x\"}",
                                               LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(fp_last(srv)->target,
                     "/openai/deployments/inst/completions?api-version=2024-06-01");
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_azure_stream)
{
    const char *kv[] = {"azure.api_key", "az-secret", "azure.api_base", fp_url(srv), NULL};
    llmc_client *c = tu_client(NULL, kv);
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_stream_json(c,
                                              "{\"model\":\"azure/dep\",\"messages\":[{\"role\":"
                                              "\"user\",\"content\":\"azure stream\"}],"
                                              "\"stream_options\":{\"include_usage\":false}}",
                                              LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    /* The default api-version when none is configured. */
    ck_assert_str_eq(q->target, "/openai/deployments/dep/chat/completions?api-version=2024-10-21");
    json_object *b = tu_body(q);
    ck_assert(json_object_get_boolean(tu_get(b, "stream")));
    /* The caller's own stream_options are kept. */
    ck_assert(!json_object_get_boolean(tu_get(b, "stream_options.include_usage")));
    json_object_put(b);
    char joined[128];
    tu_join(&ch, "content", joined, sizeof joined, NULL);
    ck_assert_str_eq(joined, "echo: azure stream");
    ck_assert_str_eq(llmc_response_content(r), "echo: azure stream");
    ck_assert_ptr_null(tu_get(llmc_response_json(r), "usage"));
    tu_chunks_free(&ch);
    llmc_response_free(r);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_azure_env)
{
    char base[160];
    snprintf(base, sizeof base, "%s/", fp_url(srv)); /* trailing slash is dropped */
    setenv("AZURE_API_BASE", base, 1);
    setenv("AZURE_API_KEY", "az-env", 1);
    setenv("AZURE_API_VERSION", "2025-01-01-preview", 1);
    llmc_client *c = tu_client(NULL, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"azure/dep 1\",\"messages\":[{\"role\":"
                                       "\"user\",\"content\":\"hi\"}]}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->target, "/openai/deployments/dep%201/chat/completions"
                                "?api-version=2025-01-01-preview");
    ck_assert_str_eq(fp_header_get(q, "api-key"), "az-env");
    llmc_response_free(r);
    unsetenv("AZURE_API_BASE");
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"azure/d\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"hi\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "AZURE_API_BASE"));
    unsetenv("AZURE_API_KEY");
    unsetenv("AZURE_API_VERSION");
    llmc_client_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* openai-compatible */

START_TEST(t_compatible_http)
{
    const char *kv[] = {"openai-compatible.api_base", base_v1, NULL};
    llmc_client *c = tu_client(NULL, kv);
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"openai-compatible/meta-llama/Llama-3-8B\","
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                       "\"top_k\":5}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    const fp_request *q = fp_last(srv);
    ck_assert_str_eq(q->target, "/v1/chat/completions");
    ck_assert_ptr_null(fp_header_get(q, "Authorization"));
    json_object *b = tu_body(q);
    ck_assert_str_eq(tu_str(b, "model"), "meta-llama/Llama-3-8B");
    ck_assert_int_eq(tu_int(b, "top_k"), 5); /* provider-specific fields pass through */
    json_object_put(b);
    ck_assert_str_eq(llmc_response_provider(r), "openai-compatible");
    llmc_response_free(r);
    /* The provider option routes bare names there, with a key when given. */
    const char *kv2[] = {"provider", "openai-compatible", "api_base", base_v1, "api_key",
                         "gsk-1", NULL};
    llmc_client *c2 = tu_client(NULL, kv2);
    ck_assert_int_eq(llmc_completion_json(c2,
                                          "{\"model\":\"llama-3.1-8b-instant\",\"messages\":[{"
                                          "\"role\":\"user\",\"content\":\"hi\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "Authorization"), "Bearer gsk-1");
    llmc_response_free(r);
    /* Servers that leave out id/created/object get them filled in. */
    fp_push_reply(srv, 200, NULL,
                  "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
                  "\"ok\"},\"finish_reason\":\"stop\"}]}",
                  NULL);
    ck_assert_int_eq(llmc_completion_json(c2,
                                          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"hi\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    json_object *o = llmc_response_json(r);
    ck_assert_str_eq(tu_str(o, "object"), "chat.completion");
    ck_assert_ptr_nonnull(tu_str(o, "id"));
    ck_assert_str_eq(tu_str(o, "model"), "m");
    llmc_response_free(r);
    /* A compatible server's stream that ends with finish_reason but no
     * [DONE] is complete. */
    fp_push_stream(srv, "text/event-stream",
                   "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                   "\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
                   "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                   "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},"
                   "\"finish_reason\":\"stop\"}]}\n\n");
    tu_chunks ch = {0};
    ck_assert_int_eq(llmc_completion_stream_json(c2,
                                                 "{\"model\":\"m\",\"messages\":[{\"role\":"
                                                 "\"user\",\"content\":\"hi\"}]}",
                                                 LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(llmc_response_content(r), "Hello");
    tu_chunks_free(&ch);
    llmc_response_free(r);
    /* Without api_base: a clear error. */
    llmc_client *c3 = tu_client(NULL, NULL);
    ck_assert_int_eq(llmc_completion_json(c3,
                                          "{\"model\":\"openai-compatible/x\",\"messages\":[{"
                                          "\"role\":\"user\",\"content\":\"hi\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "api_base"));
    llmc_client_free(c3);
    llmc_client_free(c2);
    llmc_client_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* mock */

START_TEST(t_mock)
{
    llmc_client *c = tu_client(NULL, NULL);
    llmc_response *r = NULL;
    llmc_err e;
    /* mock_response answers for any model, without network or key. */
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"gpt-4o\",\"mock_response\":\"Hi there\","
                                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    ck_assert_str_eq(llmc_response_content(r), "Hi there");
    ck_assert_str_eq(tu_str(llmc_response_json(r), "model"), "gpt-4o");
    ck_assert_int_eq(llmc_response_attempts(r), 0);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"some-unknown-model\",\"mock_response\":"
                                          "\"ok\",\"messages\":[{\"role\":\"user\",\"content\":"
                                          "\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"mock/anything\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_str_eq(llmc_response_content(r), "This is a mock response.");
    llmc_response_free(r);
    /* Tool calls, streamed. */
    tu_chunks ch = {0};
    ck_assert_msg(llmc_completion_stream_json(
                      c,
                      "{\"model\":\"mock/m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"mock_tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":"
                      "\"{\\\"a\\\":1}\"}}]}",
                      LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    ck_assert_str_eq(tu_str(llmc_response_json(r), "choices.0.message.tool_calls.0.function.name"),
                     "f");
    ck_assert_int_ge(tu_nchunks(&ch), 3);
    tu_chunks_free(&ch);
    llmc_response_free(r);
    /* Embeddings: deterministic vectors. */
    ck_assert_int_eq(llmc_embedding_json(c, "{\"model\":\"mock/e\",\"input\":[\"a\",\"b\",\"a\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    json_object *o = llmc_response_json(r);
    ck_assert(json_object_equal(tu_get(o, "data.0.embedding"), tu_get(o, "data.2.embedding")));
    ck_assert(!json_object_equal(tu_get(o, "data.0.embedding"), tu_get(o, "data.1.embedding")));
    llmc_response_free(r);
    ck_assert_int_eq(fp_count(srv), 0);
    /* A bad mock_response is a clear error. */
    ck_assert_int_eq(llmc_completion_json(c,
                                          "{\"model\":\"mock/m\",\"mock_response\":5,"
                                          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "mock_response"));
    llmc_client_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Registration of an application's own adapter. */

static llmc_status echo_build(const llmc_provider_call *call, struct json_object *request,
                              llmc_http_request *out, llmc_err *err)
{
    LLMC_UNUSED(request);
    llmc_buf_printf(&out->url, "%s/v1/chat/completions", call->api_base);
    llmc_http_request_add_header(out, "X-Echo", call->model);
    json_object *b = json_object_new_object();
    json_object_object_add(b, "model", json_object_new_string(call->model));
    json_object *msgs;
    json_object_object_get_ex(request, "messages", &msgs);
    json_object_object_add(b, "messages", json_object_get(msgs));
    llmc_status st = llmc_http_request_set_json(out, b);
    json_object_put(b);
    return st == LLMC_OK ? LLMC_OK : llmc_err_set(err, st, 0, "oom");
}

static int echo_match(const char *m)
{
    return strncmp(m, "echo-", 5) == 0;
}

static const llmc_provider_ops echo_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "echo", "test adapter"),
    .flags = LLMC_PROVIDER_CHAT,
    .default_api_base = "http://127.0.0.1:1",
    .match_model = echo_match,
    .build_request = echo_build,
    .parse_response = llmc__openai_parse_response,
};

START_TEST(t_register_provider)
{
    llmc_err e;
    ck_assert_int_eq(llmc_init(), LLMC_OK);
    ck_assert_msg(llmc_register_provider(&echo_ops, &e) == LLMC_OK, "%s", e.msg);
    ck_assert_int_eq(llmc_register_provider(&echo_ops, &e), LLMC_EEXIST);
    llmc_provider_ops bad = echo_ops;
    bad.hdr.name = "bad";
    bad.parse_response = NULL;
    ck_assert_int_eq(llmc_register_provider(&bad, &e), LLMC_EINVAL);
    bad = echo_ops;
    bad.hdr.name = "bad2";
    bad.hdr.abi_major = 99;
    ck_assert_int_eq(llmc_register_provider(&bad, &e), LLMC_EABI);
    ck_assert_ptr_eq(llmc_infer_provider("echo-1"), &echo_ops);
    const char *kv[] = {"echo.api_base", fp_url(srv), NULL};
    llmc_client *c = tu_client(NULL, kv);
    llmc_response *r = NULL;
    ck_assert_msg(llmc_completion_json(c,
                                       "{\"model\":\"echo-1\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"yo\"}]}",
                                       LLMC_ZSTR, &r, &e) == LLMC_OK,
                  "%s", e.msg);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "X-Echo"), "echo-1");
    ck_assert_str_eq(llmc_response_content(r), "echo: yo");
    llmc_response_free(r);
    /* Streaming is refused with a clear status for an adapter without it. */
    tu_chunks ch = {0};
    ck_assert_int_eq(llmc_completion_stream_json(c,
                                                 "{\"model\":\"echo-1\",\"messages\":[{\"role\":"
                                                 "\"user\",\"content\":\"yo\"}]}",
                                                 LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_ENOTSUP);
    ck_assert_int_eq(llmc_embedding_json(c, "{\"model\":\"echo-1\",\"input\":\"x\"}", LLMC_ZSTR,
                                         &r, &e),
                     LLMC_ENOTSUP);
    llmc_client_free(c);
}
END_TEST

START_TEST(t_client_options)
{
    llmc_client *c = NULL;
    llmc_err e;
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "bogus_option", "1");
    ck_assert_int_eq(llmc_client_new(NULL, o, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "bogus_option"));
    llmc_options_free(o);
    o = llmc_options_new();
    llmc_options_set(o, "max_retries", "99");
    ck_assert_int_eq(llmc_client_new(NULL, o, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "max_retries"));
    llmc_options_free(o);
    o = llmc_options_new();
    llmc_options_set(o, "provider", "nope");
    ck_assert_int_eq(llmc_client_new(NULL, o, &c, &e), LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "openai"));
    llmc_options_free(o);
    o = llmc_options_new();
    llmc_options_set(o, "nope.api_key", "x");
    ck_assert_int_eq(llmc_client_new(NULL, o, &c, &e), LLMC_EINVAL);
    llmc_options_free(o);
    o = llmc_options_new();
    llmc_options_set(o, "openai.organization", "org-1");
    ck_assert_int_eq(llmc_client_new(NULL, o, &c, &e), LLMC_OK);
    llmc_client_free(c);
    llmc_options_free(o);
}
END_TEST

START_TEST(t_bad_requests)
{
    llmc_client *c = openai_client();
    llmc_response *r = NULL;
    llmc_err e;
    struct {
        const char *json;
        const char *needle;
    } cases[] = {
        {"{\"model\":\"gpt-4o\"", "incomplete"},
        {"[1,2]", "must be an object"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "\"model\" is missing"},
        {"{\"model\":5,\"messages\":[]}", "\"model\" must be a string"},
        {"{\"model\":\"gpt-4o\"}", "\"messages\" is missing"},
        {"{\"model\":\"gpt-4o\",\"messages\":[]}", "non-empty array"},
        {"{\"model\":\"gpt-4o\",\"messages\":[{}],\"cache\":{\"no-cahce\":true}}", "no-cahce"},
        {"{\"model\":\"gpt-4o\",\"messages\":[{}],\"cache\":{\"ttl\":\"x\"}}", "ttl"},
        {"{\"model\":\"gpt-4o\",\"messages\":[{}],\"cache\":5}", "cache"},
        {"{\"model\":\"gpt-4o\",\"messages\":[{}]} x", "after the object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(llmc_completion_json(c, cases[i].json, LLMC_ZSTR, &r, &e), LLMC_EINVAL);
        ck_assert_msg(strstr(e.msg, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
                      e.msg, cases[i].needle);
        ck_assert_ptr_null(r);
    }
    ck_assert_int_eq(fp_count(srv), 0);
    llmc_client_free(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("providers");
    TCase *tc = tcase_create("adapters");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_json_parse_scalars);
    tcase_add_test(tc, t_openai_chat_http);
    tcase_add_test(tc, t_openai_prefix_and_inference);
    tcase_add_test(tc, t_unknown_provider);
    tcase_add_test(tc, t_openai_stream_http);
    tcase_add_test(tc, t_openai_stream_tool_calls);
    tcase_add_test(tc, t_openai_text_http);
    tcase_add_test(tc, t_openai_embeddings_http);
    tcase_add_test(tc, t_openai_env_credentials);
    tcase_add_test(tc, t_extra_headers);
    tcase_add_test(tc, t_error_mapping);
    tcase_add_test(tc, t_stream_errors);
    tcase_add_test(tc, t_verbatim_openai_response);
    tcase_add_test(tc, t_azure_http);
    tcase_add_test(tc, t_azure_stream);
    tcase_add_test(tc, t_azure_env);
    tcase_add_test(tc, t_compatible_http);
    tcase_add_test(tc, t_mock);
    tcase_add_test(tc, t_register_provider);
    tcase_add_test(tc, t_client_options);
    tcase_add_test(tc, t_bad_requests);
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

#else /* !LLMC_HAVE_CURL */

int main(void)
{
    /* Built without libcurl: no HTTP providers to test (77 = skipped). */
    return 77;
}

#endif
