/* Canonical JSON (RFC 8785, core/canon.c):
 *  - an input of exactly 8 bytes is also a double (its bits): the number
 *    form must read back as the same double, and be the shortest such
 *    digit string (no string one digit shorter reads back);
 *  - any input that json-c reads is canonicalised; the canonical text
 *    must parse, canonicalise to itself (idempotence), and every double
 *    in the value must round-trip through its number form;
 *  - the fast path's canonical form (core/fastjson.c), where it has one,
 *    must be the same text. */
#include "fuzz.h"

#include <math.h>
#include <string.h>

#include <json-c/json.h>

#include "canon.h"
#include "fastjson.h"
#include "llmcache/llmcache.h"

/* `s` is ECMAScript Number::toString of `d`: it reads back exactly, and
 * no decimal with one significant digit fewer does. */
static void check_number(double d, const char *s, size_t n)
{
    char buf[64];
    FUZZ_CHECK(n > 0 && n < sizeof buf, "number form of %a has length %zu", d, n);
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    double back = strtod(buf, &end);
    FUZZ_CHECK(*end == 0, "number form of %a is not a number: %s", d, buf);
    FUZZ_CHECK(back == d || (back == 0 && d == 0), "number form of %a reads back as %a: %s", d,
               back, buf);
    /* Significant digits and the decimal exponent of the form. */
    char dig[40];
    int nd = 0, point = -1, e10 = 0, seen_nonzero = 0, lead_zeros = 0;
    const char *p = buf;
    if (*p == '-')
        p++;
    for (; *p && *p != 'e'; p++) {
        if (*p == '.') {
            point = nd + lead_zeros;
            continue;
        }
        if (!seen_nonzero && *p == '0') {
            lead_zeros++;
            continue;
        }
        seen_nonzero = 1;
        FUZZ_CHECK(nd < 30, "too many digits in %s", buf);
        dig[nd++] = *p;
    }
    if (*p == 'e')
        e10 = atoi(p + 1);
    int intdigits = (point < 0 ? nd + lead_zeros : point) - lead_zeros;
    /* value = 0.dig * 10^(intdigits + e10); trailing zeros of an
     * integer form are not significant digits */
    int exp = intdigits + e10;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (nd <= 1)
        return;
    /* One digit fewer: truncated, and truncated + 1 in the last place. */
    for (int up = 0; up < 2; up++) {
        char c[48];
        int k = nd - 1;
        memcpy(c, dig, (size_t)k);
        int carry = up, i;
        for (i = k - 1; i >= 0 && carry; i--) {
            if (c[i] == '9') {
                c[i] = '0';
            } else {
                c[i]++;
                carry = 0;
            }
        }
        char t[80];
        if (carry)
            snprintf(t, sizeof t, "%s0.1%.*se%d", d < 0 ? "-" : "", k, c, exp + 1);
        else
            snprintf(t, sizeof t, "%s0.%.*se%d", d < 0 ? "-" : "", k, c, exp);
        FUZZ_CHECK(strtod(t, NULL) != d, "number form of %a is not the shortest: %s (%s reads "
                   "back too)", d, buf, t);
    }
}

static void walk_doubles(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return;
        llmc_buf b = LLMC_BUF_INIT;
        FUZZ_CHECK(llmc__canon_double(&b, d) == LLMC_OK, "canon_double failed");
        check_number(d, b.data, b.len);
        llmc_buf_free(&b);
        return;
    }
    case json_type_object: {
        json_object_object_foreach(v, k, val) {
            (void)k;
            walk_doubles(val);
        }
        return;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            walk_doubles(json_object_array_get_idx(v, i));
        return;
    default:
        return;
    }
}

/* The library's reading of JSON text (llmc_json_parse), any value. */
static json_object *parse(const char *s, size_t n, int *ok)
{
    json_object *o = NULL;
    llmc_err e;
    *ok = llmc_json_parse(s, n, "canon input", &o, &e) == LLMC_OK && o != NULL;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    if (size == 8) {
        double d;
        memcpy(&d, data, 8);
        if (isfinite(d)) {
            llmc_buf b = LLMC_BUF_INIT;
            FUZZ_CHECK(llmc__canon_double(&b, d) == LLMC_OK, "canon_double(%a) failed", d);
            check_number(d, b.data, b.len);
            llmc_buf_free(&b);
        }
    }
    int ok;
    json_object *o = parse((const char *)data, size, &ok);
    if (!ok) {
        json_object_put(o);
        return 0;
    }
    walk_doubles(o);
    llmc_buf c1 = LLMC_BUF_INIT, c2 = LLMC_BUF_INIT;
    llmc_status st = llmc_json_canonicalize(o, &c1);
    if (st == LLMC_OK) {
        int ok2;
        json_object *o2 = parse(c1.data, c1.len, &ok2);
        FUZZ_CHECK(ok2, "canonical form does not parse: %s", c1.data);
        FUZZ_CHECK(llmc_json_canonicalize(o2, &c2) == LLMC_OK, "canonical form fails again");
        FUZZ_CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0,
                   "not idempotent:\n%s\n%s", c1.data, c2.data);
        json_object_put(o2);
        /* The fast path over the same text, where it has an answer. */
        llmc__fjdoc *d = llmc__fj_thread_doc();
        if (d && llmc__fj_parse(d, (const char *)data, size)) {
            llmc_buf f = LLMC_BUF_INIT;
            if (llmc__fj_canon(d, 0, &f) == LLMC_OK)
                FUZZ_CHECK(f.len == c1.len && memcmp(f.data, c1.data, f.len) == 0,
                           "fast canonical form differs:\njson-c: %s\nfast:   %s", c1.data,
                           f.data);
            llmc_buf_free(&f);
        }
    } else {
        FUZZ_CHECK(st == LLMC_EINVAL || st == LLMC_ENOMEM, "canonicalize status %d", (int)st);
    }
    llmc_buf_free(&c1);
    llmc_buf_free(&c2);
    json_object_put(o);
    return 0;
}
