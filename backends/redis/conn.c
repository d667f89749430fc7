/* Redis connection layer: sockets, TLS through memory BIOs, deadlines,
 * RESP writing, hiredis's reader for parsing, and the per-node pool.
 *
 * Why our own layer: Debian's hiredis 0.14.1 has no TLS, and its blocking
 * API bounds each read by SO_RCVTIMEO rather than a whole command. Here
 * every socket is non-blocking and every wait is a poll() on the time left
 * until the command's deadline, so no call can outlive its timeout.
 *
 * TLS runs over two memory BIOs: OpenSSL only turns bytes into records
 * and back, and the socket I/O stays ours (send with MSG_NOSIGNAL, so a
 * server that went away never raises SIGPIPE in the application, and the
 * same poll-based deadlines apply to the handshake too). */
#include "conn.h"

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

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define RCONN_CHUNK 65536
/* Keep up to this much unused reader buffer between replies, so 20 KB
 * values do not cost a realloc per command (hiredis's default is 16 KB). */
#define RCONN_READER_KEEP (1024 * 1024)
/* Output buffers bigger than this are released after use. */
#define RCONN_OUT_KEEP (1024 * 1024)

struct llmc_rconn {
    int fd;
    SSL *ssl;          /* NULL for plain connections */
    BIO *rbio, *wbio;  /* memory BIOs owned by ssl */
    redisReader *reader;
    int broken;
    uint64_t rx_bytes;
    const char *label; /* points into the pool's config */
    char *out;         /* pending command bytes */
    size_t out_len, out_cap;
    char in[RCONN_CHUNK];
    size_t in_pos, in_len; /* read ahead by the fast paths, not yet parsed */
    char net[16384];   /* ciphertext staging for TLS */
};

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
/* config */

void llmc__rnode_cfg_free(llmc_rnode_cfg *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->unix_path);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    free(c->tls_server_name);
    free(c->user);
    if (c->password) {
        /* Do not leave the secret in freed memory. */
        explicit_bzero(c->password, strlen(c->password));
        free(c->password);
    }
    free(c->label);
    memset(c, 0, sizeof *c);
}

llmc_status llmc__rnode_cfg_copy(llmc_rnode_cfg *dst, const llmc_rnode_cfg *src,
                                 llmc_err *err)
{
    memset(dst, 0, sizeof *dst);
    dst->port = src->port;
    dst->tls_verify = src->tls_verify;
    dst->db = src->db;
    dst->connect_timeout_ms = src->connect_timeout_ms;
    dst->command_timeout_ms = src->command_timeout_ms;
    int fail = 0;
#define DUP(f)                                                                 \
    if (src->f && !(dst->f = llmc__strdup(src->f)))                            \
        fail = 1;
    DUP(host)
    DUP(unix_path)
    DUP(tls_server_name)
    DUP(user)
    DUP(password)
    DUP(label)
#undef DUP
    if (src->ssl_ctx) {
        SSL_CTX_up_ref(src->ssl_ctx);
        dst->ssl_ctx = src->ssl_ctx;
    }
    if (fail) {
        llmc__rnode_cfg_free(dst);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    return LLMC_OK;
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

static llmc_status sock_send_all(llmc_rconn *c, const char *p, size_t len,
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
static llmc_status sock_recv(llmc_rconn *c, char *buf, size_t cap, size_t *got,
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
/* TLS over memory BIOs */

static void tls_errstr(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, n, "unknown TLS error");
        return;
    }
    ERR_error_string_n(e, buf, n);
    ERR_clear_error();
}

/* Move pending ciphertext from the write BIO to the socket. */
static llmc_status tls_flush_wbio(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err)
{
    for (;;) {
        int n = BIO_read(c->wbio, c->net, (int)sizeof c->net);
        if (n <= 0)
            return LLMC_OK;
        llmc_status st = sock_send_all(c, c->net, (size_t)n, deadline_ns, err);
        if (st != LLMC_OK)
            return st;
    }
}

/* Read ciphertext from the socket into the read BIO. */
static llmc_status tls_fill_rbio(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err)
{
    size_t got = 0;
    llmc_status st = sock_recv(c, c->net, sizeof c->net, &got, deadline_ns, 1, err);
    if (st != LLMC_OK)
        return st;
    if (BIO_write(c->rbio, c->net, (int)got) != (int)got) {
        c->broken = 1;
        return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: out of memory (TLS)",
                            c->label);
    }
    return LLMC_OK;
}

static llmc_status tls_fail(llmc_rconn *c, llmc_err *err, const char *what, int sslerr)
{
    char buf[256];
    c->broken = 1;
    if (sslerr == SSL_ERROR_ZERO_RETURN)
        return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: TLS connection closed by server",
                            c->label);
    tls_errstr(buf, sizeof buf);
    return llmc_err_set(err, LLMC_ECONN, sslerr, "redis at %s: TLS %s failed: %s%s", c->label,
                        what, buf,
                        strstr(buf, "certificate required")
                            ? " (the server wants a client certificate: set tls_cert and "
                              "tls_key)"
                            : "");
}

