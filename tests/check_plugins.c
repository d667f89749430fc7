/* Plugins: the example plugins (file backend, echo provider) loaded by
 * path, by name and by autoloading through LLMCACHE_PLUGIN_PATH; fixtures
 * that must be refused (wrong ABI major, no entry point, not a shared
 * object, duplicate names); unload rules; listing; load/unload cycles
 * (leaks show up under the ASan build, which runs this same suite).
 *
 * Check forks every test, so each one starts with no plugin loaded. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "internal.h"
#include "fake_provider.h"

#define FILE_SO LLMC_TEST_PLUGIN_DIR "/llmc-file.so"
#define ECHO_SO LLMC_TEST_PLUGIN_DIR "/llmc-echo.so"
#define COHERE_SO LLMC_TEST_PLUGIN_DIR "/llmc-cohere.so"
#define BAD_ABI_SO LLMC_TEST_FIXTURE_DIR "/fixture-bad-abi.so"
#define NO_ENTRY_SO LLMC_TEST_FIXTURE_DIR "/fixture-no-entry.so"
#define DUP_SO LLMC_TEST_FIXTURE_DIR "/fixture-dup-name.so"
#define KEYS_SO LLMC_TEST_FIXTURE_DIR "/fixture-keys.so"

static char tmpdir[256];

static void mk_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/llmc-plugins-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

static void real(const char *p, char *out)
{
    ck_assert_msg(realpath(p, out) != NULL, "realpath %s", p);
}

/* ---- listing helpers ---- */

typedef struct found {
    char path[PATH_MAX];
    char name[80];
    int n;
} found;

static int collect_cb(void *ud, const llmc_plugin_info *in)
{
    found *f = ud;
    f->n++;
    snprintf(f->path, sizeof f->path, "%s", in->path);
    snprintf(f->name, sizeof f->name, "%s", in->name ? in->name : "");
    return 0;
}

static int loaded_count(void)
{
    found f;
    memset(&f, 0, sizeof f);
    llmc_plugin_foreach(collect_cb, &f);
    return f.n;
}

typedef struct origin_q {
    const char *name;
    char origin[PATH_MAX];
} origin_q;

static int origin_cb(void *ud, llmc_kind kind, const llmc_component *t, const char *origin)
{
    (void)kind;
    origin_q *q = ud;
    if (strcasecmp(t->name, q->name) == 0) {
        snprintf(q->origin, sizeof q->origin, "%s", origin);
        return 1;
    }
    return 0;
}

static const char *origin_of(llmc_kind kind, const char *name, origin_q *q)
{
    memset(q, 0, sizeof *q);
    q->name = name;
    llmc_registry_foreach(kind, origin_cb, q);
    return q->origin;
}

static llmc_cache *open_file_cache(const char *dir, const char *extra)
{
    char url[600];
    snprintf(url, sizeof url, "file://%s%s", dir, extra ? extra : "");
    llmc_cache *c = NULL;
    llmc_err err;
    llmc_status st = llmc_cache_open(url, NULL, &c, &err);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", url, err.msg);
    return c;
}

/* ------------------------------------------------------------------ */

typedef struct scan_keys {
    char keys[16][64];
    int n;
    char joined[1100];
} scan_keys;

static int cmp_key(const void *a, const void *b) { return strcmp(a, b); }

/* Collect keys; `joined` is the sorted list (the backend's order is the
 * directory's). */
static int scan_collect(void *ud, const char *key, size_t klen)
{
    scan_keys *s = ud;
    if (s->n < 16 && klen < 64) {
        memcpy(s->keys[s->n], key, klen);
        s->keys[s->n][klen] = '\0';
        s->n++;
    }
    qsort(s->keys, (size_t)s->n, sizeof s->keys[0], cmp_key);
    s->joined[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        strcat(s->joined, s->keys[i]);
        strcat(s->joined, ",");
    }
    return 0;
}

