/* `llmcache key` with two requests: which members of their key material
 * differ. The material is what the key strategy hashed (for v1 the
 * canonical JSON {"v","call","provider","model","params"}); comparing it,
 * rather than the requests, shows exactly what changed the key, with
 * excluded members (credentials, stream, cache controls) already gone. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* Longest value printed in full; longer ones are cut with "...". */
#define SHOW_MAX 72

static void show(FILE *out, json_object *v)
{
    if (!v) {
        fputs("(absent)", out);
        return;
    }
    const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    if (n <= SHOW_MAX)
        fputs(s, out);
    else
        fprintf(out, "%.*s...", SHOW_MAX - 3, s);
}

static int same(json_object *a, json_object *b)
{
    if (!a || !b)
        return a == b;
    return json_object_equal(a, b);
}

/* Print one line per differing leaf under `path`; returns how many. */
static size_t walk(FILE *out, llmc_buf *path, json_object *a, json_object *b)
{
    if (same(a, b))
        return 0;
    size_t mark = path->len, n = 0;
    if (a && b && json_object_is_type(a, json_type_object) &&
        json_object_is_type(b, json_type_object)) {
        /* Members of A in its (canonical, sorted) order, then those only in B. */
        json_object_object_foreach(a, ka, va) {
            json_object *vb = NULL;
            json_object_object_get_ex(b, ka, &vb);
            llmc_buf_printf(path, "%s%s", mark ? "." : "", ka);
            n += walk(out, path, va, vb);
            path->len = mark;
            path->data[mark] = '\0';
        }
        json_object_object_foreach(b, kb, vb2) {
            if (json_object_object_get_ex(a, kb, NULL))
                continue;
            llmc_buf_printf(path, "%s%s", mark ? "." : "", kb);
            n += walk(out, path, NULL, vb2);
            path->len = mark;
            path->data[mark] = '\0';
        }
        return n;
    }
    if (a && b && json_object_is_type(a, json_type_array) &&
        json_object_is_type(b, json_type_array)) {
        size_t la = json_object_array_length(a), lb = json_object_array_length(b);
        for (size_t i = 0; i < (la > lb ? la : lb); i++) {
            llmc_buf_printf(path, "[%zu]", i);
            n += walk(out, path, i < la ? json_object_array_get_idx(a, i) : NULL,
                      i < lb ? json_object_array_get_idx(b, i) : NULL);
            path->len = mark;
            path->data[mark] = '\0';
        }
        return n;
    }
    fprintf(out, "  %s\n    A: ", path->len ? path->data : "(material)");
    show(out, a);
    fputs("\n    B: ", out);
    show(out, b);
    fputc('\n', out);
    return 1;
}

int cli_key_diff(FILE *out, const char *ma, size_t la, const char *mb, size_t lb)
{
    if (la == lb && memcmp(ma, mb, la) == 0) {
        fputs("differences: none (same material, same key)\n", out);
        return 0;
    }
    json_object *a = NULL, *b = NULL;
    llmc_err err;
    int ok = llmc_json_parse(ma, la, "material A", &a, &err) == LLMC_OK &&
             llmc_json_parse(mb, lb, "material B", &b, &err) == LLMC_OK;
    if (!ok) {
        /* A key strategy whose material is not JSON: say so, show both. */
        fprintf(out, "differences: the materials differ (not JSON, compared as text)\n"
                     "  A: %.*s\n  B: %.*s\n",
                (int)la, ma, (int)lb, mb);
        json_object_put(a);
        json_object_put(b);
        return 1;
    }
    fputs("differences:\n", out);
    llmc_buf path = LLMC_BUF_INIT;
    llmc_buf_puts(&path, "");
    size_t n = walk(out, &path, a, b);
    llmc_buf_free(&path);
    json_object_put(a);
    json_object_put(b);
    if (n == 0)
        fputs("  (same members, written differently)\n", out);
    return 1;
}
