/* The Messages API over a provider that does not speak it: the request
 * translated to an OpenAI chat request (then through that provider's
 * chat adapter), the chat answer translated back into a Message, and a
 * streamed chat answer turned into Messages events as it arrives. What
 * the chat format cannot carry is refused naming the field; nothing is
 * dropped that could change the answer. */
#include "internal.h"
#include "messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JFLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v)
               ? v
               : NULL;
}

static const char *str(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void put_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void put_ref(json_object *o, const char *k, json_object *v)
{
    json_object_object_add(o, k, json_object_get(v));
}

/* ------------------------------------------------------------------ */
/* Request: Messages -> chat. */

typedef struct xl {
    const char *provider;
    llmc_err *err;
} xl;

static llmc_status refuse(const xl *x, const char *what)
{
    return llmc_err_set(x->err, LLMC_EINVAL, 0,
                        "%s cannot be translated for provider %s (the Messages API is served "
                        "natively only by anthropic)",
                        what, x->provider);
}

/* A text block -> a chat text part. */
static json_object *text_part(json_object *blk)
{
    json_object *p = json_object_new_object();
    put_str(p, "type", "text");
    put_ref(p, "text", get(blk, "text"));
    return p;
}

static llmc_status image_part(const xl *x, json_object *blk, const char *where, json_object **out)
{
    json_object *src = get(blk, "source");
    const char *st = str(src, "type");
    char what[160];
    json_object *iu = json_object_new_object();
    if (st && strcmp(st, "base64") == 0 && str(src, "media_type") && str(src, "data")) {
        llmc_buf u = LLMC_BUF_INIT;
        llmc_buf_printf(&u, "data:%s;base64,", str(src, "media_type"));
        llmc_buf_puts(&u, str(src, "data"));
        json_object_object_add(iu, "url", json_object_new_string(u.data ? u.data : ""));
        llmc_buf_free(&u);
    } else if (st && strcmp(st, "url") == 0 && str(src, "url")) {
        put_ref(iu, "url", get(src, "url"));
    } else {
        json_object_put(iu);
        snprintf(what, sizeof what, "%s.source.type \"%s\"", where, st ? st : "(none)");
        return refuse(x, what);
    }
    json_object *p = json_object_new_object();
    put_str(p, "type", "image_url");
    json_object_object_add(p, "image_url", iu);
    *out = p;
    return LLMC_OK;
}

/* A tool_result's content (string or text blocks) as text. */
static llmc_status tool_result_text(const xl *x, json_object *blk, const char *where,
                                    llmc_buf *out)
{
    json_object *c = get(blk, "content");
    char what[160];
    if (!c)
        return LLMC_OK;
    if (json_object_is_type(c, json_type_string))
        return llmc_buf_puts(out, json_object_get_string(c));
    if (!json_object_is_type(c, json_type_array)) {
        snprintf(what, sizeof what, "%s.content (not a string or blocks)", where);
        return refuse(x, what);
    }
    for (size_t i = 0; i < json_object_array_length(c); i++) {
        json_object *b = json_object_array_get_idx(c, i);
        const char *t = str(b, "type");
        if (!t || strcmp(t, "text") != 0 || !str(b, "text")) {
            snprintf(what, sizeof what, "%s.content[%zu].type \"%s\"", where, i, t ? t : "(none)");
            return refuse(x, what);
        }
        if (i)
            llmc_buf_puts(out, "\n");
        llmc_buf_puts(out, str(b, "text"));
    }
    return LLMC_OK;
}

static llmc_status user_turn(const xl *x, json_object *m, size_t mi, json_object *out)
{
    json_object *c = get(m, "content");
    char where[96], what[160];
    if (c && json_object_is_type(c, json_type_string)) {
        json_object *u = json_object_new_object();
        put_str(u, "role", "user");
        put_ref(u, "content", c);
        json_object_array_add(out, u);
        return LLMC_OK;
    }
    if (!c || !json_object_is_type(c, json_type_array)) {
        snprintf(what, sizeof what, "messages[%zu].content (not a string or blocks)", mi);
        return refuse(x, what);
    }
    /* Tool results first, each its own tool message (chat wants them
     * right after the assistant's tool calls); the rest one user turn. */
    json_object *parts = json_object_new_array();
    llmc_status st = LLMC_OK;
    for (size_t j = 0; st == LLMC_OK && j < json_object_array_length(c); j++) {
        json_object *b = json_object_array_get_idx(c, j);
        const char *t = str(b, "type");
        snprintf(where, sizeof where, "messages[%zu].content[%zu]", mi, j);
        if (t && strcmp(t, "text") == 0 && str(b, "text")) {
            json_object_array_add(parts, text_part(b));
        } else if (t && strcmp(t, "image") == 0) {
            json_object *p = NULL;
            if ((st = image_part(x, b, where, &p)) == LLMC_OK)
                json_object_array_add(parts, p);
        } else if (t && strcmp(t, "tool_result") == 0) {
            json_object *ie = get(b, "is_error");
            if (ie && json_object_get_boolean(ie)) {
                snprintf(what, sizeof what, "%s.is_error", where);
                st = refuse(x, what);
                break;
            }
            llmc_buf text = LLMC_BUF_INIT;
            if ((st = tool_result_text(x, b, where, &text)) == LLMC_OK) {
                json_object *tm = json_object_new_object();
                put_str(tm, "role", "tool");
                put_ref(tm, "tool_call_id", get(b, "tool_use_id"));
                json_object_object_add(tm, "content",
                                       json_object_new_string(text.data ? text.data : ""));
                json_object_array_add(out, tm);
            }
            llmc_buf_free(&text);
        } else {
            snprintf(what, sizeof what, "%s.type \"%s\"", where, t ? t : "(none)");
            st = refuse(x, what);
        }
    }
    if (st == LLMC_OK && json_object_array_length(parts) > 0) {
        json_object *u = json_object_new_object();
        put_str(u, "role", "user");
        json_object_object_add(u, "content", parts);
        json_object_array_add(out, u);
        parts = NULL;
    }
    json_object_put(parts);
    return st;
}

static llmc_status assistant_turn(const xl *x, json_object *m, size_t mi, json_object *out)
{
    json_object *c = get(m, "content");
    char what[160];
    json_object *a = json_object_new_object();
    put_str(a, "role", "assistant");
    if (c && json_object_is_type(c, json_type_string)) {
        put_ref(a, "content", c);
        json_object_array_add(out, a);
        return LLMC_OK;
    }
    if (!c || !json_object_is_type(c, json_type_array)) {
        json_object_put(a);
        snprintf(what, sizeof what, "messages[%zu].content (not a string or blocks)", mi);
        return refuse(x, what);
    }
    llmc_buf text = LLMC_BUF_INIT;
    int has_text = 0;
    json_object *calls = json_object_new_array();
    llmc_status st = LLMC_OK;
    for (size_t j = 0; st == LLMC_OK && j < json_object_array_length(c); j++) {
        json_object *b = json_object_array_get_idx(c, j);
        const char *t = str(b, "type");
        if (t && strcmp(t, "text") == 0 && str(b, "text")) {
            llmc_buf_puts(&text, str(b, "text"));
            has_text = 1;
        } else if (t && strcmp(t, "tool_use") == 0 && str(b, "id") && str(b, "name")) {
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object *in = get(b, "input");
            put_ref(tc, "id", get(b, "id"));
            put_str(tc, "type", "function");
            put_ref(fn, "name", get(b, "name"));
            put_str(fn, "arguments", in ? json_object_to_json_string_ext(in, JFLAGS) : "{}");
            json_object_object_add(tc, "function", fn);
            json_object_array_add(calls, tc);
        } else {
            snprintf(what, sizeof what, "messages[%zu].content[%zu].type \"%s\"", mi, j,
                     t ? t : "(none)");
            st = refuse(x, what);
        }
    }
    if (st == LLMC_OK) {
        json_object_object_add(a, "content",
                               has_text ? json_object_new_string(text.data ? text.data : "")
                                        : NULL);
        if (json_object_array_length(calls) > 0) {
            json_object_object_add(a, "tool_calls", calls);
            calls = NULL;
        }
        json_object_array_add(out, a);
        a = NULL;
    }
    llmc_buf_free(&text);
    json_object_put(calls);
    json_object_put(a);
    return st;
}

static llmc_status system_msg(const xl *x, json_object *sys, json_object *out)
{
    json_object *s = json_object_new_object();
    put_str(s, "role", "system");
    if (json_object_is_type(sys, json_type_string)) {
        put_ref(s, "content", sys);
    } else if (json_object_is_type(sys, json_type_array)) {
        json_object *parts = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(sys); i++) {
            json_object *b = json_object_array_get_idx(sys, i);
            const char *t = str(b, "type");
            if (!t || strcmp(t, "text") != 0 || !str(b, "text")) {
                char what[96];
                json_object_put(parts);
                json_object_put(s);
                snprintf(what, sizeof what, "system[%zu].type \"%s\"", i, t ? t : "(none)");
                return refuse(x, what);
            }
            json_object_array_add(parts, text_part(b));
        }
        json_object_object_add(s, "content", parts);
    } else {
        json_object_put(s);
        return refuse(x, "system (not a string or text blocks)");
    }
    json_object_array_add(out, s);
    return LLMC_OK;
}

