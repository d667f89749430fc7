/* The conformance suite's backend table entry (tests/conformance.c). */
#ifndef LLMC_CONFORMANCE_H
#define LLMC_CONFORMANCE_H

#include <stddef.h>
#include "llmc_config.h"

typedef struct conf_backend {
    const char *name;
    /* Start what the backend needs and write its URL; 0 on success. A
     * failed setup fails the run (it is never skipped). */
    int (*setup)(char *url, size_t n);
    void (*teardown)(void);
} conf_backend;

/* Backends that need servers declare their setup/teardown in
 * tests/support/ and add themselves here, one line each. */
#if LLMC_HAVE_REDIS
int conf_redis_setup(char *url, size_t n);
void conf_redis_teardown(void);
int conf_redis_tls_setup(char *url, size_t n);
void conf_redis_tls_teardown(void);
int conf_redis_unix_setup(char *url, size_t n);
void conf_redis_unix_teardown(void);
int conf_redis_cluster_setup(char *url, size_t n);
void conf_redis_cluster_teardown(void);
#define CONF_REDIS {"redis", conf_redis_setup, conf_redis_teardown},                   \
    {"redis-tls", conf_redis_tls_setup, conf_redis_tls_teardown},                    \
    {"redis-unix", conf_redis_unix_setup, conf_redis_unix_teardown},                 \
    {"redis-cluster", conf_redis_cluster_setup, conf_redis_cluster_teardown},
#else
#define CONF_REDIS
#endif
#if LLMC_HAVE_MEMCACHED
int conf_memcached_setup(char *url, size_t n);
void conf_memcached_teardown(void);
#define CONF_MEMCACHED {"memcached", conf_memcached_setup, conf_memcached_teardown},
#else
#define CONF_MEMCACHED
#endif
#if LLMC_HAVE_SQLITE
int conf_sqlite_setup(char *url, size_t n);
void conf_sqlite_teardown(void);
#define CONF_SQLITE {"sqlite", conf_sqlite_setup, conf_sqlite_teardown},
#else
#define CONF_SQLITE
#endif

/* The file:// example plugin (examples/plugins/file_backend.c), loaded
 * through LLMCACHE_PLUGIN_PATH like a user's plugin. */
int conf_file_setup(char *url, size_t n);
void conf_file_teardown(void);
#define CONF_FILE_PLUGIN {"file-plugin", conf_file_setup, conf_file_teardown},

#define CONF_EXTRA_BACKENDS CONF_REDIS CONF_MEMCACHED CONF_SQLITE CONF_FILE_PLUGIN

#endif
