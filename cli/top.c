/* llmcache top: the proxy dashboard's figures, live in the terminal, and
 * the proxy savings section of `llmcache cache stats --proxy`. Both read
 * a running proxy's GET /ui/data. */
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    llmc_buf *b = ud;
    if (b->len + size * n > (64u << 20))
        return 0; /* not a dashboard document */
    llmc_buf_append(b, p, size * n);
    return size * n;
}

json_object *cli_proxy_data(const char *cmd, const char *url, const char *key, int *exit_code)
{
    *exit_code = LLMC_CLI_EXIT_ERROR;
    CURL *h = curl_easy_init();
    if (!h) {
        cli_error(cmd, "cannot start an HTTP client");
        return NULL;
    }
    llmc_buf u = LLMC_BUF_INIT, body = LLMC_BUF_INIT, auth = LLMC_BUF_INIT;
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    llmc_buf_append(&u, url, ul);
    llmc_buf_puts(&u, "/ui/data");
    struct curl_slist *hdrs = NULL;
    if (key && *key) {
        llmc_buf_printf(&auth, "Authorization: Bearer %s", key);
        hdrs = curl_slist_append(hdrs, auth.data);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, u.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    llmc_buf_free(&auth);
    json_object *o = NULL;
    char *shown = cli_redact_url(u.data);
    if (rc != CURLE_OK) {
        cli_error(cmd, "GET %s: %s", shown ? shown : "", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (status == 401 || status == 403) {
        cli_error(cmd, "GET %s: HTTP %ld: the dashboard needs the proxy's admin key (--key or "
                       "$LLMCACHE_PROXY_KEY)",
                  shown ? shown : "", status);
    } else if (status != 200) {
        cli_error(cmd, "GET %s: HTTP %ld (is this an llmcache proxy?)", shown ? shown : "",
                  status);
    } else {
        json_tokener *tok = json_tokener_new();
        o = tok ? json_tokener_parse_ex(tok, body.data ? body.data : "", (int)body.len) : NULL;
        if (tok)
            json_tokener_free(tok);
        json_object *t;
        if (!json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "totals", &t)) {
            cli_error(cmd, "GET %s: the answer is not an llmcache dashboard document",
                      shown ? shown : "");
            json_object_put(o);
            o = NULL;
        } else {
            *exit_code = LLMC_CLI_EXIT_OK;
        }
    }
    free(shown);
    llmc_buf_free(&u);
    llmc_buf_free(&body);
    return o;
}

/* ---- reading the document ---- */

static json_object *get(json_object *o, const char *a, const char *b)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return v;
}

static double num(json_object *o, const char *a, const char *b)
{
    json_object *v = get(o, a, b);
    return v ? json_object_get_double(v) : 0;
}

static const char *str(json_object *o, const char *a, const char *b)
{
    json_object *v = get(o, a, b);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* 1234567 -> "1,234,567" */
static const char *grouped(double v, char *buf, size_t sz)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", v < 0 ? 0 : v);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < sz; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = raw[i];
    }
    buf[o] = '\0';
    return buf;
}

static const char *usd(double v, char *buf, size_t sz)
{
    if (v == 0)
        snprintf(buf, sz, "$0.00");
    else if (v < 0.000001)
        snprintf(buf, sz, "<$0.000001");
    else if (v < 0.01)
        snprintf(buf, sz, "$%.6f", v);
    else
        snprintf(buf, sz, "$%.4f", v);
    return buf;
}

static const char *dur(double s, char *buf, size_t sz)
{
    if (s < 1)
        snprintf(buf, sz, "%.0f ms", s * 1000);
    else if (s < 120)
        snprintf(buf, sz, "%.1f s", s);
    else if (s < 7200)
        snprintf(buf, sz, "%.1f min", s / 60);
    else
        snprintf(buf, sz, "%.1f h", s / 3600);
    return buf;
}

/* Text from the proxy (model names come from stored responses), made
 * safe for a terminal: control bytes, escapes included, become '?'. At
 * most `width` bytes; padded to it when `pad`. */
static void put_text(FILE *f, const char *s, int width, int pad)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n < width; p++, n++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    for (; pad && n < width; n++)
        fputc(' ', f);
}

static void put_label(FILE *f, const char *s, int width)
{
    put_text(f, s, width, 1);
}

