/* Semantic lookups through the prepared call, against the fake provider
 * server and real backends (local, a SQLite file, a redis-server the
 * suite starts): near-duplicates hit; numbers, negations and quotes that
 * differ miss; another tenant's, model's, system prompt's or parameter's
 * near-duplicate misses; long conversations and tool results are never
 * compared; the verifier (callback and registered kind) rejects; the
 * controls only raise the threshold; embeddings through a provider with
 * the per-item cache; records survive a restart on sqlite and redis and
 * are shared by two clients over one Redis; they expire with their
 * entries. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client_test_util.h"
#include "internal.h"
#include "support/testsrv.h"
#if LLMC_HAVE_REDIS
#include "support/rcluster.h"
#endif

#if LLMC_HAVE_CURL

static testsrv redis_srv, dir_srv;
static int redis_port;
static char redis_url[128], sqlite_url[600];

static fp_server *srv;
static char base_v1[128];

static void servers_up(void)
{
    if (testsrv_mkdir(&dir_srv, "semantic") != 0) {
        fprintf(stderr, "check_semantic: no temporary directory\n");
        exit(1);
    }
    snprintf(sqlite_url, sizeof sqlite_url, "sqlite://%s/sem.db", dir_srv.dir);
#if LLMC_HAVE_REDIS
    if (testsrv_mkdir(&redis_srv, "semantic-redis") != 0)
        exit(1);
    redis_port = testsrv_free_port();
    char ports[16];
    snprintf(ports, sizeof ports, "%d", redis_port);
    char *argv[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", redis_srv.dir, NULL};
    if (testsrv_spawn(&redis_srv, argv) != 0 || testsrv_wait_tcp(&redis_srv, redis_port, 10000) != 0) {
        fprintf(stderr, "check_semantic: redis-server did not start\n");
        exit(1);
    }
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d/0", redis_port);
#endif
}

static void setup(void)
{
    srv = fp_start();
    ck_assert_ptr_nonnull(srv);
    snprintf(base_v1, sizeof base_v1, "%s/v1", fp_url(srv));
}

static void teardown(void)
{
    fp_stop(srv);
    srv = NULL;
}

static llmc_cache *open_cache(const char *url, const char *query, int flush)
{
    char u[900];
    snprintf(u, sizeof u, "%s%s%s", url, strchr(url, '?') ? "&" : "?", query);
    llmc_cache *c = NULL;
    llmc_err e;
    ck_assert_msg(llmc_cache_open(u, NULL, &c, &e) == LLMC_OK, "%s: %s", u, e.msg);
    if (flush)
        ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_OK);
    return c;
}

static llmc_client *client(llmc_cache *c, const char *const *extra)
{
    const char *kv[32] = {"openai.api_key", "sk-test", "openai.api_base", base_v1,
                          "max_retries", "0"};
    int n = 6;
    for (int i = 0; extra && extra[i]; i++)
        kv[n++] = extra[i];
    kv[n] = NULL;
    return tu_client(c, kv);
}

/* One chat call; returns the status line's parts. */
typedef struct outcome {
    int hit, semantic;
    double sim;
    char key[300];
    char content[600];
} outcome;

