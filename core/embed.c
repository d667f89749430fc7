/* Embeddings in the pipeline: the key material is one input item, so a
 * call has one key (and one entry) per item. Prepare computes every
 * item's key, lookup fetches them all (one batch read), and execute
 * sends only the items that missed upstream, in one request, stores each
 * new vector under its own key and merges the answer in input order. */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

struct llmc__embed {
    json_object **items;       /* borrowed from the request object */
    size_t n;
    char **keys;               /* per item; NULL entries when not caching */
    json_object **vecs;        /* each item's embedding, once known */
    int64_t *tokens;
    unsigned char *hits;
    size_t n_hits;
    int64_t age_ms;            /* the oldest hit's age, -1 = none */
    int64_t hit_upstream_ms;   /* the hit items' shares of their calls' time */
    char *model;
    char *id;                  /* identifies the whole call (all item keys) */
};

void llmc__embed_free(llmc__embed *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        if (e->keys)
            free(e->keys[i]);
        if (e->vecs && e->vecs[i])
            json_object_put(e->vecs[i]);
    }
    free(e->keys);
    free(e->vecs);
    free(e->tokens);
    free(e->hits);
    free(e->items);
    free(e->model);
    free(e->id);
    free(e);
}

static const char *jstr(json_object *o, const char *name)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* The input items: a string is one item, an array of numbers is one
 * (token) item, any other array is one item per element. */
static llmc_status embedding_items(json_object *req, json_object ***items, size_t *n,
                                   llmc_err *err)
{
    json_object *in = NULL;
    json_object_object_get_ex(req, "input", &in);
    if (json_object_is_type(in, json_type_string) ||
        (json_object_is_type(in, json_type_array) && json_object_array_length(in) > 0 &&
         (json_object_is_type(json_object_array_get_idx(in, 0), json_type_int)))) {
        *items = malloc(sizeof **items);
        if (!*items)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        (*items)[0] = in;
        *n = 1;
        return LLMC_OK;
    }
    if (!json_object_is_type(in, json_type_array) || json_object_array_length(in) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"input\" must be a string or a non-empty array");
    size_t len = json_object_array_length(in);
    *items = malloc(len * sizeof **items);
    if (!*items)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_object *it = json_object_array_get_idx(in, i);
        if (!json_object_is_type(it, json_type_string) &&
            !json_object_is_type(it, json_type_array)) {
            free(*items);
            *items = NULL;
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"input[%zu]\" must be a string or a token array",
                                i);
        }
        (*items)[i] = it;
    }
    *n = len;
    return LLMC_OK;
}

