/* The built-in component tables, defined by the files that implement
 * them and registered by core/builtins.c, the one place that lists
 * them. Not installed. */
#ifndef LLMC_BUILTINS_H
#define LLMC_BUILTINS_H

#include "internal.h"

extern const llmc_backend_ops llmc__backend_local;
#if LLMC_HAVE_REDIS
extern const llmc_backend_ops llmc__backend_redis; /* schemes redis, rediss, unix */
extern const llmc_backend_ops llmc__backend_redis_cluster;  /* redis-cluster, rediss-cluster */
extern const llmc_backend_ops llmc__backend_redis_sentinel; /* redis-sentinel, rediss-sentinel */
#endif
#if LLMC_HAVE_MEMCACHED
extern const llmc_backend_ops llmc__backend_memcached;
#endif
#if LLMC_HAVE_SQLITE
extern const llmc_backend_ops llmc__backend_sqlite;
#endif
extern const llmc_serializer_ops llmc__serializer_json;
extern const llmc_serializer_ops llmc__serializer_binary;
extern const llmc_key_strategy_ops llmc__key_strategy_v1;
extern const llmc_index_ops llmc__index_flat;      /* core/index_flat.c */
extern const llmc_index_ops llmc__index_flat_int8;
#if LLMC_HAVE_CURL
extern const llmc_provider_ops llmc__provider_openai;
extern const llmc_provider_ops llmc__provider_azure;
extern const llmc_provider_ops llmc__provider_openai_compatible;
extern const llmc_provider_ops llmc__provider_anthropic;
extern const llmc_provider_ops llmc__provider_gemini;
extern const llmc_provider_ops llmc__provider_ollama;
#endif
extern const llmc_provider_ops llmc__provider_mock;

/* Register every built-in table with origin "built-in" (llmc_init). */
llmc_status llmc__builtins_register(llmc_err *err);

/* Backends that exist in the project but were left out of this build:
 * the feature to build for the error message, or NULL. */
const char *llmc__backend_not_built(const char *scheme);

#endif
