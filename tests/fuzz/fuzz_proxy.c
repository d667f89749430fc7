/* The proxy's request handling (cli/proxy_http.c): HTTP framing by
 * libmicrohttpd plus the proxy's routes, auth, controls and bodies. The
 * server runs in-process with a local cache and the mock provider; each
 * input is the raw bytes a client sends on one connection, handed to the
 * server through one end of a socketpair (no network; nonet.c refuses
 * any connection a request could make upstream). After the input the
 * harness half-closes the pair and reads the answer to the end.
 *
 * Oracles: every answer is HTTP; the provider's secret key never shows
 * in one; the server keeps taking connections (and survives).
 *
 * The provider key is new in every run (a corpus cannot carry it), and
 * the harness looks for it byte by byte, not with memmem, whose needle
 * libFuzzer would add to its dictionary. A client may still send the
 * key's text (the proxy compares it somewhere, and libFuzzer learns it);
 * the proxy may rightly echo what a client sent, even to a later
 * connection (a model name in /metrics), so from then on the check is
 * off for the rest of the run. */
#include "fuzz.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/proxy.h"
#include "llmcache/llmcache.h"

static char provider_secret[40];
static int secret_sent; /* some input so far carried the key's text */

static int contains(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m && i + m <= n; i++) {
        size_t j = 0;
        while (j < m && hay[i + j] == needle[j])
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* libmicrohttpd does not always notice a client's half-close while it
 * waits for the rest of a request (an Expect: 100-continue, a short
 * body): after everything is sent, this long without a byte back means
 * it is waiting, and the harness closes the connection instead of
 * sitting out the idle timeout. Answers normally take well under 1 ms;
 * one cut short on a loaded machine only loses its checks. */
#define QUIET_MS 20

static proxy_config cfg;
static llmc_cache *cache;
static llmc_client *client;
static proxy_server *srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    setenv("TZ", "UTC", 1); /* the Date header: no zone file read per answer */
    unsigned char rnd[12] = {0};
    FILE *ur = fopen("/dev/urandom", "rb");
    if (!ur || fread(rnd, 1, sizeof rnd, ur) != sizeof rnd) {
        fprintf(stderr, "/dev/urandom unreadable\n");
        abort();
    }
    fclose(ur);
    int n = snprintf(provider_secret, sizeof provider_secret, "sk-fuzz-");
    for (size_t i = 0; i < sizeof rnd; i++)
        n += snprintf(provider_secret + n, sizeof provider_secret - (size_t)n, "%02x", rnd[i]);
    setenv("OPENAI_API_KEY", provider_secret, 1);
    llmc_err e;
    if (llmc_cache_open("local://", NULL, &cache, &e) != LLMC_OK) {
        fprintf(stderr, "local cache: %s\n", e.msg);
        abort();
    }
    llmc_options *co = llmc_options_new();
    llmc_options_set(co, "provider", "mock");
    llmc_options_set(co, "max_retries", "0");
    llmc_options_set(co, "timeout_ms", "2000");
    if (llmc_client_new(cache, co, &client, &e) != LLMC_OK) {
        fprintf(stderr, "client: %s\n", e.msg);
        abort();
    }
    llmc_options_free(co);
    proxy_config_init(&cfg);
    cfg.port = 0;
    cfg.threads = 1;
    cfg.workers = 2;
    cfg.idle_timeout_s = 10;
    cfg.max_body = 65536;
    cfg.coalesce_timeout_ms = 2000;
    cfg.shutdown_timeout_ms = 2000;
    char err[256];
    if (proxy_config_add_key(&cfg, "sk-fuzz-admin", NULL, err, sizeof err) != 0 ||
        proxy_config_add_key(&cfg, "sk-fuzz-team-a", "team-a", err, sizeof err) != 0) {
        fprintf(stderr, "proxy key: %s\n", err);
        abort();
    }
    srv = proxy_server_start(&cfg, cache, client, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "proxy: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Nothing at all: libmicrohttpd keeps a connection that never sent a
     * byte until its idle timeout (the harness would only wait). */
    if (size == 0 || size > 65536)
        return 0;
    static unsigned long inputs;
    if (++inputs % 1000 == 0)
        llmc_cache_flush_all(cache); /* keep the cache small over long runs */
    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
               strerror(errno));
    /* The request is in the socket (and the write side closed) before
     * the server sees the connection, as far as the socket buffer holds
     * it: one arrival, the same every run. */
    size_t off = 0;
    int wr_open = 1;
    while (off < size) {
        ssize_t w = send(sv[0], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (proxy_server_add_connection(srv, sv[1]) != 0) {
        close(sv[0]);
        FUZZ_CHECK(0, "the server refused a connection");
    }
    /* The end of input after the server has the connection: an EOF that
     * came before it was watched may go unseen (edge-triggered epoll). */
    if (off == size) {
        shutdown(sv[0], SHUT_WR);
        wr_open = 0;
    }
    /* Write the rest; the server may answer and close early. */
    llmc_buf answer = LLMC_BUF_INIT;
    for (;;) {
        struct pollfd pf = {sv[0], POLLIN | (wr_open && off < size ? POLLOUT : 0), 0};
        int pr = poll(&pf, 1, wr_open ? 30000 : QUIET_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(pr >= 0, "poll: %s", strerror(errno));
        if (pr == 0 && !wr_open)
            break; /* waiting for bytes that will not come: hang up */
        FUZZ_CHECK(pr > 0, "the server takes no more bytes for 30 s (%zu of %zu sent)", off,
                   size);
        if (pf.revents & POLLOUT) {
            ssize_t w = send(sv[0], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                wr_open = 0;
        }
        if (wr_open && off == size) {
            shutdown(sv[0], SHUT_WR);
            wr_open = 0;
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t r = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) {
                llmc_buf_append(&answer, buf, (size_t)r);
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                break;
            }
        }
        if (!wr_open && off < size) {
            /* The server stopped reading: it has answered or will close. */
            shutdown(sv[0], SHUT_WR);
        }
    }
    close(sv[0]);
    if (answer.len)
        FUZZ_CHECK(answer.len >= 9 && memcmp(answer.data, "HTTP/1.", 7) == 0,
                   "an answer that is not HTTP: %.40s", answer.data);
    if (!secret_sent && contains((const char *)data, size, provider_secret))
        secret_sent = 1;
    if (answer.len && !secret_sent)
        FUZZ_CHECK(!contains(answer.data, answer.len, provider_secret),
                   "the provider key shows in an answer");
    llmc_buf_free(&answer);
    return 0;
}
