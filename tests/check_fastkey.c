/* The text fast path for v1 keys (core/fastjson.c) against the json-c
 * path: for every request it handles, the key (and the material) must be
 * byte-identical to llmc_key_compute("v1") over the json-c path
 * (llmc__json_parse, as the client parses a request) of the same text; where it is not sure, it must decline, never differ. Then
 * the client: a hit answered through the fast path must be the same
 * response, key, hit flag, provider, model and stream replay as through
 * the json-c path. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fastjson.h"
#include "jsontext.h"
#include "llmcache/llmcache.h"

/* ---- differential key check ---- */

typedef struct kcase {
    llmc_call_type call;
    const char *provider, *model, *api_base, *ns;
    int scope_by_user;
} kcase;

static const kcase kcases[] = {
    {LLMC_CALL_CHAT, "openai", "gpt-4o-mini", NULL, NULL, 0},
    {LLMC_CALL_TEXT, "anthropic", "claude-3-5-sonnet-latest", "http://h:1/v1", "ns1", 1},
    {LLMC_CALL_CHAT, "ollama", "llama3 \xc3\xa9\"", NULL, "team:a", 1},
};

/* 1 = handled and equal, 0 = declined; fails the test on a difference.
 * Embeddings use the first element of an array `input` (or the string). */
static int diff_one(const char *text, const kcase *kc)
{
    llmc__fjdoc *d = llmc__fj_thread_doc();
    ck_assert_ptr_nonnull(d);
    int parsed = llmc__fj_parse(d, text, strlen(text));
    json_object *o = NULL;
    llmc__json_parse(text, strlen(text), LLMC__LONE_REJECT, LLMC_EINVAL, "request JSON", &o, NULL);
    if (parsed)
        ck_assert_msg(o != NULL, "fast path parsed what json-c rejects: %s", text);
    if (!parsed) {
        json_object_put(o);
        return 0;
    }
    json_object *item = NULL;
    long fitem = -1;
    if (kc->call == LLMC_CALL_EMBEDDING) {
        json_object *in;
        long fi = llmc__fj_member(d, 0, "input");
        if (!json_object_object_get_ex(o, "input", &in) || !in) {
            /* absent, or null (json-c has no object for null) */
            ck_assert(fi < 0 || d->t[fi].type == LLMC__FJ_NULL);
            json_object_put(o);
            return 0;
        }
        ck_assert_int_ge(fi, 0);
        if (json_object_is_type(in, json_type_array) && json_object_array_length(in) > 0) {
            item = json_object_array_get_idx(in, 0);
            fitem = fi + 1;
        } else {
            item = in;
            fitem = fi;
        }
        if (!item) {
            json_object_put(o);
            return 0; /* a null item: json-c has no object for it */
        }
    }
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = kc->call;
    in.provider = kc->provider;
    in.model = kc->model;
    in.api_base = kc->api_base;
    in.request = o;
    in.input_item = item;
    in.namespace_ = kc->ns;
    in.scope_by_user = kc->scope_by_user;
    llmc_buf k1 = LLMC_BUF_INIT, m1 = LLMC_BUF_INIT, k2 = LLMC_BUF_INIT, m2 = LLMC_BUF_INIT;
    llmc_err e;
    llmc_status s1 = llmc_key_compute("v1", &in, &k1, &m1, &e);
    llmc__fj_keyin fin = {kc->call, kc->provider, kc->model, kc->api_base, kc->ns,
                          kc->scope_by_user, fitem};
    llmc_status s2 = llmc__fj_key_v1(d, &fin, &k2, &m2);
    int handled = s2 == LLMC_OK;
    if (handled) {
        ck_assert_msg(s1 == LLMC_OK, "fast key where json-c fails (%s): %s", e.msg, text);
        ck_assert_msg(strcmp(m1.data, m2.data) == 0, "material differs for %s\njson-c: %s\nfast:   %s",
                      text, m1.data, m2.data);
        ck_assert_str_eq(k1.data, k2.data);
    } else {
        ck_assert_int_eq(s2, LLMC_ENOTSUP);
    }
    llmc_buf_free(&k1);
    llmc_buf_free(&m1);
    llmc_buf_free(&k2);
    llmc_buf_free(&m2);
    json_object_put(o);
    return handled;
}

static int diff_all(const char *text)
{
    int h = 0;
    for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++)
        h += diff_one(text, &kcases[i]);
    kcase emb = {LLMC_CALL_EMBEDDING, "openai", "text-embedding-3-small", NULL, NULL, 0};
    diff_one(text, &emb);
    return h;
}

