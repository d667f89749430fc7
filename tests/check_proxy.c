/* `llmcache serve` end to end: the real llmcache binary on a free
 * loopback port in front of the fake provider server, driven by real
 * HTTP clients: the curl command and the official `openai` npm package
 * (installed by this test into the build dir on first use).
 *
 * The suite runs without fork (the fake provider's threads live in this
 * process and its request counters must be read here). Each test uses
 * its own message text, so tests sharing the server do not share cache
 * entries. No timing assertions: slow upstreams only make overlaps
 * certain, results are judged by counts and contents. */
#include "fake_provider.h"
#include "support/curlcmd.h"
#include "support/proc.h"
#include "support/testsrv.h"
#include "llmc_config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <math.h>

#define SERVE LLMC_BUILD_ROOT "/cli/llmcache"
#define NPM_DIR LLMC_BUILD_ROOT "/tests/npm"
/* puppeteer-core in its own prefix: `npm install --no-save` prunes
 * packages it was not asked for. */
#define NPM_BROWSER_DIR LLMC_BUILD_ROOT "/tests/npm-browser"
#define PRICES LLMC_SOURCE_ROOT "/share/llmcache/prices.json"
#define ADMIN_KEY "sk-proxy-admin-0001"
#define KEY_A "sk-proxy-team-a-0002"
#define KEY_B "sk-proxy-team-b-0003"
#define PROVIDER_KEY "sk-provider-secret-0004"

static fp_server *fp;
static char tmpdir[256];
static unsigned run_tag;

typedef struct proxy {
    testsrv srv;
    int port;
    char url[64];
} proxy;

static proxy main_px;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* Running programs. */

/* ------------------------------------------------------------------ */
/* HTTP through the curl command. */

static void http(cc_resp *r, const char *method, const proxy *p, const char *path,
                 const char *body, const char *const *headers)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", p->url, path);
    cc_call c;
    cc_start(&c, tmpdir, method, url, body, headers, NULL);
    cc_finish(&c, r);
}

static const char *const admin_h[] = {"Authorization: Bearer " ADMIN_KEY, NULL};

static json_object *body_json(const cc_resp *r)
{
    json_object *o = json_tokener_parse(r->body);
    ck_assert_msg(o != NULL, "response body is not JSON: %.300s", r->body);
    return o;
}

static const char *jpath_str(json_object *o, const char *a, int idx, const char *b,
                             const char *c)
{
    json_object *v = o;
    if (a && !json_object_object_get_ex(v, a, &v))
        return NULL;
    if (idx >= 0)
        v = json_object_array_get_idx(v, (size_t)idx);
    if (b && (!v || !json_object_object_get_ex(v, b, &v)))
        return NULL;
    if (c && (!v || !json_object_object_get_ex(v, c, &v)))
        return NULL;
    return v ? json_object_get_string(v) : NULL;
}

static char *chat_body(const char *text, int stream)
{
    static char b[2048];
    snprintf(b, sizeof b,
             "{\"model\":\"gpt-4o-mini\",%s\"messages\":[{\"role\":\"user\",\"content\":\"%s "
             "%u\"}]}",
             stream ? "\"stream\":true," : "", text, run_tag);
    return strdup(b);
}

/* ------------------------------------------------------------------ */
/* Servers. */

/* A slow streamed answer, one event every 150 ms (client disconnects). */
static void slow_stream(fp_conn *c, const fp_request *req, void *ud)
{
    (void)ud;
    if (!strstr(req->body, "\"stream\":true")) {
        fp_reply_json(c, 200,
                      "{\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion\",\"created\":1,"
                      "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{"
                      "\"role\":\"assistant\",\"content\":\"slow answer\"},\"finish_reason\":"
                      "\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                      "\"total_tokens\":5}}");
        return;
    }
    fp_stream_begin(c, "text/event-stream");
    for (int i = 0; i < 8; i++) {
        char ev[512];
        snprintf(ev, sizeof ev,
                 "{\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                 "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":"
                 "\"part%d \"},\"finish_reason\":null}]}",
                 i == 0 ? "\"role\":\"assistant\"," : "", i);
        if (fp_sse_event(c, NULL, ev) < 0)
            return;
        sleep_ms(150);
    }
    fp_sse_event(c, NULL,
                 "{\"id\":\"chatcmpl-slow\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                 "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},"
                 "\"finish_reason\":\"stop\"}]}");
    fp_sse_event(c, NULL, "[DONE]");
    fp_stream_end(c);
}

/* The "cache" member of the next proxy's configuration. */
#define DEFAULT_CACHE_JSON "{\"url\": \"local://\", \"options\": {\"ttl\": 3600}}"
static const char *cache_json = DEFAULT_CACHE_JSON;
/* The Responses API, slowly: one output_text delta every 150 ms (client
 * disconnects); plain calls as the fake provider answers them. */
static void slow_responses(fp_conn *c, const fp_request *req, void *ud)
{
    if (!strstr(req->body, "\"stream\":true")) {
        fp_openai_responses(c, req, ud);
        return;
    }
    static const char resp_fmt[] =
        "{\"id\":\"resp_slow\",\"object\":\"response\",\"status\":\"%s\",\"model\":"
        "\"gpt-4o-mini\",\"output\":[%s]}";
    static const char item[] =
        "{\"id\":\"msg_slow\",\"type\":\"message\",\"status\":\"completed\",\"role\":"
        "\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"part0 part1 part2 "
        "part3 part4 part5 part6 part7 \",\"annotations\":[]}]}";
    char ev[2048], r[1024];
    int seq = 0;
    fp_stream_begin(c, "text/event-stream");
    snprintf(r, sizeof r, resp_fmt, "in_progress", "");
    snprintf(ev, sizeof ev, "{\"type\":\"response.created\",\"sequence_number\":%d,"
             "\"response\":%s}", seq++, r);
    if (fp_sse_event(c, "response.created", ev) < 0)
        return;
    for (int i = 0; i < 8; i++) {
        snprintf(ev, sizeof ev, "{\"type\":\"response.output_text.delta\",\"sequence_number\":"
                 "%d,\"item_id\":\"msg_slow\",\"output_index\":0,\"content_index\":0,"
                 "\"delta\":\"part%d \"}", seq++, i);
        if (fp_sse_event(c, "response.output_text.delta", ev) < 0)
            return;
        sleep_ms(150);
    }
    snprintf(r, sizeof r, resp_fmt, "completed", item);
    snprintf(ev, sizeof ev, "{\"type\":\"response.completed\",\"sequence_number\":%d,"
             "\"response\":%s}", seq++, r);
    fp_sse_event(c, "response.completed", ev);
    fp_stream_end(c);
}

/* The configuration of proxy p, into text. */
static void write_config(const proxy *p, const char *extra, char *text, size_t n)
{
    snprintf(text, n,
             "{\n"
             "  \"listen\": \"127.0.0.1:%d\",\n"
             "  \"cache\": %s,\n"
             "  \"client\": {\"max_retries\": 0, \"timeout_ms\": 20000},\n"
             "  \"models\": [\n"
             "    {\"name\": \"gpt-4o-mini\", \"provider\": \"openai\", \"model\": "
             "\"gpt-4o-mini\", \"api_base\": \"%s/v1\", \"api_key\": \"" PROVIDER_KEY "\"},\n"
             "    {\"name\": \"text-embedding-3-small\", \"provider\": \"openai\", "
             "\"api_base\": \"%s/v1\", \"api_key\": \"" PROVIDER_KEY "\"},\n"
             "    {\"name\": \"gpt-3.5-turbo-instruct\", \"provider\": \"openai\", "
             "\"api_base\": \"%s/v1\", \"api_key\": \"" PROVIDER_KEY "\"},\n"
             "    {\"name\": \"slow-stream\", \"provider\": \"openai\", \"model\": "
             "\"gpt-4o-mini\", \"api_base\": \"%s/slow/v1\", \"api_key\": \"" PROVIDER_KEY
             "\"}\n"
             "  ],\n"
             "  \"keys\": [\n"
             "    {\"key\": \"" ADMIN_KEY "\"},\n"
             "    {\"key\": \"" KEY_A "\", \"namespace\": \"team-a\"},\n"
             "    {\"key_env\": \"LLMC_TEST_KEY_B\", \"namespace\": \"team-b\"}\n"
             "  ],\n"
             "  \"limits\": {\"max_body_bytes\": 65536, \"threads\": 2, \"workers\": 16}%s\n"
             "}\n",
             p->port, cache_json, fp_url(fp), fp_url(fp), fp_url(fp), fp_url(fp),
             extra ? extra : "");
}

static void proxy_start(proxy *p, const char *name, const char *extra)
{
    memset(p, 0, sizeof *p);
    ck_assert_int_eq(testsrv_mkdir(&p->srv, name), 0);
    p->port = testsrv_free_port();
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d", p->port);
    char text[4096];
    write_config(p, extra, text, sizeof text);
    ck_assert_msg(proc_serve(&p->srv, p->port, text) == 0, "llmcache serve did not start");
}

static void setup(void)
{
    run_tag = (unsigned)time(NULL) ^ (unsigned)getpid();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llmc-check-proxy.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    setenv("LLMC_TEST_KEY_B", KEY_B, 1);
    /* The source tree's price table (the proxies inherit it). */
    setenv("LLMCACHE_PRICES", PRICES, 1);
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    fp_add_route(fp, "POST", "/slow/v1/chat/completions", slow_stream, NULL);
    fp_add_route(fp, "POST", "/slow/v1/responses", slow_responses, NULL);
    proxy_start(&main_px, "proxy-main", NULL);
}

static void teardown(void)
{
    testsrv_stop(&main_px.srv);
    fp_stop(fp);
    char *argv[] = {"rm", "-rf", tmpdir, NULL};
    testsrv_run(NULL, argv);
}

/* ------------------------------------------------------------------ */
/* curl tests. */

START_TEST(test_miss_then_hit)
{
    char *b = chat_body("miss then hit", 0);
    size_t before = fp_count(fp);
    cc_resp r1, r2;
    http(&r1, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_assert_int_eq(r1.status, 200);
    ck_status(&r1, "MISS");
    ck_assert_ptr_nonnull(cc_hdr(&r1, "x-llmcache-key"));
    char key[256];
    snprintf(key, sizeof key, "%s", cc_hdr(&r1, "x-llmcache-key"));
    ck_assert_str_eq(cc_hdr(&r1, "age"), "0");
    http(&r2, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_assert_int_eq(r2.status, 200);
    ck_status(&r2, "HIT");
    ck_assert_str_eq(cc_hdr(&r2, "x-llmcache-key"), key);
    ck_assert_ptr_nonnull(cc_hdr(&r2, "age"));
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    json_object *o1 = body_json(&r1), *o2 = body_json(&r2), *c;
    ck_assert_str_eq(jpath_str(o1, "choices", 0, "message", "content"),
                     jpath_str(o2, "choices", 0, "message", "content"));
    ck_assert_ptr_nonnull(strstr(jpath_str(o2, "choices", 0, "message", "content"),
                                 "echo: miss then hit"));
    ck_assert(json_object_object_get_ex(o2, "cache", &c) && json_object_get_boolean(c));
    ck_assert(!json_object_object_get_ex(o1, "cache", &c));
    /* The provider key went upstream, and never came back. */
    ck_assert_str_eq(fp_header_get(fp_last(fp), "Authorization"), "Bearer " PROVIDER_KEY);
    ck_assert_ptr_null(strstr(r1.headers, PROVIDER_KEY));
    ck_assert_ptr_null(strstr(r1.body, PROVIDER_KEY));
    /* The proxy key did not go upstream. */
    ck_assert_ptr_null(strstr(fp_last(fp)->body, ADMIN_KEY));
    json_object_put(o1);
    json_object_put(o2);
    cc_free(&r1);
    cc_free(&r2);
    free(b);
}
END_TEST

/* HTTP/1.1 keep-alive: one curl, three requests, one connection. */
START_TEST(test_keep_alive)
{
    char *b = chat_body("keep alive", 0);
    char reqfile[300], out[300], url[256];
    snprintf(reqfile, sizeof reqfile, "%s/ka.json", tmpdir);
    snprintf(out, sizeof out, "%s/ka.out", tmpdir);
    snprintf(url, sizeof url, "%s/v1/chat/completions", main_px.url);
    proc_spit(reqfile, b);
    char data[320];
    snprintf(data, sizeof data, "@%s", reqfile);
    char *argv[] = {"curl", "-s", "-w", "%{http_code} %{num_connects}\\n", "-H",
                    "Authorization: Bearer " ADMIN_KEY, "-H", "Content-Type: application/json",
                    "--data-binary", data, "-o", "/dev/null", url, "-o", "/dev/null", url, "-o",
                    "/dev/null", url, NULL};
    ck_assert_int_eq(proc_run(argv, out, NULL), 0);
    char *text = proc_slurp(out, NULL);
    ck_assert_msg(strcmp(text, "200 1\n200 0\n200 0\n") == 0, "curl saw: %s", text);
    free(text);
    free(b);
}
END_TEST

START_TEST(test_controls)
{
    char *b = chat_body("controls", 0);
    size_t before = fp_count(fp);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    /* no-cache: skip the read, store the fresh answer. */
    const char *nc[] = {"Authorization: Bearer " ADMIN_KEY, "Cache-Control: no-cache", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, nc);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "REFRESH");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 2);
    /* max-age: an entry this young is accepted. */
    const char *ma[] = {"Authorization: Bearer " ADMIN_KEY, "Cache-Control: max-age=3600", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ma);
    ck_status(&r, "HIT");
    cc_free(&r);
    const char *bad[] = {"Authorization: Bearer " ADMIN_KEY, "Cache-Control: max-age=soon",
                         NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, bad);
    ck_assert_int_eq(r.status, 400);
    cc_free(&r);
    /* A namespace header gives another entry. */
    const char *ns[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-namespace: exp1", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ns);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "exp1:", 5) == 0);
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ns);
    ck_status(&r, "HIT");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 3);
    /* no-store: answered, not kept. */
    char *b2 = chat_body("no store", 0);
    const char *ns2[] = {"Authorization: Bearer " ADMIN_KEY, "Cache-Control: no-store", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b2, ns2);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS-NOSTORE");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b2, admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    /* LiteLLM's body controls, and x-llmcache-ttl. */
    char b3[1024];
    snprintf(b3, sizeof b3,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"litellm "
             "%u\"}],\"cache\":{\"no-store\":true}}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/chat/completions", b3, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS-NOSTORE");
    cc_free(&r);
    snprintf(b3, sizeof b3,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"litellm "
             "%u\"}],\"cache\":{\"no-cache\":true}}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/chat/completions", b3, admin_h);
    ck_status(&r, "REFRESH");
    cc_free(&r);
    snprintf(b3, sizeof b3,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"litellm "
             "%u\"}],\"cache\":{\"bogus\":1}}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/chat/completions", b3, admin_h);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "bogus"));
    cc_free(&r);
    /* Caching off for one request (LiteLLM's use-cache / caching). */
    snprintf(b3, sizeof b3,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"litellm "
             "%u\"}],\"cache\":{\"use-cache\":false}}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/chat/completions", b3, admin_h);
    ck_status(&r, "BYPASS");
    ck_assert_ptr_null(cc_hdr(&r, "x-llmcache-key"));
    cc_free(&r);
    const char *ttl[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-ttl: 60", NULL};
    char *b4 = chat_body("ttl header", 0);
    http(&r, "POST", &main_px, "/v1/chat/completions", b4, ttl);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b4, admin_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    free(b);
    free(b2);
    free(b4);
}
END_TEST

