/* JSON text decoding of our own, in front of json-c.
 *
 * json-c 0.16 decodes a surrogate pair whose high half has
 * (hi & 0x3E) == 0x36 to U+FFFD (every astral code point whose low 16
 * bits fall in D800-DFFF, CJK Extension F among them), keeps a pending
 * high surrogate in the tokener across json_tokener_reset, and replaces
 * lone surrogates silently. Key material and stored answers must not
 * depend on that. So one routine here decodes \u escapes for the fast
 * tokenizer, and before json-c sees a text that holds surrogate escapes,
 * a pass rewrites each of them into the UTF-8 bytes of the character
 * (json-c copies raw UTF-8 through unchanged); json-c then only ever
 * decodes BMP escapes, which it does right. Lone surrogates are not
 * characters: a request holding one is refused, a provider response gets
 * U+FFFD (the caller chooses). */
#include "jsontext.h"

#include <ctype.h>
#include <json-c/json.h>
#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return 0;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 1;
}

int llmc__json_u_decode(const unsigned char *s, size_t avail, uint32_t *cp, size_t *used)
{
    uint32_t u, lo;
    if (avail < 6 || s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &u))
        return LLMC__U_BAD;
    *cp = u;
    *used = 6;
    if (u < 0xD800 || u > 0xDFFF)
        return LLMC__U_OK;
    if (u >= 0xDC00)
        return LLMC__U_LONE;
    if (avail < 12 || s[6] != '\\' || s[7] != 'u' || !hex4(s + 8, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
        return LLMC__U_LONE;
    *cp = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    *used = 12;
    return LLMC__U_OK;
}

size_t llmc__utf8_put(uint32_t u, unsigned char *o)
{
    if (u < 0x80) {
        o[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (unsigned char)(0xC0 | (u >> 6));
        o[1] = (unsigned char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (u >> 12));
        o[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (u & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (u >> 18));
    o[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (u & 0x3F));
    return 4;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int surrogate_escape_at(const unsigned char *s, size_t i, size_t n)
{
    return s[i] == '\\' && n - i >= 4 && s[i + 1] == 'u' && (s[i + 2] == 'd' || s[i + 2] == 'D') &&
           hexval(s[i + 3]) >= 8;
}

/* Could text hold a surrogate escape (backslash, u, d/D, 8-f) or an
 * integer beyond 64 bits (19 digits in a row)? A cheap over-approximation,
 * so the common text goes to json-c as is. It runs on every parse (stored
 * responses on the hit path too), so it looks at eight bytes at a time:
 * a run of 19 digits always covers one whole 8-byte block, and only
 * blocks holding a backslash or nothing but digits are looked into. */
static int needs_rewrite(const char *t, size_t n)
{
    const unsigned char *s = (const unsigned char *)t;
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    const uint64_t hi_nib = 0xF0F0F0F0F0F0F0F0ull, lo_nib = 0x0F0F0F0F0F0F0F0Full;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t bs = w ^ (ones * '\\');
        if (((bs - ones) & ~bs & high) != 0) {
            for (size_t j = i; j < i + 8; j++)
                if (surrogate_escape_at(s, j, n))
                    return 1;
        }
        /* all eight bytes '0'..'9': high nibble 3, low nibble + 6 < 16 */
        if ((w & hi_nib) == (ones * 0x30) && (((w & lo_nib) + ones * 6) & hi_nib) == 0) {
            size_t a = i, b = i + 8;
            while (a > 0 && is_digit(s[a - 1]))
                a--;
            while (b < n && is_digit(s[b]))
                b++;
            if (b - a >= 19)
                return 1;
        }
    }
    for (; i < n; i++)
        if (surrogate_escape_at(s, i, n))
            return 1;
    return 0;
}

/* Is the number token t[0..n) an integer json-c cannot hold? json-c reads
 * integer syntax as int64 (uint64 when positive) and saturates beyond,
 * so distinct numbers would become one. */
static int int_beyond_64(const char *t, size_t n)
{
    int neg = n && t[0] == '-';
    size_t i = (size_t)neg;
    if (i == n)
        return 0;
    for (size_t j = i; j < n; j++)
        if (t[j] < '0' || t[j] > '9')
            return 0; /* a fraction or exponent: json-c reads a double */
    while (i + 1 < n && t[i] == '0')
        i++;
    const char *lim = neg ? "9223372036854775808" : "18446744073709551615";
    size_t ll = strlen(lim), dl = n - i;
    return dl > ll || (dl == ll && memcmp(t + i, lim, ll) > 0);
}

/* Rewrite the surrogate escapes inside strings of t[0..n) into UTF-8,
 * and integers beyond 64 bits outside strings into the same number with
 * ".0" (json-c then reads the double RFC 8785 means). Strings are found
 * the way json-c's lenient grammar finds them: "..." or '...' with
 * backslash escapes, outside comments. Where json-c would see no string,
 * it fails on the backslash anyway. 0 = done, SIZE_MAX = out of memory,
 * else the byte offset + 1 of a lone surrogate when `lone` is REJECT. */
#define APPEND(p, len)                                                                     \
    do {                                                                                   \
        if (llmc_buf_append(out, (p), (len)) != LLMC_OK)                                   \
            return SIZE_MAX;                                                               \
    } while (0)

static size_t rewrite(const char *t, size_t n, int lone, llmc_buf *out)
{
    static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};
    const unsigned char *s = (const unsigned char *)t;
    size_t i = 0, flushed = 0;
    char quote = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (!quote) {
            if (c == '"' || c == '\'') {
                quote = (char)c;
                i++;
            } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
                const char *e = memmem(t + i + 2, n - i - 2, "*/", 2);
                i = e ? (size_t)(e - t) + 2 : n;
            } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
                const char *e = memchr(t + i + 2, '\n', n - i - 2);
                i = e ? (size_t)(e - t) + 1 : n;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                /* a number token, as json-c delimits it */
                size_t j = i + 1;
                while (j < n && s[j] && strchr("0123456789.+-eE", s[j]))
                    j++;
                if (int_beyond_64(t + i, j - i)) {
                    APPEND(t + flushed, j - flushed);
                    APPEND(".0", 2);
                    flushed = j;
                }
                i = j;
            } else {
                i++;
            }
            continue;
        }
        if (c == (unsigned char)quote) {
            quote = 0;
            i++;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= n || s[i + 1] != 'u') {
            i += 2; /* one escaped character (json-c judges it) */
            continue;
        }
        uint32_t cp;
        size_t used;
        int r = llmc__json_u_decode(s + i, n - i, &cp, &used);
        if (r == LLMC__U_BAD || (r == LLMC__U_OK && cp < 0x10000)) {
            i += 2; /* json-c decodes BMP escapes right; bad hex: its error */
            continue;
        }
        if (r == LLMC__U_LONE && lone == LLMC__LONE_REJECT)
            return i + 1;
        APPEND(t + flushed, i - flushed);
        if (r == LLMC__U_LONE) {
            APPEND(fffd, 3);
        } else {
            unsigned char u8[4];
            APPEND(u8, llmc__utf8_put(cp, u8));
        }
        i += used;
        flushed = i;
    }
    APPEND(t + flushed, n - flushed);
    return 0;
}
#undef APPEND

