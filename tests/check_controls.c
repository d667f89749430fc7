/* The cache-controls matrix: one table of cases (LiteLLM's body controls,
 * the HTTP headers the proxy reads, JSON escapes in member names, bad
 * values), each run through the library's prepared call, the `llmcache`
 * command and the proxy (`llmcache serve`, over HTTP), on local, SQLite
 * and a real redis-server started here, against the fake provider. Every case makes three calls: the
 * request twice, then the same request without any control; each call's
 * outcome (HIT, MISS and whether it was stored, BYPASS, or a 400-class
 * error naming the member) and the provider's request count must be what
 * the row says, whoever ran it.
 *
 * The command keeps no local:// cache between runs (the cache lives in
 * the process), so it runs the matrix on SQLite and Redis only. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_provider.h"
#include "llmc_config.h"
#include "llmcache/llmcache.h"
#include "support/testsrv.h"

#if LLMC_HAVE_CURL

enum outcome { HIT = 1, MISS, NOSTORE, BYPASS, ERR };

static const char *oname(int o)
{
    static const char *const n[] = {"?", "HIT", "MISS", "MISS-NOSTORE", "BYPASS", "ERROR"};
    return o >= 0 && o <= ERR ? n[o] : "?";
}

typedef struct mcase {
    const char *name;
    const char *members;       /* extra JSON members of the body ("" = none) */
    const char *cache_control; /* Cache-Control header value */
    const char *ttl_hdr;       /* x-llmcache-ttl */
    const char *ns_hdr;        /* x-llmcache-namespace */
    int default_off;           /* the cache opened with mode=default_off */
    int sleep_ms;              /* before the second call (an age limit passes) */
    int o1, o2, o3;            /* outcomes of: request, request again, plain request */
    int upstream;              /* provider requests after the three calls */
    int64_t ttl_s;             /* > 0: the stored entry's TTL */
    const char *key_prefix;    /* the stored key starts with this */
    const char *err_word;      /* ERR: the message names this */
} mcase;