/* Requests the fast path must handle (and match). */
static const char *const handled_corpus[] = {
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    " {\n\t\"messages\" : [ { \"content\" : \"hi\" , \"role\" : \"user\" } ] ,\r\n \"model\":\"x\" } \n",
    "{\"a\":\"\\u00e9\\u0041\\/\\\\\\\"\\b\\f\\n\\r\\t\\u001f\\u007f\"}",
    "{\"a\":\"\\ud83d\\ude00 \\uD834\\uDD1E \xf0\x9f\x98\x80\"}",
    "{\"\\u00e9\":1,\"\xef\xbd\xa1\":2,\"\xf0\x9f\x98\x80\":3,\"z\":4,\"\\ud83d\\ude00x\":5}",
    "{\"n\":[1,1.0,1e0,-0,-0.0,0.1,1e21,1e-7,5e-1,1E+2,123456789012345678,"
    "-9223372036854775808,9223372036854775807,9007199254740993,0.30000000000000004,"
    "2.5e-300,1.7976931348623157e308,2.2250738585072014e-308,100,1e2]}",
    "{\"deep\":{\"a\":[[],{},[{}],{\"b\":[null,true,false]}]},\"e\":{},\"f\":[]}",
    "{\"api_key\":\"sk\",\"api_base\":\"x\",\"base_url\":\"y\",\"stream\":true,"
    "\"stream_options\":{},\"metadata\":{\"a\":1},\"user\":\"u\",\"timeout\":3,\"cache\":null,"
    "\"caching\":true,\"headers\":{},\"model\":\"m\",\"temperature\":0.5}",
    "{\"input\":[\"first item\",\"second\"],\"model\":\"e\",\"dimensions\":256}",
    "{\"input\":\"one string\",\"model\":\"e\"}",
    "{\"input\":[[1,2,3],[4]],\"model\":\"e\"}",
    "{\"a\":1,\"a\":2,\"b\":{\"c\":1,\"c\":[3]},\"a\":3}",
    "{\"user\":\"a\",\"user\":\"b\"}",
    "{\"s\":\"x\\u0000y\"}",
    "{}",
    "{\"\":\"empty name\"}",
};

