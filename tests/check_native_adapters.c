/* Check suite for the adapters that translate to a provider's own API
 * (anthropic, gemini, ollama), unlike the OpenAI-format ones of
 * check_providers.c.
 *
 * Two layers:
 *  - the adapters alone (build_request / parse_response / stream events /
 *    map_error called through their tables): exact translation both ways;
 *  - through the client against the fake provider server (a real HTTP
 *    server on a loopback port): the exact HTTP each adapter sends
 *    (method, path, headers, body), the normalised result, streams,
 *    cut-off streams not stored, error mapping, and cached second calls
 *    (upstream count unchanged) on the local, sqlite and redis backends.
 *
 * The redis server is started by the suite (unchecked fixture) on a free
 * loopback port; the fake server is started by each test. */
#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmc_config.h"
#include "llmcache/llmcache.h"
#include "llmcache/client.h"
#include "llmcache/provider.h"
#include "fake_provider.h"
#include "support/testsrv.h"

#define ANTH_KEY "sk-ant-test-SECRET-0001"
#define GEM_KEY "gem-test-SECRET-0002"

/* ------------------------------------------------------------------ */
/* Fixtures */

static testsrv redis_srv, tmp_dir;
static int redis_port = -1;
static char sqlite_dir[256];

static void common_setup(void)
{
    llmc_init();
}

/* The backends case starts one redis-server for all its tests and a
 * directory for the sqlite files; both go away in its teardown. */
static void backends_setup(void)
{
    char port[16];
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", NULL};
    llmc_init();
    if (testsrv_mkdir(&tmp_dir, "p2sqlite") == 0)
        snprintf(sqlite_dir, sizeof sqlite_dir, "%s", tmp_dir.dir);
    redis_port = -1;
    if (!testsrv_which("redis-server") || testsrv_mkdir(&redis_srv, "p2redis") != 0)
        return;
    redis_port = testsrv_free_port();
    snprintf(port, sizeof port, "%d", redis_port);
    if (testsrv_spawn(&redis_srv, argv) != 0 || testsrv_wait_tcp(&redis_srv, redis_port, 5000) != 0)
        redis_port = -1;
}

static void backends_teardown(void)
{
    testsrv_stop(&redis_srv);
    testsrv_stop(&tmp_dir);
}

static fp_server *srv;
static llmc_cache *cache;
static llmc_client *client;

static void test_setup(void)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    cache = NULL;
    client = NULL;
}

static void test_teardown(void)
{
    llmc_client_free(client);
    llmc_cache_close(cache);
    fp_stop(srv);
    client = NULL;
    cache = NULL;
    srv = NULL;
}

/* The backends the cached-call tests loop over: those built in. A
 * backend whose server cannot be started fails its cases. */
enum { BK_LOCAL, BK_SQLITE, BK_REDIS };
static const struct {
    int kind;
    const char *name;
} bk[] = {
    {BK_LOCAL, "local"},
#if LLMC_HAVE_SQLITE
    {BK_SQLITE, "sqlite"},
#endif
#if LLMC_HAVE_REDIS
    {BK_REDIS, "redis"},
#endif
};
#define N_BACKENDS ((int)(sizeof bk / sizeof bk[0]))

/* Open the cache for backend i; returns 1 (failing the test otherwise). */
static int open_cache(int i)
{
    char url[512];
    llmc_err err;
    static int counter;
    if (bk[i].kind == BK_LOCAL) {
        snprintf(url, sizeof url, "local://");
    } else if (bk[i].kind == BK_SQLITE) {
        ck_assert_msg(sqlite_dir[0], "no directory for the sqlite files");
        snprintf(url, sizeof url, "sqlite://%s/p2-%d-%d.db", sqlite_dir, (int)getpid(), counter++);
    } else {
        ck_assert_msg(redis_port >= 0, "redis-server could not be started (is it installed? "
                                       "scripts/install-deps.sh --test)");
        snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?namespace=p2-%d-%d", redis_port,
                 (int)getpid(), counter++);
    }
    llmc_err_clear(&err);
    llmc_status st = llmc_cache_open(url, NULL, &cache, &err);
    ck_assert_msg(st == LLMC_OK, "open %s (%s): %s", url, bk[i].name, err.msg);
    return 1;
}

/* A client for `provider` pointed at the fake server. */
static void make_client(const char *provider, const char *key, int max_retries)
{
    llmc_options *o = llmc_options_new();
    char name[64];
    llmc_err err;
    snprintf(name, sizeof name, "%s.api_base", provider);
    llmc_options_set(o, name, fp_url(srv));
    if (key) {
        snprintf(name, sizeof name, "%s.api_key", provider);
        llmc_options_set(o, name, key);
    }
    llmc_options_set_int(o, "max_retries", max_retries);
    llmc_options_set_int(o, "retry_base_ms", 1);
    llmc_options_set_int(o, "timeout_ms", 10000);
    ck_assert_int_eq(llmc_client_new(cache, o, &client, &err), LLMC_OK);
    llmc_options_free(o);
}

/* ------------------------------------------------------------------ */
/* Helpers */

static json_object *jget(json_object *o, const char *path)
{
    /* "a.b.0.c": members and array indexes. */
    char buf[256], *save = NULL, *tok;
    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(tok));
        else if (!json_object_object_get_ex(o, tok, &o))
            o = NULL;
    }
    return o;
}

