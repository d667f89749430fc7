/* memcached backend (libmemcached 1.1).
 *
 * One file past 800 lines on purpose: the handle pool, key mapping,
 * namespace generations, leases and every operation work on one
 * private context; splitting them would export that context's guts.
 *
 * URL: memcached://[user:password@]host[:port][,host[:port]...][?options]
 *
 * Design notes:
 *  - libmemcached handles are not thread-safe, so the context keeps a
 *    configured master handle and a memcached_pool of clones. A call pops
 *    a clone (waiting at most the operation timeout), uses it without any
 *    lock of ours and pushes it back; several threads therefore talk to
 *    the servers in parallel and the backend is LLMC_CAP_THREAD_SAFE.
 *  - memcached keys are at most 250 bytes of printable ASCII without
 *    spaces. Other keys are mapped to "~h~<sha256 hex of the key>"; every
 *    key that starts with '~' is mapped too, so a mapped key can never be
 *    the literal spelling of another key, and the mapping is a pure
 *    function of the key (found again by every process).
 *  - memcached cannot enumerate keys, so a namespace ("<ns>:<rest>") is
 *    flushed by bumping a generation counter stored in memcached at
 *    "~g~<ns>". Every entry of the namespace is written with the
 *    generation in its 32-bit item flags, and a read fetches the entry and
 *    the current generation in one round trip (one multi-get), so a value
 *    written before a flush is never returned after it, whichever process
 *    flushed. A writer may use a generation it read up to ns_refresh_ms
 *    ago: at worst its write lands under an old generation and reads as a
 *    miss, it never resurrects old data. If the counter itself is lost
 *    (eviction, restart) it is re-created with a random value, so old
 *    entries do not match it either.
 *  - TTLs: memcached reads an expiration over 30 days as an absolute Unix
 *    time, so longer TTLs are sent as now + ttl.
 *
 * One file past 800 lines on purpose: it is one backend table whose
 * functions all share the key mapping, the handle pool and the namespace
 * generations above. */
#include "builtins.h"
#include "internal.h"

#include <libmemcached/memcached.h>
#include <libmemcachedutil-1.0/pool.h>
#include <openssl/sha.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MC_KEY_MAX 250
#define MC_DEFAULT_PORT 11211
#define MC_RELATIVE_TTL_MAX (60 * 60 * 24 * 30) /* memcached's 30 days */
#define MC_GEN_CACHE_MAX 256

typedef struct mc_gen {
    char *ns;
    size_t nslen;
    uint32_t gen;
    int64_t fetched_ms;
} mc_gen;

typedef struct mc_ctx {
    memcached_st *master;
    memcached_pool_st *pool;
    int64_t pool_wait_ms;
    int64_t ns_refresh_ms;
    char *url; /* redacted, for messages */

    pthread_mutex_t pool_lock; /* with pool_cond: waiting for a free clone */
    pthread_cond_t pool_cond;
    _Atomic int pool_waiters;
    pthread_mutex_t gen_lock; /* guards gens[]; never held across I/O */
    mc_gen gens[MC_GEN_CACHE_MAX];
    size_t n_gens;

    _Atomic uint64_t pool_waits, pool_timeouts, mapped_keys, gen_mismatches;
} mc_ctx;

/* ------------------------------------------------------------------ */
/* errors */

static llmc_status mc_status_of(memcached_return_t rc)
{
    switch (rc) {
    case MEMCACHED_SUCCESS:
    case MEMCACHED_STORED:
    case MEMCACHED_DELETED:
    case MEMCACHED_END:
        return LLMC_OK;
    case MEMCACHED_NOTFOUND:
        return LLMC_MISS;
    case MEMCACHED_TIMEOUT:
        return LLMC_ETIMEDOUT;
    case MEMCACHED_HOST_LOOKUP_FAILURE:
    case MEMCACHED_CONNECTION_FAILURE:
    case MEMCACHED_CONNECTION_BIND_FAILURE:
    case MEMCACHED_WRITE_FAILURE:
    case MEMCACHED_READ_FAILURE:
    case MEMCACHED_UNKNOWN_READ_FAILURE:
    case MEMCACHED_ERRNO:
    case MEMCACHED_NO_SERVERS:
    case MEMCACHED_SERVER_MARKED_DEAD:
    case MEMCACHED_SERVER_TEMPORARILY_DISABLED:
    case MEMCACHED_SOME_ERRORS:
        return LLMC_ECONN;
    case MEMCACHED_E2BIG:
        return LLMC_ETOOBIG;
    case MEMCACHED_AUTH_PROBLEM:
    case MEMCACHED_AUTH_FAILURE:
    case MEMCACHED_AUTH_CONTINUE:
        return LLMC_EAUTH;
    case MEMCACHED_PROTOCOL_ERROR:
        return LLMC_EPROTO;
    case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
        return LLMC_ENOMEM;
    default:
        return LLMC_EBACKEND;
    }
}

static llmc_status mc_fail(llmc_err *err, const memcached_st *m, memcached_return_t rc,
                           const char *what)
{
    llmc_status st = mc_status_of(rc);
    if (st == LLMC_OK || st == LLMC_MISS)
        st = LLMC_EBACKEND;
    const char *detail = m ? memcached_last_error_message(m) : NULL;
    if (!detail || !*detail)
        detail = memcached_strerror(NULL, rc);
    if (rc == MEMCACHED_E2BIG)
        return llmc_err_set(err, st, (long)rc,
                            "memcached: %s: value exceeds the server's item size limit "
                            "(memcached -I); nothing was stored", what);
    return llmc_err_set(err, st, (long)rc, "memcached: %s failed: %s", what, detail);
}

/* ------------------------------------------------------------------ */
/* keys */

static void hex_sha256(const void *data, size_t len, char out[65])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, len, md);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

