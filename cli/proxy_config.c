/* The proxy's JSON configuration file. Every field is checked, and a bad
 * one stops the start with a message naming it ("models[1].provider"),
 * because a proxy that starts with half its config silently ignored is
 * worse than one that does not start. */
#include "proxy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void proxy_config_init(proxy_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = strdup("127.0.0.1");
    c->port = 4000;
    c->max_body = 4u * 1024u * 1024u;
    c->threads = 0; /* = number of CPUs */
    c->workers = 64;
    c->max_connections = 4096;
    c->idle_timeout_s = 120;
    c->shutdown_timeout_ms = 30000;
    c->coalesce = 1;
    c->coalesce_timeout_ms = 60000;
    c->allow_unlisted = 1;
    c->quiet = 1; /* no access log unless asked for */
}

void proxy_config_free(proxy_config *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->cache_url);
    llmc_options_free(c->cache_opts);
    llmc_options_free(c->client_opts);
    for (size_t i = 0; i < c->n_models; i++) {
        proxy_model *m = &c->models[i];
        free(m->name);
        free(m->target);
        free(m->provider);
        free(m->api_base);
        if (m->api_key)
            memset(m->api_key, 0, strlen(m->api_key));
        free(m->api_key);
        free(m->api_version);
    }
    free(c->models);
    for (size_t i = 0; i < c->n_keys; i++) {
        memset(c->keys[i].key, 0, strlen(c->keys[i].key));
        free(c->keys[i].key);
        free(c->keys[i].ns);
    }
    free(c->keys);
    memset(c, 0, sizeof *c);
}

int proxy_config_add_key(proxy_config *c, const char *key, const char *ns)
{
    proxy_key *k = realloc(c->keys, (c->n_keys + 1) * sizeof *k);
    if (!k)
        return -1;
    c->keys = k;
    k[c->n_keys].key = strdup(key);
    k[c->n_keys].ns = xstrdup(ns);
    if (!k[c->n_keys].key)
        return -1;
    c->n_keys++;
    return 0;
}

int proxy_config_set_listen(proxy_config *c, const char *spec, char *err, size_t errsz)
{
    const char *colon;
    char host[256];
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':') {
            snprintf(err, errsz, "listen address \"%s\": expected [IPv6]:port", spec);
            return -1;
        }
        size_t n = (size_t)(end - spec - 1);
        if (n == 0 || n >= sizeof host)
            goto bad;
        memcpy(host, spec + 1, n);
        host[n] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon)
            goto bad;
        size_t n = (size_t)(colon - spec);
        if (n == 0 || n >= sizeof host)
            goto bad;
        memcpy(host, spec, n);
        host[n] = '\0';
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
        snprintf(err, errsz, "listen address \"%s\": the port must be a number 0..65535",
                 spec);
        return -1;
    }
    char *h = strdup(host);
    if (!h)
        goto bad;
    free(c->host);
    c->host = h;
    c->port = (int)port;
    return 0;
bad:
    snprintf(err, errsz, "listen address \"%s\": expected host:port (e.g. 127.0.0.1:4000)",
             spec);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Field helpers: each reports "<file>: field \"<path>\": <problem>". */

typedef struct cfgctx {
    const char *file;
    char *err;
    size_t errsz;
} cfgctx;

static int fail(cfgctx *x, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(cfgctx *x, const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errsz, "config %s: field \"%s\": %s", x->file, field, msg);
    return -1;
}

static int get_string(cfgctx *x, json_object *o, const char *field, const char *name,
                      const char **out)
{
    json_object *v;
    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
        return fail(x, field, "must be a non-empty string");
    *out = json_object_get_string(v);
    return 0;
}

static int get_int(cfgctx *x, json_object *o, const char *field, const char *name, int64_t min,
                   int64_t max, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return fail(x, field, "must be an integer");
    errno = 0;
    int64_t i = json_object_get_int64(v);
    if (errno || i < min || i > max)
        return fail(x, field, "must be in %lld..%lld", (long long)min, (long long)max);
    *out = i;
    return 0;
}

static int get_bool(cfgctx *x, json_object *o, const char *field, const char *name, int *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(x, field, "must be true or false");
    *out = json_object_get_boolean(v);
    return 0;
}

/* "prices": a price file path, or prices inline ({"model": {"input":
 * ..., "output": ...}}), merged over the default table by the client
 * (its "prices" option). Inline prices are checked here so the message
 * names the config field. */
