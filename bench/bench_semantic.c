/* Semantic lookup benchmark, one thread (one core):
 *
 *   search   the flat index (float32 and int8, SIMD kernels) over N unit
 *            vectors of D dimensions, against a plain scalar loop over
 *            the same float32 rows, measured in the same run;
 *   lookup   what a semantic lookup adds to a request: embed the prompt
 *            with the built-in embedder and search the scope's index,
 *            against an exact hit (llmc_cache_get_entry of a 1.5 KB
 *            entry on the local backend).
 *
 * N = 1k, 10k, 100k in one scope; D = 384 and 1536. Target: a lookup at
 * 10k x 1536 in <= 2 ms on one core. Every time is the median of the
 * rounds (the machine may be shared; medians keep one slow round out).
 * Usage: bench_semantic [rounds, default 15] [max entries, default 100000] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "vecdot.h"

static int rounds = 15;

static double now_us(void) { return (double)llmc_mono_ns() / 1e3; }

static uint64_t rng = 0x853c49e6748fea9bULL;
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
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < d; i++)
        v[i] *= inv;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

static volatile float sink;

/* The baseline: the plain loop a user would write, best-of-one kept in
 * a variable so the compiler cannot drop it. */
static double scalar_search_us(const float *rows, size_t n, size_t d, const float *q)
{
    double t[64];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_us();
        float best = -2.0f;
        for (size_t i = 0; i < n; i++) {
            float s = llmc__dot_f32_scalar(rows + i * d, q, d);
            if (s > best)
                best = s;
        }
        sink = best;
        t[r] = now_us() - t0;
    }
    return median(t, rounds);
}

static double index_search_us(const llmc_index_ops *ops, void *ix, const float *q)
{
    double t[64];
    uint64_t ids[4];
    float sc[4];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_us();
        size_t got = ops->search(ix, q, 4, ids, sc);
        sink = got ? sc[0] : 0;
        t[r] = now_us() - t0;
    }
    return median(t, rounds);
}

static const char *prompt =
    "How do I get a refund for an order that arrived damaged, and how long does it take?";

static double embed_us(size_t d)
{
    float *v = malloc(d * sizeof *v);
    double t[64];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_us();
        for (int i = 0; i < 100; i++)
            llmc_embed_local(prompt, strlen(prompt), v, d);
        t[r] = (now_us() - t0) / 100;
    }
    sink = v[0];
    free(v);
    return median(t, rounds);
}

static double exact_hit_us(void)
{
    llmc_cache *c;
    llmc_err e;
    if (llmc_cache_open("local://?max_entries=1000", NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "bench_semantic: %s\n", e.msg);
        exit(1);
    }
    char body[1536];
    memset(body, 'x', sizeof body);
    body[0] = '{';
    body[sizeof body - 1] = '}';
    const char *key = "bench:3f5a0c1d2e4b6a7988776655443322110ffeeddccbbaa99887766554433221100";
    llmc_cache_put_entry(c, key, strlen(key), LLMC_CALL_CHAT, body, sizeof body,
                         LLMC_TTL_DEFAULT, 0);
    llmc_lookup lk = LLMC_LOOKUP_INIT;
    double t[64];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_us();
        for (int i = 0; i < 1000; i++)
            llmc_cache_get_entry(c, key, strlen(key), -1, LLMC_ENTRY_SOFT, &lk);
        t[r] = (now_us() - t0) / 1000;
    }
    llmc_lookup_free(&lk);
    llmc_cache_close(c);
    return median(t, rounds);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atoi(argv[1]);
    if (rounds < 3 || rounds > 64)
        rounds = 15;
    size_t maxn = argc > 2 ? (size_t)atol(argv[2]) : 100000;
    llmc_init();
    printf("bench_semantic: one thread, kernel %s, median of %d rounds\n",
           llmc__dot_kernel_name(), rounds);
    double exact = exact_hit_us();
    printf("exact hit (local get_entry, 1.5 KB): %.2f us\n\n", exact);
    printf("%7s %5s | %10s %10s %10s %7s %7s | %8s %10s %10s %8s %8s\n", "entries", "dim",
           "scalar us", "flat us", "int8 us", "x flat", "x int8", "embed us", "lookup f32",
           "lookup i8", "/exact", "/exact");
    const size_t dims[] = {384, 1536};
    const size_t ns[] = {1000, 10000, 100000};
    for (size_t di = 0; di < 2; di++) {
        size_t d = dims[di];
        double emb = embed_us(d);
        for (size_t ni = 0; ni < 3; ni++) {
            size_t n = ns[ni];
            if (n > maxn)
                continue;
            float *rows = malloc(n * d * sizeof *rows);
            float *q = malloc(d * sizeof *q);
            if (!rows || !q) {
                fprintf(stderr, "bench_semantic: out of memory at %zu x %zu\n", n, d);
                return 1;
            }
            llmc_index_config cfg = {sizeof cfg, "bench", d, n};
            void *fx = NULL, *ix = NULL;
            llmc_err e;
            if (llmc__index_flat.open(&cfg, &fx, &e) != LLMC_OK ||
                llmc__index_flat_int8.open(&cfg, &ix, &e) != LLMC_OK) {
                fprintf(stderr, "bench_semantic: %s\n", e.msg);
                return 1;
            }
            for (size_t i = 0; i < n; i++) {
                unit(rows + i * d, d);
                llmc__index_flat.add(fx, i + 1, rows + i * d, &e);
                llmc__index_flat_int8.add(ix, i + 1, rows + i * d, &e);
            }
            unit(q, d);
            double sc = scalar_search_us(rows, n, d, q);
            double fl = index_search_us(&llmc__index_flat, fx, q);
            double i8 = index_search_us(&llmc__index_flat_int8, ix, q);
            printf("%7zu %5zu | %10.1f %10.1f %10.1f %6.1fx %6.1fx | %8.2f %10.1f %10.1f %7.0fx "
                   "%7.0fx\n",
                   n, d, sc, fl, i8, sc / fl, sc / i8, emb, emb + fl, emb + i8,
                   (emb + fl) / exact, (emb + i8) / exact);
            fflush(stdout);
            llmc__index_flat.close(fx);
            llmc__index_flat_int8.close(ix);
            free(rows);
            free(q);
        }
    }
    printf("\nx flat / x int8: the plain scalar loop's time over the index's (higher is "
           "better);\n/exact: a semantic lookup's time over an exact hit's.\n"
           "target: lookup at 10000 x 1536 <= 2000 us\n");
    return 0;
}
