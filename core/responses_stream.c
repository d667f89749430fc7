/* Responses API streams: the parser of a provider's typed events (what a
 * streamed miss passes on and stores) and the replayer that turns a
 * stored response object back into the same event sequence (what a
 * streamed hit sends). The stored entry is the response object of
 * response.completed, the same object a plain call returns, so streamed
 * and plain calls share one entry both ways. */
#include "calltype_responses.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Parser. */

void llmc__rstream_init(llmc__rstream *s)
{
    memset(s, 0, sizeof *s);
}

void llmc__rstream_free(llmc__rstream *s)
{
    if (s->final)
        json_object_put(s->final);
    memset(s, 0, sizeof *s);
}

static const char *str_of(json_object *o, const char *name)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The message of an error event or of a failed response's "error". */
static void error_text(json_object *o, char *out, size_t outsz)
{
    const char *m = str_of(o, "message"), *code = str_of(o, "code");
    snprintf(out, outsz, "%s%s%s", code ? code : "", code && m ? ": " : "", m ? m : "");
    if (!*out)
        snprintf(out, outsz, "no message");
}

llmc_status llmc__rstream_event(llmc__rstream *s, const char *provider, const char *event,
                                const char *data, size_t len, json_object **ev,
                                llmc_err *err)
{
    *ev = NULL;
    if (!provider)
        provider = "provider";
    /* A keep-alive comment or an empty event carries nothing. */
    if (len == 0 && (!event || !*event))
        return LLMC_OK;
    if (s->done)
        return llmc_err_set(err, LLMC_EPROTO, 0,
                            "%s: Responses stream event after response.completed", provider);
    json_object *o = NULL;
    llmc_status st = llmc_json_parse(data, len, "Responses stream event", &o, err);
    if (st != LLMC_OK)
        return st;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: Responses stream event is not a JSON "
                            "object", provider);
    }
    const char *type = str_of(o, "type");
    if (!type || !*type) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: Responses stream event has no \"type\"",
                            provider);
    }
    /* The type becomes an SSE "event:" line downstream: no control
     * characters (a line break would forge events). */
    for (const char *p = type; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "%s: Responses stream event \"type\" "
                                "holds a control character", provider);
        }
    if (event && *event && strcmp(event, type) != 0) {
        char e[64];
        snprintf(e, sizeof e, "%s", event);
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: SSE event \"%s\" carries a \"type\" "
                            "that differs", provider, e);
    }
    char msg[300];
    if (strcmp(type, "error") == 0) {
        error_text(o, msg, sizeof msg);
        json_object_put(o);
        return llmc_err_set(err, LLMC_EUPSTREAM, 0, "%s: error event in the stream: %s; not "
                            "cached", provider, msg);
    }
    if (strcmp(type, "response.failed") == 0 || strcmp(type, "response.incomplete") == 0) {
        json_object *r, *e = NULL;
        if (json_object_object_get_ex(o, "response", &r))
            json_object_object_get_ex(r, "error", &e);
        if (e && json_object_is_type(e, json_type_object))
            error_text(e, msg, sizeof msg);
        else
            snprintf(msg, sizeof msg, "no error given");
        int failed = type[9] == 'f';
        json_object_put(o);
        return llmc_err_set(err, LLMC_EUPSTREAM, 0, "%s: the response %s (%s); not cached",
                            provider, failed ? "failed" : "is incomplete", msg);
    }
    if (strcmp(type, "response.completed") == 0) {
        json_object *r;
        if (!json_object_object_get_ex(o, "response", &r) ||
            !json_object_is_type(r, json_type_object)) {
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "%s: response.completed without a "
                                "response object", provider);
        }
        s->final = json_object_get(r);
        s->done = 1;
    }
    s->events++;
    *ev = o;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* Replayer. */

size_t llmc__responses_piece_len(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && n < 16) {
        if (s[n++] == ' ')
            return n;
    }
    while (n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
        n++;
    return n;
}

typedef struct rp {
    llmc_chunk_sink sink;
    void *ud;
    int64_t seq;
} rp;

