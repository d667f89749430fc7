/* SQLite backend against real files in a private temporary directory. */
#include "llmcache/llmcache.h"
#include "support/testsrv.h"

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static testsrv dir; /* only its directory is used */
static char path[512];

static void tmp_up(void)
{
    ck_assert_int_eq(testsrv_mkdir(&dir, "sqlite"), 0);
    snprintf(path, sizeof path, "%s/cache.db", dir.dir);
}

static void tmp_down(void)
{
    testsrv_stop(&dir);
}

static llmc_cache *open_q(const char *query)
{
    char u[1024];
    snprintf(u, sizeof u, "sqlite://%s%s", path, query ? query : "");
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(u, NULL, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", u, e.msg);
    return c;
}

static llmc_status get_st(llmc_cache *c, const char *k)
{
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, k, strlen(k), &b);
    llmc_buf_free(&b);
    return st;
}

static void expect_value(llmc_cache *c, const char *k, const char *v)
{
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, k, strlen(k), &b);
    ck_assert_msg(st == LLMC_OK, "get %s: %s (%s)", k, llmc_status_name(st), llmc_cache_errmsg(c));
    ck_assert_uint_eq(b.len, strlen(v));
    ck_assert(memcmp(b.data, v, b.len) == 0);
    llmc_buf_free(&b);
}

static int64_t raw_count(const char *sql)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* ------------------------------------------------------------------ */

START_TEST(test_roundtrip_and_persistence)
{
    llmc_cache *c = open_q(NULL);
    ck_assert(llmc_cache_caps(c) & LLMC_CAP_PERSISTENT);
    ck_assert_int_eq(llmc_cache_set(c, "k\0bin", 5, "v\0al", 4, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "a", 1, "1", 1, LLMC_TTL_NEVER), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "a", 1, "22", 2, LLMC_TTL_NEVER), LLMC_OK);
    expect_value(c, "a", "22");
    ck_assert_int_eq(get_st(c, "k"), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_exists(c, "a", 1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, "a", 1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(c, "a", 1), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_set(c, "b", 1, "", 0, LLMC_TTL_NEVER), LLMC_OK);
    llmc_cache_close(c);

    c = open_q(NULL); /* survives the handle */
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "k\0bin", 5, &b), LLMC_OK);
    ck_assert_uint_eq(b.len, 4);
    ck_assert(memcmp(b.data, "v\0al", 4) == 0);
    ck_assert_int_eq(llmc_cache_get(c, "b", 1, &b), LLMC_OK);
    ck_assert_uint_eq(b.len, 0);
    llmc_buf_free(&b);
    llmc_cache_close(c);

    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    ck_assert_int_eq(raw_count("PRAGMA user_version"), 1);
}
END_TEST

