/* Completion-client benchmark: the full cached-completion hit (2 KB
 * request JSON text in -> response text out, "cache": true spliced in)
 * on each backend, next to the raw llmc_cache_get of the same stored
 * bytes measured in the same run, in interleaved blocks so both see the
 * same machine noise.
 *
 * Targets (a hit must cost next to nothing beside the provider call it
 * saves): local hit median <= 20 us; at redis the hit path <= 1.1x the
 * raw get. Redis is started by the benchmark itself on a free
 * port (when the redis backend is built and redis-server is installed).
 *
 * Usage: bench_client [iterations per backend, default 20000] [only-backend] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support/testsrv.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1));
    return (double)v[i] / 1000.0;
}

/* A 2 KB chat request and a 1.5 KB chat.completion. */
static void make_request(char *out, size_t outsz)
{
    char filler[1550];
    size_t k = 0;
    static const char *words[] = {"cache", "latency", "model", "token", "prompt", "answer",
                                  "vector", "stream"};
    while (k + 10 < sizeof filler) {
        const char *w = words[(k * 7) % 8];
        k += (size_t)snprintf(filler + k, sizeof filler - k, "%s ", w);
    }
    snprintf(out, outsz,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
             "\"You are a helpful assistant that answers questions about caching systems "
             "precisely and briefly.\"},{\"role\":\"user\",\"content\":\"%s\"},{\"role\":"
             "\"assistant\",\"content\":\"Understood.\"},{\"role\":\"user\",\"content\":"
             "\"Summarise the above in three sentences, please, and list the key terms.\"}],"
             "\"temperature\":0.2,\"max_tokens\":512,\"top_p\":1,\"frequency_penalty\":0,"
             "\"presence_penalty\":0,\"seed\":42,\"user\":\"bench-user\",\"stop\":[\"\\n\\n\\n\"],"
             "\"response_format\":{\"type\":\"text\"}}",
             filler);
}

static void make_response(char *out, size_t outsz)
{
    char content[1200];
    size_t k = 0;
    while (k + 12 < sizeof content)
        k += (size_t)snprintf(content + k, sizeof content - k, "answer%03zu ", k % 997);
    snprintf(out, outsz,
             "{\"id\":\"chatcmpl-bench0000000000000000\",\"object\":\"chat.completion\","
             "\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{"
             "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\",\"refusal\":"
             "null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
             "480,\"completion_tokens\":300,\"total_tokens\":780},\"system_fingerprint\":"
             "\"fp_bench\"}",
             content);
}

static const char *only;

static int run1(const char *name, const char *url, size_t iters, int memo, int want_json,
                double *out_ratio, double *out_median);

/* Each backend twice: with the client's request memo (the default: a
 * repeated request text skips parsing and key computation) and without
 * it (every hit parses the request and computes the v1 key). */
static int run(const char *name, const char *url, size_t iters, double *out_ratio,
               double *out_median)
{
    if (only && strcmp(only, name) != 0)
        return 1;
    double r2, m2;
    int rc = run1(name, url, iters, 1, 0, out_ratio, out_median);
    if (rc == 0)
        rc = run1(name, url, iters, 0, 0, &r2, &m2);
    /* The same hit when the caller also wants the json-c object (the
     * stored response parsed on demand). */
    if (rc == 0)
        rc = run1(name, url, iters, 1, 1, &r2, &m2);
    return rc;
}

