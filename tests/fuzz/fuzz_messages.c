/* The Messages API stream path (core/messages_stream.c and the anthropic
 * adapter's event parser, providers/anthropic_messages.c). The input is
 * an upstream SSE body:
 *  - each event goes through the adapter's parser into the assembler, as
 *    a streamed miss does, until the parser refuses one (an error event,
 *    a non-object, no "type"): no crash, no leak, whatever the bytes;
 *  - when the stream would be stored (message_stop seen, a stop_reason,
 *    a storable Message), its replay, written as SSE text and read back
 *    through the same parser and assembler (what a client of the proxy
 *    sees), must give the stored Message back: assemble(replay(x)) == x
 *    in canonical form. */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "messages.h"
#include "net.h"
#include "providers/adapters.h"

typedef struct feed {
    llmc__msg_asm *a;
    int done;
    llmc_status st;
} feed;

static llmc_status to_asm(void *ud, struct json_object *ev)
{
    return llmc__msg_asm_add(ud, ev);
}

static llmc_status on_event(void *ud, const char *event, const char *data, size_t len)
{
    feed *f = ud;
    llmc_err err;
    llmc_status st = llmc__anth_msg_event(event, data, len, to_asm, f->a, &f->done, &err);
    if (st != LLMC_OK)
        f->st = st;
    return st;
}

/* Parse an SSE text into a Message: NULL unless it would be stored. */
static json_object *assemble(const char *text, size_t len, int *stored)
{
    feed f = {llmc__msg_asm_new(), 0, LLMC_OK};
    llmc__sse p;
    llmc__sse_init(&p);
    llmc_status st = llmc__sse_feed(&p, text, len, on_event, &f);
    if (st == LLMC_OK)
        st = llmc__sse_finish(&p, on_event, &f);
    llmc__sse_free(&p);
    json_object *m = llmc__msg_asm_result(f.a);
    /* done may come from a message_stop the assembler ignored (before any
     * message_start): the Message must then not be storable. */
    int stopped = llmc__msg_asm_stopped(f.a);
    llmc__msg_asm_free(f.a);
    *stored = st == LLMC_OK && f.done && m && llmc__msg_storable(m) && llmc__msg_finished(m);
    FUZZ_CHECK(!*stored || stopped, "a stream without message_stop would be stored");
    return m;
}

static llmc_status to_sse(void *ud, struct json_object *ev)
{
    llmc_buf *b = ud;
    json_object *t = NULL;
    json_object_object_get_ex(ev, "type", &t);
    size_t len;
    const char *s = json_object_to_json_string_length(
        ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    llmc_buf_puts(b, "event: ");
    llmc_buf_puts(b, t ? json_object_get_string(t) : "?");
    llmc_buf_puts(b, "\ndata: ");
    llmc_buf_append(b, s, len);
    return llmc_buf_puts(b, "\n\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    int stored = 0;
    json_object *m = assemble((const char *)data, size, &stored);
    if (stored) {
        llmc_buf sse = LLMC_BUF_INIT;
        FUZZ_CHECK(llmc__msg_replay(m, to_sse, &sse) == LLMC_OK, "replay failed");
        int again_stored = 0;
        json_object *m2 = assemble(sse.data ? sse.data : "", sse.len, &again_stored);
        FUZZ_CHECK(again_stored && m2, "the replay of a stored message is not storable:\n%s",
                   sse.data ? sse.data : "");
        llmc_buf c1 = LLMC_BUF_INIT, c2 = LLMC_BUF_INIT;
        if (llmc_json_canonicalize(m, &c1) == LLMC_OK &&
            llmc_json_canonicalize(m2, &c2) == LLMC_OK)
            FUZZ_CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0,
                       "assemble(replay(x)) != x:\n%s\n%s", c1.data, c2.data);
        llmc_buf_free(&c1);
        llmc_buf_free(&c2);
        llmc_buf_free(&sse);
        json_object_put(m2);
    }
    json_object_put(m);
    return 0;
}
