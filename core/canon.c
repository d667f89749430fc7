/* RFC 8785 (JSON Canonicalization Scheme) serialisation of json-c values.
 *
 * Object members are sorted by their names' UTF-16 code units, strings are
 * minimally escaped, numbers are written the way ECMAScript's
 * Number.prototype.toString writes the IEEE double (so 1.0, 1 and 1e0 are
 * all "1"). This is on the hot path of every cached call, so strings are
 * scanned eight bytes at a time and small objects are sorted on the stack. */
#include "canon.h"

#include <json-c/json.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline llmc_status put(llmc_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap && llmc_buf_reserve(b, n) != LLMC_OK)
        return LLMC_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return LLMC_OK;
}

static inline llmc_status putc1(llmc_buf *b, char ch)
{
    if (b->len + 2 > b->cap && llmc_buf_reserve(b, 1) != LLMC_OK)
        return LLMC_ENOMEM;
    b->data[b->len++] = ch;
    b->data[b->len] = 0;
    return LLMC_OK;
}

/* Decimal form of v into buf (>= 21 bytes); returns the length. */
static int fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = tmp[--n];
    return o;
}

/* Does the 8-byte word hold a byte < 0x20, '"' or '\\'? (SWAR test) */
static inline int needs_escape8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t lt20 = (w - ones * 0x20) & ~w & high;
    uint64_t q = w ^ (ones * '"');
    uint64_t isq = (q - ones) & ~q & high;
    uint64_t bs = w ^ (ones * '\\');
    uint64_t isbs = (bs - ones) & ~bs & high;
    return (lt20 | isq | isbs) != 0;
}

llmc_status llmc__canon_string(llmc_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (llmc_buf_reserve(b, n + 2) != LLMC_OK)
        return LLMC_ENOMEM;
    b->data[b->len++] = '"';
    size_t i = 0, run = 0;
    while (i < n) {
#if defined(__SSE2__)
        if (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
            __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
            __m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
            if (_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, bs))) == 0) {
                i += 16;
                continue;
            }
        }
#endif
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!needs_escape8(w)) {
                i += 8;
                continue;
            }
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        if (put(b, s + run, i - run) != LLMC_OK)
            return LLMC_ENOMEM;
        char esc[6];
        size_t el = 2;
        esc[0] = '\\';
        switch (ch) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            el = 6;
        }
        if (put(b, esc, el) != LLMC_OK)
            return LLMC_ENOMEM;
        i++;
        run = i;
    }
    if (put(b, s + run, n - run) != LLMC_OK)
        return LLMC_ENOMEM;
    return putc1(b, '"');
}

/* ECMAScript Number::toString for a finite double. */
/* The digits of ECMAScript's Number::toString for ad > 0 (finite): the
 * fewest significant digits k of any decimal that reads back as ad, and
 * among those the one closest to ad (ties: even). Returns k; digits[0..k)
 * without trailing zeros, *e10 the decimal exponent of digits[0].
 *
 * For each k, the k-digit decimals on either side of ad are the only
 * candidates (the set that reads back as ad is an interval around ad).
 * printf's %.*e gives the nearer one, correctly rounded; where that does
 * not read back, the one on the other side still may: just below a power
 * of two the interval is half as wide below ad as above it, so the nearer
 * neighbour can fall outside while the farther is inside (2^-24 is
 * 5.960464477539063e-8, not 5.9604644775390625e-8). */
static int shortest_digits(double ad, char *digits, int *e10)
{
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, ad);
        /* tmp: d[.ddd]e[+-]xx */
        uint64_t m = 0;
        const char *p = tmp;
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9')
                m = m * 10 + (uint64_t)(*p - '0');
        int e = atoi(p + 1);
        double back = strtod(tmp, NULL);
        if (back != ad) {
            /* the neighbour on the other side of ad */
            uint64_t lo = 1, hi;
            for (int i = 1; i < prec; i++)
                lo *= 10;
            hi = lo * 10; /* m in [lo, hi) */
            if (back > ad) {
                m--;
                if (m < lo) {
                    m = hi - 1;
                    e--;
                }
            } else {
                m++;
                if (m == hi) {
                    m = lo;
                    e++;
                }
            }
            snprintf(tmp, sizeof tmp, "%llue%d", (unsigned long long)m, e - (prec - 1));
            if (strtod(tmp, NULL) != ad)
                continue;
        }
        int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)m);
        while (k > 1 && tmp[k - 1] == '0')
            k--;
        memcpy(digits, tmp, (size_t)k);
        *e10 = e;
        return k;
    }
    /* not reached: 17 significant digits, correctly rounded, always read
     * back */
    digits[0] = '0';
    *e10 = 0;
    return 1;
}

