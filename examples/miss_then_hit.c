/* The smallest useful llmcache program: compute the cache key of an
 * OpenAI-format request, look it up, "call the model" on a miss and store
 * the answer, then look it up again and get a hit.
 *
 *   ./build/examples/miss_then_hit [cache-url]
 *
 * With no argument the cache is $LLMCACHE_URL, or the in-process local://
 * cache. Point it at sqlite:///tmp/demo.db and run it twice to see the
 * first lookup hit on the second run. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <llmcache/llmcache.h>

static const char *request =
    "{\"model\":\"gpt-4o-mini\",\"temperature\":0,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of France?\"}]}";

/* Stand-in for the provider call (the real client lives in client.h). */
static const char *fake_model_answer =
    "{\"id\":\"chatcmpl-demo\",\"object\":\"chat.completion\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Paris.\"},"
    "\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":2,\"total_tokens\":16}}";

static int lookup(llmc_cache *c, const char *key)
{
    llmc_lookup l = LLMC_LOOKUP_INIT;
    llmc_status st = llmc_cache_get_entry(c, key, strlen(key), -1, LLMC_ENTRY_SOFT, &l);
    if (st == LLMC_OK) {
        printf("HIT   age=%lldms  %.*s\n", (long long)l.age_ms, (int)l.entry.body_len,
               l.entry.body);
        llmc_lookup_free(&l);
        return 1;
    }
    printf("MISS  (%s)\n", llmc_strerror(st));
    llmc_lookup_free(&l);
    return 0;
}

int main(int argc, char **argv)
{
    llmc_cache *c = NULL;
    llmc_err err;
    if (llmc_cache_open(argc > 1 ? argv[1] : NULL, NULL, &c, &err) != LLMC_OK) {
        fprintf(stderr, "miss_then_hit: %s\n", err.msg);
        return 1;
    }
    printf("cache: %s (backend %s)\n", llmc_cache_url(c), llmc_cache_backend_name(c));

    json_object *req = json_tokener_parse(request);
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = LLMC_CALL_CHAT;
    in.provider = "openai";
    in.model = "gpt-4o-mini";
    in.request = req;
    in.namespace_ = llmc_cache_namespace(c);
    llmc_buf key = LLMC_BUF_INIT;
    if (llmc_key_compute(NULL, &in, &key, NULL, &err) != LLMC_OK) {
        fprintf(stderr, "miss_then_hit: %s\n", err.msg);
        return 1;
    }
    printf("key:   %s\n", key.data);

    int rc = 0;
    if (!lookup(c, key.data)) {
        /* miss: ask the model, store the answer for an hour */
        if (llmc_cache_put_entry(c, key.data, key.len, LLMC_CALL_CHAT, fake_model_answer,
                                 strlen(fake_model_answer), 3600 * 1000, 0) != LLMC_OK) {
            fprintf(stderr, "miss_then_hit: store failed: %s\n", llmc_cache_errmsg(c));
            rc = 1;
        }
        if (!lookup(c, key.data))
            rc = 1;
    }
    llmc_buf_free(&key);
    json_object_put(req);
    llmc_cache_close(c);
    return rc;
}
