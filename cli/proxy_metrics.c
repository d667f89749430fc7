/* The proxy's counters and GET /metrics (Prometheus text format). */

#include "proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const ep_label[EP_COUNT_] = {
    "other", "chat", "completions", "embeddings", "responses", "messages", "models", "health",
    "metrics", "cache_ping", "cache_delete", "cache_flush", "ui", "ui_data",
};

/* Upstream latency histogram bounds, seconds. */
static const double lat_bounds[N_LAT] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,  120};

void px_count_status(proxy_server *s, int status)
{
    if (status < 300)
        atomic_fetch_add(&s->m.status_2xx, 1);
    else if (status < 500)
        atomic_fetch_add(&s->m.status_4xx, 1);
    else
        atomic_fetch_add(&s->m.status_5xx, 1);
}

/* Count a hit and what it saved (for /metrics, the dashboard and the
 * response headers). */
void px_count_hit(preq *r, size_t bytes, const llmc_saving *sv)
{
    proxy_server *s = r->srv;
    atomic_fetch_add(&s->m.hits[r->ep], 1);
    atomic_fetch_add(&s->m.bytes_from_cache, bytes);
    atomic_fetch_add(&s->m.tokens_from_cache, sv->tokens);
    const char *tenant = !s->cfg->n_keys ? "-" : !r->tenant ? "-"
                         : r->tenant->ns ? r->tenant->ns : "(admin)";
    llmc_savings_add(s->savings, sv->model, tenant, ep_label[r->ep], sv);
    r->saved_set = 1;
    r->saved_priced = sv->priced;
    r->saved_tokens = sv->tokens;
    r->saved_usd = sv->usd;
}

/* The dashboard's counters (the sampler thread reads them). */
void px_ui_read(void *server, ui_counters *c)
{
    proxy_server *s = server;
    metrics *m = &s->m;
    memset(c, 0, sizeof *c);
    for (int e = EP_CHAT; e <= EP_LAST_CALL; e++) {
        c->requests += atomic_load(&m->requests[e]);
        c->hits += atomic_load(&m->hits[e]);
        c->misses += atomic_load(&m->misses[e]);
        c->bypass += atomic_load(&m->bypass[e]);
    }
    c->errors = atomic_load(&m->errors_upstream) + atomic_load(&m->errors_client) +
                atomic_load(&m->errors_internal);
    c->upstream_calls = atomic_load(&m->upstream_calls);
    c->upstream_us = atomic_load(&m->lat_sum_us);
    c->hits_timed = atomic_load(&m->hits_served);
    c->hit_us = atomic_load(&m->hit_us);
    c->tokens_served = atomic_load(&m->tokens_from_cache);
    c->inflight = atomic_load(&m->inflight);
}

void px_observe_upstream(proxy_server *s, uint64_t ns)
{
    double sec = (double)ns / 1e9;
    size_t i = 0;
    while (i < N_LAT && sec > lat_bounds[i])
        i++;
    atomic_fetch_add(&s->m.lat_buckets[i], 1);
    atomic_fetch_add(&s->m.lat_sum_us, ns / 1000);
    atomic_fetch_add(&s->m.upstream_calls, 1);
}

static void metric(llmc_buf *b, const char *name, const char *type, const char *help)
{
    llmc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A Prometheus label value: model names come from stored responses, so
 * quotes, backslashes and newlines are escaped here, where they are
 * written. */
static void label_value(llmc_buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            llmc_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            llmc_buf_puts(b, "\\n");
        else
            llmc_buf_append(b, p, 1);
    }
}

typedef struct saved_fmt {
    llmc_buf *b;
    int which;
} saved_fmt;

static void saved_row(void *ud, const llmc_savings_row *row)
{
    saved_fmt *f = ud;
    llmc_buf *b = f->b;
    static const char *const names[] = {"llmcache_saved_tokens_total", "llmcache_saved_usd_total",
                                        "llmcache_saved_seconds_total",
                                        "llmcache_saved_hits_total",
                                        "llmcache_saved_unpriced_hits_total"};
    llmc_buf_printf(b, "%s{model=\"", names[f->which]);
    label_value(b, row->model);
    llmc_buf_puts(b, "\",tenant=\"");
    label_value(b, row->tenant);
    llmc_buf_puts(b, "\",endpoint=\"");
    label_value(b, row->endpoint);
    switch (f->which) {
    case 0:
        llmc_buf_printf(b, "\"} %llu\n", (unsigned long long)row->tokens);
        break;
    case 1:
        llmc_buf_printf(b, "\"} %.9g\n", row->usd);
        break;
    case 2:
        llmc_buf_printf(b, "\"} %.6f\n", row->seconds);
        break;
    case 3:
        llmc_buf_printf(b, "\"} %llu\n", (unsigned long long)row->hits);
        break;
    default:
        llmc_buf_printf(b, "\"} %llu\n", (unsigned long long)row->unpriced_hits);
        break;
    }
}