llmc_status llmc__canon_double(llmc_buf *b, double d)
{
    if (!isfinite(d))
        return LLMC_EINVAL;
    if (d == 0)
        return putc1(b, '0'); /* also -0 */
    if (fabs(d) < 9007199254740992.0 && d == (double)(int64_t)d) {
        char tmp[32];
        return put(b, tmp, (size_t)fmt_i64(tmp, (int64_t)d));
    }
    /* Fast path for the common short decimals (0.2, 0.75, 1.5e-3): the
     * smallest k for which d * 10^k is an integer m that divides back to
     * exactly d gives the shortest round-tripping digits. */
    static const double p10[] = {1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double ad = fabs(d);
    if (ad >= 1e-6 && ad < 1e13) {
        for (int k = 0; k < 8; k++) {
            double m = nearbyint(d * p10[k]);
            if (fabs(m) < 9007199254740992.0 && m / p10[k] == d) {
                char digits[32], out[48];
                int nd = fmt_i64(digits, (int64_t)fabs(m));
                int frac = k + 1, o = 0;
                if (d < 0)
                    out[o++] = '-';
                if (nd > frac) {
                    memcpy(out + o, digits, (size_t)(nd - frac));
                    o += nd - frac;
                    out[o++] = '.';
                    memcpy(out + o, digits + nd - frac, (size_t)frac);
                    o += frac;
                } else {
                    out[o++] = '0';
                    out[o++] = '.';
                    for (int z = 0; z < frac - nd; z++)
                        out[o++] = '0';
                    memcpy(out + o, digits, (size_t)nd);
                    o += nd;
                }
                while (out[o - 1] == '0')
                    o--; /* m had trailing zeros (cannot for minimal k, but be safe) */
                return put(b, out, (size_t)o);
            }
        }
    }
    /* Shortest digit string that reads back as the same double: see
     * shortest_digits. */
    int neg = d < 0;
    char digits[20];
    int e10;
    int k = shortest_digits(fabs(d), digits, &e10);
    int n = e10 + 1; /* position of the decimal point */
    char out[64];
    int o = 0;
    if (neg)
        out[o++] = '-';
    if (k <= n && n <= 21) {
        memcpy(out + o, digits, (size_t)k);
        o += k;
        for (int i = 0; i < n - k; i++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += n;
        out[o++] = '.';
        memcpy(out + o, digits + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -n; i++)
            out[o++] = '0';
        memcpy(out + o, digits, (size_t)k);
        o += k;
    } else {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        o += snprintf(out + o, sizeof out - (size_t)o, "e%c%d", n - 1 >= 0 ? '+' : '-',
                      abs(n - 1));
    }
    return put(b, out, (size_t)o);
}

/* Next UTF-16 code unit sequence helper: decode one UTF-8 code point
 * (invalid bytes map to themselves, keeping the order total). */
static inline uint32_t utf8_next(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    uint32_t c = *p++;
    int extra = 0;
    if (c >= 0xF0 && c < 0xF8) {
        c &= 0x07;
        extra = 3;
    } else if (c >= 0xE0) {
        c &= 0x0F;
        extra = 2;
    } else if (c >= 0xC0) {
        c &= 0x1F;
        extra = 1;
    }
    if (*pp + 1 + extra > end) {
        *pp = p;
        return (*pp)[-1];
    }
    for (int i = 0; i < extra; i++) {
        if ((*p & 0xC0) != 0x80) {
            *pp = (*pp) + 1;
            return (*pp)[-1];
        }
        c = (c << 6) | (*p++ & 0x3F);
    }
    *pp = p;
    return c;
}

/* Compare two member names by UTF-16 code units (RFC 8785 section 3.2.3). */
int llmc__canon_keycmp(const char *a, size_t al, const char *b, size_t bl)
{
    const unsigned char *pa = (const unsigned char *)a, *ea = pa + al;
    const unsigned char *pb = (const unsigned char *)b, *eb = pb + bl;
    while (pa < ea && pb < eb) {
        if (*pa < 0x80 && *pb < 0x80) {
            if (*pa != *pb)
                return (int)*pa - (int)*pb;
            pa++;
            pb++;
            continue;
        }
        uint32_t ca = utf8_next(&pa, ea), cb = utf8_next(&pb, eb);
        if (ca == cb)
            continue;
        /* Map to the first UTF-16 unit; a surrogate pair's high half sorts
         * below U+E000..U+FFFF. Equal first units cannot happen for
         * different BMP points; for astral points compare the rest. */
        uint32_t ua = ca >= 0x10000 ? 0xD800 + ((ca - 0x10000) >> 10) : ca;
        uint32_t ub = cb >= 0x10000 ? 0xD800 + ((cb - 0x10000) >> 10) : cb;
        if (ua != ub)
            return ua < ub ? -1 : 1;
        uint32_t la = 0xDC00 + ((ca - 0x10000) & 0x3FF), lb = 0xDC00 + ((cb - 0x10000) & 0x3FF);
        return la < lb ? -1 : 1;
    }
    return (pa < ea) - (pb < eb);
}

typedef struct member {
    const char *k;
    size_t kl;
    struct json_object *v;
} member;

static int member_cmp(const void *x, const void *y)
{
    const member *a = x, *b = y;
    return llmc__canon_keycmp(a->k, a->kl, b->k, b->kl);
}

static void sort_members(member *m, size_t n)
{
    /* insertion sort for the common small case, qsort beyond */
    if (n > 24) {
        qsort(m, n, sizeof *m, member_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        member t = m[i];
        size_t j = i;
        while (j > 0 && member_cmp(&m[j - 1], &t) > 0) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = t;
    }
}

llmc_status llmc__canon_int64(llmc_buf *b, int64_t i)
{
    if (i > 9007199254740992LL || i < -9007199254740992LL)
        return llmc__canon_double(b, (double)i);
    char tmp[24];
    return put(b, tmp, (size_t)fmt_i64(tmp, i));
}

llmc_status llmc__canon_object_filtered(llmc_buf *b, const struct json_object *cv,
                                        llmc__canon_filter filter, void *ud)
{
    struct json_object *v = (struct json_object *)cv;
    size_t n = (size_t)json_object_object_length(v);
    member stackm[32];
    member *m = n <= 32 ? stackm : malloc(n * sizeof *m);
    if (!m)
        return LLMC_ENOMEM;
    size_t cnt = 0;
    json_object_object_foreach(v, key, val)
    {
        struct json_object *use = val;
        if (filter) {
            int r = filter(ud, key, &use);
            if (r == 0)
                continue;
        }
        m[cnt].k = key;
        m[cnt].kl = strlen(key);
        m[cnt].v = use;
        cnt++;
    }
    sort_members(m, cnt);
    llmc_status st = putc1(b, '{');
    for (size_t i = 0; i < cnt && st == LLMC_OK; i++) {
        if (i)
            st = putc1(b, ',');
        if (st == LLMC_OK)
            st = llmc__canon_string(b, m[i].k, m[i].kl);
        if (st == LLMC_OK)
            st = putc1(b, ':');
        if (st == LLMC_OK)
            st = llmc__canon_value(b, m[i].v);
    }
    if (st == LLMC_OK)
        st = putc1(b, '}');
    if (m != stackm)
        free(m);
    return st;
}

llmc_status llmc__canon_value(llmc_buf *b, const struct json_object *cv)
{
    struct json_object *v = (struct json_object *)cv;
    switch (json_object_get_type(v)) {
    case json_type_null:
        return put(b, "null", 4);
    case json_type_boolean:
        return json_object_get_boolean(v) ? put(b, "true", 4) : put(b, "false", 5);
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX) {
            /* may be a larger unsigned value */
            uint64_t u = json_object_get_uint64(v);
            return llmc__canon_double(b, (double)u);
        }
        return llmc__canon_int64(b, i);
    }
    case json_type_double:
        return llmc__canon_double(b, json_object_get_double(v));
    case json_type_string:
        return llmc__canon_string(b, json_object_get_string(v),
                                  (size_t)json_object_get_string_len(v));
    case json_type_array: {
        size_t n = json_object_array_length(v);
        llmc_status st = putc1(b, '[');
        for (size_t i = 0; i < n && st == LLMC_OK; i++) {
            if (i)
                st = putc1(b, ',');
            if (st == LLMC_OK)
                st = llmc__canon_value(b, json_object_array_get_idx(v, i));
        }
        return st == LLMC_OK ? putc1(b, ']') : st;
    }
    case json_type_object:
        return llmc__canon_object_filtered(b, v, NULL, NULL);
    }
    return LLMC_EINVAL;
}

llmc_status llmc_json_canonicalize(const struct json_object *v, llmc_buf *out)
{
    if (!out)
        return LLMC_EINVAL;
    return llmc__canon_value(out, v);
}
