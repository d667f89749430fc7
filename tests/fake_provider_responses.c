/* OpenAI Responses API wire format for the fake provider server.
 * POST /v1/responses (OpenAI) and /openai/responses (Azure OpenAI):
 * answers "echo: <last user text>" as a response object, or as the
 * documented typed SSE events when "stream": true (event: <type> lines,
 * text over several deltas, sequence_number from 0, no [DONE]). Words in
 * the text steer it:
 *   CALL_TOOL    a function_call item (the first tool's name, or
 *                get_weather) with arguments streamed in pieces
 *   THINK        a reasoning item with a summary before the message
 *   FAIL_STREAM  the response fails (stream: response.failed after the
 *                text deltas)
 *   ERROR_EVENT  the stream carries an "error" event after
 *                response.created
 *   INCOMPLETE   the response stops at max_output_tokens
 * A function_call_output input item is answered "echo: tool said <out>".
 * No Authorization / api-key header: 401 in OpenAI's error format. */
#include "fake_provider.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return (o && json_object_object_get_ex(o, k, &v)) ? v : NULL;
}

static const char *gets_(json_object *o, const char *k)
{
    json_object *v = get(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The text the answer echoes: the input string, or the last user
 * message's text, or the last function_call_output. */
static void input_text(json_object *body, char *out, size_t cap)
{
    json_object *in = get(body, "input");
    out[0] = '\0';
    if (json_object_is_type(in, json_type_string)) {
        snprintf(out, cap, "%s", json_object_get_string(in));
        return;
    }
    size_t n = json_object_is_type(in, json_type_array) ? json_object_array_length(in) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(in, i), *c = get(it, "content");
        const char *t = gets_(it, "type");
        if (t && strcmp(t, "function_call_output") == 0) {
            snprintf(out, cap, "tool said %s", gets_(it, "output") ? gets_(it, "output") : "");
            continue;
        }
        if (!gets_(it, "role") || strcmp(gets_(it, "role"), "user") != 0)
            continue;
        if (json_object_is_type(c, json_type_string)) {
            snprintf(out, cap, "%s", json_object_get_string(c));
        } else if (json_object_is_type(c, json_type_array)) {
            for (size_t j = 0; j < json_object_array_length(c); j++) {
                json_object *p = json_object_array_get_idx(c, j);
                if (gets_(p, "type") && strcmp(gets_(p, "type"), "input_text") == 0)
                    snprintf(out, cap, "%s", gets_(p, "text") ? gets_(p, "text") : "");
            }
        }
    }
}

static json_object *message_item(const char *text)
{
    json_object *it = json_object_new_object(), *parts = json_object_new_array(),
                *p = json_object_new_object();
    json_object_object_add(it, "id", json_object_new_string("msg_fake1"));
    json_object_object_add(it, "type", json_object_new_string("message"));
    json_object_object_add(it, "status", json_object_new_string("completed"));
    json_object_object_add(it, "role", json_object_new_string("assistant"));
    json_object_object_add(p, "type", json_object_new_string("output_text"));
    json_object_object_add(p, "text", json_object_new_string(text));
    json_object_object_add(p, "annotations", json_object_new_array());
    json_object_array_add(parts, p);
    json_object_object_add(it, "content", parts);
    return it;
}

static json_object *build_response(json_object *req, const char *text, const char *status)
{
    json_object *r = json_object_new_object(), *out = json_object_new_array();
    json_object_object_add(r, "id", json_object_new_string("resp_fake1"));
    json_object_object_add(r, "object", json_object_new_string("response"));
    json_object_object_add(r, "created_at", json_object_new_int64(1700000000));
    json_object_object_add(r, "status", json_object_new_string(status));
    json_object_object_add(r, "error", NULL);
    json_object_object_add(r, "incomplete_details", NULL);
    json_object_object_add(r, "instructions", json_object_get(get(req, "instructions")));
    json_object_object_add(r, "model", json_object_new_string(gets_(req, "model") ? gets_(req, "model") : ""));
    char answer[4200];
    snprintf(answer, sizeof answer, "echo: %s", text);
    if (strstr(text, "THINK")) {
        json_object *it = json_object_new_object(), *sum = json_object_new_array(),
                    *p = json_object_new_object();
        char s[4300];
        snprintf(s, sizeof s, "Thinking about: %s", text);
        json_object_object_add(it, "id", json_object_new_string("rs_fake1"));
        json_object_object_add(it, "type", json_object_new_string("reasoning"));
        json_object_object_add(p, "type", json_object_new_string("summary_text"));
        json_object_object_add(p, "text", json_object_new_string(s));
        json_object_array_add(sum, p);
        json_object_object_add(it, "summary", sum);
        json_object_array_add(out, it);
    }
    if (strstr(text, "CALL_TOOL")) {
        json_object *tools = get(req, "tools");
        const char *name = "get_weather";
        if (json_object_is_type(tools, json_type_array) && json_object_array_length(tools) > 0 &&
            gets_(json_object_array_get_idx(tools, 0), "name"))
            name = gets_(json_object_array_get_idx(tools, 0), "name");
        json_object *it = json_object_new_object();
        json_object_object_add(it, "id", json_object_new_string("fc_fake1"));
        json_object_object_add(it, "type", json_object_new_string("function_call"));
        json_object_object_add(it, "status", json_object_new_string("completed"));
        json_object_object_add(it, "call_id", json_object_new_string("call_fake1"));
        json_object_object_add(it, "name", json_object_new_string(name));
        json_object_object_add(it, "arguments",
                               json_object_new_string("{\"city\":\"Paris\",\"unit\":\"c\"}"));
        json_object_array_add(out, it);
    } else {
        json_object_array_add(out, message_item(answer));
    }
    json_object_object_add(r, "output", out);
    json_object_object_add(r, "parallel_tool_calls", json_object_new_boolean(1));
    json_object_object_add(r, "previous_response_id",
                           json_object_get(get(req, "previous_response_id")));
    json_object_object_add(r, "tools", get(req, "tools") ? json_object_get(get(req, "tools"))
                                                         : json_object_new_array());
    json_object *u = json_object_new_object();
    json_object_object_add(u, "input_tokens", json_object_new_int((int)strlen(text) / 4 + 1));
    json_object_object_add(u, "output_tokens", json_object_new_int((int)strlen(answer) / 4 + 1));
    json_object_object_add(u, "total_tokens",
                           json_object_new_int((int)(strlen(text) + strlen(answer)) / 4 + 2));
    json_object_object_add(r, "usage", u);
    if (strcmp(status, "incomplete") == 0) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "reason", json_object_new_string("max_output_tokens"));
        json_object_object_add(r, "incomplete_details", d);
    }
    return r;
}

