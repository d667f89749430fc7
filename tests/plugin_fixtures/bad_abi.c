/* Fixture: a plugin built for another ABI major. The loader must refuse
 * it with LLMC_EABI and a message naming the file, without touching the
 * (otherwise valid) tables. */
#include <llmcache/llmcache.h>

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

static const llmc_backend_ops future_backend = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "future", "fixture"),
    .open = s_open, .close = s_close, .get = s_get, .set = s_set, .del = s_del,
};
static const llmc_backend_ops *const backends[] = {&future_backend, NULL};

/* What LLMC_PLUGIN expands to, with the next major version. */
static const llmc_plugin_descriptor desc = {
    LLMC_ABI_MAJOR + 1, 0, (uint32_t)sizeof(llmc_plugin_descriptor),
    "future", "9.9", backends, NULL, NULL, NULL};

LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *llmc_plugin_entry(unsigned a, unsigned b);
LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *llmc_plugin_entry(unsigned a, unsigned b)
{
    (void)a;
    (void)b;
    return &desc;
}
