/* The v1 key straight from request text.
 *
 * Parsing a 2 KB request with json-c costs more than everything else on a
 * cache hit together, and the only thing the hit needs from it is the
 * canonical form of the members. So the text is tokenized in one strict
 * RFC 8259 pass into a flat array (no allocation in steady state: the
 * array belongs to the thread), and canonicalised from the tokens the way
 * canon.c writes the value json-c would have built.
 *
 * json-c is lenient (comments, single quotes, NUL-truncated member names,
 * saturated big integers, depth 32), so the tokenizer accepts only what
 * both read the same way and declines the rest: the caller then takes the
 * json-c path, which is always right. \u escapes are decoded by one
 * routine (jsontext.c) on both paths; json-c's own surrogate decoding is
 * never used, and a lone surrogate is declined here and refused there. */
#include "fastjson.h"
#include "canon.h"
#include "jsontext.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* json-c's default tokener depth is 32 nested containers; stay below. */
#define FJ_MAX_DEPTH 30
#define FJ_MAX_NUM 63

typedef struct parser {
    llmc__fjdoc *d;
    const unsigned char *s;
    size_t len;
    size_t pos;
    int lazy; /* numbers: syntax only, values on demand (llmc__fj_scan) */
} parser;

static pthread_key_t doc_key[LLMC__FJ_DOC_SLOTS];
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

void llmc__fj_doc_free(llmc__fjdoc *d)
{
    if (!d)
        return;
    free(d->t);
    llmc_buf_free(&d->scratch);
    d->t = NULL;
    d->n = d->cap = 0;
}

static void doc_destroy(void *p)
{
    llmc__fj_doc_free(p);
    free(p);
}

static void doc_init(void)
{
    for (int i = 0; i < LLMC__FJ_DOC_SLOTS; i++)
        pthread_key_create(&doc_key[i], doc_destroy);
}

llmc__fjdoc *llmc__fj_thread_doc_slot(int slot)
{
    if (slot < 0 || slot >= LLMC__FJ_DOC_SLOTS)
        return NULL;
    pthread_once(&doc_once, doc_init);
    llmc__fjdoc *d = pthread_getspecific(doc_key[slot]);
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d)
            return NULL;
        llmc_buf init = LLMC_BUF_INIT;
        d->scratch = init;
        if (pthread_setspecific(doc_key[slot], d) != 0) {
            free(d);
            return NULL;
        }
    }
    return d;
}

static long new_tok(parser *p, int type)
{
    llmc__fjdoc *d = p->d;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 256;
        if (nc > UINT32_MAX)
            return -1;
        llmc__fjtok *t = realloc(d->t, nc * sizeof *t);
        if (!t)
            return -1;
        d->t = t;
        d->cap = nc;
    }
    llmc__fjtok *t = &d->t[d->n];
    t->start = (uint32_t)p->pos;
    t->len = t->next = t->n = 0;
    t->type = (uint8_t)type;
    t->esc = 0;
    t->num.i = 0;
    return (long)d->n++;
}

static inline void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        p->pos++;
    }
}

/* Length of the valid UTF-8 sequence at s (not ASCII), 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* A string starting at the opening quote. Names may not hold \u0000
 * (json-c keeps member names as C strings). */
static int parse_string(parser *p, int is_name)
{
    long ti = new_tok(p, LLMC__FJ_STR);
    if (ti < 0)
        return 0;
    const unsigned char *s = p->s;
    size_t i = ++p->pos, n = p->len;
    int esc = 0;
    for (;;) {
#if defined(__SSE2__)
        /* Sixteen bytes at a time to the next '"', '\\', control or
         * non-ASCII byte (signed compare: both are "less than 0x20"). */
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i hit = _mm_or_si128(
                _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
            int mask = _mm_movemask_epi8(hit);
            if (mask) {
                i += (size_t)__builtin_ctz((unsigned)mask);
                break;
            }
            i += 16;
        }
#endif
        while (i + 8 <= n) {
            /* skip eight plain ASCII bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
            uint64_t lt20 = (w - ones * 0x20) & ~w & high;
            uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t isq = (q - ones) & ~q & high, isbs = (bs - ones) & ~bs & high;
            if ((lt20 | isq | isbs | (w & high)) != 0)
                break;
            i += 8;
        }
        if (i >= n)
            return 0;
        unsigned char c = s[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return 0;
        if (c < 0x80 && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(s + i, n - i);
            if (!l)
                return 0;
            i += l;
            continue;
        }
        /* backslash */
        esc = 1;
        if (i + 1 >= n)
            return 0;
        c = s[i + 1];
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
            c == 'r' || c == 't') {
            i += 2;
            continue;
        }
        if (c != 'u')
            return 0;
        uint32_t u;
        size_t used;
        /* Lone surrogates are declined: the json-c path refuses them. */
        if (llmc__json_u_decode(s + i, n - i, &u, &used) != LLMC__U_OK)
            return 0;
        i += used;
        if (u == 0 && is_name)
            return 0;
    }
    llmc__fjtok *t = &p->d->t[ti];
    t->start = (uint32_t)p->pos;
    t->len = (uint32_t)(i - p->pos);
    t->esc = (uint8_t)esc;
    p->pos = i + 1;
    t->next = (uint32_t)p->d->n;
    return 1;
}

