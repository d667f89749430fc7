/* Fixture: a plugin with two tables, a fresh key strategy and a backend
 * whose name collides with the file example plugin's ("file"). Loading
 * it after the file plugin must fail as a whole: LLMC_EEXIST naming the
 * file and the name, and its key strategy must not stay registered. */
#include <llmcache/llmcache.h>

static llmc_status k_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *mat,
                             llmc_err *err)
{
    return llmc_key_compute("v1", in, key, mat, err);
}
static const llmc_key_strategy_ops dup_keys = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "dup-keys", "fixture"),
    .compute = k_compute,
};

static llmc_status s_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    (void)cfg;
    (void)ctx;
    return llmc_err_set(err, LLMC_ENOTSUP, 0, "never opened");
}
static void s_close(void *ctx) { (void)ctx; }
static llmc_status s_get(void *c, const char *k, size_t kl, llmc_buf *o, llmc_err *e)
{
    (void)c, (void)k, (void)kl, (void)o, (void)e;
    return LLMC_MISS;
}
static llmc_status s_set(void *c, const char *k, size_t kl, const void *v, size_t vl,
                         int64_t t, llmc_err *e)
{
    (void)c, (void)k, (void)kl, (void)v, (void)vl, (void)t, (void)e;
    return LLMC_OK;
}
static llmc_status s_del(void *c, const char *k, size_t kl, llmc_err *e)
{
    (void)c, (void)k, (void)kl, (void)e;
    return LLMC_MISS;
}
static const llmc_backend_ops dup_backend = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "file", "fixture: name taken"),
    .open = s_open, .close = s_close, .get = s_get, .set = s_set, .del = s_del,
};

static const llmc_backend_ops *const backends[] = {&dup_backend, NULL};
static const llmc_key_strategy_ops *const strategies[] = {&dup_keys, NULL};

LLMC_PLUGIN("dup-name", "0.1", backends, NULL, strategies, NULL)