static outcome call_opts(llmc_client *cl, const char *json, const char *tenant)
{
    outcome o;
    memset(&o, 0, sizeof o);
    llmc_call_opts co = LLMC_CALL_OPTS_INIT;
    co.tenant = tenant;
    llmc_call *k = NULL;
    llmc_err e;
    llmc_status st = llmc_call_prepare(cl, LLMC_CALL_CHAT, json, LLMC_ZSTR, &co, &k, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", json, e.msg);
    llmc_response *r = NULL;
    st = llmc_call_execute(k, NULL, NULL, &r, &e);
    ck_assert_msg(st == LLMC_OK, "%s: %s", json, e.msg);
    o.hit = llmc_response_cache_hit(r);
    o.semantic = llmc_response_semantic(r, &o.sim);
    snprintf(o.key, sizeof o.key, "%s", llmc_response_cache_key(r) ? llmc_response_cache_key(r) : "");
    const char *c = llmc_response_content(r);
    snprintf(o.content, sizeof o.content, "%s", c ? c : "");
    llmc_response_free(r);
    llmc_call_free(k);
    return o;
}

static outcome call(llmc_client *cl, const char *json)
{
    return call_opts(cl, json, NULL);
}

#define CHAT(model, content, extra)                                                      \
    "{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"" content "\"}]" \
    extra "}"
#define CHAT_SYS(sys, content)                                                           \
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"" sys      \
    "\"},{\"role\":\"user\",\"content\":\"" content "\"}]}"

static void expect_semantic_hit(llmc_client *cl, const char *json, const char *want_answer)
{
    size_t before = fp_count(srv);
    outcome o = call(cl, json);
    ck_assert_msg(o.hit && o.semantic, "expected a semantic hit: %s", json);
    ck_assert_str_eq(o.content, want_answer);
    ck_assert(o.sim >= 0.95 && o.sim <= 1.0001);
    ck_assert_uint_eq(fp_count(srv), before);
}

static void expect_miss(llmc_client *cl, const char *json, const char *want_answer)
{
    size_t before = fp_count(srv);
    outcome o = call(cl, json);
    ck_assert_msg(!o.hit && !o.semantic, "expected a miss: %s (served %s)", json, o.content);
    ck_assert_str_eq(o.content, want_answer);
    ck_assert_uint_eq(fp_count(srv), before + 1);
}

static const char *const sem_on[] = {"semantic", "1", NULL};

START_TEST(t_near_duplicates_hit)
{
    llmc_cache *c = open_cache("local://", "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    outcome first = call(cl, CHAT("gpt-4o-mini", "What is the capital of France?", ""));
    ck_assert(!first.hit);
    const char *ans = "echo: What is the capital of France?";
    ck_assert_str_eq(first.content, ans);
    /* case, white space, punctuation, word order */
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "what is the capital of france", ""), ans);
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "  WHAT is the Capital  of France ?!", ""), ans);
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "the capital of France: is what", ""), ans);
    /* The matched key is the first call's; the status is a hit. */
    outcome o = call(cl, CHAT("gpt-4o-mini", "What is the capital of FRANCE", ""));
    ck_assert_str_eq(o.key, first.key);
    /* The exact text is an exact hit, not a semantic one. */
    o = call(cl, CHAT("gpt-4o-mini", "What is the capital of France?", ""));
    ck_assert(o.hit && !o.semantic);
    /* Text parts are the same prompt. */
    expect_semantic_hit(cl,
                        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "[{\"type\":\"text\",\"text\":\"what is the capital of france\"}]}]}",
                        ans);
    /* An unrelated question misses. */
    expect_miss(cl, CHAT("gpt-4o-mini", "How tall is Mount Everest?", ""),
                "echo: How tall is Mount Everest?");
    llmc_semantic_stats st;
    ck_assert_int_eq(llmc_client_semantic_stats(cl, &st, sizeof st), LLMC_OK);
    ck_assert_uint_eq(st.hits, 5);
    ck_assert_uint_ge(st.misses, 1);
    ck_assert_uint_eq(st.hit_buckets[LLMC_SEMANTIC_BUCKETS - 1], 5);
    ck_assert_uint_eq(st.stored, 2);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_numbers_negations_quotes_miss)
{
    /* A low threshold, so that only the guards stand between them. */
    llmc_cache *c = open_cache("local://", "semantic=1&semantic_threshold=0.3", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "refund 10 dollars", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "refund 100 dollars", ""), "echo: refund 100 dollars");
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "Refund 10 dollars!", ""), "echo: refund 10 dollars");
    call(cl, CHAT("gpt-4o-mini", "is aspirin safe", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "is aspirin not safe", ""), "echo: is aspirin not safe");
    /* "isn't" is a negation too: it may match the negated question,
     * never the plain one. */
    outcome neg = call(cl, CHAT("gpt-4o-mini", "isn't aspirin safe", ""));
    ck_assert_str_ne(neg.content, "echo: is aspirin safe");
    call(cl, CHAT("gpt-4o-mini", "translate \\\"yes\\\" to French", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "translate \\\"no\\\" to French", ""),
                "echo: translate \"no\" to French");
    llmc_semantic_stats st;
    ck_assert_int_eq(llmc_client_semantic_stats(cl, &st, sizeof st), LLMC_OK);
    ck_assert_uint_ge(st.guard_rejects, 4);
    llmc_client_free(cl);
    llmc_cache_close(c);
    /* And at the default threshold they miss as well. */
    c = open_cache("local://", "semantic=1", 1);
    cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "refund 10 dollars", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "refund 100 dollars", ""), "echo: refund 100 dollars");
    call(cl, CHAT("gpt-4o-mini", "is X safe", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "is X not safe", ""), "echo: is X not safe");
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_scope_is_exact)
{
    llmc_cache *c = open_cache("local://", "semantic=1&semantic_threshold=0.5", 1);
    llmc_client *cl = client(c, NULL);
    call_opts(cl, CHAT("gpt-4o-mini", "What is the capital of France?", ""), "acme");
    /* Another tenant, no tenant, another model, another system prompt,
     * another parameter: all miss. */
    expect_miss(cl, CHAT("gpt-4o-mini", "what is the capital of france", ""),
                "echo: what is the capital of france");
    size_t before = fp_count(srv);
    outcome o = call_opts(cl, CHAT("gpt-4o-mini", "what is the capital of france", ""), "globex");
    ck_assert(!o.hit);
    ck_assert_uint_eq(fp_count(srv), before + 1);
    o = call_opts(cl, CHAT("gpt-4o-mini", "What is the capital of France", ""), "acme");
    ck_assert(o.hit && o.semantic);
    ck_assert_str_eq(o.content, "echo: What is the capital of France?");
    ck_assert(strncmp(o.key, "acme:", 5) == 0);
    expect_miss(cl, CHAT("gpt-4o", "what is the CAPITAL of france", ""),
                "echo: what is the CAPITAL of france");
    call(cl, CHAT_SYS("Answer in French.", "What is the capital of Spain?"));
    expect_miss(cl, CHAT_SYS("Answer in German.", "what is the capital of spain"),
                "echo: what is the capital of spain");
    expect_semantic_hit(cl, CHAT_SYS("Answer in French.", "what is the capital of spain"),
                        "echo: What is the capital of Spain?");
    call(cl, CHAT("gpt-4o-mini", "Name a prime number", ",\"temperature\":0"));
    expect_miss(cl, CHAT("gpt-4o-mini", "name a prime number", ",\"temperature\":1"),
                "echo: name a prime number");
    /* A namespace is part of the scope too. */
    call(cl, CHAT("gpt-4o-mini", "Name a colour", ",\"cache\":{\"namespace\":\"a\"}"));
    expect_miss(cl, CHAT("gpt-4o-mini", "name a colour", ",\"cache\":{\"namespace\":\"b\"}"),
                "echo: name a colour");
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "name a colour", ",\"cache\":{\"namespace\":\"a\"}"),
                        "echo: Name a colour");
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_turns_and_tools_never_compared)
{
    llmc_cache *c = open_cache("local://", "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    const char *three = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                        "{\"role\":\"user\",\"content\":\"hi\"},"
                        "{\"role\":\"assistant\",\"content\":\"hello\"},"
                        "{\"role\":\"user\",\"content\":\"and you\"},"
                        "{\"role\":\"assistant\",\"content\":\"fine\"},"
                        "{\"role\":\"user\",\"content\":\"Tell me a joke\"}]}";
    const char *three2 = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                         "{\"role\":\"user\",\"content\":\"hi\"},"
                         "{\"role\":\"assistant\",\"content\":\"hello\"},"
                         "{\"role\":\"user\",\"content\":\"and you\"},"
                         "{\"role\":\"assistant\",\"content\":\"fine\"},"
                         "{\"role\":\"user\",\"content\":\"tell me a joke!\"}]}";
    call(cl, three);
    expect_miss(cl, three2, "echo: tell me a joke!");
    /* Two turns are compared (the default limit). */
    const char *two = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                      "{\"role\":\"user\",\"content\":\"hi\"},"
                      "{\"role\":\"assistant\",\"content\":\"hello\"},"
                      "{\"role\":\"user\",\"content\":\"Tell me a joke\"}]}";
    const char *two2 = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                       "{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"content\":\"hello\"},"
                       "{\"role\":\"user\",\"content\":\"tell me a joke!\"}]}";
    call(cl, two);
    expect_semantic_hit(cl, two2, "echo: Tell me a joke");
    /* Tool results: never. */
    const char *tool = "{\"model\":\"gpt-4o-mini\",\"messages\":["
                       "{\"role\":\"user\",\"content\":\"weather?\"},"
                       "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
                       "\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{}\"}}]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"},"
                       "{\"role\":\"user\",\"content\":\"%s\"}]}";
    char a[800], b[800];
    snprintf(a, sizeof a, tool, "Summarise it");
    snprintf(b, sizeof b, tool, "summarise it!");
    call(cl, a);
    expect_miss(cl, b, "echo: summarise it!");
    /* A prompt longer than 16 KiB is a document: never compared. */
    size_t big = 17 * 1024;
    char *lp = malloc(big + 200), *lq = malloc(big + 200);
    static const char head[] =
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Q ";
    for (size_t i = 0; i < big; i++)
        lp[i] = "lorem ipsum "[i % 12];
    memcpy(lp, head, sizeof head - 1);
    strcpy(lp + big, "\"}]}");
    memcpy(lq, lp, big + 5);
    lq[sizeof head - 3] = 'q'; /* only the case of the first letter differs */
    call(cl, lp);
    size_t before = fp_count(srv);
    outcome lo = call(cl, lq);
    ck_assert(!lo.hit);
    ck_assert_uint_eq(fp_count(srv), before + 1);
    free(lp);
    free(lq);
    llmc_semantic_stats st;
    llmc_client_semantic_stats(cl, &st, sizeof st);
    ck_assert_uint_ge(st.ineligible, 6);
    llmc_client_free(cl);
    llmc_cache_close(c);
    /* semantic_max_turns raises the limit. */
    c = open_cache("local://", "semantic=1&semantic_max_turns=3", 1);
    cl = client(c, NULL);
    call(cl, three);
    expect_semantic_hit(cl, three2, "echo: Tell me a joke");
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

static int reject_all(void *ud, const llmc_semantic_candidate *cand)
{
    int *seen = ud;
    ck_assert_uint_eq(cand->struct_size, sizeof *cand);
    ck_assert_ptr_nonnull(strstr(cand->cached_body, "echo: Where is Paris?"));
    ck_assert(cand->prompt_len > 0 && cand->cached_prompt_len > 0);
    ck_assert_str_eq(cand->model, "gpt-4o-mini");
    (*seen)++;
    return 0;
}

static int deny_verify(const llmc_semantic_candidate *cand)
{
    return cand->similarity > 2.0; /* never */
}

static const llmc_verifier_ops deny = {
    LLMC_COMPONENT_INIT(llmc_verifier_ops, "deny-all", "refuses every candidate"), deny_verify};

START_TEST(t_verifier_rejects)
{
    llmc_cache *c = open_cache("local://", "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    int seen = 0;
    llmc_client_set_verifier(cl, reject_all, &seen);
    call(cl, CHAT("gpt-4o-mini", "Where is Paris?", ""));
    /* Rejected: a miss, the fresh answer stored and then an exact hit. */
    expect_miss(cl, CHAT("gpt-4o-mini", "where is paris", ""), "echo: where is paris");
    ck_assert_int_eq(seen, 1);
    outcome o = call(cl, CHAT("gpt-4o-mini", "where is paris", ""));
    ck_assert(o.hit && !o.semantic);
    ck_assert_str_eq(o.content, "echo: where is paris");
    llmc_semantic_stats st;
    llmc_client_semantic_stats(cl, &st, sizeof st);
    ck_assert_uint_eq(st.verifier_rejects, 1);
    llmc_client_free(cl);
    /* The verifier kind, by name. */
    llmc_err e;
    ck_assert_int_eq(llmc_register_verifier(&deny, &e), LLMC_OK);
    const char *opt[] = {"semantic_verifier", "deny-all", NULL};
    cl = client(c, opt);
    expect_miss(cl, CHAT("gpt-4o-mini", "WHERE is Paris", ""), "echo: WHERE is Paris");
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_controls_and_threshold)
{
    llmc_cache *c = open_cache("local://", "semantic=1&semantic_threshold=0.6", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "how do I get a refund", ""));
    /* Opted out per request. */
    expect_miss(cl, CHAT("gpt-4o-mini", "how do i get a refund?", ",\"cache\":{\"semantic\":false}"),
                "echo: how do i get a refund?");
    /* A close but not identical prompt: hits at 0.6, misses when the
     * request raises the threshold, and a lower one changes nothing. */
    outcome o = call(cl, CHAT("gpt-4o-mini", "how do I get refunds", ",\"cache\":{\"semantic_threshold\":0.1}"));
    ck_assert(o.semantic);
    ck_assert(o.sim < 0.99);
    expect_miss(cl, CHAT("gpt-4o-mini", "how do I get refunded", ",\"cache\":{\"semantic_threshold\":0.99}"),
                "echo: how do I get refunded");
    /* Bad controls are refused by name. */
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT,
                                       CHAT("gpt-4o-mini", "x", ",\"cache\":{\"semantic_threshold\":1.5}"),
                                       LLMC_ZSTR, NULL, &k, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "semantic_threshold"));
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT,
                                       CHAT("gpt-4o-mini", "x", ",\"cache\":{\"semantic\":\"yes\"}"),
                                       LLMC_ZSTR, NULL, &k, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"semantic\""));
    llmc_client_free(cl);
    /* The operator minimum: no threshold below it. */
    const char *opt[] = {"semantic_min_threshold", "0.99", NULL};
    cl = client(c, opt);
    expect_miss(cl, CHAT("gpt-4o-mini", "how do I get refunds?", ""), "echo: how do I get refunds?");
    llmc_client_free(cl);
    /* Off unless turned on; the client option turns it on too. */
    llmc_cache *plain = open_cache("local://", "ttl=0", 1);
    cl = client(plain, NULL);
    ck_assert_int_eq(llmc_client_semantic_enabled(cl), 0);
    call(cl, CHAT("gpt-4o-mini", "Where is Rome?", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "where is rome", ""), "echo: where is rome");
    llmc_client_free(cl);
    cl = client(plain, sem_on);
    ck_assert_int_eq(llmc_client_semantic_enabled(cl), 1);
    call(cl, CHAT("gpt-4o-mini", "Where is Oslo?", ""));
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "where is oslo", ""), "echo: Where is Oslo?");
    llmc_client_free(cl);
    llmc_cache_close(plain);
    llmc_cache_close(c);
}
END_TEST

