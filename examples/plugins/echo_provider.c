/* Example plugin: the "echo" provider.
 *
 * A provider that answers without any network: the assistant's reply is
 * the text of the last user message (chat) or the prompt (text
 * completions), optionally upper-cased. Useful for wiring tests and as
 * the smallest complete provider adapter to copy from. It uses the LOCAL
 * route of the provider interface (respond_local); an adapter for an HTTP
 * API fills build_request / parse_response / parse_stream_event instead
 * (see providers/INTERFACE.md). Streaming works too: the core replays
 * the answer as chunks.
 *
 *   model "echo/anything"        -> "hello" for a last user message "hello"
 *   client option echo.upper=1   -> "HELLO"
 *
 * Built only against the installed public headers:
 *   cc -shared -fPIC -o llmc-echo.so echo_provider.c \
 *      $(pkg-config --cflags --libs llmcache)
 */
#include <llmcache/llmcache.h>

#include <json-c/json.h>
#include <ctype.h>
#include <string.h>

/* Text of a message's content: a string, or the concatenated "text"
 * parts of an array of content parts. */
static void content_text(json_object *content, llmc_buf *out)
{
    if (json_object_is_type(content, json_type_string)) {
        llmc_buf_puts(out, json_object_get_string(content));
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i), *t;
        if (json_object_object_get_ex(part, "text", &t) &&
            json_object_is_type(t, json_type_string))
            llmc_buf_puts(out, json_object_get_string(t));
    }
}

static llmc_status input_text(const llmc_provider_call *call, json_object *request,
                              llmc_buf *out, llmc_err *err)
{
    json_object *v;
    if (call->call == LLMC_CALL_TEXT) {
        if (!json_object_object_get_ex(request, "prompt", &v) ||
            !json_object_is_type(v, json_type_string))
            return llmc_err_set(err, LLMC_EINVAL, 0, "echo: \"prompt\" must be a string");
        return llmc_buf_puts(out, json_object_get_string(v));
    }
    if (!json_object_object_get_ex(request, "messages", &v) ||
        !json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "echo: \"messages\" must be a non-empty array");
    for (size_t i = json_object_array_length(v); i-- > 0;) {
        json_object *m = json_object_array_get_idx(v, i), *role, *content;
        if (json_object_object_get_ex(m, "role", &role) &&
            strcmp(json_object_get_string(role), "user") == 0 &&
            json_object_object_get_ex(m, "content", &content)) {
            content_text(content, out);
            return LLMC_OK;
        }
    }
    return llmc_err_set(err, LLMC_EINVAL, 0, "echo: no user message to echo");
}

static llmc_status echo_respond(const llmc_provider_call *call, struct json_object *request,
                                struct json_object **out, llmc_err *err)
{
    *out = NULL;
    llmc_buf text = LLMC_BUF_INIT;
    llmc_status st = input_text(call, request, &text, err);
    if (st != LLMC_OK) {
        llmc_buf_free(&text);
        return st;
    }
    int upper = 0;
    st = llmc_options_get_bool(call->options, "echo.upper", 0, &upper, err);
    if (st != LLMC_OK) {
        llmc_buf_free(&text);
        return st;
    }
    for (size_t i = 0; upper && i < text.len; i++)
        text.data[i] = (char)toupper((unsigned char)text.data[i]);
    const char *reply = text.data ? text.data : "";

    char id[64];
    int chat = call->call != LLMC_CALL_TEXT;
    llmc_provider_new_id(chat ? "chatcmpl-echo-" : "cmpl-echo-", id, sizeof id);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "id", json_object_new_string(id));
    json_object_object_add(r, "object",
                           json_object_new_string(chat ? "chat.completion" : "text_completion"));
    json_object_object_add(r, "created", json_object_new_int64(llmc_now_ms() / 1000));
    json_object_object_add(r, "model", json_object_new_string(call->model));
    json_object *choice = json_object_new_object();
    json_object_object_add(choice, "index", json_object_new_int(0));
    if (chat) {
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        json_object_object_add(msg, "content", json_object_new_string(reply));
        json_object_object_add(choice, "message", msg);
    } else {
        json_object_object_add(choice, "text", json_object_new_string(reply));
    }
    json_object_object_add(choice, "finish_reason", json_object_new_string("stop"));
    json_object *choices = json_object_new_array();
    json_object_array_add(choices, choice);
    json_object_object_add(r, "choices", choices);
    /* One "token" per 4 bytes, as a rough stand-in. */
    int64_t tokens = (int64_t)(text.len + 3) / 4;
    json_object *usage = json_object_new_object();
    json_object_object_add(usage, "prompt_tokens", json_object_new_int64(tokens));
    json_object_object_add(usage, "completion_tokens", json_object_new_int64(tokens));
    json_object_object_add(usage, "total_tokens", json_object_new_int64(2 * tokens));
    json_object_object_add(r, "usage", usage);
    llmc_buf_free(&text);
    *out = r;
    return LLMC_OK;
}

/* Bare model names "echo-..." are routed here too. */
static int echo_match(const char *model) { return strncmp(model, "echo-", 5) == 0; }

static const llmc_provider_ops echo_provider = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "echo",
                               "answers with the last user message (example plugin)"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_STREAM |
             LLMC_PROVIDER_LOCAL,
    .default_api_base = "local:",
    .match_model = echo_match,
    .respond_local = echo_respond,
};

static const llmc_provider_ops *const providers[] = {&echo_provider, NULL};

LLMC_PLUGIN("echo", "1.0.0", NULL, providers, NULL, NULL)
