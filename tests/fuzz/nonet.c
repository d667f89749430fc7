/* No network for fuzz inputs: these definitions take the place of the C
 * library's connect(), getaddrinfo() and getaddrinfo_a() (with its
 * gai_* companions) for the whole process (libcurl, hiredis,
 * libmemcached call them through the dynamic linker), so a
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

/* The redis backend looks names up with getaddrinfo_a on a glibc helper
 * thread (which calls the C library's own getaddrinfo, not the one
 * above): every request block completes at once, not found. */
int getaddrinfo_a(int mode, struct gaicb *list[], int n, struct sigevent *sev)
{
    (void)mode;
    (void)sev;
    for (int i = 0; i < n; i++) {
        if (!list[i])
            continue;
        list[i]->ar_result = NULL;
        list[i]->__return = EAI_NONAME;
        __atomic_fetch_add(&refused, 1, __ATOMIC_RELAXED);
    }
    return 0;
}

int gai_error(struct gaicb *req)
{
    return req->__return;
}

int gai_suspend(const struct gaicb *const list[], int n, const struct timespec *timeout)
{
    (void)list;
    (void)n;
    (void)timeout;
    return EAI_ALLDONE;
}

int gai_cancel(struct gaicb *req)
{
    (void)req;
    return EAI_ALLDONE;
}
