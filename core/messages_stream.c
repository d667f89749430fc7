/* Messages API stream events: a streamed answer assembled into the
 * Message that is stored, and a stored Message replayed as the same
 * event sequence (see messages.h). assemble(replay(m)) gives m back; the
 * round trip is tested and fuzzed. */
#include "internal.h"
#include "messages.h"

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

/* A string member with its length (it may hold NUL bytes). */
static const char *str_len(json_object *o, const char *k, size_t *len)
{
    json_object *v = get(o, k);
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static int is_str(json_object *o, const char *k, const char *want)
{
    const char *s = str(o, k);
    return s && strcmp(s, want) == 0;
}

static json_object *deep_copy(json_object *v)
{
    json_object *c = NULL;
    if (!v)
        return NULL;
    if (json_object_deep_copy(v, &c, NULL) != 0)
        return NULL;
    return c;
}

/* ------------------------------------------------------------------ */
/* Assembling. */

/* Text a block gathers from its deltas, kept apart from the block so
 * that many small deltas cost one copy. */
typedef struct blk_acc {
    llmc_buf text; /* text_delta / thinking_delta */
    int has_text;
    llmc_buf json; /* input_json_delta */
    int has_json;
} blk_acc;

struct llmc__msg_asm {
    json_object *msg;   /* from message_start; its "content" grows */
    blk_acc *acc;
    size_t n_acc;
    int stopped;
    int broken;         /* a tool input that is not JSON: do not store */
};

llmc__msg_asm *llmc__msg_asm_new(void)
{
    return calloc(1, sizeof(llmc__msg_asm));
}

void llmc__msg_asm_free(llmc__msg_asm *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_acc; i++) {
        llmc_buf_free(&a->acc[i].text);
        llmc_buf_free(&a->acc[i].json);
    }
    free(a->acc);
    json_object_put(a->msg);
    free(a);
}

int llmc__msg_asm_stopped(const llmc__msg_asm *a)
{
    return a && a->stopped;
}

/* Blocks are indexed by the events; an index far beyond what was
 * started is refused rather than allocated. */
#define MAX_BLOCKS 4096

static blk_acc *acc_at(llmc__msg_asm *a, int64_t idx)
{
    if (idx < 0 || idx >= MAX_BLOCKS)
        return NULL;
    if ((size_t)idx >= a->n_acc) {
        size_t n = (size_t)idx + 1;
        blk_acc *p = realloc(a->acc, n * sizeof *p);
        if (!p)
            return NULL;
        for (size_t i = a->n_acc; i < n; i++) {
            llmc_buf init = LLMC_BUF_INIT;
            p[i].text = init;
            p[i].json = init;
            p[i].has_text = p[i].has_json = 0;
        }
        a->acc = p;
        a->n_acc = n;
    }
    return &a->acc[idx];
}

static int event_index(json_object *ev, int64_t *idx)
{
    json_object *v = get(ev, "index");
    if (!v || !json_object_is_type(v, json_type_int))
        return 0;
    *idx = json_object_get_int64(v);
    return *idx >= 0 && *idx < MAX_BLOCKS;
}

/* The started block at index idx, or NULL. */
static json_object *block_at(llmc__msg_asm *a, int64_t idx)
{
    json_object *content = get(a->msg, "content");
    if (!content || !json_object_is_type(content, json_type_array) ||
        (size_t)idx >= json_object_array_length(content))
        return NULL;
    json_object *b = json_object_array_get_idx(content, (size_t)idx);
    return b && json_object_is_type(b, json_type_object) ? b : NULL;
}

/* The accumulated text of a block into its field (initial text first). */
static llmc_status flush_text(json_object *blk, blk_acc *acc)
{
    if (!acc->has_text)
        return LLMC_OK;
    const char *field = is_str(blk, "type", "thinking") ? "thinking" : "text";
    size_t ilen = 0;
    const char *init = str_len(blk, field, &ilen);
    llmc_buf t = LLMC_BUF_INIT;
    if ((init && llmc_buf_append(&t, init, ilen) != LLMC_OK) ||
        llmc_buf_append(&t, acc->text.data ? acc->text.data : "", acc->text.len) != LLMC_OK) {
        llmc_buf_free(&t);
        return LLMC_ENOMEM;
    }
    json_object *s = json_object_new_string_len(t.data ? t.data : "", (int)t.len);
    llmc_buf_free(&t);
    if (!s)
        return LLMC_ENOMEM;
    json_object_object_add(blk, field, s);
    llmc_buf_free(&acc->text);
    acc->has_text = 0;
    return LLMC_OK;
}

