/* Example plugin: a vector index and a verifier for semantic lookups
 * (docs/semantic.md).
 *
 *   index "scan"            the smallest complete index: every vector in
 *                           an array, searched with a plain loop (exact,
 *                           float32). An HNSW graph or a client of a
 *                           vector database fills the same six functions.
 *   verifier "length-ratio" refuses a candidate whose prompt is more than
 *                           twice as long as the request's, or less than
 *                           half (a short question rarely means the same
 *                           as a long one, however close the vectors).
 *
 *   cache URL ...?semantic=1&semantic_index=scan&semantic_verifier=length-ratio
 *
 * Built only against the installed public headers:
 *   cc -shared -fPIC -o llmc-scan.so scan_index.c \
 *      $(pkg-config --cflags --libs llmcache)
 */
#include <llmcache/llmcache.h>

#include <stdlib.h>
#include <string.h>

typedef struct scan {
    size_t dim, n, cap;
    uint64_t *ids;
    float *v;
} scan;

static llmc_status scan_open(const llmc_index_config *cfg, void **ctx, llmc_err *err)
{
    if (!cfg || cfg->dim == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "scan index: no dimensions");
    scan *s = calloc(1, sizeof *s);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    s->dim = cfg->dim;
    *ctx = s;
    return LLMC_OK;
}

static void scan_close(void *ctx)
{
    scan *s = ctx;
    if (!s)
        return;
    free(s->ids);
    free(s->v);
    free(s);
}

static size_t find(const scan *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->ids[i] == id)
            return i;
    return (size_t)-1;
}

static llmc_status scan_add(void *ctx, uint64_t id, const float *vec, llmc_err *err)
{
    scan *s = ctx;
    size_t at = find(s, id);
    if (at == (size_t)-1) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 16;
            uint64_t *ids = realloc(s->ids, cap * sizeof *ids);
            if (!ids)
                return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            s->ids = ids;
            float *v = realloc(s->v, cap * s->dim * sizeof *v);
            if (!v)
                return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            s->v = v;
            s->cap = cap;
        }
        at = s->n++;
    }
    s->ids[at] = id;
    memcpy(s->v + at * s->dim, vec, s->dim * sizeof *vec);
    return LLMC_OK;
}

static llmc_status scan_remove(void *ctx, uint64_t id)
{
    scan *s = ctx;
    size_t at = find(s, id);
    if (at == (size_t)-1)
        return LLMC_MISS;
    s->n--;
    s->ids[at] = s->ids[s->n];
    memmove(s->v + at * s->dim, s->v + s->n * s->dim, s->dim * sizeof(float));
    return LLMC_OK;
}

static size_t scan_search(void *ctx, const float *q, size_t k, uint64_t *ids, float *scores)
{
    scan *s = ctx;
    size_t have = 0;
    for (size_t r = 0; r < s->n; r++) {
        float d = 0;
        for (size_t j = 0; j < s->dim; j++)
            d += s->v[r * s->dim + j] * q[j];
        /* insert into the best-first list of at most k */
        size_t i = have < k ? have : k;
        if (i == k && (k == 0 || d <= scores[k - 1]))
            continue;
        if (i == k)
            i = k - 1;
        while (i > 0 && scores[i - 1] < d) {
            scores[i] = scores[i - 1];
            ids[i] = ids[i - 1];
            i--;
        }
        scores[i] = d;
        ids[i] = s->ids[r];
        if (have < k)
            have++;
    }
    return have;
}

static size_t scan_count(void *ctx)
{
    return ((scan *)ctx)->n;
}

static const llmc_index_ops scan_index = {
    LLMC_COMPONENT_INIT(llmc_index_ops, "scan", "exact search with a plain loop (example)"),
    scan_open, scan_close, scan_add, scan_remove, scan_search, scan_count,
};

static int length_ratio(const llmc_semantic_candidate *c)
{
    return c->cached_prompt_len <= 2 * c->prompt_len && c->prompt_len <= 2 * c->cached_prompt_len;
}

static const llmc_verifier_ops length_verifier = {
    LLMC_COMPONENT_INIT(llmc_verifier_ops, "length-ratio",
                        "refuses prompts more than twice or less than half as long (example)"),
    length_ratio,
};

static const llmc_index_ops *const indexes[] = {&scan_index, NULL};
static const llmc_verifier_ops *const verifiers[] = {&length_verifier, NULL};

LLMC_PLUGIN_EX("scan", "1.0.0", NULL, NULL, NULL, NULL, indexes, verifiers)
