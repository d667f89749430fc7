/* `llmcache plugins`: which plugins are available, what each provides and
 * where every registered component came from. Only the public plugin API
 * (llmcache/plugin.h) is used. */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char plugins_help[] =
    "usage: llmcache plugins [list] [-a|--all]\n"
    "       llmcache plugins check PLUGIN...\n"
    "       llmcache plugins path\n"
    "\n"
    "Plugins are shared objects that add cache backends (URL schemes), providers,\n"
    "key strategies and serializers (docs/plugins.md). They are searched in the\n"
    "directories of $LLMCACHE_PLUGIN_PATH (colon-separated), then in the installed\n"
    "plugin directory, and loaded when a name is not known otherwise.\n"
    "\n"
    "  list     (default) every *.so file in the plugin path: the plugin's name,\n"
    "           version and components, or why it cannot be loaded.\n"
    "           -a, --all: also list the built-in components.\n"
    "  check    load each PLUGIN (a file path, or a NAME found as llmc-NAME.so in\n"
    "           the plugin path) as the library would, and list what it registers;\n"
    "           exit status 1 if one cannot be loaded.\n"
    "  path     print the plugin directories in search order, one per line.\n";

static void print_tables(const llmc_plugin_descriptor *d)
{
    for (size_t i = 0; d->backends && d->backends[i]; i++) {
        const llmc_backend_ops *b = d->backends[i];
        printf("  backend %s", b->hdr.name);
        /* Listed even when the registry would refuse the table: read
         * nothing past its struct_size. */
        if (LLMC_HAS_MEMBER(llmc_backend_ops, b, schemes) && b->schemes) {
            printf(" (URL schemes:");
            for (const char *const *s = b->schemes; *s; s++)
                printf(" %s://", *s);
            printf(")");
        } else {
            printf(" (URL scheme: %s://)", b->hdr.name);
        }
        printf("%s%s\n", b->hdr.description ? ": " : "",
               b->hdr.description ? b->hdr.description : "");
    }
    for (size_t i = 0; d->providers && d->providers[i]; i++)
        printf("  provider %s%s%s\n", d->providers[i]->hdr.name,
               d->providers[i]->hdr.description ? ": " : "",
               d->providers[i]->hdr.description ? d->providers[i]->hdr.description : "");
    for (size_t i = 0; d->key_strategies && d->key_strategies[i]; i++)
        printf("  key strategy %s%s%s\n", d->key_strategies[i]->hdr.name,
               d->key_strategies[i]->hdr.description ? ": " : "",
               d->key_strategies[i]->hdr.description ? d->key_strategies[i]->hdr.description
                                                     : "");
    for (size_t i = 0; d->serializers && d->serializers[i]; i++) {
        const llmc_serializer_ops *sz = d->serializers[i];
        printf("  serializer %s (id %u)%s%s\n", sz->hdr.name,
               LLMC_HAS_MEMBER(llmc_serializer_ops, sz, id) ? (unsigned)sz->id : 0u,
               sz->hdr.description ? ": " : "", sz->hdr.description ? sz->hdr.description : "");
    }
    /* Indexes and verifiers: ABI 1.1 members, read only when the
     * descriptor has them. */
    if (d->struct_size >= offsetof(llmc_plugin_descriptor, verifiers) + sizeof(void *)) {
        for (size_t i = 0; d->indexes && d->indexes[i]; i++)
            printf("  index %s%s%s\n", d->indexes[i]->hdr.name,
                   d->indexes[i]->hdr.description ? ": " : "",
                   d->indexes[i]->hdr.description ? d->indexes[i]->hdr.description : "");
        for (size_t i = 0; d->verifiers && d->verifiers[i]; i++)
            printf("  verifier %s%s%s\n", d->verifiers[i]->hdr.name,
                   d->verifiers[i]->hdr.description ? ": " : "",
                   d->verifiers[i]->hdr.description ? d->verifiers[i]->hdr.description : "");
    }
}

typedef struct list_state {
    int files;
    int broken;
} list_state;

static int list_one(void *ud, const llmc_plugin_info *in)
{
    list_state *ls = ud;
    ls->files++;
    if (in->status != LLMC_OK) {
        ls->broken++;
        printf("%s\n  error (%s): %s\n", in->path, llmc_status_name(in->status), in->error);
        return 0;
    }
    printf("%s\n  plugin %s %s (ABI %u.%u)%s\n", in->path, in->name, in->version,
           in->abi_major, in->abi_minor, in->loaded ? ", loaded" : "");
    print_tables(in->descriptor);
    return 0;
}

static int builtin_one(void *ud, llmc_kind kind, const llmc_component *t, const char *origin)
{
    (void)ud;
    /* Plugin tables are listed with their file; origins of plugins are
     * absolute paths. */
    if (origin && origin[0] == '/')
        return 0;
    printf("  %s %s (%s)%s%s\n", kind == LLMC_KIND_KEY_STRATEGY ? "key strategy"
                                                               : llmc_kind_name(kind),
           t->name, origin ? origin : "application", t->description ? ": " : "",
           t->description ? t->description : "");
    return 0;
}

