/* Core units: status strings, buffers, options, URL parsing, cache open
 * errors, the dispatcher's argument checks and the circuit breaker. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

START_TEST(t_status)
{
    ck_assert_int_eq(LLMC_OK, 0);
    ck_assert_str_eq(llmc_strerror(LLMC_OK), "success");
    ck_assert_str_eq(llmc_strerror(LLMC_MISS), "cache miss");
    ck_assert_str_eq(llmc_status_name(LLMC_EINVAL), "EINVAL");
    ck_assert_str_eq(llmc_strerror((llmc_status)9999), "unknown status");
    ck_assert_str_eq(llmc_status_name((llmc_status)-1), "UNKNOWN");
    for (int i = 0; i < LLMC_STATUS_COUNT_; i++) {
        ck_assert(strlen(llmc_strerror((llmc_status)i)) > 0);
        ck_assert(strcmp(llmc_status_name((llmc_status)i), "UNKNOWN") != 0);
    }
    ck_assert_str_eq(llmc_version(), LLMC_VERSION_STRING);
}
END_TEST

START_TEST(t_buf)
{
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_buf_append(&b, "ab\0c", 4), LLMC_OK);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_int_eq(b.data[4], 0);
    ck_assert_int_eq(llmc_buf_printf(&b, "%d-%s", 42, "x"), LLMC_OK);
    ck_assert_mem_eq(b.data, "ab\0c42-x", 8);
    char big[1000];
    memset(big, 'z', sizeof big);
    ck_assert_int_eq(llmc_buf_printf(&b, "%.*s", 1000, big), LLMC_OK);
    ck_assert_uint_eq(b.len, 1008);
    ck_assert_int_eq(llmc_buf_set(&b, "q", 1), LLMC_OK);
    ck_assert_uint_eq(b.len, 1);
    size_t n;
    char *p = llmc_buf_steal(&b, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(p, "q");
    llmc_free(p);
    ck_assert_ptr_null(b.data);
    llmc_buf_free(&b);
    llmc_buf_free(NULL);
    llmc_err e;
    ck_assert_int_eq(llmc_err_set(&e, LLMC_ETOOBIG, 7, "x=%d", 3), LLMC_ETOOBIG);
    ck_assert_str_eq(e.msg, "x=3");
    ck_assert_int_eq(e.native, 7);
    ck_assert_int_eq(llmc_err_set(NULL, LLMC_EIO, 0, "ignored"), LLMC_EIO);
}
END_TEST

START_TEST(t_options)
{
    llmc_options *o = llmc_options_new();
    ck_assert_int_eq(llmc_options_set(o, "Max_Entries", "10"), LLMC_OK);
    ck_assert_str_eq(llmc_options_get(o, "max_entries"), "10");
    ck_assert_int_eq(llmc_options_set(o, "MAX_ENTRIES", "20"), LLMC_OK);
    ck_assert_uint_eq(llmc_options_count(o), 1);
    ck_assert_int_eq(llmc_options_set(o, "", "x"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_options_set(o, "a", NULL), LLMC_EINVAL);
    llmc_err e;
    int64_t v;
    ck_assert_int_eq(llmc_options_get_i64(o, "max_entries", 0, 100, 5, &v, &e), LLMC_OK);
    ck_assert_int_eq(v, 20);
    ck_assert_int_eq(llmc_options_get_i64(o, "absent", 0, 100, 5, &v, &e), LLMC_OK);
    ck_assert_int_eq(v, 5);
    llmc_options_set(o, "n", "12abc");
    ck_assert_int_eq(llmc_options_get_i64(o, "n", 0, 100, 5, &v, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "option n"));
    ck_assert_ptr_nonnull(strstr(e.msg, "not an integer"));
    llmc_options_set_int(o, "n", 101);
    ck_assert_int_eq(llmc_options_get_i64(o, "n", 0, 100, 5, &v, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "out of range"));
    llmc_options_set(o, "n", "99999999999999999999999");
    ck_assert_int_eq(llmc_options_get_i64(o, "n", 0, INT64_MAX, 5, &v, &e), LLMC_EINVAL);
    int b;
    llmc_options_set(o, "flag", "Yes");
    ck_assert_int_eq(llmc_options_get_bool(o, "flag", 0, &b, &e), LLMC_OK);
    ck_assert_int_eq(b, 1);
    llmc_options_set(o, "flag", "maybe");
    ck_assert_int_eq(llmc_options_get_bool(o, "flag", 0, &b, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "flag"));
    llmc_options *d = llmc_options_dup(o);
    ck_assert_str_eq(llmc_options_get(d, "flag"), "maybe");
    ck_assert_int_eq(llmc_options_unset(d, "flag"), LLMC_OK);
    ck_assert_int_eq(llmc_options_unset(d, "flag"), LLMC_MISS);
    ck_assert_ptr_null(llmc_options_get(d, "flag"));
    ck_assert_str_eq(llmc_options_get(o, "flag"), "maybe");
    llmc_options_free(d);
    llmc_options_free(o);
    llmc_options_free(NULL);
}
END_TEST

START_TEST(t_url_parse)
{
    llmc_url u;
    llmc_err e;
    ck_assert_int_eq(llmc__url_parse("redis://user:s%40cret@Host.example:6380/2?timeout_ms=50&namespace=a%20b", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.scheme, "redis");
    ck_assert_str_eq(u.user, "user");
    ck_assert_str_eq(u.password, "s@cret");
    ck_assert_uint_eq(u.n_hosts, 1);
    ck_assert_str_eq(u.hosts[0].host, "Host.example");
    ck_assert_int_eq(u.hosts[0].port, 6380);
    ck_assert_str_eq(u.path, "/2");
    ck_assert_str_eq(llmc_options_get(u.query, "timeout_ms"), "50");
    ck_assert_str_eq(llmc_options_get(u.query, "namespace"), "a b");
    ck_assert_ptr_null(strstr(u.redacted, "cret"));
    ck_assert_ptr_nonnull(strstr(u.redacted, "***"));
    llmc__url_free(&u);

    ck_assert_int_eq(llmc__url_parse("redis://:pw@[::1]:7000", &u, &e), LLMC_OK);
    ck_assert_ptr_null(u.user);
    ck_assert_str_eq(u.password, "pw");
    ck_assert_str_eq(u.hosts[0].host, "::1");
    ck_assert_int_eq(u.hosts[0].port, 7000);
    llmc__url_free(&u);

    ck_assert_int_eq(llmc__url_parse("memcached://a:11211,b:11212,c", &u, &e), LLMC_OK);
    ck_assert_uint_eq(u.n_hosts, 3);
    ck_assert_str_eq(u.hosts[1].host, "b");
    ck_assert_int_eq(u.hosts[1].port, 11212);
    ck_assert_int_eq(u.hosts[2].port, -1);
    llmc__url_free(&u);

    ck_assert_int_eq(llmc__url_parse("sqlite:///var/tmp/x.db?ttl=5", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.location, "/var/tmp/x.db");
    ck_assert_str_eq(u.path, "/var/tmp/x.db");
    ck_assert_uint_eq(u.n_hosts, 0);
    llmc__url_free(&u);

    ck_assert_int_eq(llmc__url_parse("sqlite://rel/dir/x.db", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.location, "rel/dir/x.db");
    llmc__url_free(&u);

    ck_assert_int_eq(llmc__url_parse("unix://:pw@/tmp/redis.sock?db=3", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.path, "/tmp/redis.sock");
    ck_assert_str_eq(u.password, "pw");
    llmc__url_free(&u);

    /* a password containing '@' and ':' that was escaped */
    ck_assert_int_eq(llmc__url_parse("redis://u:a%3Ab%40c@h", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.password, "a:b@c");
    llmc__url_free(&u);

    /* host-list errors are kept for backends that need hosts, name the
     * problem and never leak the password */
    ck_assert_int_eq(llmc__url_parse("redis://u:topsecret@h:99999", &u, &e), LLMC_OK);
    ck_assert_int_eq(u.host_status, LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(u.host_error, "port"));
    ck_assert_ptr_null(strstr(u.host_error, "topsecret"));
    ck_assert_uint_eq(u.n_hosts, 0);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("redis://u:topsecret@h:12x", &u, &e), LLMC_OK);
    ck_assert_int_eq(u.host_status, LLMC_EINVAL);
    ck_assert_ptr_null(strstr(u.host_error, "topsecret"));
    llmc__url_free(&u);
    /* a path-like location parses (sqlite decides what it means) */
    ck_assert_int_eq(llmc__url_parse("sqlite://:memory:", &u, &e), LLMC_OK);
    ck_assert_str_eq(u.location, ":memory:");
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("local://?max_entries", &u, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "max_entries"));
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("local://?ttl=1&ttl=2", &u, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "twice"));
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("local://?x=%zz", &u, &e), LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("://nothing", &u, &e), LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("red is://x", &u, &e), LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("", &u, &e), LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("redis://h\n", &u, &e), LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("redis://[::1", &u, &e), LLMC_OK);
    ck_assert_int_eq(u.host_status, LLMC_EINVAL);
    llmc__url_free(&u);
    ck_assert_int_eq(llmc__url_parse("redis://a,,b", &u, &e), LLMC_OK);
    ck_assert_ptr_nonnull(strstr(u.host_error, "empty host"));
    llmc__url_free(&u);
    /* secret-looking query options are redacted too */
    ck_assert_int_eq(llmc__url_parse("x://h?password=hunter2&db=1", &u, &e), LLMC_OK);
    ck_assert_ptr_null(strstr(u.redacted, "hunter2"));
    ck_assert_ptr_nonnull(strstr(u.redacted, "db=1"));
    llmc__url_free(&u);
}
END_TEST

