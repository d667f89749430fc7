/* Key strategy v1 and the RFC 8785 canonicaliser. */
#include <check.h>
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "jsontext.h"

static char *canon_of(const char *json)
{
    json_object *o = json_tokener_parse(json);
    ck_assert_msg(o != NULL, "bad test json %s", json);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_json_canonicalize(o, &b), LLMC_OK);
    json_object_put(o);
    return b.data;
}

static void expect_canon(const char *in, const char *want)
{
    char *got = canon_of(in);
    ck_assert_msg(strcmp(got, want) == 0, "canon(%s) = %s, want %s", in, got, want);
    free(got);
}

START_TEST(t_canon)
{
    expect_canon("{ \"b\" : 2, \"a\" : [1, 2.0, -0.0, true, null] }",
                 "{\"a\":[1,2,0,true,null],\"b\":2}");
    expect_canon("{\"n\":[1e0, 1.0e2, 0.5, 1e21, 1e-7, 123456789012345678, 0.000001, 1.5e-9]}",
                 "{\"n\":[1,100,0.5,1e+21,1e-7,123456789012345680,0.000001,1.5e-9]}");
    expect_canon("{\"n\":[4.5, 0.1, 333333333.33333329, 1E30, -1e-300, 9007199254740993]}",
                 "{\"n\":[4.5,0.1,333333333.3333333,1e+30,-1e-300,9007199254740992]}");
    expect_canon("\"\\u0041\\n\\u001f\\u007f\\/\\\"\\\\ é \\ud83d\\ude00\"",
                 "\"A\\n\\u001f\x7f/\\\"\\\\ é 😀\"");
    /* RFC 8785 3.2.3 ordering by UTF-16 code units */
    expect_canon("{\"\\u20ac\":1,\"\\r\":2,\"\\ufb33\":3,\"1\":4,\"\\ud83d\\ude00\":5,"
                 "\"\\u0080\":6,\"\\u00f6\":7}",
                 "{\"\\r\":2,\"1\":4,\"\xc2\x80\":6,\"\xc3\xb6\":7,\"\xe2\x82\xac\":1,\"\xf0\x9f\x98\x80\":5,\"\xef\xac\xb3\":3}");
    expect_canon("{\"a\":{\"z\":1,\"y\":{\"c\":[],\"b\":{}}}}",
                 "{\"a\":{\"y\":{\"b\":{},\"c\":[]},\"z\":1}}");
    /* long strings with escapes at every alignment */
    char in[400], want[800];
    strcpy(in, "\"");
    strcpy(want, "\"");
    for (int i = 0; i < 40; i++) {
        strcat(in, "abcdefg\\t");
        strcat(want, "abcdefg\\t");
    }
    strcat(in, "\"");
    strcat(want, "\"");
    expect_canon(in, want);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc__canon_double(&b, NAN), LLMC_EINVAL);
    ck_assert_int_eq(llmc__canon_double(&b, INFINITY), LLMC_EINVAL);
    llmc_buf_free(&b);
}
END_TEST

static char *key_of(const char *json, llmc_call_type call, const char *provider,
                    const char *model, const char *ns, int scope_user)
{
    json_object *o = json_tokener_parse(json);
    ck_assert_msg(o != NULL, "bad json %s", json);
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = call;
    in.provider = provider;
    in.model = model;
    in.request = o;
    in.namespace_ = ns;
    in.scope_by_user = scope_user;
    if (call == LLMC_CALL_EMBEDDING) {
        json_object *inp = NULL;
        json_object_object_get_ex(o, "input", &inp);
        in.input_item = json_object_is_type(inp, json_type_array)
                            ? json_object_array_get_idx(inp, 0) : inp;
    }
    llmc_buf k = LLMC_BUF_INIT;
    llmc_err e;
    ck_assert_msg(llmc_key_compute(NULL, &in, &k, NULL, &e) == LLMC_OK, "%s", e.msg);
    json_object_put(o);
    return k.data;
}

