/* A translated Responses stream: the chat chunks of a provider without a
 * Responses endpoint, turned into Responses events as they arrive, so the
 * caller sees the first words while the provider still writes. The
 * events have the shapes the replayer (responses_stream.c) gives a
 * stored response, and the response stored at the end carries the ids
 * and items the events showed: a later hit replays what this miss
 * streamed. */
#include "calltype_responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_MESSAGE, K_REASONING, K_CALL };

typedef struct rc_item {
    int kind;
    int tool;       /* the chat tool call's index (K_CALL) */
    char id[64];
    llmc_buf text;  /* the text, summary or arguments so far */
    char *call_id;  /* K_CALL */
    char *name;     /* K_CALL */
} rc_item;

struct llmc__rconv {
    json_object *req;
    llmc_chunk_cb cb;
    void *ud;
    char id[64];
    int64_t seq;
    int started;
    int stopped;
    rc_item *items;
    size_t n, cap;
    int open; /* index of the open item, -1 none */
    llmc_status fail;
    char fail_msg[200];
};

llmc__rconv *llmc__rconv_new(json_object *req, llmc_chunk_cb cb, void *ud)
{
    llmc__rconv *cv = calloc(1, sizeof *cv);
    if (!cv)
        return NULL;
    cv->req = req;
    cv->cb = cb;
    cv->ud = ud;
    cv->open = -1;
    llmc_provider_new_id("resp_", cv->id, sizeof cv->id);
    return cv;
}

void llmc__rconv_free(llmc__rconv *cv)
{
    if (!cv)
        return;
    for (size_t i = 0; i < cv->n; i++) {
        llmc_buf_free(&cv->items[i].text);
        free(cv->items[i].call_id);
        free(cv->items[i].name);
    }
    free(cv->items);
    free(cv);
}

llmc_status llmc__rconv_error(const llmc__rconv *cv, llmc_err *err)
{
    if (!cv || cv->fail == LLMC_OK)
        return LLMC_OK;
    return llmc_err_set(err, cv->fail, 0, "%s", cv->fail_msg);
}

static int fail(llmc__rconv *cv, llmc_status st, const char *msg)
{
    if (cv->fail == LLMC_OK) {
        cv->fail = st;
        snprintf(cv->fail_msg, sizeof cv->fail_msg, "%s", msg);
    }
    cv->stopped = 1;
    return 1;
}

static int oom(llmc__rconv *cv)
{
    return fail(cv, LLMC_ENOMEM, "out of memory converting the chat stream");
}

static const char *str_of(json_object *o, const char *name)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* ------------------------------------------------------------------ */
/* Events. */

static json_object *ev_new(llmc__rconv *cv, const char *type)
{
    json_object *e = json_object_new_object();
    if (!e)
        return NULL;
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "sequence_number", json_object_new_int64(cv->seq++));
    return e;
}

static int send_ev(llmc__rconv *cv, json_object *e)
{
    if (!e)
        return oom(cv);
    int r = cv->stopped ? 1 : cv->cb(cv->ud, e);
    json_object_put(e);
    if (r)
        cv->stopped = 1;
    return r;
}

/* An event about item i: its id and output index, then `index_name`
 * (content_index, summary_index) = 0 when given. */
static json_object *item_ev(llmc__rconv *cv, const char *type, size_t i, const char *index_name)
{
    json_object *e = ev_new(cv, type);
    if (!e)
        return NULL;
    json_object_object_add(e, "item_id", json_object_new_string(cv->items[i].id));
    json_object_object_add(e, "output_index", json_object_new_int((int)i));
    if (index_name)
        json_object_object_add(e, index_name, json_object_new_int(0));
    return e;
}

static json_object *text_of(const rc_item *it)
{
    return json_object_new_string_len(it->text.data ? it->text.data : "", (int)it->text.len);
}

/* The part of a message or reasoning item: empty as it starts, whole
 * once done. */
