/* The connection options shared by the Redis backends (see connopts.h). */
#include "connopts.h"

#include <string.h>

const char *llmc__ropt(const llmc_ropts *o, const char *name)
{
    const char *v = llmc_options_get(o->primary, name);
    if (!v && o->env)
        v = llmc_options_get(o->env, name);
    return v;
}

/* The list an option is read from: the cache's when it has it (or there
 * is no other), else $REDIS_URL's. */
static const llmc_options *source(const llmc_ropts *o, const char *name)
{
    return llmc_options_get(o->primary, name) || !o->env ? o->primary : o->env;
}

llmc_status llmc__ropt_i64(const llmc_ropts *o, const char *name, int64_t min, int64_t max,
                           int64_t def, int64_t *out, llmc_err *err)
{
    return llmc_options_get_i64(source(o, name), name, min, max, def, out, err);
}

llmc_status llmc__ropt_bool(const llmc_ropts *o, const char *name, int def, int *out,
                            llmc_err *err)
{
    return llmc_options_get_bool(source(o, name), name, def, out, err);
}

int llmc__redis_in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (llmc__strcaseeq(*list, name))
            return 1;
    return 0;
}

llmc_status llmc__redis_conn_options(const char *what, const llmc_ropts *o, int tls,
                                     const char *tls_hint, int64_t cache_timeout_ms,
                                     const char *user, const char *password,
                                     llmc_rnode_cfg *nc, int *pool_size, llmc_err *err)
{
    static const char *const tls_opts[] = {"tls_ca", "tls_cert", "tls_key", "tls_server_name",
                                           "tls_verify", NULL};
    llmc_status st;
    if (!tls) {
        for (const char *const *t = tls_opts; *t; t++)
            if (llmc__ropt(o, *t))
                return llmc_err_set(err, LLMC_EINVAL, 0, "%s: option '%s' needs TLS: use %s",
                                    what, *t, tls_hint);
    } else {
        if ((st = llmc__ropt_bool(o, "tls_verify", 1, &nc->tls_verify, err)) != LLMC_OK)
            return st;
        if ((st = llmc__redis_tls_ctx_new(llmc__ropt(o, "tls_ca"), llmc__ropt(o, "tls_cert"),
                                          llmc__ropt(o, "tls_key"), &nc->ssl_ctx, err)) !=
            LLMC_OK)
            return st;
        const char *sn = llmc__ropt(o, "tls_server_name");
        if (sn && *sn && !(nc->tls_server_name = llmc__strdup(sn)))
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }

    /* One cache-wide timeout is the default of both finer ones. */
    int64_t def_cmd = cache_timeout_ms > 0 ? cache_timeout_ms : LLMC_REDIS_DEFAULT_COMMAND_MS;
    int64_t def_conn = cache_timeout_ms > 0 ? cache_timeout_ms : LLMC_REDIS_DEFAULT_CONNECT_MS;
    int64_t ps;
    if ((st = llmc__ropt_i64(o, "connect_timeout_ms", 1, 3600000, def_conn,
                             &nc->connect_timeout_ms, err)) != LLMC_OK ||
        (st = llmc__ropt_i64(o, "command_timeout_ms", 1, 3600000, def_cmd,
                             &nc->command_timeout_ms, err)) != LLMC_OK ||
        (st = llmc__ropt_i64(o, "pool_size", 1, 1024, LLMC_REDIS_DEFAULT_POOL, &ps, err)) !=
            LLMC_OK)
        return st;
    *pool_size = (int)ps;

    if (!user)
        user = llmc__ropt(o, "user");
    if (!password)
        password = llmc__ropt(o, "password");
    if (user && *user && !(nc->user = llmc__strdup(user)))
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (password && !(nc->password = llmc__strdup(password)))
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    return LLMC_OK;
}
