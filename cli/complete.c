/* llmcache complete / embed / key: one request through the caching
 * client (client.h), with the cache controls as options.
 *
 * One file past 800 lines: the three commands share one option table,
 * option parser and request builder, and each command's part is short;
 * splitting them would only move those shared statics into a header. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

typedef struct req_opts {
    const char *cmd;
    const char *model, *user, *system, *request_file, *mock;
    const char *api_base, *api_key, *cache_url, *ns, *provider, *timeout, *retries;
    const char *cache_control; /* --cache-control, read by the library */
    const char *api;         /* --api: the call type (API) to use */
    int stream, text, no_cache, no_store, verbose, quiet, explain, help;
    int two_requests;        /* key: a second --request is compared */
    const char *request_file2;
    llmc_buf request_text2;
    int64_t ttl;             /* -1 = the cache's default */
    const char **params;     /* --param name=value */
    size_t nparams;
    const char **inputs;     /* --input (embed; key: embedding keys) */
    size_t ninputs;
    llmc_buf request_text;   /* contents of --request, read once */
    const char **headers;    /* --header NAME:VALUE (the API's own headers) */
    size_t nheaders;
} req_opts;

enum {
    OPT_USER = 256, OPT_SYSTEM, OPT_REQUEST, OPT_STREAM, OPT_TEXT, OPT_CACHE, OPT_NO_CACHE,
    OPT_NO_STORE, OPT_TTL, OPT_NAMESPACE, OPT_API_BASE, OPT_API_KEY, OPT_MOCK, OPT_EXPLAIN,
    OPT_INPUT, OPT_PARAM, OPT_PROVIDER, OPT_TIMEOUT, OPT_RETRIES, OPT_CACHE_CONTROL,
    OPT_API, OPT_HEADER
};

static const char complete_help[] =
    "usage: llmcache complete --model M (--user TEXT [--system TEXT] | --request FILE|-)\n"
    "                         [--stream] [--text] [cache options] [provider options]\n"
    "\n"
    "Send one chat completion through the cache and print the response JSON\n"
    "(OpenAI format; \"cache\": true at the top level when it came from the cache).\n"
    "\n"
    "Request:\n"
    "      --header NAME:VALUE a header of the API's request (messages:\n"
    "                          anthropic-version, anthropic-beta); part of the key\n"
    "  -m, --model M           model, e.g. gpt-4o-mini, anthropic/claude-3-5-haiku-latest\n"
    "  -u, --user TEXT|-       the user message (-: read it from standard input)\n"
    "  -s, --system TEXT       a system message before it\n"
    "  -r, --request FILE|-    an OpenAI-format request JSON (file or standard input);\n"
    "                          --model and the options below override its members;\n"
    "                          \"prompt\" instead of \"messages\": a text completion\n"
    "  -p, --param NAME=VALUE  set a request member (VALUE is JSON if it parses,\n"
    "                          else a string): --param temperature=0 --param seed=7\n"
    "      --mock-response TEXT  answer with TEXT instead of calling the provider\n"
    "                          (LiteLLM's mock_response: no network, no key)\n"
    "      --api NAME          the API to call: chat (default, /v1/chat/completions)\n"
    "                          or responses (OpenAI's /v1/responses: --user is the\n"
    "                          \"input\", --system the \"instructions\") or messages\n"
    "                          (Anthropic's /v1/messages: --system is \"system\",\n"
    "                          max_tokens defaults to 1024)\n"
    "Output:\n"
    "      --stream            stream: print each chunk as one JSON line as it arrives\n"
    "                          (a hit is replayed as chunks)\n"
    "  -t, --text              print only the answer text (as it arrives with --stream)\n"
    "  -v, --verbose           always print the status line (MISS/HIT, key) to stderr;\n"
    "                          by default it is printed only when stderr is a terminal\n"
    "  -q, --quiet             never print the status line\n"
    "Cache:\n"
    "  -c, --cache URL         cache URL (default: $LLMCACHE_URL, else the embedded\n"
    "                          SQLite store ~/.cache/llmcache/cache.db)\n"
    "      --no-cache          do not read the cache (the answer is still stored)\n"
    "      --no-store          do not write the answer to the cache\n"
    "      --ttl SECONDS       lifetime of the stored answer (0 = never expires)\n"
    "  -n, --namespace NS      key namespace (entries are stored under NS:<hash>)\n"
    "      --cache-control V   an HTTP Cache-Control value, as the proxy reads it:\n"
    "                          no-cache, no-store, max-age=SECONDS\n"
    "Provider:\n"
    "      --api-base URL      provider base URL (default: the provider's, or\n"
    "                          $OPENAI_BASE_URL, $ANTHROPIC_BASE_URL, ...)\n"
    "      --api-key KEY       provider key (default: $OPENAI_API_KEY,\n"
    "                          $ANTHROPIC_API_KEY, ...); never stored or printed\n"
    "      --provider NAME     use this provider whatever the model is called\n"
    "                          (e.g. openai-compatible for a local server)\n"
    "      --timeout SECONDS   limit on one HTTP attempt (default 600)\n"
    "      --retries N         retries on 429, 5xx and connection errors (default 2)\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage or invalid request, 4 provider error.\n"
    "\n"
    "Example (no network, no key):\n"
    "  llmcache complete -v --model gpt-4o-mini --user 'Say hi' --mock-response 'Hi!' --text\n";