/* The accumulated tool input JSON into the block's "input". */
static void flush_json(llmc__msg_asm *a, json_object *blk, blk_acc *acc)
{
    if (!acc->has_json)
        return;
    json_object *in = NULL;
    if (acc->json.len == 0) {
        in = json_object_new_object();
    } else {
        json_tokener *tok = json_tokener_new();
        if (tok) {
            in = json_tokener_parse_ex(tok, acc->json.data, (int)acc->json.len);
            if (json_tokener_get_error(tok) != json_tokener_success ||
                json_tokener_get_parse_end(tok) != acc->json.len) {
                json_object_put(in);
                in = NULL;
            }
            json_tokener_free(tok);
        }
    }
    if (in && json_object_is_type(in, json_type_object))
        json_object_object_add(blk, "input", in);
    else {
        json_object_put(in);
        a->broken = 1;
    }
    llmc_buf_free(&acc->json);
    acc->has_json = 0;
}

static llmc_status on_start(llmc__msg_asm *a, json_object *ev)
{
    json_object *m = get(ev, "message");
    if (a->msg || !m || !json_object_is_type(m, json_type_object))
        return LLMC_OK; /* a second start, or no message: not ours to fix */
    a->msg = deep_copy(m);
    if (!a->msg)
        return LLMC_ENOMEM;
    json_object *content = get(a->msg, "content");
    if (!content || !json_object_is_type(content, json_type_array)) {
        json_object *arr = json_object_new_array();
        if (!arr)
            return LLMC_ENOMEM;
        json_object_object_add(a->msg, "content", arr);
    }
    return LLMC_OK;
}

static llmc_status on_block_start(llmc__msg_asm *a, json_object *ev)
{
    int64_t idx;
    json_object *b = get(ev, "content_block");
    json_object *content = get(a->msg, "content");
    if (!content || !event_index(ev, &idx) || !b || !json_object_is_type(b, json_type_object))
        return LLMC_OK;
    if (!acc_at(a, idx))
        return LLMC_ENOMEM;
    json_object *c = deep_copy(b);
    if (!c)
        return LLMC_ENOMEM;
    if (json_object_array_put_idx(content, (size_t)idx, c) != 0) {
        json_object_put(c);
        return LLMC_ENOMEM;
    }
    return LLMC_OK;
}

static llmc_status on_block_delta(llmc__msg_asm *a, json_object *ev)
{
    int64_t idx;
    json_object *d = get(ev, "delta");
    if (!event_index(ev, &idx))
        return LLMC_OK;
    json_object *blk = block_at(a, idx);
    blk_acc *acc = blk ? acc_at(a, idx) : NULL;
    const char *dt = str(d, "type");
    if (!blk || !acc || !dt)
        return LLMC_OK;
    const char *bt = str(blk, "type");
    const char *piece = NULL;
    size_t plen = 0;
    if (strcmp(dt, "text_delta") == 0 && bt && strcmp(bt, "text") == 0)
        piece = str_len(d, "text", &plen);
    else if (strcmp(dt, "thinking_delta") == 0 && bt && strcmp(bt, "thinking") == 0)
        piece = str_len(d, "thinking", &plen);
    if (piece) {
        acc->has_text = 1;
        return llmc_buf_append(&acc->text, piece, plen);
    }
    if (strcmp(dt, "signature_delta") == 0 && bt && strcmp(bt, "thinking") == 0) {
        /* The signature arrives whole: it replaces, as the SDKs do. */
        json_object *s = get(d, "signature");
        if (s && json_object_is_type(s, json_type_string))
            json_object_object_add(blk, "signature", json_object_get(s));
        return LLMC_OK;
    }
    if (strcmp(dt, "citations_delta") == 0 && bt && strcmp(bt, "text") == 0) {
        json_object *cit = get(d, "citation");
        if (!cit)
            return LLMC_OK;
        json_object *arr = get(blk, "citations");
        if (!arr || !json_object_is_type(arr, json_type_array)) {
            arr = json_object_new_array();
            if (!arr)
                return LLMC_ENOMEM;
            json_object_object_add(blk, "citations", arr);
        }
        json_object *cc = deep_copy(cit);
        if (!cc || json_object_array_add(arr, cc) != 0) {
            json_object_put(cc);
            return LLMC_ENOMEM;
        }
        return LLMC_OK;
    }
    if (strcmp(dt, "input_json_delta") == 0) {
        size_t pl = 0;
        const char *pj = str_len(d, "partial_json", &pl);
        acc->has_json = 1;
        return pj ? llmc_buf_append(&acc->json, pj, pl) : LLMC_OK;
    }
    return LLMC_OK; /* a delta type this version does not know */
}

