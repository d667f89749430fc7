/* Helpers shared by the llmcache command's files. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llmcache%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llmcache%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see llmcache%s%s --help)\n", cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return LLMC_CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, const char *bad, int missing_arg)
{
    if (missing_arg)
        return cli_usage_error(cmd, "option '%s' needs a value", bad ? bad : "?");
    return cli_usage_error(cmd, "unknown option '%s'", bad ? bad : "?");
}

int cli_exit_for(llmc_status st)
{
    switch (st) {
    case LLMC_OK:
        return LLMC_CLI_EXIT_OK;
    case LLMC_MISS:
        return LLMC_CLI_EXIT_MISS;
    case LLMC_EINVAL:
    case LLMC_ENOTFOUND:
        return LLMC_CLI_EXIT_USAGE;
    case LLMC_EAUTH:
    case LLMC_ERATELIMIT:
    case LLMC_ECONTEXT:
    case LLMC_EBADREQUEST:
    case LLMC_EUPSTREAM:
    case LLMC_EPROVIDER:
    case LLMC_ESTREAM:
        return LLMC_CLI_EXIT_PROVIDER;
    default:
        return LLMC_CLI_EXIT_ERROR;
    }
}

char *cli_redact_url(const char *url)
{
    if (!url)
        return strdup("(null)");
    char *s = strdup(url);
    if (!s)
        return NULL;
    /* scheme://user:pass@host -> scheme://user:***@host. Only the
     * authority part (up to the first '/' after "://") is looked at. */
    char *auth = strstr(s, "://");
    if (!auth)
        return s;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    char *at = memrchr(auth, '@', alen);
    if (!at)
        return s;
    char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (!colon)
        return s;
    size_t head = (size_t)(colon + 1 - s);
    char *out = malloc(head + 3 + strlen(at) + 1);
    if (!out) {
        free(s);
        return NULL;
    }
    memcpy(out, s, head);
    memcpy(out + head, "***", 3);
    strcpy(out + head + 3, at);
    free(s);
    return out;
}

int cli_open_cache(const char *cmd, const char *url, llmc_cache **out)
{
    llmc_err err;
    llmc_err_clear(&err);
    llmc_buf def = LLMC_BUF_INIT;
    *out = NULL;
    if (!url || !*url) {
        /* $LLMCACHE_URL, else the embedded SQLite store under
         * $XDG_CACHE_HOME or ~/.cache (directories created here). */
        llmc_status st = llmc_default_cache_url(&def, &err);
        if (st != LLMC_OK) {
            cli_error(cmd, "no default cache: %s (give --cache URL or set LLMCACHE_URL)",
                      err.msg[0] ? err.msg : llmc_strerror(st));
            llmc_buf_free(&def);
            return LLMC_CLI_EXIT_ERROR;
        }
        url = def.data;
    }
    llmc_status st = llmc_cache_open(url, NULL, out, &err);
    if (st != LLMC_OK) {
        char *shown = cli_redact_url(url);
        cli_error(cmd, "cannot open cache %s: %s", shown ? shown : "",
                  err.msg[0] ? err.msg : llmc_strerror(st));
        free(shown);
        llmc_buf_free(&def);
        *out = NULL;
        /* A URL the library cannot parse is the user's input: usage. */
        return st == LLMC_EINVAL || st == LLMC_ENOTFOUND ? LLMC_CLI_EXIT_USAGE
                                                         : LLMC_CLI_EXIT_ERROR;
    }
    llmc_buf_free(&def);
    return LLMC_CLI_EXIT_OK;
}

int cli_read_file(const char *cmd, const char *path, llmc_buf *buf)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error(cmd, "cannot open %s: %s", path, strerror(errno));
        return LLMC_CLI_EXIT_ERROR;
    }
    char chunk[65536];
    size_t n;
    int rc = LLMC_CLI_EXIT_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (llmc_buf_append(buf, chunk, n) != LLMC_OK) {
            cli_error(cmd, "out of memory reading %s", path);
            rc = LLMC_CLI_EXIT_ERROR;
            break;
        }
    }
    if (rc == LLMC_CLI_EXIT_OK && ferror(f)) {
        cli_error(cmd, "cannot read %s: %s", strcmp(path, "-") == 0 ? "standard input" : path,
                  strerror(errno));
        rc = LLMC_CLI_EXIT_ERROR;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

int64_t cli_parse_seconds(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || v > (long long)(INT64_MAX / 1000))
        return -1;
    return (int64_t)v;
}

int cli_show_status(int verbose, int quiet)
{
    if (quiet)
        return 0;
    return verbose || isatty(STDERR_FILENO);
}
