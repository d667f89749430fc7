/* Core benchmark: local-backend get/set throughput with 1.5 KB values at 1
 * and 2 threads, and v1 key computation for a 2 KB chat request, each next
 * to a raw baseline measured in the same run:
 *   get  vs  a plain open-addressing hash table lookup + memcpy
 *   set  vs  the same table's insert (malloc + memcpy of key and value)
 *   key  vs  SHA-256 over the raw request bytes
 * Targets (the core must add little to a raw backend call): local get
 * >= 0.5x baseline; key <= 3x raw SHA-256.
 * Usage: bench_core [seconds-per-measurement, default 0.5] [rounds, default 5] */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canon.h"

#define NKEYS 16384
#define VLEN 1536

static double secs = 0.5;
static int rounds = 5;
static char keys[NKEYS][80];
static size_t klens[NKEYS];
static char *value;

static double now_s(void) { return (double)llmc_mono_ns() / 1e9; }

/* ---- baseline: open addressing, linear probing, no locks ---- */
typedef struct slot {
    uint64_t h;
    const char *k;
    size_t kl;
    char *v;
    size_t vl;
} slot;
#define NSLOTS (NKEYS * 4)
static slot table[NSLOTS];

static void base_put(const char *k, size_t kl, const char *v, size_t vl)
{
    uint64_t h = llmc__hash64(k, kl);
    size_t i = h & (NSLOTS - 1);
    while (table[i].k && !(table[i].h == h && table[i].kl == kl && memcmp(table[i].k, k, kl) == 0))
        i = (i + 1) & (NSLOTS - 1);
    if (!table[i].k) {
        table[i].k = k;
        table[i].kl = kl;
        table[i].h = h;
    } else {
        free(table[i].v);
    }
    table[i].v = malloc(vl);
    memcpy(table[i].v, v, vl);
    table[i].vl = vl;
}

static size_t base_get(const char *k, size_t kl, char *out)
{
    uint64_t h = llmc__hash64(k, kl);
    size_t i = h & (NSLOTS - 1);
    while (table[i].k) {
        if (table[i].h == h && table[i].kl == kl && memcmp(table[i].k, k, kl) == 0) {
            memcpy(out, table[i].v, table[i].vl);
            return table[i].vl;
        }
        i = (i + 1) & (NSLOTS - 1);
    }
    return 0;
}

typedef struct job {
    int which; /* 0 base get, 1 llmc get, 2 base set, 3 llmc set */
    llmc_cache *c;
    unsigned seed;
    uint64_t ops;
    uint64_t bad;
} job;

static volatile int stop_flag;

static void *worker(void *p)
{
    job *j = p;
    char *out = malloc(VLEN);
    llmc_buf b = LLMC_BUF_INIT;
    unsigned x = j->seed;
    uint64_t ops = 0;
    while (!stop_flag) {
        for (int r = 0; r < 256; r++) {
            x = x * 1103515245u + 12345u;
            unsigned i = (x >> 8) % NKEYS;
            switch (j->which) {
            case 0:
                if (base_get(keys[i], klens[i], out) != VLEN)
                    j->bad++;
                break;
            case 1:
                if (llmc_cache_get(j->c, keys[i], klens[i], &b) != LLMC_OK || b.len != VLEN)
                    j->bad++;
                break;
            case 3:
                if (llmc_cache_set(j->c, keys[i], klens[i], value, VLEN, LLMC_TTL_NEVER) != LLMC_OK)
                    j->bad++;
                break;
            }
        }
        ops += 256;
    }
    j->ops = ops;
    free(out);
    llmc_buf_free(&b);
    return NULL;
}

static double run(int which, int threads, llmc_cache *c)
{
    pthread_t th[2];
    job jobs[2];
    stop_flag = 0;
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job){which, c, 7u + 1000u * (unsigned)i, 0, 0};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    /* Sleep, don't spin: the main thread must not steal a core. */
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    stop_flag = 1;
    uint64_t ops = 0, bad = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += jobs[i].ops;
        bad += jobs[i].bad;
    }
    double el = now_s() - t0;
    if (bad) {
        fprintf(stderr, "bench: %llu failed operations\n", (unsigned long long)bad);
        exit(1);
    }
    return (double)ops / el;
}

/* Baseline set: malloc + copy into the table, single-threaded only (the
 * baseline table has no locks). */
static double run_base_set(void)
{
    double t0 = now_s();
    uint64_t ops = 0;
    unsigned x = 99;
    while (now_s() - t0 < secs) {
        for (int r = 0; r < 256; r++) {
            x = x * 1103515245u + 12345u;
            unsigned i = (x >> 8) % NKEYS;
            base_put(keys[i], klens[i], value, VLEN);
        }
        ops += 256;
    }
    return (double)ops / (now_s() - t0);
}