static llmc_status on_block_stop(llmc__msg_asm *a, json_object *ev)
{
    int64_t idx;
    if (!event_index(ev, &idx))
        return LLMC_OK;
    json_object *blk = block_at(a, idx);
    blk_acc *acc = blk ? acc_at(a, idx) : NULL;
    if (!blk || !acc)
        return LLMC_OK;
    llmc_status st = flush_text(blk, acc);
    flush_json(a, blk, acc);
    return st;
}

static llmc_status on_message_delta(llmc__msg_asm *a, json_object *ev)
{
    json_object *d = get(ev, "delta"), *u = get(ev, "usage");
    if (!a->msg)
        return LLMC_OK;
    if (d && json_object_is_type(d, json_type_object)) {
        json_object_object_foreach(d, k, v)
        {
            /* The blocks are built from the content_block events alone: a
             * delta's "content" (the API never sends one) would replace
             * the array they are put into. */
            if (strcmp(k, "content") == 0)
                continue;
            json_object *c = v ? deep_copy(v) : NULL;
            if (v && !c)
                return LLMC_ENOMEM;
            json_object_object_add(a->msg, k, c);
        }
    }
    if (u && json_object_is_type(u, json_type_object)) {
        /* Cumulative totals: a counter present overwrites, an absent or
         * null one leaves the start's. */
        json_object *mu = get(a->msg, "usage");
        json_object_object_foreach(u, k, v)
        {
            if (!v)
                continue;
            if (!mu || !json_object_is_type(mu, json_type_object)) {
                mu = json_object_new_object();
                if (!mu)
                    return LLMC_ENOMEM;
                json_object_object_add(a->msg, "usage", mu);
            }
            json_object *c = deep_copy(v);
            if (!c)
                return LLMC_ENOMEM;
            json_object_object_add(mu, k, c);
        }
    }
    return LLMC_OK;
}

llmc_status llmc__msg_asm_add(llmc__msg_asm *a, json_object *ev)
{
    const char *t = str(ev, "type");
    if (!a || !t)
        return LLMC_OK;
    if (strcmp(t, "message_start") == 0)
        return on_start(a, ev);
    if (!a->msg)
        return LLMC_OK;
    if (strcmp(t, "content_block_start") == 0)
        return on_block_start(a, ev);
    if (strcmp(t, "content_block_delta") == 0)
        return on_block_delta(a, ev);
    if (strcmp(t, "content_block_stop") == 0)
        return on_block_stop(a, ev);
    if (strcmp(t, "message_delta") == 0)
        return on_message_delta(a, ev);
    if (strcmp(t, "message_stop") == 0)
        a->stopped = 1;
    return LLMC_OK;
}

json_object *llmc__msg_asm_result(llmc__msg_asm *a)
{
    if (!a || !a->msg)
        return NULL;
    /* Blocks whose stop never came still get what they gathered. */
    json_object *content = get(a->msg, "content");
    size_t n = content && json_object_is_type(content, json_type_array)
                   ? json_object_array_length(content)
                   : 0;
    for (size_t i = 0; i < n && i < a->n_acc; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        if (!blk)
            continue;
        if (flush_text(blk, &a->acc[i]) != LLMC_OK)
            return NULL;
        flush_json(a, blk, &a->acc[i]);
    }
    if (a->broken || !a->stopped) {
        /* Keep the answer for the caller, marked so it is never stored:
         * a tool input that is not JSON, or no message_stop after the
         * message_start (one before it ended nothing). */
        json_object_object_add(a->msg, "error",
                               json_object_new_string(a->broken
                                                          ? "a tool input in the stream is not JSON"
                                                          : "the stream did not reach message_stop"));
    }
    json_object *m = a->msg;
    a->msg = NULL;
    return m;
}