/* ---- the stream ---- */

typedef struct sw {
    fp_conn *c;
    int seq;
    int cut;
} sw;

/* Sends ev (consumed) with its sequence_number. */
static void send_ev(sw *w, json_object *ev)
{
    if (!w->cut) {
        json_object_object_add(ev, "sequence_number", json_object_new_int(w->seq++));
        const char *type = gets_(ev, "type");
        if (fp_sse_event(w->c, type, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN)) < 0)
            w->cut = 1;
    }
    json_object_put(ev);
}

static json_object *ev(const char *type, const char *item_id, int oi)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    if (item_id) {
        json_object_object_add(e, "item_id", json_object_new_string(item_id));
        json_object_object_add(e, "output_index", json_object_new_int(oi));
    }
    return e;
}

/* Pieces end after a space or at 16 bytes (the same split llmcache's
 * replay uses, so a replay can be compared event for event). */
static void send_deltas(sw *w, const char *type, const char *id, int oi, const char *idx_name,
                        int idx, const char *s, int logprobs)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        size_t n = 0;
        while (off + n < len && n < 16)
            if (s[off + n++] == ' ')
                break;
        while (off + n < len && ((unsigned char)s[off + n] & 0xC0) == 0x80)
            n++;
        json_object *e = ev(type, id, oi);
        if (idx_name)
            json_object_object_add(e, idx_name, json_object_new_int(idx));
        json_object_object_add(e, "delta", json_object_new_string_len(s + off, (int)n));
        if (logprobs)
            json_object_object_add(e, "logprobs", json_object_new_array());
        send_ev(w, e);
        off += n;
    }
}

