/* The proxy's view of semantic lookups: a HIT-SEMANTIC answer's headers
 * (x-llmcache-similarity, x-llmcache-matched-key) and the /metrics
 * histogram of the best similarity of each lookup, on hits and on
 * misses, from the library's counters (llmc_client_semantic_stats), so an
 * operator can choose a threshold from data. */
#include "proxy_internal.h"

#include <stdio.h>
#include <string.h>

void px_semantic_note(preq *r, const llmc_response *resp)
{
    double sim = 0;
    if (!llmc_response_semantic(resp, &sim))
        return;
    r->semantic = 1;
    r->similarity = sim;
    llmc_buf_clear(&r->matched_key);
    if (llmc_response_cache_key(resp))
        llmc_buf_puts(&r->matched_key, llmc_response_cache_key(resp));
}

void px_semantic_headers(preq *r, struct MHD_Response *resp)
{
    if (!r->semantic)
        return;
    char v[32];
    snprintf(v, sizeof v, "%.4f", r->similarity);
    MHD_add_response_header(resp, "x-llmcache-similarity", v);
    if (r->matched_key.len)
        MHD_add_response_header(resp, "x-llmcache-matched-key", r->matched_key.data);
}

static void histogram(llmc_buf *b, const char *outcome, const llmc_semantic_stats *st,
                      const uint64_t *buckets, uint64_t count, double sum)
{
    for (int i = 0; i < LLMC_SEMANTIC_BUCKETS; i++)
        llmc_buf_printf(b, "llmcache_semantic_best_similarity_bucket{outcome=\"%s\",le=\"%g\"} "
                           "%llu\n",
                        outcome, st->bounds[i], (unsigned long long)buckets[i]);
    llmc_buf_printf(b,
                    "llmcache_semantic_best_similarity_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n"
                    "llmcache_semantic_best_similarity_sum{outcome=\"%s\"} %.6f\n"
                    "llmcache_semantic_best_similarity_count{outcome=\"%s\"} %llu\n",
                    outcome, (unsigned long long)count, outcome, sum, outcome,
                    (unsigned long long)count);
}

void px_semantic_metrics(proxy_server *s, llmc_buf *b)
{
    llmc_semantic_stats st;
    if (!s->client || llmc_client_semantic_stats(s->client, &st, sizeof st) != LLMC_OK)
        return;
    llmc_buf_puts(b, "# HELP llmcache_semantic_best_similarity Best similarity found by each "
                     "semantic lookup that had a candidate, by outcome.\n"
                     "# TYPE llmcache_semantic_best_similarity histogram\n");
    histogram(b, "hit", &st, st.hit_buckets, st.hits, st.hit_sum);
    histogram(b, "miss", &st, st.miss_buckets, st.misses, st.miss_sum);
    llmc_buf_printf(b,
                    "# HELP llmcache_semantic_lookups_total Semantic lookups by result.\n"
                    "# TYPE llmcache_semantic_lookups_total counter\n"
                    "llmcache_semantic_lookups_total{result=\"hit\"} %llu\n"
                    "llmcache_semantic_lookups_total{result=\"miss\"} %llu\n"
                    "llmcache_semantic_lookups_total{result=\"no_candidate\"} %llu\n"
                    "llmcache_semantic_lookups_total{result=\"ineligible\"} %llu\n"
                    "# HELP llmcache_semantic_rejects_total Candidates above the threshold "
                    "refused, by whom.\n"
                    "# TYPE llmcache_semantic_rejects_total counter\n"
                    "llmcache_semantic_rejects_total{by=\"guard\"} %llu\n"
                    "llmcache_semantic_rejects_total{by=\"verifier\"} %llu\n",
                    (unsigned long long)st.hits, (unsigned long long)st.misses,
                    (unsigned long long)st.no_candidate, (unsigned long long)st.ineligible,
                    (unsigned long long)st.guard_rejects,
                    (unsigned long long)st.verifier_rejects);
}
