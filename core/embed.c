/* Embeddings in the pipeline: the key material is one input item, so a
 * call has one key (and one entry) per item. Prepare computes every
 * item's key, lookup fetches them all (one batch read), and execute
 * sends only the items that missed upstream, in one request, stores each
 * new vector under its own key and merges the answer in input order.
 *
 * A hit item's vector is kept as the stored text and copied into the
 * answer's text as it is: its numbers are never converted (1536 strtod
 * and as many prints per item cost far more than the read). The stored
 * text is what json-c printed of the provider's vector, which keeps each
 * number as the provider wrote it, so the copy is byte for byte what a
 * parse and print would serve. The answer's json_object is parsed from
 * that text only when a caller asks for it (llmc_response_json). */
#include "client_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct llmc__embed {
    json_object **items;       /* borrowed from the request object */
    size_t n;
    char **keys;               /* per item; NULL entries when not caching */
    json_object **vecs;        /* a fresh item's embedding */
    char **vtext;              /* a hit item's embedding, as stored */
    size_t *vlen;
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
        if (e->vtext)
            free(e->vtext[i]);
    }
    free(e->keys);
    free(e->vecs);
    free(e->vtext);
    free(e->vlen);
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
    e->vtext = calloc(e->n, sizeof *e->vtext);
    e->vlen = calloc(e->n, sizeof *e->vlen);
    e->tokens = calloc(e->n, sizeof *e->tokens);
    e->hits = calloc(e->n, 1);
    if (!e->keys || !e->vecs || !e->vtext || !e->vlen || !e->tokens || !e->hits)
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

/* Append json-c's text of `v` (the form every answer is printed in). */
static int put_json(llmc_buf *b, json_object *v)
{
    size_t l = 0;
    const char *t = json_object_to_json_string_length(v, LLMC__JSON_FLAGS, &l);
    return t && llmc_buf_append(b, t, l) == LLMC_OK;
}

/* The answer in input order (hits and fresh items alike), written as
 * text: json-c's plain print of the same object, byte for byte, with
 * each hit's vector copied from its stored text. */