/* ------------------------------------------------------------------ */
/* What may be stored. */

int llmc__msg_storable(json_object *msg)
{
    if (!msg || !json_object_is_type(msg, json_type_object) || !is_str(msg, "type", "message") ||
        get(msg, "error"))
        return 0;
    json_object *content = get(msg, "content");
    if (!content || !json_object_is_type(content, json_type_array))
        return 0;
    size_t n = json_object_array_length(content);
    int something = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(content, i);
        if (!b || !json_object_is_type(b, json_type_object) || !str(b, "type"))
            return 0;
        if (!is_str(b, "type", "text") || (str(b, "text") && *str(b, "text")))
            something = 1;
    }
    return something;
}

int llmc__msg_finished(json_object *msg)
{
    const char *sr = str(msg, "stop_reason");
    return sr && *sr;
}

/* ------------------------------------------------------------------ */
/* Replay. */

typedef struct replay {
    llmc_chunk_sink sink;
    void *ud;
} replay;

static llmc_status emit(const replay *rp, json_object *ev)
{
    if (!ev)
        return LLMC_ENOMEM;
    llmc_status st = rp->sink(rp->ud, ev);
    json_object_put(ev);
    return st;
}

static json_object *event(const char *type)
{
    json_object *e = json_object_new_object();
    if (e)
        json_object_object_add(e, "type", json_object_new_string(type));
    return e;
}

static json_object *indexed(const char *type, size_t idx)
{
    json_object *e = event(type);
    if (e)
        json_object_object_add(e, "index", json_object_new_int64((int64_t)idx));
    return e;
}

/* Length of the next piece of s[0..len): about a quarter of the whole (at
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

/* content_block_delta events carrying s in pieces as delta.<field>. */
static llmc_status delta_pieces(const replay *rp, size_t idx, const char *dtype,
                                const char *field, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = piece_len(s + off, len - off, len);
        json_object *e = indexed("content_block_delta", idx);
        json_object *d = json_object_new_object();
        if (!e || !d) {
            json_object_put(e);
            json_object_put(d);
            return LLMC_ENOMEM;
        }
        json_object_object_add(d, "type", json_object_new_string(dtype));
        json_object_object_add(d, field, json_object_new_string_len(s + off, (int)n));
        json_object_object_add(e, "delta", d);
        llmc_status st = emit(rp, e);
        if (st != LLMC_OK)
            return st;
        off += n;
    }
    return LLMC_OK;
}

static llmc_status delta_one(const replay *rp, size_t idx, const char *dtype, const char *field,
                             json_object *v)
{
    json_object *e = indexed("content_block_delta", idx);
    json_object *d = json_object_new_object();
    json_object *c = deep_copy(v);
    if (!e || !d || !c) {
        json_object_put(e);
        json_object_put(d);
        json_object_put(c);
        return LLMC_ENOMEM;
    }
    json_object_object_add(d, "type", json_object_new_string(dtype));
    json_object_object_add(d, field, c);
    json_object_object_add(e, "delta", d);
    return emit(rp, e);
}

