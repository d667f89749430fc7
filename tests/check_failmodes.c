/* What the completion path does when the cache misbehaves, against real
 * servers: a stalled (SIGSTOP'ed) redis-server or memcached costs a
 * request one cache timeout (its read), never a second one for the store;
 * an answer is reported stored only when a store succeeded (memcached
 * unreachable, a read-only SQLite file); a SQLite file with overwritten
 * pages is noticed, counted, reported by ping and repaired by
 * llmc_cache_check; a stream that ended without finish_reason is never
 * stored. Assertions count backend operations, never time. The command
 * ($LLMCACHE_BIN) is run for its status line and `cache check`, and as
 * `llmcache serve` for the proxy's statuses, /metrics and /cache/ping. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client_test_util.h"
#include "llmc_config.h"
#if LLMC_HAVE_SQLITE
#include <sqlite3.h>
#endif
#include "support/testsrv.h"

#if LLMC_HAVE_CURL

static fp_server *srv;
static char base_v1[128];

static llmc_client *client_for(llmc_cache *c)
{
    const char *kv[] = {"openai.api_key", "sk-test-secret-123", "openai.api_base", base_v1,
                        "max_retries", "0", NULL};
    return tu_client(c, kv);
}

static void fp_up(void)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
}

static llmc_cache *open_ok(const char *url)
{
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &c, &e) == LLMC_OK, "%s: %s", url, e.msg);
    return c;
}

static llmc_stats stats_of(llmc_cache *c)
{
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    return s;
}

#define CHAT(content)                                                                      \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" content "\"}]}"

static llmc_response *chat(llmc_client *cl, const char *json)
{
    llmc_response *r = NULL;
    llmc_err e;
    llmc_status st = llmc_completion_json(cl, json, LLMC_ZSTR, &r, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", llmc_status_name(st), e.msg);
    return r;
}

/* Run the command; returns its exit status, stderr in *err (malloc'd). */
static int run_cli(char **err, const char *const *args)
{
    const char *bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin && access(bin, X_OK) == 0, "LLMCACHE_BIN not set or not executable");
    char path[] = "/tmp/llmc-fm-err-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32];
        int n = 0;
        argv[n++] = bin;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    off_t len = lseek(fd, 0, SEEK_END);
    *err = calloc(1, (size_t)len + 1);
    ck_assert_int_eq(pread(fd, *err, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ------------------------------------------------------------------ */
/* Stalled servers. */

/* The servers run from an unchecked fixture (in the parent process), so
 * the teardown resumes and stops them even when a test dies while one is
 * stopped. */
static testsrv redis_srv, mc_srv;
static int redis_port, mc_port;
static testsrv *paused_srv; /* the one the current test stops */

static void servers_up(void)
{
#if LLMC_HAVE_REDIS
    if (testsrv_mkdir(&redis_srv, "fm-redis") == 0) {
        redis_port = testsrv_free_port();
        char ports[16];
        snprintf(ports, sizeof ports, "%d", redis_port);
        char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", redis_srv.dir, NULL};
        if (testsrv_spawn(&redis_srv, argv) != 0 ||
            testsrv_wait_tcp(&redis_srv, redis_port, 10000) != 0)
            redis_port = 0;
    }
#endif
#if LLMC_HAVE_MEMCACHED
    if (testsrv_mkdir(&mc_srv, "fm-memcached") == 0) {
        mc_port = testsrv_free_port();
        char ports[16];
        snprintf(ports, sizeof ports, "%d", mc_port);
        char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", ports, "-U", "0", "-m", "16",
                        "-u", "root", NULL};
        if (geteuid() != 0)
            argv[9] = NULL; /* -u is only needed (and allowed) as root */
        if (testsrv_spawn(&mc_srv, argv) != 0 || testsrv_wait_tcp(&mc_srv, mc_port, 10000) != 0)
            mc_port = 0;
    }
#endif
}

static void servers_down(void)
{
    if (redis_srv.pid > 0)
        kill(redis_srv.pid, SIGCONT);
    if (mc_srv.pid > 0)
        kill(mc_srv.pid, SIGCONT);
    testsrv_stop(&redis_srv);
    testsrv_stop(&mc_srv);
}

/* After each test (in its process): never leave a server stopped. */
static void resume_server(void)
{
    if (paused_srv && paused_srv->pid > 0)
        kill(paused_srv->pid, SIGCONT);
    paused_srv = NULL;
    if (srv)
        fp_stop(srv);
    srv = NULL;
}

/* SIGSTOP is delivered asynchronously: wait until the server really is
 * stopped (state T in /proc), so no request of the test can still be
 * answered by it. */
static void stop_server(testsrv *t)
{
    ck_assert_int_eq(kill(t->pid, SIGSTOP), 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)t->pid);
    for (int i = 0; i < 10000; i++) {
        char buf[512] = "";
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')');
        if (p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
            return;
        usleep(1000);
    }
    ck_abort_msg("server %d did not stop", (int)t->pid);
}

