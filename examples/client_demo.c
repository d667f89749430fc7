/* The completion client in a few lines: a cache, a client, the same
 * question twice (miss, then hit with "cache": true), a streamed replay
 * of the cached answer, and embeddings with a partial hit.
 *
 * Runs offline by default: the model is answered by the mock provider
 * (LiteLLM's mock_response). Give a real model to ask a real provider,
 * with its key in the environment:
 *
 *   ./client_demo                               # local cache, mock answers
 *   ./client_demo sqlite:///tmp/llm.db          # persistent cache
 *   OPENAI_API_KEY=sk-... ./client_demo local:// gpt-4o-mini
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <llmcache/llmcache.h>

static int print_chunk(void *ud, struct json_object *chunk)
{
    int *n = ud;
    struct json_object *choices, *delta, *content;
    if (json_object_object_get_ex(chunk, "choices", &choices) &&
        json_object_array_length(choices) > 0 &&
        json_object_object_get_ex(json_object_array_get_idx(choices, 0), "delta", &delta) &&
        json_object_object_get_ex(delta, "content", &content)) {
        printf("[%s]", json_object_get_string(content));
        (*n)++;
    }
    return 0; /* non-zero would stop the stream */
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "local://";
    const char *model = argc > 2 ? argv[2] : "mock/demo-model";
    llmc_err err;
    llmc_cache *cache = NULL;
    if (llmc_cache_open(url, NULL, &cache, &err) != LLMC_OK) {
        fprintf(stderr, "cache: %s\n", err.msg);
        return 1;
    }
    llmc_client *client = NULL;
    if (llmc_client_new(cache, NULL, &client, &err) != LLMC_OK) {
        fprintf(stderr, "client: %s\n", err.msg);
        return 1;
    }

    /* A request built through the API ... */
    llmc_request *req = llmc_request_new(model);
    llmc_request_add_message(req, "system", "Answer in one short sentence.");
    llmc_request_add_message(req, "user", "What does a cache do?");
    llmc_request_set_double(req, "temperature", 0);
    if (strncmp(model, "mock/", 5) == 0)
        llmc_request_set_string(req, "mock_response",
                                "It keeps answers close so they need not be fetched again.");

    for (int round = 1; round <= 2; round++) {
        llmc_response *resp = NULL;
        if (llmc_completion(client, req, &resp, &err) != LLMC_OK) {
            fprintf(stderr, "completion: %s (%s)\n", err.msg, llmc_status_name(err.status));
            return 1;
        }
        printf("call %d: %s  [%s, key %.12s..., age %lld ms]\n", round,
               llmc_response_content(resp), llmc_response_cache_hit(resp) ? "HIT" : "miss",
               llmc_response_cache_key(resp) ? llmc_response_cache_key(resp) : "-",
               (long long)llmc_response_cache_age_ms(resp));
        if (round == 2) {
            size_t len;
            printf("        response text starts: %.40s...\n", llmc_response_text(resp, &len));
        }
        llmc_response_free(resp);
    }

    /* ... and the same call as a stream: replayed from the cache. */
    int pieces = 0;
    llmc_response *resp = NULL;
    printf("stream: ");
    if (llmc_completion_stream(client, req, print_chunk, &pieces, &resp, &err) != LLMC_OK) {
        fprintf(stderr, "\nstream: %s\n", err.msg);
        return 1;
    }
    printf("\n        %d content deltas, %s\n", pieces,
           llmc_response_cache_hit(resp) ? "replayed from the cache" : "from the provider");
    llmc_response_free(resp);
    llmc_request_free(req);

    /* Raw OpenAI-format JSON works too, with LiteLLM's cache controls. */
    const char *emb_model = strncmp(model, "mock/", 5) == 0 ? "mock/embed" : "text-embedding-3-small";
    char json[512];
    snprintf(json, sizeof json,
             "{\"model\":\"%s\",\"input\":[\"alpha\",\"beta\"],\"cache\":{\"ttl\":3600}}",
             emb_model);
    if (llmc_embedding_json(client, json, LLMC_ZSTR, &resp, &err) != LLMC_OK) {
        fprintf(stderr, "embedding: %s\n", err.msg);
        return 1;
    }
    llmc_response_free(resp);
    snprintf(json, sizeof json,
             "{\"model\":\"%s\",\"input\":[\"beta\",\"gamma\",\"alpha\"]}", emb_model);
    if (llmc_embedding_json(client, json, LLMC_ZSTR, &resp, &err) != LLMC_OK) {
        fprintf(stderr, "embedding: %s\n", err.msg);
        return 1;
    }
    printf("embeddings: %zu items, cached:", llmc_response_item_count(resp));
    for (size_t i = 0; i < llmc_response_item_count(resp); i++)
        printf(" %s", llmc_response_item_hit(resp, i) ? "yes" : "no");
    printf("\n");
    llmc_response_free(resp);

    llmc_client_free(client);
    llmc_cache_close(cache);
    return 0;
}
