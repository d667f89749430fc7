/* Cache URLs: the generic parser (core/url.c) over any text, then, for
 * the schemes of the built-in backends, llmc_cache_open and close: each
 * backend reads and validates its own part of the URL (hosts, database,
 * options). nonet.c makes every connection attempt fail at once, so
 * nothing is contacted. SQLite URLs are parsed only: opening one creates
 * its file. Secrets: the redacted URL parses, with *** for the password;
 * a password never shows in the handle's URL or an error message. */
#include "fuzz.h"

#include <string.h>

#include "internal.h"
#include "llmcache/llmcache.h"

static const char *const openable[] = {
    "local", "memory", "redis", "rediss", "unix", "redis-cluster", "rediss-cluster",
    "redis-sentinel", "rediss-sentinel", "memcached", NULL};

/* libmemcached copies its whole server list on every add (two 8 KiB
 * buffers a server), so a memcached URL of many hosts costs milliseconds
 * to open; later in a run the fuzzer favours them and the rate fell to
 * ~260 a second. Lists past 16 hosts are still parsed every time but
 * opened for one input in 32, picked by a hash of the bytes, so the
 * paths for long lists (the >100-server case included) stay covered. */
static int open_this_one(const char *scheme, const uint8_t *data, size_t size)
{
    if (strcmp(scheme, "memcached") != 0)
        return 1;
    size_t commas = 0;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) {
        commas += data[i] == ',';
        h = (h ^ data[i]) * 16777619u;
    }
    return commas < 16 || (h & 31) == 0;
}

static size_t count(const char *text, const char *pw)
{
    size_t n = 0;
    for (const char *p = text; p && (p = strstr(p, pw)) != NULL; p++)
        n++;
    return n;
}

/* The password may not show in `text` more often than in `ref`, the same
 * text made from the redacted URL (a password such as "secret" may be
 * part of fixed text, e.g. the option name entry_secret). */
static void no_secret(const char *pw, const char *where, const char *text, const char *ref)
{
    if (text)
        FUZZ_CHECK(count(text, pw) <= count(ref, pw), "password shows in %s: %s", where, text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* A TLS URL's open builds an OpenSSL context, which reads the
     * system's CA certificates (~100 ms, OpenSSL's work, not ours): none
     * here. tls_ca, tls_cert and tls_key in a URL are still read. */
    setenv("SSL_CERT_FILE", "/nonexistent/fuzz-url-ca.pem", 1);
    setenv("SSL_CERT_DIR", "/nonexistent/fuzz-url-ca", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = 0;
    llmc_url u;
    memset(&u, 0, sizeof u);
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc__url_parse(url, &u, &e);
    int open = 0;
    /* A password worth checking for: long enough not to show up by
     * chance, and absent from the redacted form of the URL itself. */
    char *pw = NULL, *redacted = NULL;
    if (st == LLMC_OK) {
        FUZZ_CHECK(u.scheme && u.redacted, "parsed URL without scheme or redacted form");
        /* The redacted form keeps the userinfo's user and shows the
         * password as *** (parsed again: the same user, password ***). */
        if (u.password && u.password[0]) {
            llmc_url r;
            memset(&r, 0, sizeof r);
            FUZZ_CHECK(llmc__url_parse(u.redacted, &r, &e) == LLMC_OK,
                       "the redacted form of a URL does not parse: %s", u.redacted);
            FUZZ_CHECK(r.password && strcmp(r.password, "***") == 0,
                       "the redacted URL shows a password: %s", u.redacted);
            llmc__url_free(&r);
        }
        if (u.password && strlen(u.password) >= 6 && !strstr(u.redacted, u.password)) {
            pw = strdup(u.password);
            redacted = strdup(u.redacted);
        }
        for (int i = 0; openable[i]; i++)
            if (strcmp(u.scheme, openable[i]) == 0)
                open = open_this_one(u.scheme, data, size);
    } else {
        FUZZ_CHECK(e.msg[0] != 0, "URL rejected without a message");
    }
    llmc__url_free(&u);
    if (open && size == strlen(url)) {
        llmc_cache *c = NULL;
        llmc_err_clear(&e);
        st = llmc_cache_open(url, NULL, &c, &e);
        if (st == LLMC_OK) {
            FUZZ_CHECK(c != NULL, "open OK without a handle");
            if (pw)
                no_secret(pw, "llmc_cache_url", llmc_cache_url(c), redacted);
            llmc_cache_close(c);
        } else {
            FUZZ_CHECK(c == NULL, "failed open left a handle");
            FUZZ_CHECK(e.msg[0] != 0, "open failed without a message");
            if (pw && redacted) {
                llmc_cache *rc = NULL;
                llmc_err re;
                llmc_err_clear(&re);
                if (llmc_cache_open(redacted, NULL, &rc, &re) == LLMC_OK)
                    llmc_cache_close(rc);
                no_secret(pw, "the open error", e.msg, re.msg);
            }
        }
    }
    free(pw);
    free(redacted);
    free(url);
    return 0;
}
