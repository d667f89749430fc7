/* Entry-level cache calls: the upstream time carried by an entry, and the
 * optional entry MAC (entry_secret) against a writer with access to the
 * backend. Over the in-process local backend; the tampering goes through
 * the raw get/set API, as a writer with backend access would. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"

static llmc_cache *open_url(const char *url)
{
    llmc_cache *c = NULL;
    llmc_err e;
    llmc_status st = llmc_cache_open(url, NULL, &c, &e);
    ck_assert_msg(st == LLMC_OK, "open %s: %s", url, e.msg);
    return c;
}

static const char BODY[] = "{\"choices\":[{\"message\":{\"content\":\"Paris\"}}]}";

START_TEST(t_upstream_ms)
{
    llmc_cache *c = open_url("local://");
    ck_assert_int_eq(llmc_cache_put_entry_ex(c, "k1", 2, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0,
                                             1234, 0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_put_entry(c, "k2", 2, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0, 0),
                     LLMC_OK);
    ck_assert_int_eq(llmc_cache_put_entry_ex(c, "k3", 2, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0,
                                             -5, 0), LLMC_EINVAL);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "k1", 2, -1, 0, &l), LLMC_OK);
    ck_assert_int_eq(l.entry.upstream_ms, 1234);
    ck_assert_int_eq(l.entry.version, LLMC_ENTRY_VERSION);
    ck_assert_int_eq(l.entry.mac_present, 0);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k2", 2, -1, 0, &l), LLMC_OK);
    ck_assert_int_eq(l.entry.upstream_ms, 0);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k3", 2, -1, 0, &l), LLMC_MISS);
    llmc_lookup_free(&l);
    llmc_cache_close(c);
}
END_TEST

static uint64_t mac_failures(llmc_cache *c)
{
    llmc_stats s;
    ck_assert_int_eq(llmc_cache_stats(c, &s, sizeof s), LLMC_OK);
    return s.mac_failures;
}

/* What a writer with backend access but without the secret can do: read
 * an entry, point it at another key (fixing the key digest and the
 * checksum, which are not secret), and write it back. */
static void forge_move(llmc_cache *c, const char *from, const char *to, const char *ser)
{
    llmc_buf raw = LLMC_BUF_INIT, scratch = LLMC_BUF_INIT, out = LLMC_BUF_INIT;
    llmc_err err;
    ck_assert_int_eq(llmc_cache_get(c, from, strlen(from), &raw), LLMC_OK);
    llmc_entry d;
    ck_assert_int_eq(llmc_entry_decode(ser, raw.data, raw.len, from, strlen(from), &d, &scratch,
                                       &err), LLMC_OK);
    llmc_sha256(to, strlen(to), d.key_sha256);
    ck_assert_int_eq(llmc_entry_encode(ser, &d, &out, &err), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, to, strlen(to), out.data, out.len, 0), LLMC_OK);
    llmc_buf_free(&raw);
    llmc_buf_free(&scratch);
    llmc_buf_free(&out);
}

