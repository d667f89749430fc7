/* The call-type table: one row per kind of call the client, the command
 * and the proxy serve. A row says how a request of that kind is validated,
 * what its key material is (the whole request, or one entry per input
 * item), how a hit is marked, whether it streams (chunks captured on a
 * miss, replayed on a hit) and which proxy paths serve it. A new endpoint
 * is a new row plus its adapters; the pipeline (call.c) reads only the
 * row. */
#include "client_internal.h"
#include "calltype_responses.h"
#include "messages.h"

#include <string.h>

static llmc_status validate_chat(const llmc__jv *root, llmc_err *err)
{
    llmc__jv v = llmc__jv_member(root, "messages");
    if (llmc__jv_kind(&v) == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"messages\" is missing");
    if (llmc__jv_kind(&v) != JV_ARRAY || llmc__jv_len(&v) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"messages\" must be a non-empty array");
    return LLMC_OK;
}

static llmc_status validate_text(const llmc__jv *root, llmc_err *err)
{
    llmc__jv v = llmc__jv_member(root, "prompt");
    if (llmc__jv_kind(&v) == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"prompt\" is missing");
    return LLMC_OK;
}

static llmc_status validate_embedding(const llmc__jv *root, llmc_err *err)
{
    llmc__jv v = llmc__jv_member(root, "input");
    if (llmc__jv_kind(&v) == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"input\" is missing");
    return LLMC_OK;
}

static const char *const messages_paths[] = {"/v1/messages", "/messages", NULL};
static const char *const messages_headers[] = {"anthropic-version", "anthropic-beta", NULL};

static const char *const chat_paths[] = {"/v1/chat/completions", "/chat/completions", NULL};
static const char *const text_paths[] = {"/v1/completions", "/completions", NULL};
static const char *const embed_paths[] = {"/v1/embeddings", "/embeddings", NULL};

static const llmc__calltype rows[] = {
    {LLMC_CALL_CHAT, "chat", "chat completion", LLMC_PROVIDER_CHAT, validate_chat, 0,
     LLMC__HIT_SPLICE, 1, chat_paths, "chat"},
    {LLMC_CALL_TEXT, "text", "text completion", LLMC_PROVIDER_TEXT, validate_text, 0,
     LLMC__HIT_SPLICE, 0, text_paths, "completions"},
    {LLMC_CALL_EMBEDDING, "embedding", "embedding", LLMC_PROVIDER_EMBEDDING,
     validate_embedding, 1, LLMC__HIT_MERGE, 0, embed_paths, "embeddings"},
    {LLMC_CALL_RESPONSES, "responses", "response", LLMC_PROVIDER_CHAT, llmc__responses_validate,
     0, LLMC__HIT_SPLICE, 1, llmc__responses_paths, "responses", llmc__responses_never_cached,
     llmc__responses_key_excluded, llmc__responses_upstream, llmc__responses_replay_sink,
     llmc__responses_storable, 1},
    {LLMC_CALL_MESSAGES, "messages", "messages", LLMC_PROVIDER_CHAT, llmc__validate_messages,
     0, LLMC__HIT_SPLICE, 1, messages_paths, "messages", NULL, NULL, llmc__messages_upstream,
     llmc__msg_replay, llmc__messages_storable, 1, messages_headers, llmc__messages_key_request,
     llmc__messages_asm_new, llmc__messages_asm_add, llmc__messages_asm_result,
     llmc__messages_asm_free},
};

const llmc__calltype *llmc__calltype_of(llmc_call_type t)
{
    for (size_t i = 0; i < LLMC_ARRAY_LEN(rows); i++)
        if (rows[i].type == t)
            return &rows[i];
    return NULL;
}

llmc_status llmc_call_type_info_get(llmc_call_type t, llmc_call_type_info *out, size_t size)
{
    const llmc__calltype *ct = llmc__calltype_of(t);
    if (!out || size < offsetof(llmc_call_type_info, label) + sizeof out->label)
        return LLMC_EINVAL;
    if (!ct)
        return LLMC_ENOTFOUND;
    llmc_call_type_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    info.type = ct->type;
    info.name = ct->name;
    info.paths = ct->paths;
    info.streams = ct->streams;
    info.label = ct->label;
    info.typed_events = ct->typed_events;
    info.headers = ct->headers;
    memcpy(out, &info, size < sizeof info ? size : sizeof info);
    return LLMC_OK;
}

int llmc__calltype_key_excluded(llmc_call_type t, const char *name)
{
    const llmc__calltype *ct = llmc__calltype_of(t);
    if (!ct || !ct->key_excluded)
        return 0;
    for (const char *const *p = ct->key_excluded; *p; p++)
        if (strcmp(*p, name) == 0)
            return 1;
    return 0;
}

llmc_status llmc_call_type_for_path(const char *path, llmc_call_type *out)
{
    if (!path || !out)
        return LLMC_EINVAL;
    for (size_t i = 0; i < LLMC_ARRAY_LEN(rows); i++)
        for (const char *const *p = rows[i].paths; *p; p++)
            if (strcmp(path, *p) == 0) {
                *out = rows[i].type;
                return LLMC_OK;
            }
    return LLMC_ENOTFOUND;
}

llmc_call_type llmc_call_type_of_request(const char *json, size_t len)
{
    /* The member that names the kind: "messages" (chat), else "prompt"
     * (text), else "input" (embeddings). */
    if (!json)
        return LLMC_CALL_RAW;
    if (len == LLMC_ZSTR)
        len = strlen(json);
    llmc__jv root;
    memset(&root, 0, sizeof root);
    json_object *o = NULL;
    llmc__fjdoc *d = llmc__fj_thread_doc();
    if (d && len <= INT32_MAX && llmc__fj_parse(d, json, len)) {
        root.d = d;
        root.i = 0;
    } else if (llmc__parse_request_text(json, len, &o, NULL) == LLMC_OK) {
        root.o = o;
    } else {
        return LLMC_CALL_RAW;
    }
    static const struct {
        const char *member;
        llmc_call_type t;
    } by_member[] = {{"messages", LLMC_CALL_CHAT},
                     {"prompt", LLMC_CALL_TEXT},
                     {"input", LLMC_CALL_EMBEDDING}};
    llmc_call_type t = LLMC_CALL_RAW;
    for (size_t i = 0; i < LLMC_ARRAY_LEN(by_member) && t == LLMC_CALL_RAW; i++) {
        llmc__jv m = llmc__jv_member(&root, by_member[i].member);
        if (llmc__jv_kind(&m) != JV_ABSENT)
            t = by_member[i].t;
    }
    if (o)
        json_object_put(o);
    return t;
}
