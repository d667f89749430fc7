/* The local tier (l1_* options) in front of real servers the test starts
 * on free loopback ports: redis-server (pub/sub invalidation) and
 * memcached (bounded by l1_ttl). Round trips are counted by the server
 * (INFO commandstats), never by timing; waits for something that must
 * happen are bounded polls. */
#include "support/rcluster.h"
#include "support/redissrv.h"
#include "support/testsrv.h"

#include <llmcache/llmcache.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static redissrv rs;

static void redis_up(void)
{
    ck_assert_msg(redissrv_start(&rs, REDISSRV_TCP) == 0, "cannot start redis-server");
}

static void redis_down(void)
{
    redissrv_stop(&rs);
}

static llmc_cache *open_url(const char *url)
{
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(url, NULL, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", url, e.msg);
    return c;
}

/* The test server's URL plus extra query options. */
static llmc_cache *open_redis(const char *extra)
{
    char url[2000];
    snprintf(url, sizeof url, "%s%s%s", rs.url, strchr(rs.url, '?') ? "&" : "?", extra);
    return open_url(url);
}

static llmc_stats stats(llmc_cache *c)
{
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    return s;
}

/* Wait (bounded) until the tier's live state is `want`. */
static void wait_live(llmc_cache *c, uint32_t want)
{
    for (int i = 0; i < 1000 && stats(c).l1_live != want; i++)
        usleep(10000);
    ck_assert_uint_eq(stats(c).l1_live, want);
}

/* Calls of one redis command since the last reset. */
static long calls(const char *cmd)
{
    long n = redissrv_calls(&rs, cmd);
    ck_assert_msg(n >= 0, "redis-server did not answer INFO commandstats");
    return n;
}

static void reset_stats(void)
{
    ck_assert_int_eq(redissrv_reset_calls(&rs), 0);
}

static llmc_status get_str(llmc_cache *c, const char *key, char *buf, size_t n)
{
    llmc_buf v = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, key, strlen(key), &v);
    buf[0] = 0;
    if (st == LLMC_OK)
        snprintf(buf, n, "%.*s", (int)v.len, v.data);
    llmc_buf_free(&v);
    return st;
}

static void set_str(llmc_cache *c, const char *key, const char *val, int64_t ttl_ms)
{
    ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), val, strlen(val), ttl_ms), LLMC_OK);
}

static void put_entry(llmc_cache *c, const char *key, const char *body, int64_t ttl_ms)
{
    ck_assert_int_eq(llmc_cache_put_entry(c, key, strlen(key), LLMC_CALL_CHAT, body,
                                          strlen(body), ttl_ms, 0),
                     LLMC_OK);
}

static llmc_status get_entry(llmc_cache *c, const char *key)
{
    llmc_lookup l = LLMC_LOOKUP_INIT;
    llmc_status st = llmc_cache_get_entry(c, key, strlen(key), -1, 0, &l);
    llmc_lookup_free(&l);
    return st;
}