/* data: lines of an SSE body -> the concatenated delta contents. */
static void sse_text(const char *body, char *out, size_t outsz, int *done)
{
    out[0] = '\0';
    *done = 0;
    const char *p = body;
    while ((p = strstr(p, "data: ")) != NULL) {
        p += 6;
        const char *e = strstr(p, "\n\n");
        if (!e)
            break;
        if (strncmp(p, "[DONE]", 6) == 0) {
            *done = 1;
            break;
        }
        char *ev = strndup(p, (size_t)(e - p));
        json_object *o = json_tokener_parse(ev);
        ck_assert_msg(o != NULL, "bad SSE event: %s", ev);
        const char *t = jpath_str(o, "choices", 0, "delta", "content");
        if (t)
            strncat(out, t, outsz - strlen(out) - 1);
        json_object_put(o);
        free(ev);
        p = e;
    }
}

START_TEST(test_stream)
{
    char *b = chat_body("stream me", 1);
    size_t before = fp_count(fp);
    cc_resp r1, r2, r3;
    http(&r1, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_assert_int_eq(r1.status, 200);
    ck_status(&r1, "MISS");
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r1, "content-type"), "text/event-stream"));
    char t1[1024], t2[1024];
    int d1, d2;
    sse_text(r1.body, t1, sizeof t1, &d1);
    ck_assert_int_eq(d1, 1);
    ck_assert_ptr_nonnull(strstr(t1, "echo: stream me"));
    http(&r2, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r2, "HIT");
    sse_text(r2.body, t2, sizeof t2, &d2);
    ck_assert_int_eq(d2, 1);
    ck_assert_str_eq(t1, t2);
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    /* Streamed and plain calls share the entry. */
    char *plain = chat_body("stream me", 0);
    http(&r3, "POST", &main_px, "/v1/chat/completions", plain, admin_h);
    ck_status(&r3, "HIT");
    json_object *o = body_json(&r3);
    ck_assert_str_eq(jpath_str(o, "choices", 0, "message", "content"), t1);
    json_object_put(o);
    cc_free(&r1);
    cc_free(&r2);
    cc_free(&r3);
    free(b);
    free(plain);
}
END_TEST

START_TEST(test_stream_client_disconnect)
{
    char b[512];
    snprintf(b, sizeof b,
             "{\"model\":\"slow-stream\",\"stream\":true,\"messages\":[{\"role\":\"user\","
             "\"content\":\"hang up %u\"}]}",
             run_tag);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", main_px.url);
    /* Leave after about two events of eight. */
    cc_call c;
    cc_resp r;
    cc_start(&c, tmpdir, "POST", url, b, admin_h, "0.4");
    cc_finish(&c, &r);
    ck_assert_int_eq(r.curl_exit, 28); /* curl: timed out, i.e. we hung up */
    ck_assert_ptr_nonnull(strstr(r.body, "part0"));
    ck_assert_ptr_null(strstr(r.body, "[DONE]"));
    cc_free(&r);
    /* Let the upstream stream run out. */
    sleep_ms(1500);
    http(&r, "GET", &main_px, "/health", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    cc_free(&r);
    /* Nothing partial was stored: the same request misses. */
    char plain[512];
    snprintf(plain, sizeof plain,
             "{\"model\":\"slow-stream\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"hang up %u\"}]}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/chat/completions", plain, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "GET", &main_px, "/metrics", NULL, admin_h);
    ck_assert_ptr_nonnull(strstr(r.body, "llmcache_client_aborts_total 1"));
    cc_free(&r);
}
END_TEST

START_TEST(test_embeddings_and_text)
{
    char b[512];
    snprintf(b, sizeof b,
             "{\"model\":\"text-embedding-3-small\",\"input\":[\"alpha %u\",\"beta %u\"]}", run_tag,
             run_tag);
    size_t before = fp_count(fp);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/embeddings", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    json_object *o = body_json(&r), *data;
    ck_assert(json_object_object_get_ex(o, "data", &data));
    ck_assert_int_eq((int)json_object_array_length(data), 2);
    json_object_put(o);
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/embeddings", b, admin_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    snprintf(b, sizeof b,
             "{\"model\":\"text-embedding-3-small\",\"input\":[\"alpha %u\",\"gamma %u\"]}",
             run_tag, run_tag);
    http(&r, "POST", &main_px, "/v1/embeddings", b, admin_h);
    ck_status(&r, "PARTIAL");
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 2);
    snprintf(b, sizeof b,
             "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"legacy %u\",\"max_tokens\":5}",
             run_tag);
    http(&r, "POST", &main_px, "/v1/completions", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/completions", b, admin_h);
    ck_status(&r, "HIT");
    o = body_json(&r);
    ck_assert_ptr_nonnull(jpath_str(o, "choices", 0, "text", NULL));
    json_object_put(o);
    cc_free(&r);
}
END_TEST

#define assert_openai_error(r, status, needle) assert_openai_error_at(r, status, needle, __LINE__)
static void assert_openai_error_at(const cc_resp *r, int status, const char *needle, int line)
{
    ck_assert_msg(r->status == status, "line %d: HTTP %d, wanted %d: %.300s", line, r->status,
                  status, r->body);
    json_object *o = body_json(r), *e, *m, *t;
    ck_assert_msg(json_object_object_get_ex(o, "error", &e), "no error object: %s", r->body);
    ck_assert(json_object_object_get_ex(e, "message", &m));
    ck_assert(json_object_object_get_ex(e, "type", &t));
    if (needle)
        ck_assert_msg(strstr(json_object_get_string(m), needle) != NULL,
                      "error message \"%s\" does not mention \"%s\"", json_object_get_string(m),
                      needle);
    json_object_put(o);
}

START_TEST(test_errors)
{
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", "{\"model\": \"gpt-4o-mini\", ", admin_h);
    assert_openai_error(&r, 400, "request JSON");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", "[1,2]", admin_h);
    assert_openai_error(&r, 400, "object");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", "{\"model\":\"gpt-4o-mini\"}", admin_h);
    assert_openai_error(&r, 400, "messages");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions",
         "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         admin_h);
    assert_openai_error(&r, 404, "no-such-model");
    cc_free(&r);
    /* Over the body limit (64 KiB in this config). */
    size_t big = 100 * 1024;
    char *bb = malloc(big + 1);
    memset(bb, 'x', big);
    bb[big] = '\0';
    memcpy(bb, "{\"a\":\"", 6);
    http(&r, "POST", &main_px, "/v1/chat/completions", bb, admin_h);
    assert_openai_error(&r, 413, "limit");
    cc_free(&r);
    free(bb);
    http(&r, "GET", &main_px, "/v1/chat/completions", NULL, admin_h);
    assert_openai_error(&r, 405, "POST");
    cc_free(&r);
    http(&r, "GET", &main_px, "/nope", NULL, admin_h);
    assert_openai_error(&r, 404, NULL);
    cc_free(&r);
    /* Upstream errors keep their status. */
    char *b = chat_body("upstream says no", 0);
    fp_fail_next(fp, 1, 429, 1);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    assert_openai_error(&r, 429, NULL);
    cc_free(&r);
    fp_fail_next(fp, 1, 503, -1);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    assert_openai_error(&r, 503, NULL);
    ck_assert_ptr_null(strstr(r.body, PROVIDER_KEY));
    cc_free(&r);
    /* Errors were not cached. */
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    cc_free(&r);
    free(b);
    /* A stream cut off upstream mid-way: what came is passed on, an
     * error event ends it, nothing is stored. */
    b = chat_body("cut me off", 1);
    fp_cut_stream_next(fp, 2);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "chat.completion.chunk"));
    ck_assert_ptr_nonnull(strstr(r.body, "data: {\"error\""));
    ck_assert_ptr_null(strstr(r.body, "[DONE]"));
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "MISS");
    ck_assert_ptr_nonnull(strstr(r.body, "[DONE]"));
    cc_free(&r);
    free(b);
    /* A stream whose upstream fails before the first chunk: the status
     * comes through as a plain error. */
    b = chat_body("upstream stream says no", 1);
    fp_fail_next(fp, 1, 500, -1);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    assert_openai_error(&r, 500, NULL);
    cc_free(&r);
    free(b);
}
END_TEST

START_TEST(test_auth_and_tenants)
{
    char *b = chat_body("tenant", 0);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", b, NULL);
    assert_openai_error(&r, 401, "API key");
    cc_free(&r);
    const char *wrong[] = {"Authorization: Bearer sk-wrong", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, wrong);
    assert_openai_error(&r, 401, NULL);
    ck_assert_ptr_null(strstr(r.body, "sk-wrong"));
    cc_free(&r);
    http(&r, "GET", &main_px, "/v1/models", NULL, NULL);
    ck_assert_int_eq(r.status, 401);
    cc_free(&r);
    http(&r, "GET", &main_px, "/health", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    cc_free(&r);

    const char *ha[] = {"Authorization: Bearer " KEY_A, NULL};
    const char *hb[] = {"x-api-key: " KEY_B, NULL};
    size_t before = fp_count(fp);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha);
    ck_status(&r, "MISS");
    char key_a[256];
    snprintf(key_a, sizeof key_a, "%s", cc_hdr(&r, "x-llmcache-key"));
    ck_assert(strncmp(key_a, "team-a:", 7) == 0);
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha);
    ck_status(&r, "HIT");
    cc_free(&r);
    /* Team B does not see team A's entry, nor can it reach it through a
     * namespace header or a preset key. */
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-b:", 7) == 0);
    cc_free(&r);
    char bk[1024];
    snprintf(bk, sizeof bk,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"tenant "
             "%u\"}],\"cache\":{\"key\":\"%s\"}}",
             run_tag, key_a);
    http(&r, "POST", &main_px, "/v1/chat/completions", bk, hb);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-b:", 7) == 0);
    cc_free(&r);
    const char *hb_ns[] = {"x-api-key: " KEY_B, "x-llmcache-namespace: team-a", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb_ns);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-b:team-a:", 14) == 0);
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 4);
    /* Deleting: only inside one's namespace. */
    char del[512];
    snprintf(del, sizeof del, "{\"keys\":[\"%s\"]}", key_a);
    http(&r, "POST", &main_px, "/cache/delete", del, hb);
    assert_openai_error(&r, 403, "namespace");
    cc_free(&r);
    http(&r, "POST", &main_px, "/cache/delete", del, ha);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"deleted\":1"));
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha);
    ck_status(&r, "MISS");
    cc_free(&r);
    /* Flushing team A leaves team B's entries alone. */
    http(&r, "POST", &main_px, "/cache/flush", NULL, ha);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"namespace\":\"team-a\""));
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb);
    ck_status(&r, "HIT");
    cc_free(&r);
    free(b);
}
END_TEST