static llmc_status tls_handshake(llmc_rconn *c, const llmc_rnode_cfg *cfg,
                                 uint64_t deadline_ns, llmc_err *err)
{
    c->ssl = SSL_new(cfg->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: cannot create TLS session",
                            c->label);
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);

    const char *name = cfg->tls_server_name ? cfg->tls_server_name : cfg->host;
    unsigned char tmp[16];
    int is_ip = name && (inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1);
    if (name && !is_ip)
        SSL_set_tlsext_host_name(c->ssl, name);
    if (cfg->tls_verify) {
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        if (name) {
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name)
                           : SSL_set1_host(c->ssl, name);
            if (ok != 1)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "redis at %s: cannot check certificate name '%s'",
                                    c->label, name);
        }
    } else {
        SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    }

    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        llmc_status st = tls_flush_wbio(c, deadline_ns, err);
        if (st != LLMC_OK)
            return st; /* "send failed: ..." or "send timed out" */
        if (r == 1)
            return LLMC_OK;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            st = tls_fill_rbio(c, deadline_ns, err);
            if (st == LLMC_ETIMEDOUT)
                return llmc_err_set(err, LLMC_ETIMEDOUT, ETIMEDOUT,
                                    "redis at %s: TLS handshake timed out", c->label);
            if (st != LLMC_OK)
                return llmc_err_set(err, LLMC_ECONN, err ? err->native : 0,
                                    "redis at %s: TLS handshake failed: connection closed "
                                    "(is this a TLS port? does it require a client "
                                    "certificate?)",
                                    c->label);
            continue;
        }
        if (e == SSL_ERROR_WANT_WRITE)
            continue;
        long vr = SSL_get_verify_result(c->ssl);
        c->broken = 1;
        if (cfg->tls_verify && vr != X509_V_OK) {
            ERR_clear_error();
            return llmc_err_set(err, LLMC_ECONN, vr,
                                "redis at %s: TLS certificate verification failed: %s "
                                "(set tls_ca, or tls_verify=0 to skip verification)",
                                c->label, X509_verify_cert_error_string(vr));
        }
        return tls_fail(c, err, "handshake", e);
    }
}

static llmc_status tls_write(llmc_rconn *c, const char *p, size_t len, uint64_t deadline_ns,
                             llmc_err *err)
{
    while (len > 0) {
        ERR_clear_error();
        int chunk = len > 0x40000000 ? 0x40000000 : (int)len;
        int n = SSL_write(c->ssl, p, chunk);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            llmc_status st = tls_flush_wbio(c, deadline_ns, err);
            if (st == LLMC_OK)
                st = tls_fill_rbio(c, deadline_ns, err);
            if (st != LLMC_OK)
                return st;
            continue;
        }
        if (e == SSL_ERROR_WANT_WRITE)
            continue;
        return tls_fail(c, err, "write", e);
    }
    return tls_flush_wbio(c, deadline_ns, err);
}

static llmc_status tls_read(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                            uint64_t deadline_ns, llmc_err *err)
{
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, (int)cap);
        if (n > 0) {
            *got = (size_t)n;
            return LLMC_OK;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            llmc_status st = tls_flush_wbio(c, deadline_ns, err);
            if (st == LLMC_OK)
                st = tls_fill_rbio(c, deadline_ns, err);
            if (st != LLMC_OK)
                return st;
            continue;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            llmc_status st = tls_flush_wbio(c, deadline_ns, err);
            if (st != LLMC_OK)
                return st;
            continue;
        }
        return tls_fail(c, err, "read", e);
    }
}

