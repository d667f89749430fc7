/* llmcache cache ...: raw operations on a cache, and copy between caches. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

/* Options each subcommand accepts (a mask, so a misplaced option is a
 * usage error rather than silently ignored). */
enum {
    O_CACHE = 1 << 0,
    O_NS = 1 << 1,
    O_TTL = 1 << 2,
    O_ALL = 1 << 3,
    O_RAW = 1 << 4,
    O_ENTRY = 1 << 5,
    O_JSON = 1 << 6,
    O_PROXY = 1 << 7,
    O_REPAIR = 1 << 8
};

typedef struct cache_opts {
    const char *cmd; /* "cache get" ... */
    const char *cache_url, *ns;
    const char *proxy; /* stats --proxy URL */
    int64_t ttl;     /* seconds, -1 = default */
    int all, raw, entry, json, repair, verbose, quiet, help;
    char **args;     /* positional arguments */
    int nargs;
} cache_opts;

static const struct option cache_longopts[] = {
    {"cache", required_argument, NULL, 'c'},
    {"namespace", required_argument, NULL, 'n'},
    {"ttl", required_argument, NULL, 'T'},
    {"all", no_argument, NULL, 'A'},
    {"raw", no_argument, NULL, 'R'},
    {"entry", no_argument, NULL, 'E'},
    {"json", no_argument, NULL, 'J'},
    {"proxy", required_argument, NULL, 'P'},
    {"repair", no_argument, NULL, 'X'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char cache_help[] =
    "usage: llmcache cache <subcommand> [options]\n"
    "\n"
    "Raw operations on cache keys (keys as stored: \"<namespace>:<sha256>\" for\n"
    "completions; see llmcache key). Subcommands:\n"
    "  get KEY [--raw] [--entry]   print the value stored at KEY (exit 3 if absent)\n"
    "  set KEY VALUE|- [--ttl S]   store VALUE (- = standard input) at KEY\n"
    "  del KEY...                  delete keys, print how many existed (exit 3 if none)\n"
    "  flush --namespace NS | --all  delete a namespace's keys, or everything\n"
    "  keys [PREFIX] [--namespace NS]  list keys (backends that can enumerate)\n"
    "  ttl KEY                     remaining lifetime in seconds (-1: never expires)\n"
    "  stats [--json] [--proxy URL]  backend, settings and backend counters (and what\n"
    "                              a running proxy's hits saved)\n"
    "  ping                        check that the backend answers\n"
    "  check [--repair]            check the backend's storage for damage (sqlite)\n"
    "  copy FROM_URL TO_URL [--namespace NS]\n"
    "                              copy entries keeping their remaining TTLs\n"
    "\n"
    "Every subcommand takes -c, --cache URL (default: $LLMCACHE_URL, else the\n"
    "embedded SQLite store), -v/--verbose, -q/--quiet and -h/--help.\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage, 3 miss (get: no such key; del: none existed).\n";

static const struct {
    const char *name;
    unsigned allowed;
    int min_args, max_args; /* positional; max -1 = any */
    const char *usage;
    const char *help;
} subs[] = {
    {"get", O_CACHE | O_RAW | O_ENTRY, 1, 1, "get KEY [--raw] [--entry] [--cache URL]",
     "Print the value stored at KEY followed by a newline (--raw: exactly the stored\n"
     "bytes). With --entry the value is decoded as a stored response (envelope\n"
     "verified) and its body printed; -v adds the envelope's fields on stderr.\n"
     "Exit 3 when the key is absent or expired.\n"},
    {"set", O_CACHE | O_TTL, 2, 2, "set KEY VALUE|- [--ttl SECONDS] [--cache URL]",
     "Store VALUE (\"-\": standard input) at KEY. --ttl 0 stores without expiry;\n"
     "without --ttl the cache's default TTL applies (URL option ttl).\n"},
    {"del", O_CACHE, 1, -1, "del KEY... [--cache URL]",
     "Delete keys and print how many existed. Exit 3 when none did.\n"},
    {"flush", O_CACHE | O_NS | O_ALL, 0, 0, "flush (--namespace NS | --all) [--cache URL]",
     "Delete every key of namespace NS (keys \"NS:...\"; without --namespace the cache\n"
     "URL's namespace option), or with --all everything the backend holds.\n"},
    {"keys", O_CACHE | O_NS, 0, 1, "keys [PREFIX] [--namespace NS] [--cache URL]",
     "List the keys starting with PREFIX (or \"NS:\"), one per line. Not available on\n"
     "memcached, which cannot enumerate keys.\n"},
    {"ttl", O_CACHE, 1, 1, "ttl KEY [--cache URL]",
     "Print the remaining lifetime of KEY in whole seconds (rounded up), -1 when it\n"
     "never expires. Exit 3 when the key is absent.\n"},
    {"stats", O_CACHE | O_JSON | O_PROXY, 0, 0, "stats [--json] [--cache URL] [--proxy URL]",
     "Print the backend, its settings and capabilities, and its own counters\n"
     "(entries, bytes, ... as the backend reports them). With --proxy URL, also what\n"
     "the hits of that running proxy saved: dollars, tokens and upstream time, by\n"
     "model and tenant (read from its GET /ui/data with the admin key in\n"
     "$LLMCACHE_PROXY_KEY).\n"},
    {"ping", O_CACHE, 0, 0, "ping [--cache URL]",
     "Check that the backend answers; prints PONG and the round trip time.\n"},
    {"check", O_CACHE | O_REPAIR, 0, 0, "check [--repair] [--cache URL]",
     "Check the backend's own storage for damage (SQLite: PRAGMA integrity_check)\n"
     "and print the result. Damaged entries read as misses; --repair rebuilds the\n"
     "file from every entry that can still be read (expired ones are left out) and\n"
     "puts it in place of the damaged one: stop every other process using the file\n"
     "first. Exit 0 when healthy or repaired, 1 when damaged (or on error).\n"
     "Backends on a server (redis, memcached) have no such check.\n"},
    {"copy", O_NS, 2, 2, "copy FROM_URL TO_URL [--namespace NS]",
     "Copy every entry (or those of namespace NS) from one cache to another as\n"
     "stored, keeping each entry's remaining TTL; expired entries are skipped.\n"
     "Shows a progress bar when stderr is a terminal and prints a summary\n"
     "(copied, skipped-expired, failed). The source must be able to list its keys\n"
     "(local, sqlite, redis; not memcached). Exit 1 if any entry failed.\n"
     "Example: llmcache cache copy sqlite://$HOME/.cache/llmcache/cache.db redis://prod:6379/0\n"},
};

static int parse_cache_opts(int argc, char **argv, unsigned allowed, cache_opts *o)
{
    optind = 0;
    opterr = 0;
    int ch, li = -1;
    while ((ch = getopt_long(argc, argv, ":c:n:vqh", cache_longopts, &li)) != -1) {
        unsigned need = 0;
        int this_li = li;
        li = -1;
        switch (ch) {
        case 'c': need = O_CACHE; o->cache_url = optarg; break;
        case 'n': {
            llmc_err e;
            need = O_NS;
            o->ns = optarg;
            if (llmc_namespace_check(optarg, "--namespace", &e) != LLMC_OK)
                return cli_usage_error(o->cmd, "%s", e.msg);
            break;
        }
        case 'T':
            need = O_TTL;
            if ((o->ttl = cli_parse_seconds(optarg)) < 0)
                return cli_usage_error(o->cmd,
                                       "--ttl '%s': expected a number of seconds >= 0", optarg);
            break;
        case 'A': need = O_ALL; o->all = 1; break;
        case 'R': need = O_RAW; o->raw = 1; break;
        case 'E': need = O_ENTRY; o->entry = 1; break;
        case 'J': need = O_JSON; o->json = 1; break;
        case 'P': need = O_PROXY; o->proxy = optarg; break;
        case 'X': need = O_REPAIR; o->repair = 1; break;
        case 'v': o->verbose = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': o->help = 1; break;
        case ':': return cli_bad_option(o->cmd, argv[optind - 1], 1);
        default: return cli_bad_option(o->cmd, argv[optind - 1], 0);
        }
        if (need && !(allowed & need)) {
            if (this_li >= 0)
                return cli_usage_error(o->cmd, "option '--%s' does not apply here",
                                       cache_longopts[this_li].name);
            return cli_usage_error(o->cmd, "option '-%c' does not apply here", ch);
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return -1;
}

/* ---- get / set / del / flush / keys / ttl / stats / ping ---- */

static int fail_op(const cache_opts *o, llmc_cache *c, llmc_status st, const char *what)
{
    const char *m = llmc_cache_errmsg(c);
    cli_error(o->cmd, "%s: %s", what, m && *m ? m : llmc_strerror(st));
    return cli_exit_for(st) == LLMC_CLI_EXIT_MISS ? LLMC_CLI_EXIT_ERROR : cli_exit_for(st);
}

static int do_get(const cache_opts *o, llmc_cache *c)
{
    const char *key = o->args[0];
    if (o->entry) {
        llmc_lookup l = LLMC_LOOKUP_INIT;
        /* An entry past its freshness but inside its stale window is
         * still stored and still answers (stale-if-error): shown, and
         * said to be stale. */
        llmc_status st = llmc_cache_get_entry(c, key, strlen(key), -1, LLMC_ENTRY_STALE, &l);
        if (st == LLMC_MISS) {
            cli_error(o->cmd, "no valid entry at key '%s' (absent, expired or not an entry)",
                      key);
            llmc_lookup_free(&l);
            return LLMC_CLI_EXIT_MISS;
        }
        if (st != LLMC_OK) {
            llmc_lookup_free(&l);
            return fail_op(o, c, st, key);
        }
        fwrite(l.entry.body, 1, l.entry.body_len, stdout);
        if (!o->raw)
            fputc('\n', stdout);
        if (o->verbose && !o->quiet) {
            const char *call = llmc_call_type_name(l.entry.call);
            fprintf(stderr,
                    "llmcache: entry version=%u serializer=%u call=%s age=%llds expires=%s",
                    l.entry.version, l.entry.serializer_id, call ? call : "?",
                    (long long)(l.age_ms / 1000), l.entry.expires_ms ? "" : "never");
            if (l.stale_ms > 0)
                fprintf(stderr, "%llds ago (stale)", (long long)(l.stale_ms / 1000));
            else if (l.entry.expires_ms)
                fprintf(stderr, "in %llds",
                        (long long)((l.entry.expires_ms - llmc_now_ms() + 999) / 1000));
            if (l.entry.stale_until_ms)
                fprintf(stderr, " stale_until=in %llds",
                        (long long)((l.entry.stale_until_ms - llmc_now_ms() + 999) / 1000));
            if (l.entry.upstream_ms)
                fprintf(stderr, " upstream=%lldms", (long long)l.entry.upstream_ms);
            fprintf(stderr, " mac=%s\n", l.entry.mac_present ? "yes" : "no");
        }
        llmc_lookup_free(&l);
        return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
    }
    llmc_buf v = LLMC_BUF_INIT;
    llmc_status st = llmc_cache_get(c, key, strlen(key), &v);
    int rc = 0;
    if (st == LLMC_MISS) {
        if (!o->quiet)
            cli_error(o->cmd, "no value at key '%s'", key);
        rc = LLMC_CLI_EXIT_MISS;
    } else if (st != LLMC_OK) {
        rc = fail_op(o, c, st, key);
    } else {
        fwrite(v.data, 1, v.len, stdout);
        if (!o->raw)
            fputc('\n', stdout);
        rc = fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
    }
    llmc_buf_free(&v);
    return rc;
}

static int do_set(const cache_opts *o, llmc_cache *c)
{
    const char *key = o->args[0];
    llmc_buf v = LLMC_BUF_INIT;
    if (strcmp(o->args[1], "-") == 0) {
        int rc = cli_read_file(o->cmd, "-", &v);
        if (rc) {
            llmc_buf_free(&v);
            return rc;
        }
    } else if (llmc_buf_puts(&v, o->args[1]) != LLMC_OK) {
        return LLMC_CLI_EXIT_ERROR;
    }
    int64_t ttl_ms = o->ttl < 0 ? LLMC_TTL_DEFAULT : o->ttl == 0 ? LLMC_TTL_NEVER : o->ttl * 1000;
    llmc_status st = llmc_cache_set(c, key, strlen(key), v.data ? v.data : "", v.len, ttl_ms);
    int rc = 0;
    if (st != LLMC_OK)
        rc = fail_op(o, c, st, key);
    else if (o->verbose && !o->quiet)
        fprintf(stderr, "llmcache: stored %zu bytes at '%s'\n", v.len, key);
    llmc_buf_free(&v);
    return rc;
}

static int do_del(const cache_opts *o, llmc_cache *c)
{
    uint64_t n = 0;
    for (int i = 0; i < o->nargs; i++) {
        llmc_status st = llmc_cache_del(c, o->args[i], strlen(o->args[i]));
        if (st == LLMC_OK)
            n++;
        else if (st != LLMC_MISS)
            return fail_op(o, c, st, o->args[i]);
    }
    printf("%llu\n", (unsigned long long)n);
    if (fflush(stdout) != 0)
        return LLMC_CLI_EXIT_ERROR;
    return n ? 0 : LLMC_CLI_EXIT_MISS;
}

static int do_flush(const cache_opts *o, llmc_cache *c)
{
    if (o->all && o->ns)
        return cli_usage_error(o->cmd, "give --namespace NS or --all, not both");
    if (o->all) {
        llmc_status st = llmc_cache_flush_all(c);
        if (st != LLMC_OK)
            return fail_op(o, c, st, "flush --all");
        printf("flushed everything in %s\n", llmc_cache_url(c));
        return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
    }
    const char *ns = o->ns ? o->ns : llmc_cache_namespace(c);
    if (!ns)
        return cli_usage_error(o->cmd, "which namespace? give --namespace NS (or the cache "
                                       "URL's ?namespace=), or --all to delete everything");
    uint64_t deleted = UINT64_MAX;
    llmc_status st = llmc_cache_flush(c, ns, &deleted);
    if (st != LLMC_OK)
        return fail_op(o, c, st, "flush");
    if (deleted == UINT64_MAX)
        printf("flushed namespace %s\n", ns);
    else
        printf("flushed namespace %s: %llu key%s\n", ns, (unsigned long long)deleted,
               deleted == 1 ? "" : "s");
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

static int print_key_cb(void *ud, const char *key, size_t klen)
{
    (void)ud;
    fwrite(key, 1, klen, stdout);
    fputc('\n', stdout);
    return ferror(stdout) ? 1 : 0;
}

static int scan_unsupported(const cache_opts *o, llmc_cache *c)
{
    cli_error(o->cmd,
              "the %s backend cannot list its keys%s; use a backend that can (local, "
              "sqlite, redis)",
              llmc_cache_backend_name(c),
              strcmp(llmc_cache_backend_name(c), "memcached") == 0
                  ? " (memcached has no key enumeration)"
                  : "");
    return LLMC_CLI_EXIT_ERROR;
}

static int do_keys(const cache_opts *o, llmc_cache *c)
{
    if (o->ns && o->nargs)
        return cli_usage_error(o->cmd, "give a PREFIX or --namespace NS, not both");
    llmc_buf prefix = LLMC_BUF_INIT;
    if (o->ns)
        llmc_buf_printf(&prefix, "%s:", o->ns);
    else if (o->nargs)
        llmc_buf_puts(&prefix, o->args[0]);
    llmc_status st = llmc_cache_scan(c, prefix.data, prefix.len, print_key_cb, NULL);
    llmc_buf_free(&prefix);
    if (st == LLMC_ENOTSUP)
        return scan_unsupported(o, c);
    if (st != LLMC_OK)
        return fail_op(o, c, st, "keys");
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

static int do_ttl(const cache_opts *o, llmc_cache *c)
{
    int64_t ms = 0;
    const char *key = o->args[0];
    llmc_status st = llmc_cache_ttl(c, key, strlen(key), &ms);
    if (st == LLMC_MISS) {
        if (!o->quiet)
            cli_error(o->cmd, "no value at key '%s'", key);
        return LLMC_CLI_EXIT_MISS;
    }
    if (st != LLMC_OK)
        return fail_op(o, c, st, key);
    printf("%lld\n", ms < 0 ? -1LL : (long long)((ms + 999) / 1000));
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

static const struct {
    uint32_t bit;
    const char *name;
} cap_names[] = {
    {LLMC_CAP_TTL, "ttl"},
    {LLMC_CAP_BATCH, "batch"},
    {LLMC_CAP_SCOPED_FLUSH, "scoped-flush"},
    {LLMC_CAP_THREAD_SAFE, "thread-safe"},
    {LLMC_CAP_PERSISTENT, "persistent"},
    {LLMC_CAP_DISTRIBUTED, "distributed"},
    {LLMC_CAP_SCAN, "scan"},
    {LLMC_CAP_REMOTE, "remote"},
};

static void stat_to_json(void *ud, const char *name, int64_t value)
{
    json_object_object_add(ud, name, json_object_new_int64(value));
}

static void stat_to_text(void *ud, const char *name, int64_t value)
{
    (void)ud;
    printf("  %-22s %lld\n", name, (long long)value);
}

/* The savings of a running proxy (NULL + exit status on failure). */
static json_object *proxy_savings(const cache_opts *o, int *rc)
{
#ifdef LLMC_CLI_HAVE_TOP
    return cli_proxy_data(o->cmd, o->proxy, getenv("LLMCACHE_PROXY_KEY"), rc);
#else
    cli_error(o->cmd, "--proxy: not built (it needs libcurl at build time)");
    *rc = LLMC_CLI_EXIT_ERROR;
    return NULL;
#endif
}

static int do_stats(const cache_opts *o, llmc_cache *c)
{
    json_object *px = NULL;
    if (o->proxy) {
        int rc;
        if (!(px = proxy_savings(o, &rc)))
            return rc;
    }
    const char *ns = llmc_cache_namespace(c);
    int64_t ttl = llmc_cache_default_ttl(c);
    uint32_t caps = llmc_cache_caps(c);
    const char *mode = llmc_cache_get_mode(c) == LLMC_MODE_DEFAULT_OFF ? "default_off"
                                                                       : "default_on";
    if (o->json) {
        json_object *j = json_object_new_object(), *capa = json_object_new_array();
        json_object *b = json_object_new_object();
        json_object_object_add(j, "backend", json_object_new_string(llmc_cache_backend_name(c)));
        json_object_object_add(j, "url", json_object_new_string(llmc_cache_url(c)));
        json_object_object_add(j, "namespace", ns ? json_object_new_string(ns) : NULL);
        json_object_object_add(j, "default_ttl_s", json_object_new_int64(ttl / 1000));
        json_object_object_add(j, "serializer",
                               json_object_new_string(llmc_cache_serializer_name(c)));
        json_object_object_add(j, "key_strategy",
                               json_object_new_string(llmc_cache_key_strategy_name(c)));
        json_object_object_add(j, "mode", json_object_new_string(mode));
        for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
            if (caps & cap_names[i].bit)
                json_object_array_add(capa, json_object_new_string(cap_names[i].name));
        json_object_object_add(j, "capabilities", capa);
        llmc_status st = llmc_cache_stats_foreach(c, stat_to_json, b);
        json_object_object_add(j, "backend_stats", b);
        if (px) {
            json_object *ps = json_object_new_object(), *v;
            static const char *const keep[] = {"totals", "top_models", "top_tenants", "prices",
                                               NULL};
            json_object_object_add(ps, "url", json_object_new_string(o->proxy));
            for (int i = 0; keep[i]; i++)
                if (json_object_object_get_ex(px, keep[i], &v))
                    json_object_object_add(ps, keep[i], json_object_get(v));
            json_object_object_add(j, "proxy", ps);
            json_object_put(px);
        }
        if (st != LLMC_OK && st != LLMC_ENOTSUP) {
            json_object_put(j);
            return fail_op(o, c, st, "stats");
        }
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
    }
    printf("backend:       %s\n", llmc_cache_backend_name(c));
    printf("url:           %s\n", llmc_cache_url(c));
    printf("namespace:     %s\n", ns ? ns : "(none)");
    if (ttl > 0)
        printf("default ttl:   %llds\n", (long long)(ttl / 1000));
    else
        printf("default ttl:   never expires\n");
    printf("serializer:    %s\n", llmc_cache_serializer_name(c));
    printf("key strategy:  %s\n", llmc_cache_key_strategy_name(c));
    printf("mode:          %s\n", mode);
    printf("capabilities: ");
    for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
        if (caps & cap_names[i].bit)
            printf(" %s", cap_names[i].name);
    printf("\nbackend counters:\n");
    fflush(stdout);
    llmc_status st = llmc_cache_stats_foreach(c, stat_to_text, NULL);
    if (st == LLMC_ENOTSUP)
        printf("  (none reported)\n");
    else if (st != LLMC_OK) {
        json_object_put(px);
        return fail_op(o, c, st, "stats");
    }
    if (px) {
        char *shown = cli_redact_url(o->proxy);
        printf("\nproxy %s (since it started):\n", shown ? shown : "");
        free(shown);
        cli_print_savings(stdout, px);
        json_object_put(px);
    }
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

static int do_ping(const cache_opts *o, llmc_cache *c)
{
    uint64_t t0 = llmc_mono_ns();
    llmc_status st = llmc_cache_ping(c);
    uint64_t dt = llmc_mono_ns() - t0;
    if (st != LLMC_OK)
        return fail_op(o, c, st, "ping");
    printf("PONG %s %.3f ms\n", llmc_cache_backend_name(c), (double)dt / 1e6);
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

static int do_check(const cache_opts *o, llmc_cache *c)
{
    llmc_check_result r;
    llmc_status st = llmc_cache_check(c, o->repair ? LLMC_CHECK_REPAIR : 0, &r, sizeof r);
    if (st != LLMC_OK && st != LLMC_ECORRUPT)
        return fail_op(o, c, st, "check");
    if (!r.damaged) {
        printf("ok: no damage found\n");
    } else if (r.repaired) {
        printf("repaired: %llu problem%s found (first: %s); kept %llu entries, left out %llu "
               "expired, skipped %llu damaged span%s\n",
               (unsigned long long)r.problems, r.problems == 1 ? "" : "s", r.detail,
               (unsigned long long)r.kept, (unsigned long long)r.expired,
               (unsigned long long)r.unreadable, r.unreadable == 1 ? "" : "s");
    } else {
        printf("damaged: %llu problem%s (first: %s)\n", (unsigned long long)r.problems,
               r.problems == 1 ? "" : "s", r.detail);
        cli_error(o->cmd, "the storage is damaged; damaged entries read as misses; run "
                  "llmcache cache check --repair to rebuild it");
        return LLMC_CLI_EXIT_ERROR;
    }
    return fflush(stdout) == 0 ? 0 : LLMC_CLI_EXIT_ERROR;
}

/* ---- copy ---- */


static void progress(size_t done, size_t total, int final)
{
    const int width = 30;
    int pct = total ? (int)(done * 100 / total) : 100;
    int fill = total ? (int)(done * (size_t)width / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[width] = '\0';
    fprintf(stderr, "\rcopying [%s] %3d%% %zu/%zu", bar, pct, done, total);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Remaining TTL of a stored entry from its envelope, for backends that
 * cannot report TTLs. 1 and *ms set (-1 = never) when decodable. */
static int envelope_ttl(llmc_cache *from, const char *key, size_t klen, const llmc_buf *val,
                        int64_t *ms)
{
    llmc_entry e;
    llmc_buf scratch = LLMC_BUF_INIT;
    llmc_err err;
    llmc_err_clear(&err);
    llmc_status st = llmc_entry_decode(llmc_cache_serializer_name(from), val->data, val->len,
                                       key, klen, &e, &scratch, &err);
    llmc_buf_free(&scratch);
    if (st != LLMC_OK)
        return 0;
    /* The backend keeps an entry to the end of its stale window. */
    int64_t until = e.stale_until_ms ? e.stale_until_ms : e.expires_ms;
    *ms = until ? until - llmc_now_ms() : -1;
    if (*ms == 0)
        *ms = -2; /* expired this very millisecond */
    return 1;
}

static int do_copy(const cache_opts *o)
{
    const char *from_url = o->args[0], *to_url = o->args[1];
    if (strcmp(from_url, to_url) == 0)
        return cli_usage_error(o->cmd, "FROM_URL and TO_URL are the same cache");
    llmc_cache *from = NULL, *to = NULL;
    int rc = cli_open_cache(o->cmd, from_url, &from);
    if (rc)
        return rc;
    if ((rc = cli_open_cache(o->cmd, to_url, &to)) != 0) {
        llmc_cache_close(from);
        return rc;
    }
    llmc_key_list keys = LLMC_KEY_LIST_INIT;
    llmc_buf prefix = LLMC_BUF_INIT;
    if (o->ns)
        llmc_buf_printf(&prefix, "%s:", o->ns);
    llmc_status st = llmc_cache_list_keys(from, prefix.data, prefix.len, &keys);
    llmc_buf_free(&prefix);
    if (st == LLMC_ENOTSUP) {
        cli_error(o->cmd,
                  "cannot copy from %s: the %s backend cannot list its keys%s; copy from a "
                  "backend that can (local, sqlite, redis)",
                  llmc_cache_url(from), llmc_cache_backend_name(from),
                  strcmp(llmc_cache_backend_name(from), "memcached") == 0
                      ? " (memcached has no key enumeration)"
                      : "");
        rc = LLMC_CLI_EXIT_ERROR;
        goto done;
    }
    if (st != LLMC_OK) {
        rc = fail_op(o, from, st, "listing the source's keys");
        goto done;
    }
    int bar = isatty(STDERR_FILENO) && !o->quiet;
    size_t copied = 0, expired = 0, failed = 0, off = 0;
    int shown_errors = 0;
    uint64_t last_draw = 0;
    llmc_buf val = LLMC_BUF_INIT;
    for (size_t i = 0; i < keys.n; i++) {
        const char *key = keys.bytes.data + off;
        size_t klen = keys.lens[i];
        off += klen;
        const char *why = NULL;
        llmc_cache *why_c = NULL;
        llmc_status gs = llmc_cache_get(from, key, klen, &val);
        int64_t ttl_ms = 0;
        llmc_status ts = gs;
        if (gs == LLMC_OK)
            ts = llmc_cache_ttl(from, key, klen, &ttl_ms);
        if (gs == LLMC_MISS || ts == LLMC_MISS) {
            expired++; /* expired (or deleted) since the listing */
        } else if (gs != LLMC_OK) {
            why = "read";
            why_c = from;
        } else {
            if (ts == LLMC_ENOTSUP) {
                if (!envelope_ttl(from, key, klen, &val, &ttl_ms))
                    ttl_ms = 0; /* unknown: the destination's default */
            } else if (ts != LLMC_OK) {
                why = "ttl";
                why_c = from;
            }
            if (!why) {
                int64_t set_ttl = ts == LLMC_ENOTSUP && ttl_ms == 0 ? LLMC_TTL_DEFAULT
                                  : ttl_ms == -1                   ? LLMC_TTL_NEVER
                                                                   : ttl_ms;
                if (set_ttl != LLMC_TTL_DEFAULT && set_ttl != LLMC_TTL_NEVER && set_ttl <= 0) {
                    expired++;
                } else if (llmc_cache_set(to, key, klen, val.data, val.len, set_ttl) ==
                           LLMC_OK) {
                    copied++;
                } else {
                    why = "write";
                    why_c = to;
                }
            }
        }
        if (why) {
            failed++;
            if (shown_errors++ < 5) {
                if (bar)
                    fputc('\n', stderr);
                cli_error(o->cmd, "%s of '%.*s' failed: %s", why, (int)klen, key,
                          llmc_cache_errmsg(why_c));
            }
        }
        if (bar) {
            uint64_t now = llmc_mono_ns();
            if (now - last_draw > 50000000ull && i + 1 < keys.n) {
                progress(i + 1, keys.n, 0);
                last_draw = now;
            }
        }
    }
    llmc_buf_free(&val);
    if (bar)
        progress(keys.n, keys.n, 1);
    if (shown_errors > 5)
        cli_error(o->cmd, "... %d more failures not shown", shown_errors - 5);
    printf("copied %zu, skipped-expired %zu, failed %zu (from %s to %s)\n", copied, expired,
           failed, llmc_cache_url(from), llmc_cache_url(to));
    rc = fflush(stdout) != 0 || failed ? LLMC_CLI_EXIT_ERROR : 0;
done:
    llmc_key_list_free(&keys);
    llmc_cache_close(from);
    llmc_cache_close(to);
    return rc;
}

int llmc_cli_cache(int argc, char **argv)
{
    if (argc < 2) {
        fputs(cache_help, stderr);
        return LLMC_CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(cache_help, stdout);
        return 0;
    }
    size_t si = 0, nsubs = sizeof subs / sizeof subs[0];
    while (si < nsubs && strcmp(subs[si].name, sub) != 0)
        si++;
    if (si == nsubs)
        return cli_usage_error("cache", "unknown subcommand '%s'", sub);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "cache %s", sub);
    cache_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = cmd;
    o.ttl = -1;
    int rc = parse_cache_opts(argc - 1, argv + 1, subs[si].allowed, &o);
    if (rc >= 0)
        return rc;
    if (o.help) {
        printf("usage: llmcache cache %s\n\n%s", subs[si].usage, subs[si].help);
        return 0;
    }
    if (o.nargs < subs[si].min_args)
        return cli_usage_error(cmd, "missing argument: llmcache cache %s", subs[si].usage);
    if (subs[si].max_args >= 0 && o.nargs > subs[si].max_args)
        return cli_usage_error(cmd, "unexpected argument '%s'", o.args[subs[si].max_args]);
    for (int i = 0; i < o.nargs; i++)
        if (strcmp(sub, "set") != 0 || i == 0)
            if (!o.args[i][0])
                return cli_usage_error(cmd, "empty key");
    if (strcmp(sub, "copy") == 0)
        return do_copy(&o);
    llmc_cache *c = NULL;
    if ((rc = cli_open_cache(cmd, o.cache_url, &c)) != 0)
        return rc;
    if (strcmp(sub, "get") == 0)
        rc = do_get(&o, c);
    else if (strcmp(sub, "set") == 0)
        rc = do_set(&o, c);
    else if (strcmp(sub, "del") == 0)
        rc = do_del(&o, c);
    else if (strcmp(sub, "flush") == 0)
        rc = do_flush(&o, c);
    else if (strcmp(sub, "keys") == 0)
        rc = do_keys(&o, c);
    else if (strcmp(sub, "ttl") == 0)
        rc = do_ttl(&o, c);
    else if (strcmp(sub, "stats") == 0)
        rc = do_stats(&o, c);
    else if (strcmp(sub, "check") == 0)
        rc = do_check(&o, c);
    else
        rc = do_ping(&o, c);
    llmc_cache_close(c);
    return rc;
}