/* One json-c parse in a fresh tokener; *je = -1 when out of memory. */
static struct json_object *jc_parse(const char *t, size_t n, int *je, size_t *end)
{
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        *je = -1;
        *end = 0;
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, t, (int)n);
    *je = (int)json_tokener_get_error(tok);
    *end = json_tokener_get_parse_end(tok);
    if (!o && *je == json_tokener_continue) {
        /* A bare number or literal ("0", "true") only ends at the end of
         * input: tell the tokener the input is over. Anything else still
         * open is reported as incomplete. */
        o = json_tokener_parse_ex(tok, "", 1);
        if (json_tokener_get_error(tok) == json_tokener_success)
            *je = json_tokener_success;
        *end = n;
    }
    json_tokener_free(tok);
    return o;
}

llmc_status llmc__json_parse(const char *text, size_t len, int lone, llmc_status fail,
                             const char *what, struct json_object **out, llmc_err *err)
{
    *out = NULL;
    if (!text)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s is NULL", what);
    if (len > INT32_MAX)
        return llmc_err_set(err, LLMC_ETOOBIG, 0, "%s is too large", what);
    llmc_buf fixed = LLMC_BUF_INIT;
    const char *t = text;
    size_t n = len;
    if (needs_rewrite(text, len)) {
        size_t bad = rewrite(text, len, lone, &fixed);
        if (bad == SIZE_MAX) {
            llmc_buf_free(&fixed);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        if (bad) {
            llmc_buf_free(&fixed);
            return llmc_err_set(err, fail, 0,
                                "%s has a lone UTF-16 surrogate escape \\u%.4s at byte %zu: it "
                                "is not a character (send the text as UTF-8 or as a complete "
                                "surrogate pair)", what, text + bad + 1, bad - 1);
        }
        if (!fixed.data) { /* len 0: nothing was appended */
            t = "";
            n = 0;
        } else {
            t = fixed.data;
            n = fixed.len;
        }
        if (n > INT32_MAX) {
            llmc_buf_free(&fixed);
            return llmc_err_set(err, LLMC_ETOOBIG, 0, "%s is too large", what);
        }
    }
    int je;
    size_t end;
    json_object *o = jc_parse(t, n, &je, &end);
    llmc_status st = LLMC_OK;
    if (je != json_tokener_success) {
        if (o)
            json_object_put(o);
        o = NULL;
        if (t != text) /* offsets of the text the caller knows */
            json_object_put(jc_parse(text, len, &je, &end));
        if (je < 0)
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        else if (je == json_tokener_continue || je == json_tokener_success)
            st = llmc_err_set(err, fail, 0, "%s is incomplete (%zu bytes)", what, len);
        else
            st = llmc_err_set(err, fail, 0, "%s is invalid at byte %zu: %s", what, end,
                              json_tokener_error_desc((enum json_tokener_error)je));
    } else {
        for (size_t i = end; i < n; i++)
            if (!isspace((unsigned char)t[i])) {
                const char *kind =
                    json_object_is_type(o, json_type_object) ? "object" : "JSON value";
                json_object_put(o);
                o = NULL;
                /* every rewrite lies inside the value, before i */
                st = llmc_err_set(err, fail, 0, "%s has data after the %s at byte %zu", what,
                                  kind, i + len - n);
                break;
            }
    }
    llmc_buf_free(&fixed);
    *out = o;
    return st;
}