static const mcase cases[] = {
    {"plain", "", NULL, NULL, NULL, 0, 0, MISS, HIT, HIT, 1, 0, NULL, NULL},
    {"caching true", "\"caching\":true", NULL, NULL, NULL, 0, 0, MISS, HIT, HIT, 1, 0, NULL, NULL},
    {"caching 1", "\"caching\":1", NULL, NULL, NULL, 0, 0, MISS, HIT, HIT, 1, 0, NULL, NULL},
    {"caching false", "\"caching\":false", NULL, NULL, NULL, 0, 0, BYPASS, BYPASS, MISS, 3, 0,
     NULL, NULL},
    {"caching 0", "\"caching\":0", NULL, NULL, NULL, 0, 0, BYPASS, BYPASS, MISS, 3, 0, NULL,
     NULL},
    {"no-cache", "\"cache\":{\"no-cache\":true}", NULL, NULL, NULL, 0, 0, MISS, MISS, HIT, 2, 0,
     NULL, NULL},
    {"no-store", "\"cache\":{\"no-store\":true}", NULL, NULL, NULL, 0, 0, NOSTORE, NOSTORE, MISS,
     3, 0, NULL, NULL},
    {"ttl", "\"cache\":{\"ttl\":120}", NULL, NULL, NULL, 0, 0, MISS, HIT, HIT, 1, 120, NULL,
     NULL},
    {"s-maxage within", "\"cache\":{\"s-maxage\":3600}", NULL, NULL, NULL, 0, 0, MISS, HIT, HIT,
     1, 0, NULL, NULL},
    {"s-maxage passed", "\"cache\":{\"s-maxage\":1}", NULL, NULL, NULL, 0, 1100, MISS, MISS, HIT,
     2, 0, NULL, NULL},
    {"namespace", "\"cache\":{\"namespace\":\"mx\"}", NULL, NULL, NULL, 0, 0, MISS, HIT, MISS, 2,
     0, "mx:", NULL},
    {"default_off plain", "", NULL, NULL, NULL, 1, 0, BYPASS, BYPASS, BYPASS, 3, 0, NULL, NULL},
    {"default_off use-cache", "\"cache\":{\"use-cache\":true}", NULL, NULL, NULL, 1, 0, MISS, HIT,
     BYPASS, 2, 0, NULL, NULL},
    {"preset key", "\"cache\":{\"key\":\"preset-KEY\"}", NULL, NULL, NULL, 0, 0, MISS, HIT, MISS,
     2, 0, "preset-KEY", NULL},
    {"Cache-Control no-cache", "", "no-cache", NULL, NULL, 0, 0, MISS, MISS, HIT, 2, 0, NULL,
     NULL},
    {"Cache-Control no-store", "", "no-store", NULL, NULL, 0, 0, NOSTORE, NOSTORE, MISS, 3, 0,
     NULL, NULL},
    {"Cache-Control max-age within", "", "max-age=3600", NULL, NULL, 0, 0, MISS, HIT, HIT, 1, 0,
     NULL, NULL},
    {"Cache-Control max-age passed", "", "max-age=1", NULL, NULL, 0, 1100, MISS, MISS, HIT, 2, 0,
     NULL, NULL},
    {"x-llmcache-ttl", "", NULL, "77", NULL, 0, 0, MISS, HIT, HIT, 1, 77, NULL, NULL},
    {"x-llmcache-namespace", "", NULL, NULL, "hx", 0, 0, MISS, HIT, MISS, 2, 0, "hx:", NULL},
    {"escaped cache", "\"\\u0063ache\":{\"no-store\":true}", NULL, NULL, NULL, 0, 0, NOSTORE,
     NOSTORE, MISS, 3, 0, NULL, NULL},
    {"escaped caching", "\"c\\u0061ching\":false", NULL, NULL, NULL, 0, 0, BYPASS, BYPASS, MISS,
     3, 0, NULL, NULL},
    {"bad caching", "\"caching\":\"yes\"", NULL, NULL, NULL, 0, 0, ERR, ERR, MISS, 1, 0, NULL,
     "caching"},
    {"bad cache", "\"cache\":5", NULL, NULL, NULL, 0, 0, ERR, ERR, MISS, 1, 0, NULL, "cache"},
    {"bad no-cache", "\"cache\":{\"no-cache\":\"x\"}", NULL, NULL, NULL, 0, 0, ERR, ERR, MISS, 1,
     0, NULL, "no-cache"},
    {"bad ttl", "\"cache\":{\"ttl\":-1}", NULL, NULL, NULL, 0, 0, ERR, ERR, MISS, 1, 0, NULL,
     "ttl"},
    {"unknown control", "\"cache\":{\"nocache\":true}", NULL, NULL, NULL, 0, 0, ERR, ERR, MISS, 1,
     0, NULL, "nocache"},
    {"bad Cache-Control", "", "max-age=soon", NULL, NULL, 0, 0, ERR, ERR, MISS, 1, 0, NULL,
     "max-age"},
    {"bad x-llmcache-ttl", "", NULL, "1h", NULL, 0, 0, ERR, ERR, MISS, 1, 0, NULL, "ttl"},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ------------------------------------------------------------------ */
/* Backends and the fake provider (started once). */

static const char *backend_names[] = {"local", "sqlite", "redis"};
#define N_BACKENDS 3
static char backend_url[N_BACKENDS][512];
static testsrv sqlite_dir, redis_srv;
static fp_server *fp;
static char base_v1[128];
static char tmpdir[512];
static const char *bin;

static void setup_all(void)
{
    snprintf(backend_url[0], sizeof backend_url[0], "local://");
    ck_assert_int_eq(testsrv_mkdir(&sqlite_dir, "controls"), 0);
    snprintf(tmpdir, sizeof tmpdir, "%s", sqlite_dir.dir);
    snprintf(backend_url[1], sizeof backend_url[1], "sqlite://%s/controls.db", sqlite_dir.dir);
    ck_assert_msg(testsrv_which("redis-server") != NULL,
                  "redis-server is not installed (scripts/install-deps.sh --test)");
    ck_assert_int_eq(testsrv_mkdir(&redis_srv, "controls-redis"), 0);
    int port = testsrv_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", redis_srv.dir, NULL};
    ck_assert_int_eq(testsrv_spawn(&redis_srv, argv), 0);
    ck_assert_int_eq(testsrv_wait_tcp(&redis_srv, port, 10000), 0);
    snprintf(backend_url[2], sizeof backend_url[2], "redis://127.0.0.1:%d/0", port);
    fp = fp_start();
    ck_assert_ptr_nonnull(fp);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(fp));
}

static void teardown_all(void)
{
    fp_stop(fp);
    testsrv_stop(&redis_srv);
    testsrv_stop(&sqlite_dir);
}

static void cache_url(int b, const mcase *mc, char *out, size_t n)
{
    snprintf(out, n, "%s%s", backend_url[b], mc->default_off ? "?mode=default_off" : "");
}

