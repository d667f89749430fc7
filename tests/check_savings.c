/* Savings accounting: the price table (the shipped file and overrides),
 * model lookup, the saving of one hit (chat, streamed, embeddings,
 * unknown models, hostile bodies) and the counters. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmc_config.h"
#include "llmcache/llmcache.h"

#define SHIPPED LLMC_SOURCE_ROOT "/share/llmcache/prices.json"

static llmc_prices *shipped(void)
{
    llmc_prices *p = NULL;
    llmc_err err;
    llmc_err_clear(&err);
    ck_assert_int_eq(setenv(LLMC_PRICES_ENV, SHIPPED, 1), 0);
    ck_assert_msg(llmc_prices_load(NULL, &p, &err) == LLMC_OK, "%s", err.msg);
    return p;
}

static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-12 + 1e-9 * fabs(b);
}

START_TEST(t_shipped_table)
{
    llmc_prices *p = shipped();
    ck_assert_uint_ge(llmc_prices_count(p), 30);
    ck_assert_ptr_nonnull(llmc_prices_as_of(p));
    ck_assert_ptr_nonnull(strstr(llmc_prices_source(p), "https://"));
    llmc_price pr;
    const char *m;
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-mini", &pr, &m), 1);
    ck_assert_str_eq(m, "gpt-4o-mini");
    ck_assert(close_to(pr.input, 0.15) && close_to(pr.output, 0.60));
    /* Dated snapshot -> its entry; the longest entry wins. */
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-mini-2024-07-18", &pr, &m), 1);
    ck_assert_str_eq(m, "gpt-4o-mini");
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-2024-08-06", &pr, &m), 1);
    ck_assert_str_eq(m, "gpt-4o");
    ck_assert_int_eq(llmc_prices_lookup(p, "claude-3-5-haiku-20241022", &pr, &m), 1);
    ck_assert_str_eq(m, "claude-3-5-haiku");
    ck_assert_int_eq(llmc_prices_lookup(p, "anthropic/claude-3-5-haiku-latest", &pr, &m), 1);
    ck_assert_str_eq(m, "claude-3-5-haiku");
    ck_assert_int_eq(llmc_prices_lookup(p, "models/gemini-2.0-flash-001", &pr, &m), 1);
    ck_assert_str_eq(m, "gemini-2.0-flash");
    ck_assert_int_eq(llmc_prices_lookup(p, "GPT-4O-MINI", &pr, NULL), 1);
    /* Not a version: a different model, so unknown rather than mispriced. */
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-audio-preview", &pr, NULL), 0);
    ck_assert_int_eq(llmc_prices_lookup(p, "o3-pro", &pr, NULL), 0);
    ck_assert_int_eq(llmc_prices_lookup(p, "my-azure-deployment", &pr, NULL), 0);
    ck_assert_int_eq(llmc_prices_lookup(p, "", &pr, NULL), 0);
    ck_assert_int_eq(llmc_prices_lookup(p, "-", &pr, NULL), 0);
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-", &pr, NULL), 0);
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(llmc_prices_lookup(p, longname, &pr, NULL), 0);
    /* Embedding models: output 0, cached = input. */
    ck_assert_int_eq(llmc_prices_lookup(p, "text-embedding-3-small", &pr, NULL), 1);
    ck_assert(close_to(pr.output, 0) && close_to(pr.cached_input, pr.input));
    llmc_prices_free(p);
}
END_TEST

