/* `llmcache serve` on POST /v1/messages (and /messages): the real binary
 * in front of the fake provider server speaking Anthropic's Messages API
 * (and OpenAI chat, for a model served by another provider), driven by
 * curl and by the official @anthropic-ai/sdk npm package (installed by
 * this test into the build dir on first use). Judged by counts and
 * contents, never by time. */
#include "fake_provider.h"
#include "support/curlcmd.h"
#include "support/proc.h"
#include "support/testsrv.h"
#include "llmc_config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define NPM_DIR LLMC_BUILD_ROOT "/tests/npm-anthropic"
#define ADMIN_KEY "sk-proxy-admin-msg-0001"
#define PROVIDER_KEY "sk-ant-provider-secret-0002"

static fp_server *fp;
static testsrv px;
static int px_port;
static char px_url[64];
static char tmpdir[256];
static unsigned run_tag;

/* ------------------------------------------------------------------ */
/* curl. */

/* POST body to path with the extra header lines (NULL-terminated);
 * max_time: curl's --max-time (a client that gives up). */
static int post_ex(cc_resp *r, const char *path, const char *body, const char *const *headers,
                   const char *max_time)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", px_url, path);
    cc_call c;
    cc_start(&c, tmpdir, "POST", url, body, headers, max_time);
    cc_finish(&c, r);
    return r->curl_exit;
}

static void post(cc_resp *r, const char *path, const char *body, const char *const *headers)
{
    ck_assert_int_eq(post_ex(r, path, body, headers, "30"), 0);
}

/* A slow Messages stream: the text in eight deltas, 150 ms apart. */
static void slow_messages(fp_conn *c, const fp_request *req, void *ud)
{
    (void)ud;
    if (!strstr(req->body, "\"stream\":true")) {
        fp_reply_json(c, 200,
                      "{\"id\":\"msg_slow\",\"type\":\"message\",\"role\":\"assistant\","
                      "\"model\":\"claude-slow\",\"content\":[{\"type\":\"text\",\"text\":"
                      "\"slow answer\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
                      "\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}");
        return;
    }
    fp_stream_begin(c, "text/event-stream");
    if (fp_sse_event(c, "message_start",
                     "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_slow\",\"type\":"
                     "\"message\",\"role\":\"assistant\",\"model\":\"claude-slow\",\"content\":[],"
                     "\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}") < 0 ||
        fp_sse_event(c, "content_block_start",
                     "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
                     "\"text\",\"text\":\"\"}}") < 0)
        return;
    for (int i = 0; i < 8; i++) {
        struct timespec ts = {0, 150000000L};
        if (fp_sse_event(c, "content_block_delta",
                         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                         "\"text_delta\",\"text\":\"part \"}}") < 0)
            return;
        nanosleep(&ts, NULL);
    }
    if (fp_sse_event(c, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") < 0 ||
        fp_sse_event(c, "message_delta",
                     "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                     "\"usage\":{\"output_tokens\":8}}") < 0 ||
        fp_sse_event(c, "message_stop", "{\"type\":\"message_stop\"}") < 0)
        return;
    fp_stream_end(c);
}

static const char *const admin_h[] = {"x-api-key: " ADMIN_KEY, "anthropic-version: 2023-06-01",
                                      NULL};

/* The event names of an SSE body, joined by spaces; 1 when every event
 * had an "event:" line naming its data's "type". */
static int sse_names(const char *body, char *out, size_t n)
{
    size_t used = 0;
    int ok = 1;
    out[0] = '\0';
    const char *p = body;
    while ((p = strstr(p, "event: ")) != NULL) {
        p += 7;
        size_t l = strcspn(p, "\n");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(l < 63 ? l : 63), p);
        used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s", used ? " " : "",
                                 name);
        const char *d = p + l + 1;
        char want[96];
        snprintf(want, sizeof want, "data: {\"type\":\"%s\"", name);
        if (strncmp(d, want, strlen(want)) != 0)
            ok = 0;
        p = d;
    }
    return ok;
}

/* ------------------------------------------------------------------ */