/* Requests it must decline (json-c reads them its own way, or not). */
static const char *const declined_corpus[] = {
    "{\"a\":18446744073709551615}",          /* beyond int64: json-c goes unsigned */
    "{\"a\":-9223372036854775809}",          /* json-c saturates */
    "{\"a\":\"\\ud800\"}",                   /* lone surrogate: refused */
    "{\"a\":\"\\udc00\"}",
    "{\"a\\u0000b\":1}",                     /* json-c truncates the name */
    "{\"a\":1e400}",                         /* infinity */
    "{\"a\":4.9e-324}",                      /* subnormal: strtod says ERANGE */
    "{\"a\":01}",
    "{\"a\":1,}",
    "{\"a\":'x'}",
    "{/*c*/\"a\":1}",
    "{\"a\":NaN}",
    "{\"a\":\"\xff\"}",                      /* invalid UTF-8 */
    "{\"a\":\"\xc0\xaf\"}",                  /* overlong */
    "{\"a\":\"\xed\xa0\x80\"}",              /* encoded surrogate */
    "{\"a\":\"tab\there\"}",                 /* raw control character */
    "[1,2]",
    "{\"a\":1} x",
    "{\"a\":1}\f",
    "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    "{\"a\":tru}",
    "{\"a\":1.}",
    "{\"a\":-}",
    "{\"a\":.5}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"\\u12g4\"}",
    "",
    "{",
};

START_TEST(corpus_handled)
{
    for (size_t i = 0; i < sizeof handled_corpus / sizeof handled_corpus[0]; i++) {
        int h = diff_all(handled_corpus[i]);
        ck_assert_msg(h == 3, "fast path declined %s", handled_corpus[i]);
    }
}
END_TEST

START_TEST(corpus_declined)
{
    for (size_t i = 0; i < sizeof declined_corpus / sizeof declined_corpus[0]; i++) {
        int h = diff_all(declined_corpus[i]);
        ck_assert_msg(h == 0, "fast path took %s", declined_corpus[i]);
    }
}
END_TEST

/* Same key for texts that differ in order, whitespace and number
 * spelling only (the v1 contract, now through the fast path). */
START_TEST(equivalent_texts)
{
    const char *a = "{\"model\":\"m\",\"temperature\":1,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"caf\xc3\xa9\"}]}";
    const char *b = "{ \"messages\":[{\"content\":\"caf\\u00e9\",\"role\":\"user\"}],"
                    "\"temperature\":1.0e0 , \"model\":\"m\" }";
    llmc__fj_keyin in = {LLMC_CALL_CHAT, "openai", "m", NULL, NULL, 0, -1};
    llmc_buf k1 = LLMC_BUF_INIT, k2 = LLMC_BUF_INIT;
    llmc__fjdoc *d = llmc__fj_thread_doc();
    ck_assert(llmc__fj_parse(d, a, strlen(a)));
    ck_assert_int_eq(llmc__fj_key_v1(d, &in, &k1, NULL), LLMC_OK);
    ck_assert(llmc__fj_parse(d, b, strlen(b)));
    ck_assert_int_eq(llmc__fj_key_v1(d, &in, &k2, NULL), LLMC_OK);
    ck_assert_str_eq(k1.data, k2.data);
    ck_assert_uint_eq(k1.len, 64);
    llmc_buf_free(&k1);
    llmc_buf_free(&k2);
}
END_TEST

/* ---- random requests ---- */

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void ws(llmc_buf *b)
{
    static const char *const w[] = {"", "", "", " ", "\n", "\t", "\r\n  "};
    llmc_buf_puts(b, w[rnd(7)]);
}

static void gen_string(llmc_buf *b, int key)
{
    static const char *const pieces[] = {
        "a", "b", "Z", "0", " ", "\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r",
        "\\u0041", "\\u00e9", "\\u20ac", "\\ud83d\\ude00", "\\uD834\\uDD1E", "\\uffff",
        "\\ue000", "\\u001f", "\xc3\xa9", "\xe2\x82\xac", "\xef\xbd\xa1", "\xf0\x9f\x98\x80",
        "\xee\x80\x80", "model", "user", "input", "stream", "\\u0000", "\\ud800", "\x7f"};
    llmc_buf_puts(b, "\"");
    int n = (int)rnd(key ? 4 : 8);
    for (int i = 0; i < n; i++) {
        uint32_t p = rnd(sizeof pieces / sizeof pieces[0]);
        /* the risky pieces (NUL, lone surrogate) rarely, to see declines */
        if (p >= 30 && rnd(4) != 0)
            p = 0;
        llmc_buf_puts(b, pieces[p]);
    }
    llmc_buf_puts(b, "\"");
}

static void gen_number(llmc_buf *b)
{
    static const char *const nums[] = {
        "0", "-0", "1", "1.0", "1e0", "10E-1", "0.1", "1e21", "1e-7", "5e-1", "-1.5",
        "123456789", "9007199254740992", "9007199254740993", "-9007199254740993",
        "9223372036854775807", "-9223372036854775808", "1.7976931348623157e308",
        "4.9e-324", "0.000001", "1e-6", "123e-20", "3.14159265358979", "2e+10", "1E400",
        "18446744073709551616", "100", "0.5"};
    if (rnd(3) == 0) {
        llmc_buf_printf(b, "%d", (int)rnd(2000000) - 1000000);
        return;
    }
    if (rnd(4) == 0) {
        llmc_buf_printf(b, "%.*g", (int)rnd(17) + 1, ((double)rnd(1u << 30) - (1 << 29)) /
                                                          (double)(rnd(100000) + 1));
        return;
    }
    llmc_buf_puts(b, nums[rnd(sizeof nums / sizeof nums[0])]);
}

static void gen_value(llmc_buf *b, int depth);

static void gen_object(llmc_buf *b, int depth, int top)
{
    static const char *const names[] = {
        "\"model\"", "\"messages\"", "\"temperature\"", "\"user\"", "\"stream\"",
        "\"api_key\"", "\"metadata\"", "\"input\"", "\"tools\"", "\"n\"", "\"a\"",
        "\"\\u00e9\"", "\"\xc3\xa9\"", "\"\xef\xbd\xa1\"", "\"\xf0\x9f\x98\x80\"", "\"\""};
    llmc_buf_puts(b, "{");
    int n = (int)rnd(top ? 8 : 5);
    for (int i = 0; i < n; i++) {
        if (i)
            llmc_buf_puts(b, ",");
        ws(b);
        if (rnd(2))
            llmc_buf_puts(b, names[rnd(sizeof names / sizeof names[0])]);
        else
            gen_string(b, 1);
        ws(b);
        llmc_buf_puts(b, ":");
        ws(b);
        gen_value(b, depth + 1);
        ws(b);
    }
    llmc_buf_puts(b, "}");
}

static void gen_value(llmc_buf *b, int depth)
{
    uint32_t k = rnd(depth > 4 ? 5 : 8);
    switch (k) {
    case 0: llmc_buf_puts(b, "null"); break;
    case 1: llmc_buf_puts(b, rnd(2) ? "true" : "false"); break;
    case 2: gen_number(b); break;
    case 3:
    case 4: gen_string(b, 0); break;
    case 5:
    case 6: {
        llmc_buf_puts(b, "[");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            if (i)
                llmc_buf_puts(b, ",");
            ws(b);
            gen_value(b, depth + 1);
            ws(b);
        }
        llmc_buf_puts(b, "]");
        break;
    }
    default: gen_object(b, depth, 0);
    }
}