static void saved_metrics(proxy_server *s, llmc_buf *b)
{
    static const char *const help[][2] = {
        {"llmcache_saved_tokens_total", "Tokens (usage.total_tokens) of the original calls that "
                                        "cache hits replaced, by model, tenant and endpoint."},
        {"llmcache_saved_usd_total", "Dollars the original calls of cache hits cost, at the "
                                     "price table's prices (unpriced models count 0)."},
        {"llmcache_saved_seconds_total", "Upstream latency of the original calls that cache hits "
                                         "replaced (hits of unknown latency count 0)."},
        {"llmcache_saved_hits_total", "Cache hits counted in the saved_* metrics."},
        {"llmcache_saved_unpriced_hits_total", "Cache hits whose model has no price (tokens "
                                               "counted, dollars not)."},
    };
    for (int w = 0; w < 5; w++) {
        metric(b, help[w][0], "counter", help[w][1]);
        saved_fmt f = {b, w};
        llmc_savings_foreach(s->savings, saved_row, &f);
    }
}


/* The local tier in front of the cache (l1_* options). */
static void l1_metrics(llmc_buf *b, const llmc_stats *st)
{
    metric(b, "llmcache_l1_operations_total", "counter",
           "Local tier lookups by result (a hit costs no backend call).");
    llmc_buf_printf(b,
                    "llmcache_l1_operations_total{result=\"hit\"} %llu\n"
                    "llmcache_l1_operations_total{result=\"miss\"} %llu\n",
                    (unsigned long long)st->l1_hits, (unsigned long long)st->l1_misses);
    metric(b, "llmcache_l1_fills_total", "counter", "Copies taken into the local tier.");
    llmc_buf_printf(b, "llmcache_l1_fills_total %llu\n", (unsigned long long)st->l1_fills);
    metric(b, "llmcache_l1_evictions_total", "counter",
           "Local tier copies dropped for room (l1_entries, l1_bytes).");
    llmc_buf_printf(b, "llmcache_l1_evictions_total %llu\n",
                    (unsigned long long)st->l1_evictions);
    metric(b, "llmcache_l1_invalidations_total", "counter",
           "Deletes and flushes heard from other processes sharing the cache.");
    llmc_buf_printf(b, "llmcache_l1_invalidations_total %llu\n",
                    (unsigned long long)st->l1_invalidations);
    metric(b, "llmcache_l1_resyncs_total", "counter",
           "Invalidation subscriptions (re)established; each empties the local tier.");
    llmc_buf_printf(b, "llmcache_l1_resyncs_total %llu\n", (unsigned long long)st->l1_resyncs);
    metric(b, "llmcache_l1_live", "gauge",
           "1 while the local tier may serve (its invalidation channel is confirmed).");
    llmc_buf_printf(b, "llmcache_l1_live %u\n", st->l1_live);
}

/* Leases renewed while their call is upstream (coalescing caches). */
static void lease_metrics(llmc_buf *b, const llmc_stats *st)
{
    metric(b, "llmcache_lease_renewals_total", "counter",
           "Renewals of a lease held by a call that is upstream, by result (lost: it had "
           "expired or was another holder's; failed: the backend failed).");
    llmc_buf_printf(b,
                    "llmcache_lease_renewals_total{result=\"ok\"} %llu\n"
                    "llmcache_lease_renewals_total{result=\"lost\"} %llu\n"
                    "llmcache_lease_renewals_total{result=\"failed\"} %llu\n",
                    (unsigned long long)st->lease_renewals,
                    (unsigned long long)st->lease_renewals_lost,
                    (unsigned long long)st->lease_renewals_failed);
    metric(b, "llmcache_leases_kept", "gauge",
           "Leases held right now by calls that are upstream (renewed until they finish).");
    llmc_buf_printf(b, "llmcache_leases_kept %llu\n", (unsigned long long)st->leases_kept);
}

