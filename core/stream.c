/* Streams: assembling normalised chat.completion.chunk objects into one
 * chat.completion (what a streamed miss stores), and the reverse, the
 * replay of a stored chat.completion as a faithful chunk sequence (what a
 * streamed hit sends). assemble(replay(x)) reproduces x for every field
 * the normalised format defines; the round trip is tested. */
#include "net.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

typedef struct tool_acc {
    int index;
    char *id;
    char *type;
    char *name;
    llmc_buf args;
} tool_acc;

typedef struct choice_acc {
    int index;
    char *role;
    llmc_buf content;
    int has_content;
    llmc_buf reasoning;
    int has_reasoning;
    char *finish;
    tool_acc *tools;
    size_t n_tools;
} choice_acc;

struct llmc__assembler {
    char *id;
    int64_t created;
    char *model;
    char *sysfp;
    json_object *usage;
    choice_acc *choices;
    size_t n_choices;
    int got_any;
};

llmc__assembler *llmc__assembler_new(void)
{
    return calloc(1, sizeof(llmc__assembler));
}

void llmc__assembler_free(llmc__assembler *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->model);
    free(a->sysfp);
    if (a->usage)
        json_object_put(a->usage);
    for (size_t i = 0; i < a->n_choices; i++) {
        choice_acc *c = &a->choices[i];
        free(c->role);
        free(c->finish);
        llmc_buf_free(&c->content);
        llmc_buf_free(&c->reasoning);
        for (size_t k = 0; k < c->n_tools; k++) {
            free(c->tools[k].id);
            free(c->tools[k].type);
            free(c->tools[k].name);
            llmc_buf_free(&c->tools[k].args);
        }
        free(c->tools);
    }
    free(a->choices);
    free(a);
}

static const char *str_member(json_object *o, const char *name)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static int set_str(char **dst, const char *s)
{
    if (!s)
        return 0;
    char *n = llmc__strdup(s);
    if (!n)
        return -1;
    free(*dst);
    *dst = n;
    return 0;
}

static choice_acc *choice_for(llmc__assembler *a, int index)
{
    for (size_t i = 0; i < a->n_choices; i++)
        if (a->choices[i].index == index)
            return &a->choices[i];
    choice_acc *n = realloc(a->choices, (a->n_choices + 1) * sizeof *n);
    if (!n)
        return NULL;
    a->choices = n;
    choice_acc *c = &a->choices[a->n_choices++];
    memset(c, 0, sizeof *c);
    c->index = index;
    return c;
}

static tool_acc *tool_for(choice_acc *c, int index)
{
    for (size_t i = 0; i < c->n_tools; i++)
        if (c->tools[i].index == index)
            return &c->tools[i];
    tool_acc *n = realloc(c->tools, (c->n_tools + 1) * sizeof *n);
    if (!n)
        return NULL;
    c->tools = n;
    tool_acc *t = &c->tools[c->n_tools++];
    memset(t, 0, sizeof *t);
    t->index = index;
    return t;
}

llmc_status llmc__assembler_add(llmc__assembler *a, struct json_object *chunk)
{
    if (!chunk || !json_object_is_type(chunk, json_type_object))
        return LLMC_EPROTO;
    a->got_any = 1;
    json_object *v;
    if (!a->id && set_str(&a->id, str_member(chunk, "id")) < 0)
        return LLMC_ENOMEM;
    if (!a->model && set_str(&a->model, str_member(chunk, "model")) < 0)
        return LLMC_ENOMEM;
    if (!a->sysfp && set_str(&a->sysfp, str_member(chunk, "system_fingerprint")) < 0)
        return LLMC_ENOMEM;
    if (!a->created && json_object_object_get_ex(chunk, "created", &v))
        a->created = json_object_get_int64(v);
    if (json_object_object_get_ex(chunk, "usage", &v) &&
        json_object_is_type(v, json_type_object)) {
        if (a->usage)
            json_object_put(a->usage);
        a->usage = json_object_get(v);
    }
    json_object *choices;
    if (!json_object_object_get_ex(chunk, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array))
        return LLMC_OK;
    size_t n = json_object_array_length(choices);
    for (size_t i = 0; i < n; i++) {
        json_object *ch = json_object_array_get_idx(choices, i);
        if (!json_object_is_type(ch, json_type_object))
            continue;
        int index = json_object_object_get_ex(ch, "index", &v) ? json_object_get_int(v) : 0;
        choice_acc *c = choice_for(a, index);
        if (!c)
            return LLMC_ENOMEM;
        const char *fr = str_member(ch, "finish_reason");
        if (fr && set_str(&c->finish, fr) < 0)
            return LLMC_ENOMEM;
        json_object *delta;
        if (!json_object_object_get_ex(ch, "delta", &delta) ||
            !json_object_is_type(delta, json_type_object))
            continue;
        if (set_str(&c->role, str_member(delta, "role")) < 0)
            return LLMC_ENOMEM;
        const char *s = str_member(delta, "content");
        if (s) {
            c->has_content = 1;
            if (llmc_buf_puts(&c->content, s) != LLMC_OK)
                return LLMC_ENOMEM;
        }
        s = str_member(delta, "reasoning_content");
        if (s) {
            c->has_reasoning = 1;
            if (llmc_buf_puts(&c->reasoning, s) != LLMC_OK)
                return LLMC_ENOMEM;
        }
        json_object *tcs;
        if (json_object_object_get_ex(delta, "tool_calls", &tcs) &&
            json_object_is_type(tcs, json_type_array)) {
            size_t nt = json_object_array_length(tcs);
            for (size_t k = 0; k < nt; k++) {
                json_object *tc = json_object_array_get_idx(tcs, k);
                if (!json_object_is_type(tc, json_type_object))
                    continue;
                int ti = json_object_object_get_ex(tc, "index", &v) ? json_object_get_int(v)
                                                                     : (int)k;
                tool_acc *t = tool_for(c, ti);
                if (!t)
                    return LLMC_ENOMEM;
                if (set_str(&t->id, str_member(tc, "id")) < 0 ||
                    set_str(&t->type, str_member(tc, "type")) < 0)
                    return LLMC_ENOMEM;
                json_object *fn;
                if (json_object_object_get_ex(tc, "function", &fn)) {
                    if (set_str(&t->name, str_member(fn, "name")) < 0)
                        return LLMC_ENOMEM;
                    const char *args = str_member(fn, "arguments");
                    if (args && llmc_buf_puts(&t->args, args) != LLMC_OK)
                        return LLMC_ENOMEM;
                }
            }
        }
    }
    return LLMC_OK;
}