START_TEST(test_models_health_metrics_ping)
{
    cc_resp r;
    http(&r, "GET", &main_px, "/v1/models", NULL, admin_h);
    ck_assert_int_eq(r.status, 200);
    json_object *o = body_json(&r), *data;
    ck_assert(json_object_object_get_ex(o, "data", &data));
    ck_assert_int_eq((int)json_object_array_length(data), 4);
    ck_assert_str_eq(jpath_str(o, "data", 0, "id", NULL), "gpt-4o-mini");
    ck_assert_str_eq(jpath_str(o, "data", 0, "owned_by", NULL), "openai");
    ck_assert_ptr_null(strstr(r.body, PROVIDER_KEY));
    json_object_put(o);
    cc_free(&r);
    http(&r, "GET", &main_px, "/cache/ping", NULL, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"backend\":\"local\""));
    cc_free(&r);
    char *b = chat_body("metrics", 0);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    cc_free(&r);
    free(b);
    http(&r, "GET", &main_px, "/metrics", NULL, NULL);
    ck_assert_int_eq(r.status, 401);
    cc_free(&r);
    http(&r, "GET", &main_px, "/metrics", NULL, admin_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r, "content-type"), "text/plain"));
    const char *want[] = {"llmcache_cache_hits_total{endpoint=\"chat\"} ",
                          "llmcache_cache_misses_total{endpoint=\"chat\"} ",
                          "llmcache_errors_total{kind=\"upstream\"} ",
                          "llmcache_upstream_latency_seconds_bucket{le=\"+Inf\"} ",
                          "\nllmcache_cache_bytes_served_total ",
                          "\nllmcache_cache_tokens_served_total ",
                          NULL};
    for (int i = 0; want[i]; i++) {
        const char *p = strstr(r.body, want[i]);
        ck_assert_msg(p != NULL, "metric %s missing", want[i]);
        ck_assert_msg(atoll(p + strlen(want[i])) > 0, "metric %s is 0", want[i]);
    }
    cc_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* What hits saved: headers, metrics, the dashboard's endpoints. */

static long long metric_value(const char *text, const char *line_prefix)
{
    const char *p = strstr(text, line_prefix);
    return p ? atoll(p + strlen(line_prefix)) : -1;
}

static double metric_double(const char *text, const char *line_prefix)
{
    const char *p = strstr(text, line_prefix);
    return p ? strtod(p + strlen(line_prefix), NULL) : -1;
}

START_TEST(test_savings)
{
    proxy px;
    proxy_start(&px, "proxy-savings", NULL);
    char *b = chat_body("savings", 0);
    cc_resp r;
    /* A slow provider: the time a hit saves is at least this. */
    fp_set_delay_ms(fp, 300);
    http(&r, "POST", &px, "/v1/chat/completions", b, admin_h);
    fp_set_delay_ms(fp, 0);
    ck_status(&r, "MISS");
    ck_assert_ptr_null(cc_hdr(&r, "x-llmcache-saved-tokens"));
    cc_free(&r);
    http(&r, "POST", &px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "HIT");
    /* The saving is the stored answer's usage at gpt-4o-mini's price
     * ($0.15 input, $0.60 output per million). */
    json_object *o = body_json(&r), *u, *v;
    ck_assert(json_object_object_get_ex(o, "usage", &u));
    ck_assert(json_object_object_get_ex(u, "prompt_tokens", &v));
    long long pt = json_object_get_int64(v);
    ck_assert(json_object_object_get_ex(u, "completion_tokens", &v));
    long long ct = json_object_get_int64(v);
    ck_assert(json_object_object_get_ex(u, "total_tokens", &v));
    long long tt = json_object_get_int64(v);
    json_object_put(o);
    ck_assert_int_gt(tt, 0);
    ck_assert_int_eq(atoll(cc_hdr(&r, "x-llmcache-saved-tokens")), tt);
    double usd = ((double)pt * 0.15 + (double)ct * 0.60) / 1e6;
    double got = strtod(cc_hdr(&r, "x-llmcache-saved-usd"), NULL);
    ck_assert_msg(got > usd * 0.999 && got < usd * 1.001, "saved usd %s, wanted %.10f",
                  cc_hdr(&r, "x-llmcache-saved-usd"), usd);
    cc_free(&r);
    /* A streamed hit says the same. */
    char *sb = chat_body("savings", 1);
    http(&r, "POST", &px, "/v1/chat/completions", sb, admin_h);
    ck_status(&r, "HIT");
    ck_assert_int_eq(atoll(cc_hdr(&r, "x-llmcache-saved-tokens")), tt);
    cc_free(&r);
    free(sb);
    /* A tenant's hits are counted under its namespace. */
    const char *const a_h[] = {"Authorization: Bearer " KEY_A, NULL};
    for (int i = 0; i < 2; i++) {
        http(&r, "POST", &px, "/v1/chat/completions", b, a_h);
        ck_status(&r, i ? "HIT" : "MISS");
        cc_free(&r);
    }
    free(b);
    /* An unknown model (a hostile name): tokens yes, dollars "unknown",
     * and the label is escaped where /metrics writes it. */
    const char *hostile = "{\"model\":\"ev\\\"il\\nx} 1\",\"mock_response\":\"a b c\","
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hostile\"}]}";
    for (int i = 0; i < 2; i++) {
        http(&r, "POST", &px, "/v1/chat/completions", hostile, admin_h);
        ck_status(&r, i ? "HIT" : "MISS");
        if (i) {
            ck_assert_str_eq(cc_hdr(&r, "x-llmcache-saved-usd"), "unknown");
            ck_assert_int_gt(atoll(cc_hdr(&r, "x-llmcache-saved-tokens")), 0);
        }
        cc_free(&r);
    }
    http(&r, "GET", &px, "/metrics", NULL, admin_h);
    ck_assert_int_eq(r.status, 200);
    char line[256];
    snprintf(line, sizeof line,
             "llmcache_saved_tokens_total{model=\"gpt-4o-mini\",tenant=\"(admin)\","
             "endpoint=\"chat\"} ");
    ck_assert_int_eq(metric_value(r.body, line), 2 * tt);
    snprintf(line, sizeof line,
             "llmcache_saved_tokens_total{model=\"gpt-4o-mini\",tenant=\"team-a\","
             "endpoint=\"chat\"} ");
    ck_assert_int_eq(metric_value(r.body, line), tt);
    snprintf(line, sizeof line,
             "llmcache_saved_usd_total{model=\"gpt-4o-mini\",tenant=\"team-a\","
             "endpoint=\"chat\"} ");
    double mu = metric_double(r.body, line);
    ck_assert_msg(mu > usd * 0.999 && mu < usd * 1.001, "%f", mu);
    ck_assert_ptr_nonnull(strstr(r.body, "llmcache_saved_unpriced_hits_total{model=\"ev\\\"il\\nx} "
                                         "1\",tenant=\"(admin)\",endpoint=\"chat\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE llmcache_saved_seconds_total counter"));
    /* Two hits (plain and streamed) of an answer that took >= 0.3 s. */
    snprintf(line, sizeof line,
             "llmcache_saved_seconds_total{model=\"gpt-4o-mini\",tenant=\"(admin)\","
             "endpoint=\"chat\"} ");
    ck_assert_msg(metric_double(r.body, line) >= 0.6, "%s", r.body);
    cc_free(&r);

    /* The dashboard: a browser is asked for the key; admin keys only. */
    http(&r, "GET", &px, "/ui", NULL, NULL);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r, "www-authenticate"), "Basic"));
    cc_free(&r);
    /* "someone:sk-proxy-team-a-0002" */
    const char *const tenant_basic[] = {"Authorization: Basic c29tZW9uZTpzay1wcm94eS10ZWFtLWEtMDAwMg==", NULL};
    http(&r, "GET", &px, "/ui", NULL, tenant_basic);
    ck_assert_int_eq(r.status, 403);
    cc_free(&r);
    const char *const bad_basic[] = {"Authorization: Basic !!!notbase64", NULL};
    http(&r, "GET", &px, "/ui", NULL, bad_basic);
    ck_assert_int_eq(r.status, 401);
    cc_free(&r);
    /* "someone:sk-proxy-admin-0001" */
    const char *const admin_basic[] = {"Authorization: Basic c29tZW9uZTpzay1wcm94eS1hZG1pbi0wMDAx", NULL};
    http(&r, "GET", &px, "/ui", NULL, admin_basic);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r, "content-type"), "text/html"));
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r, "content-security-policy"), "default-src 'none'"));
    ck_assert_ptr_nonnull(strstr(r.body, "id=\"saved-usd\""));
    /* Self-contained: nothing loaded from elsewhere (the one URL is the
     * SVG namespace name, never fetched). */
    ck_assert_ptr_null(strstr(r.body, "https://"));
    const char *u1 = strstr(r.body, "http://");
    ck_assert(u1 && strncmp(u1, "http://www.w3.org/2000/svg\"", 27) == 0);
    ck_assert_ptr_null(strstr(u1 + 1, "http://"));
    ck_assert_ptr_null(strstr(r.body, "<script src"));
    ck_assert_ptr_null(strstr(r.body, "@import"));
    cc_free(&r);
    http(&r, "GET", &px, "/ui/data", NULL, a_h);
    ck_assert_int_eq(r.status, 403);
    cc_free(&r);
    http(&r, "GET", &px, "/ui/data?since=soon", NULL, admin_h);
    ck_assert_int_eq(r.status, 400);
    cc_free(&r);
    http(&r, "GET", &px, "/ui/data", NULL, admin_h);
    ck_assert_int_eq(r.status, 200);
    o = body_json(&r);
    json_object *t, *x;
    ck_assert(json_object_object_get_ex(o, "totals", &t));
    ck_assert(json_object_object_get_ex(t, "saved_tokens", &x));
    ck_assert_int_gt(json_object_get_int64(x), 3 * tt);
    ck_assert(json_object_object_get_ex(t, "unpriced_hits", &x));
    ck_assert_int_eq(json_object_get_int64(x), 1);
    ck_assert(json_object_object_get_ex(o, "top_tenants", &x));
    ck_assert_str_eq(jpath_str(o, "top_tenants", 0, "name", NULL), "(admin)");
    ck_assert(json_object_object_get_ex(o, "prices", &x));
    ck_assert(json_object_object_get_ex(x, "loaded", &v) && json_object_get_boolean(v));
    json_object_put(o);
    cc_free(&r);

    /* The same figures in the terminal: llmcache top, cache stats --proxy. */
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/top.out", tmpdir);
    snprintf(errp, sizeof errp, "%s/top.err", tmpdir);
    char *top[] = {SERVE, "top", "--url", px.url, "--key", ADMIN_KEY, "--once", NULL};
    ck_assert_int_eq(proc_run(top, outp, errp), 0);
    char *text = proc_slurp(outp, NULL);
    ck_assert_ptr_nonnull(strstr(text, "hit ratio:"));
    ck_assert_ptr_nonnull(strstr(text, "gpt-4o-mini"));
    ck_assert_ptr_nonnull(strstr(text, "team-a"));
    ck_assert_ptr_nonnull(strstr(text, "no price"));
    /* The hostile model name reaches the terminal without its newline. */
    ck_assert_ptr_nonnull(strstr(text, "ev\"il?x} 1"));
    ck_assert_ptr_null(strstr(text, "\033"));
    free(text);
    char *bad[] = {SERVE, "top", "--url", px.url, "--key", KEY_A, "--once", NULL};
    ck_assert_int_eq(proc_run(bad, outp, errp), 1);
    text = proc_slurp(errp, NULL);
    ck_assert_ptr_nonnull(strstr(text, "admin key"));
    ck_assert_ptr_null(strstr(text, KEY_A));
    free(text);
    setenv("LLMCACHE_PROXY_KEY", ADMIN_KEY, 1);
    char *stats[] = {SERVE, "cache", "stats", "--cache", "local://", "--proxy", px.url,
                     "--json", NULL};
    ck_assert_int_eq(proc_run(stats, outp, errp), 0);
    unsetenv("LLMCACHE_PROXY_KEY");
    text = proc_slurp(outp, NULL);
    o = json_tokener_parse(text);
    ck_assert_msg(o != NULL, "%s", text);
    ck_assert(json_object_object_get_ex(o, "proxy", &x));
    ck_assert(json_object_object_get_ex(x, "totals", &t));
    ck_assert(json_object_object_get_ex(t, "saved_tokens", &v));
    ck_assert_int_gt(json_object_get_int64(v), 3 * tt);
    json_object_put(o);
    free(text);
    testsrv_stop(&px.srv);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The dashboard in a real browser: Debian's chromium driven by the
 * puppeteer-core npm package. */

