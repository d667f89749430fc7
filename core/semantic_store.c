/* A scope's semantic records, persisted in the cache's own backend next
 * to the entries they point at, so that a restart or another replica
 * finds them: one value per scope under "<scope key>:semantic", holding
 * every record (entry key, prompt, expiry, vector). Little-endian:
 *
 *   "LLMS" u8 version(1) u8 0 u16 0 u32 dim u32 count
 *   count x { i64 expires_ms, u32 key_len, key, u32 prompt_len, prompt,
 *             dim x f32 }
 *
 * The value expires with the last of its records; each record expires
 * with its entry (a load drops expired ones). Writers read, merge and
 * write the whole value: two writers at the same instant can lose one
 * record, which costs a semantic miss, never a wrong answer (the entry
 * a record names is read and verified like any entry before it is
 * served). */
#include "hash.h"
#include "internal.h"
#include "semantic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "LLMS"
#define VERSION 1
#define MAX_KEY (64 * 1024)
#define MAX_PROMPT (1024 * 1024)

void llmc__semrecs_free(llmc__semrecs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].prompt);
        free(r->v[i].vec);
    }
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}

llmc_status llmc__semrecs_add(llmc__semrecs *r, const char *key, const char *prompt,
                              size_t plen, int64_t expires_ms, const float *vec)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        llmc__semrec *nv = realloc(r->v, cap * sizeof *nv);
        if (!nv)
            return LLMC_ENOMEM;
        r->v = nv;
        r->cap = cap;
    }
    llmc__semrec *x = &r->v[r->n];
    x->key = llmc__strdup(key);
    x->prompt = malloc(plen + 1);
    x->vec = malloc(r->dim * sizeof *x->vec);
    if (!x->key || !x->prompt || !x->vec) {
        free(x->key);
        free(x->prompt);
        free(x->vec);
        return LLMC_ENOMEM;
    }
    memcpy(x->prompt, prompt, plen);
    x->prompt[plen] = '\0';
    x->prompt_len = plen;
    x->expires_ms = expires_ms;
    memcpy(x->vec, vec, r->dim * sizeof *x->vec);
    r->n++;
    return LLMC_OK;
}

static void drop(llmc__semrec *x)
{
    free(x->key);
    free(x->prompt);
    free(x->vec);
}

/* A newer record of the same key replaces the older one: walk from the
 * newest, remembering keys in an open-addressing set of record indexes. */
static void dedupe(llmc__semrecs *r)
{
    if (r->n < 2)
        return;
    size_t nslots = 16;
    while (nslots < r->n * 2)
        nslots *= 2;
    size_t *slots = calloc(nslots, sizeof *slots); /* index + 1, 0 = empty */
    unsigned char *dead = calloc(r->n, 1);
    if (!slots || !dead) {
        free(slots);
        free(dead);
        return; /* duplicates stay: harmless, the newest still wins a tie */
    }
    for (size_t i = r->n; i-- > 0;) {
        const char *k = r->v[i].key;
        size_t h = (size_t)llmc__hash64(k, strlen(k)) & (nslots - 1);
        while (slots[h] && strcmp(r->v[slots[h] - 1].key, k) != 0)
            h = (h + 1) & (nslots - 1);
        if (slots[h])
            dead[i] = 1;
        else
            slots[h] = i + 1;
    }
    size_t j = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (dead[i])
            drop(&r->v[i]);
        else
            r->v[j++] = r->v[i];
    }
    r->n = j;
    free(slots);
    free(dead);
}

void llmc__semrecs_trim(llmc__semrecs *r, int64_t now_ms, size_t max)
{
    size_t j = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].expires_ms && r->v[i].expires_ms <= now_ms)
            drop(&r->v[i]);
        else
            r->v[j++] = r->v[i];
    }
    r->n = j;
    dedupe(r);
    if (r->n > max) {
        size_t cut = r->n - max; /* oldest first */
        for (size_t i = 0; i < cut; i++)
            drop(&r->v[i]);
        memmove(r->v, r->v + cut, max * sizeof *r->v);
        r->n = max;
    }
}

static void put_u32(llmc_buf *b, uint32_t v, llmc_status *st)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    if (*st == LLMC_OK)
        *st = llmc_buf_append(b, x, 4);
}

static void put_u64(llmc_buf *b, uint64_t v, llmc_status *st)
{
    put_u32(b, (uint32_t)v, st);
    put_u32(b, (uint32_t)(v >> 32), st);
}

