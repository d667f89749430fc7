/* Responses <-> chat: how a Responses request reaches a provider that has
 * no Responses endpoint (Anthropic, Gemini, Ollama, any OpenAI-compatible
 * server, the mock), through that provider's chat adapter. What chat
 * cannot express is refused naming the field, never dropped: built-in
 * tools, file inputs, reasoning summaries, encrypted includes. */
#include "calltype_responses.h"

#include <stdio.h>
#include <string.h>

static llmc_status unmapped(llmc_err *err, const char *field, const char *why)
{
    return llmc_err_set(err, LLMC_EINVAL, 0,
                        "request field \"%s\" %s through a provider without a Responses "
                        "endpoint (native: openai, azure)", field, why);
}

static const char *str_of(json_object *o, const char *name)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* One content part of an input message as a chat content part. */
static llmc_status part_to_chat(json_object *part, const char *path, json_object *parts,
                                llmc_err *err)
{
    char f[160];
    const char *t = str_of(part, "type");
    if (!t) {
        snprintf(f, sizeof f, "%.120s.type", path);
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" is missing", f);
    }
    json_object *c = json_object_new_object();
    if (strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0 ||
        strcmp(t, "text") == 0) {
        const char *text = str_of(part, "text");
        if (!text) {
            json_object_put(c);
            snprintf(f, sizeof f, "%.120s.text", path);
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" must be a string", f);
        }
        json_object_object_add(c, "type", json_object_new_string("text"));
        json_object_object_add(c, "text", json_object_new_string(text));
    } else if (strcmp(t, "input_image") == 0 && str_of(part, "image_url")) {
        json_object *iu = json_object_new_object();
        json_object_object_add(iu, "url", json_object_new_string(str_of(part, "image_url")));
        if (str_of(part, "detail"))
            json_object_object_add(iu, "detail", json_object_new_string(str_of(part, "detail")));
        json_object_object_add(c, "type", json_object_new_string("image_url"));
        json_object_object_add(c, "image_url", iu);
    } else {
        json_object_put(c);
        snprintf(f, sizeof f, "%.120s.type", path);
        char why[96];
        snprintf(why, sizeof why, "(\"%.40s\"%s) cannot be sent", t,
                 strcmp(t, "input_image") == 0 ? " by file_id" : "");
        return unmapped(err, f, why);
    }
    json_object_array_add(parts, c);
    return LLMC_OK;
}

static llmc_status message_to_chat(json_object *item, const char *path, json_object *msgs,
                                   llmc_err *err)
{
    char f[160];
    const char *role = str_of(item, "role");
    if (!role) {
        snprintf(f, sizeof f, "%.120s.role", path);
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" is missing", f);
    }
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(
                                          strcmp(role, "developer") == 0 ? "system" : role));
    json_object *content;
    if (!json_object_object_get_ex(item, "content", &content) ||
        json_object_is_type(content, json_type_string)) {
        json_object_object_add(m, "content", json_object_get(content));
    } else if (json_object_is_type(content, json_type_array)) {
        json_object *parts = json_object_new_array();
        size_t n = json_object_array_length(content);
        for (size_t j = 0; j < n; j++) {
            char pp[160];
            snprintf(pp, sizeof pp, "%.120s.content[%zu]", path, j);
            llmc_status st = part_to_chat(json_object_array_get_idx(content, j), pp, parts, err);
            if (st != LLMC_OK) {
                json_object_put(parts);
                json_object_put(m);
                return st;
            }
        }
        json_object_object_add(m, "content", parts);
    } else {
        json_object_put(m);
        snprintf(f, sizeof f, "%.120s.content", path);
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" must be a string or an "
                            "array", f);
    }
    json_object_array_add(msgs, m);
    return LLMC_OK;
}

/* A function_call item joins the assistant message before it (several
 * calls of one turn are one chat message). */