/* One stalled-backend scenario over an open cache: a warm-up store, then
 * requests while the server is stopped, then recovery. */
static void stalled_scenario(llmc_cache *c)
{
    fp_up();
    llmc_client *cl = client_for(c);
    llmc_response *r = chat(cl, CHAT("before the stall"));
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);

    stop_server(paused_srv);
    llmc_cache_stats_reset(c);
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof req, CHAT("stalled %d"), i);
        r = chat(cl, req);
        ck_assert_int_eq(llmc_response_cache_hit(r), 0);
        ck_assert_int_eq(llmc_response_cache_stored(r), 0);
        llmc_response_free(r);
    }
    llmc_stats s = stats_of(c);
    /* One backend operation per request: the read, which failed. */
    ck_assert_uint_eq(s.get_count, 3);
    ck_assert_uint_eq(s.set_count, 0);
    ck_assert_uint_eq(s.stores_skipped, 3);
    ck_assert_uint_ge(s.errors, 3);

    /* A streamed miss: the same. */
    tu_chunks ch = {0};
    llmc_err e;
    ck_assert_int_eq(llmc_completion_stream_json(cl, CHAT("stalled stream"), LLMC_ZSTR,
                                                 tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    tu_chunks_free(&ch);
    /* Embeddings of three items: one read (the others are not tried once
     * it failed) and no store (three skipped). */
    ck_assert_int_eq(llmc_embedding_json(cl,
                                         "{\"model\":\"text-embedding-3-small\","
                                         "\"input\":[\"a\",\"b\",\"c\"]}",
                                         LLMC_ZSTR, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    s = stats_of(c);
    ck_assert_uint_eq(s.get_count, 5);
    ck_assert_uint_eq(s.set_count, 0);
    ck_assert_uint_eq(s.stores_skipped, 7);
    /* A soft read says MISS; with LLMC_ENTRY_REPORT it says why, and is
     * still counted as a miss. */
    llmc_lookup lk = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &lk), LLMC_MISS);
    llmc_status ls = llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT | LLMC_ENTRY_REPORT, &lk);
    ck_assert_msg(ls == LLMC_ETIMEDOUT || ls == LLMC_ECONN, "%s", llmc_status_name(ls));
    ck_assert_uint_eq(stats_of(c).misses, s.misses + 2);
    llmc_lookup_free(&lk);

    /* The server comes back: once a read succeeds (after the backend's
     * reconnect back-off), stores resume without a restart. */
    ck_assert_int_eq(kill(paused_srv->pid, SIGCONT), 0);
    int stored = 0;
    for (int i = 0; i < 300 && !stored; i++) {
        if (i)
            usleep(50 * 1000);
        char req[128];
        snprintf(req, sizeof req, CHAT("after %d"), i);
        r = chat(cl, req);
        stored = llmc_response_cache_stored(r);
        llmc_response_free(r);
        if (stored) {
            r = chat(cl, req);
            ck_assert_int_eq(llmc_response_cache_hit(r), 1);
            llmc_response_free(r);
        }
    }
    ck_assert_msg(stored, "stores did not resume after SIGCONT");
    llmc_client_free(cl);
}