llmc_status llmc__semrecs_encode(const llmc__semrecs *r, llmc_buf *out)
{
    llmc_status st = llmc_buf_append(out, MAGIC, 4);
    unsigned char hdr[4] = {VERSION, 0, 0, 0};
    if (st == LLMC_OK)
        st = llmc_buf_append(out, hdr, 4);
    put_u32(out, (uint32_t)r->dim, &st);
    put_u32(out, (uint32_t)r->n, &st);
    for (size_t i = 0; i < r->n && st == LLMC_OK; i++) {
        const llmc__semrec *x = &r->v[i];
        size_t kl = strlen(x->key);
        put_u64(out, (uint64_t)x->expires_ms, &st);
        put_u32(out, (uint32_t)kl, &st);
        if (st == LLMC_OK)
            st = llmc_buf_append(out, x->key, kl);
        put_u32(out, (uint32_t)x->prompt_len, &st);
        if (st == LLMC_OK)
            st = llmc_buf_append(out, x->prompt, x->prompt_len);
        for (size_t d = 0; d < r->dim && st == LLMC_OK; d++) {
            uint32_t u;
            memcpy(&u, &x->vec[d], 4);
            put_u32(out, u, &st);
        }
    }
    return st;
}

typedef struct rd {
    const unsigned char *p;
    size_t n, at;
    int bad;
} rd;

static uint32_t get_u32(rd *r)
{
    if (r->bad || r->n - r->at < 4) {
        r->bad = 1;
        return 0;
    }
    const unsigned char *x = r->p + r->at;
    r->at += 4;
    return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

static const unsigned char *get_bytes(rd *r, size_t len)
{
    if (r->bad || r->n - r->at < len) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *x = r->p + r->at;
    r->at += len;
    return x;
}

llmc_status llmc__semrecs_decode(const char *p, size_t n, size_t dim, llmc__semrecs *out)
{
    out->dim = dim;
    rd r = {(const unsigned char *)p, n, 0, 0};
    const unsigned char *m = get_bytes(&r, 8);
    /* The reserved bytes are zero: one byte string per set of records. */
    if (!m || memcmp(m, MAGIC, 4) != 0 || m[4] != VERSION || m[5] || m[6] || m[7])
        return LLMC_ECORRUPT;
    uint32_t d = get_u32(&r), count = get_u32(&r);
    if (r.bad || d != dim || count > 10000000)
        return LLMC_ECORRUPT;
    float *vec = malloc(dim * sizeof *vec);
    if (!vec)
        return LLMC_ENOMEM;
    llmc_status st = LLMC_OK;
    for (uint32_t i = 0; i < count && st == LLMC_OK; i++) {
        uint64_t lo = get_u32(&r), hi = get_u32(&r);
        int64_t exp = (int64_t)(lo | hi << 32);
        uint32_t kl = get_u32(&r);
        const unsigned char *k = kl <= MAX_KEY ? get_bytes(&r, kl) : NULL;
        uint32_t pl = get_u32(&r);
        const unsigned char *pr = pl <= MAX_PROMPT ? get_bytes(&r, pl) : NULL;
        if (!k || !pr || kl == 0 || memchr(k, 0, kl) || exp < 0) {
            st = LLMC_ECORRUPT;
            break;
        }
        for (size_t j = 0; j < dim; j++) {
            uint32_t u = get_u32(&r);
            memcpy(&vec[j], &u, 4);
            if (!isfinite(vec[j]))
                r.bad = 1;
        }
        if (r.bad) {
            st = LLMC_ECORRUPT;
            break;
        }
        char *key = malloc(kl + 1);
        if (!key) {
            st = LLMC_ENOMEM;
            break;
        }
        memcpy(key, k, kl);
        key[kl] = '\0';
        st = llmc__semrecs_add(out, key, (const char *)pr, pl, exp, vec);
        free(key);
    }
    if (st == LLMC_OK && r.at != r.n)
        st = LLMC_ECORRUPT;
    free(vec);
    if (st != LLMC_OK)
        llmc__semrecs_free(out);
    return st;
}

llmc_status llmc__semrecs_load(llmc_cache *c, const char *skey, size_t dim,
                               llmc__semrecs *out)
{
    out->dim = dim;
    llmc_buf v = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, skey, strlen(skey), &v);
    if (st == LLMC_OK) {
        st = llmc__semrecs_decode(v.data, v.len, dim, out);
        if (st == LLMC_ECORRUPT) {
            /* Foreign or damaged (or written for another dimension):
             * start the scope afresh; the next store overwrites it. */
            llmc__log("warn", "semantic records under a scope key were unreadable; the scope "
                              "starts empty");
            st = LLMC_MISS;
        }
    }
    llmc_buf_free(&v);
    out->dim = dim;
    return st;
}

llmc_status llmc__semrecs_save(llmc_cache *c, const char *skey, const llmc__semrecs *r,
                               int64_t now_ms)
{
    /* The value lives as long as its longest-lived record. */
    int64_t ttl_ms = 1;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].expires_ms == 0) {
            ttl_ms = 0;
            break;
        }
        if (r->v[i].expires_ms - now_ms > ttl_ms)
            ttl_ms = r->v[i].expires_ms - now_ms;
    }
    llmc_buf b = LLMC_BUF_INIT;
    llmc_status st = llmc__semrecs_encode(r, &b);
    if (st == LLMC_OK)
        st = llmc_cache_set(c, skey, strlen(skey), b.data, b.len, ttl_ms);
    llmc_buf_free(&b);
    return st;
}
