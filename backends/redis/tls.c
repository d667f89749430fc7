/* Redis connection layer, TLS: OpenSSL runs over two memory BIOs and
 * only turns bytes into records and back; the socket I/O stays in
 * socket.c, so the same poll-based deadlines apply to the handshake and
 * every record. Also the client TLS context (CA, certificate, key). */
#include "conn_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

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
        llmc_status st = llmc__rsock_send_all(c, c->net, (size_t)n, deadline_ns, err);
        if (st != LLMC_OK)
            return st;
    }
}

/* Read ciphertext from the socket into the read BIO. */
static llmc_status tls_fill_rbio(llmc_rconn *c, uint64_t deadline_ns, llmc_err *err)
{
    size_t got = 0;
    llmc_status st = llmc__rsock_recv(c, c->net, sizeof c->net, &got, deadline_ns, 1, err);
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
    /* A TLS failure the server answered (an alert: bad or missing client
     * certificate, which TLS 1.3 reports on the first read) is a
     * configuration problem, not an unreachable server: LLMC_EAUTH, so
     * opening the cache still fails on it. */
    llmc_status st = sslerr == SSL_ERROR_SSL ? LLMC_EAUTH : LLMC_ECONN;
    return llmc_err_set(err, st, sslerr, "redis at %s: TLS %s failed: %s%s", c->label,
                        what, buf,
                        strstr(buf, "certificate required")
                            ? " (the server wants a client certificate: set tls_cert and "
                              "tls_key)"
                            : "");
}

llmc_status llmc__rtls_handshake(llmc_rconn *c, const llmc_rnode_cfg *cfg,
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
            return llmc_err_set(err, LLMC_EAUTH, vr,
                                "redis at %s: TLS certificate verification failed: %s "
                                "(set tls_ca, or tls_verify=0 to skip verification)",
                                c->label, X509_verify_cert_error_string(vr));
        }
        return tls_fail(c, err, "handshake", e);
    }
}

llmc_status llmc__rtls_write(llmc_rconn *c, const char *p, size_t len, uint64_t deadline_ns,
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

llmc_status llmc__rtls_read(llmc_rconn *c, char *buf, size_t cap, size_t *got,
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