static const char embed_help[] =
    "usage: llmcache embed --model M --input TEXT [--input TEXT ...] [cache options]\n"
    "                      [provider options]\n"
    "\n"
    "Compute embeddings through the cache and print the response JSON (OpenAI\n"
    "format). Each input has its own cache entry; only the missing ones go to\n"
    "the provider.\n"
    "\n"
    "  -m, --model M           embedding model, e.g. text-embedding-3-small\n"
    "  -i, --input TEXT        one input (repeat for several)\n"
    "  -r, --request FILE|-    an OpenAI-format embeddings request JSON instead\n"
    "  -p, --param NAME=VALUE  set a request member (e.g. dimensions=256)\n"
    "      --mock-response X   answer with deterministic fake vectors, no network\n"
    "  -c, --cache URL, --no-cache, --no-store, --ttl SECONDS, -n, --namespace NS,\n"
    "      --cache-control V, --api-base URL, --api-key KEY, --provider NAME,\n"
    "      --timeout SECONDS, --retries N, -v, -q   as for llmcache complete\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage or invalid request, 4 provider error.\n";

static const char key_help[] =
    "usage: llmcache key [--explain] <the arguments of llmcache complete>\n"
    "       llmcache key [--explain] --model M --input TEXT [--input TEXT ...]\n"
    "       llmcache key [--explain] --request A --request B [options]\n"
    "\n"
    "Print the cache key a request maps to, without calling the provider or\n"
    "reading the cache. With --input, the keys of embedding items (one line\n"
    "each). The cache URL matters: its namespace and key_strategy options\n"
    "change keys.\n"
    "\n"
    "  -e, --explain           also print the canonical key material the key is the\n"
    "                          SHA-256 of, so you can see why two calls differ\n"
    "      --api NAME          the API the request is for (chat, responses), as for\n"
    "                          llmcache complete\n"
    "  -r, --request FILE      twice: the keys of two requests (the other options\n"
    "                          apply to both); with --explain, the members of their\n"
    "                          key material that differ\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage or invalid request.\n"
    "\n"
    "Examples:\n"
    "  llmcache key --explain --model gpt-4o-mini --user hi --param temperature=0\n"
    "  llmcache key --explain --request a.json --request b.json\n";

static const struct option req_longopts[] = {
    {"model", required_argument, NULL, 'm'},
    {"user", required_argument, NULL, 'u'},
    {"system", required_argument, NULL, 's'},
    {"request", required_argument, NULL, 'r'},
    {"param", required_argument, NULL, 'p'},
    {"input", required_argument, NULL, 'i'},
    {"stream", no_argument, NULL, OPT_STREAM},
    {"text", no_argument, NULL, 't'},
    {"cache", required_argument, NULL, 'c'},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"no-store", no_argument, NULL, OPT_NO_STORE},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"namespace", required_argument, NULL, 'n'},
    {"api-base", required_argument, NULL, OPT_API_BASE},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"mock-response", required_argument, NULL, OPT_MOCK},
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"cache-control", required_argument, NULL, OPT_CACHE_CONTROL},
    {"api", required_argument, NULL, OPT_API},
    {"header", required_argument, NULL, OPT_HEADER},
    {"explain", no_argument, NULL, 'e'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void opts_free(req_opts *o)
{
    free(o->params);
    free(o->inputs);
    free(o->headers);
    llmc_buf_free(&o->request_text);
    llmc_buf_free(&o->request_text2);
}

static int push(const char ***v, size_t *n, const char *s)
{
    const char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv)
        return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* Parse the shared options. Returns -1 to go on, else an exit status. */
static int parse_opts(int argc, char **argv, req_opts *o)
{
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":m:u:s:r:p:i:tc:n:evqh", req_longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->model = optarg; break;
        case 'u': o->user = optarg; break;
        case 's': o->system = optarg; break;
        case 'r':
            /* A repeated --request used to replace the first silently. */
            if (o->request_file2 || (o->request_file && !o->two_requests))
                return cli_usage_error(o->cmd, "--request given more than %s",
                                       o->two_requests ? "twice (key compares two requests)"
                                                       : "once");
            if (o->request_file)
                o->request_file2 = optarg;
            else
                o->request_file = optarg;
            break;
        case 'p':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return cli_usage_error(o->cmd, "--param '%s': expected NAME=VALUE", optarg);
            if (push(&o->params, &o->nparams, optarg))
                return LLMC_CLI_EXIT_ERROR;
            break;
        case 'i':
            if (push(&o->inputs, &o->ninputs, optarg))
                return LLMC_CLI_EXIT_ERROR;
            break;
        case OPT_STREAM: o->stream = 1; break;
        case 't': o->text = 1; break;
        case 'c': o->cache_url = optarg; break;
        case OPT_NO_CACHE: o->no_cache = 1; break;
        case OPT_NO_STORE: o->no_store = 1; break;
        case OPT_TTL:
            if ((o->ttl = cli_parse_seconds(optarg)) < 0)
                return cli_usage_error(o->cmd,
                                       "--ttl '%s': expected a number of seconds >= 0", optarg);
            break;
        case 'n': o->ns = optarg; break;
        case OPT_CACHE_CONTROL: o->cache_control = optarg; break;
        case OPT_API: o->api = optarg; break;
        case OPT_HEADER:
            if (!strchr(optarg, ':') || optarg[0] == ':')
                return cli_usage_error(o->cmd, "--header '%s': expected NAME:VALUE", optarg);
            if (push(&o->headers, &o->nheaders, optarg))
                return LLMC_CLI_EXIT_ERROR;
            break;
        case OPT_API_BASE: o->api_base = optarg; break;
        case OPT_API_KEY: o->api_key = optarg; break;
        case OPT_MOCK: o->mock = optarg; break;
        case OPT_PROVIDER: o->provider = optarg; break;
        case OPT_TIMEOUT:
            if (cli_parse_seconds(optarg) <= 0)
                return cli_usage_error(o->cmd, "--timeout '%s': expected a number of seconds > 0",
                                       optarg);
            o->timeout = optarg;
            break;
        case OPT_RETRIES: {
            int64_t n = cli_parse_seconds(optarg);
            if (n < 0 || n > 20)
                return cli_usage_error(o->cmd, "--retries '%s': expected 0..20", optarg);
            o->retries = optarg;
            break;
        }
        case 'e': o->explain = 1; break;
        case 'v': o->verbose = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': o->help = 1; break;
        case ':': return cli_bad_option(o->cmd, argv[optind - 1], 1);
        default: return cli_bad_option(o->cmd, argv[optind - 1], 0);
        }
    }
    if (o->help)
        return -1;
    if (optind < argc)
        return cli_usage_error(o->cmd, "unexpected argument '%s'", argv[optind]);
    if (o->request_file) {
        /* Read once: standard input cannot be read twice. */
        int rc = cli_read_file(o->cmd, o->request_file, &o->request_text);
        if (rc)
            return rc;
    }
    if (o->request_file2) {
        if (strcmp(o->request_file, "-") == 0 && strcmp(o->request_file2, "-") == 0)
            return cli_usage_error(o->cmd, "only one --request can be standard input (-)");
        int rc = cli_read_file(o->cmd, o->request_file2, &o->request_text2);
        if (rc)
            return rc;
    }
    return -1;
}