START_TEST(random_requests)
{
    rng = 0x9E3779B97F4A7C15ull;
    int handled = 0, total = 2500;
    llmc_buf b = LLMC_BUF_INIT;
    for (int i = 0; i < total; i++) {
        llmc_buf_clear(&b);
        ws(&b);
        gen_object(&b, 0, 1);
        ws(&b);
        if (diff_all(b.data) == 3)
            handled++;
    }
    llmc_buf_free(&b);
    /* Most random requests are plain JSON: the test is not vacuous. */
    ck_assert_msg(handled > total / 2, "only %d of %d handled", handled, total);
}
END_TEST


/* ---- \u escapes: one decoder on both paths ---- */

/* UTF-8 of cp as a C string. */
static void utf8(uint32_t cp, char out[5])
{
    size_t n = llmc__utf8_put(cp, (unsigned char *)out);
    out[n] = 0;
}

/* The v1 material of a one-message chat request over the json-c path. */
static char *material_of(const char *text)
{
    json_object *o = NULL;
    llmc_err e;
    ck_assert_msg(llmc__json_parse(text, strlen(text), LLMC__LONE_REJECT, LLMC_EINVAL, "request",
                                   &o, &e) == LLMC_OK, "%s: %s", text, e.msg);
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "m";
    in.request = o;
    llmc_buf k = LLMC_BUF_INIT, m = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_key_compute("v1", &in, &k, &m, &e), LLMC_OK);
    llmc_buf_free(&k);
    json_object_put(o);
    return m.data;
}

/* Every surrogate pair decodes to its own code point on both paths: all
 * 1024 high surrogates (json-c 0.16 turns 32 of them into U+FFFD) with the
 * first, a middle and the last low surrogate, in upper and lower case. */
START_TEST(surrogate_pairs_exact)
{
    static const uint32_t lows[] = {0xDC00, 0xDC01, 0xDE00, 0xDFFF};
    char text[256], want[64], u8[5];
    for (uint32_t hi = 0xD800; hi <= 0xDBFF; hi++)
        for (size_t l = 0; l < sizeof lows / sizeof lows[0]; l++) {
            uint32_t cp = 0x10000 + ((hi - 0xD800) << 10) + (lows[l] - 0xDC00);
            snprintf(text, sizeof text,
                     (hi & 1) ? "{\"messages\":[{\"role\":\"user\",\"content\":\"<\\u%04X\\u%04X>\"}]}"
                              : "{\"messages\":[{\"role\":\"user\",\"content\":\"<\\u%04x\\u%04x>\"}]}",
                     hi, lows[l]);
            ck_assert_int_eq(diff_all(text), 3);
            char *m = material_of(text);
            utf8(cp, u8);
            snprintf(want, sizeof want, "\"content\":\"<%s>\"", u8);
            ck_assert_msg(strstr(m, want) != NULL, "U+%04X lost in %s", cp, m);
            ck_assert_msg(strstr(m, "\xef\xbf\xbd") == NULL, "U+FFFD for U+%04X", cp);
            free(m);
        }
}
END_TEST

/* The reported pair: U+2D800 and U+2D801 (CJK Extension F) must not
 * share a key; written as escapes and as raw UTF-8 they must share one. */
START_TEST(surrogate_pairs_distinct_keys)
{
    const char *a = "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud876\\udc00\"}]}";
    const char *b = "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud876\\udc01\"}]}";
    const char *raw = "{\"messages\":[{\"role\":\"user\",\"content\":\"\xf0\xad\xa0\x80\"}]}";
    char *ma = material_of(a), *mb = material_of(b), *mr = material_of(raw);
    ck_assert_str_ne(ma, mb);
    ck_assert_str_eq(ma, mr);
    free(ma);
    free(mb);
    free(mr);
    /* and through the public request parser the client uses */
    llmc_request *ra = NULL, *rb = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_request_from_json(a, LLMC_ZSTR, &ra, &e), LLMC_OK);
    ck_assert_int_eq(llmc_request_from_json(b, LLMC_ZSTR, &rb, &e), LLMC_OK);
    ck_assert_str_ne(json_object_to_json_string(llmc_request_json(ra)),
                     json_object_to_json_string(llmc_request_json(rb)));
    llmc_request_free(ra);
    llmc_request_free(rb);
}
END_TEST