START_TEST(t_mac)
{
    const char *sers[] = {"json", "binary"};
    for (size_t s = 0; s < 2; s++) {
        char url[256];
        snprintf(url, sizeof url, "local://?serializer=%s&entry_secret=s3cr%%65t-A", sers[s]);
        llmc_cache *c = open_url(url);
        /* the secret never shows: not in the URL, not as an option */
        ck_assert_ptr_null(strstr(llmc_cache_url(c), "s3cr"));
        ck_assert_ptr_nonnull(strstr(llmc_cache_url(c), "entry_secret=***"));
        ck_assert_ptr_null(llmc_cache_option(c, "entry_secret"));

        ck_assert_int_eq(llmc_cache_put_entry_ex(c, "good", 4, LLMC_CALL_CHAT, BODY,
                                                 sizeof BODY - 1, 0, 77, 0), LLMC_OK);
        llmc_lookup l = LLMC_LOOKUP_INIT;
        ck_assert_int_eq(llmc_cache_get_entry(c, "good", 4, -1, 0, &l), LLMC_OK);
        ck_assert_int_eq(l.entry.mac_present, 1);
        ck_assert_int_eq(l.entry.upstream_ms, 77);
        ck_assert_uint_eq(mac_failures(c), 0);

        /* the answer of "good" moved under "victim": a miss, counted */
        forge_move(c, "good", "victim", sers[s]);
        ck_assert_int_eq(llmc_cache_get_entry(c, "victim", 6, -1, 0, &l), LLMC_MISS);
        ck_assert_uint_eq(mac_failures(c), 1);

        /* an entry with no MAC (written without the secret) is a miss */
        llmc_cache *plain = NULL;
        char purl[128];
        snprintf(purl, sizeof purl, "local://?serializer=%s", sers[s]);
        plain = open_url(purl);
        ck_assert_int_eq(llmc_cache_put_entry(plain, "nomac", 5, LLMC_CALL_CHAT, BODY,
                                              sizeof BODY - 1, 0, 0), LLMC_OK);
        llmc_buf raw = LLMC_BUF_INIT;
        ck_assert_int_eq(llmc_cache_get(plain, "nomac", 5, &raw), LLMC_OK);
        ck_assert_int_eq(llmc_cache_set(c, "nomac", 5, raw.data, raw.len, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(c, "nomac", 5, -1, 0, &l), LLMC_MISS);
        ck_assert_uint_eq(mac_failures(c), 2);
        /* ...and a MACed entry under another secret too */
        llmc_buf_clear(&raw);
        snprintf(url, sizeof url, "local://?serializer=%s&entry_secret=other", sers[s]);
        llmc_cache *other = open_url(url);
        ck_assert_int_eq(llmc_cache_put_entry(other, "good", 4, LLMC_CALL_CHAT, "{\"x\":1}", 7, 0,
                                              0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get(other, "good", 4, &raw), LLMC_OK);
        ck_assert_int_eq(llmc_cache_set(c, "good", 4, raw.data, raw.len, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(c, "good", 4, -1, 0, &l), LLMC_MISS);
        ck_assert_uint_eq(mac_failures(c), 3);
        /* without a secret, MACed entries still read (no check is possible) */
        ck_assert_int_eq(llmc_cache_set(plain, "good", 4, raw.data, raw.len, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(plain, "good", 4, -1, 0, &l), LLMC_OK);
        ck_assert_mem_eq(l.entry.body, "{\"x\":1}", 7);
        /* the same forgery succeeds where there is no secret: that is the
         * attack the MAC closes */
        ck_assert_int_eq(llmc_cache_put_entry(plain, "a", 1, LLMC_CALL_CHAT, BODY,
                                              sizeof BODY - 1, 0, 0), LLMC_OK);
        forge_move(plain, "a", "b", sers[s]);
        ck_assert_int_eq(llmc_cache_get_entry(plain, "b", 1, -1, 0, &l), LLMC_OK);
        ck_assert_uint_eq(mac_failures(plain), 0);
        /* tampered upstream time or expiry under a correct CRC: a miss */
        ck_assert_int_eq(llmc_cache_put_entry_ex(c, "t", 1, LLMC_CALL_CHAT, BODY,
                                                 sizeof BODY - 1, 0, 5, 0), LLMC_OK);
        llmc_buf_clear(&raw);
        ck_assert_int_eq(llmc_cache_get(c, "t", 1, &raw), LLMC_OK);
        llmc_entry d;
        llmc_buf scratch = LLMC_BUF_INIT, out = LLMC_BUF_INIT;
        llmc_err err;
        ck_assert_int_eq(llmc_entry_decode(sers[s], raw.data, raw.len, "t", 1, &d, &scratch, &err),
                         LLMC_OK);
        d.expires_ms = 0;
        d.upstream_ms = 999999;
        ck_assert_int_eq(llmc_entry_encode(sers[s], &d, &out, &err), LLMC_OK);
        ck_assert_int_eq(llmc_cache_set(c, "t", 1, out.data, out.len, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(c, "t", 1, -1, 0, &l), LLMC_MISS);
        ck_assert_uint_eq(mac_failures(c), 4);
        llmc_buf_free(&scratch);
        llmc_buf_free(&out);
        llmc_buf_free(&raw);
        llmc_lookup_free(&l);
        llmc_cache_close(other);
        llmc_cache_close(plain);
        llmc_cache_close(c);
    }
}
END_TEST

START_TEST(t_mac_env)
{
    llmc_err e;
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open("local://?entry_secret=", NULL, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "entry_secret"));
    /* the environment variable applies when the option is absent */
    setenv("LLMCACHE_ENTRY_SECRET", "from-env", 1);
    c = open_url("local://");
    llmc_cache *plain = NULL;
    unsetenv("LLMCACHE_ENTRY_SECRET");
    plain = open_url("local://");
    ck_assert_int_eq(llmc_cache_put_entry(plain, "k", 1, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0,
                                          0), LLMC_OK);
    llmc_buf raw = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(plain, "k", 1, &raw), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, raw.data, raw.len, 0), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, 0, &l), LLMC_MISS);
    ck_assert_uint_eq(mac_failures(c), 1);
    ck_assert_int_eq(llmc_cache_put_entry(c, "k", 1, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0, 0),
                     LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, 0, &l), LLMC_OK);
    /* the secret is in no error message either */
    llmc_cache *refused = NULL; /* not `c`, which is still open */
    ck_assert_int_eq(llmc_cache_open("local://?entry_secret=hunter2&bogus=1", NULL, &refused, &e),
                     LLMC_EINVAL);
    ck_assert_ptr_null(refused);
    ck_assert_ptr_null(strstr(e.msg, "hunter2"));
    llmc_buf_free(&raw);
    llmc_lookup_free(&l);
    llmc_cache_close(plain);
    llmc_cache_close(c);
}
END_TEST