static const char *jstr(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t jint(json_object *o, const char *path)
{
    json_object *v = jget(o, path);
    ck_assert_msg(v != NULL, "missing %s", path);
    return json_object_get_int64(v);
}

/* Assert that JSON text `got` equals `want` (member order ignored). */
static void assert_json_eq(const char *got, const char *want)
{
    json_object *g = json_tokener_parse(got), *w = json_tokener_parse(want);
    ck_assert_msg(w != NULL, "bad expected JSON: %s", want);
    ck_assert_msg(g != NULL, "not JSON: %s", got ? got : "(null)");
    ck_assert_msg(json_object_equal(g, w), "JSON differs\n got: %s\nwant: %s",
                  json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
    json_object_put(g);
    json_object_put(w);
}

static const char *dump(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

/* No recorded request, header or message may contain a key. */
static void assert_no_secret(const char *s)
{
    if (!s)
        return;
    ck_assert_msg(strstr(s, "SECRET") == NULL, "secret leaked: %s", s);
}

typedef struct chunks {
    json_object *arr;
    llmc_buf content, reasoning, args;
    int n_role;
    const char *finish;
    char finish_buf[32];
    int have_usage;
} chunks;

static int collect(void *ud, json_object *chunk)
{
    chunks *c = ud;
    json_object *choices = jget(chunk, "choices");
    size_t i;
    ck_assert_str_eq(jstr(chunk, "object"), "chat.completion.chunk");
    json_object_array_add(c->arr, json_object_get(chunk));
    for (i = 0; choices && i < json_object_array_length(choices); i++) {
        json_object *ch = json_object_array_get_idx(choices, i), *d = jget(ch, "delta");
        json_object *tcs = jget(d, "tool_calls");
        if (jstr(d, "role"))
            c->n_role++;
        if (jstr(d, "content"))
            llmc_buf_puts(&c->content, jstr(d, "content"));
        if (jstr(d, "reasoning_content"))
            llmc_buf_puts(&c->reasoning, jstr(d, "reasoning_content"));
        if (tcs && jstr(tcs, "0.function.arguments"))
            llmc_buf_puts(&c->args, jstr(tcs, "0.function.arguments"));
        if (jstr(ch, "finish_reason")) {
            snprintf(c->finish_buf, sizeof c->finish_buf, "%s", jstr(ch, "finish_reason"));
            c->finish = c->finish_buf;
        }
    }
    if (jget(chunk, "usage") && !json_object_is_type(jget(chunk, "usage"), json_type_null))
        c->have_usage = 1;
    return 0;
}

static void chunks_init(chunks *c)
{
    memset(c, 0, sizeof *c);
    c->arr = json_object_new_array();
}

static void chunks_free(chunks *c)
{
    json_object_put(c->arr);
    llmc_buf_free(&c->content);
    llmc_buf_free(&c->reasoning);
    llmc_buf_free(&c->args);
}

static llmc_status sink_collect(void *ud, json_object *chunk)
{
    collect(ud, chunk);
    return LLMC_OK;
}

/* Adapter-level: build the HTTP request for `req_json`. */
static llmc_status build(const char *provider, llmc_call_type type, const char *model,
                         const char *key, int stream, const char *req_json, llmc_http_request *out,
                         llmc_err *err)
{
    const llmc_provider_ops *ops = llmc_find_provider(provider);
    llmc_provider_call call;
    json_object *req = json_tokener_parse(req_json);
    llmc_status st;
    ck_assert_ptr_nonnull(ops);
    ck_assert_ptr_nonnull(req);
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    call.call = type;
    call.provider = provider;
    call.model = model;
    call.api_base = strcmp(provider, "ollama") == 0 ? "http://127.0.0.1:11434"
                    : strcmp(provider, "gemini") == 0 ? "https://generativelanguage.googleapis.com"
                                                       : "https://api.anthropic.com";
    call.api_key = key;
    call.api_version = ops->default_api_version;
    call.stream = stream;
    llmc_http_request_init(out);
    llmc_err_clear(err);
    st = ops->build_request(&call, req, out, err);
    json_object_put(req);
    return st;
}

/* Adapter-level: parse a 2xx body. */
static llmc_status parse(const char *provider, llmc_call_type type, const char *model,
                         const char *body, json_object **out, llmc_err *err)
{
    const llmc_provider_ops *ops = llmc_find_provider(provider);
    llmc_provider_call call;
    llmc_http_response resp;
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    call.call = type;
    call.provider = provider;
    call.model = model;
    call.api_base = "http://x";
    memset(&resp, 0, sizeof resp);
    resp.struct_size = sizeof resp;
    resp.status = 200;
    resp.headers = "";
    resp.body = body;
    resp.body_len = strlen(body);
    resp.retry_after_ms = -1;
    llmc_err_clear(err);
    return ops->parse_response(&call, &resp, out, err);
}

/* Adapter-level: map an error answer. */
static llmc_status map_err(const char *provider, long status, const char *body, int64_t retry_ms,
                           llmc_err *err)
{
    const llmc_provider_ops *ops = llmc_find_provider(provider);
    llmc_provider_call call;
    llmc_http_response resp;
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    call.call = LLMC_CALL_CHAT;
    call.provider = provider;
    call.model = "m";
    call.api_base = "http://x";
    memset(&resp, 0, sizeof resp);
    resp.struct_size = sizeof resp;
    resp.status = status;
    resp.headers = "";
    resp.body = body;
    resp.body_len = strlen(body);
    resp.retry_after_ms = retry_ms;
    llmc_err_clear(err);
    if (ops->map_error)
        return ops->map_error(&call, &resp, err);
    return llmc_provider_map_error_default(&call, &resp, err);
}

/* Adapter-level: feed stream events (NULL-terminated pairs of event name
 * and data) and collect the chunks. Returns the status of the first
 * failing event, or OK; *done as the adapter set it. */
static llmc_status feed(const char *provider, const char *const *events, chunks *c, int *done,
                        llmc_err *err)
{
    const llmc_provider_ops *ops = llmc_find_provider(provider);
    llmc_provider_call call;
    void *state = NULL;
    llmc_status st = LLMC_OK;
    size_t i;
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    call.call = LLMC_CALL_CHAT;
    call.provider = provider;
    call.model = "m";
    call.api_base = "http://x";
    call.stream = 1;
    *done = 0;
    llmc_err_clear(err);
    if (ops->stream_new)
        ck_assert_int_eq(ops->stream_new(&call, &state, err), LLMC_OK);
    for (i = 0; events[i + 1] && st == LLMC_OK; i += 2)
        st = ops->parse_stream_event(state, &call, *events[i] ? events[i] : NULL, events[i + 1],
                                     strlen(events[i + 1]), sink_collect, c, done, err);
    if (ops->stream_free)
        ops->stream_free(state);
    return st;
}

/* ================================================================== */
/* Anthropic: adapter level */

START_TEST(anth_build_translates_request)
{
    llmc_http_request r;
    llmc_err err;
    const char *req =
        "{\"model\":\"anthropic/claude-3-5-sonnet-latest\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this image?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":[{\"id\":\"toolu_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"cat\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"a cat\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"stop\":\"END\",\"temperature\":0.2,\"top_p\":0.9,\"top_k\":5,\"user\":\"u-1\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"description\":\"Look up\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}}}";
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-3-5-sonnet-latest", ANTH_KEY, 0, req,
                           &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(r.url.data, "https://api.anthropic.com/v1/messages");
    ck_assert_str_eq(llmc_http_request_header(&r, "x-api-key"), ANTH_KEY);
    ck_assert_str_eq(llmc_http_request_header(&r, "anthropic-version"), "2023-06-01");
    ck_assert_str_eq(llmc_http_request_header(&r, "content-type"), "application/json");
    ck_assert_int_eq(r.stream_format, LLMC_STREAM_NONE);
    assert_no_secret(r.body.data);
    assert_json_eq(
        r.body.data,
        "{\"model\":\"claude-3-5-sonnet-latest\",\"max_tokens\":4096,\"system\":\"Be brief.\","
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is in this image?\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
        "\"data\":\"iVBORw0KGgo=\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Let me check.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"lookup\",\"input\":{\"q\":\"cat\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":\"a cat\"},{\"type\":\"text\",\"text\":\"Thanks\"}]}],"
        "\"stop_sequences\":[\"END\"],\"temperature\":0.2,\"top_p\":0.9,\"top_k\":5,"
        "\"metadata\":{\"user_id\":\"u-1\"},"
        "\"tools\":[{\"name\":\"lookup\",\"description\":\"Look up\",\"input_schema\":{\"type\":"
        "\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"lookup\"}}");
    llmc_http_request_free(&r);

    /* stream, max_tokens given, several system messages, required -> any */
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-x", ANTH_KEY, 1,
                           "{\"model\":\"claude-x\",\"max_tokens\":50,\"messages\":["
                           "{\"role\":\"system\",\"content\":\"A\"},{\"role\":\"system\",\"content\":\"B\"},"
                           "{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[\"x\",\"y\"],"
                           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                           "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
                           "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}",
                           &r, &err),
                     LLMC_OK);
    ck_assert_int_eq(r.stream_format, LLMC_STREAM_SSE);
    assert_json_eq(r.body.data,
                   "{\"model\":\"claude-x\",\"max_tokens\":50,\"stream\":true,"
                   "\"system\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"text\",\"text\":\"B\"}],"
                   "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
                   "\"stop_sequences\":[\"x\",\"y\"],"
                   "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
                   "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
                   "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}");
    llmc_http_request_free(&r);
}
END_TEST

START_TEST(anth_build_refuses_bad_input)
{
    llmc_http_request r;
    llmc_err err;
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-x", ANTH_KEY, 0,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "logprobs"));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-x", ANTH_KEY, 0,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":2}", &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"n\""));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-x", ANTH_KEY, 0,
                           "{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\",\"tool_calls\":"
                           "[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                           "\"arguments\":\"not json\"}}]}]}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "messages[0].tool_calls[0]"));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("anthropic", LLMC_CALL_CHAT, "claude-x", ANTH_KEY, 0,
                           "{\"messages\":[{\"role\":\"system\",\"content\":\"only system\"}]}", &r, &err),
                     LLMC_EINVAL);
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("anthropic", LLMC_CALL_EMBEDDING, "claude-x", ANTH_KEY, 0,
                           "{\"input\":[\"a\"]}", &r, &err),
                     LLMC_ENOTSUP);
    llmc_http_request_free(&r);
}
END_TEST

START_TEST(anth_parse_normalises_response)
{
    json_object *o = NULL;
    llmc_err err;
    const char *body =
        "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-3-7-sonnet-20250219\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"Let me think.\",\"signature\":\"abc\"},"
        "{\"type\":\"text\",\"text\":\"I'll check \"},{\"type\":\"text\",\"text\":\"the weather.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_01A\",\"name\":\"get_weather\","
        "\"input\":{\"location\":\"San Francisco, CA\"}}],"
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":12,\"output_tokens\":30,\"cache_creation_input_tokens\":100,"
        "\"cache_read_input_tokens\":200}}";
    ck_assert_int_eq(parse("anthropic", LLMC_CALL_CHAT, "claude", body, &o, &err), LLMC_OK);
    ck_assert_str_eq(jstr(o, "id"), "msg_01XFDUDYJgAACzvnptvVoYEL");
    ck_assert_str_eq(jstr(o, "object"), "chat.completion");
    ck_assert_str_eq(jstr(o, "model"), "claude-3-7-sonnet-20250219");
    ck_assert_str_eq(jstr(o, "choices.0.message.role"), "assistant");
    ck_assert_str_eq(jstr(o, "choices.0.message.content"), "I'll check the weather.");
    ck_assert_str_eq(jstr(o, "choices.0.message.reasoning_content"), "Let me think.");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.id"), "toolu_01A");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.type"), "function");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"),
                   "{\"location\":\"San Francisco, CA\"}");
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 312);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 30);
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 342);
    ck_assert_int_eq(jint(o, "usage.prompt_tokens_details.cached_tokens"), 200);
    ck_assert_int_eq(jint(o, "usage.cache_read_input_tokens"), 200);
    ck_assert_int_eq(jint(o, "usage.cache_creation_input_tokens"), 100);
    json_object_put(o);

    /* stop reasons */
    {
        static const char *const map[][2] = {{"end_turn", "stop"},
                                             {"stop_sequence", "stop"},
                                             {"max_tokens", "length"},
                                             {"tool_use", "tool_calls"}};
        size_t i;
        for (i = 0; i < 4; i++) {
            char b[512];
            snprintf(b, sizeof b,
                     "{\"id\":\"m\",\"type\":\"message\",\"model\":\"c\",\"content\":[{\"type\":\"text\","
                     "\"text\":\"x\"}],\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,"
                     "\"output_tokens\":1}}",
                     map[i][0]);
            ck_assert_int_eq(parse("anthropic", LLMC_CALL_CHAT, "c", b, &o, &err), LLMC_OK);
            ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), map[i][1]);
            json_object_put(o);
        }
    }
    ck_assert_int_eq(parse("anthropic", LLMC_CALL_CHAT, "c", "{\"id\":\"m\"}", &o, &err), LLMC_EPROTO);
    ck_assert_int_eq(parse("anthropic", LLMC_CALL_CHAT, "c", "{\"id\":", &o, &err), LLMC_EPROTO);
}
END_TEST