/* Every other class of escape reads the same on both paths. */
START_TEST(escape_classes)
{
    static const char *const esc[] = {
        "\\u0000", "\\u0001", "\\u001F", "\\u0020", "\\u0022", "\\u005C", "\\u002F", "\\u007F",
        "\\u0080", "\\u00FF", "\\u07FF", "\\u0800", "\\uD7FF", "\\uE000", "\\uFEFF", "\\uFFFD",
        "\\uFFFE", "\\uFFFF", "\\uD800\\uDC00", "\\uDBFF\\uDFFF", "\\ud83d\\ude00",
        "\\uD836\\uDC00", "\\uD876\\uDFFF", "\\uDB3F\\uDC00", "\\\"", "\\\\", "\\/", "\\b", "\\f",
        "\\n", "\\r", "\\t", "\\\\u0041", "\\\\ud800"};
    char text[256];
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++)
        for (size_t j = 0; j < sizeof esc / sizeof esc[0]; j++) {
            snprintf(text, sizeof text, "{\"messages\":[{\"content\":\"%s%s x\"}],\"k%s\":1}",
                     esc[i], esc[j], strcmp(esc[i], "\\u0000") ? esc[i] : "");
            ck_assert_msg(diff_all(text) == 3, "declined: %s", text);
        }
}
END_TEST

/* A lone surrogate is not a character: the json-c path refuses the
 * request with a message naming it, the fast path declines. */
START_TEST(lone_surrogates_refused)
{
    static const char *const lone[] = {
        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\uDBFF\"}", "{\"a\":\"x\\udfff\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800\\ud800\\udc00\"}",
        "{\"a\":\"\\ud800\\\\udc00\"}", "{\"a\":\"\\ude00\\ud83d\"}", "{\"\\ud800\":1}",
        "{\"a\":\"\\ud83d\"", "{\"a\":\"\\ud83d\\ude\"}", "{\"a\":['\\ud800']}"};
    for (size_t i = 0; i < sizeof lone / sizeof lone[0]; i++) {
        llmc__fjdoc *d = llmc__fj_thread_doc();
        int fast = llmc__fj_parse(d, lone[i], strlen(lone[i]));
        llmc_request *r = NULL;
        llmc_err e;
        llmc_status st = llmc_request_from_json(lone[i], LLMC_ZSTR, &r, &e);
        ck_assert_msg(st == LLMC_EINVAL, "%s accepted", lone[i]);
        ck_assert_ptr_null(r);
        if (i < 9) {
            ck_assert_int_eq(fast, 0);
            ck_assert_msg(strstr(e.msg, "lone UTF-16 surrogate") != NULL, "%s: %s", lone[i],
                          e.msg);
        }
    }
    /* provider output: U+FFFD, the same on every parse */
    json_object *o = NULL;
    llmc_err e;
    const char *t1 = "{\"a\":\"x\\ud800y\\udc00\"}";
    ck_assert_int_eq(llmc_json_parse(t1, strlen(t1), "response", &o, &e), LLMC_OK);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "a")),
                     "x\xef\xbf\xbdy\xef\xbf\xbd");
    json_object_put(o);
    /* the escape in a comment or in a '...' string is found the way json-c
     * finds strings */
    const char *t2 = "{/* \"\\ud800 */\"a\":'\\ud83d\\ude00\"'}";
    ck_assert_int_eq(llmc_json_parse(t2, strlen(t2), "r", &o, &e), LLMC_OK);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "a")),
                     "\xf0\x9f\x98\x80\"");
    json_object_put(o);
}
END_TEST

/* One thread, failed and valid parses interleaved: nothing of a failed
 * parse reaches the next one (json-c kept a pending high surrogate in a
 * reused tokener). */