static int cmp_choice(const void *x, const void *y)
{
    const choice_acc *a = x, *b = y;
    return (a->index > b->index) - (a->index < b->index);
}

static int cmp_tool(const void *x, const void *y)
{
    const tool_acc *a = x, *b = y;
    return (a->index > b->index) - (a->index < b->index);
}

struct json_object *llmc__assembler_result(llmc__assembler *a)
{
    if (!a->got_any)
        return NULL;
    json_object *r = json_object_new_object();
    json_object_object_add(r, "id", json_object_new_string(a->id ? a->id : ""));
    json_object_object_add(r, "object", json_object_new_string("chat.completion"));
    json_object_object_add(r, "created", json_object_new_int64(a->created));
    json_object_object_add(r, "model", json_object_new_string(a->model ? a->model : ""));
    if (a->sysfp)
        json_object_object_add(r, "system_fingerprint", json_object_new_string(a->sysfp));
    if (a->n_choices) /* qsort(NULL, 0, ...) is undefined */
        qsort(a->choices, a->n_choices, sizeof *a->choices, cmp_choice);
    json_object *choices = json_object_new_array();
    for (size_t i = 0; i < a->n_choices; i++) {
        choice_acc *c = &a->choices[i];
        json_object *ch = json_object_new_object();
        json_object *msg = json_object_new_object();
        json_object_object_add(ch, "index", json_object_new_int(c->index));
        json_object_object_add(msg, "role",
                               json_object_new_string(c->role ? c->role : "assistant"));
        json_object_object_add(msg, "content",
                               c->has_content ? json_object_new_string_len(
                                                    c->content.data ? c->content.data : "",
                                                    (int)c->content.len)
                                              : NULL);
        if (c->has_reasoning)
            json_object_object_add(
                msg, "reasoning_content",
                json_object_new_string_len(c->reasoning.data ? c->reasoning.data : "",
                                           (int)c->reasoning.len));
        if (c->n_tools) {
            qsort(c->tools, c->n_tools, sizeof *c->tools, cmp_tool);
            json_object *tcs = json_object_new_array();
            for (size_t k = 0; k < c->n_tools; k++) {
                tool_acc *t = &c->tools[k];
                json_object *tc = json_object_new_object();
                json_object *fn = json_object_new_object();
                json_object_object_add(tc, "id", json_object_new_string(t->id ? t->id : ""));
                json_object_object_add(tc, "type",
                                       json_object_new_string(t->type ? t->type : "function"));
                json_object_object_add(fn, "name",
                                       json_object_new_string(t->name ? t->name : ""));
                json_object_object_add(
                    fn, "arguments",
                    json_object_new_string_len(t->args.data ? t->args.data : "",
                                               (int)t->args.len));
                json_object_object_add(tc, "function", fn);
                json_object_array_add(tcs, tc);
            }
            json_object_object_add(msg, "tool_calls", tcs);
        }
        json_object_object_add(ch, "message", msg);
        json_object_object_add(ch, "finish_reason",
                               c->finish ? json_object_new_string(c->finish) : NULL);
        json_object_array_add(choices, ch);
    }
    json_object_object_add(r, "choices", choices);
    if (a->usage)
        json_object_object_add(r, "usage", json_object_get(a->usage));
    return r;
}

