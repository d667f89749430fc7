/* No network for fuzz inputs: these definitions take the place of the C
 * library's connect() and getaddrinfo() for the whole process (libcurl,
 * hiredis, libmemcached call them through the dynamic linker), so a
 * fuzzed URL, api_base or host name fails at once with "connection
 * refused" / "name not resolved" instead of reaching a real server, and
 * the harness stays fast and deterministic. */
#include "fuzz.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>

static unsigned long refused;

unsigned long fuzz_nonet_refused(void)
{
    return __atomic_load_n(&refused, __ATOMIC_RELAXED);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)fd;
    (void)addr;
    (void)len;
    __atomic_fetch_add(&refused, 1, __ATOMIC_RELAXED);
    errno = ECONNREFUSED;
    return -1;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    (void)node;
    (void)service;
    (void)hints;
    *res = NULL;
    __atomic_fetch_add(&refused, 1, __ATOMIC_RELAXED);
    return EAI_NONAME;
}
