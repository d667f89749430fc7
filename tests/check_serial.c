/* Serializers: round trips and strict verification of corrupt input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"

static const char *const SERS[] = {"json", "binary"};

static llmc_entry mkentry(const char *body, size_t len, llmc_call_type call, const char *key)
{
    llmc_entry e;
    memset(&e, 0, sizeof e);
    e.version = LLMC_ENTRY_VERSION;
    e.created_ms = 1700000000123;
    e.expires_ms = 1700000060123;
    e.call = call;
    llmc_sha256(key, strlen(key), e.key_sha256);
    e.body = body;
    e.body_len = len;
    return e;
}

START_TEST(t_roundtrip)
{
    const char *bodies[] = {"{\"a\":1}", "[1,2,3]", "plain text", "", "{ not json but braces }",
                            " {\"ws\":1}"};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            llmc_entry e = mkentry(bodies[i], strlen(bodies[i]), LLMC_CALL_CHAT, "k1");
            llmc_buf out = LLMC_BUF_INIT, scratch = LLMC_BUF_INIT;
            llmc_err err;
            ck_assert_int_eq(llmc_entry_encode(SERS[s], &e, &out, &err), LLMC_OK);
            llmc_entry d;
            ck_assert_msg(llmc_entry_decode(SERS[s], out.data, out.len, "k1", 2, &d, &scratch,
                                            &err) == LLMC_OK, "%s body %zu: %s", SERS[s], i,
                          err.msg);
            ck_assert_uint_eq(d.body_len, strlen(bodies[i]));
            ck_assert_mem_eq(d.body, bodies[i], d.body_len);
            ck_assert_int_eq(d.created_ms, e.created_ms);
            ck_assert_int_eq(d.expires_ms, e.expires_ms);
            ck_assert_int_eq(d.call, LLMC_CALL_CHAT);
            ck_assert_int_eq(d.version, LLMC_ENTRY_VERSION);
            /* wrong key */
            ck_assert_int_eq(llmc_entry_decode(SERS[s], out.data, out.len, "k2", 2, &d, &scratch,
                                               &err), LLMC_ECORRUPT);
            ck_assert_ptr_nonnull(strstr(err.msg, "another key"));
            /* every truncation is detected */
            for (size_t cut = 0; cut < out.len; cut++)
                ck_assert_msg(llmc_entry_decode(SERS[s], out.data, cut, "k1", 2, &d, &scratch,
                                                &err) != LLMC_OK,
                              "%s: truncation at %zu of %zu accepted", SERS[s], cut, out.len);
            /* every single-byte flip is detected */
            for (size_t pos = 0; pos < out.len; pos++) {
                char *copy = malloc(out.len);
                memcpy(copy, out.data, out.len);
                copy[pos] ^= 0x21;
                llmc_status st = llmc_entry_decode(SERS[s], copy, out.len, "k1", 2, &d, &scratch,
                                                   &err);
                ck_assert_msg(st != LLMC_OK, "%s: flip at %zu accepted", SERS[s], pos);
                free(copy);
            }
            llmc_buf_free(&out);
            llmc_buf_free(&scratch);
        }
    }
}
END_TEST

START_TEST(t_binary_body)
{
    char body[256];
    for (int i = 0; i < 256; i++)
        body[i] = (char)i;
    for (size_t s = 0; s < 2; s++) {
        llmc_entry e = mkentry(body, sizeof body, LLMC_CALL_EMBEDDING, "kk");
        e.expires_ms = 0;
        llmc_buf out = LLMC_BUF_INIT, scratch = LLMC_BUF_INIT;
        llmc_err err;
        ck_assert_int_eq(llmc_entry_encode(SERS[s], &e, &out, &err), LLMC_OK);
        llmc_entry d;
        ck_assert_int_eq(llmc_entry_decode(SERS[s], out.data, out.len, "kk", 2, &d, &scratch, &err),
                         LLMC_OK);
        ck_assert_uint_eq(d.body_len, sizeof body);
        ck_assert_mem_eq(d.body, body, sizeof body);
        ck_assert_int_eq(d.expires_ms, 0);
        ck_assert_int_eq(d.call, LLMC_CALL_EMBEDDING);
        llmc_buf_free(&out);
        llmc_buf_free(&scratch);
    }
}
END_TEST