/* Read key until a read is served by the tier (bounded); 1 when one was. */
static int warm(llmc_cache *c, const char *key)
{
    for (int i = 0; i < 1000; i++) {
        llmc_stats s0, s1;
        llmc_cache_stats(c, &s0, sizeof s0);
        if (get_entry(c, key) == LLMC_OK) {
            llmc_cache_stats(c, &s1, sizeof s1);
            if (s1.l1_hits == s0.l1_hits + 1)
                return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* Wait (bounded) until c has applied n messages from other handles: a
 * write through another handle invalidates copies too, and its message
 * may arrive after c took a copy of the new value. */
static void wait_invalidations(llmc_cache *c, uint64_t n)
{
    for (int i = 0; i < 1000 && stats(c).l1_invalidations < n; i++)
        usleep(10000);
    ck_assert_uint_ge(stats(c).l1_invalidations, n);
}

/* ---- options ---- */

static void expect_refused(const char *url, const char *needle)
{
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(url, NULL, &c, &e);
    ck_assert_msg(st == LLMC_EINVAL, "%s: status %d", url, st);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", url, e.msg,
                  needle);
}

START_TEST(options_refused)
{
    char tmpl[] = "/tmp/llmc-tier-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char url[512], base[400];
    snprintf(base, sizeof base, "sqlite://%s/c.db", tmpl);
    snprintf(url, sizeof url, "%s?l1_ttl=0", base);
    expect_refused(url, "l1_ttl");
    snprintf(url, sizeof url, "%s?l1_ttl=5s", base);
    expect_refused(url, "l1_ttl");
    snprintf(url, sizeof url, "%s?l1_entries=-3", base);
    expect_refused(url, "l1_entries");
    snprintf(url, sizeof url, "%s?l1_bytes=12", base);
    expect_refused(url, "l1_bytes");
    snprintf(url, sizeof url, "%s?l1=maybe", base);
    expect_refused(url, "l1");
    snprintf(url, sizeof url, "%s?l1=0&l1_ttl=3", base);
    expect_refused(url, "l1_ttl");
    snprintf(url, sizeof url, "%s?l1_sync_ms=500", base);
    expect_refused(url, "pub/sub");
    snprintf(url, sizeof url, "%s?l1_ttls=5", base);
    expect_refused(url, "l1_ttls");
    expect_refused("local://?l1_entries=10", "already in-process");

    /* Accepted: the tier is there, and l1=0 means none. */
    snprintf(url, sizeof url, "%s?l1_entries=100&l1_bytes=1048576&l1_ttl=2", base);
    llmc_cache *c = open_url(url);
    ck_assert_uint_eq(stats(c).l1_enabled, 1);
    ck_assert_uint_eq(stats(c).l1_live, 1); /* no channel: always live */
    llmc_cache_close(c);
    snprintf(url, sizeof url, "%s?l1=0", base);
    c = open_url(url);
    ck_assert_uint_eq(stats(c).l1_enabled, 0);
    llmc_cache_close(c);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- Redis: hits without a round trip ---- */

START_TEST(redis_hit_without_round_trip)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=60");
    llmc_cache *b = open_redis("timeout_ms=1000"); /* no tier: writes behind a's back */
    wait_live(a, 1);

    /* Written by another handle: the first read goes to Redis, the rest
     * come from the tier. */
    put_entry(b, "ns:k1", "{\"answer\":1}", 60000);
    reset_stats();
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(get_entry(a, "ns:k1"), LLMC_OK);
    ck_assert_int_eq(calls("get"), 1);
    llmc_stats s = stats(a);
    ck_assert_uint_eq(s.l1_hits, 4);
    ck_assert_uint_eq(s.l1_fills, 1);
    ck_assert_uint_ge(s.hits, 5);

    /* Written through the tier: not even the first read goes out. */
    reset_stats();
    put_entry(a, "ns:k2", "{\"answer\":2}", 60000);
    set_str(a, "raw:k3", "three", 60000);
    char v[64];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get_entry(a, "ns:k2"), LLMC_OK);
        ck_assert_int_eq(get_str(a, "raw:k3", v, sizeof v), LLMC_OK);
        ck_assert_str_eq(v, "three");
    }
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_int_eq(calls("set"), 2);

    /* A raw value read from Redis has no expiry we can see: not kept. */
    set_str(b, "raw:k4", "four", 60000);
    reset_stats();
    ck_assert_int_eq(get_str(a, "raw:k4", v, sizeof v), LLMC_OK);
    ck_assert_int_eq(get_str(a, "raw:k4", v, sizeof v), LLMC_OK);
    ck_assert_int_eq(calls("get"), 2);

    /* The tier's counters reach stats_foreach too. */
    llmc_cache_close(a);
    llmc_cache_close(b);
    redis_down();
}
END_TEST

/* ---- the entry's own TTL bounds the copy ---- */

