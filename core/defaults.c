/* The default cache URL of the llmcache command (see defaults.h). Built
 * whatever backends are compiled in: without SQLite the URL still names
 * the store and opening it reports that sqlite is not built in. */
#include "internal.h"
#include "llmcache/defaults.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir -p with mode 0700 for the directories we create. */
static llmc_status mkdirs(const char *path, llmc_err *err)
{
    char *p = llmc__strdup(path);
    if (!p)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = LLMC_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char save = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            st = llmc_err_set(err, LLMC_EIO, errno, "cannot create cache directory %s: %s", p,
                              strerror(errno));
            break;
        }
        *s = save;
        if (save == '\0')
            break;
    }
    if (st == LLMC_OK) {
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            st = llmc_err_set(err, LLMC_EIO, errno, "cache directory %s is not a directory",
                              path);
    }
    free(p);
    return st;
}

LLMC_API llmc_status llmc_default_cache_url(llmc_buf *out, llmc_err *err)
{
    const char *env = getenv("LLMCACHE_URL");
    if (env && *env) {
        llmc_buf_clear(out);
        return llmc_buf_puts(out, env) == LLMC_OK
                   ? LLMC_OK
                   : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_buf dir = LLMC_BUF_INIT;
    llmc_status st;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') { /* the XDG spec: relative values are ignored */
        st = llmc_buf_printf(&dir, "%s/llmcache", xdg);
    } else {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            struct passwd pw, *res = NULL;
            char tmp[4096];
            if (getpwuid_r(getuid(), &pw, tmp, sizeof tmp, &res) == 0 && res && pw.pw_dir &&
                pw.pw_dir[0] == '/')
                home = pw.pw_dir;
            else
                home = NULL;
        }
        if (!home)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "no default cache location: set LLMCACHE_URL, XDG_CACHE_HOME "
                                "or HOME");
        st = llmc_buf_printf(&dir, "%s/.cache/llmcache", home);
    }
    if (st != LLMC_OK) {
        llmc_buf_free(&dir);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    if ((st = mkdirs(dir.data, err)) != LLMC_OK) {
        llmc_buf_free(&dir);
        return st;
    }
    llmc_buf_clear(out);
    st = llmc_buf_puts(out, "sqlite://");
    for (size_t i = 0; st == LLMC_OK && i < dir.len; i++) {
        unsigned char ch = (unsigned char)dir.data[i];
        if (ch == '%' || ch == '?' || ch == '#' || ch <= 0x20 || ch == 0x7f)
            st = llmc_buf_printf(out, "%%%02X", ch);
        else
            st = llmc_buf_append(out, &dir.data[i], 1);
    }
    if (st == LLMC_OK)
        st = llmc_buf_puts(out, "/cache.db");
    llmc_buf_free(&dir);
    if (st != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    return LLMC_OK;
}