static json_object *copy(json_object *o)
{
    json_object *c = NULL;
    json_object_deep_copy(o, &c, NULL);
    return c;
}

static void stream_response(fp_conn *c, json_object *r, const char *text)
{
    sw w = {c, 0, 0};
    fp_stream_begin(c, "text/event-stream");
    json_object *start = copy(r);
    json_object_object_add(start, "status", json_object_new_string("in_progress"));
    json_object_object_add(start, "output", json_object_new_array());
    json_object_object_add(start, "usage", NULL);
    json_object *e = ev("response.created", NULL, 0);
    json_object_object_add(e, "response", json_object_get(start));
    send_ev(&w, e);
    if (strstr(text, "ERROR_EVENT")) {
        e = ev("error", NULL, 0);
        json_object_object_add(e, "code", json_object_new_string("server_error"));
        json_object_object_add(e, "message", json_object_new_string("The fake failed on purpose"));
        json_object_object_add(e, "param", NULL);
        send_ev(&w, e);
        json_object_put(start);
        fp_stream_end(c);
        return;
    }
    e = ev("response.in_progress", NULL, 0);
    json_object_object_add(e, "response", start);
    send_ev(&w, e);
    json_object *out = get(r, "output");
    for (size_t i = 0; i < json_object_array_length(out); i++) {
        json_object *it = json_object_array_get_idx(out, i);
        const char *type = gets_(it, "type"), *id = gets_(it, "id");
        int oi = (int)i;
        json_object *added = copy(it);
        if (get(added, "status"))
            json_object_object_add(added, "status", json_object_new_string("in_progress"));
        if (strcmp(type, "message") == 0)
            json_object_object_add(added, "content", json_object_new_array());
        else if (strcmp(type, "reasoning") == 0)
            json_object_object_add(added, "summary", json_object_new_array());
        else if (strcmp(type, "function_call") == 0)
            json_object_object_add(added, "arguments", json_object_new_string(""));
        e = ev("response.output_item.added", NULL, 0);
        json_object_object_add(e, "output_index", json_object_new_int(oi));
        json_object_object_add(e, "item", added);
        send_ev(&w, e);
        if (strcmp(type, "message") == 0) {
            json_object *part = json_object_array_get_idx(get(it, "content"), 0);
            const char *t = gets_(part, "text");
            json_object *p0 = copy(part);
            json_object_object_add(p0, "text", json_object_new_string(""));
            e = ev("response.content_part.added", id, oi);
            json_object_object_add(e, "content_index", json_object_new_int(0));
            json_object_object_add(e, "part", p0);
            send_ev(&w, e);
            send_deltas(&w, "response.output_text.delta", id, oi, "content_index", 0, t, 1);
            if (strstr(text, "FAIL_STREAM")) {
                json_object *f = copy(r);
                json_object *err = json_object_new_object();
                json_object_object_add(f, "status", json_object_new_string("failed"));
                json_object_object_add(err, "code", json_object_new_string("server_error"));
                json_object_object_add(err, "message", json_object_new_string("The model failed"));
                json_object_object_add(f, "error", err);
                e = ev("response.failed", NULL, 0);
                json_object_object_add(e, "response", f);
                send_ev(&w, e);
                fp_stream_end(c);
                return;
            }
            e = ev("response.output_text.done", id, oi);
            json_object_object_add(e, "content_index", json_object_new_int(0));
            json_object_object_add(e, "text", json_object_new_string(t));
            json_object_object_add(e, "logprobs", json_object_new_array());
            send_ev(&w, e);
            e = ev("response.content_part.done", id, oi);
            json_object_object_add(e, "content_index", json_object_new_int(0));
            json_object_object_add(e, "part", json_object_get(part));
            send_ev(&w, e);
        } else if (strcmp(type, "reasoning") == 0) {
            json_object *part = json_object_array_get_idx(get(it, "summary"), 0);
            const char *t = gets_(part, "text");
            json_object *p0 = json_object_new_object();
            json_object_object_add(p0, "type", json_object_new_string("summary_text"));
            json_object_object_add(p0, "text", json_object_new_string(""));
            e = ev("response.reasoning_summary_part.added", id, oi);
            json_object_object_add(e, "summary_index", json_object_new_int(0));
            json_object_object_add(e, "part", p0);
            send_ev(&w, e);
            send_deltas(&w, "response.reasoning_summary_text.delta", id, oi, "summary_index", 0, t,
                        0);
            e = ev("response.reasoning_summary_text.done", id, oi);
            json_object_object_add(e, "summary_index", json_object_new_int(0));
            json_object_object_add(e, "text", json_object_new_string(t));
            send_ev(&w, e);
            e = ev("response.reasoning_summary_part.done", id, oi);
            json_object_object_add(e, "summary_index", json_object_new_int(0));
            json_object_object_add(e, "part", json_object_get(part));
            send_ev(&w, e);
        } else if (strcmp(type, "function_call") == 0) {
            const char *a = gets_(it, "arguments");
            send_deltas(&w, "response.function_call_arguments.delta", id, oi, NULL, 0, a, 0);
            e = ev("response.function_call_arguments.done", id, oi);
            json_object_object_add(e, "arguments", json_object_new_string(a));
            send_ev(&w, e);
        }
        e = ev("response.output_item.done", NULL, 0);
        json_object_object_add(e, "output_index", json_object_new_int(oi));
        json_object_object_add(e, "item", json_object_get(it));
        send_ev(&w, e);
    }
    const char *st = gets_(r, "status");
    e = ev(strcmp(st, "incomplete") == 0 ? "response.incomplete" : "response.completed", NULL, 0);
    json_object_object_add(e, "response", json_object_get(r));
    send_ev(&w, e);
    fp_stream_end(c);
}

