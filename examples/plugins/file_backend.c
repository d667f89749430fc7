/* Example plugin: a directory-of-files cache backend, `file:///path`.
 *
 * Built only against the installed public headers, like any out-of-tree
 * plugin (see docs/plugins.md):
 *
 *   cc -shared -fPIC -o llmc-file.so file_backend.c \
 *      $(pkg-config --cflags --libs llmcache)
 *
 * Layout: one file per key under the root directory,
 *
 *   <root>/_/<sha256(key)>           keys without a namespace
 *   <root>/n-<ns>/<sha256(key)>      keys "<ns>:...", ns escaped
 *
 * so flushing a namespace is removing the files of one directory. A file
 * holds a small header (magic, expiry, key length), the key itself (to
 * verify it on read and to list keys) and the value:
 *
 *   "LLMCFB01"  int64 LE expires_at_ms (0 = never)  uint32 LE klen
 *   key[klen]   value[...]
 *
 * Writes go to a temporary file in the same directory that is renamed
 * over the final name, so a reader sees the old value or the new one,
 * never half of one, and a crash leaves at most a stale `.tmp-*` file.
 * Expired files are misses and are deleted lazily (on read, flush).
 * Every call opens its own file descriptors, so one handle may be used by
 * many threads (and many processes may share a directory).
 *
 * Options: fsync=true|false (default false) flushes each value and its
 * directory to stable storage before set returns. */
#include <llmcache/llmcache.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAGIC "LLMCFB01"
#define HDR_LEN 20 /* magic 8 + expiry 8 + klen 4 */
#define NS_DIR_MAX 120

typedef struct fctx {
    char *root;
    int fsync_;
} fctx;

/* Temporary file names: pid + a process-wide counter, unique among all
 * handles of all processes on the machine. */
static atomic_ulong tmp_seq;

/* ------------------------------------------------------------------ */
/* Paths. */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Directory name for the namespace part ns[0..n): "n-" + escaped bytes
 * (letters, digits, '-', '_' kept; others as %XX), or "h-" + SHA-256 when
 * that would be long. A key without namespace goes to "_". */