/* Decode the escapes of a validated string into out. */
static int decode_into(const unsigned char *s, size_t n, llmc_buf *out)
{
    if (llmc_buf_reserve(out, n + 1) != LLMC_OK)
        return 0;
    char *o = out->data + out->len;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        c = s[i + 1];
        i += 2;
        switch (c) {
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default: *o++ = (char)c; continue;
        }
        uint32_t u;
        size_t used;
        /* validated by parse_string; a UTF-8 encoding is never longer
         * than the escape it came from */
        if (llmc__json_u_decode(s + i - 2, n - (i - 2), &u, &used) != LLMC__U_OK)
            return 0;
        i += used - 2;
        o += llmc__utf8_put(u, (unsigned char *)o);
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return 1;
}

/* Parse a number the way json-c reads it: no '.', 'e' or 'E' means an
 * int64 (beyond: declined, json-c saturates or goes unsigned), anything
 * else strtod (out of range or not finite: declined). */
static int number_value(const char *s, size_t n, int is_int, int64_t *iv, double *dv)
{
    if (is_int) {
        int neg = s[0] == '-';
        uint64_t u = 0;
        for (size_t i = (size_t)neg; i < n; i++) {
            unsigned dgt = (unsigned)(s[i] - '0');
            if (u > (UINT64_MAX - dgt) / 10)
                return 0;
            u = u * 10 + dgt;
        }
        if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
            return 0;
        int64_t v = neg ? (int64_t)(0 - u) : (int64_t)u;
        *iv = v;
        *dv = (double)v;
        return 1;
    }
    if (n > FJ_MAX_NUM)
        return 0;
    char tmp[FJ_MAX_NUM + 1];
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (errno != 0 || end != tmp + n || !isfinite(d))
        return 0;
    *iv = 0;
    *dv = d;
    return 1;
}

static int parse_number(parser *p)
{
    long ti = new_tok(p, LLMC__FJ_NUM);
    if (ti < 0)
        return 0;
    const unsigned char *s = p->s;
    size_t i = p->pos, n = p->len;
    int is_int = 1;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n)
        return 0;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        is_int = 0;
        i++;
        size_t d0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d0)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d0)
            return 0;
    }
    int64_t iv = 0;
    double dv = 0;
    if (!p->lazy && !number_value((const char *)s + p->pos, i - p->pos, is_int, &iv, &dv))
        return 0;
    llmc__fjtok *t = &p->d->t[ti];
    t->len = (uint32_t)(i - p->pos);
    t->esc = (uint8_t)is_int;
    if (is_int)
        t->num.i = iv;
    else
        t->num.d = dv;
    t->next = (uint32_t)p->d->n;
    p->pos = i;
    return 1;
}

static int parse_value(parser *p, int depth);

static int parse_container(parser *p, int depth, int obj)
{
    if (depth > FJ_MAX_DEPTH)
        return 0;
    long ti = new_tok(p, obj ? LLMC__FJ_OBJ : LLMC__FJ_ARR);
    if (ti < 0)
        return 0;
    p->pos++;
    uint32_t count = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
        p->pos++;
    } else {
        for (;;) {
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"' || !parse_string(p, 1))
                    return 0;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':')
                    return 0;
                p->pos++;
                skip_ws(p);
            }
            if (!parse_value(p, depth))
                return 0;
            count++;
            skip_ws(p);
            if (p->pos >= p->len)
                return 0;
            unsigned char c = p->s[p->pos++];
            if (c == ',') {
                skip_ws(p);
                continue;
            }
            if (c == (obj ? '}' : ']'))
                break;
            return 0;
        }
    }
    llmc__fjtok *t = &p->d->t[ti];
    t->n = count;
    t->len = (uint32_t)(p->pos - t->start);
    t->next = (uint32_t)p->d->n;
    return 1;
}