static const char *js(json_object *o, const char *a, const char *b);

static double jnum(json_object *o, const char *a, const char *b)
{
    json_object *v;
    if (!json_object_object_get_ex(o, a, &v))
        return -1;
    if (b && !json_object_object_get_ex(v, b, &v))
        return -1;
    return json_object_get_double(v);
}

START_TEST(test_dashboard_browser)
{
    ck_assert_msg(testsrv_which("chromium"),
                  "chromium is not installed (sh scripts/install-deps.sh --test)");
    ck_assert_msg(proc_npm_ready(NPM_BROWSER_DIR, "puppeteer-core", "puppeteer-core@24", tmpdir),
                  "could not install puppeteer-core into " NPM_BROWSER_DIR);
    proxy px;
    proxy_start(&px, "proxy-dashboard", NULL);
    /* Traffic: misses then hits for the admin and a tenant, a streamed
     * hit, an embedding hit, an unpriced model and an error. */
    const char *const a_h[] = {"Authorization: Bearer " KEY_A, NULL};
    const char *const *who[] = {admin_h, a_h};
    cc_resp r;
    /* Upstream calls that take a while, as real ones do. */
    fp_set_delay_ms(fp, 120);
    /* In waves a sample interval apart, so the charts have a history. */
    for (int k = 0; k < 2; k++) {
        if (k)
            sleep_ms(2300);
        for (int q = 0; q < 3; q++) {
            char text[64];
            snprintf(text, sizeof text, "dashboard question %d", q);
            char *b = chat_body(text, 0);
            for (int i = 0; i < 1 + q; i++) {
                http(&r, "POST", &px, "/v1/chat/completions", b, who[k]);
                ck_assert_int_eq(r.status, 200);
                cc_free(&r);
            }
            free(b);
        }
    }
    sleep_ms(2300);
    char *sb = chat_body("dashboard question 2", 1);
    http(&r, "POST", &px, "/v1/chat/completions", sb, admin_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    free(sb);
    char eb[256];
    snprintf(eb, sizeof eb,
             "{\"model\":\"text-embedding-3-small\",\"input\":[\"dash one %u\",\"dash two\"]}",
             run_tag);
    for (int i = 0; i < 2; i++) {
        http(&r, "POST", &px, "/v1/embeddings", eb, admin_h);
        ck_status(&r, i ? "HIT" : "MISS");
        cc_free(&r);
    }
    const char *house = "{\"model\":\"house-llm\",\"mock_response\":\"in house answer\","
                        "\"messages\":[{\"role\":\"user\",\"content\":\"dash\"}]}";
    for (int i = 0; i < 2; i++) {
        http(&r, "POST", &px, "/v1/chat/completions", house, admin_h);
        cc_free(&r);
    }
    http(&r, "POST", &px, "/v1/chat/completions",
         "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         admin_h);
    ck_assert_int_eq(r.status, 404);
    cc_free(&r);
    fp_set_delay_ms(fp, 0);

    char script[300], out[300], err[300], profile[300], shot[300], phone[300];
    snprintf(script, sizeof script, "%s/dashboard.mjs", NPM_BROWSER_DIR);
    proc_copy(LLMC_SOURCE_ROOT "/tests/proxy/dashboard.mjs", script);
    snprintf(out, sizeof out, "%s/dashboard.out", tmpdir);
    snprintf(err, sizeof err, "%s/dashboard.err", tmpdir);
    snprintf(profile, sizeof profile, "%s/chromium-profile", tmpdir);
    /* Kept in the build dir (docs/dashboard*.png are copies of these). */
    snprintf(shot, sizeof shot, "%s/tests/dashboard.png", LLMC_BUILD_ROOT);
    snprintf(phone, sizeof phone, "%s/tests/dashboard-phone.png", LLMC_BUILD_ROOT);
    unlink(shot);
    unlink(phone);
    setenv("PROXY_URL", px.url, 1);
    setenv("ADMIN_KEY", ADMIN_KEY, 1);
    setenv("CHROMIUM", testsrv_which("chromium"), 1);
    setenv("PROFILE", profile, 1);
    setenv("SHOT", shot, 1);
    setenv("SHOT_PHONE", phone, 1);
    char *argv[] = {"node", script, NULL};
    int rc = proc_run(argv, out, err);
    char *o = proc_slurp(out, NULL), *e = proc_slurp(err, NULL);
    ck_assert_msg(rc == 0, "node dashboard.mjs failed (%d): %s %s", rc, o ? o : "", e ? e : "");
    json_object *j = json_tokener_parse(o);
    ck_assert_msg(j != NULL, "node printed no JSON: %s", o);
    json_object *v;
    ck_assert_int_eq((int)jnum(j, "status", NULL), 200);
    ck_assert(json_object_object_get_ex(j, "console_errors", &v));
    ck_assert_msg(json_object_array_length(v) == 0, "console errors: %s", o);
    ck_assert(json_object_object_get_ex(j, "page_errors", &v));
    ck_assert_msg(json_object_array_length(v) == 0, "page errors: %s", o);
    ck_assert(json_object_object_get_ex(j, "failed_requests", &v));
    ck_assert_msg(json_object_array_length(v) == 0, "failed requests: %s", o);
    /* The page shows what /metrics reports. */
    double hits = jnum(j, "metrics", "hits"), misses = jnum(j, "metrics", "misses");
    ck_assert_msg(hits >= 8 && misses >= 5, "%s", o);
    double ratio = jnum(j, "metrics", "hit_ratio");
    ck_assert_msg(fabs(jnum(j, "hit_ratio", NULL) - ratio) < 1e-9, "%s", o);
    char want[64];
    snprintf(want, sizeof want, "%.1f%%", ratio * 100);
    ck_assert_msg(strcmp(js(j, "hit_ratio_text", NULL), want) == 0, "hit ratio shown %s, want %s",
                  js(j, "hit_ratio_text", NULL), want);
    double usd = jnum(j, "metrics", "saved_usd");
    ck_assert_msg(usd > 0, "%s", o);
    ck_assert_msg(fabs(jnum(j, "saved_usd", NULL) - usd) <= usd * 1e-9, "%s", o);
    /* The page's format: six decimals under a cent, four under $100. */
    snprintf(want, sizeof want, usd < 0.01 ? "$%.6f" : "$%.4f", usd);
    ck_assert_msg(strcmp(js(j, "saved_usd_text", NULL), want) == 0, "saved shown %s, want %s",
                  js(j, "saved_usd_text", NULL), want);
    ck_assert_msg(jnum(j, "saved_tokens", NULL) == jnum(j, "metrics", "saved_tokens"), "%s", o);
    double secs = jnum(j, "metrics", "saved_seconds");
    ck_assert_msg(secs >= 0.12 && fabs(jnum(j, "saved_seconds", NULL) - secs) < 1e-5, "%s", o);
    /* Tables, backend and errors rendered; charts drawn; fits a phone. */
    ck_assert_ptr_nonnull(strstr(o, "gpt-4o-mini"));
    ck_assert_ptr_nonnull(strstr(o, "house-llm"));
    ck_assert_ptr_nonnull(strstr(o, "no price"));
    ck_assert_ptr_nonnull(strstr(o, "team-a"));
    ck_assert_ptr_nonnull(strstr(o, "no-such-model"));
    ck_assert(json_object_object_get_ex(j, "backend", &v));
    ck_assert_ptr_nonnull(strstr(json_object_get_string(v), "stateup"));
    ck_assert_int_ge((int)jnum(j, "paths", NULL), 3);
    ck_assert(json_object_object_get_ex(j, "phone_overflow", &v));
    ck_assert_msg(!json_object_get_boolean(v), "the page is wider than a phone: %s", o);
    struct stat st;
    ck_assert_int_eq(stat(shot, &st), 0);
    ck_assert_int_gt(st.st_size, 10000);
    ck_assert_int_eq(stat(phone, &st), 0);
    json_object_put(j);
    free(o);
    free(e);
    testsrv_stop(&px.srv);
}
END_TEST

START_TEST(test_coalescing_curl)
{
    enum { N = 8 };
    char *b = chat_body("coalesce me", 0);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", main_px.url);
    size_t before = fp_count(fp);
    fp_set_delay_ms(fp, 1000);
    cc_call c[N];
    for (int i = 0; i < N; i++)
        cc_start(&c[i], tmpdir, "POST", url, b, admin_h, NULL);
    int hits = 0, misses = 0;
    const char *content = NULL;
    json_object *objs[N];
    for (int i = 0; i < N; i++) {
        cc_resp r;
        cc_finish(&c[i], &r);
        ck_assert_int_eq(r.status, 200);
        if (strcmp(cc_hdr(&r, "x-llmcache-status"), "HIT") == 0)
            hits++;
        else if (strcmp(cc_hdr(&r, "x-llmcache-status"), "MISS") == 0)
            misses++;
        objs[i] = body_json(&r);
        const char *t = jpath_str(objs[i], "choices", 0, "message", "content");
        if (!content)
            content = t;
        ck_assert_str_eq(t, content);
        cc_free(&r);
    }
    fp_set_delay_ms(fp, 0);
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    ck_assert_int_eq(misses, 1);
    ck_assert_int_eq(hits, N - 1);
    for (int i = 0; i < N; i++)
        json_object_put(objs[i]);
    free(b);

    /* Streaming requests wait for the leader too. */
    b = chat_body("coalesce my stream", 1);
    before = fp_count(fp);
    fp_set_delay_ms(fp, 1000);
    for (int i = 0; i < N / 2; i++)
        cc_start(&c[i], tmpdir, "POST", url, b, admin_h, NULL);
    for (int i = 0; i < N / 2; i++) {
        cc_resp r;
        cc_finish(&c[i], &r);
        ck_assert_int_eq(r.status, 200);
        char t[1024];
        int done;
        sse_text(r.body, t, sizeof t, &done);
        ck_assert_int_eq(done, 1);
        ck_assert_ptr_nonnull(strstr(t, "echo: coalesce my stream"));
        cc_free(&r);
    }
    fp_set_delay_ms(fp, 0);
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    free(b);
}
END_TEST

/* llmcache_coalesced_total counts requests answered by another's upstream
 * call, once each: when the leader fails, its waiters run again, one
 * leads a second flight and the others wait again, and still each is
 * counted once, when it is answered. */
START_TEST(test_coalesced_counted_once)
{
    enum { N = 6 };
    proxy p;
    proxy_start(&p, "proxy-ccount", "");
    char *b = chat_body("coalesce after a failed leader", 0);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", p.url);
    fp_set_delay_ms(fp, 1000);
    fp_fail_next(fp, 1, 400, 0);
    cc_call c[N];
    for (int i = 0; i < N; i++)
        cc_start(&c[i], tmpdir, "POST", url, b, admin_h, NULL);
    int hits = 0, errors = 0;
    for (int i = 0; i < N; i++) {
        cc_resp r;
        cc_finish(&c[i], &r);
        if (r.status == 400)
            errors++;
        else if (r.status == 200 && strcmp(cc_hdr(&r, "x-llmcache-status"), "HIT") == 0)
            hits++;
        cc_free(&r);
    }
    fp_set_delay_ms(fp, 0);
    ck_assert_int_eq(errors, 1);
    cc_resp m;
    http(&m, "GET", &p, "/metrics", NULL, admin_h);
    const char *v = strstr(m.body, "\nllmcache_coalesced_total ");
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(atoll(v + strlen("\nllmcache_coalesced_total ")), hits);
    cc_free(&m);
    testsrv_stop(&p.srv);
    free(b);
}
END_TEST

/* Waiters that waited longer than the coalescing timeout go upstream
 * themselves. */
START_TEST(test_coalescing_timeout)
{
    enum { N = 3 };
    proxy p;
    proxy_start(&p, "proxy-ctimeout", ", \"coalescing\": {\"timeout_ms\": 100}");
    char *b = chat_body("impatient", 0);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", p.url);
    size_t before = fp_count(fp);
    fp_set_delay_ms(fp, 1500);
    cc_call c[N];
    for (int i = 0; i < N; i++)
        cc_start(&c[i], tmpdir, "POST", url, b, admin_h, NULL);
    for (int i = 0; i < N; i++) {
        cc_resp r;
        cc_finish(&c[i], &r);
        ck_assert_int_eq(r.status, 200);
        cc_free(&r);
    }
    fp_set_delay_ms(fp, 0);
    ck_assert_uint_eq(fp_count(fp) - before, N);
    cc_resp m;
    http(&m, "GET", &p, "/metrics", NULL, admin_h);
    ck_assert_ptr_nonnull(strstr(m.body, "\nllmcache_coalesce_timeouts_total 2\n"));
    cc_free(&m);
    testsrv_stop(&p.srv);
    free(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The openai npm package as the client. */

static json_object *run_node_script(const char *name, const char *mode)
{
    char script[300], out[300], err[300], srcpath[400];
    snprintf(script, sizeof script, "%s/%s", NPM_DIR, name);
    snprintf(srcpath, sizeof srcpath, "%s/tests/proxy/%s", LLMC_SOURCE_ROOT, name);
    /* The script must sit next to node_modules for `import "openai"`. */
    proc_copy(srcpath, script);
    snprintf(out, sizeof out, "%s/node-%s.out", tmpdir, mode);
    snprintf(err, sizeof err, "%s/node-%s.err", tmpdir, mode);
    char tag[32];
    snprintf(tag, sizeof tag, "%u", run_tag);
    setenv("PROXY_URL", main_px.url, 1);
    setenv("ADMIN_KEY", ADMIN_KEY, 1);
    setenv("KEY_A", KEY_A, 1);
    setenv("KEY_B", KEY_B, 1);
    setenv("TAG", tag, 1);
    char *argv[] = {"node", script, (char *)mode, NULL};
    int rc = proc_run(argv, out, err);
    char *o = proc_slurp(out, NULL), *e = proc_slurp(err, NULL);
    ck_assert_msg(rc == 0, "node %s failed (%d): %s %s", mode, rc, o ? o : "", e ? e : "");
    json_object *j = json_tokener_parse(o);
    ck_assert_msg(j != NULL, "node printed no JSON: %s", o);
    free(o);
    free(e);
    return j;
}

static json_object *run_node(const char *mode)
{
    return run_node_script("openai_client.mjs", mode);
}

static const char *js(json_object *o, const char *a, const char *b)
{
    json_object *v;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_get_string(v);
}

START_TEST(test_openai_npm)
{
    ck_assert_msg(proc_npm_ready(NPM_DIR, "openai", "openai@4", tmpdir),
                  "could not install the openai npm package into " NPM_DIR);
    size_t before = fp_count(fp);
    json_object *j = run_node("basic");
    ck_assert_str_eq(js(j, "first", "status"), "MISS");
    ck_assert_str_eq(js(j, "second", "status"), "HIT");
    ck_assert_str_eq(js(j, "first", "content"), js(j, "second", "content"));
    ck_assert_ptr_nonnull(strstr(js(j, "first", "content"), "echo: npm hello"));
    ck_assert_str_eq(js(j, "second", "cache"), "true");
    ck_assert_str_eq(js(j, "stream1", "status"), "MISS");
    ck_assert_str_eq(js(j, "stream2", "status"), "HIT");
    ck_assert_str_eq(js(j, "stream1", "text"), js(j, "stream2", "text"));
    ck_assert_ptr_nonnull(strstr(js(j, "stream1", "text"), "echo: npm stream"));
    ck_assert_int_gt(atoi(js(j, "stream1", "chunks")), 1);
    ck_assert_str_eq(js(j, "embed1", "status"), "MISS");
    ck_assert_str_eq(js(j, "embed2", "status"), "HIT");
    ck_assert_str_eq(js(j, "embed1", "count"), "2");
    ck_assert_int_gt(atoi(js(j, "embed1", "dims")), 0);
    ck_assert_str_eq(js(j, "embed1", "first"), js(j, "embed2", "first"));
    ck_assert_str_eq(js(j, "auth", "status"), "401");
    ck_assert_str_eq(js(j, "auth", "name"), "AuthenticationError");
    ck_assert_str_eq(js(j, "tenantA1", "status"), "MISS");
    ck_assert_str_eq(js(j, "tenantA2", "status"), "HIT");
    ck_assert_str_eq(js(j, "tenantB1", "status"), "MISS");
    ck_assert(strncmp(js(j, "tenantA1", "key"), "team-a:", 7) == 0);
    ck_assert(strncmp(js(j, "tenantB1", "key"), "team-b:", 7) == 0);
    ck_assert_str_eq(js(j, "badjson", "status"), "400");
    /* chat miss, stream miss, 2 embedding items in one call, tenant A, B */
    ck_assert_uint_eq(fp_count(fp) - before, 5);
    json_object_put(j);

    before = fp_count(fp);
    fp_set_delay_ms(fp, 1000);
    j = run_node("coalesce");
    fp_set_delay_ms(fp, 0);
    ck_assert_str_eq(js(j, "coalesce", "n"), "10");
    ck_assert_str_eq(js(j, "coalesce", "distinct"), "1");
    ck_assert_str_eq(js(j, "coalesce", "misses"), "1");
    ck_assert_str_eq(js(j, "streams", "distinct"), "1");
    ck_assert_uint_eq(fp_count(fp) - before, 2);
    json_object_put(j);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Process-level behaviour: own server instances. */

START_TEST(test_sigterm_finishes_in_flight)
{
    proxy p;
    proxy_start(&p, "proxy-term", NULL);
    char *b = chat_body("finish me", 0);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/chat/completions", p.url);
    fp_set_delay_ms(fp, 1000);
    cc_call c;
    cc_start(&c, tmpdir, "POST", url, b, admin_h, NULL);
    /* The request is upstream when the signal comes: the fake provider
     * has recorded nothing yet until it answers, so wait for the proxy's
     * in-flight gauge instead of guessing. */
    for (int i = 0; i < 100; i++) {
        cc_resp m;
        http(&m, "GET", &p, "/metrics", NULL, admin_h);
        int busy = m.body && strstr(m.body, "llmcache_inflight_requests 2") != NULL;
        cc_free(&m);
        if (busy)
            break;
        sleep_ms(20);
    }
    ck_assert_int_eq(kill(p.srv.pid, SIGTERM), 0);
    cc_resp r;
    cc_finish(&c, &r);
    fp_set_delay_ms(fp, 0);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    json_object *o = body_json(&r);
    ck_assert_ptr_nonnull(strstr(jpath_str(o, "choices", 0, "message", "content"), "finish me"));
    json_object_put(o);
    cc_free(&r);
    ck_assert_int_eq(proc_wait(p.srv.pid), 0);
    p.srv.pid = 0;
    char log[400];
    snprintf(log, sizeof log, "%s/proxy-term.log", p.srv.dir);
    char *text = proc_slurp(log, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "stopped"));
    ck_assert_msg(!strstr(text, "runtime error") && !strstr(text, "Sanitizer"),
                  "sanitizer report in the server log: %s", text);
    ck_assert_msg(!strstr(text, "serve: http:"),
                  "libmicrohttpd lines in the log without --access-log: %s", text);
    free(text);
    testsrv_stop(&p.srv);
    free(b);
}
END_TEST

static void bad_config(const char *json, const char *needle)
{
    char cfg[300], err[300];
    snprintf(cfg, sizeof cfg, "%s/bad.json", tmpdir);
    snprintf(err, sizeof err, "%s/bad.err", tmpdir);
    proc_spit(cfg, json);
    char *argv[] = {SERVE, "serve", "--config", cfg, "--listen", "127.0.0.1:0", NULL};
    int rc = proc_run(argv, NULL, err);
    char *e = proc_slurp(err, NULL);
    ck_assert_msg(rc == 2, "exit %d for %s: %s", rc, json, e);
    ck_assert_msg(strstr(e, needle) != NULL, "\"%s\" not in: %s", needle, e);
    free(e);
}

START_TEST(test_bad_config)
{
    bad_config("{\"models\": [{\"name\": \"x\", \"provider\": \"nope\"}]}", "models[0].provider");
    bad_config("{\"models\": [{\"name\": \"x\", \"provider\": \"openai\", \"api_key_env\": "
               "\"LLMC_TEST_UNSET_VAR\"}]}",
               "models[0].api_key_env");
    bad_config("{\"keys\": [{\"namespace\": \"a\"}]}", "keys[0].key");
    bad_config("{\"limits\": {\"max_body_bytes\": \"big\"}}", "limits.max_body_bytes");
    bad_config("{\"listen\": \"localhost\"}", "listen");
    bad_config("{\"lisen\": \"127.0.0.1:1\"}", "\"lisen\"");
    bad_config("{\"cache\": {\"url\": \"nosuch://x\"}}", "nosuch");
    bad_config("{\"cache\": \"local://\",\n \"models\": [,]}", "line 2");
    bad_config("{\"client\": {\"max_retries\": 99}}", "client");
    bad_config("{\"prices\": {\"house\": {\"inptu\": 1}}}", "field \"prices\": price of model "
               "\"house\": unknown field \"inptu\"");
    bad_config("{\"prices\": 5}", "field \"prices\": must be a price file path");
    bad_config("{\"prices\": \"/nonexistent/prices.json\"}", "/nonexistent/prices.json");
    /* Bad command lines are usage errors too. */
    char *argv[] = {SERVE, "serve", "--threads", "many", NULL};
    ck_assert_int_eq(proc_run(argv, NULL, "/dev/null"), 2);
    char *argv2[] = {SERVE, "serve", "--tenant", "no-equals-sign", NULL};
    ck_assert_int_eq(proc_run(argv2, NULL, "/dev/null"), 2);
}
END_TEST

/* Without a model list the library routes by model name and takes the
 * provider key from the server's environment; a provider error quoting
 * the key reaches the client without it. */
START_TEST(test_env_provider_key)
{
    proxy p;
    memset(&p, 0, sizeof p);
    ck_assert_int_eq(testsrv_mkdir(&p.srv, "proxy-env"), 0);
    p.port = testsrv_free_port();
    snprintf(p.url, sizeof p.url, "http://127.0.0.1:%d", p.port);
    char base[128];
    snprintf(base, sizeof base, "%s/v1", fp_url(fp));
    setenv("OPENAI_API_KEY", "sk-env-secret-98765", 1);
    setenv("OPENAI_BASE_URL", base, 1);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", p.port);
    char *argv[] = {SERVE,      "serve", "--listen", listen, "--cache", "local://",
                    "--api-key", "sk-cli-admin-1", "--tenant", "t1=sk-cli-tenant-2", NULL};
    ck_assert_int_eq(testsrv_spawn(&p.srv, argv), 0);
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    ck_assert_int_eq(testsrv_wait_tcp(&p.srv, p.port, 10000), 0);
    char *b = chat_body("from the environment", 0);
    const char *cli_admin[] = {"Authorization: Bearer sk-cli-admin-1", NULL};
    const char *cli_tenant[] = {"Authorization: Bearer sk-cli-tenant-2", NULL};
    cc_resp r;
    http(&r, "POST", &p, "/v1/chat/completions", b, NULL);
    ck_assert_int_eq(r.status, 401);
    cc_free(&r);
    http(&r, "POST", &p, "/v1/chat/completions", b, cli_tenant);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "t1:", 3) == 0);
    cc_free(&r);
    http(&r, "POST", &p, "/v1/chat/completions", b, cli_admin);
    ck_assert_int_eq(r.status, 200);
    ck_status(&r, "MISS");
    ck_assert_str_eq(fp_header_get(fp_last(fp), "Authorization"), "Bearer sk-env-secret-98765");
    cc_free(&r);
    free(b);
    b = chat_body("key quoted back", 0);
    fp_push_reply(fp, 401, "application/json",
                  "{\"error\":{\"message\":\"Incorrect API key provided: sk-env-secret-98765.\","
                  "\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
                  NULL);
    http(&r, "POST", &p, "/v1/chat/completions", b, cli_admin);
    assert_openai_error(&r, 401, NULL);
    ck_assert_ptr_nonnull(strstr(r.body, "Incorrect API key provided"));
    ck_assert_ptr_null(strstr(r.body, "sk-env-secret-98765"));
    ck_assert_ptr_null(strstr(r.headers, "sk-env-secret-98765"));
    cc_free(&r);
    free(b);
    testsrv_stop(&p.srv);
}
END_TEST

/* Last: the shared server stops cleanly, and its log (where sanitizer
 * reports of the server process land) is clean. */
/* ------------------------------------------------------------------ */
/* Hostile clients: tenant boundaries, control spellings, framing. */

/* Send raw bytes on a new connection and read until the server closes
 * it; *closed = 0 when it was still open after 10 s (kept alive). The
 * answer is NUL-terminated (malloc'd). */
static char *raw_http(int port, const char *data, size_t len, int *closed)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close before reading everything */
        off += (size_t)n;
    }
    size_t cap = 65536, used = 0;
    char *out = malloc(cap + 1);
    *closed = 0;
    for (;;) {
        ssize_t n = recv(fd, out + used, cap - used, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            *closed = 1;
            break;
        }
        if (n < 0 || (used += (size_t)n) == cap)
            break;
    }
    out[used] = '\0';
    close(fd);
    return out;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* A chat body for prompt `text` with `extra` members (raw JSON text). */
static char *chat_body_x(const char *text, const char *extra)
{
    char b[2048];
    snprintf(b, sizeof b,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"%s "
             "%u\"}]%s}",
             text, run_tag, extra ? extra : "");
    return strdup(b);
}

static const char *const ha_h[] = {"Authorization: Bearer " KEY_A, NULL};
static const char *const hb_h[] = {"x-api-key: " KEY_B, NULL};

/* Tenant A cannot reach tenant B's entries through controls spelled with
 * JSON escapes, preset keys, namespaces or embedding items. */
START_TEST(test_tenant_escapes)
{
    char *b = chat_body("private to b", 0);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb_h);
    ck_status(&r, "MISS");
    char kb[256];
    snprintf(kb, sizeof kb, "%s", cc_hdr(&r, "x-llmcache-key"));
    ck_assert(strncmp(kb, "team-b:", 7) == 0);
    cc_free(&r);
    size_t before = fp_count(fp);

    /* Reading B's key, every spelling: never B's entry. */
    static const char *const names[] = {"\\u0063ache", "c\\u0061che", "cache", "\\u0063\\u0061che",
                                        NULL};
    for (int i = 0; names[i]; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, ",\"%s\":{\"key\":\"%s\"}", names[i], kb);
        char *a = chat_body_x("a asks for b's key", extra);
        for (int twice = 0; twice < 2; twice++) { /* the second one meets the memos */
            http(&r, "POST", &main_px, "/v1/chat/completions", a, ha_h);
            ck_assert_int_eq(r.status, 200);
            const char *k = cc_hdr(&r, "x-llmcache-key");
            ck_assert_msg(k && strncmp(k, "team-a:key=", 11) == 0, "%s: key %s", names[i],
                          k ? k : "(none)");
            ck_assert_msg(strstr(r.body, "a asks for b") != NULL, "%s got: %.300s", names[i],
                          r.body);
            cc_free(&r);
        }
        free(a);
    }
    /* Overwriting B's key on a miss: A's answer lands in A's space. */
    char extra[512];
    snprintf(extra, sizeof extra, ",\"\\u0063ache\":{\"key\":\"%s\",\"no-cache\":true}", kb);
    char *a = chat_body_x("a overwrites", extra);
    http(&r, "POST", &main_px, "/v1/chat/completions", a, ha_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-a:", 7) == 0);
    cc_free(&r);
    free(a);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb_h);
    ck_status(&r, "HIT");
    ck_assert_str_eq(cc_hdr(&r, "x-llmcache-key"), kb);
    ck_assert_msg(strstr(r.body, "private to b") && !strstr(r.body, "a overwrites"), "%.300s",
                  r.body);
    cc_free(&r);

    /* Namespaces nest inside the tenant, however asked for. */
    const char *ha_ns[] = {"Authorization: Bearer " KEY_A, "x-llmcache-namespace: team-b", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_ns);
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-a:team-b:", 14) == 0);
    cc_free(&r);
    a = chat_body_x("private to b", ",\"\\u0063ache\":{\"namespace\":\"team-b\"}");
    http(&r, "POST", &main_px, "/v1/chat/completions", a, ha_h);
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-a:team-b:", 14) == 0);
    cc_free(&r);
    free(a);

    /* Embedding items: a preset key stays in A's space too. */
    char eb[512];
    snprintf(eb, sizeof eb,
             "{\"model\":\"text-embedding-3-small\",\"input\":[\"emb %u\"],\"\\u0063ache\":{"
             "\"key\":\"%s\"}}",
             run_tag, kb);
    http(&r, "POST", &main_px, "/v1/embeddings", eb, ha_h);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-a:", 7) == 0);
    cc_free(&r);
    /* Upstream: the first spelling (the others find A's own entry), the
     * overwrite, the namespace header, the embedding; the body namespace
     * found the header's entry, A's own. */
    ck_assert_uint_eq(fp_count(fp) - before, 4);

    /* Admin endpoints stay inside the tenant. */
    char del[512];
    snprintf(del, sizeof del, "{\"keys\":[\"%s\"]}", kb);
    http(&r, "POST", &main_px, "/cache/delete", del, ha_h);
    assert_openai_error(&r, 403, "namespace");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, hb_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    free(b);
}
END_TEST

