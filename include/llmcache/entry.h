/* llmcache: stored entries and serializers.
 *
 * Every cached response is stored in one envelope, whatever the
 * serializer: format version, serializer id, created time, expiry, call
 * type, the SHA-256 of the key it was stored under, and the body (the
 * normalised response JSON, or one embedding item). On read the envelope
 * and the key digest are verified; a truncated, corrupt or foreign value is
 * a miss and is deleted, never returned as data. */
#ifndef LLMCACHE_ENTRY_H
#define LLMCACHE_ENTRY_H

#include "common.h"
#include "cache.h"
#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Current envelope format version (what is written). Version 1 entries
 * (64-bit body hash, no upstream time, no MAC) are still read. Version 2
 * adds upstream_ms and the optional MAC, and checks the whole envelope
 * with CRC-32C. Version 3 adds stale_until_ms: an entry is kept past the
 * end of its freshness (expires_ms) for its stale window, and may be
 * served marked stale until then (stale-if-error,
 * stale-while-revalidate). */
#define LLMC_ENTRY_VERSION 3

typedef enum llmc_call_type {
    LLMC_CALL_RAW = 0,       /* not a completion (raw entries) */
    LLMC_CALL_CHAT = 1,      /* chat completion */
    LLMC_CALL_TEXT = 2,      /* legacy text completion */
    LLMC_CALL_EMBEDDING = 3, /* one embedding item */
    LLMC_CALL_RESPONSES = 4, /* OpenAI Responses API (POST /v1/responses) */
    LLMC_CALL_MESSAGES = 5   /* Anthropic Messages API (stored natively) */
} llmc_call_type;

/* "chat", "text", "embedding", "responses", "messages", "raw"; NULL for an
 * unknown value. */
LLMC_API const char *llmc_call_type_name(llmc_call_type t);
/* Parse the names above; LLMC_EINVAL for anything else. */
LLMC_API llmc_status llmc_call_type_parse(const char *s, llmc_call_type *out);

typedef struct llmc_entry {
    uint32_t version;        /* LLMC_ENTRY_VERSION */
    uint8_t serializer_id;   /* the writer's serializer id */
    int64_t created_ms;      /* Unix ms */
    int64_t expires_ms;      /* Unix ms when freshness ends, 0 = never */
    llmc_call_type call;
    uint8_t key_sha256[32];  /* SHA-256 of the key the entry is stored at */
    const char *body;        /* body bytes (not NUL-terminated in general) */
    size_t body_len;
    /* Members below were added with version 2; version 1 entries and
     * serializers that do not know them leave them zero. */
    int64_t upstream_ms;     /* how long the upstream call took when the
                                answer was fetched, in ms; 0 = unknown */
    uint8_t mac_present;     /* 1: mac holds the entry's HMAC-SHA256 */
    uint8_t mac[32];         /* written by the core when the cache has an
                                entry_secret; a serializer stores and
                                returns it verbatim */
    /* Added with version 3 (0 in older entries and from serializers that
     * do not know it): Unix ms until which the entry may be served stale
     * after expires_ms; 0 = no stale window. The backend keeps the entry
     * until then. */
    int64_t stale_until_ms;
} llmc_entry;

/* A serializer. `id` is written into the envelope so a reader can tell
 * who wrote it; 1 = json, 2 = binary; plugins use 128..255. The core
 * zeroes the entry before decode, so a serializer that predates
 * upstream_ms / mac leaves them 0; such a serializer cannot be used with
 * an entry_secret (every entry would miss for want of a MAC). */
typedef struct llmc_serializer_ops {
    llmc_component hdr;
    uint8_t id;
    /* Append the encoded entry to `out`. */
    llmc_status (*encode)(const llmc_entry *e, llmc_buf *out, llmc_err *err);
    /* Decode data[0..len) into *e. e->body may point into `data` or into
     * `scratch` (owned by the caller). Anything malformed, truncated or
     * written by another serializer: LLMC_ECORRUPT (or LLMC_EVERSION for a
     * newer format). Must never read past len. */
    llmc_status (*decode)(const char *data, size_t len, llmc_entry *e,
                          llmc_buf *scratch, llmc_err *err);
} llmc_serializer_ops;