START_TEST(t_override)
{
    llmc_prices *p = NULL;
    llmc_err err;
    ck_assert_int_eq(setenv(LLMC_PRICES_ENV, SHIPPED, 1), 0);
    /* Inline JSON: replaces one model, adds another (models-only form). */
    ck_assert_int_eq(llmc_prices_load("{\"gpt-4o-mini\": {\"input\": 1, \"output\": 2},"
                                      " \"my-deployment\": {\"input\": 3, \"cached_input\": 1, "
                                      "\"output\": 4}}",
                                      &p, &err),
                     LLMC_OK);
    llmc_price pr;
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o-mini", &pr, NULL), 1);
    ck_assert(close_to(pr.input, 1) && close_to(pr.cached_input, 1) && close_to(pr.output, 2));
    ck_assert_int_eq(llmc_prices_lookup(p, "azure/my-deployment", &pr, NULL), 1);
    ck_assert(close_to(pr.cached_input, 1));
    ck_assert_int_eq(llmc_prices_lookup(p, "gpt-4o", &pr, NULL), 1); /* kept */
    /* A bad merge names the model and field and changes nothing. */
    size_t n = llmc_prices_count(p);
    static const struct {
        const char *doc, *needle;
    } bad[] = {
        {"{\"x\": {\"input\": -1}}", "\"x\": field \"input\""},
        {"{\"x\": {\"input\": \"1\"}}", "field \"input\" must be a number"},
        {"{\"x\": {\"output\": 1}}", "\"input\" is missing"},
        {"{\"x\": {\"input\": 1, \"ouput\": 1}}", "unknown field \"ouput\""},
        {"{\"x\": 5}", "model \"x\" must be an object"},
        {"{\"x\": {\"input\": 1e300}}", "<= 1000000"},
        {"{\"models\": []}", "\"models\" must be an object"},
        {"[1]", "must be a JSON object"},
        {"{\"x\": {\"input\": 1}", "not valid JSON"},
        {"{\"x\": {\"input\": 1}} junk", "unexpected text"},
        {"{\"\": {\"input\": 1}}", "empty model name"},
        {"{\"ok\": {\"input\": 1}, \"y\": {\"input\": null}}", "\"y\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmc_err_clear(&err);
        ck_assert_int_eq(llmc_prices_merge_json(p, bad[i].doc, (size_t)-1, &err), LLMC_EINVAL);
        ck_assert_msg(strstr(err.msg, bad[i].needle), "%s: %s", bad[i].doc, err.msg);
        ck_assert_uint_eq(llmc_prices_count(p), n);
    }
    ck_assert_int_eq(llmc_prices_lookup(p, "ok", &pr, NULL), 0);
    llmc_prices_free(p);

    /* A path override, and a missing file is an error naming it. */
    char path[] = "/tmp/llmc_prices_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"as_of\": \"2030-01-01\", \"sources\": [\"ops\"], \"models\": "
          "{\"house-model\": {\"input\": 10, \"output\": 20}}}",
          f);
    fclose(f);
    ck_assert_int_eq(llmc_prices_load(path, &p, &err), LLMC_OK);
    ck_assert_str_eq(llmc_prices_as_of(p), "2030-01-01");
    ck_assert_int_eq(llmc_prices_lookup(p, "house-model", &pr, NULL), 1);
    llmc_prices_free(p);
    /* The environment variable replaces the default table entirely. */
    ck_assert_int_eq(setenv(LLMC_PRICES_ENV, path, 1), 0);
    ck_assert_str_eq(llmc_prices_default_path(), path);
    ck_assert_int_eq(llmc_prices_load(NULL, &p, &err), LLMC_OK);
    ck_assert_uint_eq(llmc_prices_count(p), 1);
    llmc_prices_free(p);
    unlink(path);
    llmc_err_clear(&err);
    ck_assert_int_eq(llmc_prices_load(NULL, &p, &err), LLMC_EIO);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    unsetenv(LLMC_PRICES_ENV);
    ck_assert_str_eq(llmc_prices_default_path(), LLMC_DATA_DIR "/prices.json");
}
END_TEST