START_TEST(anth_stream_events)
{
    /* The event sequence of Anthropic's streaming documentation,
     * including thinking, a tool_use block and a ping. */
    static const char *const ev[] = {
        "message_start",
        "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":"
        "{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":7}}}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
        "\"thinking\":\"\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
        "\"thinking\":\"Hmm.\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
        "\"signature\":\"sig\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "ping", "{\"type\": \"ping\"}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}",
        "content_block_start",
        "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
        "\"id\":\"toolu_9\",\"name\":\"get_weather\",\"input\":{}}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"location\\\": \\\"Par\"}}",
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"is\\\"}\"}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}",
        "message_delta",
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
        "\"usage\":{\"output_tokens\":89}}",
        "message_stop", "{\"type\":\"message_stop\"}",
        NULL, NULL};
    chunks c;
    int done;
    llmc_err err;
    json_object *last, *first_tool = NULL;
    size_t i;
    chunks_init(&c);
    ck_assert_int_eq(feed("anthropic", ev, &c, &done, &err), LLMC_OK);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(c.n_role, 1);
    ck_assert_str_eq(c.content.data, "Hello!");
    ck_assert_str_eq(c.reasoning.data, "Hmm.");
    ck_assert_str_eq(c.args.data, "{\"location\": \"Paris\"}");
    ck_assert_str_eq(c.finish, "tool_calls");
    for (i = 0; i < json_object_array_length(c.arr); i++) {
        json_object *ch = json_object_array_get_idx(c.arr, i);
        ck_assert_str_eq(jstr(ch, "id"), "msg_1");
        ck_assert_str_eq(jstr(ch, "model"), "claude-x");
        if (!first_tool && jget(ch, "choices.0.delta.tool_calls"))
            first_tool = ch;
    }
    ck_assert_ptr_nonnull(first_tool);
    ck_assert_str_eq(jstr(first_tool, "choices.0.delta.tool_calls.0.id"), "toolu_9");
    ck_assert_str_eq(jstr(first_tool, "choices.0.delta.tool_calls.0.function.name"), "get_weather");
    ck_assert_int_eq(jint(first_tool, "choices.0.delta.tool_calls.0.index"), 0);
    last = json_object_array_get_idx(c.arr, json_object_array_length(c.arr) - 1);
    ck_assert_int_eq(jint(last, "usage.prompt_tokens"), 32);
    ck_assert_int_eq(jint(last, "usage.completion_tokens"), 89);
    ck_assert_int_eq(jint(last, "usage.prompt_tokens_details.cached_tokens"), 7);
    chunks_free(&c);

    /* An error event ends the stream with the mapped status. */
    {
        static const char *const bad[] = {
            "message_start",
            "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{}}}",
            "error",
            "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
            NULL, NULL};
        chunks_init(&c);
        ck_assert_int_eq(feed("anthropic", bad, &c, &done, &err), LLMC_EUPSTREAM);
        ck_assert_int_eq(done, 0);
        ck_assert_ptr_nonnull(strstr(err.msg, "Overloaded"));
        chunks_free(&c);
    }
}
END_TEST

START_TEST(anth_map_errors)
{
    llmc_err err;
    ck_assert_int_eq(map_err("anthropic", 401,
                             "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                             "\"message\":\"invalid x-api-key\"}}",
                             -1, &err),
                     LLMC_EAUTH);
    ck_assert_int_eq(err.native, 401);
    ck_assert_ptr_nonnull(strstr(err.msg, "invalid x-api-key"));
    ck_assert_int_eq(map_err("anthropic", 429,
                             "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                             "\"message\":\"Number of request tokens has exceeded your per-minute rate limit\"}}",
                             3000, &err),
                     LLMC_ERATELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "3000 ms"));
    ck_assert_int_eq(map_err("anthropic", 400,
                             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                             "\"message\":\"prompt is too long: 215000 tokens > 200000 maximum\"}}",
                             -1, &err),
                     LLMC_ECONTEXT);
    ck_assert_int_eq(map_err("anthropic", 400,
                             "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                             "\"message\":\"max_tokens: Field required\"}}",
                             -1, &err),
                     LLMC_EBADREQUEST);
    ck_assert_int_eq(map_err("anthropic", 529,
                             "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                             "\"message\":\"Overloaded\"}}",
                             -1, &err),
                     LLMC_EUPSTREAM);
    ck_assert_int_eq(map_err("anthropic", 500, "<html>oops</html>", -1, &err), LLMC_EUPSTREAM);
    ck_assert_int_eq(map_err("anthropic", 403,
                             "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\","
                             "\"message\":\"no access\"}}",
                             -1, &err),
                     LLMC_EAUTH);
}
END_TEST

/* ================================================================== */
/* Anthropic through the client and the fake server */

static const char *const ANTH_REQ =
    "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"hello there\"}],\"temperature\":0.5,\"max_tokens\":100}";

START_TEST(anth_client_wire_and_cache)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    json_object *o;
    const fp_request *r;
    size_t i;
    if (!open_cache(_i))
        return;
    make_client("anthropic", ANTH_KEY, 0);
    ck_assert_msg(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err) == LLMC_OK, "%s",
                  err.msg);
    ck_assert_int_eq((int)fp_count(srv), 1);
    r = fp_last(srv);
    ck_assert_str_eq(r->method, "POST");
    ck_assert_str_eq(r->target, "/v1/messages");
    ck_assert_str_eq(fp_header_get(r, "x-api-key"), ANTH_KEY);
    ck_assert_str_eq(fp_header_get(r, "anthropic-version"), "2023-06-01");
    ck_assert_ptr_nonnull(strstr(fp_header_get(r, "content-type"), "application/json"));
    ck_assert_ptr_null(fp_header_get(r, "authorization"));
    assert_json_eq(r->body,
                   "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":100,\"system\":\"You are terse.\","
                   "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello there\"}]}],"
                   "\"temperature\":0.5}");
    ck_assert_int_eq(llmc_response_cache_hit(resp), 0);
    ck_assert_int_eq(llmc_response_cache_stored(resp), 1);
    ck_assert_str_eq(llmc_response_content(resp), "echo: hello there");
    ck_assert_str_eq(llmc_response_provider(resp), "anthropic");
    o = llmc_response_json(resp);
    ck_assert_str_eq(jstr(o, "object"), "chat.completion");
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "stop");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 11);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 17);
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 28);
    assert_no_secret(llmc_response_text(resp, NULL));

    /* Same request, members reordered: a hit, nothing upstream. */
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"max_tokens\":100,\"temperature\":0.50,\"messages\":["
                                          "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                                          "{\"content\":\"hello there\",\"role\":\"user\"}],"
                                          "\"model\":\"anthropic/claude-3-5-haiku-latest\"}",
                                          LLMC_ZSTR, &resp2, &err),
                     LLMC_OK);
    ck_assert_int_eq((int)fp_count(srv), 1);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_str_eq(llmc_response_content(resp2), "echo: hello there");
    ck_assert_str_eq(llmc_response_cache_key(resp2), llmc_response_cache_key(resp));
    o = llmc_response_json(resp2);
    ck_assert(json_object_get_boolean(jget(o, "cache")));
    llmc_response_free(resp2);

    /* Any answer-changing parameter misses. */
    {
        static const char *const variants[] = {
            "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"messages\":[{\"role\":\"system\","
            "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"hello there\"}],"
            "\"temperature\":0.6,\"max_tokens\":100}",
            "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"messages\":[{\"role\":\"system\","
            "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"hello there\"}],"
            "\"temperature\":0.5,\"max_tokens\":101}",
            "{\"model\":\"anthropic/claude-3-5-sonnet-latest\",\"messages\":[{\"role\":\"system\","
            "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"hello there\"}],"
            "\"temperature\":0.5,\"max_tokens\":100}",
            "{\"model\":\"anthropic/claude-3-5-haiku-latest\",\"messages\":[{\"role\":\"system\","
            "\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"hello there\"}],"
            "\"temperature\":0.5,\"max_tokens\":100,\"stop\":\"x\"}"};
        for (i = 0; i < 4; i++) {
            ck_assert_msg(llmc_completion_json(client, variants[i], LLMC_ZSTR, &resp2, &err) == LLMC_OK,
                          "%s", err.msg);
            ck_assert_int_eq(llmc_response_cache_hit(resp2), 0);
            ck_assert_int_eq((int)fp_count(srv), (int)(2 + i));
            llmc_response_free(resp2);
        }
    }
    for (i = 0; i < fp_count(srv); i++)
        assert_no_secret(fp_request_at(srv, i)->body);
    llmc_response_free(resp);
}
END_TEST

START_TEST(anth_client_tools)
{
    llmc_response *resp = NULL;
    llmc_err err;
    json_object *o;
    const char *req =
        "{\"model\":\"claude-3-5-haiku-latest\",\"messages\":[{\"role\":\"user\",\"content\":\"weather\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}],\"tool_choice\":\"auto\"}";
    ck_assert_int_eq(open_cache(0), 1);
    make_client("anthropic", ANTH_KEY, 0);
    /* Bare claude-* name: inferred to anthropic. */
    ck_assert_msg(llmc_completion_json(client, req, LLMC_ZSTR, &resp, &err) == LLMC_OK, "%s", err.msg);
    assert_json_eq(fp_last(srv)->body,
                   "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":4096,\"messages\":[{\"role\":"
                   "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather\"}]}],\"tools\":[{\"name\":"
                   "\"get_weather\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":"
                   "\"string\"}}}}],\"tool_choice\":{\"type\":\"auto\"}}");
    o = llmc_response_json(resp);
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.id"), "toolu_fake01");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"q\":\"weather\"}");
    llmc_response_free(resp);

    /* Streamed: tool_use block and input_json_delta fragments assemble
     * into the same shape, which is stored and then served as a hit. */
    {
        chunks c;
        const char *sreq =
            "{\"model\":\"claude-3-5-haiku-latest\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"streamed weather\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
            "\"get_weather\"}}]}";
        chunks_init(&c);
        ck_assert_msg(llmc_completion_stream_json(client, sreq, LLMC_ZSTR, collect, &c, &resp, &err) ==
                          LLMC_OK,
                      "%s", err.msg);
        ck_assert_str_eq(c.args.data, "{\"q\": \"x\"}");
        ck_assert_str_eq(c.finish, "tool_calls");
        o = llmc_response_json(resp);
        ck_assert_str_eq(jstr(o, "choices.0.message.content"), "echo: streamed weather");
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.id"), "toolu_fake01");
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
        assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"q\":\"x\"}");
        ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
        llmc_response_free(resp);
        chunks_free(&c);
        ck_assert_int_eq(llmc_completion_json(client, sreq, LLMC_ZSTR, &resp, &err), LLMC_OK);
        ck_assert_int_eq(llmc_response_cache_hit(resp), 1);
        ck_assert_int_eq((int)fp_count(srv), 2);
        o = llmc_response_json(resp);
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
        llmc_response_free(resp);
    }

    /* Malformed bodies are protocol errors and are not stored. */
    fp_malformed_next(srv, 1);
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"claude-3-5-haiku-latest\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"mangled\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_EPROTO);
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"claude-3-5-haiku-latest\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"mangled\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 0);
    ck_assert_str_eq(llmc_response_content(resp), "echo: mangled");
    llmc_response_free(resp);
}
END_TEST