/* --api NAME: a call type that takes a request built from --user (or a
 * --request file). Returns 0 (*call set when given) or an exit status. */
static int api_call(const req_opts *o, llmc_call_type *call)
{
    if (!o->api)
        return 0;
    llmc_call_type t;
    if (llmc_call_type_parse(o->api, &t) != LLMC_OK ||
        (t != LLMC_CALL_CHAT && t != LLMC_CALL_RESPONSES && t != LLMC_CALL_MESSAGES))
        return cli_usage_error(o->cmd, "--api '%s': expected chat, responses or messages",
                               o->api);
    *call = t;
    return 0;
}

/* The request from the options. Returns 0 or an exit status. */
static int build_request(const req_opts *o, llmc_call_type call, llmc_request **out)
{
    llmc_err err;
    llmc_err_clear(&err);
    llmc_request *r = NULL;
    *out = NULL;
    if (o->request_file) {
        if (o->user || o->system)
            return cli_usage_error(o->cmd, "--request cannot be combined with --user/--system");
        if (call == LLMC_CALL_EMBEDDING && o->ninputs)
            return cli_usage_error(o->cmd, "--request cannot be combined with --input");
        const llmc_buf *text = &o->request_text;
        llmc_status st = llmc_request_from_json(text->data ? text->data : "", text->len, &r,
                                                &err);
        if (st != LLMC_OK) {
            cli_error(o->cmd, "--request %s: %s",
                      strcmp(o->request_file, "-") == 0 ? "(stdin)" : o->request_file,
                      err.msg[0] ? err.msg : llmc_strerror(st));
            return cli_exit_for(st);
        }
    } else if (call == LLMC_CALL_EMBEDDING) {
        if (o->user || o->system)
            return cli_usage_error(o->cmd, "embeddings take --input, not --user/--system");
        if (!o->ninputs)
            return cli_usage_error(o->cmd, "missing --input TEXT (or --request FILE)");
        if (!(r = llmc_request_new(NULL)))
            return LLMC_CLI_EXIT_ERROR;
        for (size_t i = 0; i < o->ninputs; i++)
            if (llmc_request_add_input(r, o->inputs[i]) != LLMC_OK)
                goto oom;
    } else {
        if (!o->user)
            return cli_usage_error(o->cmd, "missing --user TEXT (or --request FILE)");
        llmc_buf in = LLMC_BUF_INIT;
        const char *user = o->user;
        if (strcmp(user, "-") == 0) {
            /* --user -: the message is standard input (a trailing newline
             * dropped, so `echo q |` and `--user q` are the same call). */
            int rc = cli_read_file(o->cmd, "-", &in);
            if (rc) {
                llmc_buf_free(&in);
                return rc;
            }
            if (in.len && in.data[in.len - 1] == '\n')
                in.data[--in.len] = '\0';
            if (in.len && in.data[in.len - 1] == '\r')
                in.data[--in.len] = '\0';
            user = in.data ? in.data : "";
        }
        if (!(r = llmc_request_new(NULL))) {
            llmc_buf_free(&in);
            return LLMC_CLI_EXIT_ERROR;
        }
        /* The Messages API takes the system prompt at the top level and
         * requires max_tokens (a --param may set another). */
        int messages = call == LLMC_CALL_MESSAGES;
        if (call == LLMC_CALL_RESPONSES) {
            /* The Responses API: the text is the input, the system
             * message the instructions. */
            if ((o->system && llmc_request_set_string(r, "instructions", o->system) != LLMC_OK) ||
                llmc_request_set_string(r, "input", user) != LLMC_OK) {
                llmc_buf_free(&in);
                goto oom;
            }
        } else if ((o->system && (messages ? llmc_request_set_string(r, "system", o->system)
                                           : llmc_request_add_message(r, "system", o->system)) !=
                                     LLMC_OK) ||
                   llmc_request_add_message(r, "user", user) != LLMC_OK ||
                   (messages && llmc_request_set_int(r, "max_tokens", 1024) != LLMC_OK)) {
            llmc_buf_free(&in);
            goto oom;
        }
        llmc_buf_free(&in);
    }
    if (o->model && llmc_request_set_string(r, "model", o->model) != LLMC_OK)
        goto oom;
    json_object *model = NULL;
    if (!json_object_object_get_ex(llmc_request_json(r), "model", &model) ||
        !json_object_is_type(model, json_type_string) ||
        json_object_get_string_len(model) == 0) {
        llmc_request_free(r);
        return cli_usage_error(o->cmd, "missing --model M%s",
                               o->request_file ? " (the request JSON has no \"model\")" : "");
    }
    for (size_t i = 0; i < o->nparams; i++) {
        const char *eq = strchr(o->params[i], '=');
        size_t nlen = (size_t)(eq - o->params[i]);
        char *name = strndup(o->params[i], nlen);
        if (!name)
            goto oom;
        /* JSON when it parses (numbers, true, objects), else a string. */
        json_object *probe = NULL;
        json_tokener *tok = json_tokener_new();
        if (tok) {
            /* -1: up to and including the NUL, so "0" is a complete number;
             * trailing text ("1 2", "0abc") makes it a string. */
            probe = json_tokener_parse_ex(tok, eq + 1, -1);
            if (json_tokener_get_error(tok) != json_tokener_success ||
                json_tokener_get_parse_end(tok) < strlen(eq + 1)) {
                json_object_put(probe);
                probe = NULL;
            }
            json_tokener_free(tok);
        }
        llmc_status st;
        if (!probe) {
            st = llmc_request_set_string(r, name, eq + 1);
        } else if (strcmp(name, "cache") == 0 || strcmp(name, "caching") == 0) {
            /* Cache controls are validated by the request setter. */
            st = llmc_request_set_json(r, name, eq + 1);
            json_object_put(probe);
        } else {
            /* The parsed value itself: scalars ("0", "true") included. */
            st = json_object_object_add(llmc_request_json(r), name, probe) == 0 ? LLMC_OK
                                                                                : LLMC_ENOMEM;
        }
        free(name);
        if (st != LLMC_OK) {
            llmc_request_free(r);
            return cli_usage_error(o->cmd, "--param '%s': %s", o->params[i], llmc_strerror(st));
        }
    }
    if (o->mock) {
        llmc_status st;
        if (call == LLMC_CALL_EMBEDDING)
            /* The mock adapter answers embeddings with deterministic
             * vectors; any mock_response value selects it. */
            st = llmc_request_set_bool(r, "mock_response", 1);
        else
            st = llmc_request_set_string(r, "mock_response", o->mock);
        if (st != LLMC_OK)
            goto oom;
    }
    if (o->no_cache)
        llmc_request_set_no_cache(r, 1);
    if (o->no_store)
        llmc_request_set_no_store(r, 1);
    if (o->ttl >= 0)
        llmc_request_set_ttl(r, o->ttl);
    if (o->ns) {
        llmc_err e;
        llmc_err_clear(&e);
        llmc_status st = llmc_namespace_check(o->ns, "--namespace", &e);
        if (st == LLMC_OK)
            st = llmc_request_set_namespace(r, o->ns);
        if (st != LLMC_OK) {
            llmc_request_free(r);
            return cli_usage_error(o->cmd, "%s", e.msg[0] ? e.msg : llmc_strerror(st));
        }
    }
    *out = r;
    return 0;
oom:
    llmc_request_free(r);
    cli_error(o->cmd, "out of memory");
    return LLMC_CLI_EXIT_ERROR;
}