START_TEST(t_file_by_path)
{
    mk_tmp();
    /* no autoloading from the environment in this test */
    setenv("LLMCACHE_PLUGIN_PATH", tmpdir, 1);
    llmc_err err;
    ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
    char rp[PATH_MAX];
    real(FILE_SO, rp);
    /* the origin of its table is the plugin's real path */
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_BACKEND, "file", &q), rp);
    found f;
    memset(&f, 0, sizeof f);
    llmc_plugin_foreach(collect_cb, &f);
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.path, rp);
    ck_assert_str_eq(f.name, "file");
    /* loading the same file again is a no-op, also through another path */
    char other[PATH_MAX + 8];
    snprintf(other, sizeof other, "%s/../plugins/llmc-file.so", LLMC_TEST_PLUGIN_DIR);
    ck_assert_int_eq(llmc_plugin_load(other, &err), LLMC_OK);
    ck_assert_int_eq(loaded_count(), 1);

    char dir[300];
    snprintf(dir, sizeof dir, "%s/store", tmpdir);
    llmc_cache *c = open_file_cache(dir, NULL);
    ck_assert_str_eq(llmc_cache_backend_name(c), "file");
    ck_assert_int_eq(llmc_cache_set(c, "k1", 2, "v1", 2, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "ns1:abc", 7, "v2", 2, 60000), LLMC_OK);
    /* layout: "_" for keys without namespace, n-<ns> for the others, one
     * file per key named by its SHA-256 */
    uint8_t d[32];
    char hex[65], path[600];
    llmc_sha256("ns1:abc", 7, d);
    llmc_hex(d, 32, hex);
    snprintf(path, sizeof path, "%s/n-ns1/%s", dir, hex);
    struct stat sb;
    ck_assert_msg(stat(path, &sb) == 0, "missing %s", path);
    llmc_sha256("k1", 2, d);
    llmc_hex(d, 32, hex);
    snprintf(path, sizeof path, "%s/_/%s", dir, hex);
    ck_assert_msg(stat(path, &sb) == 0, "missing %s", path);
    /* no temporary files left behind */
    DIR *dd = opendir(dir);
    struct dirent *de;
    int tmpfiles = 0;
    char sub[600];
    const char *subs[] = {"_", "n-ns1"};
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        DIR *s = opendir(sub);
        ck_assert_ptr_nonnull(s);
        while ((de = readdir(s)) != NULL)
            if (strncmp(de->d_name, ".tmp", 4) == 0)
                tmpfiles++;
        closedir(s);
    }
    closedir(dd);
    ck_assert_int_eq(tmpfiles, 0);

    /* a cache from the plugin is open: unloading is refused */
    llmc_status st = llmc_plugin_unload(FILE_SO, &err);
    ck_assert_int_eq(st, LLMC_EBUSY);
    ck_assert_ptr_nonnull(strstr(err.msg, rp));
    llmc_cache_close(c);

    /* persistence: a new handle sees the values; TTL kept in the file */
    c = open_file_cache(dir, NULL);
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "ns1:abc", 7, &v), LLMC_OK);
    ck_assert_str_eq(v.data, "v2");
    /* scan: every live key, or a namespace's by prefix */
    ck_assert_int_eq(llmc_cache_set(c, "ns1:second", 10, "v3", 2, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "ns2:abc", 7, "v4", 2, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "gone", 4, "v5", 2, 1), LLMC_OK); /* expires */
    usleep(20 * 1000);
    scan_keys sk;
    memset(&sk, 0, sizeof sk);
    ck_assert_int_eq(llmc_cache_scan(c, NULL, 0, scan_collect, &sk), LLMC_OK);
    ck_assert_str_eq(sk.joined, "k1,ns1:abc,ns1:second,ns2:abc,");
    memset(&sk, 0, sizeof sk);
    ck_assert_int_eq(llmc_cache_scan(c, "ns1:", 4, scan_collect, &sk), LLMC_OK);
    ck_assert_str_eq(sk.joined, "ns1:abc,ns1:second,");
    memset(&sk, 0, sizeof sk);
    ck_assert_int_eq(llmc_cache_scan(c, "ns1:s", 5, scan_collect, &sk), LLMC_OK);
    ck_assert_str_eq(sk.joined, "ns1:second,");
    int64_t ttl = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, "ns1:abc", 7, &ttl), LLMC_OK);
    ck_assert(ttl > 50000 && ttl <= 60000);
    /* a damaged file is reported, not returned as data */
    FILE *fp = fopen(path, "w");
    fputs("garbage", fp);
    fclose(fp);
    st = llmc_cache_get(c, "k1", 2, &v);
    ck_assert_int_eq(st, LLMC_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), hex));
    llmc_buf_free(&v);
    llmc_cache_close(c);

    ck_assert_int_eq(llmc_plugin_unload(FILE_SO, &err), LLMC_OK);
    ck_assert_int_eq(loaded_count(), 0);
    ck_assert_str_eq(origin_of(LLMC_KIND_BACKEND, "file", &q), "");
    ck_assert_int_eq(llmc_plugin_unload(FILE_SO, &err), LLMC_ENOTFOUND);
    rm_rf(tmpdir);
}
END_TEST

