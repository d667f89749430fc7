/* Responses: the answer text plus how the cache was involved. A hit is
 * one allocation holding the struct and its strings, the stored body with
 * "cache":true spliced after its opening brace: the body is parsed only
 * when the caller asks for a json_object. */
#include "client_internal.h"
#include "calltype_responses.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jstr(json_object *o, const char *name)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

llmc_response *llmc__response_new(void)
{
    llmc_response *r = calloc(1, sizeof *r);
    if (r)
        r->age_ms = -1;
    return r;
}

static int is_hit_block(const llmc_response *r)
{
    return r->text == (const char *)(r + 1);
}

void llmc_response_free(llmc_response *r)
{
    if (!r)
        return;
    if (r->json)
        json_object_put(r->json);
    if (is_hit_block(r)) {
        /* text, key and model live in the same allocation. */
        free(r);
        return;
    }
    free(r->text);
    free(r->key);
    free(r->model);
    for (size_t i = 0; i < r->n_items; i++)
        free(r->item_keys ? r->item_keys[i] : NULL);
    free(r->item_keys);
    free(r->item_hits);
    free(r);
}

int llmc__body_is_object(const char *b, size_t n)
{
    size_t i = 0, j = n;
    while (i < n && isspace((unsigned char)b[i]))
        i++;
    while (j > i && isspace((unsigned char)b[j - 1]))
        j--;
    return j - i >= 2 && b[i] == '{' && b[j - 1] == '}';
}

/* A hit: one allocation for the struct and its strings. The body is
 * spliced, not parsed. */
llmc_response *llmc__response_hit(const char *body, size_t blen, const char *key,
                                  size_t klen, const char *model, const char *provider,
                                  int64_t age)
{
    static const char mark[] = "\"cache\":true";
    size_t ml = strlen(model);
    size_t i = 0;
    while (i < blen && isspace((unsigned char)body[i]))
        i++;
    if (i >= blen || body[i] != '{')
        return NULL;
    /* Is the object empty ("{}")? Then no comma after the mark. */
    size_t j = i + 1;
    while (j < blen && isspace((unsigned char)body[j]))
        j++;
    int empty = j < blen && body[j] == '}';
    size_t tl = blen + sizeof mark - 1 + (empty ? 0 : 1);
    llmc_response *r = malloc(sizeof *r + tl + 1 + klen + 1 + ml + 1);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    char *p = (char *)(r + 1);
    r->text = p;
    memcpy(p, body, i + 1);
    p += i + 1;
    memcpy(p, mark, sizeof mark - 1);
    p += sizeof mark - 1;
    if (!empty)
        *p++ = ',';
    memcpy(p, body + i + 1, blen - i - 1);
    p += blen - i - 1;
    *p++ = '\0';
    r->text_len = tl;
    r->key = p;
    memcpy(p, key, klen);
    p[klen] = '\0';
    p += klen + 1;
    r->model = p;
    memcpy(p, model, ml + 1);
    r->hit = 1;
    r->age_ms = age;
    r->provider = provider;
    return r;
}

/* A fresh response from an object (the text is its serialisation). */
llmc_status llmc__response_from_obj(json_object *o, const char *key, const char *model,
                                    const char *provider, llmc_response **out,
                                    llmc_err *err)
{
    llmc_response *r = llmc__response_new();
    if (!r)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, LLMC__JSON_FLAGS, &len);
    r->text = s ? llmc__strndup(s, len) : NULL;
    r->text_len = len;
    r->key = key ? llmc__strdup(key) : NULL;
    r->model = llmc__strdup(model);
    r->provider = provider;
    r->json = json_object_get(o);
    if (!r->text || (key && !r->key) || !r->model) {
        llmc_response_free(r);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    *out = r;
    return LLMC_OK;
}

const char *llmc_response_text(const llmc_response *r, size_t *len)
{
    if (!r) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = r->text_len;
    return r->text;
}

struct json_object *llmc_response_json(llmc_response *r)
{
    if (!r)
        return NULL;
    if (!r->json && r->text)
        llmc_json_parse(r->text, r->text_len, "cached response", &r->json, NULL);
    return r->json;
}

