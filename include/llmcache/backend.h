/* llmcache: the backend interface, for authors of backends.
 *
 * A backend is a const table of functions registered under a name and one
 * or more URL schemes. The core (the dispatcher) validates arguments,
 * resolves TTLs, measures, counts, applies the circuit breaker and
 * emulates what a backend lacks (batches as loops, exists through get);
 * a backend only moves bytes.
 *
 * Contracts for every function:
 *  - keys and values are binary-safe and travel with explicit lengths;
 *  - `ttl_ms` given to set/mset is already resolved: 0 = no expiry,
 *    > 0 = milliseconds;
 *  - a get that finds nothing (or finds an expired value) returns
 *    LLMC_MISS, not an error;
 *  - errors fill `err` (llmc_err_set) with a status, the native code and a
 *    message that never contains a password;
 *  - get writes the value with llmc_buf_set / llmc_buf_reserve into `out`
 *    (the core owns the buffer);
 *  - a function may be NULL where marked optional; the core emulates it
 *    or answers LLMC_ENOTSUP. */
#ifndef LLMCACHE_BACKEND_H
#define LLMCACHE_BACKEND_H

#include "common.h"
#include "component.h"
#include "options.h"
#include "cache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capability bits. */
enum {
    LLMC_CAP_TTL = 1u << 0,          /* expires entries natively */
    LLMC_CAP_BATCH = 1u << 1,        /* native mget/mset */
    LLMC_CAP_SCOPED_FLUSH = 1u << 2, /* flush(namespace) */
    LLMC_CAP_THREAD_SAFE = 1u << 3,  /* one ctx may be used by many threads */
    LLMC_CAP_PERSISTENT = 1u << 4,   /* survives the process */
    LLMC_CAP_DISTRIBUTED = 1u << 5,  /* shared between machines */
    LLMC_CAP_SCAN = 1u << 6,         /* can enumerate keys */
    LLMC_CAP_REMOTE = 1u << 7,       /* talks over the network: fail open */
    LLMC_CAP_FILE_LOCATION = 1u << 8 /* the URL's location is a path, not a
                                        host list: hosts are not parsed */
};

/* One host of a URL's authority (several for memcached/cluster URLs). */
typedef struct llmc_host {
    const char *host; /* without brackets for IPv6 */
    int port;         /* -1 when the URL gave none */
} llmc_host;

/* What a backend's open receives. Strings live until open returns; copy
 * what you keep. */
typedef struct llmc_backend_config {
    uint32_t struct_size;
    const char *scheme;       /* lower-case URL scheme or type name */
    const char *url_redacted; /* for messages: password replaced by *** */
    const char *user;         /* percent-decoded, NULL if absent */
    const char *password;     /* percent-decoded, NULL if absent. Secret. */
    const char *location;     /* text between "scheme://" and '?' (or '#'),
                                 without userinfo, percent-decoded:
                                 "/abs/file.db", "rel/file.db", ":memory:",
                                 "h1:11211,h2:11212", "host:6379/2" */
    const llmc_host *hosts;   /* authority parsed as host[:port] list */
    size_t n_hosts;           /* 0 when the authority is empty, and always
                                 for LLMC_CAP_FILE_LOCATION backends */
    const char *path;         /* after the authority, from '/', decoded;
                                 "" when absent */
    /* Common options, validated by the core. */
    const char *namespace_;   /* NULL when unset */
    int64_t default_ttl_ms;   /* 0 = never */
    uint64_t max_entries;     /* 0 = unlimited */
    uint64_t max_bytes;       /* 0 = unlimited */
    uint64_t max_item_bytes;  /* 0 = unlimited */
    int64_t timeout_ms;       /* operation timeout; backends use it as the
                                 default of their own finer options */
    const llmc_options *options; /* every option (URL query and API merged):
                                    read backend-specific ones from here */
} llmc_backend_config;

/* One message received on a subscription (see llmc_backend_ops.subscribe);
 * msg is valid during the call only. */
typedef void (*llmc_message_cb)(void *ud, const void *msg, size_t len);