static llmc_status ns_dir(const char *ns, size_t n, llmc_buf *out)
{
    llmc_buf_clear(out);
    if (!ns)
        return llmc_buf_puts(out, "_");
    llmc_status st = llmc_buf_puts(out, "n-");
    for (size_t i = 0; i < n && st == LLMC_OK; i++) {
        unsigned char c = (unsigned char)ns[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_')
            st = llmc_buf_append(out, &c, 1);
        else
            st = llmc_buf_printf(out, "%%%02X", c);
    }
    if (st == LLMC_OK && out->len > NS_DIR_MAX) {
        uint8_t d[32];
        char hex[65];
        llmc_sha256(ns, n, d);
        llmc_hex(d, 32, hex);
        llmc_buf_clear(out);
        st = llmc_buf_printf(out, "h-%s", hex);
    }
    return st;
}

/* The namespace of a key: the text before the first ':', if any. */
static const char *key_ns(const char *key, size_t klen, size_t *nslen)
{
    const char *colon = memchr(key, ':', klen);
    if (!colon || colon == key)
        return NULL;
    *nslen = (size_t)(colon - key);
    return key;
}

/* dir = <root>/<nsdir>, file = dir/<sha256 hex of key>. */
static llmc_status key_paths(const fctx *f, const char *key, size_t klen, llmc_buf *dir,
                             llmc_buf *file)
{
    size_t nslen = 0;
    const char *ns = key_ns(key, klen, &nslen);
    llmc_buf nd = LLMC_BUF_INIT;
    llmc_status st = ns_dir(ns, nslen, &nd);
    if (st == LLMC_OK) {
        llmc_buf_clear(dir);
        st = llmc_buf_printf(dir, "%s/%s", f->root, nd.data);
    }
    llmc_buf_free(&nd);
    if (st != LLMC_OK)
        return st;
    uint8_t d[32];
    char hex[65];
    llmc_sha256(key, klen, d);
    llmc_hex(d, 32, hex);
    llmc_buf_clear(file);
    return llmc_buf_printf(file, "%s/%s", dir->data, hex);
}

/* ------------------------------------------------------------------ */
/* Reading a file. */

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

typedef struct fhead {
    int64_t expires_ms;
    size_t klen;
    off_t size; /* whole file */
} fhead;

/* Open a key's file and check header and key. LLMC_OK with *fd open and
 * positioned at the value, LLMC_MISS (absent, expired, other key), or an
 * error. `key` NULL: accept any key (used by scan, which wants it in
 * `keyout`). */
static llmc_status open_entry(const char *path, const char *key, size_t klen, int *fd_out,
                              fhead *h, llmc_buf *keyout, int delete_expired, llmc_err *err)
{
    *fd_out = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return LLMC_MISS;
        return llmc_err_set(err, LLMC_EIO, errno, "file backend: open %s: %s", path,
                            strerror(errno));
    }
    struct stat sb;
    unsigned char hdr[HDR_LEN];
    if (fstat(fd, &sb) != 0 || sb.st_size < HDR_LEN || read_full(fd, hdr, HDR_LEN) != 0 ||
        memcmp(hdr, MAGIC, 8) != 0) {
        close(fd);
        return llmc_err_set(err, LLMC_ECORRUPT, 0,
                            "file backend: %s is not a cache file (bad header)", path);
    }
    h->expires_ms = (int64_t)get_le(hdr + 8, 8);
    h->klen = (size_t)get_le(hdr + 16, 4);
    h->size = sb.st_size;
    if ((off_t)(HDR_LEN + h->klen) > sb.st_size) {
        close(fd);
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "file backend: %s is truncated", path);
    }
    if (h->expires_ms > 0 && h->expires_ms <= llmc_now_ms()) {
        if (delete_expired) {
            /* Only if the name still refers to the file we read: a writer
             * may have renamed a fresh value over it meanwhile. */
            struct stat now;
            if (stat(path, &now) == 0 && now.st_ino == sb.st_ino && now.st_dev == sb.st_dev)
                unlink(path);
        }
        close(fd);
        return LLMC_MISS;
    }
    if (key) {
        if (h->klen != klen) {
            close(fd);
            return LLMC_MISS; /* another key with the same hash: never in practice */
        }
        char stackbuf[256];
        char *kb = klen <= sizeof stackbuf ? stackbuf : malloc(klen ? klen : 1);
        int same = kb && read_full(fd, kb, klen) == 0 && memcmp(kb, key, klen) == 0;
        if (kb != stackbuf)
            free(kb);
        if (!same) {
            close(fd);
            return LLMC_MISS;
        }
    } else if (keyout) {
        llmc_buf_clear(keyout);
        if (llmc_buf_reserve(keyout, h->klen + 1) != LLMC_OK ||
            read_full(fd, keyout->data, h->klen) != 0) {
            close(fd);
            return llmc_err_set(err, LLMC_EIO, 0, "file backend: reading %s failed", path);
        }
        keyout->len = h->klen;
        keyout->data[h->klen] = '\0';
    }
    *fd_out = fd;
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* The backend functions. */

static const char *const file_options[] = {"fsync", NULL};