static llmc_status merge(llmc_call *k, int64_t fresh_prompt, int64_t fresh_total,
                         int attempts, int stored, llmc_response **out, llmc_err *err)
{
    llmc__embed *e = k->emb;
    llmc_response *r = llmc__response_new();
    json_object *model = json_object_new_string(e->model ? e->model : k->model);
    llmc_buf t = LLMC_BUF_INIT;
    size_t need = 128;
    for (size_t i = 0; i < e->n; i++)
        need += 64 + (e->vtext[i] ? e->vlen[i] : 0);
    int oom = !r || !model || llmc_buf_reserve(&t, need) != LLMC_OK;
    int64_t prompt = 0;
    int all_hit = e->n_hits == e->n;
    if (!oom)
        oom = llmc_buf_puts(&t, all_hit ? "{\"cache\":true,\"object\":\"list\",\"data\":["
                                  : "{\"object\":\"list\",\"data\":[") != LLMC_OK;
    for (size_t i = 0; !oom && i < e->n; i++) {
        oom = llmc_buf_printf(&t, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":",
                              i ? "," : "", (int)i) != LLMC_OK;
        if (!oom)
            oom = e->vtext[i] ? llmc_buf_append(&t, e->vtext[i], e->vlen[i]) != LLMC_OK
                              : !put_json(&t, e->vecs[i]);
        if (!oom)
            oom = llmc_buf_puts(&t, "}") != LLMC_OK;
        if (e->hits[i])
            prompt = llmc__sat_add(prompt, e->tokens[i]);
    }
    if (!oom)
        oom = llmc_buf_puts(&t, "],\"model\":") != LLMC_OK || !put_json(&t, model) ||
              llmc_buf_printf(&t, ",\"usage\":{\"prompt_tokens\":%" PRId64
                                  ",\"total_tokens\":%" PRId64 "}}",
                              llmc__sat_add(prompt, fresh_prompt),
                              llmc__sat_add(prompt, fresh_total ? fresh_total : fresh_prompt)) !=
                  LLMC_OK;
    json_object_put(model);
    if (oom) {
        llmc_buf_free(&t);
        llmc_response_free(r);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    r->text_len = t.len;
    r->text = llmc_buf_steal(&t, NULL);
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
    oom = !r->text || !r->model || !r->item_keys || !r->item_hits;
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

static _Atomic uint64_t verbatim_items;

uint64_t llmc__embed_verbatim_items(void)
{
    return atomic_load(&verbatim_items);
}

/* Is json-c's print of value `v` its stored text, byte for byte? Yes for
 * what json-c printed itself (every entry this library writes): a flat
 * array of numbers without white space whose integers are in json-c's
 * form (json-c keeps a double's text as read), or a string of printable
 * ASCII without escapes (base64). Anything else, from a body written
 * elsewhere, is declined and printed by json-c. O(elements), not bytes,
 * for an array. */
static int prints_as_stored(const llmc__fjdoc *d, size_t v)
{
    const llmc__fjtok *t = d->t;
    if (t[v].type == LLMC__FJ_STR) {
        if (t[v].esc)
            return 0;
        for (size_t i = 0; i < t[v].len; i++) {
            unsigned char c = (unsigned char)d->text[t[v].start + i];
            if (c < 0x20 || c >= 0x7f)
                return 0;
        }
        return 1;
    }
    if (t[v].type != LLMC__FJ_ARR)
        return 0;
    size_t at = t[v].start + 1; /* where the next element must start */
    for (size_t c = v + 1; c < t[v].next; c++) {
        if (t[c].type != LLMC__FJ_NUM || t[c].start != at)
            return 0;
        if (t[c].esc) {
            /* An integer: json-c prints int64 (or uint64) in shortest
             * form, so "-0" and the out-of-range ones are not as read. */
            int is_int;
            int64_t iv;
            double dv;
            if (!llmc__fj_number(d, c, &is_int, &iv, &dv) ||
                (iv == 0 && d->text[t[c].start] == '-'))
                return 0;
        }
        at = t[c].start + t[c].len + 1; /* past the comma (or the ']') */
    }
    /* Right after the last element (or the '['): the closing ']'. */
    return d->text[t[v].n ? at - 1 : at] == ']';
}

/* What a hit item contributes, read from its stored body. */
typedef struct hit_item {
    const char *vec; /* the embedding's text */
    size_t vlen;
    int64_t tokens;
    const char *model; /* NULL when absent */
    size_t mlen;
} hit_item;

/* The stored body scanned, not parsed: numbers are checked for syntax,
 * never converted. 1 = read; 0 = declined (not plain RFC 8259 JSON, or a
 * field json-c would read differently), and json-c reads it instead. */
static int scan_hit(const char *body, size_t blen, llmc_buf *mbuf, hit_item *h)
{
    llmc__fjdoc *d = llmc__fj_thread_doc_slot(LLMC__FJ_DOC_AUX);
    if (!d || !llmc__fj_scan(d, body, blen))
        return 0;
    long v = llmc__fj_member(d, 0, "embedding");
    long pt = llmc__fj_member(d, 0, "prompt_tokens");
    long m = llmc__fj_member(d, 0, "model");
    if (v < 0 || !prints_as_stored(d, (size_t)v))
        return 0;
    h->tokens = 0;
    if (pt >= 0) {
        int is_int = 0;
        double dv;
        if (!llmc__fj_number(d, (size_t)pt, &is_int, &h->tokens, &dv) || !is_int)
            return 0;
    }
    h->model = NULL;
    if (m >= 0 && d->t[m].type == LLMC__FJ_STR) {
        llmc_buf_clear(mbuf);
        if (!llmc__fj_string(d, (size_t)m, 1, mbuf))
            return 0;
        h->model = mbuf->data ? mbuf->data : "";
        h->mlen = mbuf->len;
    }
    size_t start = d->t[v].start - (d->t[v].type == LLMC__FJ_STR ? 1 : 0);
    h->vec = body + start;
    h->vlen = llmc__fj_end(d, (size_t)v) - start;
    return 1;
}

/* Take item i's cached vector from a verified lookup; 0 when the entry
 * is not an embedding item this call can use, -1 out of memory. */
static int take_hit(llmc__embed *e, size_t i, const llmc_lookup *lk)
{
    if (lk->entry.call != LLMC_CALL_EMBEDDING)
        return 0;
    json_object *o = NULL, *v;
    llmc_buf mbuf = LLMC_BUF_INIT;
    hit_item h;
    int ok = scan_hit(lk->entry.body, lk->entry.body_len, &mbuf, &h);
    if (!ok && llmc_json_parse(lk->entry.body, lk->entry.body_len, "cached embedding", &o,
                               NULL) == LLMC_OK &&
        json_object_object_get_ex(o, "embedding", &v)) {
        h.vec = json_object_to_json_string_length(v, LLMC__JSON_FLAGS, &h.vlen);
        h.tokens = 0;
        if (json_object_object_get_ex(o, "prompt_tokens", &v))
            h.tokens = json_object_get_int64(v);
        h.model = jstr(o, "model");
        h.mlen = h.model ? strlen(h.model) : 0;
        ok = h.vec != NULL;
    }
    if (ok && (!(e->vtext[i] = llmc__strndup(h.vec, h.vlen)) ||
               (!e->model && h.model && !(e->model = llmc__strndup(h.model, h.mlen))))) {
        free(e->vtext[i]);
        e->vtext[i] = NULL;
        ok = -1;
    }
    if (ok == 1) {
        if (!o)
            atomic_fetch_add(&verbatim_items, 1);
        e->vlen[i] = h.vlen;
        e->tokens[i] = h.tokens;
        e->hits[i] = 1;
        e->hit_upstream_ms += lk->entry.upstream_ms;
        if (lk->age_ms > e->age_ms)
            e->age_ms = lk->age_ms;
        e->n_hits++;
    }
    llmc_buf_free(&mbuf);
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
        int missed = 0, oom = 0;
        for (size_t j = 0; j < m; j++) {
            int got = sts[j] == LLMC_OK && !oom ? take_hit(e, idx[j], &lks[j]) : 0;
            if (got < 0)
                oom = 1;
            if (got <= 0)
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
        if (oom)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
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