static int run1(const char *name, const char *url, size_t iters, int memo, int want_json,
                double *out_ratio, double *out_median)
{
    llmc_cache *cache = NULL;
    llmc_err e;
    if (llmc_cache_open(url, NULL, &cache, &e) != LLMC_OK) {
        printf("%-8s skipped: %s\n", name, e.msg);
        return -1;
    }
    llmc_cache_flush_all(cache);
    llmc_options *o = llmc_options_new();
    llmc_options_set(o, "openai.api_key", "sk-bench");
    if (!memo)
        llmc_options_set(o, "memo_entries", "0");
    llmc_client *cl = NULL;
    if (llmc_client_new(cache, o, &cl, &e) != LLMC_OK) {
        printf("client: %s\n", e.msg);
        return -1;
    }
    llmc_options_free(o);
    static char req[4096], resp[4096];
    make_request(req, sizeof req);
    make_response(resp, sizeof resp);
    size_t reqlen = strlen(req);

    /* Store the response where the client will look for it. */
    llmc_request *q = NULL;
    llmc_request_from_json(req, reqlen, &q, &e);
    llmc_buf key = LLMC_BUF_INIT;
    if (llmc_client_request_key(cl, LLMC_CALL_CHAT, q, 0, &key, NULL, &e) != LLMC_OK) {
        printf("key: %s\n", e.msg);
        return -1;
    }
    llmc_request_free(q);
    llmc_cache_put_entry(cache, key.data, key.len, LLMC_CALL_CHAT, resp, strlen(resp),
                         LLMC_TTL_NEVER, 0);
    llmc_buf raw = LLMC_BUF_INIT;
    llmc_cache_get(cache, key.data, key.len, &raw);

    uint64_t *hit = malloc(iters * sizeof *hit), *base = malloc(iters * sizeof *base);
    size_t nh = 0, nb = 0, bad = 0;
    const size_t block = 1; /* strictly alternating: both see the same noise */
    /* Warm up both paths. */
    for (size_t i = 0; i < 500; i++) {
        llmc_response *r = NULL;
        llmc_completion_json(cl, req, reqlen, &r, NULL);
        llmc_response_free(r);
        llmc_cache_get(cache, key.data, key.len, &raw);
    }
    while (nh < iters) {
        for (size_t i = 0; i < block && nh < iters; i++) {
            uint64_t t0 = llmc_mono_ns();
            llmc_response *r = NULL;
            llmc_status st = llmc_completion_json(cl, req, reqlen, &r, NULL);
            size_t tl = 0;
            const char *text = llmc_response_text(r, &tl);
            if (want_json)
                llmc_response_json(r);
            uint64_t t1 = llmc_mono_ns();
            if (want_json && !llmc_response_json(r))
                bad++;
            if (st != LLMC_OK || !llmc_response_cache_hit(r) || !text || tl < 1500)
                bad++;
            llmc_response_free(r);
            hit[nh++] = t1 - t0;
        }
        for (size_t i = 0; i < block && nb < iters; i++) {
            uint64_t t0 = llmc_mono_ns();
            llmc_status st = llmc_cache_get(cache, key.data, key.len, &raw);
            uint64_t t1 = llmc_mono_ns();
            if (st != LLMC_OK)
                bad++;
            base[nb++] = t1 - t0;
        }
    }
    double hm = pct(hit, nh, 0.5), h99 = pct(hit, nh, 0.99);
    double bm = pct(base, nb, 0.5), b99 = pct(base, nb, 0.99);
    printf("%-7s %-9s req %zu B, stored %zu B | cached completion hit: median %7.2f us  p99 "
           "%7.2f us | raw llmc_cache_get: median %7.2f us  p99 %7.2f us | ratio %.2fx%s\n",
           name, want_json ? "memo+json" : memo ? "memo" : "parse", reqlen, raw.len, hm, h99, bm, b99, hm / bm,
           bad ? "  (ERRORS!)" : "");
    *out_ratio = hm / bm;
    *out_median = hm;
    free(hit);
    free(base);
    llmc_buf_free(&raw);
    llmc_buf_free(&key);
    llmc_client_free(cl);
    llmc_cache_close(cache);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    size_t iters = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 20000;
    if (iters < 100)
        iters = 100;
    only = argc > 2 ? argv[2] : NULL;
    unsetenv("LLMCACHE_URL");
    unsetenv("OPENAI_BASE_URL");
    int rc = 0;
    double ratio, median;
    int lr = run("local", "local://", iters, &ratio, &median);
    if (lr == 0)
        printf("  local hit median %.2f us (target <= 20 us): %s\n", median,
               median <= 20.0 ? "MET" : "NOT MET");
    else if (lr < 0)
        rc = 1;
#if LLMC_HAVE_SQLITE
    testsrv dir;
    if (testsrv_mkdir(&dir, "bench-client-sqlite") == 0) {
        char url[400];
        snprintf(url, sizeof url, "sqlite://%s/bench.db", dir.dir);
        if (run("sqlite", url, iters / 2, &ratio, &median) < 0)
            rc = 1;
        testsrv_stop(&dir);
    }
#endif
#if LLMC_HAVE_REDIS
    testsrv rs;
    if (testsrv_which("redis-server") && testsrv_mkdir(&rs, "bench-client-redis") == 0) {
        int port = testsrv_free_port();
        char ports[16];
        snprintf(ports, sizeof ports, "%d", port);
        char *av[] = {"redis-server", "--port", ports, "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", rs.dir, NULL};
        if (testsrv_spawn(&rs, av) == 0 && testsrv_wait_tcp(&rs, port, 10000) == 0) {
            char url[128];
            snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
            int rr = run("redis", url, iters / 2, &ratio, &median);
            if (rr == 0)
                printf("  redis hit / raw get %.2fx (target <= 1.1x): %s\n", ratio,
                       ratio <= 1.1 ? "MET" : "NOT MET");
            else if (rr < 0)
                rc = 1;
        } else {
            printf("redis    skipped: redis-server did not start\n");
        }
        testsrv_stop(&rs);
    }
#else
    printf("redis    skipped: the redis backend is not built in\n");
#endif
    return rc;
}