/* ------------------------------------------------------------------ */
/* Replay. */

typedef struct replay {
    const char *id;
    int64_t created;
    const char *model;
    const char *sysfp;
    llmc_chunk_sink sink;
    void *ud;
} replay;

static json_object *new_chunk(const replay *rp)
{
    json_object *c = llmc_chunk_new(rp->id, rp->created, rp->model);
    if (c && rp->sysfp)
        json_object_object_add(c, "system_fingerprint", json_object_new_string(rp->sysfp));
    return c;
}

static llmc_status emit(const replay *rp, json_object *chunk)
{
    if (!chunk)
        return LLMC_ENOMEM;
    llmc_status st = rp->sink(rp->ud, chunk);
    json_object_put(chunk);
    return st;
}

/* Length of the next piece of s[0..len): about a quarter of the text (at
 * least 8 bytes) so a replay has several deltas, never splitting a UTF-8
 * sequence. */
static size_t piece_len(const char *s, size_t len, size_t total)
{
    size_t want = total / 4;
    if (want < 8)
        want = 8;
    if (want >= len)
        return len;
    while (want < len && ((unsigned char)s[want] & 0xC0) == 0x80)
        want++;
    return want;
}

static llmc_status replay_text(const replay *rp, int index, const char *field, const char *s,
                               size_t len)
{
    if (len == 0) {
        json_object *c = new_chunk(rp);
        if (!c)
            return LLMC_ENOMEM;
        json_object *d = llmc_chunk_add_choice(c, index);
        json_object_object_add(d, field, json_object_new_string(""));
        return emit(rp, c);
    }
    size_t off = 0;
    while (off < len) {
        size_t n = piece_len(s + off, len - off, len);
        json_object *c = new_chunk(rp);
        if (!c)
            return LLMC_ENOMEM;
        json_object *d = llmc_chunk_add_choice(c, index);
        json_object_object_add(d, field, json_object_new_string_len(s + off, (int)n));
        llmc_status st = emit(rp, c);
        if (st != LLMC_OK)
            return st;
        off += n;
    }
    return LLMC_OK;
}