/* Namespace names: one rule everywhere; a tenant's sub-namespace can be
 * flushed; bad tenants and shared keys stop the start. */
START_TEST(test_namespace_rules)
{
    char *b = chat_body("namespace rules", 0);
    cc_resp r;
    static const char *const bad_ns[] = {"x:y", "a*", "a?", "a[b]", "a\\b", NULL};
    for (int i = 0; bad_ns[i]; i++) {
        char h[128];
        snprintf(h, sizeof h, "x-llmcache-namespace: %s", bad_ns[i]);
        const char *hh[] = {"Authorization: Bearer " KEY_A, h, NULL};
        http(&r, "POST", &main_px, "/v1/chat/completions", b, hh);
        assert_openai_error(&r, 400, "x-llmcache-namespace");
        cc_free(&r);
        http(&r, "POST", &main_px, "/cache/flush", NULL, hh);
        assert_openai_error(&r, 400, "x-llmcache-namespace");
        cc_free(&r);
    }
    char *bb = chat_body_x("namespace rules", ",\"cache\":{\"namespace\":\"x:y\"}");
    http(&r, "POST", &main_px, "/v1/chat/completions", bb, admin_h);
    assert_openai_error(&r, 400, "namespace");
    cc_free(&r);
    free(bb);
    http(&r, "POST", &main_px, "/cache/flush", "{\"namespace\":\"a:b\"}", ha_h);
    assert_openai_error(&r, 400, "namespace\" \"a:b\"");
    cc_free(&r);

    /* A sub-namespace of a tenant: stored, hit, flushed alone. */
    const char *ha_exp[] = {"Authorization: Bearer " KEY_A, "x-llmcache-namespace: exp", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_exp);
    ck_status(&r, "MISS");
    ck_assert(strncmp(cc_hdr(&r, "x-llmcache-key"), "team-a:exp:", 11) == 0);
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_exp);
    ck_status(&r, "HIT");
    cc_free(&r);
    http(&r, "POST", &main_px, "/cache/flush", "{\"namespace\":\"exp\"}", ha_h);
    ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "\"namespace\":\"team-a:exp\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"deleted\":1"));
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_exp);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, ha_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    free(b);

    bad_config("{\"keys\": [{\"key\": \"k1k1k1\", \"namespace\": \"a:b\"}]}",
               "keys[0].namespace");
    bad_config("{\"keys\": [{\"key\": \"k1k1k1\", \"namespace\": \"a*\"}]}", "'*'");
    char *argv[] = {SERVE, "serve", "--listen", "127.0.0.1:0", "--tenant", "a=K1K1K1",
                    "--tenant", "a:b=K2K2K2", NULL};
    char err[300];
    snprintf(err, sizeof err, "%s/tenant.err", tmpdir);
    ck_assert_int_eq(proc_run(argv, NULL, err), 2);
    char *e = proc_slurp(err, NULL);
    ck_assert_msg(e && strstr(e, "a:b"), "%s", e ? e : "");
    free(e);
    char *argv2[] = {SERVE, "serve", "--listen", "127.0.0.1:0", "--tenant", "a=K1K1K1",
                     "--tenant", "b=K1K1K1", NULL};
    ck_assert_int_eq(proc_run(argv2, NULL, err), 2);
    e = proc_slurp(err, NULL);
    ck_assert_msg(e && strstr(e, "two namespaces") && !strstr(e, "K1K1K1"), "%s", e ? e : "");
    free(e);
}
END_TEST