/* A new event {"type", "sequence_number"}; the caller adds the rest. */
static json_object *ev_new(rp *p, const char *type)
{
    json_object *e = json_object_new_object();
    if (!e)
        return NULL;
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "sequence_number", json_object_new_int64(p->seq++));
    return e;
}

static llmc_status ev_emit(rp *p, json_object *e)
{
    if (!e)
        return LLMC_ENOMEM;
    llmc_status st = p->sink(p->ud, e);
    json_object_put(e);
    return st;
}

/* Events about one item carry its id and index. */
static json_object *item_ev(rp *p, const char *type, const char *item_id, int out_idx)
{
    json_object *e = ev_new(p, type);
    if (!e)
        return NULL;
    json_object_object_add(e, "item_id", json_object_new_string(item_id ? item_id : ""));
    json_object_object_add(e, "output_index", json_object_new_int(out_idx));
    return e;
}

static json_object *deep_copy(json_object *o)
{
    json_object *c = NULL;
    if (json_object_deep_copy(o, &c, NULL) != 0)
        return NULL;
    return c;
}

/* Deltas of text, each an event of `type` with `field` = the piece and
 * `index_name` = idx; `extra` (may be NULL) adds members (logprobs). */
static llmc_status deltas(rp *p, const char *type, const char *item_id, int out_idx,
                          const char *index_name, int idx, const char *text, size_t len,
                          int logprobs)
{
    size_t off = 0;
    while (off < len) {
        size_t n = llmc__responses_piece_len(text + off, len - off);
        json_object *e = item_ev(p, type, item_id, out_idx);
        if (!e)
            return LLMC_ENOMEM;
        if (index_name)
            json_object_object_add(e, index_name, json_object_new_int(idx));
        json_object_object_add(e, "delta", json_object_new_string_len(text + off, (int)n));
        if (logprobs)
            json_object_object_add(e, "logprobs", json_object_new_array());
        llmc_status st = ev_emit(p, e);
        if (st != LLMC_OK)
            return st;
        off += n;
    }
    return LLMC_OK;
}

static llmc_status replay_message(rp *p, json_object *item, const char *id, int oi)
{
    json_object *content;
    if (!json_object_object_get_ex(item, "content", &content) ||
        !json_object_is_type(content, json_type_array))
        return LLMC_OK;
    size_t n = json_object_array_length(content);
    for (size_t j = 0; j < n; j++) {
        json_object *part = json_object_array_get_idx(content, j);
        const char *pt = str_of(part, "type");
        int refusal = pt && strcmp(pt, "refusal") == 0;
        const char *field = refusal ? "refusal" : "text";
        json_object *tv;
        if (!pt || !json_object_object_get_ex(part, field, &tv) ||
            !json_object_is_type(tv, json_type_string))
            continue;
        const char *text = json_object_get_string(tv);
        size_t tl = (size_t)json_object_get_string_len(tv);
        /* The part as it starts: its text empty, annotations not yet. */
        json_object *empty = deep_copy(part);
        if (!empty)
            return LLMC_ENOMEM;
        json_object_object_add(empty, field, json_object_new_string(""));
        if (json_object_object_get_ex(empty, "annotations", NULL))
            json_object_object_add(empty, "annotations", json_object_new_array());
        json_object *e = item_ev(p, "response.content_part.added", id, oi);
        if (!e) {
            json_object_put(empty);
            return LLMC_ENOMEM;
        }
        json_object_object_add(e, "content_index", json_object_new_int((int)j));
        json_object_object_add(e, "part", empty);
        llmc_status st = ev_emit(p, e);
        if (st == LLMC_OK)
            st = deltas(p, refusal ? "response.refusal.delta" : "response.output_text.delta", id,
                        oi, "content_index", (int)j, text, tl, !refusal);
        if (st != LLMC_OK)
            return st;
        e = item_ev(p, refusal ? "response.refusal.done" : "response.output_text.done", id, oi);
        if (!e)
            return LLMC_ENOMEM;
        json_object_object_add(e, "content_index", json_object_new_int((int)j));
        json_object_object_add(e, field, json_object_new_string_len(text, (int)tl));
        if (!refusal)
            json_object_object_add(e, "logprobs", json_object_new_array());
        if ((st = ev_emit(p, e)) != LLMC_OK)
            return st;
        e = item_ev(p, "response.content_part.done", id, oi);
        if (!e)
            return LLMC_ENOMEM;
        json_object_object_add(e, "content_index", json_object_new_int((int)j));
        json_object_object_add(e, "part", json_object_get(part));
        if ((st = ev_emit(p, e)) != LLMC_OK)
            return st;
    }
    return LLMC_OK;
}

