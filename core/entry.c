/* Entry-level cache calls: envelope + verification + fail-open policy. */
#include "hash.h"
#include "entry_read.h"
#include "internal.h"
#include "textmemo.h"
#include "tier.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ADD(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

void llmc_lookup_free(llmc_lookup *l)
{
    if (!l)
        return;
    llmc_buf_free(&l->raw);
    llmc_buf_free(&l->scratch);
    memset(&l->entry, 0, sizeof l->entry);
}

/* ---- entry MAC ----
 *
 * HMAC-SHA256 under the cache's entry_secret over a domain string, the
 * envelope fields that change what a hit returns (call type, created,
 * expires, upstream time, and from version 3 the end of the stale
 * window), the key itself and the body, each length
 * prefixed so no two different inputs share a byte string. It proves the
 * entry was written by someone holding the secret for exactly this key. */

static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void free_hmac(void) { EVP_MAC_free(hmac_alg); }

static void hmac_init(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    atexit(free_hmac);
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int llmc__entry_mac(const unsigned char *secret, size_t slen, const char *key, size_t klen,
                    const llmc_entry *e, uint8_t out[32])
{
    /* Version 3 entries cover stale_until as well, under their own
     * domain string, so a v2 MAC can never pass for a v3 entry. */
    static const char domain2[] = "llmcache entry mac v2";
    static const char domain3[] = "llmcache entry mac v3";
    int v3 = e->version >= 3;
    pthread_once(&hmac_once, hmac_init);
    if (!hmac_alg)
        return -1;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
    if (!ctx)
        return -1;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    unsigned char f[1 + 8 * 5];
    f[0] = (unsigned char)e->call;
    le64(f + 1, (uint64_t)e->created_ms);
    le64(f + 9, (uint64_t)e->expires_ms);
    le64(f + 17, (uint64_t)e->upstream_ms);
    le64(f + 25, (uint64_t)klen);
    le64(f + 33, (uint64_t)e->stale_until_ms);
    unsigned char bl[8];
    le64(bl, (uint64_t)e->body_len);
    size_t n = 0;
    int ok = EVP_MAC_init(ctx, secret, slen, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)(v3 ? domain3 : domain2),
                            sizeof domain2) &&
             EVP_MAC_update(ctx, f, v3 ? sizeof f : sizeof f - 8) &&
             EVP_MAC_update(ctx, (const unsigned char *)key, klen) &&
             EVP_MAC_update(ctx, bl, sizeof bl) &&
             (e->body_len == 0 ||
              EVP_MAC_update(ctx, (const unsigned char *)e->body, e->body_len)) &&
             EVP_MAC_final(ctx, out, &n, 32) && n == 32;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The SHA-256 of a key, which every read of an entry checks. Hits come
 * back to the same few keys, so a key this thread hashed before is not
 * hashed again (textmemo.h: exact, per thread). */
static void key_digest(const char *key, size_t klen, uint8_t d[32])
{
    uint64_t h;
    if (llmc__textmemo_get(LLMC__TEXTMEMO_KEY_SHA256, key, klen, d, 32, &h))
        return;
    llmc__sha256(key, klen, d);
    llmc__textmemo_put(LLMC__TEXTMEMO_KEY_SHA256, key, klen, h, d, 32);
}

static llmc_status verify(const llmc_serializer_ops *ser, const char *data, size_t len,
                          const char *key, size_t klen, llmc_entry *e, llmc_buf *scratch,
                          llmc_err *err)
{
    /* Members a serializer does not know about stay zero. */
    memset(e, 0, sizeof *e);
    llmc_status st = ser->decode(data, len, e, scratch, err);
    if (st != LLMC_OK)
        return st;
    if (key) {
        uint8_t d[32];
        key_digest(key, klen, d);
        if (memcmp(d, e->key_sha256, 32) != 0)
            return llmc_err_set(err, LLMC_ECORRUPT, 0,
                                "stored entry belongs to another key (key digest mismatch)");
    }
    return LLMC_OK;
}

llmc_status llmc_cache_get_entry(llmc_cache *c, const char *key, size_t klen,
                                 int64_t max_age_ms, unsigned flags, llmc_lookup *out)
{
    if (!c || !out || !key || !klen)
        return LLMC_EINVAL;
    int soft = (flags & LLMC_ENTRY_SOFT) != 0;
    llmc_stat_slot *s = llmc__stat_slot(c);
    /* A copy in the local tier costs no backend call, so neither the
     * breaker nor the failure memory hears of it. */
    uint64_t epoch = 0;
    int from_tier = c->tier && llmc__tier_get(c, key, klen, &out->raw, &epoch) == LLMC_OK;
    if (!from_tier && soft && !llmc__breaker_allow(c)) {
        ADD(s->misses, 1);
        return LLMC_MISS;
    }
    llmc_err e;
    e.status = LLMC_OK;
    e.native = 0;
    e.msg[0] = 0;
    llmc_status st =
        from_tier ? LLMC_OK : llmc__cache_get_backend(c, key, klen, &out->raw, &e);
    if (soft && !from_tier) {
        llmc__breaker_record(c, st);
        if (llmc__status_is_backend_failure(st))
            llmc__soft_failed(c);
        else
            llmc__soft_ok(c);
    }
    if (st == LLMC_MISS) {
        ADD(s->misses, 1);
        return LLMC_MISS;
    }
    if (st != LLMC_OK)
        return llmc__entry_failed(c, st, &e, flags);
    return llmc__entry_check(c, key, klen, max_age_ms, flags, from_tier, epoch, out);
}

llmc_status llmc__entry_failed(llmc_cache *c, llmc_status st, llmc_err *e, unsigned flags)
{
    llmc_stat_slot *s = llmc__stat_slot(c);
    ADD(s->errors, 1);
    if (e->msg[0] == 0)
        llmc_err_set(e, st, e->native, "%s get: %s", c->name, llmc_strerror(st));
    if (st == LLMC_ECORRUPT)
        llmc__storage_corrupt(c, e);
    llmc__cache_fail(c, e);
    if (flags & LLMC_ENTRY_SOFT) {
        ADD(s->misses, 1);
        return (flags & LLMC_ENTRY_REPORT) ? st : LLMC_MISS;
    }
    return st;
}

llmc_status llmc__entry_check(llmc_cache *c, const char *key, size_t klen, int64_t max_age_ms,
                              unsigned flags, int from_tier, uint64_t epoch, llmc_lookup *out)
{
    llmc_stat_slot *s = llmc__stat_slot(c);
    llmc_err e;
    e.status = LLMC_OK;
    e.native = 0;
    e.msg[0] = 0;
    llmc_status st =
        verify(c->ser, out->raw.data, out->raw.len, key, klen, &out->entry, &out->scratch, &e);
    if (st != LLMC_OK) {
        /* Corrupt, truncated or foreign: a miss, and remove it so it stops
         * costing a round trip. A newer format version is left alone: a
         * newer llmcache sharing the cache may still read it. */
        ADD(s->corrupt, 1);
        ADD(s->misses, 1);
        if (st != LLMC_EVERSION)
            llmc_cache_del(c, key, klen);
        llmc__log("warn", "cache %s: %s", c->url_redacted, e.msg);
        return LLMC_MISS;
    }
    if (c->entry_secret) {
        /* Not deleted: a writer without the secret (or with another one)
         * may share the backend during a rollout; the store that follows
         * this miss overwrites the entry with a MACed one. */
        uint8_t want[32];
        const char *why = NULL;
        if (!out->entry.mac_present)
            why = "has no MAC but the cache has an entry_secret";
        else if (llmc__entry_mac(c->entry_secret, c->entry_secret_len, key, klen, &out->entry,
                                 want) != 0)
            why = "MAC could not be computed";
        else if (CRYPTO_memcmp(want, out->entry.mac, 32) != 0)
            why = "MAC does not match (written without this entry_secret, or moved from "
                  "another key)";
        if (why) {
            ADD(s->mac_failures, 1);
            ADD(s->misses, 1);
            llmc__log("warn", "cache %s: stored entry %s", c->url_redacted, why);
            return LLMC_MISS;
        }
    }
    int64_t now = llmc_now_ms();
    int expired = out->entry.expires_ms && now >= out->entry.expires_ms;
    /* Only a fresh entry goes into the local tier (which never keeps it
     * past its expiry); a stale one is read from the shared backend. */
    if (!expired && c->tier && !from_tier)
        llmc__tier_fill(c, key, klen, out->raw.data, out->raw.len, out->entry.expires_ms, epoch);
    out->age_ms = now - out->entry.created_ms;
    if (out->age_ms < 0)
        out->age_ms = 0;
    /* stale_ms is the newest member of llmc_lookup: written only for a
     * caller that asks for stale entries (and so knows the member). */
    if (flags & LLMC_ENTRY_STALE)
        out->stale_ms = 0;
    if (expired || (max_age_ms >= 0 && out->age_ms > max_age_ms)) {
        /* Past its freshness (for this reader): a miss, or with
         * LLMC_ENTRY_STALE an answer while inside the entry's own stale
         * window. */
        ADD(s->misses, 1);
        if (!(flags & LLMC_ENTRY_STALE) || !out->entry.stale_until_ms ||
            now >= out->entry.stale_until_ms)
            return LLMC_MISS;
        int64_t fresh_end = out->entry.expires_ms;
        if (max_age_ms >= 0 && (!fresh_end || out->entry.created_ms + max_age_ms < fresh_end))
            fresh_end = out->entry.created_ms + max_age_ms;
        out->stale_ms = now - fresh_end > 0 ? now - fresh_end : 1;
        ADD(s->bytes_read, out->raw.len);
        return LLMC_OK;
    }
    ADD(s->hits, 1);
    ADD(s->bytes_read, out->raw.len);
    return LLMC_OK;
}

int64_t llmc__cache_stale_window(const llmc_cache *c)
{
    if (!c)
        return 0;
    return c->stale_if_error_ms > c->stale_while_revalidate_ms ? c->stale_if_error_ms
                                                               : c->stale_while_revalidate_ms;
}

llmc_status llmc__put_entry(llmc_cache *c, const char *key, size_t klen, llmc_call_type call,
                            const char *body, size_t blen, int64_t ttl_ms, int64_t upstream_ms,
                            unsigned flags, int *stored)
{
    return llmc__put_entry_kept(c, key, klen, call, body, blen, ttl_ms, -1, upstream_ms, flags,
                                stored);
}

llmc_status llmc__put_entry_kept(llmc_cache *c, const char *key, size_t klen,
                                 llmc_call_type call, const char *body, size_t blen,
                                 int64_t ttl_ms, int64_t stale_ms, int64_t upstream_ms,
                                 unsigned flags, int *stored)
{
    if (stored)
        *stored = 0;
    if (!c || !key || !klen || (!body && blen) || upstream_ms < 0)
        return LLMC_EINVAL;
    int soft = (flags & LLMC_ENTRY_SOFT) != 0;
    if (ttl_ms == LLMC_TTL_DEFAULT)
        ttl_ms = c->default_ttl_ms;
    llmc_err e;
    llmc_err_clear(&e);
    if (ttl_ms < 0) {
        llmc_err_set(&e, LLMC_EINVAL, 0, "ttl %lld ms is invalid", (long long)ttl_ms);
        return llmc__cache_fail(c, &e);
    }
    if (soft && llmc__soft_stalled(c)) {
        /* This thread's read just failed and nobody has reached the
         * backend since: a store would most likely wait out a second
         * timeout for the same request. */
        llmc__store_skipped(c);
        return LLMC_OK;
    }
    llmc_entry en;
    memset(&en, 0, sizeof en);
    en.version = LLMC_ENTRY_VERSION;
    en.serializer_id = c->ser->id;
    en.created_ms = llmc_now_ms();
    en.expires_ms = ttl_ms ? en.created_ms + ttl_ms : 0;
    /* The backend keeps the entry for its TTL plus the stale window; the
     * envelope says where freshness ends and where the window does. An
     * entry without a TTL never goes stale. */
    if (stale_ms < 0)
        stale_ms = llmc__cache_stale_window(c);
    int64_t keep_ms = ttl_ms;
    if (ttl_ms && stale_ms > 0) {
        if (stale_ms > LLMC__MAX_KEEP_MS - ttl_ms)
            stale_ms = LLMC__MAX_KEEP_MS - ttl_ms > 0 ? LLMC__MAX_KEEP_MS - ttl_ms : 0;
        keep_ms = ttl_ms + stale_ms;
        if (stale_ms > 0)
            en.stale_until_ms = en.expires_ms + stale_ms;
    }
    en.call = call;
    llmc__sha256(key, klen, en.key_sha256);
    en.body = body ? body : "";
    en.body_len = blen;
    en.upstream_ms = upstream_ms;
    if (c->entry_secret) {
        if (llmc__entry_mac(c->entry_secret, c->entry_secret_len, key, klen, &en, en.mac) != 0) {
            llmc_err_set(&e, LLMC_EINTERNAL, 0, "cannot compute the entry MAC (HMAC-SHA256)");
            ADD(llmc__stat_slot(c)->errors, 1);
            llmc__cache_fail(c, &e);
            return soft ? LLMC_OK : LLMC_EINTERNAL;
        }
        en.mac_present = 1;
    }
    llmc_buf *enc = llmc__tls_buf(LLMC_TLS_ENCODE);
    if (!enc) {
        llmc_err_set(&e, LLMC_ENOMEM, 0, "out of memory");
        return llmc__cache_fail(c, &e);
    }
    llmc_buf_clear(enc);
    llmc_status st = c->ser->encode(&en, enc, &e);
    if (st != LLMC_OK)
        return llmc__cache_fail(c, &e);
    /* Asked last, right before the backend call: an allowed call may hold
     * the breaker's probe and must report its outcome, so no early return
     * may come between. */
    if (soft && !llmc__breaker_allow(c))
        return LLMC_OK; /* dropped while the circuit is open */
    st = llmc__cache_set_raw(c, key, klen, enc->data, enc->len, keep_ms, &e);
    /* Don't keep megabytes of scratch per thread after a big entry. */
    if (enc->cap > (1u << 20))
        llmc_buf_free(enc);
    if (soft && st != LLMC_ETOOBIG) {
        llmc__breaker_record(c, st);
        if (llmc__status_is_backend_failure(st))
            llmc__soft_failed(c);
        else
            llmc__soft_ok(c);
    }
    if (st != LLMC_OK) {
        ADD(llmc__stat_slot(c)->errors, 1);
        if (!e.msg[0])
            llmc_err_set(&e, st, e.native, "%s set: %s", c->name, llmc_strerror(st));
        if (st == LLMC_ECORRUPT)
            llmc__storage_corrupt(c, &e);
        llmc__cache_fail(c, &e);
        return soft ? LLMC_OK : st;
    }
    if (stored)
        *stored = 1;
    return LLMC_OK;
}

llmc_status llmc_cache_put_entry(llmc_cache *c, const char *key, size_t klen,
                                 llmc_call_type call, const char *body, size_t blen,
                                 int64_t ttl_ms, unsigned flags)
{
    return llmc__put_entry(c, key, klen, call, body, blen, ttl_ms, 0, flags, NULL);
}

llmc_status llmc_cache_put_entry_ex(llmc_cache *c, const char *key, size_t klen,
                                    llmc_call_type call, const char *body, size_t blen,
                                    int64_t ttl_ms, int64_t upstream_ms, unsigned flags)
{
    return llmc__put_entry(c, key, klen, call, body, blen, ttl_ms, upstream_ms, flags, NULL);
}

llmc_status llmc_entry_encode(const char *serializer, const llmc_entry *e, llmc_buf *out,
                              llmc_err *err)
{
    const llmc_serializer_ops *s = llmc_find_serializer(serializer ? serializer : "json");
    if (!s)
        return llmc_err_set(err, LLMC_ENOTFOUND, 0, "unknown serializer \"%.64s\"",
                            serializer);
    if (!e || !out || (!e->body && e->body_len))
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_entry_encode: bad arguments");
    llmc_entry copy = *e;
    if (!copy.body)
        copy.body = "";
    return s->encode(&copy, out, err);
}

llmc_status llmc_entry_decode(const char *serializer, const char *data, size_t len,
                              const char *key, size_t klen, llmc_entry *e, llmc_buf *scratch,
                              llmc_err *err)
{
    const llmc_serializer_ops *s = llmc_find_serializer(serializer ? serializer : "json");
    if (!s)
        return llmc_err_set(err, LLMC_ENOTFOUND, 0, "unknown serializer \"%.64s\"",
                            serializer);
    if (!data || !e)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_entry_decode: bad arguments");
    return verify(s, data, len, key, klen, e, scratch, err);
}
