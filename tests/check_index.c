/* The semantic lookup's building blocks: the index component kind and
 * its registry rules, the built-in flat indexes (float32 and int8) and
 * their SIMD dot products, and the built-in offline embedder. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "semantic.h"
#include "vecdot.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void unit(float *v, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        v[i] = frand();
        s += (double)v[i] * v[i];
    }
    for (size_t i = 0; i < d; i++)
        v[i] = (float)(v[i] / sqrt(s));
}

START_TEST(kernels_match_scalar)
{
    /* Every length around the kernels' block sizes, unaligned starts. */
    float a[600], b[600];
    int8_t x[600], y[600];
    for (int i = 0; i < 600; i++) {
        a[i] = frand();
        b[i] = frand();
        x[i] = (int8_t)(frand() * 127);
        y[i] = (int8_t)(frand() * 127);
    }
    x[5] = -127;
    y[5] = -127;
    for (size_t n = 0; n < 580; n += (n < 70 ? 1 : 37)) {
        for (size_t off = 0; off < 3; off++) {
            float s = llmc__dot_f32_scalar(a + off, b + off, n);
            float v = llmc__dot_f32(a + off, b + off, n);
            ck_assert_msg(fabsf(s - v) <= 1e-4f * (1 + fabsf(s)), "n=%zu: %f vs %f", n, s, v);
            ck_assert_int_eq(llmc__dot_i8(x + off, y + off, n),
                             llmc__dot_i8_scalar(x + off, y + off, n));
        }
    }
}
END_TEST

static void exact_search(const llmc_index_ops *ops, float tol)
{
    enum { D = 100, N = 700 };
    float *rows = malloc(sizeof(float) * D * N);
    llmc_index_config cfg = {sizeof cfg, "scope", D, N};
    void *ix = NULL;
    llmc_err e;
    ck_assert_int_eq(ops->open(&cfg, &ix, &e), LLMC_OK);
    for (int i = 0; i < N; i++) {
        unit(rows + i * D, D);
        ck_assert_int_eq(ops->add(ix, 1000 + (uint64_t)i, rows + i * D, &e), LLMC_OK);
    }
    ck_assert_uint_eq(ops->count(ix), N);
    /* The nearest of row 123 is row 123 itself, with similarity 1. */
    uint64_t ids[5];
    float sc[5];
    size_t got = ops->search(ix, rows + 123 * D, 5, ids, sc);
    ck_assert_uint_eq(got, 5);
    ck_assert_uint_eq(ids[0], 1123);
    ck_assert_float_eq_tol(sc[0], 1.0f, tol);
    for (int i = 1; i < 5; i++) {
        ck_assert(sc[i] <= sc[i - 1]);
        /* The exact score of that row, brute force. */
        float want = llmc__dot_f32_scalar(rows + (ids[i] - 1000) * D, rows + 123 * D, D);
        ck_assert_float_eq_tol(sc[i], want, tol);
    }
    /* Brute force agrees on the best other row. */
    float best = -2;
    for (int i = 0; i < N; i++) {
        if (i == 123)
            continue;
        float s = llmc__dot_f32_scalar(rows + i * D, rows + 123 * D, D);
        if (s > best)
            best = s;
    }
    ck_assert_float_eq_tol(sc[1], best, tol);
    /* Remove moves the last row into the hole: every id still found. */
    ck_assert_int_eq(ops->remove(ix, 1123), LLMC_OK);
    ck_assert_int_eq(ops->remove(ix, 1123), LLMC_MISS);
    ck_assert_int_eq(ops->remove(ix, 5), LLMC_MISS);
    ck_assert_uint_eq(ops->count(ix), N - 1);
    got = ops->search(ix, rows + 123 * D, 1, ids, sc);
    ck_assert_uint_eq(got, 1);
    ck_assert_uint_ne(ids[0], 1123);
    for (int i = 0; i < N; i += 7) {
        if (i == 123)
            continue;
        got = ops->search(ix, rows + i * D, 1, ids, sc);
        ck_assert_uint_eq(ids[0], 1000 + (uint64_t)i);
    }
    /* Replacing an id keeps one row. */
    ck_assert_int_eq(ops->add(ix, 1000, rows + 9 * D, &e), LLMC_OK);
    ck_assert_uint_eq(ops->count(ix), N - 1);
    for (int i = 0; i < N; i++)
        if (i != 123)
            ck_assert_int_eq(ops->remove(ix, 1000 + (uint64_t)i), LLMC_OK);
    ck_assert_uint_eq(ops->count(ix), 0);
    ck_assert_uint_eq(ops->search(ix, rows, 3, ids, sc), 0);
    ops->close(ix);
    free(rows);
}

