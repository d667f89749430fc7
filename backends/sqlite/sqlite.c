/* SQLite backend: a persistent, embedded cache in one file.
 *
 * One file past 800 lines on purpose: schema, retry loop, eviction,
 * operations and the integrity check/salvage all use one connection's
 * prepared statements under one mutex; split, they would share that
 * state through a private header for no gain in clarity.
 *
 * URL: sqlite:///absolute/path.db, sqlite://relative/path.db, sqlite://:memory:
 *
 * Design notes:
 *  - One connection per handle, guarded by a mutex: SQLite work is local
 *    and short, so serialising the handle costs little and keeps the
 *    prepared statements (prepared once, reused) simple to own. Several
 *    handles and several processes share a file through SQLite's own
 *    locking in WAL mode: readers never block the writer.
 *  - "database is locked" must never reach a caller: a busy timeout is
 *    set and, for the cases where SQLite does not call the busy handler
 *    (WAL recovery, lock upgrades), every statement is retried until the
 *    handle's deadline; writes take the lock up front (BEGIN IMMEDIATE) so
 *    a transaction never has to be abandoned halfway.
 *  - Schema versioned with PRAGMA user_version, stamped with an
 *    application_id. A file that is not a database, belongs to another
 *    application or comes from a newer llmcache is refused at open and
 *    never written to. Older schemas are migrated in one transaction.
 *  - Expiry is an absolute time per entry (ms since the epoch): an expired
 *    row reads as a miss and is purged in small batches as writes go on.
 *  - LRU: every read records (row, time) in a small in-memory list that is
 *    written out with the next write transaction (or when it fills), so a
 *    read stays a plain SELECT. Eviction (max_entries, max_bytes) removes
 *    the rows with the oldest access time; totals are kept by triggers so
 *    no count(*) scan is ever needed. */
#include "builtins.h"
#include "internal.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQ_SCHEMA_VERSION 1
#define SQ_APP_ID 0x4C4C4D43 /* "LLMC" */
#define SQ_TOUCH_MAX 128
#define SQ_PURGE_EVERY 16
#define SQ_PURGE_BATCH 256
#define SQ_SCAN_PAGE 256

/* Migrations: migrations[v] takes a database from user_version v to v+1.
 * Later versions append here; a release never edits an earlier step. */
static const char *const sq_migrations[SQ_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE llmc_entries("
    "  id INTEGER PRIMARY KEY,"
    "  key BLOB NOT NULL UNIQUE,"
    "  value BLOB NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0," /* ms since epoch, 0 = never */
    "  last_access INTEGER NOT NULL,"          /* us, LRU clock */
    "  size INTEGER NOT NULL);"
    "CREATE INDEX llmc_entries_lru ON llmc_entries(last_access);"
    "CREATE INDEX llmc_entries_exp ON llmc_entries(expires_at) WHERE expires_at > 0;"
    "CREATE TABLE llmc_totals(id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  entries INTEGER NOT NULL, bytes INTEGER NOT NULL);"
    "INSERT INTO llmc_totals VALUES (1, 0, 0);"
    "CREATE TRIGGER llmc_entries_ins AFTER INSERT ON llmc_entries BEGIN"
    "  UPDATE llmc_totals SET entries = entries + 1, bytes = bytes + NEW.size WHERE id = 1;"
    " END;"
    "CREATE TRIGGER llmc_entries_del AFTER DELETE ON llmc_entries BEGIN"
    "  UPDATE llmc_totals SET entries = entries - 1, bytes = bytes - OLD.size WHERE id = 1;"
    " END;"
    "CREATE TRIGGER llmc_entries_upd AFTER UPDATE OF size ON llmc_entries BEGIN"
    "  UPDATE llmc_totals SET bytes = bytes - OLD.size + NEW.size WHERE id = 1;"
    " END;",
};

enum {
    Q_GET,
    Q_EXISTS,
    Q_TTL,
    Q_UPSERT,
    Q_DEL,
    Q_TOUCH,
    Q_PURGE,
    Q_TOTALS,
    Q_EVICT,
    Q_FLUSH_NS,
    Q_FLUSH_ALL,
    Q_SCAN,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_COUNT_
};

static const char *const sq_sql[Q_COUNT_] = {
    [Q_GET] = "SELECT id, value, expires_at FROM llmc_entries WHERE key = ?1",
    [Q_EXISTS] = "SELECT expires_at FROM llmc_entries WHERE key = ?1",
    [Q_TTL] = "SELECT expires_at FROM llmc_entries WHERE key = ?1",
    [Q_UPSERT] = "INSERT INTO llmc_entries(key, value, expires_at, last_access, size)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                 " expires_at = excluded.expires_at, last_access = excluded.last_access,"
                 " size = excluded.size",
    [Q_DEL] = "DELETE FROM llmc_entries WHERE key = ?1",
    [Q_TOUCH] = "UPDATE llmc_entries SET last_access = ?2 WHERE id = ?1 AND last_access < ?2",
    [Q_PURGE] = "DELETE FROM llmc_entries WHERE id IN (SELECT id FROM llmc_entries"
                " WHERE expires_at > 0 AND expires_at <= ?1 LIMIT ?2)",
    [Q_TOTALS] = "SELECT entries, bytes FROM llmc_totals WHERE id = 1",
    [Q_EVICT] = "DELETE FROM llmc_entries WHERE id IN (SELECT id FROM llmc_entries"
                " ORDER BY last_access LIMIT ?1)",
    [Q_FLUSH_NS] = "DELETE FROM llmc_entries WHERE key >= ?1 AND key < ?2",
    [Q_FLUSH_ALL] = "DELETE FROM llmc_entries",
    [Q_SCAN] = "SELECT key FROM llmc_entries WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)"
               " AND (expires_at = 0 OR expires_at > ?3) ORDER BY key LIMIT ?4",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

typedef struct sq_touch {
    int64_t id;
    int64_t at;
} sq_touch;

typedef struct sq_ctx {
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT_];
    char *path; /* for messages */
    int64_t busy_ms;
    uint64_t max_entries, max_bytes;
    int64_t clock_us; /* last LRU stamp handed out */
    sq_touch touches[SQ_TOUCH_MAX];
    size_t n_touch;
    uint64_t sets_since_purge;
    char journal_mode[16], synchronous[16]; /* to reconnect after a repair */
    int memory;
    /* counters (under lock) */
    uint64_t evictions, purged, busy_retries;
} sq_ctx;

/* ------------------------------------------------------------------ */
/* errors and retries */

static llmc_status sq_status_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return LLMC_ECORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return LLMC_ETIMEDOUT;
    case SQLITE_NOMEM:
        return LLMC_ENOMEM;
    case SQLITE_TOOBIG:
        return LLMC_ETOOBIG;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
        return LLMC_EPERM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
        return LLMC_EIO;
    default:
        return LLMC_EBACKEND;
    }
}