/* The request of a case: a message unique to (runner, backend, case) so
 * that no two rows share an entry. */
static void body_of(const mcase *mc, const char *runner, int b, int ci, int plain, char *out,
                    size_t n)
{
    const char *m = plain ? "" : mc->members;
    char members[256];
    snprintf(members, sizeof members, "%s", m);
    /* The preset key is made unique too. */
    char *p = strstr(members, "preset-KEY");
    char uniq[64];
    snprintf(uniq, sizeof uniq, "%s-%d-%d", runner, b, ci);
    char fixed[1024];
    if (p) {
        *p = '\0';
        snprintf(fixed, sizeof fixed, "%spreset-%s%s", members, uniq, p + 10);
    } else {
        snprintf(fixed, sizeof fixed, "%s", members);
    }
    snprintf(out, n,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"matrix %s\"}]%s%s}",
             uniq, *fixed ? "," : "", fixed);
}

/* What one call did. */
typedef struct result {
    int outcome;
    char key[300];
    char msg[600];
} result;

/* The stored entry's TTL in seconds (-1 when absent). */
static int64_t stored_ttl_s(const char *url, const char *key)
{
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &c, &e) == LLMC_OK, "%s", e.msg);
    llmc_lookup lk = LLMC_LOOKUP_INIT;
    int64_t ttl = -1;
    if (llmc_cache_get_entry(c, key, strlen(key), -1, 0, &lk) == LLMC_OK)
        ttl = lk.entry.expires_ms ? (lk.entry.expires_ms - lk.entry.created_ms + 500) / 1000 : 0;
    llmc_lookup_free(&lk);
    llmc_cache_close(c);
    return ttl;
}

static void check_result(const mcase *mc, const char *runner, int b, int which,
                         const result *r)
{
    int want = which == 0 ? mc->o1 : which == 1 ? mc->o2 : mc->o3;
    ck_assert_msg(r->outcome == want, "%s/%s/%s: call %d is %s, want %s (%s)", runner,
                  backend_names[b], mc->name, which + 1, oname(r->outcome), oname(want), r->msg);
    if (want == ERR)
        ck_assert_msg(strstr(r->msg, mc->err_word) != NULL,
                      "%s/%s/%s: the error does not name \"%s\": %s", runner, backend_names[b],
                      mc->name, mc->err_word, r->msg);
    if (which == 0 && mc->key_prefix && want != ERR) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s", mc->key_prefix);
        if (strcmp(prefix, "preset-KEY") == 0)
            snprintf(prefix, sizeof prefix, "preset-%s-%d-%d", runner, b,
                     (int)(mc - cases));
        ck_assert_msg(strncmp(r->key, prefix, strlen(prefix)) == 0,
                      "%s/%s/%s: key %s does not start with %s", runner, backend_names[b],
                      mc->name, r->key, prefix);
    }
}

/* ------------------------------------------------------------------ */
/* Runner 1: the library's prepared call. */

static llmc_cache *lib_cache[2]; /* [default_off] per backend, opened per test */

static void lib_call(llmc_client *cl, const mcase *mc, const char *body, int plain,
                     result *r)
{
    memset(r, 0, sizeof *r);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    if (!plain) {
        o.cache_control = mc->cache_control;
        o.ttl = mc->ttl_hdr;
        o.namespace_ = mc->ns_hdr;
    }
    llmc_err e;
    llmc_call *k = NULL;
    llmc_response *resp = NULL;
    llmc_status st = llmc_call_prepare(cl, LLMC_CALL_CHAT, body, LLMC_ZSTR, &o, &k, &e);
    if (st == LLMC_OK)
        st = llmc_call_execute(k, NULL, NULL, &resp, &e);
    llmc_call_free(k);
    if (st != LLMC_OK) {
        r->outcome = st == LLMC_EINVAL ? ERR : 0;
        snprintf(r->msg, sizeof r->msg, "%s: %s", llmc_strerror(st), e.msg);
        return;
    }
    const char *key = llmc_response_cache_key(resp);
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    if (!key)
        r->outcome = BYPASS;
    else if (llmc_response_cache_hit(resp))
        r->outcome = HIT;
    else
        r->outcome = llmc_response_cache_stored(resp) ? MISS : NOSTORE;
    snprintf(r->msg, sizeof r->msg, "key %s", r->key);
    llmc_response_free(resp);
}

