/* SQLite backend benchmark: llmcache get/set through the public API
 * against raw sqlite3 prepared statements (SELECT / INSERT OR REPLACE) on
 * a file with the same pragmas (WAL, synchronous=NORMAL, busy timeout),
 * same keys, same 1.5 KB values, measured in the same run.
 * Target (the backend must add little to raw SQLite): >= 0.8x the raw
 * loop for get and set.
 * Usage: bench_sqlite [ops-per-measurement, default 10000] */
#include "llmcache/llmcache.h"
#include "support/testsrv.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 1000
#define VLEN 1536

static char keys[NKEYS][80];
static size_t klens[NKEYS];
static char value[VLEN];
static long nops = 10000;
#define REPS 7 /* alternating raw/llmcache runs; best of each: the machine is noisy */

static double now_s(void)
{
    return (double)llmc_mono_ns() / 1e9;
}

typedef struct raw {
    sqlite3 *db;
    sqlite3_stmt *get, *put;
} raw;

static void raw_open(raw *r, const char *path)
{
    if (sqlite3_open(path, &r->db) != SQLITE_OK)
        abort();
    sqlite3_busy_timeout(r->db, 5000);
    sqlite3_exec(r->db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL)",
                 NULL, NULL, NULL);
    if (sqlite3_prepare_v2(r->db, "SELECT value FROM kv WHERE key = ?1", -1, &r->get, NULL) ||
        sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO kv(key, value) VALUES (?1, ?2)", -1,
                           &r->put, NULL))
        abort();
}

static double raw_run(raw *r, int set)
{
    char *copy = malloc(VLEN + 1);
    double t0 = now_s();
    for (long i = 0; i < nops; i++) {
        int k = (int)(i % NKEYS);
        if (set) {
            sqlite3_bind_blob(r->put, 1, keys[k], (int)klens[k], SQLITE_STATIC);
            sqlite3_bind_blob(r->put, 2, value, VLEN, SQLITE_STATIC);
            if (sqlite3_step(r->put) != SQLITE_DONE)
                abort();
            sqlite3_reset(r->put);
        } else {
            sqlite3_bind_blob(r->get, 1, keys[k], (int)klens[k], SQLITE_STATIC);
            if (sqlite3_step(r->get) != SQLITE_ROW)
                abort();
            /* the value is copied out, as any cache has to */
            memcpy(copy, sqlite3_column_blob(r->get, 0), (size_t)sqlite3_column_bytes(r->get, 0));
            sqlite3_reset(r->get);
        }
    }
    double res = (double)nops / (now_s() - t0);
    free(copy);
    return res;
}

static double llmc_run(llmc_cache *c, int set)
{
    llmc_buf b = LLMC_BUF_INIT;
    double t0 = now_s();
    for (long i = 0; i < nops; i++) {
        int k = (int)(i % NKEYS);
        if (set) {
            if (llmc_cache_set(c, keys[k], klens[k], value, VLEN, LLMC_TTL_NEVER) != LLMC_OK)
                abort();
        } else if (llmc_cache_get(c, keys[k], klens[k], &b) != LLMC_OK) {
            abort();
        }
    }
    double r = (double)nops / (now_s() - t0);
    llmc_buf_free(&b);
    return r;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        nops = atol(argv[1]) > 0 ? atol(argv[1]) : nops;
    for (int i = 0; i < NKEYS; i++)
        klens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "bench:%064d", i);
    for (int i = 0; i < VLEN; i++)
        value[i] = (char)('a' + i % 26);
    testsrv dir;
    if (testsrv_mkdir(&dir, "bench-sqlite") != 0)
        return 1;
    char rawpath[400], url[420];
    snprintf(rawpath, sizeof rawpath, "%s/raw.db", dir.dir);
    snprintf(url, sizeof url, "sqlite://%s/llmc.db", dir.dir);
    raw r;
    raw_open(&r, rawpath);
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(url, NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "bench_sqlite: %s\n", e.msg);
        return 1;
    }
    printf("sqlite backend, %d-byte values, %ld ops per run, best of %d alternating runs\n", VLEN, nops, REPS);
    printf("%-6s %12s %12s %7s\n", "op", "raw ops/s", "llmc ops/s", "ratio");
    for (int op = 1; op >= 0; op--) { /* set first so gets hit */
        double best_raw = 0, best_llmc = 0;
        for (int rep = 0; rep < REPS; rep++) {
            double a = raw_run(&r, op), b = llmc_run(c, op);
            if (a > best_raw)
                best_raw = a;
            if (b > best_llmc)
                best_llmc = b;
        }
        double ratio = best_llmc / best_raw;
        printf("%-6s %12.0f %12.0f %6.2fx%s\n", op ? "set" : "get", best_raw, best_llmc, ratio,
               ratio >= 0.8 ? "" : "  (below 0.8x target)");
    }
    llmc_cache_close(c);
    sqlite3_finalize(r.get);
    sqlite3_finalize(r.put);
    sqlite3_close(r.db);
    testsrv_stop(&dir);
    return 0;
}