static char *chat_key(const char *json) { return key_of(json, LLMC_CALL_CHAT, "openai", "gpt-4o-mini", NULL, 0); }

typedef struct pair {
    const char *a, *b;
} pair;

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]"

static const pair same[] = {
    {"{" MSG ",\"temperature\":1}", "{\"temperature\":1.0," MSG "}"},
    {"{" MSG ",\"temperature\":0.5}", "{ \"temperature\" : 5e-1 , " MSG " }"},
    {"{" MSG ",\"max_tokens\":100}", "{" MSG ",\"max_tokens\":1e2}"},
    {"{" MSG "}", "{" MSG ",\"stream\":true}"},
    {"{" MSG "}", "{" MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"},
    {"{" MSG "}", "{" MSG ",\"api_key\":\"sk-secret\"}"},
    {"{" MSG "}", "{" MSG ",\"timeout\":30,\"max_retries\":5,\"headers\":{\"X\":\"y\"}}"},
    {"{" MSG "}", "{" MSG ",\"metadata\":{\"trace\":\"abc\"}}"},
    {"{" MSG "}", "{" MSG ",\"cache\":{\"no-cache\":false,\"ttl\":60}}"},
    {"{" MSG "}", "{" MSG ",\"user\":\"alice\"}"},
    {"{" MSG "}", "{\"model\":\"gpt-4o-mini\"," MSG "}"},
    {"{\"messages\":[{\"content\":\"Hello\",\"role\":\"user\"}]}", "{" MSG "}"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"café\"}]}"},
};

static const pair differ[] = {
    {"{" MSG "}", "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}"},
    {"{" MSG "}", "{\"messages\":[{\"role\":\"system\",\"content\":\"Hello\"}]}"},
    {"{" MSG ",\"temperature\":0.5}", "{" MSG ",\"temperature\":0.50001}"},
    {"{" MSG ",\"temperature\":0}", "{" MSG "}"},
    {"{" MSG ",\"max_tokens\":100}", "{" MSG ",\"max_tokens\":101}"},
    {"{" MSG ",\"seed\":1}", "{" MSG ",\"seed\":2}"},
    {"{" MSG ",\"n\":1}", "{" MSG ",\"n\":2}"},
    {"{" MSG ",\"top_p\":1}", "{" MSG "}"},
    {"{" MSG ",\"stop\":[\"a\"]}", "{" MSG ",\"stop\":[\"b\"]}"},
    {"{" MSG ",\"tools\":[]}", "{" MSG "}"},
    {"{" MSG ",\"response_format\":{\"type\":\"json_object\"}}", "{" MSG "}"},
    {"{" MSG ",\"some_new_param\":true}", "{" MSG "}"},
    {"{" MSG ",\"mock_response\":\"a\"}", "{" MSG ",\"mock_response\":\"b\"}"},
    {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"a\"}]}"},
    {"{" MSG ",\"x\":\"1\"}", "{" MSG ",\"x\":1}"},
    {"{" MSG ",\"x\":null}", "{" MSG "}"},
    {"{" MSG ",\"x\":[]}", "{" MSG ",\"x\":{}}"},
};

START_TEST(t_collisions)
{
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char *a = chat_key(same[i].a), *b = chat_key(same[i].b);
        ck_assert_msg(strcmp(a, b) == 0, "must collide:\n %s\n %s", same[i].a, same[i].b);
        ck_assert_uint_eq(strlen(a), 64);
        free(a);
        free(b);
    }
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        char *a = chat_key(differ[i].a), *b = chat_key(differ[i].b);
        ck_assert_msg(strcmp(a, b) != 0, "must differ:\n %s\n %s", differ[i].a, differ[i].b);
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(t_key_context)
{
    const char *req = "{" MSG "}";
    char *base = key_of(req, LLMC_CALL_CHAT, "openai", "gpt-4o-mini", NULL, 0);
    char *other_model = key_of(req, LLMC_CALL_CHAT, "openai", "gpt-4o", NULL, 0);
    char *other_prov = key_of(req, LLMC_CALL_CHAT, "azure", "gpt-4o-mini", NULL, 0);
    char *other_call = key_of(req, LLMC_CALL_TEXT, "openai", "gpt-4o-mini", NULL, 0);
    char *ns = key_of(req, LLMC_CALL_CHAT, "openai", "gpt-4o-mini", "team1", 0);
    ck_assert_str_ne(base, other_model);
    ck_assert_str_ne(base, other_prov);
    ck_assert_str_ne(base, other_call);
    ck_assert_uint_eq(strlen(ns), 6 + 64);
    ck_assert(strncmp(ns, "team1:", 6) == 0);
    ck_assert_str_eq(ns + 6, base); /* same digest, prefixed */
    /* user scoping */
    char *u1 = key_of("{" MSG ",\"user\":\"alice\"}", LLMC_CALL_CHAT, "openai", "m", NULL, 1);
    char *u2 = key_of("{" MSG ",\"user\":\"bob\"}", LLMC_CALL_CHAT, "openai", "m", NULL, 1);
    ck_assert_str_ne(u1, u2);
    /* embeddings: one entry per item; other items in the request don't matter */
    char *e1 = key_of("{\"input\":[\"a\",\"b\"]}", LLMC_CALL_EMBEDDING, "openai", "te3", NULL, 0);
    char *e2 = key_of("{\"input\":[\"a\",\"zzz\"]}", LLMC_CALL_EMBEDDING, "openai", "te3", NULL, 0);
    char *e3 = key_of("{\"input\":\"a\"}", LLMC_CALL_EMBEDDING, "openai", "te3", NULL, 0);
    char *e4 = key_of("{\"input\":[\"b\"]}", LLMC_CALL_EMBEDDING, "openai", "te3", NULL, 0);
    ck_assert_str_eq(e1, e2);
    ck_assert_str_eq(e1, e3);
    ck_assert_str_ne(e1, e4);
    free(base); free(other_model); free(other_prov); free(other_call); free(ns);
    free(u1); free(u2); free(e1); free(e2); free(e3); free(e4);
}
END_TEST

START_TEST(t_material)
{
    json_object *o = json_tokener_parse("{\"temperature\":1.0,\"api_key\":\"sk-SECRET\"," MSG
                                        ",\"stream\":true}");
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    in.api_base = "http://127.0.0.1:9/v1";
    in.request = o;
    llmc_buf k = LLMC_BUF_INIT, m = LLMC_BUF_INIT;
    llmc_err e;
    ck_assert_int_eq(llmc_key_compute("v1", &in, &k, &m, &e), LLMC_OK);
    ck_assert_str_eq(m.data,
                     "{\"api_base\":\"http://127.0.0.1:9/v1\",\"call\":\"chat\","
                     "\"model\":\"gpt-4o-mini\",\"params\":{\"messages\":[{\"content\":\"Hello\","
                     "\"role\":\"user\"}],\"temperature\":1},\"provider\":\"openai\",\"v\":1}");
    ck_assert_ptr_null(strstr(m.data, "SECRET"));
    /* the key is the SHA-256 of exactly that material */
    uint8_t d[32];
    char hex[65];
    llmc_sha256(m.data, m.len, d);
    llmc_hex(d, 32, hex);
    ck_assert_str_eq(k.data, hex);
    /* errors */
    in.model = NULL;
    ck_assert_int_eq(llmc_key_compute(NULL, &in, &k, NULL, &e), LLMC_EINVAL);
    in.model = "m";
    ck_assert_int_eq(llmc_key_compute("nope", &in, &k, NULL, &e), LLMC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "nope"));
    json_object_object_add(o, "bad", json_object_new_double(NAN));
    ck_assert_int_eq(llmc_key_compute(NULL, &in, &k, NULL, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "NaN"));
    llmc_buf_free(&k);
    llmc_buf_free(&m);
    json_object_put(o);
    ck_assert(llmc_key_param_excluded("api_key"));
    ck_assert(llmc_key_param_excluded("stream"));
    ck_assert(!llmc_key_param_excluded("temperature"));
    ck_assert(!llmc_key_param_excluded("mock_response"));
}
END_TEST