START_TEST(t_file_autoload_env)
{
    mk_tmp();
    char pp[800];
    /* missing and empty entries are ignored */
    snprintf(pp, sizeof pp, "/nonexistent/llmc::%s", LLMC_TEST_PLUGIN_DIR);
    setenv("LLMCACHE_PLUGIN_PATH", pp, 1);
    char *sp = llmc_plugin_search_path();
    char want[900];
    snprintf(want, sizeof want, "/nonexistent/llmc:%s:%s", LLMC_TEST_PLUGIN_DIR,
             llmc_plugin_dir());
    ck_assert_str_eq(sp, want);
    llmc_free(sp);
    ck_assert_int_eq(loaded_count(), 0);
    /* the scheme is unknown until the loader finds llmc-file.so */
    llmc_cache *c = open_file_cache(tmpdir, "?namespace=app");
    ck_assert_int_eq(loaded_count(), 1);
    char rp[PATH_MAX];
    real(FILE_SO, rp);
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_BACKEND, "file", &q), rp);
    ck_assert_int_eq(llmc_cache_set(c, "app:x", 5, "1", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "other:x", 7, "2", 1, LLMC_TTL_NEVER), LLMC_OK);
    uint64_t n = 0;
    ck_assert_int_eq(llmc_cache_flush(c, NULL, &n), LLMC_OK);
    ck_assert_uint_eq(n, 1);
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "app:x", 5, &v), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, "other:x", 7, &v), LLMC_OK);
    llmc_buf_free(&v);
    llmc_cache_close(c);
    /* relative directories (and names that are not host names) */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    c = NULL;
    llmc_err err;
    ck_assert_int_eq(llmc_cache_open("file://rel_dir/sub%20dir", NULL, &c, &err), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "r", 1, "1", 1, LLMC_TTL_NEVER), LLMC_OK);
    llmc_cache_close(c);
    struct stat sb;
    ck_assert_int_eq(stat("rel_dir/sub dir/_", &sb), 0);
    /* a file where the directory should be: a clear error */
    FILE *fp = fopen("plain", "w");
    fclose(fp);
    ck_assert_int_eq(llmc_cache_open("file://plain", NULL, &c, &err), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a directory"));
    ck_assert_int_eq(llmc_cache_open("file://", NULL, &c, &err), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "no directory"));
    ck_assert_int_eq(llmc_cache_open("file:///tmp/x?max_entries=5", NULL, &c, &err),
                     LLMC_ENOTSUP);
    ck_assert_int_eq(llmc_cache_open("file:///tmp/x?fsync=maybe", NULL, &c, &err),
                     LLMC_EINVAL);
    ck_assert_int_eq(chdir(cwd), 0);
    /* by bare name through the path as well (already loaded: no-op) */
    ck_assert_int_eq(llmc_plugin_load("file", &err), LLMC_OK);
    ck_assert_int_eq(llmc_plugin_load("no-such-plugin", &err), LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "llmc-no-such-plugin.so"));
    rm_rf(tmpdir);
}
END_TEST

static int chunk_cb(void *ud, struct json_object *chunk)
{
    llmc_buf *b = ud;
    json_object *choices, *delta, *content;
    if (json_object_object_get_ex(chunk, "choices", &choices) &&
        json_object_array_length(choices) > 0 &&
        json_object_object_get_ex(json_object_array_get_idx(choices, 0), "delta", &delta) &&
        json_object_object_get_ex(delta, "content", &content) &&
        json_object_is_type(content, json_type_string))
        llmc_buf_puts(b, json_object_get_string(content));
    return 0;
}

static void echo_round(int by_path)
{
    mk_tmp();
    llmc_err err;
    if (by_path) {
        setenv("LLMCACHE_PLUGIN_PATH", tmpdir, 1);
        ck_assert_int_eq(llmc_plugin_load(ECHO_SO, &err), LLMC_OK);
    } else {
        setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1);
    }
    llmc_cache *cache = NULL;
    ck_assert_int_eq(llmc_cache_open("local://", NULL, &cache, &err), LLMC_OK);
    llmc_client *cl = NULL;
    ck_assert_int_eq(llmc_client_new(cache, NULL, &cl, &err), LLMC_OK);
    const char *req = "{\"model\":\"echo/parrot\",\"messages\":[{\"role\":\"system\","
                      "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hello "
                      "plugin world\"}]}";
    llmc_response *r = NULL;
    llmc_status st = llmc_completion_json(cl, req, LLMC_ZSTR, &r, &err);
    ck_assert_msg(st == LLMC_OK, "first call: %s", err.msg);
    ck_assert_str_eq(llmc_response_content(r), "hello plugin world");
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_str_eq(llmc_response_provider(r), "echo");
    ck_assert_str_eq(llmc_response_model(r), "parrot");
    char key[200];
    snprintf(key, sizeof key, "%s", llmc_response_cache_key(r));
    llmc_response_free(r);
    /* the same request again: answered from the cache */
    st = llmc_completion_json(cl, req, LLMC_ZSTR, &r, &err);
    ck_assert_msg(st == LLMC_OK, "second call: %s", err.msg);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "hello plugin world");
    ck_assert_str_eq(llmc_response_cache_key(r), key);
    const char *text = llmc_response_text(r, NULL);
    ck_assert_ptr_nonnull(strstr(text, "\"cache\":true"));
    llmc_response_free(r);
    /* streamed: the cached answer is replayed as chunks */
    llmc_buf got = LLMC_BUF_INIT;
    st = llmc_completion_stream_json(cl, req, LLMC_ZSTR, chunk_cb, &got, &r, &err);
    ck_assert_msg(st == LLMC_OK, "stream: %s", err.msg);
    ck_assert_str_eq(got.data, "hello plugin world");
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    llmc_buf_free(&got);
    /* bare model names "echo-*" are inferred to the plugin's provider */
    st = llmc_completion_json(cl, "{\"model\":\"echo-1\",\"prompt\":\"abc\"}", LLMC_ZSTR, &r,
                              &err);
    ck_assert_int_eq(st, LLMC_EINVAL); /* chat call without messages */
    ck_assert_ptr_nonnull(strstr(err.msg, "messages"));
    llmc_request *rq = llmc_request_new("echo-1");
    llmc_request_set_string(rq, "prompt", "text mode");
    st = llmc_text_completion(cl, rq, &r, &err);
    ck_assert_msg(st == LLMC_OK, "text: %s", err.msg);
    ck_assert_str_eq(llmc_response_content(r), "text mode");
    llmc_response_free(r);
    llmc_request_free(rq);
    llmc_client_free(cl);
    llmc_cache_close(cache);
    char rp[PATH_MAX];
    real(ECHO_SO, rp);
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_PROVIDER, "echo", &q), rp);
    ck_assert_int_eq(llmc_plugin_unload("echo", &err), LLMC_OK);
    rm_rf(tmpdir);
}