START_TEST(redis_copy_never_outlives_entry)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=3600");
    llmc_cache *b = open_redis("timeout_ms=1000");
    wait_live(a, 1);
    char v[64];
    /* Written through the tier with a 600 ms TTL. */
    set_str(a, "raw:short", "soon gone", 600);
    ck_assert_int_eq(get_str(a, "raw:short", v, sizeof v), LLMC_OK);
    /* Read from Redis into the tier: the envelope's expiry comes along. */
    put_entry(b, "ns:short", "{\"a\":1}", 600);
    ck_assert_int_eq(get_entry(a, "ns:short"), LLMC_OK);
    ck_assert_int_eq(get_entry(a, "ns:short"), LLMC_OK);
    ck_assert_uint_ge(stats(a).l1_hits, 2);
    usleep(900 * 1000);
    /* A raw get returns any bytes the tier still holds, envelope or not:
     * a miss here means the copy expired with the value. */
    ck_assert_int_eq(get_str(a, "raw:short", v, sizeof v), LLMC_MISS);
    ck_assert_int_eq(get_str(a, "ns:short", v, sizeof v), LLMC_MISS);
    llmc_cache_close(a);
    llmc_cache_close(b);
    redis_down();
}
END_TEST

/* ---- namespaces and tenants ---- */

START_TEST(redis_namespace_flush_reaches_tiers)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=60");
    llmc_cache *b = open_redis("l1_ttl=60");
    wait_live(a, 1);
    wait_live(b, 1);
    const char *keys[] = {"t1:ns:k", "t1:other:k", "t2:ns:k", "t1x:ns:k", "ns:k"};
    for (size_t i = 0; i < 5; i++)
        put_entry(a, keys[i], "{\"v\":1}", 60000);
    wait_invalidations(b, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert(warm(b, keys[i])); /* b's tier holds them */
    uint64_t inv0 = stats(b).l1_invalidations;

    /* Tenant t1's sub-namespace ns, flushed through a. */
    uint64_t n = 0;
    ck_assert_int_eq(llmc_cache_flush_in(a, "t1", "ns", &n), LLMC_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(get_entry(a, "t1:ns:k"), LLMC_MISS);
    /* b hears of it within the bound (polled, not timed). */
    int seen = 0;
    for (int i = 0; i < 1000 && !seen; i++) {
        seen = get_entry(b, "t1:ns:k") == LLMC_MISS;
        if (!seen)
            usleep(10000);
    }
    ck_assert_msg(seen, "b still serves t1:ns:k after the flush");
    reset_stats();
    /* Everything else is still in b's tier: no round trip for them. */
    for (size_t i = 1; i < 5; i++)
        ck_assert_msg(get_entry(b, keys[i]) == LLMC_OK, "%s lost", keys[i]);
    ck_assert_int_eq(calls("get"), 0);

    /* A whole tenant. */
    ck_assert_int_eq(llmc_cache_flush_in(a, "t1", NULL, &n), LLMC_OK);
    seen = 0;
    for (int i = 0; i < 1000 && !seen; i++) {
        seen = get_entry(b, "t1:other:k") == LLMC_MISS;
        if (!seen)
            usleep(10000);
    }
    ck_assert(seen);
    reset_stats();
    ck_assert_int_eq(get_entry(b, "t2:ns:k"), LLMC_OK);
    ck_assert_int_eq(get_entry(b, "t1x:ns:k"), LLMC_OK);
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_uint_ge(stats(b).l1_invalidations, inv0 + 2);
    llmc_cache_close(a);
    llmc_cache_close(b);
    redis_down();
}
END_TEST

/* ---- hostile messages on the channel ---- */

static void publish_raw(const char *msg)
{
    const char *args[] = {"PUBLISH", "llmcache:l1", msg, NULL};
    free(redissrv_cli(&rs, args));
}

START_TEST(redis_hostile_messages)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=600");
    wait_live(a, 1);
    put_entry(a, "ns:keep", "{\"v\":1}", 600000);
    put_entry(a, "ns:drop", "{\"v\":2}", 600000);
    /* Too short, an unknown kind, empty key and prefix, binary junk:
     * ignored. */
    publish_raw("");
    publish_raw("x");
    publish_raw("0123456789abcdefZns:keep");
    publish_raw("0123456789abcdefk");
    publish_raw("0123456789abcdefp");
    publish_raw("\xff\xfe\x00garbage");
    /* A well-formed message can only drop a copy. */
    publish_raw("0123456789abcdefkns:drop");
    for (int i = 0; i < 1000 && stats(a).l1_invalidations < 1; i++)
        usleep(10000);
    ck_assert_uint_eq(stats(a).l1_invalidations, 1);
    ck_assert_uint_eq(stats(a).l1_live, 1);
    reset_stats();
    ck_assert_int_eq(get_entry(a, "ns:keep"), LLMC_OK);
    ck_assert_int_eq(calls("get"), 0);
    ck_assert_int_eq(get_entry(a, "ns:drop"), LLMC_OK); /* from Redis again */
    ck_assert_int_eq(calls("get"), 1);
    llmc_cache_close(a);
    redis_down();
}
END_TEST