START_TEST(flat_f32_exact)
{
    const llmc_index_ops *ops = llmc_find_index("flat");
    ck_assert_ptr_nonnull(ops);
    exact_search(ops, 1e-5f);
}
END_TEST

START_TEST(flat_int8_exact)
{
    const llmc_index_ops *ops = llmc_find_index("FLAT-INT8");
    ck_assert_ptr_nonnull(ops);
    exact_search(ops, 2e-2f);
}
END_TEST

START_TEST(flat_refuses_bad_config)
{
    llmc_index_config cfg = {sizeof cfg, "s", 0, 10};
    void *ix = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc__index_flat.open(&cfg, &ix, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "dimensions"));
    ck_assert_int_eq(llmc__index_flat.open(NULL, &ix, &e), LLMC_EINVAL);
}
END_TEST

/* ---- registry: the index and verifier kinds ---- */
static llmc_status x_open(const llmc_index_config *c, void **ctx, llmc_err *e)
{
    (void)c;
    (void)e;
    *ctx = NULL;
    return LLMC_OK;
}
static void x_close(void *c) { (void)c; }
static llmc_status x_add(void *c, uint64_t id, const float *v, llmc_err *e)
{
    (void)c, (void)id, (void)v, (void)e;
    return LLMC_OK;
}
static llmc_status x_remove(void *c, uint64_t id)
{
    (void)c, (void)id;
    return LLMC_MISS;
}
static size_t x_search(void *c, const float *q, size_t k, uint64_t *ids, float *s)
{
    (void)c, (void)q, (void)k, (void)ids, (void)s;
    return 0;
}
static size_t x_count(void *c)
{
    (void)c;
    return 0;
}
static int x_verify(const llmc_semantic_candidate *c)
{
    (void)c;
    return 1;
}

static const llmc_index_ops idx_ok = {LLMC_COMPONENT_INIT(llmc_index_ops, "test-index", "t"),
                                      x_open, x_close, x_add, x_remove, x_search, x_count};
static const llmc_index_ops idx_no_search = {
    LLMC_COMPONENT_INIT(llmc_index_ops, "no-search", "t"), x_open, x_close, x_add, x_remove,
    NULL, x_count};
static const llmc_verifier_ops ver_ok = {
    LLMC_COMPONENT_INIT(llmc_verifier_ops, "test-verifier", "t"), x_verify};
static const llmc_verifier_ops ver_none = {
    LLMC_COMPONENT_INIT(llmc_verifier_ops, "no-verify", "t"), NULL};

START_TEST(registry_kinds)
{
    llmc_err e;
    ck_assert_str_eq(llmc_kind_name(LLMC_KIND_INDEX), "index");
    ck_assert_str_eq(llmc_kind_name(LLMC_KIND_VERIFIER), "verifier");
    ck_assert_int_eq(llmc_register_index(&idx_ok, &e), LLMC_OK);
    ck_assert_ptr_eq(llmc_find_index("Test-Index"), &idx_ok);
    ck_assert_int_eq(llmc_register_index(&idx_ok, &e), LLMC_EEXIST);
    ck_assert_int_eq(llmc_register_index(&idx_no_search, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "search"));
    ck_assert_ptr_null(llmc_find_index("no-search"));
    /* A table shorter than the required members. */
    llmc_index_ops short_t = idx_ok;
    short_t.hdr.name = "short-index";
    short_t.hdr.struct_size = (uint32_t)offsetof(llmc_index_ops, search);
    ck_assert_int_eq(llmc_register_index(&short_t, &e), LLMC_EABI);
    ck_assert_int_eq(llmc_register_verifier(&ver_ok, &e), LLMC_OK);
    ck_assert_ptr_eq(llmc_find_verifier("test-verifier"), &ver_ok);
    ck_assert_int_eq(llmc_register_verifier(&ver_none, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "verify"));
    char *names = llmc_registry_names(LLMC_KIND_INDEX);
    ck_assert_ptr_nonnull(strstr(names, "flat, flat-int8"));
    llmc_free(names);
}
END_TEST