START_TEST(t_saving_chat)
{
    llmc_prices *p = shipped();
    llmc_saving s;
    const char *body =
        "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-2024-08-06\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
        "\"\\\"usage\\\":{\\\"prompt_tokens\\\":999999}\"}}],"
        "\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":500,\"total_tokens\":1500,"
        "\"prompt_tokens_details\":{\"cached_tokens\":200}}}";
    llmc_saving_compute(p, body, strlen(body), "fallback", 1234, &s);
    ck_assert_str_eq(s.model, "gpt-4o-2024-08-06");
    ck_assert_int_eq(s.priced, 1);
    ck_assert_int_eq(s.has_usage, 1);
    ck_assert_uint_eq(s.input_tokens, 1000);
    ck_assert_uint_eq(s.cached_input_tokens, 200);
    ck_assert_uint_eq(s.output_tokens, 500);
    ck_assert_uint_eq(s.tokens, 1500);
    ck_assert_int_eq(s.upstream_ms, 1234);
    /* 800 * 2.50 + 200 * 1.25 + 500 * 10.00 per million */
    ck_assert_msg(close_to(s.usd, (800 * 2.5 + 200 * 1.25 + 500 * 10.0) / 1e6), "%.9f", s.usd);

    /* Unknown model: tokens yes, dollars no, and it says so. */
    const char *unk = "{\"model\":\"house-llm\",\"usage\":{\"prompt_tokens\":7,"
                      "\"completion_tokens\":3}}";
    llmc_saving_compute(p, unk, strlen(unk), NULL, 0, &s);
    ck_assert_int_eq(s.priced, 0);
    ck_assert(s.usd == 0);
    ck_assert_uint_eq(s.tokens, 10); /* no total: input + output */
    ck_assert_int_eq(s.upstream_ms, 0);

    /* The fallback model when the body has none; no price table at all. */
    const char *nomodel = "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":0,"
                          "\"total_tokens\":10}}";
    llmc_saving_compute(p, nomodel, strlen(nomodel), "gpt-4o-mini", 5, &s);
    ck_assert_str_eq(s.model, "gpt-4o-mini");
    ck_assert(close_to(s.usd, 10 * 0.15 / 1e6));
    llmc_saving_compute(NULL, nomodel, strlen(nomodel), "gpt-4o-mini", 5, &s);
    ck_assert_int_eq(s.priced, 0);
    ck_assert_uint_eq(s.tokens, 10);
    llmc_prices_free(p);
}
END_TEST

/* A streamed answer is stored as its assembled response: with usage when
 * the stream carried it (stream_options.include_usage), else without. */
START_TEST(t_saving_stream)
{
    llmc_prices *p = shipped();
    llmc_saving s;
    const char *with = "{\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\",\"choices\":"
                       "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},"
                       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
                       "\"completion_tokens\":4,\"total_tokens\":16}}";
    llmc_saving_compute(p, with, strlen(with), NULL, 300, &s);
    ck_assert_int_eq(s.has_usage, 1);
    ck_assert_uint_eq(s.tokens, 16);
    ck_assert(close_to(s.usd, (12 * 0.15 + 4 * 0.60) / 1e6));
    const char *without = "{\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
                          "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                          "\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":null}";
    llmc_saving_compute(p, without, strlen(without), NULL, 300, &s);
    ck_assert_int_eq(s.has_usage, 0);
    ck_assert_uint_eq(s.tokens, 0);
    ck_assert_int_eq(s.priced, 1);
    ck_assert(s.usd == 0);
    ck_assert_int_eq(s.upstream_ms, 300); /* the time is still saved */
    llmc_prices_free(p);
}
END_TEST

START_TEST(t_saving_embeddings)
{
    llmc_prices *p = shipped();
    llmc_saving s;
    /* A stored item, as the client keeps one per input. */
    const char *item = "{\"object\":\"embedding\",\"embedding\":[0.1,0.2,-0.3],"
                       "\"model\":\"text-embedding-3-small\",\"prompt_tokens\":8}";
    llmc_saving_compute(p, item, strlen(item), NULL, 40, &s);
    ck_assert_uint_eq(s.tokens, 8);
    ck_assert_uint_eq(s.input_tokens, 8);
    ck_assert_uint_eq(s.output_tokens, 0);
    ck_assert(close_to(s.usd, 8 * 0.02 / 1e6));
    /* A merged response. */
    const char *list = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                       "\"embedding\":[1e-3,2]}],\"model\":\"text-embedding-3-large\","
                       "\"usage\":{\"prompt_tokens\":100,\"total_tokens\":100}}";
    llmc_saving_compute(p, list, strlen(list), NULL, 0, &s);
    ck_assert_uint_eq(s.tokens, 100);
    ck_assert(close_to(s.usd, 100 * 0.13 / 1e6));
    llmc_prices_free(p);
}
END_TEST