START_TEST(t_echo_by_path) { echo_round(1); }
END_TEST

START_TEST(t_echo_autoload_env) { echo_round(0); }
END_TEST

START_TEST(t_echo_cached_in_file_plugin)
{
    /* both plugins together: provider answer cached by the file backend */
    mk_tmp();
    setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1);
    llmc_cache *cache = open_file_cache(tmpdir, "?namespace=chat&ttl=600");
    llmc_err err;
    llmc_client *cl = NULL;
    ck_assert_int_eq(llmc_client_new(cache, NULL, &cl, &err), LLMC_OK);
    llmc_request *rq = llmc_request_new("echo/m");
    llmc_request_add_message(rq, "user", "stored on disk");
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_completion(cl, rq, &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    llmc_client_free(cl);
    llmc_cache_close(cache);
    /* a new cache handle on the same directory: hit */
    cache = open_file_cache(tmpdir, "?namespace=chat&ttl=600");
    ck_assert_int_eq(llmc_client_new(cache, NULL, &cl, &err), LLMC_OK);
    ck_assert_int_eq(llmc_completion(cl, rq, &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "stored on disk");
    llmc_response_free(r);
    llmc_request_free(rq);
    llmc_client_free(cl);
    llmc_cache_close(cache);
    ck_assert_int_eq(loaded_count(), 2);
    ck_assert_uint_eq(llmc_plugin_unload_all(), 0);
    ck_assert_int_eq(loaded_count(), 0);
    rm_rf(tmpdir);
}
END_TEST

#if LLMC_HAVE_CURL
/* The Cohere adapter plugin over real HTTP to the fake provider server,
 * answering with bodies in Cohere's v2 wire format. */
START_TEST(t_cohere_http)
{
    setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1);
    fp_server *srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    llmc_err err;
    llmc_cache *cache = NULL;
    ck_assert_int_eq(llmc_cache_open("local://", NULL, &cache, &err), LLMC_OK);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "cohere.api_key", "co-secret-123");
    llmc_options_set(o, "cohere.api_base", fp_url(srv));
    llmc_options_set(o, "max_retries", "0");
    llmc_client *cl = NULL;
    ck_assert_int_eq(llmc_client_new(cache, o, &cl, &err), LLMC_OK);

    fp_push_reply(srv, 200, "application/json",
                  "{\"id\":\"c14c80c3-18eb-4519-9460-6c92edd8cfb4\",\"finish_reason\":"
                  "\"COMPLETE\",\"message\":{\"role\":\"assistant\",\"content\":[{\"type\":"
                  "\"text\",\"text\":\"Bonjour!\"}]},\"usage\":{\"billed_units\":{"
                  "\"input_tokens\":5,\"output_tokens\":3},\"tokens\":{\"input_tokens\":71,"
                  "\"output_tokens\":3}}}",
                  NULL);
    const char *req = "{\"model\":\"cohere/command-r-plus\",\"messages\":[{\"role\":"
                      "\"system\",\"content\":\"Answer in French.\"},{\"role\":\"user\","
                      "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"}]}],\"top_p\":0.5,"
                      "\"stop\":\"END\",\"max_tokens\":20}";
    llmc_response *r = NULL;
    llmc_status st = llmc_completion_json(cl, req, LLMC_ZSTR, &r, &err);
    ck_assert_msg(st == LLMC_OK, "cohere call: %s", err.msg);
    ck_assert_str_eq(llmc_response_content(r), "Bonjour!");
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    json_object *j = llmc_response_json(r), *v;
    ck_assert(json_object_object_get_ex(j, "usage", &v));
    ck_assert(json_object_object_get_ex(v, "total_tokens", &v));
    ck_assert_int_eq(json_object_get_int(v), 74);
    llmc_response_free(r);
    /* what went over the wire */
    ck_assert_uint_eq(fp_count(srv), 1);
    const fp_request *wr = fp_last(srv);
    ck_assert_str_eq(wr->method, "POST");
    ck_assert_str_eq(wr->path, "/v2/chat");
    ck_assert_str_eq(fp_header_get(wr, "Authorization"), "Bearer co-secret-123");
    json_object *body = json_tokener_parse(wr->body);
    ck_assert_ptr_nonnull(body);
    ck_assert(json_object_object_get_ex(body, "model", &v));
    ck_assert_str_eq(json_object_get_string(v), "command-r-plus");
    ck_assert(json_object_object_get_ex(body, "p", &v));
    ck_assert(json_object_object_get_ex(body, "stop_sequences", &v));
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "END");
    ck_assert(json_object_object_get_ex(body, "messages", &v));
    ck_assert_str_eq(json_object_get_string(json_object_object_get(
                         json_object_array_get_idx(v, 1), "content")), "Hello");
    ck_assert(!json_object_object_get_ex(body, "top_p", NULL));
    json_object_put(body);
    /* second identical call: a hit, nothing sent */
    st = llmc_completion_json(cl, req, LLMC_ZSTR, &r, &err);
    ck_assert_int_eq(st, LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "Bonjour!");
    ck_assert_uint_eq(fp_count(srv), 1);
    llmc_response_free(r);

    /* streamed (SSE, Cohere's event types), then replayed from the cache */
    fp_push_stream(srv, "text/event-stream",
                   "event: message-start\ndata: {\"id\":\"s-1\",\"type\":\"message-start\","
                   "\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[]}}}\n\n"
                   "event: content-start\ndata: {\"type\":\"content-start\",\"index\":0,"
                   "\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}"
                   "\n\n"
                   "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,"
                   "\"delta\":{\"message\":{\"content\":{\"text\":\"Sa\"}}}}\n\n"
                   "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,"
                   "\"delta\":{\"message\":{\"content\":{\"text\":\"lut\"}}}}\n\n"
                   "event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\n"
                   "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{"
                   "\"finish_reason\":\"COMPLETE\",\"usage\":{\"tokens\":{\"input_tokens\":4,"
                   "\"output_tokens\":2}}}}\n\n");
    const char *sreq = "{\"model\":\"cohere/command-r\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}";
    for (int i = 0; i < 2; i++) {
        llmc_buf got = LLMC_BUF_INIT;
        st = llmc_completion_stream_json(cl, sreq, LLMC_ZSTR, chunk_cb, &got, &r, &err);
        ck_assert_msg(st == LLMC_OK, "stream %d: %s", i, err.msg);
        ck_assert_str_eq(got.data, "Salut");
        ck_assert_str_eq(llmc_response_content(r), "Salut");
        ck_assert_int_eq(llmc_response_cache_hit(r), i);
        llmc_response_free(r);
        llmc_buf_free(&got);
    }
    ck_assert_uint_eq(fp_count(srv), 2);

    /* errors: the provider's message, never the key */
    fp_push_reply(srv, 401, "application/json", "{\"message\":\"invalid api token\"}", NULL);
    st = llmc_completion_json(cl, "{\"model\":\"cohere/command-r\",\"messages\":[{\"role\":"
                                  "\"user\",\"content\":\"other\"}]}",
                              LLMC_ZSTR, &r, &err);
    ck_assert_int_eq(st, LLMC_EAUTH);
    ck_assert_ptr_nonnull(strstr(err.msg, "invalid api token"));
    ck_assert_ptr_null(strstr(err.msg, "co-secret-123"));
    /* an unsupported field is refused before anything is sent */
    size_t before = fp_count(srv);
    st = llmc_completion_json(cl, "{\"model\":\"cohere/command-r\",\"messages\":[{\"role\":"
                                  "\"user\",\"content\":\"x\"}],\"tools\":[]}",
                              LLMC_ZSTR, &r, &err);
    ck_assert_int_eq(st, LLMC_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"tools\""));
    ck_assert_uint_eq(fp_count(srv), before);

    llmc_client_free(cl);
    llmc_options_free(o);
    llmc_cache_close(cache);
    fp_stop(srv);
    char rp[PATH_MAX];
    real(COHERE_SO, rp);
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_PROVIDER, "cohere", &q), rp);
}
END_TEST
#endif

