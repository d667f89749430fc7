/* The built-in vector indexes: exact ("flat") search of every vector of a
 * scope, float32 ("flat") or quantised to int8 ("flat-int8": each vector
 * scaled so its largest component is 127, its scale kept beside it; a
 * quarter of the bytes to read per search, a similarity within about
 * 1e-2 of the float one). Rows live in one contiguous array, so a search
 * is one pass of SIMD dot products (core/vecdot.c) over memory. */
#include "builtins.h"
#include "vecdot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct flat {
    size_t dim, n, cap;
    int int8;
    uint64_t *ids;
    float *f;      /* n * dim (float32) */
    int8_t *q;     /* n * dim (int8) */
    float *scale;  /* n (int8): value = q * scale */
    /* id -> row + 1 (0 = empty), linear probing, 2 * cap slots or more */
    uint32_t *slots;
    size_t nslots;
} flat;

static size_t id_hash(uint64_t id, size_t mask)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & mask;
}

static size_t slot_of(const flat *x, uint64_t id)
{
    size_t mask = x->nslots - 1, h = id_hash(id, mask);
    while (x->slots[h] && x->ids[x->slots[h] - 1] != id)
        h = (h + 1) & mask;
    return h;
}

static int rehash(flat *x, size_t nslots)
{
    uint32_t *s = calloc(nslots, sizeof *s);
    if (!s)
        return -1;
    free(x->slots);
    x->slots = s;
    x->nslots = nslots;
    for (size_t r = 0; r < x->n; r++)
        x->slots[slot_of(x, x->ids[r])] = (uint32_t)(r + 1);
    return 0;
}

/* Backward-shift deletion keeps every probe chain unbroken. */
static void slot_delete(flat *x, size_t h)
{
    size_t mask = x->nslots - 1;
    x->slots[h] = 0;
    for (size_t j = (h + 1) & mask; x->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(x->ids[x->slots[j] - 1], mask);
        /* Move j back into the hole when its home is not between the hole
         * and j (cyclically). */
        if (((j - home) & mask) >= ((j - h) & mask)) {
            x->slots[h] = x->slots[j];
            x->slots[j] = 0;
            h = j;
        }
    }
}

static llmc_status flat_open_kind(const llmc_index_config *cfg, void **ctx, int int8,
                                  llmc_err *err)
{
    if (!cfg || !ctx || cfg->dim == 0 || cfg->dim > 65536)
        return llmc_err_set(err, LLMC_EINVAL, 0, "flat index: dimensions must be 1..65536");
    flat *x = calloc(1, sizeof *x);
    if (!x)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    x->dim = cfg->dim;
    x->int8 = int8;
    *ctx = x;
    return LLMC_OK;
}

static llmc_status flat_open_f32(const llmc_index_config *cfg, void **ctx, llmc_err *err)
{
    return flat_open_kind(cfg, ctx, 0, err);
}

static llmc_status flat_open_i8(const llmc_index_config *cfg, void **ctx, llmc_err *err)
{
    return flat_open_kind(cfg, ctx, 1, err);
}

static void flat_close(void *ctx)
{
    flat *x = ctx;
    if (!x)
        return;
    free(x->ids);
    free(x->f);
    free(x->q);
    free(x->scale);
    free(x->slots);
    free(x);
}

static int grow(flat *x)
{
    size_t cap = x->cap ? x->cap * 2 : 64;
    if (cap > UINT32_MAX / 4 || cap > SIZE_MAX / (x->dim * sizeof(float)))
        return -1;
    uint64_t *ids = realloc(x->ids, cap * sizeof *ids);
    if (!ids)
        return -1;
    x->ids = ids;
    if (x->int8) {
        int8_t *q = realloc(x->q, cap * x->dim);
        if (!q)
            return -1;
        x->q = q;
        float *s = realloc(x->scale, cap * sizeof *s);
        if (!s)
            return -1;
        x->scale = s;
    } else {
        float *f = realloc(x->f, cap * x->dim * sizeof *f);
        if (!f)
            return -1;
        x->f = f;
    }
    x->cap = cap;
    return rehash(x, cap * 2);
}