/* Opting out, however spelled, is never answered from the cache, and the
 * status says what happened. */
START_TEST(test_opt_out_spellings)
{
    char *b = chat_body_x("opt out", NULL);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    static const struct {
        const char *extra, *status;
    } cases[] = {
        {",\"caching\":0", "BYPASS"},
        {",\"caching\":false", "BYPASS"},
        {",\"\\u0063aching\":false", "BYPASS"},
        {",\"c\\u0061ching\":0", "BYPASS"},
        {",\"\\u0063ache\":{\"no-cache\":true}", "REFRESH"},
        {",\"cache\":{\"no-c\\u0061che\":1}", "REFRESH"},
        {",\"\\u0063ache\":{\"no-cache\":true,\"no-store\":true}", "BYPASS"},
        {",\"caching\":true,\"caching\":false", "BYPASS"},
        {",\"cache\":{},\"\\u0063ache\":{\"no-cache\":true}", "REFRESH"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *x = chat_body_x("opt out", cases[i].extra);
        for (int twice = 0; twice < 2; twice++) {
            size_t before = fp_count(fp);
            http(&r, "POST", &main_px, "/v1/chat/completions", x, admin_h);
            ck_assert_int_eq(r.status, 200);
            ck_status(&r, cases[i].status);
            ck_assert_uint_eq(fp_count(fp) - before, 1);
            cc_free(&r);
        }
        free(x);
    }
    /* no-store on a miss: fetched, not stored. */
    char *y = chat_body_x("opt out nostore", ",\"\\u0063ache\":{\"no-store\":true}");
    http(&r, "POST", &main_px, "/v1/chat/completions", y, admin_h);
    ck_status(&r, "MISS-NOSTORE");
    cc_free(&r);
    free(y);
    y = chat_body_x("opt out nostore", NULL);
    http(&r, "POST", &main_px, "/v1/chat/completions", y, admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    free(y);
    y = chat_body_x("opt out", ",\"caching\":\"no\"");
    http(&r, "POST", &main_px, "/v1/chat/completions", y, admin_h);
    assert_openai_error(&r, 400, "caching");
    cc_free(&r);
    free(y);
    free(b);
}
END_TEST

/* Framing a front end could read differently: 400, connection closed,
 * and the smuggled request never runs. */
START_TEST(test_framing)
{
    const char *body = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"framing\"}]}";
    const char *smuggled = "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
                           "\r\n\r\n";
    size_t bl = strlen(body), sl = strlen(smuggled);
    char req[4][2048];
    snprintf(req[0], sizeof req[0],
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
             "\r\nContent-Length: %zu\r\nContent-Length: %zu\r\n\r\n%s%s",
             bl, bl + sl, body, smuggled);
    snprintf(req[1], sizeof req[1],
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
             "\r\nContent-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s",
             sl + 5, smuggled);
    snprintf(req[2], sizeof req[2],
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
             "\r\nContent-Length : %zu\r\n\r\n%s",
             sl, smuggled);
    snprintf(req[3], sizeof req[3],
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
             "\r\nContent-Length: 0\r\n  %zu\r\n\r\n%s",
             sl, smuggled);
    const char *what[] = {"Content-Length", "Transfer-Encoding", "header name", "header name"};
    size_t before = fp_count(fp);
    for (int i = 0; i < 4; i++) {
        int closed;
        char *out = raw_http(main_px.port, req[i], strlen(req[i]), &closed);
        ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0, "case %d: %.400s", i, out);
        ck_assert_msg(closed, "case %d: connection kept open: %.400s", i, out);
        ck_assert_msg(count_of(out, "HTTP/1.1 ") == 1, "case %d: a second response: %.600s",
                      i, out);
        ck_assert_msg(strcasestr(out, "Connection: close") != NULL, "case %d: %.400s", i, out);
        ck_assert_msg(strstr(out, "\"error\"") && strstr(out, what[i]), "case %d: %.400s", i,
                      out);
        free(out);
    }
    /* A folded line with more than one word after the fold. */
    const char *fold = "GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Content-Length: 5\r\n\r\n";
    int closed;
    char *out = raw_http(main_px.port, fold, strlen(fold), &closed);
    ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0 && closed, "%.400s", out);
    free(out);
    ck_assert_uint_eq(fp_count(fp) - before, 0);
}
END_TEST

/* Repeated Cache-Control lines count together; an out-of-range TTL
 * header is refused as the body's ttl is. */
START_TEST(test_header_lines_and_ttl)
{
    char *b = chat_body_x("header lines", NULL);
    cc_resp r;
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "MISS");
    cc_free(&r);
    const char *two[] = {"Authorization: Bearer " ADMIN_KEY, "Cache-Control: max-age=100",
                         "Cache-Control: no-cache", NULL};
    for (int twice = 0; twice < 2; twice++) {
        http(&r, "POST", &main_px, "/v1/chat/completions", b, two);
        ck_status(&r, "REFRESH");
        cc_free(&r);
    }
    const char *two_ns[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-namespace: n1",
                            "x-llmcache-namespace: n2", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, two_ns);
    assert_openai_error(&r, 400, "x-llmcache-namespace");
    cc_free(&r);

    free(b);
    b = chat_body_x("huge ttl", NULL);
    const char *huge[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-ttl: 9300000000000000",
                          NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, huge);
    assert_openai_error(&r, 400, "x-llmcache-ttl");
    cc_free(&r);
    const char *most[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-ttl: 100000000000",
                          NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, most);
    ck_status(&r, "MISS");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/chat/completions", b, admin_h);
    ck_status(&r, "HIT");
    cc_free(&r);
    /* An empty Cache-Control line (twice: the second meets the memo). */
    char empty[512];
    snprintf(empty, sizeof empty,
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " ADMIN_KEY
             "\r\nCache-Control:\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(b), b);
    for (int twice = 0; twice < 2; twice++) {
        int closed;
        char *out = raw_http(main_px.port, empty, strlen(empty), &closed);
        ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0, "%.300s", out);
        free(out);
    }
    const char *twokeys[] = {"Authorization: Bearer " KEY_A, "Authorization: Bearer " ADMIN_KEY,
                             NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, twokeys);
    assert_openai_error(&r, 400, "Authorization");
    cc_free(&r);
    const char *twottl[] = {"Authorization: Bearer " ADMIN_KEY, "x-llmcache-ttl: 5",
                            "x-llmcache-ttl: 50", NULL};
    http(&r, "POST", &main_px, "/v1/chat/completions", b, twottl);
    assert_openai_error(&r, 400, "x-llmcache-ttl");
    cc_free(&r);
    free(b);
}
END_TEST

