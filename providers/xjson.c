/* json-c helpers for the provider adapters (see xjson.h). */
#include "xjson.h"
#include "jsontext.h"

#include <string.h>
#include <strings.h>

json_object *llmc__xj_get(const json_object *o, const char *k)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type((json_object *)o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex((json_object *)o, k, &v))
        return NULL;
    return v;
}

const char *llmc__xj_str(const json_object *o, const char *k)
{
    json_object *v = llmc__xj_get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int llmc__xj_int(const json_object *o, const char *k, int64_t *out)
{
    json_object *v = llmc__xj_get(o, k);
    if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    *out = json_object_get_int64(v);
    return 1;
}

int llmc__xj_has(const json_object *o, const char *k)
{
    return llmc__xj_get(o, k) != NULL;
}

void llmc__xj_put_ref(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, json_object_get(v));
}

void llmc__xj_put_str(json_object *o, const char *k, const char *s)
{
    json_object_object_add(o, k, json_object_new_string(s ? s : ""));
}

void llmc__xj_put_int(json_object *o, const char *k, int64_t v)
{
    json_object_object_add(o, k, json_object_new_int64(v));
}

json_object *llmc__xj_copy(const json_object *o)
{
    json_object *out = NULL;
    if (!o)
        return NULL;
    if (json_object_deep_copy((json_object *)o, &out, NULL) != 0)
        return NULL;
    return out;
}

json_object *llmc__xj_parse(const char *s, size_t len)
{
    json_object *o = NULL;
    if (!s || len == 0)
        return NULL;
    llmc__json_parse(s, len, LLMC__LONE_REPLACE, LLMC_EPROTO, "JSON", &o, NULL);
    return o;
}

const char *llmc__xj_dump(const json_object *o)
{
    return json_object_to_json_string_ext((json_object *)o,
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

int llmc__xj_content_text(const json_object *content, llmc_buf *buf, int text_only)
{
    size_t i, n;
    if (!content || json_object_is_type((json_object *)content, json_type_null))
        return 0;
    if (json_object_is_type((json_object *)content, json_type_string)) {
        llmc_buf_puts(buf, json_object_get_string((json_object *)content));
        return 0;
    }
    if (!json_object_is_type((json_object *)content, json_type_array))
        return -1;
    n = json_object_array_length((json_object *)content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx((json_object *)content, i);
        const char *type = llmc__xj_str(part, "type");
        const char *text = llmc__xj_str(part, "text");
        if (text && (!type || strcmp(type, "text") == 0))
            llmc_buf_puts(buf, text);
        else if (text_only)
            return -1;
    }
    return 0;
}

int llmc__xj_in(const char *const *list, const char *k)
{
    for (; list && *list; list++)
        if (strcmp(*list, k) == 0)
            return 1;
    return 0;
}

int llmc__xj_data_url(const char *url, char *mime, size_t mime_cap, const char **data)
{
    const char *semi, *comma;
    size_t n;
    if (!url || strncmp(url, "data:", 5) != 0)
        return 0;
    semi = strchr(url + 5, ';');
    comma = strchr(url + 5, ',');
    if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8) != 0)
        return 0;
    n = (size_t)(semi - (url + 5));
    if (n == 0 || n >= mime_cap)
        return 0;
    memcpy(mime, url + 5, n);
    mime[n] = '\0';
    *data = comma + 1;
    return 1;
}

int llmc__xj_ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

llmc_status llmc__xj_refuse(const json_object *req, const char *const *unsupported,
                            const char *provider, llmc_err *err)
{
    json_object_object_foreach((json_object *)req, k, v) {
        if (v && llmc__xj_in(unsupported, k))
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "parameter \"%s\" is not supported by the %s adapter", k, provider);
    }
    return LLMC_OK;
}

void llmc__xj_passthrough(const json_object *req, const char *const *handled,
                          const char *const *unsupported, json_object *body)
{
    json_object_object_foreach((json_object *)req, k, v) {
        if (!llmc__xj_in(handled, k) && !llmc__xj_in(unsupported, k))
            llmc__xj_put_ref(body, k, v);
    }
}

const char *llmc__xj_image_url(const json_object *part)
{
    json_object *iu = llmc__xj_get(part, "image_url");
    if (iu && json_object_is_type(iu, json_type_string))
        return json_object_get_string(iu);
    return llmc__xj_str(iu, "url");
}

void llmc__xj_push_turn(json_object *turns, const char *role, const char *field,
                        json_object *items)
{
    size_t n = json_object_array_length(turns), i;
    if (json_object_array_length(items) == 0) {
        json_object_put(items);
        return;
    }
    if (n > 0) {
        json_object *last = json_object_array_get_idx(turns, n - 1);
        const char *lr = llmc__xj_str(last, "role");
        if (lr && strcmp(lr, role) == 0) {
            json_object *li = llmc__xj_get(last, field);
            for (i = 0; i < json_object_array_length(items); i++)
                json_object_array_add(li, json_object_get(json_object_array_get_idx(items, i)));
            json_object_put(items);
            return;
        }
    }
    json_object *t = json_object_new_object();
    llmc__xj_put_str(t, "role", role);
    json_object_object_add(t, field, items);
    json_object_array_add(turns, t);
}