static int literal(parser *p, const char *lit, size_t n, int type)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
        return 0;
    long ti = new_tok(p, type);
    if (ti < 0)
        return 0;
    p->d->t[ti].len = (uint32_t)n;
    p->d->t[ti].next = (uint32_t)p->d->n;
    p->pos += n;
    return 1;
}

static int parse_value(parser *p, int depth)
{
    if (p->pos >= p->len)
        return 0;
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth + 1, 1);
    case '[': return parse_container(p, depth + 1, 0);
    case '"': return parse_string(p, 0);
    case 't': return literal(p, "true", 4, LLMC__FJ_TRUE);
    case 'f': return literal(p, "false", 5, LLMC__FJ_FALSE);
    case 'n': return literal(p, "null", 4, LLMC__FJ_NULL);
    default: return parse_number(p);
    }
}

static int parse_doc(llmc__fjdoc *d, const char *text, size_t len, int lazy)
{
    if (!d || !text || len >= UINT32_MAX)
        return 0;
    d->text = text;
    d->len = len;
    d->n = 0;
    d->lazy = lazy;
    parser p = {d, (const unsigned char *)text, len, 0, lazy};
    skip_ws(&p);
    if (p.pos >= len || text[p.pos] != '{' || !parse_container(&p, 1, 1))
        return 0;
    skip_ws(&p);
    return p.pos == len;
}

int llmc__fj_parse(llmc__fjdoc *d, const char *text, size_t len)
{
    return parse_doc(d, text, len, 0);
}

int llmc__fj_scan(llmc__fjdoc *d, const char *text, size_t len)
{
    return parse_doc(d, text, len, 1);
}

size_t llmc__fj_end(const llmc__fjdoc *d, size_t tok)
{
    const llmc__fjtok *t = &d->t[tok];
    return t->start + t->len + (t->type == LLMC__FJ_STR); /* a string's closing quote */
}

/* Does string token t equal the NUL-terminated name? */
static int tok_streq(const llmc__fjdoc *d, const llmc__fjtok *t, const char *name, size_t nl)
{
    if (!t->esc)
        return t->len == nl && memcmp(d->text + t->start, name, nl) == 0;
    /* Escaped names are rare (a heap buffer is fine here). */
    llmc_buf hb = LLMC_BUF_INIT;
    int eq = decode_into((const unsigned char *)d->text + t->start, t->len, &hb) &&
             hb.len == nl && memcmp(hb.data, name, nl) == 0;
    llmc_buf_free(&hb);
    return eq;
}

long llmc__fj_member(const llmc__fjdoc *d, size_t obj, const char *name)
{
    if (!d || obj >= d->n || d->t[obj].type != LLMC__FJ_OBJ)
        return -1;
    size_t nl = strlen(name);
    long found = -1;
    size_t i = obj + 1;
    for (uint32_t k = 0; k < d->t[obj].n; k++) {
        size_t v = i + 1;
        if (tok_streq(d, &d->t[i], name, nl))
            found = (long)v;
        i = d->t[v].next;
    }
    return found;
}

int llmc__fj_string(const llmc__fjdoc *d, size_t tok, int no_nul, llmc_buf *out)
{
    if (!d || tok >= d->n || d->t[tok].type != LLMC__FJ_STR)
        return 0;
    const llmc__fjtok *t = &d->t[tok];
    size_t l0 = out->len;
    if (!t->esc) {
        if (llmc_buf_append(out, d->text + t->start, t->len) != LLMC_OK)
            return 0;
    } else if (!decode_into((const unsigned char *)d->text + t->start, t->len, out)) {
        return 0;
    }
    if (no_nul && memchr(out->data + l0, 0, out->len - l0))
        return 0;
    return 1;
}

int llmc__fj_number(const llmc__fjdoc *d, size_t tok, int *is_int, int64_t *i, double *dv)
{
    if (!d || tok >= d->n || d->t[tok].type != LLMC__FJ_NUM)
        return 0;
    const llmc__fjtok *t = &d->t[tok];
    if (d->lazy) {
        *is_int = t->esc;
        return number_value(d->text + t->start, t->len, t->esc, i, dv);
    }
    *is_int = t->esc;
    *i = t->esc ? t->num.i : 0;
    *dv = t->esc ? (double)t->num.i : t->num.d;
    return 1;
}