/* Register a serializer (table not copied, must outlive the process).
 * LLMC_EEXIST for a duplicate name or id. */
LLMC_API llmc_status llmc_register_serializer(const llmc_serializer_ops *ops,
                                              llmc_err *err);
/* Look up by name (case-insensitive); NULL if unknown. */
LLMC_API const llmc_serializer_ops *llmc_find_serializer(const char *name);

/* SHA-256 of data[0..len) into out[32]. */
LLMC_API void llmc_sha256(const void *data, size_t len, uint8_t out[32]);
/* Lower-case hex of `n` bytes into out (2n+1 bytes, NUL-terminated). */
LLMC_API void llmc_hex(const uint8_t *in, size_t n, char *out);

/* ------------------------------------------------------------------ */
/* Entry-level cache calls, used by the completion client, the CLI and the
 * proxy: these wrap the body in the envelope with the cache's serializer,
 * and verify it on the way back. */

/* Flags for the entry calls. */
enum {
    /* Fail open: a backend error becomes LLMC_MISS on get and a dropped
     * write on put (both return LLMC_MISS / LLMC_OK), counted in stats and
     * subject to the circuit breaker. Without it the real status comes
     * back. */
    LLMC_ENTRY_SOFT = 1u << 0,
    /* With LLMC_ENTRY_SOFT, on get: a backend call that failed is still
     * counted as a miss and fed to the circuit breaker, but its status
     * (LLMC_ETIMEDOUT, LLMC_ECONN, ...) is returned instead of LLMC_MISS,
     * so a caller that hands the request to another thread can skip that
     * request's store (see llmc_request_set_no_store): one cache timeout
     * per request. On one thread the library does this by itself: a soft
     * put right after a failed soft get on the same thread is skipped. */
    LLMC_ENTRY_REPORT = 1u << 1,
    /* On get: an entry past its freshness (expiry, or older than
     * max_age_ms) but before its stale_until_ms is returned too, LLMC_OK
     * with llmc_lookup.stale_ms > 0 (counted as a miss: it is not
     * fresh). Without it such an entry is LLMC_MISS. */
    LLMC_ENTRY_STALE = 1u << 2
};

/* A looked-up entry. Free the buffer with llmc_lookup_free. */
typedef struct llmc_lookup {
    llmc_buf raw;           /* the stored bytes (owned) */
    llmc_buf scratch;       /* decode scratch (owned) */
    llmc_entry entry;       /* points into raw/scratch */
    int64_t age_ms;         /* now - created */
    /* With LLMC_ENTRY_STALE: how long ago (ms, >= 1) the entry's
     * freshness ended; 0 = fresh. Not written without that flag (a
     * caller built against an older header has no such member). */
    int64_t stale_ms;
} llmc_lookup;

#define LLMC_LOOKUP_INIT \
    {LLMC_BUF_INIT, LLMC_BUF_INIT, {0, 0, 0, 0, 0, {0}, NULL, 0, 0, 0, {0}, 0}, 0, 0}

/* Look up the entry at key and verify it (envelope, key digest, expiry,
 * and the MAC when the cache has an entry_secret). max_age_ms >= 0 rejects
 * entries older than that (s-maxage); -1 accepts any age. LLMC_OK with
 * *out filled (out->entry.upstream_ms: the upstream time saved, 0 when
 * unknown), LLMC_MISS when absent, expired, too old or invalid (invalid
 * entries are deleted and counted as corrupt; a missing or wrong MAC is
 * counted in llmc_stats.mac_failures and left in place, the next store
 * overwrites it). Thread-safe like the cache handle. */
LLMC_API llmc_status llmc_cache_get_entry(llmc_cache *c, const char *key, size_t klen,
                                          int64_t max_age_ms, unsigned flags,
                                          llmc_lookup *out);