START_TEST(t_json_readable)
{
    const char body[] = "{\"choices\":[{\"message\":{\"content\":\"Paris\"}}]}";
    llmc_entry e = mkentry(body, sizeof body - 1, LLMC_CALL_CHAT, "k");
    llmc_buf out = LLMC_BUF_INIT;
    llmc_err err;
    ck_assert_int_eq(llmc_entry_encode("json", &e, &out, &err), LLMC_OK);
    /* what redis-cli GET would show: readable, with the body inline */
    ck_assert_ptr_nonnull(strstr(out.data, "\"body\":{\"choices\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"call\":\"chat\""));
    ck_assert(strncmp(out.data, "{\"llmcache\":2,", 14) == 0);
    llmc_buf_free(&out);
}
END_TEST

START_TEST(t_foreign_and_versions)
{
    llmc_entry d;
    llmc_buf scratch = LLMC_BUF_INIT;
    llmc_err err;
    const char *foreign[] = {"", "x", "{}", "{\"llmcache\":1}", "null", "LLMC", "LLMC\x01\x02"};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
            ck_assert_int_eq(llmc_entry_decode(SERS[s], foreign[i], strlen(foreign[i]), NULL, 0, &d,
                                               &scratch, &err), LLMC_ECORRUPT);
    ck_assert_int_eq(llmc_entry_decode("json", "{\"llmcache\":3,\"ser\":\"json\"", 27, NULL, 0, &d,
                                       &scratch, &err), LLMC_EVERSION);
    ck_assert_ptr_nonnull(strstr(err.msg, "version 3"));
    ck_assert_int_eq(llmc_entry_decode("binary", "LLMC\x09", 5, NULL, 0, &d, &scratch, &err),
                     LLMC_ECORRUPT); /* too short to even hold a version byte check */
    char bin[80] = "LLMC\x09\x02";
    ck_assert_int_eq(llmc_entry_decode("binary", bin, sizeof bin, NULL, 0, &d, &scratch, &err),
                     LLMC_EVERSION);
    /* the json serializer refuses binary envelopes and vice versa */
    llmc_entry e = mkentry("{}", 2, LLMC_CALL_CHAT, "k");
    llmc_buf out = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_entry_encode("binary", &e, &out, &err), LLMC_OK);
    ck_assert_int_eq(llmc_entry_decode("json", out.data, out.len, "k", 1, &d, &scratch, &err),
                     LLMC_ECORRUPT);
    llmc_buf_clear(&out);
    ck_assert_int_eq(llmc_entry_encode("json", &e, &out, &err), LLMC_OK);
    ck_assert_int_eq(llmc_entry_decode("binary", out.data, out.len, "k", 1, &d, &scratch, &err),
                     LLMC_ECORRUPT);
    ck_assert_int_eq(llmc_entry_encode("nosuch", &e, &out, &err), LLMC_ENOTFOUND);
    e.call = (llmc_call_type)77;
    ck_assert_int_eq(llmc_entry_encode("json", &e, &out, &err), LLMC_EINVAL);
    llmc_buf_free(&out);
    llmc_buf_free(&scratch);
}
END_TEST


/* ---- CRC-32C ---- */