static void table(FILE *f, json_object *rows, const char *title)
{
    char a[32], b[32], c[32];
    fprintf(f, "%-32s %8s %12s %12s\n", title, "HITS", "TOKENS", "SAVED");
    size_t n = json_object_is_type(rows, json_type_array) ? json_object_array_length(rows) : 0;
    if (n == 0)
        fprintf(f, "  (no hits yet)\n");
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(rows, i);
        put_label(f, str(r, "name", NULL), 32);
        int unpriced = num(r, "unpriced_hits", NULL) >= num(r, "hits", NULL);
        fprintf(f, " %8s %12s %12s\n", grouped(num(r, "hits", NULL), a, sizeof a),
                grouped(num(r, "tokens", NULL), b, sizeof b),
                unpriced ? "no price" : usd(num(r, "usd", NULL), c, sizeof c));
    }
}

void cli_print_savings(FILE *f, json_object *d)
{
    char a[32], b[32], c[32];
    fprintf(f, "saved:         %s, %s tokens, %s of upstream time\n",
            usd(num(d, "totals", "saved_usd"), a, sizeof a),
            grouped(num(d, "totals", "saved_tokens"), b, sizeof b),
            dur(num(d, "totals", "saved_seconds"), c, sizeof c));
    if (num(d, "totals", "unpriced_hits") > 0)
        fprintf(f, "               %s hit(s) of models without a price (tokens counted, "
                   "dollars not)\n",
                grouped(num(d, "totals", "unpriced_hits"), a, sizeof a));
    if (num(d, "totals", "untimed_hits") > 0)
        fprintf(f, "               %s hit(s) of unknown original latency\n",
                grouped(num(d, "totals", "untimed_hits"), a, sizeof a));
    const char *pe = str(d, "prices", "error"), *asof = str(d, "prices", "as_of");
    if (pe)
        fprintf(f, "prices:        none (%s)\n", pe);
    else if (asof)
        fprintf(f, "prices:        %d models, as of %s\n", (int)num(d, "prices", "models"), asof);
    fputc('\n', f);
    table(f, get(d, "top_models", NULL), "MODEL");
    fputc('\n', f);
    table(f, get(d, "top_tenants", NULL), "TENANT");
}

/* Rates over the last `window_ms` of the series. */
static void rates(json_object *d, double *req_s, double *ratio)
{
    json_object *t = get(d, "series", "t"), *rq = get(d, "series", "requests"),
                *h = get(d, "series", "hits"), *m = get(d, "series", "misses");
    *req_s = 0;
    *ratio = -1;
    size_t n = json_object_is_type(t, json_type_array) ? json_object_array_length(t) : 0;
    if (n < 2 || json_object_array_length(rq) != n || json_object_array_length(h) != n ||
        json_object_array_length(m) != n)
        return;
    size_t i0 = n >= 6 ? n - 6 : 0, i1 = n - 1;
#define AT(arr, i) json_object_get_double(json_object_array_get_idx((arr), (i)))
    double dt = (AT(t, i1) - AT(t, i0)) / 1000;
    if (dt <= 0)
        return;
    *req_s = (AT(rq, i1) - AT(rq, i0)) / dt;
    double dh = AT(h, i1) - AT(h, i0), dm = AT(m, i1) - AT(m, i0);
    if (dh + dm > 0)
        *ratio = dh / (dh + dm);
#undef AT
}

static void frame(FILE *f, const char *url, json_object *d)
{
    char a[32], b[32], c[32], e[32];
    time_t now = (time_t)(num(d, "now", NULL) / 1000);
    struct tm tmv;
    char clock[16];
    localtime_r(&now, &tmv);
    strftime(clock, sizeof clock, "%H:%M:%S", &tmv);
    fprintf(f, "llmcache top  %s  (v%s, up %s)  %s\n\n", url, str(d, "version", NULL),
            dur((num(d, "now", NULL) - num(d, "started", NULL)) / 1000, a, sizeof a), clock);
    fprintf(f, "requests:      %s  (hits %s, misses %s, errors %s, in flight %.0f)\n",
            grouped(num(d, "totals", "requests"), a, sizeof a),
            grouped(num(d, "totals", "hits"), b, sizeof b),
            grouped(num(d, "totals", "misses"), c, sizeof c),
            grouped(num(d, "totals", "errors"), e, sizeof e),
            num(d, "totals", "inflight") > 0 ? num(d, "totals", "inflight") - 1 : 0);
    double rs, rr;
    rates(d, &rs, &rr);
    fprintf(f, "hit ratio:     %.1f%%", num(d, "totals", "hit_ratio") * 100);
    if (rr >= 0)
        fprintf(f, "  (last 10 s: %.1f%%, %.1f req/s)", rr * 100, rs);
    fprintf(f, "\nlatency:       hits %.2f ms, upstream calls %.0f ms\n",
            num(d, "totals", "hit_avg_ms"), num(d, "totals", "upstream_avg_ms"));
    json_object *be = get(d, "backend", NULL);
    fprintf(f, "backend:       %s %s", str(be, "name", NULL) ? str(be, "name", NULL) : "none",
            !num(be, "checked", NULL) ? "(checking)" : num(be, "up", NULL) ? "up" : "DOWN");
    if (get(be, "stats", "entries"))
        fprintf(f, ", %s entries", grouped(num(be, "stats", "entries"), a, sizeof a));
    if (get(be, "stats", "memory_bytes"))
        fprintf(f, ", %s bytes", grouped(num(be, "stats", "memory_bytes"), a, sizeof a));
    if (get(be, "stats", "evictions"))
        fprintf(f, ", %s evictions", grouped(num(be, "stats", "evictions"), a, sizeof a));
    if (str(be, "error", NULL)) {
        fputs(": ", f);
        put_text(f, str(be, "error", NULL), 160, 0);
    }
    fputc('\n', f);
    cli_print_savings(f, d);
    json_object *errs = get(d, "errors", NULL);
    size_t n = json_object_is_type(errs, json_type_array) ? json_object_array_length(errs) : 0;
    fprintf(f, "\nRECENT ERRORS\n");
    if (n == 0)
        fprintf(f, "  (none)\n");
    for (size_t i = 0; i < n && i < 5; i++) {
        json_object *x = json_object_array_get_idx(errs, i);
        time_t t = (time_t)(num(x, "t", NULL) / 1000);
        localtime_r(&t, &tmv);
        strftime(clock, sizeof clock, "%H:%M:%S", &tmv);
        fprintf(f, "  %s %3.0f ", clock, num(x, "status", NULL));
        put_label(f, str(x, "path", NULL), 24);
        fputc(' ', f);
        put_text(f, str(x, "message", NULL), 100, 0);
        fputc('\n', f);
    }
}

