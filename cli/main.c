/* llmcache: the command. Dispatches on the first argument. */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char main_help[] =
    "usage: llmcache <command> [options]\n"
    "\n"
    "A cache for LLM API responses. Commands:\n"
    "  complete   send a chat completion through the cache, print the answer\n"
    "  embed      compute embeddings through the cache\n"
    "  key        print the cache key of a request (--explain: and why)\n"
    "  cache      get / set / del / flush / keys / ttl / stats / ping / copy\n"
    "  serve      run the OpenAI-compatible caching proxy\n"
    "  top        a running proxy's hit ratio, savings and errors, live\n"
    "  plugins    list and inspect plugins\n"
    "  help [command]   help on a command (same as llmcache <command> --help)\n"
    "\n"
    "Options:\n"
    "  -h, --help       this help\n"
    "  -V, --version    print the version, built-in backends and providers\n"
    "\n"
    "The cache is --cache URL, else $LLMCACHE_URL, else the embedded SQLite store\n"
    "~/.cache/llmcache/cache.db (created on first use). URLs: local://,\n"
    "sqlite:///path.db, redis://[user:pass@]host:6379/0, rediss://..., unix:///sock,\n"
    "memcached://h1:11211,h2:11211; options as ?namespace=x&ttl=3600.\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage or invalid input, 3 cache miss (cache get,\n"
    "cache del), 4 provider error. Errors go to stderr and name the problem.\n"
    "\n"
    "Example (no network, no key; the second call is a HIT):\n"
    "  llmcache complete -v --model gpt-4o-mini --user 'Say hi' --mock-response 'Hi!' --text\n";

static void print_names(const char *label, llmc_kind kind)
{
    char *names = llmc_registry_names(kind);
    printf("%s: %s\n", label, names && *names ? names : "(none)");
    llmc_free(names);
}

static int version(void)
{
    llmc_init();
    printf("llmcache %s (library %s)\n", LLMC_VERSION_STRING, llmc_version());
    print_names("backends", LLMC_KIND_BACKEND);
    print_names("providers", LLMC_KIND_PROVIDER);
    print_names("serializers", LLMC_KIND_SERIALIZER);
    print_names("key strategies", LLMC_KIND_KEY_STRATEGY);
    print_names("vector indexes", LLMC_KIND_INDEX);
#ifdef LLMC_CLI_HAVE_SERVE
    printf("serve: yes\n");
#else
    printf("serve: not built\n");
#endif
    return fflush(stdout) == 0 ? LLMC_CLI_EXIT_OK : LLMC_CLI_EXIT_ERROR;
}

#ifndef LLMC_CLI_HAVE_SERVE
static int serve_missing(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("serve", "not built (the proxy needs libmicrohttpd at build time)");
    return LLMC_CLI_EXIT_ERROR;
}
#endif

#ifndef LLMC_CLI_HAVE_TOP
static int top_missing(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("top", "not built (it needs libcurl at build time)");
    return LLMC_CLI_EXIT_ERROR;
}
#endif

#ifndef LLMC_CLI_HAVE_PLUGINS
static int plugins_missing(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("plugins", "not built into this llmcache");
    return LLMC_CLI_EXIT_ERROR;
}
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"complete", llmc_cli_complete},
    {"embed", llmc_cli_embed},
    {"key", llmc_cli_key},
    {"cache", llmc_cli_cache},
#ifdef LLMC_CLI_HAVE_SERVE
    {"serve", llmc_cli_serve},
#else
    {"serve", serve_missing},
#endif
#ifdef LLMC_CLI_HAVE_TOP
    {"top", llmc_cli_top},
#else
    {"top", top_missing},
#endif
#ifdef LLMC_CLI_HAVE_PLUGINS
    {"plugins", llmc_cli_plugins},
#else
    {"plugins", plugins_missing},
#endif
};

static int run(const char *name, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(argc, argv);
    return cli_usage_error(NULL, "unknown command '%s'", name);
}

int main(int argc, char **argv)
{
    /* A closed pipe (llmcache complete --stream | head -1) is an ordinary
     * write error, reported once, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(main_help, stderr);
        return LLMC_CLI_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        fputs(main_help, stdout);
        return LLMC_CLI_EXIT_OK;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0 || strcmp(a, "version") == 0)
        return version();
    if (strcmp(a, "help") == 0) {
        if (argc < 3) {
            fputs(main_help, stdout);
            return LLMC_CLI_EXIT_OK;
        }
        /* "help cache copy" -> "cache copy --help". */
        char *hargv[4] = {argv[2], NULL, NULL, NULL};
        int hargc = 1;
        if (argc > 3)
            hargv[hargc++] = argv[3];
        hargv[hargc++] = (char *)"--help";
        return run(argv[2], hargc, hargv);
    }
    if (a[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s' (options go after the command)", a);
    return run(a, argc - 1, argv + 1);
}
