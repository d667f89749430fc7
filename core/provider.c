/* Provider registry wrappers and the helpers adapters share: HTTP request
 * descriptions, the default error mapping, ids and chunk builders. */
#include "internal.h"
#include "jsontext.h"
#include "net.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

/* ------------------------------------------------------------------ */
/* Registry. */

llmc_status llmc_register_provider(const llmc_provider_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_PROVIDER, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_provider_ops *llmc_find_provider(const char *name)
{
    if (!name || !*name)
        return NULL;
    if (llmc_init() != LLMC_OK)
        return NULL;
    return (const llmc_provider_ops *)llmc_find(LLMC_KIND_PROVIDER, name);
}

typedef struct {
    const char *model;
    const llmc_provider_ops *found;
} infer_ctx;

static int infer_cb(void *ud, llmc_kind kind, const llmc_component *t, const char *origin)
{
    LLMC_UNUSED(kind);
    LLMC_UNUSED(origin);
    infer_ctx *ic = ud;
    const llmc_provider_ops *ops = (const llmc_provider_ops *)t;
    if (ops->match_model && ops->match_model(ic->model)) {
        ic->found = ops;
        return 1;
    }
    return 0;
}

const llmc_provider_ops *llmc_infer_provider(const char *model)
{
    if (!model || !*model || llmc_init() != LLMC_OK)
        return NULL;
    infer_ctx ic = {model, NULL};
    llmc_registry_foreach(LLMC_KIND_PROVIDER, infer_cb, &ic);
    return ic.found;
}

/* ------------------------------------------------------------------ */
/* HTTP request descriptions. */

void llmc_http_request_init(llmc_http_request *r)
{
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    r->method = "POST";
}

void llmc_http_request_free(llmc_http_request *r)
{
    if (!r)
        return;
    llmc_buf_free(&r->url);
    llmc_buf_free(&r->body);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    llmc_http_request_init(r);
}

static llmc_status add_header(llmc_http_request *r, const char *name, const char *value,
                              int secret)
{
    if (!name || !*name || !value)
        return LLMC_EINVAL;
    /* Header injection: a CR or LF in a name or value would let a request
     * field smuggle extra headers. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return LLMC_EINVAL;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (llmc__strcaseeq(r->headers[i].name, name)) {
            char *v = llmc__strdup(value);
            if (!v)
                return LLMC_ENOMEM;
            free(r->headers[i].value);
            r->headers[i].value = v;
            r->headers[i].secret = secret;
            return LLMC_OK;
        }
    }
    if (r->n_headers == r->cap_headers) {
        size_t nc = r->cap_headers ? r->cap_headers * 2 : 8;
        llmc_http_header *nh = realloc(r->headers, nc * sizeof *nh);
        if (!nh)
            return LLMC_ENOMEM;
        r->headers = nh;
        r->cap_headers = nc;
    }
    char *n = llmc__strdup(name), *v = llmc__strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return LLMC_ENOMEM;
    }
    r->headers[r->n_headers].name = n;
    r->headers[r->n_headers].value = v;
    r->headers[r->n_headers].secret = secret;
    r->n_headers++;
    return LLMC_OK;
}

llmc_status llmc_http_request_add_header(llmc_http_request *r, const char *name,
                                         const char *value)
{
    return add_header(r, name, value, 0);
}

llmc_status llmc_http_request_add_secret(llmc_http_request *r, const char *name,
                                         const char *value)
{
    return add_header(r, name, value, 1);
}

const char *llmc_http_request_header(const llmc_http_request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (llmc__strcaseeq(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

llmc_status llmc_http_request_set_json(llmc_http_request *r, struct json_object *v)
{
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!s)
        return LLMC_ENOMEM;
    llmc_status st = llmc_buf_set(&r->body, s, len);
    if (st != LLMC_OK)
        return st;
    return llmc_http_request_add_header(r, "Content-Type", "application/json");
}

llmc_status llmc_http_url_append_escaped(llmc_buf *url, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            if (llmc_buf_append(url, p, 1) != LLMC_OK)
                return LLMC_ENOMEM;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (llmc_buf_append(url, e, 3) != LLMC_OK)
                return LLMC_ENOMEM;
        }
    }
    return LLMC_OK;
}

int llmc_http_response_header(const llmc_http_response *r, const char *name, char *out,
                              size_t outsz)
{
    if (!r || !r->headers || !name)
        return 0;
    size_t nl = strlen(name);
    const char *p = r->headers, *end = r->headers + r->headers_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (out && outsz) {
                size_t n = (size_t)(ve - v);
                if (n >= outsz)
                    n = outsz - 1;
                memcpy(out, v, n);
                out[n] = '\0';
            }
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors. */

int llmc_provider_is_context_error(const char *msg)
{
    if (!msg)
        return 0;
    static const char *const needles[] = {
        "context_length_exceeded",
        "context length",
        "maximum context",
        "context window",
        "prompt is too long",
        "input is too long",
        "too many tokens",
        "exceeds the maximum number of tokens",
        "input token count",
        "reduce the length",
        "exceed context",
        "exceeds context",
        NULL,
    };
    for (int i = 0; needles[i]; i++)
        if (strcasestr(msg, needles[i]))
            return 1;
    return 0;
}

/* Take the provider's own message out of an error body. */
static void error_message(const llmc_http_response *resp, char *out, size_t outsz)
{
    out[0] = '\0';
    if (!resp->body || !resp->body_len)
        return;
    json_object *o = NULL;
    llmc__json_parse(resp->body, resp->body_len, LLMC__LONE_REPLACE, LLMC_EPROTO, "error body",
                     &o, NULL);
    const char *m = NULL, *type = NULL;
    json_object *e = NULL, *v = NULL;
    json_object *root = o;
    /* Gemini and some proxies wrap errors in a one-element array. */
    if (root && json_object_is_type(root, json_type_array) &&
        json_object_array_length(root) > 0)
        root = json_object_array_get_idx(root, 0);
    if (root && json_object_is_type(root, json_type_object)) {
        if (json_object_object_get_ex(root, "error", &e)) {
            if (json_object_is_type(e, json_type_string))
                m = json_object_get_string(e);
            else if (json_object_is_type(e, json_type_object)) {
                if (json_object_object_get_ex(e, "message", &v) &&
                    json_object_is_type(v, json_type_string))
                    m = json_object_get_string(v);
                if (json_object_object_get_ex(e, "code", &v) &&
                    json_object_is_type(v, json_type_string))
                    type = json_object_get_string(v);
                else if (json_object_object_get_ex(e, "type", &v) &&
                         json_object_is_type(v, json_type_string))
                    type = json_object_get_string(v);
            }
        }
        if (!m && json_object_object_get_ex(root, "message", &v) &&
            json_object_is_type(v, json_type_string))
            m = json_object_get_string(v);
        if (!m && json_object_object_get_ex(root, "detail", &v) &&
            json_object_is_type(v, json_type_string))
            m = json_object_get_string(v);
    }
    if (m && type && !strstr(m, type))
        snprintf(out, outsz, "%s (%s)", m, type);
    else if (m)
        snprintf(out, outsz, "%s", m);
    else {
        /* Not JSON we know: a short excerpt, control characters flattened. */
        size_t n = resp->body_len < 200 ? resp->body_len : 200;
        if (n >= outsz)
            n = outsz - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)resp->body[i];
            out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        }
        out[n] = '\0';
    }
    if (o)
        json_object_put(o);
}