/* The MAC is deterministic and every field it covers changes it, the
 * secret too, and the key/body boundary is unambiguous. */
START_TEST(t_mac_covers_fields)
{
    llmc_entry e;
    memset(&e, 0, sizeof e);
    e.call = LLMC_CALL_CHAT;
    e.created_ms = 1;
    e.expires_ms = 2;
    e.upstream_ms = 3;
    e.body = "body";
    e.body_len = 4;
    const unsigned char sec[] = "k";
    uint8_t base[32], m[32];
    ck_assert_int_eq(llmc__entry_mac(sec, 1, "key", 3, &e, base), 0);
    ck_assert_int_eq(llmc__entry_mac(sec, 1, "key", 3, &e, m), 0);
    ck_assert_mem_eq(base, m, 32);
    llmc_entry v = e;
    v.call = LLMC_CALL_TEXT;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    v = e;
    v.created_ms = 9;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    v = e;
    v.expires_ms = 9;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    v = e;
    v.upstream_ms = 9;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    v = e;
    v.body = "bodz";
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    /* key/body boundary: "key"+"body" vs "keyb"+"ody" */
    v = e;
    v.body = "ody";
    v.body_len = 3;
    llmc__entry_mac(sec, 1, "keyb", 4, &v, m);
    ck_assert(memcmp(base, m, 32) != 0);
    llmc__entry_mac((const unsigned char *)"j", 1, "key", 3, &e, m);
    ck_assert(memcmp(base, m, 32) != 0);
    /* version 3 covers the end of the stale window, under another
     * domain: a v2 MAC never verifies a v3 entry */
    v = e;
    v.version = 3;
    uint8_t v3[32];
    llmc__entry_mac(sec, 1, "key", 3, &v, v3);
    ck_assert(memcmp(base, v3, 32) != 0);
    v.stale_until_ms = 5;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert(memcmp(v3, m, 32) != 0);
    /* a v2 entry's MAC does not depend on a field it does not carry */
    v = e;
    v.version = 2;
    v.stale_until_ms = 5;
    llmc__entry_mac(sec, 1, "key", 3, &v, m);
    ck_assert_mem_eq(base, m, 32);
}
END_TEST

