/* The prepared call's semantic step, run by llmc_call_lookup after an
 * exact miss and by llmc_call_execute after a store:
 *
 *   eligible?  a chat call, semantic on for the client and not turned off
 *              by the request, no preset key or key function, at most
 *              semantic_max_turns user turns, no tool messages or tool
 *              calls anywhere, and a last message from the user whose
 *              content is text;
 *   scope      the v1 key of the request with that last text removed
 *              (tenant, namespace, model, parameters, system prompt,
 *              earlier turns, tools: everything else exact);
 *   embed      the built-in embedder, or an embeddings model through the
 *              client's own embeddings call (its per-item cache means a
 *              prompt is never embedded twice);
 *   search     semantic.c: threshold, guards, verifier;
 *   store      the answer's record joins the scope once it is stored. */
#include "client_internal.h"
#include "semantic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the public setters and getters of this feature ---- */

void llmc_client_set_verifier(llmc_client *c, llmc_verifier_fn fn, void *ud)
{
    if (c)
        llmc__sem_set_verifier(c->sem, fn, ud);
}

llmc_status llmc_client_semantic_stats(const llmc_client *c, llmc_semantic_stats *out,
                                       size_t size)
{
    if (!c || !out || size < sizeof *out)
        return LLMC_EINVAL;
    out->struct_size = (uint32_t)sizeof *out;
    llmc__sem_stats(c->sem, out);
    return c->sem ? LLMC_OK : LLMC_ENOTSUP;
}

int llmc_client_semantic_enabled(const llmc_client *c)
{
    return c && c->sem;
}

int llmc_response_semantic(const llmc_response *r, double *similarity)
{
    if (!r || !r->semantic)
        return 0;
    if (similarity)
        *similarity = r->similarity;
    return 1;
}

void llmc_request_set_semantic(llmc_request *r, int on)
{
    if (r)
        r->ctl.semantic = on < 0 ? -1 : on != 0;
}

llmc_status llmc_request_set_semantic_threshold(llmc_request *r, double t)
{
    if (!r || !(t > 0.0 && t <= 1.0))
        return LLMC_EINVAL;
    r->ctl.sem_threshold = t;
    return LLMC_OK;
}

/* ---- eligibility and the prompt ---- */

static int is_role(json_object *m, const char *role)
{
    json_object *r;
    return json_object_object_get_ex(m, "role", &r) && json_object_is_type(r, json_type_string) &&
           strcmp(json_object_get_string(r), role) == 0;
}

/* Content parts that are not text (images, tool results) make the turn
 * something an embedding of its words does not describe. */
static int text_of(json_object *content, llmc_buf *out)
{
    if (json_object_is_type(content, json_type_string))
        return llmc_buf_append(out, json_object_get_string(content),
                               (size_t)json_object_get_string_len(content)) == LLMC_OK;
    if (!json_object_is_type(content, json_type_array))
        return 0;
    size_t n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(content, i), *t, *tx;
        if (!json_object_object_get_ex(p, "type", &t) || !json_object_is_type(t, json_type_string) ||
            strcmp(json_object_get_string(t), "text") != 0 ||
            !json_object_object_get_ex(p, "text", &tx) || !json_object_is_type(tx, json_type_string))
            return 0;
        if ((i && llmc_buf_append(out, "\n", 1) != LLMC_OK) ||
            llmc_buf_append(out, json_object_get_string(tx),
                            (size_t)json_object_get_string_len(tx)) != LLMC_OK)
            return 0;
    }
    return 1;
}

/* 1 and the prompt in `prompt` when the request may be compared. */
static int eligible(json_object *req, int64_t max_turns, llmc_buf *prompt)
{
    json_object *msgs;
    if (!json_object_object_get_ex(req, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array))
        return 0;
    size_t n = json_object_array_length(msgs);
    if (n == 0)
        return 0;
    int64_t users = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *x;
        if (!json_object_is_type(m, json_type_object))
            return 0;
        if (is_role(m, "tool") || is_role(m, "function") ||
            json_object_object_get_ex(m, "tool_calls", &x) ||
            json_object_object_get_ex(m, "function_call", &x) ||
            json_object_object_get_ex(m, "tool_call_id", &x))
            return 0;
        if (is_role(m, "user"))
            users++;
    }
    if (users > max_turns)
        return 0;
    json_object *last = json_object_array_get_idx(msgs, n - 1), *content;
    if (!is_role(last, "user") || !json_object_object_get_ex(last, "content", &content))
        return 0;
    llmc_buf_clear(prompt);
    /* A prompt longer than a page or two is a document, not a question a
     * near-duplicate can stand in for. */
    if (!text_of(content, prompt) || prompt->len == 0 || prompt->len > LLMC__SEM_MAX_PROMPT)
        return 0;
    return 1;
}

