/* Redis connection layer, sockets and deadlines: every socket is
 * non-blocking and every wait is a poll() on the time left until the
 * command's deadline, so no call can outlive its timeout (Debian's
 * hiredis 0.14.1 bounds each read by SO_RCVTIMEO instead, and has no
 * TLS). Sends use MSG_NOSIGNAL, so a server that went away never raises
 * SIGPIPE in the application. Host name lookups are bounded by the
 * connect deadline too. */
#include "conn_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t llmc__deadline_after_ms(int64_t ms)
{
    if (ms <= 0)
        ms = 1;
    return llmc_mono_ns() + (uint64_t)ms * 1000000ull;
}

/* Milliseconds left until the deadline, rounded up; 0 when passed. */
static int ms_left(uint64_t deadline_ns)
{
    uint64_t now = llmc_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t left = (deadline_ns - now + 999999ull) / 1000000ull;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* ------------------------------------------------------------------ */
/* raw socket I/O with deadlines */

static llmc_status fail_io(llmc_rconn *c, llmc_err *err, llmc_status st, long native,
                           const char *what)
{
    c->broken = 1;
    if (st == LLMC_ETIMEDOUT)
        return llmc_err_set(err, st, native, "redis at %s: %s timed out", c->label, what);
    if (native)
        return llmc_err_set(err, st, native, "redis at %s: %s failed: %s", c->label, what,
                            strerror((int)native));
    return llmc_err_set(err, st, native, "redis at %s: %s failed", c->label, what);
}

static llmc_status wait_fd(llmc_rconn *c, short events, uint64_t deadline_ns,
                           const char *what, llmc_err *err)
{
    for (;;) {
        int left = ms_left(deadline_ns);
        if (left == 0)
            return fail_io(c, err, LLMC_ETIMEDOUT, ETIMEDOUT, what);
        struct pollfd pfd = {c->fd, events, 0};
        int r = poll(&pfd, 1, left);
        if (r > 0)
            return LLMC_OK; /* readable/writable, or an error the next call reports */
        if (r == 0)
            return fail_io(c, err, LLMC_ETIMEDOUT, ETIMEDOUT, what);
        if (errno != EINTR)
            return fail_io(c, err, LLMC_ECONN, errno, what);
    }
}

llmc_status llmc__rsock_send_all(llmc_rconn *c, const char *p, size_t len,
                                 uint64_t deadline_ns, llmc_err *err)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            llmc_status st = wait_fd(c, POLLOUT, deadline_ns, "send", err);
            if (st != LLMC_OK)
                return st;
            continue;
        }
        return fail_io(c, err, LLMC_ECONN, n < 0 ? errno : EPIPE, "send");
    }
    return LLMC_OK;
}

/* Receive at least one byte. With poll_first, waits before trying: a
 * reply is almost never there the moment a command has been sent, so
 * trying recv first would cost a wasted system call per command. Later
 * reads of the same reply try recv first, as the rest usually has
 * arrived already. */
llmc_status llmc__rsock_recv(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                             uint64_t deadline_ns, int poll_first, llmc_err *err)
{
    for (;;) {
        if (poll_first) {
            llmc_status st = wait_fd(c, POLLIN, deadline_ns, "read", err);
            if (st != LLMC_OK)
                return st;
        }
        poll_first = 1;
        ssize_t n = recv(c->fd, buf, cap, MSG_DONTWAIT);
        if (n > 0) {
            *got = (size_t)n;
            c->rx_bytes += (uint64_t)n;
            return LLMC_OK;
        }
        if (n == 0) {
            c->broken = 1;
            return llmc_err_set(err, LLMC_ECONN, ECONNRESET,
                                "redis at %s: connection closed by server", c->label);
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        return fail_io(c, err, LLMC_ECONN, errno, "read");
    }
}

/* ------------------------------------------------------------------ */
/* connect */

llmc_status llmc__rsock_connect_unix(llmc_rconn *c, const char *path, uint64_t deadline_ns,
                                     llmc_err *err)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        return llmc_err_set(err, LLMC_EINVAL, 0, "redis: unix socket path too long: %s", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return llmc_err_set(err, LLMC_ECONN, errno, "redis at %s: socket: %s", c->label,
                            strerror(errno));
    for (;;) {
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0)
            return LLMC_OK;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EINPROGRESS) {
            /* Listen backlog full: wait for room, then check. */
            llmc_status st = wait_fd(c, POLLOUT, deadline_ns, "connect", err);
            if (st != LLMC_OK)
                return llmc_err_set(err, LLMC_ECONN, ETIMEDOUT,
                                    "cannot connect to redis at %s: timed out", c->label);
            int so = 0;
            socklen_t sl = sizeof so;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &sl);
            if (so == 0)
                return LLMC_OK;
            errno = so;
        }
        return llmc_err_set(err, LLMC_ECONN, errno, "cannot connect to redis at %s: %s",
                            c->label, strerror(errno));
    }
}