static const char *make_request(void)
{
    /* A realistic ~2 KB chat request: system prompt, a few turns, params. */
    static char req[4096];
    const char *para = "Summarise the following notes for an engineering audience, keeping "
                       "numbers exact and naming every owner. ";
    char content[1400] = "";
    while (strlen(content) + strlen(para) < sizeof content - 1)
        strcat(content, para);
    snprintf(req, sizeof req,
             "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":"
             "\"You are a careful assistant. Answer in English.\"},{\"role\":\"user\","
             "\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"Understood. "
             "Send the notes.\"},{\"role\":\"user\",\"content\":\"Notes: Q3 revenue 12.4M "
             "(+8%%), churn 2.1%%, owner: Dana; infra cost 1.9M, owner: Lee.\"}],"
             "\"temperature\":0.2,\"top_p\":1.0,\"max_tokens\":512,\"seed\":42,"
             "\"presence_penalty\":0,\"frequency_penalty\":0,\"stream\":false,"
             "\"user\":\"user-1234\",\"metadata\":{\"trace_id\":\"abc-123\"}}",
             content);
    return req;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        secs = atof(argv[1]) > 0 ? atof(argv[1]) : 0.5;
    if (argc > 2)
        rounds = atoi(argv[2]) > 0 ? atoi(argv[2]) : 5;
    value = malloc(VLEN);
    for (int i = 0; i < VLEN; i++)
        value[i] = (char)('a' + i % 26);
    for (int i = 0; i < NKEYS; i++) {
        uint8_t d[32];
        char hex[65];
        llmc_sha256(&i, sizeof i, d);
        llmc_hex(d, 32, hex);
        klens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "bench:%s", hex);
        base_put(keys[i], klens[i], value, VLEN);
    }
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open("local://?max_bytes=1073741824", NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return 1;
    }
    for (int i = 0; i < NKEYS; i++)
        llmc_cache_set(c, keys[i], klens[i], value, VLEN, LLMC_TTL_NEVER);

    printf("llmcache core benchmark (best of %d rounds of %.2f s, %d keys, %d-byte values)\n",
           rounds, secs, NKEYS, VLEN);
    printf("%-34s %14s %14s %8s\n", "measurement", "llmcache", "baseline", "ratio");
    /* The machine is shared and noisy: alternate baseline and llmcache
     * over several rounds and keep each one's best round. */
    double g1b = 0, g1 = 0, g2b = 0, g2 = 0, s1b = 0, s1 = 0, s2 = 0, v;
    for (int round = 0; round < rounds; round++) {
        if ((v = run(0, 1, NULL)) > g1b) g1b = v;
        if ((v = run(1, 1, c)) > g1) g1 = v;
        if ((v = run(0, 2, NULL)) > g2b) g2b = v;
        if ((v = run(1, 2, c)) > g2) g2 = v;
        if ((v = run_base_set()) > s1b) s1b = v;
        if ((v = run(3, 1, c)) > s1) s1 = v;
        if ((v = run(3, 2, c)) > s2) s2 = v;
    }
    printf("%-34s %12.0f/s %12.0f/s %7.2fx\n", "local get, 1 thread", g1, g1b, g1 / g1b);
    printf("%-34s %12.0f/s %12.0f/s %7.2fx\n", "local get, 2 threads", g2, g2b, g2 / g2b);
    printf("%-34s %12.0f/s %12.0f/s %7.2fx\n", "local set, 1 thread", s1, s1b, s1 / s1b);
    printf("%-34s %12.0f/s %12.0f/s %7.2fx\n", "local set, 2 threads", s2, s1b, s2 / s1b);

    /* Key computation. */
    const char *req = make_request();
    size_t rlen = strlen(req);
    json_object *o = json_tokener_parse(req);
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    in.request = o;
    llmc_buf key = LLMC_BUF_INIT;
    uint8_t d[32];
    int iters = 100000;
    double best_sha = 1e9, best_key = 1e9, best_parse = 1e9;
    for (int round = 0; round < 2 * rounds; round++) {
        double t0 = now_s();
        for (int i = 0; i < iters; i++) {
            llmc_sha256(req, rlen, d);
            __asm__ volatile("" : : "r"(d) : "memory");
        }
        double t1 = now_s();
        for (int i = 0; i < iters; i++)
            llmc_key_compute(NULL, &in, &key, NULL, &e);
        double t2 = now_s();
        for (int i = 0; i < iters / 10; i++) {
            json_object *p = json_tokener_parse(req);
            llmc_key_compute(NULL, &in, &key, NULL, &e);
            json_object_put(p);
        }
        double t3 = now_s();
        if ((t1 - t0) / iters < best_sha)
            best_sha = (t1 - t0) / iters;
        if ((t2 - t1) / iters < best_key)
            best_key = (t2 - t1) / iters;
        if ((t3 - t2) / (iters / 10) < best_parse)
            best_parse = (t3 - t2) / (iters / 10);
    }
    printf("%-34s %12.2fus %12.2fus %7.2fx\n", "v1 key, 2 KB chat request", best_key * 1e6,
           best_sha * 1e6, best_key / best_sha);
    printf("%-34s %12.2fus %14s %8s\n", "  (with json-c parse, for info)", best_parse * 1e6, "",
           "");
    printf("request bytes: %zu, key: %s\n", rlen, key.data);
    int ok = g1 / g1b >= 0.5 && g2 / g2b >= 0.5 && best_key / best_sha <= 3.0;
    printf("targets: local get >= 0.50x baseline (1 thread %.2fx, 2 threads %.2fx); "
           "key <= 3.00x SHA-256 (%.2fx): %s\n",
           g1 / g1b, g2 / g2b, best_key / best_sha, ok ? "MET" : "NOT MET");
    json_object_put(o);
    llmc_buf_free(&key);
    llmc_cache_close(c);
    free(value);
    for (int i = 0; i < NSLOTS; i++)
        free(table[i].v);
    return 0;
}