/* The entries of n keys at once, each looked up and verified exactly as
 * llmc_cache_get_entry does (same flags, max_age_ms, counting, deletion
 * of corrupt values, MAC check), for one backend round trip: keys the
 * local tier (l1_* options) holds are answered from it, the others are
 * read with one batch get (Redis MGET, per hash slot on a cluster;
 * memcached multi-get; one get per key on backends without a batch get,
 * such as SQLite) and, when fresh, kept in the tier.
 *
 * outs[i] and sts[i] receive key i's lookup and status: what
 * llmc_cache_get_entry would return for it (LLMC_OK, LLMC_MISS, or an
 * error). The return value is LLMC_OK when every key was looked up (hits
 * and misses alike), else the first key's error; LLMC_EINVAL for a NULL
 * array or an empty key (nothing is read), LLMC_ENOMEM when the batch
 * cannot be set up.
 *
 * With LLMC_ENTRY_SOFT the batch is one backend call for the fail-open
 * rules: the circuit breaker is asked once (open: every key not in the
 * tier is LLMC_MISS), a failed call is counted as one error, the keys it
 * left unanswered are misses, and where gets are emulated the keys after
 * a failed one are not asked (a stalled backend costs one timeout for the
 * batch). With LLMC_ENTRY_REPORT those keys' sts[i] carry the failure.
 *
 * Ownership: outs[0..n) are the caller's, each initialised with
 * LLMC_LOOKUP_INIT (or used before) and released with llmc_lookup_free;
 * reusing them keeps their memory. An out whose status is not LLMC_OK
 * holds nothing meaningful. Keys may repeat. Thread-safe like the cache
 * handle (the arrays are not shared). */
LLMC_API llmc_status llmc_cache_get_entries(llmc_cache *c, size_t n, const char *const *keys,
                                            const size_t *klens, int64_t max_age_ms,
                                            unsigned flags, llmc_lookup *outs,
                                            llmc_status *sts);

/* Store body under key inside an envelope. ttl_ms as in llmc_cache_set.
 * The body is copied (encoded) before the call returns. Same as
 * llmc_cache_put_entry_ex with upstream_ms 0. An entry with a TTL is
 * kept for the TTL plus the cache's stale window (the larger of its
 * stale_if_error and stale_while_revalidate options; 0 by default) and
 * records both ends (expires_ms, stale_until_ms). */
LLMC_API llmc_status llmc_cache_put_entry(llmc_cache *c, const char *key, size_t klen,
                                          llmc_call_type call, const char *body,
                                          size_t blen, int64_t ttl_ms, unsigned flags);

/* As llmc_cache_put_entry, recording upstream_ms: how long the upstream
 * call that produced the body took (ms, 0 = unknown; negative is
 * LLMC_EINVAL). A later lookup returns it in entry.upstream_ms, so a hit
 * can report the time it saved. With an entry_secret the entry carries an
 * HMAC-SHA256 over the key, the body and the envelope fields. */
LLMC_API llmc_status llmc_cache_put_entry_ex(llmc_cache *c, const char *key, size_t klen,
                                             llmc_call_type call, const char *body,
                                             size_t blen, int64_t ttl_ms,
                                             int64_t upstream_ms, unsigned flags);

/* Release what a lookup holds (the struct itself is the caller's). */
LLMC_API void llmc_lookup_free(llmc_lookup *l);

/* Encode/decode with a named serializer outside a cache (tests, tools).
 * Encode writes the current version whatever e->version says, and the
 * mac only when e->mac_present. Decode also verifies the key digest when
 * key != NULL; it cannot check a MAC (no secret): use a cache handle. */
LLMC_API llmc_status llmc_entry_encode(const char *serializer, const llmc_entry *e,
                                       llmc_buf *out, llmc_err *err);
LLMC_API llmc_status llmc_entry_decode(const char *serializer, const char *data,
                                       size_t len, const char *key, size_t klen,
                                       llmc_entry *e, llmc_buf *scratch, llmc_err *err);

#ifdef __cplusplus
}
#endif
#endif