static volatile sig_atomic_t stop_top;

static void on_signal(int sig)
{
    (void)sig;
    stop_top = 1;
}

static const char top_help[] =
    "usage: llmcache top [--url URL] [--key KEY] [--interval SECONDS] [--once]\n"
    "\n"
    "The figures of a running proxy's dashboard (GET /ui), live in the terminal:\n"
    "requests and hit ratio, what the hits saved (dollars, tokens, upstream time),\n"
    "hit and upstream latency, top models and tenants, the cache backend's state\n"
    "and recent errors. Refreshes in place until interrupted.\n"
    "\n"
    "  --url URL          the proxy (default: $LLMCACHE_PROXY_URL, else\n"
    "                     http://127.0.0.1:4000)\n"
    "  --key KEY          an admin key of the proxy (default: $LLMCACHE_PROXY_KEY)\n"
    "  --interval S       seconds between refreshes (default 2)\n"
    "  --once             print one frame and exit (no screen control)\n"
    "\n"
    "Exit status: 0 ok, 1 the proxy could not be read, 2 usage.\n";

int llmc_cli_top(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'}, {"key", required_argument, NULL, 'k'},
        {"interval", required_argument, NULL, 'i'}, {"once", no_argument, NULL, '1'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *url = getenv("LLMCACHE_PROXY_URL"), *key = getenv("LLMCACHE_PROXY_KEY");
    if (!url || !*url)
        url = "http://127.0.0.1:4000";
    int64_t interval = 2;
    int once = 0, ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'k': key = optarg; break;
        case 'i':
            if ((interval = cli_parse_seconds(optarg)) < 1 || interval > 3600)
                return cli_usage_error("top", "--interval '%s': expected 1 to 3600 seconds",
                                       optarg);
            break;
        case '1': once = 1; break;
        case 'h': fputs(top_help, stdout); return LLMC_CLI_EXIT_OK;
        case ':': return cli_bad_option("top", argv[optind - 1], 1);
        default: return cli_bad_option("top", argv[optind - 1], 0);
        }
    }
    if (optind < argc)
        return cli_usage_error("top", "unexpected argument '%s'", argv[optind]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *shown = cli_redact_url(url);
    int tty = !once && isatty(STDOUT_FILENO);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int rc = LLMC_CLI_EXIT_OK;
    while (!stop_top) {
        json_object *d = cli_proxy_data("top", url, key, &rc);
        if (!d)
            break;
        if (tty)
            fputs("\033[H\033[2J", stdout); /* home, clear: the frame replaces the last */
        frame(stdout, shown ? shown : url, d);
        json_object_put(d);
        if (fflush(stdout) != 0) {
            rc = LLMC_CLI_EXIT_ERROR;
            break;
        }
        if (once)
            break;
        if (!tty)
            fputc('\n', stdout);
        for (int64_t i = 0; i < interval * 10 && !stop_top; i++)
            usleep(100000);
    }
    free(shown);
    curl_global_cleanup();
    return rc;
}