/* An index and a verifier from a plugin, autoloaded by name. */
START_TEST(t_plugin_index_and_verifier)
{
    setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1);
    llmc_cache *c = open_cache("local://", "semantic=1&semantic_index=scan", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "Which river flows through Vienna?", ""));
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "which river flows through vienna", ""),
                        "echo: Which river flows through Vienna?");
    llmc_client_free(cl);
    /* length-ratio refuses a candidate more than twice as long. */
    const char *opt[] = {"semantic_verifier", "length-ratio", "semantic_threshold", "0.3", NULL};
    cl = client(c, opt);
    call(cl, CHAT("gpt-4o-mini", "Explain in detail which river flows through the city of Budapest and why it matters", ""));
    expect_miss(cl, CHAT("gpt-4o-mini", "river Budapest", ""), "echo: river Budapest");
    llmc_semantic_stats st;
    llmc_client_semantic_stats(cl, &st, sizeof st);
    ck_assert_uint_ge(st.verifier_rejects, 1);
    /* In use by the client: the plugin stays loaded. */
    ck_assert_int_eq(llmc_plugin_unload("scan", NULL), LLMC_EBUSY);
    llmc_client_free(cl);
    llmc_cache_close(c);
    ck_assert_int_eq(llmc_plugin_unload("scan", NULL), LLMC_OK);
}
END_TEST