static llmc_status tools_out(const xl *x, json_object *tools, json_object *chat)
{
    char what[96];
    if (!json_object_is_type(tools, json_type_array))
        return refuse(x, "tools (not an array)");
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *type = str(t, "type");
        if ((type && strcmp(type, "custom") != 0) || !str(t, "name")) {
            /* Server tools (web search, code execution, bash, ...) run
             * at Anthropic. */
            json_object_put(arr);
            snprintf(what, sizeof what, "tools[%zu].type \"%s\"", i, type ? type : "(no name)");
            return refuse(x, what);
        }
        json_object *ft = json_object_new_object(), *fn = json_object_new_object();
        put_str(ft, "type", "function");
        put_ref(fn, "name", get(t, "name"));
        if (get(t, "description"))
            put_ref(fn, "description", get(t, "description"));
        if (get(t, "input_schema"))
            put_ref(fn, "parameters", get(t, "input_schema"));
        json_object_object_add(ft, "function", fn);
        json_object_array_add(arr, ft);
    }
    json_object_object_add(chat, "tools", arr);
    return LLMC_OK;
}

static llmc_status tool_choice_out(const xl *x, json_object *tc, json_object *chat)
{
    const char *t = str(tc, "type");
    json_object *dp = get(tc, "disable_parallel_tool_use");
    if (!t)
        return refuse(x, "tool_choice (no type)");
    if (strcmp(t, "auto") == 0)
        put_str(chat, "tool_choice", "auto");
    else if (strcmp(t, "any") == 0)
        put_str(chat, "tool_choice", "required");
    else if (strcmp(t, "none") == 0)
        put_str(chat, "tool_choice", "none");
    else if (strcmp(t, "tool") == 0 && str(tc, "name")) {
        json_object *o = json_object_new_object(), *fn = json_object_new_object();
        put_str(o, "type", "function");
        put_ref(fn, "name", get(tc, "name"));
        json_object_object_add(o, "function", fn);
        json_object_object_add(chat, "tool_choice", o);
    } else {
        char what[96];
        snprintf(what, sizeof what, "tool_choice.type \"%s\"", t);
        return refuse(x, what);
    }
    if (dp && json_object_get_boolean(dp))
        json_object_object_add(chat, "parallel_tool_calls", json_object_new_boolean(0));
    return LLMC_OK;
}