static void run_library(int b)
{
    for (int ci = 0; ci < N_CASES; ci++) {
        const mcase *mc = &cases[ci];
        char url[600];
        cache_url(b, mc, url, sizeof url);
        llmc_cache *c = lib_cache[mc->default_off];
        const char *kv_key = "openai.api_key";
        llmc_options *opts = llmc_options_new();
        llmc_options_set(opts, kv_key, "sk-matrix");
        llmc_options_set(opts, "openai.api_base", base_v1);
        llmc_client *cl = NULL;
        llmc_err e;
        ck_assert_msg(llmc_client_new(c, opts, &cl, &e) == LLMC_OK, "%s", e.msg);
        llmc_options_free(opts);
        size_t before = fp_count(fp);
        char body[2048], plain[2048];
        body_of(mc, "library", b, ci, 0, body, sizeof body);
        body_of(mc, "library", b, ci, 1, plain, sizeof plain);
        result r;
        lib_call(cl, mc, body, 0, &r);
        check_result(mc, "library", b, 0, &r);
        char first_key[300];
        snprintf(first_key, sizeof first_key, "%s", r.key);
        if (mc->sleep_ms)
            usleep((useconds_t)mc->sleep_ms * 1000);
        lib_call(cl, mc, body, 0, &r);
        check_result(mc, "library", b, 1, &r);
        lib_call(cl, mc, plain, 1, &r);
        check_result(mc, "library", b, 2, &r);
        ck_assert_msg(fp_count(fp) - before == (size_t)mc->upstream,
                      "library/%s/%s: %zu provider requests, want %d", backend_names[b],
                      mc->name, fp_count(fp) - before, mc->upstream);
        if (mc->ttl_s > 0) {
            llmc_lookup lk = LLMC_LOOKUP_INIT;
            ck_assert_int_eq(llmc_cache_get_entry(c, first_key, strlen(first_key), -1, 0, &lk),
                             LLMC_OK);
            ck_assert_int_eq((lk.entry.expires_ms - lk.entry.created_ms + 500) / 1000,
                             mc->ttl_s);
            llmc_lookup_free(&lk);
        }
        llmc_client_free(cl);
    }
}

static void open_lib_caches(int b)
{
    for (int off = 0; off < 2; off++) {
        char url[600];
        snprintf(url, sizeof url, "%s%s", backend_url[b], off ? "?mode=default_off" : "");
        llmc_err e;
        ck_assert_msg(llmc_cache_open(url, NULL, &lib_cache[off], &e) == LLMC_OK, "%s: %s", url,
                      e.msg);
    }
    /* local:// caches are per handle: both modes must see one store. */
    if (b == 0) {
        llmc_cache_close(lib_cache[1]);
        llmc_err e;
        ck_assert(llmc_cache_open("local://?mode=default_off", NULL, &lib_cache[1], &e) ==
                  LLMC_OK);
    }
}

static void close_lib_caches(void)
{
    llmc_cache_close(lib_cache[0]);
    llmc_cache_close(lib_cache[1]);
}

