/* Admin endpoints: /cache/ping, /cache/delete, /cache/flush (inside the
 * tenant's namespace, resolved by the library's rule) and the model list. */

#include "proxy_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_object *parse_body_object(preq *r, int allow_empty)
{
    if (r->body.len == 0 && allow_empty)
        return json_object_new_object();
    /* The library's reading of a client's JSON object: standard JSON
     * only, as for completions. */
    llmc_request *req = NULL;
    llmc_err err;
    llmc_err_clear(&err);
    if (llmc_request_from_json(r->body.data ? r->body.data : "", r->body.len, &req, &err) !=
        LLMC_OK) {
        px_queue_error(r, 400, NULL, "the request body must be a JSON object: %s", err.msg);
        return NULL;
    }
    json_object *o = json_object_get(llmc_request_json(req));
    llmc_request_free(req);
    return o;
}

enum MHD_Result px_handle_delete(preq *r)
{
    json_object *o = parse_body_object(r, 0), *keys;
    if (!o)
        return MHD_YES;
    if (!json_object_object_get_ex(o, "keys", &keys) ||
        !json_object_is_type(keys, json_type_array)) {
        json_object_put(o);
        return px_queue_error(r, 400, NULL, "field \"keys\" must be an array of key strings");
    }
    size_t n = json_object_array_length(keys);
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(keys, i);
        if (!json_object_is_type(k, json_type_string) || json_object_get_string_len(k) == 0) {
            json_object_put(o);
            return px_queue_error(r, 400, NULL, "field \"keys[%zu]\" must be a non-empty string",
                               i);
        }
        if (r->tenant && r->tenant->ns) {
            size_t nl = strlen(r->tenant->ns);
            const char *ks = json_object_get_string(k);
            if (strncmp(ks, r->tenant->ns, nl) != 0 || ks[nl] != ':') {
                json_object_put(o);
                return px_queue_error(r, 403, "permission_denied",
                                   "field \"keys[%zu]\": the key is outside your namespace", i);
            }
        }
    }
    uint64_t deleted = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(keys, i);
        llmc_status st = llmc_cache_del(r->srv->cache, json_object_get_string(k),
                                        (size_t)json_object_get_string_len(k));
        if (st == LLMC_OK) {
            deleted++;
        } else if (st != LLMC_MISS) {
            json_object_put(o);
            return px_queue_error(r, 503, "cache_unavailable", "cache delete failed: %s",
                               llmc_cache_errmsg(r->srv->cache));
        }
    }
    json_object_put(o);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "deleted", json_object_new_int64((int64_t)deleted));
    return px_queue_json(r, 200, res);
}

enum MHD_Result px_handle_flush(preq *r)
{
    json_object *o = parse_body_object(r, 1), *v;
    if (!o)
        return MHD_YES;
    int answered = 0, all = 0;
    const char *asked = px_header_single(r, "x-llmcache-namespace", &answered);
    const char *what = "header x-llmcache-namespace";
    if (answered) {
        json_object_put(o);
        return MHD_YES;
    }
    if (json_object_object_get_ex(o, "namespace", &v)) {
        if (!json_object_is_type(v, json_type_string) ||
            strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
            json_object_put(o);
            return px_queue_error(r, 400, NULL, "field \"namespace\" must be a string");
        }
        asked = json_object_get_string(v);
        what = "field \"namespace\"";
    }
    if (json_object_object_get_ex(o, "all", &v))
        all = json_object_get_boolean(v);
    const char *tenant = r->tenant ? r->tenant->ns : NULL;
    llmc_buf ns = LLMC_BUF_INIT;
    llmc_err e;
    llmc_err_clear(&e);
    if ((asked && llmc_namespace_check(asked, what, &e) != LLMC_OK) ||
        llmc_namespace_resolve(tenant, asked, &ns, &e) != LLMC_OK) {
        json_object_put(o);
        llmc_buf_free(&ns);
        return px_queue_error(r, 400, NULL, "%s", e.msg);
    }
    json_object_put(o); /* `asked` pointed into it: not used below */
    asked = NULL;
    if (!ns.len && llmc_cache_namespace(r->srv->cache))
        llmc_buf_puts(&ns, llmc_cache_namespace(r->srv->cache));
    llmc_status st;
    uint64_t deleted = 0;
    if (tenant) {
        /* A tenant flushes its own space or a sub-namespace inside it:
         * the library deletes exactly the keys under "tenant:sub:". */
        size_t tl = strlen(tenant);
        st = llmc_cache_flush_in(r->srv->cache, tenant, ns.len > tl ? ns.data + tl + 1 : NULL,
                                 &deleted);
    } else if (ns.len) {
        st = llmc_cache_flush(r->srv->cache, ns.data, &deleted);
    } else if (all) {
        st = llmc_cache_flush_all(r->srv->cache);
    } else {
        return px_queue_error(r, 400, NULL,
                           "say which namespace to flush: {\"namespace\": \"...\"} or the "
                           "x-llmcache-namespace header ({\"all\": true} flushes everything)");
    }
    if (st != LLMC_OK) {
        llmc_buf_free(&ns);
        return px_queue_error(r, st == LLMC_ENOTSUP ? 501 : 503, NULL, "cache flush failed: %s",
                           llmc_cache_errmsg(r->srv->cache));
    }
    json_object *res = json_object_new_object();
    json_object_object_add(res, "flushed", json_object_new_boolean(1));
    json_object_object_add(res, "namespace", ns.len ? json_object_new_string(ns.data) : NULL);
    json_object_object_add(res, "deleted", json_object_new_int64((int64_t)deleted));
    llmc_buf_free(&ns);
    return px_queue_json(r, 200, res);
}