static int load_prices(cfgctx *x, proxy_config *c, json_object *v)
{
    const char *text;
    if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0) {
        text = json_object_get_string(v);
    } else if (json_object_is_type(v, json_type_object)) {
        text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        llmc_prices *p = llmc_prices_new();
        llmc_err e;
        llmc_err_clear(&e);
        llmc_status st = p ? llmc_prices_merge_json(p, text, strlen(text), &e) : LLMC_ENOMEM;
        llmc_prices_free(p);
        if (st != LLMC_OK)
            return fail(x, "prices", "%s", e.msg[0] ? e.msg : llmc_strerror(st));
    } else {
        return fail(x, "prices",
                    "must be a price file path or an object of model -> {\"input\": ..., "
                    "\"cached_input\": ..., \"output\": ...} (dollars per million tokens)");
    }
    if (!c->client_opts && !(c->client_opts = llmc_options_new()))
        return fail(x, "prices", "out of memory");
    if (llmc_options_set(c->client_opts, "prices", text) != LLMC_OK)
        return fail(x, "prices", "cannot be set");
    return 0;
}

/* Reject members not in `known` (a typo must not be silently ignored). */
static int check_members(cfgctx *x, json_object *o, const char *prefix,
                         const char *const *known)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        int ok = 0;
        for (int i = 0; known[i]; i++)
            if (strcmp(k, known[i]) == 0)
                ok = 1;
        if (!ok) {
            char field[256], list[512] = "";
            snprintf(field, sizeof field, "%s%s", prefix, k);
            for (int i = 0; known[i]; i++) {
                strncat(list, known[i], sizeof list - strlen(list) - 1);
                if (known[i + 1])
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            return fail(x, field, "unknown field (known here: %s)", list);
        }
    }
    return 0;
}

/* An object of scalar values into an option list (values as strings). */
static int options_from(cfgctx *x, json_object *o, const char *field, llmc_options **out)
{
    if (!json_object_is_type(o, json_type_object))
        return fail(x, field, "must be an object of option values");
    llmc_options *opts = llmc_options_new();
    if (!opts)
        return fail(x, field, "out of memory");
    json_object_object_foreach(o, k, v)
    {
        char f[256];
        snprintf(f, sizeof f, "%s.%s", field, k);
        const char *s;
        char num[64];
        switch (json_object_get_type(v)) {
        case json_type_string:
            s = json_object_get_string(v);
            break;
        case json_type_int:
            snprintf(num, sizeof num, "%lld", (long long)json_object_get_int64(v));
            s = num;
            break;
        case json_type_boolean:
            s = json_object_get_boolean(v) ? "true" : "false";
            break;
        case json_type_double:
            snprintf(num, sizeof num, "%.17g", json_object_get_double(v));
            s = num;
            break;
        default:
            llmc_options_free(opts);
            return fail(x, f, "must be a string, number or boolean");
        }
        if (llmc_options_set(opts, k, s) != LLMC_OK) {
            llmc_options_free(opts);
            return fail(x, f, "invalid option");
        }
    }
    llmc_options_free(*out);
    *out = opts;
    return 0;
}

static int secret_from(cfgctx *x, json_object *o, const char *prefix, const char *lit,
                       const char *env, char **out)
{
    const char *s, *e;
    char f1[128], f2[128];
    snprintf(f1, sizeof f1, "%s.%s", prefix, lit);
    snprintf(f2, sizeof f2, "%s.%s", prefix, env);
    if (get_string(x, o, f1, lit, &s) || get_string(x, o, f2, env, &e))
        return -1;
    if (s && e)
        return fail(x, f1, "give either %s or %s, not both", lit, env);
    if (e) {
        const char *v = getenv(e);
        if (!v || !*v)
            return fail(x, f2, "environment variable %s is not set", e);
        s = v;
    }
    *out = s ? strdup(s) : NULL;
    return 0;
}