/* A registered named strategy: keys by model + last message only. */
static llmc_status last_msg_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *material,
                                    llmc_err *err)
{
    json_object *msgs;
    if (!json_object_object_get_ex((json_object *)in->request, "messages", &msgs))
        return llmc_err_set(err, LLMC_EINVAL, 0, "no messages");
    json_object *last = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
    llmc_buf_clear(key);
    llmc_buf_printf(key, "%s|%s", in->model, json_object_to_json_string(last));
    if (material)
        llmc_buf_set(material, key->data, key->len);
    return LLMC_OK;
}

static const llmc_key_strategy_ops last_msg = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "last-message", "test"),
    .compute = last_msg_compute,
};

START_TEST(t_named_strategy)
{
    llmc_err e;
    ck_assert_int_eq(llmc_register_key_strategy(&last_msg, &e), LLMC_OK);
    ck_assert_int_eq(llmc_register_key_strategy(&last_msg, &e), LLMC_EEXIST);
    ck_assert_ptr_eq(llmc_find_key_strategy("LAST-MESSAGE"), &last_msg);
    json_object *o = json_tokener_parse("{" MSG "}");
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "m1";
    in.request = o;
    llmc_buf k = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_key_compute("last-message", &in, &k, NULL, &e), LLMC_OK);
    ck_assert_ptr_nonnull(strstr(k.data, "m1|"));
    ck_assert_ptr_nonnull(strstr(k.data, "Hello"));
    /* a cache can be opened with it by name */
    llmc_cache *c;
    ck_assert_int_eq(llmc_cache_open("local://?key_strategy=last-message", NULL, &c, &e), LLMC_OK);
    ck_assert_str_eq(llmc_cache_key_strategy_name(c), "last-message");
    llmc_cache_close(c);
    llmc_buf_free(&k);
    json_object_put(o);
}
END_TEST

