/* A translated Responses stream (core/responses_conv.c): chat chunks, as
 * a provider's chat adapter hands them on, turned into Responses events.
 * The input is one chat chunk per line (lines that are not JSON are left
 * out, as a stream parser would refuse them). Each chunk goes to the
 * converter and to the chat stream assembler, as a streamed miss does;
 * when the converter went along to the end, the assembled answer is
 * translated (llmc__responses_from_chat) and the converter finishes
 * with it:
 *  - no crash or leak on any chunks;
 *  - the events' sequence_number counts from 0 without gaps, the last
 *    event is response.completed carrying the finished response, and
 *    every delta belongs to an item announced before it;
 *  - per item, its deltas joined are the text, summary or arguments the
 *    finished response holds for it;
 *  - the finished response loses nothing of the assembled answer: its
 *    message texts joined are the answer's content, its reasoning the
 *    answer's reasoning, its function calls the answer's tool calls
 *    (the same arguments, as a multiset);
 *  - replayed (what a later hit sends), it has the items in the same
 *    order with the same ids. */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "calltype_responses.h"
#include "net.h"

typedef struct evlog {
    json_object *arr;
} log_t;

static int to_log(void *ud, json_object *ev)
{
    log_t *l = ud;
    json_object_array_add(l->arr, json_object_get(ev));
    return 0;
}

static llmc_status to_log_sink(void *ud, json_object *ev)
{
    to_log(ud, ev);
    return LLMC_OK;
}

static const char *str_of(json_object *o, const char *name)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

/* The text an output item holds (message text, summary, arguments). */
static const char *item_text(json_object *it)
{
    const char *t = str_of(it, "type");
    json_object *a;
    if (strcmp(t, "function_call") == 0)
        return str_of(it, "arguments");
    if (json_object_object_get_ex(it, strcmp(t, "message") == 0 ? "content" : "summary", &a) &&
        json_object_array_length(a) == 1)
        return str_of(json_object_array_get_idx(a, 0), "text");
    return "";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The events of one stream against the response they end with. */
static void check_events(json_object *arr, json_object *resp)
{
    size_t n = json_object_array_length(arr);
    FUZZ_CHECK(n >= 3, "only %zu events", n);
    json_object *out;
    FUZZ_CHECK(json_object_object_get_ex(resp, "output", &out) &&
                   json_object_is_type(out, json_type_array),
               "the response has no output");
    size_t items = json_object_array_length(out);
    llmc_buf *joined = calloc(items + 1, sizeof *joined);
    size_t announced = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *v;
        FUZZ_CHECK(json_object_object_get_ex(e, "sequence_number", &v) &&
                       json_object_get_int64(v) == (int64_t)i,
                   "event %zu has sequence_number %s", i, json_object_to_json_string(v));
        const char *type = str_of(e, "type");
        if (strcmp(type, "response.output_item.added") == 0) {
            json_object_object_get_ex(e, "output_index", &v);
            FUZZ_CHECK(json_object_get_int(v) == (int)announced, "item %d announced as #%zu",
                       json_object_get_int(v), announced);
            FUZZ_CHECK(announced < items, "more items announced than the response holds");
            json_object *it = json_object_array_get_idx(out, announced), *ei;
            json_object_object_get_ex(e, "item", &ei);
            FUZZ_CHECK(strcmp(str_of(ei, "id"), str_of(it, "id")) == 0,
                       "item %zu announced as %s, finished as %s", announced, str_of(ei, "id"),
                       str_of(it, "id"));
            announced++;
        }
        size_t tl = strlen(type);
        if (tl > 6 && strcmp(type + tl - 6, ".delta") == 0) {
            FUZZ_CHECK(json_object_object_get_ex(e, "output_index", &v), "a delta without index");
            int oi = json_object_get_int(v);
            FUZZ_CHECK(oi >= 0 && (size_t)oi < announced, "a delta of item %d of %zu", oi,
                       announced);
            FUZZ_CHECK(strcmp(str_of(e, "item_id"),
                              str_of(json_object_array_get_idx(out, (size_t)oi), "id")) == 0,
                       "a delta of item %d has another id", oi);
            llmc_buf_puts(&joined[oi], str_of(e, "delta"));
        }
        if (i == n - 1) {
            FUZZ_CHECK(strcmp(type, "response.completed") == 0, "the last event is %s", type);
            FUZZ_CHECK(json_object_object_get_ex(e, "response", &v) && v == resp,
                       "response.completed does not carry the response");
        }
    }
    FUZZ_CHECK(announced == items, "%zu items announced, %zu finished", announced, items);
    for (size_t i = 0; i < items; i++) {
        const char *want = item_text(json_object_array_get_idx(out, i));
        const char *got = joined[i].data ? joined[i].data : "";
        FUZZ_CHECK(strcmp(want, got) == 0, "item %zu: deltas \"%s\", finished \"%s\"", i, got,
                   want);
        llmc_buf_free(&joined[i]);
    }
    free(joined);
}

