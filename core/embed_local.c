/* The built-in offline embedder: feature hashing of the words and of the
 * character trigrams of each word, of the text lower-cased with
 * punctuation and white space reduced to word boundaries. A bag of
 * features has no order, so word order does not change the vector;
 * neither do case, spacing or punctuation. Trigrams make a typo or an
 * inflection ("refund"/"refunds") close rather than unrelated. It knows
 * no synonyms: it finds near-duplicates, not paraphrases (an embeddings
 * model does that, semantic_model=provider/model). */
#include "internal.h"

#include <math.h>
#include <string.h>

#include "llmcache/semantic.h"

#define WORD_WEIGHT 1.0f
#define TRIGRAM_WEIGHT 0.35f
#define MAX_WORD 64

/* FNV-1a, 64 bits: fixed, so vectors are the same on every platform and
 * in every version that keeps these constants (they are persisted). */
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void feature(float *out, size_t dim, uint64_t h, float w)
{
    /* Mix once more so that the low bits (the bucket) and the top bit
     * (the sign) are independent. */
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    out[h % dim] += (h >> 63) ? -w : w;
}

static void add_word(float *out, size_t dim, const unsigned char *w, size_t n)
{
    feature(out, dim, fnv(0xcbf29ce484222325ULL ^ 'w', w, n), WORD_WEIGHT);
    /* "^word$" trigrams */
    unsigned char pad[MAX_WORD + 2];
    pad[0] = '^';
    memcpy(pad + 1, w, n);
    pad[n + 1] = '$';
    for (size_t i = 0; i + 3 <= n + 2; i++)
        feature(out, dim, fnv(0xcbf29ce484222325ULL ^ 't', pad + i, 3), TRIGRAM_WEIGHT);
}

llmc_status llmc_embed_local(const char *text, size_t len, float *out, size_t dim)
{
    if (!out || (!text && len) || dim < 8 || dim > 65536)
        return LLMC_EINVAL;
    memset(out, 0, dim * sizeof *out);
    unsigned char w[MAX_WORD];
    size_t wn = 0, words = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = i < len ? (unsigned char)text[i] : ' ';
        if (ch == '\'' && wn)
            continue; /* "don't" -> "dont": one word, as the reader sees it */
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch >= 0x80) {
            if (wn < MAX_WORD)
                w[wn++] = ch;
        } else if (ch >= 'A' && ch <= 'Z') {
            if (wn < MAX_WORD)
                w[wn++] = (unsigned char)(ch - 'A' + 'a');
        } else if (wn) {
            add_word(out, dim, w, wn);
            words++;
            wn = 0;
        }
    }
    if (!words)
        return LLMC_MISS;
    double ss = 0;
    for (size_t i = 0; i < dim; i++)
        ss += (double)out[i] * out[i];
    if (ss <= 0)
        return LLMC_MISS;
    float inv = (float)(1.0 / sqrt(ss));
    for (size_t i = 0; i < dim; i++)
        out[i] *= inv;
    return LLMC_OK;
}