static void expect_open_error(const char *url, llmc_status want, const char *needle)
{
    llmc_cache *c = (llmc_cache *)1;
    llmc_err e;
    llmc_status st = llmc_cache_open(url, NULL, &c, &e);
    ck_assert_msg(st == want, "open %s: got %s want %s (%s)", url, llmc_status_name(st),
                  llmc_status_name(want), e.msg);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, needle) != NULL, "open %s: message \"%s\" lacks \"%s\"", url,
                  e.msg, needle);
}

START_TEST(t_open_errors)
{
    expect_open_error("nosuch://x", LLMC_ENOTFOUND, "nosuch");
    expect_open_error("nosuch://x", LLMC_ENOTFOUND, "local");
    expect_open_error("local://?bogus=1", LLMC_EINVAL, "bogus");
    expect_open_error("local://?max_entries=-1", LLMC_EINVAL, "max_entries");
    expect_open_error("local://?max_entries=ten", LLMC_EINVAL, "max_entries");
    expect_open_error("local://?ttl=1.5", LLMC_EINVAL, "ttl");
    expect_open_error("local://?mode=sometimes", LLMC_EINVAL, "mode");
    expect_open_error("local://?serializer=xml", LLMC_ENOTFOUND, "xml");
    expect_open_error("local://?key_strategy=v9", LLMC_ENOTFOUND, "v9");
    expect_open_error("local://?namespace=a:b", LLMC_EINVAL, "namespace");
    expect_open_error("local://?timeout_ms=0", LLMC_EINVAL, "timeout_ms");
    expect_open_error("local://somehost", LLMC_EINVAL, "local");
    expect_open_error("not a url", LLMC_EINVAL, "scheme");
#if LLMC_HAVE_REDIS
    expect_open_error("redis://u:topsecret@h:99999", LLMC_EINVAL, "port");
    expect_open_error("redis://u:topsecret@h:99999", LLMC_EINVAL, "***");
#endif
#if !LLMC_HAVE_REDIS
    expect_open_error("redis://localhost", LLMC_ENOTBUILT, "not built");
#endif
    /* type strings */
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "max_entries", "5");
    llmc_options_set(o, "namespace", "app");
    ck_assert_int_eq(llmc_cache_open_type("LOCAL", o, &c, &e), LLMC_OK);
    ck_assert_str_eq(llmc_cache_backend_name(c), "local");
    ck_assert_str_eq(llmc_cache_namespace(c), "app");
    ck_assert_str_eq(llmc_cache_option(c, "max_entries"), "5");
    llmc_cache_close(c);
    llmc_options_set(o, "nonsense", "1");
    ck_assert_int_eq(llmc_cache_open_type("local", o, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "nonsense"));
    ck_assert_int_eq(llmc_cache_open_type("local://", o, &c, &e), LLMC_EINVAL);
    /* API options override URL options */
    llmc_options_unset(o, "nonsense");
    llmc_options_set(o, "ttl", "7");
    ck_assert_int_eq(llmc_cache_open("local://?ttl=3", o, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_default_ttl(c), 7000);
    llmc_cache_close(c);
    llmc_options_free(o);
    llmc_cache_close(NULL);
}
END_TEST

