/* `llmcache serve`: command line, configuration, cache and client
 * set-up, signal handling. The server itself is in proxy_http.c. */
#include "cli.h"
#include "proxy.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: llmcache serve [--listen HOST:PORT] [--cache URL] [--config FILE]\n"
          "                      [--api-key KEY]... [--tenant NAMESPACE=KEY]...\n"
          "                      [--threads N] [--workers N] [--max-body BYTES]\n"
          "                      [--coalesce-timeout MS] [--no-coalesce] [--access-log]\n"
          "\n"
          "An OpenAI-compatible caching proxy: POST /v1/chat/completions,\n"
          "/v1/completions and /v1/embeddings go to the providers through the cache;\n"
          "GET /v1/models, /health, /metrics, /cache/ping; POST /cache/delete and\n"
          "/cache/flush. See docs/proxy.md.\n"
          "\n"
          "  --listen HOST:PORT     address to listen on (default 127.0.0.1:4000)\n"
          "  --cache URL            cache URL (default: $LLMCACHE_URL, else local://)\n"
          "  --config FILE          JSON config: listen, cache, client, models, keys,\n"
          "                         limits, coalescing (command-line options win)\n"
          "  --api-key KEY          require this proxy key (repeatable); clients send\n"
          "                         \"Authorization: Bearer KEY\"\n"
          "  --tenant NS=KEY        a proxy key whose cache entries live in namespace NS\n"
          "  --threads N            HTTP threads (default: one per CPU, x4 with a\n"
          "                         network cache such as redis or memcached)\n"
          "  --workers N            threads for upstream calls (default 64)\n"
          "  --max-body BYTES       request body limit (default 4194304)\n"
          "  --coalesce-timeout MS  how long identical requests wait for the first one\n"
          "                         (default 60000)\n"
          "  --no-coalesce          every miss goes upstream\n"
          "  --access-log           one line per request on stderr\n"
          "\n"
          "Stops cleanly on SIGTERM or SIGINT, finishing the requests in flight.\n"
          "Exit status: 0 after a clean stop, 1 when it could not start, 2 for bad\n"
          "arguments or a bad config.\n",
          f);
}

static int parse_num(const char *opt, const char *v, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max) {
        fprintf(stderr, "llmcache serve: %s: \"%s\" is not a number in %lld..%lld\n", opt, v,
                min, max);
        return -1;
    }
    *out = n;
    return 0;
}

enum {
    OPT_LISTEN = 256,
    OPT_CACHE,
    OPT_CONFIG,
    OPT_API_KEY,
    OPT_TENANT,
    OPT_THREADS,
    OPT_WORKERS,
    OPT_MAX_BODY,
    OPT_COALESCE_TIMEOUT,
    OPT_NO_COALESCE,
    OPT_ACCESS_LOG,
    OPT_HELP,
};

