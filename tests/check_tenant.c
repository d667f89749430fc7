/* Tenant confinement, namespace names and request strictness in the
 * library: every key a tenant's request reads or writes starts with
 * "<tenant>:" however the request spells its controls; namespace names
 * are checked by one rule everywhere; only standard JSON is taken.
 *
 * Runs against the in-process local:// cache with the mock provider
 * (`mock_response`): nothing goes over the network, and every assertion
 * is about the keys and entries the cache really holds. */
#include "llmcache/llmcache.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static llmc_cache *cache;
static llmc_client *cl;

static void open_all(const char *url)
{
    llmc_err e;
    ck_assert_msg(llmc_cache_open(url, NULL, &cache, &e) == LLMC_OK, "%s: %s", url, e.msg);
    ck_assert_int_eq(llmc_client_new(cache, NULL, &cl, &e), LLMC_OK);
}

static void close_all(void)
{
    llmc_client_free(cl);
    llmc_cache_close(cache);
    cl = NULL;
    cache = NULL;
}

/* A mock chat request whose answer is `answer`; extra members appended. */
static char *mock_req(const char *prompt, const char *answer, const char *extra)
{
    char *b = malloc(1024);
    snprintf(b, 1024,
             "{\"model\":\"mock/demo\",\"mock_response\":\"%s\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"%s\"}]%s}",
             answer, prompt, extra ? extra : "");
    return b;
}

static llmc_request *parse_ok(const char *json)
{
    llmc_request *r = NULL;
    llmc_err e;
    ck_assert_msg(llmc_request_from_json(json, LLMC_ZSTR, &r, &e) == LLMC_OK, "%s: %s", json,
                  e.msg);
    return r;
}