START_TEST(t_open_default_env)
{
    llmc_cache *c = NULL;
    llmc_err e;
    setenv("LLMCACHE_URL", "local://?namespace=fromenv", 1);
    ck_assert_int_eq(llmc_cache_open(NULL, NULL, &c, &e), LLMC_OK);
    ck_assert_str_eq(llmc_cache_namespace(c), "fromenv");
    llmc_cache_close(c);
    setenv("LLMCACHE_URL", "bogus://", 1);
    ck_assert_int_eq(llmc_cache_open("", NULL, &c, &e), LLMC_ENOTFOUND);
    unsetenv("LLMCACHE_URL");
    ck_assert_int_eq(llmc_cache_open(NULL, NULL, &c, &e), LLMC_OK);
    ck_assert_str_eq(llmc_cache_backend_name(c), "local");
    ck_assert_str_eq(llmc_cache_serializer_name(c), "json");
    ck_assert_str_eq(llmc_cache_key_strategy_name(c), "v1");
    ck_assert_int_eq(llmc_cache_get_mode(c), LLMC_MODE_DEFAULT_ON);
    llmc_cache_close(c);
    ck_assert_int_eq(llmc_cache_open("local://?mode=default_off&serializer=binary", NULL, &c, &e),
                     LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_mode(c), LLMC_MODE_DEFAULT_OFF);
    ck_assert_str_eq(llmc_cache_serializer_name(c), "binary");
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_bad_args)
{
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_cache_open("local://", NULL, &c, &e), LLMC_OK);
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "", 0, &v), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "empty key"));
    ck_assert_int_eq(llmc_cache_errcode(c), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_set(c, NULL, 3, "x", 1, 0), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, NULL, 3, 0), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, "x", 1, -2), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "ttl"));
    char *huge = malloc(70000);
    memset(huge, 'k', 70000);
    ck_assert_int_eq(llmc_cache_set(c, huge, 70000, "x", 1, 0), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "limit"));
    free(huge);
    ck_assert_int_eq(llmc_cache_get(NULL, "k", 1, &v), LLMC_EINVAL);
    /* empty value is a value */
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, NULL, 0, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "k", 1, &v), LLMC_OK);
    ck_assert_uint_eq(v.len, 0);
    llmc_buf_free(&v);
    llmc_cache_close(c);
}
END_TEST