llmc_status llmc_provider_map_error_default(const llmc_provider_call *call,
                                            const llmc_http_response *resp, llmc_err *err)
{
    char msg[360];
    error_message(resp, msg, sizeof msg);
    long code = resp->status;
    llmc_status st;
    if (code == 401 || code == 403)
        st = LLMC_EAUTH;
    else if (code == 429)
        st = LLMC_ERATELIMIT;
    else if (code >= 400 && code < 500)
        st = llmc_provider_is_context_error(msg) ? LLMC_ECONTEXT : LLMC_EBADREQUEST;
    else if (code >= 500 && code < 600)
        st = LLMC_EUPSTREAM;
    else
        st = LLMC_EPROVIDER;
    const char *pname = call && call->provider ? call->provider : "provider";
    if (st == LLMC_ERATELIMIT && resp->retry_after_ms >= 0)
        return llmc_err_set(err, st, code, "%s: HTTP %ld: %s (retry after %lld ms)", pname,
                            code, msg[0] ? msg : "rate limited",
                            (long long)resp->retry_after_ms);
    return llmc_err_set(err, st, code, "%s: HTTP %ld: %s", pname, code,
                        msg[0] ? msg : llmc_strerror(st));
}

/* ------------------------------------------------------------------ */
/* JSON helpers. */

llmc_status llmc_json_parse(const char *data, size_t len, const char *what,
                            struct json_object **out, llmc_err *err)
{
    /* Provider output: a lone surrogate becomes U+FFFD rather than failing
     * the call (what json-c did, but now the same on every path). */
    return llmc__json_parse(data, len, LLMC__LONE_REPLACE, LLMC_EPROTO, what ? what : "JSON",
                            out, err);
}

static _Atomic uint64_t id_state;

void llmc_provider_new_id(const char *prefix, char *out, size_t outsz)
{
    /* Ids only need to be unique-looking, not secret: a splitmix64 stream
     * seeded once from the clock and pid is enough. */
    uint64_t s = atomic_load(&id_state);
    if (s == 0) {
        uint64_t seed = llmc_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)llmc_now_ms();
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&id_state, &zero, seed | 1);
    }
    char hex[25];
    for (int k = 0; k < 2; k++) {
        uint64_t z = atomic_fetch_add(&id_state, 0x9E3779B97F4A7C15ull) + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        snprintf(hex + k * 12, 13, "%012llx", (unsigned long long)(z & 0xffffffffffffull));
    }
    snprintf(out, outsz, "%s%s", prefix ? prefix : "", hex);
}

struct json_object *llmc_chunk_new(const char *id, int64_t created, const char *model)
{
    json_object *c = json_object_new_object();
    if (!c)
        return NULL;
    json_object_object_add(c, "id", json_object_new_string(id ? id : ""));
    json_object_object_add(c, "object", json_object_new_string("chat.completion.chunk"));
    json_object_object_add(c, "created", json_object_new_int64(created));
    json_object_object_add(c, "model", json_object_new_string(model ? model : ""));
    json_object_object_add(c, "choices", json_object_new_array());
    return c;
}

struct json_object *llmc_chunk_add_choice(struct json_object *chunk, int index)
{
    json_object *choices = NULL;
    if (!json_object_object_get_ex(chunk, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array)) {
        choices = json_object_new_array();
        json_object_object_add(chunk, "choices", choices);
    }
    json_object *ch = json_object_new_object();
    json_object *delta = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(index));
    json_object_object_add(ch, "delta", delta);
    json_object_object_add(ch, "finish_reason", NULL);
    json_object_array_add(choices, ch);
    return delta;
}

void llmc_chunk_set_finish(struct json_object *chunk, int i, const char *reason)
{
    json_object *choices = NULL;
    if (!json_object_object_get_ex(chunk, "choices", &choices))
        return;
    json_object *ch = json_object_array_get_idx(choices, (size_t)i);
    if (!ch)
        return;
    json_object_object_add(ch, "finish_reason", reason ? json_object_new_string(reason) : NULL);
}
