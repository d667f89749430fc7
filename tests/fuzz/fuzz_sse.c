/* SSE and NDJSON framing (core/sse.c) and the stream assembler
 * (core/stream.c). The input is a response body:
 *  - fed whole, and fed one byte at a time, each parser must give the
 *    same events (framing must not depend on how the bytes arrive);
 *  - each event's data that is a JSON object goes to the assembler as a
 *    chunk; the assembled response, when the client would store it,
 *    replayed as chunks and assembled again, must come back the same
 *    (assemble(replay(x)) == x). */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "canon.h"
#include "net.h"

typedef struct events {
    llmc_buf all; /* event name NUL data length-prefixed, concatenated */
    size_t n;
} events;

static llmc_status on_event(void *ud, const char *event, const char *data, size_t len)
{
    events *ev = ud;
    uint64_t l = len;
    llmc_buf_append(&ev->all, event ? "E" : "-", 1);
    if (event)
        llmc_buf_append(&ev->all, event, strlen(event) + 1);
    llmc_buf_append(&ev->all, &l, sizeof l);
    llmc_buf_append(&ev->all, data, len);
    ev->n++;
    return LLMC_OK;
}

static void run_sse(const uint8_t *data, size_t size, size_t step, events *ev)
{
    llmc__sse p;
    llmc__sse_init(&p);
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < size && st == LLMC_OK; i += step) {
        size_t n = size - i < step ? size - i : step;
        st = llmc__sse_feed(&p, (const char *)data + i, n, on_event, ev);
    }
    if (st == LLMC_OK)
        st = llmc__sse_finish(&p, on_event, ev);
    llmc_buf_append(&ev->all, &st, sizeof st);
    llmc__sse_free(&p);
}

static void run_nd(const uint8_t *data, size_t size, size_t step, events *ev)
{
    llmc__ndjson p;
    llmc__ndjson_init(&p);
    llmc_status st = LLMC_OK;
    for (size_t i = 0; i < size && st == LLMC_OK; i += step) {
        size_t n = size - i < step ? size - i : step;
        st = llmc__ndjson_feed(&p, (const char *)data + i, n, on_event, ev);
    }
    if (st == LLMC_OK)
        st = llmc__ndjson_finish(&p, on_event, ev);
    llmc_buf_append(&ev->all, &st, sizeof st);
    llmc__ndjson_free(&p);
}

static void same_events(events *a, events *b, const char *what)
{
    FUZZ_CHECK(a->n == b->n && a->all.len == b->all.len &&
                   (a->all.len == 0 || memcmp(a->all.data, b->all.data, a->all.len) == 0),
               "%s: %zu events whole, %zu byte by byte", what, a->n, b->n);
}

static llmc_status to_asm(void *ud, struct json_object *chunk)
{
    return llmc__assembler_add(ud, chunk) == LLMC_ENOMEM ? LLMC_ENOMEM : LLMC_OK;
}

/* Assemble the JSON-object events of `ev`. */
static void assemble_events(const events *ev)
{
    llmc__assembler *a = llmc__assembler_new();
    const char *p = ev->all.data, *end = p ? p + ev->all.len : NULL;
    /* Walk the records written by on_event (the trailing status aside). */
    for (size_t i = 0; i < ev->n; i++) {
        if (*p++ == 'E')
            p += strlen(p) + 1;
        uint64_t l;
        memcpy(&l, p, sizeof l);
        p += sizeof l;
        json_object *o = NULL;
        if (l > 0 && l < 65536) {
            json_tokener *tok = json_tokener_new();
            o = json_tokener_parse_ex(tok, p, (int)l);
            json_tokener_free(tok);
        }
        if (o && json_object_is_type(o, json_type_object))
            llmc__assembler_add(a, o);
        json_object_put(o);
        p += l;
    }
    FUZZ_CHECK(p <= end, "event records overrun");
    json_object *r = llmc__assembler_result(a);
    llmc__assembler_free(a);
    /* Only what the client would store is ever replayed. */
    if (!r || !llmc__response_storable(LLMC_CALL_CHAT, r)) {
        json_object_put(r);
        return;
    }
    llmc__assembler *b = llmc__assembler_new();
    llmc_status st = llmc__replay(r, to_asm, b);
    if (st == LLMC_OK) {
        json_object *r2 = llmc__assembler_result(b);
        llmc_buf c1 = LLMC_BUF_INIT, c2 = LLMC_BUF_INIT;
        FUZZ_CHECK(r2 != NULL, "replay of an assembled response gave nothing");
        if (llmc_json_canonicalize(r, &c1) == LLMC_OK &&
            llmc_json_canonicalize(r2, &c2) == LLMC_OK)
            FUZZ_CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0,
                       "assemble(replay(x)) != x:\n%s\n%s", c1.data, c2.data);
        llmc_buf_free(&c1);
        llmc_buf_free(&c2);
        json_object_put(r2);
    }
    llmc__assembler_free(b);
    json_object_put(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    events w = {LLMC_BUF_INIT, 0}, s = {LLMC_BUF_INIT, 0};
    run_sse(data, size, size ? size : 1, &w);
    run_sse(data, size, 1, &s);
    same_events(&w, &s, "SSE");
    assemble_events(&w);
    llmc_buf_free(&w.all);
    llmc_buf_free(&s.all);
    events nw = {LLMC_BUF_INIT, 0}, ns = {LLMC_BUF_INIT, 0};
    run_nd(data, size, size ? size : 1, &nw);
    run_nd(data, size, 1, &ns);
    same_events(&nw, &ns, "NDJSON");
    assemble_events(&nw);
    llmc_buf_free(&nw.all);
    llmc_buf_free(&ns.all);
    return 0;
}
