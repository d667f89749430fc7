/* The Responses API stream parser and replayer (core/responses_stream.c).
 * The input is a streamed response body (SSE):
 *  - fed whole and one byte at a time, the parser accepts the same events
 *    and ends in the same state (status, completed or not);
 *  - every accepted event is an object whose "type" names it and agrees
 *    with its SSE event name; nothing is accepted after
 *    response.completed, and a completed stream has its response;
 *  - a completed response the client would store, replayed as events and
 *    parsed again, is accepted event by event, completes, and gives back
 *    the same response (parse(replay(x)) == x). */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "calltype_responses.h"
#include "canon.h"

typedef struct run {
    llmc__rstream rs;
    llmc_status st;      /* the first failure, or OK */
    llmc_buf types;      /* accepted event types, NUL-separated */
} run;

static llmc_status on_event(void *ud, const char *event, const char *data, size_t len)
{
    run *r = ud;
    json_object *ev = NULL;
    llmc_err err;
    llmc_err_clear(&err);
    int was_done = r->rs.done;
    llmc_status st = llmc__rstream_event(&r->rs, "fuzz", event, data, len, &ev, &err);
    if (st != LLMC_OK) {
        FUZZ_CHECK(ev == NULL, "an event came with status %d", (int)st);
        FUZZ_CHECK(err.msg[0] != '\0', "status %d without a message", (int)st);
        r->st = st;
        return st;
    }
    if (!ev)
        return LLMC_OK;
    FUZZ_CHECK(!was_done, "an event was accepted after response.completed");
    json_object *t;
    FUZZ_CHECK(json_object_is_type(ev, json_type_object) &&
                   json_object_object_get_ex(ev, "type", &t) &&
                   json_object_is_type(t, json_type_string),
               "an accepted event has no type");
    const char *type = json_object_get_string(t);
    FUZZ_CHECK(!event || !*event || strcmp(event, type) == 0,
               "SSE event %s accepted with type %s", event, type);
    llmc_buf_append(&r->types, type, strlen(type) + 1);
    json_object_put(ev);
    return LLMC_OK;
}

static void feed(const uint8_t *data, size_t size, size_t step, run *r)
{
    llmc__sse p;
    llmc__sse_init(&p);
    llmc__rstream_init(&r->rs);
    r->st = LLMC_OK;
    llmc_buf init = LLMC_BUF_INIT;
    r->types = init;
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < size && st == LLMC_OK; i += step) {
        size_t n = size - i < step ? size - i : step;
        st = llmc__sse_feed(&p, (const char *)data + i, n, on_event, r);
    }
    if (st == LLMC_OK)
        st = llmc__sse_finish(&p, on_event, r);
    if (r->st == LLMC_OK)
        r->st = st;
    llmc__sse_free(&p);
    if (r->rs.done)
        FUZZ_CHECK(r->rs.final && json_object_is_type(r->rs.final, json_type_object),
                   "completed without a response object");
}

/* The replay, as text events, into a fresh parser. */
typedef struct reparse {
    llmc__rstream rs;
    int failed;
    size_t n;
} reparse;

static llmc_status to_parser(void *ud, json_object *ev)
{
    reparse *p = ud;
    size_t len;
    const char *s = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN, &len);
    json_object *t, *got = NULL;
    json_object_object_get_ex(ev, "type", &t);
    llmc_err err;
    llmc_status st = llmc__rstream_event(&p->rs, "fuzz", json_object_get_string(t), s, len,
                                         &got, &err);
    FUZZ_CHECK(st == LLMC_OK, "a replayed event was refused: %s (%s)", err.msg, s);
    json_object_put(got);
    p->n++;
    return LLMC_OK;
}

static void roundtrip(json_object *final)
{
    if (!llmc__responses_storable(final, 1))
        return;
    reparse p;
    memset(&p, 0, sizeof p);
    llmc__rstream_init(&p.rs);
    llmc_status st = llmc__responses_replay_sink(final, to_parser, &p);
    FUZZ_CHECK(st == LLMC_OK, "replay failed: %d", (int)st);
    FUZZ_CHECK(p.rs.done && p.rs.final, "the replay did not complete (%zu events)", p.n);
    llmc_buf a = LLMC_BUF_INIT, b = LLMC_BUF_INIT;
    if (llmc_json_canonicalize(final, &a) == LLMC_OK &&
        llmc_json_canonicalize(p.rs.final, &b) == LLMC_OK)
        FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
                   "parse(replay(x)) != x:\n%s\n%s", a.data, b.data);
    llmc_buf_free(&a);
    llmc_buf_free(&b);
    llmc__rstream_free(&p.rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    run w, s;
    feed(data, size, size ? size : 1, &w);
    feed(data, size, 1, &s);
    FUZZ_CHECK(w.st == s.st && w.rs.done == s.rs.done && w.types.len == s.types.len &&
                   (w.types.len == 0 || memcmp(w.types.data, s.types.data, w.types.len) == 0),
               "whole: status %d done %d; byte by byte: status %d done %d", (int)w.st,
               w.rs.done, (int)s.st, s.rs.done);
    if (w.st == LLMC_OK && w.rs.done)
        roundtrip(w.rs.final);
    else if (w.rs.final) {
        /* Whatever came: replaying it must not fail on its shape. */
        roundtrip(w.rs.final);
    }
    llmc__rstream_free(&w.rs);
    llmc__rstream_free(&s.rs);
    llmc_buf_free(&w.types);
    llmc_buf_free(&s.types);
    return 0;
}