/* Host name lookups bounded by the connect deadline: getaddrinfo_a runs
 * the lookup on a glibc helper thread and we wait with gai_suspend. A
 * lookup that outlives its deadline and cannot be cancelled still owns
 * its request block, so it is parked on a list and freed by a later call
 * once it has finished (lookups end within the resolver's own timeout,
 * so the list stays short). */
typedef struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    struct lookup *next;
    char port[16];
    char host[];
} lookup;

static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static lookup *parked;

static void reap_parked(void)
{
    pthread_mutex_lock(&parked_lock);
    for (lookup **pp = &parked; *pp;) {
        lookup *l = *pp;
        if (gai_error(&l->cb) == EAI_INPROGRESS) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        if (l->cb.ar_result)
            freeaddrinfo(l->cb.ar_result);
        free(l);
    }
    pthread_mutex_unlock(&parked_lock);
}

static llmc_status resolve(llmc_rconn *c, const char *host, int port, uint64_t deadline_ns,
                           struct addrinfo **res, llmc_err *err)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    /* Addresses need no lookup. */
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(host, portstr, &hints, res) == 0)
        return LLMC_OK;
    hints.ai_flags = 0;
    if (parked)
        reap_parked();
    size_t hl = strlen(host);
    lookup *l = calloc(1, sizeof *l + hl + 1);
    if (!l)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    memcpy(l->host, host, hl + 1);
    memcpy(l->port, portstr, sizeof portstr);
    l->hints = hints;
    l->cb.ar_name = l->host;
    l->cb.ar_service = l->port;
    l->cb.ar_request = &l->hints;
    struct gaicb *list[1] = {&l->cb};
    int gr;
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
        /* Could not start a helper: look up in this thread instead. */
        free(l);
        gr = getaddrinfo(host, portstr, &hints, res);
        if (gr != 0)
            return llmc_err_set(err, LLMC_ECONN, gr, "cannot resolve redis host '%s': %s",
                                host, gai_strerror(gr));
        return LLMC_OK;
    }
    for (;;) {
        int left = ms_left(deadline_ns);
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        int r = gai_suspend((const struct gaicb *const *)list, 1, &ts);
        if (r == EAI_INTR)
            continue;
        if (r == 0 || r == EAI_ALLDONE || gai_error(&l->cb) != EAI_INPROGRESS)
            break;
        if (ms_left(deadline_ns) > 0)
            continue;
        /* Out of time. */
        if (gai_cancel(&l->cb) != EAI_CANCELED && gai_error(&l->cb) == EAI_INPROGRESS) {
            pthread_mutex_lock(&parked_lock);
            l->next = parked;
            parked = l;
            pthread_mutex_unlock(&parked_lock);
        } else {
            if (l->cb.ar_result)
                freeaddrinfo(l->cb.ar_result);
            free(l);
        }
        return llmc_err_set(err, LLMC_ECONN, ETIMEDOUT,
                            "cannot connect to redis at %s: looking up '%s' timed out", c->label,
                            host);
    }
    gr = gai_error(&l->cb);
    if (gr != 0) {
        if (l->cb.ar_result)
            freeaddrinfo(l->cb.ar_result);
        free(l);
        return llmc_err_set(err, LLMC_ECONN, gr, "cannot resolve redis host '%s': %s", host,
                            gai_strerror(gr));
    }
    *res = l->cb.ar_result;
    free(l);
    return LLMC_OK;
}

llmc_status llmc__rsock_connect_tcp(llmc_rconn *c, const char *host, int port,
                                    uint64_t deadline_ns, llmc_err *err)
{
    struct addrinfo *res = NULL;
    llmc_status rst = resolve(c, host, port, deadline_ns, &res, err);
    if (rst != LLMC_OK)
        return rst;
    int last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r != 0 && errno == EINPROGRESS) {
            int left = ms_left(deadline_ns);
            struct pollfd pfd = {fd, POLLOUT, 0};
            int pr;
            do {
                pr = poll(&pfd, 1, left);
            } while (pr < 0 && errno == EINTR && (left = ms_left(deadline_ns)) > 0);
            if (pr <= 0) {
                last = pr == 0 ? ETIMEDOUT : errno;
                close(fd);
                if (last == ETIMEDOUT)
                    break; /* no time left for other addresses */
                continue;
            }
            int so = 0;
            socklen_t sl = sizeof so;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
            r = so ? -1 : 0;
            errno = so;
        }
        if (r != 0) {
            last = errno;
            close(fd);
            continue;
        }
        int one = 1;
        /* Small request/response messages: never wait for Nagle. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        c->fd = fd;
        freeaddrinfo(res);
        return LLMC_OK;
    }
    freeaddrinfo(res);
    if (last == ETIMEDOUT)
        return llmc_err_set(err, LLMC_ECONN, ETIMEDOUT,
                            "cannot connect to redis at %s: timed out", c->label);
    return llmc_err_set(err, LLMC_ECONN, last, "cannot connect to redis at %s: %s", c->label,
                        strerror(last));
}