void fp_openai_responses(fp_conn *c, const fp_request *req, void *ud)
{
    (void)ud;
    if (!fp_header_get(req, "Authorization") && !fp_header_get(req, "api-key")) {
        fp_reply_json(c, 401, "{\"error\":{\"message\":\"You didn't provide an API key.\","
                              "\"type\":\"invalid_request_error\",\"param\":null,"
                              "\"code\":\"invalid_api_key\"}}");
        return;
    }
    json_object *body = json_tokener_parse(req->body);
    if (!body || !json_object_is_type(body, json_type_object)) {
        json_object_put(body);
        fp_reply_json(c, 400, "{\"error\":{\"message\":\"We could not parse the JSON body.\","
                              "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
        return;
    }
    char text[4096];
    input_text(body, text, sizeof text);
    const char *status = strstr(text, "INCOMPLETE") ? "incomplete" : "completed";
    json_object *r = build_response(body, text, status);
    json_object *s = get(body, "stream");
    if (s && json_object_get_boolean(s)) {
        stream_response(c, r, text);
    } else {
        if (strstr(text, "FAIL_STREAM")) {
            json_object *err = json_object_new_object();
            json_object_object_add(r, "status", json_object_new_string("failed"));
            json_object_object_add(err, "code", json_object_new_string("server_error"));
            json_object_object_add(err, "message", json_object_new_string("The model failed"));
            json_object_object_add(r, "error", err);
        }
        fp_reply_json(c, 200, json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(r);
    json_object_put(body);
}
