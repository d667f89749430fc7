/* The proxy's dashboard: the page at GET /ui and the JSON behind it at
 * GET /ui/data (proxy_ui.c). Not installed.
 *
 * A sampler thread copies the proxy's counters into a ring of samples
 * every UI_SAMPLE_MS (cumulative values: the page computes rates from
 * neighbours) and checks the cache backend every few samples, so that a
 * request for /ui/data only formats what is already there and never
 * waits for a backend. */
#ifndef LLMC_PROXY_UI_H
#define LLMC_PROXY_UI_H

#include <stddef.h>
#include <stdint.h>

#include <llmcache/llmcache.h>

#define UI_SAMPLE_MS 2000
#define UI_SAMPLES 300 /* ten minutes */
#define UI_ERRORS 20

/* The proxy's counters at one moment (cumulative since start). */
typedef struct ui_counters {
    uint64_t requests;      /* completion/embedding requests */
    uint64_t hits, misses, bypass;
    uint64_t errors;        /* answered with status >= 400 (not 401) */
    uint64_t upstream_calls, upstream_us;
    uint64_t hits_timed, hit_us; /* served hits and their time in the proxy */
    uint64_t tokens_served;
    int64_t inflight;
} ui_counters;

typedef void (*ui_read_fn)(void *ud, ui_counters *out);

typedef struct proxy_ui proxy_ui;

/* Start the sampler. `cache` (may be NULL), `savings` and `prices` (may
 * be NULL: nothing priced; then `prices_msg` says why) are borrowed and
 * must outlive the dashboard. NULL on failure. */
proxy_ui *proxy_ui_start(llmc_cache *cache, llmc_savings *savings, const llmc_prices *prices,
                         const char *prices_msg, ui_read_fn read, void *ud);
/* Stop the sampler and free. NULL is accepted. */
void proxy_ui_stop(proxy_ui *u);

/* Remember an error answer for the "recent errors" list. `msg` must be
 * free of secrets already (the proxy scrubs its messages). Thread safe. */
void proxy_ui_note_error(proxy_ui *u, int status, const char *path, const char *msg);

/* The /ui/data document into out: samples newer than `since_ms` (unix
 * ms; 0 = all), totals, savings by model and tenant, backend state,
 * recent errors. Thread safe. */
void proxy_ui_data(proxy_ui *u, int64_t since_ms, llmc_buf *out);

/* The page (generated from cli/ui/dashboard.html at build time). */
extern const char proxy_ui_page[];
extern const size_t proxy_ui_page_len;

#endif