int llmc_cli_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"cache", required_argument, NULL, OPT_CACHE},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"api-key", required_argument, NULL, OPT_API_KEY},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"coalesce-timeout", required_argument, NULL, OPT_COALESCE_TIMEOUT},
        {"no-coalesce", no_argument, NULL, OPT_NO_COALESCE},
        {"access-log", no_argument, NULL, OPT_ACCESS_LOG},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *cache_url = NULL, *config = NULL;
    long long threads = -1, workers = -1, max_body = -1, ctimeout = -1;
    int no_coalesce = 0, access_log = 0;
    optind = 1;
    opterr = 0;
    int c, rc = 2;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_CACHE:
            cache_url = optarg;
            break;
        case OPT_CONFIG:
            config = optarg;
            break;
        case OPT_API_KEY:
        case OPT_TENANT:
            if (c == OPT_TENANT && (!strchr(optarg, '=') || optarg[0] == '=' ||
                                    !strchr(optarg, '=')[1])) {
                fprintf(stderr, "llmcache serve: --tenant wants NAMESPACE=KEY\n");
                goto out;
            }
            if (c == OPT_API_KEY && !*optarg) {
                fprintf(stderr, "llmcache serve: --api-key wants a non-empty key\n");
                goto out;
            }
            /* Collected in order after the config is loaded. */
            break;
        case OPT_THREADS:
            if (parse_num("--threads", optarg, 0, 256, &threads))
                goto out;
            break;
        case OPT_WORKERS:
            if (parse_num("--workers", optarg, 1, 4096, &workers))
                goto out;
            break;
        case OPT_MAX_BODY:
            if (parse_num("--max-body", optarg, 1024, 1LL << 30, &max_body))
                goto out;
            break;
        case OPT_COALESCE_TIMEOUT:
            if (parse_num("--coalesce-timeout", optarg, 0, 3600000, &ctimeout))
                goto out;
            break;
        case OPT_NO_COALESCE:
            no_coalesce = 1;
            break;
        case OPT_ACCESS_LOG:
            access_log = 1;
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            fprintf(stderr, "llmcache serve: unknown or incomplete option \"%s\"\n",
                    argv[optind - 1]);
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "llmcache serve: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        goto out;
    }
    rc = 2;
    char err[1024];
    proxy_config cfg;
    proxy_config_init(&cfg);
    llmc_cache *cache = NULL;
    llmc_client *client = NULL;
    proxy_server *srv = NULL;
    llmc_err e;
    llmc_err_clear(&e);
    sigset_t set, old;
    int sigmask_set = 0;
    if (llmc_init() != LLMC_OK) {
        fprintf(stderr, "llmcache serve: library initialisation failed\n");
        rc = 1;
        goto done;
    }
    if (config && proxy_config_load(&cfg, config, err, sizeof err) != 0) {
        fprintf(stderr, "llmcache serve: %s\n", err);
        goto done;
    }
    if (listen && proxy_config_set_listen(&cfg, listen, err, sizeof err) != 0) {
        fprintf(stderr, "llmcache serve: --listen: %s\n", err);
        goto done;
    }
    if (cache_url) {
        free(cfg.cache_url);
        cfg.cache_url = strdup(cache_url);
    }
    /* Re-scan argv for the keys in order (kind by option name). */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int tenant = 0;
        if (strcmp(a, "--api-key") == 0 || strcmp(a, "--tenant") == 0) {
            tenant = a[2] == 't';
            v = i + 1 < argc ? argv[++i] : NULL;
        } else if (strncmp(a, "--api-key=", 10) == 0) {
            v = a + 10;
        } else if (strncmp(a, "--tenant=", 9) == 0) {
            v = a + 9;
            tenant = 1;
        } else if (strcmp(a, "--listen") == 0 || strcmp(a, "--cache") == 0 ||
                   strcmp(a, "--config") == 0 || strcmp(a, "--threads") == 0 ||
                   strcmp(a, "--workers") == 0 || strcmp(a, "--max-body") == 0 ||
                   strcmp(a, "--coalesce-timeout") == 0) {
            i++;
            continue;
        }
        if (!v)
            continue;
        char why[300];
        if (tenant) {
            const char *eq = strchr(v, '=');
            char *ns = strndup(v, (size_t)(eq - v));
            if (!ns || proxy_config_add_key(&cfg, eq + 1, ns, why, sizeof why) != 0) {
                fprintf(stderr, "llmcache serve: --tenant: %s\n", ns ? why : "out of memory");
                free(ns);
                rc = 2;
                goto done;
            }
            free(ns);
        } else if (proxy_config_add_key(&cfg, v, NULL, why, sizeof why) != 0) {
            fprintf(stderr, "llmcache serve: --api-key: %s\n", why);
            rc = 2;
            goto done;
        }
    }
    if (threads >= 0)
        cfg.threads = (int)threads;
    if (workers > 0)
        cfg.workers = (int)workers;
    if (max_body > 0)
        cfg.max_body = (size_t)max_body;
    if (ctimeout >= 0)
        cfg.coalesce_timeout_ms = ctimeout;
    if (no_coalesce)
        cfg.coalesce = 0;
    if (access_log)
        cfg.quiet = 0;

    /* Signals: every thread started from here on (the cache's and the
     * client's included) inherits this mask, so SIGTERM reaches only the
     * sigwait below. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    sigmask_set = 1;
    signal(SIGPIPE, SIG_IGN);
    /* Coalescing across replicas (the cache's leases) follows the
     * proxy's own switch and waiting time; the lease time is the
     * cache's (lease_ms). */
    llmc_options *xopts = cfg.cache_opts ? llmc_options_dup(cfg.cache_opts) : llmc_options_new();
    if (!xopts ||
        (!cfg.coalesce && llmc_options_set(xopts, "coalesce", "false") != LLMC_OK) ||
        (!llmc_options_get(xopts, "coalesce_timeout_ms") &&
         llmc_options_set_int(xopts, "coalesce_timeout_ms", cfg.coalesce_timeout_ms) !=
             LLMC_OK)) {
        llmc_options_free(xopts);
        fprintf(stderr, "llmcache serve: out of memory\n");
        goto done;
    }
    llmc_status ost = llmc_cache_open(cfg.cache_url, xopts, &cache, &e);
    llmc_options_free(xopts);
    if (ost != LLMC_OK) {
        fprintf(stderr, "llmcache serve: cache%s%s: %s\n", cfg.cache_url ? " " : "",
                cfg.cache_url ? cfg.cache_url : "", e.msg);
        goto done;
    }
    /* A cache that does not answer yet is no reason not to serve: the
     * answers go upstream (misses) until it does. */
    llmc_status ping = llmc_cache_ping(cache);
    proxy_cache_state_note(ping);
    if (ping != LLMC_OK)
        fprintf(stderr, "llmcache serve: warning: cache %s is down (%s); serving without it "
                        "until it answers\n", llmc_cache_url(cache), llmc_cache_errmsg(cache));
    /* The server's own settings for the client: requests never choose
     * the provider's endpoint or key, and only the configured models are
     * served unless the configuration allows others. */
    llmc_options *copts = cfg.client_opts ? llmc_options_dup(cfg.client_opts)
                                          : llmc_options_new();
    if (!copts || llmc_options_set(copts, "request_credentials", "false") != LLMC_OK ||
        llmc_options_set(copts, "models_only", cfg.allow_unlisted ? "false" : "true") !=
            LLMC_OK) {
        llmc_options_free(copts);
        fprintf(stderr, "llmcache serve: out of memory\n");
        goto done;
    }
    llmc_status cst = llmc_client_new(cache, copts, &client, &e);
    llmc_options_free(copts);
    if (cst != LLMC_OK) {
        fprintf(stderr, "llmcache serve: config field \"client\": %s\n", e.msg);
        goto done;
    }
    for (size_t i = 0; i < cfg.n_models; i++) {
        const proxy_model *m = &cfg.models[i];
        if (llmc_client_add_model(client, m->name, m->target, m->api_base, m->api_key,
                                  m->api_version, &e) != LLMC_OK) {
            fprintf(stderr, "llmcache serve: config field \"models[%zu]\": %s\n", i, e.msg);
            goto done;
        }
    }

    srv = proxy_server_start(&cfg, cache, client, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "llmcache serve: %s\n", err);
        rc = 1;
        goto done;
    }
    fprintf(stderr, "llmcache serve: listening on http://%s%s%s:%d (cache %s, %zu model(s), "
                    "%s)\n",
            strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "",
            proxy_server_port(srv), llmc_cache_url(cache), cfg.n_models,
            cfg.n_keys ? "proxy keys required" : "no proxy keys: open to anyone who can connect");
    fflush(stderr);
    if (proxy_cache_watch_start(cache) != 0)
        fprintf(stderr, "llmcache serve: warning: no cache watcher thread; after an outage "
                        "hits resume after the breaker's cool-down\n");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "llmcache serve: %s received, finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (proxy_server_stop(srv) != 0) {
        /* Workers still run: freeing what they use, or running exit
         * handlers under them, is not safe. */
        fprintf(stderr, "llmcache serve: stopped with requests abandoned\n");
        fflush(NULL);
        _exit(1);
    }
    fprintf(stderr, "llmcache serve: stopped\n");
    rc = 0;
done:
    proxy_cache_watch_stop();
    llmc_client_free(client);
    llmc_cache_close(cache);
    proxy_config_free(&cfg);
    if (sigmask_set)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
    return rc;
}