/* Errors are OpenAI JSON, 405 says what is allowed, HEAD /health works,
 * JSON extensions are refused. */
START_TEST(test_format_nits)
{
    cc_resp r;
    char *longpath = malloc(9100);
    strcpy(longpath, "/v1/models?");
    memset(longpath + 11, 'a', 9000);
    longpath[9011] = '\0';
    char *longurl = malloc(9300);
    snprintf(longurl, 9300, "%s%s", main_px.url, longpath);
    cc_call c;
    cc_start(&c, tmpdir, "GET", longurl, NULL, admin_h, NULL);
    cc_finish(&c, &r);
    free(longurl);
    assert_openai_error(&r, 414, "URL");
    ck_assert_str_eq(cc_hdr(&r, "Content-Type"), "application/json");
    cc_free(&r);
    free(longpath);
    /* Header lines past the proxy's limit: its JSON 431. Past
     * libmicrohttpd's connection buffer (kept small: it is zeroed per
     * request), libmicrohttpd's own 431 with an HTML body. */
    char *big = malloc(20100);
    strcpy(big, "X-Big: ");
    memset(big + 7, 'b', 13000);
    big[13007] = '\0';
    const char *bigh[] = {"Authorization: Bearer " ADMIN_KEY, big, NULL};
    http(&r, "GET", &main_px, "/v1/models", NULL, bigh);
    assert_openai_error(&r, 431, "headers");
    ck_assert_str_eq(cc_hdr(&r, "Content-Type"), "application/json");
    cc_free(&r);
    memset(big + 7, 'b', 20000);
    big[20007] = '\0';
    http(&r, "GET", &main_px, "/v1/models", NULL, bigh);
    ck_assert_int_eq(r.status, 431);
    cc_free(&r);
    free(big);

    http(&r, "DELETE", &main_px, "/health", NULL, NULL);
    assert_openai_error(&r, 405, NULL);
    ck_assert_str_eq(cc_hdr(&r, "Allow"), "GET, HEAD");
    cc_free(&r);
    http(&r, "GET", &main_px, "/v1/chat/completions", NULL, admin_h);
    assert_openai_error(&r, 405, NULL);
    ck_assert_str_eq(cc_hdr(&r, "Allow"), "POST");
    cc_free(&r);
    http(&r, "POST", &main_px, "/v1/models", "{}", admin_h);
    assert_openai_error(&r, 405, NULL);
    ck_assert_str_eq(cc_hdr(&r, "Allow"), "GET");
    cc_free(&r);
    const char *head = "HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int closed;
    char *out = raw_http(main_px.port, head, strlen(head), &closed);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200", 12) == 0 && !strstr(out, "\"status\""), "%.400s",
                  out);
    free(out);

    static const char *const bodies[] = {
        "{\"model\":\"gpt-4o-mini\",/* hi */\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}",
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":'c'}]}",
        "{'model':\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}",
        NULL};
    for (int i = 0; bodies[i]; i++) {
        http(&r, "POST", &main_px, "/v1/chat/completions", bodies[i], admin_h);
        assert_openai_error(&r, 400, "not JSON");
        cc_free(&r);
    }
    http(&r, "POST", &main_px, "/cache/flush", "{\"namespace\":\"x\" /* c */}", admin_h);
    assert_openai_error(&r, 400, "not JSON");
    cc_free(&r);
    /* Requests libmicrohttpd refuses itself (a header line without a
     * colon; HTTP/1.1 without Host, in its strict mode): its complaints
     * stay out of the log without --access-log (checked at the clean
     * exit). */
    const char *nocolon = "GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n";
    out = raw_http(main_px.port, nocolon, strlen(nocolon), &closed);
    ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0 && closed, "%.400s", out);
    free(out);
    const char *nohost = "GET /health HTTP/1.1\r\n\r\n";
    out = raw_http(main_px.port, nohost, strlen(nohost), &closed);
    ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0 && closed, "%.400s", out);
    free(out);
}
END_TEST

START_TEST(test_main_server_clean_exit)
{
    ck_assert_int_eq(kill(main_px.srv.pid, SIGTERM), 0);
    int rc = proc_wait(main_px.srv.pid);
    main_px.srv.pid = 0;
    char log[400];
    snprintf(log, sizeof log, "%s/proxy-main.log", main_px.srv.dir);
    char *text = proc_slurp(log, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(rc == 0, "llmcache serve exited %d: %s", rc, text);
    ck_assert_msg(!strstr(text, "runtime error") && !strstr(text, "Sanitizer"),
                  "sanitizer report in the server log: %s", text);
    ck_assert_msg(!strstr(text, "serve: http:"),
                  "libmicrohttpd lines in the log without --access-log: %s", text);
    free(text);
}
END_TEST

/* Semantic lookups through two proxies sharing one Redis: one stores,
 * the other answers a near-duplicate HIT-SEMANTIC with the similarity
 * and the matched key; numbers that differ miss; another tenant's
 * near-duplicate misses; /metrics has the similarity histogram. */
START_TEST(test_semantic_two_proxies)
{
#if LLMC_HAVE_REDIS
    testsrv redis;
    ck_assert_int_eq(testsrv_mkdir(&redis, "semantic-redis"), 0);
    int rport = testsrv_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", rport);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", redis.dir, NULL};
    ck_assert_int_eq(testsrv_spawn(&redis, argv), 0);
    ck_assert_int_eq(testsrv_wait_tcp(&redis, rport, 10000), 0);
    char cj[300];
    snprintf(cj, sizeof cj,
             "{\"url\": \"redis://127.0.0.1:%d/0\", \"options\": {\"ttl\": 3600, "
             "\"semantic\": true, \"semantic_refresh_ms\": 0}}", rport);
    cache_json = cj;
    proxy p1, p2;
    proxy_start(&p1, "proxy-sem-1", NULL);
    proxy_start(&p2, "proxy-sem-2", NULL);
    cache_json = DEFAULT_CACHE_JSON;
    char *b1 = chat_body("What is the capital of Peru?", 0);
    char *b2 = chat_body("what is the CAPITAL of peru", 0);
    size_t before = fp_count(fp);
    cc_resp r1, r2, r3, r4, m;
    http(&r1, "POST", &p1, "/v1/chat/completions", b1, admin_h);
    ck_status(&r1, "MISS");
    http(&r2, "POST", &p2, "/v1/chat/completions", b2, admin_h);
    ck_status(&r2, "HIT-SEMANTIC");
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    ck_assert_ptr_nonnull(cc_hdr(&r2, "x-llmcache-similarity"));
    ck_assert(atof(cc_hdr(&r2, "x-llmcache-similarity")) >= 0.95);
    ck_assert_str_eq(cc_hdr(&r2, "x-llmcache-matched-key"), cc_hdr(&r1, "x-llmcache-key"));
    json_object *o2 = body_json(&r2);
    ck_assert_ptr_nonnull(strstr(jpath_str(o2, "choices", 0, "message", "content"),
                                 "echo: What is the capital of Peru?"));
    json_object_put(o2);
    /* Different numbers: a miss, the fresh answer from upstream. */
    char *b3 = chat_body("refund 10 dollars", 0), *b4 = chat_body("refund 100 dollars", 0);
    http(&r3, "POST", &p1, "/v1/chat/completions", b3, admin_h);
    ck_status(&r3, "MISS");
    http(&r4, "POST", &p2, "/v1/chat/completions", b4, admin_h);
    ck_status(&r4, "MISS");
    cc_free(&r3);
    cc_free(&r4);
    /* Another tenant's near-duplicate misses; the same tenant's hits. */
    char *b5 = chat_body("Which planet is largest?", 0), *b6 = chat_body("which planet is largest", 0);
    http(&r3, "POST", &p1, "/v1/chat/completions", b5, ha_h);
    ck_status(&r3, "MISS");
    http(&r4, "POST", &p2, "/v1/chat/completions", b6, hb_h);
    ck_status(&r4, "MISS");
    cc_free(&r4);
    http(&r4, "POST", &p2, "/v1/chat/completions", b6, ha_h);
    ck_status(&r4, "HIT-SEMANTIC");
    ck_assert(strncmp(cc_hdr(&r4, "x-llmcache-matched-key"), "team-a:", 7) == 0);
    http(&m, "GET", &p2, "/metrics", NULL, admin_h);
    ck_assert_int_eq(m.status, 200);
    ck_assert_ptr_nonnull(strstr(m.body, "# TYPE llmcache_semantic_best_similarity histogram"));
    ck_assert_ptr_nonnull(
        strstr(m.body, "llmcache_semantic_best_similarity_bucket{outcome=\"hit\",le=\"1\"} 2"));
    ck_assert_ptr_nonnull(
        strstr(m.body, "llmcache_semantic_best_similarity_count{outcome=\"miss\"}"));
    cc_free(&r1);
    cc_free(&r2);
    cc_free(&r3);
    cc_free(&r4);
    cc_free(&m);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    free(b5);
    free(b6);
    testsrv_stop(&p1.srv);
    testsrv_stop(&p2.srv);
    testsrv_stop(&redis);
#else
    ck_abort_msg("semantic proxy test needs the redis backend");
#endif
}
END_TEST

/* ------------------------------------------------------------------ */
/* The Responses API (POST /v1/responses): curl and the openai npm
 * package's responses.create. */

/* "type type ..." of a typed SSE body (each event's "event:" line must
 * name its data's "type"), the joined output_text deltas and whether a
 * [DONE] came. */
static void typed_sse(const char *body, char *types, size_t tsz, char *text, size_t xsz,
                      int *done)
{
    types[0] = text[0] = '\0';
    *done = strstr(body, "[DONE]") != NULL;
    const char *p = body;
    while ((p = strstr(p, "event: ")) != NULL) {
        p += 7;
        size_t tl = strcspn(p, "\n");
        const char *d = p + tl + 1;
        ck_assert_msg(strncmp(d, "data: ", 6) == 0, "event without data: %.80s", p);
        d += 6;
        const char *e = strstr(d, "\n\n");
        ck_assert_ptr_nonnull(e);
        char *ev = strndup(d, (size_t)(e - d));
        json_object *o = json_tokener_parse(ev);
        ck_assert_msg(o != NULL, "bad SSE event: %s", ev);
        const char *t = jpath_str(o, "type", -1, NULL, NULL);
        ck_assert_msg(t && strlen(t) == tl && strncmp(t, p, tl) == 0, "event: %.*s, type %s",
                      (int)tl, p, t ? t : "(none)");
        if (*types)
            strncat(types, " ", tsz - strlen(types) - 1);
        strncat(types, t, tsz - strlen(types) - 1);
        if (strcmp(t, "response.output_text.delta") == 0)
            strncat(text, jpath_str(o, "delta", -1, NULL, NULL), xsz - strlen(text) - 1);
        json_object_put(o);
        free(ev);
        p = e;
    }
}

static char *responses_body(const char *text, const char *extra)
{
    char b[2048];
    snprintf(b, sizeof b, "{\"model\":\"gpt-4o-mini\",\"input\":\"%s %u\"%s}", text, run_tag,
             extra ? extra : "");
    return strdup(b);
}