static int load_models(cfgctx *x, proxy_config *c, json_object *arr)
{
    static const char *const known[] = {"name", "provider", "model", "api_base",
                                        "api_key", "api_key_env", "api_version", NULL};
    if (!json_object_is_type(arr, json_type_array))
        return fail(x, "models", "must be an array of model objects");
    size_t n = json_object_array_length(arr);
    c->models = calloc(n ? n : 1, sizeof *c->models);
    if (!c->models)
        return fail(x, "models", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(arr, i);
        char p[64], f[128];
        snprintf(p, sizeof p, "models[%zu]", i);
        if (!json_object_is_type(m, json_type_object))
            return fail(x, p, "must be an object");
        snprintf(p, sizeof p, "models[%zu].", i);
        if (check_members(x, m, p, known))
            return -1;
        snprintf(p, sizeof p, "models[%zu]", i);
        proxy_model *pm = &c->models[c->n_models++];
        const char *name, *prov, *model, *base, *ver;
        snprintf(f, sizeof f, "%s.name", p);
        if (get_string(x, m, f, "name", &name))
            return -1;
        if (!name)
            return fail(x, f, "is required");
        for (size_t j = 0; j + 1 < c->n_models; j++)
            if (strcmp(c->models[j].name, name) == 0)
                return fail(x, f, "duplicate model name \"%s\"", name);
        snprintf(f, sizeof f, "%s.provider", p);
        if (get_string(x, m, f, "provider", &prov))
            return -1;
        if (!prov)
            return fail(x, f, "is required");
        if (!llmc_find_provider(prov)) {
            char *names = llmc_registry_names(LLMC_KIND_PROVIDER);
            fail(x, f, "\"%s\" is not a known provider (known: %s)", prov,
                 names ? names : "");
            llmc_free(names);
            return -1;
        }
        snprintf(f, sizeof f, "%s.model", p);
        if (get_string(x, m, f, "model", &model))
            return -1;
        if (!model)
            model = name;
        snprintf(f, sizeof f, "%s.api_base", p);
        if (get_string(x, m, f, "api_base", &base))
            return -1;
        if (base && !strstr(base, "://"))
            return fail(x, f, "must be a URL (http://... or https://...)");
        snprintf(f, sizeof f, "%s.api_version", p);
        if (get_string(x, m, f, "api_version", &ver))
            return -1;
        pm->name = strdup(name);
        pm->provider = strdup(prov);
        size_t tl = strlen(prov) + 1 + strlen(model) + 1;
        pm->target = malloc(tl);
        if (pm->target)
            snprintf(pm->target, tl, "%s/%s", prov, model);
        pm->api_base = xstrdup(base);
        pm->api_version = xstrdup(ver);
        if (secret_from(x, m, p, "api_key", "api_key_env", &pm->api_key))
            return -1;
        if (!pm->name || !pm->provider || !pm->target)
            return fail(x, p, "out of memory");
    }
    return 0;
}

static int load_keys(cfgctx *x, proxy_config *c, json_object *arr)
{
    static const char *const known[] = {"key", "key_env", "namespace", NULL};
    if (!json_object_is_type(arr, json_type_array))
        return fail(x, "keys", "must be an array of {\"key\" | \"key_env\", \"namespace\"}");
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *k = json_object_array_get_idx(arr, i);
        char p[64], f[128];
        snprintf(p, sizeof p, "keys[%zu]", i);
        if (!json_object_is_type(k, json_type_object))
            return fail(x, p, "must be an object");
        snprintf(p, sizeof p, "keys[%zu].", i);
        if (check_members(x, k, p, known))
            return -1;
        snprintf(p, sizeof p, "keys[%zu]", i);
        char *secret = NULL;
        if (secret_from(x, k, p, "key", "key_env", &secret))
            return -1;
        snprintf(f, sizeof f, "%s.key", p);
        if (!secret)
            return fail(x, f, "is required (or key_env)");
        const char *ns;
        snprintf(f, sizeof f, "%s.namespace", p);
        if (get_string(x, k, f, "namespace", &ns)) {
            free(secret);
            return -1;
        }
        if (ns && strpbrk(ns, " \t\r\n")) {
            free(secret);
            return fail(x, f, "must not contain white space");
        }
        for (size_t j = 0; j < c->n_keys; j++) {
            if (strcmp(c->keys[j].key, secret) == 0) {
                free(secret);
                return fail(x, f, "the same key is listed twice");
            }
        }
        int r = proxy_config_add_key(c, secret, ns);
        memset(secret, 0, strlen(secret));
        free(secret);
        if (r)
            return fail(x, p, "out of memory");
    }
    return 0;
}