/* ---- RFC 8785 numbers against ECMAScript (tables from node, see
 * scripts/gen_number_fixtures.js) ---- */

static char *canon_num(double d)
{
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc__canon_double(&b, d), LLMC_OK);
    return b.data;
}

/* Parse text with the library's JSON front end and canonicalise it. */
static char *reparse(const char *text)
{
    json_object *o = NULL;
    llmc_err e;
    ck_assert_msg(llmc_json_parse(text, strlen(text), "number", &o, &e) == LLMC_OK, "%s: %s",
                  text, e.msg);
    llmc_buf b = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_json_canonicalize(o, &b), LLMC_OK);
    json_object_put(o);
    return b.data;
}

static void check_number(double d, const char *want)
{
    char *got = canon_num(d);
    ck_assert_msg(strcmp(got, want) == 0, "%.17g: %s, ECMAScript %s", d, got, want);
    char neg[64];
    snprintf(neg, sizeof neg, "-%s", want);
    char *gotn = canon_num(-d);
    ck_assert_msg(strcmp(gotn, neg) == 0, "%.17g: %s, ECMAScript %s", -d, gotn, neg);
    /* idempotent: the output read back (as a request would be) gives
     * itself, integral values beyond 2^63 written without exponent too */
    char *again = reparse(got), *againn = reparse(gotn);
    ck_assert_msg(strcmp(again, got) == 0, "%s read back as %s", got, again);
    ck_assert_msg(strcmp(againn, gotn) == 0, "%s read back as %s", gotn, againn);
    free(got);
    free(gotn);
    free(again);
    free(againn);
}

static FILE *fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/fixtures/numbers/%s", LLMC_TEST_SRCDIR, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "missing fixture %s", path);
    return f;
}

