/* A per-thread memo of small results computed from a text: see
 * textmemo.h. Four direct-mapped slots a kind and thread: enough for the
 * few hot entries one HTTP thread serves in turn, small enough that a
 * thread holds at most 4 x 16 KiB of copies a kind. */
#include "textmemo.h"
#include "hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TEXTMEMO_SLOTS 4

typedef struct tm_slot {
    uint64_t h;
    size_t len, cap;
    char *text;
    size_t vlen;
    unsigned char val[LLMC__TEXTMEMO_MAX_VAL];
} tm_slot;

typedef struct tm_thread {
    tm_slot s[LLMC__TEXTMEMO_KINDS][TEXTMEMO_SLOTS];
} tm_thread;

static pthread_key_t tm_key;
static pthread_once_t tm_once = PTHREAD_ONCE_INIT;

static void tm_destroy(void *p)
{
    tm_thread *t = p;
    for (int k = 0; k < LLMC__TEXTMEMO_KINDS; k++)
        for (int i = 0; i < TEXTMEMO_SLOTS; i++)
            free(t->s[k][i].text);
    free(t);
}

static void tm_init(void)
{
    pthread_key_create(&tm_key, tm_destroy);
}

static tm_thread *tm_get(int create)
{
    pthread_once(&tm_once, tm_init);
    tm_thread *t = pthread_getspecific(tm_key);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(tm_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}


int llmc__textmemo_get(int kind, const char *text, size_t len, void *val, size_t vlen,
                       uint64_t *h)
{
    *h = 0;
    if (kind < 0 || kind >= LLMC__TEXTMEMO_KINDS || len > LLMC__TEXTMEMO_MAX_TEXT ||
        vlen > LLMC__TEXTMEMO_MAX_VAL)
        return 0;
    *h = llmc__hash64(text, len);
    tm_thread *t = tm_get(0);
    if (!t)
        return 0;
    const tm_slot *s = &t->s[kind][*h % TEXTMEMO_SLOTS];
    if (!s->text || s->h != *h || s->len != len || s->vlen != vlen ||
        memcmp(s->text, text, len) != 0)
        return 0;
    memcpy(val, s->val, vlen);
    return 1;
}

void llmc__textmemo_put(int kind, const char *text, size_t len, uint64_t h, const void *val,
                        size_t vlen)
{
    if (kind < 0 || kind >= LLMC__TEXTMEMO_KINDS || len > LLMC__TEXTMEMO_MAX_TEXT ||
        vlen > LLMC__TEXTMEMO_MAX_VAL)
        return;
    tm_thread *t = tm_get(1);
    if (!t)
        return;
    tm_slot *s = &t->s[kind][h % TEXTMEMO_SLOTS];
    if (s->cap < len || !s->text) {
        char *n = realloc(s->text, len ? len : 1);
        if (!n)
            return;
        s->text = n;
        s->cap = len ? len : 1;
    }
    memcpy(s->text, text, len);
    s->len = len;
    s->h = h;
    memcpy(s->val, val, vlen);
    s->vlen = vlen;
}