START_TEST(test_expiry_and_ttl)
{
    llmc_cache *c = open_q(NULL);
    ck_assert_int_eq(llmc_cache_set(c, "short", 5, "s", 1, 300), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "long", 4, "l", 1, 3600 * 1000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "never", 5, "n", 1, LLMC_TTL_NEVER), LLMC_OK);
    int64_t t = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, "long", 4, &t), LLMC_OK);
    ck_assert_int_gt(t, 3500 * 1000);
    ck_assert_int_le(t, 3600 * 1000);
    ck_assert_int_eq(llmc_cache_ttl(c, "never", 5, &t), LLMC_OK);
    ck_assert_int_eq(t, -1);
    ck_assert_int_eq(llmc_cache_ttl(c, "nope", 4, &t), LLMC_MISS);
    usleep(500 * 1000);
    ck_assert_int_eq(get_st(c, "short"), LLMC_MISS); /* expired = miss */
    ck_assert_int_eq(llmc_cache_exists(c, "short", 5), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ttl(c, "short", 5, &t), LLMC_MISS);
    expect_value(c, "long", "l");
    expect_value(c, "never", "n");

    /* expired rows are purged as writes go on */
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "exp%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "x", 1, 100), LLMC_OK);
    }
    usleep(300 * 1000);
    ck_assert_int_ge(raw_count("SELECT count(*) FROM llmc_entries"), 21);
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "w%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "x", 1, 0), LLMC_OK);
    }
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries WHERE expires_at > 0 AND "
                               "expires_at < strftime('%s','now') * 1000"),
                     0);
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries"), 42);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_lru_max_entries)
{
    llmc_cache *c = open_q("?max_entries=3");
    ck_assert_int_eq(llmc_cache_set(c, "a", 1, "A", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "b", 1, "B", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "c", 1, "C", 1, 0), LLMC_OK);
    expect_value(c, "a", "A"); /* a is now more recent than b */
    ck_assert_int_eq(llmc_cache_set(c, "d", 1, "D", 1, 0), LLMC_OK);
    ck_assert_int_eq(get_st(c, "b"), LLMC_MISS); /* least recently used went */
    expect_value(c, "a", "A");
    expect_value(c, "c", "C");
    expect_value(c, "d", "D");
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "n%d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "x", 1, 0), LLMC_OK);
    }
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries"), 3);
    ck_assert_int_eq(raw_count("SELECT entries FROM llmc_totals"), 3);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_lru_max_bytes)
{
    /* size of an entry = key + value bytes */
    llmc_cache *c = open_q("?max_bytes=1000");
    char v[300];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i); /* 2 + 300 bytes */
        ck_assert_int_eq(llmc_cache_set(c, k, 2, v, sizeof v, 0), LLMC_OK);
    }
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "k0", 2, &b), LLMC_OK); /* k1 is now the oldest */
    ck_assert_int_eq(llmc_cache_set(c, "k3", 2, v, sizeof v, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k1", 2, &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, "k0", 2, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k2", 2, &b), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k3", 2, &b), LLMC_OK);
    ck_assert_int_le(raw_count("SELECT bytes FROM llmc_totals"), 1000);
    ck_assert_int_eq(raw_count("SELECT bytes FROM llmc_totals"),
                     raw_count("SELECT sum(length(key) + length(value)) FROM llmc_entries"));
    /* one entry larger than the whole store: refused, nothing written */
    char *big = malloc(2000);
    memset(big, 'b', 2000);
    ck_assert_int_eq(llmc_cache_set(c, "big", 3, big, 2000, 0), LLMC_ETOOBIG);
    ck_assert_int_eq(llmc_cache_get(c, "big", 3, &b), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get(c, "k0", 2, &b), LLMC_OK);
    free(big);
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

START_TEST(test_not_a_database)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const char junk[] = "this is not a database, it is a text file that must stay as it is\n"
                        "...............................................................\n";
    ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    llmc_cache *c = NULL;
    llmc_err e;
    char u[1200];
    snprintf(u, sizeof u, "sqlite://%s", path);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_ECORRUPT);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a SQLite database"));
    /* never overwritten */
    char back[sizeof junk];
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(read(fd, back, sizeof back), (ssize_t)sizeof junk);
    close(fd);
    ck_assert(memcmp(back, junk, sizeof junk) == 0);
}
END_TEST

START_TEST(test_newer_schema_and_foreign_db)
{
    llmc_cache *c = open_q(NULL);
    ck_assert_int_eq(llmc_cache_set(c, "a", 1, "A", 1, 0), LLMC_OK);
    llmc_cache_close(c);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    llmc_err e;
    char u[1200];
    snprintf(u, sizeof u, "sqlite://%s", path);
    c = NULL;
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_EVERSION);
    ck_assert_ptr_nonnull(strstr(e.msg, "schema version 7"));
    ck_assert_int_eq(raw_count("PRAGMA user_version"), 7); /* untouched */
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries"), 1);

    /* some other application's database */
    char other[540];
    snprintf(other, sizeof other, "%s/other.db", dir.dir);
    ck_assert_int_eq(sqlite3_open(other, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE users(id, name)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    snprintf(u, sizeof u, "sqlite://%s", other);
    ck_assert_int_eq(llmc_cache_open(u, NULL, &c, &e), LLMC_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(e.msg, "not an llmcache database"));
}
END_TEST

START_TEST(test_memory_and_relative_path)
{
    llmc_cache *c = NULL, *c2 = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_cache_open("sqlite://:memory:", NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_open("sqlite://:memory:", NULL, &c2, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "m", 1, "M", 1, 0), LLMC_OK);
    expect_value(c, "m", "M");
    ck_assert_int_eq(get_st(c2, "m"), LLMC_MISS); /* each :memory: handle is its own */
    llmc_cache_close(c2);
    llmc_cache_close(c);

    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir.dir), 0);
    ck_assert_int_eq(mkdir("sub", 0700), 0);
    ck_assert_int_eq(llmc_cache_open("sqlite://sub/rel.db", NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "r", 1, "R", 1, 0), LLMC_OK);
    llmc_cache_close(c);
    ck_assert_int_eq(access("sub/rel.db", F_OK), 0);
    ck_assert_int_eq(chdir(cwd), 0);

    /* by type name with a path option */
    llmc_options *o = llmc_options_new();
    char p2[600];
    snprintf(p2, sizeof p2, "%s/typed.db", dir.dir);
    llmc_options_set(o, "path", p2);
    ck_assert_int_eq(llmc_cache_open_type("sqlite", o, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "t", 1, "T", 1, 0), LLMC_OK);
    llmc_cache_close(c);
    llmc_options_free(o);
    ck_assert_int_eq(access(p2, F_OK), 0);

    /* missing directory: a clear error naming the path */
    ck_assert_int_eq(llmc_cache_open("sqlite:///nonexistent-dir-llmc/x.db", NULL, &c, &e),
                     LLMC_EIO);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent-dir-llmc/x.db"));
    ck_assert_int_eq(llmc_cache_open("sqlite://?busy_timeout_ms=5", NULL, &c, &e), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_open("sqlite:///tmp/x.db?synchronous=sometimes", NULL, &c, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "synchronous"));
}
END_TEST

