/* The request memo: exact request text -> what preparing it resolved to
 * (key, provider, model, controls), so that a repeated request (the
 * common hit) skips tokenizing, routing and key computation, as a
 * prepared-statement cache does. It is exact: the text, the call type and
 * the salt (what outside the text the key depends on: a namespace given
 * by the caller) are compared byte for byte, and everything else the key
 * depends on is either immutable for the client (options, cache, key
 * strategy) or re-checked (the provider's api_base environment
 * variables). A request that differs in any byte takes the full prepare
 * and still hits the cache. */
#include "client_internal.h"
#include "canon.h"

#include <stdlib.h>
#include <string.h>

#define MEMO_STRIPES 16

typedef struct memo_slot {
    uint64_t h;
    char *text;      /* salt, NUL, request text */
    size_t len;      /* of the whole blob */
    llmc_call_type call;
    uint64_t env_stamp;
    llmc__memo_val v;
} memo_slot;

struct llmc__memo {
    size_t n;
    memo_slot *slots;
    pthread_mutex_t locks[MEMO_STRIPES];
};

llmc_status llmc__memo_new(size_t slots, llmc__memo **out)
{
    llmc__memo *m = calloc(1, sizeof *m);
    if (m)
        m->slots = calloc(slots, sizeof *m->slots);
    if (!m || !m->slots) {
        free(m);
        return LLMC_ENOMEM;
    }
    m->n = slots;
    for (int i = 0; i < MEMO_STRIPES; i++)
        pthread_mutex_init(&m->locks[i], NULL);
    *out = m;
    return LLMC_OK;
}

void llmc__memo_free(llmc__memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->slots[i].text);
    free(m->slots);
    for (int i = 0; i < MEMO_STRIPES; i++)
        pthread_mutex_destroy(&m->locks[i]);
    free(m);
}

static uint64_t env_stamp(const llmc_provider_ops *ops)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; ops->env_api_base && ops->env_api_base[i]; i++) {
        const char *v = getenv(ops->env_api_base[i]);
        h = (h ^ (v ? llmc__hash64(v, strlen(v)) : 0x5bd1e995u)) * 1099511628211ull;
    }
    return h;
}

static uint64_t memo_hash(const char *text, size_t len, const char *salt)
{
    uint64_t h = llmc__hash64(text, len);
    if (salt)
        h ^= llmc__hash64(salt, strlen(salt)) * 0x9e3779b97f4a7c15ull;
    return h;
}

static int same(const memo_slot *sl, const char *text, size_t len, const char *salt)
{
    size_t sl_len = salt ? strlen(salt) + 1 : 0;
    if (sl->len != sl_len + len)
        return 0;
    if (salt && memcmp(sl->text, salt, sl_len) != 0)
        return 0;
    return memcmp(sl->text + sl_len, text, len) == 0;
}

int llmc__memo_get(llmc__memo *m, llmc_call_type call, const char *text, size_t len,
                   const char *salt, llmc__memo_val *out, char *key, char *model)
{
    if (!m || len > LLMC__MEMO_MAX_TEXT)
        return 0;
    uint64_t h = memo_hash(text, len, salt);
    size_t i = (size_t)(h % m->n);
    pthread_mutex_t *lk = &m->locks[i % MEMO_STRIPES];
    int found = 0;
    pthread_mutex_lock(lk);
    memo_slot *sl = &m->slots[i];
    if (sl->text && sl->h == h && sl->call == call && same(sl, text, len, salt) &&
        sl->env_stamp == env_stamp(sl->v.ops)) {
        /* Only the bytes in use: this copy is on every memo hit. */
        const llmc__memo_val *v = &sl->v;
        out->ops = v->ops;
        out->no_cache = v->no_cache;
        out->no_store = v->no_store;
        out->stream = v->stream;
        out->ttl_ms = v->ttl_ms;
        out->max_age_ms = v->max_age_ms;
        out->sie_ms = v->sie_ms;
        out->swr_ms = v->swr_ms;
        memcpy(key, v->key, v->klen + 1);
        out->klen = v->klen;
        memcpy(model, v->model, strlen(v->model) + 1);
        found = 1;
    }
    pthread_mutex_unlock(lk);
    return found;
}

void llmc__memo_put(llmc__memo *m, llmc_call_type call, const char *text, size_t len,
                    const char *salt, const llmc__memo_val *v)
{
    if (!m || len > LLMC__MEMO_MAX_TEXT || v->klen >= LLMC__MEMO_MAX_KEY)
        return;
    uint64_t h = memo_hash(text, len, salt);
    size_t sl_len = salt ? strlen(salt) + 1 : 0;
    size_t i = (size_t)(h % m->n);
    pthread_mutex_t *lk = &m->locks[i % MEMO_STRIPES];
    pthread_mutex_lock(lk);
    memo_slot *sl = &m->slots[i];
    size_t need = sl_len + len;
    char *t = sl->len >= need && sl->text ? sl->text : realloc(sl->text, need ? need : 1);
    if (t) {
        if (salt)
            memcpy(t, salt, sl_len);
        memcpy(t + sl_len, text, len);
        sl->text = t;
        sl->len = need;
        sl->h = h;
        sl->call = call;
        sl->env_stamp = env_stamp(v->ops);
        sl->v = *v;
    }
    pthread_mutex_unlock(lk);
}
