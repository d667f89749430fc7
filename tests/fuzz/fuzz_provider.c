/* Each provider adapter's response parsers, through the provider table
 * (no HTTP): parse_response, parse_stream_event (the body framed by the
 * core's SSE or NDJSON parser, chunks assembled as the client does) and
 * map_error. Byte 0 picks the provider; byte 1: bits 0-1 the call type
 * (chat, text, embedding), bits 2-3 what to parse (response, stream,
 * error), bits 4-7 the error's HTTP status; the rest is the body. A
 * parser must return a normalised object or a status with a message,
 * never crash, never leave UB behind. */
#include "fuzz.h"

#include <string.h>

#include <json-c/json.h>

#include "net.h"
#include "llmcache/llmcache.h"

static const char *const providers[] = {"openai", "azure", "anthropic", "gemini", "ollama",
                                        "openai-compatible"};
#define N_PROVIDERS (sizeof providers / sizeof providers[0])

typedef struct sctx {
    const llmc_provider_ops *ops;
    const llmc_provider_call *call;
    void *state;
    llmc__assembler *asmb;
    int done;
    llmc_status st;
    llmc_err *err;
} sctx;

static llmc_status sink(void *ud, struct json_object *chunk)
{
    sctx *s = ud;
    FUZZ_CHECK(chunk && json_object_is_type(chunk, json_type_object),
               "%s: a stream chunk that is not an object", s->call->provider);
    return llmc__assembler_add(s->asmb, chunk) == LLMC_ENOMEM ? LLMC_ENOMEM : LLMC_OK;
}

static llmc_status drop(void *ud, struct json_object *chunk)
{
    (void)ud;
    (void)chunk;
    return LLMC_OK;
}

static llmc_status on_event(void *ud, const char *event, const char *data, size_t len)
{
    sctx *s = ud;
    llmc_status st = s->ops->parse_stream_event(s->state, s->call, event, data, len, sink, s,
                                                &s->done, s->err);
    if (st != LLMC_OK)
        FUZZ_CHECK(s->err->msg[0] != 0, "%s: stream event failed (%s) without a message",
                   s->call->provider, llmc_status_name(st));
    return st;
}

static void stream(const llmc_provider_ops *ops, const llmc_provider_call *call,
                   const char *body, size_t len, llmc_err *err)
{
    if (!ops->parse_stream_event)
        return;
    sctx s;
    memset(&s, 0, sizeof s);
    s.ops = ops;
    s.call = call;
    s.err = err;
    if (ops->stream_new && ops->stream_new(call, &s.state, err) != LLMC_OK)
        return;
    s.asmb = llmc__assembler_new();
    if (strcmp(call->provider, "ollama") == 0) {
        llmc__ndjson p;
        llmc__ndjson_init(&p);
        if (llmc__ndjson_feed(&p, body, len, on_event, &s) == LLMC_OK)
            llmc__ndjson_finish(&p, on_event, &s);
        llmc__ndjson_free(&p);
    } else {
        llmc__sse p;
        llmc__sse_init(&p);
        if (llmc__sse_feed(&p, body, len, on_event, &s) == LLMC_OK)
            llmc__sse_finish(&p, on_event, &s);
        llmc__sse_free(&p);
    }
    json_object *r = llmc__assembler_result(s.asmb);
    if (r) {
        FUZZ_CHECK(json_object_is_type(r, json_type_object), "assembled response not an object");
        llmc__response_storable(LLMC_CALL_CHAT, r);
        json_object_put(r);
    }
    llmc__assembler_free(s.asmb);
    if (ops->stream_free)
        ops->stream_free(s.state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    const char *name = providers[data[0] % N_PROVIDERS];
    const llmc_provider_ops *ops = llmc_find_provider(name);
    FUZZ_CHECK(ops != NULL, "provider %s not registered", name);
    static const llmc_call_type calls[] = {LLMC_CALL_CHAT, LLMC_CALL_TEXT, LLMC_CALL_EMBEDDING};
    int mode = ((data[1] >> 2) & 3) % 3; /* 0 response, 1 stream, 2 error */
    /* The body, NUL-terminated as the core hands it over. */
    size_t len = size - 2;
    char *body = malloc(len + 1);
    if (!body)
        return 0;
    memcpy(body, data + 2, len);
    body[len] = 0;

    llmc_provider_call call;
    memset(&call, 0, sizeof call);
    call.struct_size = sizeof call;
    call.call = calls[(data[1] & 3) % 3];
    call.provider = name;
    call.model = "m";
    call.api_base = "http://x";
    call.api_version = "2024-06-01";
    call.stream = mode == 1;
    llmc_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.struct_size = sizeof resp;
    resp.status = mode == 2 ? 400 + (long)(data[1] >> 4) * 7 : 200;
    resp.headers = "content-type: application/json\r\n";
    resp.headers_len = strlen(resp.headers);
    resp.body = body;
    resp.body_len = len;
    resp.retry_after_ms = -1;
    llmc_err err;
    llmc_err_clear(&err);
    if (mode == 0) {
        json_object *out = NULL;
        llmc_status st = ops->parse_response(&call, &resp, &out, &err);
        if (st == LLMC_OK) {
            FUZZ_CHECK(out && json_object_is_type(out, json_type_object),
                       "%s: parse_response OK without an object", name);
            llmc__response_storable(call.call, out);
            if (call.call == LLMC_CALL_CHAT)
                llmc__replay(out, drop, NULL);
        } else {
            FUZZ_CHECK(err.msg[0] != 0, "%s: parse_response %s without a message", name,
                       llmc_status_name(st));
        }
        json_object_put(out);
    } else if (mode == 1) {
        if (call.call == LLMC_CALL_CHAT)
            stream(ops, &call, body, len, &err);
    } else {
        llmc_status st = ops->map_error ? ops->map_error(&call, &resp, &err)
                                        : llmc_provider_map_error_default(&call, &resp, &err);
        FUZZ_CHECK(st != LLMC_OK && err.msg[0] != 0, "%s: map_error gave %s / \"%s\"", name,
                   llmc_status_name(st), err.msg);
    }
    free(body);
    return 0;
}