START_TEST(test_default_store_path)
{
    char xdg[300];
    snprintf(xdg, sizeof xdg, "%s/xdg", dir.dir);
    setenv("XDG_CACHE_HOME", xdg, 1);
    unsetenv("LLMCACHE_URL");
    llmc_buf u = LLMC_BUF_INIT;
    llmc_err e;
    ck_assert_int_eq(llmc_default_cache_url(&u, &e), LLMC_OK);
    char want[700];
    snprintf(want, sizeof want, "sqlite://%s/llmcache/cache.db", xdg);
    ck_assert_str_eq(u.data, want);
    struct stat sb;
    snprintf(want, sizeof want, "%s/llmcache", xdg);
    ck_assert_int_eq(stat(want, &sb), 0); /* created on first use */
    ck_assert(S_ISDIR(sb.st_mode));
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open(u.data, NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "d", 1, "D", 1, 0), LLMC_OK);
    llmc_cache_close(c);
    snprintf(want, sizeof want, "%s/llmcache/cache.db", xdg);
    ck_assert_int_eq(access(want, F_OK), 0);

    /* without XDG_CACHE_HOME: ~/.cache */
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", dir.dir, 1);
    ck_assert_int_eq(llmc_default_cache_url(&u, &e), LLMC_OK);
    snprintf(want, sizeof want, "sqlite://%s/.cache/llmcache/cache.db", dir.dir);
    ck_assert_str_eq(u.data, want);

    /* $LLMCACHE_URL wins */
    setenv("LLMCACHE_URL", "local://?max_entries=5", 1);
    ck_assert_int_eq(llmc_default_cache_url(&u, &e), LLMC_OK);
    ck_assert_str_eq(u.data, "local://?max_entries=5");
    unsetenv("LLMCACHE_URL");
    llmc_buf_free(&u);
}
END_TEST

static int scan_collect(void *ud, const char *k, size_t kl)
{
    llmc_buf *b = ud;
    llmc_buf_append(b, k, kl);
    llmc_buf_append(b, "|", 1);
    return 0;
}

START_TEST(test_scan_and_namespace_flush)
{
    llmc_cache *c = open_q(NULL);
    const char *keys[] = {"ns1:b", "ns1:a", "ns10:x", "ns2:a", "other"};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(llmc_cache_set(c, keys[i], strlen(keys[i]), "v", 1, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "ns1:gone", 8, "v", 1, 1), LLMC_OK);
    usleep(20 * 1000);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_scan(c, "ns1:", 4, scan_collect, &b), LLMC_OK);
    ck_assert_str_eq(b.data, "ns1:a|ns1:b|");
    llmc_buf_clear(&b);
    ck_assert_int_eq(llmc_cache_scan(c, "", 0, scan_collect, &b), LLMC_OK);
    ck_assert_str_eq(b.data, "ns10:x|ns1:a|ns1:b|ns2:a|other|");
    /* many keys: scan pages through all of them */
    for (int i = 0; i < 600; i++) {
        char k[16];
        snprintf(k, sizeof k, "p:%04d", i);
        ck_assert_int_eq(llmc_cache_set(c, k, strlen(k), "v", 1, 0), LLMC_OK);
    }
    llmc_buf_clear(&b);
    ck_assert_int_eq(llmc_cache_scan(c, "p:", 2, scan_collect, &b), LLMC_OK);
    ck_assert_uint_eq(b.len, 600 * 7);

    uint64_t deleted = 0;
    ck_assert_int_eq(llmc_cache_flush(c, "ns1", &deleted), LLMC_OK);
    /* a and b, plus the expired one unless the writes above purged it */
    ck_assert_uint_ge(deleted, 2);
    ck_assert_uint_le(deleted, 3);
    ck_assert_int_eq(get_st(c, "ns1:a"), LLMC_MISS);
    expect_value(c, "ns10:x", "v");
    expect_value(c, "ns2:a", "v");
    expect_value(c, "other", "v");
    llmc_buf_free(&b);
    llmc_cache_close(c);
}
END_TEST