START_TEST(interleaved_parses_one_thread)
{
    static const struct {
        const char *bad, *good, *want;
    } seq[] = {
        {"{\"a\":\"\\ud83d", "{\"a\":\"\\u00e9\"}", "\xc3\xa9"},
        {"{\"a\":\"\\ud83d\\ude", "{\"a\":\"\\u0041\"}", "A"},
        {"{\"a\":\"\\ud83d\\u", "{\"a\":\"\\udE00x\\ud83d\\ude00\"}", NULL},
        {"{\"a\":\"\\u00", "{\"a\":\"b\"}", "b"},
        {"{\"a\":\"\\ud83d\\ude00", "{\"a\":\"c\"}", "c"},
        {"{\"a\":[1,", "{\"a\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80"},
        {"{\"a\":\"x\\", "{\"a\":\"\\\"\"}", "\""},
    };
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
            llmc_request *r = NULL;
            llmc_err e;
            ck_assert_int_eq(llmc_request_from_json(seq[i].bad, LLMC_ZSTR, &r, &e), LLMC_EINVAL);
            llmc_status st = llmc_request_from_json(seq[i].good, LLMC_ZSTR, &r, &e);
            if (!seq[i].want) {
                /* its first escape is a lone low surrogate: refused, not
                 * completed by the previous text's high half */
                ck_assert_int_eq(st, LLMC_EINVAL);
                continue;
            }
            ck_assert_msg(st == LLMC_OK, "%s: %s", seq[i].good, e.msg);
            json_object *a = json_object_object_get(llmc_request_json(r), "a");
            ck_assert_str_eq(json_object_get_string(a), seq[i].want);
            llmc_request_free(r);
            /* the provider-side parser too */
            json_object *o = NULL;
            ck_assert_int_ne(llmc_json_parse(seq[i].bad, strlen(seq[i].bad), "r", &o, &e),
                             LLMC_OK);
            ck_assert_int_eq(llmc_json_parse(seq[i].good, strlen(seq[i].good), "r", &o, &e),
                             LLMC_OK);
            ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "a")),
                             seq[i].want);
            json_object_put(o);
        }
}
END_TEST

/* ---- kept regression inputs (tests/fuzz/regress/) ----
 * fastkey/: one request text per file; the two paths must agree (or the
 * fast one decline). client/: one text per line, parsed in order on one
 * thread; each must parse exactly as it does alone on a fresh thread. */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    llmc_buf b = LLMC_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ck_assert_int_eq(llmc_buf_append(&b, chunk, n), LLMC_OK);
    fclose(f);
    if (!b.data)
        llmc_buf_puts(&b, "");
    *len = b.len;
    return b.data;
}

/* The outcome of parsing one request text: status and the re-serialised
 * object. */
static char *parse_outcome(const char *text, size_t len)
{
    llmc_request *r = NULL;
    llmc_err e;
    llmc_status st = llmc_request_from_json(text, len, &r, &e);
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_printf(&b, "%d ", (int)st);
    if (st == LLMC_OK)
        llmc_buf_puts(&b, json_object_to_json_string_ext(llmc_request_json(r),
                                                         JSON_C_TO_STRING_PLAIN));
    llmc_request_free(r);
    return b.data;
}

typedef struct alone {
    const char *text;
    size_t len;
    char *out;
} alone;

static void *parse_alone(void *p)
{
    alone *a = p;
    a->out = parse_outcome(a->text, a->len);
    return NULL;
}

static size_t regress_files(const char *area, const char *ext, char names[][1024], size_t max)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fuzz/regress/%s", LLMC_TEST_SRCDIR, area);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "missing %s", dir);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        size_t l = strlen(de->d_name);
        if (l > strlen(ext) && strcmp(de->d_name + l - strlen(ext), ext) == 0)
            snprintf(names[n++], 1024, "%.511s/%.255s", dir, de->d_name);
    }
    closedir(d);
    return n;
}

START_TEST(regress_inputs)
{
    static char names[256][1024];
    size_t n = regress_files("fastkey", ".json", names, 256);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *t = read_all(names[i], &len);
        diff_all(t);
        free(t);
    }
    n = regress_files("client", ".txt", names, 256);
    ck_assert_uint_gt(n, 0);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *t = read_all(names[i], &len);
        for (char *line = t, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                nl = line + strlen(line) - 1;
            alone a = {line, (size_t)(nl - line) + (*nl != '\n'), NULL};
            char *seq = parse_outcome(a.text, a.len);
            pthread_t th;
            ck_assert_int_eq(pthread_create(&th, NULL, parse_alone, &a), 0);
            pthread_join(th, NULL);
            ck_assert_msg(strcmp(seq, a.out) == 0, "%s: %.*s parsed as %s after the lines "
                          "before it, as %s alone", names[i], (int)a.len, a.text, seq, a.out);
            free(seq);
            free(a.out);
        }
        free(t);
    }
}
END_TEST

/* ---- the client ---- */

static int fast_hits_before;

typedef struct chunks {
    llmc_buf all;
    int n;
} chunks;

static int collect(void *ud, struct json_object *chunk)
{
    chunks *c = ud;
    llmc_buf_puts(&c->all, json_object_to_json_string_ext(chunk, JSON_C_TO_STRING_PLAIN));
    llmc_buf_puts(&c->all, "\n");
    c->n++;
    return 0;
}

