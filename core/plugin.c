/* Plugin loading seam. The loader itself (LLMCACHE_PLUGIN_PATH, dlopen,
 * descriptors) is the plugin work; until it lands, nothing is
 * auto-loaded and unknown names stay unknown. */
#include "internal.h"

int llmc__plugin_autoload(llmc_kind kind, const char *name)
{
    LLMC_UNUSED(kind);
    LLMC_UNUSED(name);
    return 0;
}