static int key_is_plain(const char *k, size_t len, size_t room)
{
    if (len == 0 || len > room)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* The memcached key for a user key. out has room for MC_KEY_MAX + 1. */
static size_t map_key(mc_ctx *c, const char *k, size_t len, char *out)
{
    if (k[0] != '~' && key_is_plain(k, len, MC_KEY_MAX)) {
        memcpy(out, k, len);
        out[len] = '\0';
        return len;
    }
    if (c)
        atomic_fetch_add(&c->mapped_keys, 1);
    memcpy(out, "~h~", 3);
    hex_sha256(k, len, out + 3);
    return 3 + 64;
}

/* The key of a namespace's generation counter. */
static size_t gen_key(const char *ns, size_t nslen, char *out)
{
    if (key_is_plain(ns, nslen, MC_KEY_MAX - 3)) {
        memcpy(out, "~g~", 3);
        memcpy(out + 3, ns, nslen);
        out[3 + nslen] = '\0';
        return 3 + nslen;
    }
    memcpy(out, "~n~", 3);
    hex_sha256(ns, nslen, out + 3);
    return 3 + 64;
}

/* Length of the namespace of a key ("<ns>:..."), 0 if none. */
static size_t key_ns_len(const char *k, size_t len)
{
    const char *colon = memchr(k, ':', len);
    return colon ? (size_t)(colon - k) : 0;
}

static uint32_t gen_fold(uint64_t g)
{
    return (uint32_t)(g ^ (g >> 32));
}

/* ------------------------------------------------------------------ */
/* pool */

static memcached_st *mc_pop(mc_ctx *c, llmc_err *err)
{
    memcached_return_t rc = MEMCACHED_SUCCESS;
    memcached_st *m = memcached_pool_pop(c->pool, false, &rc);
    if (m)
        return m;
    /* Exhausted: wait for a push. memcached_pool_fetch only waits whole
     * seconds, so we keep our own condition variable; the pool calls
     * themselves never block and no lock is held across I/O. */
    atomic_fetch_add(&c->pool_waits, 1);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(c->pool_wait_ms / 1000);
    until.tv_nsec += (long)(c->pool_wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->pool_lock);
    c->pool_waiters++;
    while (!(m = memcached_pool_pop(c->pool, false, &rc))) {
        if (pthread_cond_timedwait(&c->pool_cond, &c->pool_lock, &until) == ETIMEDOUT) {
            m = memcached_pool_pop(c->pool, false, &rc);
            break;
        }
    }
    c->pool_waiters--;
    pthread_mutex_unlock(&c->pool_lock);
    if (!m) {
        atomic_fetch_add(&c->pool_timeouts, 1);
        llmc_err_set(err, LLMC_EBUSY, (long)rc,
                     "memcached: no free connection in the pool within %lld ms "
                     "(raise pool_size)", (long long)c->pool_wait_ms);
    }
    return m;
}

static void mc_push(mc_ctx *c, memcached_st *m)
{
    memcached_pool_push(c->pool, m);
    /* A waiter registers under pool_lock before re-trying the pool, so a
     * push seen with no waiters cannot be missed by one. */
    if (atomic_load(&c->pool_waiters) > 0) {
        pthread_mutex_lock(&c->pool_lock);
        pthread_cond_signal(&c->pool_cond);
        pthread_mutex_unlock(&c->pool_lock);
    }
}

/* ------------------------------------------------------------------ */
/* generation cache */

static int gen_cache_get(mc_ctx *c, const char *ns, size_t nslen, uint32_t *gen)
{
    int found = 0;
    int64_t now = llmc_now_ms();
    pthread_mutex_lock(&c->gen_lock);
    for (size_t i = 0; i < c->n_gens; i++) {
        mc_gen *g = &c->gens[i];
        if (g->nslen == nslen && memcmp(g->ns, ns, nslen) == 0) {
            if (now - g->fetched_ms <= c->ns_refresh_ms) {
                *gen = g->gen;
                found = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&c->gen_lock);
    return found;
}

static void gen_cache_put(mc_ctx *c, const char *ns, size_t nslen, uint32_t gen)
{
    int64_t now = llmc_now_ms();
    pthread_mutex_lock(&c->gen_lock);
    mc_gen *slot = NULL;
    for (size_t i = 0; i < c->n_gens; i++) {
        if (c->gens[i].nslen == nslen && memcmp(c->gens[i].ns, ns, nslen) == 0) {
            slot = &c->gens[i];
            break;
        }
    }
    if (!slot) {
        if (c->n_gens == MC_GEN_CACHE_MAX) {
            /* Many namespaces: forget them all, they are re-read. */
            for (size_t i = 0; i < c->n_gens; i++)
                free(c->gens[i].ns);
            c->n_gens = 0;
        }
        char *copy = llmc__strndup(ns, nslen);
        if (copy) {
            slot = &c->gens[c->n_gens++];
            slot->ns = copy;
            slot->nslen = nslen;
        }
    }
    if (slot) {
        slot->gen = gen;
        slot->fetched_ms = now;
    }
    pthread_mutex_unlock(&c->gen_lock);
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Read the namespace's generation, creating the counter if absent. */
static llmc_status gen_fetch(mc_ctx *c, memcached_st *m, const char *ns, size_t nslen,
                             uint32_t *gen, llmc_err *err)
{
    char gk[MC_KEY_MAX + 1];
    size_t gklen = gen_key(ns, nslen, gk);
    for (int attempt = 0; attempt < 3; attempt++) {
        size_t vlen = 0;
        uint32_t flags = 0;
        memcached_return_t rc;
        char *v = memcached_get(m, gk, gklen, &vlen, &flags, &rc);
        if (v) {
            uint64_t g;
            int bad = parse_u64(v, vlen, &g);
            free(v);
            if (bad)
                return llmc_err_set(err, LLMC_ECORRUPT, 0,
                                    "memcached: namespace generation counter holds a "
                                    "non-number (was it overwritten by another client?)");
            *gen = gen_fold(g);
            gen_cache_put(c, ns, nslen, *gen);
            return LLMC_OK;
        }
        if (rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS)
            return mc_fail(err, m, rc, "reading namespace generation");
        /* Absent: start at a random value so that entries written under a
         * counter that was lost do not match the new one. */
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint32_t)llmc_mono_ns() ^ (uint32_t)getpid();
        char num[24];
        int nl = snprintf(num, sizeof num, "%u", (unsigned)(r >> 1) + 1u);
        rc = memcached_add(m, gk, gklen, num, (size_t)nl, 0, 0);
        if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_STORED && rc != MEMCACHED_NOTSTORED &&
            rc != MEMCACHED_DATA_EXISTS)
            return mc_fail(err, m, rc, "creating namespace generation");
        /* Stored or lost the race: read it back. */
    }
    return llmc_err_set(err, LLMC_EBACKEND, 0,
                        "memcached: namespace generation counter keeps disappearing");
}

/* ------------------------------------------------------------------ */
/* open / close */

static const char *const mc_schemes[] = {"memcached", NULL};
static const char *const mc_option_names[] = {
    "binary",          "distribution",  "connect_timeout_ms", "io_timeout_ms",
    "retry_timeout_s", "pool_size",     "remove_failed",      "server_failure_limit",
    "dead_timeout_s",  "ns_refresh_ms", NULL};

static void mc_close(void *vctx)
{
    mc_ctx *c = vctx;
    if (!c)
        return;
    if (c->pool)
        memcached_pool_destroy(c->pool);
    if (c->master)
        memcached_free(c->master);
    for (size_t i = 0; i < c->n_gens; i++)
        free(c->gens[i].ns);
    pthread_mutex_destroy(&c->gen_lock);
    pthread_mutex_destroy(&c->pool_lock);
    pthread_cond_destroy(&c->pool_cond);
    free(c->url);
    free(c);
}

#define MC_KETAMA_MAX_SERVERS (MEMCACHED_CONTINUUM_SIZE / MEMCACHED_POINTS_PER_SERVER)

static llmc_status behave(memcached_st *m, memcached_behavior_t b, uint64_t v, const char *what,
                          llmc_err *err)
{
    memcached_return_t rc = memcached_behavior_set(m, b, v);
    if (rc != MEMCACHED_SUCCESS)
        return llmc_err_set(err, LLMC_EINVAL, (long)rc, "memcached: cannot set %s: %s", what,
                            memcached_strerror(m, rc));
    return LLMC_OK;
}

static llmc_status mc_open(const llmc_backend_config *cfg, void **out, llmc_err *err)
{
    const llmc_options *o = cfg->options;
    int64_t def_to = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
    int64_t connect_to, io_to, retry_s, pool_size, fail_limit, dead_s, ns_refresh;
    int binary, remove_failed;
    llmc_status st;

    if ((st = llmc_options_get_i64(o, "connect_timeout_ms", 1, 3600000, def_to, &connect_to, err)) ||
        (st = llmc_options_get_i64(o, "io_timeout_ms", 1, 3600000, def_to, &io_to, err)) ||
        (st = llmc_options_get_i64(o, "retry_timeout_s", 0, 3600, 2, &retry_s, err)) ||
        (st = llmc_options_get_i64(o, "pool_size", 1, 1024, 16, &pool_size, err)) ||
        (st = llmc_options_get_i64(o, "server_failure_limit", 0, 1000, 2, &fail_limit, err)) ||
        (st = llmc_options_get_i64(o, "dead_timeout_s", 0, 3600, 0, &dead_s, err)) ||
        (st = llmc_options_get_i64(o, "ns_refresh_ms", 0, 3600000, 1000, &ns_refresh, err)) ||
        (st = llmc_options_get_bool(o, "binary", 0, &binary, err)) ||
        (st = llmc_options_get_bool(o, "remove_failed", 0, &remove_failed, err)))
        return st;

    const char *dist = llmc_options_get(o, "distribution");
    int ketama = 1;
    if (dist && llmc__strcaseeq(dist, "modula"))
        ketama = 0;
    else if (dist && !llmc__strcaseeq(dist, "ketama"))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "memcached: option distribution must be ketama or modula, not '%s'",
                            dist);

    if (cfg->user && !cfg->password)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "memcached: SASL user given without a password in %s",
                            cfg->url_redacted ? cfg->url_redacted : "the URL");
#if !(defined(LIBMEMCACHED_WITH_SASL_SUPPORT) && LIBMEMCACHED_WITH_SASL_SUPPORT)
    if (cfg->user || cfg->password)
        return llmc_err_set(err, LLMC_ENOTSUP, 0,
                            "memcached: this libmemcached was built without SASL support; "
                            "remove the user:password from the URL");
#endif

    mc_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
    pthread_mutex_init(&c->gen_lock, NULL);
    pthread_mutex_init(&c->pool_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->pool_cond, &ca);
    pthread_condattr_destroy(&ca);
    c->pool_wait_ms = def_to;
    c->ns_refresh_ms = ns_refresh;
    c->url = llmc__strdup(cfg->url_redacted ? cfg->url_redacted : "memcached://");
    c->master = memcached_create(NULL);
    if (!c->master || !c->url) {
        mc_close(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
    }
    memcached_st *m = c->master;

    /* libmemcached's ketama continuum has room for this many servers and
     * aborts the process (an assertion) beyond: refuse the URL instead,
     * before adding them (each add copies the whole server list). */
    if (ketama && cfg->n_hosts > MC_KETAMA_MAX_SERVERS) {
        llmc_err_set(err, LLMC_EINVAL, 0,
                     "memcached: the URL has %zu servers; distribution=ketama takes at most %d "
                     "(libmemcached's limit): use fewer or distribution=modula",
                     cfg->n_hosts, MC_KETAMA_MAX_SERVERS);
        mc_close(c);
        return LLMC_EINVAL;
    }
    if (cfg->n_hosts == 0) {
        memcached_return_t rc = memcached_server_add(m, "127.0.0.1", MC_DEFAULT_PORT);
        if (rc != MEMCACHED_SUCCESS) {
            /* the message reads m: write it before m is freed */
            st = mc_fail(err, m, rc, "adding server 127.0.0.1:11211");
            mc_close(c);
            return st;
        }
    }
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        const llmc_host *h = &cfg->hosts[i];
        int port = h->port > 0 ? h->port : MC_DEFAULT_PORT;
        if (!h->host || !*h->host || port > 65535) {
            /* the message reads c->url: write it before c is freed */
            llmc_err_set(err, LLMC_EINVAL, 0, "memcached: server #%zu in %s has %s", i + 1,
                         c->url, !h->host || !*h->host ? "an empty host name" : "a bad port");
            mc_close(c);
            return LLMC_EINVAL;
        }
        memcached_return_t rc = memcached_server_add(m, h->host, (in_port_t)port);
        if (rc != MEMCACHED_SUCCESS) {
            llmc_err_set(err, mc_status_of(rc) == LLMC_ECONN ? LLMC_ECONN : LLMC_EINVAL,
                         (long)rc, "memcached: cannot add server %s:%d: %s", h->host, port,
                         memcached_strerror(m, rc));
            mc_close(c);
            return err ? err->status : LLMC_EINVAL;
        }
    }

    /* NO_BLOCK is needed for the connect timeout to apply; POLL_TIMEOUT is
     * the I/O timeout libmemcached actually waits with. */
    if ((st = behave(m, MEMCACHED_BEHAVIOR_NO_BLOCK, 1, "no_block", err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1, "tcp_nodelay", err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, (uint64_t)connect_to,
                     "connect_timeout_ms", err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, (uint64_t)io_to, "io_timeout_ms", err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)io_to * 1000, "io_timeout_ms",
                     err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)io_to * 1000, "io_timeout_ms",
                     err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, (uint64_t)retry_s, "retry_timeout_s",
                     err)) ||
        (st = behave(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, (uint64_t)fail_limit,
                     "server_failure_limit", err)) ||
        (dead_s > 0 && (st = behave(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, (uint64_t)dead_s,
                                    "dead_timeout_s", err))) ||
        (remove_failed && (st = behave(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1,
                                       "remove_failed", err))) ||
        (binary && (st = behave(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1, "binary", err)))) {
        mc_close(c);
        return st;
    }
    if (ketama)
        st = behave(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1, "distribution=ketama", err);
    else
        st = behave(m, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_MODULA,
                    "distribution=modula", err);
    if (st) {
        mc_close(c);
        return st;
    }