START_TEST(t_bad_options)
{
    static const struct {
        const char *query;
        llmc_status st;
        const char *needle;
    } bad[] = {
        {"semantic=maybe", LLMC_EINVAL, "semantic"},
        {"semantic=1&semantic_threshold=1.5", LLMC_EINVAL, "semantic_threshold"},
        {"semantic=1&semantic_threshold=0", LLMC_EINVAL, "semantic_threshold"},
        {"semantic=1&semantic_threshold=nan", LLMC_EINVAL, "semantic_threshold"},
        {"semantic=1&semantic_min_threshold=-1", LLMC_EINVAL, "semantic_min_threshold"},
        {"semantic=1&semantic_model=/x", LLMC_EINVAL, "semantic_model"},
        {"semantic=1&semantic_model=a%20b", LLMC_EINVAL, "semantic_model"},
        {"semantic=1&semantic_model=nope/x", LLMC_ENOTFOUND, "nope"},
        {"semantic=1&semantic_index=hnsw-nope", LLMC_ENOTFOUND, "semantic_index"},
        {"semantic=1&semantic_verifier=who", LLMC_ENOTFOUND, "semantic_verifier"},
        {"semantic=1&semantic_max_turns=0", LLMC_EINVAL, "semantic_max_turns"},
        {"semantic=1&semantic_dim=4", LLMC_EINVAL, "semantic_dim"},
        {"semantic_bogus=1", LLMC_EINVAL, "semantic_bogus"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char u[300];
        snprintf(u, sizeof u, "local://?%s", bad[i].query);
        llmc_cache *c = NULL;
        llmc_err e;
        llmc_status st = llmc_cache_open(u, NULL, &c, &e);
        ck_assert_msg(st == bad[i].st, "%s: %s (%s)", u, llmc_status_name(st), e.msg);
        ck_assert_msg(strstr(e.msg, bad[i].needle), "%s: %s", u, e.msg);
    }
    /* The client's options are checked the same way. */
    llmc_cache *c = open_cache("local://", "ttl=0", 0);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "semantic_threshold", "7");
    llmc_client *cl = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_client_new(c, o, &cl, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "client option semantic_threshold"));
    llmc_options_free(o);
    llmc_cache_close(c);
}
END_TEST