/* The --header options as llmc_call_opts.api_headers: names and values
 * (trimmed) copied into `store` (freed by the caller), NULL-terminated in
 * `nv` (2 * nheaders + 1 pointers). NULL when none. */
static const char *const *api_headers(const req_opts *o, char **store, const char **nv)
{
    *store = NULL;
    if (!o->nheaders)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < o->nheaders; i++)
        total += strlen(o->headers[i]) + 1;
    char *p = *store = malloc(total);
    if (!p)
        return NULL;
    for (size_t i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i], *colon = strchr(h, ':');
        size_t nl = (size_t)(colon - h);
        while (nl && (h[nl - 1] == ' ' || h[nl - 1] == '\t'))
            nl--;
        nv[2 * i] = p;
        memcpy(p, h, nl);
        p[nl] = '\0';
        p += nl + 1;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        nv[2 * i + 1] = v;
    }
    nv[2 * o->nheaders] = NULL;
    return nv;
}

/* Cache (unless both controls turn it off) and client. */
static int make_client(const req_opts *o, int need_cache, llmc_cache **cache,
                       llmc_client **client)
{
    *cache = NULL;
    *client = NULL;
    if (need_cache) {
        int rc = cli_open_cache(o->cmd, o->cache_url, cache);
        if (rc)
            return rc;
    }
    llmc_options *opts = llmc_options_new();
    if (!opts) {
        llmc_cache_close(*cache);
        *cache = NULL;
        return LLMC_CLI_EXIT_ERROR;
    }
    /* Credentials go to the client, never into the request: they are not
     * part of the key and must not reach any stored entry. */
    if (o->api_base)
        llmc_options_set(opts, "api_base", o->api_base);
    if (o->api_key)
        llmc_options_set(opts, "api_key", o->api_key);
    if (o->provider)
        llmc_options_set(opts, "provider", o->provider);
    if (o->retries)
        llmc_options_set(opts, "max_retries", o->retries);
    if (o->timeout) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld", (long long)cli_parse_seconds(o->timeout) * 1000);
        llmc_options_set(opts, "timeout_ms", ms);
    }
    llmc_err err;
    llmc_err_clear(&err);
    llmc_status st = llmc_client_new(*cache, opts, client, &err);
    llmc_options_free(opts);
    if (st != LLMC_OK) {
        cli_error(o->cmd, "%s", err.msg[0] ? err.msg : llmc_strerror(st));
        llmc_cache_close(*cache);
        *cache = NULL;
        return cli_exit_for(st);
    }
    return 0;
}