START_TEST(t_numbers_powers_of_two)
{
    FILE *f = fixture("powers_of_two.tsv");
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char want[128];
        int e;
        ck_assert_int_eq(sscanf(line, "%d\t%127s", &e, want), 2);
        check_number(ldexp(1.0, e), want);
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, 2098);
}
END_TEST

START_TEST(t_numbers_random)
{
    FILE *f = fixture("random_doubles.tsv");
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char want[128];
        unsigned long long bits;
        ck_assert_int_eq(sscanf(line, "%llx\t%127s", &bits, want), 2);
        double d;
        uint64_t b = bits;
        memcpy(&d, &b, sizeof d);
        if (d < 0) /* the table has both signs; check_number does -d */
            continue;
        if (d == 0)
            continue;
        check_number(d, want);
        n++;
    }
    fclose(f);
    ck_assert_int_gt(n, 4000);
}
END_TEST

/* Integer literals beyond 64 bits are numbers like any other (RFC 8785:
 * IEEE doubles), not saturated to INT64_MIN / UINT64_MAX by the parser:
 * distinct values keep distinct keys, and canonical output reads back as
 * itself. */
START_TEST(t_numbers_big_integers)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"-9223872036854775808.5", "-9223872036854776000"},
        {"-9223872036854776000", "-9223872036854776000"},
        {"-9223372036854775809", "-9223372036854776000"},
        {"-9323372036854775808", "-9323372036854776000"},
        {"18446744073709551616", "18446744073709552000"},
        {"18446744073709551617000", "1.8446744073709552e+22"},
        {"-100000000000000000000000", "-1e+23"},
        {"[1,-99999999999999999999,{\"a\":123456789012345678901234567890}]",
         "[1,-100000000000000000000,{\"a\":1.2345678901234568e+29}]"},
        {"\"-99999999999999999999\"", "\"-99999999999999999999\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = reparse(cases[i].in);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s: %s, want %s", cases[i].in, got,
                      cases[i].want);
        char *again = reparse(got);
        ck_assert_str_eq(again, got);
        free(got);
        free(again);
    }
    /* at every offset from the start of the text (the scan that decides
     * whether to look closer goes eight bytes at a time) */
    for (int pad = 0; pad < 20; pad++) {
        char in[128];
        snprintf(in, sizeof in, "[%*s-19999999999999999999,\"\\ud876\\udc00\",%*s1]", pad, "",
                 20 - pad, "");
        char *got = reparse(in);
        ck_assert_msg(strcmp(got, "[-20000000000000000000,\"\xf0\xad\xa0\x80\",1]") == 0,
                      "%s: %s", in, got);
        free(got);
        snprintf(in, sizeof in, "[%*s-999999999999999999,\"\\u00e9\"]", pad, "");
        got = reparse(in);
        ck_assert_msg(strcmp(got, "[-1000000000000000000,\"\xc3\xa9\"]") == 0, "%s: %s", in, got);
        free(got);
    }
}
END_TEST

/* Kept inputs (tests/fuzz/regress/canon/): canonical output reads back as
 * itself. */
START_TEST(t_canon_regress_inputs)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fuzz/regress/canon", LLMC_TEST_SRCDIR);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "missing %s", dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024], text[4096];
        snprintf(path, sizeof path, "%.511s/%.255s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = 0;
        char *once = reparse(text), *twice = reparse(once);
        ck_assert_msg(strcmp(once, twice) == 0, "%s: %s then %s", de->d_name, once, twice);
        free(once);
        free(twice);
        n++;
    }
    closedir(d);
    ck_assert_int_gt(n, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("keys");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_canon);
    tcase_add_test(tc, t_collisions);
    tcase_add_test(tc, t_key_context);
    tcase_add_test(tc, t_material);
    tcase_add_test(tc, t_named_strategy);
    tcase_add_test(tc, t_numbers_powers_of_two);
    tcase_add_test(tc, t_numbers_random);
    tcase_add_test(tc, t_numbers_big_integers);
    tcase_add_test(tc, t_canon_regress_inputs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
