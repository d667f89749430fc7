/* The connection options every Redis backend accepts (single node,
 * Cluster, Sentinel), read by one parser so that a name, range, default
 * or error message cannot differ between them. Not installed. */
#ifndef LLMC_REDIS_CONNOPTS_H
#define LLMC_REDIS_CONNOPTS_H

#include "conn.h"

/* Option names handled by llmc__redis_conn_options, for the backends'
 * `options` lists (each adds its own after these). */
#define LLMC_REDIS_CONN_OPTION_NAMES                                           \
    "connect_timeout_ms", "command_timeout_ms", "pool_size", "tls_ca", "tls_cert", "tls_key", \
        "tls_server_name", "tls_verify", "user", "password"

#define LLMC_REDIS_DEFAULT_POOL 8
#define LLMC_REDIS_DEFAULT_CONNECT_MS 2000
#define LLMC_REDIS_DEFAULT_COMMAND_MS 1000

/* Where options are read: the cache's own list, then (single node opened
 * without an address) the query of $REDIS_URL. The cache's list wins. */
typedef struct llmc_ropts {
    const llmc_options *primary;
    const llmc_options *env; /* may be NULL */
} llmc_ropts;

/* Option `name` as text, or NULL when neither list has it. */
const char *llmc__ropt(const llmc_ropts *o, const char *name);
/* Integer / boolean option from whichever list has it (the same parsing
 * and messages as llmc_options_get_i64 / _bool). */
llmc_status llmc__ropt_i64(const llmc_ropts *o, const char *name, int64_t min, int64_t max,
                           int64_t def, int64_t *out, llmc_err *err);
llmc_status llmc__ropt_bool(const llmc_ropts *o, const char *name, int def, int *out,
                            llmc_err *err);

/* Fill the shared part of a node config: TLS (when `tls`: tls_verify, a
 * context from tls_ca/tls_cert/tls_key, tls_server_name; otherwise any
 * TLS option is refused with "<what>: option 'x' needs TLS: use
 * <tls_hint>"), connect/command timeouts (default: the cache's
 * timeout_ms when set), user and password (`user`/`password` from the
 * URL win over the options) and the pool size. Host, port, socket, db and
 * label are the caller's. On failure `nc` may hold partial state: free it
 * with llmc__rnode_cfg_free. */
llmc_status llmc__redis_conn_options(const char *what, const llmc_ropts *o, int tls,
                                     const char *tls_hint, int64_t cache_timeout_ms,
                                     const char *user, const char *password,
                                     llmc_rnode_cfg *nc, int *pool_size, llmc_err *err);

/* 1 when `name` is in the NULL-terminated list (case-insensitive). */
int llmc__redis_in_list(const char *const *list, const char *name);

#endif