/* ---- two processes sharing one Redis ---- */

/* The child: opens its own handle, reads key into its tier, says so on
 * `ready`, then polls until the key is gone from its view; exit 0 when
 * it saw the delete (and then the flush) within the bounded wait. */
static int child_main(const char *url, int ready)
{
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(url, NULL, &c, &e) != LLMC_OK)
        return 10;
    llmc_stats s;
    for (int i = 0; i < 1000; i++) {
        llmc_cache_stats(c, &s, sizeof s);
        if (s.l1_live)
            break;
        usleep(10000);
    }
    int found = 0;
    for (int i = 0; i < 1000 && !found; i++) {
        found = get_entry(c, "ns:shared") == LLMC_OK && get_entry(c, "ns:other") == LLMC_OK;
        if (!found)
            usleep(10000);
    }
    if (!found)
        return 11;
    /* From the tier now. */
    if (!warm(c, "ns:shared"))
        return 13;
    if (write(ready, "r", 1) != 1)
        return 14;
    int gone = 0;
    for (int i = 0; i < 1000 && !gone; i++) {
        gone = get_entry(c, "ns:shared") == LLMC_MISS;
        if (!gone)
            usleep(10000);
    }
    if (!gone)
        return 15;
    if (get_entry(c, "ns:other") != LLMC_OK)
        return 16; /* only the deleted key went */
    if (write(ready, "d", 1) != 1)
        return 14;
    gone = 0;
    for (int i = 0; i < 1000 && !gone; i++) {
        gone = get_entry(c, "ns:other") == LLMC_MISS;
        if (!gone)
            usleep(10000);
    }
    llmc_cache_close(c);
    return gone ? 0 : 17;
}