START_TEST(t_wrong_abi)
{
    llmc_err err;
    char rp[PATH_MAX];
    real(BAD_ABI_SO, rp);
    llmc_status st = llmc_plugin_load(BAD_ABI_SO, &err);
    ck_assert_int_eq(st, LLMC_EABI);
    ck_assert_msg(strstr(err.msg, rp) != NULL, "message does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "ABI 2.0") != NULL, "message: %s", err.msg);
    ck_assert_int_eq(loaded_count(), 0);
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_BACKEND, "future", &q), "");
}
END_TEST

START_TEST(t_no_entry_point)
{
    llmc_err err;
    char rp[PATH_MAX];
    real(NO_ENTRY_SO, rp);
    llmc_status st = llmc_plugin_load(NO_ENTRY_SO, &err);
    ck_assert_int_eq(st, LLMC_EINVAL);
    ck_assert_msg(strstr(err.msg, rp) != NULL, "message does not name the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "llmc_plugin_entry") != NULL, "message: %s", err.msg);
    ck_assert_int_eq(loaded_count(), 0);
}
END_TEST

START_TEST(t_not_a_plugin)
{
    mk_tmp();
    llmc_err err;
    char p[400];
    /* text file with the right suffix */
    snprintf(p, sizeof p, "%s/junk.so", tmpdir);
    FILE *f = fopen(p, "w");
    fputs("this is not an ELF file\n", f);
    fclose(f);
    llmc_status st = llmc_plugin_load(p, &err);
    ck_assert_int_eq(st, LLMC_EINVAL);
    ck_assert_msg(strstr(err.msg, p) && strstr(err.msg, "not a loadable shared object"),
                  "message: %s", err.msg);
    /* empty file */
    snprintf(p, sizeof p, "%s/empty.so", tmpdir);
    fclose(fopen(p, "w"));
    ck_assert_int_eq(llmc_plugin_load(p, &err), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    /* missing file, directory, NULL */
    snprintf(p, sizeof p, "%s/missing.so", tmpdir);
    ck_assert_int_eq(llmc_plugin_load(p, &err), LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_int_eq(llmc_plugin_load(tmpdir, &err), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    ck_assert_int_eq(llmc_plugin_load(NULL, &err), LLMC_EINVAL);
    ck_assert_int_eq(llmc_plugin_load("bad name!", &err), LLMC_EINVAL);
    ck_assert_int_eq(loaded_count(), 0);
    /* autoloading skips such files (and says why only with LLMCACHE_LOG) */
    setenv("LLMCACHE_PLUGIN_PATH", tmpdir, 1);
    snprintf(p, sizeof p, "%s/llmc-nothing.so", tmpdir);
    f = fopen(p, "w");
    fputs("junk", f);
    fclose(f);
    ck_assert_ptr_null(llmc_find_backend("nothing"));
    ck_assert_ptr_null(llmc_find_backend("nothing")); /* remembered as unknown */
    rm_rf(tmpdir);
}
END_TEST

static llmc_status app_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *mat,
                               llmc_err *err)
{
    return llmc_key_compute("v1", in, key, mat, err);
}
static const llmc_key_strategy_ops app_keys = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "dup-keys", "application's"),
    .compute = app_compute,
};

START_TEST(t_duplicates)
{
    mk_tmp();
    setenv("LLMCACHE_PLUGIN_PATH", tmpdir, 1);
    llmc_err err;
    ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
    /* a plugin whose backend name is taken: refused as a whole */
    char rp[PATH_MAX];
    real(DUP_SO, rp);
    llmc_status st = llmc_plugin_load(DUP_SO, &err);
    ck_assert_int_eq(st, LLMC_EEXIST);
    ck_assert_msg(strstr(err.msg, rp) && strstr(err.msg, "\"file\""), "message: %s", err.msg);
    origin_q q;
    ck_assert_str_eq(origin_of(LLMC_KIND_KEY_STRATEGY, "dup-keys", &q), "");
    ck_assert_ptr_null(llmc_find_key_strategy("dup-keys"));
    ck_assert_int_eq(loaded_count(), 1);
    /* the same plugin (same name) from another file */
    char copy[400], cmd[1000];
    snprintf(copy, sizeof copy, "%s/copy-of-file.so", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", FILE_SO, copy);
    ck_assert_int_eq(system(cmd), 0);
    st = llmc_plugin_load(copy, &err);
    ck_assert_int_eq(st, LLMC_EEXIST);
    ck_assert_msg(strstr(err.msg, copy) && strstr(err.msg, "already loaded"), "message: %s",
                  err.msg);
    /* a component registered by the application blocks a plugin too */
    ck_assert_int_eq(llmc_plugin_unload("file", &err), LLMC_OK);
    ck_assert_int_eq(llmc_register_key_strategy(&app_keys, &err), LLMC_OK);
    st = llmc_plugin_load(DUP_SO, &err);
    ck_assert_int_eq(st, LLMC_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "dup-keys"));
    ck_assert_str_eq(origin_of(LLMC_KIND_KEY_STRATEGY, "dup-keys", &q), "application");
    ck_assert_str_eq(origin_of(LLMC_KIND_BACKEND, "file", &q), "");
    rm_rf(tmpdir);
}
END_TEST

START_TEST(t_autoload_by_descriptor)
{
    /* key strategy "upper-v1" lives in fixture-keys.so (not named after
     * it), next to broken fixtures that must not stop the search */
    setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_FIXTURE_DIR, 1);
    llmc_cache *c = NULL;
    llmc_err err;
    llmc_status st = llmc_cache_open("local://?key_strategy=upper-v1", NULL, &c, &err);
    ck_assert_msg(st == LLMC_OK, "open: %s", err.msg);
    ck_assert_str_eq(llmc_cache_key_strategy_name(c), "upper-v1");
    found f;
    memset(&f, 0, sizeof f);
    llmc_plugin_foreach(collect_cb, &f);
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.name, "fixture-keys");
    /* the cache uses the plugin's key strategy: unload refused */
    ck_assert_int_eq(llmc_plugin_unload("fixture-keys", &err), LLMC_EBUSY);
    llmc_cache_close(c);
    ck_assert_int_eq(llmc_plugin_unload("fixture-keys", &err), LLMC_OK);
    /* the same plugin's serializer, autoloaded by the serializer option
     * (the plugin is loaded again: it was unloaded above) */
    st = llmc_cache_open("local://?serializer=fixture-bin", NULL, &c, &err);
    ck_assert_msg(st == LLMC_OK, "open: %s", err.msg);
    ck_assert_str_eq(llmc_cache_serializer_name(c), "fixture-bin");
    const char body[] = "{\"choices\":[]}";
    ck_assert_int_eq(llmc_cache_put_entry(c, "ent", 3, LLMC_CALL_CHAT, body, sizeof body - 1,
                                          60000, 0),
                     LLMC_OK);
    llmc_buf raw = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "ent", 3, &raw), LLMC_OK);
    ck_assert_mem_eq(raw.data, "XS01", 4);
    llmc_buf_free(&raw);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "ent", 3, -1, 0, &l), LLMC_OK);
    ck_assert_uint_eq(l.entry.serializer_id, 200);
    ck_assert_mem_eq(l.entry.body, body, sizeof body - 1);
    llmc_lookup_free(&l);
    ck_assert_int_eq(llmc_plugin_unload("fixture-keys", &err), LLMC_EBUSY);
    llmc_cache_close(c);
    ck_assert_int_eq(llmc_plugin_unload("fixture-keys", &err), LLMC_OK);
    /* unknown names stay unknown, and nothing else got loaded */
    ck_assert_ptr_null(llmc_find_serializer("no-such-serializer"));
    ck_assert_ptr_null(llmc_find_provider("no-such-provider"));
    ck_assert_int_eq(loaded_count(), 0);
    st = llmc_cache_open("nosuchscheme://x", NULL, &c, &err);
    ck_assert_int_eq(st, LLMC_ENOTFOUND);
}
END_TEST