llmc_status llmc__embed_prepare(llmc_call *k, const llmc__route *rt, llmc_err *err)
{
    llmc__embed *e = calloc(1, sizeof *e);
    if (!e)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    k->emb = e;
    e->age_ms = -1;
    llmc_status st = embedding_items(k->obj, &e->items, &e->n, err);
    if (st != LLMC_OK)
        return st;
    e->keys = calloc(e->n, sizeof *e->keys);
    e->vecs = calloc(e->n, sizeof *e->vecs);
    e->tokens = calloc(e->n, sizeof *e->tokens);
    e->hits = calloc(e->n, 1);
    if (!e->keys || !e->vecs || !e->tokens || !e->hits)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (!k->caching)
        return LLMC_OK;
    llmc_buf key = LLMC_BUF_INIT, all = LLMC_BUF_INIT;
    for (size_t i = 0; i < e->n && st == LLMC_OK; i++) {
        st = llmc__compute_key(k->c, k->ct, k->obj, e->items[i], rt, &k->ctl, &key, NULL, err);
        if (st == LLMC_OK && !(e->keys[i] = llmc__strndup(key.data, key.len)))
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        if (st == LLMC_OK) {
            llmc_buf_append(&all, key.data, key.len);
            llmc_buf_puts(&all, "\n");
        }
    }
    if (st == LLMC_OK) {
        uint8_t d[32];
        char hex[65];
        llmc_sha256(all.data, all.len, d);
        llmc_hex(d, 32, hex);
        llmc_buf_set(&k->key, e->keys[0], strlen(e->keys[0]));
        k->kp = k->key.data;
        k->kl = k->key.len;
        llmc_buf_clear(&all);
        llmc_buf_printf(&all, "embeddings:%s", hex);
        if (!(e->id = llmc__strndup(all.data, all.len)))
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_buf_free(&key);
    llmc_buf_free(&all);
    return st;
}

json_object *llmc__embed_item(const llmc_call *k, size_t i)
{
    return k->emb && i < k->emb->n ? k->emb->items[i] : NULL;
}

size_t llmc__embed_count(const llmc_call *k)
{
    return k->emb ? k->emb->n : 0;
}

const char *llmc__embed_key(const llmc_call *k, size_t i)
{
    if (!k->emb)
        return NULL;
    if (i == (size_t)-1)
        return k->emb->id;
    return i < k->emb->n && k->emb->keys ? k->emb->keys[i] : NULL;
}

/* The answer in input order (hits and fresh items alike). */
static llmc_status merge(llmc_call *k, int64_t fresh_prompt, int64_t fresh_total,
                         int attempts, int stored, llmc_response **out, llmc_err *err)
{
    llmc__embed *e = k->emb;
    llmc_response *r = llmc__response_new();
    json_object *merged = json_object_new_object();
    json_object *data = json_object_new_array();
    if (!r || !merged || !data) {
        llmc_response_free(r);
        json_object_put(merged);
        json_object_put(data);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    int64_t prompt = 0;
    for (size_t i = 0; i < e->n; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "object", json_object_new_string("embedding"));
        json_object_object_add(d, "index", json_object_new_int((int)i));
        json_object_object_add(d, "embedding", json_object_get(e->vecs[i]));
        json_object_array_add(data, d);
        if (e->hits[i])
            prompt = llmc__sat_add(prompt, e->tokens[i]);
    }
    int all_hit = e->n_hits == e->n;
    if (all_hit)
        json_object_object_add(merged, "cache", json_object_new_boolean(1));
    json_object_object_add(merged, "object", json_object_new_string("list"));
    json_object_object_add(merged, "data", data);
    json_object_object_add(merged, "model",
                           json_object_new_string(e->model ? e->model : k->model));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens",
                           json_object_new_int64(llmc__sat_add(prompt, fresh_prompt)));
    json_object_object_add(
        u, "total_tokens",
        json_object_new_int64(llmc__sat_add(prompt, fresh_total ? fresh_total : fresh_prompt)));
    json_object_object_add(merged, "usage", u);

    size_t tl = 0;
    const char *ts = json_object_to_json_string_length(merged, LLMC__JSON_FLAGS, &tl);
    r->text = ts ? llmc__strndup(ts, tl) : NULL;
    r->text_len = tl;
    r->json = merged;
    r->hit = all_hit;
    r->client = k->c;
    r->hit_tokens = prompt;
    r->upstream_ms = e->hit_upstream_ms;
    r->age_ms = e->n_hits ? e->age_ms : -1;
    r->attempts = attempts;
    r->stored = stored;
    r->n_items = e->n;
    r->item_keys = calloc(e->n, sizeof *r->item_keys);
    r->item_hits = calloc(e->n, 1);
    r->model = llmc__strdup(k->model);
    r->provider = k->ops->hdr.name;
    int oom = !r->text || !r->model || !r->item_keys || !r->item_hits;
    for (size_t i = 0; !oom && i < e->n; i++) {
        r->item_hits[i] = e->hits[i];
        if (e->keys[i] && !(r->item_keys[i] = llmc__strdup(e->keys[i])))
            oom = 1;
    }
    if (!oom && k->caching && e->keys[0] && !(r->key = llmc__strdup(e->keys[0])))
        oom = 1;
    if (oom) {
        llmc_response_free(r);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    *out = r;
    return LLMC_OK;
}

/* Take item i's cached vector from a verified lookup; 0 when the entry
 * is not an embedding item this call can use. */
static int take_hit(llmc__embed *e, size_t i, const llmc_lookup *lk)
{
    if (lk->entry.call != LLMC_CALL_EMBEDDING)
        return 0;
    json_object *o = NULL, *v;
    int ok = 0;
    if (llmc_json_parse(lk->entry.body, lk->entry.body_len, "cached embedding", &o, NULL) ==
            LLMC_OK &&
        json_object_object_get_ex(o, "embedding", &v)) {
        e->vecs[i] = json_object_get(v);
        e->tokens[i] = 0;
        if (json_object_object_get_ex(o, "prompt_tokens", &v))
            e->tokens[i] = json_object_get_int64(v);
        if (!e->model && jstr(o, "model"))
            e->model = llmc__strdup(jstr(o, "model"));
        e->hits[i] = 1;
        e->hit_upstream_ms += lk->entry.upstream_ms;
        if (lk->age_ms > e->age_ms)
            e->age_ms = lk->age_ms;
        e->n_hits++;
        ok = 1;
    }
    if (o)
        json_object_put(o);
    return ok;
}

llmc_status llmc__embed_lookup(llmc_call *k, llmc_response **out, llmc_err *err)
{
    llmc__embed *e = k->emb;
    /* Every item not known yet, in one batch read: one backend round
     * trip however many inputs (llmc_cache_get_entries). */
    size_t m = 0;
    for (size_t i = 0; i < e->n; i++)
        if (!e->hits[i] && e->keys[i])
            m++;
    if (m) {
        const char **keys = malloc(m * sizeof *keys);
        size_t *klens = malloc(m * sizeof *klens), *idx = malloc(m * sizeof *idx);
        llmc_status *sts = malloc(m * sizeof *sts);
        llmc_lookup *lks = calloc(m, sizeof *lks);
        if (!keys || !klens || !idx || !sts || !lks) {
            free(keys);
            free(klens);
            free(idx);
            free(sts);
            free(lks);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        m = 0;
        for (size_t i = 0; i < e->n; i++) {
            if (e->hits[i] || !e->keys[i])
                continue;
            keys[m] = e->keys[i];
            klens[m] = strlen(e->keys[i]);
            idx[m++] = i;
        }
        llmc_cache *c = k->c->cache;
        llmc_cache_get_entries(c, m, keys, klens, k->ctl.max_age_ms, LLMC_ENTRY_SOFT, lks, sts);
        int missed = 0;
        for (size_t j = 0; j < m; j++) {
            if (sts[j] == LLMC_OK && take_hit(e, idx[j], &lks[j]))
                continue;
            missed = 1;
        }
        /* The batch's read failed (or the circuit is open after this
         * thread's failed read): the stores that follow are skipped, one
         * cache timeout per request. */
        if (missed && llmc__soft_stalled(c))
            k->read_failed = 1;
        for (size_t j = 0; j < m; j++)
            llmc_lookup_free(&lks[j]);
        free(keys);
        free(klens);
        free(idx);
        free(sts);
        free(lks);
    }
    if (e->n_hits < e->n)
        return LLMC_MISS;
    return merge(k, 0, 0, 0, 0, out, err);
}

static int64_t usage_int(json_object *resp, const char *name)
{
    json_object *u, *v;
    if (json_object_object_get_ex(resp, "usage", &u) && json_object_object_get_ex(u, name, &v))
        return json_object_get_int64(v);
    return 0;
}

static size_t item_weight(json_object *it)
{
    if (json_object_is_type(it, json_type_string))
        return (size_t)json_object_get_string_len(it) + 1;
    if (json_object_is_type(it, json_type_array))
        return json_object_array_length(it) * 4 + 1;
    return 1;
}

llmc_status llmc__embed_execute(llmc_call *k, const llmc__route *rt, llmc_response **out,
                                llmc_err *err)
{
    llmc__embed *e = k->emb;
    size_t *missing = calloc(e->n, sizeof *missing);
    if (!missing)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    size_t n_missing = 0;
    for (size_t i = 0; i < e->n; i++)
        if (!e->hits[i])
            missing[n_missing++] = i;
    json_object *sent = NULL, *fresh = NULL;
    int64_t fresh_prompt = 0, fresh_total = 0;
    int attempts = 0, stored = 0;
    int64_t item_upstream_ms = 0;
    llmc_status st = LLMC_OK;
    if (n_missing) {
        sent = json_object_new_array();
        for (size_t m = 0; m < n_missing; m++)
            json_object_array_add(sent, json_object_get(e->items[missing[m]]));
        uint64_t t0 = llmc_mono_ns();
        st = llmc__call_upstream(k->c, LLMC_CALL_EMBEDDING, k->obj, sent, rt, NULL, NULL,
                                 &fresh, &attempts, err);
        /* One call fetched every missing item: each stores its share. */
        item_upstream_ms = llmc__upstream_ms_since(t0) / (int64_t)n_missing;
        if (item_upstream_ms < 1)
            item_upstream_ms = 1;
        if (st != LLMC_OK)
            goto done;
        json_object *data = NULL;
        json_object_object_get_ex(fresh, "data", &data);
        size_t nd = json_object_is_type(data, json_type_array) ? json_object_array_length(data)
                                                               : 0;
        if (nd != n_missing) {
            st = llmc_err_set(err, LLMC_EPROTO, 0,
                              "%s: embedding response has %zu items for %zu inputs",
                              rt->exec->hdr.name, nd, n_missing);
            goto done;
        }
        for (size_t m = 0; m < nd; m++) {
            json_object *d = json_object_array_get_idx(data, m), *ix, *v;
            int64_t idx = json_object_object_get_ex(d, "index", &ix) ? json_object_get_int64(ix)
                                                                   : (int64_t)m;
            if (idx < 0 || (size_t)idx >= n_missing || e->vecs[missing[idx]] ||
                !json_object_object_get_ex(d, "embedding", &v)) {
                st = llmc_err_set(err, LLMC_EPROTO, 0,
                                  "%s: embedding response item %zu has a bad index or no "
                                  "embedding",
                                  rt->exec->hdr.name, m);
                goto done;
            }
            e->vecs[missing[idx]] = json_object_get(v);
        }
        fresh_prompt = usage_int(fresh, "prompt_tokens");
        fresh_total = usage_int(fresh, "total_tokens");
        if (!e->model && jstr(fresh, "model"))
            e->model = llmc__strdup(jstr(fresh, "model"));
        /* Attribute the batch's tokens to its items by length, so the sum
         * over any later mix of hits stays meaningful (exact for one). */
        size_t wsum = 0;
        for (size_t m = 0; m < n_missing; m++)
            wsum += item_weight(e->items[missing[m]]);
        int64_t left = fresh_prompt;
        for (size_t m = 0; m < n_missing; m++) {
            int64_t share = m + 1 == n_missing
                                ? left
                                : (int64_t)((double)fresh_prompt *
                                            (double)item_weight(e->items[missing[m]]) /
                                            (double)(wsum ? wsum : 1));
            e->tokens[missing[m]] = share;
            left -= share;
        }
        if (k->caching && !k->ctl.no_store) {
            stored = 1;
            for (size_t m = 0; m < n_missing; m++) {
                size_t i = missing[m];
                json_object *body = json_object_new_object();
                json_object_object_add(body, "object", json_object_new_string("embedding"));
                json_object_object_add(body, "embedding", json_object_get(e->vecs[i]));
                json_object_object_add(body, "model",
                                       json_object_new_string(e->model ? e->model : k->model));
                json_object_object_add(body, "prompt_tokens",
                                       json_object_new_int64(e->tokens[i]));
                size_t bl = 0;
                const char *bs = json_object_to_json_string_length(body, LLMC__JSON_FLAGS, &bl);
                json_object *ev = e->vecs[i];
                int nonempty =
                    (json_object_is_type(ev, json_type_array) && json_object_array_length(ev)) ||
                    (json_object_is_type(ev, json_type_string) && json_object_get_string_len(ev));
                int item_stored = 0;
                if (nonempty && k->read_failed)
                    llmc__store_skipped(k->c->cache);
                else if (nonempty)
                    llmc__put_entry(k->c->cache, e->keys[i], strlen(e->keys[i]),
                                    LLMC_CALL_EMBEDDING, bs, bl, k->ctl.ttl_ms,
                                    item_upstream_ms, LLMC_ENTRY_SOFT, &item_stored);
                if (!item_stored)
                    stored = 0;
                json_object_put(body);
            }
        }
    }
    st = merge(k, fresh_prompt, fresh_total, attempts, stored, out, err);
done:
    free(missing);
    if (sent)
        json_object_put(sent);
    if (fresh)
        json_object_put(fresh);
    return st;
}