llmc_status llmc__redis_tls_ctx_new(const char *ca, const char *cert, const char *key,
                                    SSL_CTX **out, llmc_err *err)
{
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "redis: cannot create TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    ERR_clear_error();
    if (ca && *ca) {
        struct stat stt;
        int is_dir = stat(ca, &stt) == 0 && S_ISDIR(stt.st_mode);
        if (SSL_CTX_load_verify_locations(ctx, is_dir ? NULL : ca, is_dir ? ca : NULL) != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof ebuf);
            SSL_CTX_free(ctx);
            return llmc_err_set(err, LLMC_EINVAL, 0, "redis: tls_ca: cannot load '%s': %s", ca,
                                ebuf);
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ERR_clear_error();
    }
    if (key && *key && !(cert && *cert)) {
        SSL_CTX_free(ctx);
        return llmc_err_set(err, LLMC_EINVAL, 0, "redis: tls_key given without tls_cert");
    }
    if (cert && *cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof ebuf);
            SSL_CTX_free(ctx);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "redis: tls_cert: cannot load certificate '%s': %s", cert, ebuf);
        }
        const char *kf = key && *key ? key : cert;
        if (SSL_CTX_use_PrivateKey_file(ctx, kf, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            ERR_error_string_n(ERR_get_error(), ebuf, sizeof ebuf);
            SSL_CTX_free(ctx);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "redis: tls_key: cannot use private key '%s': %s", kf, ebuf);
        }
    }
    ERR_clear_error();
    *out = ctx;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* connect */