/* A store keeps the entry for its TTL plus the cache's stale window and
 * records both ends; a lookup returns it past its freshness only when
 * asked (LLMC_ENTRY_STALE), only inside the window, saying how stale. */
START_TEST(t_stale_window)
{
    llmc_cache *c = open_url("local://?ttl=60&stale_if_error=600&stale_while_revalidate=30");
    ck_assert_int_eq(llmc_cache_put_entry(c, "k", 1, LLMC_CALL_CHAT, BODY, sizeof BODY - 1,
                                          LLMC_TTL_DEFAULT, 0), LLMC_OK);
    llmc_lookup l = LLMC_LOOKUP_INIT;
    ck_assert_int_eq(llmc_cache_get_entry(c, "k", 1, -1, LLMC_ENTRY_STALE, &l), LLMC_OK);
    ck_assert_int_eq(l.stale_ms, 0);
    ck_assert_int_eq(l.entry.expires_ms - l.entry.created_ms, 60000);
    ck_assert_int_eq(l.entry.stale_until_ms - l.entry.expires_ms, 600000);
    int64_t ttl = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, "k", 1, &ttl), LLMC_OK);
    ck_assert_msg(ttl > 600000 && ttl <= 660000, "backend ttl %lld", (long long)ttl);
    /* no TTL: never stale, no window */
    ck_assert_int_eq(llmc_cache_put_entry(c, "n", 1, LLMC_CALL_CHAT, BODY, sizeof BODY - 1, 0,
                                          0), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_entry(c, "n", 1, -1, 0, &l), LLMC_OK);
    ck_assert_int_eq(l.entry.stale_until_ms, 0);

    /* An entry whose freshness ended 5 s ago, stale-servable for 10 s. */
    int64_t now = llmc_now_ms();
    llmc_entry e;
    memset(&e, 0, sizeof e);
    e.call = LLMC_CALL_CHAT;
    e.created_ms = now - 65000;
    e.expires_ms = now - 5000;
    e.stale_until_ms = now + 10000;
    llmc_sha256("s", 1, e.key_sha256);
    e.body = BODY;
    e.body_len = sizeof BODY - 1;
    llmc_buf enc = LLMC_BUF_INIT;
    llmc_err err;
    ck_assert_int_eq(llmc_entry_encode("json", &e, &enc, &err), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "s", 1, enc.data, enc.len, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_entry(c, "s", 1, -1, 0, &l), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_get_entry(c, "s", 1, -1, LLMC_ENTRY_STALE, &l), LLMC_OK);
    ck_assert_msg(l.stale_ms >= 5000 && l.stale_ms < 15000, "stale_ms %lld",
                  (long long)l.stale_ms);
    ck_assert_mem_eq(l.entry.body, BODY, l.entry.body_len);
    /* past the window: a miss even when stale is accepted */
    e.stale_until_ms = now - 1000;
    llmc_buf_clear(&enc);
    ck_assert_int_eq(llmc_entry_encode("json", &e, &enc, &err), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "s", 1, enc.data, enc.len, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_entry(c, "s", 1, -1, LLMC_ENTRY_STALE, &l), LLMC_MISS);
    /* no window at all (a version 2 entry, or stored without one) */
    e.stale_until_ms = 0;
    llmc_buf_clear(&enc);
    ck_assert_int_eq(llmc_entry_encode("json", &e, &enc, &err), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "s", 1, enc.data, enc.len, 60000), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get_entry(c, "s", 1, -1, LLMC_ENTRY_STALE, &l), LLMC_MISS);
    llmc_buf_free(&enc);
    llmc_lookup_free(&l);
    llmc_cache_close(c);
}
END_TEST

/* A version 2 entry written with a MAC by the version 2 code verifies
 * under the same secret. */