static json_object *part_json(const rc_item *it, int done)
{
    json_object *p = json_object_new_object();
    int msg = it->kind == K_MESSAGE;
    json_object_object_add(p, "type", json_object_new_string(msg ? "output_text" : "summary_text"));
    json_object_object_add(p, "text", done ? text_of(it) : json_object_new_string(""));
    if (msg)
        json_object_object_add(p, "annotations", json_object_new_array());
    return p;
}

/* The item as responses_from_chat builds it, in progress or done (the
 * replayer's output_item.added shows the same in-progress form). */
static json_object *item_json(const rc_item *it, int done)
{
    json_object *o = json_object_new_object(), *a;
    json_object_object_add(o, "id", json_object_new_string(it->id));
    switch (it->kind) {
    case K_MESSAGE:
        json_object_object_add(o, "type", json_object_new_string("message"));
        json_object_object_add(o, "status",
                               json_object_new_string(done ? "completed" : "in_progress"));
        json_object_object_add(o, "role", json_object_new_string("assistant"));
        a = json_object_new_array();
        if (done)
            json_object_array_add(a, part_json(it, 1));
        json_object_object_add(o, "content", a);
        break;
    case K_REASONING:
        json_object_object_add(o, "type", json_object_new_string("reasoning"));
        a = json_object_new_array();
        if (done)
            json_object_array_add(a, part_json(it, 1));
        json_object_object_add(o, "summary", a);
        break;
    default:
        json_object_object_add(o, "type", json_object_new_string("function_call"));
        json_object_object_add(o, "status",
                               json_object_new_string(done ? "completed" : "in_progress"));
        json_object_object_add(o, "call_id", json_object_new_string(it->call_id ? it->call_id : ""));
        json_object_object_add(o, "name", json_object_new_string(it->name ? it->name : ""));
        json_object_object_add(o, "arguments", done ? text_of(it) : json_object_new_string(""));
        break;
    }
    return o;
}

/* response.created and response.in_progress: the response as the
 * translation of an answer not yet written shows it (from the chunk's
 * created and model, the request's settings). */
static int start(llmc__rconv *cv, json_object *chunk)
{
    cv->started = 1;
    json_object *chat = json_object_new_object(), *choices = json_object_new_array(),
                *ch = json_object_new_object(), *v, *r = NULL;
    json_object_object_add(ch, "index", json_object_new_int(0));
    json_object_object_add(ch, "message", json_object_new_object());
    json_object_array_add(choices, ch);
    json_object_object_add(chat, "choices", choices);
    if (chunk && json_object_object_get_ex(chunk, "created", &v) &&
        json_object_is_type(v, json_type_int))
        json_object_object_add(chat, "created", json_object_get(v));
    if (str_of(chunk, "model"))
        json_object_object_add(chat, "model", json_object_new_string(str_of(chunk, "model")));
    llmc_status st = llmc__responses_from_chat(chat, cv->req, &r, NULL);
    json_object_put(chat);
    if (st != LLMC_OK)
        return oom(cv);
    json_object_object_add(r, "id", json_object_new_string(cv->id));
    static const char *const head[] = {"response.created", "response.in_progress"};
    for (int i = 0; i < 2; i++) {
        json_object *s = llmc__responses_started(r), *e = ev_new(cv, head[i]);
        if (!s || !e) {
            json_object_put(s);
            json_object_put(e);
            json_object_put(r);
            return oom(cv);
        }
        json_object_object_add(e, "response", s);
        if (send_ev(cv, e)) {
            json_object_put(r);
            return 1;
        }
    }
    json_object_put(r);
    return 0;
}