#if LLMC_HAVE_REDIS
START_TEST(t_redis_stalled_one_timeout)
{
    ck_assert_msg(redis_port > 0, "redis-server did not start");
    int port = redis_port;
    paused_srv = &redis_srv;
    char url[160];
    /* A high breaker threshold: the breaker must not be what saves the
     * second timeout here. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?timeout_ms=300&breaker_threshold=1000",
             port);
    llmc_cache *c = open_ok(url);
    stalled_scenario(c);
    llmc_cache_close(c);
}
END_TEST
#endif

#if LLMC_HAVE_MEMCACHED
START_TEST(t_memcached_stalled_one_timeout)
{
    ck_assert_msg(mc_port > 0, "memcached did not start");
    int port = mc_port;
    paused_srv = &mc_srv;
    char url[160];
    snprintf(url, sizeof url,
             "memcached://127.0.0.1:%d?timeout_ms=300&breaker_threshold=1000", port);
    llmc_cache *c = open_ok(url);
    stalled_scenario(c);
    llmc_cache_close(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* "stored" only when stored. */

START_TEST(t_memcached_down_not_stored)
{
    fp_up();
    char url[160];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d?timeout_ms=300",
             testsrv_free_port());
    llmc_cache *c = open_ok(url);
    llmc_client *cl = client_for(c);
    llmc_response *r = chat(cl, CHAT("nobody listens"));
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    llmc_stats s = stats_of(c);
    ck_assert_uint_eq(s.sets, 0);
    llmc_client_free(cl);
    llmc_cache_close(c);

    /* The command's status line says so. */
    char *err = NULL;
    const char *args[] = {"complete", "-v", "--cache", url, "--model", "gpt-4o-mini",
                          "--user", "hi", "--mock-response", "hello", "--text", NULL};
    int rc = run_cli(&err, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "(not stored)") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "(stored)") == NULL, "%s", err);
    free(err);
}
END_TEST
#endif

#if LLMC_HAVE_SQLITE
static char ro_path[300];

static void ro_cleanup(void)
{
    if (ro_path[0]) {
        char *argv[] = {"chattr", "-i", ro_path, NULL};
        if (geteuid() == 0)
            testsrv_run(NULL, argv);
        chmod(ro_path, 0644);
        unlink(ro_path);
        ro_path[0] = 0;
    }
    if (srv)
        fp_stop(srv);
    srv = NULL;
}

/* Make a file read-only even for root (who ignores the mode bits). */
static void make_read_only(const char *path)
{
    if (geteuid() == 0) {
        char *argv[] = {"chattr", "+i", (char *)path, NULL};
        ck_assert_msg(testsrv_run(NULL, argv) == 0,
                      "chattr +i %s failed: running as root, the test needs chattr "
                      "(e2fsprogs) and a file system with the immutable attribute",
                      path);
    } else {
        ck_assert_int_eq(chmod(path, 0444), 0);
    }
}

START_TEST(t_read_only_sqlite_not_stored)
{
    fp_up();
    snprintf(ro_path, sizeof ro_path, "/tmp/llmc-fm-ro-%d.db", (int)getpid());
    char url[400];
    snprintf(url, sizeof url, "sqlite://%s?journal_mode=delete", ro_path);
    llmc_cache *c = open_ok(url);
    llmc_cache_close(c);
    make_read_only(ro_path);

    c = open_ok(url);
    llmc_client *cl = client_for(c);
    llmc_response *r = chat(cl, CHAT("read only"));
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    /* The raw API reports the real error. */
    ck_assert_int_ne(llmc_cache_set(c, "k", 1, "v", 1, 0), LLMC_OK);
    llmc_client_free(cl);
    llmc_cache_close(c);

    char *err = NULL;
    const char *args[] = {"complete", "-v", "--cache", url, "--model", "gpt-4o-mini",
                          "--user", "hi", "--mock-response", "hello", "--text", NULL};
    int rc = run_cli(&err, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "(not stored)") != NULL, "%s", err);
    free(err);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SQLite corruption. */

static char corrupt_dir[64];

static void corrupt_cleanup(void)
{
    if (corrupt_dir[0]) {
        char *argv[] = {"rm", "-rf", corrupt_dir, NULL};
        testsrv_run(NULL, argv);
        corrupt_dir[0] = 0;
    }
}

#define N_ENTRIES 200

static void key_of(int i, char *k, size_t n)
{
    snprintf(k, n, "ns:key-%03d", i);
}

/* Fill a file, then overwrite three pages in its middle with garbage. */
static void damaged_file(char *url, size_t n)
{
    snprintf(corrupt_dir, sizeof corrupt_dir, "/tmp/llmc-fm-corrupt-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(corrupt_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/c.db", corrupt_dir);
    snprintf(url, n, "sqlite://%s", path);
    llmc_cache *c = open_ok(url);
    char body[1200];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;
    for (int i = 0; i < N_ENTRIES; i++) {
        char k[32];
        key_of(i, k, sizeof k);
        ck_assert_int_eq(llmc_cache_put_entry(c, k, strlen(k), LLMC_CALL_RAW, body,
                                              strlen(body), 0, 0),
                         LLMC_OK);
    }
    llmc_cache_close(c); /* checkpoints the WAL into the file */
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_gt(size, 4096 * 40);
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 13);
    for (int p = 30; p < 33; p++)
        ck_assert_int_eq(pwrite(fd, junk, sizeof junk, (off_t)p * 4096), (ssize_t)sizeof junk);
    close(fd);
}