START_TEST(t_v2_mac_fixture)
{
    for (int s = 0; s < 2; s++) {
        const char *ser = s ? "binary" : "json";
        char path[1024], url[128];
        snprintf(path, sizeof path, "%s/fixtures/entry_v2/chat_mac.%s", LLMC_TEST_SRCDIR, ser);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "missing fixture %s", path);
        char data[4096];
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        snprintf(url, sizeof url, "local://?serializer=%s&entry_secret=fixture-secret", ser);
        llmc_cache *c = open_url(url);
        const char *key = "v2-fixture-key";
        ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), data, n, 0), LLMC_OK);
        llmc_lookup l = LLMC_LOOKUP_INIT;
        ck_assert_int_eq(llmc_cache_get_entry(c, key, strlen(key), -1, 0, &l), LLMC_OK);
        ck_assert_int_eq(l.entry.version, 2);
        ck_assert_int_eq(l.entry.upstream_ms, 1234);
        llmc_lookup_free(&l);
        llmc_cache_close(c);
        /* under another secret it is a MAC failure, a miss */
        snprintf(url, sizeof url, "local://?serializer=%s&entry_secret=other-secret", ser);
        c = open_url(url);
        ck_assert_int_eq(llmc_cache_set(c, key, strlen(key), data, n, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(c, key, strlen(key), -1, 0, &l), LLMC_MISS);
        ck_assert_uint_eq(mac_failures(c), 1);
        llmc_lookup_free(&l);
        llmc_cache_close(c);
    }
}
END_TEST

/* Every read checks the key digest, and a key read before is not
 * hashed again: an entry moved under another key of the same length is
 * still foreign, however many keys were read in between. */
START_TEST(t_key_digest_repeated)
{
    llmc_cache *c = open_url("local://");
    char src[16][16], dst[16][16];
    for (int i = 0; i < 16; i++) {
        snprintf(src[i], sizeof src[i], "src-%03d", i);
        snprintf(dst[i], sizeof dst[i], "dst-%03d", i);
        ck_assert_int_eq(llmc_cache_put_entry(c, src[i], strlen(src[i]), LLMC_CALL_CHAT, BODY,
                                              sizeof BODY - 1, 0, 0), LLMC_OK);
        ck_assert_int_eq(llmc_cache_put_entry(c, dst[i], strlen(dst[i]), LLMC_CALL_CHAT, BODY,
                                              sizeof BODY - 1, 0, 0), LLMC_OK);
    }
    llmc_lookup l = LLMC_LOOKUP_INIT;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 16; i++) {
            ck_assert_int_eq(llmc_cache_get_entry(c, src[i], strlen(src[i]), -1, 0, &l),
                             LLMC_OK);
            ck_assert_int_eq(llmc_cache_get_entry(c, dst[i], strlen(dst[i]), -1, 0, &l),
                             LLMC_OK);
        }
    for (int i = 0; i < 16; i++) {
        llmc_buf raw = LLMC_BUF_INIT;
        ck_assert_int_eq(llmc_cache_get(c, src[i], strlen(src[i]), &raw), LLMC_OK);
        ck_assert_int_eq(llmc_cache_set(c, dst[i], strlen(dst[i]), raw.data, raw.len, 0),
                         LLMC_OK);
        ck_assert_int_eq(llmc_cache_get_entry(c, dst[i], strlen(dst[i]), -1, 0, &l), LLMC_MISS);
        ck_assert_int_eq(llmc_cache_get_entry(c, src[i], strlen(src[i]), -1, 0, &l), LLMC_OK);
        llmc_buf_free(&raw);
    }
    llmc_lookup_free(&l);
    llmc_cache_close(c);
}
END_TEST

int main(void)
{
    llmc_init();
    Suite *s = suite_create("entry");
    TCase *tc = tcase_create("entry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_upstream_ms);
    tcase_add_test(tc, t_mac);
    tcase_add_test(tc, t_mac_env);
    tcase_add_test(tc, t_mac_covers_fields);
    tcase_add_test(tc, t_stale_window);
    tcase_add_test(tc, t_v2_mac_fixture);
    tcase_add_test(tc, t_key_digest_repeated);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