static llmc_client *new_client(llmc_cache *cache, const char *memo)
{
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "memo_entries", memo);
    llmc_client *cl = NULL;
    llmc_err e;
    ck_assert_msg(llmc_client_new(cache, o, &cl, &e) == LLMC_OK, "%s", e.msg);
    llmc_options_free(o);
    return cl;
}

/* The same hit through the fast path (text, memo off) and the json-c
 * path (a request object) is the same response. */
static void same_hit(llmc_client *fast, llmc_client *slow, llmc_call_type call,
                     const char *text)
{
    llmc_err e;
    llmc_response *rf = NULL, *rs = NULL;
    llmc_request *q = NULL;
    ck_assert_int_eq(llmc_request_from_json(text, LLMC_ZSTR, &q, &e), LLMC_OK);
    uint64_t h0 = llmc__client_fast_hits();
    llmc_status sf = call == LLMC_CALL_CHAT ? llmc_completion_json(fast, text, LLMC_ZSTR, &rf, &e)
                                            : llmc_text_completion_json(fast, text, LLMC_ZSTR,
                                                                        &rf, &e);
    ck_assert_msg(sf == LLMC_OK, "%s", e.msg);
    ck_assert_uint_eq(llmc__client_fast_hits(), h0 + 1);
    llmc_status ss = llmc_client_call(slow, call, q, NULL, NULL, &rs, &e);
    ck_assert_msg(ss == LLMC_OK, "%s", e.msg);
    ck_assert_uint_eq(llmc__client_fast_hits(), h0 + 1);
    ck_assert(llmc_response_cache_hit(rf));
    ck_assert(llmc_response_cache_hit(rs));
    size_t lf, ls;
    const char *tf = llmc_response_text(rf, &lf), *tsl = llmc_response_text(rs, &ls);
    ck_assert_uint_eq(lf, ls);
    ck_assert_str_eq(tf, tsl);
    ck_assert_str_eq(llmc_response_cache_key(rf), llmc_response_cache_key(rs));
    ck_assert_str_eq(llmc_response_provider(rf), llmc_response_provider(rs));
    ck_assert_str_eq(llmc_response_model(rf), llmc_response_model(rs));
    ck_assert_int_ge(llmc_response_cache_age_ms(rf), 0);
    ck_assert_int_ge(llmc_response_cache_age_ms(rs), 0);
    ck_assert_int_eq(llmc_response_cache_stored(rf), llmc_response_cache_stored(rs));
    ck_assert_int_eq(llmc_response_attempts(rf), llmc_response_attempts(rs));
    ck_assert_ptr_nonnull(strstr(tf, "\"cache\":true"));
    llmc_response_free(rf);
    llmc_response_free(rs);
    if (call == LLMC_CALL_CHAT) {
        chunks cf = {LLMC_BUF_INIT, 0}, cs = {LLMC_BUF_INIT, 0};
        h0 = llmc__client_fast_hits();
        ck_assert_int_eq(llmc_completion_stream_json(fast, text, LLMC_ZSTR, collect, &cf, NULL,
                                                     &e),
                         LLMC_OK);
        ck_assert_uint_eq(llmc__client_fast_hits(), h0 + 1);
        ck_assert_int_eq(llmc_completion_stream(slow, q, collect, &cs, NULL, &e), LLMC_OK);
        ck_assert_int_gt(cf.n, 1);
        ck_assert_int_eq(cf.n, cs.n);
        ck_assert_str_eq(cf.all.data, cs.all.data);
        llmc_buf_free(&cf.all);
        llmc_buf_free(&cs.all);
    }
    llmc_request_free(q);
}