static int count_readable(llmc_cache *c)
{
    int ok = 0;
    for (int i = 0; i < N_ENTRIES; i++) {
        char k[32];
        key_of(i, k, sizeof k);
        llmc_lookup l = LLMC_LOOKUP_INIT;
        if (llmc_cache_get_entry(c, k, strlen(k), -1, LLMC_ENTRY_SOFT, &l) == LLMC_OK)
            ok++;
        llmc_lookup_free(&l);
    }
    return ok;
}

START_TEST(t_sqlite_corruption_seen_and_repaired)
{
    char url[160];
    damaged_file(url, sizeof url);
    llmc_cache *c = open_ok(url);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    int readable = count_readable(c);
    ck_assert_int_lt(readable, N_ENTRIES);
    ck_assert_int_gt(readable, N_ENTRIES / 2);
    llmc_stats s = stats_of(c);
    ck_assert_uint_ge(s.corrupt_reads, 1);
    ck_assert_uint_eq(s.storage_corrupt, 1);
    /* Ping now says what it saw. */
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "damaged"));

    llmc_check_result cr;
    ck_assert_int_eq(llmc_cache_check(c, 0, &cr, sizeof cr), LLMC_ECORRUPT);
    ck_assert_uint_eq(cr.damaged, 1);
    ck_assert_uint_eq(cr.repaired, 0);
    ck_assert_uint_ge(cr.problems, 1);
    ck_assert(cr.detail[0] != 0);

    ck_assert_int_eq(llmc_cache_check(c, LLMC_CHECK_REPAIR, &cr, sizeof cr), LLMC_OK);
    ck_assert_uint_eq(cr.repaired, 1);
    /* Every entry that could be read by key survives (and perhaps more:
     * a damaged index page hides rows the rebuild still finds). */
    ck_assert_uint_ge(cr.kept, (uint64_t)readable);
    ck_assert_uint_lt(cr.kept, N_ENTRIES);
    ck_assert_uint_ge(cr.unreadable, 1);
    readable = (int)cr.kept;
    /* Healthy again, on the same handle: every kept entry reads back, the
     * rest are plain misses, and new entries can be written. */
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    ck_assert_uint_eq(stats_of(c).storage_corrupt, 0);
    llmc_cache_stats_reset(c);
    ck_assert_int_eq(count_readable(c), readable);
    ck_assert_uint_eq(stats_of(c).corrupt_reads, 0);
    ck_assert_int_eq(llmc_cache_set(c, "ns:new", 6, "v", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_check(c, 0, &cr, sizeof cr), LLMC_OK);
    ck_assert_uint_eq(cr.damaged, 0);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_cli_cache_check)
{
    char url[160];
    damaged_file(url, sizeof url);
    char *err = NULL;
    const char *check[] = {"cache", "check", "--cache", url, NULL};
    int rc = run_cli(&err, check);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "--repair") != NULL, "%s", err);
    free(err);
    const char *repair[] = {"cache", "check", "--repair", "--cache", url, NULL};
    rc = run_cli(&err, repair);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(err);
    rc = run_cli(&err, check);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(err);
    /* Not every backend has a storage check: a clear error. */
    const char *local[] = {"cache", "check", "--cache", "local://", NULL};
    rc = run_cli(&err, local);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "no storage check") != NULL, "%s", err);
    free(err);
}
END_TEST
#endif

/* ------------------------------------------------------------------ */
/* Streams without finish_reason. */

#define SSE_CHUNK(delta, fin)                                                                \
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"    \
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fin \
    "}]}\n\n"