START_TEST(t_saving_hostile)
{
    llmc_prices *p = shipped();
    llmc_saving s;
    static const char *const bodies[] = {
        "", "not json", "[1,2]", "{", "{\"usage\":5}", "{\"usage\":{\"prompt_tokens\":-5}}",
        "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":\"3\"}}",
        "{\"usage\":{\"prompt_tokens\":99999999999999999999999}}", "{\"model\":7}",
        "{\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":5}}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        llmc_saving_compute(p, bodies[i], strlen(bodies[i]), NULL, -7, &s);
        ck_assert_msg(s.tokens == 0 && s.usd == 0, "%s", bodies[i]);
        ck_assert_int_eq(s.upstream_ms, 0);
    }
    /* Cached tokens beyond the prompt are capped (never negative cost). */
    const char *over = "{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":10,"
                       "\"prompt_tokens_details\":{\"cached_tokens\":50}}}";
    llmc_saving_compute(p, over, strlen(over), NULL, 0, &s);
    ck_assert_uint_eq(s.cached_input_tokens, 10);
    ck_assert(close_to(s.usd, 10 * 1.25 / 1e6));
    /* Duplicate members: the last one counts (one meaning, as json-c). */
    const char *dup = "{\"model\":\"gpt-4o\",\"usage\":{\"total_tokens\":1},"
                      "\"usage\":{\"total_tokens\":2}}";
    llmc_saving_compute(p, dup, strlen(dup), NULL, 0, &s);
    ck_assert_uint_eq(s.tokens, 2);
    /* A very long model name is truncated, not overflowed. */
    char big[600];
    int n = snprintf(big, sizeof big, "{\"model\":\"");
    memset(big + n, 'm', 500);
    snprintf(big + n + 500, sizeof big - (size_t)n - 500, "\"}");
    llmc_saving_compute(p, big, strlen(big), NULL, 0, &s);
    ck_assert_uint_eq(strlen(s.model), LLMC_SAVING_MODEL_MAX - 1);
    llmc_prices_free(p);
}
END_TEST

/* A body read again answers from the thread's memo of bodies it read:
 * the answer must still be the one for exactly those bytes. Bodies of
 * one length differing in one digit, more of them than the memo holds,
 * read in turn and again. */
START_TEST(t_saving_repeated)
{
    llmc_prices *p = shipped();
    char bodies[12][160];
    for (int i = 0; i < 12; i++)
        snprintf(bodies[i], sizeof bodies[i],
                 "{\"model\":\"gpt-4o-mini\",\"usage\":{\"prompt_tokens\":%d,"
                 "\"completion_tokens\":1%d}}",
                 10 + i, i % 10);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 12; i++) {
            int j = round == 1 ? 11 - i : i;
            llmc_saving s;
            llmc_saving_compute(p, bodies[j], strlen(bodies[j]), "fallback", j, &s);
            ck_assert_uint_eq(s.input_tokens, (uint64_t)(10 + j));
            ck_assert_uint_eq(s.output_tokens, (uint64_t)(10 + j % 10));
            ck_assert_str_eq(s.model, "gpt-4o-mini");
            ck_assert_int_eq(s.upstream_ms, j);
            ck_assert_int_eq(s.priced, 1);
        }
    }
    /* The fallback model and the price table are applied on every call,
     * not remembered with the body. */
    const char *nomodel = "{\"usage\":{\"prompt_tokens\":10,\"total_tokens\":10}}";
    llmc_saving s;
    llmc_saving_compute(p, nomodel, strlen(nomodel), "gpt-4o-mini", 0, &s);
    ck_assert_str_eq(s.model, "gpt-4o-mini");
    ck_assert_int_eq(s.priced, 1);
    llmc_saving_compute(p, nomodel, strlen(nomodel), "house-llm", 0, &s);
    ck_assert_str_eq(s.model, "house-llm");
    ck_assert_int_eq(s.priced, 0);
    llmc_saving_compute(NULL, nomodel, strlen(nomodel), "gpt-4o-mini", 0, &s);
    ck_assert_int_eq(s.priced, 0);
    ck_assert_uint_eq(s.tokens, 10);
    llmc_prices_free(p);
}
END_TEST

typedef struct seen {
    int rows;
    uint64_t hits;
    int other;
} seen;