typedef struct scan_res {
    int n, bad_abi, no_entry, keys_ok, file_ok, file_loaded;
    char msg[600];
} scan_res;

static int scan_cb(void *ud, const llmc_plugin_info *in)
{
    scan_res *r = ud;
    r->n++;
    const char *base = strrchr(in->path, '/') + 1;
    if (strcmp(base, "fixture-bad-abi.so") == 0 && in->status == LLMC_EABI) {
        r->bad_abi = 1;
        snprintf(r->msg, sizeof r->msg, "%s", in->error);
    }
    if (strcmp(base, "fixture-no-entry.so") == 0 && in->status == LLMC_EINVAL)
        r->no_entry = 1;
    if (strcmp(base, "fixture-keys.so") == 0 && in->status == LLMC_OK &&
        strcmp(in->name, "fixture-keys") == 0 && in->descriptor->key_strategies[0])
        r->keys_ok = 1;
    if (strcmp(base, "llmc-file.so") == 0 && in->status == LLMC_OK &&
        strcmp(in->version, "1.0.0") == 0 && in->abi_major == LLMC_ABI_MAJOR) {
        r->file_ok = 1;
        r->file_loaded = in->loaded;
    }
    return 0;
}

START_TEST(t_scan_lists_available)
{
    char pp[800];
    snprintf(pp, sizeof pp, "%s:%s", LLMC_TEST_FIXTURE_DIR, LLMC_TEST_PLUGIN_DIR);
    setenv("LLMCACHE_PLUGIN_PATH", pp, 1);
    scan_res r;
    memset(&r, 0, sizeof r);
    llmc_plugin_scan(scan_cb, &r);
    ck_assert_int_ge(r.n, 6);
    ck_assert(r.bad_abi && r.no_entry && r.keys_ok && r.file_ok);
    ck_assert_int_eq(r.file_loaded, 0);
    ck_assert_ptr_nonnull(strstr(r.msg, "fixture-bad-abi.so"));
    /* scanning loads nothing */
    ck_assert_int_eq(loaded_count(), 0);
    llmc_err err;
    ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
    memset(&r, 0, sizeof r);
    llmc_plugin_scan(scan_cb, &r);
    ck_assert_int_eq(r.file_loaded, 1);
}
END_TEST