#if defined(LIBMEMCACHED_WITH_SASL_SUPPORT) && LIBMEMCACHED_WITH_SASL_SUPPORT
    if (cfg->user) {
        /* SASL is only spoken over the binary protocol. */
        if ((st = behave(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1, "binary", err))) {
            mc_close(c);
            return st;
        }
        memcached_return_t rc = memcached_set_sasl_auth_data(m, cfg->user, cfg->password);
        if (rc != MEMCACHED_SUCCESS) {
            llmc_err_set(err, LLMC_EAUTH, (long)rc,
                         "memcached: cannot set SASL credentials for user '%s': %s", cfg->user,
                         memcached_strerror(m, rc));
            mc_close(c);
            return LLMC_EAUTH;
        }
    }
#endif

    c->pool = memcached_pool_create(m, 1, (uint32_t)pool_size);
    if (!c->pool) {
        mc_close(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: cannot create connection pool");
    }
    *out = c;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* reads */

typedef struct mc_req {
    const char *key; /* memcached key */
    size_t len;
    int gen_of;      /* >= 0: index of the user key's namespace in gens */
    size_t user;     /* index of the user key, or SIZE_MAX for a counter */
} mc_req;

typedef struct mc_found {
    int hit;
    uint32_t flags;
} mc_found;

static int req_cmp(const void *a, const void *b)
{
    const mc_req *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->key, y->key, n);
    if (r)
        return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Did the server of a key that was not returned fail? */
static int key_server_failed(memcached_st *m, const mc_req *r, int partial)
{
    /* Only asked when the multi-get itself reported a failure: an
     * instance keeps its last error after it recovers, so outside a
     * failed call it would turn real misses into errors. */
    if (!partial)
        return 0;
    memcached_return_t rc;
    const memcached_instance_st *inst = memcached_server_by_key(m, r->key, r->len, &rc);
    if (!inst)
        return 1;
    memcached_return_t last = memcached_server_error_return(inst);
    return last != MEMCACHED_SUCCESS && last != MEMCACHED_NOTFOUND && last != MEMCACHED_END &&
           mc_status_of(last) != LLMC_OK && mc_status_of(last) != LLMC_MISS;
}

/* Multi-get of n user keys (with their namespace counters) in one round
 * trip. Statuses per key in sts[], values in vals[]. */
static llmc_status mc_fetch(mc_ctx *c, memcached_st *m, size_t n, const char *const *keys,
                            const size_t *klens, llmc_buf *vals, llmc_status *sts,
                            llmc_err *err)
{
    llmc_status ret = LLMC_OK;
    /* Storage: mapped user keys, then namespace counter keys. A single
     * get (the hot path) uses the stack; batches allocate. */
    enum { SMALL = 2 };
    char mk_s[2 * SMALL][MC_KEY_MAX + 1];
    mc_req reqs_s[2 * SMALL];
    const char *arr_s[2 * SMALL];
    size_t lens_s[2 * SMALL], nsidx_s[SMALL], ns_first_s[SMALL];
    mc_found found_s[2 * SMALL];
    uint64_t genv_s[SMALL];
    int genok_s[SMALL];
    int small = n <= SMALL;
    char (*mk)[MC_KEY_MAX + 1] = small ? mk_s : malloc(2 * n * sizeof *mk);
    mc_req *reqs = small ? reqs_s : malloc(2 * n * sizeof *reqs);
    const char **arr = small ? arr_s : malloc(2 * n * sizeof *arr);
    size_t *lens = small ? lens_s : malloc(2 * n * sizeof *lens);
    mc_found *found = small ? found_s : calloc(2 * n, sizeof *found);
    uint64_t *genv = small ? genv_s : calloc(n, sizeof *genv);  /* counter per namespace slot */
    int *genok = small ? genok_s : calloc(n, sizeof *genok);     /* 1 found, 0 absent */
    size_t *nsidx = small ? nsidx_s : malloc(n * sizeof *nsidx); /* user key -> namespace slot */
    size_t *ns_first = small ? ns_first_s : malloc(n * sizeof *ns_first);
    if (small) {
        memset(found_s, 0, sizeof found_s);
        memset(genv_s, 0, sizeof genv_s);
        memset(genok_s, 0, sizeof genok_s);
    }
    if (!mk || !reqs || !arr || !lens || !found || !genv || !genok || !nsidx || !ns_first) {
        ret = llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
        goto out;
    }

    size_t nreq = 0, nns = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = map_key(c, keys[i], klens[i], mk[nreq]);
        reqs[nreq] = (mc_req){mk[nreq], l, -1, i};
        nreq++;
        nsidx[i] = SIZE_MAX;
        size_t nl = key_ns_len(keys[i], klens[i]);
        if (nl == 0)
            continue;
        size_t s;
        for (s = 0; s < nns; s++) {
            size_t f = ns_first[s];
            if (key_ns_len(keys[f], klens[f]) == nl && memcmp(keys[f], keys[i], nl) == 0)
                break;
        }
        if (s == nns) {
            ns_first[nns++] = i;
            size_t gl = gen_key(keys[i], nl, mk[nreq]);
            reqs[nreq] = (mc_req){mk[nreq], gl, (int)s, SIZE_MAX};
            nreq++;
        }
        nsidx[i] = s;
    }

    for (size_t i = 0; i < nreq; i++) {
        arr[i] = reqs[i].key;
        lens[i] = reqs[i].len;
    }
    memcached_return_t rc = memcached_mget(m, arr, lens, nreq);
    int partial = 0;
    if (rc == MEMCACHED_SOME_ERRORS) {
        partial = 1;
    } else if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND) {
        ret = mc_fail(err, m, rc, "get");
        goto out;
    }

    qsort(reqs, nreq, sizeof *reqs, req_cmp);
    memcached_result_st res_s, *res = memcached_result_create(m, &res_s);
    if (!res) {
        ret = llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
        goto out;
    }
    memcached_return_t frc;
    while (memcached_fetch_result(m, res, &frc)) {
        mc_req probe = {memcached_result_key_value(res), memcached_result_key_length(res), 0, 0};
        mc_req *hit = bsearch(&probe, reqs, nreq, sizeof *reqs, req_cmp);
        if (!hit)
            continue;
        /* duplicates of the same key sit next to each other */
        while (hit > reqs && req_cmp(hit - 1, &probe) == 0)
            hit--;
        for (; hit < reqs + nreq && req_cmp(hit, &probe) == 0; hit++) {
            size_t r = (size_t)(hit - reqs);
            found[r].hit = 1;
            found[r].flags = memcached_result_flags(res);
            if (hit->user == SIZE_MAX) {
                uint64_t g;
                if (parse_u64(memcached_result_value(res), memcached_result_length(res), &g) == 0) {
                    genv[hit->gen_of] = g;
                    genok[hit->gen_of] = 1;
                } else {
                    genok[hit->gen_of] = -1;
                }
            } else if (llmc_buf_set(&vals[hit->user], memcached_result_value(res),
                                    memcached_result_length(res)) != LLMC_OK) {
                memcached_result_free(res);
                ret = llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
                goto out;
            }
        }
    }
    memcached_result_free(res);
    if (frc != MEMCACHED_END && frc != MEMCACHED_SUCCESS && frc != MEMCACHED_NOTFOUND) {
        /* The round trip broke (timeout, connection lost): nothing read is
         * trustworthy as a miss. */
        if (frc == MEMCACHED_SOME_ERRORS || mc_status_of(frc) == LLMC_ECONN ||
            frc == MEMCACHED_TIMEOUT) {
            partial = 1;
        } else {
            ret = mc_fail(err, m, frc, "get");
            goto out;
        }
    }

    /* Per user key verdicts. A key that was not returned is a miss only
     * if its server answered. (libmemcached skips a server it has marked
     * failed, until retry_timeout_s, without failing a multi-get that
     * reached other servers: such keys read as misses, which is safe.) */
    for (size_t r = 0; r < nreq; r++) {
        if (reqs[r].user == SIZE_MAX && !found[r].hit && key_server_failed(m, &reqs[r], partial))
            genok[reqs[r].gen_of] = -2; /* unknown */
    }
    for (size_t r = 0; r < nreq; r++) {
        size_t u = reqs[r].user;
        if (u == SIZE_MAX)
            continue;
        if (!found[r].hit) {
            sts[u] = key_server_failed(m, &reqs[r], partial) ? LLMC_ECONN : LLMC_MISS;
            if (sts[u] == LLMC_ECONN)
                partial = 1;
            continue;
        }
        if (nsidx[u] == SIZE_MAX) {
            sts[u] = LLMC_OK;
            continue;
        }
        int gs = genok[nsidx[u]];
        if (gs == -2) {
            sts[u] = LLMC_ECONN;
        } else if (gs == 1 && gen_fold(genv[nsidx[u]]) == found[r].flags) {
            sts[u] = LLMC_OK;
        } else {
            /* Written before a flush (or the counter was lost): a miss. */
            atomic_fetch_add(&c->gen_mismatches, 1);
            sts[u] = LLMC_MISS;
        }
    }
    /* Keep the writers' view of the counters fresh. */
    for (size_t r = 0; r < nreq; r++) {
        if (reqs[r].user == SIZE_MAX && genok[reqs[r].gen_of] == 1) {
            /* find the namespace text of this slot through a user key */
            for (size_t u = 0; u < n; u++) {
                if (nsidx[u] == (size_t)reqs[r].gen_of) {
                    gen_cache_put(c, keys[u], key_ns_len(keys[u], klens[u]),
                                  gen_fold(genv[reqs[r].gen_of]));
                    break;
                }
            }
        }
    }
    if (partial) {
        for (size_t r = 0; r < nreq; r++) {
            size_t u = reqs[r].user;
            if (u == SIZE_MAX || sts[u] != LLMC_ECONN)
                continue;
            const memcached_instance_st *inst =
                memcached_server_by_key(m, reqs[r].key, reqs[r].len, &rc);
            const char *why = inst ? memcached_server_error(inst) : NULL;
            if (inst)
                llmc_err_set(err, LLMC_ECONN, (long)memcached_server_error_return(inst),
                             "memcached: server %s:%u holding the key did not answer: %s",
                             memcached_server_name(inst), (unsigned)memcached_server_port(inst),
                             why ? why : memcached_strerror(m, memcached_server_error_return(inst)));
            else
                llmc_err_set(err, LLMC_ECONN, 0, "memcached: the server holding a key did not answer");
            break;
        }
    }