static void setup(void)
{
    run_tag = (unsigned)time(NULL) ^ (unsigned)getpid();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llmc-check-pxmsg.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    fp_add_route(fp, "POST", "/slow/v1/messages", slow_messages, NULL);
    ck_assert_int_eq(testsrv_mkdir(&px, "proxy-messages"), 0);
    px_port = testsrv_free_port();
    snprintf(px_url, sizeof px_url, "http://127.0.0.1:%d", px_port);
    char text[2048];
    snprintf(text, sizeof text,
             "{\"listen\": \"127.0.0.1:%d\", \"cache\": \"local://\",\n"
             " \"client\": {\"max_retries\": 0},\n"
             " \"models\": [\n"
             "  {\"name\": \"claude-3-5-haiku-latest\", \"provider\": \"anthropic\",\n"
             "   \"api_base\": \"%s\", \"api_key\": \"" PROVIDER_KEY "\"},\n"
             "  {\"name\": \"claude-slow\", \"provider\": \"anthropic\",\n"
             "   \"api_base\": \"%s/slow\", \"api_key\": \"" PROVIDER_KEY "\"},\n"
             "  {\"name\": \"gpt-4o-mini\", \"provider\": \"openai\", \"api_base\": \"%s/v1\",\n"
             "   \"api_key\": \"" PROVIDER_KEY "\"}],\n"
             " \"keys\": [{\"key\": \"" ADMIN_KEY "\"}],\n"
             " \"limits\": {\"threads\": 2, \"workers\": 8}}\n",
             px_port, fp_url(fp), fp_url(fp), fp_url(fp));
    ck_assert_msg(proc_serve(&px, px_port, text) == 0, "llmcache serve did not start");
}

static void teardown(void)
{
    testsrv_stop(&px);
    fp_stop(fp);
    char *argv[] = {"rm", "-rf", tmpdir, NULL};
    testsrv_run(NULL, argv);
}

#define BODY(extra, text)                                                                    \
    "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":128," extra "\"messages\":[{"      \
    "\"role\":\"user\",\"content\":\"" text "\"}]}"

START_TEST(test_plain_and_stream)
{
    cc_resp r;
    size_t before = fp_count(fp);
    const char *beta_h[] = {"x-api-key: " ADMIN_KEY, "anthropic-version: 2023-06-01",
                            "anthropic-beta: b-one", "anthropic-beta: b-two", NULL};
    post(&r, "/v1/messages", BODY("", "curl hello"), beta_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"message\""));
    /* Upstream: native, the client's API headers (repeated lines joined),
     * the server's provider key, never the proxy key. */
    const fp_request *up = fp_last(fp);
    ck_assert_str_eq(up->path, "/v1/messages");
    ck_assert_str_eq(fp_header_get(up, "anthropic-version"), "2023-06-01");
    ck_assert_str_eq(fp_header_get(up, "anthropic-beta"), "b-one, b-two");
    ck_assert_str_eq(fp_header_get(up, "x-api-key"), PROVIDER_KEY);
    char key1[128];
    snprintf(key1, sizeof key1, "%s", cc_hdr(&r, "x-llmcache-key"));
    cc_free(&r);
    /* The same betas in another order: the same entry; without /v1 and
     * with the SDK's ?beta=true. */
    const char *beta_h2[] = {"x-api-key: " ADMIN_KEY, "anthropic-version: 2023-06-01",
                             "anthropic-beta: b-two,b-one", NULL};
    post(&r, "/messages?beta=true", BODY("", "curl hello"), beta_h2);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "HIT");
    ck_assert_str_eq(cc_hdr(&r, "x-llmcache-key"), key1);
    ck_assert_ptr_nonnull(strstr(r.body, "{\"cache\":true,"));
    cc_free(&r);
    /* Without the betas: another entry. */
    post(&r, "/v1/messages", BODY("", "curl hello"), admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 2);

    /* Streams: named events, no [DONE], miss then hit, then a plain hit. */
    before = fp_count(fp);
    char n1[1024], n2[1024];
    post(&r, "/v1/messages", BODY("\"stream\":true,", "curl stream"), admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    ck_assert_str_eq(cc_hdr(&r, "Content-Type"), "text/event-stream");
    ck_assert_msg(sse_names(r.body, n1, sizeof n1), "%s", r.body);
    ck_assert_ptr_null(strstr(r.body, "[DONE]"));
    ck_assert_str_eq(n1, "message_start content_block_start ping content_block_delta "
                         "content_block_delta content_block_stop message_delta message_stop");
    cc_free(&r);
    post(&r, "/v1/messages", BODY("\"stream\":true,", "curl stream"), admin_h);
    ck_status(&r, "HIT");
    ck_assert_msg(sse_names(r.body, n2, sizeof n2), "%s", r.body);
    ck_assert_ptr_null(strstr(r.body, "[DONE]"));
    ck_assert_ptr_nonnull(strstr(n2, "message_start content_block_start ping content_block_delta"));
    ck_assert_ptr_nonnull(strstr(n2, "content_block_stop message_delta message_stop"));
    cc_free(&r);
    post(&r, "/v1/messages", BODY("", "curl stream"), admin_h);
    ck_status(&r, "HIT");
    ck_assert_ptr_nonnull(strstr(r.body, "echo: curl stream"));
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 1);

    /* Not stored: no-store, caching off. */
    before = fp_count(fp);
    const char *nostore[] = {"x-api-key: " ADMIN_KEY, "Cache-Control: no-store", NULL};
    post(&r, "/v1/messages", BODY("", "curl nostore"), nostore);
    ck_status(&r, "MISS-NOSTORE");
    cc_free(&r);
    post(&r, "/v1/messages", BODY("\"caching\":false,", "curl nostore"), admin_h);
    ck_status(&r, "BYPASS");
    cc_free(&r);
    post(&r, "/v1/messages", BODY("", "curl nostore"), admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 3);

    /* Metrics count the endpoint. */
    char *argv[] = {"curl", "-s", "-H", "Authorization: Bearer " ADMIN_KEY, NULL, NULL};
    char murl[128], mout[300];
    snprintf(murl, sizeof murl, "%s/metrics", px_url);
    snprintf(mout, sizeof mout, "%s/metrics.txt", tmpdir);
    argv[4] = murl;
    ck_assert_int_eq(proc_run(argv, mout, NULL), 0);
    char *m = proc_slurp(mout, NULL);
    ck_assert_ptr_nonnull(strstr(m, "llmcache_cache_hits_total{endpoint=\"messages\"} 3"));
    ck_assert_ptr_nonnull(strstr(m, "llmcache_requests_total{endpoint=\"messages\"} 9"));
    free(m);
}
END_TEST