START_TEST(t_load_unload_cycles)
{
    mk_tmp();
    setenv("LLMCACHE_PLUGIN_PATH", tmpdir, 1);
    llmc_err err;
    for (int i = 0; i < 25; i++) {
        ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
        ck_assert_int_eq(llmc_plugin_load(ECHO_SO, &err), LLMC_OK);
        llmc_cache *c = open_file_cache(tmpdir, NULL);
        char k[32];
        snprintf(k, sizeof k, "cycle%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "v", 1, LLMC_TTL_NEVER), LLMC_OK);
        llmc_client *cl = NULL;
        ck_assert_int_eq(llmc_client_new(c, NULL, &cl, &err), LLMC_OK);
        llmc_response *r = NULL;
        ck_assert_int_eq(llmc_completion_json(cl,
                                              "{\"model\":\"echo/x\",\"messages\":[{\"role\":"
                                              "\"user\",\"content\":\"cycle\"}]}",
                                              LLMC_ZSTR, &r, &err),
                         LLMC_OK);
        llmc_response_free(r);
        llmc_client_free(cl);
        llmc_cache_close(c);
        ck_assert_int_eq(llmc_plugin_unload(ECHO_SO, &err), LLMC_OK);
        ck_assert_int_eq(llmc_plugin_unload("file", &err), LLMC_OK);
        ck_assert_int_eq(loaded_count(), 0);
    }
    /* failing loads leave nothing behind either */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(llmc_plugin_load(BAD_ABI_SO, &err), LLMC_EABI);
        ck_assert_int_eq(llmc_plugin_load(NO_ENTRY_SO, &err), LLMC_EINVAL);
        ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
        ck_assert_int_eq(llmc_plugin_load(DUP_SO, &err), LLMC_EEXIST);
        ck_assert_int_eq(llmc_plugin_unload(FILE_SO, &err), LLMC_OK);
    }
    /* left loaded on purpose: unloaded by the atexit handler */
    ck_assert_int_eq(llmc_plugin_load(FILE_SO, &err), LLMC_OK);
    rm_rf(tmpdir);
}
END_TEST

