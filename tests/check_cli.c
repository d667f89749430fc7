/* The llmcache command end to end: runs the built binary ($LLMCACHE_BIN)
 * as a user would, against the fake provider server (real HTTP on
 * loopback), real SQLite files and, when built in, real memcached and
 * redis-server processes started here on free ports. Asserts on exit
 * statuses, stdout, stderr and on what the provider actually received. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fake_provider.h"
#include "llmc_config.h"
#include "llmcache/common.h"
#include "support/testsrv.h"
#if LLMC_HAVE_REDIS
#include "support/redissrv.h"
#endif

static const char *bin;
static char tmp[PATH_MAX];
static fp_server *fp;
static char api_base[128];
static char *out, *err; /* stdout / stderr of the last run */

#define SECRET "sk-cli-test-SECRET-4711"

/* ---- running the command ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2048)
            s = realloc(s, cap *= 2);
    }
    s[len] = '\0';
    fclose(f);
    return s;
}

/* Run llmcache with argv (NULL-terminated), `in` as standard input (NULL:
 * /dev/null). Returns the exit status; out/err hold the output. */
static int run_argv(const char *in, char *const *args)
{
    char pin[PATH_MAX + 16], pout[PATH_MAX + 16], perr[PATH_MAX + 16];
    snprintf(pin, sizeof pin, "%s/stdin", tmp);
    snprintf(pout, sizeof pout, "%s/stdout", tmp);
    snprintf(perr, sizeof perr, "%s/stderr", tmp);
    if (in) {
        FILE *f = fopen(pin, "wb");
        ck_assert(f != NULL);
        fputs(in, f);
        fclose(f);
    }
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)bin;
    for (; args[argc - 1] && argc < 63; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    /* "__sh__" first: run the rest with /bin/sh instead (docs examples). */
    const char *prog = bin;
    char **av = argv;
    if (argv[1] && strcmp(argv[1], "__sh__") == 0) {
        prog = "/bin/sh";
        av = argv + 1;
        av[0] = (char *)"sh";
    }
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fi = open(in ? pin : "/dev/null", O_RDONLY);
        int fo = open(pout, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(perr, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0 || fe < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(prog, av);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(out);
    free(err);
    out = slurp(pout);
    err = slurp(perr);
    /* Under the sanitizer build, UBSan reports do not change the exit
     * status: catch them here. */
    ck_assert_msg(!strstr(err, "runtime error:") && !strstr(err, "Sanitizer"),
                  "sanitizer report:\n%s", err);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* Run llmcache with its standard error on a pseudo-terminal (stdout to a
 * file, stdin /dev/null), as a user at a terminal would. Returns the exit
 * status; err holds what the terminal showed. */
static int run_tty(char *const *args)
{
    char pout[PATH_MAX + 16];
    snprintf(pout, sizeof pout, "%s/stdout", tmp);
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)bin;
    for (; args[argc - 1] && argc < 63; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;
    fflush(NULL);
    int master = -1;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert(pid >= 0);
    if (pid == 0) {
        int fi = open("/dev/null", O_RDONLY);
        int fo = open(pout, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fi < 0 || fo < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        execv(bin, argv);
        _exit(127);
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        ssize_t n = read(master, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EIO once the child has gone */
        len += (size_t)n;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(master);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    free(out);
    free(err);
    out = slurp(pout);
    err = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_va(const char *in, va_list ap)
{
    char *args[64];
    int n = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 62)
        args[n++] = (char *)a;
    args[n] = NULL;
    return run_argv(in, args);
}

static int run(const char *first, ...)
{
    char *args[64];
    int n = 0;
    args[n++] = (char *)first;
    va_list ap;
    va_start(ap, first);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 62)
        args[n++] = (char *)a;
    va_end(ap);
    args[n] = NULL;
    return run_argv(NULL, args);
}

static int run_in(const char *in, ...)
{
    va_list ap;
    va_start(ap, in);
    int rc = run_va(in, ap);
    va_end(ap);
    return rc;
}

#define EXPECT(code, ...)                                                                \
    do {                                                                                 \
        int rc_ = run(__VA_ARGS__, NULL);                                                \
        ck_assert_msg(rc_ == (code), "exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", \
                      rc_, (code), out, err);                                            \
    } while (0)

#define EXPECT_IN(code, in, ...)                                                         \
    do {                                                                                 \
        int rc_ = run_in((in), __VA_ARGS__, NULL);                                       \
        ck_assert_msg(rc_ == (code), "exit %d, want %d\n--- stdout:\n%s--- stderr:\n%s", \
                      rc_, (code), out, err);                                            \
    } while (0)

#define HAS(s, sub) ck_assert_msg(strstr((s), (sub)) != NULL, "missing \"%s\" in:\n%s", (sub), (s))
#define HASNT(s, sub) ck_assert_msg(strstr((s), (sub)) == NULL, "unexpected \"%s\" in:\n%s", (sub), (s))

/* "key=<hex>" from a status line, copied into k. */
static void status_key(const char *s, char *k, size_t n)
{
    const char *p = strstr(s, "key=");
    ck_assert_msg(p != NULL, "no key= in: %s", s);
    p += 4;
    size_t l = strcspn(p, " \n");
    ck_assert(l < n);
    memcpy(k, p, l);
    k[l] = '\0';
}

static char *path_in_tmp(const char *name)
{
    static char bufs[4][PATH_MAX + 64];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
    return b;
}

static char *sqlite_url(const char *name)
{
    static char bufs[4][PATH_MAX + 64];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, sizeof bufs[0], "sqlite://%s/%s", tmp, name);
    return b;
}

/* ---- fixtures: each test (forked by Check) gets its own directory,
 * environment and fake provider. ---- */

static void setup(void)
{
    bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin && access(bin, X_OK) == 0, "LLMCACHE_BIN not set or not executable");
    snprintf(tmp, sizeof tmp, "/tmp/llmc-cli-XXXXXX");
    ck_assert(mkdtemp(tmp) != NULL);
    char x[PATH_MAX + 16];
    snprintf(x, sizeof x, "%s/xdg", tmp);
    setenv("XDG_CACHE_HOME", x, 1);
    setenv("HOME", tmp, 1);
    unsetenv("LLMCACHE_URL");
    unsetenv("OPENAI_BASE_URL");
    setenv("OPENAI_API_KEY", SECRET, 1);
    fp = fp_start();
    ck_assert(fp != NULL);
    snprintf(api_base, sizeof api_base, "%s/v1", fp_url(fp));
}

static void teardown(void)
{
    fp_stop(fp);
    fp = NULL;
    char *rm[] = {"rm", "-rf", tmp, NULL};
    testsrv_run(NULL, rm);
    free(out);
    free(err);
    out = err = NULL;
}

/* ---- help, version, usage ---- */

START_TEST(help_and_version)
{
    EXPECT(0, "--version");
    HAS(out, "llmcache " LLMC_VERSION_STRING);
    HAS(out, "backends: ");
    HAS(out, "sqlite");
    EXPECT(0, "--help");
    HAS(out, "Exit status");
    const char *cmds[] = {"complete", "embed", "key", "cache"};
    for (size_t i = 0; i < 4; i++) {
        EXPECT(0, cmds[i], "--help");
        HAS(out, "usage: llmcache");
    }
    const char *subs[] = {"get", "set", "del", "flush", "keys", "ttl", "stats", "ping", "copy"};
    for (size_t i = 0; i < 9; i++) {
        EXPECT(0, "cache", subs[i], "--help");
        HAS(out, "usage: llmcache cache");
        HAS(out, subs[i]);
    }
    EXPECT(0, "help", "cache", "copy");
    HAS(out, "TTL");
    EXPECT(0, "complete", "--help");
    HAS(out, "--mock-response");

    char *none[] = {NULL};
    ck_assert_int_eq(run_argv(NULL, none), 2);
    HAS(err, "usage: llmcache");
    EXPECT(2, "frobnicate");
    HAS(err, "unknown command 'frobnicate'");
    EXPECT(2, "complete", "--model", "gpt-4o-mini", "--user", "x", "--bogus");
    HAS(err, "unknown option '--bogus'");
    EXPECT(2, "complete", "--model");
    HAS(err, "'--model' needs a value");
    EXPECT(2, "complete", "--model", "m", "--user", "x", "--ttl", "soon");
    HAS(err, "--ttl 'soon'");
    EXPECT(2, "cache");
    EXPECT(2, "cache", "nope");
    HAS(err, "unknown subcommand 'nope'");
    EXPECT(2, "cache", "get");
    HAS(err, "missing argument");
    EXPECT(2, "cache", "get", "k", "--ttl", "5");
    HAS(err, "'--ttl' does not apply");
}
END_TEST

/* ---- complete with --mock-response on the default store ---- */

START_TEST(mock_default_store_miss_then_hit)
{
    /* No network: the fake provider must not be called at all. */
    EXPECT(0, "complete", "-v", "--model", "gpt-4o-mini", "--user", "Say hi", "--mock-response",
           "Hi!", "--text");
    ck_assert_str_eq(out, "Hi!\n");
    HAS(err, "llmcache: MISS key=");
    HAS(err, "(stored)");
    char k1[128];
    status_key(err, k1, sizeof k1);
    /* created on first use */
    struct stat st;
    ck_assert_msg(stat(path_in_tmp("xdg/llmcache/cache.db"), &st) == 0,
                  "default store not created");

    EXPECT(0, "complete", "-v", "--model", "gpt-4o-mini", "--user", "Say hi", "--mock-response",
           "Hi!", "--text");
    ck_assert_str_eq(out, "Hi!\n");
    HAS(err, "llmcache: HIT age=");
    char k2[128];
    status_key(err, k2, sizeof k2);
    ck_assert_str_eq(k1, k2);

    /* The JSON form carries "cache": true on a hit. */
    EXPECT(0, "complete", "--model", "gpt-4o-mini", "--user", "Say hi", "--mock-response", "Hi!");
    json_object *j = json_tokener_parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    json_object *c;
    ck_assert(json_object_object_get_ex(j, "cache", &c) && json_object_get_boolean(c));
    json_object_put(j);
    /* stderr is not a terminal and no -v: no status line. */
    ck_assert_str_eq(err, "");
    /* -q silences even with -v. */
    EXPECT(0, "complete", "-v", "-q", "--model", "gpt-4o-mini", "--user", "Say hi",
           "--mock-response", "Hi!", "--text");
    ck_assert_str_eq(err, "");

    /* LLMCACHE_URL wins over the embedded default. */
    char url[PATH_MAX + 32];
    snprintf(url, sizeof url, "%s", sqlite_url("env.db"));
    setenv("LLMCACHE_URL", url, 1);
    EXPECT(0, "complete", "-v", "--model", "gpt-4o-mini", "--user", "Say hi", "--mock-response",
           "Hi!", "--text");
    HAS(err, "MISS");
    ck_assert(stat(path_in_tmp("env.db"), &st) == 0);
    unsetenv("LLMCACHE_URL");

    ck_assert_uint_eq(fp_count(fp), 0);
}
END_TEST

/* ---- complete against the fake provider ---- */

START_TEST(provider_miss_then_hit)
{
    const char *cache = sqlite_url("p.db");
    EXPECT(0, "complete", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "hello there", "--system", "be brief");
    ck_assert_uint_eq(fp_count(fp), 1);
    HAS(err, "MISS");
    HAS(err, "provider=openai");
    json_object *j = json_tokener_parse(out);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    json_object *ch, *c0, *msg, *content;
    ck_assert(json_object_object_get_ex(j, "choices", &ch));
    c0 = json_object_array_get_idx(ch, 0);
    ck_assert(json_object_object_get_ex(c0, "message", &msg));
    ck_assert(json_object_object_get_ex(msg, "content", &content));
    ck_assert_str_eq(json_object_get_string(content), "echo: hello there");
    json_object_put(j);
    /* The provider got the key from the environment, the request both
     * messages. */
    const fp_request *rq = fp_last(fp);
    ck_assert_str_eq(rq->path, "/v1/chat/completions");
    const char *auth = fp_header_get(rq, "authorization");
    ck_assert(auth != NULL);
    HAS(auth, SECRET);
    HAS(rq->body, "be brief");

    /* Hit: no upstream call. */
    EXPECT(0, "complete", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "hello there", "--system", "be brief", "--text");
    ck_assert_uint_eq(fp_count(fp), 1);
    ck_assert_str_eq(out, "echo: hello there\n");
    HAS(err, "HIT");

    /* --no-cache: read skipped, goes upstream, stores again. */
    EXPECT(0, "complete", "-v", "--no-cache", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "hello there", "--system", "be brief");
    ck_assert_uint_eq(fp_count(fp), 2);
    HAS(err, "MISS");
    HAS(err, "--no-cache");

    /* --no-store: never written, so the same call misses twice. */
    for (int i = 0; i < 2; i++) {
        EXPECT(0, "complete", "-v", "--no-store", "--cache", cache, "--api-base", api_base,
               "--model", "gpt-4o-mini", "--user", "not stored");
        HAS(err, "MISS");
        HAS(err, "not stored");
    }
    ck_assert_uint_eq(fp_count(fp), 4);
    /* both: no cache at all */
    EXPECT(0, "complete", "-v", "--no-store", "--no-cache", "--cache", cache, "--api-base",
           api_base, "--model", "gpt-4o-mini", "--user", "hello there", "--system", "be brief");
    HAS(err, "BYPASS");
    ck_assert_uint_eq(fp_count(fp), 5);

    /* A namespace is a different entry, with the prefix in its key. */
    EXPECT(0, "complete", "-v", "-n", "team-a", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "hello there", "--system", "be brief");
    HAS(err, "MISS key=team-a:");
    ck_assert_uint_eq(fp_count(fp), 6);

    /* The secret reached the provider but nothing else: not in output,
     * not in the stored entries. */
    EXPECT(0, "cache", "keys", "--cache", cache);
    char *keys = strdup(out);
    for (char *save = NULL, *k = strtok_r(keys, "\n", &save); k; k = strtok_r(NULL, "\n", &save)) {
        EXPECT(0, "cache", "get", k, "--cache", cache);
        HASNT(out, SECRET);
        HAS(out, "echo: hello there");
    }
    free(keys);

    /* --ttl: the entry expires when asked to. */
    EXPECT(0, "complete", "-v", "--ttl", "100", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "short lived");
    char k[160];
    status_key(err, k, sizeof k);
    EXPECT(0, "cache", "ttl", k, "--cache", cache);
    long ttl = strtol(out, NULL, 10);
    ck_assert_msg(ttl > 50 && ttl <= 100, "ttl %ld", ttl);
}
END_TEST

/* --api responses: the Responses API through the command, the key
 * explained. */
START_TEST(responses_api)
{
    const char *cache = sqlite_url("resp.db");
    EXPECT(0, "complete", "-v", "--api", "responses", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "hello responses", "--system", "be brief");
    HAS(err, "MISS");
    HAS(out, "\"object\":\"response\"");
    HAS(out, "echo: hello responses");
    const fp_request *rq = fp_last(fp);
    ck_assert_str_eq(rq->path, "/v1/responses");
    HAS(rq->body, "\"instructions\":\"be brief\"");
    HAS(rq->body, "\"input\":\"hello responses\"");
    /* The hit, as a stream of typed events and as text. */
    EXPECT(0, "complete", "-v", "--api", "responses", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "hello responses", "--system", "be brief",
           "--stream");
    HAS(err, "HIT");
    HAS(out, "{\"type\":\"response.created\"");
    HAS(out, "{\"type\":\"response.output_text.delta\"");
    HAS(out, "{\"type\":\"response.completed\"");
    EXPECT(0, "complete", "-v", "--api", "responses", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "hello responses", "--system", "be brief",
           "--stream", "--text");
    ck_assert_str_eq(out, "echo: hello responses\n");
    ck_assert_uint_eq(fp_count(fp), 1);
    /* The key: the call type and the members in the material; store
     * left out. */
    EXPECT(0, "key", "--explain", "--api", "responses", "--cache", cache, "--model",
           "gpt-4o-mini", "--user", "hello responses", "--system", "be brief", "--param",
           "store=true");
    HAS(out, "call:      responses");
    HAS(out, "material:  {\"call\":\"responses\",\"model\":\"gpt-4o-mini\",\"params\":"
             "{\"input\":\"hello responses\",\"instructions\":\"be brief\"}");
    /* A follow-up on provider state: never cached. */
    for (int i = 0; i < 2; i++) {
        EXPECT(0, "complete", "-v", "--api", "responses", "--cache", cache, "--api-base",
               api_base, "--model", "gpt-4o-mini", "--user", "and then?", "--param",
               "previous_response_id=resp_1");
        HAS(err, "BYPASS");
    }
    ck_assert_uint_eq(fp_count(fp), 3);
    EXPECT(2, "complete", "--api", "nope", "--model", "m", "--user", "x");
    HAS(err, "--api 'nope'");
}
END_TEST

START_TEST(request_file_and_stdin)
{
    const char *cache = sqlite_url("r.db");
    const char *req = "{\"model\":\"gpt-4o-mini\",\"temperature\":0.5,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"from a file\"}]}";
    FILE *f = fopen(path_in_tmp("req.json"), "w");
    ck_assert(f != NULL);
    fputs(req, f);
    fclose(f);
    EXPECT(0, "complete", "-v", "--cache", cache, "--api-base", api_base, "--request",
           path_in_tmp("req.json"), "--text");
    ck_assert_str_eq(out, "echo: from a file\n");
    HAS(fp_last(fp)->body, "\"temperature\":0.5");
    /* The same request on stdin, spelled differently: a hit. */
    EXPECT_IN(0,
              "{ \"messages\" : [ {\"content\":\"from a file\", \"role\":\"user\"} ],\n"
              "  \"temperature\": 5e-1, \"model\": \"gpt-4o-mini\" }",
              "complete", "-v", "--cache", cache, "--api-base", api_base, "--request", "-",
              "--text");
    HAS(err, "HIT");
    ck_assert_uint_eq(fp_count(fp), 1);

    /* "stream": true in the request streams (and is still the same
     * entry). */
    EXPECT_IN(0,
              "{\"model\":\"gpt-4o-mini\",\"temperature\":0.5,\"stream\":true,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"from a file\"}]}",
              "complete", "-v", "--cache", cache, "--api-base", api_base, "--request", "-");
    HAS(err, "HIT");
    HAS(out, "chat.completion.chunk");
    ck_assert_uint_eq(fp_count(fp), 1);

    /* A legacy text completion ("prompt") goes to /v1/completions. */
    const char *treq = "{\"model\":\"gpt-3.5-turbo-instruct\",\"prompt\":\"once upon\"}";
    EXPECT_IN(0, treq, "complete", "-v", "--cache", cache, "--api-base", api_base, "--request",
              "-", "--text");
    ck_assert_str_eq(out, "echo: once upon\n");
    ck_assert_str_eq(fp_last(fp)->path, "/v1/completions");
    ck_assert_uint_eq(fp_count(fp), 2);
    EXPECT_IN(0, treq, "complete", "-v", "--cache", cache, "--api-base", api_base, "--request",
              "-", "--text");
    HAS(err, "HIT");
    ck_assert_uint_eq(fp_count(fp), 2);
    EXPECT_IN(0, treq, "key", "--explain", "--cache", cache, "--request", "-");
    HAS(out, "call:      text");
    EXPECT_IN(2, treq, "complete", "--stream", "--cache", cache, "--request", "-");
    HAS(err, "--stream is for chat");

    /* --user -: the message from standard input. */
    EXPECT_IN(0, "piped question\n", "complete", "-v", "--cache", cache, "--model", "gpt-4o-mini",
              "--user", "-", "--mock-response", "piped answer", "--text");
    ck_assert_str_eq(out, "piped answer\n");
    HAS(err, "MISS");
    EXPECT(0, "complete", "-v", "--cache", cache, "--model", "gpt-4o-mini", "--user",
           "piped question", "--mock-response", "piped answer", "--text");
    HAS(err, "HIT");

    /* Invalid JSON names the problem; --request with --user is usage. */
    EXPECT_IN(2, "{\"model\": ", "complete", "--cache", cache, "--request", "-");
    HAS(err, "--request (stdin)");
    EXPECT(2, "complete", "--cache", cache, "--request", path_in_tmp("req.json"), "--user", "x");
    EXPECT(1, "complete", "--cache", cache, "--request", path_in_tmp("missing.json"));
    HAS(err, "missing.json");
    /* --model overrides the file's */
    EXPECT(0, "complete", "--cache", cache, "--api-base", api_base, "--request",
           path_in_tmp("req.json"), "--model", "gpt-4.1-nano", "--text");
    ck_assert_uint_eq(fp_count(fp), 3);
    HAS(fp_last(fp)->body, "gpt-4.1-nano");
}
END_TEST

/* Each stdout line of a --stream run is one chunk; returns the text. */
static char *chunks_text(const char *s, int *nlines)
{
    char *copy = strdup(s), *save = NULL;
    size_t cap = 1024;
    char *text = calloc(1, cap);
    *nlines = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_object *j = json_tokener_parse(l);
        ck_assert_msg(j != NULL, "stream line is not JSON: %s", l);
        json_object *o, *ch, *d, *c;
        ck_assert(json_object_object_get_ex(j, "object", &o));
        ck_assert_str_eq(json_object_get_string(o), "chat.completion.chunk");
        if (json_object_object_get_ex(j, "choices", &ch) && json_object_array_length(ch) > 0 &&
            json_object_object_get_ex(json_object_array_get_idx(ch, 0), "delta", &d) &&
            json_object_object_get_ex(d, "content", &c) && json_object_get_string(c))
            strncat(text, json_object_get_string(c), cap - strlen(text) - 1);
        json_object_put(j);
        (*nlines)++;
    }
    free(copy);
    return text;
}

START_TEST(stream_miss_hit_and_text)
{
    const char *cache = sqlite_url("s.db");
    EXPECT(0, "complete", "-v", "--stream", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "stream me please");
    ck_assert_uint_eq(fp_count(fp), 1);
    HAS(fp_last(fp)->body, "\"stream\":true");
    HAS(err, "MISS");
    int n = 0;
    char *t = chunks_text(out, &n);
    ck_assert_int_ge(n, 2);
    ck_assert_str_eq(t, "echo: stream me please");
    free(t);

    /* Replayed from the cache as chunks. */
    EXPECT(0, "complete", "-v", "--stream", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "stream me please");
    ck_assert_uint_eq(fp_count(fp), 1);
    HAS(err, "HIT");
    t = chunks_text(out, &n);
    ck_assert_int_ge(n, 2);
    ck_assert_str_eq(t, "echo: stream me please");
    free(t);

    /* Streamed and plain calls share the entry; --stream --text prints
     * the text. */
    EXPECT(0, "complete", "--text", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "stream me please");
    ck_assert_str_eq(out, "echo: stream me please\n");
    EXPECT(0, "complete", "--stream", "--text", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "stream me please");
    ck_assert_str_eq(out, "echo: stream me please\n");
    EXPECT(0, "complete", "-v", "--stream", "--text", "--cache", cache, "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "a fresh stream");
    ck_assert_str_eq(out, "echo: a fresh stream\n");
    HAS(err, "MISS");
    ck_assert_uint_eq(fp_count(fp), 2);

    /* A stream cut off upstream: error, exit 4, nothing stored. */
    fp_cut_stream_next(fp, 1);
    EXPECT(4, "complete", "-v", "--stream", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "cut short");
    EXPECT(0, "complete", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "cut short");
    HAS(err, "MISS");
}
END_TEST

/* ---- key ---- */

START_TEST(key_and_explain)
{
    const char *cache = sqlite_url("k.db");
    EXPECT(0, "key", "--cache", cache, "--model", "gpt-4o-mini", "--user", "hi", "--param",
           "temperature=0");
    char k1[160];
    snprintf(k1, sizeof k1, "%s", out);
    ck_assert_uint_eq(strlen(k1), 65); /* 64 hex + newline */

    /* Two requests that differ only in member order, whitespace and
     * number spelling share the key. */
    FILE *f = fopen(path_in_tmp("a.json"), "w");
    fputs("{\"model\":\"gpt-4o-mini\",\"temperature\":0,"
          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
          f);
    fclose(f);
    f = fopen(path_in_tmp("b.json"), "w");
    fputs("{ \"messages\": [ { \"content\": \"hi\", \"role\": \"user\" } ],\n"
          "  \"temperature\": 0.0,\n  \"model\": \"gpt-4o-mini\" }\n",
          f);
    fclose(f);
    EXPECT(0, "key", "--cache", cache, "--request", path_in_tmp("a.json"));
    ck_assert_str_eq(out, k1);
    EXPECT(0, "key", "--cache", cache, "--request", path_in_tmp("b.json"));
    ck_assert_str_eq(out, k1);
    /* Excluded members (stream, user, metadata) do not change it ... */
    EXPECT(0, "key", "--cache", cache, "--model", "gpt-4o-mini", "--user", "hi", "--param",
           "temperature=0", "--param", "stream=true", "--param", "metadata={\"a\":1}");
    ck_assert_str_eq(out, k1);
    /* ... anything that can change the answer does. */
    EXPECT(0, "key", "--cache", cache, "--model", "gpt-4o-mini", "--user", "hi", "--param",
           "temperature=0.7");
    ck_assert_str_ne(out, k1);
    EXPECT(0, "key", "--cache", cache, "--model", "gpt-4o-mini", "--user", "hi");
    ck_assert_str_ne(out, k1);

    /* --explain shows the canonical material. */
    EXPECT(0, "key", "--explain", "--cache", cache, "--request", path_in_tmp("b.json"));
    HAS(out, "material:  {\"call\":\"chat\",\"model\":\"gpt-4o-mini\",\"params\":{\"messages\":"
             "[{\"content\":\"hi\",\"role\":\"user\"}],\"temperature\":0},\"provider\":\"openai\","
             "\"v\":1}");
    HAS(out, "strategy:  v1");
    k1[64] = '\0';
    HAS(out, k1);

    /* The key is the one complete uses (a non-default api_base is part
     * of both). */
    EXPECT(0, "key", "--api-base", api_base, "--cache", cache, "--request",
           path_in_tmp("b.json"));
    char kb[160];
    snprintf(kb, sizeof kb, "%.64s", out);
    ck_assert_str_ne(kb, k1);
    EXPECT(0, "complete", "-v", "--cache", cache, "--api-base", api_base, "--request",
           path_in_tmp("b.json"));
    char k2[160];
    status_key(err, k2, sizeof k2);
    ck_assert_str_eq(k2, kb);
    /* A namespace prefixes it; a non-default api_base enters it. */
    EXPECT(0, "key", "-n", "ns1", "--cache", cache, "--request", path_in_tmp("a.json"));
    ck_assert(strncmp(out, "ns1:", 4) == 0);
    HAS(out, k1);
    EXPECT(0, "key", "--explain", "--api-base", api_base, "--cache", cache, "--request",
           path_in_tmp("a.json"));
    HAS(out, "\"api_base\"");

    /* Embedding items: one key per input. */
    EXPECT(0, "key", "--cache", cache, "--model", "text-embedding-3-small", "--input", "a",
           "--input", "b");
    char *nl = strchr(out, '\n');
    ck_assert(nl && strchr(nl + 1, '\n') && strncmp(out, nl + 1, 64) != 0);

    /* Errors name the problem. */
    EXPECT(2, "key", "--cache", cache, "--user", "hi");
    HAS(err, "missing --model");
    EXPECT(2, "key", "--cache", cache, "--model", "no-such-model-family", "--user", "hi");
    HAS(err, "no-such-model-family");
    EXPECT(2, "key", "--cache", cache, "--model", "gpt-4o-mini");
    HAS(err, "missing --user");
    ck_assert_uint_eq(fp_count(fp), 1);
}
END_TEST

/* key with two requests: both keys, and with --explain the members of
 * the key material that differ (a second --request used to replace the
 * first silently). */
START_TEST(key_compares_two_requests)
{
    const char *cache = sqlite_url("k2.db");
    FILE *f = fopen(path_in_tmp("ka.json"), "w");
    fputs("{\"model\":\"gpt-4o-mini\",\"temperature\":0,\"stream\":true,"
          "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
          "{\"role\":\"user\",\"content\":\"hi\"}]}",
          f);
    fclose(f);
    f = fopen(path_in_tmp("kb.json"), "w");
    fputs("{\"model\":\"gpt-4o\",\"temperature\":0.7,\"seed\":7,"
          "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
          "{\"role\":\"user\",\"content\":\"hello\"}]}",
          f);
    fclose(f);
    /* ka.json written differently (member order, 0.0, no stream): same key */
    f = fopen(path_in_tmp("ka2.json"), "w");
    fputs("{\"messages\":[{\"content\":\"be brief\",\"role\":\"system\"},"
          "{\"content\":\"hi\",\"role\":\"user\"}],\"temperature\":0.0,"
          "\"model\":\"gpt-4o-mini\"}",
          f);
    fclose(f);

    EXPECT(0, "key", "--cache", cache, "--request", path_in_tmp("ka.json"));
    char ka[80];
    snprintf(ka, sizeof ka, "%.64s", out);
    EXPECT(0, "key", "--cache", cache, "--request", path_in_tmp("kb.json"));
    char kb[80];
    snprintf(kb, sizeof kb, "%.64s", out);
    ck_assert_str_ne(ka, kb);

    /* Without --explain: both keys, A's first. */
    EXPECT(0, "key", "--cache", cache, "--request", path_in_tmp("ka.json"), "--request",
           path_in_tmp("kb.json"));
    char want[200];
    snprintf(want, sizeof want, "A %s\nB %s\n", ka, kb);
    ck_assert_str_eq(out, want);

    /* --explain: each side's material, then exactly the members that differ. */
    EXPECT(0, "key", "--explain", "--cache", cache, "--request", path_in_tmp("ka.json"),
           "--request", path_in_tmp("kb.json"));
    snprintf(want, sizeof want, "A key:       %s\n", ka);
    HAS(out, want);
    snprintf(want, sizeof want, "B key:       %s\n", kb);
    HAS(out, want);
    HAS(out, "same key:  no\n");
    HAS(out, "differences:\n");
    HAS(out, "  model\n    A: \"gpt-4o-mini\"\n    B: \"gpt-4o\"\n");
    HAS(out, "  params.messages[1].content\n    A: \"hi\"\n    B: \"hello\"\n");
    HAS(out, "  params.temperature\n    A: 0\n    B: 0.7\n");
    HAS(out, "  params.seed\n    A: (absent)\n    B: 7\n");
    /* equal members and excluded ones (stream) are not listed */
    HASNT(out, "params.messages[0]");
    HASNT(out, "stream");
    HASNT(out, "  provider\n");

    /* The same request written two ways: same key, no differences. */
    EXPECT(0, "key", "--explain", "--cache", cache, "--request", path_in_tmp("ka.json"),
           "--request", path_in_tmp("ka2.json"));
    HAS(out, "same key:  yes\n");
    HAS(out, "differences: none");

    /* Options apply to both requests: a namespace prefixes both keys. */
    EXPECT(0, "key", "-n", "nsx", "--cache", cache, "--request", path_in_tmp("ka.json"),
           "--request", path_in_tmp("kb.json"));
    snprintf(want, sizeof want, "A nsx:%s\nB nsx:%s\n", ka, kb);
    ck_assert_str_eq(out, want);

    /* A third request, or a second one anywhere else, is refused by name. */
    EXPECT(2, "key", "--cache", cache, "--request", path_in_tmp("ka.json"), "--request",
           path_in_tmp("kb.json"), "--request", path_in_tmp("ka.json"));
    HAS(err, "--request given more than twice");
    EXPECT(2, "complete", "--cache", cache, "--request", path_in_tmp("ka.json"), "--request",
           path_in_tmp("kb.json"));
    HAS(err, "--request given more than once");
    EXPECT_IN(2, "{}", "key", "--cache", cache, "--request", "-", "--request", "-");
    HAS(err, "only one --request can be standard input");
    /* A bad second request is named. */
    f = fopen(path_in_tmp("bad.json"), "w");
    fputs("{\"model\":", f);
    fclose(f);
    EXPECT(2, "key", "--cache", cache, "--request", path_in_tmp("ka.json"), "--request",
           path_in_tmp("bad.json"));
    HAS(err, "bad.json");
    ck_assert_uint_eq(fp_count(fp), 0);
}
END_TEST

/* ---- embed ---- */

START_TEST(embed_items)
{
    const char *cache = sqlite_url("e.db");
    EXPECT(0, "embed", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "text-embedding-3-small", "--input", "alpha", "--input", "beta");
    ck_assert_uint_eq(fp_count(fp), 1);
    HAS(err, "MISS 0/2");
    json_object *j = json_tokener_parse(out), *data;
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert(json_object_object_get_ex(j, "data", &data));
    ck_assert_uint_eq(json_object_array_length(data), 2);
    json_object_put(j);
    /* One old, one new item: only the new one goes upstream. */
    EXPECT(0, "embed", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "text-embedding-3-small", "--input", "beta", "--input", "gamma");
    ck_assert_uint_eq(fp_count(fp), 2);
    HAS(err, "PARTIAL 1/2");
    HASNT(fp_last(fp)->body, "beta");
    EXPECT(0, "embed", "-v", "--cache", cache, "--api-base", api_base, "--model",
           "text-embedding-3-small", "--input", "gamma", "--input", "alpha");
    ck_assert_uint_eq(fp_count(fp), 2);
    HAS(err, "HIT 2/2");
    /* mock: no network */
    EXPECT(0, "embed", "--cache", cache, "--model", "text-embedding-3-small", "--input", "x",
           "--mock-response", "1");
    HAS(out, "\"embedding\"");
    ck_assert_uint_eq(fp_count(fp), 2);
    EXPECT(2, "embed", "--cache", cache, "--model", "text-embedding-3-small");
    HAS(err, "missing --input");
    EXPECT(2, "embed", "--cache", cache, "--model", "m", "--input", "x", "--stream");
}
END_TEST

/* ---- errors ---- */

START_TEST(errors_name_the_problem)
{
    EXPECT(2, "complete", "--cache", "bogus://x", "--model", "gpt-4o-mini", "--user", "x",
           "--mock-response", "y");
    HAS(err, "bogus");
    EXPECT(2, "cache", "ping", "--cache", "sqlite://");
    HAS(err, "cannot open cache");
    EXPECT(2, "cache", "ping", "--cache", "local://?max_entries=lots");
    HAS(err, "max_entries");
    /* Passwords are not echoed. */
    EXPECT(2, "cache", "ping", "--cache", "nosuch://user:hunter2@h:1");
    HASNT(err, "hunter2");
    EXPECT(2, "complete", "--user", "x", "--cache", sqlite_url("x.db"));
    HAS(err, "missing --model");
    EXPECT(2, "complete", "--model", "gpt-4o-mini", "--cache", sqlite_url("x.db"));
    HAS(err, "missing --user");
    /* Namespaces follow the library's one rule, named in the message. */
    EXPECT(2, "complete", "--namespace", "a:b", "--model", "mock/x", "--mock-response", "y",
           "--user", "x", "--cache", "local://");
    HAS(err, "--namespace \"a:b\"");
    EXPECT(2, "cache", "flush", "--namespace", "a*", "--cache", "local://");
    HAS(err, "'*'");
    EXPECT(2, "cache", "ping", "--cache", "local://?namespace=a%5Bb");
    HAS(err, "namespace");

    /* Provider errors: exit 4, the status named, the key never shown. */
    fp_fail_next(fp, 1, 401, -1);
    EXPECT(4, "complete", "--cache", sqlite_url("x.db"), "--api-base", api_base, "--model",
           "gpt-4o-mini", "--user", "x");
    HAS(err, "401");
    HASNT(err, SECRET);
    ck_assert_str_eq(out, "");
    /* ... and nothing was stored: the next call goes upstream. */
    EXPECT(0, "complete", "-v", "--cache", sqlite_url("x.db"), "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "x", "--api-key", "sk-other-key-0815");
    HAS(err, "MISS");
    HAS(fp_header_get(fp_last(fp), "authorization"), "sk-other-key-0815");
    HASNT(out, "sk-other-key-0815");
    /* No key anywhere: says where to put one. */
    unsetenv("OPENAI_API_KEY");
    EXPECT(4, "complete", "--cache", sqlite_url("x.db"), "--model", "gpt-4o-mini", "--user",
           "keyless");
    HAS(err, "OPENAI_API_KEY");
    HAS(err, "--api-key");
    setenv("OPENAI_API_KEY", SECRET, 1);
    /* --retries 0: one attempt only; by default 429/5xx are retried. */
    size_t before = fp_count(fp);
    fp_fail_next(fp, 1, 500, -1);
    EXPECT(4, "complete", "--retries", "0", "--cache", sqlite_url("x.db"), "--api-base", api_base,
           "--model", "gpt-4o-mini", "--user", "retry me");
    HAS(err, "500");
    ck_assert_uint_eq(fp_count(fp), before + 1);
    EXPECT(2, "complete", "--retries", "many", "--model", "gpt-4o-mini", "--user", "x");
    HAS(err, "--retries 'many'");
    EXPECT(2, "complete", "--timeout", "0", "--model", "gpt-4o-mini", "--user", "x");
    /* --provider: any model name goes to the named provider. */
    EXPECT(0, "complete", "-v", "--provider", "openai", "--cache", sqlite_url("x.db"),
           "--api-base", api_base, "--model", "my-local-model", "--user", "routed", "--text");
    ck_assert_str_eq(out, "echo: routed\n");
    HAS(fp_last(fp)->body, "my-local-model");
    EXPECT(2, "complete", "--provider", "nosuchprovider", "--cache", sqlite_url("x.db"),
           "--model", "m", "--user", "x");
    HAS(err, "nosuchprovider");
    /* Upstream unreachable: exit 4 (ECONN maps to provider). */
    int port = testsrv_free_port();
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/v1", port);
    int rc = run("complete", "--cache", sqlite_url("x.db"), "--api-base", dead, "--model",
                 "gpt-4o-mini", "--user", "nobody home", NULL);
    ck_assert_msg(rc == 4, "exit %d: %s", rc, err);
    HAS(err, "llmcache complete: ");
    HAS(err, dead + 7); /* names the address it could not reach */

#if LLMC_HAVE_MEMCACHED
    /* The completion path fails open: a cache that is down is a miss,
     * and the answer still comes. */
    char mc[64];
    snprintf(mc, sizeof mc, "memcached://127.0.0.1:%d", testsrv_free_port());
    EXPECT(0, "complete", "--cache", mc, "--api-base", api_base, "--model", "gpt-4o-mini",
           "--user", "cache down", "--text");
    ck_assert_str_eq(out, "echo: cache down\n");
    HAS(err, "warning: cache memcached://");
    /* ... but raw cache commands report it. */
    EXPECT(1, "cache", "ping", "--cache", mc);
    HAS(err, "ping");
#endif
#if LLMC_HAVE_REDIS
    /* A Redis that is down at start is no open error either. */
    char rd[64];
    snprintf(rd, sizeof rd, "redis://127.0.0.1:%d", testsrv_free_port());
    EXPECT(0, "complete", "--cache", rd, "--api-base", api_base, "--model", "gpt-4o-mini",
           "--user", "redis down", "--text");
    ck_assert_str_eq(out, "echo: redis down\n");
    HAS(err, "warning: cache redis://");
    HASNT(err, "cannot open cache");
    EXPECT(1, "cache", "get", "--cache", rd, "some-key");
    HAS(err, "cannot connect to redis");
    EXPECT(1, "cache", "set", "--cache", rd, "some-key", "v");
    HAS(err, "cannot connect to redis");
#endif
}
END_TEST

/* ---- cache subcommands ---- */

START_TEST(cache_subcommands)
{
    const char *c = sqlite_url("c.db");
    EXPECT(0, "cache", "ping", "--cache", c);
    HAS(out, "PONG sqlite");
    EXPECT(0, "cache", "set", "k1", "value one", "--cache", c);
    ck_assert_str_eq(out, "");
    EXPECT(0, "cache", "get", "k1", "--cache", c);
    ck_assert_str_eq(out, "value one\n");
    EXPECT(0, "cache", "get", "k1", "--raw", "--cache", c);
    ck_assert_str_eq(out, "value one");
    EXPECT(3, "cache", "get", "nope", "--cache", c);
    HAS(err, "nope");
    EXPECT_IN(0, "from\nstdin", "cache", "set", "k2", "-", "--ttl", "500", "--cache", c);
    EXPECT(0, "cache", "get", "k2", "--raw", "--cache", c);
    ck_assert_str_eq(out, "from\nstdin");
    EXPECT(0, "cache", "ttl", "k2", "--cache", c);
    long t = strtol(out, NULL, 10);
    ck_assert_msg(t > 400 && t <= 500, "ttl %ld", t);
    EXPECT(0, "cache", "ttl", "k1", "--cache", c);
    ck_assert_str_eq(out, "-1\n");
    EXPECT(3, "cache", "ttl", "nope", "--cache", c);

    EXPECT(0, "cache", "set", "ns1:a", "1", "--cache", c);
    EXPECT(0, "cache", "set", "ns1:b", "2", "--cache", c);
    EXPECT(0, "cache", "set", "ns2:a", "3", "--cache", c);
    EXPECT(0, "cache", "keys", "--namespace", "ns1", "--cache", c);
    ck_assert_str_eq(out, "ns1:a\nns1:b\n");
    EXPECT(0, "cache", "keys", "--cache", c);
    HAS(out, "k1\n");
    HAS(out, "ns2:a\n");

    EXPECT(0, "cache", "del", "k1", "nope", "--cache", c);
    ck_assert_str_eq(out, "1\n");
    EXPECT(3, "cache", "del", "k1", "--cache", c);
    ck_assert_str_eq(out, "0\n");

    EXPECT(2, "cache", "flush", "--cache", c);
    HAS(err, "--namespace");
    EXPECT(0, "cache", "flush", "--namespace", "ns1", "--cache", c);
    HAS(out, "ns1");
    EXPECT(3, "cache", "get", "ns1:a", "--cache", c);
    EXPECT(0, "cache", "get", "ns2:a", "--cache", c);
    /* the URL's namespace is the default */
    char cns[PATH_MAX + 64];
    snprintf(cns, sizeof cns, "%s?namespace=ns2", c);
    EXPECT(0, "cache", "flush", "--cache", cns);
    EXPECT(3, "cache", "get", "ns2:a", "--cache", c);

    EXPECT(0, "cache", "stats", "--cache", c);
    HAS(out, "backend:       sqlite");
    HAS(out, "entries");
    EXPECT(0, "cache", "stats", "--json", "--cache", c);
    json_object *j = json_tokener_parse(out), *b;
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert(json_object_object_get_ex(j, "backend", &b));
    ck_assert_str_eq(json_object_get_string(b), "sqlite");
    json_object_put(j);

    EXPECT(0, "cache", "flush", "--all", "--cache", c);
    EXPECT(0, "cache", "keys", "--cache", c);
    ck_assert_str_eq(out, "");

    /* --entry decodes a stored response. */
    EXPECT(0, "complete", "-v", "--cache", c, "--model", "gpt-4o-mini", "--user", "q",
           "--mock-response", "stored answer");
    char k[160];
    status_key(err, k, sizeof k);
    EXPECT(0, "cache", "get", "--entry", "-v", k, "--cache", c);
    HAS(out, "stored answer");
    HAS(err, "call=chat");
    HAS(err, "expires=never");
    HASNT(out, "\"cache\":true");
    EXPECT(0, "cache", "set", "raw", "not an entry", "--cache", c);
    EXPECT(3, "cache", "get", "--entry", "raw", "--cache", c);
    /* Deleting the entry turns the next call into a miss. */
    EXPECT(0, "cache", "del", k, "--cache", c);
    EXPECT(0, "complete", "-v", "--cache", c, "--model", "gpt-4o-mini", "--user", "q",
           "--mock-response", "stored answer");
    HAS(err, "MISS");
}
END_TEST

/* ---- copy ---- */

START_TEST(copy_sqlite_to_sqlite)
{
    const char *a = sqlite_url("from.db"), *b = sqlite_url("to.db");
    EXPECT(0, "cache", "set", "x:1", "one", "--ttl", "3600", "--cache", a);
    EXPECT(0, "cache", "set", "x:2", "two", "--ttl", "0", "--cache", a);
    EXPECT(0, "cache", "set", "y:3", "three", "--cache", a);
    EXPECT(0, "cache", "set", "x:gone", "old", "--ttl", "1", "--cache", a);
    EXPECT(0, "complete", "-v", "--cache", a, "--api-base", api_base, "--model", "gpt-4o-mini",
           "--user", "copy me");
    char k[160];
    status_key(err, k, sizeof k);
    ck_assert_uint_eq(fp_count(fp), 1);
    sleep(2); /* x:gone expires */

    EXPECT(0, "cache", "copy", a, b);
    HAS(out, "copied 4, skipped-expired 0, failed 0");
    EXPECT(0, "cache", "get", "x:1", "--cache", b);
    ck_assert_str_eq(out, "one\n");
    EXPECT(0, "cache", "ttl", "x:1", "--cache", b);
    long t = strtol(out, NULL, 10);
    ck_assert_msg(t > 3000 && t <= 3600, "remaining ttl not kept: %ld", t);
    EXPECT(0, "cache", "ttl", "x:2", "--cache", b);
    ck_assert_str_eq(out, "-1\n");
    EXPECT(3, "cache", "get", "x:gone", "--cache", b);
    /* The copied response is a hit at the destination. */
    EXPECT(0, "complete", "-v", "--cache", b, "--api-base", api_base, "--model", "gpt-4o-mini",
           "--user", "copy me", "--text");
    HAS(err, "HIT");
    ck_assert_str_eq(out, "echo: copy me\n");
    ck_assert_uint_eq(fp_count(fp), 1);

    /* Only one namespace. */
    const char *c = sqlite_url("ns.db");
    EXPECT(0, "cache", "copy", "--namespace", "x", a, c);
    HAS(out, "copied 2,");
    EXPECT(0, "cache", "keys", "--cache", c);
    ck_assert_str_eq(out, "x:1\nx:2\n");

    /* Entries the destination refuses are counted and named; exit 1. */
    char small[PATH_MAX + 64];
    snprintf(small, sizeof small, "%s?max_item_bytes=4", sqlite_url("small.db"));
    EXPECT(1, "cache", "copy", a, small);
    HAS(out, "copied 2, skipped-expired 0, failed 2");
    HAS(err, "write of 'y:3' failed: ");
    HAS(err, "max_item_bytes");

    EXPECT(2, "cache", "copy", a, a);
    HAS(err, "same cache");
    EXPECT(2, "cache", "copy", a);
    EXPECT(2, "cache", "copy", a, "bogus://");
}
END_TEST

/* On a terminal: the status line without -v, a progress bar for copy. */
START_TEST(terminal_status_and_progress)
{
    const char *a = sqlite_url("tty-from.db"), *b = sqlite_url("tty-to.db");
    char *c1[] = {"complete", "--cache", (char *)a, "--model", "gpt-4o-mini", "--user", "tty",
                  "--mock-response", "on a terminal", "--text", NULL};
    ck_assert_int_eq(run_tty(c1), 0);
    ck_assert_str_eq(out, "on a terminal\n");
    HAS(err, "llmcache: MISS key=");
    ck_assert_int_eq(run_tty(c1), 0);
    HAS(err, "llmcache: HIT age=");
    char *q[] = {"complete", "-q", "--cache", (char *)a, "--model", "gpt-4o-mini", "--user", "tty",
                 "--mock-response", "on a terminal", "--text", NULL};
    ck_assert_int_eq(run_tty(q), 0);
    HASNT(err, "HIT");

    for (int i = 0; i < 40; i++) {
        char k[32];
        snprintf(k, sizeof k, "p:%d", i);
        EXPECT(0, "cache", "set", k, "v", "--cache", a);
    }
    char *cp[] = {"cache", "copy", (char *)a, (char *)b, NULL};
    ck_assert_int_eq(run_tty(cp), 0);
    HAS(err, "copying [");
    HAS(err, "100% 41/41");
    HAS(out, "copied 41, skipped-expired 0, failed 0");
    /* Not on a terminal: no bar, same summary. */
    EXPECT(0, "cache", "copy", a, sqlite_url("tty-3.db"));
    HASNT(err, "copying [");
    HAS(out, "copied 41,");
}
END_TEST

/* The offline examples of docs/cli.md run as written (blocks that need a
 * provider key, a network server or Redis are skipped). */
START_TEST(docs_examples_run)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/docs/cli.md", LLMC_SOURCE_ROOT);
    char *doc = slurp(path);
    char bindir[PATH_MAX];
    snprintf(bindir, sizeof bindir, "%s", bin);
    *strrchr(bindir, '/') = '\0';
    char newpath[PATH_MAX * 2];
    snprintf(newpath, sizeof newpath, "%s:%s", bindir, getenv("PATH") ? getenv("PATH") : "");
    setenv("PATH", newpath, 1);
    int ran = 0;
    char *p = doc;
    while ((p = strstr(p, "```sh\n")) != NULL) {
        p += 6;
        char *end = strstr(p, "```");
        ck_assert(end != NULL);
        char *block = strndup(p, (size_t)(end - p));
        p = end + 3;
        if (strstr(block, "sk-") || strstr(block, "http://") || strstr(block, "redis://")) {
            free(block);
            continue;
        }
        /* Keep the example's scratch database inside the test directory. */
        char script[16384];
        size_t o = 0;
        const char *from = "/tmp/llmcache-doc.db";
        for (const char *q = block; *q && o < sizeof script - PATH_MAX - 1;) {
            if (strncmp(q, from, strlen(from)) == 0) {
                o += (size_t)snprintf(script + o, sizeof script - o, "%s/doc.db", tmp);
                q += strlen(from);
            } else {
                script[o++] = *q++;
            }
        }
        script[o] = '\0';
        free(block);
        int rc = run("__sh__", "-e", "-c", script, NULL);
        ck_assert_msg(rc == 0, "docs/cli.md example failed (exit %d):\n%s\n--- stdout:\n%s--- stderr:\n%s",
                      rc, script, out, err);
        if (strstr(script, "cache set greeting")) {
            HAS(out, "hello\n600\n");
            HAS(out, "flushed namespace team-a: 2 keys\n1\n");
            HAS(out, "\nexit 3\n");
            HAS(out, "PONG sqlite");
        }
        if (strstr(script, "key --explain"))
            HAS(out, "material:  {\"call\":\"chat\"");
        ran++;
    }
    free(doc);
    ck_assert_int_ge(ran, 4);
}
END_TEST

/* README's main job, minus install and build: MISS, then HIT. */
START_TEST(readme_main_job)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/README.md", LLMC_SOURCE_ROOT);
    char *doc = slurp(path);
    char *blk = strstr(doc, "```sh\n");
    ck_assert(blk != NULL);
    char *line_end = strchr(blk + 6, '\n');
    *line_end = '\0';
    const char *after = "ninja -C build && ";
    char *cmd = strstr(blk, after);
    ck_assert_msg(cmd != NULL, "README main job does not build with ninja: %s", blk);
    cmd += strlen(after);
    char script[8192];
    size_t o = 0;
    const char *from = "./build/cli/llmcache";
    for (const char *q = cmd; *q && o < sizeof script - PATH_MAX - 1;) {
        if (strncmp(q, from, strlen(from)) == 0) {
            o += (size_t)snprintf(script + o, sizeof script - o, "%s", bin);
            q += strlen(from);
        } else {
            script[o++] = *q++;
        }
    }
    script[o] = '\0';
    free(doc);
    for (int round = 0; round < 2; round++) { /* a re-run shows the same */
        int rc = run("__sh__", "-e", "-c", script, NULL);
        ck_assert_msg(rc == 0, "README main job failed (exit %d):\n%s\n%s", rc, out, err);
        char *miss = strstr(err, "llmcache: MISS");
        char *hit = strstr(err, "llmcache: HIT");
        ck_assert_msg(miss && hit && miss < hit, "want MISS then HIT:\n%s", err);
    }
}
END_TEST

#if LLMC_HAVE_MEMCACHED
/* memcached started so that it dies with the test process even when a
 * failed assertion ends the test before its cleanup. */
static int start_memcached(testsrv *s)
{
    if (testsrv_mkdir(s, "cli-mc") != 0)
        return -1;
    s->port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", s->port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "16", "-u", "root",
                    NULL};
    if (geteuid() != 0)
        argv[9] = NULL;
    const char *path = testsrv_which("memcached");
    if (!path)
        return -1;
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/memcached.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(path, argv);
        _exit(127);
    }
    s->pid = pid;
    return testsrv_wait_tcp(s, s->port, 5000);
}