/* A backend that fails on demand, to drive the circuit breaker. */
static int flaky_down;
static _Atomic int flaky_calls;
static llmc_status flaky_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    (void)cfg;
    (void)err;
    *ctx = &flaky_down;
    return LLMC_OK;
}
static void flaky_close(void *ctx) { (void)ctx; }
static llmc_status flaky_get(void *ctx, const char *k, size_t kl, llmc_buf *out, llmc_err *err)
{
    (void)ctx;
    (void)k;
    (void)kl;
    (void)out;
    flaky_calls++;
    if (flaky_down)
        return llmc_err_set(err, LLMC_ECONN, 111, "flaky: connection refused");
    return LLMC_MISS;
}
static llmc_status flaky_set(void *ctx, const char *k, size_t kl, const void *v, size_t vl,
                             int64_t ttl, llmc_err *err)
{
    (void)ctx;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (void)ttl;
    flaky_calls++;
    if (flaky_down)
        return llmc_err_set(err, LLMC_ETIMEDOUT, 0, "flaky: timed out");
    return LLMC_OK;
}
static llmc_status flaky_del(void *ctx, const char *k, size_t kl, llmc_err *err)
{
    (void)ctx;
    (void)k;
    (void)kl;
    (void)err;
    return LLMC_MISS;
}
static const llmc_backend_ops flaky_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "flaky", "test backend"),
    .caps = LLMC_CAP_THREAD_SAFE,
    .open = flaky_open,
    .close = flaky_close,
    .get = flaky_get,
    .set = flaky_set,
    .del = flaky_del,
};