START_TEST(client_fast_hit_matches_slow)
{
    (void)fast_hits_before;
    llmc_cache *cache = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_cache_open("local://?namespace=t", NULL, &cache, &e), LLMC_OK);
    llmc_client *fast = new_client(cache, "0"), *slow = new_client(cache, "0");
    const char *req = "{\"model\":\"mock/demo\",\"mock_response\":\"Hello there, a cached "
                      "answer \\u00e9 \\ud83d\\ude00\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}],\"temperature\":0.5,\"user\":\"u1\"}";
    llmc_response *r = NULL;
    /* First: a miss (mock answers, stored); the fast path looked it up
     * once and the json-c path did not look it up again. */
    llmc_cache_stats_reset(cache);
    ck_assert_int_eq(llmc_completion_json(fast, req, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    ck_assert(llmc_response_cache_stored(r));
    llmc_response_free(r);
    llmc_stats stt;
    ck_assert_int_eq(llmc_cache_stats(cache, &stt, sizeof stt), LLMC_OK);
    ck_assert_uint_eq(stt.misses, 1);
    same_hit(fast, slow, LLMC_CALL_CHAT, req);
    /* Same request, other spelling: the same entry, through the fast path. */
    same_hit(fast, slow, LLMC_CALL_CHAT,
             " { \"user\" : \"u1\", \"temperature\":5e-1,\"messages\":[{\"content\":\"hi\","
             "\"role\":\"user\"}],\"mock_response\":\"Hello there, a cached answer \xc3\xa9 "
             "\xf0\x9f\x98\x80\",\"model\":\"mock/demo\",\"stream\":true,"
             "\"cache\":{\"s-maxage\":3600,\"ttl\":10,\"no-store\":true},\"caching\":1}\n");
    /* Text completions and a request namespace. */
    const char *treq = "{\"model\":\"mock/demo\",\"mock_response\":\"text answer\",\"prompt\":"
                       "\"Say it\",\"cache\":{\"namespace\":\"other\"}}";
    ck_assert_int_eq(llmc_text_completion_json(fast, treq, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    ck_assert_str_eq(llmc_response_cache_key(r) ? "other" : "", "other");
    ck_assert(strncmp(llmc_response_cache_key(r), "other:", 6) == 0);
    llmc_response_free(r);
    same_hit(fast, slow, LLMC_CALL_TEXT, treq);

    /* Declined: a preset key, no-cache, a custom key function; they still
     * work through the json-c path. */
    uint64_t h0 = llmc__client_fast_hits();
    const char *nc = "{\"model\":\"mock/demo\",\"mock_response\":\"Hello there, a cached "
                     "answer \\u00e9 \\ud83d\\ude00\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"hi\"}],\"temperature\":0.5,\"user\":\"u1\",\"cache\":"
                     "{\"no-cache\":true}}";
    ck_assert_int_eq(llmc_completion_json(fast, nc, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    llmc_response_free(r);
    const char *bad = "{\"model\":\"mock/demo\",\"messages\":[],\"mock_response\":\"x\"}";
    ck_assert_int_eq(llmc_completion_json(fast, bad, LLMC_ZSTR, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "messages"));
    const char *badc = "{\"model\":\"mock/demo\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"hi\"}],\"mock_response\":\"x\",\"cache\":{\"ttl\":-1}}";
    ck_assert_int_eq(llmc_completion_json(fast, badc, LLMC_ZSTR, &r, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "ttl"));
    ck_assert_uint_eq(llmc__client_fast_hits(), h0);

    llmc_client_free(fast);
    llmc_client_free(slow);
    llmc_cache_close(cache);
}
END_TEST

/* With scope_by_user, `user` is in the key on both paths. */
START_TEST(client_scope_by_user)
{
    llmc_cache *cache = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_cache_open("local://?scope_by_user=true", NULL, &cache, &e), LLMC_OK);
    llmc_client *fast = new_client(cache, "0"), *slow = new_client(cache, "4");
    const char *a = "{\"model\":\"mock/demo\",\"mock_response\":\"A\",\"messages\":[{\"role\":"
                    "\"user\",\"content\":\"hi\"}],\"user\":\"alice\"}";
    const char *b = "{\"model\":\"mock/demo\",\"mock_response\":\"A\",\"messages\":[{\"role\":"
                    "\"user\",\"content\":\"hi\"}],\"user\":\"bob\"}";
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_completion_json(slow, a, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    llmc_response_free(r);
    same_hit(fast, slow, LLMC_CALL_CHAT, a);
    ck_assert_int_eq(llmc_completion_json(fast, b, LLMC_ZSTR, &r, &e), LLMC_OK);
    ck_assert(!llmc_response_cache_hit(r));
    llmc_response_free(r);
    llmc_client_free(fast);
    llmc_client_free(slow);
    llmc_cache_close(cache);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fastkey");
    TCase *t = tcase_create("keys");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, corpus_handled);
    tcase_add_test(t, corpus_declined);
    tcase_add_test(t, equivalent_texts);
    tcase_add_test(t, random_requests);
    tcase_add_test(t, surrogate_pairs_exact);
    tcase_add_test(t, surrogate_pairs_distinct_keys);
    tcase_add_test(t, escape_classes);
    tcase_add_test(t, lone_surrogates_refused);
    tcase_add_test(t, interleaved_parses_one_thread);
    tcase_add_test(t, regress_inputs);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("client");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, client_fast_hit_matches_slow);
    tcase_add_test(c, client_scope_by_user);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    llmc_init();
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