/* The scope key: the request's key with the last message's content
 * replaced by null. The records live beside it, ":semantic" added, which
 * no computed key ends with. */
static llmc_status scope_key(llmc_call *k, const llmc__route *rt, llmc_buf *key, llmc_err *err)
{
    json_object *copy = NULL;
    if (json_object_deep_copy(k->obj, &copy, NULL) != 0 || !copy)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    json_object *msgs;
    json_object_object_get_ex(copy, "messages", &msgs);
    json_object *last = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
    json_object_object_add(last, "content", NULL);
    llmc_status st = llmc__compute_key(k->c, k->ct, copy, NULL, rt, &k->ctl, key, NULL, err);
    json_object_put(copy);
    return st;
}

/* The prompt's vector through an embeddings model: an embeddings call
 * of this client (same tenant), so the per-item cache answers a prompt
 * embedded before. */
static llmc_status embed_remote(llmc_call *k, const char *model, const char *text, size_t len,
                                float **vec, size_t *dim, llmc_err *err)
{
    json_object *req = json_object_new_object();
    json_object *in = json_object_new_array();
    if (!req || !in) {
        json_object_put(req);
        json_object_put(in);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    json_object_object_add(req, "model", json_object_new_string(model));
    json_object_array_add(in, json_object_new_string_len(text, (int)len));
    json_object_object_add(req, "input", in);
    const char *body = json_object_to_json_string_ext(req, LLMC__JSON_FLAGS);
    llmc_call_opts o = LLMC_CALL_OPTS_INIT;
    o.tenant = k->ctl.tenant;
    llmc_call *ek = NULL;
    llmc_response *r = NULL;
    llmc_status st = llmc_call_prepare(k->c, LLMC_CALL_EMBEDDING, body, LLMC_ZSTR, &o, &ek, err);
    if (st == LLMC_OK)
        st = llmc_call_execute(ek, NULL, NULL, &r, err);
    json_object *data, *item, *emb;
    json_object *ro = st == LLMC_OK ? llmc_response_json(r) : NULL;
    if (st == LLMC_OK &&
        (!ro || !json_object_object_get_ex(ro, "data", &data) ||
         !(item = json_object_array_get_idx(data, 0)) ||
         !json_object_object_get_ex(item, "embedding", &emb) ||
         !json_object_is_type(emb, json_type_array) || json_object_array_length(emb) < 2 ||
         json_object_array_length(emb) > 65536))
        st = llmc_err_set(err, LLMC_EPROTO, 0, "embeddings answer without an embedding");
    if (st == LLMC_OK) {
        size_t d = json_object_array_length(emb);
        float *v = malloc(d * sizeof *v);
        double ss = 0;
        for (size_t i = 0; v && i < d; i++) {
            v[i] = (float)json_object_get_double(json_object_array_get_idx(emb, i));
            if (!isfinite(v[i]))
                v[i] = 0;
            ss += (double)v[i] * v[i];
        }
        if (!v || !(ss > 0)) {
            free(v);
            st = v ? llmc_err_set(err, LLMC_EPROTO, 0, "embedding is the zero vector")
                   : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        } else {
            float inv = (float)(1.0 / sqrt(ss));
            for (size_t i = 0; i < d; i++)
                v[i] *= inv;
            *vec = v;
            *dim = d;
        }
    }
    llmc_response_free(r);
    llmc_call_free(ek);
    json_object_put(req);
    return st;
}

/* Everything a semantic step needs, or LLMC_MISS when the request is not
 * compared. */
static llmc_status prepare_sem(llmc_call *k, llmc__semcall **out, llmc_err *err)
{
    *out = NULL;
    llmc_client *c = k->c;
    const llmc__semcfg *cfg = llmc__sem_cfg(c->sem);
    if (k->ct->type != LLMC_CALL_CHAT || !k->caching || k->ctl.key || c->key_fn ||
        k->ctl.semantic == 0 || k->kl == 0)
        return LLMC_MISS;
    llmc_status st;
    if (!k->obj) {
        if ((st = llmc__parse_request_text(k->text, k->len, &k->obj, err)) != LLMC_OK)
            return st;
        k->obj_owned = 1;
    }
    llmc_buf prompt = LLMC_BUF_INIT;
    if (!eligible(k->obj, cfg->max_turns, &prompt)) {
        llmc_buf_free(&prompt);
        return LLMC_MISS;
    }
    llmc__semcall *sc = calloc(1, sizeof *sc);
    if (!sc) {
        llmc_buf_free(&prompt);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    sc->prompt = prompt.data;
    sc->prompt_len = prompt.len;
    double t = cfg->threshold;
    if (cfg->min_threshold > t)
        t = cfg->min_threshold;
    if (k->ctl.sem_threshold > t) /* a request may only raise it */
        t = k->ctl.sem_threshold;
    sc->threshold = t;
    llmc__reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.root.o = k->obj;
    llmc__route rt;
    llmc_buf key = LLMC_BUF_INIT;
    if ((st = llmc__resolve_route(c, k->ct, &rv, &rt, err)) != LLMC_OK ||
        (st = scope_key(k, &rt, &key, err)) != LLMC_OK ||
        (st = llmc_buf_puts(&key, ":semantic")) != LLMC_OK) {
        llmc_buf_free(&key);
        llmc__semcall_free(sc);
        return st;
    }
    sc->store_key = key.data;
    if (llmc__strcaseeq(cfg->model, "local")) {
        sc->dim = (size_t)cfg->dim;
        sc->vec = malloc(sc->dim * sizeof *sc->vec);
        if (!sc->vec) {
            llmc__semcall_free(sc);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        st = llmc_embed_local(sc->prompt, sc->prompt_len, sc->vec, sc->dim);
    } else {
        st = embed_remote(k, cfg->model, sc->prompt, sc->prompt_len, &sc->vec, &sc->dim, err);
    }
    if (st != LLMC_OK) {
        llmc__semcall_free(sc);
        return st == LLMC_ENOMEM ? st : LLMC_MISS;
    }
    *out = sc;
    return LLMC_OK;
}

/* ---- the two hooks of call.c ---- */

llmc_status llmc__semantic_lookup(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **out,
                                  llmc_err *err)
{
    llmc_client *c = k->c;
    if (!c->sem || k->ct->per_item || k->read_failed)
        return LLMC_MISS;
    llmc__semcall_free(k->sem);
    k->sem = NULL;
    llmc_err perr;
    llmc_err_clear(&perr);
    llmc_status st = prepare_sem(k, &k->sem, &perr);
    if (st != LLMC_OK) {
        /* Semantic lookups are an optimisation too: whatever failed, the
         * call goes on as a miss. */
        llmc__sem_count_ineligible(c->sem);
        if (st != LLMC_MISS)
            llmc__log("warn", "semantic lookup skipped: %s", perr.msg);
        return LLMC_MISS;
    }
    /* Matched keys must be in this request's own namespace: the prefix
     * of its exact key up to the last ':'. */
    size_t plen = k->kl;
    while (plen > 0 && k->kp[plen - 1] != ':')
        plen--;
    llmc__semhit hit;
    if (llmc__sem_search(c->sem, c->cache, k->sem, k->model, k->kp, plen, k->ctl.max_age_ms,
                         &hit) != LLMC_OK)
        return LLMC_MISS;
    llmc_response *r = llmc__response_hit(hit.lk.entry.body, hit.lk.entry.body_len, hit.key,
                                          strlen(hit.key), k->model, k->ops->hdr.name,
                                          hit.lk.age_ms);
    llmc_status rs = LLMC_OK;
    if (!r) {
        rs = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    } else {
        r->client = c;
        r->upstream_ms = hit.lk.entry.upstream_ms;
        r->call = k->ct->type;
        r->semantic = 1;
        r->similarity = hit.similarity;
        if (cb) {
            json_object *ro = llmc_response_json(r);
            rs = ro ? llmc__replay_to(ro, cb, ud, err)
                    : llmc_err_set(err, LLMC_ECORRUPT, 0, "cached response unreadable");
        }
    }
    free(hit.key);
    llmc_lookup_free(&hit.lk);
    if (rs != LLMC_OK || !out)
        llmc_response_free(r);
    else
        *out = r;
    return rs;
}

void llmc__semantic_stored(llmc_call *k, const llmc_response *r)
{
    if (k->sem && r && r->stored && k->c->sem)
        llmc__sem_add(k->c->sem, k->c->cache, k->sem, k->kp, k->ctl.ttl_ms);
}