START_TEST(test_responses_curl)
{
    size_t before = fp_count(fp);
    char *plain = responses_body("responses plain", NULL);
    cc_resp r1, r2;
    http(&r1, "POST", &main_px, "/v1/responses", plain, admin_h);
    ck_assert_int_eq(r1.status, 200);
    ck_status(&r1, "MISS");
    ck_assert_ptr_nonnull(cc_hdr(&r1, "x-llmcache-key"));
    http(&r2, "POST", &main_px, "/responses", plain, admin_h);
    ck_status(&r2, "HIT");
    ck_assert_ptr_nonnull(cc_hdr(&r2, "age"));
    /* What the hit saved, from the Responses usage names. */
    ck_assert_int_gt(atoi(cc_hdr(&r2, "x-llmcache-saved-tokens")), 0);
    json_object *o1 = body_json(&r1), *o2 = body_json(&r2), *v;
    ck_assert_str_eq(jpath_str(o2, "object", -1, NULL, NULL), "response");
    ck_assert(json_object_object_get_ex(o2, "cache", &v) && json_object_get_boolean(v));
    ck_assert(!json_object_object_get_ex(o1, "cache", NULL));
    ck_assert_str_eq(jpath_str(o1, "output", 0, "id", NULL), jpath_str(o2, "output", 0, "id", NULL));
    ck_assert_ptr_nonnull(strstr(r2.body, "echo: responses plain"));
    ck_assert_str_eq(fp_last(fp)->path, "/v1/responses");
    json_object_put(o1);
    json_object_put(o2);
    cc_free(&r1);
    cc_free(&r2);
    ck_assert_uint_eq(fp_count(fp) - before, 1);

    /* A stream: typed events, no [DONE]; the hit replays the same types;
     * the plain call after it is a hit of the same entry. */
    char *st = responses_body("responses stream of several words", ",\"stream\":true");
    http(&r1, "POST", &main_px, "/v1/responses", st, admin_h);
    ck_assert_int_eq(r1.status, 200);
    ck_status(&r1, "MISS");
    ck_assert_ptr_nonnull(strstr(cc_hdr(&r1, "content-type"), "text/event-stream"));
    http(&r2, "POST", &main_px, "/v1/responses", st, admin_h);
    ck_status(&r2, "HIT");
    char t1[4096], t2[4096], x1[512], x2[512];
    int d1, d2;
    typed_sse(r1.body, t1, sizeof t1, x1, sizeof x1, &d1);
    typed_sse(r2.body, t2, sizeof t2, x2, sizeof x2, &d2);
    ck_assert_int_eq(d1, 0);
    ck_assert_int_eq(d2, 0);
    ck_assert_str_eq(t1, t2);
    ck_assert_str_eq(x1, x2);
    ck_assert_ptr_nonnull(strstr(x1, "echo: responses stream of several words"));
    ck_assert(strncmp(t1, "response.created response.in_progress", 37) == 0);
    ck_assert_ptr_nonnull(strstr(t1, "response.output_text.delta response.output_text.delta"));
    ck_assert(strcmp(t1 + strlen(t1) - 18, "response.completed") == 0);
    cc_free(&r1);
    cc_free(&r2);
    char *st_plain = responses_body("responses stream of several words", NULL);
    http(&r1, "POST", &main_px, "/v1/responses", st_plain, admin_h);
    ck_status(&r1, "HIT");
    cc_free(&r1);
    ck_assert_uint_eq(fp_count(fp) - before, 2);

    /* State held by the provider: never cached, passed through. */
    char *prev = responses_body("responses follow-up", ",\"previous_response_id\":\"resp_x\"");
    for (int i = 0; i < 2; i++) {
        http(&r1, "POST", &main_px, "/v1/responses", prev, admin_h);
        ck_assert_int_eq(r1.status, 200);
        ck_status(&r1, "BYPASS");
        ck_assert_str_eq(cc_hdr(&r1, "x-llmcache-bypass"), "previous_response_id");
        ck_assert_ptr_null(cc_hdr(&r1, "x-llmcache-key"));
        ck_assert_ptr_nonnull(strstr(fp_last(fp)->body, "\"previous_response_id\":\"resp_x\""));
        cc_free(&r1);
    }
    char *conv = responses_body("responses conv", ",\"conversation\":\"conv_1\",\"stream\":true");
    http(&r1, "POST", &main_px, "/v1/responses", conv, admin_h);
    ck_status(&r1, "BYPASS");
    cc_free(&r1);
    ck_assert_uint_eq(fp_count(fp) - before, 5);

    /* A stream that fails upstream: an error event ends it, nothing is
     * stored (the same request goes upstream again). */
    char *bad = responses_body("ERROR_EVENT responses", ",\"stream\":true");
    for (int i = 0; i < 2; i++) {
        http(&r1, "POST", &main_px, "/v1/responses", bad, admin_h);
        ck_status(&r1, "MISS");
        ck_assert_ptr_nonnull(strstr(r1.body, "event: error\ndata: {\"type\":\"error\""));
        ck_assert_ptr_null(strstr(r1.body, "[DONE]"));
        cc_free(&r1);
    }
    ck_assert_uint_eq(fp_count(fp) - before, 7);

    /* Errors in the OpenAI error format, naming the field. */
    http(&r1, "POST", &main_px, "/v1/responses", "{\"model\":\"gpt-4o-mini\"}", admin_h);
    ck_assert_int_eq(r1.status, 400);
    o1 = body_json(&r1);
    ck_assert_ptr_nonnull(strstr(jpath_str(o1, "error", -1, "message", NULL), "\"input\""));
    ck_assert_str_eq(jpath_str(o1, "error", -1, "type", NULL), "invalid_request_error");
    json_object_put(o1);
    cc_free(&r1);
    http(&r1, "GET", &main_px, "/metrics", NULL, admin_h);
    ck_assert_ptr_nonnull(strstr(r1.body, "llmcache_cache_hits_total{endpoint=\"responses\"} 3"));
    ck_assert_ptr_nonnull(strstr(r1.body, "llmcache_cache_bypass_total{endpoint=\"responses\"} 3"));
    cc_free(&r1);
    free(plain);
    free(st);
    free(st_plain);
    free(prev);
    free(conv);
    free(bad);
}
END_TEST

/* A Responses stream to a provider without a Responses endpoint (here
 * mock_response, through the chat adapter): the chat chunks go out as
 * typed events; the hit replays the same items with the same text. */
START_TEST(test_responses_translated_stream)
{
    char b[512];
    snprintf(b, sizeof b, "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"input\":\"mocked %u\","
             "\"mock_response\":\"a translated answer in several words\"}", run_tag);
    cc_resp r1, r2;
    http(&r1, "POST", &main_px, "/v1/responses", b, admin_h);
    ck_assert_int_eq(r1.status, 200);
    ck_status(&r1, "MISS");
    http(&r2, "POST", &main_px, "/v1/responses", b, admin_h);
    ck_status(&r2, "HIT");
    char t1[4096], t2[4096], x1[512], x2[512];
    int d1, d2;
    typed_sse(r1.body, t1, sizeof t1, x1, sizeof x1, &d1);
    typed_sse(r2.body, t2, sizeof t2, x2, sizeof x2, &d2);
    ck_assert_int_eq(d1, 0);
    ck_assert_str_eq(x1, "a translated answer in several words");
    ck_assert_str_eq(x1, x2);
    ck_assert(strncmp(t1, "response.created response.in_progress response.output_item.added "
                          "response.content_part.added response.output_text.delta", 119) == 0);
    const char *tail = "response.output_text.done response.content_part.done "
                       "response.output_item.done response.completed";
    ck_assert(strcmp(t1 + strlen(t1) - strlen(tail), tail) == 0);
    ck_assert(strcmp(t2 + strlen(t2) - strlen(tail), tail) == 0);
    /* The item's id in the miss's events is the stored one. */
    const char *id1 = strstr(r1.body, "\"item_id\":\"msg_"), *id2 = strstr(r2.body, "\"item_id\":\"msg_");
    ck_assert_ptr_nonnull(id1);
    ck_assert_ptr_nonnull(id2);
    ck_assert(strncmp(id1, id2, strcspn(id1 + 11, "\"") + 11) == 0);
    cc_free(&r1);
    cc_free(&r2);
}
END_TEST

/* A client that leaves a Responses stream: nothing partial is stored. */
START_TEST(test_responses_client_disconnect)
{
    char b[512];
    snprintf(b, sizeof b, "{\"model\":\"slow-stream\",\"stream\":true,\"input\":\"leave %u\"}",
             run_tag);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/responses", main_px.url);
    cc_call c;
    cc_resp r;
    cc_start(&c, tmpdir, "POST", url, b, admin_h, "0.4");
    cc_finish(&c, &r);
    ck_assert_int_eq(r.curl_exit, 28); /* we hung up */
    ck_assert_ptr_nonnull(strstr(r.body, "event: response.output_text.delta"));
    ck_assert_ptr_null(strstr(r.body, "response.completed"));
    cc_free(&r);
    sleep_ms(1500);
    /* The upstream stream ran out after the client left: not stored. */
    snprintf(b, sizeof b, "{\"model\":\"slow-stream\",\"stream\":true,\"input\":\"leave %u\"}",
             run_tag);
    size_t before = fp_count(fp);
    http(&r, "POST", &main_px, "/v1/responses", b, admin_h);
    ck_status(&r, "MISS");
    ck_assert_ptr_nonnull(strstr(r.body, "event: response.completed"));
    cc_free(&r);
    ck_assert_uint_eq(fp_count(fp) - before, 1);
    /* That complete stream was stored: the plain call is its hit. */
    snprintf(b, sizeof b, "{\"model\":\"slow-stream\",\"input\":\"leave %u\"}", run_tag);
    http(&r, "POST", &main_px, "/v1/responses", b, admin_h);
    ck_status(&r, "HIT");
    ck_assert_ptr_nonnull(strstr(r.body, "part0 part1"));
    cc_free(&r);
}
END_TEST

START_TEST(test_responses_npm)
{
    ck_assert_msg(proc_npm_ready(NPM_DIR, "openai", "openai@4", tmpdir),
                  "could not install the openai npm package into " NPM_DIR);
    size_t before = fp_count(fp);
    json_object *j = run_node_script("responses_sdk.mjs", "responses");
    ck_assert_str_eq(js(j, "plain1", "status"), "MISS");
    ck_assert_str_eq(js(j, "plain2", "status"), "HIT");
    ck_assert_str_eq(js(j, "plain1", "text"), js(j, "plain2", "text"));
    ck_assert_ptr_nonnull(strstr(js(j, "plain1", "text"), "echo: sdk plain"));
    ck_assert_str_eq(js(j, "plain2", "cache"), "true");
    ck_assert_str_eq(js(j, "stream1", "status"), "MISS");
    ck_assert_str_eq(js(j, "stream2", "status"), "HIT");
    ck_assert_str_eq(js(j, "stream1", "types"), js(j, "stream2", "types"));
    ck_assert_str_eq(js(j, "stream1", "text"), js(j, "stream2", "text"));
    ck_assert_ptr_nonnull(strstr(js(j, "stream1", "text"), "echo: sdk stream"));
    ck_assert_int_gt(atoi(js(j, "stream1", "deltas")), 1);
    ck_assert_str_eq(js(j, "stream1", "final"), js(j, "stream1", "text"));
    ck_assert_str_eq(js(j, "tool1", "status"), "MISS");
    ck_assert_str_eq(js(j, "tool2", "status"), "HIT");
    ck_assert_str_eq(js(j, "tool1", "types"), js(j, "tool2", "types"));
    ck_assert_str_eq(js(j, "tool2", "args"), "{\"city\":\"Paris\",\"unit\":\"c\"}");
    ck_assert_str_eq(js(j, "think1", "types"), js(j, "think2", "types"));
    ck_assert_str_eq(js(j, "think2", "status"), "HIT");
    ck_assert_ptr_nonnull(strstr(js(j, "think2", "types"), "response.reasoning_summary_text.delta"));
    ck_assert_str_eq(js(j, "prev", "status"), "BYPASS");
    ck_assert_str_eq(js(j, "bad", "status"), "400");
    /* plain, stream, tool, think misses; the follow-up twice. */
    ck_assert_uint_eq(fp_count(fp) - before, 6);
    json_object_put(j);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("serve");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_miss_then_hit);
    tcase_add_test(tc, test_keep_alive);
    tcase_add_test(tc, test_controls);
    tcase_add_test(tc, test_stream);
    tcase_add_test(tc, test_stream_client_disconnect);
    tcase_add_test(tc, test_embeddings_and_text);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_auth_and_tenants);
    tcase_add_test(tc, test_models_health_metrics_ping);
    tcase_add_test(tc, test_coalescing_curl);
    tcase_add_test(tc, test_coalescing_timeout);
    tcase_add_test(tc, test_coalesced_counted_once);
    tcase_add_test(tc, test_openai_npm);
    tcase_add_test(tc, test_responses_curl);
    tcase_add_test(tc, test_responses_client_disconnect);
    tcase_add_test(tc, test_responses_npm);
    tcase_add_test(tc, test_responses_translated_stream);
    tcase_add_test(tc, test_savings);
    tcase_add_test(tc, test_dashboard_browser);
    tcase_add_test(tc, test_sigterm_finishes_in_flight);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_env_provider_key);
    tcase_add_test(tc, test_tenant_escapes);
    tcase_add_test(tc, test_namespace_rules);
    tcase_add_test(tc, test_opt_out_spellings);
    tcase_add_test(tc, test_framing);
    tcase_add_test(tc, test_header_lines_and_ttl);
    tcase_add_test(tc, test_format_nits);
    tcase_add_test(tc, test_main_server_clean_exit);
    suite_add_tcase(s, tc);
    TCase *sem = tcase_create("semantic");
    tcase_add_unchecked_fixture(sem, setup, teardown);
    tcase_set_timeout(sem, 120);
    tcase_add_test(sem, test_semantic_two_proxies);
    suite_add_tcase(s, sem);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(proxy_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
