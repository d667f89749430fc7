/* The "messages" row of the call-type table: Anthropic's Messages API
 * (POST /v1/messages) cached natively. The request and the stored answer
 * are the API's own shapes; a provider that speaks it (anthropic) gets
 * the request as sent, with the client's anthropic-version and
 * anthropic-beta headers; any other chat provider gets it translated
 * (messages_chat.c). Streams are the API's events (messages_stream.c). */
#include "client_internal.h"
#include "messages.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
               ? v
               : NULL;
}

/* ------------------------------------------------------------------ */
/* Validation. */

llmc_status llmc__validate_messages(const llmc__jv *root, llmc_err *err)
{
    llmc__jv v = llmc__jv_member(root, "messages");
    if (llmc__jv_kind(&v) == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"messages\" is missing");
    if (llmc__jv_kind(&v) != JV_ARRAY || llmc__jv_len(&v) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"messages\" must be a non-empty array");
    /* The API headers enter the key under these names: a body member of
     * the same name would be mistaken for them. */
    static const char *const header_names[] = {"anthropic-version", "anthropic-beta"};
    for (size_t i = 0; i < LLMC_ARRAY_LEN(header_names); i++) {
        llmc__jv h = llmc__jv_member(root, header_names[i]);
        if (llmc__jv_kind(&h) != JV_ABSENT)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"%s\" is not part of the body: send it as the "
                                "%s HTTP header",
                                header_names[i], header_names[i]);
    }
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* Key material: the request without what changes cost and not the
 * answer (cache_control markers where the API places them, `store`),
 * plus the API headers. stream, metadata, user and credentials are left
 * out by the key strategy as for every call. */

/* A copy of an array of blocks without their cache_control; with
 * `nested`, also inside each block's own "content" blocks (tool_result). */
static json_object *blocks_without_cc(json_object *arr, int nested)
{
    if (!arr || !json_object_is_type(arr, json_type_array))
        return json_object_get(arr);
    json_object *out = json_object_new_array();
    for (size_t i = 0; out && i < json_object_array_length(arr); i++) {
        json_object *b = json_object_array_get_idx(arr, i);
        if (!b || !json_object_is_type(b, json_type_object) ||
            (!get(b, "cache_control") && !(nested && get(b, "content")))) {
            json_object_array_add(out, json_object_get(b));
            continue;
        }
        json_object *c = json_object_new_object();
        json_object_object_foreach(b, k, v)
        {
            if (strcmp(k, "cache_control") == 0)
                continue;
            if (nested && strcmp(k, "content") == 0)
                json_object_object_add(c, k, blocks_without_cc(v, 0));
            else
                json_object_object_add(c, k, json_object_get(v));
        }
        json_object_array_add(out, c);
    }
    return out;
}

static json_object *messages_without_cc(json_object *msgs)
{
    if (!msgs || !json_object_is_type(msgs, json_type_array))
        return json_object_get(msgs);
    json_object *out = json_object_new_array();
    for (size_t i = 0; out && i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i);
        json_object *content = get(m, "content");
        if (!content || !json_object_is_type(content, json_type_array)) {
            json_object_array_add(out, json_object_get(m));
            continue;
        }
        json_object *c = json_object_new_object();
        json_object_object_foreach(m, k, v)
        {
            json_object_object_add(c, k, strcmp(k, "content") == 0 ? blocks_without_cc(v, 1)
                                                                    : json_object_get(v));
        }
        json_object_array_add(out, c);
    }
    return out;
}