static void fmt_age(char *buf, size_t n, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (s < 120)
        snprintf(buf, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, n, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(buf, n, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

/* One status line on stderr: HIT, HIT-SEMANTIC (with the similarity and
 * the matched key), MISS or BYPASS, with the key. */
static void print_status(const req_opts *o, const llmc_response *r, int have_cache,
                         const char *bypass)
{
    const char *key = llmc_response_cache_key(r);
    const char *prov = llmc_response_provider(r);
    if (!have_cache || !key) {
        fprintf(stderr, "llmcache: BYPASS (%s%s) provider=%s\n",
                !have_cache ? "--no-cache and --no-store"
                : bypass    ? "never cached: the answer depends on provider state, "
                            : "caching off for this call",
                have_cache && bypass ? bypass : "", prov ? prov : "?");
        return;
    }
    size_t items = llmc_response_item_count(r);
    if (items > 1) {
        size_t hits = 0;
        for (size_t i = 0; i < items; i++)
            hits += llmc_response_item_hit(r, i) ? 1 : 0;
        const char *word = hits == items ? "HIT" : hits ? "PARTIAL" : "MISS";
        fprintf(stderr, "llmcache: %s %zu/%zu items from cache", word, hits, items);
        if (hits) {
            char age[32];
            fmt_age(age, sizeof age, llmc_response_cache_age_ms(r));
            fprintf(stderr, " age=%s", age);
        }
        fprintf(stderr, " key=%s%s\n", key,
                hits < items ? (llmc_response_cache_stored(r) ? " (stored)" : " (not stored)")
                             : "");
        return;
    }
    if (llmc_response_cache_hit(r)) {
        char age[32];
        fmt_age(age, sizeof age, llmc_response_cache_age_ms(r));
        double sim;
        if (llmc_response_semantic(r, &sim))
            fprintf(stderr, "llmcache: HIT-SEMANTIC similarity=%.4f age=%s key=%s\n", sim, age,
                    key);
        else
            fprintf(stderr, "llmcache: HIT age=%s key=%s\n", age, key);
        return;
    }
    fprintf(stderr, "llmcache: MISS key=%s provider=%s%s%s%s\n", key, prov ? prov : "?",
            o->mock ? " (mock response)" : "", o->no_cache ? " (--no-cache: read skipped)" : "",
            llmc_response_cache_stored(r) ? " (stored)" : " (not stored)");
}

/* A completion never fails because of the cache (the library fails
 * open), but the user is told when the cache did not answer. */
static void warn_cache_failed(const req_opts *o, llmc_cache *cache)
{
    llmc_stats st;
    if (!cache || o->quiet || llmc_cache_stats(cache, &st, sizeof st) != LLMC_OK)
        return;
    if (st.errors == 0 && st.breaker_skips == 0)
        return;
    const char *msg = llmc_cache_errmsg(cache);
    fprintf(stderr, "llmcache %s: warning: cache %s failed%s%s%s; the answer came from the "
                    "provider\n",
            o->cmd, llmc_cache_url(cache), msg[0] ? " (" : "", msg, msg[0] ? ")" : "");
}

typedef struct stream_ctx {
    int text;
    int any_text;
    int failed;
} stream_ctx;

static int on_chunk(void *ud, struct json_object *chunk)
{
    stream_ctx *s = ud;
    if (s->text) {
        json_object *choices, *c0, *delta, *content, *type;
        if (json_object_object_get_ex(chunk, "type", &type) &&
            strcmp(json_object_get_string(type), "response.output_text.delta") == 0) {
            /* A Responses API event: the text comes in output_text deltas. */
            if (json_object_object_get_ex(chunk, "delta", &delta) &&
                json_object_is_type(delta, json_type_string)) {
                fwrite(json_object_get_string(delta), 1, (size_t)json_object_get_string_len(delta),
                       stdout);
                s->any_text = 1;
            }
        } else if (json_object_object_get_ex(chunk, "delta", &delta) &&
                   json_object_object_get_ex(delta, "text", &content) &&
                   json_object_is_type(content, json_type_string)) {
            /* A Messages API text_delta event. */
            fwrite(json_object_get_string(content), 1,
                   (size_t)json_object_get_string_len(content), stdout);
            s->any_text = 1;
        } else if (json_object_object_get_ex(chunk, "choices", &choices) &&
            json_object_is_type(choices, json_type_array) &&
            json_object_array_length(choices) > 0 &&
            (c0 = json_object_array_get_idx(choices, 0)) &&
            json_object_object_get_ex(c0, "delta", &delta) &&
            json_object_object_get_ex(delta, "content", &content) &&
            json_object_is_type(content, json_type_string)) {
            fwrite(json_object_get_string(content), 1,
                   (size_t)json_object_get_string_len(content), stdout);
            s->any_text = 1;
        }
    } else {
        fputs(json_object_to_json_string_ext(chunk, JSON_C_TO_STRING_PLAIN |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE),
              stdout);
        fputc('\n', stdout);
    }
    /* As it arrives: flush per chunk; a closed pipe stops the stream. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        s->failed = 1;
        return 1;
    }
    return 0;
}

static int report_call_error(const req_opts *o, llmc_status st, const llmc_err *err)
{
    if (st == LLMC_ECANCELED)
        cli_error(o->cmd, "canceled (standard output closed)");
    else if (err->native >= 100 && err->native < 600 && cli_exit_for(st) == LLMC_CLI_EXIT_PROVIDER)
        cli_error(o->cmd, "%s (HTTP %ld): %s", llmc_strerror(st), err->native,
                  err->msg[0] ? err->msg : "no details");
    else if (st == LLMC_EAUTH && err->native == 0 && !o->api_key)
        cli_error(o->cmd, "%s: %s (or give --api-key KEY)", llmc_strerror(st),
                  err->msg[0] ? err->msg : "no details");
    else
        cli_error(o->cmd, "%s: %s", llmc_strerror(st), err->msg[0] ? err->msg : "no details");
    /* In a call the cache fails open, so a connection failure or timeout
     * can only be the provider's. */
    if (st == LLMC_ECONN || st == LLMC_ETIMEDOUT)
        return LLMC_CLI_EXIT_PROVIDER;
    return cli_exit_for(st);
}

static int run_call(int argc, char **argv, llmc_call_type call)
{
    req_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = argv[0];
    o.ttl = -1;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        goto out;
    if (o.help) {
        fputs(call == LLMC_CALL_EMBEDDING ? embed_help : complete_help, stdout);
        rc = 0;
        goto out;
    }
    if (o.explain) {
        rc = cli_usage_error(o.cmd, "--explain belongs to llmcache key");
        goto out;
    }
    if (call == LLMC_CALL_EMBEDDING && (o.stream || o.text)) {
        rc = cli_usage_error(o.cmd, "--stream and --text do not apply to embeddings");
        goto out;
    }
    if (call != LLMC_CALL_EMBEDDING && o.ninputs) {
        rc = cli_usage_error(o.cmd, "--input belongs to llmcache embed");
        goto out;
    }
    if (o.api && call == LLMC_CALL_EMBEDDING) {
        rc = cli_usage_error(o.cmd, "--api belongs to llmcache complete");
        goto out;
    }
    if ((rc = api_call(&o, &call)) != 0)
        goto out;
    llmc_request *req = NULL;
    if ((rc = build_request(&o, call, &req)) != 0)
        goto out;
    if (call == LLMC_CALL_CHAT && o.request_file &&
        llmc_call_type_of_request(o.request_text.data ? o.request_text.data : "",
                                  o.request_text.len) == LLMC_CALL_TEXT) {
        /* A body with "prompt" and no "messages" is a legacy text
         * completion (/v1/completions). */
        call = LLMC_CALL_TEXT;
        if (o.stream) {
            llmc_request_free(req);
            rc = cli_usage_error(o.cmd, "--stream is for chat requests (\"messages\"), "
                                        "this one has \"prompt\"");
            goto out;
        }
    }
    int need_cache = !(o.no_cache && o.no_store);
    llmc_cache *cache = NULL;
    llmc_client *client = NULL;
    if ((rc = make_client(&o, need_cache, &cache, &client)) != 0) {
        llmc_request_free(req);
        goto out;
    }
    llmc_err err;
    llmc_err_clear(&err);
    llmc_response *resp = NULL;
    stream_ctx sc = {o.text, 0, 0};
    /* The library's pipeline: prepare (controls, validation, routing,
     * key), then execute (lookup, upstream, store). */
    llmc_call_opts copts = LLMC_CALL_OPTS_INIT;
    copts.cache_control = o.cache_control;
    char *hstore = NULL;
    const char **hnv = calloc(2 * o.nheaders + 1, sizeof *hnv);
    copts.api_headers = hnv ? api_headers(&o, &hstore, hnv) : NULL;
    llmc_call *k = NULL;
    const char *bypass = NULL;
    llmc_status st = o.nheaders && !copts.api_headers
                         ? llmc_err_set(&err, LLMC_ENOMEM, 0, "out of memory")
                         : llmc_call_prepare_request(client, call, req, &copts, &k, &err);
    free(hstore);
    free(hnv);
    if (st == LLMC_OK) {
        bypass = llmc_call_bypass_reason(k);
        /* A request file that asks for a stream gets one. */
        llmc_call_type_info info;
        if (llmc_call_wants_stream(k) &&
            llmc_call_type_info_get(call, &info, sizeof info) == LLMC_OK && info.streams)
            o.stream = 1;
        st = llmc_call_execute(k, o.stream ? on_chunk : NULL, &sc, &resp, &err);
    }
    llmc_call_free(k);
    if (st != LLMC_OK) {
        if (o.stream && o.text && sc.any_text)
            fputc('\n', stdout);
        rc = report_call_error(&o, st, &err);
    } else {
        if (o.stream) {
            if (o.text)
                fputc('\n', stdout);
        } else if (o.text) {
            const char *t = llmc_response_content(resp);
            if (t)
                fputs(t, stdout);
            fputc('\n', stdout);
        } else {
            size_t len = 0;
            const char *t = llmc_response_text(resp, &len);
            fwrite(t, 1, len, stdout);
            fputc('\n', stdout);
        }
        if (fflush(stdout) != 0) {
            cli_error(o.cmd, "cannot write the answer to standard output");
            rc = LLMC_CLI_EXIT_ERROR;
        } else {
            rc = 0;
        }
        if (cli_show_status(o.verbose, o.quiet))
            print_status(&o, resp, cache != NULL, bypass);
    }
    warn_cache_failed(&o, cache);
    llmc_response_free(resp);
    llmc_request_free(req);
    llmc_client_free(client);
    llmc_cache_close(cache);
out:
    opts_free(&o);
    return rc;
}

int llmc_cli_complete(int argc, char **argv) { return run_call(argc, argv, LLMC_CALL_CHAT); }

int llmc_cli_embed(int argc, char **argv) { return run_call(argc, argv, LLMC_CALL_EMBEDDING); }

/* One request of `llmcache key`. */
typedef struct key_req {
    llmc_call_type call;
    llmc_request *req;
    size_t n; /* keys: 1, or the number of embedding items */
} key_req;

/* Build the request of `o` (its --request, or the other options) and
 * count its keys. Returns 0 or an exit status. */
static int key_request(const req_opts *o, key_req *kr)
{
    kr->call = o->ninputs ? LLMC_CALL_EMBEDDING : LLMC_CALL_CHAT;
    kr->req = NULL;
    if (o->api) {
        if (o->ninputs)
            return cli_usage_error(o->cmd, "--api cannot be combined with --input");
        int rc = api_call(o, &kr->call);
        if (rc)
            return rc;
    } else if (o->request_file && !o->ninputs) {
        /* The member that names the kind of call ("messages", "prompt",
         * "input"), as the library reads it. */
        llmc_call_type t = llmc_call_type_of_request(
            o->request_text.data ? o->request_text.data : "", o->request_text.len);
        if (t != LLMC_CALL_RAW)
            kr->call = t;
    }
    int rc = build_request(o, kr->call, &kr->req);
    if (rc)
        return rc;
    kr->n = kr->call == LLMC_CALL_EMBEDDING ? (o->ninputs ? o->ninputs : 0) : 1;
    if (kr->call == LLMC_CALL_EMBEDDING && !o->ninputs) {
        json_object *in;
        kr->n = 1;
        if (json_object_object_get_ex(llmc_request_json(kr->req), "input", &in) &&
            json_object_is_type(in, json_type_array)) {
            kr->n = json_object_array_length(in);
            /* A token array ([1,2,3]) is one item, an array of them many. */
            if (kr->n > 0) {
                json_object *first = json_object_array_get_idx(in, 0);
                if (json_object_is_type(first, json_type_int))
                    kr->n = 1;
            }
        }
    }
    return 0;
}

/* Key (and with `explain` material) of item i of a request. */
static int key_of(const req_opts *o, llmc_client *client, const key_req *kr, size_t i,
                  llmc_buf *key, llmc_buf *material)
{
    llmc_err err;
    llmc_err_clear(&err);
    llmc_buf_clear(key);
    llmc_buf_clear(material);
    llmc_call_opts copts = LLMC_CALL_OPTS_INIT;
    char *hstore = NULL;
    const char **hnv = calloc(2 * o->nheaders + 1, sizeof *hnv);
    copts.api_headers = hnv ? api_headers(o, &hstore, hnv) : NULL;
    llmc_status st = o->nheaders && !copts.api_headers
                         ? llmc_err_set(&err, LLMC_ENOMEM, 0, "out of memory")
                         : llmc_client_request_key_ex(client, kr->call, kr->req, &copts, i, key,
                                                      o->explain ? material : NULL, &err);
    free(hstore);
    free(hnv);
    if (st != LLMC_OK) {
        cli_error(o->cmd, "%s", err.msg[0] ? err.msg : llmc_strerror(st));
        return cli_exit_for(st);
    }
    return 0;
}

static void print_explained(const req_opts *o, llmc_cache *cache, const char *tag,
                            llmc_call_type call, const llmc_buf *key, const llmc_buf *material)
{
    const char *ns = o->ns ? o->ns : llmc_cache_namespace(cache);
    const char *strategy = llmc_cache_key_strategy_name(cache);
    printf("%skey:       %s\n", tag, key->data);
    printf("%scall:      %s\n", tag, llmc_call_type_name(call));
    printf("%sstrategy:  %s (SHA-256 of the material)\n", tag, strategy ? strategy : "v1");
    printf("%snamespace: %s\n", tag, ns && *ns ? ns : "(none)");
    printf("%smaterial:  %s\n", tag, material->len ? material->data : "(none: preset key)");
}

int llmc_cli_key(int argc, char **argv)
{
    req_opts o;
    memset(&o, 0, sizeof o);
    o.cmd = argv[0];
    o.ttl = -1;
    o.two_requests = 1;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        goto out;
    if (o.help) {
        fputs(key_help, stdout);
        rc = 0;
        goto out;
    }
    key_req kr[2] = {{LLMC_CALL_CHAT, NULL, 0}, {LLMC_CALL_CHAT, NULL, 0}};
    int nreq = o.request_file2 ? 2 : 1;
    if (nreq == 2 && o.ninputs) {
        rc = cli_usage_error(o.cmd, "two --request files cannot be combined with --input");
        goto out;
    }
    if ((rc = key_request(&o, &kr[0])) != 0)
        goto out;
    if (nreq == 2) {
        /* The second request gets the same options as the first. */
        req_opts ob = o;
        ob.request_file = o.request_file2;
        ob.request_text = o.request_text2;
        if ((rc = key_request(&ob, &kr[1])) != 0) {
            llmc_request_free(kr[0].req);
            goto out;
        }
    }
    /* Keys never need the provider; no_cache/no_store do not change them,
     * but the cache's namespace and key_strategy options do. */
    llmc_cache *cache = NULL;
    llmc_client *client = NULL;
    if ((rc = make_client(&o, 1, &cache, &client)) != 0) {
        llmc_request_free(kr[0].req);
        llmc_request_free(kr[1].req);
        goto out;
    }
    llmc_buf key = LLMC_BUF_INIT, material = LLMC_BUF_INIT;
    llmc_buf key2 = LLMC_BUF_INIT, material2 = LLMC_BUF_INIT;
    if (nreq == 1) {
        size_t n = kr[0].n;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if ((rc = key_of(&o, client, &kr[0], i, &key, &material)) != 0)
                break;
            if (!o.explain) {
                printf("%s\n", key.data);
                continue;
            }
            if (n > 1)
                printf("%sitem:      %zu\n", i ? "\n" : "", i);
            print_explained(&o, cache, "", kr[0].call, &key, &material);
        }
    } else {
        /* Two requests: item by item, each key of A next to B's; with
         * --explain, the members of the material that differ. */
        size_t n = kr[0].n > kr[1].n ? kr[0].n : kr[1].n;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (n > 1)
                printf("%sitem:      %zu\n", i && o.explain ? "\n" : "", i);
            int has_a = i < kr[0].n, has_b = i < kr[1].n;
            llmc_buf_clear(&key);
            llmc_buf_clear(&key2);
            if ((has_a && (rc = key_of(&o, client, &kr[0], i, &key, &material)) != 0) ||
                (has_b && (rc = key_of(&o, client, &kr[1], i, &key2, &material2)) != 0))
                break;
            if (!o.explain) {
                printf("A %s\nB %s\n", has_a ? key.data : "(no such item)",
                       has_b ? key2.data : "(no such item)");
                continue;
            }
            if (!has_a || !has_b) {
                printf("%c has no item %zu\n", has_a ? 'B' : 'A', i);
                continue;
            }
            print_explained(&o, cache, "A ", kr[0].call, &key, &material);
            print_explained(&o, cache, "B ", kr[1].call, &key2, &material2);
            printf("same key:  %s\n", strcmp(key.data, key2.data) == 0 ? "yes" : "no");
            cli_key_diff(stdout, material.data ? material.data : "", material.len,
                         material2.data ? material2.data : "", material2.len);
        }
    }
    if (rc == 0 && fflush(stdout) != 0)
        rc = LLMC_CLI_EXIT_ERROR;
    llmc_buf_free(&key);
    llmc_buf_free(&material);
    llmc_buf_free(&key2);
    llmc_buf_free(&material2);
    llmc_request_free(kr[0].req);
    llmc_request_free(kr[1].req);
    llmc_client_free(client);
    llmc_cache_close(cache);
out:
    opts_free(&o);
    return rc;
}