START_TEST(test_errors)
{
    cc_resp r;
    /* Errors in the Messages API's shape. */
    post(&r, "/v1/messages", "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":5}", admin_h);
    ck_assert_int_eq(r.status, 400);
    ck_assert_msg(strncmp(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\""
                                  ",\"message\":",
                          56) == 0,
                  "%s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "messages"));
    cc_free(&r);
    const char *bad_key[] = {"x-api-key: sk-wrong", NULL};
    post(&r, "/v1/messages", BODY("", "curl err"), bad_key);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"authentication_error\""));
    cc_free(&r);
    post(&r, "/v1/messages", "{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":[{\"role\":"
                             "\"user\",\"content\":\"q\"}]}",
         admin_h);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"not_found_error\""));
    cc_free(&r);
    /* The provider's error with its status (529 overloaded), not stored. */
    size_t before = fp_count(fp);
    fp_push_reply(fp, 529, "application/json",
                  "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                  "\"Overloaded\"}}",
                  NULL);
    post(&r, "/v1/messages", BODY("", "curl overloaded"), admin_h);
    ck_assert_int_eq(r.status, 529);
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"overloaded_error\""));
    ck_assert_ptr_null(strstr(r.body, PROVIDER_KEY));
    cc_free(&r);
    /* An error event mid-stream ends the stream with an error event;
     * nothing is stored. */
    fp_push_stream(fp, "text/event-stream",
                   "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":"
                   "\"m1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
                   "\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,"
                   "\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{"
                   "\"type\":\"api_error\",\"message\":\"boom\"}}\n\n");
    post(&r, "/v1/messages", BODY("\"stream\":true,", "curl cut"), admin_h);
    ck_assert_int_eq(r.status, 200);
    char names[256];
    sse_names(r.body, names, sizeof names);
    ck_assert_str_eq(names, "message_start error");
    ck_assert_ptr_nonnull(strstr(r.body, "event: error\ndata: {\"type\":\"error\",\"error\":{"));
    cc_free(&r);
    /* An upstream cut likewise. */
    fp_cut_stream_next(fp, 2);
    post(&r, "/v1/messages", BODY("\"stream\":true,", "curl cut"), admin_h);
    ck_assert_ptr_nonnull(strstr(r.body, "event: error"));
    cc_free(&r);
    post(&r, "/v1/messages", BODY("", "curl cut"), admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 4);
}
END_TEST

/* A client that leaves mid-stream: the upstream call stops, nothing is
 * stored, the server goes on. */
