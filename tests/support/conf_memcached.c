/* Conformance setup for the memcached backend: two real memcached
 * processes on free loopback ports, so every case also runs across a
 * consistent-hashing ring. */
#include "conformance.h"
#include "testsrv.h"

#include <stdio.h>
#include <unistd.h>

static testsrv mc[2];

static int start_one(testsrv *s, const char *name)
{
    if (testsrv_mkdir(s, name) != 0)
        return -1;
    int port = testsrv_free_port();
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    /* -I 8m: the suite stores a 5 MB value */
    char *argv[] = {"memcached", "-l", "127.0.0.1", "-p", p, "-U", "0", "-m", "64", "-I", "8m", "-t", "2",
                    "-u", "root", NULL};
    if (geteuid() != 0)
        argv[13] = NULL; /* -u is only needed (and allowed) as root */
    s->port = port;
    if (testsrv_spawn(s, argv) != 0)
        return -1;
    return testsrv_wait_tcp(s, port, 5000);
}

int conf_memcached_setup(char *url, size_t n)
{
    if (start_one(&mc[0], "conf-mc0") != 0 || start_one(&mc[1], "conf-mc1") != 0)
        return -1;
    snprintf(url, n, "memcached://127.0.0.1:%d,127.0.0.1:%d", mc[0].port, mc[1].port);
    return 0;
}

void conf_memcached_teardown(void)
{
    testsrv_stop(&mc[0]);
    testsrv_stop(&mc[1]);
}