/* Nothing of the assembled answer is lost. */
static void check_answer(json_object *chat, json_object *resp)
{
    json_object *choices, *ch = NULL, *msg = NULL, *tcs = NULL, *out, *v;
    if (json_object_object_get_ex(chat, "choices", &choices))
        ch = json_object_array_get_idx(choices, 0);
    /* The converter follows the choice with index 0 (a chat stream for
     * one answer has no other); a translation of another is not its. */
    if (!json_object_object_get_ex(ch, "index", &v) || json_object_get_int(v) != 0)
        return;
    json_object_object_get_ex(ch, "message", &msg);
    json_object_object_get_ex(msg, "tool_calls", &tcs);
    json_object_object_get_ex(resp, "output", &out);
    llmc_buf text = LLMC_BUF_INIT, reasoning = LLMC_BUF_INIT;
    size_t nout = json_object_array_length(out), ncalls = 0;
    const char **args = calloc(nout + 1, sizeof *args);
    for (size_t i = 0; i < nout; i++) {
        json_object *it = json_object_array_get_idx(out, i);
        const char *t = str_of(it, "type");
        if (strcmp(t, "message") == 0)
            llmc_buf_puts(&text, item_text(it));
        else if (strcmp(t, "reasoning") == 0)
            llmc_buf_puts(&reasoning, item_text(it));
        else
            args[ncalls++] = item_text(it);
    }
    FUZZ_CHECK(strcmp(text.data ? text.data : "", str_of(msg, "content")) == 0,
               "message text \"%s\", answer \"%s\"", text.data ? text.data : "",
               str_of(msg, "content"));
    FUZZ_CHECK(strcmp(reasoning.data ? reasoning.data : "", str_of(msg, "reasoning_content")) == 0,
               "reasoning \"%s\", answer \"%s\"", reasoning.data ? reasoning.data : "",
               str_of(msg, "reasoning_content"));
    size_t nt = tcs ? json_object_array_length(tcs) : 0;
    FUZZ_CHECK(nt == ncalls, "%zu function calls, the answer has %zu", ncalls, nt);
    const char **want = calloc(nt + 1, sizeof *want);
    for (size_t i = 0; i < nt; i++) {
        json_object *fn = NULL;
        json_object_object_get_ex(json_object_array_get_idx(tcs, i), "function", &fn);
        want[i] = str_of(fn, "arguments");
    }
    qsort(args, ncalls, sizeof *args, cmp_str);
    qsort(want, nt, sizeof *want, cmp_str);
    for (size_t i = 0; i < nt; i++)
        FUZZ_CHECK(strcmp(args[i], want[i]) == 0, "arguments differ: \"%s\" / \"%s\"", args[i],
                   want[i]);
    free(args);
    free(want);
    llmc_buf_free(&text);
    llmc_buf_free(&reasoning);
}

/* The replay announces the same items, in the same order. */
static void check_replay(json_object *resp)
{
    log_t l = {json_object_new_array()};
    FUZZ_CHECK(llmc__responses_replay_sink(resp, to_log_sink, &l) == LLMC_OK, "replay failed");
    json_object *out;
    json_object_object_get_ex(resp, "output", &out);
    size_t k = 0;
    for (size_t i = 0; i < json_object_array_length(l.arr); i++) {
        json_object *e = json_object_array_get_idx(l.arr, i), *it;
        if (strcmp(str_of(e, "type"), "response.output_item.added") != 0)
            continue;
        json_object_object_get_ex(e, "item", &it);
        FUZZ_CHECK(k < json_object_array_length(out) &&
                       strcmp(str_of(it, "id"), str_of(json_object_array_get_idx(out, k), "id")) ==
                           0,
                   "the replay's item %zu differs", k);
        k++;
    }
    FUZZ_CHECK(k == json_object_array_length(out), "the replay announced %zu items", k);
    json_object_put(l.arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    json_object *req = json_tokener_parse("{\"model\":\"m\",\"input\":\"hi\"}");
    log_t l = {json_object_new_array()};
    llmc__rconv *cv = llmc__rconv_new(req, to_log, &l);
    llmc__assembler *a = llmc__assembler_new();
    int stopped = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end && !stopped) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_tokener *tok = json_tokener_new();
        json_object *chunk = json_tokener_parse_ex(tok, p, (int)len);
        if (chunk && json_tokener_get_error(tok) == json_tokener_success &&
            json_object_is_type(chunk, json_type_object)) {
            if (llmc__rconv_chunk(cv, chunk) != 0) {
                llmc_err err;
                FUZZ_CHECK(llmc__rconv_error(cv, &err) != LLMC_OK && err.msg[0],
                           "the converter stopped without saying why");
                stopped = 1;
            } else {
                llmc__assembler_add(a, chunk);
            }
        }
        json_object_put(chunk);
        json_tokener_free(tok);
        p += len + 1;
    }
    json_object *chat = stopped ? NULL : llmc__assembler_result(a);
    json_object *resp = NULL;
    if (chat && json_object_object_get_ex(chat, "choices", NULL) &&
        llmc__responses_from_chat(chat, req, &resp, NULL) == LLMC_OK) {
        FUZZ_CHECK(llmc__rconv_finish(cv, resp) == 0, "finish stopped");
        check_events(l.arr, resp);
        check_answer(chat, resp);
        check_replay(resp);
    }
    json_object_put(resp);
    json_object_put(chat);
    llmc__assembler_free(a);
    llmc__rconv_free(cv);
    json_object_put(l.arr);
    json_object_put(req);
    return 0;
}