static llmc_status replay_block(const replay *rp, size_t idx, json_object *blk, int first)
{
    const char *bt = str(blk, "type");
    json_object *skel = deep_copy(blk);
    if (!skel)
        return LLMC_ENOMEM;
    json_object *text = NULL, *citations = NULL, *input = NULL, *signature = NULL;
    const char *tfield = NULL, *tdelta = NULL;
    if (bt && strcmp(bt, "text") == 0 && get(blk, "text") &&
        json_object_is_type(get(blk, "text"), json_type_string)) {
        text = get(blk, "text");
        tfield = "text";
        tdelta = "text_delta";
        json_object *c = get(blk, "citations");
        if (c && json_object_is_type(c, json_type_array) && json_object_array_length(c) > 0) {
            citations = c;
            json_object_object_del(skel, "citations");
        }
    } else if (bt && strcmp(bt, "thinking") == 0 && get(blk, "thinking") &&
               json_object_is_type(get(blk, "thinking"), json_type_string)) {
        text = get(blk, "thinking");
        tfield = "thinking";
        tdelta = "thinking_delta";
        json_object *s = get(blk, "signature");
        if (s && json_object_is_type(s, json_type_string)) {
            signature = s;
            json_object_object_add(skel, "signature", json_object_new_string(""));
        }
    } else if (get(blk, "input") && json_object_is_type(get(blk, "input"), json_type_object) &&
               json_object_object_length(get(blk, "input")) > 0) {
        /* tool_use, server_tool_use, mcp_tool_use: the input streams. */
        input = get(blk, "input");
        json_object_object_add(skel, "input", json_object_new_object());
    }
    if (text)
        json_object_object_add(skel, tfield, json_object_new_string(""));
    json_object *e = indexed("content_block_start", idx);
    if (!e) {
        json_object_put(skel);
        return LLMC_ENOMEM;
    }
    json_object_object_add(e, "content_block", skel);
    llmc_status st = emit(rp, e);
    if (st == LLMC_OK && first)
        st = emit(rp, event("ping"));
    if (st == LLMC_OK && text)
        st = delta_pieces(rp, idx, tdelta, tfield, json_object_get_string(text),
                          (size_t)json_object_get_string_len(text));
    if (st == LLMC_OK && signature)
        st = delta_one(rp, idx, "signature_delta", "signature", signature);
    for (size_t i = 0; st == LLMC_OK && citations && i < json_object_array_length(citations);
         i++)
        st = delta_one(rp, idx, "citations_delta", "citation",
                       json_object_array_get_idx(citations, i));
    if (st == LLMC_OK && input) {
        size_t len;
        const char *js = json_object_to_json_string_length(input, JFLAGS, &len);
        st = js ? delta_pieces(rp, idx, "input_json_delta", "partial_json", js, len)
                : LLMC_ENOMEM;
    }
    if (st == LLMC_OK)
        st = emit(rp, indexed("content_block_stop", idx));
    return st;
}

llmc_status llmc__msg_replay(json_object *msg, llmc_chunk_sink sink, void *ud)
{
    replay rp = {sink, ud};
    if (!msg || !json_object_is_type(msg, json_type_object))
        return LLMC_EINVAL;
    /* message_start: the message as it begins. */
    json_object *start = deep_copy(msg);
    if (!start)
        return LLMC_ENOMEM;
    json_object_object_add(start, "content", json_object_new_array());
    json_object *delta = json_object_new_object();
    static const char *const at_end[] = {"stop_reason", "stop_sequence", "stop_details", NULL};
    for (int i = 0; at_end[i]; i++) {
        json_object *v;
        if (!json_object_object_get_ex(msg, at_end[i], &v))
            continue;
        json_object_object_add(start, at_end[i], NULL);
        json_object_object_add(delta, at_end[i], v ? deep_copy(v) : NULL);
    }
    json_object *usage = get(msg, "usage");
    if (usage && json_object_is_type(usage, json_type_object)) {
        json_object *su = get(start, "usage");
        if (get(su, "output_tokens"))
            json_object_object_add(su, "output_tokens", json_object_new_int(0));
    }
    json_object *e = event("message_start");
    if (!e || !delta) {
        json_object_put(e);
        json_object_put(start);
        json_object_put(delta);
        return LLMC_ENOMEM;
    }
    json_object_object_add(e, "message", start);
    llmc_status st = emit(&rp, e);
    json_object *content = get(msg, "content");
    size_t n = content && json_object_is_type(content, json_type_array)
                   ? json_object_array_length(content)
                   : 0;
    if (st == LLMC_OK && n == 0)
        st = emit(&rp, event("ping"));
    for (size_t i = 0; st == LLMC_OK && i < n; i++) {
        json_object *blk = json_object_array_get_idx(content, i);
        if (blk && json_object_is_type(blk, json_type_object))
            st = replay_block(&rp, i, blk, i == 0);
    }
    if (st == LLMC_OK) {
        e = event("message_delta");
        if (!e) {
            json_object_put(delta);
            return LLMC_ENOMEM;
        }
        json_object_object_add(e, "delta", delta);
        delta = NULL;
        json_object *u = usage ? deep_copy(usage) : json_object_new_object();
        json_object_object_add(e, "usage", u);
        st = emit(&rp, e);
    }
    json_object_put(delta);
    if (st == LLMC_OK)
        st = emit(&rp, event("message_stop"));
    return st;
}
