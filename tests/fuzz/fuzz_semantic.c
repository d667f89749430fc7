/* Semantic lookups' readers of untrusted bytes (core/semantic_store.c,
 * core/semantic_guard.c, core/embed_local.c). The first byte picks:
 *   0: decode the rest as a scope's records (8 dimensions); what decodes
 *      must encode back to exactly the same bytes;
 *   1: the guards over the two halves of the rest: symmetric, and a text
 *      always agrees with itself unless it holds too many numbers or
 *      quotes to compare;
 *   2: the embedder over the rest: unit length (or LLMC_MISS with the
 *      zero vector when there is no word), the same vector for the text
 *      upper-cased. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include "semantic.h"

static void records(const uint8_t *d, size_t n)
{
    llmc__semrecs r;
    memset(&r, 0, sizeof r);
    llmc_status st = llmc__semrecs_decode((const char *)d, n, 8, &r);
    FUZZ_CHECK(st == LLMC_OK || st == LLMC_ECORRUPT || st == LLMC_ENOMEM,
               "decode: status %d", (int)st);
    if (st != LLMC_OK) {
        FUZZ_CHECK(r.n == 0, "a failed decode left %zu records", r.n);
        return;
    }
    llmc_buf b = LLMC_BUF_INIT;
    FUZZ_CHECK(llmc__semrecs_encode(&r, &b) == LLMC_OK, "encode failed");
    FUZZ_CHECK(b.len == n && memcmp(b.data, d, n) == 0,
               "decoded records encode to other bytes (%zu vs %zu)", b.len, n);
    llmc_buf_free(&b);
    llmc__semrecs_trim(&r, 0, 3);
    FUZZ_CHECK(r.n <= 3, "trim kept %zu", r.n);
    llmc__semrecs_free(&r);
}

static void guards(const uint8_t *d, size_t n)
{
    const char *a = (const char *)d, *b = a + n / 2;
    size_t an = n / 2, bn = n - n / 2;
    int ab = llmc__sem_guards_agree(a, an, b, bn, NULL);
    int ba = llmc__sem_guards_agree(b, bn, a, an, NULL);
    FUZZ_CHECK(ab == ba, "guards not symmetric");
    const char *why = NULL;
    if (!llmc__sem_guards_agree(a, an, a, an, &why))
        FUZZ_CHECK(why && strstr(why, "too many"), "a text disagrees with itself: %s",
                   why ? why : "?");
}

static void embed(const uint8_t *d, size_t n)
{
    float v[32], u[32];
    llmc_status st = llmc_embed_local((const char *)d, n, v, 32);
    FUZZ_CHECK(st == LLMC_OK || st == LLMC_MISS, "embed: status %d", (int)st);
    double ss = 0;
    for (int i = 0; i < 32; i++) {
        FUZZ_CHECK(isfinite(v[i]), "embed: not finite");
        ss += (double)v[i] * v[i];
    }
    FUZZ_CHECK(st == LLMC_OK ? fabs(ss - 1.0) < 1e-4 : ss == 0, "embed: length %g", ss);
    char *up = malloc(n ? n : 1);
    if (!up)
        return;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)(d[i] >= 'a' && d[i] <= 'z' ? d[i] - 32 : d[i]);
    FUZZ_CHECK(llmc_embed_local(up, n, u, 32) == st, "embed: case changes the status");
    FUZZ_CHECK(memcmp(u, v, sizeof v) == 0, "embed: case changes the vector");
    free(up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: records(data + 1, size - 1); break;
    case 1: guards(data + 1, size - 1); break;
    default: embed(data + 1, size - 1); break;
    }
    return 0;
}