START_TEST(library_matrix)
{
    setup_all();
    open_lib_caches(_i);
    run_library(_i);
    close_lib_caches();
    teardown_all();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Runner 2: the llmcache command. */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int run_cmd(char *const *args, char *errbuf, size_t errsz)
{
    char perr[700], pout[700];
    snprintf(perr, sizeof perr, "%s/stderr", tmpdir);
    snprintf(pout, sizeof pout, "%s/stdout", tmpdir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fi = open("/dev/null", O_RDONLY);
        int fo = open(pout, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(perr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || fe < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(bin, args);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    const char *txt = slurp(perr);
    size_t tl = strlen(txt);
    if (tl >= errsz)
        tl = errsz - 1;
    memcpy(errbuf, txt, tl);
    errbuf[tl] = '\0';
    ck_assert_msg(!strstr(errbuf, "runtime error:") && !strstr(errbuf, "Sanitizer"),
                  "sanitizer report:\n%s", errbuf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void cmd_call(int b, const mcase *mc, const char *body, int plain, result *r)
{
    memset(r, 0, sizeof *r);
    char file[700], url[600];
    snprintf(file, sizeof file, "%s/request.json", tmpdir);
    FILE *f = fopen(file, "wb");
    ck_assert(f != NULL);
    fputs(body, f);
    fclose(f);
    cache_url(b, mc, url, sizeof url);
    char *args[32];
    int n = 0;
    args[n++] = (char *)bin;
    args[n++] = "complete";
    args[n++] = "-v";
    args[n++] = "--cache";
    args[n++] = url;
    args[n++] = "--api-base";
    args[n++] = base_v1;
    args[n++] = "--api-key";
    args[n++] = "sk-matrix";
    args[n++] = "--request";
    args[n++] = file;
    if (!plain && mc->cache_control) {
        args[n++] = "--cache-control";
        args[n++] = (char *)mc->cache_control;
    }
    if (!plain && mc->ttl_hdr) {
        args[n++] = "--ttl";
        args[n++] = (char *)mc->ttl_hdr;
    }
    if (!plain && mc->ns_hdr) {
        args[n++] = "--namespace";
        args[n++] = (char *)mc->ns_hdr;
    }
    args[n] = NULL;
    int rc = run_cmd(args, r->msg, sizeof r->msg);
    const char *k = strstr(r->msg, "key=");
    if (k) {
        size_t kl = strcspn(k + 4, " \n");
        snprintf(r->key, sizeof r->key, "%.*s", (int)kl, k + 4);
    }
    if (rc == 2)
        r->outcome = ERR;
    else if (rc != 0)
        r->outcome = 0;
    else if (strstr(r->msg, "llmcache: HIT"))
        r->outcome = HIT;
    else if (strstr(r->msg, "llmcache: BYPASS"))
        r->outcome = BYPASS;
    else if (strstr(r->msg, "llmcache: MISS"))
        r->outcome = strstr(r->msg, "(not stored)") ? NOSTORE : MISS;
}

START_TEST(command_matrix)
{
    int b = _i;
    bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin != NULL, "LLMCACHE_BIN is not set");
    setup_all();
    for (int ci = 0; ci < N_CASES; ci++) {
        const mcase *mc = &cases[ci];
        size_t before = fp_count(fp);
        char body[2048], plain[2048];
        body_of(mc, "command", b, ci, 0, body, sizeof body);
        body_of(mc, "command", b, ci, 1, plain, sizeof plain);
        result r;
        cmd_call(b, mc, body, 0, &r);
        check_result(mc, "command", b, 0, &r);
        char first_key[300];
        snprintf(first_key, sizeof first_key, "%s", r.key);
        if (mc->sleep_ms)
            usleep((useconds_t)mc->sleep_ms * 1000);
        cmd_call(b, mc, body, 0, &r);
        check_result(mc, "command", b, 1, &r);
        cmd_call(b, mc, plain, 1, &r);
        check_result(mc, "command", b, 2, &r);
        ck_assert_msg(fp_count(fp) - before == (size_t)mc->upstream,
                      "command/%s/%s: %zu provider requests, want %d", backend_names[b],
                      mc->name, fp_count(fp) - before, mc->upstream);
        if (mc->ttl_s > 0) {
            char url[600];
            cache_url(b, mc, url, sizeof url);
            ck_assert_int_eq(stored_ttl_s(url, first_key), mc->ttl_s);
        }
    }
    teardown_all();
}
END_TEST

/* ------------------------------------------------------------------ */
/* Runner 3: the proxy, over HTTP. Headers carry what the command gives
 * as options. */

static int proxy_port;
static testsrv proxy_srv;

static void proxy_up(int b, int default_off)
{
    char name[64];
    snprintf(name, sizeof name, "controls-proxy-%d-%d", b, default_off);
    ck_assert_int_eq(testsrv_mkdir(&proxy_srv, name), 0);
    proxy_port = testsrv_free_port();
    char cfg[700], text[4096], url[600];
    snprintf(url, sizeof url, "%s%s", backend_url[b], default_off ? "?mode=default_off" : "");
    snprintf(cfg, sizeof cfg, "%s/proxy.json", proxy_srv.dir);
    snprintf(text, sizeof text,
             "{\"listen\": \"127.0.0.1:%d\", \"cache\": {\"url\": \"%s\"},\n"
             " \"client\": {\"max_retries\": 0},\n"
             " \"models\": [{\"name\": \"gpt-4o-mini\", \"provider\": \"openai\",\n"
             "   \"api_base\": \"%s\", \"api_key\": \"sk-matrix\"}]}\n",
             proxy_port, url, base_v1);
    FILE *f = fopen(cfg, "wb");
    ck_assert(f != NULL);
    fputs(text, f);
    fclose(f);
    char *argv[] = {(char *)bin, "serve", "--config", cfg, NULL};
    ck_assert_int_eq(testsrv_spawn(&proxy_srv, argv), 0);
    ck_assert_msg(testsrv_wait_tcp(&proxy_srv, proxy_port, 10000) == 0,
                  "llmcache serve did not start");
}

static void proxy_down(void)
{
    testsrv_stop(&proxy_srv);
}

static const char *find_header(const char *resp, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *end = strstr(resp, "\r\n\r\n");
    for (const char *p = strstr(resp, "\r\n"); p && end && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r");
            snprintf(out, n, "%.*s", (int)vl, v);
            return out;
        }
    }
    out[0] = '\0';
    return NULL;
}

static void proxy_call(const mcase *mc, const char *body, int plain, result *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)proxy_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[8192];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n",
                     strlen(body));
    if (!plain && mc->cache_control)
        n += snprintf(req + n, sizeof req - (size_t)n, "Cache-Control: %s\r\n",
                      mc->cache_control);
    if (!plain && mc->ttl_hdr)
        n += snprintf(req + n, sizeof req - (size_t)n, "x-llmcache-ttl: %s\r\n", mc->ttl_hdr);
    if (!plain && mc->ns_hdr)
        n += snprintf(req + n, sizeof req - (size_t)n, "x-llmcache-namespace: %s\r\n",
                      mc->ns_hdr);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n%s", body);
    ck_assert(n > 0 && (size_t)n < sizeof req);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    static char resp[65536];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof resp - 1 && (got = read(fd, resp + len, sizeof resp - 1 - len)) > 0)
        len += (size_t)got;
    resp[len] = '\0';
    close(fd);
    int status = 0;
    ck_assert_int_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1);
    char st[64];
    find_header(resp, "x-llmcache-status", st, sizeof st);
    find_header(resp, "x-llmcache-key", r->key, sizeof r->key);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(r->msg, sizeof r->msg, "HTTP %d %s: %.400s", status, st, b ? b + 4 : "");
    if (status == 400)
        r->outcome = ERR;
    else if (status != 200)
        r->outcome = 0;
    else if (strcmp(st, "HIT") == 0)
        r->outcome = HIT;
    else if (strcmp(st, "MISS") == 0 || strcmp(st, "REFRESH") == 0)
        r->outcome = MISS;
    else if (strcmp(st, "MISS-NOSTORE") == 0)
        r->outcome = NOSTORE;
    else if (strcmp(st, "BYPASS") == 0)
        r->outcome = BYPASS;
}