out:
    if (!small) {
        free(mk);
        free(reqs);
        free(arr);
        free(lens);
        free(found);
        free(genv);
        free(genok);
        free(nsidx);
        free(ns_first);
    }
    return ret;
}

static llmc_status mc_get(void *vctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    llmc_status st = LLMC_MISS;
    llmc_status ret = mc_fetch(c, m, 1, &key, &klen, out, &st, err);
    mc_push(c, m);
    if (ret != LLMC_OK)
        return ret;
    if (st != LLMC_OK && st != LLMC_MISS && err && err->status != st)
        llmc_err_set(err, st, 0, "memcached: get failed");
    return st;
}

static llmc_status mc_mget(void *vctx, size_t n, const char *const *keys, const size_t *klens,
                           llmc_buf *vals, llmc_status *sts, llmc_err *err)
{
    mc_ctx *c = vctx;
    if (n == 0)
        return LLMC_OK;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    for (size_t i = 0; i < n; i++)
        sts[i] = LLMC_MISS;
    llmc_status ret = mc_fetch(c, m, n, keys, klens, vals, sts, err);
    mc_push(c, m);
    return ret;
}

/* ------------------------------------------------------------------ */
/* writes */

static time_t mc_expiration(int64_t ttl_ms)
{
    if (ttl_ms <= 0)
        return 0;
    int64_t s = (ttl_ms + 999) / 1000; /* never shorter than asked */
    if (s > MC_RELATIVE_TTL_MAX)
        return (time_t)(time(NULL) + s);
    return (time_t)s;
}

