/* Registration of the built-in provider adapters, called by llmc_init.
 * Order matters: bare model names are inferred by the first adapter whose
 * match_model accepts them. */
#include "adapters.h"

static const llmc_provider_ops *const builtin[] = {
#if LLMC_HAVE_CURL
    &llmc__provider_openai,
    &llmc__provider_azure,
    &llmc__provider_openai_compatible,
    &llmc__provider_anthropic,
    &llmc__provider_gemini,
    &llmc__provider_ollama,
#endif
    &llmc__provider_mock,
};

llmc_status llmc__providers_register(llmc_err *err)
{
    for (size_t i = 0; i < LLMC_ARRAY_LEN(builtin); i++) {
        /* Checked like llmc_register_provider, registered with origin
         * "built-in" (what `llmcache plugins --all` shows). */
        llmc_status st = llmc__provider_check(builtin[i], err);
        if (st == LLMC_OK)
            st = llmc_register(LLMC_KIND_PROVIDER, &builtin[i]->hdr, "built-in", err);
        if (st != LLMC_OK && st != LLMC_EEXIST)
            return st;
    }
    return LLMC_OK;
}
