/* The llmcache command: declarations shared by its source files.
 *
 * main.c dispatches on the first argument to one function per command;
 * each takes (argc, argv) with argv[0] the command's own name ("complete",
 * "cache", ...) and returns the process exit status (LLMC_CLI_EXIT_*).
 * `serve` (cli/serve.c, the proxy) and `plugins` (cli/plugins.c) live in
 * their own files and are compiled in only when present; see
 * cli/meson.build. */
#ifndef LLMC_CLI_H
#define LLMC_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <llmcache/llmcache.h>

/* Exit statuses, documented in docs/cli.md and `llmcache --help`. */
enum {
    LLMC_CLI_EXIT_OK = 0,       /* success */
    LLMC_CLI_EXIT_ERROR = 1,    /* the operation failed (backend down, I/O, ...) */
    LLMC_CLI_EXIT_USAGE = 2,    /* bad command line, or an invalid request / URL */
    LLMC_CLI_EXIT_MISS = 3,     /* cache get: no such key; cache del: none existed */
    LLMC_CLI_EXIT_PROVIDER = 4  /* the provider failed or refused the call */
};

/* Commands. */
int llmc_cli_complete(int argc, char **argv);
int llmc_cli_embed(int argc, char **argv);
int llmc_cli_key(int argc, char **argv);
int llmc_cli_cache(int argc, char **argv);

/* `llmcache serve`: the OpenAI-compatible caching proxy (cli/serve.c,
 * built when libmicrohttpd is found; main.c calls it only when
 * LLMC_CLI_HAVE_SERVE is defined). Runs until SIGTERM / SIGINT, then
 * finishes in-flight requests and returns 0; 2 for bad arguments or a bad
 * config, 1 when the server could not start. */
int llmc_cli_serve(int argc, char **argv);

/* `llmcache plugins`: list / inspect plugins (cli/plugins.c). main.c
 * calls it only when LLMC_CLI_HAVE_PLUGINS is defined. */
int llmc_cli_plugins(int argc, char **argv);

/* `llmcache top`: a running proxy's dashboard figures, live in the
 * terminal (cli/top.c, built with libcurl; main.c calls it only when
 * LLMC_CLI_HAVE_TOP is defined). */
int llmc_cli_top(int argc, char **argv);
/* GET <url>/ui/data of a running proxy with an admin key (may be NULL).
 * The document, or NULL after printing an error naming the problem;
 * *exit_code is the exit status to use. */
struct json_object *cli_proxy_data(const char *cmd, const char *url, const char *key,
                                   int *exit_code);
/* The savings part of a /ui/data document as text. */
void cli_print_savings(FILE *f, struct json_object *data);

/* ---- helpers (cli/util.c) ---- */

/* Print "llmcache <cmd>: <message>" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) LLMC_PRINTF(2, 3);
/* A usage error: the message, then "(see llmcache <cmd> --help)".
 * Returns LLMC_CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) LLMC_PRINTF(2, 3);
/* Report an unknown option / missing argument found by getopt_long and
 * return LLMC_CLI_EXIT_USAGE. `bad` is argv[optind - 1]. */
int cli_bad_option(const char *cmd, const char *bad, int missing_arg);

/* Exit status for a library status (provider errors 4, invalid input 2,
 * miss 3, everything else 1). */
int cli_exit_for(llmc_status st);

/* Open a cache: `url` as given, or (NULL) $LLMCACHE_URL, else the embedded
 * SQLite store (llmc_default_cache_url; created on first use). On failure
 * prints an error naming the problem and returns the exit status; 0 on
 * success. */
int cli_open_cache(const char *cmd, const char *url, llmc_cache **out);

/* Copy of a URL with the password (user:PASS@) replaced by "***"; for
 * messages. Caller frees. */
char *cli_redact_url(const char *url);

/* Read a whole file ("-" = stdin) into buf. 0 on success; on failure
 * prints an error and returns the exit status. */
int cli_read_file(const char *cmd, const char *path, llmc_buf *buf);

/* `llmcache key` with two requests: print to `out` the members of key
 * material A[0..la) and B[0..lb) that differ, one per line with both
 * values ("params.temperature", "model", "params.messages[1].content"),
 * or that there is none. Returns 1 when the materials differ, else 0. */
int cli_key_diff(FILE *out, const char *ma, size_t la, const char *mb, size_t lb);

/* Parse a non-negative number of seconds ("30", "0"); -1 on error. */
int64_t cli_parse_seconds(const char *s);

/* Should status lines go to stderr? verbose (-v) forces them on, quiet
 * (-q) off; otherwise only when stderr is a terminal. */
int cli_show_status(int verbose, int quiet);

#endif