static int cmd_list(int all)
{
    char *sp = llmc_plugin_search_path();
    printf("plugin path: %s\n", sp ? sp : "");
    llmc_free(sp);
    list_state ls = {0, 0};
    llmc_plugin_scan(list_one, &ls);
    if (ls.files == 0)
        printf("(no plugins found)\n");
    if (all) {
        printf("built-in components:\n");
        for (int k = 0; k < LLMC_KIND_COUNT_; k++)
            llmc_registry_foreach((llmc_kind)k, builtin_one, NULL);
    }
    return fflush(stdout) == 0 ? LLMC_CLI_EXIT_OK : LLMC_CLI_EXIT_ERROR;
}

typedef struct find_state {
    const char *want_path; /* real path, or NULL */
    const char *want_name; /* plugin or file name, or NULL */
    int found;
} find_state;

static int show_loaded(void *ud, const llmc_plugin_info *in)
{
    find_state *fs = ud;
    int match = 0;
    if (fs->want_path)
        match = strcmp(in->path, fs->want_path) == 0;
    if (!match && fs->want_name) {
        const char *base = strrchr(in->path, '/');
        base = base ? base + 1 : in->path;
        char conv[PATH_MAX];
        snprintf(conv, sizeof conv, "llmc-%s.so", fs->want_name);
        match = strcmp(in->name, fs->want_name) == 0 || strcmp(base, conv) == 0;
    }
    if (!match)
        return 0;
    fs->found = 1;
    printf("%s\n  plugin %s %s (ABI %u.%u), loaded\n", in->path, in->name, in->version,
           in->abi_major, in->abi_minor);
    print_tables(in->descriptor);
    return 1;
}

static int cmd_check(int n, char **names)
{
    int rc = LLMC_CLI_EXIT_OK;
    for (int i = 0; i < n; i++) {
        llmc_err err;
        llmc_err_clear(&err);
        llmc_status st = llmc_plugin_load(names[i], &err);
        if (st != LLMC_OK) {
            cli_error("plugins", "%s", err.msg);
            rc = LLMC_CLI_EXIT_ERROR;
            continue;
        }
        char real[PATH_MAX];
        find_state fs = {NULL, NULL, 0};
        if (strchr(names[i], '/')) {
            if (realpath(names[i], real))
                fs.want_path = real;
        } else {
            fs.want_name = names[i];
        }
        llmc_plugin_foreach(show_loaded, &fs);
        if (!fs.found)
            printf("%s: loaded\n", names[i]);
    }
    if (fflush(stdout) != 0)
        rc = LLMC_CLI_EXIT_ERROR;
    return rc;
}

static int cmd_path(void)
{
    char *sp = llmc_plugin_search_path();
    if (!sp) {
        cli_error("plugins", "out of memory");
        return LLMC_CLI_EXIT_ERROR;
    }
    for (char *s = sp, *e; *s; s = e + 1) {
        e = strchr(s, ':');
        if (!e) {
            printf("%s\n", s);
            break;
        }
        printf("%.*s\n", (int)(e - s), s);
    }
    llmc_free(sp);
    return fflush(stdout) == 0 ? LLMC_CLI_EXIT_OK : LLMC_CLI_EXIT_ERROR;
}

int llmc_cli_plugins(int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int all = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+ah", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = 1;
            break;
        case 'h':
            fputs(plugins_help, stdout);
            return LLMC_CLI_EXIT_OK;
        default:
            return cli_bad_option("plugins", argv[optind - 1], c == ':');
        }
    }
    llmc_status st = llmc_init();
    if (st != LLMC_OK) {
        cli_error("plugins", "initialisation failed: %s", llmc_strerror(st));
        return LLMC_CLI_EXIT_ERROR;
    }
    const char *sub = optind < argc ? argv[optind++] : "list";
    if (strcmp(sub, "list") == 0) {
        /* options may also follow the subcommand */
        while ((c = getopt_long(argc, argv, "+ah", opts, NULL)) != -1) {
            if (c == 'a')
                all = 1;
            else if (c == 'h') {
                fputs(plugins_help, stdout);
                return LLMC_CLI_EXIT_OK;
            } else
                return cli_bad_option("plugins", argv[optind - 1], c == ':');
        }
        if (optind < argc)
            return cli_usage_error("plugins", "list: unexpected argument '%s'", argv[optind]);
        return cmd_list(all);
    }
    if (strcmp(sub, "check") == 0) {
        if (optind >= argc)
            return cli_usage_error("plugins", "check: name at least one plugin file or name");
        return cmd_check(argc - optind, argv + optind);
    }
    if (strcmp(sub, "path") == 0) {
        if (optind < argc)
            return cli_usage_error("plugins", "path: unexpected argument '%s'", argv[optind]);
        return cmd_path();
    }
    return cli_usage_error("plugins", "unknown subcommand '%s' (list, check, path)", sub);
}
