/* Leases on entry keys: the coalescing options, the lease key, the raw
 * lease calls (every error reported) and their fail-open forms used by
 * the prepared call (core/call_coalesce.c). See include/llmcache/lease.h. */
#include "internal.h"

#include <openssl/rand.h>
#include <string.h>

#define MAX_KEY_BYTES (64 * 1024)

static int has_leases(const llmc_backend_ops *ops)
{
    return LLMC_HAS_MEMBER(llmc_backend_ops, ops, lease_acquire) && ops->lease_acquire &&
           LLMC_HAS_MEMBER(llmc_backend_ops, ops, lease_release) && ops->lease_release;
}

int llmc__lease_renewable(const llmc_cache *c)
{
    return c && has_leases(c->ops) && LLMC_HAS_MEMBER(llmc_backend_ops, c->ops, lease_renew) &&
           c->ops->lease_renew;
}

llmc_status llmc__lease_configure(llmc_cache *c, llmc_err *err)
{
    int has = has_leases(c->ops);
    int on = has;
    llmc_status st;
    if ((st = llmc_options_get_bool(c->opts, "coalesce", has, &on, err)) != LLMC_OK)
        return st;
    if (on && !has)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "option coalesce: backend %s has no leases, so it cannot coalesce "
                            "across processes (redis, redis-cluster, redis-sentinel and "
                            "memcached can)",
                            c->ops->hdr.name);
    c->coalesce = on;
    if ((st = llmc_options_get_i64(c->opts, "lease_ms", 1, 3600000, 30000, &c->lease_ms,
                                   err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "coalesce_timeout_ms", 0, 3600000, 60000,
                                   &c->coalesce_timeout_ms, err)) != LLMC_OK ||
        (st = llmc_options_get_i64(c->opts, "coalesce_poll_ms", 1, 60000, 50,
                                   &c->coalesce_poll_ms, err)) != LLMC_OK)
        return st;
    return llmc__lease_keeper_open(c, err);
}

int llmc_cache_coalesces(const llmc_cache *c)
{
    return c ? c->coalesce : 0;
}

llmc_status llmc_lease_key(const char *key, size_t klen, llmc_buf *out)
{
    if (!key || !out)
        return LLMC_EINVAL;
    /* The first namespace stays in front: a tenant's ("tenant:...")
     * leases are inside its space, where its flush reaches them. */
    const char *colon = memchr(key, ':', klen);
    size_t head = colon ? (size_t)(colon - key) + 1 : 0;
    llmc_buf_clear(out);
    if (llmc_buf_append(out, key, head) != LLMC_OK || llmc_buf_puts(out, "lease=") != LLMC_OK ||
        llmc_buf_append(out, key + head, klen - head) != LLMC_OK)
        return LLMC_ENOMEM;
    return LLMC_OK;
}