static llmc_status mc_set(void *vctx, const char *key, size_t klen, const void *val, size_t vlen,
                          int64_t ttl_ms, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    llmc_status st = LLMC_OK;
    uint32_t flags = 0;
    size_t nl = key_ns_len(key, klen);
    if (nl && !gen_cache_get(c, key, nl, &flags))
        st = gen_fetch(c, m, key, nl, &flags, err);
    if (st == LLMC_OK) {
        char mk[MC_KEY_MAX + 1];
        size_t ml = map_key(c, key, klen, mk);
        memcached_return_t rc =
            memcached_set(m, mk, ml, (const char *)val, vlen, mc_expiration(ttl_ms), flags);
        if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_STORED) {
            st = mc_fail(err, m, rc, "set");
            if (rc != MEMCACHED_E2BIG && mc_status_of(rc) != LLMC_ECONN &&
                mc_status_of(rc) != LLMC_ETIMEDOUT) {
                /* A refused write (e.g. out of memory on the server) must
                 * not leave an older value readable under this key. */
                memcached_delete(m, mk, ml, 0);
            }
        }
    }
    mc_push(c, m);
    return st;
}

static llmc_status mc_del(void *vctx, const char *key, size_t klen, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    char mk[MC_KEY_MAX + 1];
    size_t ml = map_key(c, key, klen, mk);
    memcached_return_t rc = memcached_delete(m, mk, ml, 0);
    llmc_status st;
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_DELETED)
        st = LLMC_OK;
    else if (rc == MEMCACHED_NOTFOUND)
        st = LLMC_MISS;
    else
        st = mc_fail(err, m, rc, "delete");
    mc_push(c, m);
    return st;
}