START_TEST(t_stream_without_finish_reason_not_stored)
{
    fp_up();
    llmc_cache *c = open_ok("local://");
    llmc_client *cl = client_for(c);
    const char *req = CHAT("unfinished");
    /* [DONE] arrives, but no choice ever said it finished. */
    fp_push_stream(srv, "text/event-stream",
                   SSE_CHUNK("{\"role\":\"assistant\"}", "null")
                   SSE_CHUNK("{\"content\":\"half an ans\"}", "null") "data: [DONE]\n\n");
    tu_chunks ch = {0};
    llmc_response *r = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(tu_nchunks(&ch), 2);
    ck_assert_int_eq(llmc_response_cache_stored(r), 0);
    llmc_response_free(r);
    tu_chunks_free(&ch);
    /* Not served from the cache later: the next call goes upstream. */
    r = chat(cl, req);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(fp_count(srv), 2);
    llmc_response_free(r);
    /* The same stream with a finish_reason is stored and replayed. */
    const char *req2 = CHAT("finished");
    fp_push_stream(srv, "text/event-stream",
                   SSE_CHUNK("{\"role\":\"assistant\"}", "null")
                   SSE_CHUNK("{\"content\":\"a whole answer\"}", "null")
                   SSE_CHUNK("{}", "\"stop\"") "data: [DONE]\n\n");
    ck_assert_int_eq(llmc_completion_stream_json(cl, req2, LLMC_ZSTR, tu_chunk_cb, &ch, &r, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_stored(r), 1);
    llmc_response_free(r);
    tu_chunks_free(&ch);
    r = chat(cl, req2);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    json_object *o = tu_parse(llmc_response_text(r, NULL));
    ck_assert_str_eq(tu_str(o, "choices.0.finish_reason"), "stop");
    json_object_put(o);
    llmc_response_free(r);
    llmc_client_free(cl);
    llmc_cache_close(c);
    fp_stop(srv);
    srv = NULL;
}
END_TEST

/* ------------------------------------------------------------------ */
/* The proxy (`llmcache serve`) over the same faults, through curl. */

#if LLMC_HAVE_MHD
static testsrv px;
static int px_port;

static void proxy_up(const char *cache_url)
{
    const char *bin = getenv("LLMCACHE_BIN");
    ck_assert_msg(bin && access(bin, X_OK) == 0, "LLMCACHE_BIN not set or not executable");
    if (!srv)
        fp_up();
    ck_assert_int_eq(testsrv_mkdir(&px, "fm-proxy"), 0);
    px_port = testsrv_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", px_port);
    setenv("OPENAI_API_KEY", "sk-test-secret-123", 1);
    setenv("OPENAI_BASE_URL", base_v1, 1);
    char *argv[] = {(char *)bin, "serve", "--listen", listen, "--cache", (char *)cache_url,
                    NULL};
    ck_assert_int_eq(testsrv_spawn(&px, argv), 0);
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    ck_assert_msg(testsrv_wait_tcp(&px, px_port, 10000) == 0, "llmcache serve did not start");
}

static void proxy_down(void)
{
    if (px.pid > 0)
        testsrv_stop(&px);
    memset(&px, 0, sizeof px);
}

typedef struct presp {
    int status;
    char *headers, *body;
} presp;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)
        b[0] = 0;
    fclose(f);
    return b;
}

