/* What a cache hit saved, from the C API: the same question twice (a
 * mock answer, no provider needed), then the saving of the hit, and the
 * per model / tenant counters an application can keep.
 *
 *   LLMCACHE_PRICES=share/llmcache/prices.json ./build/examples/savings_demo
 */
#include <stdio.h>
#include <string.h>

#include <llmcache/llmcache.h>

static void print_row(void *ud, const llmc_savings_row *r)
{
    (void)ud;
    printf("  %s / %s / %s: %llu hits, %llu tokens, $%.6f\n", r->model, r->tenant, r->endpoint,
           (unsigned long long)r->hits, (unsigned long long)r->tokens, r->usd);
}

int main(void)
{
    llmc_cache *cache = NULL;
    llmc_client *client = NULL;
    llmc_err err;
    if (llmc_cache_open("local://", NULL, &cache, &err) != LLMC_OK ||
        llmc_client_new(cache, NULL, &client, &err) != LLMC_OK) {
        fprintf(stderr, "savings_demo: %s\n", err.msg);
        return 1;
    }
    const char *req = "{\"model\": \"gpt-4o-mini\", \"mock_response\": \"Paris is the capital "
                      "of France.\", \"messages\": [{\"role\": \"user\", \"content\": "
                      "\"What is the capital of France?\"}]}";
    llmc_savings *counters = llmc_savings_new(0);
    for (int i = 0; i < 2; i++) {
        llmc_response *r = NULL;
        if (llmc_completion_json(client, req, strlen(req), &r, &err) != LLMC_OK) {
            fprintf(stderr, "savings_demo: %s\n", err.msg);
            return 1;
        }
        llmc_saving s;
        llmc_status st = llmc_response_saved(r, &s, &err);
        if (st == LLMC_MISS) {
            printf("call %d: miss, nothing saved\n", i + 1);
        } else {
            if (st != LLMC_OK) /* no price table: tokens and time still count */
                fprintf(stderr, "savings_demo: %s\n", err.msg);
            printf("call %d: hit, saved %llu tokens (%llu in, %llu out), %s$%.8f, %lld ms\n",
                   i + 1, (unsigned long long)s.tokens, (unsigned long long)s.input_tokens,
                   (unsigned long long)s.output_tokens, s.priced ? "" : "unpriced ", s.usd,
                   (long long)s.upstream_ms);
            llmc_savings_add(counters, s.model, "demo-tenant", "chat", &s);
        }
        llmc_response_free(r);
    }
    printf("counters:\n");
    llmc_savings_foreach(counters, print_row, NULL);
    llmc_savings_free(counters);
    llmc_client_free(client);
    llmc_cache_close(cache);
    return 0;
}