typedef struct llmc_backend_ops {
    llmc_component hdr;
    /* URL schemes this backend answers, NULL-terminated; NULL means only
     * hdr.name. Must not collide with another backend's. */
    const char *const *schemes;
    /* Backend-specific option names it accepts, NULL-terminated (may be
     * NULL). Any other non-common option is refused by the core. */
    const char *const *options;
    uint32_t caps;

    /* Create a context. Must fail (with a clear message) rather than
     * return a half-working context. */
    llmc_status (*open)(const llmc_backend_config *cfg, void **ctx, llmc_err *err);
    void (*close)(void *ctx);

    llmc_status (*get)(void *ctx, const char *key, size_t klen, llmc_buf *out,
                       llmc_err *err);
    llmc_status (*set)(void *ctx, const char *key, size_t klen, const void *val,
                       size_t vlen, int64_t ttl_ms, llmc_err *err);
    /* LLMC_OK if deleted, LLMC_MISS if it was absent (or OK if unknown). */
    llmc_status (*del)(void *ctx, const char *key, size_t klen, llmc_err *err);

    /* Optional: LLMC_OK / LLMC_MISS. Emulated with get when NULL. */
    llmc_status (*exists)(void *ctx, const char *key, size_t klen, llmc_err *err);
    /* Optional: batch get. sts[i] is LLMC_OK or LLMC_MISS or an error per
     * key; returns non-OK only if the whole batch failed. */
    llmc_status (*mget)(void *ctx, size_t n, const char *const *keys,
                        const size_t *klens, llmc_buf *vals, llmc_status *sts,
                        llmc_err *err);
    /* Optional: batch set; items carry resolved ttl_ms. */
    llmc_status (*mset)(void *ctx, size_t n, const llmc_kv *items, llmc_err *err);
    /* Optional: delete every key of namespace ns (keys "ns:..."). */
    llmc_status (*flush)(void *ctx, const char *ns, size_t nslen, uint64_t *deleted,
                         llmc_err *err);
    /* Optional: delete everything. */
    llmc_status (*flush_all)(void *ctx, llmc_err *err);
    /* Optional: LLMC_OK if the backend answers. Treated as OK when NULL. */
    llmc_status (*ping)(void *ctx, llmc_err *err);
    /* Optional: report backend-specific counters. */
    llmc_status (*stats)(void *ctx, llmc_stat_cb cb, void *ud);
    /* Optional: enumerate live keys with a prefix. */
    llmc_status (*scan)(void *ctx, const char *prefix, size_t plen, llmc_scan_cb cb,
                        void *ud, llmc_err *err);
    /* Optional: remaining TTL in ms, -1 for none; LLMC_MISS if absent. */
    llmc_status (*ttl)(void *ctx, const char *key, size_t klen, int64_t *ttl_ms,
                       llmc_err *err);
    /* Optional: verify the backend's own storage and,
     * with LLMC_CHECK_REPAIR in flags, rebuild it; fills *out (zeroed by
     * the core). LLMC_OK when healthy or repaired, LLMC_ECORRUPT when
     * damaged and not repaired. */
    llmc_status (*check)(void *ctx, unsigned flags, llmc_check_result *out, llmc_err *err);

    /* Optional, all five or none: messages between every process that
     * shares this store (Redis pub/sub). The local tier (the l1_* cache
     * options, see docs/backends/tier.md) publishes one per write, delete
     * and flush and drops its copies on each one it receives, so a
     * delete through one process reaches every process's tier.
     *
     * publish: send msg[0..len) on `channel` (a pooled connection).
     * subscribe: open a subscription to `channel` on a connection of its
     *   own (never pooled); *sub is passed to the three calls below, all
     *   made by one thread.
     * sub_poll: wait up to wait_ms for messages, handing each to cb;
     *   LLMC_OK when none came or all were delivered.
     * sub_ping: one round trip on the subscription; every message the
     *   server published before it answered has been handed to cb when
     *   it returns LLMC_OK.
     * Any other status from sub_poll / sub_ping means the subscription is
     *   gone (server restarted, connection lost): the caller closes it and
     *   subscribes again.
     * sub_close: close it (NULL ok). */
    llmc_status (*publish)(void *ctx, const char *channel, const void *msg, size_t len,
                           llmc_err *err);
    llmc_status (*subscribe)(void *ctx, const char *channel, void **sub, llmc_err *err);
    llmc_status (*sub_poll)(void *sub, int64_t wait_ms, llmc_message_cb cb, void *ud,
                            llmc_err *err);
    llmc_status (*sub_ping)(void *sub, llmc_message_cb cb, void *ud, llmc_err *err);
    void (*sub_close)(void *sub);

    /* Optional, with lease_release: short leases, how processes sharing
     * the backend coalesce identical misses (only one goes upstream).
     * Create `key` holding token[0..tlen) for ttl_ms (> 0) only if the
     * key does not exist, atomically: LLMC_OK when created, LLMC_EEXIST
     * when the key exists (another holder). Redis: SET NX PX. */
    llmc_status (*lease_acquire)(void *ctx, const char *key, size_t klen, const char *token,
                                 size_t tlen, int64_t ttl_ms, llmc_err *err);
    /* Delete `key` only if it still holds token (a lease that expired and
     * was taken by another holder is left alone): LLMC_OK when deleted,
     * LLMC_MISS when absent or held by another token. */
    llmc_status (*lease_release)(void *ctx, const char *key, size_t klen, const char *token,
                                 size_t tlen, llmc_err *err);
    /* Optional, only with lease_acquire and lease_release: set the time
     * left on `key` to ttl_ms (> 0) only if it still holds token,
     * atomically (compare and expire in one step, so a lease that expired
     * and was taken by another holder is never extended): LLMC_OK when
     * extended, LLMC_MISS when absent or held by another token. The core
     * calls it every lease_ms / 3 while the holder's upstream call runs,
     * from a thread of its own (serialised with the other calls when the
     * backend is not LLMC_CAP_THREAD_SAFE). Without it a lease is never
     * extended, and an upstream call longer than lease_ms may be made
     * twice. Redis: a script doing GET, compare, PEXPIRE. */
    llmc_status (*lease_renew)(void *ctx, const char *key, size_t klen, const char *token,
                               size_t tlen, int64_t ttl_ms, llmc_err *err);
} llmc_backend_ops;

/* Register a backend for this process. The table must stay valid and
 * unchanged for the life of the process (it is not copied). LLMC_EEXIST if
 * its name or one of its schemes is already taken; LLMC_EABI if
 * hdr.abi_major differs or struct_size is too small; LLMC_EINVAL if
 * required functions (open, close, get, set, del) are missing. */
LLMC_API llmc_status llmc_register_backend(const llmc_backend_ops *ops, llmc_err *err);

/* Look up a backend by name or URL scheme (case-insensitive). NULL if
 * unknown (the plugin loader is tried first, see plugin.h). */
LLMC_API const llmc_backend_ops *llmc_find_backend(const char *name_or_scheme);

#ifdef __cplusplus
}
#endif
#endif
