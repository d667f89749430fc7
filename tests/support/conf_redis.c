/* Conformance suite entries for the Redis backend: the same cases over
 * TCP (password), TLS (generated certificates, client certificate) and a
 * Unix socket, each against its own redis-server. */
#include <stdio.h>

#include "../conformance.h"
#include "redissrv.h"

static redissrv srv_tcp, srv_tls, srv_unix;

static int setup_kind(redissrv *r, redissrv_kind kind, char *url, size_t n)
{
    if (redissrv_start(r, kind) != 0) {
        redissrv_stop(r);
        return -1;
    }
    snprintf(url, n, "%s", r->url);
    return 0;
}

int conf_redis_setup(char *url, size_t n)
{
    return setup_kind(&srv_tcp, REDISSRV_TCP, url, n);
}
void conf_redis_teardown(void)
{
    redissrv_stop(&srv_tcp);
}

int conf_redis_tls_setup(char *url, size_t n)
{
    return setup_kind(&srv_tls, REDISSRV_TLS, url, n);
}
void conf_redis_tls_teardown(void)
{
    redissrv_stop(&srv_tls);
}

int conf_redis_unix_setup(char *url, size_t n)
{
    return setup_kind(&srv_unix, REDISSRV_UNIX, url, n);
}
void conf_redis_unix_teardown(void)
{
    redissrv_stop(&srv_unix);
}