enum MHD_Result px_handle_ping(preq *r)
{
    uint64_t t0 = px_now_ns();
    llmc_status st = llmc_cache_ping(r->srv->cache);
    double ms = (double)(px_now_ns() - t0) / 1e6;
    /* Damaged storage answers: up for the up/down state, "corrupt" here. */
    proxy_cache_state_note(st == LLMC_ECORRUPT ? LLMC_OK : st);
    json_object *res = json_object_new_object();
    json_object_object_add(res, "status", json_object_new_string("ok"));
    json_object_object_add(res, "cache",
                           json_object_new_string(st == LLMC_OK         ? "up"
                                                  : st == LLMC_ECORRUPT ? "corrupt"
                                                                        : "down"));
    if (st != LLMC_OK) /* the proxy still serves (misses): not an HTTP error */
        json_object_object_add(res, "error",
                               json_object_new_string(llmc_cache_errmsg(r->srv->cache)));
    json_object_object_add(res, "backend",
                           json_object_new_string(llmc_cache_backend_name(r->srv->cache)));
    json_object_object_add(res, "latency_ms", json_object_new_double(ms));
    return px_queue_json(r, 200, res);
}

void px_build_models(proxy_server *s)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    for (size_t i = 0; i < s->cfg->n_models; i++) {
        const proxy_model *m = &s->cfg->models[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_string(m->name));
        json_object_object_add(e, "object", json_object_new_string("model"));
        json_object_object_add(e, "created", json_object_new_int(0));
        json_object_object_add(e, "owned_by", json_object_new_string(m->provider));
        json_object_array_add(arr, e);
    }
    json_object_object_add(o, "object", json_object_new_string("list"));
    json_object_object_add(o, "data", arr);
    size_t len;
    const char *t = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    s->models_json = strdup(t);
    s->models_len = len;
    json_object_put(o);
}

/* The dashboard shows every tenant's figures: admin keys only. */
enum MHD_Result px_handle_ui(preq *r)
{
    if (r->tenant && r->tenant->ns)
        return px_queue_error(r, 403, "permission_denied",
                           "the dashboard needs an admin key (a key without a namespace)");
    if (r->ep == EP_UI_DATA) {
        const char *since = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "since");
        long long t = 0;
        if (since) {
            char *end;
            errno = 0;
            t = strtoll(since, &end, 10);
            if (errno || *end || end == since || t < 0)
                return px_queue_error(r, 400, NULL,
                                   "query parameter since must be a time in unix milliseconds");
        }
        llmc_buf b = LLMC_BUF_INIT;
        proxy_ui_data(r->srv->ui, t, &b);
        enum MHD_Result ret = px_queue_buf(r, 200, "application/json", &b, NULL, 0);
        llmc_buf_free(&b);
        return ret;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        proxy_ui_page_len, (void *)proxy_ui_page, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src "
                            "'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
                            "frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    px_count_status(r->srv, 200);
    px_access_log(r, 200, NULL);
    return ret;
}

/* A browser opening /ui without credentials is asked for them (the key
 * as the password); 1 when that answer was queued. */
int px_ui_challenge(preq *r)
{
    if (r->srv->cfg->n_keys == 0 || r->ep != EP_UI || px_header(r, "Authorization") ||
        px_header(r, "x-api-key") || px_header(r, "api-key"))
        return 0;
    static const char body[] = "The llmcache dashboard needs the proxy's admin key (as the "
                               "password).\n";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return 0;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"llmcache\", charset=\"UTF-8\"");
    MHD_queue_response(r->conn, 401, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    atomic_fetch_add(&r->srv->m.auth_failures, 1);
    px_count_status(r->srv, 401);
    px_access_log(r, 401, NULL);
    return 1;
}
