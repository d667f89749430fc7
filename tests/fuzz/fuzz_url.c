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

/* Opening these costs ~100 ms (an OpenSSL context; a cluster or sentinel
 * handle's first map refresh and its pause). Under libFuzzer only one
 * input in 32 of them is opened, picked by its bytes (so a finding
 * reproduces); the replay test opens every one. */
static int slow_scheme(const char *scheme)
{
    return strncmp(scheme, "rediss", 6) == 0 || strstr(scheme, "-cluster") ||
           strstr(scheme, "-sentinel");
}

static int sampled(const uint8_t *data, size_t size)
{
#ifdef LLMC_FUZZING
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return h % 32 == 0;
#else
    (void)data;
    (void)size;
    return 1;
#endif
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
                open = !slow_scheme(u.scheme) || sampled(data, size);
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