/* Leases: `add` creates the key only if it is absent. They carry no
 * namespace generation (a flush need not end a lease), and expire in
 * whole seconds (rounded up; memcached's clock ticks in seconds, so a
 * lease may end up to a second early). Release reads the token back and
 * deletes: not atomic, so a lease that expired and was taken by another
 * holder in between can be deleted, costing at most one more upstream
 * call. Renew is atomic: gets, compare, cas (below). */
static llmc_status mc_lease_acquire(void *vctx, const char *key, size_t klen, const char *token,
                                    size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    char mk[MC_KEY_MAX + 1];
    size_t ml = map_key(c, key, klen, mk);
    memcached_return_t rc =
        memcached_add(m, mk, ml, token, tlen, mc_expiration(ttl_ms > 0 ? ttl_ms : 1), 0);
    llmc_status st;
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED)
        st = LLMC_OK;
    else if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS)
        st = LLMC_EEXIST;
    else
        st = mc_fail(err, m, rc, "add");
    mc_push(c, m);
    return st;
}

static llmc_status mc_lease_release(void *vctx, const char *key, size_t klen, const char *token,
                                    size_t tlen, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    char mk[MC_KEY_MAX + 1];
    size_t ml = map_key(c, key, klen, mk);
    size_t vlen = 0;
    uint32_t flags = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    char *v = memcached_get(m, mk, ml, &vlen, &flags, &rc);
    llmc_status st = LLMC_MISS;
    if (v && vlen == tlen && memcmp(v, token, tlen) == 0) {
        rc = memcached_delete(m, mk, ml, 0);
        if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_DELETED)
            st = LLMC_OK;
        else if (rc != MEMCACHED_NOTFOUND)
            st = mc_fail(err, m, rc, "delete");
    } else if (!v && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        st = mc_fail(err, m, rc, "get");
    }
    free(v);
    mc_push(c, m);
    return st;
}

