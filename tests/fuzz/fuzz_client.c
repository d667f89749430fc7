/* The completion client with several requests one after another on one
 * thread (the way a proxy worker serves different tenants), against a
 * local cache and the mock provider (no network: nonet.c refuses every
 * connection the other providers try).
 *
 * The input is one request per line (as tests/check_fastkey.c reads the
 * client's regression files); a request may start with "c:" (chat, the
 * default), "t:" (text), "e:" (embedding) or "s:" (streamed chat). All requests of one input run in order on a new
 * thread; then each runs alone on a thread of its own, through a second
 * client without the request memo. A request must get the same status,
 * cache key and content either way: nothing of an earlier (failed or
 * valid) request may change how a later one is read. */
#include "fuzz.h"

#include <pthread.h>
#include <string.h>

#include <json-c/json.h>

#include "llmcache/llmcache.h"

#define MAX_PIECES 8
#define SEP "\n"

static llmc_cache *cache;
static llmc_client *client_seq;   /* with the request memo */
static llmc_client *client_alone; /* without */

typedef struct piece {
    llmc_call_type call;
    int stream;
    const char *text;
    size_t len;
} piece;

typedef struct result {
    llmc_status st;
    char *key;
    char *content;
    size_t items;
    char *item_keys;
} result;

static int on_chunk(void *ud, struct json_object *chunk)
{
    (void)chunk;
    (*(size_t *)ud)++;
    return 0;
}

static void run_piece(llmc_client *c, const piece *p, result *r)
{
    llmc_response *resp = NULL;
    llmc_err err;
    llmc_err_clear(&err);
    size_t chunks = 0;
    if (p->stream)
        r->st = llmc_completion_stream_json(c, p->text, p->len, on_chunk, &chunks, &resp, &err);
    else if (p->call == LLMC_CALL_TEXT)
        r->st = llmc_text_completion_json(c, p->text, p->len, &resp, &err);
    else if (p->call == LLMC_CALL_EMBEDDING)
        r->st = llmc_embedding_json(c, p->text, p->len, &resp, &err);
    else
        r->st = llmc_completion_json(c, p->text, p->len, &resp, &err);
    if (r->st == LLMC_OK) {
        FUZZ_CHECK(resp != NULL, "OK without a response");
        const char *k = llmc_response_cache_key(resp);
        r->key = k ? strdup(k) : NULL;
        if (p->call != LLMC_CALL_EMBEDDING) {
            const char *ct = llmc_response_content(resp);
            r->content = ct ? strdup(ct) : NULL;
        }
        r->items = llmc_response_item_count(resp);
        llmc_buf ik = LLMC_BUF_INIT;
        for (size_t i = 0; i < r->items; i++) {
            const char *s = llmc_response_item_key(resp, i);
            llmc_buf_puts(&ik, s ? s : "(null)");
            llmc_buf_puts(&ik, "\n");
        }
        r->item_keys = llmc_buf_steal(&ik, NULL);
    } else {
        FUZZ_CHECK(resp == NULL, "failed call left a response");
        FUZZ_CHECK(err.msg[0] != 0, "%s without a message", llmc_status_name(r->st));
    }
    llmc_response_free(resp);
}

typedef struct job {
    llmc_client *c;
    const piece *p;
    size_t n;
    result *r;
} job;

static void *run_job(void *ud)
{
    job *j = ud;
    for (size_t i = 0; i < j->n; i++)
        run_piece(j->c, &j->p[i], &j->r[i]);
    return NULL;
}

static void on_thread(job *j)
{
    pthread_t t;
    FUZZ_CHECK(pthread_create(&t, NULL, run_job, j) == 0, "pthread_create");
    pthread_join(t, NULL);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    llmc_err e;
    if (llmc_cache_open("local://", NULL, &cache, &e) != LLMC_OK) {
        fprintf(stderr, "local cache: %s\n", e.msg);
        abort();
    }
    llmc_options *co = llmc_options_new();
    llmc_options_set(co, "provider", "mock");
    llmc_options_set(co, "max_retries", "0");
    llmc_options_set(co, "connect_timeout_ms", "1000");
    llmc_options_set(co, "timeout_ms", "2000");
    if (llmc_client_new(cache, co, &client_seq, &e) != LLMC_OK) {
        fprintf(stderr, "client: %s\n", e.msg);
        abort();
    }
    llmc_options_set(co, "memo_entries", "0");
    if (llmc_client_new(cache, co, &client_alone, &e) != LLMC_OK) {
        fprintf(stderr, "client: %s\n", e.msg);
        abort();
    }
    llmc_options_free(co);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    piece p[MAX_PIECES];
    size_t n = 0;
    const char *s = (const char *)data, *end = s + size;
    while (n < MAX_PIECES) {
        const char *q = memmem(s, (size_t)(end - s), SEP, strlen(SEP));
        const char *pe = q ? q : end;
        piece *pc = &p[n++];
        pc->call = LLMC_CALL_CHAT;
        pc->stream = 0;
        if (pe - s >= 2 && s[1] == ':' && strchr("ctes", s[0]) && s[0]) {
            pc->call = s[0] == 't' ? LLMC_CALL_TEXT
                                   : s[0] == 'e' ? LLMC_CALL_EMBEDDING : LLMC_CALL_CHAT;
            pc->stream = s[0] == 's';
            s += 2;
        }
        /* An exact-size copy, so reading past a request shows. */
        pc->len = (size_t)(pe - s);
        char *t = malloc(pc->len ? pc->len : 1);
        memcpy(t, s, pc->len);
        pc->text = t;
        if (!q)
            break;
        s = q + strlen(SEP);
    }
    llmc_cache_flush_all(cache);
    result seq[MAX_PIECES], alone[MAX_PIECES];
    memset(seq, 0, sizeof seq);
    memset(alone, 0, sizeof alone);
    job j = {client_seq, p, n, seq};
    on_thread(&j);
    for (size_t i = 0; i < n; i++) {
        job a = {client_alone, &p[i], 1, &alone[i]};
        on_thread(&a);
        FUZZ_CHECK(seq[i].st == alone[i].st, "request %zu: %s after the others, %s alone", i,
                   llmc_status_name(seq[i].st), llmc_status_name(alone[i].st));
        FUZZ_CHECK(same_str(seq[i].key, alone[i].key),
                   "request %zu: key %s after the others, %s alone", i, seq[i].key,
                   alone[i].key);
        FUZZ_CHECK(same_str(seq[i].content, alone[i].content),
                   "request %zu: content \"%s\" after the others, \"%s\" alone", i,
                   seq[i].content, alone[i].content);
        FUZZ_CHECK(seq[i].items == alone[i].items && same_str(seq[i].item_keys, alone[i].item_keys),
                   "request %zu: item keys differ:\n%s\n%s", i, seq[i].item_keys,
                   alone[i].item_keys);
    }
    for (size_t i = 0; i < n; i++) {
        free(seq[i].key);
        free(seq[i].content);
        free(seq[i].item_keys);
        free(alone[i].key);
        free(alone[i].content);
        free(alone[i].item_keys);
        free((char *)p[i].text);
    }
    return 0;
}
