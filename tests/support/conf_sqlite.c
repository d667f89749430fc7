/* Conformance setup for the SQLite backend: a fresh file in a private
 * temporary directory. */
#include "conformance.h"
#include "testsrv.h"

#include <stdio.h>

static testsrv dir;

int conf_sqlite_setup(char *url, size_t n)
{
    if (testsrv_mkdir(&dir, "conf-sqlite") != 0)
        return -1;
    snprintf(url, n, "sqlite://%s/conformance.db", dir.dir);
    return 0;
}

void conf_sqlite_teardown(void)
{
    testsrv_stop(&dir);
}