/* The .done events of the open item. */
static int close_item(llmc__rconv *cv)
{
    if (cv->open < 0)
        return 0;
    size_t i = (size_t)cv->open;
    rc_item *it = &cv->items[i];
    cv->open = -1;
    json_object *e;
    if (it->kind == K_CALL) {
        e = item_ev(cv, "response.function_call_arguments.done", i, NULL);
        if (e)
            json_object_object_add(e, "arguments", text_of(it));
        if (send_ev(cv, e))
            return 1;
    } else {
        int msg = it->kind == K_MESSAGE;
        const char *ix = msg ? "content_index" : "summary_index";
        e = item_ev(cv, msg ? "response.output_text.done" : "response.reasoning_summary_text.done",
                    i, ix);
        if (e) {
            json_object_object_add(e, "text", text_of(it));
            if (msg)
                json_object_object_add(e, "logprobs", json_object_new_array());
        }
        if (send_ev(cv, e))
            return 1;
        e = item_ev(cv, msg ? "response.content_part.done" : "response.reasoning_summary_part.done",
                    i, ix);
        if (e)
            json_object_object_add(e, "part", part_json(it, 1));
        if (send_ev(cv, e))
            return 1;
    }
    e = ev_new(cv, "response.output_item.done");
    if (e) {
        json_object_object_add(e, "output_index", json_object_new_int((int)i));
        json_object_object_add(e, "item", item_json(it, 1));
    }
    return send_ev(cv, e);
}

/* Close the open item, open a new one of `kind` and announce it. */
static int open_item(llmc__rconv *cv, int kind, int tool, json_object *tc)
{
    if (close_item(cv))
        return 1;
    if (cv->n == cv->cap) {
        size_t nc = cv->cap ? cv->cap * 2 : 4;
        rc_item *ni = realloc(cv->items, nc * sizeof *ni);
        if (!ni)
            return oom(cv);
        cv->items = ni;
        cv->cap = nc;
    }
    size_t i = cv->n++;
    rc_item *it = &cv->items[i];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->tool = tool;
    llmc_provider_new_id(kind == K_MESSAGE ? "msg_" : kind == K_REASONING ? "rs_" : "fc_", it->id,
                         sizeof it->id);
    if (tc) {
        json_object *fn = NULL;
        json_object_object_get_ex(tc, "function", &fn);
        const char *cid = str_of(tc, "id"), *name = str_of(fn, "name");
        if ((cid && !(it->call_id = strdup(cid))) || (name && !(it->name = strdup(name))))
            return oom(cv);
    }
    cv->open = (int)i;
    json_object *e = ev_new(cv, "response.output_item.added");
    if (e) {
        json_object_object_add(e, "output_index", json_object_new_int((int)i));
        json_object_object_add(e, "item", item_json(it, 0));
    }
    if (send_ev(cv, e))
        return 1;
    if (kind == K_CALL)
        return 0;
    int msg = kind == K_MESSAGE;
    e = item_ev(cv, msg ? "response.content_part.added" : "response.reasoning_summary_part.added",
                i, msg ? "content_index" : "summary_index");
    if (e)
        json_object_object_add(e, "part", part_json(it, 0));
    return send_ev(cv, e);
}

/* A piece of the open item's text, as one delta. */
static int delta(llmc__rconv *cv, const char *s)
{
    size_t i = (size_t)cv->open;
    rc_item *it = &cv->items[i];
    if (llmc_buf_puts(&it->text, s) != LLMC_OK)
        return oom(cv);
    json_object *e;
    if (it->kind == K_MESSAGE) {
        e = item_ev(cv, "response.output_text.delta", i, "content_index");
        if (e) {
            json_object_object_add(e, "delta", json_object_new_string(s));
            json_object_object_add(e, "logprobs", json_object_new_array());
        }
    } else {
        e = item_ev(cv, it->kind == K_REASONING ? "response.reasoning_summary_text.delta"
                                                : "response.function_call_arguments.delta",
                    i, it->kind == K_REASONING ? "summary_index" : NULL);
        if (e)
            json_object_object_add(e, "delta", json_object_new_string(s));
    }
    return send_ev(cv, e);
}

/* Text of `kind`: into the open item when it is one, else a new item
 * (text after a tool call is a second message, as the events show it). */
static int text_piece(llmc__rconv *cv, int kind, const char *s)
{
    if (!s || !*s)
        return 0;
    if ((cv->open < 0 || cv->items[cv->open].kind != kind) && open_item(cv, kind, -1, NULL))
        return 1;
    return delta(cv, s);
}