/* ---- canonical form ---- */

typedef struct fmember {
    const char *k; /* resolved name, valid while sorting */
    uint32_t off;  /* name bytes: in text, or in scratch when `sc` */
    uint32_t kl;
    uint32_t val;
    uint32_t idx;  /* document order, to keep the last of duplicates */
    int sc;
} fmember;

typedef struct ffilter {
    int scope_by_user;
    long input_item;
} ffilter;

static int fmember_cmp(const void *x, const void *y)
{
    const fmember *a = x, *b = y;
    int c = llmc__canon_keycmp(a->k, a->kl, b->k, b->kl);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static llmc_status canon_tok(llmc__fjdoc *d, size_t tok, llmc_buf *out);

/* Appends inlined here: the canonical form is built from many tiny ones. */
static inline llmc_status putn(llmc_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap && llmc_buf_reserve(b, n) != LLMC_OK)
        return LLMC_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return LLMC_OK;
}

static inline llmc_status put1(llmc_buf *b, char c)
{
    if (b->len + 2 > b->cap && llmc_buf_reserve(b, 1) != LLMC_OK)
        return LLMC_ENOMEM;
    b->data[b->len++] = c;
    b->data[b->len] = 0;
    return LLMC_OK;
}

/* A string without escapes is already in canonical form: the tokenizer
 * let through no '"', no '\\', no control byte and only valid UTF-8, and
 * llmc__canon_string escapes nothing else. */
static llmc_status put_plain(llmc_buf *out, const char *s, size_t n)
{
    if (out->len + n + 3 > out->cap && llmc_buf_reserve(out, n + 2) != LLMC_OK)
        return LLMC_ENOMEM;
    char *o = out->data + out->len;
    o[0] = '"';
    memcpy(o + 1, s, n);
    o[n + 1] = '"';
    out->len += n + 2;
    out->data[out->len] = 0;
    return LLMC_OK;
}

static llmc_status canon_obj(llmc__fjdoc *d, size_t tok, llmc_buf *out, const ffilter *f)
{
    const llmc__fjtok *ot = &d->t[tok];
    size_t n = ot->n;
    fmember stackm[32];
    fmember *m = n <= 32 ? stackm : malloc(n * sizeof *m);
    if (!m)
        return LLMC_ENOMEM;
    size_t sc0 = d->scratch.len;
    size_t cnt = 0, i = tok + 1;
    llmc_status st = LLMC_OK;
    for (size_t k = 0; k < n; k++) {
        const llmc__fjtok *nt = &d->t[i];
        size_t v = i + 1;
        i = d->t[v].next;
        fmember *mm = &m[cnt];
        if (nt->esc) {
            size_t before = d->scratch.len;
            if (!decode_into((const unsigned char *)d->text + nt->start, nt->len,
                             &d->scratch)) {
                st = LLMC_ENOMEM;
                break;
            }
            mm->sc = 1;
            mm->off = (uint32_t)before;
            mm->kl = (uint32_t)(d->scratch.len - before);
        } else {
            mm->sc = 0;
            mm->off = nt->start;
            mm->kl = nt->len;
        }
        mm->val = (uint32_t)v;
        mm->idx = (uint32_t)k;
        cnt++;
    }
    if (st == LLMC_OK) {
        for (size_t k = 0; k < cnt; k++)
            m[k].k = m[k].sc ? d->scratch.data + m[k].off : d->text + m[k].off;
        if (cnt > 24) {
            qsort(m, cnt, sizeof *m, fmember_cmp);
        } else {
            for (size_t a = 1; a < cnt; a++) {
                fmember t = m[a];
                size_t j = a;
                while (j > 0 && fmember_cmp(&m[j - 1], &t) > 0) {
                    m[j] = m[j - 1];
                    j--;
                }
                m[j] = t;
            }
        }
        /* Duplicates are adjacent, in document order: json-c keeps the
         * last; the filter then applies to what is left. */
        size_t w = 0;
        for (size_t k = 0; k < cnt; k++) {
            if (k + 1 < cnt && m[k].kl == m[k + 1].kl &&
                memcmp(m[k].k, m[k + 1].k, m[k].kl) == 0)
                continue;
            if (f) {
                if (llmc__key_param_excluded_n(m[k].k, m[k].kl) &&
                    !(f->scope_by_user && m[k].kl == 4 && memcmp(m[k].k, "user", 4) == 0))
                    continue;
                if (f->input_item >= 0 && m[k].kl == 5 && memcmp(m[k].k, "input", 5) == 0)
                    m[k].val = (uint32_t)f->input_item;
            }
            m[w++] = m[k];
        }
        cnt = w;
        st = put1(out, '{');
        for (size_t k = 0; k < cnt && st == LLMC_OK; k++) {
            if (k)
                st = put1(out, ',');
            /* scratch may have moved while canonicalising a sibling */
            if (st == LLMC_OK)
                st = m[k].sc ? llmc__canon_string(out, d->scratch.data + m[k].off, m[k].kl)
                             : put_plain(out, d->text + m[k].off, m[k].kl);
            if (st == LLMC_OK)
                st = put1(out, ':');
            if (st == LLMC_OK)
                st = canon_tok(d, m[k].val, out);
        }
        if (st == LLMC_OK)
            st = put1(out, '}');
    }
    d->scratch.len = sc0;
    if (d->scratch.data)
        d->scratch.data[sc0] = 0;
    if (m != stackm)
        free(m);
    return st;
}