static void count_rows(void *ud, const llmc_savings_row *r)
{
    seen *s = ud;
    s->rows++;
    s->hits += r->hits;
    if (strcmp(r->model, "(other)") == 0)
        s->other++;
}

static void *adder(void *arg)
{
    llmc_savings *sv = arg;
    llmc_saving v;
    memset(&v, 0, sizeof v);
    v.tokens = 3;
    v.usd = 0.5;
    v.priced = 1;
    v.upstream_ms = 1000;
    for (int i = 0; i < 10000; i++)
        llmc_savings_add(sv, "m", (i & 1) ? "a" : "b", "chat", &v);
    return NULL;
}

START_TEST(t_counters)
{
    llmc_savings *sv = llmc_savings_new(4);
    llmc_saving v;
    memset(&v, 0, sizeof v);
    v.tokens = 10;
    v.input_tokens = 6;
    v.output_tokens = 4;
    v.usd = 0.25;
    v.priced = 1;
    v.upstream_ms = 1500;
    llmc_savings_add(sv, "gpt-4o", "team-a", "chat", &v);
    llmc_savings_add(sv, "gpt-4o", "team-a", "chat", &v);
    v.priced = 0;
    v.usd = 0;
    v.upstream_ms = 0;
    llmc_savings_add(sv, "house", NULL, "", &v);
    llmc_savings_row t;
    llmc_savings_total(sv, &t);
    ck_assert_uint_eq(t.hits, 3);
    ck_assert_uint_eq(t.tokens, 30);
    ck_assert_uint_eq(t.unpriced_hits, 1);
    ck_assert_uint_eq(t.untimed_hits, 1);
    ck_assert(close_to(t.usd, 0.5));
    ck_assert(close_to(t.seconds, 3.0));
    /* Bounded: label combinations past the limit go to one row. */
    char m[32];
    for (int i = 0; i < 100; i++) {
        snprintf(m, sizeof m, "model-%d", i);
        llmc_savings_add(sv, m, "t", "chat", &v);
    }
    seen s = {0, 0, 0};
    llmc_savings_foreach(sv, count_rows, &s);
    ck_assert_int_eq(s.rows, 5);
    ck_assert_int_eq(s.other, 1);
    ck_assert_uint_eq(s.hits, 103);
    llmc_savings_reset(sv);
    llmc_savings_total(sv, &t);
    ck_assert_uint_eq(t.hits, 0);
    llmc_savings_free(sv);

    /* Concurrent adds lose nothing. */
    sv = llmc_savings_new(0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, adder, sv);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    llmc_savings_total(sv, &t);
    ck_assert_uint_eq(t.hits, 40000);
    ck_assert_uint_eq(t.tokens, 120000);
    ck_assert(close_to(t.usd, 20000));
    ck_assert(close_to(t.seconds, 40000));
    llmc_savings_free(sv);
    llmc_savings_free(NULL);
    llmc_prices_free(NULL);
}
END_TEST

static int count_chunk(void *ud, struct json_object *chunk)
{
    (void)chunk;
    (*(int *)ud)++;
    return 0;
}