/* An embeddings model through the provider: the vector of each prompt is
 * the built-in embedder's, sent back by the fake server as canned
 * replies, so that near-duplicates are close. */
static void push_embedding(const char *text)
{
    float v[64];
    llmc_embed_local(text, strlen(text), v, 64);
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                      "\"embedding\":[");
    for (int i = 0; i < 64; i++)
        llmc_buf_printf(&b, "%s%.9g", i ? "," : "", v[i]);
    llmc_buf_puts(&b, "]}],\"model\":\"text-embedding-3-small\",\"usage\":{\"prompt_tokens\":3,"
                      "\"total_tokens\":3}}");
    fp_push_reply(srv, 200, "application/json", b.data, NULL);
    llmc_buf_free(&b);
}

START_TEST(t_embeddings_model)
{
    llmc_cache *c = open_cache("local://",
                               "semantic=1&semantic_model=openai/text-embedding-3-small", 1);
    llmc_client *cl = client(c, NULL);
    push_embedding("Where is Lisbon?");
    outcome o = call(cl, CHAT("gpt-4o-mini", "Where is Lisbon?", ""));
    ck_assert(!o.hit);
    ck_assert_uint_eq(fp_count(srv), 2); /* the embedding, the chat */
    ck_assert_ptr_nonnull(strstr(fp_request_at(srv, 0)->path, "/embeddings"));
    push_embedding("where is lisbon");
    size_t before = fp_count(srv);
    o = call(cl, CHAT("gpt-4o-mini", "where is lisbon", ""));
    ck_assert(o.hit && o.semantic);
    ck_assert_str_eq(o.content, "echo: Where is Lisbon?");
    ck_assert_uint_eq(fp_count(srv), before + 1); /* the embedding only */
    /* A prompt embedded before is not embedded again (the per-item
     * embeddings cache): another request with that text, opted out of
     * nothing, costs no embeddings call. */
    before = fp_count(srv);
    o = call(cl, CHAT("gpt-4o-mini", "where is lisbon", ",\"temperature\":0.5"));
    ck_assert(!o.hit);
    ck_assert_uint_eq(fp_count(srv), before + 1); /* the chat only */
    ck_assert_ptr_nonnull(strstr(fp_last(srv)->path, "/chat/completions"));
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

/* Records persist in the backend: a new cache handle and client (a
 * restart) find them. */
static void restart_case(const char *url)
{
    llmc_cache *c = open_cache(url, "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "What does a cache do?", ""));
    call(cl, CHAT("gpt-4o-mini", "Name three prime numbers", ""));
    llmc_client_free(cl);
    llmc_cache_close(c);
    c = open_cache(url, "semantic=1", 0);
    cl = client(c, NULL);
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "what does a cache do", ""),
                        "echo: What does a cache do?");
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "name three prime numbers!", ""),
                        "echo: Name three prime numbers");
    /* Expiry: an entry stored for 1 s and its record go together. */
    call(cl, CHAT("gpt-4o-mini", "Where is Bern?", ",\"cache\":{\"ttl\":1}"));
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "where is bern", ""), "echo: Where is Bern?");
    llmc_client_free(cl);
    llmc_cache_close(c);
    usleep(1300 * 1000);
    c = open_cache(url, "semantic=1", 0);
    cl = client(c, NULL);
    expect_miss(cl, CHAT("gpt-4o-mini", "where is BERN", ""), "echo: where is BERN");
    llmc_client_free(cl);
    llmc_cache_close(c);
}