static int tool_piece(llmc__rconv *cv, json_object *tc, int ti)
{
    if (cv->open < 0 || cv->items[cv->open].kind != K_CALL || cv->items[cv->open].tool != ti) {
        for (size_t i = 0; i < cv->n; i++)
            if (cv->items[i].kind == K_CALL && cv->items[i].tool == ti) {
                char m[160];
                snprintf(m, sizeof m, "the provider's chat stream went back to tool call %d "
                         "after another output began; not cached", ti);
                return fail(cv, LLMC_EPROTO, m);
            }
        if (open_item(cv, K_CALL, ti, tc))
            return 1;
    }
    rc_item *it = &cv->items[cv->open];
    json_object *fn = NULL;
    json_object_object_get_ex(tc, "function", &fn);
    /* A later id or name replaces the earlier one, as the chat stream
     * assembler does; the arguments arrive in pieces. */
    const char *cid = str_of(tc, "id"), *name = str_of(fn, "name"), *args = str_of(fn, "arguments");
    if (cid && (!it->call_id || strcmp(it->call_id, cid) != 0)) {
        free(it->call_id);
        if (!(it->call_id = strdup(cid)))
            return oom(cv);
    }
    if (name && (!it->name || strcmp(it->name, name) != 0)) {
        free(it->name);
        if (!(it->name = strdup(name)))
            return oom(cv);
    }
    return args && *args ? delta(cv, args) : 0;
}

/* The delta of one entry of choice 0. */
static int choice_delta(llmc__rconv *cv, json_object *ch)
{
    json_object *d, *tcs, *v;
    if (!json_object_object_get_ex(ch, "delta", &d) || !json_object_is_type(d, json_type_object))
        return 0;
    if (text_piece(cv, K_REASONING, str_of(d, "reasoning_content")) ||
        text_piece(cv, K_MESSAGE, str_of(d, "content")))
        return 1;
    if (!json_object_object_get_ex(d, "tool_calls", &tcs) ||
        !json_object_is_type(tcs, json_type_array))
        return 0;
    for (size_t k = 0; k < json_object_array_length(tcs); k++) {
        json_object *tc = json_object_array_get_idx(tcs, k);
        if (!tc || !json_object_is_type(tc, json_type_object))
            continue;
        int ti = json_object_object_get_ex(tc, "index", &v) ? json_object_get_int(v) : (int)k;
        if (tool_piece(cv, tc, ti))
            return 1;
    }
    return 0;
}

int llmc__rconv_chunk(llmc__rconv *cv, json_object *chunk)
{
    if (cv->stopped)
        return 1;
    if (!chunk || !json_object_is_type(chunk, json_type_object))
        return 0;
    if (!cv->started && start(cv, chunk))
        return 1;
    json_object *choices, *v;
    if (!json_object_object_get_ex(chunk, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array))
        return 0;
    /* The choice with index 0 (no index counts as 0, as the assembler
     * counts it): the one the translated answer holds. Each entry of it
     * adds to it, as the assembler adds them. */
    for (size_t i = 0; i < json_object_array_length(choices); i++) {
        json_object *ch = json_object_array_get_idx(choices, i);
        if (ch && json_object_is_type(ch, json_type_object) &&
            (!json_object_object_get_ex(ch, "index", &v) || json_object_get_int(v) == 0) &&
            choice_delta(cv, ch))
            return 1;
    }
    return 0;
}

int llmc__rconv_finish(llmc__rconv *cv, json_object *resp)
{
    if (cv->stopped)
        return 1;
    if (!cv->started && start(cv, NULL))
        return 1;
    if (close_item(cv))
        return 1;
    json_object *out = json_object_new_array();
    if (!out)
        return oom(cv);
    for (size_t i = 0; i < cv->n; i++)
        json_object_array_add(out, item_json(&cv->items[i], 1));
    json_object_object_add(resp, "id", json_object_new_string(cv->id));
    json_object_object_add(resp, "output", out);
    json_object *e = ev_new(cv, "response.completed");
    if (e)
        json_object_object_add(e, "response", json_object_get(resp));
    return send_ev(cv, e);
}
