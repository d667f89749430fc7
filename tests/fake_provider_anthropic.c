/* Anthropic Messages API wire format for the fake provider server.
 * POST /v1/messages: answers "echo: <last user text>" as a message, or
 * as the documented SSE event sequence when "stream": true; with tools,
 * a tool_use block calling the first tool; with "thinking" enabled, a
 * thinking block ("thinking about <text>", signature "sig_fake01")
 * first. No x-api-key: 401 with an authentication_error body, as
 * Anthropic does. */
#include "fake_provider.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return (o && json_object_object_get_ex(o, k, &v)) ? v : NULL;
}

/* Text of the last user message (string or text blocks). */
static void last_user_text(json_object *body, char *out, size_t cap)
{
    json_object *msgs = get(body, "messages");
    size_t n = msgs ? json_object_array_length(msgs) : 0;
    out[0] = '\0';
    while (n-- > 0) {
        json_object *m = json_object_array_get_idx(msgs, n), *c = get(m, "content");
        if (strcmp(json_object_get_string(get(m, "role")), "user") != 0)
            continue;
        if (json_object_is_type(c, json_type_string)) {
            snprintf(out, cap, "%s", json_object_get_string(c));
        } else if (json_object_is_type(c, json_type_array)) {
            size_t i;
            for (i = 0; i < json_object_array_length(c); i++) {
                json_object *b = json_object_array_get_idx(c, i);
                const char *t = json_object_get_string(get(b, "type"));
                if (t && strcmp(t, "text") == 0)
                    snprintf(out, cap, "%s", json_object_get_string(get(b, "text")));
                else if (t && strcmp(t, "tool_result") == 0)
                    snprintf(out, cap, "tool said %s", json_object_get_string(get(b, "content")));
            }
        }
        return;
    }
}