static llmc_status sq_fail(sq_ctx *c, llmc_err *err, int rc, const char *what)
{
    llmc_status st = sq_status_of(rc);
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        /* Said in our words: the caller should learn the file stayed busy
         * past the timeout, not see SQLite's "database is locked". */
        return llmc_err_set(err, st, rc,
                            "sqlite: %s: %s stayed busy (written by another connection) "
                            "for more than busy_timeout_ms=%lld",
                            what, c->path, (long long)c->busy_ms);
    if (prim == SQLITE_NOTADB)
        return llmc_err_set(err, st, rc, "sqlite: %s is not a SQLite database (left untouched)",
                            c->path);
    return llmc_err_set(err, st, rc, "sqlite: %s on %s: %s", what, c->path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

static int is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

static void nap(int attempt)
{
    /* 1, 2, 4 ... 16 ms: short enough to keep latency low under light
     * contention, long enough not to spin under heavy contention. */
    int ms = attempt < 4 ? (1 << attempt) : 16;
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* sqlite3_step with retries on BUSY until the deadline (ns, monotonic). */
static int step_retry(sq_ctx *c, sqlite3_stmt *s, uint64_t deadline)
{
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_step(s);
        if (!is_busy(rc) || llmc_mono_ns() >= deadline)
            return rc;
        c->busy_retries++;
        sqlite3_reset(s);
        nap(attempt);
    }
}

static uint64_t deadline_of(sq_ctx *c)
{
    return llmc_mono_ns() + (uint64_t)c->busy_ms * 1000000ull;
}

static int exec_retry(sq_ctx *c, const char *sql, uint64_t deadline)
{
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        if (!is_busy(rc) || llmc_mono_ns() >= deadline)
            return rc;
        c->busy_retries++;
        nap(attempt);
    }
}

/* Run a statement that returns no rows (or whose rows are ignored). */
static int run(sq_ctx *c, sqlite3_stmt *s, uint64_t deadline)
{
    int rc;
    do
        rc = step_retry(c, s, deadline);
    while (rc == SQLITE_ROW);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int64_t lru_stamp(sq_ctx *c)
{
    int64_t now = llmc_now_ms() * 1000 + (int64_t)((llmc_mono_ns() / 1000) % 1000);
    if (now <= c->clock_us)
        now = c->clock_us + 1;
    c->clock_us = now;
    return now;
}

static int bind_key(sqlite3_stmt *s, int i, const char *k, size_t len)
{
    /* A zero-length blob needs a non-NULL pointer, else it binds NULL. */
    return sqlite3_bind_blob64(s, i, len ? (const void *)k : (const void *)"", len,
                               SQLITE_STATIC);
}

/* ------------------------------------------------------------------ */
/* open / schema */

static const char *const sq_schemes[] = {"sqlite", NULL};
static const char *const sq_option_names[] = {"busy_timeout_ms", "synchronous", "journal_mode",
                                              "path", NULL};

static void sq_close_db(sq_ctx *c)
{
    for (int i = 0; i < Q_COUNT_; i++) {
        sqlite3_finalize(c->q[i]);
        c->q[i] = NULL;
    }
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

static int flush_touches(sq_ctx *c, uint64_t deadline);

static void sq_close(void *vctx)
{
    sq_ctx *c = vctx;
    if (!c)
        return;
    if (c->db && c->n_touch && c->q[Q_BEGIN]) {
        /* Keep the LRU order of the last reads. Best effort. */
        uint64_t dl = deadline_of(c);
        if (run(c, c->q[Q_BEGIN], dl) == SQLITE_OK) {
            if (flush_touches(c, dl) == SQLITE_OK && run(c, c->q[Q_COMMIT], dl) == SQLITE_OK)
                ;
            else
                run(c, c->q[Q_ROLLBACK], dl);
        }
    }
    sq_close_db(c);
    pthread_mutex_destroy(&c->lock);
    free(c->path);
    free(c);
}

static int pragma_int(sq_ctx *c, const char *sql, int64_t *out, uint64_t deadline)
{
    sqlite3_stmt *s = NULL;
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
        if (!is_busy(rc) || llmc_mono_ns() >= deadline)
            break;
        nap(attempt);
    }
    if (rc != SQLITE_OK)
        return rc;
    rc = step_retry(c, s, deadline);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    return rc;
}

/* Is the database ours, fresh, older (migrate) or not ours (refuse)? */
static llmc_status sq_schema(sq_ctx *c, llmc_err *err)
{
    uint64_t dl = deadline_of(c);
    int64_t app = 0, uv = 0, foreign = 0;
    int rc;
    if ((rc = pragma_int(c, "PRAGMA application_id", &app, dl)) != SQLITE_OK)
        return sq_fail(c, err, rc, "reading the header");
    if (app != 0 && app != SQ_APP_ID)
        return llmc_err_set(err, LLMC_ECORRUPT, 0,
                            "sqlite: %s belongs to another application (application_id "
                            "0x%08llx); refusing to use it as a cache",
                            c->path, (unsigned long long)app);
    if ((rc = pragma_int(c, "PRAGMA user_version", &uv, dl)) != SQLITE_OK)
        return sq_fail(c, err, rc, "reading the schema version");
    if (uv > SQ_SCHEMA_VERSION)
        return llmc_err_set(err, LLMC_EVERSION, uv,
                            "sqlite: %s has schema version %lld, newer than this llmcache "
                            "supports (%d); upgrade llmcache (the file was not modified)",
                            c->path, (long long)uv, SQ_SCHEMA_VERSION);
    if (uv == SQ_SCHEMA_VERSION)
        return LLMC_OK;

    /* Create or migrate under the write lock, re-reading the version: a
     * concurrent process may have done it meanwhile. */
    if ((rc = exec_retry(c, "BEGIN IMMEDIATE", dl)) != SQLITE_OK)
        return sq_fail(c, err, rc, "locking for schema setup");
    llmc_status st = LLMC_OK;
    if ((rc = pragma_int(c, "PRAGMA user_version", &uv, dl)) != SQLITE_OK) {
        st = sq_fail(c, err, rc, "reading the schema version");
        goto rollback;
    }
    if (uv == 0) {
        rc = pragma_int(c,
                        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%'"
                        " ESCAPE '\\'",
                        &foreign, dl);
        if (rc != SQLITE_OK) {
            st = sq_fail(c, err, rc, "reading the schema");
            goto rollback;
        }
        if (foreign > 0) {
            st = llmc_err_set(err, LLMC_ECORRUPT, 0,
                              "sqlite: %s already holds other tables and is not an llmcache "
                              "database; refusing to modify it",
                              c->path);
            goto rollback;
        }
    }
    for (int64_t v = uv; v < SQ_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(c->db, sq_migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            st = sq_fail(c, err, rc, "migrating the schema");
            goto rollback;
        }
    }
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
             SQ_SCHEMA_VERSION, SQ_APP_ID);
    if ((rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL)) != SQLITE_OK) {
        st = sq_fail(c, err, rc, "stamping the schema version");
        goto rollback;
    }
    if ((rc = exec_retry(c, "COMMIT", dl)) != SQLITE_OK) {
        st = sq_fail(c, err, rc, "committing the schema");
        goto rollback;
    }
    return LLMC_OK;
rollback:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* Open the connection, check or create the schema, set the pragmas and
 * prepare the statements (at open, and again after a repair). */
static llmc_status sq_connect(sq_ctx *c, llmc_err *err)
{
    llmc_status st;
    /* NOMUTEX: our own lock serialises the connection. No URI parsing: a
     * path is a path, even if it contains '?'. */
    int rc = sqlite3_open_v2(c->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        st = llmc_err_set(err, sq_status_of(rc), rc,
                          "sqlite: cannot open %s: %s (does the directory exist and is it "
                          "writable?)",
                          c->path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sq_close_db(c);
        return st;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)c->busy_ms);

    if ((st = sq_schema(c, err)) != LLMC_OK) {
        sq_close_db(c);
        return st;
    }

    uint64_t dl = deadline_of(c);
    char sql[128];
    if (!c->memory) {
        snprintf(sql, sizeof sql, "PRAGMA journal_mode = %s", c->journal_mode);
        if ((rc = exec_retry(c, sql, dl)) != SQLITE_OK) {
            st = sq_fail(c, err, rc, "setting journal_mode");
            sq_close_db(c);
            return st;
        }
    }
    snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", c->synchronous);
    if ((rc = exec_retry(c, sql, dl)) != SQLITE_OK) {
        st = sq_fail(c, err, rc, "setting synchronous");
        sq_close_db(c);
        return st;
    }

    for (int i = 0; i < Q_COUNT_; i++) {
        for (int attempt = 0;; attempt++) {
            rc = sqlite3_prepare_v3(c->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->q[i],
                                    NULL);
            if (!is_busy(rc) || llmc_mono_ns() >= dl)
                break;
            nap(attempt);
        }
        if (rc != SQLITE_OK) {
            st = sq_fail(c, err, rc, "preparing statements");
            sq_close_db(c);
            return st;
        }
    }
    return LLMC_OK;
}

static llmc_status sq_open(const llmc_backend_config *cfg, void **out, llmc_err *err)
{
    const llmc_options *o = cfg->options;
    int64_t busy_ms;
    llmc_status st;
    if ((st = llmc_options_get_i64(o, "busy_timeout_ms", 0, 3600000, 5000, &busy_ms, err)))
        return st;
    const char *sync = llmc_options_get(o, "synchronous");
    if (!sync)
        sync = "normal";
    if (!llmc__strcaseeq(sync, "off") && !llmc__strcaseeq(sync, "normal") &&
        !llmc__strcaseeq(sync, "full") && !llmc__strcaseeq(sync, "extra"))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "sqlite: option synchronous must be off, normal, full or extra, "
                            "not '%s'", sync);
    const char *jm = llmc_options_get(o, "journal_mode");
    if (!jm)
        jm = "wal";
    if (!llmc__strcaseeq(jm, "wal") && !llmc__strcaseeq(jm, "delete") &&
        !llmc__strcaseeq(jm, "truncate") && !llmc__strcaseeq(jm, "persist"))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "sqlite: option journal_mode must be wal, delete, truncate or "
                            "persist, not '%s'", jm);

    const char *path = cfg->location && *cfg->location ? cfg->location : NULL;
    const char *opt_path = llmc_options_get(o, "path");
    if (!path && opt_path && *opt_path)
        path = opt_path;
    if (!path)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "sqlite: no database path (use sqlite:///absolute/path.db, "
                            "sqlite://relative/path.db or sqlite://:memory:)");
    int memory = strcmp(path, ":memory:") == 0;

    sq_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->path = llmc__strdup(path);
    c->busy_ms = busy_ms;
    c->max_entries = cfg->max_entries;
    c->max_bytes = cfg->max_bytes;
    if (!c->path) {
        sq_close(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
    }

    snprintf(c->journal_mode, sizeof c->journal_mode, "%s", jm);
    snprintf(c->synchronous, sizeof c->synchronous, "%s", sync);
    c->memory = memory;
    if ((st = sq_connect(c, err)) != LLMC_OK) {
        sq_close(c);
        return st;
    }
    *out = c;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* maintenance inside a write transaction */

static int flush_touches(sq_ctx *c, uint64_t deadline)
{
    sqlite3_stmt *s = c->q[Q_TOUCH];
    for (size_t i = 0; i < c->n_touch; i++) {
        sqlite3_bind_int64(s, 1, c->touches[i].id);
        sqlite3_bind_int64(s, 2, c->touches[i].at);
        int rc = run(c, s, deadline);
        if (rc != SQLITE_OK)
            return rc;
    }
    c->n_touch = 0;
    return SQLITE_OK;
}

static int purge_expired(sq_ctx *c, uint64_t deadline)
{
    sqlite3_stmt *s = c->q[Q_PURGE];
    sqlite3_bind_int64(s, 1, llmc_now_ms());
    sqlite3_bind_int64(s, 2, SQ_PURGE_BATCH);
    int rc = run(c, s, deadline);
    if (rc == SQLITE_OK)
        c->purged += (uint64_t)sqlite3_changes(c->db);
    return rc;
}

static int read_totals(sq_ctx *c, int64_t *entries, int64_t *bytes, uint64_t deadline)
{
    sqlite3_stmt *s = c->q[Q_TOTALS];
    int rc = step_retry(c, s, deadline);
    *entries = *bytes = 0;
    if (rc == SQLITE_ROW) {
        *entries = sqlite3_column_int64(s, 0);
        *bytes = sqlite3_column_int64(s, 1);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_reset(s);
    return rc;
}

/* Bring the file within max_entries / max_bytes: expired rows first,
 * then the least recently used. */
static int enforce_limits(sq_ctx *c, uint64_t deadline)
{
    if (!c->max_entries && !c->max_bytes)
        return SQLITE_OK;
    int64_t n, b;
    int rc = read_totals(c, &n, &b, deadline);
    int purged = 0;
    while (rc == SQLITE_OK) {
        int64_t over_n = c->max_entries && n > (int64_t)c->max_entries
                             ? n - (int64_t)c->max_entries : 0;
        int over_b = c->max_bytes && b > (int64_t)c->max_bytes;
        if (!over_n && !over_b)
            break;
        if (!purged) {
            purged = 1;
            rc = purge_expired(c, deadline);
        } else {
            sqlite3_stmt *s = c->q[Q_EVICT];
            sqlite3_bind_int64(s, 1, over_n ? over_n : 1);
            rc = run(c, s, deadline);
            if (rc == SQLITE_OK) {
                int ch = sqlite3_changes(c->db);
                c->evictions += (uint64_t)ch;
                if (ch == 0)
                    break;
            }
        }
        if (rc == SQLITE_OK)
            rc = read_totals(c, &n, &b, deadline);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* reads */

static void record_touch(sq_ctx *c, int64_t id)
{
    if (c->n_touch == SQ_TOUCH_MAX) {
        uint64_t dl = deadline_of(c);
        if (run(c, c->q[Q_BEGIN], dl) == SQLITE_OK) {
            if (flush_touches(c, dl) == SQLITE_OK && run(c, c->q[Q_COMMIT], dl) == SQLITE_OK)
                ;
            else
                run(c, c->q[Q_ROLLBACK], dl);
        }
        /* If the file stayed busy, drop the oldest half: LRU order is a
         * hint and must never block or fail a read. */
        if (c->n_touch == SQ_TOUCH_MAX) {
            memmove(c->touches, c->touches + SQ_TOUCH_MAX / 2,
                    (SQ_TOUCH_MAX / 2) * sizeof *c->touches);
            c->n_touch = SQ_TOUCH_MAX / 2;
        }
    }
    c->touches[c->n_touch].id = id;
    c->touches[c->n_touch].at = lru_stamp(c);
    c->n_touch++;
}

static llmc_status sq_get(void *vctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    sq_ctx *c = vctx;
    llmc_status st;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *s = c->q[Q_GET];
    bind_key(s, 1, key, klen);
    int rc = step_retry(c, s, deadline_of(c));
    if (rc == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(s, 2);
        if (exp > 0 && exp <= llmc_now_ms()) {
            st = LLMC_MISS;
        } else {
            int64_t id = sqlite3_column_int64(s, 0);
            const void *v = sqlite3_column_blob(s, 1);
            int vl = sqlite3_column_bytes(s, 1);
            st = llmc_buf_set(out, v ? v : "", (size_t)vl);
            if (st != LLMC_OK)
                st = llmc_err_set(err, st, 0, "sqlite: out of memory");
            else if (c->max_entries || c->max_bytes)
                record_touch(c, id);
        }
    } else if (rc == SQLITE_DONE) {
        st = LLMC_MISS;
    } else {
        st = sq_fail(c, err, rc, "get");
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static llmc_status sq_exists(void *vctx, const char *key, size_t klen, llmc_err *err)
{
    sq_ctx *c = vctx;
    llmc_status st;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *s = c->q[Q_EXISTS];
    bind_key(s, 1, key, klen);
    int rc = step_retry(c, s, deadline_of(c));
    if (rc == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(s, 0);
        st = exp > 0 && exp <= llmc_now_ms() ? LLMC_MISS : LLMC_OK;
    } else if (rc == SQLITE_DONE) {
        st = LLMC_MISS;
    } else {
        st = sq_fail(c, err, rc, "exists");
    }
    sqlite3_reset(s);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static llmc_status sq_ttl(void *vctx, const char *key, size_t klen, int64_t *ttl_ms,
                          llmc_err *err)
{
    sq_ctx *c = vctx;
    llmc_status st;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *s = c->q[Q_TTL];
    bind_key(s, 1, key, klen);
    int rc = step_retry(c, s, deadline_of(c));
    if (rc == SQLITE_ROW) {
        int64_t exp = sqlite3_column_int64(s, 0), now = llmc_now_ms();
        if (exp == 0) {
            *ttl_ms = -1;
            st = LLMC_OK;
        } else if (exp <= now) {
            st = LLMC_MISS;
        } else {
            *ttl_ms = exp - now;
            st = LLMC_OK;
        }
    } else if (rc == SQLITE_DONE) {
        st = LLMC_MISS;
    } else {
        st = sq_fail(c, err, rc, "ttl");
    }
    sqlite3_reset(s);
    pthread_mutex_unlock(&c->lock);
    return st;
}

/* ------------------------------------------------------------------ */
/* writes */

static int upsert(sq_ctx *c, const char *key, size_t klen, const void *val, size_t vlen,
                  int64_t ttl_ms, uint64_t deadline)
{
    sqlite3_stmt *s = c->q[Q_UPSERT];
    int rc = bind_key(s, 1, key, klen);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(s, 2, vlen ? val : (const void *)"", vlen, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        sqlite3_clear_bindings(s);
        return rc;
    }
    sqlite3_bind_int64(s, 3, ttl_ms > 0 ? llmc_now_ms() + ttl_ms : 0);
    sqlite3_bind_int64(s, 4, lru_stamp(c));
    sqlite3_bind_int64(s, 5, (int64_t)(klen + vlen));
    rc = run(c, s, deadline);
    sqlite3_clear_bindings(s);
    return rc;
}

/* One write transaction holding n items. */
static llmc_status write_items(sq_ctx *c, size_t n, const llmc_kv *items, llmc_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (c->max_bytes && items[i].klen + items[i].vlen > c->max_bytes)
            return llmc_err_set(err, LLMC_ETOOBIG, 0,
                                "sqlite: entry of %zu bytes is larger than max_bytes=%llu; "
                                "nothing was written",
                                items[i].klen + items[i].vlen,
                                (unsigned long long)c->max_bytes);
    }
    uint64_t dl = deadline_of(c);
    int rc = run(c, c->q[Q_BEGIN], dl);
    if (rc != SQLITE_OK)
        return sq_fail(c, err, rc, "set (begin)");
    const char *what = "set";
    rc = flush_touches(c, dl);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = upsert(c, items[i].key, items[i].klen, items[i].val, items[i].vlen,
                    items[i].ttl_ms, dl);
    if (rc == SQLITE_OK && (c->sets_since_purge += n) >= SQ_PURGE_EVERY) {
        c->sets_since_purge = 0;
        what = "purging expired entries";
        rc = purge_expired(c, dl);
    }
    if (rc == SQLITE_OK) {
        what = "evicting";
        rc = enforce_limits(c, dl);
    }
    if (rc == SQLITE_OK) {
        what = "commit";
        rc = run(c, c->q[Q_COMMIT], dl);
    }
    if (rc != SQLITE_OK) {
        llmc_status st = sq_fail(c, err, rc, what);
        if (!sqlite3_get_autocommit(c->db))
            run(c, c->q[Q_ROLLBACK], deadline_of(c));
        return st;
    }
    return LLMC_OK;
}

static llmc_status sq_set(void *vctx, const char *key, size_t klen, const void *val, size_t vlen,
                          int64_t ttl_ms, llmc_err *err)
{
    sq_ctx *c = vctx;
    llmc_kv kv = {key, klen, val, vlen, ttl_ms};
    pthread_mutex_lock(&c->lock);
    llmc_status st = write_items(c, 1, &kv, err);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static llmc_status sq_mset(void *vctx, size_t n, const llmc_kv *items, llmc_err *err)
{
    sq_ctx *c = vctx;
    if (n == 0)
        return LLMC_OK;
    pthread_mutex_lock(&c->lock);
    llmc_status st = write_items(c, n, items, err);
    pthread_mutex_unlock(&c->lock);
    return st;
}

static llmc_status sq_del(void *vctx, const char *key, size_t klen, llmc_err *err)
{
    sq_ctx *c = vctx;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *s = c->q[Q_DEL];
    bind_key(s, 1, key, klen);
    int rc = run(c, s, deadline_of(c));
    llmc_status st;
    if (rc == SQLITE_OK)
        st = sqlite3_changes(c->db) > 0 ? LLMC_OK : LLMC_MISS;
    else
        st = sq_fail(c, err, rc, "delete");
    pthread_mutex_unlock(&c->lock);
    return st;
}

static llmc_status sq_flush(void *vctx, const char *ns, size_t nslen, uint64_t *deleted,
                            llmc_err *err)
{
    sq_ctx *c = vctx;
    /* Keys of the namespace are exactly those in ["ns:", "ns;"). */
    char *lo = malloc(nslen + 1), *hi = malloc(nslen + 1);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
    }
    memcpy(lo, ns, nslen);
    memcpy(hi, ns, nslen);
    lo[nslen] = ':';
    hi[nslen] = ':' + 1;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *s = c->q[Q_FLUSH_NS];
    bind_key(s, 1, lo, nslen + 1);
    bind_key(s, 2, hi, nslen + 1);
    int rc = run(c, s, deadline_of(c));
    llmc_status st = LLMC_OK;
    if (rc == SQLITE_OK) {
        if (deleted)
            *deleted = (uint64_t)sqlite3_changes(c->db);
    } else {
        st = sq_fail(c, err, rc, "flush");
    }
    sqlite3_clear_bindings(s);
    pthread_mutex_unlock(&c->lock);
    free(lo);
    free(hi);
    return st;
}

static llmc_status sq_flush_all(void *vctx, llmc_err *err)
{
    sq_ctx *c = vctx;
    pthread_mutex_lock(&c->lock);
    int rc = run(c, c->q[Q_FLUSH_ALL], deadline_of(c));
    c->n_touch = 0;
    pthread_mutex_unlock(&c->lock);
    return rc == SQLITE_OK ? LLMC_OK : sq_fail(c, err, rc, "flush_all");
}

static llmc_status sq_ping(void *vctx, llmc_err *err)
{
    sq_ctx *c = vctx;
    int64_t n, b;
    pthread_mutex_lock(&c->lock);
    int rc = read_totals(c, &n, &b, deadline_of(c));
    pthread_mutex_unlock(&c->lock);
    return rc == SQLITE_OK ? LLMC_OK : sq_fail(c, err, rc, "ping");
}

/* ------------------------------------------------------------------ */
/* scan / stats */

typedef struct sq_keys {
    llmc_buf blob;  /* keys back to back */
    size_t *lens;
    size_t n, cap;
} sq_keys;

static llmc_status sq_scan(void *vctx, const char *prefix, size_t plen, llmc_scan_cb cb, void *ud,
                           llmc_err *err)
{
    sq_ctx *c = vctx;
    /* Upper bound of the prefix range: the prefix with its last non-0xff
     * byte incremented; none if the prefix is empty or all 0xff. */
    char *hi = plen ? malloc(plen) : NULL;
    size_t hilen = 0;
    if (plen && !hi)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
    if (plen) {
        memcpy(hi, prefix, plen);
        hilen = plen;
        while (hilen && (unsigned char)hi[hilen - 1] == 0xff)
            hilen--;
        if (hilen)
            hi[hilen - 1] = (char)((unsigned char)hi[hilen - 1] + 1);
    }
    llmc_buf from = LLMC_BUF_INIT;
    sq_keys page = {LLMC_BUF_INIT, malloc(SQ_SCAN_PAGE * sizeof(size_t)), 0, SQ_SCAN_PAGE};
    llmc_status st = LLMC_OK;
    if (!page.lens || llmc_buf_set(&from, prefix ? prefix : "", plen) != LLMC_OK) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
        goto out;
    }
    for (;;) {
        /* Collect one page under the lock, call back without it, so a
         * callback may use this cache (e.g. copy entries out of it). */
        page.n = 0;
        llmc_buf_clear(&page.blob);
        pthread_mutex_lock(&c->lock);
        sqlite3_stmt *s = c->q[Q_SCAN];
        bind_key(s, 1, from.data, from.len);
        if (hilen)
            bind_key(s, 2, hi, hilen);
        else
            sqlite3_bind_null(s, 2);
        sqlite3_bind_int64(s, 3, llmc_now_ms());
        sqlite3_bind_int64(s, 4, SQ_SCAN_PAGE);
        uint64_t dl = deadline_of(c);
        int rc;
        while ((rc = step_retry(c, s, dl)) == SQLITE_ROW) {
            const void *k = sqlite3_column_blob(s, 0);
            size_t kl = (size_t)sqlite3_column_bytes(s, 0);
            if (llmc_buf_append(&page.blob, k ? k : "", kl) != LLMC_OK) {
                rc = SQLITE_NOMEM;
                break;
            }
            page.lens[page.n++] = kl;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (rc != SQLITE_DONE)
            st = sq_fail(c, err, rc, "scan");
        pthread_mutex_unlock(&c->lock);
        if (st != LLMC_OK)
            goto out;
        size_t off = 0;
        for (size_t i = 0; i < page.n; i++) {
            if (cb(ud, page.blob.data + off, page.lens[i]))
                goto out;
            off += page.lens[i];
        }
        if (page.n < SQ_SCAN_PAGE)
            break;
        /* next page starts just after the last key: last key + "\0" */
        size_t last = page.lens[page.n - 1];
        if (llmc_buf_set(&from, page.blob.data + off - last, last) != LLMC_OK ||
            llmc_buf_append(&from, "", 1) != LLMC_OK) {
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
            goto out;
        }
    }
out:
    free(hi);
    free(page.lens);
    llmc_buf_free(&page.blob);
    llmc_buf_free(&from);
    return st;
}

static llmc_status sq_stats(void *vctx, llmc_stat_cb cb, void *ud)
{
    sq_ctx *c = vctx;
    int64_t n = 0, b = 0, pages = 0, psize = 0, freel = 0;
    pthread_mutex_lock(&c->lock);
    uint64_t dl = deadline_of(c);
    int rc = read_totals(c, &n, &b, dl);
    if (rc == SQLITE_OK)
        rc = pragma_int(c, "PRAGMA page_count", &pages, dl);
    if (rc == SQLITE_OK)
        rc = pragma_int(c, "PRAGMA page_size", &psize, dl);
    if (rc == SQLITE_OK)
        rc = pragma_int(c, "PRAGMA freelist_count", &freel, dl);
    uint64_t ev = c->evictions, pu = c->purged, br = c->busy_retries;
    pthread_mutex_unlock(&c->lock);
    if (rc != SQLITE_OK)
        return sq_status_of(rc);
    cb(ud, "entries", n);
    cb(ud, "bytes", b);
    cb(ud, "file_bytes", pages * psize);
    cb(ud, "free_pages", freel);
    cb(ud, "max_entries", (int64_t)c->max_entries);
    cb(ud, "max_bytes", (int64_t)c->max_bytes);
    cb(ud, "evictions", (int64_t)ev);
    cb(ud, "expired_purged", (int64_t)pu);
    cb(ud, "busy_retries", (int64_t)br);
    cb(ud, "schema_version", SQ_SCHEMA_VERSION);
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* check / repair */

/* PRAGMA integrity_check on db: number of problems and the first one. A
 * check that cannot even finish (a damaged page on its way) is a problem
 * too. */
static int sq_integrity(sqlite3 *db, uint64_t *problems, char *first, size_t fn)
{
    sqlite3_stmt *s = NULL;
    *problems = 0;
    first[0] = 0;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(100)", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            if (!t || strcmp(t, "ok") == 0)
                continue;
            /* A row may hold several problems, one per line, after a
             * "*** in database main ***" banner. */
            while (*t) {
                size_t len = strcspn(t, "\n");
                if (len && strncmp(t, "*** ", 4) != 0) {
                    if (!*problems)
                        snprintf(first, fn, "%.*s", (int)len, t);
                    (*problems)++;
                }
                t += len;
                if (*t == '\n')
                    t++;
            }
        }
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return SQLITE_OK;
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
        if (!*problems)
            snprintf(first, fn, "%s", sqlite3_errmsg(db));
        (*problems)++;
        return SQLITE_OK;
    }
    return rc;
}

static int is_damage(int rc)
{
    return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

/* Copy one row (id, key, value, expires_at, last_access) of `rd` into
 * the new database through `ins`. SQLITE_OK, or the insert's error. */
static int copy_row(sqlite3_stmt *rd, sqlite3_stmt *ins, int64_t now, llmc_check_result *out)
{
    int64_t exp = sqlite3_column_int64(rd, 3);
    if (exp > 0 && exp <= now) {
        out->expired++;
        return SQLITE_OK;
    }
    const void *k = sqlite3_column_blob(rd, 1);
    int kl = sqlite3_column_bytes(rd, 1);
    const void *v = sqlite3_column_blob(rd, 2);
    int vl = sqlite3_column_bytes(rd, 2);
    if (!k || kl <= 0) {
        out->unreadable++;
        return SQLITE_OK;
    }
    sqlite3_bind_blob64(ins, 1, k, (sqlite3_uint64)kl, SQLITE_STATIC);
    sqlite3_bind_blob64(ins, 2, v ? v : (const void *)"", (sqlite3_uint64)vl, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, exp);
    sqlite3_bind_int64(ins, 4, sqlite3_column_int64(rd, 4));
    sqlite3_bind_int64(ins, 5, (int64_t)kl + vl);
    int rc = sqlite3_step(ins);
    int changed = sqlite3_changes(sqlite3_db_handle(ins)) > 0;
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
    if (rc != SQLITE_DONE)
        return rc;
    out->kept += changed;
    return SQLITE_OK;
}

/* Copy every readable, unexpired entry of c->db into a new database at
 * tmp. Rows are read in id order. When a read fails on a damaged page the
 * walk resumes past it, skipping 1, 2, 4 ... ids until rows come back;
 * the ids it jumped over are then read one by one, each through its own
 * b-tree descent, so only the rows that sit on damaged pages are lost. */
#define SQ_GAP_PROBES 65536

/* Read ids lo..hi one by one, at most the first SQ_GAP_PROBES of them
 * (ids are handed out in order, so the rows of a span follow its start;
 * a skip that ran to the end of the id space is not walked in full). */
static int probe_gap(sqlite3_stmt *one, sqlite3_stmt *ins, int64_t lo, int64_t hi, int64_t now,
                     llmc_check_result *out)
{
    if (hi < lo)
        return SQLITE_OK;
    uint64_t n = (uint64_t)hi - (uint64_t)lo + 1;
    if (n > SQ_GAP_PROBES)
        n = SQ_GAP_PROBES;
    for (uint64_t i = 0; i < n; i++) {
        int64_t id = lo + (int64_t)i;
        sqlite3_bind_int64(one, 1, id);
        int orc = sqlite3_step(one);
        int irc = orc == SQLITE_ROW ? copy_row(one, ins, now, out) : SQLITE_OK;
        sqlite3_reset(one);
        if (irc != SQLITE_OK)
            return irc;
    }
    return SQLITE_OK;
}

static llmc_status sq_salvage(sq_ctx *c, const char *tmp, llmc_check_result *out, llmc_err *err)
{
    sqlite3 *nd = NULL;
    sqlite3_stmt *rd = NULL, *one = NULL, *ins = NULL;
    llmc_status st = LLMC_OK;
    char sql[96];
    unlink(tmp);
    int rc = sqlite3_open_v2(tmp, &nd, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(nd, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(nd, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(nd, sq_migrations[0], NULL, NULL, NULL);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
             SQ_SCHEMA_VERSION, SQ_APP_ID);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(nd, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(nd,
                                "INSERT OR IGNORE INTO llmc_entries(key, value, expires_at, "
                                "last_access, size) VALUES (?1, ?2, ?3, ?4, ?5)",
                                -1, &ins, NULL);
    if (rc != SQLITE_OK) {
        st = llmc_err_set(err, sq_status_of(rc), rc, "sqlite: repair: cannot create %s: %s",
                          tmp, nd ? sqlite3_errmsg(nd) : sqlite3_errstr(rc));
        goto done;
    }
    rc = sqlite3_prepare_v2(c->db,
                            "SELECT id, key, value, expires_at, last_access FROM llmc_entries "
                            "WHERE id > ?1 ORDER BY id",
                            -1, &rd, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db,
                                "SELECT id, key, value, expires_at, last_access FROM "
                                "llmc_entries WHERE id = ?1",
                                -1, &one, NULL);
    if (rc != SQLITE_OK) {
        st = sq_fail(c, err, rc, "repair: reading the entries");
        goto done;
    }
    int64_t after = 0, skip = 1, now = llmc_now_ms();
    int64_t gap_from = -1; /* last good id before a damaged span, -1: none */
    for (int rounds = 0; rounds < 100000; rounds++) {
        sqlite3_bind_int64(rd, 1, after);
        int first = 1;
        while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
            if (first && gap_from >= 0) {
                /* Back past a damaged span: read the ids jumped over. */
                int irc = probe_gap(one, ins, gap_from + 1, after, now, out);
                if (irc != SQLITE_OK) {
                    rc = irc;
                    goto write_failed;
                }
                gap_from = -1;
            }
            first = 0;
            after = sqlite3_column_int64(rd, 0);
            skip = 1;
            int irc = copy_row(rd, ins, now, out);
            if (irc != SQLITE_OK) {
                rc = irc;
                goto write_failed;
            }
        }
        sqlite3_reset(rd);
        if (rc == SQLITE_DONE)
            break;
        if (!is_damage(rc) && (rc & 0xff) != SQLITE_IOERR) {
            st = sq_fail(c, err, rc, "repair: reading the entries");
            goto done;
        }
        if (gap_from < 0) {
            gap_from = after;
            out->unreadable++;
        }
        if (after > INT64_MAX - skip)
            break;
        after += skip;
        if (skip < ((int64_t)1 << 60))
            skip *= 2;
    }
    if (gap_from >= 0) {
        /* The damage reached the end of the table. */
        rc = probe_gap(one, ins, gap_from + 1, after, now, out);
        if (rc != SQLITE_OK)
            goto write_failed;
    }
    rc = sqlite3_exec(nd, "COMMIT", NULL, NULL, NULL);
    uint64_t problems = 0;
    char first[128];
    if (rc == SQLITE_OK)
        rc = sq_integrity(nd, &problems, first, sizeof first);
    if (rc != SQLITE_OK || problems) {
        st = llmc_err_set(err, LLMC_EIO, rc, "sqlite: repair: the rebuilt file %s fails its "
                          "own check (%s)", tmp, rc != SQLITE_OK ? sqlite3_errmsg(nd) : first);
        goto done;
    }
    goto done;
write_failed:
    st = llmc_err_set(err, sq_status_of(rc), rc, "sqlite: repair: writing %s: %s", tmp,
                      sqlite3_errmsg(nd));
done:
    sqlite3_finalize(rd);
    sqlite3_finalize(one);
    sqlite3_finalize(ins);
    if (nd)
        sqlite3_close_v2(nd);
    if (st != LLMC_OK)
        unlink(tmp);
    return st;
}

static llmc_status sq_check(void *vctx, unsigned flags, llmc_check_result *out, llmc_err *err)
{
    sq_ctx *c = vctx;
    llmc_status st = LLMC_OK;
    pthread_mutex_lock(&c->lock);
    int rc = sq_integrity(c->db, &out->problems, out->detail, sizeof out->detail);
    if (rc != SQLITE_OK) {
        st = sq_fail(c, err, rc, "integrity_check");
        goto out;
    }
    out->damaged = out->problems > 0;
    if (!out->damaged)
        goto out;
    if (!(flags & LLMC_CHECK_REPAIR)) {
        st = llmc_err_set(err, LLMC_ECORRUPT, 0,
                          "sqlite: %s is damaged (%llu problem%s, first: %s)", c->path,
                          (unsigned long long)out->problems, out->problems == 1 ? "" : "s",
                          out->detail);
        goto out;
    }
    if (c->memory) {
        st = llmc_err_set(err, LLMC_ENOTSUP, 0, "sqlite: an in-memory database cannot be "
                          "repaired");
        goto out;
    }
    /* The file is replaced: another connection would keep writing to the
     * old one (and its journal would then meet the new file). Leaving WAL
     * mode needs every other connection closed, so it doubles as the
     * check; it also folds the WAL into the file that is read below. */
    {
        sqlite3_stmt *jm = NULL;
        const char *mode = NULL;
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = DELETE", -1, &jm, NULL);
        if (rc == SQLITE_OK && sqlite3_step(jm) == SQLITE_ROW)
            mode = (const char *)sqlite3_column_text(jm, 0);
        int in_use = !mode || strcmp(mode, "delete") != 0;
        int busy = is_busy(sqlite3_errcode(c->db));
        sqlite3_finalize(jm);
        if (in_use && busy) {
            st = llmc_err_set(err, LLMC_EBUSY, 0,
                              "sqlite: repair: %s is in use by another connection; stop every "
                              "process using it and retry", c->path);
            goto out;
        }
    }
    size_t tl = strlen(c->path) + 16;
    char *tmp = malloc(tl);
    if (!tmp) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "sqlite: out of memory");
        goto out;
    }
    snprintf(tmp, tl, "%s.repair", c->path);
    st = sq_salvage(c, tmp, out, err);
    if (st == LLMC_OK) {
        c->n_touch = 0;
        sq_close_db(c);
        size_t pl = strlen(c->path) + 8;
        char *side = malloc(pl);
        if (side) {
            snprintf(side, pl, "%s-wal", c->path);
            unlink(side);
            snprintf(side, pl, "%s-shm", c->path);
            unlink(side);
            snprintf(side, pl, "%s-journal", c->path);
            unlink(side);
            free(side);
        }
        if (rename(tmp, c->path) != 0) {
            st = llmc_err_set(err, LLMC_EIO, errno, "sqlite: repair: cannot move %s over %s: %s",
                              tmp, c->path, strerror(errno));
            unlink(tmp);
        }
        /* Reconnect in any case: to the rebuilt file, or back to the old. */
        llmc_err e2;
        llmc_err_clear(&e2);
        llmc_status cst = sq_connect(c, &e2);
        if (st == LLMC_OK && cst != LLMC_OK) {
            *err = e2;
            st = cst;
        }
        if (st == LLMC_OK)
            out->repaired = 1;
    }
    free(tmp);
out:
    pthread_mutex_unlock(&c->lock);
    return st;
}

const llmc_backend_ops llmc__backend_sqlite = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "sqlite",
                               "SQLite file (WAL, LRU limits, shared between processes)"),
    .schemes = sq_schemes,
    .options = sq_option_names,
    .caps = LLMC_CAP_TTL | LLMC_CAP_FILE_LOCATION | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE | LLMC_CAP_PERSISTENT |
            LLMC_CAP_SCAN,
    .open = sq_open,
    .close = sq_close,
    .get = sq_get,
    .set = sq_set,
    .del = sq_del,
    .exists = sq_exists,
    .mget = NULL,
    .mset = sq_mset,
    .flush = sq_flush,
    .flush_all = sq_flush_all,
    .ping = sq_ping,
    .stats = sq_stats,
    .scan = sq_scan,
    .ttl = sq_ttl,
    .check = sq_check,
};