START_TEST(test_client_disconnect)
{
    cc_resp r;
    size_t before = fp_count(fp);
    const char *b = "{\"model\":\"claude-slow\",\"max_tokens\":64,\"stream\":true,\"messages\":["
                    "{\"role\":\"user\",\"content\":\"leave early\"}]}";
    ck_assert_int_ne(post_ex(&r, "/v1/messages", b, admin_h, "0.5"), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "event: message_start"));
    ck_assert_ptr_null(strstr(r.body, "message_stop"));
    cc_free(&r);
    /* The same request in full afterwards (it may wait for the first one
     * to give up): not a hit. */
    post(&r, "/v1/messages", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strcmp(cc_hdr(&r, "x-llmcache-status"), "MISS") == 0, "%s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "message_stop"));
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 2);
    char *argv[] = {"curl", "-s", "-H", "Authorization: Bearer " ADMIN_KEY, NULL, NULL};
    char murl[128], mout[300];
    snprintf(murl, sizeof murl, "%s/metrics", px_url);
    snprintf(mout, sizeof mout, "%s/metrics2.txt", tmpdir);
    argv[4] = murl;
    ck_assert_int_eq(proc_run(argv, mout, NULL), 0);
    char *m = proc_slurp(mout, NULL);
    ck_assert_ptr_nonnull(strstr(m, "llmcache_client_aborts_total 1"));
    free(m);
}
END_TEST

/* A model served by another provider: translated, answered and cached
 * in the Messages shapes; what cannot be translated is a 400 naming it. */
START_TEST(test_translated)
{
    cc_resp r;
    size_t before = fp_count(fp);
    const char *b = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"messages\":[{\"role\":"
                    "\"user\",\"content\":\"curl translated\"}]}";
    post(&r, "/v1/messages", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    ck_assert_str_eq(fp_last(fp)->path, "/v1/chat/completions");
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"message\""));
    ck_assert_ptr_nonnull(strstr(r.body, "curl translated"));
    cc_free(&r);
    const char *bs = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"stream\":true,\"messages\":"
                     "[{\"role\":\"user\",\"content\":\"curl translated\"}]}";
    post(&r, "/v1/messages", bs, admin_h);
    ck_status(&r, "HIT");
    char names[1024];
    ck_assert(sse_names(r.body, names, sizeof names));
    ck_assert_ptr_nonnull(strstr(names, "message_start"));
    cc_free(&r);
    post(&r, "/v1/messages",
         "{\"model\":\"gpt-4o-mini\",\"max_tokens\":64,\"thinking\":{\"type\":\"enabled\","
         "\"budget_tokens\":1024},\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}",
         admin_h);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"invalid_request_error\""));
    ck_assert_ptr_nonnull(strstr(r.body, "thinking"));
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The official SDK. */

static const char *js(json_object *o, const char *a, const char *b)
{
    json_object *v;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_get_string(v);
}

#define ck_js(j, a, b, want)                                                                 \
    do {                                                                                     \
        const char *got_ = js((j), (a), (b));                                                \
        ck_assert_msg(got_ && strcmp(got_, (want)) == 0, "%s.%s = %s, wanted %s", (a),       \
                      (b) ? (b) : "", got_ ? got_ : "(none)", (want));                       \
    } while (0)