START_TEST(t_restart_sqlite)
{
#if LLMC_HAVE_SQLITE
    restart_case(sqlite_url);
#else
    ck_abort_msg("built without sqlite");
#endif
}
END_TEST

START_TEST(t_restart_redis)
{
#if LLMC_HAVE_REDIS
    restart_case(redis_url);
#else
    ck_abort_msg("built without redis");
#endif
}
END_TEST

/* Redis Cluster: the entry and its scope's records hash to different
 * slots (nodes); a restart still finds both. */
START_TEST(t_restart_cluster)
{
#if LLMC_HAVE_REDIS
    rcluster rc;
    memset(&rc, 0, sizeof rc);
    ck_assert_msg(rcluster_start(&rc, 3, 0) == 0, "redis cluster did not start");
    llmc_cache *c = open_cache(rc.url, "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "What is a hash slot?", ""));
    llmc_client_free(cl);
    llmc_cache_close(c);
    c = open_cache(rc.url, "semantic=1", 0);
    cl = client(c, NULL);
    expect_semantic_hit(cl, CHAT("gpt-4o-mini", "what is a HASH slot", ""),
                        "echo: What is a hash slot?");
    llmc_client_free(cl);
    llmc_cache_close(c);
    rcluster_stop(&rc);
#else
    ck_abort_msg("built without redis");
#endif
}
END_TEST

START_TEST(t_two_replicas_one_redis)
{
#if LLMC_HAVE_REDIS
    llmc_cache *ca = open_cache(redis_url, "semantic=1", 1);
    llmc_cache *cb = open_cache(redis_url, "semantic=1&semantic_refresh_ms=0", 0);
    llmc_client *a = client(ca, NULL), *b = client(cb, NULL);
    /* b reads the (empty) scope first, then a stores into it. */
    call(b, CHAT("gpt-4o-mini", "Who wrote Hamlet?", ""));
    call(a, CHAT("gpt-4o-mini", "Who painted the Mona Lisa?", ""));
    expect_semantic_hit(b, CHAT("gpt-4o-mini", "who painted the mona lisa", ""),
                        "echo: Who painted the Mona Lisa?");
    expect_semantic_hit(a, CHAT("gpt-4o-mini", "who wrote hamlet", ""), "echo: Who wrote Hamlet?");
    llmc_client_free(a);
    llmc_client_free(b);
    llmc_cache_close(ca);
    llmc_cache_close(cb);
#else
    ck_abort_msg("built without redis");
#endif
}
END_TEST

/* Threads sharing one client: lookups and stores into the same scopes at
 * once. Every answer must be its own question's (any spelling of it),
 * never another question's. */
static llmc_client *shared_cl;
static const char *const topics[] = {"Where is Quito", "Where is Lima", "Where is Bogota",
                                     "Where is Caracas"};

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    for (int i = 0; i < 25; i++) {
        seed = seed * 1103515245u + 12345u;
        int t = (int)((seed >> 16) % 4);
        char q[100], body[300], want[120];
        snprintf(q, sizeof q, "%s%s", topics[t], (seed >> 8) & 1 ? "?" : "");
        if ((seed >> 9) & 1)
            for (char *p = q; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        snprintf(body, sizeof body,
                 "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 q);
        llmc_response *r = NULL;
        llmc_err e;
        if (llmc_completion_json(shared_cl, body, LLMC_ZSTR, &r, &e) != LLMC_OK)
            return (void *)1;
        const char *c = llmc_response_content(r);
        snprintf(want, sizeof want, "echo: %s", topics[t]);
        /* the answer names this topic, in whatever spelling was stored */
        int ok = c && strncasecmp(c, want, strlen(want)) == 0;
        llmc_response_free(r);
        if (!ok)
            return (void *)2;
    }
    return NULL;
}

START_TEST(t_threads_share_a_client)
{
    llmc_cache *c = open_cache("local://", "semantic=1", 1);
    shared_cl = client(c, NULL);
    pthread_t th[6];
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
    for (size_t i = 0; i < 6; i++) {
        void *rv = NULL;
        pthread_join(th[i], &rv);
        ck_assert_ptr_null(rv);
    }
    llmc_semantic_stats st;
    llmc_client_semantic_stats(shared_cl, &st, sizeof st);
    ck_assert_uint_gt(st.hits, 0);
    llmc_client_free(shared_cl);
    llmc_cache_close(c);
}
END_TEST

START_TEST(t_streams_replay_semantic_hit)
{
    llmc_cache *c = open_cache("local://", "semantic=1", 1);
    llmc_client *cl = client(c, NULL);
    call(cl, CHAT("gpt-4o-mini", "Say hello", ""));
    llmc_call *k = NULL;
    llmc_err e;
    ck_assert_int_eq(llmc_call_prepare(cl, LLMC_CALL_CHAT,
                                       CHAT("gpt-4o-mini", "say hello!", ",\"stream\":true"),
                                       LLMC_ZSTR, NULL, &k, &e), LLMC_OK);
    tu_chunks ch = {NULL, 0};
    llmc_response *r = NULL;
    ck_assert_int_eq(llmc_call_lookup(k, tu_chunk_cb, &ch, &r, &e), LLMC_OK);
    ck_assert(llmc_response_semantic(r, NULL));
    ck_assert_ptr_nonnull(ch.arr);
    /* The replayed deltas join into the first call's answer. */
    char joined[200] = "";
    for (size_t i = 0; i < json_object_array_length(ch.arr); i++) {
        const char *d = tu_str(json_object_array_get_idx(ch.arr, i), "choices.0.delta.content");
        if (d)
            strncat(joined, d, sizeof joined - strlen(joined) - 1);
    }
    ck_assert_str_eq(joined, "echo: Say hello");
    json_object_put(ch.arr);
    llmc_response_free(r);
    llmc_call_free(k);
    llmc_client_free(cl);
    llmc_cache_close(c);
}
END_TEST

int main(void)
{
    servers_up();
    Suite *s = suite_create("semantic");
    TCase *tc = tcase_create("semantic");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_near_duplicates_hit);
    tcase_add_test(tc, t_numbers_negations_quotes_miss);
    tcase_add_test(tc, t_scope_is_exact);
    tcase_add_test(tc, t_turns_and_tools_never_compared);
    tcase_add_test(tc, t_verifier_rejects);
    tcase_add_test(tc, t_controls_and_threshold);
    tcase_add_test(tc, t_bad_options);
    tcase_add_test(tc, t_plugin_index_and_verifier);
    tcase_add_test(tc, t_embeddings_model);
    tcase_add_test(tc, t_restart_sqlite);
    tcase_add_test(tc, t_restart_redis);
    tcase_add_test(tc, t_restart_cluster);
    tcase_add_test(tc, t_two_replicas_one_redis);
    tcase_add_test(tc, t_streams_replay_semantic_hit);
    tcase_add_test(tc, t_threads_share_a_client);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
#if LLMC_HAVE_REDIS
    testsrv_stop(&redis_srv);
#endif
    testsrv_stop(&dir_srv);
    return failed ? 1 : 0;
}

#else
int main(void)
{
    fprintf(stderr, "check_semantic: built without libcurl\n");
    return 1;
}
#endif