static void add_tool_call(json_object *msgs, json_object *item)
{
    size_t n = json_object_array_length(msgs);
    json_object *last = n ? json_object_array_get_idx(msgs, n - 1) : NULL;
    json_object *tcs;
    if (!last || !str_of(last, "role") || strcmp(str_of(last, "role"), "assistant") != 0 ||
        !json_object_object_get_ex(last, "tool_calls", &tcs)) {
        last = json_object_new_object();
        json_object_object_add(last, "role", json_object_new_string("assistant"));
        json_object_object_add(last, "content", NULL);
        tcs = json_object_new_array();
        json_object_object_add(last, "tool_calls", tcs);
        json_object_array_add(msgs, last);
    }
    json_object *tc = json_object_new_object(), *fn = json_object_new_object();
    const char *id = str_of(item, "call_id");
    json_object_object_add(tc, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(tc, "type", json_object_new_string("function"));
    json_object_object_add(fn, "name", json_object_new_string(str_of(item, "name") ? str_of(item, "name") : ""));
    json_object_object_add(fn, "arguments", json_object_new_string(
                                                str_of(item, "arguments") ? str_of(item, "arguments") : ""));
    json_object_object_add(tc, "function", fn);
    json_object_array_add(tcs, tc);
}

static llmc_status input_to_chat(json_object *input, json_object *msgs, llmc_err *err)
{
    if (json_object_is_type(input, json_type_string)) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("user"));
        json_object_object_add(m, "content", json_object_get(input));
        json_object_array_add(msgs, m);
        return LLMC_OK;
    }
    size_t n = json_object_array_length(input);
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(input, i);
        char path[64];
        snprintf(path, sizeof path, "input[%zu]", i);
        if (!item || !json_object_is_type(item, json_type_object))
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" must be an object",
                                path);
        const char *t = str_of(item, "type");
        llmc_status st = LLMC_OK;
        if (!t || strcmp(t, "message") == 0) {
            st = message_to_chat(item, path, msgs, err);
        } else if (strcmp(t, "function_call") == 0) {
            add_tool_call(msgs, item);
        } else if (strcmp(t, "function_call_output") == 0) {
            json_object *m = json_object_new_object(), *o;
            const char *id = str_of(item, "call_id");
            json_object_object_add(m, "role", json_object_new_string("tool"));
            json_object_object_add(m, "tool_call_id", json_object_new_string(id ? id : ""));
            json_object_object_get_ex(item, "output", &o);
            json_object_object_add(m, "content", json_object_get(o));
            json_object_array_add(msgs, m);
        } else {
            char f[80], why[96];
            snprintf(f, sizeof f, "%.120s.type", path);
            snprintf(why, sizeof why, "(\"%.40s\") cannot be sent", t);
            st = unmapped(err, f, why);
        }
        if (st != LLMC_OK)
            return st;
    }
    return LLMC_OK;
}

static llmc_status tools_to_chat(json_object *tools, json_object **out, llmc_err *err)
{
    if (!json_object_is_type(tools, json_type_array))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"tools\" must be an array");
    json_object *a = json_object_new_array();
    size_t n = json_object_array_length(tools);
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *type = str_of(t, "type");
        if (!type || strcmp(type, "function") != 0) {
            json_object_put(a);
            char f[48], why[96];
            snprintf(f, sizeof f, "tools[%zu].type", i);
            snprintf(why, sizeof why, "(\"%.40s\": a built-in tool) cannot be used",
                     type ? type : "missing");
            return unmapped(err, f, why);
        }
        json_object *fn = json_object_new_object(), *ct = json_object_new_object();
        static const char *const members[] = {"name", "description", "parameters", "strict",
                                              NULL};
        for (int m = 0; members[m]; m++) {
            json_object *v;
            if (json_object_object_get_ex(t, members[m], &v))
                json_object_object_add(fn, members[m], json_object_get(v));
        }
        json_object_object_add(ct, "type", json_object_new_string("function"));
        json_object_object_add(ct, "function", fn);
        json_object_array_add(a, ct);
    }
    *out = a;
    return LLMC_OK;
}

/* Members the pipeline reads (controls, credentials, transport, mock):
 * carried over as they are; the chat path strips them as for chat. */
