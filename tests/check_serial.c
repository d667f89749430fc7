/* Serializers: round trips and strict verification of corrupt input. */
#include <check.h>
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
    ck_assert(strncmp(out.data, "{\"llmcache\":1,", 14) == 0);
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
    ck_assert_int_eq(llmc_entry_decode("json", "{\"llmcache\":2,\"ser\":\"json\"", 27, NULL, 0, &d,
                                       &scratch, &err), LLMC_EVERSION);
    ck_assert_ptr_nonnull(strstr(err.msg, "version 2"));
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

int main(void)
{
    Suite *s = suite_create("serial");
    TCase *tc = tcase_create("serial");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_roundtrip);
    tcase_add_test(tc, t_binary_body);
    tcase_add_test(tc, t_json_readable);
    tcase_add_test(tc, t_foreign_and_versions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