static llmc_status replay_reasoning(rp *p, json_object *item, const char *id, int oi)
{
    json_object *summary;
    if (!json_object_object_get_ex(item, "summary", &summary) ||
        !json_object_is_type(summary, json_type_array))
        return LLMC_OK;
    size_t n = json_object_array_length(summary);
    for (size_t j = 0; j < n; j++) {
        json_object *part = json_object_array_get_idx(summary, j), *tv;
        if (!part || !json_object_object_get_ex(part, "text", &tv) ||
            !json_object_is_type(tv, json_type_string))
            continue;
        const char *text = json_object_get_string(tv);
        size_t tl = (size_t)json_object_get_string_len(tv);
        json_object *e = item_ev(p, "response.reasoning_summary_part.added", id, oi);
        if (!e)
            return LLMC_ENOMEM;
        json_object_object_add(e, "summary_index", json_object_new_int((int)j));
        json_object *empty = json_object_new_object();
        json_object_object_add(empty, "type", json_object_new_string("summary_text"));
        json_object_object_add(empty, "text", json_object_new_string(""));
        json_object_object_add(e, "part", empty);
        llmc_status st = ev_emit(p, e);
        if (st == LLMC_OK)
            st = deltas(p, "response.reasoning_summary_text.delta", id, oi, "summary_index",
                        (int)j, text, tl, 0);
        if (st != LLMC_OK)
            return st;
        e = item_ev(p, "response.reasoning_summary_text.done", id, oi);
        if (!e)
            return LLMC_ENOMEM;
        json_object_object_add(e, "summary_index", json_object_new_int((int)j));
        json_object_object_add(e, "text", json_object_new_string_len(text, (int)tl));
        if ((st = ev_emit(p, e)) != LLMC_OK)
            return st;
        e = item_ev(p, "response.reasoning_summary_part.done", id, oi);
        if (!e)
            return LLMC_ENOMEM;
        json_object_object_add(e, "summary_index", json_object_new_int((int)j));
        json_object_object_add(e, "part", json_object_get(part));
        if ((st = ev_emit(p, e)) != LLMC_OK)
            return st;
    }
    return LLMC_OK;
}

static llmc_status replay_function_call(rp *p, json_object *item, const char *id, int oi)
{
    json_object *av;
    if (!json_object_object_get_ex(item, "arguments", &av) ||
        !json_object_is_type(av, json_type_string))
        return LLMC_OK;
    const char *args = json_object_get_string(av);
    size_t al = (size_t)json_object_get_string_len(av);
    llmc_status st =
        deltas(p, "response.function_call_arguments.delta", id, oi, NULL, 0, args, al, 0);
    if (st != LLMC_OK)
        return st;
    json_object *e = item_ev(p, "response.function_call_arguments.done", id, oi);
    if (!e)
        return LLMC_ENOMEM;
    json_object_object_add(e, "arguments", json_object_new_string_len(args, (int)al));
    return ev_emit(p, e);
}

/* An output item as output_item.added shows it: in progress, its
 * content, summary or arguments not yet there. */
static json_object *item_started(json_object *item, const char *type)
{
    json_object *c = deep_copy(item);
    if (!c)
        return NULL;
    if (json_object_object_get_ex(c, "status", NULL))
        json_object_object_add(c, "status", json_object_new_string("in_progress"));
    if (strcmp(type, "message") == 0)
        json_object_object_add(c, "content", json_object_new_array());
    else if (strcmp(type, "reasoning") == 0)
        json_object_object_add(c, "summary", json_object_new_array());
    else if (strcmp(type, "function_call") == 0)
        json_object_object_add(c, "arguments", json_object_new_string(""));
    return c;
}

