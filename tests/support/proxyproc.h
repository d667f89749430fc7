/* Test support: `llmcache serve` as a child process on a free loopback
 * port (config written to its private dir, waited for until it accepts
 * connections), and one HTTP request to it through libcurl with the
 * headers the suites look at. Used by the suites that drive the proxy
 * over libcurl (cache_down, proxy_stale, tier_proxy, replicas). */
#ifndef LLMC_PROXYPROC_H
#define LLMC_PROXYPROC_H

#include "testsrv.h"

#include <stddef.h>

/* The proxy's configuration, written as proxy.json:
 *   {"listen": "127.0.0.1:<port>",
 *    "cache": {"url": cache_url, "options": {cache_options}},
 *    "client": {"max_retries": 0, "timeout_ms": 20000},
 *    "models": [{"name": "gpt-4o-mini", "provider": "openai",
 *                "api_base": api_base, "api_key": "sk-test-provider"}],
 *    "limits": {"threads": threads, "workers": workers}extra} */
typedef struct px_conf {
    const char *cache_url;
    const char *cache_options; /* members of "options": "\"ttl\": 3600, ..." */
    const char *api_base;      /* the model's api_base, with its /v1 */
    int threads, workers;
    const char *extra; /* more top-level members (", \"x\": ..."), or NULL */
} px_conf;

/* testsrv_mkdir(s, name), a free port (into *port), proxy.json from c,
 * then `llmcache serve --config` and a wait of up to 10 s until the
 * port accepts. 0 when it answers; -1 (step on stderr) otherwise. */
int px_start(testsrv *s, const char *name, const px_conf *c, int *port);

typedef struct px_reply {
    long status;
    char body[131072]; /* /metrics is long; longer bodies are cut */
    size_t len;
    char xstatus[64]; /* x-llmcache-status */
    char warning[128];
    char age[32];
    int coalesced; /* x-llmcache-coalesced: true */
} px_reply;

/* One request to 127.0.0.1:port (body NULL: GET, else a JSON POST),
 * with the extra header lines in headers (NULL-terminated, or NULL),
 * giving up after timeout_s. 0 if it completed at the HTTP level,
 * -1 otherwise (err, when not NULL, gets curl's message). */
int px_request(int port, const char *path, const char *body, const char *const *headers,
               long timeout_s, px_reply *r, const char **err);

#endif
