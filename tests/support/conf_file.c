/* Conformance setup for the file backend example plugin: point
 * LLMCACHE_PLUGIN_PATH at the build tree's example plugins and hand back
 * a file:// URL in a fresh temporary directory, so the "file" scheme is
 * resolved by autoloading exactly as for a user's plugin. */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[256];

int conf_file_setup(char *url, size_t n)
{
    if (setenv("LLMCACHE_PLUGIN_PATH", LLMC_TEST_PLUGIN_DIR, 1) != 0)
        return -1;
    snprintf(dir, sizeof dir, "/tmp/llmc-conf-file-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(url, n, "file://%s/store", dir);
    return 0;
}

void conf_file_teardown(void)
{
    char cmd[300];
    if (!dir[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "conf_file: could not remove %s\n", dir);
    dir[0] = '\0';
}