enum MHD_Result px_handle_metrics(preq *r)
{
    proxy_server *s = r->srv;
    metrics *m = &s->m;
    llmc_buf b = LLMC_BUF_INIT;
    metric(&b, "llmcache_requests_total", "counter", "HTTP requests by endpoint.");
    for (int e = 1; e < EP_COUNT_; e++)
        llmc_buf_printf(&b, "llmcache_requests_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->requests[e]));
    metric(&b, "llmcache_cache_hits_total", "counter", "Answers served from the cache.");
    for (int e = EP_CHAT; e <= EP_LAST_CALL; e++)
        llmc_buf_printf(&b, "llmcache_cache_hits_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->hits[e]));
    metric(&b, "llmcache_cache_misses_total", "counter",
           "Cacheable requests that went upstream.");
    for (int e = EP_CHAT; e <= EP_LAST_CALL; e++)
        llmc_buf_printf(&b, "llmcache_cache_misses_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->misses[e]));
    metric(&b, "llmcache_cache_bypass_total", "counter",
           "Requests with caching off (use-cache false, no cache).");
    for (int e = EP_CHAT; e <= EP_LAST_CALL; e++)
        llmc_buf_printf(&b, "llmcache_cache_bypass_total{endpoint=\"%s\"} %llu\n", ep_label[e],
                        (unsigned long long)atomic_load(&m->bypass[e]));
    metric(&b, "llmcache_coalesced_total", "counter",
           "Requests that waited for an identical in-flight request instead of going "
           "upstream.");
    llmc_buf_printf(&b, "llmcache_coalesced_total %llu\n",
                    (unsigned long long)atomic_load(&m->coalesced));
    metric(&b, "llmcache_stale_total", "counter",
           "Requests answered with a cached entry past its freshness (x-llmcache-status: "
           "STALE): the provider failed (stale-if-error) or the entry is being refreshed "
           "(stale-while-revalidate).");
    llmc_buf_printf(&b, "llmcache_stale_total %llu\n",
                    (unsigned long long)atomic_load(&m->stale));
    metric(&b, "llmcache_coalesced_replicas_total", "counter",
           "Requests answered by an identical request of another process sharing the cache "
           "(waited on its lease).");
    llmc_buf_printf(&b, "llmcache_coalesced_replicas_total %llu\n",
                    (unsigned long long)atomic_load(&m->coalesced_remote));
    metric(&b, "llmcache_coalesce_timeouts_total", "counter",
           "Waiters that gave up waiting and went upstream themselves.");
    llmc_buf_printf(&b, "llmcache_coalesce_timeouts_total %llu\n",
                    (unsigned long long)atomic_load(&m->coalesce_timeouts));
    metric(&b, "llmcache_responses_total", "counter", "Responses by status class.");
    llmc_buf_printf(&b,
                    "llmcache_responses_total{class=\"2xx\"} %llu\n"
                    "llmcache_responses_total{class=\"4xx\"} %llu\n"
                    "llmcache_responses_total{class=\"5xx\"} %llu\n",
                    (unsigned long long)atomic_load(&m->status_2xx),
                    (unsigned long long)atomic_load(&m->status_4xx),
                    (unsigned long long)atomic_load(&m->status_5xx));
    metric(&b, "llmcache_errors_total", "counter", "Errors by kind.");
    llmc_buf_printf(&b,
                    "llmcache_errors_total{kind=\"upstream\"} %llu\n"
                    "llmcache_errors_total{kind=\"client\"} %llu\n"
                    "llmcache_errors_total{kind=\"auth\"} %llu\n"
                    "llmcache_errors_total{kind=\"internal\"} %llu\n",
                    (unsigned long long)atomic_load(&m->errors_upstream),
                    (unsigned long long)atomic_load(&m->errors_client),
                    (unsigned long long)atomic_load(&m->auth_failures),
                    (unsigned long long)atomic_load(&m->errors_internal));
    metric(&b, "llmcache_client_aborts_total", "counter",
           "Streams stopped because the client went away (nothing stored).");
    llmc_buf_printf(&b, "llmcache_client_aborts_total %llu\n",
                    (unsigned long long)atomic_load(&m->client_aborts));
    metric(&b, "llmcache_cache_bytes_served_total", "counter",
           "Response body bytes served from the cache.");
    llmc_buf_printf(&b, "llmcache_cache_bytes_served_total %llu\n",
                    (unsigned long long)atomic_load(&m->bytes_from_cache));
    metric(&b, "llmcache_cache_tokens_served_total", "counter",
           "usage.total_tokens of the responses served from the cache (tokens not bought).");
    llmc_buf_printf(&b, "llmcache_cache_tokens_served_total %llu\n",
                    (unsigned long long)atomic_load(&m->tokens_from_cache));
    saved_metrics(s, &b);
    px_semantic_metrics(s, &b);
    metric(&b, "llmcache_upstream_latency_seconds", "histogram",
           "Duration of calls to the providers (with retries).");
    uint64_t cum = 0;
    for (size_t i = 0; i < N_LAT; i++) {
        cum += atomic_load(&m->lat_buckets[i]);
        llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_bucket{le=\"%g\"} %llu\n",
                        lat_bounds[i], (unsigned long long)cum);
    }
    cum += atomic_load(&m->lat_buckets[N_LAT]);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_sum %.6f\n",
                    (double)atomic_load(&m->lat_sum_us) / 1e6);
    llmc_buf_printf(&b, "llmcache_upstream_latency_seconds_count %llu\n",
                    (unsigned long long)cum);
    metric(&b, "llmcache_inflight_requests", "gauge", "Requests being handled.");
    llmc_buf_printf(&b, "llmcache_inflight_requests %lld\n",
                    (long long)atomic_load(&m->inflight));
    llmc_stats st;
    if (s->cache && llmc_cache_stats(s->cache, &st, sizeof st) == LLMC_OK) {
        metric(&b, "llmcache_backend_operations_total", "counter",
               "Cache backend operations by result.");
        llmc_buf_printf(&b,
                        "llmcache_backend_operations_total{op=\"get\",result=\"hit\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"get\",result=\"miss\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"set\",result=\"ok\"} %llu\n"
                        "llmcache_backend_operations_total{op=\"any\",result=\"error\"} %llu\n",
                        (unsigned long long)st.hits, (unsigned long long)st.misses,
                        (unsigned long long)st.sets, (unsigned long long)st.errors);
        metric(&b, "llmcache_backend_get_latency_seconds", "summary",
               "Backend get latency (log-scale histogram percentiles).");
        llmc_buf_printf(&b,
                        "llmcache_backend_get_latency_seconds{quantile=\"0.5\"} %.9f\n"
                        "llmcache_backend_get_latency_seconds{quantile=\"0.99\"} %.9f\n"
                        "llmcache_backend_get_latency_seconds_sum %.9f\n"
                        "llmcache_backend_get_latency_seconds_count %llu\n",
                        (double)st.get_ns_p50 / 1e9, (double)st.get_ns_p99 / 1e9,
                        (double)st.get_ns_total / 1e9, (unsigned long long)st.get_count);
        metric(&b, "llmcache_backend_set_latency_seconds", "summary",
               "Backend set latency (log-scale histogram percentiles); the count is every "
               "store attempted.");
        llmc_buf_printf(&b,
                        "llmcache_backend_set_latency_seconds{quantile=\"0.5\"} %.9f\n"
                        "llmcache_backend_set_latency_seconds{quantile=\"0.99\"} %.9f\n"
                        "llmcache_backend_set_latency_seconds_sum %.9f\n"
                        "llmcache_backend_set_latency_seconds_count %llu\n",
                        (double)st.set_ns_p50 / 1e9, (double)st.set_ns_p99 / 1e9,
                        (double)st.set_ns_total / 1e9, (unsigned long long)st.set_count);
        metric(&b, "llmcache_backend_corrupt_total", "counter",
               "Stored entries that failed verification (deleted, counted as misses).");
        llmc_buf_printf(&b, "llmcache_backend_corrupt_total %llu\n",
                        (unsigned long long)st.corrupt);
        metric(&b, "llmcache_entry_mac_failures_total", "counter",
               "Entries whose MAC was missing or wrong under entry_secret (misses).");
        llmc_buf_printf(&b, "llmcache_entry_mac_failures_total %llu\n",
                        (unsigned long long)st.mac_failures);
        metric(&b, "llmcache_backend_breaker_open", "gauge",
               "1 while the circuit breaker skips the backend.");
        llmc_buf_printf(&b, "llmcache_backend_breaker_open %u\n", st.breaker_open);
        metric(&b, "llmcache_backend_stores_skipped_total", "counter",
               "Answers not stored because the request's cache read had just failed.");
        llmc_buf_printf(&b, "llmcache_backend_stores_skipped_total %llu\n",
                        (unsigned long long)st.stores_skipped);
        metric(&b, "llmcache_backend_corrupt_reads_total", "counter",
               "Backend calls that found the backend's storage damaged.");
        llmc_buf_printf(&b, "llmcache_backend_corrupt_reads_total %llu\n",
                        (unsigned long long)st.corrupt_reads);
        metric(&b, "llmcache_backend_storage_corrupt", "gauge",
               "1 once the backend reported damaged storage, until it is repaired.");
        llmc_buf_printf(&b, "llmcache_backend_storage_corrupt %u\n", st.storage_corrupt);
        if (st.l1_enabled)
            l1_metrics(&b, &st);
        if (llmc_cache_coalesces(s->cache))
            lease_metrics(&b, &st);
    }
    if (s->cache) {
        metric(&b, "llmcache_cache_up", "gauge",
               "1 if the cache answered its last ping (at most a second old), 0 while down.");
        llmc_buf_printf(&b, "llmcache_cache_up %d\n", proxy_cache_state_up(s->cache));
    }
    enum MHD_Result ret =
        px_queue_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL, 0);
    llmc_buf_free(&b);
    return ret;
}