static llmc_status new_token(char token[LLMC_LEASE_TOKEN_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char raw[LLMC_LEASE_TOKEN_LEN / 2];
    if (RAND_bytes(raw, (int)sizeof raw) != 1)
        return LLMC_EIO;
    for (size_t i = 0; i < sizeof raw; i++) {
        token[2 * i] = hx[raw[i] >> 4];
        token[2 * i + 1] = hx[raw[i] & 15];
    }
    token[LLMC_LEASE_TOKEN_LEN] = '\0';
    return LLMC_OK;
}

enum lease_op { LEASE_TAKE, LEASE_DROP, LEASE_RENEW };

/* One backend lease call, serialised for backends that need it
 * (ttl_ms is unused by a drop). */
static llmc_status backend_lease(llmc_cache *c, enum lease_op op, const llmc_buf *lk,
                                 const char *token, int64_t ttl_ms, llmc_err *e)
{
    if (c->serialize)
        pthread_mutex_lock(&c->serial_lock);
    llmc_status st;
    if (op == LEASE_TAKE)
        st = c->ops->lease_acquire(c->ctx, lk->data, lk->len, token, LLMC_LEASE_TOKEN_LEN,
                                   ttl_ms, e);
    else if (op == LEASE_RENEW)
        st = c->ops->lease_renew(c->ctx, lk->data, lk->len, token, LLMC_LEASE_TOKEN_LEN,
                                 ttl_ms, e);
    else
        st = c->ops->lease_release(c->ctx, lk->data, lk->len, token, LLMC_LEASE_TOKEN_LEN, e);
    if (c->serialize)
        pthread_mutex_unlock(&c->serial_lock);
    return st;
}

static llmc_status check_args(llmc_cache *c, const char *key, size_t klen, llmc_err *e)
{
    if (!key || klen == 0)
        return llmc_err_set(e, LLMC_EINVAL, 0, "empty key");
    if (klen > MAX_KEY_BYTES)
        return llmc_err_set(e, LLMC_EINVAL, 0, "key of %zu bytes is longer than the %d byte "
                            "limit", klen, MAX_KEY_BYTES);
    if (!has_leases(c->ops))
        return llmc_err_set(e, LLMC_ENOTSUP, 0, "backend %s has no leases", c->ops->hdr.name);
    return LLMC_OK;
}

llmc_status llmc_cache_lease_acquire(llmc_cache *c, const char *key, size_t klen,
                                     int64_t ttl_ms, char token[LLMC_LEASE_TOKEN_LEN + 1])
{
    if (!c || !token)
        return LLMC_EINVAL;
    token[0] = '\0';
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = check_args(c, key, klen, &e);
    if (st == LLMC_OK && ttl_ms == LLMC_TTL_DEFAULT)
        ttl_ms = c->lease_ms;
    if (st == LLMC_OK && ttl_ms <= 0)
        st = llmc_err_set(&e, LLMC_EINVAL, 0, "lease time %lld ms: must be > 0",
                          (long long)ttl_ms);
    if (st == LLMC_OK && new_token(token) != LLMC_OK)
        st = llmc_err_set(&e, LLMC_EIO, 0, "no random bytes for a lease token");
    llmc_buf lk = LLMC_BUF_INIT;
    if (st == LLMC_OK && llmc_lease_key(key, klen, &lk) != LLMC_OK)
        st = llmc_err_set(&e, LLMC_ENOMEM, 0, "out of memory");
    if (st == LLMC_OK)
        st = backend_lease(c, LEASE_TAKE, &lk, token, ttl_ms, &e);
    llmc_buf_free(&lk);
    if (st != LLMC_OK)
        token[0] = '\0';
    if (st != LLMC_OK && st != LLMC_EEXIST)
        return llmc__cache_fail(c, &e);
    return st;
}

llmc_status llmc_cache_lease_release(llmc_cache *c, const char *key, size_t klen,
                                     const char *token)
{
    if (!c || !token)
        return LLMC_EINVAL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = check_args(c, key, klen, &e);
    if (st == LLMC_OK && strlen(token) != LLMC_LEASE_TOKEN_LEN)
        st = llmc_err_set(&e, LLMC_EINVAL, 0, "lease token must be %d characters",
                          LLMC_LEASE_TOKEN_LEN);
    llmc_buf lk = LLMC_BUF_INIT;
    if (st == LLMC_OK && llmc_lease_key(key, klen, &lk) != LLMC_OK)
        st = llmc_err_set(&e, LLMC_ENOMEM, 0, "out of memory");
    if (st == LLMC_OK)
        st = backend_lease(c, LEASE_DROP, &lk, token, 0, &e);
    llmc_buf_free(&lk);
    if (st != LLMC_OK && st != LLMC_MISS)
        return llmc__cache_fail(c, &e);
    return st;
}

llmc_status llmc_cache_lease_renew(llmc_cache *c, const char *key, size_t klen,
                                   const char *token, int64_t ttl_ms)
{
    if (!c || !token)
        return LLMC_EINVAL;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = check_args(c, key, klen, &e);
    if (st == LLMC_OK && !llmc__lease_renewable(c))
        st = llmc_err_set(&e, LLMC_ENOTSUP, 0, "backend %s cannot renew leases",
                          c->ops->hdr.name);
    if (st == LLMC_OK && ttl_ms == LLMC_TTL_DEFAULT)
        ttl_ms = c->lease_ms;
    if (st == LLMC_OK && ttl_ms <= 0)
        st = llmc_err_set(&e, LLMC_EINVAL, 0, "lease time %lld ms: must be > 0",
                          (long long)ttl_ms);
    if (st == LLMC_OK && strlen(token) != LLMC_LEASE_TOKEN_LEN)
        st = llmc_err_set(&e, LLMC_EINVAL, 0, "lease token must be %d characters",
                          LLMC_LEASE_TOKEN_LEN);
    llmc_buf lk = LLMC_BUF_INIT;
    if (st == LLMC_OK && llmc_lease_key(key, klen, &lk) != LLMC_OK)
        st = llmc_err_set(&e, LLMC_ENOMEM, 0, "out of memory");
    if (st == LLMC_OK)
        st = backend_lease(c, LEASE_RENEW, &lk, token, ttl_ms, &e);
    llmc_buf_free(&lk);
    if (st != LLMC_OK && st != LLMC_MISS)
        return llmc__cache_fail(c, &e);
    return st;
}

/* The fail-open forms: a backend that is down or stalled must cost a
 * call at most one cache timeout, as lookups and stores do (the breaker
 * and the thread's stall memory apply). A lease the server refuses (an
 * ACL without SET or EVAL, scripting disabled) only costs the
 * coalescing: it does not count against the backend. */
static llmc_status breaker_view(llmc_status st)
{
    return st == LLMC_ECONN || st == LLMC_ETIMEDOUT || st == LLMC_EIO ? st : LLMC_OK;
}

llmc_status llmc__lease_take_soft(llmc_cache *c, const char *key, size_t klen, char *token)
{
    token[0] = '\0';
    if (!c || !c->coalesce || llmc__soft_stalled(c) || !llmc__breaker_allow(c))
        return LLMC_ENOTSUP;
    if (new_token(token) != LLMC_OK)
        return LLMC_EIO;
    llmc_buf lk = LLMC_BUF_INIT;
    if (llmc_lease_key(key, klen, &lk) != LLMC_OK) {
        llmc_buf_free(&lk);
        return LLMC_ENOMEM;
    }
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = backend_lease(c, LEASE_TAKE, &lk, token, c->lease_ms, &e);
    llmc_buf_free(&lk);
    llmc__breaker_record(c, breaker_view(st));
    if (breaker_view(st) == LLMC_OK)
        llmc__soft_ok(c);
    else
        llmc__soft_failed(c);
    if (st != LLMC_OK && st != LLMC_EEXIST)
        llmc__cache_fail(c, &e);
    if (st != LLMC_OK)
        token[0] = '\0';
    return st;
}

void llmc__lease_drop_soft(llmc_cache *c, const char *key, size_t klen, const char *token)
{
    if (!c || !token[0] || llmc__soft_stalled(c) || !llmc__breaker_allow(c))
        return; /* it expires on its own */
    llmc_buf lk = LLMC_BUF_INIT;
    if (llmc_lease_key(key, klen, &lk) != LLMC_OK) {
        llmc_buf_free(&lk);
        return;
    }
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = backend_lease(c, LEASE_DROP, &lk, token, 0, &e);
    llmc_buf_free(&lk);
    llmc__breaker_record(c, breaker_view(st));
    if (st != LLMC_OK && st != LLMC_MISS)
        llmc__cache_fail(c, &e);
}

/* No stall memory here: renewals run on the keeper's own thread
 * (core/lease_keeper.c), where a slow backend delays no call; the
 * breaker still spares a failing backend. */
llmc_status llmc__lease_renew_soft(llmc_cache *c, const char *key, size_t klen,
                                   const char *token)
{
    if (!c || !token[0] || !llmc__lease_renewable(c))
        return LLMC_ENOTSUP;
    llmc_buf lk = LLMC_BUF_INIT;
    if (llmc_lease_key(key, klen, &lk) != LLMC_OK) {
        llmc_buf_free(&lk);
        return LLMC_ENOMEM;
    }
    /* Asked last: a probe the breaker grants is always recorded. */
    if (!llmc__breaker_allow(c)) {
        llmc_buf_free(&lk);
        return LLMC_ENOTSUP;
    }
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = backend_lease(c, LEASE_RENEW, &lk, token, c->lease_ms, &e);
    llmc_buf_free(&lk);
    llmc__breaker_record(c, breaker_view(st));
    if (st != LLMC_OK && st != LLMC_MISS)
        llmc__cache_fail(c, &e);
    return st;
}