START_TEST(t_breaker)
{
    llmc_err e;
    ck_assert_int_eq(llmc_register_backend(&flaky_ops, &e), LLMC_OK);
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open("flaky://?breaker_threshold=3&breaker_cooldown_ms=200",
                                     NULL, &c, &e), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    flaky_down = 1;
    /* raw API: real status */
    ck_assert_int_eq(llmc_cache_get(c, "k", 1, &l.raw), LLMC_ECONN);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "refused"));
    ck_assert_int_eq(llmc_cache_native_errcode(c), 111);
    /* soft calls: misses and dropped writes */
    flaky_calls = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    ck_assert_int_eq(flaky_calls, 3);
    /* breaker now open: the backend is not called */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
        ck_assert_int_eq(llmc_cache_put_entry(c, "k", 1, LLMC_CALL_CHAT, "{}", 2, 0,
                                              LLMC_ENTRY_SOFT), LLMC_OK);
    }
    ck_assert_int_eq(flaky_calls, 3);
    llmc_stats s;
    llmc_cache_stats(c, &s, sizeof s);
    ck_assert_uint_eq(s.breaker_trips, 1);
    ck_assert_uint_eq(s.breaker_open, 1);
    ck_assert_uint_eq(s.breaker_skips, 20);
    /* after the cool-down one probe goes through; it fails, so it reopens */
    usleep(250 * 1000);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    ck_assert_int_eq(flaky_calls, 4);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    ck_assert_int_eq(flaky_calls, 4);
    /* backend recovers: the next probe closes the circuit */
    flaky_down = 0;
    usleep(250 * 1000);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    ck_assert_int_eq(flaky_calls, 5);
    llmc_cache_stats(c, &s, sizeof s);
    ck_assert_uint_eq(s.breaker_open, 0);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_SOFT, &l), LLMC_MISS);
    ck_assert_int_eq(flaky_calls, 6);
    /* the raw API never consults the breaker */
    ck_assert_int_eq(llmc_cache_put_entry(c, "k", 1, LLMC_CALL_CHAT, "{}", 2, 0, 0), LLMC_OK);
    /* features the backend lacks */
    ck_assert_int_eq(llmc_cache_flush(c, "ns", NULL), LLMC_ENOTSUP);
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_ENOTSUP);
    int64_t t;
    ck_assert_int_eq(llmc_cache_ttl(c, "k", 1, &t), LLMC_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "flaky"));
    llmc_lookup_free(&l);
    llmc_cache_close(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_status);
    tcase_add_test(tc, t_buf);
    tcase_add_test(tc, t_options);
    tcase_add_test(tc, t_url_parse);
    tcase_add_test(tc, t_open_errors);
    tcase_add_test(tc, t_open_default_env);
    tcase_add_test(tc, t_bad_args);
    tcase_add_test(tc, t_breaker);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