static llmc_status mc_flush(void *vctx, const char *ns, size_t nslen, uint64_t *deleted,
                            llmc_err *err)
{
    mc_ctx *c = vctx;
    if (deleted)
        *deleted = 0; /* memcached cannot count them */
    if (nslen == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "memcached: empty namespace");
    if (memchr(ns, ':', nslen))
        return llmc_err_set(err, LLMC_ENOTSUP, 0,
                            "memcached: cannot flush the sub-namespace \"%.*s\" alone (a "
                            "key's namespace is the text before its first ':'); flush the "
                            "whole namespace",
                            (int)nslen, ns);
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    char gk[MC_KEY_MAX + 1];
    size_t gl = gen_key(ns, nslen, gk);
    uint64_t nv = 0;
    llmc_status st = LLMC_OK;
    memcached_return_t rc = memcached_increment(m, gk, gl, 1, &nv);
    if (rc == MEMCACHED_SUCCESS) {
        gen_cache_put(c, ns, nslen, gen_fold(nv));
    } else if (rc == MEMCACHED_NOTFOUND) {
        /* No counter: no entry of this namespace can be read anyway (reads
         * need the counter), and the next write creates a fresh random
         * one. Forget our cached copy so we do not write under it. */
        gen_cache_put(c, ns, nslen, 0);
        pthread_mutex_lock(&c->gen_lock);
        for (size_t i = 0; i < c->n_gens; i++)
            if (c->gens[i].nslen == nslen && memcmp(c->gens[i].ns, ns, nslen) == 0)
                c->gens[i].fetched_ms = INT64_MIN / 2;
        pthread_mutex_unlock(&c->gen_lock);
    } else {
        st = mc_fail(err, m, rc, "flushing namespace");
    }
    mc_push(c, m);
    return st;
}

static llmc_status mc_flush_all(void *vctx, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    memcached_return_t rc = memcached_flush(m, 0);
    llmc_status st = rc == MEMCACHED_SUCCESS ? LLMC_OK : mc_fail(err, m, rc, "flush_all");
    mc_push(c, m);
    pthread_mutex_lock(&c->gen_lock);
    for (size_t i = 0; i < c->n_gens; i++)
        c->gens[i].fetched_ms = INT64_MIN / 2;
    pthread_mutex_unlock(&c->gen_lock);
    return st;
}

/* ------------------------------------------------------------------ */
/* ping / stats */

static llmc_status mc_ping(void *vctx, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    memcached_return_t rc = memcached_version(m);
    llmc_status st = LLMC_OK;
    if (rc != MEMCACHED_SUCCESS) {
        uint32_t cnt = memcached_server_count(m);
        char bad[256] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < cnt; i++) {
            const memcached_instance_st *in = memcached_server_instance_by_position(m, i);
            if (in && memcached_server_error_return(in) != MEMCACHED_SUCCESS && used < sizeof bad) {
                int w = snprintf(bad + used, sizeof bad - used, "%s%s:%u", used ? ", " : "",
                                 memcached_server_name(in), (unsigned)memcached_server_port(in));
                if (w > 0)
                    used += (size_t)w;
            }
        }
        st = mc_fail(err, m, rc, "ping");
        if (*bad)
            llmc_err_set(err, st, (long)rc, "memcached: ping failed, not answering: %s", bad);
    }
    mc_push(c, m);
    return st;
}