int proxy_config_load(proxy_config *c, const char *path, char *err, size_t errsz)
{
    cfgctx x = {path, err, errsz};
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "config %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            if (cap > (16u << 20)) {
                fclose(f);
                free(text);
                snprintf(err, errsz, "config %s: larger than 16 MiB", path);
                return -1;
            }
            char *t = realloc(text, cap ? cap * 2 : 8192);
            if (!t) {
                fclose(f);
                free(text);
                snprintf(err, errsz, "config %s: out of memory", path);
                return -1;
            }
            text = t;
            cap = cap ? cap * 2 : 8192;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    text[len] = '\0';
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
    enum json_tokener_error je = tok ? json_tokener_get_error(tok) : json_tokener_error_size;
    if (!root || je != json_tokener_success) {
        /* Report the line of the syntax error: editors count lines. */
        size_t at = tok ? json_tokener_get_parse_end(tok) : 0, line = 1;
        for (size_t i = 0; i < at && i < len; i++)
            line += text[i] == '\n';
        snprintf(err, errsz, "config %s: invalid JSON at line %zu: %s", path, line,
                 je == json_tokener_continue ? "unexpected end of file"
                                              : json_tokener_error_desc(je));
        if (root)
            json_object_put(root);
        if (tok)
            json_tokener_free(tok);
        free(text);
        return -1;
    }
    json_tokener_free(tok);
    free(text);
    int rc = -1;
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errsz, "config %s: the top level must be a JSON object", path);
        goto out;
    }
    static const char *const known[] = {"listen", "cache", "client", "models",
                                        "allow_unlisted_models", "keys", "limits",
                                        "coalescing", "metrics_public", "log", "prices", NULL};
    if (check_members(&x, root, "", known))
        goto out;
    json_object *v;
    const char *s;
    if (get_string(&x, root, "listen", "listen", &s))
        goto out;
    if (s) {
        char e2[300];
        if (proxy_config_set_listen(c, s, e2, sizeof e2)) {
            fail(&x, "listen", "%s", e2);
            goto out;
        }
    }
    if (json_object_object_get_ex(root, "cache", &v)) {
        static const char *const ck[] = {"url", "options", NULL};
        if (json_object_is_type(v, json_type_string)) {
            free(c->cache_url);
            c->cache_url = strdup(json_object_get_string(v));
        } else if (json_object_is_type(v, json_type_object)) {
            if (check_members(&x, v, "cache.", ck) ||
                get_string(&x, v, "cache.url", "url", &s))
                goto out;
            if (s) {
                free(c->cache_url);
                c->cache_url = strdup(s);
            }
            json_object *o;
            if (json_object_object_get_ex(v, "options", &o) &&
                options_from(&x, o, "cache.options", &c->cache_opts))
                goto out;
        } else {
            fail(&x, "cache", "must be a URL string or {\"url\": ..., \"options\": {...}}");
            goto out;
        }
    }
    if (json_object_object_get_ex(root, "client", &v) &&
        options_from(&x, v, "client", &c->client_opts))
        goto out;
    if (json_object_object_get_ex(root, "prices", &v) && load_prices(&x, c, v))
        goto out;
    if (json_object_object_get_ex(root, "models", &v) && load_models(&x, c, v))
        goto out;
    c->allow_unlisted = c->n_models == 0;
    if (get_bool(&x, root, "allow_unlisted_models", "allow_unlisted_models",
                 &c->allow_unlisted))
        goto out;
    if (json_object_object_get_ex(root, "keys", &v) && load_keys(&x, c, v))
        goto out;
    if (json_object_object_get_ex(root, "limits", &v)) {
        static const char *const lk[] = {"max_body_bytes", "threads", "workers",
                                         "max_connections", "idle_timeout_s",
                                         "shutdown_timeout_s", NULL};
        if (!json_object_is_type(v, json_type_object)) {
            fail(&x, "limits", "must be an object");
            goto out;
        }
        int64_t i;
        if (check_members(&x, v, "limits.", lk))
            goto out;
        i = (int64_t)c->max_body;
        if (get_int(&x, v, "limits.max_body_bytes", "max_body_bytes", 1024, 1LL << 30, &i))
            goto out;
        c->max_body = (size_t)i;
        i = c->threads;
        if (get_int(&x, v, "limits.threads", "threads", 0, 256, &i))
            goto out;
        c->threads = (int)i;
        i = c->workers;
        if (get_int(&x, v, "limits.workers", "workers", 1, 4096, &i))
            goto out;
        c->workers = (int)i;
        i = c->max_connections;
        if (get_int(&x, v, "limits.max_connections", "max_connections", 1, 1000000, &i))
            goto out;
        c->max_connections = (unsigned)i;
        i = c->idle_timeout_s;
        if (get_int(&x, v, "limits.idle_timeout_s", "idle_timeout_s", 0, 86400, &i))
            goto out;
        c->idle_timeout_s = (unsigned)i;
        i = c->shutdown_timeout_ms / 1000;
        if (get_int(&x, v, "limits.shutdown_timeout_s", "shutdown_timeout_s", 0, 3600, &i))
            goto out;
        c->shutdown_timeout_ms = i * 1000;
    }
    if (json_object_object_get_ex(root, "coalescing", &v)) {
        static const char *const ck[] = {"enabled", "timeout_ms", NULL};
        if (!json_object_is_type(v, json_type_object)) {
            fail(&x, "coalescing", "must be an object");
            goto out;
        }
        if (check_members(&x, v, "coalescing.", ck) ||
            get_bool(&x, v, "coalescing.enabled", "enabled", &c->coalesce) ||
            get_int(&x, v, "coalescing.timeout_ms", "timeout_ms", 0, 3600000,
                    &c->coalesce_timeout_ms))
            goto out;
    }
    if (get_bool(&x, root, "metrics_public", "metrics_public", &c->metrics_public))
        goto out;
    if (json_object_object_get_ex(root, "log", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            fail(&x, "log", "must be true (access log on stderr) or false");
            goto out;
        }
        c->quiet = !json_object_get_boolean(v);
    }
    rc = 0;
out:
    json_object_put(root);
    return rc;
}
