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
    tcase_add_test(tc, t_key_digest_repeated);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
