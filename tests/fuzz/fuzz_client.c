/* The completion client with several requests one after another on one
 * thread (the way a proxy worker serves different tenants), against a
 * local cache and the mock provider (no network: nonet.c refuses every
 * connection the other providers try).
 *
 * The input is one request per line (as tests/check_fastkey.c reads the
 * client's regression files); a request may start with "c:" (chat, the
 * default), "t:" (text), "e:" (embedding) or "s:" (streamed chat).
 *
 * All requests of every input run in order on the calling thread, which
 * lives as long as the run: like a proxy worker, it has served every
 * earlier request too, failed ones included. Each request also runs
 * alone on a fresh thread, through a second client without the request
 * memo. A request must get the same status, cache key and content either
 * way: nothing of an earlier request may change how a later one is read.
 *
 * A request's result alone depends on nothing but the request, so it is
 * kept (by call type and text) and a request seen before is not run
 * alone again: a fresh thread per request was most of the time per
 * input. When a request disagrees, the requests that ran before it on
 * the long-lived thread (up to MAX_PIECES in all) are written as one
 * input (history-<pid> next to libFuzzer's artifacts, or
 * fuzz-client-history in the working directory), since the input
 * that failed may need them to fail again. */
#include "fuzz.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "llmcache/llmcache.h"

#define MAX_PIECES 16
#define SEP "\n"

static llmc_cache *cache;
static llmc_client *client_seq;   /* with the request memo */
static llmc_client *client_alone; /* without */
static char history_path[4096] = "fuzz-client-history";

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

static void result_free(result *r)
{
    free(r->key);
    free(r->content);
    free(r->item_keys);
    memset(r, 0, sizeof *r);
}

/* ---- results alone, by request ---- */

#define KEPT_MAX 4096 /* a power of two; the table is emptied when half full */

typedef struct kept {
    uint64_t h;
    char kind; /* the request's prefix letter */
    char *text;
    size_t len;
    result r;
} kept;

static kept kept_tab[KEPT_MAX];
static size_t kept_n;

static char piece_kind(const piece *p)
{
    return p->stream ? 's' : p->call == LLMC_CALL_TEXT ? 't' : p->call == LLMC_CALL_EMBEDDING ? 'e' : 'c';
}

static uint64_t piece_hash(const piece *p)
{
    uint64_t h = 1469598103934665603ull ^ (uint8_t)piece_kind(p);
    for (size_t i = 0; i < p->len; i++)
        h = (h ^ (uint8_t)p->text[i]) * 1099511628211ull;
    return h;
}

static kept *kept_slot(const piece *p, uint64_t h)
{
    for (size_t i = h & (KEPT_MAX - 1);; i = (i + 1) & (KEPT_MAX - 1)) {
        kept *k = &kept_tab[i];
        if (!k->text || (k->h == h && k->kind == piece_kind(p) && k->len == p->len &&
                         memcmp(k->text, p->text, p->len) == 0))
            return k;
    }
}

static void kept_clear(void)
{
    for (size_t i = 0; i < KEPT_MAX; i++) {
        free(kept_tab[i].text);
        result_free(&kept_tab[i].r);
        kept_tab[i].text = NULL;
    }
    kept_n = 0;
}

typedef struct job {
    const piece *p;
    result *r;
} job;

static void *run_alone(void *ud)
{
    job *j = ud;
    run_piece(client_alone, j->p, j->r);
    return NULL;
}

/* The request's result on a fresh thread (run now, or kept from before). */
static const result *alone(const piece *p)
{
    uint64_t h = piece_hash(p);
    kept *k = kept_slot(p, h);
    if (k->text)
        return &k->r;
    if (kept_n >= KEPT_MAX / 2) {
        kept_clear();
        k = kept_slot(p, h);
    }
    memset(&k->r, 0, sizeof k->r);
    job j = {p, &k->r};
    pthread_t t;
    FUZZ_CHECK(pthread_create(&t, NULL, run_alone, &j) == 0, "pthread_create");
    pthread_join(t, NULL);
    k->h = h;
    k->kind = piece_kind(p);
    k->len = p->len;
    k->text = malloc(p->len ? p->len : 1);
    memcpy(k->text, p->text, p->len);
    kept_n++;
    return &k->r;
}

/* ---- what ran before on this thread ---- */

static struct {
    char kind;
    char *text;
    size_t len;
} hist[MAX_PIECES];
static size_t hist_next, hist_n;

static void hist_add(const piece *p)
{
    free(hist[hist_next].text);
    hist[hist_next].kind = piece_kind(p);
    hist[hist_next].text = malloc(p->len ? p->len : 1);
    memcpy(hist[hist_next].text, p->text, p->len);
    hist[hist_next].len = p->len;
    hist_next = (hist_next + 1) % MAX_PIECES;
    if (hist_n < MAX_PIECES)
        hist_n++;
}

/* The last MAX_PIECES requests up to the failing one, as one input.
 * Requests never contain the separator; each gets its prefix back. */
static void hist_write(void)
{
    FILE *f = fopen(history_path, "wb");
    if (!f)
        return;
    for (size_t i = 0; i < hist_n; i++) {
        size_t at = (hist_next + MAX_PIECES - hist_n + i) % MAX_PIECES;
        fprintf(f, "%s%c:", i ? SEP : "", hist[at].kind);
        fwrite(hist[at].text, 1, hist[at].len, f);
    }
    fclose(f);
    fprintf(stderr, "the requests up to the failing one, as one input: %s\n", history_path);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    for (int i = 1; argc && argv && i < *argc; i++)
        if (strncmp((*argv)[i], "-artifact_prefix=", 17) == 0)
            snprintf(history_path, sizeof history_path, "%shistory-%ld", (*argv)[i] + 17,
                     (long)getpid());
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
    for (size_t i = 0; i < n; i++) {
        result seq;
        memset(&seq, 0, sizeof seq);
        run_piece(client_seq, &p[i], &seq);
        hist_add(&p[i]);
        const result *a = alone(&p[i]);
        int same = seq.st == a->st && same_str(seq.key, a->key) &&
                   same_str(seq.content, a->content) && seq.items == a->items &&
                   same_str(seq.item_keys, a->item_keys);
        if (!same)
            hist_write();
        FUZZ_CHECK(seq.st == a->st, "request %zu: %s after the others, %s alone", i,
                   llmc_status_name(seq.st), llmc_status_name(a->st));
        FUZZ_CHECK(same_str(seq.key, a->key), "request %zu: key %s after the others, %s alone",
                   i, seq.key, a->key);
        FUZZ_CHECK(same_str(seq.content, a->content),
                   "request %zu: content \"%s\" after the others, \"%s\" alone", i, seq.content,
                   a->content);
        FUZZ_CHECK(seq.items == a->items && same_str(seq.item_keys, a->item_keys),
                   "request %zu: item keys differ:\n%s\n%s", i, seq.item_keys, a->item_keys);
        result_free(&seq);
    }
    for (size_t i = 0; i < n; i++)
        free((char *)p[i].text);
    return 0;
}
