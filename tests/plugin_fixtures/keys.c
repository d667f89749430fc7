/* Fixture: a plugin that provides only a key strategy, "upper-v1": the v1
 * key with the hex digest upper-cased. Found by autoloading when a cache
 * is opened with key_strategy=upper-v1 (no conventional file name: the
 * loader has to read descriptors). */
#include <llmcache/llmcache.h>

#include <string.h>

static llmc_status up_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *mat,
                              llmc_err *err)
{
    llmc_status st = llmc_key_compute("v1", in, key, mat, err);
    if (st != LLMC_OK)
        return st;
    char *hex = key->data;
    char *colon = memchr(key->data, ':', key->len);
    if (colon)
        hex = colon + 1;
    for (; hex < key->data + key->len; hex++)
        if (*hex >= 'a' && *hex <= 'f')
            *hex = (char)(*hex - 'a' + 'A');
    return LLMC_OK;
}

static const llmc_key_strategy_ops upper_v1 = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "upper-v1", "fixture: v1, upper-case"),
    .compute = up_compute,
};
static const llmc_key_strategy_ops *const strategies[] = {&upper_v1, NULL};

LLMC_PLUGIN("fixture-keys", "0.1", NULL, NULL, strategies, NULL)