/* Members with no chat equivalent. */
static const char *const untranslatable[] = {"container", "mcp_servers", "context_management",
                                             NULL};

llmc_status llmc__msg_to_chat(json_object *req, const char *provider, json_object **out,
                              llmc_err *err)
{
    xl x = {provider, err};
    *out = NULL;
    json_object *chat = json_object_new_object(), *msgs = json_object_new_array();
    llmc_status st = LLMC_OK;
    json_object *sys = get(req, "system");
    if (sys)
        st = system_msg(&x, sys, msgs);
    json_object *in = get(req, "messages");
    for (size_t i = 0; st == LLMC_OK && in && i < json_object_array_length(in); i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = str(m, "role");
        if (role && strcmp(role, "user") == 0)
            st = user_turn(&x, m, i, msgs);
        else if (role && strcmp(role, "assistant") == 0)
            st = assistant_turn(&x, m, i, msgs);
        else {
            char what[96];
            snprintf(what, sizeof what, "messages[%zu].role \"%s\"", i, role ? role : "(none)");
            st = refuse(&x, what);
        }
    }
    json_object_object_add(chat, "messages", msgs);
    json_object_object_foreach(req, k, v)
    {
        if (st != LLMC_OK)
            break;
        if (strcmp(k, "system") == 0 || strcmp(k, "messages") == 0 || strcmp(k, "stream") == 0 ||
            strcmp(k, "metadata") == 0)
            continue;
        if (strcmp(k, "tools") == 0)
            st = tools_out(&x, v, chat);
        else if (strcmp(k, "tool_choice") == 0)
            st = tool_choice_out(&x, v, chat);
        else if (strcmp(k, "stop_sequences") == 0)
            put_ref(chat, "stop", v);
        else if (strcmp(k, "thinking") == 0) {
            const char *t = str(v, "type");
            if (!t || strcmp(t, "disabled") != 0)
                st = refuse(&x, "thinking");
        } else {
            int bad = 0;
            for (int i = 0; untranslatable[i] && !bad; i++)
                bad = strcmp(k, untranslatable[i]) == 0;
            if (bad)
                st = refuse(&x, k);
            else
                put_ref(chat, k, v); /* model, max_tokens, temperature, top_p, top_k, ... */
        }
    }
    json_object *md = get(req, "metadata");
    if (st == LLMC_OK && str(md, "user_id") && !get(chat, "user"))
        put_ref(chat, "user", get(md, "user_id"));
    if (st != LLMC_OK) {
        json_object_put(chat);
        return st;
    }
    *out = chat;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* Answer: chat -> Message. */

static const char *stop_reason_of(const char *fr)
{
    if (!fr)
        return "end_turn";
    if (strcmp(fr, "length") == 0)
        return "max_tokens";
    if (strcmp(fr, "tool_calls") == 0 || strcmp(fr, "function_call") == 0)
        return "tool_use";
    if (strcmp(fr, "content_filter") == 0)
        return "refusal";
    return "end_turn";
}

static int64_t int_of(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? json_object_get_int64(v)
               : 0;
}

static json_object *usage_of(json_object *cu)
{
    json_object *u = json_object_new_object();
    int64_t cached = int_of(get(cu, "prompt_tokens_details"), "cached_tokens");
    int64_t prompt = int_of(cu, "prompt_tokens");
    json_object_object_add(u, "input_tokens",
                           json_object_new_int64(prompt > cached ? prompt - cached : 0));
    json_object_object_add(u, "cache_creation_input_tokens", json_object_new_int64(0));
    json_object_object_add(u, "cache_read_input_tokens", json_object_new_int64(cached));
    json_object_object_add(u, "output_tokens", json_object_new_int64(int_of(cu, "completion_tokens")));
    return u;
}

llmc_status llmc__msg_from_chat(json_object *chat, json_object **out, llmc_err *err)
{
    *out = NULL;
    json_object *choices = get(chat, "choices");
    json_object *ch = choices && json_object_is_type(choices, json_type_array) &&
                              json_object_array_length(choices) > 0
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    json_object *msg = get(ch, "message");
    if (!msg)
        return llmc_err_set(err, LLMC_EPROTO, 0, "the provider's answer has no message to "
                            "translate into a Messages API answer");
    json_object *m = json_object_new_object(), *content = json_object_new_array();
    put_ref(m, "id", get(chat, "id") ? get(chat, "id") : NULL);
    put_str(m, "type", "message");
    put_str(m, "role", "assistant");
    put_ref(m, "model", get(chat, "model"));
    const char *text = str(msg, "content");
    if (text && *text) {
        json_object *b = json_object_new_object();
        put_str(b, "type", "text");
        put_str(b, "text", text);
        json_object_array_add(content, b);
    }
    json_object *tcs = get(msg, "tool_calls");
    for (size_t i = 0; tcs && json_object_is_type(tcs, json_type_array) &&
                       i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *fn = get(tc, "function");
        const char *args = str(fn, "arguments");
        json_object *in = args && *args ? json_tokener_parse(args) : json_object_new_object();
        if (!in || !json_object_is_type(in, json_type_object)) {
            json_object_put(in);
            json_object_put(m);
            json_object_put(content);
            return llmc_err_set(err, LLMC_EPROTO, 0, "tool call %zu's arguments are not a JSON "
                                "object", i);
        }
        json_object *b = json_object_new_object();
        put_str(b, "type", "tool_use");
        put_ref(b, "id", get(tc, "id"));
        put_ref(b, "name", get(fn, "name"));
        json_object_object_add(b, "input", in);
        json_object_array_add(content, b);
    }
    json_object_object_add(m, "content", content);
    put_str(m, "stop_reason", stop_reason_of(str(ch, "finish_reason")));
    json_object_object_add(m, "stop_sequence", NULL);
    json_object_object_add(m, "usage", usage_of(get(chat, "usage")));
    *out = m;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* Streams: chat chunks -> Messages events, as they arrive. The closing
 * events come from the translated answer once the stream completed. */

struct llmc__msg_conv {
    llmc_chunk_cb cb;
    void *ud;
    int started;
    int open;        /* index of the open block, -1 none */
    int open_tool;   /* chat tool index of the open tool_use block, -1 */
    int nblocks;
    int stopped;
};

llmc__msg_conv *llmc__msg_conv_new(llmc_chunk_cb cb, void *ud)
{
    llmc__msg_conv *cv = calloc(1, sizeof *cv);
    if (cv) {
        cv->cb = cb;
        cv->ud = ud;
        cv->open = cv->open_tool = -1;
    }
    return cv;
}

void llmc__msg_conv_free(llmc__msg_conv *cv)
{
    free(cv);
}

static int send_ev(llmc__msg_conv *cv, json_object *ev)
{
    if (!ev)
        return 1;
    int r = cv->stopped ? 1 : cv->cb(cv->ud, ev);
    json_object_put(ev);
    if (r)
        cv->stopped = 1;
    return r;
}

static json_object *ev_new(const char *type, int idx)
{
    json_object *e = json_object_new_object();
    put_str(e, "type", type);
    if (idx >= 0)
        json_object_object_add(e, "index", json_object_new_int(idx));
    return e;
}

static int close_block(llmc__msg_conv *cv)
{
    if (cv->open < 0)
        return 0;
    int idx = cv->open;
    cv->open = cv->open_tool = -1;
    return send_ev(cv, ev_new("content_block_stop", idx));
}

static int open_block(llmc__msg_conv *cv, json_object *blk)
{
    if (close_block(cv))
        return 1;
    cv->open = cv->nblocks++;
    json_object *e = ev_new("content_block_start", cv->open);
    json_object_object_add(e, "content_block", blk);
    if (send_ev(cv, e))
        return 1;
    return cv->open == 0 ? send_ev(cv, ev_new("ping", -1)) : 0;
}

static int send_delta(llmc__msg_conv *cv, const char *dtype, const char *field, const char *s)
{
    json_object *e = ev_new("content_block_delta", cv->open), *d = json_object_new_object();
    put_str(d, "type", dtype);
    put_str(d, field, s);
    json_object_object_add(e, "delta", d);
    return send_ev(cv, e);
}

static int start_message(llmc__msg_conv *cv, json_object *chunk)
{
    json_object *m = json_object_new_object(), *u = json_object_new_object();
    put_ref(m, "id", get(chunk, "id"));
    put_str(m, "type", "message");
    put_str(m, "role", "assistant");
    put_ref(m, "model", get(chunk, "model"));
    json_object_object_add(m, "content", json_object_new_array());
    json_object_object_add(m, "stop_reason", NULL);
    json_object_object_add(m, "stop_sequence", NULL);
    json_object_object_add(u, "input_tokens", json_object_new_int(0));
    json_object_object_add(u, "output_tokens", json_object_new_int(0));
    json_object_object_add(m, "usage", u);
    json_object *e = ev_new("message_start", -1);
    json_object_object_add(e, "message", m);
    cv->started = 1;
    return send_ev(cv, e);
}

int llmc__msg_conv_chunk(llmc__msg_conv *cv, json_object *chunk)
{
    if (cv->stopped)
        return 1;
    if (!cv->started && start_message(cv, chunk))
        return 1;
    json_object *choices = get(chunk, "choices");
    json_object *ch = choices && json_object_is_type(choices, json_type_array) &&
                              json_object_array_length(choices) > 0
                          ? json_object_array_get_idx(choices, 0)
                          : NULL;
    json_object *d = get(ch, "delta");
    const char *text = str(d, "content");
    if (text && *text) {
        if (cv->open < 0 || cv->open_tool != -2) {
            json_object *b = json_object_new_object();
            put_str(b, "type", "text");
            put_str(b, "text", "");
            if (open_block(cv, b))
                return 1;
            cv->open_tool = -2; /* the open block is text */
        }
        if (send_delta(cv, "text_delta", "text", text))
            return 1;
    }
    json_object *tcs = get(d, "tool_calls");
    for (size_t i = 0; tcs && json_object_is_type(tcs, json_type_array) &&
                       i < json_object_array_length(tcs); i++) {
        json_object *tc = json_object_array_get_idx(tcs, i), *fn = get(tc, "function");
        int ti = get(tc, "index") ? json_object_get_int(get(tc, "index")) : (int)i;
        if (str(tc, "id") || cv->open_tool != ti) {
            json_object *b = json_object_new_object();
            put_str(b, "type", "tool_use");
            put_str(b, "id", str(tc, "id") ? str(tc, "id") : "");
            put_str(b, "name", str(fn, "name") ? str(fn, "name") : "");
            json_object_object_add(b, "input", json_object_new_object());
            if (open_block(cv, b))
                return 1;
            cv->open_tool = ti;
        }
        const char *args = str(fn, "arguments");
        if (args && *args && send_delta(cv, "input_json_delta", "partial_json", args))
            return 1;
    }
    return 0;
}

int llmc__msg_conv_finish(llmc__msg_conv *cv, json_object *msg)
{
    if (cv->stopped)
        return 1;
    if (!cv->started && start_message(cv, msg))
        return 1;
    if (cv->open < 0 && cv->nblocks == 0 && send_ev(cv, ev_new("ping", -1)))
        return 1;
    if (close_block(cv))
        return 1;
    json_object *e = ev_new("message_delta", -1), *d = json_object_new_object();
    put_ref(d, "stop_reason", get(msg, "stop_reason"));
    put_ref(d, "stop_sequence", get(msg, "stop_sequence"));
    json_object_object_add(e, "delta", d);
    put_ref(e, "usage", get(msg, "usage"));
    if (send_ev(cv, e))
        return 1;
    return send_ev(cv, ev_new("message_stop", -1));
}