void fp_anthropic_messages(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *tools, *o, *content, *blk, *usage;
    char text[1024], echo[1100];
    const char *tool = NULL;
    int stream, thinking, base;
    json_object *th;
    (void)ud;

    if (!fp_header_get(req, "x-api-key")) {
        fp_reply_json(c, 401, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                              "\"message\":\"invalid x-api-key\"}}");
        json_object_put(body);
        return;
    }
    if (!body || !get(body, "messages") || !get(body, "max_tokens")) {
        fp_reply_json(c, 400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                              "\"message\":\"messages and max_tokens are required\"}}");
        json_object_put(body);
        return;
    }
    last_user_text(body, text, sizeof text);
    snprintf(echo, sizeof echo, "echo: %s", text);
    tools = get(body, "tools");
    if (tools && json_object_array_length(tools) > 0 && strncmp(text, "tool said", 9) != 0)
        tool = json_object_get_string(get(json_object_array_get_idx(tools, 0), "name"));
    stream = get(body, "stream") && json_object_get_boolean(get(body, "stream"));
    th = get(get(body, "thinking"), "type");
    thinking = th && strcmp(json_object_get_string(th), "enabled") == 0;
    base = thinking ? 1 : 0; /* index of the text block */

    if (!stream) {
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string("msg_fake01"));
        json_object_object_add(o, "type", json_object_new_string("message"));
        json_object_object_add(o, "role", json_object_new_string("assistant"));
        json_object_object_add(o, "model", json_object_get(get(body, "model")));
        content = json_object_new_array();
        if (thinking) {
            char thought[1100];
            snprintf(thought, sizeof thought, "thinking about %s", text);
            blk = json_object_new_object();
            json_object_object_add(blk, "type", json_object_new_string("thinking"));
            json_object_object_add(blk, "thinking", json_object_new_string(thought));
            json_object_object_add(blk, "signature", json_object_new_string("sig_fake01"));
            json_object_array_add(content, blk);
        }
        blk = json_object_new_object();
        json_object_object_add(blk, "type", json_object_new_string("text"));
        json_object_object_add(blk, "text", json_object_new_string(echo));
        json_object_array_add(content, blk);
        if (tool) {
            json_object *input = json_object_new_object();
            json_object_object_add(input, "q", json_object_new_string(text));
            blk = json_object_new_object();
            json_object_object_add(blk, "type", json_object_new_string("tool_use"));
            json_object_object_add(blk, "id", json_object_new_string("toolu_fake01"));
            json_object_object_add(blk, "name", json_object_new_string(tool));
            json_object_object_add(blk, "input", input);
            json_object_array_add(content, blk);
        }
        json_object_object_add(o, "content", content);
        json_object_object_add(o, "stop_reason", json_object_new_string(tool ? "tool_use" : "end_turn"));
        json_object_object_add(o, "stop_sequence", NULL);
        usage = json_object_new_object();
        json_object_object_add(usage, "input_tokens", json_object_new_int((int)strlen(text)));
        json_object_object_add(usage, "output_tokens", json_object_new_int((int)strlen(echo)));
        json_object_object_add(usage, "cache_creation_input_tokens", json_object_new_int(0));
        json_object_object_add(usage, "cache_read_input_tokens", json_object_new_int(0));
        json_object_object_add(o, "usage", usage);
        fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        char buf[2048];
        json_object *piece;
        size_t half = strlen(echo) / 2;
        fp_stream_begin(c, "text/event-stream");
        snprintf(buf, sizeof buf,
                 "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_fake01\",\"type\":\"message\","
                 "\"role\":\"assistant\",\"model\":\"%s\",\"content\":[],\"stop_reason\":null,"
                 "\"usage\":{\"input_tokens\":%zu,\"output_tokens\":1}}}",
                 json_object_get_string(get(body, "model")), strlen(text));
        if (fp_sse_event(c, "message_start", buf) < 0)
            goto out;
        if (thinking) {
            if (fp_sse_event(c, "content_block_start",
                             "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                             "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}") < 0 ||
                fp_sse_event(c, "ping", "{\"type\": \"ping\"}") < 0 ||
                fp_sse_event(c, "content_block_delta",
                             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                             "\"thinking_delta\",\"thinking\":\"thinking \"}}") < 0)
                goto out;
            piece = json_object_new_string(text);
            snprintf(buf, sizeof buf,
                     "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                     "\"thinking_delta\",\"thinking\":%s}}",
                     json_object_to_json_string(piece));
            json_object_put(piece);
            if (fp_sse_event(c, "content_block_delta",
                             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                             "\"thinking_delta\",\"thinking\":\"about \"}}") < 0 ||
                fp_sse_event(c, "content_block_delta", buf) < 0 ||
                fp_sse_event(c, "content_block_delta",
                             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                             "\"signature_delta\",\"signature\":\"sig_fake01\"}}") < 0 ||
                fp_sse_event(c, "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}") < 0)
                goto out;
        }
        snprintf(buf, sizeof buf,
                 "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":"
                 "{\"type\":\"text\",\"text\":\"\"}}", base);
        if (fp_sse_event(c, "content_block_start", buf) < 0)
            goto out;
        if (!thinking && fp_sse_event(c, "ping", "{\"type\": \"ping\"}") < 0)
            goto out;
        /* The text in two deltas (JSON-escaped through json-c). */
        piece = json_object_new_string_len(echo, (int)half);
        snprintf(buf, sizeof buf,
                 "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"text_delta\","
                 "\"text\":%s}}",
                 base, json_object_to_json_string(piece));
        json_object_put(piece);
        if (fp_sse_event(c, "content_block_delta", buf) < 0)
            goto out;
        piece = json_object_new_string(echo + half);
        snprintf(buf, sizeof buf,
                 "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"text_delta\","
                 "\"text\":%s}}",
                 base, json_object_to_json_string(piece));
        json_object_put(piece);
        if (fp_sse_event(c, "content_block_delta", buf) < 0)
            goto out;
        snprintf(buf, sizeof buf, "{\"type\":\"content_block_stop\",\"index\":%d}", base);
        if (fp_sse_event(c, "content_block_stop", buf) < 0)
            goto out;
        if (tool) {
            char d1[256], d2[256], stop[96];
            snprintf(buf, sizeof buf,
                     "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{\"type\":"
                     "\"tool_use\",\"id\":\"toolu_fake01\",\"name\":\"%s\",\"input\":{}}}",
                     base + 1, tool);
            snprintf(d1, sizeof d1,
                     "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                     "\"input_json_delta\",\"partial_json\":\"{\\\"q\\\": \"}}", base + 1);
            snprintf(d2, sizeof d2,
                     "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                     "\"input_json_delta\",\"partial_json\":\"\\\"x\\\"}\"}}", base + 1);
            snprintf(stop, sizeof stop, "{\"type\":\"content_block_stop\",\"index\":%d}", base + 1);
            if (fp_sse_event(c, "content_block_start", buf) < 0 ||
                fp_sse_event(c, "content_block_delta", d1) < 0 ||
                fp_sse_event(c, "content_block_delta", d2) < 0 ||
                fp_sse_event(c, "content_block_stop", stop) < 0)
                goto out;
        }
        snprintf(buf, sizeof buf,
                 "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},"
                 "\"usage\":{\"output_tokens\":%zu}}",
                 tool ? "tool_use" : "end_turn", strlen(echo));
        if (fp_sse_event(c, "message_delta", buf) < 0)
            goto out;
        if (fp_sse_event(c, "message_stop", "{\"type\":\"message_stop\"}") < 0)
            goto out;
        fp_stream_end(c);
    }
out:
    json_object_put(body);
}