static void *open_in_thread(void *arg)
{
    const char *dir = arg;
    llmc_cache *c = NULL;
    llmc_err err;
    char url[400];
    snprintf(url, sizeof url, "file://%s", dir);
    if (llmc_cache_open(url, NULL, &c, &err) != LLMC_OK)
        return (void *)1;
    llmc_status st = llmc_cache_set(c, "t", 1, "x", 1, LLMC_TTL_NEVER);
    llmc_cache_close(c);
    return st == LLMC_OK ? NULL : (void *)1;
}

START_TEST(t_concurrent_autoload)
{
    mk_tmp();
    setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, open_in_thread, tmpdir);
    int failures = 0;
    for (int i = 0; i < 8; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        failures += rv != NULL;
    }
    ck_assert_int_eq(failures, 0);
    ck_assert_int_eq(loaded_count(), 1);
    rm_rf(tmpdir);
}
END_TEST

static Suite *plugins_suite(void)
{
    Suite *s = suite_create("plugins");
    TCase *tc = tcase_create("plugins");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_file_by_path);
    tcase_add_test(tc, t_file_autoload_env);
    tcase_add_test(tc, t_echo_by_path);
    tcase_add_test(tc, t_echo_autoload_env);
    tcase_add_test(tc, t_echo_cached_in_file_plugin);
#if LLMC_HAVE_CURL
    tcase_add_test(tc, t_cohere_http);
#endif
    tcase_add_test(tc, t_wrong_abi);
    tcase_add_test(tc, t_no_entry_point);
    tcase_add_test(tc, t_not_a_plugin);
    tcase_add_test(tc, t_duplicates);
    tcase_add_test(tc, t_autoload_by_descriptor);
    tcase_add_test(tc, t_scan_lists_available);
    tcase_add_test(tc, t_load_unload_cycles);
    tcase_add_test(tc, t_concurrent_autoload);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(plugins_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