json_object *llmc__responses_started(json_object *resp)
{
    json_object *c = json_object_new_object();
    if (!c)
        return NULL;
    json_object_object_foreach(resp, k, v)
    {
        if (strcmp(k, "status") == 0)
            json_object_object_add(c, k, json_object_new_string("in_progress"));
        else if (strcmp(k, "output") == 0)
            json_object_object_add(c, k, json_object_new_array());
        else if (strcmp(k, "usage") == 0)
            json_object_object_add(c, k, NULL);
        else
            json_object_object_add(c, k, json_object_get(v));
    }
    return c;
}

static llmc_status replay_item(rp *p, json_object *item, int oi)
{
    const char *type = str_of(item, "type");
    const char *id = str_of(item, "id");
    if (!type)
        type = "";
    json_object *started = item_started(item, type);
    json_object *e = ev_new(p, "response.output_item.added");
    if (!started || !e) {
        json_object_put(started);
        json_object_put(e);
        return LLMC_ENOMEM;
    }
    json_object_object_add(e, "output_index", json_object_new_int(oi));
    json_object_object_add(e, "item", started);
    llmc_status st = ev_emit(p, e);
    if (st != LLMC_OK)
        return st;
    if (strcmp(type, "message") == 0)
        st = replay_message(p, item, id, oi);
    else if (strcmp(type, "reasoning") == 0)
        st = replay_reasoning(p, item, id, oi);
    else if (strcmp(type, "function_call") == 0)
        st = replay_function_call(p, item, id, oi);
    if (st != LLMC_OK)
        return st;
    e = ev_new(p, "response.output_item.done");
    if (!e)
        return LLMC_ENOMEM;
    json_object_object_add(e, "output_index", json_object_new_int(oi));
    json_object_object_add(e, "item", json_object_get(item));
    return ev_emit(p, e);
}

llmc_status llmc__responses_replay_sink(json_object *resp, llmc_chunk_sink sink, void *ud)
{
    if (!resp || !json_object_is_type(resp, json_type_object))
        return LLMC_EINVAL;
    rp p = {sink, ud, 0};
    llmc_status st;
    static const char *const head[] = {"response.created", "response.in_progress"};
    for (int i = 0; i < 2; i++) {
        json_object *started = llmc__responses_started(resp);
        json_object *e = ev_new(&p, head[i]);
        if (!started || !e) {
            json_object_put(started);
            json_object_put(e);
            return LLMC_ENOMEM;
        }
        json_object_object_add(e, "response", started);
        if ((st = ev_emit(&p, e)) != LLMC_OK)
            return st;
    }
    json_object *output;
    if (json_object_object_get_ex(resp, "output", &output) &&
        json_object_is_type(output, json_type_array)) {
        size_t n = json_object_array_length(output);
        for (size_t i = 0; i < n; i++) {
            json_object *item = json_object_array_get_idx(output, i);
            if (!item || !json_object_is_type(item, json_type_object))
                continue;
            if ((st = replay_item(&p, item, (int)i)) != LLMC_OK)
                return st;
        }
    }
    json_object *e = ev_new(&p, "response.completed");
    if (!e)
        return LLMC_ENOMEM;
    json_object_object_add(e, "response", json_object_get(resp));
    return ev_emit(&p, e);
}

typedef struct replay_cb {
    llmc_chunk_cb cb;
    void *ud;
    llmc_err *err;
} replay_cb;

static llmc_status to_cb(void *ud, json_object *ev)
{
    replay_cb *r = ud;
    if (r->cb(r->ud, ev) != 0)
        return llmc_err_set(r->err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    return LLMC_OK;
}

llmc_status llmc__responses_replay(json_object *resp, llmc_chunk_cb cb, void *ud,
                                   llmc_err *err)
{
    replay_cb r = {cb, ud, err};
    llmc_status st = llmc__responses_replay_sink(resp, to_cb, &r);
    if (st == LLMC_ENOMEM)
        return llmc_err_set(err, st, 0, "out of memory replaying the response");
    if (st == LLMC_EINVAL)
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "the stored response is not an object");
    return st;
}