/* anthropic-beta values: the comma-separated names, trimmed, sorted and
 * without repeats (their order and repetition mean nothing). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_object *beta_list(const char *v)
{
    char *copy = llmc__strdup(v);
    if (!copy)
        return NULL;
    size_t cap = 8, n = 0;
    char **names = malloc(cap * sizeof *names);
    json_object *arr = json_object_new_array();
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); names && arr && t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ' || *t == '\t')
            t++;
        size_t l = strlen(t);
        while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
            t[--l] = '\0';
        if (!l)
            continue;
        if (n == cap) {
            char **p = realloc(names, 2 * cap * sizeof *names);
            if (!p)
                break;
            names = p;
            cap *= 2;
        }
        names[n++] = t;
    }
    if (names && n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; names && arr && i < n; i++)
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
            json_object_array_add(arr, json_object_new_string(names[i]));
    free(names);
    free(copy);
    return arr;
}

llmc_status llmc__messages_key_request(json_object *req, const llmc__controls *ctl,
                                       json_object **out, llmc_err *err)
{
    json_object *k = json_object_new_object();
    if (!k)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    json_object_object_foreach(req, name, v)
    {
        if (strcmp(name, "store") == 0)
            continue;
        if (strcmp(name, "system") == 0 || strcmp(name, "tools") == 0)
            json_object_object_add(k, name, blocks_without_cc(v, 0));
        else if (strcmp(name, "messages") == 0)
            json_object_object_add(k, name, messages_without_cc(v));
        else
            json_object_object_add(k, name, json_object_get(v));
    }
    const char *const *h = (const char *const *)ctl->api_headers;
    const char *ver = llmc__headers_get(h, "anthropic-version");
    const char *beta = llmc__headers_get(h, "anthropic-beta");
    if (ver)
        json_object_object_add(k, "anthropic-version", json_object_new_string(ver));
    if (beta) {
        json_object *b = beta_list(beta);
        if (!b) {
            json_object_put(k);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        if (json_object_array_length(b) > 0)
            json_object_object_add(k, "anthropic-beta", b);
        else
            json_object_put(b);
    }
    *out = k;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* The provider call. */

typedef struct conv_ctx {
    llmc__msg_conv *cv;
} conv_ctx;

static int on_chat_chunk(void *ud, struct json_object *chunk)
{
    conv_ctx *x = ud;
    return llmc__msg_conv_chunk(x->cv, chunk);
}

llmc_status llmc__messages_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                    llmc_chunk_cb cb, void *ud, json_object **out,
                                    int *attempts, llmc_err *err)
{
    *out = NULL;
    if (rt->exec->flags & LLMC_PROVIDER_MESSAGES)
        return llmc__call_upstream(c, LLMC_CALL_MESSAGES, req, NULL, rt, cb, ud, out, attempts,
                                   err);
    /* Any other chat provider: through its chat adapter. */
    json_object *chat = NULL;
    llmc_status st = llmc__msg_to_chat(req, rt->exec->hdr.name, &chat, err);
    if (st != LLMC_OK)
        return st;
    conv_ctx x = {NULL};
    if (cb && !(x.cv = llmc__msg_conv_new(cb, ud))) {
        json_object_put(chat);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    json_object *resp = NULL;
    llmc__route chat_rt = *rt;
    chat_rt.api_headers = NULL; /* the Messages API's own, not chat's */
    st = llmc__call_upstream(c, LLMC_CALL_CHAT, chat, NULL, &chat_rt, cb ? on_chat_chunk : NULL,
                             &x, &resp, attempts, err);
    json_object_put(chat);
    if (st == LLMC_OK)
        st = llmc__msg_from_chat(resp, out, err);
    json_object_put(resp);
    if (st == LLMC_OK && x.cv && llmc__msg_conv_finish(x.cv, *out) != 0) {
        json_object_put(*out);
        *out = NULL;
        st = llmc_err_set(err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    }
    llmc__msg_conv_free(x.cv);
    return st;
}

/* ------------------------------------------------------------------ */

/* A streamed answer is stored only when the stream said why it stopped. */
int llmc__messages_storable(json_object *resp, int streamed)
{
    return llmc__msg_storable(resp) && (!streamed || llmc__msg_finished(resp));
}

void *llmc__messages_asm_new(void)
{
    return llmc__msg_asm_new();
}

llmc_status llmc__messages_asm_add(void *a, json_object *ev)
{
    return llmc__msg_asm_add(a, ev);
}

json_object *llmc__messages_asm_result(void *a)
{
    return llmc__msg_asm_result(a);
}

void llmc__messages_asm_free(void *a)
{
    llmc__msg_asm_free(a);
}