START_TEST(t_crc32c_vectors)
{
    /* The standard check value and the iSCSI test patterns (RFC 3720
     * B.4). */
    ck_assert_uint_eq(llmc__crc32c_update(0, "123456789", 9), 0xE3069283u);
    unsigned char z[32], o[32], inc[32], dec[32];
    for (int i = 0; i < 32; i++) {
        z[i] = 0;
        o[i] = 0xFF;
        inc[i] = (unsigned char)i;
        dec[i] = (unsigned char)(31 - i);
    }
    ck_assert_uint_eq(llmc__crc32c_update(0, z, 32), 0x8A9136AAu);
    ck_assert_uint_eq(llmc__crc32c_update(0, o, 32), 0x62A8AB43u);
    ck_assert_uint_eq(llmc__crc32c_update(0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(llmc__crc32c_update(0, dec, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(llmc__crc32c_update(0, "", 0), 0);
    /* Incremental == one shot, and the hardware path (when the CPU has
     * one) == the portable tables, at every alignment and length. */
    unsigned char buf[2000]; /* past three lanes of the hardware path, twice */
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; off + n <= sizeof buf; n += 1 + n / 8) {
            uint32_t a = llmc__crc32c_update(0, buf + off, n);
            ck_assert_uint_eq(a, llmc__crc32c_sw_update(0, buf + off, n));
            size_t h = n / 3;
            ck_assert_uint_eq(a, llmc__crc32c_update(llmc__crc32c_update(0, buf + off, h),
                                                     buf + off + h, n - h));
        }
}
END_TEST

/* Count the flips of `nbits` bits (positions from pick) an encoded entry
 * survives. */
static int decodes(const char *ser, const char *data, size_t len, const char *key)
{
    llmc_entry d;
    llmc_buf scratch = LLMC_BUF_INIT;
    llmc_err err;
    llmc_status st = llmc_entry_decode(ser, data, len, key, strlen(key), &d, &scratch, &err);
    llmc_buf_free(&scratch);
    return st == LLMC_OK;
}

/* Every 1-bit flip anywhere in the entry and every 2-bit flip within the
 * last 64 bytes of the body (where the old four-lane hash let two flips
 * cancel) is detected; then random 2- and 3-bit flips over a 4 KiB body. */
START_TEST(t_bitflips)
{
    char body[4096];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof body; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        body[i] = (char)('a' + x % 26);
    }
    body[0] = '{';
    body[sizeof body - 1] = '}';
    for (size_t s = 0; s < 2; s++) {
        llmc_entry e = mkentry(body, 160, LLMC_CALL_CHAT, "flip");
        e.upstream_ms = 321;
        e.mac_present = 1;
        memset(e.mac, 0x5A, 32);
        body[159] = '}';
        llmc_buf out = LLMC_BUF_INIT;
        llmc_err err;
        ck_assert_int_eq(llmc_entry_encode(SERS[s], &e, &out, &err), LLMC_OK);
        ck_assert(decodes(SERS[s], out.data, out.len, "flip"));
        char *c = malloc(out.len);
        for (size_t b = 0; b < out.len * 8; b++) {
            memcpy(c, out.data, out.len);
            c[b / 8] ^= (char)(1 << (b % 8));
            ck_assert_msg(!decodes(SERS[s], c, out.len, "flip"), "%s: 1-bit flip %zu accepted",
                          SERS[s], b);
        }
        /* the body is the last 160 bytes (json: before the closing '}') */
        size_t body_end = out.len - (s == 0 ? 1 : 0), lo = (body_end - 64) * 8;
        for (size_t b1 = lo; b1 < body_end * 8; b1++)
            for (size_t b2 = b1 + 1; b2 < body_end * 8; b2++) {
                memcpy(c, out.data, out.len);
                c[b1 / 8] ^= (char)(1 << (b1 % 8));
                c[b2 / 8] ^= (char)(1 << (b2 % 8));
                ck_assert_msg(!decodes(SERS[s], c, out.len, "flip"),
                              "%s: 2-bit flip %zu,%zu accepted", SERS[s], b1, b2);
            }
        free(c);
        llmc_buf_free(&out);
        body[159] = (char)('a' + 3);
    }
    /* random flips over a large body */
    llmc_entry e = mkentry(body, sizeof body, LLMC_CALL_CHAT, "flip");
    llmc_buf out = LLMC_BUF_INIT;
    llmc_err err;
    ck_assert_int_eq(llmc_entry_encode("binary", &e, &out, &err), LLMC_OK);
    char *c = malloc(out.len);
    size_t nbits = out.len * 8;
    for (int round = 0; round < 20000; round++) {
        memcpy(c, out.data, out.len);
        size_t k = 2 + (size_t)(round & 1), pos[3];
        for (size_t i = 0; i < k; i++) {
            int fresh;
            do {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                pos[i] = (size_t)(x % nbits);
                fresh = 1;
                for (size_t j = 0; j < i; j++)
                    fresh &= pos[j] != pos[i];
            } while (!fresh);
            c[pos[i] / 8] ^= (char)(1 << (pos[i] % 8));
        }
        ck_assert_msg(!decodes("binary", c, out.len, "flip"), "random %zu-bit flip accepted", k);
    }
    free(c);
    llmc_buf_free(&out);
}
END_TEST

/* ---- version 2 fields, version 1 entries ---- */

START_TEST(t_v2_fields)
{
    const char *bodies[] = {"{\"a\":1}", "plain"};
    for (size_t s = 0; s < 2; s++)
        for (int m = 0; m < 2; m++)
            for (size_t b = 0; b < 2; b++) {
                llmc_entry e = mkentry(bodies[b], strlen(bodies[b]), LLMC_CALL_TEXT, "k2");
                e.upstream_ms = 987654321;
                e.mac_present = (uint8_t)m;
                for (int i = 0; i < 32; i++)
                    e.mac[i] = (uint8_t)(i * 9 + 1);
                llmc_buf out = LLMC_BUF_INIT, scratch = LLMC_BUF_INIT;
                llmc_err err;
                ck_assert_int_eq(llmc_entry_encode(SERS[s], &e, &out, &err), LLMC_OK);
                llmc_entry d;
                ck_assert_int_eq(llmc_entry_decode(SERS[s], out.data, out.len, "k2", 2, &d,
                                                   &scratch, &err), LLMC_OK);
                ck_assert_int_eq(d.version, 2);
                ck_assert_int_eq(d.upstream_ms, 987654321);
                ck_assert_int_eq(d.mac_present, m);
                if (m)
                    ck_assert_mem_eq(d.mac, e.mac, 32);
                ck_assert_mem_eq(d.body, bodies[b], d.body_len);
                if (s == 0)
                    ck_assert_ptr_nonnull(strstr(out.data, "\"upstream_ms\":987654321,"));
                /* a negative upstream time is refused on the way in */
                e.upstream_ms = -1;
                llmc_buf_clear(&out);
                ck_assert_int_eq(llmc_entry_encode(SERS[s], &e, &out, &err), LLMC_EINVAL);
                llmc_buf_free(&out);
                llmc_buf_free(&scratch);
            }
}
END_TEST

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/entry_v1/%s", LLMC_TEST_SRCDIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "missing fixture %s", path);
    char *buf = malloc(4096);
    *len = fread(buf, 1, 4096, f);
    fclose(f);
    return buf;
}

/* Entries written by the version 1 code (checked in byte for byte) still
 * read, with their fields, and corruption of them is still caught. */
START_TEST(t_v1_fixtures)
{
    static const char chat[] =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"Hello there, this is a stored answer "
        "of more than thirty-two bytes.\"},\"finish_reason\":\"stop\"}]}";
    char emb[100];
    for (int i = 0; i < 100; i++)
        emb[i] = (char)(i * 7);
    struct {
        const char *name;
        const char *body;
        size_t blen;
        llmc_call_type call;
        int64_t expires;
    } fx[] = {{"chat", chat, sizeof chat - 1, LLMC_CALL_CHAT, 1700000060123},
              {"embedding", emb, sizeof emb, LLMC_CALL_EMBEDDING, 0},
              {"empty", "", 0, LLMC_CALL_RAW, 0}};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s", fx[i].name, SERS[s]);
            size_t len;
            char *data = slurp(name, &len);
            llmc_entry d;
            llmc_buf scratch = LLMC_BUF_INIT;
            llmc_err err;
            ck_assert_msg(llmc_entry_decode(SERS[s], data, len, "v1-fixture-key", 14, &d, &scratch,
                                            &err) == LLMC_OK, "%s: %s", name, err.msg);
            ck_assert_int_eq(d.version, 1);
            ck_assert_int_eq(d.call, fx[i].call);
            ck_assert_int_eq(d.created_ms, 1700000000123);
            ck_assert_int_eq(d.expires_ms, fx[i].expires);
            ck_assert_int_eq(d.upstream_ms, 0);
            ck_assert_int_eq(d.mac_present, 0);
            ck_assert_uint_eq(d.body_len, fx[i].blen);
            if (fx[i].blen)
                ck_assert_mem_eq(d.body, fx[i].body, fx[i].blen);
            ck_assert_int_eq(llmc_entry_decode(SERS[s], data, len, "other", 5, &d, &scratch,
                                               &err), LLMC_ECORRUPT);
            for (size_t pos = 0; pos < len; pos++) {
                data[pos] ^= 0x04;
                ck_assert_msg(llmc_entry_decode(SERS[s], data, len, "v1-fixture-key", 14, &d,
                                                &scratch, &err) != LLMC_OK,
                              "%s: flip at %zu accepted", name, pos);
                data[pos] ^= 0x04;
            }
            llmc_buf_free(&scratch);
            free(data);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("serial");
    TCase *tc = tcase_create("serial");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_roundtrip);
    tcase_add_test(tc, t_binary_body);
    tcase_add_test(tc, t_json_readable);
    tcase_add_test(tc, t_foreign_and_versions);
    tcase_add_test(tc, t_crc32c_vectors);
    tcase_add_test(tc, t_bitflips);
    tcase_add_test(tc, t_v2_fields);
    tcase_add_test(tc, t_v1_fixtures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