START_TEST(anth_client_stream_then_hit)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    chunks c;
    json_object *o;
    if (!open_cache(_i))
        return;
    make_client("anthropic", ANTH_KEY, 0);
    chunks_init(&c);
    ck_assert_msg(llmc_completion_stream_json(client, ANTH_REQ, LLMC_ZSTR, collect, &c, &resp, &err) ==
                      LLMC_OK,
                  "%s", err.msg);
    ck_assert_int_eq((int)fp_count(srv), 1);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "x-api-key"), ANTH_KEY);
    o = json_tokener_parse(fp_last(srv)->body);
    ck_assert(json_object_get_boolean(jget(o, "stream")));
    json_object_put(o);
    ck_assert_int_eq(c.n_role, 1);
    ck_assert_str_eq(c.content.data, "echo: hello there");
    ck_assert_str_eq(c.finish, "stop");
    ck_assert_int_eq(c.have_usage, 1);
    ck_assert_int_eq(llmc_response_cache_stored(resp), 1);
    ck_assert_str_eq(llmc_response_content(resp), "echo: hello there");
    chunks_free(&c);

    /* The streamed answer was stored: the plain call is a hit. */
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp2, &err), LLMC_OK);
    ck_assert_int_eq((int)fp_count(srv), 1);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_str_eq(llmc_response_content(resp2), "echo: hello there");
    o = llmc_response_json(resp2);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 17);
    llmc_response_free(resp2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(anth_client_cut_stream_not_stored)
{
    llmc_response *resp = NULL;
    llmc_err err;
    chunks c;
    ck_assert_int_eq(open_cache(0), 1);
    make_client("anthropic", ANTH_KEY, 0);
    chunks_init(&c);
    fp_cut_stream_next(srv, 4);
    ck_assert_int_eq(llmc_completion_stream_json(client, ANTH_REQ, LLMC_ZSTR, collect, &c, &resp, &err),
                     LLMC_ESTREAM);
    ck_assert_ptr_null(resp);
    ck_assert_int_eq((int)fp_count(srv), 1);
    chunks_free(&c);
    /* Nothing was stored: the next call goes upstream again. */
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 0);
    ck_assert_int_eq((int)fp_count(srv), 2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(anth_client_errors)
{
    llmc_response *resp = NULL;
    llmc_err err;
    ck_assert_int_eq(open_cache(0), 1);
    make_client("anthropic", ANTH_KEY, 0);
    fp_push_reply(srv, 429, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}",
                  "Retry-After: 7\r\n");
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_ERATELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "slow down"));
    assert_no_secret(err.msg);
    fp_push_reply(srv, 400, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                  "\"prompt is too long: 215000 tokens > 200000 maximum\"}}",
                  NULL);
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_ECONTEXT);
    fp_push_reply(srv, 401, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":"
                  "\"invalid x-api-key\"}}",
                  NULL);
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_EAUTH);
    assert_no_secret(err.msg);
    fp_push_reply(srv, 529, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
                  NULL);
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_EUPSTREAM);
    ck_assert_int_eq(err.native, 529);
    ck_assert_int_eq((int)fp_count(srv), 4);
    /* None of the errors was stored. */
    ck_assert_int_eq(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 0);
    llmc_response_free(resp);
}
END_TEST

START_TEST(anth_client_retries_overloaded)
{
    llmc_response *resp = NULL;
    llmc_err err;
    ck_assert_int_eq(open_cache(0), 1);
    make_client("anthropic", ANTH_KEY, 2);
    fp_push_reply(srv, 529, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
                  "Retry-After: 0\r\n");
    ck_assert_msg(llmc_completion_json(client, ANTH_REQ, LLMC_ZSTR, &resp, &err) == LLMC_OK, "%s",
                  err.msg);
    ck_assert_int_eq((int)fp_count(srv), 2);
    ck_assert_int_eq(llmc_response_attempts(resp), 2);
    ck_assert_str_eq(llmc_response_content(resp), "echo: hello there");
    llmc_response_free(resp);
}
END_TEST

/* ================================================================== */
/* Gemini: adapter level */

START_TEST(gem_build_translates_request)
{
    llmc_http_request r;
    llmc_err err;
    const char *req =
        "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Describe\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/4AAQ\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"cat\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"found\\\":true}\"},"
        "{\"role\":\"user\",\"content\":\"and?\"}],"
        "\"temperature\":0.3,\"top_p\":0.8,\"top_k\":20,\"max_tokens\":64,\"stop\":[\"END\"],\"n\":2,"
        "\"seed\":7,\"response_format\":{\"type\":\"json_object\"},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"description\":\"Look up\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}},"
        "\"additionalProperties\":false}}}],\"tool_choice\":\"required\","
        "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]}";
    ck_assert_int_eq(build("gemini", LLMC_CALL_CHAT, "gemini-1.5-flash", GEM_KEY, 0, req, &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(r.url.data,
                     "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent");
    ck_assert_str_eq(llmc_http_request_header(&r, "x-goog-api-key"), GEM_KEY);
    ck_assert_int_eq(r.url_has_secret, 0);
    assert_no_secret(r.url.data);
    assert_no_secret(r.body.data);
    assert_json_eq(
        r.body.data,
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"}]},"
        "\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Describe\"},{\"inlineData\":{\"mimeType\":\"image/jpeg\","
        "\"data\":\"/9j/4AAQ\"}}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"lookup\",\"args\":{\"q\":\"cat\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"lookup\",\"response\":"
        "{\"found\":true}}},{\"text\":\"and?\"}]}],"
        "\"generationConfig\":{\"temperature\":0.3,\"topP\":0.8,\"topK\":20,\"maxOutputTokens\":64,"
        "\"stopSequences\":[\"END\"],\"candidateCount\":2,\"seed\":7,"
        "\"responseMimeType\":\"application/json\"},"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"lookup\",\"description\":\"Look up\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}]}],"
        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\"}},"
        "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]}");
    llmc_http_request_free(&r);

    ck_assert_int_eq(build("gemini", LLMC_CALL_CHAT, "gemini-2.0-flash", GEM_KEY, 1,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":\"x\","
                           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                           "{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"g\","
                           "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
                           "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
                           &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.url.data, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "gemini-2.0-flash:streamGenerateContent?alt=sse");
    ck_assert_int_eq(r.stream_format, LLMC_STREAM_SSE);
    assert_json_eq(r.body.data,
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                   "\"generationConfig\":{\"stopSequences\":[\"x\"]},"
                   "\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"},{\"name\":\"g\"}]}],"
                   "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
                   "\"allowedFunctionNames\":[\"f\"]}}}");
    llmc_http_request_free(&r);

    /* Embeddings: one item -> embedContent, several -> batchEmbedContents. */
    ck_assert_int_eq(build("gemini", LLMC_CALL_EMBEDDING, "text-embedding-004", GEM_KEY, 0,
                           "{\"input\":[\"hello\"],\"dimensions\":8}", &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.url.data, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "text-embedding-004:embedContent");
    assert_json_eq(r.body.data, "{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":"
                                "[{\"text\":\"hello\"}]},\"outputDimensionality\":8}");
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("gemini", LLMC_CALL_EMBEDDING, "text-embedding-004", GEM_KEY, 0,
                           "{\"input\":[\"a\",\"b\"],\"task_type\":\"RETRIEVAL_QUERY\"}", &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.url.data, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "text-embedding-004:batchEmbedContents");
    assert_json_eq(r.body.data,
                   "{\"requests\":[{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":"
                   "[{\"text\":\"a\"}]},\"taskType\":\"RETRIEVAL_QUERY\"},{\"model\":\"models/"
                   "text-embedding-004\",\"content\":{\"parts\":[{\"text\":\"b\"}]},\"taskType\":"
                   "\"RETRIEVAL_QUERY\"}]}");
    llmc_http_request_free(&r);

    /* Refusals name the offending part. */
    ck_assert_int_eq(build("gemini", LLMC_CALL_CHAT, "g", GEM_KEY, 0,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logit_bias\":{\"1\":2}}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "logit_bias"));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("gemini", LLMC_CALL_CHAT, "g", GEM_KEY, 0,
                           "{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}]}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "messages[0]"));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("gemini", LLMC_CALL_EMBEDDING, "e", GEM_KEY, 0, "{\"input\":[[1,2,3]]}", &r,
                           &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "input[0]"));
    llmc_http_request_free(&r);
}
END_TEST

START_TEST(gem_parse_normalises_response)
{
    json_object *o = NULL;
    llmc_err err;
    const char *body =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Thinking...\",\"thought\":true},"
        "{\"text\":\"The answer\"},{\"text\":\" is 4.\"},{\"functionCall\":{\"name\":\"calc\","
        "\"args\":{\"x\":2}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0,"
        "\"safetyRatings\":[]}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":5,"
        "\"totalTokenCount\":18,\"cachedContentTokenCount\":4,\"thoughtsTokenCount\":3},"
        "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc123\"}";
    ck_assert_int_eq(parse("gemini", LLMC_CALL_CHAT, "gemini-2.5-flash", body, &o, &err), LLMC_OK);
    ck_assert_str_eq(jstr(o, "id"), "abc123");
    ck_assert_str_eq(jstr(o, "object"), "chat.completion");
    ck_assert_str_eq(jstr(o, "model"), "gemini-2.5-flash");
    ck_assert_str_eq(jstr(o, "choices.0.message.content"), "The answer is 4.");
    ck_assert_str_eq(jstr(o, "choices.0.message.reasoning_content"), "Thinking...");
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "calc");
    assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"x\":2}");
    ck_assert_ptr_nonnull(jstr(o, "choices.0.message.tool_calls.0.id"));
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 10);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 8);
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 18);
    ck_assert_int_eq(jint(o, "usage.prompt_tokens_details.cached_tokens"), 4);
    ck_assert_int_eq(jint(o, "usage.completion_tokens_details.reasoning_tokens"), 3);
    json_object_put(o);
    {
        static const char *const map[][2] = {{"MAX_TOKENS", "length"},
                                             {"SAFETY", "content_filter"},
                                             {"RECITATION", "content_filter"},
                                             {"STOP", "stop"}};
        size_t i;
        for (i = 0; i < 4; i++) {
            char b[512];
            snprintf(b, sizeof b,
                     "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}],\"role\":\"model\"},"
                     "\"finishReason\":\"%s\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1,"
                     "\"candidatesTokenCount\":1,\"totalTokenCount\":2}}",
                     map[i][0]);
            ck_assert_int_eq(parse("gemini", LLMC_CALL_CHAT, "g", b, &o, &err), LLMC_OK);
            ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), map[i][1]);
            json_object_put(o);
        }
    }
    /* A blocked prompt: one empty, filtered choice. */
    ck_assert_int_eq(parse("gemini", LLMC_CALL_CHAT, "g",
                           "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
                           "{\"promptTokenCount\":3,\"totalTokenCount\":3}}",
                           &o, &err),
                     LLMC_OK);
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "content_filter");
    ck_assert(json_object_is_type(jget(o, "choices.0.message.content"), json_type_null));
    json_object_put(o);
    /* Embeddings, both shapes. */
    ck_assert_int_eq(parse("gemini", LLMC_CALL_EMBEDDING, "text-embedding-004",
                           "{\"embedding\":{\"values\":[0.1,-0.2]}}", &o, &err),
                     LLMC_OK);
    assert_json_eq(dump(o),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[0.1,-0.2]}],\"model\":\"text-embedding-004\",\"usage\":"
                   "{\"prompt_tokens\":0,\"total_tokens\":0}}");
    json_object_put(o);
    ck_assert_int_eq(parse("gemini", LLMC_CALL_EMBEDDING, "e",
                           "{\"embeddings\":[{\"values\":[1]},{\"values\":[2]}]}", &o, &err),
                     LLMC_OK);
    ck_assert_int_eq(jint(o, "data.1.index"), 1);
    ck_assert_int_eq(jint(o, "data.1.embedding.0"), 2);
    json_object_put(o);
    ck_assert_int_eq(parse("gemini", LLMC_CALL_EMBEDDING, "e", "{\"foo\":1}", &o, &err), LLMC_EPROTO);
}
END_TEST