static llmc_cache *shared;
static void *thread_rw(void *arg)
{
    long id = (long)arg, bad = 0;
    for (int i = 0; i < 200; i++) {
        char k[32], v[32];
        int kl = snprintf(k, sizeof k, "t%ld-%d", id, i);
        int vl = snprintf(v, sizeof v, "v%d", i);
        if (llmc_cache_set(shared, k, (size_t)kl, v, (size_t)vl, 0) != LLMC_OK)
            bad++;
        llmc_buf b = LLMC_BUF_INIT;
        if (llmc_cache_get(shared, k, (size_t)kl, &b) != LLMC_OK || b.len != (size_t)vl)
            bad++;
        llmc_buf_free(&b);
    }
    return (void *)bad;
}

START_TEST(test_threads_share_one_handle)
{
    shared = open_q("?max_entries=100000");
    ck_assert(llmc_cache_caps(shared) & LLMC_CAP_THREAD_SAFE);
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_rw, (void *)i);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (long)r;
    }
    ck_assert_int_eq(bad, 0);
    llmc_cache_close(shared);
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries"), 800);
}
END_TEST

/* Forked writers and readers on one file: no "database is locked" reaches
 * a caller and no write is lost. */
#define WRITERS 4
#define READERS 2
#define PER_WRITER 150

static int child_writer(int id)
{
    char u[1200];
    snprintf(u, sizeof u, "sqlite://%s?busy_timeout_ms=20000", path);
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(u, NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "writer %d open: %s\n", id, e.msg);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < PER_WRITER; i++) {
        char k[32], v[64];
        int kl = snprintf(k, sizeof k, "w%d-%d", id, i);
        int vl = snprintf(v, sizeof v, "value of writer %d item %d", id, i);
        llmc_status st = i % 10 == 9
                             ? llmc_cache_mset(c, 1, &(llmc_kv){k, (size_t)kl, v, (size_t)vl, 0})
                             : llmc_cache_set(c, k, (size_t)kl, v, (size_t)vl, 0);
        if (st != LLMC_OK) {
            fprintf(stderr, "writer %d set: %s\n", id, llmc_cache_errmsg(c));
            bad = 1;
        }
    }
    llmc_cache_close(c);
    return bad;
}

static int child_reader(int id)
{
    char u[1200];
    snprintf(u, sizeof u, "sqlite://%s?busy_timeout_ms=20000", path);
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(u, NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "reader %d open: %s\n", id, e.msg);
        return 1;
    }
    int bad = 0;
    llmc_buf b = LLMC_BUF_INIT;
    for (int i = 0; i < 400; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "w%d-%d", i % WRITERS, (i * 7) % PER_WRITER);
        llmc_status st = llmc_cache_get(c, k, (size_t)kl, &b);
        if (st != LLMC_OK && st != LLMC_MISS) {
            fprintf(stderr, "reader %d get: %s\n", id, llmc_cache_errmsg(c));
            bad = 1;
        }
        if (strstr(llmc_cache_errmsg(c), "locked"))
            bad = 1;
    }
    llmc_buf_free(&b);
    llmc_cache_close(c);
    return bad;
}

START_TEST(test_processes_share_one_file)
{
    pid_t pids[WRITERS + READERS];
    for (int i = 0; i < WRITERS + READERS; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0)
            _exit(i < WRITERS ? child_writer(i) : child_reader(i));
    }
    for (int i = 0; i < WRITERS + READERS; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    /* no write lost */
    llmc_cache *c = open_q(NULL);
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < PER_WRITER; i++) {
            char k[32], v[64];
            snprintf(k, sizeof k, "w%d-%d", w, i);
            snprintf(v, sizeof v, "value of writer %d item %d", w, i);
            expect_value(c, k, v);
        }
    }
    llmc_cache_close(c);
    ck_assert_int_eq(raw_count("SELECT count(*) FROM llmc_entries"), WRITERS * PER_WRITER);
}
END_TEST

static Suite *sqlite_suite(void)
{
    Suite *s = suite_create("sqlite");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, tmp_up, tmp_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_and_persistence);
    tcase_add_test(tc, test_expiry_and_ttl);
    tcase_add_test(tc, test_lru_max_entries);
    tcase_add_test(tc, test_lru_max_bytes);
    tcase_add_test(tc, test_not_a_database);
    tcase_add_test(tc, test_newer_schema_and_foreign_db);
    tcase_add_test(tc, test_memory_and_relative_path);
    tcase_add_test(tc, test_default_store_path);
    tcase_add_test(tc, test_scan_and_namespace_flush);
    tcase_add_test(tc, test_threads_share_one_handle);
    tcase_add_test(tc, test_processes_share_one_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sqlite_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