static llmc_status mc_stats(void *vctx, llmc_stat_cb cb, void *ud)
{
    mc_ctx *c = vctx;
    cb(ud, "pool_waits", (int64_t)atomic_load(&c->pool_waits));
    cb(ud, "pool_timeouts", (int64_t)atomic_load(&c->pool_timeouts));
    cb(ud, "mapped_keys", (int64_t)atomic_load(&c->mapped_keys));
    cb(ud, "stale_generation_reads", (int64_t)atomic_load(&c->gen_mismatches));
    llmc_err e;
    llmc_err_clear(&e);
    memcached_st *m = mc_pop(c, &e);
    if (!m)
        return e.status;
    uint32_t cnt = memcached_server_count(m);
    cb(ud, "servers", (int64_t)cnt);
    memcached_return_t rc;
    memcached_stat_st *sv = memcached_stat(m, NULL, &rc);
    int64_t up = 0;
    for (uint32_t i = 0; sv && i < cnt; i++) {
        char name[64];
        /* A server that did not answer has no pid. */
        int alive = sv[i].pid > 0;
        up += alive;
#define MC_STAT(field)                                                                   \
    do {                                                                                 \
        snprintf(name, sizeof name, "server%u_" #field, (unsigned)i);                   \
        cb(ud, name, (int64_t)sv[i].field);                                             \
    } while (0)
        snprintf(name, sizeof name, "server%u_up", (unsigned)i);
        cb(ud, name, alive);
        if (alive) {
            MC_STAT(curr_items);
            MC_STAT(bytes);
            MC_STAT(limit_maxbytes);
            MC_STAT(get_hits);
            MC_STAT(get_misses);
            MC_STAT(cmd_get);
            MC_STAT(cmd_set);
            MC_STAT(evictions);
            MC_STAT(curr_connections);
            MC_STAT(uptime);
        }
#undef MC_STAT
    }
    cb(ud, "servers_up", up);
    if (sv)
        memcached_stat_free(m, sv);
    mc_push(c, m);
    return LLMC_OK;
}

static llmc_status mc_scan(void *vctx, const char *prefix, size_t plen, llmc_scan_cb cb, void *ud,
                           llmc_err *err)
{
    LLMC_UNUSED(vctx);
    LLMC_UNUSED(prefix);
    LLMC_UNUSED(plen);
    LLMC_UNUSED(cb);
    LLMC_UNUSED(ud);
    return llmc_err_set(err, LLMC_ENOTSUP, 0, "memcached: cannot enumerate keys (no scan)");
}

static llmc_status mc_ttl(void *vctx, const char *key, size_t klen, int64_t *ttl_ms, llmc_err *err)
{
    LLMC_UNUSED(vctx);
    LLMC_UNUSED(key);
    LLMC_UNUSED(klen);
    LLMC_UNUSED(ttl_ms);
    return llmc_err_set(err, LLMC_ENOTSUP, 0,
                        "memcached: the remaining TTL of a key cannot be read");
}

/* The lease's value and CAS unique in one `gets`: *ours is 1 when it
 * holds our token, 0 when it is absent or another holder's. */
static llmc_status mc_lease_read(memcached_st *m, const char *mk, size_t ml, const char *token,
                                 size_t tlen, int *ours, uint64_t *cas, llmc_err *err)
{
    *ours = 0;
    *cas = 0;
    const char *keys[1] = {mk};
    size_t lens[1] = {ml};
    memcached_return_t rc = memcached_mget(m, keys, lens, 1);
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTFOUND)
        return mc_fail(err, m, rc, "gets");
    memcached_result_st res_s, *res = memcached_result_create(m, &res_s);
    if (!res)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "memcached: out of memory");
    memcached_return_t frc;
    while (memcached_fetch_result(m, res, &frc)) {
        if (memcached_result_length(res) == tlen &&
            memcmp(memcached_result_value(res), token, tlen) == 0) {
            *ours = 1;
            *cas = memcached_result_cas(res);
        }
    }
    memcached_result_free(res);
    if (frc != MEMCACHED_END && frc != MEMCACHED_SUCCESS && frc != MEMCACHED_NOTFOUND)
        return mc_fail(err, m, frc, "gets");
    return LLMC_OK;
}

/* The cas fails when the item changed since the gets (released, or
 * expired and taken by another holder): a lease is only extended while
 * it still holds our token. */
static llmc_status mc_lease_renew(void *vctx, const char *key, size_t klen, const char *token,
                                  size_t tlen, int64_t ttl_ms, llmc_err *err)
{
    mc_ctx *c = vctx;
    memcached_st *m = mc_pop(c, err);
    if (!m)
        return LLMC_EBUSY;
    char mk[MC_KEY_MAX + 1];
    size_t ml = map_key(c, key, klen, mk);
    /* CAS uniques are only fetched (`gets`) with this behaviour; it is a
     * plain flag (no reconnect), put back before the handle is. */
    uint64_t had_cas = memcached_behavior_get(m, MEMCACHED_BEHAVIOR_SUPPORT_CAS);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    uint64_t cas = 0;
    int ours = 0;
    llmc_status st = mc_lease_read(m, mk, ml, token, tlen, &ours, &cas, err);
    if (st == LLMC_OK && !ours)
        st = LLMC_MISS;
    if (st == LLMC_OK) {
        memcached_return_t rc = memcached_cas(m, mk, ml, token, tlen,
                                              mc_expiration(ttl_ms > 0 ? ttl_ms : 1), 0, cas);
        if (rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTFOUND ||
            rc == MEMCACHED_NOTSTORED)
            st = LLMC_MISS;
        else if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_STORED)
            st = mc_fail(err, m, rc, "cas");
    }
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SUPPORT_CAS, had_cas);
    mc_push(c, m);
    return st;
}

const llmc_backend_ops llmc__backend_memcached = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "memcached",
                               "memcached servers via libmemcached (ketama, pool, SASL)"),
    .schemes = mc_schemes,
    .options = mc_option_names,
    .caps = LLMC_CAP_TTL | LLMC_CAP_BATCH | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE |
            LLMC_CAP_DISTRIBUTED | LLMC_CAP_REMOTE,
    .open = mc_open,
    .close = mc_close,
    .get = mc_get,
    .set = mc_set,
    .del = mc_del,
    .exists = NULL,
    .mget = mc_mget,
    .mset = NULL,
    .flush = mc_flush,
    .flush_all = mc_flush_all,
    .ping = mc_ping,
    .stats = mc_stats,
    .scan = mc_scan,
    .ttl = mc_ttl,
    .lease_acquire = mc_lease_acquire,
    .lease_release = mc_lease_release,
    .lease_renew = mc_lease_renew,
};