START_TEST(gem_stream_events)
{
    static const char *const ev[] = {
        "", "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],"
            "\"usageMetadata\":{\"promptTokenCount\":4,\"totalTokenCount\":4},\"modelVersion\":\"gemini-x\","
            "\"responseId\":\"r1\"}",
        "", "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"},{\"functionCall\":{\"name\":\"f\","
            "\"args\":{\"a\":1}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],"
            "\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":6,\"totalTokenCount\":10},"
            "\"modelVersion\":\"gemini-x\",\"responseId\":\"r1\"}",
        NULL, NULL};
    chunks c;
    int done;
    llmc_err err;
    json_object *first, *last;
    chunks_init(&c);
    ck_assert_int_eq(feed("gemini", ev, &c, &done, &err), LLMC_OK);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(c.n_role, 1);
    ck_assert_str_eq(c.content.data, "Hello");
    ck_assert_str_eq(c.args.data, "{\"a\":1}");
    ck_assert_str_eq(c.finish, "tool_calls");
    ck_assert_int_eq((int)json_object_array_length(c.arr), 2);
    first = json_object_array_get_idx(c.arr, 0);
    last = json_object_array_get_idx(c.arr, 1);
    ck_assert_str_eq(jstr(first, "id"), "r1");
    ck_assert_str_eq(jstr(last, "id"), "r1");
    ck_assert_ptr_null(jget(first, "usage"));
    ck_assert_int_eq(jint(last, "usage.total_tokens"), 10);
    ck_assert_str_eq(jstr(last, "choices.0.delta.tool_calls.0.function.name"), "f");
    ck_assert_int_eq(jint(last, "choices.0.delta.tool_calls.0.index"), 0);
    chunks_free(&c);

    /* Without a finishReason the stream never completes. */
    {
        static const char *const cut[] = {"", "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]},"
                                              "\"index\":0}]}",
                                          NULL, NULL};
        chunks_init(&c);
        ck_assert_int_eq(feed("gemini", cut, &c, &done, &err), LLMC_OK);
        ck_assert_int_eq(done, 0);
        chunks_free(&c);
    }
    /* An error object in the stream. */
    {
        static const char *const bad[] = {"", "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                                              "\"status\":\"UNAVAILABLE\"}}",
                                          NULL, NULL};
        chunks_init(&c);
        ck_assert_int_eq(feed("gemini", bad, &c, &done, &err), LLMC_EUPSTREAM);
        ck_assert_ptr_nonnull(strstr(err.msg, "overloaded"));
        chunks_free(&c);
    }
}
END_TEST

START_TEST(gem_map_errors)
{
    llmc_err err;
    ck_assert_int_eq(map_err("gemini", 400,
                             "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API "
                             "key.\",\"status\":\"INVALID_ARGUMENT\"}}",
                             -1, &err),
                     LLMC_EAUTH);
    ck_assert_int_eq(map_err("gemini", 403,
                             "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":\"PERMISSION_DENIED\"}}",
                             -1, &err),
                     LLMC_EAUTH);
    ck_assert_int_eq(map_err("gemini", 429,
                             "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":"
                             "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
                             "google.rpc.RetryInfo\",\"retryDelay\":\"37s\"}]}}",
                             -1, &err),
                     LLMC_ERATELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "37s"));
    ck_assert_int_eq(map_err("gemini", 400,
                             "{\"error\":{\"code\":400,\"message\":\"The input token count (1200000) exceeds "
                             "the maximum number of tokens allowed (1048576).\",\"status\":\"INVALID_ARGUMENT\"}}",
                             -1, &err),
                     LLMC_ECONTEXT);
    ck_assert_int_eq(map_err("gemini", 400,
                             "{\"error\":{\"code\":400,\"message\":\"Invalid JSON payload\",\"status\":"
                             "\"INVALID_ARGUMENT\"}}",
                             -1, &err),
                     LLMC_EBADREQUEST);
    ck_assert_int_eq(map_err("gemini", 500,
                             "{\"error\":{\"code\":500,\"message\":\"Internal error\",\"status\":\"INTERNAL\"}}",
                             -1, &err),
                     LLMC_EUPSTREAM);
    ck_assert_int_eq(err.native, 500);
    ck_assert_int_eq(map_err("gemini", 404,
                             "[{\"error\":{\"code\":404,\"message\":\"models/nope is not found\",\"status\":"
                             "\"NOT_FOUND\"}}]",
                             -1, &err),
                     LLMC_EBADREQUEST);
    ck_assert_ptr_nonnull(strstr(err.msg, "models/nope"));
}
END_TEST

/* ================================================================== */
/* Gemini through the client */

static const char *const GEM_REQ =
    "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
    "{\"role\":\"user\",\"content\":\"good morning\"}],\"max_tokens\":32,\"temperature\":0}";