/* The C response says what a hit saved; a miss saved nothing. */
START_TEST(t_client_response)
{
    ck_assert_int_eq(setenv(LLMC_PRICES_ENV, SHIPPED, 1), 0);
    llmc_cache *cache = NULL;
    llmc_client *cl = NULL;
    llmc_err err;
    ck_assert_int_eq(llmc_cache_open("local://", NULL, &cache, &err), LLMC_OK);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "prices", "{\"gpt-4o-mini\": {\"input\": 1000000, \"output\": 0}}");
    ck_assert_msg(llmc_client_new(cache, o, &cl, &err) == LLMC_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(llmc_client_prices(cl, &err));
    const char *req = "{\"model\":\"gpt-4o-mini\",\"mock_response\":\"two words\","
                      "\"messages\":[{\"role\":\"user\",\"content\":\"savings test\"}]}";
    llmc_response *r = NULL;
    llmc_saving sv;
    ck_assert_int_eq(llmc_completion_json(cl, req, strlen(req), &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 0);
    ck_assert_int_eq(llmc_response_saved(r, &sv, &err), LLMC_MISS);
    ck_assert_uint_eq(sv.tokens, 0);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_completion_json(cl, req, strlen(req), &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(llmc_response_saved(r, &sv, &err), LLMC_OK);
    ck_assert_int_eq(sv.priced, 1);
    ck_assert_uint_gt(sv.input_tokens, 0);
    ck_assert_uint_eq(sv.output_tokens, 2);
    ck_assert_uint_eq(sv.tokens, sv.input_tokens + 2);
    /* The miss's time was kept with the entry (at least 1 ms). */
    ck_assert_int_ge(sv.upstream_ms, 1);
    /* The override priced input at $1 a token. */
    ck_assert(close_to(sv.usd, (double)sv.input_tokens));
    llmc_response_free(r);
    /* A streamed hit (replayed as chunks) saved the same. */
    int chunks = 0;
    llmc_saving ss;
    ck_assert_int_eq(llmc_completion_stream_json(cl, req, strlen(req), count_chunk, &chunks, &r,
                                                 &err),
                     LLMC_OK);
    ck_assert_int_gt(chunks, 0);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(llmc_response_saved(r, &ss, &err), LLMC_OK);
    ck_assert_uint_eq(ss.tokens, sv.tokens);
    ck_assert_int_eq(ss.upstream_ms, sv.upstream_ms);
    llmc_response_free(r);
    /* Embeddings: the items that hit. */
    const char *emb = "{\"model\":\"text-embedding-3-small\",\"mock_response\":[0.5,0.25],"
                      "\"input\":[\"savings one\",\"savings two\"]}";
    ck_assert_int_eq(llmc_embedding_json(cl, emb, strlen(emb), &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_saved(r, &ss, &err), LLMC_MISS);
    llmc_response_free(r);
    ck_assert_int_eq(llmc_embedding_json(cl, emb, strlen(emb), &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    ck_assert_int_eq(llmc_response_saved(r, &ss, &err), LLMC_OK);
    ck_assert_uint_gt(ss.tokens, 0);
    ck_assert_uint_eq(ss.output_tokens, 0);
    ck_assert_int_ge(ss.upstream_ms, 2); /* two items, each its share (>= 1 ms) */
    ck_assert_int_eq(ss.priced, 1);
    llmc_response_free(r);
    llmc_client_free(cl);

    /* A bad override is refused when the client is made. */
    llmc_options_set(o, "prices", "{\"gpt-4o-mini\": {\"inptu\": 1}}");
    llmc_err_clear(&err);
    ck_assert_int_eq(llmc_client_new(cache, o, &cl, &err), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "inptu"));
    llmc_options_set(o, "prices", "/nonexistent/prices.json");
    ck_assert_int_eq(llmc_client_new(cache, o, &cl, &err), LLMC_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/prices.json"));
    llmc_options_free(o);

    /* No table to be found: tokens still counted, dollars not, and the
     * status says why. */
    ck_assert_int_eq(setenv(LLMC_PRICES_ENV, "/nonexistent/default.json", 1), 0);
    ck_assert_int_eq(llmc_client_new(cache, NULL, &cl, &err), LLMC_OK);
    ck_assert_int_eq(llmc_completion_json(cl, req, strlen(req), &r, &err), LLMC_OK);
    ck_assert_int_eq(llmc_response_cache_hit(r), 1);
    llmc_err_clear(&err);
    ck_assert_int_eq(llmc_response_saved(r, &sv, &err), LLMC_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/default.json"));
    ck_assert_int_eq(sv.priced, 0);
    ck_assert_uint_gt(sv.tokens, 0);
    llmc_response_free(r);
    llmc_client_free(cl);
    llmc_cache_close(cache);
    unsetenv(LLMC_PRICES_ENV);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("savings");
    TCase *tc = tcase_create("savings");
    tcase_add_test(tc, t_shipped_table);
    tcase_add_test(tc, t_override);
    tcase_add_test(tc, t_saving_chat);
    tcase_add_test(tc, t_saving_stream);
    tcase_add_test(tc, t_saving_embeddings);
    tcase_add_test(tc, t_saving_hostile);
    tcase_add_test(tc, t_saving_repeated);
    tcase_add_test(tc, t_counters);
    tcase_add_test(tc, t_client_response);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
