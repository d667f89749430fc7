/* llmcache: the component registries.
 *
 * Six registries (backends, providers, key strategies, serializers, and
 * the vector indexes and verifiers of semantic lookups) map
 * case-insensitive names to const tables. Built-ins are registered by
 * llmc_init; applications register their own; plugins add theirs when
 * loaded. Names are unique within a kind; backend URL schemes are unique
 * among backends. All registry calls are thread-safe. */
#ifndef LLMCACHE_REGISTRY_H
#define LLMCACHE_REGISTRY_H

#include "common.h"
#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum llmc_kind {
    LLMC_KIND_BACKEND = 0,
    LLMC_KIND_PROVIDER = 1,
    LLMC_KIND_KEY_STRATEGY = 2,
    LLMC_KIND_SERIALIZER = 3,
    LLMC_KIND_INDEX = 4,      /* vector index of semantic lookups (semantic.h) */
    LLMC_KIND_VERIFIER = 5,   /* semantic hit verifier (semantic.h) */
    LLMC_KIND_COUNT_
} llmc_kind;

/* "backend", "provider", "key_strategy", "serializer", "index",
 * "verifier". */
LLMC_API const char *llmc_kind_name(llmc_kind k);

/* Register the built-in components. Idempotent and thread-safe; every
 * entry point that needs the registries calls it, so applications only
 * need it before registering their own components. */
LLMC_API llmc_status llmc_init(void);

/* Register any table by kind. The typed llmc_register_* calls are
 * shorthands for this. `origin` says where it came from ("application",
 * a plugin path; NULL = "application"); it is copied. */
LLMC_API llmc_status llmc_register(llmc_kind kind, const llmc_component *table,
                                   const char *origin, llmc_err *err);

/* Find a table by kind and name (case-insensitive; backends also by URL
 * scheme). If nothing is registered under that name the plugin loader is
 * asked (plugin.h) before NULL is returned. */
LLMC_API const llmc_component *llmc_find(llmc_kind kind, const char *name);

/* Visit every registered table of a kind, in registration order. The
 * callback returns non-zero to stop. */
typedef int (*llmc_registry_cb)(void *ud, llmc_kind kind, const llmc_component *table,
                                const char *origin);
LLMC_API void llmc_registry_foreach(llmc_kind kind, llmc_registry_cb cb, void *ud);

/* Comma-separated names of a kind, for error messages ("local, redis").
 * Caller frees with llmc_free. */
LLMC_API char *llmc_registry_names(llmc_kind kind);

#ifdef __cplusplus
}
#endif
#endif