/* Run r through the client as tenant `tenant`; returns the response. */
static llmc_response *call_as(const char *tenant, const char *json)
{
    llmc_request *r = parse_ok(json);
    if (tenant)
        ck_assert_int_eq(llmc_request_set_tenant(r, tenant), LLMC_OK);
    llmc_response *resp = NULL;
    llmc_err e;
    llmc_status st = llmc_client_call(cl, LLMC_CALL_CHAT, r, NULL, NULL, &resp, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", llmc_status_name(st), e.msg);
    llmc_request_free(r);
    return resp;
}

static void key_of(const char *tenant, llmc_call_type call, const char *json, size_t item,
                   char *out, size_t outsz)
{
    llmc_request *r = parse_ok(json);
    if (tenant)
        ck_assert_int_eq(llmc_request_set_tenant(r, tenant), LLMC_OK);
    llmc_buf k = LLMC_BUF_INIT;
    llmc_err e;
    llmc_status st = llmc_client_request_key(cl, call, r, item, &k, NULL, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", llmc_status_name(st), e.msg);
    snprintf(out, outsz, "%s", k.data);
    llmc_buf_free(&k);
    llmc_request_free(r);
}

static int is_hex64(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* ------------------------------------------------------------------ */

START_TEST(t_namespace_check)
{
    static const char *const good[] = {"team-a", "a.b_c-1", "x", NULL};
    for (int i = 0; good[i]; i++)
        ck_assert_msg(llmc_namespace_check(good[i], NULL, NULL) == LLMC_OK, "%s", good[i]);
    /* '=' too: a tenant's preset keys are "tenant:key=<preset>", which
     * no computed key may equal. */
    static const char *const bad[] = {"", "a:b", "a*", "a?", "a[", "a]", "a\\b", "a b",
                                      "a\tb", "a\x01", "a\x7f", "prod=1", NULL};
    for (int i = 0; bad[i]; i++) {
        llmc_err e;
        ck_assert_msg(llmc_namespace_check(bad[i], "tenant", &e) == LLMC_EINVAL, "\"%s\"",
                      bad[i]);
        ck_assert_msg(strstr(e.msg, "tenant") != NULL, "%s", e.msg);
    }
    char big[200];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(llmc_namespace_check(big, NULL, NULL), LLMC_EINVAL);
    llmc_err e;
    ck_assert_int_eq(llmc_namespace_check("a:b", "header x-llmcache-namespace", &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "header x-llmcache-namespace \"a:b\"") && strstr(e.msg, "':'"),
                  "%s", e.msg);

    /* The cache's option, a request's control and the setters apply it. */
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open("local://?namespace=a:b", NULL, &c, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "namespace"), "%s", e.msg);
    ck_assert_int_eq(llmc_cache_open("local://?namespace=a%5Cb", NULL, &c, &e), LLMC_EINVAL);
    llmc_request *r = NULL;
    ck_assert_int_eq(llmc_request_from_json("{\"model\":\"m\",\"\\u0063ache\":{\"namespace\":"
                                            "\"b:x\"}}",
                                            LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "cache control \"namespace\"") && strstr(e.msg, "b:x"), "%s",
                  e.msg);
    ck_assert_int_eq(llmc_request_from_json("{\"model\":\"m\",\"cache\":{\"namespace\":"
                                            "\"x*\"}}",
                                            LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    ck_assert_int_eq(llmc_request_from_json("{\"model\":\"m\",\"cache\":{\"namespace\":"
                                            "\"a\\u0000b\"}}",
                                            LLMC_ZSTR, &r, &e),
                     LLMC_EINVAL);
    r = llmc_request_new("m");
    ck_assert_int_eq(llmc_request_set_namespace(r, "a:b"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_request_set_tenant(r, "a:b"), LLMC_EINVAL);
    ck_assert_int_eq(llmc_request_set_tenant(r, "a["), LLMC_EINVAL);
    ck_assert_int_eq(llmc_request_set_namespace(r, "ok"), LLMC_OK);
    llmc_request_free(r);
}
END_TEST

/* Tenant A cannot read or overwrite tenant B's entry with a preset key,
 * whatever the spelling of the control's name. */
START_TEST(t_preset_key_stays_in_tenant)
{
    open_all("local://");
    char *xb = mock_req("secret question", "B's private answer", NULL);
    llmc_response *r = call_as("b", xb);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    char kb[256];
    snprintf(kb, sizeof kb, "%s", llmc_response_cache_key(r));
    ck_assert_msg(strncmp(kb, "b:", 2) == 0 && is_hex64(kb + 2), "%s", kb);
    llmc_response_free(r);

    static const char *const spellings[] = {"\"\\u0063ache\"", "\"c\\u0061che\"", "\"cache\"",
                                            NULL};
    for (int i = 0; spellings[i]; i++) {
        char extra[512];
        snprintf(extra, sizeof extra, ",%s:{\"key\":\"%s\"}", spellings[i], kb);
        /* Reading: A asks for B's key and gets its own answer. */
        char *xa = mock_req("secret question", "A's answer", extra);
        r = call_as("a", xa);
        /* The first spelling stored A's answer under A's own key; the
         * others find that one, never B's. */
        ck_assert_int_eq(llmc_response_cache_hit(r), i > 0);
        ck_assert_msg(strcmp(llmc_response_content(r), "A's answer") == 0,
                      "%s read tenant b's entry: %s", spellings[i], llmc_response_content(r));
        char want[300];
        snprintf(want, sizeof want, "a:key=%s", kb);
        ck_assert_str_eq(llmc_response_cache_key(r), want);
        llmc_response_free(r);
        free(xa);
        char k[300];
        xa = mock_req("other", "x", extra);
        key_of("a", LLMC_CALL_CHAT, xa, 0, k, sizeof k);
        ck_assert_str_eq(k, want);
        free(xa);
    }
    /* B's entry is untouched: B still gets its own answer. */
    r = call_as("b", xb);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_str_eq(llmc_response_content(r), "B's private answer");
    llmc_response_free(r);
    free(xb);
    close_all();
}
END_TEST

START_TEST(t_computed_keys_in_tenant)
{
    open_all("local://?namespace=prod");
    char k[300];
    char *x = mock_req("q", "a", NULL);
    key_of(NULL, LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_msg(strncmp(k, "prod:", 5) == 0 && is_hex64(k + 5), "%s", k);
    char digest[65];
    snprintf(digest, sizeof digest, "%s", k + 5);
    /* The tenant replaces the cache's namespace. */
    key_of("a", LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_msg(strncmp(k, "a:", 2) == 0 && is_hex64(k + 2), "%s", k);
    free(x);
    /* A namespace the request names nests inside the tenant. */
    x = mock_req("q", "a", ",\"\\u0063ache\":{\"namespace\":\"b\"}");
    key_of("a", LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_msg(strncmp(k, "a:b:", 4) == 0 && is_hex64(k + 4), "%s", k);
    key_of(NULL, LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_msg(strncmp(k, "b:", 2) == 0 && is_hex64(k + 2), "%s", k);
    free(x);

    /* Embeddings: every item's key, with or without a preset key. */
    const char *emb = "{\"model\":\"text-embedding-3-small\",\"input\":[\"x\",\"y\"]}";
    for (size_t i = 0; i < 2; i++) {
        key_of("a", LLMC_CALL_EMBEDDING, emb, i, k, sizeof k);
        ck_assert_msg(strncmp(k, "a:", 2) == 0 && is_hex64(k + 2), "%s", k);
    }
    const char *emb_pre = "{\"model\":\"text-embedding-3-small\",\"input\":[\"x\",\"y\"],"
                          "\"\\u0063ache\":{\"key\":\"b:zz\"}}";
    for (size_t i = 0; i < 2; i++) {
        key_of("a", LLMC_CALL_EMBEDDING, emb_pre, i, k, sizeof k);
        ck_assert_msg(strncmp(k, "a:key=b:zz:", 11) == 0, "%s", k);
    }
    close_all();
}
END_TEST

static llmc_status fixed_key(void *ud, const llmc_key_input *in, llmc_buf *key)
{
    (void)ud;
    (void)in;
    return llmc_buf_puts(key, "b:fixed");
}

/* A key function's key is confined too (the last step of every key). */
START_TEST(t_key_fn_confined)
{
    open_all("local://");
    llmc_client_set_key_fn(cl, fixed_key, NULL);
    char k[300];
    char *x = mock_req("q", "a", NULL);
    key_of("a", LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_str_eq(k, "a:b:fixed");
    key_of(NULL, LLMC_CALL_CHAT, x, 0, k, sizeof k);
    ck_assert_str_eq(k, "b:fixed");
    free(x);
    close_all();
}
END_TEST

/* llmc_call_opts.tenant (what the proxy gives) and llmc_request_set_tenant
 * are one confinement: the same request gets the same key either way,
 * whatever form its controls take, a key function's key included. */
static void opts_key(const char *tenant, const char *json, char *out, size_t outsz)
{
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.tenant = tenant;
    llmc_call *k = NULL;
    llmc_err e;
    llmc_status st = llmc_call_prepare(cl, LLMC_CALL_CHAT, json, LLMC_ZSTR, &o, &k, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", llmc_status_name(st), e.msg);
    ck_assert_ptr_nonnull(llmc_call_key(k));
    snprintf(out, outsz, "%s", llmc_call_key(k));
    llmc_call_free(k);
}

START_TEST(t_call_opts_tenant_same_rule)
{
    open_all("local://?namespace=shared");
    static const char *const extra[] = {
        NULL,
        ",\"cache\":{\"namespace\":\"exp\"}",
        ",\"\\u0063ache\":{\"key\":\"b:secret\"}",
        ",\"cache\":{\"key\":\"plain\",\"namespace\":\"exp\"}",
    };
    for (int fn = 0; fn < 2; fn++) {
        if (fn)
            llmc_client_set_key_fn(cl, fixed_key, NULL);
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            char *x = mock_req("q", "a", extra[i]);
            char a[300], b[300];
            key_of("a", LLMC_CALL_CHAT, x, 0, a, sizeof a);
            opts_key("a", x, b, sizeof b);
            ck_assert_msg(strcmp(a, b) == 0, "%s: %s vs %s", x, a, b);
            ck_assert_msg(strncmp(b, "a:", 2) == 0, "%s: %s", x, b);
            /* Twice: the second prepare may come from the request memo. */
            opts_key("a", x, b, sizeof b);
            ck_assert_msg(strcmp(a, b) == 0, "%s (memo): %s vs %s", x, a, b);
            free(x);
        }
    }
    char *x = mock_req("q", "a", ",\"cache\":{\"key\":\"b:secret\"}");
    char b[300];
    opts_key("a", x, b, sizeof b);
    ck_assert_str_eq(b, "a:key=b:secret");
    free(x);
    x = mock_req("q", "a", NULL);
    opts_key("a", x, b, sizeof b);
    ck_assert_msg(strncmp(b, "a:", 2) == 0 && strstr(b, "shared") == NULL, "%s", b);
    free(x);
    /* The one namespace rule applies to the tenant given in the opts. */
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.tenant = "a:b";
    llmc_call *k = NULL;
    llmc_err e;
    x = mock_req("q", "a", NULL);
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, x, LLMC_ZSTR, &o, &k, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "tenant \"a:b\""), "%s", e.msg);
    o.tenant = "a";
    o.namespace_ = "x*";
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT, x, LLMC_ZSTR, &o, &k, &e), LLMC_EINVAL);
    ck_assert_msg(strstr(e.msg, "header x-llmcache-namespace"), "%s", e.msg);
    free(x);
    close_all();
}
END_TEST

/* The controls the library read are what a caller (the proxy) acts on,
 * whatever their spelling. */
START_TEST(t_controls_readback)
{
    open_all("local://");
    static const struct {
        const char *extra;
        int caching, no_cache, no_store;
    } cases[] = {
        {"", 1, 0, 0},
        {",\"caching\":0", 0, 0, 0},
        {",\"caching\":false", 0, 0, 0},
        {",\"\\u0063aching\":false", 0, 0, 0},
        {",\"c\\u0061ching\":1", 1, 0, 0},
        {",\"\\u0063ache\":{\"no-cache\":true}", 1, 1, 0},
        {",\"cache\":{\"no-st\\u006fre\":1}", 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *x = mock_req("q", "a", cases[i].extra);
        llmc_request *r = parse_ok(x);
        llmc_cache_controls cc;
        llmc_request_get_controls(r, &cc);
        ck_assert_msg(llmc_client_caching(cl, r) == cases[i].caching, "%s", x);
        ck_assert_msg(cc.no_cache == cases[i].no_cache, "%s", x);
        ck_assert_msg(cc.no_store == cases[i].no_store, "%s", x);
        llmc_request_free(r);
        free(x);
    }
    /* A TTL beyond the limit is capped, never wrapped into the past. */
    llmc_request *r = llmc_request_new("mock/demo");
    llmc_request_set_ttl(r, INT64_MAX);
    llmc_request_set_s_maxage(r, INT64_MAX / 10);
    llmc_cache_controls cc;
    llmc_request_get_controls(r, &cc);
    ck_assert(cc.ttl_ms == LLMC_TTL_MAX_S * 1000);
    ck_assert(cc.max_age_ms == LLMC_TTL_MAX_S * 1000);
    llmc_request_free(r);
    close_all();
}
END_TEST

/* The text paths (request memo, tokenized fast path) read controls as
 * the json-c path does: escaped names and duplicate members included. */
START_TEST(t_text_paths_honour_controls)
{
    open_all("local://");
    const char *good = "{\"model\":\"mock/demo\",\"mock_response\":\"x\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"t\"}]";
    char req[512];
    snprintf(req, sizeof req, "%s}", good);
    for (int i = 0; i < 2; i++) {
        llmc_response *resp = NULL;
        ck_assert_int_eq(llmc_completion_json(cl, req, LLMC_ZSTR, &resp, NULL), LLMC_OK);
        ck_assert_int_eq(llmc_response_cache_hit(resp), i);
        llmc_response_free(resp);
    }
    static const char *const optout[] = {
        ",\"\\u0063aching\":false",
        ",\"caching\":true,\"caching\":false",
        ",\"\\u0063ache\":{\"no-cache\":true}",
        ",\"cache\":{\"no-c\\u0061che\":true}",
        ",\"cache\":{},\"\\u0063ache\":{\"no-cache\":true}",
        ",\"cache\":{\"no-cache\":false,\"no-cache\":true}",
        NULL};
    for (int i = 0; optout[i]; i++) {
        snprintf(req, sizeof req, "%s%s}", good, optout[i]);
        for (int twice = 0; twice < 2; twice++) {
            llmc_response *resp = NULL;
            llmc_err e;
            ck_assert_msg(llmc_completion_json(cl, req, LLMC_ZSTR, &resp, &e) == LLMC_OK, "%s: %s",
                          req, e.msg);
            ck_assert_msg(!llmc_response_cache_hit(resp), "answered from the cache: %s", req);
            llmc_response_free(resp);
        }
    }
    close_all();
}
END_TEST

/* Comments and single quotes are not JSON: refused on every path,
 * including after the same request without them was cached (the memo and
 * the text fast path must not answer it). */
START_TEST(t_strict_json)
{
    open_all("local://");
    static const char *const bad[] = {
        "{\"model\":\"mock/demo\",/* c */\"mock_response\":\"x\",\"messages\":[{\"role\":"
        "\"user\",\"content\":\"q\"}]}",
        "{\"model\":\"mock/demo\",\"mock_response\":\"x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"q\"}]} // c",
        "{'model':\"mock/demo\",\"mock_response\":\"x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"q\"}]}",
        "{\"model\":'mock/demo',\"mock_response\":\"x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"q\"}]}",
        "{\"model\":\"mock/demo\",\"mock_response\":\"x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"q\"}],}",
        NULL};
    const char *good = "{\"model\":\"mock/demo\",\"mock_response\":\"x\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"q\"}]}";
    for (int pass = 0; pass < 2; pass++) {
        llmc_response *resp = NULL;
        llmc_err e;
        ck_assert_int_eq(llmc_completion_json(cl, good, LLMC_ZSTR, &resp, &e), LLMC_OK);
        ck_assert_int_eq(llmc_response_cache_hit(resp), pass);
        llmc_response_free(resp);
        for (int i = 0; bad[i]; i++) {
            resp = NULL;
            ck_assert_msg(llmc_completion_json(cl, bad[i], LLMC_ZSTR, &resp, &e) == LLMC_EINVAL,
                          "accepted: %s", bad[i]);
            ck_assert_ptr_null(resp);
            llmc_request *r = NULL;
            ck_assert_int_eq(llmc_request_from_json(bad[i], LLMC_ZSTR, &r, &e), LLMC_EINVAL);
            ck_assert_msg(strstr(e.msg, "byte"), "%s", e.msg);
        }
    }
    /* Quotes and slashes inside strings are fine. */
    llmc_request *r = parse_ok("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"it's /* not */ a \\\"comment\\\" // ok\"}]}");
    llmc_request_free(r);
    close_all();
}
END_TEST

/* A tenant's sub-namespace can be flushed alone. */
START_TEST(t_flush_sub_namespace)
{
    open_all("local://");
    char *x = mock_req("q", "a", NULL);
    char *xs = mock_req("q", "a", ",\"cache\":{\"namespace\":\"exp\"}");
    llmc_response_free(call_as("a", x));
    llmc_response_free(call_as("a", xs));
    llmc_response_free(call_as("b", xs));
    uint64_t n = 0;
    ck_assert_int_eq(llmc_cache_flush(cache, "a:exp", &n), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_flush_in(cache, "a", "exp", &n), LLMC_OK);
    ck_assert_uint_eq(n, 1);
    llmc_response *r = call_as("a", xs);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    r = call_as("a", x);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    r = call_as("b", xs);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_cache_flush_in(cache, "a", "e*", &n), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_flush_in(cache, "a:", "exp", &n), LLMC_EINVAL);
    ck_assert_int_eq(llmc_cache_flush_in(cache, "a", "", &n), LLMC_EINVAL);
    /* The whole tenant, its sub-namespaces included. */
    ck_assert_int_eq(llmc_cache_flush_in(cache, "a", NULL, &n), LLMC_OK);
    r = call_as("a", x);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    llmc_response_free(r);
    free(x);
    free(xs);
    close_all();
}
END_TEST

static Suite *tenant_suite(void)
{
    Suite *s = suite_create("tenant");
    TCase *tc = tcase_create("tenant");
    tcase_add_test(tc, t_namespace_check);
    tcase_add_test(tc, t_preset_key_stays_in_tenant);
    tcase_add_test(tc, t_computed_keys_in_tenant);
    tcase_add_test(tc, t_key_fn_confined);
    tcase_add_test(tc, t_call_opts_tenant_same_rule);
    tcase_add_test(tc, t_controls_readback);
    tcase_add_test(tc, t_text_paths_honour_controls);
    tcase_add_test(tc, t_strict_json);
    tcase_add_test(tc, t_flush_sub_namespace);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tenant_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