START_TEST(redis_two_processes)
{
    redis_up();
    char url[2000];
    snprintf(url, sizeof url, "%s%sl1_ttl=600", rs.url, strchr(rs.url, '?') ? "&" : "?");
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    /* Fork before this process opens anything: the child gets no
     * threads or locks of ours. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        _exit(child_main(url, p[1]));
    }
    close(p[1]);
    llmc_cache *a = open_url(url);
    wait_live(a, 1);
    put_entry(a, "ns:shared", "{\"v\":1}", 600000);
    put_entry(a, "ns:other", "{\"v\":2}", 600000);
    char ch = 0;
    ck_assert_int_eq(read(p[0], &ch, 1), 1);
    ck_assert_int_eq(ch, 'r');
    ck_assert_int_eq(llmc_cache_del(a, "ns:shared", 9), LLMC_OK);
    ck_assert_int_eq(read(p[0], &ch, 1), 1);
    ck_assert_int_eq(ch, 'd');
    uint64_t n = 0;
    ck_assert_int_eq(llmc_cache_flush(a, "ns", &n), LLMC_OK);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    close(p[0]);
    llmc_cache_close(a);
    redis_down();
}
END_TEST

/* ---- the server goes away ---- */

START_TEST(redis_restart_resubscribes)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=600&command_timeout_ms=300&connect_timeout_ms=300");
    wait_live(a, 1);
    set_str(a, "raw:k", "v1", 600000);
    char v[64];
    ck_assert_int_eq(get_str(a, "raw:k", v, sizeof v), LLMC_OK);

    redissrv_kill(&rs);
    wait_live(a, 0);
    /* Not served from the tier while the subscription is gone: the read
     * goes to the dead server and fails. */
    llmc_status st = get_str(a, "raw:k", v, sizeof v);
    ck_assert_msg(st != LLMC_OK, "served from the tier while unsubscribed");

    ck_assert_int_eq(redissrv_restart(&rs), 0);
    wait_live(a, 1);
    ck_assert_uint_ge(stats(a).l1_resyncs, 2);
    /* The restarted server has no data (no persistence in the test). */
    set_str(a, "raw:k", "v2", 600000);
    reset_stats();
    ck_assert_int_eq(get_str(a, "raw:k", v, sizeof v), LLMC_OK);
    ck_assert_str_eq(v, "v2");
    ck_assert_int_eq(calls("get"), 0);
    llmc_cache_close(a);
    redis_down();
}
END_TEST

START_TEST(redis_paused_stops_serving)
{
    redis_up();
    llmc_cache *a = open_redis("l1_ttl=600&l1_sync_ms=300&command_timeout_ms=200");
    wait_live(a, 1);
    set_str(a, "raw:k", "v1", 600000);
    char v[64];
    ck_assert_int_eq(get_str(a, "raw:k", v, sizeof v), LLMC_OK);
    /* The connection stays open but nothing answers: the tier stops
     * serving once its subscription is unconfirmed for l1_sync_ms. */
    ck_assert_int_eq(kill(rs.srv.pid, SIGSTOP), 0);
    usleep(800 * 1000);
    uint32_t live = stats(a).l1_live;
    llmc_status st = get_str(a, "raw:k", v, sizeof v);
    ck_assert_int_eq(kill(rs.srv.pid, SIGCONT), 0);
    ck_assert_uint_eq(live, 0);
    ck_assert_msg(st != LLMC_OK, "served from the tier past l1_sync_ms");
    wait_live(a, 1);
    llmc_cache_close(a);
    redis_down();
}
END_TEST

/* ---- Cluster and Sentinel: the same channel through one master ---- */

/* a deletes keys that b holds in its tier; b must hear of each. */
static void two_handles_see_deletes(const char *url)
{
    char u[2200];
    snprintf(u, sizeof u, "%s%sl1_ttl=600", url, strchr(url, '?') ? "&" : "?");
    llmc_cache *a = open_url(u);
    llmc_cache *b = open_url(u);
    wait_live(a, 1);
    wait_live(b, 1);
    char k[32];
    for (int i = 0; i < 8; i++) { /* keys over several slots and masters */
        snprintf(k, sizeof k, "ns:k%d", i);
        put_entry(a, k, "{\"v\":1}", 600000);
    }
    wait_invalidations(b, 8);
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof k, "ns:k%d", i);
        ck_assert_msg(warm(b, k), "%s: %s never served from the tier", url, k);
    }
    for (int i = 0; i < 8; i += 2) {
        snprintf(k, sizeof k, "ns:k%d", i);
        ck_assert_int_eq(llmc_cache_del(a, k, strlen(k)), LLMC_OK);
    }
    for (int i = 0; i < 8; i += 2) {
        snprintf(k, sizeof k, "ns:k%d", i);
        int gone = 0;
        for (int j = 0; j < 1000 && !gone; j++) {
            gone = get_entry(b, k) == LLMC_MISS;
            if (!gone)
                usleep(10000);
        }
        ck_assert_msg(gone, "%s: b still serves %s after a deleted it", url, k);
    }
    for (int i = 1; i < 8; i += 2) {
        snprintf(k, sizeof k, "ns:k%d", i);
        ck_assert_int_eq(get_entry(b, k), LLMC_OK);
    }
    llmc_cache_close(a);
    llmc_cache_close(b);
}