const char *llmc_response_content(llmc_response *r)
{
    json_object *o = llmc_response_json(r), *choices, *v;
    if (o && r->call == LLMC_CALL_RESPONSES)
        return llmc__responses_output_text(o);
    if (o && !json_object_object_get_ex(o, "choices", &choices) &&
        json_object_object_get_ex(o, "content", &v) && json_object_is_type(v, json_type_array)) {
        /* A Messages API answer: its first text block. */
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *b = json_object_array_get_idx(v, i);
            const char *t = jstr(b, "type");
            if (t && strcmp(t, "text") == 0)
                return jstr(b, "text");
        }
        return NULL;
    }
    if (!o || !json_object_object_get_ex(o, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0)
        return NULL;
    json_object *ch = json_object_array_get_idx(choices, 0);
    if (json_object_object_get_ex(ch, "message", &v))
        return jstr(v, "content");
    return jstr(ch, "text");
}

int llmc_response_cache_hit(const llmc_response *r)
{
    return r ? r->hit : 0;
}

int llmc_response_cache_stale(const llmc_response *r)
{
    return r ? r->stale : 0;
}

const char *llmc_response_cache_key(const llmc_response *r)
{
    return r ? r->key : NULL;
}

int64_t llmc_response_cache_age_ms(const llmc_response *r)
{
    return r ? r->age_ms : -1;
}

int llmc_response_cache_stored(const llmc_response *r)
{
    return r ? r->stored : 0;
}

int llmc_response_coalesced(const llmc_response *r)
{
    return r ? r->coalesced : 0;
}

size_t llmc_response_item_count(const llmc_response *r)
{
    return r ? r->n_items : 0;
}

const char *llmc_response_item_key(const llmc_response *r, size_t i)
{
    return r && i < r->n_items && r->item_keys ? r->item_keys[i] : NULL;
}

int llmc_response_item_hit(const llmc_response *r, size_t i)
{
    return r && i < r->n_items && r->item_hits ? r->item_hits[i] : 0;
}

const char *llmc_response_provider(const llmc_response *r)
{
    return r ? r->provider : NULL;
}

const char *llmc_response_model(const llmc_response *r)
{
    return r ? r->model : NULL;
}

int llmc_response_attempts(const llmc_response *r)
{
    return r ? r->attempts : 0;
}

const llmc_prices *llmc_client_prices(llmc_client *c, llmc_err *err)
{
    if (!c) {
        llmc_err_set(err, LLMC_EINVAL, 0, "llmc_client_prices: client is NULL");
        return NULL;
    }
    return llmc__prices_slot_get(&c->prices, err);
}

llmc_status llmc_response_saved(const llmc_response *r, llmc_saving *out, llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_response_saved: out is NULL");
    memset(out, 0, sizeof *out);
    if (!r || !r->client || (!r->hit && r->hit_tokens <= 0))
        return LLMC_MISS;
    llmc_err perr;
    llmc_err_clear(&perr);
    const llmc_prices *p = llmc__prices_slot_get(&r->client->prices, &perr);
    if (r->n_items == 0) {
        llmc_saving_compute(p, r->text, r->text_len, r->model, r->upstream_ms, out);
    } else {
        /* Embeddings: only the items served from the cache were saved. */
        snprintf(out->model, sizeof out->model, "%s", r->model ? r->model : "");
        out->has_usage = 1;
        out->input_tokens = out->tokens = (uint64_t)(r->hit_tokens > 0 ? r->hit_tokens : 0);
        out->upstream_ms = r->hit ? r->upstream_ms : 0;
        out->usd = llmc_prices_cost(p, out->model, out->input_tokens, 0, 0, &out->priced);
    }
    if (!p)
        return llmc_err_set(err, perr.status, 0,
                            "%s (tokens and time are counted, dollars are not)", perr.msg);
    return LLMC_OK;
}


llmc_status llmc_response_replay(llmc_response *r, llmc_chunk_cb cb, void *ud, llmc_err *err)
{
    if (!r || !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_response_replay: response or callback "
                            "is NULL");
    json_object *o = llmc_response_json(r);
    if (!o)
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "the response is not readable JSON");
    return llmc__replay_as(r->call ? r->call : LLMC_CALL_CHAT, o, cb, ud, err);
}