static llmc_status connect_unix(llmc_rconn *c, const char *path, uint64_t deadline_ns,
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

static llmc_status connect_tcp(llmc_rconn *c, const char *host, int port,
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

/* ------------------------------------------------------------------ */
/* errors */

/* Copy s into out, replacing every occurrence of the secret by "***". */
static void scrub(char *out, size_t cap, const char *s, size_t slen, const char *secret)
{
    size_t sl = secret ? strlen(secret) : 0;
    size_t o = 0;
    for (size_t i = 0; i < slen && o + 1 < cap;) {
        if (sl >= 3 && i + sl <= slen && memcmp(s + i, secret, sl) == 0) {
            for (const char *r = "***"; *r && o + 1 < cap; r++)
                out[o++] = *r;
            i += sl;
            continue;
        }
        unsigned char ch = (unsigned char)s[i++];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    out[o] = 0;
}

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

llmc_status llmc__redis_error_reply(const redisReply *r, const char *what,
                                    const char *label, const char *secret, llmc_err *err)
{
    char text[300];
    scrub(text, sizeof text, r->str ? r->str : "", r->str ? r->len : 0, secret);
    llmc_status st = LLMC_EBACKEND;
    const char *hint = "";
    if (starts(text, "NOAUTH")) {
        st = LLMC_EAUTH;
        hint = " (the server requires a password: give one in the URL)";
    } else if (starts(text, "WRONGPASS") || starts(text, "ERR invalid password") ||
               starts(text, "ERR invalid username-password") ||
               (starts(text, "ERR") && strstr(text, "AUTH") && strstr(text, "password"))) {
        st = LLMC_EAUTH;
    } else if (starts(text, "NOPERM")) {
        st = LLMC_EPERM;
    } else if (starts(text, "MOVED") || starts(text, "ASK ") || starts(text, "CLUSTERDOWN")) {
        hint = " (this is a Redis Cluster node: use a redis-cluster:// URL)";
    }
    return llmc_err_set(err, st, 0, "redis at %s: %s: %s%s", label, what, text, hint);
}

/* ------------------------------------------------------------------ */
/* commands */

static llmc_status out_reserve(llmc_rconn *c, size_t extra)
{
    if (c->out_len + extra <= c->out_cap)
        return LLMC_OK;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + extra)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return LLMC_ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return LLMC_OK;
}

static size_t put_len(char *p, char kind, size_t n)
{
    char tmp[24];
    size_t i = 0;
    do {
        tmp[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t o = 0;
    p[o++] = kind;
    while (i)
        p[o++] = tmp[--i];
    p[o++] = '\r';
    p[o++] = '\n';
    return o;
}

llmc_status llmc__rconn_append(llmc_rconn *c, int argc, const char *const *argv,
                               const size_t *lens)
{
    /* RESP array of bulk strings, written straight into the reusable
     * output buffer (no allocation per command once it has grown). */
    size_t need = 24;
    for (int i = 0; i < argc; i++)
        need += 24 + lens[i] + 2;
    if (out_reserve(c, need) != LLMC_OK)
        return LLMC_ENOMEM;
    char *p = c->out + c->out_len;
    p += put_len(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p += put_len(p, '$', lens[i]);
        if (lens[i])
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    c->out_len = (size_t)(p - c->out);
    return LLMC_OK;
}

llmc_status llmc__rconn_flush(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err)
{
    if (c->broken)
        return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken", c->label);
    llmc_status st = c->ssl ? tls_write(c, c->out, c->out_len, deadline_ns, err)
                            : sock_send_all(c, c->out, c->out_len, deadline_ns, err);
    c->out_len = 0;
    if (c->out_cap > RCONN_OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return st;
}

static llmc_status conn_recv(llmc_rconn *c, char *buf, size_t cap, size_t *got,
                             uint64_t deadline_ns, int poll_first, llmc_err *err)
{
    if (c->broken)
        return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken", c->label);
    return c->ssl ? tls_read(c, buf, cap, got, deadline_ns, err)
                  : sock_recv(c, buf, cap, got, deadline_ns, poll_first, err);
}

/* Hand bytes that the fast paths read ahead to the reader. */
static llmc_status in_to_reader(llmc_rconn *c, llmc_err *err)
{
    if (c->in_pos < c->in_len &&
        redisReaderFeed(c->reader, c->in + c->in_pos, c->in_len - c->in_pos) != REDIS_OK) {
        c->broken = 1;
        return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: out of memory", c->label);
    }
    c->in_pos = c->in_len = 0;
    return LLMC_OK;
}

llmc_status llmc__rconn_read(llmc_rconn *c, uint64_t deadline_ns, redisReply **reply,
                             llmc_err *err)
{
    *reply = NULL;
    int poll_first = 1;
    llmc_status st = in_to_reader(c, err);
    if (st != LLMC_OK)
        return st;
    for (;;) {
        void *r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            c->broken = 1;
            return llmc_err_set(err, LLMC_EPROTO, c->reader->err,
                                "redis at %s: protocol error: %s", c->label, c->reader->errstr);
        }
        if (r) {
            *reply = r;
            return LLMC_OK;
        }
        if (c->broken)
            return llmc_err_set(err, LLMC_ECONN, 0, "redis at %s: connection is broken",
                                c->label);
        size_t got = 0;
        st = conn_recv(c, c->in, sizeof c->in, &got, deadline_ns, poll_first, err);
        if (st != LLMC_OK)
            return st;
        poll_first = 0;
        if (redisReaderFeed(c->reader, c->in, got) != REDIS_OK) {
            c->broken = 1;
            return llmc_err_set(err, LLMC_ENOMEM, 0, "redis at %s: out of memory", c->label);
        }
    }
}

/* ---- fast paths: bulk strings received straight into llmc_buf ----
 *
 * GET and MGET replies are bulk strings (or arrays of them). Parsing them
 * here lets the payload go from the kernel into the caller's buffer with
 * one copy, where the reader would copy it into its buffer, then into a
 * reply object, then we would copy it out again. Anything unexpected
 * (error replies, pipelined leftovers in the reader) goes the general
 * way. Bytes read ahead stay in c->in[in_pos..in_len); the general path
 * hands them to the reader first, so at most one of the two holds
 * unparsed input at any time. */

static llmc_status proto_err(llmc_rconn *c, llmc_err *err, const char *what)
{
    c->broken = 1;
    return llmc_err_set(err, LLMC_EPROTO, 0, "redis at %s: protocol error: %s", c->label, what);
}

/* Make sure at least one unread byte is buffered. */
static llmc_status in_fill(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, llmc_err *err)
{
    if (c->in_pos < c->in_len)
        return LLMC_OK;
    c->in_pos = c->in_len = 0;
    size_t got = 0;
    llmc_status st = conn_recv(c, c->in, sizeof c->in, &got, deadline_ns, *poll_first, err);
    *poll_first = 0;
    if (st == LLMC_OK)
        c->in_len = got;
    return st;
}

/* Consume one line; *line and *len give its text without the type byte and
 * CRLF (valid until the next read). Lines here are short. */
static llmc_status in_line(llmc_rconn *c, uint64_t deadline_ns, int *poll_first,
                           const char **line, size_t *len, llmc_err *err)
{
    for (;;) {
        char *start = c->in + c->in_pos;
        size_t avail = c->in_len - c->in_pos;
        char *nl = avail ? memchr(start, '\n', avail) : NULL;
        if (nl) {
            if (nl - start < 2 || nl[-1] != '\r')
                return proto_err(c, err, "bad line");
            *line = start + 1;
            *len = (size_t)(nl - start) - 2;
            c->in_pos += (size_t)(nl - start) + 1;
            return LLMC_OK;
        }
        if (avail > 200)
            return proto_err(c, err, "line too long");
        memmove(c->in, start, avail);
        c->in_pos = 0;
        c->in_len = avail;
        size_t got = 0;
        llmc_status st = conn_recv(c, c->in + avail, sizeof c->in - avail, &got, deadline_ns,
                                   *poll_first, err);
        *poll_first = 0;
        if (st != LLMC_OK)
            return st;
        c->in_len += got;
    }
}

/* Consume one header or integer line ("$123", "*100", ":-2"): its number
 * in *num. */
static llmc_status in_header(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, long long *num,
                             llmc_err *err)
{
    const char *p;
    size_t n;
    llmc_status st = in_line(c, deadline_ns, poll_first, &p, &n, err);
    if (st != LLMC_OK)
        return st;
    const char *end = p + n;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || end - p > 18)
        return proto_err(c, err, "bad number");
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return proto_err(c, err, "bad number");
        v = v * 10 + (*p - '0');
    }
    *num = neg ? -v : v;
    return LLMC_OK;
}

/* Receive an n-byte payload and its CRLF into out. */
static llmc_status in_payload(llmc_rconn *c, uint64_t deadline_ns, size_t n, llmc_buf *out,
                              llmc_err *err)
{
    llmc_buf_clear(out);
    if (llmc_buf_reserve(out, n + 2) != LLMC_OK) {
        c->broken = 1; /* the payload stays unread */
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory for a %zu byte value", n);
    }
    size_t avail = c->in_len - c->in_pos;
    size_t done = avail < n + 2 ? avail : n + 2;
    memcpy(out->data, c->in + c->in_pos, done);
    c->in_pos += done;
    while (done < n + 2) {
        size_t want = n + 2 - done, got = 0;
        llmc_status st;
        if (want >= sizeof c->in / 4) {
            /* Big remainder: straight into the destination, never past
             * this payload. */
            st = conn_recv(c, out->data + done, want, &got, deadline_ns, 0, err);
            if (st != LLMC_OK)
                goto fail;
            done += got;
        } else {
            /* Small remainder: read a chunk (likely holding the next
             * replies too) and copy our part. */
            c->in_pos = c->in_len = 0;
            st = conn_recv(c, c->in, sizeof c->in, &got, deadline_ns, 0, err);
            if (st != LLMC_OK)
                goto fail;
            c->in_len = got;
            size_t take = got < want ? got : want;
            memcpy(out->data + done, c->in, take);
            c->in_pos = take;
            done += take;
        }
        continue;
    fail:
        llmc_buf_clear(out);
        return st;
    }
    if (out->data[n] != '\r' || out->data[n + 1] != '\n') {
        llmc_buf_clear(out);
        return proto_err(c, err, "bulk string not terminated");
    }
    out->len = n;
    out->data[n] = 0;
    return LLMC_OK;
}

/* Peek at the reply's first byte; 0 with *other set if the reply must go
 * the general way. */
static llmc_status fast_start(llmc_rconn *c, uint64_t deadline_ns, int *poll_first, char want,
                              int *fast, redisReply **other, llmc_err *err)
{
    *fast = 0;
    if (c->reader->len > c->reader->pos)
        return llmc__rconn_read(c, deadline_ns, other, err);
    llmc_status st = in_fill(c, deadline_ns, poll_first, err);
    if (st != LLMC_OK)
        return st;
    if (c->in[c->in_pos] != want)
        return llmc__rconn_read(c, deadline_ns, other, err);
    *fast = 1;
    return LLMC_OK;
}

llmc_status llmc__rconn_read_bulk(llmc_rconn *c, uint64_t deadline_ns, llmc_buf *out,
                                  int *nil, redisReply **other, llmc_err *err)
{
    *other = NULL;
    *nil = 0;
    int poll_first = 1, fast;
    llmc_status st = fast_start(c, deadline_ns, &poll_first, '$', &fast, other, err);
    if (st != LLMC_OK || !fast)
        return st;
    long long n;
    if ((st = in_header(c, deadline_ns, &poll_first, &n, err)) != LLMC_OK)
        return st;
    if (n < 0) {
        *nil = 1;
        return LLMC_OK;
    }
    return in_payload(c, deadline_ns, (size_t)n, out, err);
}

llmc_status llmc__rconn_read_simple(llmc_rconn *c, uint64_t deadline_ns, int *type,
                                    long long *integer, redisReply **other, llmc_err *err)
{
    *other = NULL;
    *integer = 0;
    int poll_first = 1, fast;
    llmc_status st = LLMC_OK;
    if (c->reader->len > c->reader->pos)
        return llmc__rconn_read(c, deadline_ns, other, err);
    if ((st = in_fill(c, deadline_ns, &poll_first, err)) != LLMC_OK)
        return st;
    char t = c->in[c->in_pos];
    fast = t == '+' || t == ':';
    if (!fast)
        return llmc__rconn_read(c, deadline_ns, other, err);
    if (t == ':') {
        *type = REDIS_REPLY_INTEGER;
        return in_header(c, deadline_ns, &poll_first, integer, err);
    }
    const char *line;
    size_t len;
    *type = REDIS_REPLY_STATUS;
    return in_line(c, deadline_ns, &poll_first, &line, &len, err);
}

llmc_status llmc__rconn_read_mget(llmc_rconn *c, uint64_t deadline_ns, size_t n, llmc_buf *vals,
                                  llmc_status *sts, redisReply **other, llmc_err *err)
{
    *other = NULL;
    int poll_first = 1, fast;
    llmc_status st = fast_start(c, deadline_ns, &poll_first, '*', &fast, other, err);
    if (st != LLMC_OK || !fast)
        return st;
    long long count;
    if ((st = in_header(c, deadline_ns, &poll_first, &count, err)) != LLMC_OK)
        return st;
    if (count != (long long)n)
        return proto_err(c, err, "MGET answered with the wrong number of values");
    for (size_t i = 0; i < n; i++) {
        if ((st = in_fill(c, deadline_ns, &poll_first, err)) != LLMC_OK)
            return st;
        if (c->in[c->in_pos] != '$')
            return proto_err(c, err, "MGET element is not a bulk string");
        long long len;
        if ((st = in_header(c, deadline_ns, &poll_first, &len, err)) != LLMC_OK)
            return st;
        if (len < 0) {
            sts[i] = LLMC_MISS;
            continue;
        }
        if ((st = in_payload(c, deadline_ns, (size_t)len, &vals[i], err)) != LLMC_OK)
            return st;
        sts[i] = LLMC_OK;
    }
    return LLMC_OK;
}

llmc_status llmc__rconn_command(llmc_rconn *c, int argc, const char *const *argv,
                                const size_t *lens, uint64_t deadline_ns,
                                redisReply **reply, llmc_err *err)
{
    if (llmc__rconn_append(c, argc, argv, lens) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rconn_flush(c, deadline_ns, err);
    if (st != LLMC_OK)
        return st;
    return llmc__rconn_read(c, deadline_ns, reply, err);
}

int llmc__rconn_broken(const llmc_rconn *c)
{
    return c->broken;
}

void llmc__rconn_mark_broken(llmc_rconn *c)
{
    c->broken = 1;
}

uint64_t llmc__rconn_rx_bytes(const llmc_rconn *c)
{
    return c->rx_bytes;
}

void llmc__rconn_close(llmc_rconn *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl); /* frees both BIOs */
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader)
        redisReaderFree(c->reader);
    free(c->out);
    free(c);
}

/* AUTH, SELECT and a PING, pipelined in one round trip. The PING tells a
 * server that requires a password we did not give (NOAUTH) apart from a
 * working connection. */
static llmc_status handshake(llmc_rconn *c, const llmc_rnode_cfg *cfg, uint64_t deadline_ns,
                             llmc_err *err)
{
    int n = 0;
    const char *user = cfg->user && *cfg->user ? cfg->user : NULL;
    if (cfg->password || user) {
        const char *pw = cfg->password ? cfg->password : "";
        const char *av[3] = {"AUTH", user, pw};
        size_t al[3] = {4, user ? strlen(user) : 0, strlen(pw)};
        if (user)
            llmc__rconn_append(c, 3, av, al);
        else {
            av[1] = pw;
            al[1] = al[2];
            llmc__rconn_append(c, 2, av, al);
        }
        n++;
    }
    char dbs[16];
    if (cfg->db > 0) {
        snprintf(dbs, sizeof dbs, "%d", cfg->db);
        const char *av[2] = {"SELECT", dbs};
        size_t al[2] = {6, strlen(dbs)};
        llmc__rconn_append(c, 2, av, al);
        n++;
    }
    const char *pv[1] = {"PING"};
    size_t pl[1] = {4};
    if (llmc__rconn_append(c, 1, pv, pl) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    n++;
    llmc_status st = llmc__rconn_flush(c, deadline_ns, err);
    llmc_status first = LLMC_OK;
    llmc_err tmp;
    for (int i = 0; i < n && st == LLMC_OK; i++) {
        redisReply *r = NULL;
        st = llmc__rconn_read(c, deadline_ns, &r, err);
        if (st != LLMC_OK)
            break;
        if (r->type == REDIS_REPLY_ERROR && first == LLMC_OK) {
            char what[160];
            snprintf(what, sizeof what, "PING");
            int idx = i;
            if (cfg->password || user) {
                if (idx == 0) {
                    if (user)
                        snprintf(what, sizeof what, "authentication failed for user '%.100s'",
                                 user);
                    else
                        snprintf(what, sizeof what, "authentication failed");
                }
                idx--;
            }
            if (cfg->db > 0 && idx == 0)
                snprintf(what, sizeof what, "SELECT %d", cfg->db);
            first = llmc__redis_error_reply(r, what, c->label, cfg->password, &tmp);
        }
        freeReplyObject(r);
    }
    if (st != LLMC_OK)
        return st == LLMC_ETIMEDOUT
                   ? llmc_err_set(err, LLMC_ETIMEDOUT, ETIMEDOUT,
                                  "redis at %s: connection handshake timed out (the server "
                                  "accepted but does not answer)",
                                  c->label)
                   : st;
    if (first != LLMC_OK) {
        if (err)
            *err = tmp;
        return first;
    }
    return LLMC_OK;
}

llmc_status llmc__rconn_open(const llmc_rnode_cfg *cfg, uint64_t deadline_ns,
                             llmc_rconn **out, llmc_err *err)
{
    *out = NULL;
    llmc_rconn *c = calloc(1, sizeof *c);
    if (!c)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    c->fd = -1;
    c->label = cfg->label ? cfg->label : "?";
    c->reader = redisReaderCreate();
    if (!c->reader) {
        free(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    c->reader->maxbuf = RCONN_READER_KEEP;
    llmc_status st = cfg->unix_path ? connect_unix(c, cfg->unix_path, deadline_ns, err)
                                    : connect_tcp(c, cfg->host, cfg->port, deadline_ns, err);
    if (st == LLMC_OK && cfg->ssl_ctx)
        st = tls_handshake(c, cfg, deadline_ns, err);
    if (st == LLMC_OK)
        st = handshake(c, cfg, deadline_ns, err);
    if (st != LLMC_OK) {
        llmc__rconn_close(c);
        return st;
    }
    c->rx_bytes = 0;
    *out = c;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* pool */

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

llmc_status llmc__rpool_init(llmc_rpool *p, const llmc_rnode_cfg *cfg, int size,
                             llmc_err *err)
{
    memset(p, 0, sizeof *p);
    if (size < 1)
        size = 1;
    p->size = size;
    p->idle = calloc((size_t)size, sizeof *p->idle);
    if (!p->idle)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__rnode_cfg_copy(&p->cfg, cfg, err);
    if (st != LLMC_OK) {
        free(p->idle);
        p->idle = NULL;
        return st;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->backoff_ms = BACKOFF_MIN_MS;
    return LLMC_OK;
}

void llmc__rpool_destroy(llmc_rpool *p)
{
    if (!p->idle)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    for (int i = 0; i < p->n_idle; i++)
        llmc__rconn_close(p->idle[i]);
    p->n_idle = 0;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->idle);
    p->idle = NULL;
    llmc__rnode_cfg_free(&p->cfg);
}

llmc_status llmc__rpool_acquire(llmc_rpool *p, uint64_t deadline_ns, llmc_rconn **out,
                                int *fresh, llmc_err *err)
{
    int waited = 0;
    uint64_t wait_start = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->n_idle > 0) {
            *out = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->lock);
            *fresh = 0;
            break;
        }
        uint64_t now = llmc_mono_ns();
        int backing_off = now < p->next_connect_ns;
        if (p->n_open < p->size && !(backing_off && p->n_open > 0)) {
            if (backing_off) {
                /* A connect failed a moment ago: answer at once with that
                 * error instead of hammering a server that is down. */
                llmc_err e = p->last_connect_err;
                int64_t in_ms = (int64_t)((p->next_connect_ns - now) / 1000000ull);
                pthread_mutex_unlock(&p->lock);
                return llmc_err_set(err, e.status ? e.status : LLMC_ECONN, e.native,
                                    "%s (next reconnect attempt in %lld ms)", e.msg,
                                    (long long)in_ms);
            }
            p->n_open++;
            uint64_t had = p->connects;
            pthread_mutex_unlock(&p->lock);

            llmc_rconn *c = NULL;
            llmc_err e;
            llmc_err_clear(&e);
            llmc_status st = llmc__rconn_open(&p->cfg, llmc__deadline_after_ms(
                                                           p->cfg.connect_timeout_ms),
                                              &c, &e);
            pthread_mutex_lock(&p->lock);
            if (st != LLMC_OK) {
                p->n_open--;
                p->connect_failures++;
                p->last_connect_err = e;
                p->next_connect_ns = llmc_mono_ns() + (uint64_t)p->backoff_ms * 1000000ull;
                p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                                   : p->backoff_ms * 2;
                pthread_cond_signal(&p->cond);
                pthread_mutex_unlock(&p->lock);
                if (err)
                    *err = e;
                return st;
            }
            p->connects++;
            if (had > 0)
                p->reconnects++;
            p->backoff_ms = BACKOFF_MIN_MS;
            p->next_connect_ns = 0;
            pthread_mutex_unlock(&p->lock);
            *out = c;
            *fresh = 1;
            break;
        }
        /* Every connection is busy (or, while reconnects are held back,
         * the ones still open are): wait for one to come back. */
        if (!waited) {
            waited = 1;
            wait_start = now;
            p->waits++;
        }
        /* While backing off, wake up when a reconnect is allowed again. */
        uint64_t until = backing_off && p->next_connect_ns < deadline_ns ? p->next_connect_ns
                                                                          : deadline_ns;
        struct timespec ts = {(time_t)(until / 1000000000ull), (long)(until % 1000000000ull)};
        int r = pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        if (r == ETIMEDOUT && p->n_idle == 0 && llmc_mono_ns() >= deadline_ns) {
            int size = p->size;
            pthread_mutex_unlock(&p->lock);
            p->wait_us += (llmc_mono_ns() - wait_start) / 1000;
            return llmc_err_set(err, LLMC_ETIMEDOUT, ETIMEDOUT,
                                "redis at %s: no free connection in the pool (pool_size=%d) "
                                "before the timeout",
                                p->cfg.label, size);
        }
    }
    if (waited)
        p->wait_us += (llmc_mono_ns() - wait_start) / 1000;
    return LLMC_OK;
}

void llmc__rpool_release(llmc_rpool *p, llmc_rconn *c)
{
    if (!c)
        return;
    if (c->broken) {
        llmc__rconn_close(c);
        pthread_mutex_lock(&p->lock);
        p->n_open--;
        p->broken++;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->idle[p->n_idle++] = c;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

int llmc__redis_set_args(const char **av, size_t *al, char *pxbuf, size_t pxcap,
                         const char *key, size_t klen, const void *val, size_t vlen,
                         int64_t ttl_ms)
{
    av[0] = "SET";
    al[0] = 3;
    av[1] = key;
    al[1] = klen;
    av[2] = val ? (const char *)val : "";
    al[2] = vlen;
    if (ttl_ms <= 0)
        return 3;
    av[3] = "PX";
    al[3] = 2;
    av[4] = pxbuf;
    al[4] = (size_t)snprintf(pxbuf, pxcap, "%lld", (long long)ttl_ms);
    return 5;
}

llmc_status llmc__redis_match_pattern(llmc_buf *b, const char *s, size_t n, const char *suffix)
{
    llmc_buf_clear(b);
    if (llmc_buf_reserve(b, 2 * n + 4) != LLMC_OK)
        return LLMC_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
            b->data[b->len++] = '\\';
        b->data[b->len++] = ch;
    }
    b->data[b->len] = 0;
    return llmc_buf_puts(b, suffix);
}