/* ---- the offline embedder ---- */
static double sim(const char *a, const char *b)
{
    float va[384], vb[384];
    ck_assert_int_eq(llmc_embed_local(a, strlen(a), va, 384), LLMC_OK);
    ck_assert_int_eq(llmc_embed_local(b, strlen(b), vb, 384), LLMC_OK);
    return llmc__dot_f32_scalar(va, vb, 384);
}

START_TEST(embed_near_duplicates)
{
    /* Case, white space, punctuation and word order: the same vector. */
    ck_assert_float_eq_tol(sim("What is the capital of France?",
                               "  what IS the capital of   france "), 1.0, 1e-5);
    ck_assert_float_eq_tol(sim("What is the capital of France?",
                               "the capital of France: what is it"), sim("what is the capital of france", "the capital of france what is it"), 1e-6);
    ck_assert_float_eq_tol(sim("capital of France, what is", "What is capital of France"), 1.0,
                           1e-5);
    /* Unit length. */
    float v[384];
    ck_assert_int_eq(llmc_embed_local("hello world", 11, v, 384), LLMC_OK);
    ck_assert_float_eq_tol(llmc__dot_f32_scalar(v, v, 384), 1.0, 1e-5);
    /* An inflection is close, an unrelated question is not. */
    ck_assert(sim("how do I get a refund", "how do I get refunds") > 0.7);
    ck_assert(sim("how do I get a refund", "what is the capital of France") < 0.5);
}
END_TEST

START_TEST(embed_edges)
{
    float v[16];
    ck_assert_int_eq(llmc_embed_local("?!  ...", 7, v, 16), LLMC_MISS);
    ck_assert_int_eq(llmc_embed_local("", 0, v, 16), LLMC_MISS);
    ck_assert_int_eq(llmc_embed_local(NULL, 0, v, 16), LLMC_MISS);
    ck_assert_int_eq(llmc_embed_local("x", 1, v, 4), LLMC_EINVAL);
    ck_assert_int_eq(llmc_embed_local("x", 1, NULL, 16), LLMC_EINVAL);
    ck_assert_int_eq(llmc_embed_local(NULL, 3, v, 16), LLMC_EINVAL);
    /* A NUL byte and high bytes are data, never a crash. */
    ck_assert_int_eq(llmc_embed_local("a\0b\xff\xfe", 5, v, 16), LLMC_OK);
    char big[5000];
    memset(big, 'z', sizeof big);
    ck_assert_int_eq(llmc_embed_local(big, sizeof big, v, 16), LLMC_OK);
}
END_TEST

/* ---- a scope's records: codec, trim, hostile bytes ---- */
START_TEST(records_codec)
{
    enum { D = 16 };
    llmc__semrecs r;
    memset(&r, 0, sizeof r);
    r.dim = D;
    float v[D];
    for (int i = 0; i < 5; i++) {
        unit(v, D);
        char k[32];
        snprintf(k, sizeof k, "ns:key%d", i % 3); /* keys 0, 1 repeat */
        ck_assert_int_eq(llmc__semrecs_add(&r, k, "prompt \0x", 9, i == 4 ? 0 : 1000 + i, v),
                         LLMC_OK);
    }
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc__semrecs_encode(&r, &b), LLMC_OK);
    llmc__semrecs d;
    memset(&d, 0, sizeof d);
    ck_assert_int_eq(llmc__semrecs_decode(b.data, b.len, D, &d), LLMC_OK);
    ck_assert_uint_eq(d.n, 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(d.v[i].key, r.v[i].key);
        ck_assert_uint_eq(d.v[i].prompt_len, 9);
        ck_assert_mem_eq(d.v[i].prompt, "prompt \0x", 9);
        ck_assert_int_eq(d.v[i].expires_ms, r.v[i].expires_ms);
        ck_assert_mem_eq(d.v[i].vec, r.v[i].vec, sizeof v);
    }
    llmc__semrecs_free(&d);
    /* Another dimension, every truncation, flipped bytes: refused (or
     * decoded into something well-formed), never a crash. */
    ck_assert_int_eq(llmc__semrecs_decode(b.data, b.len, D + 1, &d), LLMC_ECORRUPT);
    ck_assert_uint_eq(d.n, 0);
    for (size_t n = 0; n < b.len; n++) {
        ck_assert_int_eq(llmc__semrecs_decode(b.data, n, D, &d), LLMC_ECORRUPT);
        ck_assert_uint_eq(d.n, 0);
    }
    for (size_t i = 0; i < b.len; i++) {
        char *c = malloc(b.len);
        memcpy(c, b.data, b.len);
        c[i] ^= 0x5a;
        llmc_status st = llmc__semrecs_decode(c, b.len, D, &d);
        ck_assert(st == LLMC_OK || st == LLMC_ECORRUPT);
        if (st == LLMC_OK)
            for (size_t j = 0; j < d.n; j++)
                ck_assert_uint_eq(strlen(d.v[j].key) > 0, 1);
        llmc__semrecs_free(&d);
        free(c);
    }
    /* A count that promises more than the bytes hold. */
    char *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    c[12] = (char)0xff;
    c[13] = (char)0xff;
    ck_assert_int_eq(llmc__semrecs_decode(c, b.len, D, &d), LLMC_ECORRUPT);
    free(c);
    llmc_buf_free(&b);
    /* Trim: expired go (now 1002: records 0, 1, 2 expired), the newest of
     * a key wins, then the newest `max`. */
    llmc__semrecs_trim(&r, 1002, 100);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_str_eq(r.v[0].key, "ns:key0"); /* record 3 (expires 1003) */
    ck_assert_int_eq(r.v[0].expires_ms, 1003);
    ck_assert_str_eq(r.v[1].key, "ns:key1"); /* record 4 (never) */
    llmc__semrecs_trim(&r, 1002, 1);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_str_eq(r.v[0].key, "ns:key1");
    llmc__semrecs_free(&r);
}
END_TEST