START_TEST(gem_client_wire_and_cache)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    json_object *o;
    const fp_request *r;
    if (!open_cache(_i))
        return;
    make_client("gemini", GEM_KEY, 0);
    ck_assert_msg(llmc_completion_json(client, GEM_REQ, LLMC_ZSTR, &resp, &err) == LLMC_OK, "%s", err.msg);
    ck_assert_int_eq((int)fp_count(srv), 1);
    r = fp_last(srv);
    ck_assert_str_eq(r->method, "POST");
    ck_assert_str_eq(r->target, "/v1beta/models/gemini-1.5-flash:generateContent");
    ck_assert_str_eq(fp_header_get(r, "x-goog-api-key"), GEM_KEY);
    assert_no_secret(r->target);
    ck_assert_ptr_null(fp_header_get(r, "authorization"));
    assert_json_eq(r->body,
                   "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be kind.\"}]},\"contents\":[{\"role\":"
                   "\"user\",\"parts\":[{\"text\":\"good morning\"}]}],\"generationConfig\":{"
                   "\"maxOutputTokens\":32,\"temperature\":0}}");
    ck_assert_str_eq(llmc_response_content(resp), "echo: good morning");
    o = llmc_response_json(resp);
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "stop");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 12);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 18);
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 30);

    ck_assert_int_eq(llmc_completion_json(client, GEM_REQ, LLMC_ZSTR, &resp2, &err), LLMC_OK);
    ck_assert_int_eq((int)fp_count(srv), 1);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_str_eq(llmc_response_content(resp2), "echo: good morning");
    llmc_response_free(resp2);
    /* top_p changes the answer: a miss. */
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":"
                                          "\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":"
                                          "\"good morning\"}],\"max_tokens\":32,\"temperature\":0,\"top_p\":0.5}",
                                          LLMC_ZSTR, &resp2, &err),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 0);
    ck_assert_int_eq((int)fp_count(srv), 2);
    llmc_response_free(resp2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(gem_client_stream_then_hit)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    chunks c;
    if (!open_cache(_i))
        return;
    make_client("gemini", GEM_KEY, 0);
    chunks_init(&c);
    ck_assert_msg(llmc_completion_stream_json(client, GEM_REQ, LLMC_ZSTR, collect, &c, &resp, &err) ==
                      LLMC_OK,
                  "%s", err.msg);
    ck_assert_str_eq(fp_last(srv)->target, "/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse");
    ck_assert_str_eq(fp_header_get(fp_last(srv), "x-goog-api-key"), GEM_KEY);
    ck_assert_str_eq(c.content.data, "echo: good morning");
    ck_assert_str_eq(c.finish, "stop");
    ck_assert_int_eq(c.have_usage, 1);
    chunks_free(&c);
    ck_assert_int_eq(llmc_completion_json(client, GEM_REQ, LLMC_ZSTR, &resp2, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_int_eq((int)fp_count(srv), 1);
    ck_assert_str_eq(llmc_response_content(resp2), "echo: good morning");
    llmc_response_free(resp2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(gem_client_cut_stream_and_errors)
{
    llmc_response *resp = NULL;
    llmc_err err;
    chunks c;
    ck_assert_int_eq(open_cache(0), 1);
    make_client("gemini", GEM_KEY, 0);
    chunks_init(&c);
    fp_cut_stream_next(srv, 1);
    ck_assert_int_eq(llmc_completion_stream_json(client, GEM_REQ, LLMC_ZSTR, collect, &c, &resp, &err),
                     LLMC_ESTREAM);
    chunks_free(&c);
    ck_assert_int_eq(llmc_completion_json(client, GEM_REQ, LLMC_ZSTR, &resp, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 0);
    ck_assert_int_eq((int)fp_count(srv), 2);
    llmc_response_free(resp);
    /* 429 with Google's body */
    fp_push_reply(srv, 429, "application/json",
                  "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\","
                  "\"status\":\"RESOURCE_EXHAUSTED\"}}",
                  "Retry-After: 9\r\n");
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"other\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_ERATELIMIT);
    llmc_client_free(client);
    client = NULL;
    /* The fake server answers the key "bad" as Google does: 400. */
    make_client("gemini", "bad", 0);
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"other\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_EAUTH);
    ck_assert_int_eq(err.native, 400);
    llmc_client_free(client);
    client = NULL;

    /* 503s are retried up to max_retries, then the call fails. */
    make_client("gemini", GEM_KEY, 2);
    fp_reset(srv);
    fp_fail_next(srv, 5, 503, 0);
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"retry me\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_EUPSTREAM);
    ck_assert_int_eq((int)fp_count(srv), 3);
    /* and a 503 followed by success is one answer after two attempts */
    fp_reset(srv);
    fp_fail_next(srv, 1, 503, 0);
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":"
                                          "\"user\",\"content\":\"retry me\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_attempts(resp), 2);
    ck_assert_str_eq(llmc_response_content(resp), "echo: retry me");
    llmc_response_free(resp);
}
END_TEST

START_TEST(gem_client_embeddings_partial_hits)
{
    llmc_response *resp = NULL;
    llmc_err err;
    json_object *o;
    const fp_request *r;
    if (!open_cache(_i))
        return;
    make_client("gemini", GEM_KEY, 0);
    ck_assert_msg(llmc_embedding_json(client,
                                      "{\"model\":\"gemini/text-embedding-004\",\"input\":[\"alpha\",\"beta\"]}",
                                      LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    r = fp_last(srv);
    ck_assert_str_eq(r->target, "/v1beta/models/text-embedding-004:batchEmbedContents");
    ck_assert_str_eq(fp_header_get(r, "x-goog-api-key"), GEM_KEY);
    assert_json_eq(r->body, "{\"requests\":[{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":"
                            "[{\"text\":\"alpha\"}]}},{\"model\":\"models/text-embedding-004\",\"content\":"
                            "{\"parts\":[{\"text\":\"beta\"}]}}]}");
    o = llmc_response_json(resp);
    ck_assert_str_eq(jstr(o, "object"), "list");
    ck_assert_int_eq((int)json_object_array_length(jget(o, "data")), 2);
    ck_assert_int_eq(jint(o, "data.1.index"), 1);
    ck_assert_int_eq((int)json_object_array_length(jget(o, "data.0.embedding")), 8);
    llmc_response_free(resp);

    /* beta is cached, gamma is not: only gamma goes up, by embedContent. */
    ck_assert_msg(llmc_embedding_json(client,
                                      "{\"model\":\"gemini/text-embedding-004\",\"input\":[\"gamma\",\"beta\"]}",
                                      LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    ck_assert_int_eq((int)fp_count(srv), 2);
    r = fp_last(srv);
    ck_assert_str_eq(r->target, "/v1beta/models/text-embedding-004:embedContent");
    assert_json_eq(r->body, "{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":"
                            "[{\"text\":\"gamma\"}]}}");
    ck_assert_int_eq(llmc_response_item_hit(resp, 0), 0);
    ck_assert_int_eq(llmc_response_item_hit(resp, 1), 1);
    o = llmc_response_json(resp);
    ck_assert_int_eq(jint(o, "data.0.index"), 0);
    ck_assert_int_eq(jint(o, "data.1.index"), 1);
    llmc_response_free(resp);

    /* All cached now. */
    ck_assert_int_eq(llmc_embedding_json(client,
                                         "{\"model\":\"gemini/text-embedding-004\",\"input\":[\"beta\",\"alpha\","
                                         "\"gamma\"]}",
                                         LLMC_ZSTR, &resp, &err),
                     LLMC_OK);
    ck_assert_int_eq((int)fp_count(srv), 2);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 1);
    llmc_response_free(resp);
}
END_TEST

/* ================================================================== */
/* Ollama: adapter level */

START_TEST(oll_build_translates_request)
{
    llmc_http_request r;
    llmc_err err;
    ck_assert_int_eq(
        build("ollama", LLMC_CALL_CHAT, "llama3", NULL, 0,
              "{\"model\":\"ollama/llama3\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
              "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
              "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}}]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"found\"}],"
              "\"temperature\":0.1,\"top_p\":0.9,\"top_k\":40,\"max_tokens\":128,\"stop\":\"END\",\"seed\":3,"
              "\"response_format\":{\"type\":\"json_object\"},\"options\":{\"num_ctx\":8192},"
              "\"keep_alive\":\"5m\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}}]}",
              &r, &err),
        LLMC_OK);
    ck_assert_str_eq(r.method, "POST");
    ck_assert_str_eq(r.url.data, "http://127.0.0.1:11434/api/chat");
    ck_assert_ptr_null(llmc_http_request_header(&r, "authorization"));
    ck_assert_int_eq(r.stream_format, LLMC_STREAM_NONE);
    assert_json_eq(
        r.body.data,
        "{\"model\":\"llama3\",\"stream\":false,\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"What is this?\",\"images\":[\"iVBORw0KGgo=\"]},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"lookup\","
        "\"arguments\":{\"q\":\"x\"}}}]},"
        "{\"role\":\"tool\",\"content\":\"found\",\"tool_name\":\"lookup\"}],"
        "\"options\":{\"num_ctx\":8192,\"temperature\":0.1,\"top_p\":0.9,\"top_k\":40,\"num_predict\":128,"
        "\"seed\":3,\"stop\":[\"END\"]},\"format\":\"json\",\"keep_alive\":\"5m\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}}]}");
    llmc_http_request_free(&r);

    /* streaming, a key (sent as a bearer token), a bare host:port base */
    {
        const llmc_provider_ops *ops = llmc_find_provider("ollama");
        llmc_provider_call call;
        json_object *req = json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        memset(&call, 0, sizeof call);
        call.struct_size = sizeof call;
        call.call = LLMC_CALL_CHAT;
        call.provider = "ollama";
        call.model = "qwen2:0.5b";
        call.api_base = "10.0.0.5:11434";
        call.api_key = "SECRET-oll";
        call.stream = 1;
        llmc_http_request_init(&r);
        ck_assert_int_eq(ops->build_request(&call, req, &r, &err), LLMC_OK);
        ck_assert_str_eq(r.url.data, "http://10.0.0.5:11434/api/chat");
        ck_assert_str_eq(llmc_http_request_header(&r, "authorization"), "Bearer SECRET-oll");
        ck_assert_int_eq(r.stream_format, LLMC_STREAM_NDJSON);
        assert_json_eq(r.body.data, "{\"model\":\"qwen2:0.5b\",\"stream\":true,\"messages\":[{\"role\":"
                                    "\"user\",\"content\":\"hi\"}]}");
        llmc_http_request_free(&r);
        /* No scheme and no port: http and Ollama's port, as ollama does. */
        call.api_base = "ollama-box";
        call.stream = 0;
        llmc_http_request_init(&r);
        ck_assert_int_eq(ops->build_request(&call, req, &r, &err), LLMC_OK);
        ck_assert_str_eq(r.url.data, "http://ollama-box:11434/api/chat");
        llmc_http_request_free(&r);
        call.api_base = "https://ollama.example.com/prefix";
        llmc_http_request_init(&r);
        ck_assert_int_eq(ops->build_request(&call, req, &r, &err), LLMC_OK);
        ck_assert_str_eq(r.url.data, "https://ollama.example.com/prefix/api/chat");
        llmc_http_request_free(&r);
        json_object_put(req);
    }

    ck_assert_int_eq(build("ollama", LLMC_CALL_EMBEDDING, "nomic-embed-text", NULL, 0,
                           "{\"input\":[\"a\",\"b\"],\"dimensions\":4}", &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.url.data, "http://127.0.0.1:11434/api/embed");
    assert_json_eq(r.body.data, "{\"model\":\"nomic-embed-text\",\"input\":[\"a\",\"b\"],\"dimensions\":4}");
    llmc_http_request_free(&r);

    ck_assert_int_eq(build("ollama", LLMC_CALL_TEXT, "llama3", NULL, 0,
                           "{\"prompt\":\"Once\",\"max_tokens\":5}", &r, &err),
                     LLMC_OK);
    ck_assert_str_eq(r.url.data, "http://127.0.0.1:11434/api/generate");
    assert_json_eq(r.body.data, "{\"model\":\"llama3\",\"prompt\":\"Once\",\"stream\":false,"
                                "\"options\":{\"num_predict\":5}}");
    llmc_http_request_free(&r);

    ck_assert_int_eq(build("ollama", LLMC_CALL_CHAT, "llama3", NULL, 0,
                           "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                           "\"image_url\":{\"url\":\"https://example.com/cat.png\"}}]}]}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "messages[0].content[0]"));
    llmc_http_request_free(&r);
    ck_assert_int_eq(build("ollama", LLMC_CALL_CHAT, "llama3", NULL, 0,
                           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}",
                           &r, &err),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "tool_choice"));
    llmc_http_request_free(&r);
}
END_TEST

/* Token counts are the provider's numbers and may be anything: sums
 * saturate instead of overflowing (undefined behaviour). The bodies are
 * kept in tests/fuzz/regress/providers/. */
START_TEST(usage_sums_saturate)
{
    static const struct {
        const char *provider, *body;
        int64_t prompt, completion, total;
    } cases[] = {
        {"anthropic",
         "{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":"
         "[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\",\"usage\":"
         "{\"input_tokens\":9223372036854775807,\"output_tokens\":1}}",
         INT64_MAX, 1, INT64_MAX},
        {"anthropic",
         "{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":"
         "[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\",\"usage\":"
         "{\"input_tokens\":1,\"output_tokens\":2,\"cache_read_input_tokens\":9223372036854775807,"
         "\"cache_creation_input_tokens\":9223372036854775807}}",
         INT64_MAX, 2, INT64_MAX},
        {"anthropic",
         "{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":"
         "[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":\"end_turn\",\"usage\":"
         "{\"input_tokens\":-9223372036854775808,\"output_tokens\":-1}}",
         INT64_MIN, -1, INT64_MIN},
        {"ollama",
         "{\"model\":\"l\",\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"done\":true,"
         "\"done_reason\":\"stop\",\"prompt_eval_count\":9223372036854775807,\"eval_count\":5}",
         INT64_MAX, 5, INT64_MAX},
        {"gemini",
         "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}],\"role\":\"model\"},"
         "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":7,"
         "\"candidatesTokenCount\":9223372036854775807,\"thoughtsTokenCount\":1}}",
         7, INT64_MAX, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *o = NULL;
        llmc_err err;
        ck_assert_msg(parse(cases[i].provider, LLMC_CALL_CHAT, "m", cases[i].body, &o, &err) ==
                          LLMC_OK, "%zu: %s", i, err.msg);
        ck_assert_int_eq(jint(o, "usage.prompt_tokens"), cases[i].prompt);
        ck_assert_int_eq(jint(o, "usage.completion_tokens"), cases[i].completion);
        ck_assert_int_eq(jint(o, "usage.total_tokens"), cases[i].total);
        json_object_put(o);
        char path[512];
        snprintf(path, sizeof path, "%s/fuzz/regress/providers/usage-overflow-%zu-%s.json",
                 LLMC_TEST_SRCDIR, i, cases[i].provider);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "missing regression input %s", path);
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        ck_assert_str_eq(buf, cases[i].body);
    }
}
END_TEST

START_TEST(oll_parse_and_stream)
{
    json_object *o = NULL;
    llmc_err err;
    chunks c;
    int done;
    ck_assert_int_eq(parse("ollama", LLMC_CALL_CHAT, "llama3",
                           "{\"model\":\"llama3.2\",\"created_at\":\"2023-12-12T14:13:43.416799Z\","
                           "\"message\":{\"role\":\"assistant\",\"content\":\"Hello! How are you today?\"},"
                           "\"done\":true,\"done_reason\":\"length\",\"total_duration\":5191566416,"
                           "\"prompt_eval_count\":26,\"eval_count\":298}",
                           &o, &err),
                     LLMC_OK);
    ck_assert_str_eq(jstr(o, "object"), "chat.completion");
    ck_assert_str_eq(jstr(o, "model"), "llama3.2");
    ck_assert_str_eq(jstr(o, "choices.0.message.content"), "Hello! How are you today?");
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "length");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 26);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 298);
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 324);
    json_object_put(o);
    ck_assert_int_eq(parse("ollama", LLMC_CALL_CHAT, "llama3",
                           "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\","
                           "\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":"
                           "{\"city\":\"Tokyo\"}}}]},\"done\":true,\"done_reason\":\"stop\"}",
                           &o, &err),
                     LLMC_OK);
    ck_assert(json_object_is_type(jget(o, "choices.0.message.content"), json_type_null));
    ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"city\":\"Tokyo\"}");
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
    json_object_put(o);
    ck_assert_int_eq(parse("ollama", LLMC_CALL_EMBEDDING, "all-minilm",
                           "{\"model\":\"all-minilm\",\"embeddings\":[[0.01,-0.02],[0.03,0.04]],"
                           "\"prompt_eval_count\":8}",
                           &o, &err),
                     LLMC_OK);
    assert_json_eq(dump(o), "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                            "\"embedding\":[0.01,-0.02]},{\"object\":\"embedding\",\"index\":1,\"embedding\":"
                            "[0.03,0.04]}],\"model\":\"all-minilm\",\"usage\":{\"prompt_tokens\":8,"
                            "\"total_tokens\":8}}");
    json_object_put(o);
    ck_assert_int_eq(parse("ollama", LLMC_CALL_TEXT, "llama3",
                           "{\"model\":\"llama3\",\"response\":\"upon a time\",\"done\":true,"
                           "\"done_reason\":\"stop\",\"prompt_eval_count\":2,\"eval_count\":3}",
                           &o, &err),
                     LLMC_OK);
    ck_assert_str_eq(jstr(o, "object"), "text_completion");
    ck_assert_str_eq(jstr(o, "choices.0.text"), "upon a time");
    ck_assert_int_eq(jint(o, "usage.total_tokens"), 5);
    json_object_put(o);

    {
        static const char *const lines[] = {
            "", "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"The\"},"
                "\"done\":false}",
            "", "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\" sky\","
                "\"thinking\":\"hm\"},\"done\":false}",
            "", "{\"model\":\"llama3\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
                "\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":5,\"eval_count\":2}",
            NULL, NULL};
        json_object *last;
        chunks_init(&c);
        ck_assert_int_eq(feed("ollama", lines, &c, &done, &err), LLMC_OK);
        ck_assert_int_eq(done, 1);
        ck_assert_int_eq(c.n_role, 1);
        ck_assert_str_eq(c.content.data, "The sky");
        ck_assert_str_eq(c.reasoning.data, "hm");
        ck_assert_str_eq(c.finish, "stop");
        last = json_object_array_get_idx(c.arr, json_object_array_length(c.arr) - 1);
        ck_assert_int_eq(jint(last, "usage.total_tokens"), 7);
        chunks_free(&c);
    }
    {
        static const char *const bad[] = {"", "{\"error\":\"an unknown error was encountered while running the model\"}",
                                          NULL, NULL};
        chunks_init(&c);
        ck_assert_int_eq(feed("ollama", bad, &c, &done, &err), LLMC_EUPSTREAM);
        ck_assert_ptr_nonnull(strstr(err.msg, "unknown error"));
        chunks_free(&c);
    }
    ck_assert_int_eq(map_err("ollama", 404, "{\"error\":\"model \\\"nope\\\" not found, try pulling it first\"}",
                             -1, &err),
                     LLMC_EBADREQUEST);
    ck_assert_ptr_nonnull(strstr(err.msg, "not found"));
    ck_assert_int_eq(map_err("ollama", 500, "{\"error\":\"llama runner process has terminated\"}", -1, &err),
                     LLMC_EUPSTREAM);
}
END_TEST

/* ================================================================== */
/* Ollama through the client */

static const char *const OLL_REQ =
    "{\"model\":\"ollama/llama3\",\"messages\":[{\"role\":\"user\",\"content\":\"why is the sky blue\"}],"
    "\"temperature\":0.7,\"max_tokens\":20}";

START_TEST(oll_client_wire_and_cache)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    json_object *o;
    const fp_request *r;
    if (!open_cache(_i))
        return;
    make_client("ollama", NULL, 0);
    ck_assert_msg(llmc_completion_json(client, OLL_REQ, LLMC_ZSTR, &resp, &err) == LLMC_OK, "%s", err.msg);
    r = fp_last(srv);
    ck_assert_str_eq(r->method, "POST");
    ck_assert_str_eq(r->target, "/api/chat");
    ck_assert_ptr_null(fp_header_get(r, "authorization"));
    assert_json_eq(r->body, "{\"model\":\"llama3\",\"stream\":false,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"why is the sky blue\"}],\"options\":{\"temperature\":0.7,"
                            "\"num_predict\":20}}");
    ck_assert_str_eq(llmc_response_content(resp), "echo: why is the sky blue");
    o = llmc_response_json(resp);
    ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "stop");
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 19);
    ck_assert_int_eq(jint(o, "usage.completion_tokens"), 25);
    ck_assert_int_eq(llmc_completion_json(client, OLL_REQ, LLMC_ZSTR, &resp2, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_int_eq((int)fp_count(srv), 1);
    llmc_response_free(resp2);
    /* Ollama-specific options change the answer: a miss. */
    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"ollama/llama3\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"why is the sky blue\"}],\"temperature\":0.7,"
                                          "\"max_tokens\":20,\"options\":{\"num_ctx\":4096}}",
                                          LLMC_ZSTR, &resp2, &err),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 0);
    ck_assert_int_eq((int)fp_count(srv), 2);
    o = json_tokener_parse(fp_last(srv)->body);
    ck_assert_int_eq(jint(o, "options.num_ctx"), 4096);
    json_object_put(o);
    llmc_response_free(resp2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(oll_client_stream_cut_and_hit)
{
    llmc_response *resp = NULL, *resp2 = NULL;
    llmc_err err;
    chunks c;
    json_object *o;
    if (!open_cache(_i))
        return;
    make_client("ollama", NULL, 0);
    chunks_init(&c);
    fp_cut_stream_next(srv, 2);
    ck_assert_int_eq(llmc_completion_stream_json(client, OLL_REQ, LLMC_ZSTR, collect, &c, &resp, &err),
                     LLMC_ESTREAM);
    chunks_free(&c);
    chunks_init(&c);
    ck_assert_msg(llmc_completion_stream_json(client, OLL_REQ, LLMC_ZSTR, collect, &c, &resp, &err) ==
                      LLMC_OK,
                  "%s", err.msg);
    ck_assert_int_eq((int)fp_count(srv), 2);
    o = json_tokener_parse(fp_last(srv)->body);
    ck_assert(json_object_get_boolean(jget(o, "stream")));
    json_object_put(o);
    ck_assert_str_eq(c.content.data, "echo: why is the sky blue");
    ck_assert_str_eq(c.finish, "stop");
    ck_assert_int_eq(c.have_usage, 1);
    chunks_free(&c);
    ck_assert_int_eq(llmc_completion_json(client, OLL_REQ, LLMC_ZSTR, &resp2, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp2), 1);
    ck_assert_int_eq((int)fp_count(srv), 2);
    ck_assert_str_eq(llmc_response_content(resp2), "echo: why is the sky blue");
    llmc_response_free(resp2);
    llmc_response_free(resp);
}
END_TEST

START_TEST(oll_client_embed_errors_env)
{
    llmc_response *resp = NULL;
    llmc_err err;
    json_object *o;
    char host[64];
    ck_assert_int_eq(open_cache(0), 1);
    make_client("ollama", NULL, 0);
    ck_assert_msg(llmc_embedding_json(client, "{\"model\":\"ollama/nomic-embed-text\",\"input\":[\"a\",\"bb\"]}",
                                      LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    ck_assert_str_eq(fp_last(srv)->target, "/api/embed");
    assert_json_eq(fp_last(srv)->body, "{\"model\":\"nomic-embed-text\",\"input\":[\"a\",\"bb\"]}");
    o = llmc_response_json(resp);
    ck_assert_int_eq((int)json_object_array_length(jget(o, "data")), 2);
    ck_assert_int_eq(jint(o, "usage.prompt_tokens"), 3);
    llmc_response_free(resp);
    ck_assert_int_eq(llmc_embedding_json(client, "{\"model\":\"ollama/nomic-embed-text\",\"input\":\"bb\"}",
                                         LLMC_ZSTR, &resp, &err),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(resp), 1);
    ck_assert_int_eq((int)fp_count(srv), 1);
    llmc_response_free(resp);

    ck_assert_int_eq(llmc_completion_json(client,
                                          "{\"model\":\"ollama/missing\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"x\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_EBADREQUEST);
    ck_assert_int_eq(err.native, 404);
    ck_assert_ptr_nonnull(strstr(err.msg, "not found"));

    /* Text completion through /api/generate. */
    ck_assert_msg(llmc_text_completion_json(client, "{\"model\":\"ollama/llama3\",\"prompt\":\"Once\"}",
                                            LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    ck_assert_str_eq(fp_last(srv)->target, "/api/generate");
    ck_assert_str_eq(llmc_response_content(resp), "echo: Once");
    llmc_response_free(resp);

    /* OLLAMA_HOST as the ollama command accepts it: host:port, no scheme. */
    llmc_client_free(client);
    client = NULL;
    ck_assert_int_eq(llmc_client_new(cache, NULL, &client, &err), LLMC_OK);
    snprintf(host, sizeof host, "127.0.0.1:%d", fp_port(srv));
    setenv("OLLAMA_HOST", host, 1);
    ck_assert_msg(llmc_completion_json(client,
                                       "{\"model\":\"ollama/llama3\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"via env\"}]}",
                                       LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    unsetenv("OLLAMA_HOST");
    ck_assert_str_eq(llmc_response_content(resp), "echo: via env");
    llmc_response_free(resp);
}
END_TEST

/* Streamed tool calls from Gemini (a whole functionCall in one event) and
 * Ollama (tool_calls in one NDJSON line) assemble into OpenAI tool calls
 * and are served from the cache afterwards. */
START_TEST(stream_tool_calls_assemble)
{
    static const char *const reqs[][2] = {
        {"gemini", "{\"model\":\"gemini/gemini-1.5-flash\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"tool please\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                   "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}]}"},
        {"ollama", "{\"model\":\"ollama/llama3\",\"messages\":[{\"role\":\"user\",\"content\":"
                   "\"tool please\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                   "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}}}]}"}};
    size_t i;
    ck_assert_int_eq(open_cache(0), 1);
    for (i = 0; i < 2; i++) {
        llmc_response *resp = NULL;
        llmc_err err;
        json_object *o;
        chunks c;
        const char *id;
        char idbuf[128];
        llmc_client_free(client);
        client = NULL;
        make_client(reqs[i][0], GEM_KEY, 0);
        chunks_init(&c);
        ck_assert_msg(llmc_completion_stream_json(client, reqs[i][1], LLMC_ZSTR, collect, &c, &resp, &err) ==
                          LLMC_OK,
                      "%s: %s", reqs[i][0], err.msg);
        ck_assert_str_eq(c.finish, "tool_calls");
        o = llmc_response_json(resp);
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.function.name"), "lookup");
        assert_json_eq(jstr(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"q\":\"tool please\"}");
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.type"), "function");
        id = jstr(o, "choices.0.message.tool_calls.0.id");
        ck_assert_ptr_nonnull(id);
        snprintf(idbuf, sizeof idbuf, "%s", id);
        ck_assert_str_eq(jstr(o, "choices.0.finish_reason"), "tool_calls");
        llmc_response_free(resp);
        chunks_free(&c);
        ck_assert_int_eq(llmc_completion_json(client, reqs[i][1], LLMC_ZSTR, &resp, &err), LLMC_OK);
        ck_assert_int_eq(llmc_response_cache_hit(resp), 1);
        o = llmc_response_json(resp);
        /* The stored id is replayed as it was. */
        ck_assert_str_eq(jstr(o, "choices.0.message.tool_calls.0.id"), idbuf);
        llmc_response_free(resp);
    }
    ck_assert_int_eq((int)fp_count(srv), 2);
}
END_TEST

/* Routing: bare names and the environment variables of each provider. */
START_TEST(routing_and_env)
{
    llmc_response *resp = NULL;
    llmc_err err;
    ck_assert_ptr_eq(llmc_infer_provider("claude-3-5-sonnet-latest"), llmc_find_provider("anthropic"));
    ck_assert_ptr_eq(llmc_infer_provider("gemini-1.5-pro"), llmc_find_provider("gemini"));
    ck_assert_ptr_null(llmc_infer_provider("llama3"));
    ck_assert_int_eq(open_cache(0), 1);
    ck_assert_int_eq(llmc_client_new(cache, NULL, &client, &err), LLMC_OK);
    setenv("ANTHROPIC_API_KEY", ANTH_KEY, 1);
    setenv("ANTHROPIC_BASE_URL", fp_url(srv), 1);
    setenv("GEMINI_API_KEY", GEM_KEY, 1);
    setenv("GEMINI_API_BASE", fp_url(srv), 1);
    ck_assert_msg(llmc_completion_json(client,
                                       "{\"model\":\"claude-3-haiku\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"env\"}]}",
                                       LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "x-api-key"), ANTH_KEY);
    llmc_response_free(resp);
    ck_assert_msg(llmc_completion_json(client,
                                       "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\","
                                       "\"content\":\"env\"}]}",
                                       LLMC_ZSTR, &resp, &err) == LLMC_OK,
                  "%s", err.msg);
    ck_assert_str_eq(fp_header_get(fp_last(srv), "x-goog-api-key"), GEM_KEY);
    ck_assert_str_eq(fp_last(srv)->target, "/v1beta/models/gemini-2.0-flash:generateContent");
    llmc_response_free(resp);
    /* No key anywhere: refused before any request, naming the variable. */
    unsetenv("ANTHROPIC_API_KEY");
    ck_assert_int_ne(llmc_completion_json(client,
                                          "{\"model\":\"claude-3-haiku\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"nokey\"}]}",
                                          LLMC_ZSTR, &resp, &err),
                     LLMC_OK);
    ck_assert_ptr_nonnull(strstr(err.msg, "ANTHROPIC_API_KEY"));
    ck_assert_int_eq((int)fp_count(srv), 2);
    unsetenv("ANTHROPIC_BASE_URL");
    unsetenv("GEMINI_API_KEY");
    unsetenv("GEMINI_API_BASE");
}
END_TEST

static Suite *native_adapters_suite(void)
{
    Suite *s = suite_create("native_adapters");
    TCase *adapters = tcase_create("adapters");
    TCase *wire = tcase_create("client");
    TCase *backends = tcase_create("backends");

    tcase_add_unchecked_fixture(adapters, common_setup, NULL);
    tcase_add_test(adapters, anth_build_translates_request);
    tcase_add_test(adapters, anth_build_refuses_bad_input);
    tcase_add_test(adapters, anth_parse_normalises_response);
    tcase_add_test(adapters, anth_stream_events);
    tcase_add_test(adapters, anth_map_errors);
    tcase_add_test(adapters, gem_build_translates_request);
    tcase_add_test(adapters, gem_parse_normalises_response);
    tcase_add_test(adapters, gem_stream_events);
    tcase_add_test(adapters, gem_map_errors);
    tcase_add_test(adapters, oll_build_translates_request);
    tcase_add_test(adapters, oll_parse_and_stream);
    tcase_add_test(adapters, usage_sums_saturate);
    suite_add_tcase(s, adapters);

    tcase_add_unchecked_fixture(wire, common_setup, NULL);
    tcase_add_checked_fixture(wire, test_setup, test_teardown);
    tcase_set_timeout(wire, 60);
    tcase_add_test(wire, anth_client_tools);
    tcase_add_test(wire, anth_client_cut_stream_not_stored);
    tcase_add_test(wire, anth_client_errors);
    tcase_add_test(wire, anth_client_retries_overloaded);
    tcase_add_test(wire, gem_client_cut_stream_and_errors);
    tcase_add_test(wire, oll_client_embed_errors_env);
    tcase_add_test(wire, stream_tool_calls_assemble);
    tcase_add_test(wire, routing_and_env);
    suite_add_tcase(s, wire);

    /* The cached-call cases, once per backend (local, sqlite, redis). */
    tcase_add_unchecked_fixture(backends, backends_setup, backends_teardown);
    tcase_add_checked_fixture(backends, test_setup, test_teardown);
    tcase_set_timeout(backends, 60);
    tcase_add_loop_test(backends, anth_client_wire_and_cache, 0, N_BACKENDS);
    tcase_add_loop_test(backends, anth_client_stream_then_hit, 0, N_BACKENDS);
    tcase_add_loop_test(backends, gem_client_wire_and_cache, 0, N_BACKENDS);
    tcase_add_loop_test(backends, gem_client_stream_then_hit, 0, N_BACKENDS);
    tcase_add_loop_test(backends, gem_client_embeddings_partial_hits, 0, N_BACKENDS);
    tcase_add_loop_test(backends, oll_client_wire_and_cache, 0, N_BACKENDS);
    tcase_add_loop_test(backends, oll_client_stream_cut_and_hit, 0, N_BACKENDS);
    suite_add_tcase(s, backends);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(native_adapters_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
