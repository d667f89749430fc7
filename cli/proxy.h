/* Internals of `llmcache serve`, the caching proxy: the configuration
 * (proxy_config.c), the HTTP server (proxy_http.c), whether the cache
 * answers (proxy_cache_state.c, one cache per process) and the command
 * (serve.c). Not installed. */
#ifndef LLMC_PROXY_H
#define LLMC_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <llmcache/llmcache.h>

/* One entry of the model list: the public name clients send, and where
 * it goes. */
typedef struct proxy_model {
    char *name;        /* as clients send it ("gpt-4o-mini", "fast") */
    char *target;      /* "provider/model" handed to the client library */
    char *provider;    /* provider name (for /v1/models "owned_by") */
    char *api_base;    /* NULL = the provider's default */
    char *api_key;     /* the secret itself (from api_key or api_key_env);
                          NULL = the library's environment lookup */
    char *api_version; /* NULL = default */
} proxy_model;

/* A proxy key; ns NULL = the cache's namespace (an admin key). */
typedef struct proxy_key {
    char *key;
    char *ns;
} proxy_key;

typedef struct proxy_config {
    char *host;                /* listen address (numeric IPv4/IPv6) */
    int port;
    char *cache_url;           /* NULL = $LLMCACHE_URL, else local:// */
    llmc_options *cache_opts;  /* from "cache.options" */
    llmc_options *client_opts; /* from "client" */
    proxy_model *models;
    size_t n_models;
    int allow_unlisted;        /* models not in the list go to the library's
                                  own routing */
    proxy_key *keys;
    size_t n_keys;
    size_t max_body;           /* bytes */
    int threads;               /* HTTP threads (MHD thread pool) */
    int workers;               /* upstream worker threads */
    unsigned max_connections;
    unsigned idle_timeout_s;
    int64_t shutdown_timeout_ms;
    int coalesce;              /* request coalescing on/off */
    int64_t coalesce_timeout_ms;
    int metrics_public;        /* /metrics without a proxy key */
    int quiet;                 /* no access log */
} proxy_config;

/* Defaults (no file). */
void proxy_config_init(proxy_config *c);
void proxy_config_free(proxy_config *c);

/* Load a JSON config file over the defaults. On error returns -1 and puts
 * a message naming the file and the field into err (errsz bytes). */
int proxy_config_load(proxy_config *c, const char *path, char *err, size_t errsz);

/* "host:port" (IPv6 as "[::1]:4000") into c->host / c->port; -1 with a
 * message on error. */
int proxy_config_set_listen(proxy_config *c, const char *spec, char *err, size_t errsz);

/* Add a proxy key (copied); ns may be NULL. */
/* Add a proxy key (copied); ns NULL = an admin key. A namespace that
 * llmc_namespace_check refuses, or a key already given to another
 * namespace, is -1 with the reason in err (never the key). The same key
 * again for the same namespace is accepted once. */
int proxy_config_add_key(proxy_config *c, const char *key, const char *ns, char *err,
                         size_t errsz);

/* The server. */
typedef struct proxy_server proxy_server;

/* Start listening and serving (threads are started; returns at once).
 * `cache` and `client` are borrowed and must outlive the server. The
 * config is borrowed too. NULL with a message on failure. */
proxy_server *proxy_server_start(const proxy_config *cfg, llmc_cache *cache,
                                 llmc_client *client, char *err, size_t errsz);

/* The port actually bound (for --listen 127.0.0.1:0). */
int proxy_server_port(const proxy_server *s);

/* Serve an already connected stream socket (e.g. one end of a
 * socketpair) as a new client connection, as if it had been accepted on
 * the listening socket: in-process drivers such as the fuzz harness use
 * it to reach the HTTP handling without the network. The server owns
 * `fd` from the call on, whatever the result (libmicrohttpd closes it on
 * failure). 0, or -1 when the server refused it (stopping, connection
 * limit). Thread-safe. */
int proxy_server_add_connection(proxy_server *s, int fd);

/* Graceful stop: stop accepting, let in-flight requests finish (up to the
 * configured shutdown timeout), close everything and free the server.
 * Returns 0; -1 when requests were still in flight after the timeout: the
 * server is then left running (its threads still use the cache and the
 * client) and the caller should end the process with _exit. */
int proxy_server_stop(proxy_server *s);

/* Whether the cache answers (proxy_cache_state.c). Thread-safe.
 * proxy_cache_state_up: 1 if the cache's last ping, at most a second old
 * (pinged now when older), succeeded, else 0. proxy_cache_state_note
 * records the result of a ping made elsewhere (/cache/ping, start-up). */
int proxy_cache_state_up(llmc_cache *cache);
void proxy_cache_state_note(llmc_status ping_status);
/* A thread that pings the cache every 250 ms while it is down or the
 * circuit breaker skips it (a successful ping closes the breaker, so
 * hits resume as soon as the backend answers). start: 0, or -1 when the
 * thread could not start; stop: joins it (no-op when not started). */
int proxy_cache_watch_start(llmc_cache *cache);
void proxy_cache_watch_stop(void);

#endif
