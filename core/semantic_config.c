/* The options of semantic lookups, the same names in the cache URL
 * (semantic=1&semantic_threshold=0.97), in llmc_cache_open's options and
 * in the client's options (which win over the cache's). Every value is
 * checked where it is read: a bad one names the option. */
#include "internal.h"
#include "semantic.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const llmc__sem_option_names[] = {
    "semantic", "semantic_threshold", "semantic_min_threshold", "semantic_model",
    "semantic_max_turns", "semantic_index", "semantic_max_per_scope", "semantic_dim",
    "semantic_refresh_ms", "semantic_max_scopes", "semantic_verifier", NULL};

void llmc__semcfg_default(llmc__semcfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->threshold = 0.95;
    cfg->min_threshold = 0.0;
    strcpy(cfg->model, "local");
    cfg->max_turns = 2;
    strcpy(cfg->index, "flat-int8");
    cfg->max_per_scope = 1000;
    cfg->dim = 384;
    cfg->refresh_ms = 1000;
    cfg->max_scopes = 1024;
}

static llmc_status similarity(const char *what, const char *name, const char *v, double *out,
                              llmc_err *err)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(d) || d <= 0.0 || d > 1.0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s %s: \"%.64s\" is not a similarity (a number above 0, at most "
                            "1)", what, name, v);
    *out = d;
    return LLMC_OK;
}

/* The model is "local", "provider/model" (a provider that exists), or a
 * bare model name the client routes (a proxy's listed embeddings model,
 * or one a provider is inferred from): it becomes an embeddings request. */
static llmc_status model_name(const char *what, const char *v, char *out, llmc_err *err)
{
    size_t n = strlen(v);
    if (llmc__strcaseeq(v, "local")) {
        strcpy(out, "local");
        return LLMC_OK;
    }
    const char *slash = strchr(v, '/');
    if (n == 0 || n >= LLMC__SEM_NAME_MAX || slash == v || (slash && !slash[1]))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s semantic_model: \"%.64s\" is neither \"local\" nor a model "
                            "name (e.g. openai/text-embedding-3-small)", what, v);
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == 0x7f)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "%s semantic_model: white space or control characters in "
                                "\"%.64s\"", what, v);
    if (!slash) {
        memcpy(out, v, n + 1);
        return LLMC_OK;
    }
    char prov[64];
    size_t pl = (size_t)(slash - v);
    if (pl >= sizeof prov)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s semantic_model: provider name too long",
                            what);
    memcpy(prov, v, pl);
    prov[pl] = '\0';
    if (!llmc_find_provider(prov))
        return llmc_err_set(err, LLMC_ENOTFOUND, 0,
                            "%s semantic_model: no provider \"%s\" for embeddings", what, prov);
    memcpy(out, v, n + 1);
    return LLMC_OK;
}

llmc_status llmc__semcfg_read(const llmc_options *o, llmc__semcfg *cfg, const char *what,
                              llmc_err *err)
{
    llmc_status st;
    const char *v;
    if (llmc_options_get(o, "semantic") &&
        (st = llmc_options_get_bool(o, "semantic", 0, &cfg->enabled, err)) != LLMC_OK)
        return st;
    if ((v = llmc_options_get(o, "semantic_threshold")) &&
        (st = similarity(what, "semantic_threshold", v, &cfg->threshold, err)) != LLMC_OK)
        return st;
    if ((v = llmc_options_get(o, "semantic_min_threshold")) &&
        (st = similarity(what, "semantic_min_threshold", v, &cfg->min_threshold, err)) !=
            LLMC_OK)
        return st;
    if ((v = llmc_options_get(o, "semantic_model")) &&
        (st = model_name(what, v, cfg->model, err)) != LLMC_OK)
        return st;
    struct {
        const char *name;
        int64_t min, max, *dst;
    } ints[] = {
        {"semantic_max_turns", 1, 1000, &cfg->max_turns},
        {"semantic_max_per_scope", 1, 1000000, &cfg->max_per_scope},
        {"semantic_dim", 8, 65536, &cfg->dim},
        {"semantic_refresh_ms", 0, 86400000, &cfg->refresh_ms},
        {"semantic_max_scopes", 1, 1000000, &cfg->max_scopes},
    };
    for (size_t i = 0; i < LLMC_ARRAY_LEN(ints); i++)
        if (llmc_options_get(o, ints[i].name) &&
            (st = llmc_options_get_i64(o, ints[i].name, ints[i].min, ints[i].max, 0,
                                       ints[i].dst, err)) != LLMC_OK)
            return st;
    if ((v = llmc_options_get(o, "semantic_index"))) {
        const llmc_index_ops *ix = strlen(v) < sizeof cfg->index ? llmc_find_index(v) : NULL;
        if (!ix) {
            char *names = llmc_registry_names(LLMC_KIND_INDEX);
            st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                              "%s semantic_index: no index \"%.64s\" (known: %s)", what, v,
                              names ? names : "");
            llmc_free(names);
            return st;
        }
        strcpy(cfg->index, ix->hdr.name);
    }
    if ((v = llmc_options_get(o, "semantic_verifier"))) {
        const llmc_verifier_ops *vo =
            strlen(v) < sizeof cfg->verifier ? llmc_find_verifier(v) : NULL;
        if (!vo)
            return llmc_err_set(err, LLMC_ENOTFOUND, 0,
                                "%s semantic_verifier: no verifier \"%.64s\" is registered",
                                what, v);
        strcpy(cfg->verifier, vo->hdr.name);
    }
    return LLMC_OK;
}