static llmc_status mkdir_p(const char *path, llmc_err *err)
{
    char *p = strdup(path);
    if (!p)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                llmc_status st = llmc_err_set(err, LLMC_EIO, errno,
                                              "file backend: cannot create directory %s: %s",
                                              p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return LLMC_OK;
}

static llmc_status f_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    const char *loc = cfg->location;
    if (!loc || !*loc)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "file backend: no directory given (use file:///absolute/dir or "
                            "file://relative/dir)");
    if (cfg->max_entries || cfg->max_bytes)
        return llmc_err_set(err, LLMC_ENOTSUP, 0,
                            "file backend: max_entries and max_bytes are not enforced by "
                            "this backend; remove them from %s", cfg->url_redacted);
    int fs = 0;
    llmc_status st = llmc_options_get_bool(cfg->options, "fsync", 0, &fs, err);
    if (st != LLMC_OK)
        return st;
    size_t n = strlen(loc);
    while (n > 1 && loc[n - 1] == '/')
        n--;
    fctx *f = calloc(1, sizeof *f);
    if (!f || !(f->root = strndup(loc, n))) {
        free(f);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    f->fsync_ = fs;
    st = mkdir_p(f->root, err);
    struct stat sb;
    if (st == LLMC_OK && (stat(f->root, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        st = llmc_err_set(err, LLMC_EINVAL, 0, "file backend: %s is not a directory", f->root);
    if (st == LLMC_OK && access(f->root, R_OK | W_OK | X_OK) != 0)
        st = llmc_err_set(err, LLMC_EPERM, errno, "file backend: directory %s: %s", f->root,
                          strerror(errno));
    if (st != LLMC_OK) {
        free(f->root);
        free(f);
        return st;
    }
    *ctx = f;
    return LLMC_OK;
}

static void f_close(void *ctx)
{
    fctx *f = ctx;
    if (!f)
        return;
    free(f->root);
    free(f);
}

static llmc_status f_get(void *ctx, const char *key, size_t klen, llmc_buf *out, llmc_err *err)
{
    fctx *f = ctx;
    llmc_buf dir = LLMC_BUF_INIT, file = LLMC_BUF_INIT;
    llmc_status st = key_paths(f, key, klen, &dir, &file);
    int fd = -1;
    fhead h;
    if (st == LLMC_OK)
        st = open_entry(file.data, key, klen, &fd, &h, NULL, 1, err);
    if (st == LLMC_OK) {
        size_t vlen = (size_t)(h.size - (off_t)(HDR_LEN + h.klen));
        llmc_buf_clear(out);
        st = llmc_buf_reserve(out, vlen + 1);
        if (st == LLMC_OK && read_full(fd, out->data, vlen) != 0)
            st = llmc_err_set(err, LLMC_EIO, errno, "file backend: reading %s failed",
                              file.data);
        if (st == LLMC_OK) {
            out->len = vlen;
            out->data[vlen] = '\0';
        }
        close(fd);
    }
    llmc_buf_free(&dir);
    llmc_buf_free(&file);
    return st;
}

static llmc_status write_all(int fd, const struct iovec *iov0, int n)
{
    struct iovec iov[3];
    memcpy(iov, iov0, (size_t)n * sizeof *iov);
    int i = 0;
    while (i < n) {
        ssize_t w = writev(fd, iov + i, n - i);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return LLMC_EIO;
        size_t left = (size_t)w;
        while (i < n && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            i++;
        }
        if (i < n) {
            iov[i].iov_base = (char *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return LLMC_OK;
}

static llmc_status f_set(void *ctx, const char *key, size_t klen, const void *val,
                         size_t vlen, int64_t ttl_ms, llmc_err *err)
{
    fctx *f = ctx;
    if (klen > UINT32_MAX)
        return llmc_err_set(err, LLMC_ETOOBIG, 0, "file backend: key too long");
    llmc_buf dir = LLMC_BUF_INIT, file = LLMC_BUF_INIT, tmp = LLMC_BUF_INIT;
    llmc_status st = key_paths(f, key, klen, &dir, &file);
    if (st == LLMC_OK)
        st = llmc_buf_printf(&tmp, "%s/.tmp-%ld-%lu", dir.data, (long)getpid(),
                             (unsigned long)atomic_fetch_add(&tmp_seq, 1));
    if (st != LLMC_OK) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == ENOENT) {
        /* First key of this namespace (or the directory was removed). */
        if (mkdir(dir.data, 0777) != 0 && errno != EEXIST) {
            st = llmc_err_set(err, LLMC_EIO, errno, "file backend: cannot create %s: %s",
                              dir.data, strerror(errno));
            goto done;
        }
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    }
    if (fd < 0) {
        st = llmc_err_set(err, LLMC_EIO, errno, "file backend: cannot create %s: %s", tmp.data,
                          strerror(errno));
        goto done;
    }
    unsigned char hdr[HDR_LEN];
    memcpy(hdr, MAGIC, 8);
    put_le(hdr + 8, (uint64_t)(ttl_ms > 0 ? llmc_now_ms() + ttl_ms : 0), 8);
    put_le(hdr + 16, (uint64_t)klen, 4);
    struct iovec iov[3] = {{hdr, HDR_LEN}, {(void *)key, klen}, {(void *)val, vlen}};
    st = write_all(fd, iov, 3);
    if (st == LLMC_OK && f->fsync_ && fsync(fd) != 0)
        st = LLMC_EIO;
    int saved = errno;
    if (close(fd) != 0 && st == LLMC_OK) {
        st = LLMC_EIO;
        saved = errno;
    }
    if (st == LLMC_OK && rename(tmp.data, file.data) != 0) {
        st = LLMC_EIO;
        saved = errno;
    }
    if (st != LLMC_OK) {
        unlink(tmp.data);
        st = llmc_err_set(err, saved == ENOSPC ? LLMC_ETOOBIG : LLMC_EIO, saved,
                          "file backend: writing %s failed: %s", file.data, strerror(saved));
        goto done;
    }
    if (f->fsync_) {
        int dfd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
done:
    llmc_buf_free(&dir);
    llmc_buf_free(&file);
    llmc_buf_free(&tmp);
    return st;
}

static llmc_status f_del(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    fctx *f = ctx;
    llmc_buf dir = LLMC_BUF_INIT, file = LLMC_BUF_INIT;
    llmc_status st = key_paths(f, key, klen, &dir, &file);
    int fd = -1;
    fhead h;
    /* Look first so a live key gives OK and an absent or expired one MISS
     * (and a hash collision never deletes another key's file). */
    if (st == LLMC_OK)
        st = open_entry(file.data, key, klen, &fd, &h, NULL, 1, err);
    if (st == LLMC_OK) {
        close(fd);
        if (unlink(file.data) != 0)
            st = errno == ENOENT ? LLMC_MISS
                                 : llmc_err_set(err, LLMC_EIO, errno,
                                                "file backend: cannot delete %s: %s",
                                                file.data, strerror(errno));
    } else if (st == LLMC_ECORRUPT) {
        /* A damaged file is not worth keeping. */
        unlink(file.data);
        st = LLMC_OK;
    }
    llmc_buf_free(&dir);
    llmc_buf_free(&file);
    return st;
}

static llmc_status f_exists(void *ctx, const char *key, size_t klen, llmc_err *err)
{
    fctx *f = ctx;
    llmc_buf dir = LLMC_BUF_INIT, file = LLMC_BUF_INIT;
    llmc_status st = key_paths(f, key, klen, &dir, &file);
    int fd = -1;
    fhead h;
    if (st == LLMC_OK)
        st = open_entry(file.data, key, klen, &fd, &h, NULL, 1, err);
    if (fd >= 0)
        close(fd);
    llmc_buf_free(&dir);
    llmc_buf_free(&file);
    return st;
}

static llmc_status f_ttl(void *ctx, const char *key, size_t klen, int64_t *ttl_ms,
                         llmc_err *err)
{
    fctx *f = ctx;
    llmc_buf dir = LLMC_BUF_INIT, file = LLMC_BUF_INIT;
    llmc_status st = key_paths(f, key, klen, &dir, &file);
    int fd = -1;
    fhead h;
    if (st == LLMC_OK)
        st = open_entry(file.data, key, klen, &fd, &h, NULL, 1, err);
    if (st == LLMC_OK) {
        close(fd);
        if (h.expires_ms == 0) {
            *ttl_ms = -1;
        } else {
            int64_t left = h.expires_ms - llmc_now_ms();
            *ttl_ms = left > 0 ? left : 1;
        }
    }
    llmc_buf_free(&dir);
    llmc_buf_free(&file);
    return st;
}

/* Remove the entry files of one directory (not the temporaries of
 * writers in progress). */
static llmc_status clear_dir(const char *dir, uint64_t *deleted, llmc_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return LLMC_OK;
        return llmc_err_set(err, LLMC_EIO, errno, "file backend: cannot read %s: %s", dir,
                            strerror(errno));
    }
    llmc_status st = LLMC_OK;
    struct dirent *de;
    llmc_buf p = LLMC_BUF_INIT;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        llmc_buf_clear(&p);
        llmc_buf_printf(&p, "%s/%s", dir, de->d_name);
        if (unlink(p.data) == 0) {
            if (deleted)
                (*deleted)++;
        } else if (errno != ENOENT) {
            st = llmc_err_set(err, LLMC_EIO, errno, "file backend: cannot delete %s: %s",
                              p.data, strerror(errno));
            break;
        }
    }
    llmc_buf_free(&p);
    closedir(d);
    return st;
}

static llmc_status f_flush(void *ctx, const char *ns, size_t nslen, uint64_t *deleted,
                           llmc_err *err)
{
    fctx *f = ctx;
    llmc_buf nd = LLMC_BUF_INIT, dir = LLMC_BUF_INIT;
    llmc_status st = ns_dir(ns, nslen, &nd);
    if (st == LLMC_OK)
        st = llmc_buf_printf(&dir, "%s/%s", f->root, nd.data);
    if (st == LLMC_OK)
        st = clear_dir(dir.data, deleted, err);
    else
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_buf_free(&nd);
    llmc_buf_free(&dir);
    return st;
}

/* Visit the namespace directories of the root. */
typedef llmc_status (*dir_fn)(fctx *f, const char *dir, void *ud, int *stop, llmc_err *err);

static llmc_status each_dir(fctx *f, dir_fn fn, void *ud, llmc_err *err)
{
    DIR *d = opendir(f->root);
    if (!d)
        return llmc_err_set(err, LLMC_EIO, errno, "file backend: cannot read %s: %s", f->root,
                            strerror(errno));
    llmc_status st = LLMC_OK;
    int stop = 0;
    struct dirent *de;
    llmc_buf p = LLMC_BUF_INIT;
    while (st == LLMC_OK && !stop && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, "_") != 0 && strncmp(n, "n-", 2) != 0 && strncmp(n, "h-", 2) != 0)
            continue;
        llmc_buf_clear(&p);
        llmc_buf_printf(&p, "%s/%s", f->root, n);
        st = fn(f, p.data, ud, &stop, err);
    }
    llmc_buf_free(&p);
    closedir(d);
    return st;
}

static llmc_status flush_all_dir(fctx *f, const char *dir, void *ud, int *stop, llmc_err *err)
{
    (void)f;
    (void)ud;
    (void)stop;
    return clear_dir(dir, NULL, err);
}

static llmc_status f_flush_all(void *ctx, llmc_err *err)
{
    return each_dir(ctx, flush_all_dir, NULL, err);
}

typedef struct scan_ud {
    const char *prefix;
    size_t plen;
    llmc_scan_cb cb;
    void *ud;
} scan_ud;

static llmc_status scan_dir(fctx *f, const char *dir, void *ud, int *stop, llmc_err *err)
{
    (void)f;
    scan_ud *s = ud;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? LLMC_OK
                               : llmc_err_set(err, LLMC_EIO, errno,
                                              "file backend: cannot read %s: %s", dir,
                                              strerror(errno));
    llmc_buf p = LLMC_BUF_INIT, key = LLMC_BUF_INIT;
    struct dirent *de;
    while (!*stop && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        llmc_buf_clear(&p);
        llmc_buf_printf(&p, "%s/%s", dir, de->d_name);
        int fd = -1;
        fhead h;
        llmc_err e;
        if (open_entry(p.data, NULL, 0, &fd, &h, &key, 0, &e) != LLMC_OK)
            continue; /* gone, expired or not ours: not a live key */
        close(fd);
        if (key.len >= s->plen && memcmp(key.data, s->prefix, s->plen) == 0)
            *stop = s->cb(s->ud, key.data, key.len);
    }
    llmc_buf_free(&p);
    llmc_buf_free(&key);
    closedir(d);
    return LLMC_OK;
}

static llmc_status f_scan(void *ctx, const char *prefix, size_t plen, llmc_scan_cb cb,
                          void *ud, llmc_err *err)
{
    fctx *f = ctx;
    scan_ud s = {prefix ? prefix : "", prefix ? plen : 0, cb, ud};
    size_t nslen = 0;
    const char *ns = prefix ? key_ns(prefix, plen, &nslen) : NULL;
    if (!ns)
        return each_dir(f, scan_dir, &s, err);
    /* The prefix names a namespace: only its directory can match. */
    llmc_buf nd = LLMC_BUF_INIT, dir = LLMC_BUF_INIT;
    int stop = 0;
    llmc_status st = ns_dir(ns, nslen, &nd);
    if (st == LLMC_OK)
        st = llmc_buf_printf(&dir, "%s/%s", f->root, nd.data);
    if (st == LLMC_OK)
        st = scan_dir(f, dir.data, &s, &stop, err);
    llmc_buf_free(&nd);
    llmc_buf_free(&dir);
    return st;
}

static llmc_status f_ping(void *ctx, llmc_err *err)
{
    fctx *f = ctx;
    if (access(f->root, R_OK | W_OK | X_OK) != 0)
        return llmc_err_set(err, LLMC_EIO, errno, "file backend: directory %s: %s", f->root,
                            strerror(errno));
    return LLMC_OK;
}

static const char *const file_schemes[] = {"file", NULL};

static const llmc_backend_ops file_backend = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "file",
                               "directory of files, one per key (example plugin)"),
    .schemes = file_schemes,
    .options = file_options,
    .caps = LLMC_CAP_TTL | LLMC_CAP_SCOPED_FLUSH | LLMC_CAP_THREAD_SAFE |
            LLMC_CAP_PERSISTENT | LLMC_CAP_SCAN | LLMC_CAP_FILE_LOCATION,
    .open = f_open,
    .close = f_close,
    .get = f_get,
    .set = f_set,
    .del = f_del,
    .exists = f_exists,
    .flush = f_flush,
    .flush_all = f_flush_all,
    .ping = f_ping,
    .scan = f_scan,
    .ttl = f_ttl,
};

static const llmc_backend_ops *const backends[] = {&file_backend, NULL};

LLMC_PLUGIN("file", "1.0.0", backends, NULL, NULL, NULL)