START_TEST(proxy_matrix)
{
    int b = _i;
    bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin != NULL, "LLMCACHE_BIN is not set");
    setup_all();
    for (int off = 0; off < 2; off++) {
        proxy_up(b, off);
        for (int ci = 0; ci < N_CASES; ci++) {
            const mcase *mc = &cases[ci];
            if (mc->default_off != off)
                continue;
            size_t before = fp_count(fp);
            char body[2048], plain[2048];
            body_of(mc, "proxy", b, ci, 0, body, sizeof body);
            body_of(mc, "proxy", b, ci, 1, plain, sizeof plain);
            result r;
            proxy_call(mc, body, 0, &r);
            check_result(mc, "proxy", b, 0, &r);
            char first_key[300];
            snprintf(first_key, sizeof first_key, "%s", r.key);
            if (mc->sleep_ms)
                usleep((useconds_t)mc->sleep_ms * 1000);
            proxy_call(mc, body, 0, &r);
            check_result(mc, "proxy", b, 1, &r);
            proxy_call(mc, plain, 1, &r);
            check_result(mc, "proxy", b, 2, &r);
            ck_assert_msg(fp_count(fp) - before == (size_t)mc->upstream,
                          "proxy/%s/%s: %zu provider requests, want %d", backend_names[b],
                          mc->name, fp_count(fp) - before, mc->upstream);
            /* A local:// cache lives in the proxy's process. */
            if (mc->ttl_s > 0 && b != 0) {
                char url[600];
                cache_url(b, mc, url, sizeof url);
                ck_assert_int_eq(stored_ttl_s(url, first_key), mc->ttl_s);
            }
        }
        proxy_down();
    }
    teardown_all();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("controls");
    TCase *tc = tcase_create("matrix");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, library_matrix, 0, N_BACKENDS);
    /* The command on the backends that outlive a process. */
    tcase_add_loop_test(tc, command_matrix, 1, N_BACKENDS);
    tcase_add_loop_test(tc, proxy_matrix, 0, N_BACKENDS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    unsetenv("LLMCACHE_URL");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#else

int main(void)
{
    /* Built without libcurl: no HTTP providers (77 = skipped). */
    return 77;
}

#endif