static llmc_status canon_tok(llmc__fjdoc *d, size_t tok, llmc_buf *out)
{
    const llmc__fjtok *t = &d->t[tok];
    switch (t->type) {
    case LLMC__FJ_NULL: return putn(out, "null", 4);
    case LLMC__FJ_TRUE: return putn(out, "true", 4);
    case LLMC__FJ_FALSE: return putn(out, "false", 5);
    case LLMC__FJ_NUM:
        return t->esc ? llmc__canon_int64(out, t->num.i) : llmc__canon_double(out, t->num.d);
    case LLMC__FJ_STR: {
        if (!t->esc)
            return put_plain(out, d->text + t->start, t->len);
        size_t sc0 = d->scratch.len;
        if (!decode_into((const unsigned char *)d->text + t->start, t->len, &d->scratch))
            return LLMC_ENOMEM;
        llmc_status st =
            llmc__canon_string(out, d->scratch.data + sc0, d->scratch.len - sc0);
        d->scratch.len = sc0;
        d->scratch.data[sc0] = 0;
        return st;
    }
    case LLMC__FJ_ARR: {
        llmc_status st = put1(out, '[');
        size_t i = tok + 1;
        for (uint32_t k = 0; k < t->n && st == LLMC_OK; k++) {
            if (k)
                st = put1(out, ',');
            if (st == LLMC_OK)
                st = canon_tok(d, i, out);
            i = d->t[i].next;
        }
        return st == LLMC_OK ? put1(out, ']') : st;
    }
    case LLMC__FJ_OBJ:
        return canon_obj(d, tok, out, NULL);
    }
    return LLMC_ENOTSUP;
}

llmc_status llmc__fj_canon(llmc__fjdoc *d, size_t tok, llmc_buf *out)
{
    if (!d || tok >= d->n || !out)
        return LLMC_ENOTSUP;
    return canon_tok(d, tok, out);
}

typedef struct fj_params {
    llmc__fjdoc *d;
    ffilter f;
} fj_params;

static llmc_status fj_params_fn(void *ud, llmc_buf *m)
{
    fj_params *fp = ud;
    return canon_obj(fp->d, 0, m, &fp->f);
}

llmc_status llmc__fj_key_v1(llmc__fjdoc *d, const llmc__fj_keyin *in, llmc_buf *key,
                            llmc_buf *material)
{
    if (!d || !in || d->n == 0 || d->t[0].type != LLMC__FJ_OBJ || !in->provider ||
        !*in->provider || !in->model || !*in->model || !key)
        return LLMC_ENOTSUP;
    if (in->call != LLMC_CALL_CHAT && in->call != LLMC_CALL_TEXT &&
        in->call != LLMC_CALL_EMBEDDING)
        return LLMC_ENOTSUP;
    if ((in->call == LLMC_CALL_EMBEDDING) != (in->input_item >= 0) ||
        in->input_item >= (long)d->n)
        return LLMC_ENOTSUP;
    fj_params fp = {d, {in->scope_by_user, in->input_item}};
    size_t ml = material ? material->len : 0;
    llmc_status st = llmc__v1_key(in->call, in->provider, in->model, in->api_base,
                                  in->namespace_, fj_params_fn, &fp, key, material, NULL);
    if (st != LLMC_OK && material) {
        material->len = ml;
        if (material->data)
            material->data[ml] = 0;
    }
    if (st == LLMC_EINVAL)
        st = LLMC_ENOTSUP;
    return st;
}