/* Symmetric quantisation: the largest magnitude maps to 127. */
static float quantise(const float *v, size_t dim, int8_t *out)
{
    float m = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float a = fabsf(v[i]);
        if (a > m)
            m = a;
    }
    if (m == 0.0f) {
        memset(out, 0, dim);
        return 0.0f;
    }
    float s = 127.0f / m;
    for (size_t i = 0; i < dim; i++) {
        long r = lrintf(v[i] * s);
        out[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return m / 127.0f;
}

static llmc_status flat_add(void *ctx, uint64_t id, const float *vec, llmc_err *err)
{
    flat *x = ctx;
    if (x->n == x->cap && grow(x) != 0)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    size_t h = slot_of(x, id), at;
    if (x->slots[h]) {
        at = x->slots[h] - 1;
    } else {
        at = x->n++;
        x->ids[at] = id;
        x->slots[h] = (uint32_t)(at + 1);
    }
    if (x->int8)
        x->scale[at] = quantise(vec, x->dim, x->q + at * x->dim);
    else
        memcpy(x->f + at * x->dim, vec, x->dim * sizeof *vec);
    return LLMC_OK;
}

static llmc_status flat_remove(void *ctx, uint64_t id)
{
    flat *x = ctx;
    if (x->n == 0)
        return LLMC_MISS;
    size_t h = slot_of(x, id);
    if (!x->slots[h])
        return LLMC_MISS;
    size_t at = x->slots[h] - 1;
    slot_delete(x, h);
    size_t last = --x->n;
    if (at != last) {
        /* The last row moves into the hole; its slot follows it. */
        x->slots[slot_of(x, x->ids[last])] = (uint32_t)(at + 1);
        x->ids[at] = x->ids[last];
        if (x->int8) {
            memcpy(x->q + at * x->dim, x->q + last * x->dim, x->dim);
            x->scale[at] = x->scale[last];
        } else {
            memcpy(x->f + at * x->dim, x->f + last * x->dim, x->dim * sizeof(float));
        }
    }
    return LLMC_OK;
}

/* Keep the k best (score, id) pairs, best first; k is small. */
static void consider(uint64_t *ids, float *scores, size_t *have, size_t k, uint64_t id,
                     float s)
{
    size_t n = *have;
    if (n == k && s <= scores[n - 1])
        return;
    size_t i = n < k ? n : k - 1;
    while (i > 0 && scores[i - 1] < s) {
        scores[i] = scores[i - 1];
        ids[i] = ids[i - 1];
        i--;
    }
    scores[i] = s;
    ids[i] = id;
    if (n < k)
        *have = n + 1;
}

#define BLOCK 256

static size_t flat_search(void *ctx, const float *query, size_t k, uint64_t *ids,
                          float *scores)
{
    flat *x = ctx;
    if (k == 0 || x->n == 0)
        return 0;
    size_t have = 0;
    if (!x->int8) {
        float buf[BLOCK];
        for (size_t r = 0; r < x->n; r += BLOCK) {
            size_t m = x->n - r < BLOCK ? x->n - r : BLOCK;
            llmc__dot_f32_rows(x->f + r * x->dim, m, x->dim, query, buf);
            for (size_t j = 0; j < m; j++)
                consider(ids, scores, &have, k, x->ids[r + j], buf[j]);
        }
        return have;
    }
    int8_t qstack[2048];
    int8_t *q = x->dim <= sizeof qstack ? qstack : malloc(x->dim);
    if (!q)
        return 0;
    float qs = quantise(query, x->dim, q);
    int32_t buf[BLOCK];
    for (size_t r = 0; r < x->n; r += BLOCK) {
        size_t m = x->n - r < BLOCK ? x->n - r : BLOCK;
        llmc__dot_i8_rows(x->q + r * x->dim, m, x->dim, q, buf);
        for (size_t j = 0; j < m; j++)
            consider(ids, scores, &have, k, x->ids[r + j],
                     (float)buf[j] * x->scale[r + j] * qs);
    }
    if (q != qstack)
        free(q);
    return have;
}

static size_t flat_count(void *ctx)
{
    return ((flat *)ctx)->n;
}

const llmc_index_ops llmc__index_flat = {
    LLMC_COMPONENT_INIT(llmc_index_ops, "flat",
                        "exact search over float32 vectors (SIMD dot products)"),
    flat_open_f32, flat_close, flat_add, flat_remove, flat_search, flat_count,
};

const llmc_index_ops llmc__index_flat_int8 = {
    LLMC_COMPONENT_INIT(llmc_index_ops, "flat-int8",
                        "exact search over vectors quantised to int8 (SIMD dot products)"),
    flat_open_i8, flat_close, flat_add, flat_remove, flat_search, flat_count,
};
