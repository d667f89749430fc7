/* llmcache: defaults shared by the command, the proxy and applications. */
#ifndef LLMCACHE_DEFAULTS_H
#define LLMCACHE_DEFAULTS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cache URL the llmcache command uses when none is given:
 * $LLMCACHE_URL if set and not empty, else the embedded SQLite store
 * "sqlite:///<dir>/llmcache/cache.db" where <dir> is $XDG_CACHE_HOME
 * (when it is an absolute path) or ~/.cache. The llmcache directory (and
 * its parents) are created with mode 0700 if missing; nothing is created
 * when $LLMCACHE_URL is used. Characters that a URL would misread ('%',
 * '?', '#') are percent-encoded in the path.
 *
 * `out` receives the URL (caller-owned, free with llmc_buf_free).
 * LLMC_EINVAL if neither $XDG_CACHE_HOME nor the home directory is known,
 * LLMC_EIO if a directory cannot be created (the message names it).
 * Thread-safe (reads the environment). */
LLMC_API llmc_status llmc_default_cache_url(llmc_buf *out, llmc_err *err);

#ifdef __cplusplus
}
#endif
#endif
