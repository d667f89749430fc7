/* Option lists: ordered name/value string pairs, names case-insensitive. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opt {
    char *name;
    char *value;
} opt;

struct llmc_options {
    opt *v;
    size_t n, cap;
};

llmc_options *llmc_options_new(void) { return calloc(1, sizeof(llmc_options)); }

void llmc_options_free(llmc_options *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].name);
        free(o->v[i].value);
    }
    free(o->v);
    free(o);
}

llmc_options *llmc_options_dup(const llmc_options *o)
{
    if (!o)
        return NULL;
    llmc_options *d = llmc_options_new();
    if (!d)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (llmc_options_set(d, o->v[i].name, o->v[i].value) != LLMC_OK) {
            llmc_options_free(d);
            return NULL;
        }
    return d;
}

static opt *find(const llmc_options *o, const char *name)
{
    if (!o || !name)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (llmc__strcaseeq(o->v[i].name, name))
            return &o->v[i];
    return NULL;
}

llmc_status llmc_options_set(llmc_options *o, const char *name, const char *value)
{
    if (!o || !name || !*name || !value)
        return LLMC_EINVAL;
    opt *e = find(o, name);
    char *v = llmc__strdup(value);
    if (!v)
        return LLMC_ENOMEM;
    if (e) {
        free(e->value);
        e->value = v;
        return LLMC_OK;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        opt *nv = realloc(o->v, cap * sizeof *nv);
        if (!nv) {
            free(v);
            return LLMC_ENOMEM;
        }
        o->v = nv;
        o->cap = cap;
    }
    char *n = llmc__strdup(name);
    if (!n) {
        free(v);
        return LLMC_ENOMEM;
    }
    o->v[o->n].name = n;
    o->v[o->n].value = v;
    o->n++;
    return LLMC_OK;
}

llmc_status llmc_options_set_int(llmc_options *o, const char *name, int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)value);
    return llmc_options_set(o, name, buf);
}

llmc_status llmc_options_unset(llmc_options *o, const char *name)
{
    opt *e = find(o, name);
    if (!e)
        return LLMC_MISS;
    free(e->name);
    free(e->value);
    size_t i = (size_t)(e - o->v);
    memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof *e);
    o->n--;
    return LLMC_OK;
}

const char *llmc_options_get(const llmc_options *o, const char *name)
{
    opt *e = find(o, name);
    return e ? e->value : NULL;
}

size_t llmc_options_count(const llmc_options *o) { return o ? o->n : 0; }

const char *llmc_options_name_at(const llmc_options *o, size_t i)
{
    return o && i < o->n ? o->v[i].name : NULL;
}

const char *llmc_options_value_at(const llmc_options *o, size_t i)
{
    return o && i < o->n ? o->v[i].value : NULL;
}

llmc_status llmc_parse_i64(const char *s, const char *what, int64_t min, int64_t max,
                           int64_t *out, llmc_err *err)
{
    if (!s || !*s)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s: empty value, expected an integer",
                            what);
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s: \"%.64s\" is not an integer", what, s);
    if (errno == ERANGE || v < min || v > max)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s: %.64s is out of range (%lld..%lld)", what, s,
                            (long long)min, (long long)max);
    *out = v;
    return LLMC_OK;
}

llmc_status llmc_options_get_i64(const llmc_options *o, const char *name, int64_t min,
                                 int64_t max, int64_t def, int64_t *out, llmc_err *err)
{
    const char *v = llmc_options_get(o, name);
    if (!v) {
        *out = def;
        return LLMC_OK;
    }
    char what[96];
    snprintf(what, sizeof what, "option %s", name);
    return llmc_parse_i64(v, what, min, max, out, err);
}

llmc_status llmc_options_get_bool(const llmc_options *o, const char *name, int def,
                                  int *out, llmc_err *err)
{
    const char *v = llmc_options_get(o, name);
    if (!v) {
        *out = def;
        return LLMC_OK;
    }
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (llmc__strcaseeq(v, yes[i])) {
            *out = 1;
            return LLMC_OK;
        }
        if (llmc__strcaseeq(v, no[i])) {
            *out = 0;
            return LLMC_OK;
        }
    }
    return llmc_err_set(err, LLMC_EINVAL, 0,
                        "option %s: \"%.64s\" is not a boolean (use 1/0, true/false, "
                        "yes/no, on/off)", name, v);
}

/* One rule for every namespace the library or the proxy accepts: a name
 * that cannot reach into another namespace's keys (':'), cannot widen a
 * scoped flush's match pattern (glob characters), cannot look like a
 * tenant's preset key ("tenant:key=<preset>", so no '=') and prints as
 * itself. */
llmc_status llmc_namespace_check(const char *ns, const char *what, llmc_err *err)
{
    if (!what)
        what = "namespace";
    if (!ns)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s is missing", what);
    size_t n = strlen(ns);
    if (n == 0 || n > LLMC_NAMESPACE_MAX)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s must be 1..%d bytes (got %zu)", what,
                            LLMC_NAMESPACE_MAX, n);
    for (const char *p = ns; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == ':' || ch == '=' || ch == '*' || ch == '?' || ch == '[' || ch == ']' ||
            ch == '\\' || ch <= ' ' || ch == 0x7f)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "%s \"%.64s\": character %s%c%s is not allowed (no ':', '=', "
                                "glob characters * ? [ ] \\, white space or control "
                                "characters)",
                                what, ns, ch > ' ' && ch != 0x7f ? "'" : "",
                                ch > ' ' && ch != 0x7f ? ch : '?',
                                ch > ' ' && ch != 0x7f ? "'" : " (a space or control character)");
    }
    return LLMC_OK;
}