static int pipeline_member(const char *k)
{
    static const char *const names[] = {
        "cache", "caching", "api_key", "api_base", "base_url", "api_version", "timeout",
        "request_timeout", "max_retries", "num_retries", "extra_headers", "headers",
        "custom_llm_provider", "mock_response", "mock_tool_calls", "model", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    return 0;
}

llmc_status llmc__responses_to_chat(json_object *req, json_object **out, llmc_err *err)
{
    *out = NULL;
    json_object *chat = json_object_new_object(), *msgs = json_object_new_array();
    if (!chat || !msgs) {
        json_object_put(chat);
        json_object_put(msgs);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_status st = LLMC_OK;
    const char *instr = str_of(req, "instructions");
    if (instr) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("system"));
        json_object_object_add(m, "content", json_object_new_string(instr));
        json_object_array_add(msgs, m);
    }
    json_object_object_foreach(req, k, v)
    {
        if (st != LLMC_OK)
            break;
        if (pipeline_member(k)) {
            json_object_object_add(chat, k, json_object_get(v));
        } else if (strcmp(k, "input") == 0) {
            st = input_to_chat(v, msgs, err);
        } else if (strcmp(k, "instructions") == 0 || strcmp(k, "store") == 0 ||
                   strcmp(k, "metadata") == 0 || strcmp(k, "stream") == 0 ||
                   strcmp(k, "stream_options") == 0 || strcmp(k, "user") == 0) {
            /* instructions: the system message above; the rest concern
             * the provider's bookkeeping or the transport. */
        } else if (strcmp(k, "temperature") == 0 || strcmp(k, "top_p") == 0 ||
                   strcmp(k, "parallel_tool_calls") == 0) {
            json_object_object_add(chat, k, json_object_get(v));
        } else if (strcmp(k, "max_output_tokens") == 0) {
            if (v)
                json_object_object_add(chat, "max_tokens", json_object_get(v));
        } else if (strcmp(k, "tools") == 0) {
            json_object *t = NULL;
            if ((st = tools_to_chat(v, &t, err)) == LLMC_OK && json_object_array_length(t))
                json_object_object_add(chat, "tools", t);
            else
                json_object_put(t);
        } else if (strcmp(k, "tool_choice") == 0) {
            if (json_object_is_type(v, json_type_string)) {
                json_object_object_add(chat, k, json_object_get(v));
            } else if (str_of(v, "type") && strcmp(str_of(v, "type"), "function") == 0 &&
                       str_of(v, "name")) {
                json_object *tc = json_object_new_object(), *fn = json_object_new_object();
                json_object_object_add(fn, "name", json_object_new_string(str_of(v, "name")));
                json_object_object_add(tc, "type", json_object_new_string("function"));
                json_object_object_add(tc, "function", fn);
                json_object_object_add(chat, k, tc);
            } else {
                st = unmapped(err, "tool_choice", "(a built-in tool choice) cannot be used");
            }
        } else if (strcmp(k, "text") == 0) {
            json_object *fmt = NULL;
            json_object_object_foreach(v, tk, tv)
            {
                if (strcmp(tk, "format") == 0)
                    fmt = tv;
                else if (st == LLMC_OK) {
                    char f[64];
                    snprintf(f, sizeof f, "text.%.40s", tk);
                    st = unmapped(err, f, "cannot be sent");
                }
            }
            const char *ft = str_of(fmt, "type");
            if (st != LLMC_OK || !ft || strcmp(ft, "text") == 0) {
            } else if (strcmp(ft, "json_object") == 0) {
                json_object *rf = json_object_new_object();
                json_object_object_add(rf, "type", json_object_new_string("json_object"));
                json_object_object_add(chat, "response_format", rf);
            } else if (strcmp(ft, "json_schema") == 0) {
                json_object *rf = json_object_new_object(), *js = json_object_new_object();
                json_object_object_foreach(fmt, fk, fv)
                {
                    if (strcmp(fk, "type") != 0)
                        json_object_object_add(js, fk, json_object_get(fv));
                }
                json_object_object_add(rf, "type", json_object_new_string("json_schema"));
                json_object_object_add(rf, "json_schema", js);
                json_object_object_add(chat, "response_format", rf);
            } else {
                st = unmapped(err, "text.format.type", "cannot be sent");
            }
        } else if (strcmp(k, "reasoning") == 0) {
            json_object_object_foreach(v, rk, rv)
            {
                if (st != LLMC_OK)
                    break;
                if (strcmp(rk, "effort") == 0) {
                    if (rv)
                        json_object_object_add(chat, "reasoning_effort", json_object_get(rv));
                } else if (rv) {
                    char f[64];
                    snprintf(f, sizeof f, "reasoning.%.40s", rk);
                    st = unmapped(err, f, "cannot be sent");
                }
            }
        } else if (strcmp(k, "truncation") == 0) {
            const char *t = json_object_get_string(v);
            if (v && !(t && strcmp(t, "disabled") == 0))
                st = unmapped(err, "truncation", "(\"auto\") cannot be sent");
        } else if (strcmp(k, "include") == 0) {
            if (v && !(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0))
                st = unmapped(err, "include", "cannot be served");
        } else if (v) {
            char f[80];
            snprintf(f, sizeof f, "%.60s", k);
            st = unmapped(err, f, "has no chat equivalent and cannot be sent");
        }
    }
    if (st != LLMC_OK) {
        json_object_put(chat);
        json_object_put(msgs);
        return st;
    }
    json_object_object_add(chat, "messages", msgs);
    *out = chat;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */

static json_object *new_id(const char *prefix)
{
    char id[64];
    llmc_provider_new_id(prefix, id, sizeof id);
    return json_object_new_string(id);
}

static json_object *req_or(json_object *req, const char *name, json_object *dflt)
{
    json_object *v;
    if (json_object_object_get_ex(req, name, &v) && v) {
        json_object_put(dflt);
        return json_object_get(v);
    }
    return dflt;
}

llmc_status llmc__responses_from_chat(json_object *chat, json_object *req, json_object **out,
                                      llmc_err *err)
{
    *out = NULL;
    json_object *choices, *ch, *msg = NULL, *v;
    if (!json_object_object_get_ex(chat, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0)
        return llmc_err_set(err, LLMC_EPROTO, 0, "the provider's answer has no choices");
    ch = json_object_array_get_idx(choices, 0);
    json_object_object_get_ex(ch, "message", &msg);
    json_object *r = json_object_new_object(), *output = json_object_new_array();
    json_object_object_add(r, "id", new_id("resp_"));
    json_object_object_add(r, "object", json_object_new_string("response"));
    json_object_object_add(r, "created_at",
                           json_object_object_get_ex(chat, "created", &v) ? json_object_get(v)
                                                                           : json_object_new_int(0));
    const char *fr = str_of(ch, "finish_reason");
    int incomplete = fr && (strcmp(fr, "length") == 0 || strcmp(fr, "content_filter") == 0);
    json_object_object_add(r, "status", json_object_new_string(incomplete ? "incomplete"
                                                                          : "completed"));
    json_object_object_add(r, "error", NULL);
    if (incomplete) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "reason", json_object_new_string(
                                                strcmp(fr, "length") == 0 ? "max_output_tokens"
                                                                          : "content_filter"));
        json_object_object_add(r, "incomplete_details", d);
    } else {
        json_object_object_add(r, "incomplete_details", NULL);
    }
    json_object_object_add(r, "instructions", req_or(req, "instructions", NULL));
    json_object_object_add(r, "max_output_tokens", req_or(req, "max_output_tokens", NULL));
    json_object_object_add(r, "model", json_object_object_get_ex(chat, "model", &v)
                                           ? json_object_get(v)
                                           : req_or(req, "model", NULL));
    const char *rc = str_of(msg, "reasoning_content");
    if (rc && *rc) {
        json_object *it = json_object_new_object(), *sum = json_object_new_array(),
                    *p = json_object_new_object();
        json_object_object_add(it, "id", new_id("rs_"));
        json_object_object_add(it, "type", json_object_new_string("reasoning"));
        json_object_object_add(p, "type", json_object_new_string("summary_text"));
        json_object_object_add(p, "text", json_object_new_string(rc));
        json_object_array_add(sum, p);
        json_object_object_add(it, "summary", sum);
        json_object_array_add(output, it);
    }
    const char *content = str_of(msg, "content");
    if (content && *content) {
        json_object *it = json_object_new_object(), *parts = json_object_new_array(),
                    *p = json_object_new_object();
        json_object_object_add(it, "id", new_id("msg_"));
        json_object_object_add(it, "type", json_object_new_string("message"));
        json_object_object_add(it, "status", json_object_new_string("completed"));
        json_object_object_add(it, "role", json_object_new_string("assistant"));
        json_object_object_add(p, "type", json_object_new_string("output_text"));
        json_object_object_add(p, "text", json_object_new_string(content));
        json_object_object_add(p, "annotations", json_object_new_array());
        json_object_array_add(parts, p);
        json_object_object_add(it, "content", parts);
        json_object_array_add(output, it);
    }
    json_object *tcs;
    if (msg && json_object_object_get_ex(msg, "tool_calls", &tcs) &&
        json_object_is_type(tcs, json_type_array)) {
        size_t n = json_object_array_length(tcs);
        for (size_t i = 0; i < n; i++) {
            json_object *tc = json_object_array_get_idx(tcs, i), *fn = NULL;
            json_object_object_get_ex(tc, "function", &fn);
            json_object *it = json_object_new_object();
            json_object_object_add(it, "id", new_id("fc_"));
            json_object_object_add(it, "type", json_object_new_string("function_call"));
            json_object_object_add(it, "status", json_object_new_string("completed"));
            const char *cid = str_of(tc, "id"), *name = str_of(fn, "name"),
                       *args = str_of(fn, "arguments");
            json_object_object_add(it, "call_id", json_object_new_string(cid ? cid : ""));
            json_object_object_add(it, "name", json_object_new_string(name ? name : ""));
            json_object_object_add(it, "arguments", json_object_new_string(args ? args : ""));
            json_object_array_add(output, it);
        }
    }
    json_object_object_add(r, "output", output);
    json_object_object_add(r, "parallel_tool_calls",
                           req_or(req, "parallel_tool_calls", json_object_new_boolean(1)));
    json_object_object_add(r, "previous_response_id", NULL);
    json_object_object_add(r, "temperature", req_or(req, "temperature", NULL));
    json_object_object_add(r, "tool_choice", req_or(req, "tool_choice",
                                                    json_object_new_string("auto")));
    json_object_object_add(r, "tools", req_or(req, "tools", json_object_new_array()));
    json_object_object_add(r, "top_p", req_or(req, "top_p", NULL));
    json_object *u;
    if (json_object_object_get_ex(chat, "usage", &u) && json_object_is_type(u, json_type_object)) {
        json_object *ru = json_object_new_object(), *x;
        int64_t in = json_object_object_get_ex(u, "prompt_tokens", &x) ? json_object_get_int64(x) : 0;
        int64_t on = json_object_object_get_ex(u, "completion_tokens", &x) ? json_object_get_int64(x) : 0;
        int64_t rt = 0;
        json_object *d;
        if (json_object_object_get_ex(u, "completion_tokens_details", &d) &&
            json_object_object_get_ex(d, "reasoning_tokens", &x))
            rt = json_object_get_int64(x);
        json_object *idet = json_object_new_object(), *odet = json_object_new_object();
        json_object_object_add(ru, "input_tokens", json_object_new_int64(in));
        json_object_object_add(idet, "cached_tokens", json_object_new_int64(0));
        json_object_object_add(ru, "input_tokens_details", idet);
        json_object_object_add(ru, "output_tokens", json_object_new_int64(on));
        json_object_object_add(odet, "reasoning_tokens", json_object_new_int64(rt));
        json_object_object_add(ru, "output_tokens_details", odet);
        json_object_object_add(ru, "total_tokens", json_object_new_int64(in + on));
        json_object_object_add(r, "usage", ru);
    } else {
        json_object_object_add(r, "usage", NULL);
    }
    *out = r;
    return LLMC_OK;
}
