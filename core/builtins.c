/* The one list of built-in components. Everything else reaches a
 * built-in through the registry, by name, like any plugin's table.
 *
 * Order matters for providers: a bare model name is inferred by the first
 * provider whose match_model accepts it. */
#include "builtins.h"

#define BUILTIN(kind, table) {kind, &(table).hdr}

static const struct {
    llmc_kind kind;
    const llmc_component *table;
} builtins[] = {
    BUILTIN(LLMC_KIND_SERIALIZER, llmc__serializer_json),
    BUILTIN(LLMC_KIND_SERIALIZER, llmc__serializer_binary),
    BUILTIN(LLMC_KIND_KEY_STRATEGY, llmc__key_strategy_v1),
    BUILTIN(LLMC_KIND_INDEX, llmc__index_flat),
    BUILTIN(LLMC_KIND_INDEX, llmc__index_flat_int8),
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_local),
#if LLMC_HAVE_REDIS
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_redis),
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_redis_cluster),
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_redis_sentinel),
#endif
#if LLMC_HAVE_MEMCACHED
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_memcached),
#endif
#if LLMC_HAVE_SQLITE
    BUILTIN(LLMC_KIND_BACKEND, llmc__backend_sqlite),
#endif
#if LLMC_HAVE_CURL
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_openai),
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_azure),
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_openai_compatible),
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_anthropic),
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_gemini),
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_ollama),
#endif
    BUILTIN(LLMC_KIND_PROVIDER, llmc__provider_mock),
};

llmc_status llmc__builtins_register(llmc_err *err)
{
    for (size_t i = 0; i < LLMC_ARRAY_LEN(builtins); i++) {
        /* Through the public entry point, so built-ins get exactly the
         * checks an application's or a plugin's tables get. */
        llmc_status st = llmc_register(builtins[i].kind, builtins[i].table, "built-in", err);
        if (st != LLMC_OK)
            return st;
    }
    return LLMC_OK;
}

/* The build's list (meson.build, from each backend folder's schemes) of
 * backends it left out; the NULL row keeps the array non-empty. */
static const struct {
    const char *scheme;
    const char *feature;
} not_built[] = {LLMC_NOT_BUILT_BACKENDS{NULL, NULL}};

const char *llmc__backend_not_built(const char *scheme)
{
    for (size_t i = 0; not_built[i].scheme; i++)
        if (llmc__strcaseeq(scheme, not_built[i].scheme))
            return not_built[i].feature;
    return NULL;
}