/* One request with curl; body NULL for GET. */
static presp preq(const char *method, const char *path, const char *body)
{
    char url[128], hfile[300], bfile[300], dfile[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", px_port, path);
    snprintf(hfile, sizeof hfile, "%s/h", px.dir);
    snprintf(bfile, sizeof bfile, "%s/b", px.dir);
    snprintf(dfile, sizeof dfile, "@%s/d", px.dir);
    if (body) {
        FILE *f = fopen(dfile + 1, "wb");
        ck_assert_ptr_nonnull(f);
        fputs(body, f);
        fclose(f);
    }
    char *argv[] = {"curl", "-s", "-N", "-X", (char *)method, "-D", hfile, "-o", bfile,
                    "--max-time", "60", "-H", "Content-Type: application/json",
                    body ? "--data-binary" : NULL, dfile, url, NULL};
    if (!body) {
        argv[13] = url;
        argv[14] = NULL;
    }
    ck_assert_int_eq(testsrv_run(NULL, argv), 0);
    presp r;
    r.headers = read_all(hfile);
    r.body = read_all(bfile);
    r.status = atoi(strchr(r.headers, ' ') ? strchr(r.headers, ' ') + 1 : "0");
    return r;
}

static void presp_free(presp *r)
{
    free(r->headers);
    free(r->body);
}

/* x-llmcache-status of a response ("" if none). */
static const char *cstatus(const presp *r)
{
    static char v[64];
    v[0] = 0;
    const char *h = strcasestr(r->headers, "\nx-llmcache-status:");
    if (h) {
        h += strlen("\nx-llmcache-status:");
        while (*h == ' ')
            h++;
        size_t n = strcspn(h, "\r\n");
        snprintf(v, sizeof v, "%.*s", (int)n, h);
    }
    return v;
}

/* A counter from /metrics (-1 if absent). */
static long long metric_value(const char *name)
{
    presp r = preq("GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    char pat[160];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r.body, pat);
    long long v = p ? atoll(p + strlen(pat)) : -1;
    presp_free(&r);
    return v;
}

#define PCHAT(text, extra)                                                                 \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"" text      \
    "\"}]" extra "}"

static void px_teardown(void)
{
    resume_server();
    proxy_down();
#if LLMC_HAVE_SQLITE
    corrupt_cleanup();
#endif
}

#if LLMC_HAVE_MEMCACHED
START_TEST(t_proxy_memcached_down_says_nostore)
{
    char url[160];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d?timeout_ms=300", testsrv_free_port());
    proxy_up(url);
    for (int i = 0; i < 2; i++) {
        presp r = preq("POST", "/v1/chat/completions", PCHAT("proxy, memcached down", ""));
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strcmp(cstatus(&r), "MISS-NOSTORE") == 0, "status %s", cstatus(&r));
        presp_free(&r);
    }
    /* A refresh that could not store does not claim it did either. */
    presp r = preq("POST", "/v1/chat/completions",
                   PCHAT("proxy, memcached down", ",\"cache\":{\"no-cache\":true}"));
    ck_assert_msg(strcmp(cstatus(&r), "BYPASS") == 0, "status %s", cstatus(&r));
    presp_free(&r);
    r = preq("POST", "/v1/embeddings",
             "{\"model\":\"text-embedding-3-small\",\"input\":[\"x\",\"y\"]}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strcmp(cstatus(&r), "MISS-NOSTORE") == 0, "status %s", cstatus(&r));
    presp_free(&r);
    ck_assert_int_eq(metric_value("llmcache_backend_operations_total{op=\"set\",result=\"ok\"}"),
                     0);
}
END_TEST
#endif

#if LLMC_HAVE_REDIS
START_TEST(t_proxy_redis_stalled_one_timeout)
{
    ck_assert_msg(redis_port > 0, "redis-server did not start");
    paused_srv = &redis_srv;
    char url[160];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?timeout_ms=300&breaker_threshold=1000",
             redis_port);
    proxy_up(url);
    presp r = preq("POST", "/v1/chat/completions", PCHAT("proxy warm-up", ""));
    ck_assert_msg(strcmp(cstatus(&r), "MISS") == 0, "status %s", cstatus(&r));
    presp_free(&r);
    long long gets0 = metric_value("llmcache_backend_get_latency_seconds_count");
    long long sets0 = metric_value("llmcache_backend_set_latency_seconds_count");
    ck_assert_int_eq(sets0, 1);
    stop_server(paused_srv);
    r = preq("POST", "/v1/chat/completions", PCHAT("proxy stalled 1", ""));
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strcmp(cstatus(&r), "MISS-NOSTORE") == 0, "status %s", cstatus(&r));
    presp_free(&r);
    r = preq("POST", "/v1/chat/completions", PCHAT("proxy stalled 2", ",\"stream\":true"));
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "[DONE]"));
    presp_free(&r);
    /* One backend read per request, no store attempted. */
    ck_assert_int_eq(metric_value("llmcache_backend_stores_skipped_total"), 2);
    ck_assert_int_eq(metric_value("llmcache_backend_get_latency_seconds_count"), gets0 + 2);
    ck_assert_int_eq(metric_value("llmcache_backend_set_latency_seconds_count"), sets0);
    ck_assert_int_eq(kill(paused_srv->pid, SIGCONT), 0);
}
END_TEST
#endif

