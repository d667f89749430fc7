/* Registration of the built-in provider adapters. The adapters arrive
 * with the provider work (issue 5); until then no provider is built in
 * and completion calls fail with LLMC_ENOTFOUND naming that fact. */
#include "internal.h"

llmc_status llmc__providers_register(llmc_err *err)
{
    LLMC_UNUSED(err);
    return LLMC_OK;
}