START_TEST(copy_memcached)
{
    testsrv mc;
    memset(&mc, 0, sizeof mc);
    ck_assert_int_eq(start_memcached(&mc), 0);
    char url[64];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d", mc.port);
    const char *a = sqlite_url("from.db");
    EXPECT(0, "cache", "set", "m:1", "one", "--ttl", "3600", "--cache", a);
    EXPECT(0, "cache", "set", "m:2", "two", "--cache", a);
    /* To memcached works ... */
    EXPECT(0, "cache", "copy", a, url);
    HAS(out, "copied 2, skipped-expired 0, failed 0");
    EXPECT(0, "cache", "get", "m:1", "--cache", url);
    ck_assert_str_eq(out, "one\n");
    EXPECT(0, "cache", "ping", "--cache", url);
    HAS(out, "PONG memcached");
    /* ... from memcached cannot: it cannot list keys. */
    EXPECT(1, "cache", "copy", url, sqlite_url("back.db"));
    HAS(err, "cannot list its keys");
    HAS(err, "memcached");
    EXPECT(1, "cache", "keys", "--cache", url);
    HAS(err, "cannot list its keys");
    testsrv_stop(&mc);
}
END_TEST
#endif

#if LLMC_HAVE_REDIS
START_TEST(copy_sqlite_to_redis)
{
    /* requirepass + ACL: the URL carries a password, which no output may
     * show. */
    redissrv rs;
    memset(&rs, 0, sizeof rs);
    ck_assert_int_eq(redissrv_start(&rs, REDISSRV_TCP), 0);
    const char *url = rs.url;
    ck_assert(strstr(url, REDISSRV_PASSWORD) != NULL);

    const char *a = sqlite_url("laptop.db");
    EXPECT(0, "cache", "set", "r:1", "one", "--ttl", "3600", "--cache", a);
    EXPECT(0, "cache", "set", "r:2", "two", "--cache", a);
    EXPECT(0, "complete", "-v", "--cache", a, "--model", "gpt-4o-mini", "--user", "to redis",
           "--mock-response", "from the laptop");
    EXPECT(0, "cache", "copy", a, url);
    HAS(out, "copied 3, skipped-expired 0, failed 0");
    HASNT(out, REDISSRV_PASSWORD);
    HAS(out, "***");
    EXPECT(0, "cache", "ttl", "r:1", "--cache", url);
    long t = strtol(out, NULL, 10);
    ck_assert_msg(t > 3000 && t <= 3600, "remaining ttl not kept: %ld", t);
    EXPECT(0, "cache", "ttl", "r:2", "--cache", url);
    ck_assert_str_eq(out, "-1\n");
    EXPECT(0, "complete", "-v", "--cache", url, "--model", "gpt-4o-mini", "--user", "to redis",
           "--mock-response", "from the laptop", "--text");
    HAS(err, "HIT");
    /* and back */
    EXPECT(0, "cache", "copy", url, sqlite_url("back.db"));
    HAS(out, "copied 3,");
    EXPECT(0, "cache", "stats", "--cache", url);
    HAS(out, "backend:       redis");
    HASNT(out, REDISSRV_PASSWORD);
    redissrv_stop(&rs);
}
END_TEST
#endif

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, mock_default_store_miss_then_hit);
    tcase_add_test(tc, provider_miss_then_hit);
    tcase_add_test(tc, responses_api);
    tcase_add_test(tc, request_file_and_stdin);
    tcase_add_test(tc, stream_miss_hit_and_text);
    tcase_add_test(tc, key_and_explain);
    tcase_add_test(tc, key_compares_two_requests);
    tcase_add_test(tc, embed_items);
    tcase_add_test(tc, errors_name_the_problem);
    tcase_add_test(tc, cache_subcommands);
    tcase_add_test(tc, copy_sqlite_to_sqlite);
    tcase_add_test(tc, terminal_status_and_progress);
    tcase_add_test(tc, docs_examples_run);
    tcase_add_test(tc, readme_main_job);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(tc, copy_memcached);
#endif
#if LLMC_HAVE_REDIS
    tcase_add_test(tc, copy_sqlite_to_redis);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