#if LLMC_HAVE_SQLITE
START_TEST(t_proxy_sqlite_corrupt_reported)
{
    /* Damage the key index's root page: every lookup by key then fails
     * with SQLITE_CORRUPT. */
    char url[160];
    snprintf(corrupt_dir, sizeof corrupt_dir, "/tmp/llmc-fm-pxc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(corrupt_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/c.db", corrupt_dir);
    snprintf(url, sizeof url, "sqlite://%s", path);
    llmc_cache *c = open_ok(url);
    for (int i = 0; i < 50; i++) {
        char k[32];
        key_of(i, k, sizeof k);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "v", 1, 0), LLMC_OK);
    }
    llmc_cache_close(c);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT rootpage FROM sqlite_master WHERE type = "
                                        "'index' AND tbl_name = 'llmc_entries' AND sql IS NULL",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int root = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    ck_assert_int_gt(root, 1);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    ck_assert_int_eq(pwrite(fd, junk, sizeof junk, (off_t)(root - 1) * 4096), 4096);
    close(fd);

    proxy_up(url);
    presp r = preq("GET", "/cache/ping", NULL);
    ck_assert_int_eq(r.status, 200); /* nothing seen yet */
    presp_free(&r);
    ck_assert_int_eq(metric_value("llmcache_backend_storage_corrupt"), 0);
    r = preq("POST", "/v1/chat/completions", PCHAT("proxy over a damaged file", ""));
    ck_assert_int_eq(r.status, 200); /* the cache never fails a request */
    presp_free(&r);
    ck_assert_int_ge(metric_value("llmcache_backend_corrupt_reads_total"), 1);
    ck_assert_int_eq(metric_value("llmcache_backend_storage_corrupt"), 1);
    r = preq("GET", "/cache/ping", NULL);
    ck_assert_int_eq(r.status, 200); /* the proxy still serves */
    ck_assert_msg(strstr(r.body, "\"cache\":\"corrupt\"") && strstr(r.body, "--repair"), "%s",
                  r.body);
    presp_free(&r);
    /* A second damaged read: counted, not logged again. */
    r = preq("POST", "/v1/chat/completions", PCHAT("proxy over a damaged file, again", ""));
    ck_assert_int_eq(r.status, 200);
    presp_free(&r);
    ck_assert_int_ge(metric_value("llmcache_backend_corrupt_reads_total"), 2);
    char log[400];
    snprintf(log, sizeof log, "%s/%s.log", px.dir, px.name);
    char *text = read_all(log);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "reports damaged storage")); p++)
        n++;
    ck_assert_msg(n == 1, "logged %d times: %s", n, text);
    free(text);
}
END_TEST
#endif
#endif /* LLMC_HAVE_MHD */

static Suite *suite(void)
{
    Suite *s = suite_create("failmodes");
    TCase *stall = tcase_create("stalled");
    tcase_add_unchecked_fixture(stall, servers_up, servers_down);
    tcase_add_checked_fixture(stall, NULL, resume_server);
    tcase_set_timeout(stall, 120);
#if LLMC_HAVE_REDIS
    tcase_add_test(stall, t_redis_stalled_one_timeout);
#endif
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(stall, t_memcached_stalled_one_timeout);
    tcase_add_test(stall, t_memcached_down_not_stored);
#endif
    suite_add_tcase(s, stall);
#if LLMC_HAVE_SQLITE
    TCase *ro = tcase_create("read_only");
    tcase_add_checked_fixture(ro, NULL, ro_cleanup);
    tcase_add_test(ro, t_read_only_sqlite_not_stored);
    suite_add_tcase(s, ro);
    TCase *cor = tcase_create("corruption");
    tcase_add_checked_fixture(cor, NULL, corrupt_cleanup);
    tcase_set_timeout(cor, 120);
    tcase_add_test(cor, t_sqlite_corruption_seen_and_repaired);
    tcase_add_test(cor, t_cli_cache_check);
    suite_add_tcase(s, cor);
#endif
#if LLMC_HAVE_MHD
    TCase *pxc = tcase_create("proxy");
    tcase_add_unchecked_fixture(pxc, servers_up, servers_down);
    tcase_add_checked_fixture(pxc, NULL, px_teardown);
    tcase_set_timeout(pxc, 120);
#if LLMC_HAVE_MEMCACHED
    tcase_add_test(pxc, t_proxy_memcached_down_says_nostore);
#endif
#if LLMC_HAVE_REDIS
    tcase_add_test(pxc, t_proxy_redis_stalled_one_timeout);
#endif
#if LLMC_HAVE_SQLITE
    tcase_add_test(pxc, t_proxy_sqlite_corrupt_reported);
#endif
    suite_add_tcase(s, pxc);
#endif
    TCase *st = tcase_create("streams");
    tcase_add_test(st, t_stream_without_finish_reason_not_stored);
    suite_add_tcase(s, st);
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

#else /* !LLMC_HAVE_CURL */

int main(void)
{
    return 77;
}

#endif