static llmc_status replay_tool(const replay *rp, int index, int ti, json_object *tc)
{
    json_object *fn = NULL;
    json_object_object_get_ex(tc, "function", &fn);
    const char *id = str_member(tc, "id");
    const char *type = str_member(tc, "type");
    const char *name = str_member(fn, "name");
    const char *args = str_member(fn, "arguments");
    /* Header: id, type, name and empty arguments, as OpenAI streams it. */
    json_object *c = new_chunk(rp);
    if (!c)
        return LLMC_ENOMEM;
    json_object *d = llmc_chunk_add_choice(c, index);
    json_object *arr = json_object_new_array();
    json_object *t = json_object_new_object();
    json_object *f = json_object_new_object();
    json_object_object_add(t, "index", json_object_new_int(ti));
    json_object_object_add(t, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(t, "type", json_object_new_string(type ? type : "function"));
    json_object_object_add(f, "name", json_object_new_string(name ? name : ""));
    json_object_object_add(f, "arguments", json_object_new_string(""));
    json_object_object_add(t, "function", f);
    json_object_array_add(arr, t);
    json_object_object_add(d, "tool_calls", arr);
    llmc_status st = emit(rp, c);
    if (st != LLMC_OK || !args)
        return st;
    size_t len = strlen(args), off = 0;
    while (off < len) {
        size_t n = piece_len(args + off, len - off, len);
        c = new_chunk(rp);
        if (!c)
            return LLMC_ENOMEM;
        d = llmc_chunk_add_choice(c, index);
        arr = json_object_new_array();
        t = json_object_new_object();
        f = json_object_new_object();
        json_object_object_add(t, "index", json_object_new_int(ti));
        json_object_object_add(f, "arguments", json_object_new_string_len(args + off, (int)n));
        json_object_object_add(t, "function", f);
        json_object_array_add(arr, t);
        json_object_object_add(d, "tool_calls", arr);
        st = emit(rp, c);
        if (st != LLMC_OK)
            return st;
        off += n;
    }
    return LLMC_OK;
}

llmc_status llmc__replay(struct json_object *resp, llmc_chunk_sink sink, void *ud)
{
    json_object *v;
    replay rp = {str_member(resp, "id"), 0, str_member(resp, "model"),
                 str_member(resp, "system_fingerprint"), sink, ud};
    if (json_object_object_get_ex(resp, "created", &v))
        rp.created = json_object_get_int64(v);
    json_object *usage = NULL;
    if (json_object_object_get_ex(resp, "usage", &v) && json_object_is_type(v, json_type_object))
        usage = v;
    json_object *choices = NULL;
    size_t n = 0;
    if (json_object_object_get_ex(resp, "choices", &choices) &&
        json_object_is_type(choices, json_type_array))
        n = json_object_array_length(choices);
    llmc_status st;
    for (size_t i = 0; i < n; i++) {
        json_object *ch = json_object_array_get_idx(choices, i);
        int index = json_object_object_get_ex(ch, "index", &v) ? json_object_get_int(v) : (int)i;
        json_object *msg = NULL;
        json_object_object_get_ex(ch, "message", &msg);
        const char *role = str_member(msg, "role");
        /* Role first, alone, as OpenAI's first chunk. */
        json_object *c = new_chunk(&rp);
        if (!c)
            return LLMC_ENOMEM;
        json_object *d = llmc_chunk_add_choice(c, index);
        json_object_object_add(d, "role", json_object_new_string(role ? role : "assistant"));
        if ((st = emit(&rp, c)) != LLMC_OK)
            return st;
        if (msg && json_object_object_get_ex(msg, "reasoning_content", &v) &&
            json_object_is_type(v, json_type_string)) {
            st = replay_text(&rp, index, "reasoning_content", json_object_get_string(v),
                             (size_t)json_object_get_string_len(v));
            if (st != LLMC_OK)
                return st;
        }
        if (msg && json_object_object_get_ex(msg, "content", &v) &&
            json_object_is_type(v, json_type_string)) {
            st = replay_text(&rp, index, "content", json_object_get_string(v),
                             (size_t)json_object_get_string_len(v));
            if (st != LLMC_OK)
                return st;
        }
        json_object *tcs;
        if (msg && json_object_object_get_ex(msg, "tool_calls", &tcs) &&
            json_object_is_type(tcs, json_type_array)) {
            size_t nt = json_object_array_length(tcs);
            for (size_t k = 0; k < nt; k++) {
                st = replay_tool(&rp, index, (int)k, json_object_array_get_idx(tcs, k));
                if (st != LLMC_OK)
                    return st;
            }
        }
        /* The finish chunk; the last one carries the usage. */
        c = new_chunk(&rp);
        if (!c)
            return LLMC_ENOMEM;
        llmc_chunk_add_choice(c, index);
        const char *fr = str_member(ch, "finish_reason");
        llmc_chunk_set_finish(c, 0, fr);
        if (i + 1 == n && usage)
            json_object_object_add(c, "usage", json_object_get(usage));
        if ((st = emit(&rp, c)) != LLMC_OK)
            return st;
    }
    if (n == 0 && usage) {
        json_object *c = new_chunk(&rp);
        if (!c)
            return LLMC_ENOMEM;
        json_object_object_add(c, "usage", json_object_get(usage));
        return emit(&rp, c);
    }
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */

int llmc__response_storable(llmc_call_type call, struct json_object *resp)
{
    json_object *choices, *v;
    if (!resp || !json_object_is_type(resp, json_type_object))
        return 0;
    if (json_object_object_get_ex(resp, "error", &v) && v)
        return 0;
    if (call == LLMC_CALL_EMBEDDING) {
        json_object *data;
        return json_object_object_get_ex(resp, "data", &data) &&
               json_object_is_type(data, json_type_array) &&
               json_object_array_length(data) > 0;
    }
    if (!json_object_object_get_ex(resp, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array))
        return 0;
    size_t n = json_object_array_length(choices);
    for (size_t i = 0; i < n; i++) {
        json_object *ch = json_object_array_get_idx(choices, i);
        if (call == LLMC_CALL_TEXT) {
            if (json_object_object_get_ex(ch, "text", &v) &&
                json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
                return 1;
            continue;
        }
        json_object *msg;
        if (!json_object_object_get_ex(ch, "message", &msg))
            continue;
        if (json_object_object_get_ex(msg, "content", &v) &&
            json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0)
            return 1;
        if (json_object_object_get_ex(msg, "tool_calls", &v) &&
            json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0)
            return 1;
        if (json_object_object_get_ex(msg, "function_call", &v) &&
            json_object_is_type(v, json_type_object))
            return 1;
    }
    return 0;
}

int llmc__response_finished(struct json_object *resp)
{
    json_object *choices, *fr;
    if (!resp || !json_object_object_get_ex(resp, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0)
        return 0;
    size_t n = json_object_array_length(choices);
    for (size_t i = 0; i < n; i++) {
        json_object *ch = json_object_array_get_idx(choices, i);
        if (!json_object_object_get_ex(ch, "finish_reason", &fr) ||
            !json_object_is_type(fr, json_type_string) || json_object_get_string_len(fr) == 0)
            return 0;
    }
    return 1;
}
