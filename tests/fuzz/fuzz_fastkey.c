/* Differential: the text fast path (core/fastjson.c) against the json-c
 * path (llmc_json_parse + llmc_key_compute "v1") over the same request
 * text. Wherever the fast path computes a key, json-c must accept the
 * text and give the same key and material; where the fast path parses,
 * json-c must parse too. Either may decline or reject, never differ. */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "fastjson.h"
#include "llmcache/llmcache.h"

typedef struct kcase {
    llmc_call_type call;
    const char *provider, *model, *api_base, *ns;
    int scope_by_user;
} kcase;

static const kcase kcases[] = {
    {LLMC_CALL_CHAT, "openai", "gpt-4o-mini", NULL, NULL, 0},
    {LLMC_CALL_TEXT, "anthropic", "claude-3-5-haiku-latest", "http://h:1/v1", "ns1", 1},
    {LLMC_CALL_EMBEDDING, "openai", "text-embedding-3-small", NULL, "team:a", 0},
};

/* The json-c reading of request text (llmc_json_parse: json-c's grammar,
 * the whole text, only whitespace after the value), as an object; NULL
 * if not. */
static json_object *jc_parse(const char *text, size_t len)
{
    json_object *o = NULL;
    llmc_err e;
    if (llmc_json_parse(text, len, "request", &o, &e) != LLMC_OK)
        return NULL;
    if (o && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static void diff_one(llmc__fjdoc *d, json_object *o, const char *text, const kcase *kc)
{
    json_object *item = NULL;
    long fitem = -1;
    if (kc->call == LLMC_CALL_EMBEDDING) {
        json_object *in;
        long fi = llmc__fj_member(d, 0, "input");
        if (!json_object_object_get_ex(o, "input", &in) || !in)
            return;
        FUZZ_CHECK(fi >= 0, "json-c sees \"input\", the fast path does not: %s", text);
        if (json_object_is_type(in, json_type_array)) {
            if (json_object_array_length(in) == 0)
                return;
            item = json_object_array_get_idx(in, 0);
            fitem = fi + 1;
        } else {
            item = in;
            fitem = fi;
        }
        if (!item)
            return;
    }
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = kc->call;
    in.provider = kc->provider;
    in.model = kc->model;
    in.api_base = kc->api_base;
    in.request = o;
    in.input_item = item;
    in.namespace_ = kc->ns;
    in.scope_by_user = kc->scope_by_user;
    llmc_buf k1 = LLMC_BUF_INIT, m1 = LLMC_BUF_INIT, k2 = LLMC_BUF_INIT, m2 = LLMC_BUF_INIT;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status s1 = llmc_key_compute("v1", &in, &k1, &m1, &e);
    llmc__fj_keyin fin = {kc->call, kc->provider, kc->model, kc->api_base, kc->ns,
                          kc->scope_by_user, fitem};
    llmc_status s2 = llmc__fj_key_v1(d, &fin, &k2, &m2);
    if (s2 == LLMC_OK) {
        FUZZ_CHECK(s1 == LLMC_OK, "fast key where json-c fails (%s): %s", e.msg, text);
        FUZZ_CHECK(m1.len == m2.len && memcmp(m1.data, m2.data, m1.len) == 0,
                   "material differs for %s\njson-c: %s\nfast:   %s", text, m1.data, m2.data);
        FUZZ_CHECK(strcmp(k1.data, k2.data) == 0, "key differs for %s", text);
    } else {
        FUZZ_CHECK(s2 == LLMC_ENOTSUP || s2 == LLMC_ENOMEM, "fast key status %d", (int)s2);
    }
    llmc_buf_free(&k1);
    llmc_buf_free(&m1);
    llmc_buf_free(&k2);
    llmc_buf_free(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* NUL-terminated copy for the error messages; lengths are explicit. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    llmc__fjdoc *d = llmc__fj_thread_doc();
    int parsed = d && llmc__fj_parse(d, text, size);
    json_object *o = jc_parse(text, size);
    if (parsed) {
        FUZZ_CHECK(o != NULL, "fast path parsed what json-c rejects: %s", text);
        for (size_t i = 0; i < sizeof kcases / sizeof kcases[0]; i++)
            diff_one(d, o, text, &kcases[i]);
    }
    json_object_put(o);
    free(text);
    return 0;
}