START_TEST(test_anthropic_sdk)
{
    ck_assert_msg(proc_npm_ready(NPM_DIR, "@anthropic-ai/sdk", "@anthropic-ai/sdk", tmpdir),
                  "could not install the @anthropic-ai/sdk npm package into " NPM_DIR);
    char script[300], out[300], err[300], tag[32];
    snprintf(script, sizeof script, "%s/messages_sdk.mjs", NPM_DIR);
    /* The script must sit next to node_modules for the import. */
    proc_copy(LLMC_SOURCE_ROOT "/tests/proxy/messages_sdk.mjs", script);
    snprintf(out, sizeof out, "%s/node.out", tmpdir);
    snprintf(err, sizeof err, "%s/node.err", tmpdir);
    snprintf(tag, sizeof tag, "%u", run_tag);
    setenv("PROXY_URL", px_url, 1);
    setenv("ADMIN_KEY", ADMIN_KEY, 1);
    setenv("TAG", tag, 1);
    size_t before = fp_count(fp);
    char *argv[] = {"node", script, NULL};
    int rc = proc_run(argv, out, err);
    char *o = proc_slurp(out, NULL), *e = proc_slurp(err, NULL);
    ck_assert_msg(rc == 0, "node failed (%d): %s %s", rc, o ? o : "", e ? e : "");
    json_object *j = json_tokener_parse(o);
    ck_assert_msg(j != NULL, "node printed no JSON: %s", o);
    free(o);
    free(e);
    /* messages.create: MISS then HIT, the same message, marked. */
    ck_js(j, "create1", "status", "MISS");
    ck_js(j, "create2", "status", "HIT");
    ck_js(j, "create2", "cache", "true");
    ck_js(j, "create_same", NULL, "true");
    ck_assert_ptr_nonnull(strstr(js(j, "create1", "text"), "echo: sdk hello"));
    /* messages.stream: MISS then HIT with the same event types in the
     * same order (the fake sends each text in two deltas; a replay cuts
     * its own pieces, so the deltas are compared by kind). */
    ck_js(j, "stream1", "status", "MISS");
    ck_js(j, "stream2", "status", "HIT");
    ck_js(j, "stream_same", NULL, "true");
    ck_js(j, "after_stream", "status", "HIT");
    ck_assert_str_eq(js(j, "stream1", "text"), js(j, "stream2", "text"));
    ck_assert_str_eq(js(j, "stream1", "kinds"), js(j, "stream2", "kinds"));
    ck_assert_str_eq(js(j, "stream1", "kinds"),
                     "message_start content_block_start content_block_delta content_block_stop "
                     "message_delta message_stop");
    ck_assert_ptr_nonnull(strstr(js(j, "stream2", "types"),
                                 "content_block_delta content_block_delta content_block_delta"));
    ck_js(j, "raw1", "status", "MISS");
    ck_js(j, "raw2", "status", "HIT");
    ck_assert_str_eq(js(j, "raw1", "text"), js(j, "raw2", "text"));
    /* Tool use and thinking: the streamed miss, the streamed hit and the
     * plain hit are the same message. */
    ck_js(j, "tool1", "status", "MISS");
    ck_js(j, "tool2", "status", "HIT");
    ck_js(j, "tool3", "status", "HIT");
    ck_js(j, "tool1", "blocks", "thinking text tool_use");
    ck_js(j, "tool2", "blocks", "thinking text tool_use");
    ck_js(j, "tool_same", NULL, "true");
    ck_assert_str_eq(js(j, "tool1", "kinds"), js(j, "tool2", "kinds"));
    ck_js(j, "tool_input", NULL, "{\"q\":\"x\"}");
    ck_js(j, "signature", NULL, "sig_fake01");
    ck_assert_ptr_nonnull(strstr(js(j, "tool2", "deltas"), "signature_delta"));
    ck_assert_ptr_nonnull(strstr(js(j, "tool2", "deltas"), "input_json_delta"));
    /* The beta client. */
    ck_js(j, "beta", "status1", "MISS");
    ck_js(j, "beta", "status2", "HIT");
    ck_js(j, "beta", "plain", "MISS");
    ck_js(j, "beta", "differ", "true");
    /* Errors as the SDK's classes. */
    ck_js(j, "bad", "status", "400");
    ck_js(j, "bad", "name", "BadRequestError");
    ck_js(j, "bad", "type", "invalid_request_error");
    ck_js(j, "auth", "status", "401");
    ck_js(j, "auth", "name", "AuthenticationError");
    ck_js(j, "auth", "type", "authentication_error");
    /* Upstream: create, stream, raw stream, tool stream, 2 beta misses. */
    ck_assert_uint_eq(fp_count(fp) - before, 6);
    json_object_put(j);
}
END_TEST

START_TEST(test_clean_exit)
{
    ck_assert_int_eq(kill(px.pid, SIGTERM), 0);
    int rc = proc_wait(px.pid);
    px.pid = 0;
    char log[400];
    snprintf(log, sizeof log, "%s/proxy-messages.log", px.dir);
    char *text = proc_slurp(log, NULL);
    ck_assert_msg(rc == 0, "llmcache serve exited badly: %s", text ? text : "");
    ck_assert_msg(!text || (!strstr(text, "runtime error") && !strstr(text, "Sanitizer")),
                  "sanitizer report in the server log: %s", text);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("proxy_messages");
    TCase *tc = tcase_create("serve");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_plain_and_stream);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_translated);
    tcase_add_test(tc, test_client_disconnect);
    tcase_add_test(tc, test_anthropic_sdk);
    tcase_add_test(tc, test_clean_exit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