START_TEST(guards)
{
    static const struct {
        const char *a, *b;
        int agree;
    } cases[] = {
        {"refund 10 dollars", "refund 100 dollars", 0},
        {"refund 10 dollars", "Refund 10 DOLLARS!", 1},
        {"pay 1,000 now", "pay 1000 now", 1},
        {"pay 1,5 now", "pay 15 now", 0},
        {"costs 3.50", "costs 3.5", 1},
        {"costs 3.50", "costs 35", 0},
        {"move -5 steps", "move 5 steps", 0},
        {"2 and 3", "3 and 2", 1},
        {"version 1.2.3", "version 1.2.4", 0},
        {"is X safe", "is X not safe", 0},
        {"is X safe", "isn't X safe", 0},
        {"is X not safe", "isn't X safe", 1},
        {"never do that", "do that", 0},
        {"don't stop", "do not stop", 1},
        {"translate \"yes\"", "translate \"no\"", 0},
        {"translate \"yes\"", "TRANSLATE \"yes\"", 1},
        {"say 'hi' now", "say 'HI' now", 0},
        {"it's fine", "its fine", 1},
        {"99999999999999999999999999999999999999999999999999999", "same", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why = NULL;
        int got = llmc__sem_guards_agree(cases[i].a, strlen(cases[i].a), cases[i].b,
                                         strlen(cases[i].b), &why);
        ck_assert_msg(got == cases[i].agree, "\"%s\" vs \"%s\": %d (%s)", cases[i].a, cases[i].b,
                      got, why ? why : "-");
        /* Symmetric. */
        ck_assert_int_eq(llmc__sem_guards_agree(cases[i].b, strlen(cases[i].b), cases[i].a,
                                                strlen(cases[i].a), NULL),
                         cases[i].agree);
    }
    /* Hostile: unterminated quotes, a thousand numbers, high bytes. */
    char big[6000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "1 \"'`\xff"[i % 6];
    ck_assert_int_eq(llmc__sem_guards_agree(big, sizeof big, big, sizeof big, NULL), 0);
    ck_assert_int_eq(llmc__sem_guards_agree("\"", 1, "\"", 1, NULL), 1);
    ck_assert_int_eq(llmc__sem_guards_agree("", 0, "", 0, NULL), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("index");
    TCase *tc = tcase_create("index");
    tcase_add_test(tc, kernels_match_scalar);
    tcase_add_test(tc, flat_f32_exact);
    tcase_add_test(tc, flat_int8_exact);
    tcase_add_test(tc, flat_refuses_bad_config);
    tcase_add_test(tc, registry_kinds);
    tcase_add_test(tc, embed_near_duplicates);
    tcase_add_test(tc, embed_edges);
    tcase_add_test(tc, records_codec);
    tcase_add_test(tc, guards);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