START_TEST(cluster_invalidation)
{
    rcluster rc;
    ck_assert_msg(rcluster_start(&rc, 3, 0) == 0, "cannot start a redis cluster");
    two_handles_see_deletes(rc.url);
    rcluster_stop(&rc);
}
END_TEST

START_TEST(sentinel_invalidation)
{
    rsentinel st;
    ck_assert_msg(rsentinel_start(&st) == 0, "cannot start redis with sentinels");
    two_handles_see_deletes(st.url);
    rsentinel_stop(&st);
}
END_TEST

/* ---- memcached: no channel, bounded by l1_ttl ---- */

static testsrv mc;

static int memcached_up(void)
{
    if (testsrv_mkdir(&mc, "tier-mc") != 0)
        return -1;
    int port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "16", "-t", "1",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[11] = NULL;
    mc.port = port;
    if (testsrv_spawn(&mc, argv) != 0)
        return -1;
    return testsrv_wait_tcp(&mc, port, 5000);
}

START_TEST(memcached_ttl_bound)
{
    ck_assert_msg(memcached_up() == 0, "cannot start memcached");
    char url[200];
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d?l1_ttl=1&l1_entries=1000", mc.port);
    llmc_cache *a = open_url(url);
    snprintf(url, sizeof url, "memcached://127.0.0.1:%d", mc.port);
    llmc_cache *b = open_url(url);
    put_entry(b, "ns:k", "{\"v\":1}", 600000);
    ck_assert_int_eq(get_entry(a, "ns:k"), LLMC_OK);
    ck_assert_uint_eq(stats(a).l1_fills, 1);
    /* Deleted behind a's back: a's copy lives on, but not past l1_ttl. */
    ck_assert_int_eq(llmc_cache_del(b, "ns:k", 4), LLMC_OK);
    ck_assert_int_eq(get_entry(a, "ns:k"), LLMC_OK);
    ck_assert_uint_eq(stats(a).l1_hits, 1);
    usleep(1200 * 1000);
    ck_assert_int_eq(get_entry(a, "ns:k"), LLMC_MISS);
    /* A delete through a itself takes effect at once. */
    put_entry(a, "ns:k2", "{\"v\":2}", 600000);
    ck_assert_int_eq(get_entry(a, "ns:k2"), LLMC_OK);
    ck_assert_int_eq(llmc_cache_del(a, "ns:k2", 5), LLMC_OK);
    ck_assert_int_eq(get_entry(a, "ns:k2"), LLMC_MISS);
    /* Evictions are counted: 1000 entries at most. */
    for (int i = 0; i < 1100; i++) {
        char k[32];
        snprintf(k, sizeof k, "ns:e%d", i);
        put_entry(a, k, "{}", 600000);
    }
    ck_assert_uint_ge(stats(a).l1_evictions, 100);
    llmc_cache_close(a);
    llmc_cache_close(b);
    testsrv_stop(&mc);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tier");
    TCase *t = tcase_create("tier");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, options_refused);
    tcase_add_test(t, redis_hit_without_round_trip);
    tcase_add_test(t, redis_copy_never_outlives_entry);
    tcase_add_test(t, redis_namespace_flush_reaches_tiers);
    tcase_add_test(t, redis_two_processes);
    tcase_add_test(t, redis_hostile_messages);
    tcase_add_test(t, redis_restart_resubscribes);
    tcase_add_test(t, redis_paused_stops_serving);
    tcase_add_test(t, memcached_ttl_bound);
    tcase_add_test(t, cluster_invalidation);
    tcase_add_test(t, sentinel_invalidation);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
