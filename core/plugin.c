/* The plugin loader: dlopen()ed shared objects that hand back a descriptor
 * (include/llmcache/plugin.h) whose tables are registered under the
 * file's real path as origin.
 *
 * One recursive lock guards the list of loaded plugins and the negative
 * cache of names no plugin provides. It is taken before the registry's
 * lock (llmc_register, llmc__registry_remove_origin) and never while that
 * one is held, since the registry calls llmc__plugin_autoload only after
 * releasing its lock. Recursive because a plugin's constructor or a
 * listing callback may look a name up, which can come back here. */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Upper bound on the entries of one descriptor array, so that a plugin
 * that forgot the terminating NULL gives an error instead of a crash
 * further on (most likely; reading past the array is undefined anyway). */
#define MAX_TABLES_PER_KIND 256
/* Names remembered as "no plugin provides this". */
#define MAX_NEGATIVE 512

/* The 1.0 descriptor ends after `serializers`. */
#define DESC_MIN_SIZE (offsetof(llmc_plugin_descriptor, serializers) + sizeof(void *))
/* Members a later minor appended: present when struct_size covers them. */
#define DESC_HAS(d, member)                                                    \
    ((size_t)(d)->struct_size >= offsetof(llmc_plugin_descriptor, member) + sizeof(void *))

typedef struct plugin {
    struct plugin *next;
    char *path; /* real path: the registry origin */
    void *handle;
    const llmc_plugin_descriptor *desc;
    unsigned long refs; /* open caches using one of its tables */
} plugin;

static pthread_mutex_t plug_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static plugin *plugins;
static int atexit_done;

static char **negative;
static size_t n_negative;
static char *negative_sig; /* search path + directory mtimes when filled */
/* The signature is recomputed (a stat per directory) at most every
 * SIG_RECHECK_NS while LLMCACHE_PLUGIN_PATH stays the same, so repeated
 * lookups of an unknown name cost a lock and a string compare. */
#define SIG_RECHECK_NS 1000000000ull
static char *negative_env;
static uint64_t negative_checked_ns;

/* ------------------------------------------------------------------ */
/* Small helpers. */

const char *llmc_plugin_dir(void) { return LLMC_PLUGIN_DIR; }

static int valid_text(const char *s, int strict)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    if (!strict)
        return 1;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.' || *s == '+'))
            return 0;
    return 1;
}

/* The search path as a NULL-terminated array of directories (owned). */
static char **search_dirs(size_t *n_out)
{
    size_t n = 0, cap = 8;
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return NULL;
    const char *env = getenv("LLMCACHE_PLUGIN_PATH");
    char *copy = llmc__strdup(env ? env : "");
    if (!copy) {
        free(v);
        return NULL;
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ":", &save);; tok = strtok_r(NULL, ":", &save)) {
        const char *d = tok ? tok : LLMC_PLUGIN_DIR;
        if (n + 2 > cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        if (*d && (v[n] = llmc__strdup(d)) != NULL)
            n++;
        if (!tok)
            break;
    }
    free(copy);
    v[n] = NULL;
    if (n_out)
        *n_out = n;
    return v;
}

static void free_dirs(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char *llmc_plugin_search_path(void)
{
    char **dirs = search_dirs(NULL);
    if (!dirs)
        return NULL;
    llmc_buf b = LLMC_BUF_INIT;
    for (size_t i = 0; dirs[i]; i++)
        llmc_buf_printf(&b, "%s%s", i ? ":" : "", dirs[i]);
    if (!b.data)
        llmc_buf_puts(&b, "");
    free_dirs(dirs);
    return b.data;
}

static int has_so_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The `*.so` files of a directory, sorted by name, as full paths. */
static char **list_so(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t n = 0, cap = 16;
    char **v = calloc(cap, sizeof *v);
    struct dirent *de;
    while (v && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_so_suffix(de->d_name))
            continue;
        if (n + 2 > cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        llmc_buf p = LLMC_BUF_INIT;
        if (llmc_buf_printf(&p, "%s/%s", dir, de->d_name) == LLMC_OK)
            v[n++] = p.data;
    }
    closedir(d);
    if (!v)
        return NULL;
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

static plugin *find_loaded_path(const char *real)
{
    for (plugin *p = plugins; p; p = p->next)
        if (strcmp(p->path, real) == 0)
            return p;
    return NULL;
}

static plugin *find_loaded_name(const char *name)
{
    for (plugin *p = plugins; p; p = p->next)
        if (llmc__strcaseeq(p->desc->name, name))
            return p;
    return NULL;
}

/* Arrays of the descriptor by kind (NULL when the descriptor is too old
 * to have that member, which cannot happen for the four 1.0 kinds). */
static const llmc_component *table_at(const llmc_plugin_descriptor *d, llmc_kind k, size_t i)
{
    switch (k) {
    case LLMC_KIND_BACKEND:
        return d->backends && d->backends[i] ? &d->backends[i]->hdr : NULL;
    case LLMC_KIND_PROVIDER:
        return d->providers && d->providers[i] ? &d->providers[i]->hdr : NULL;
    case LLMC_KIND_KEY_STRATEGY:
        return d->key_strategies && d->key_strategies[i] ? &d->key_strategies[i]->hdr : NULL;
    case LLMC_KIND_SERIALIZER:
        return d->serializers && d->serializers[i] ? &d->serializers[i]->hdr : NULL;
    case LLMC_KIND_INDEX:
        if (!DESC_HAS(d, indexes))
            return NULL;
        return d->indexes && d->indexes[i] ? &d->indexes[i]->hdr : NULL;
    case LLMC_KIND_VERIFIER:
        if (!DESC_HAS(d, verifiers))
            return NULL;
        return d->verifiers && d->verifiers[i] ? &d->verifiers[i]->hdr : NULL;
    default:
        return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Opening a file and checking its descriptor (nothing registered yet). */

typedef struct opened {
    void *handle;
    const llmc_plugin_descriptor *desc;
} opened;

static llmc_status check_descriptor(const char *path, const llmc_plugin_descriptor *d,
                                    llmc_err *err)
{
    if (d->abi_major != LLMC_ABI_MAJOR)
        return llmc_err_set(err, LLMC_EABI, 0,
                            "plugin %s: built for llmcache plugin ABI %u.%u, this library has "
                            "ABI %d.%d (major versions must match; rebuild the plugin)",
                            path, d->abi_major, d->abi_minor, LLMC_ABI_MAJOR, LLMC_ABI_MINOR);
    if (d->struct_size < DESC_MIN_SIZE)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "plugin %s: descriptor size %u is smaller than the ABI %d.0 "
                            "descriptor (%zu)", path, d->struct_size, LLMC_ABI_MAJOR,
                            DESC_MIN_SIZE);
    if (!valid_text(d->name, 1))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "plugin %s: invalid plugin name \"%.64s\" (letters, digits, "
                            "- _ . +; at most 64)", path, d->name ? d->name : "(null)");
    if (!valid_text(d->version, 0))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "plugin %s: plugin \"%s\" has no version (or a version longer "
                            "than 64 characters)", path, d->name);
    size_t total = 0;
    for (int k = 0; k < LLMC_KIND_COUNT_; k++) {
        size_t i = 0;
        while (table_at(d, (llmc_kind)k, i)) {
            if (++i > MAX_TABLES_PER_KIND)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "plugin %s: more than %d %s tables (is the array "
                                    "NULL-terminated?)", path, MAX_TABLES_PER_KIND,
                                    llmc_kind_name((llmc_kind)k));
        }
        total += i;
    }
    if (total == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "plugin %s: plugin \"%s\" provides no tables",
                            path, d->name);
    return LLMC_OK;
}

static llmc_status open_file(const char *path, opened *o, llmc_err *err)
{
    memset(o, 0, sizeof *o);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return llmc_err_set(err, errno == ENOENT ? LLMC_ENOTFOUND : LLMC_EIO, errno,
                            "plugin %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return llmc_err_set(err, LLMC_EINVAL, 0, "plugin %s: not a regular file", path);
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "plugin %s: not a loadable shared object: %s", path,
                            why ? why : "dlopen failed");
    }
    dlerror();
    void *sym = dlsym(h, LLMC_PLUGIN_ENTRY_NAME);
    if (!sym) {
        dlclose(h);
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "plugin %s: not an llmcache plugin (no exported %s function; "
                            "declare it with LLMC_PLUGIN(...))", path, LLMC_PLUGIN_ENTRY_NAME);
    }
    llmc_plugin_entry_fn entry;
    /* POSIX guarantees a data pointer from dlsym converts to a function
     * pointer; copy the bytes to keep -Wpedantic quiet. */
    memcpy(&entry, &sym, sizeof entry);
    const llmc_plugin_descriptor *d = entry(LLMC_ABI_MAJOR, LLMC_ABI_MINOR);
    if (!d) {
        dlclose(h);
        return llmc_err_set(err, LLMC_EABI, 0,
                            "plugin %s: %s returned no descriptor (the plugin refuses "
                            "this library's ABI %d.%d)", path, LLMC_PLUGIN_ENTRY_NAME,
                            LLMC_ABI_MAJOR, LLMC_ABI_MINOR);
    }
    llmc_status st = check_descriptor(path, d, err);
    if (st != LLMC_OK) {
        dlclose(h);
        return st;
    }
    o->handle = h;
    o->desc = d;
    return LLMC_OK;
}

/* Does the descriptor provide `name` of `kind` (backends: name or URL
 * scheme)? */
static int provides(const llmc_plugin_descriptor *d, llmc_kind kind, const char *name)
{
    const llmc_component *t;
    for (size_t i = 0; (t = table_at(d, kind, i)) != NULL; i++) {
        if (t->name && llmc__strcaseeq(t->name, name))
            return 1;
        if (kind == LLMC_KIND_BACKEND && t->abi_major == LLMC_ABI_MAJOR &&
            LLMC_HAS_MEMBER(llmc_backend_ops, (const llmc_backend_ops *)t, schemes)) {
            const llmc_backend_ops *b = (const llmc_backend_ops *)t;
            for (const char *const *s = b->schemes; s && *s; s++)
                if (llmc__strcaseeq(*s, name))
                    return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Registering an opened plugin. Called with plug_lock held. */

static void unload_at_exit(void)
{
    llmc_plugin_unload_all();
    pthread_mutex_lock(&plug_lock);
    for (size_t i = 0; i < n_negative; i++)
        free(negative[i]);
    free(negative);
    negative = NULL;
    n_negative = 0;
    free(negative_sig);
    negative_sig = NULL;
    free(negative_env);
    negative_env = NULL;
    pthread_mutex_unlock(&plug_lock);
}

static void negative_clear(void)
{
    for (size_t i = 0; i < n_negative; i++)
        free(negative[i]);
    n_negative = 0;
}

static llmc_status register_plugin(const char *real, opened *o, llmc_err *err)
{
    const llmc_plugin_descriptor *d = o->desc;
    plugin *same = find_loaded_name(d->name);
    if (same)
        return llmc_err_set(err, LLMC_EEXIST, 0,
                            "plugin %s: a plugin named \"%s\" is already loaded from %s",
                            real, d->name, same->path);
    plugin *p = calloc(1, sizeof *p);
    char *path = llmc__strdup(real);
    if (!p || !path) {
        free(p);
        free(path);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_status st = LLMC_OK;
    llmc_err e;
    llmc_err_clear(&e);
    for (int k = 0; k < LLMC_KIND_COUNT_ && st == LLMC_OK; k++) {
        const llmc_component *t;
        for (size_t i = 0; st == LLMC_OK && (t = table_at(d, (llmc_kind)k, i)) != NULL; i++) {
            st = llmc_register((llmc_kind)k, t, real, &e);
        }
    }
    if (st != LLMC_OK) {
        /* All or nothing. */
        llmc__registry_remove_origin(real);
        free(p);
        free(path);
        return llmc_err_set(err, st, e.native, "plugin %s: %s", real, e.msg);
    }
    p->path = path;
    p->handle = o->handle;
    p->desc = d;
    /* Append: listing shows load order. */
    plugin **tail = &plugins;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    o->handle = NULL;
    negative_clear();
    if (!atexit_done) {
        atexit_done = 1;
        /* Registered after llmc_init's own atexit handler, so it runs
         * before the registries are freed. */
        atexit(unload_at_exit);
    }
    llmc__log("info", "loaded plugin %s %s from %s", d->name, d->version, real);
    return LLMC_OK;
}

/* Find llmc-<name>.so in the search path. */
static char *find_by_name(const char *name)
{
    char **dirs = search_dirs(NULL);
    char *found = NULL;
    for (size_t i = 0; dirs && dirs[i] && !found; i++) {
        llmc_buf p = LLMC_BUF_INIT;
        llmc_buf_printf(&p, "%s/llmc-%s.so", dirs[i], name);
        for (char *c = p.data + strlen(dirs[i]) + 1; p.data && *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        struct stat sb;
        if (p.data && stat(p.data, &sb) == 0 && S_ISREG(sb.st_mode))
            found = p.data;
        else
            llmc_buf_free(&p);
    }
    free_dirs(dirs);
    return found;
}

llmc_status llmc_plugin_load(const char *path, llmc_err *err)
{
    if (!path || !*path)
        return llmc_err_set(err, LLMC_EINVAL, 0, "plugin path is empty");
    llmc_init();
    char *byname = NULL;
    if (!strchr(path, '/')) {
        if (!valid_text(path, 1))
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "plugin \"%.64s\": not a path and not a valid plugin name", path);
        byname = find_by_name(path);
        if (!byname) {
            char *sp = llmc_plugin_search_path();
            llmc_status st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                                          "plugin \"%s\": no llmc-%s.so in the plugin path "
                                          "(%s)", path, path, sp ? sp : "");
            free(sp);
            return st;
        }
        path = byname;
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        llmc_status st = llmc_err_set(err, errno == ENOENT ? LLMC_ENOTFOUND : LLMC_EIO, errno,
                                      "plugin %s: %s", path, strerror(errno));
        free(byname);
        return st;
    }
    free(byname);
    pthread_mutex_lock(&plug_lock);
    llmc_status st = LLMC_OK;
    if (!find_loaded_path(real)) {
        opened o;
        st = open_file(real, &o, err);
        if (st == LLMC_OK) {
            st = register_plugin(real, &o, err);
            if (o.handle)
                dlclose(o.handle);
        }
    }
    pthread_mutex_unlock(&plug_lock);
    return st;
}

/* Remove and close one plugin. plug_lock held; p->refs == 0. */
static void unload_one(plugin *p)
{
    plugin **pp = &plugins;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    llmc__registry_remove_origin(p->path);
    llmc__log("info", "unloaded plugin %s from %s", p->desc->name, p->path);
    dlclose(p->handle);
    free(p->path);
    free(p);
    negative_clear();
}

llmc_status llmc_plugin_unload(const char *path_or_name, llmc_err *err)
{
    if (!path_or_name || !*path_or_name)
        return llmc_err_set(err, LLMC_EINVAL, 0, "plugin path or name is empty");
    char real[PATH_MAX];
    int have_real = strchr(path_or_name, '/') && realpath(path_or_name, real);
    pthread_mutex_lock(&plug_lock);
    plugin *p = NULL;
    if (have_real)
        p = find_loaded_path(real);
    if (!p)
        p = find_loaded_path(path_or_name);
    if (!p && !strchr(path_or_name, '/'))
        p = find_loaded_name(path_or_name);
    llmc_status st;
    if (!p) {
        st = llmc_err_set(err, LLMC_ENOTFOUND, 0, "plugin %.400s is not loaded", path_or_name);
    } else if (p->refs) {
        st = llmc_err_set(err, LLMC_EBUSY, 0,
                          "plugin %s: open caches still use its components (%lu "
                          "references); close them first", p->path, p->refs);
    } else {
        unload_one(p);
        st = LLMC_OK;
    }
    pthread_mutex_unlock(&plug_lock);
    return st;
}

size_t llmc_plugin_unload_all(void)
{
    size_t busy = 0;
    pthread_mutex_lock(&plug_lock);
    /* Newest first, so a plugin loaded later (which may have been built
     * to sit on top of an earlier one) goes away first. */
    for (;;) {
        plugin *last = NULL;
        for (plugin *p = plugins; p; p = p->next)
            if (!p->refs)
                last = p;
        if (!last)
            break;
        unload_one(last);
    }
    for (plugin *p = plugins; p; p = p->next)
        busy++;
    pthread_mutex_unlock(&plug_lock);
    return busy;
}

/* ------------------------------------------------------------------ */
/* Autoloading. */

/* What the negative cache depends on: the search path and the mtime of
 * every directory in it (adding a file changes its directory's mtime). */
static char *signature(char **dirs)
{
    llmc_buf b = LLMC_BUF_INIT;
    for (size_t i = 0; dirs && dirs[i]; i++) {
        struct stat sb;
        if (stat(dirs[i], &sb) == 0)
            llmc_buf_printf(&b, "%s@%lld.%ld:", dirs[i], (long long)sb.st_mtim.tv_sec,
                            (long)sb.st_mtim.tv_nsec);
        else
            llmc_buf_printf(&b, "%s@-:", dirs[i]);
    }
    if (!b.data)
        llmc_buf_puts(&b, "");
    return b.data;
}

/* Try one file: load it if it provides kind/name. 1 if loaded. */
static int try_file(const char *path, llmc_kind kind, const char *name, int conventional)
{
    char real[PATH_MAX];
    if (!realpath(path, real) || find_loaded_path(real))
        return 0;
    opened o;
    llmc_err e;
    llmc_err_clear(&e);
    if (open_file(real, &o, &e) != LLMC_OK) {
        /* A file named for exactly this name that does not load is worth a
         * warning; other broken files in the directory only with
         * LLMCACHE_LOG. */
        llmc__log(conventional ? "warn" : "info", "%s", e.msg);
        return 0;
    }
    int ok = 0;
    if (provides(o.desc, kind, name)) {
        if (register_plugin(real, &o, &e) == LLMC_OK)
            ok = 1;
        else
            llmc__log("warn", "%s", e.msg);
    }
    if (o.handle)
        dlclose(o.handle);
    return ok;
}

int llmc__plugin_autoload(llmc_kind kind, const char *name)
{
    if (!name || !*name || strlen(name) > 64 || strchr(name, '/'))
        return 0;
    int loaded = 0;
    char **dirs = NULL;
    char *sig = NULL;
    char key[80];
    snprintf(key, sizeof key, "%d:%s", (int)kind, name);
    for (char *c = key; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    pthread_mutex_lock(&plug_lock);
    const char *env = getenv("LLMCACHE_PLUGIN_PATH");
    uint64_t now = llmc_mono_ns();
    int fresh = negative_sig && negative_env && strcmp(negative_env, env ? env : "") == 0 &&
                now - negative_checked_ns < SIG_RECHECK_NS;
    if (!fresh) {
        dirs = search_dirs(NULL);
        sig = signature(dirs);
        if (!dirs || !sig)
            goto out;
        if (!negative_sig || strcmp(sig, negative_sig) != 0) {
            negative_clear();
            free(negative_sig);
            negative_sig = sig;
            sig = NULL;
        }
        free(negative_env);
        negative_env = llmc__strdup(env ? env : "");
        negative_checked_ns = now;
    }
    /* Another thread may have loaded it while this one waited for the
     * lock: then the caller only needs to look again. */
    for (plugin *p = plugins; p; p = p->next)
        if (provides(p->desc, kind, name)) {
            loaded = 1;
            goto out;
        }
    for (size_t i = 0; i < n_negative; i++)
        if (strcmp(negative[i], key) == 0)
            goto out;
    if (!dirs && !(dirs = search_dirs(NULL)))
        goto out;
    /* Conventional names first, in every directory. */
    for (size_t i = 0; dirs[i] && !loaded; i++) {
        llmc_buf p = LLMC_BUF_INIT;
        if (llmc_buf_printf(&p, "%s/llmc-%s", dirs[i], key + 2) == LLMC_OK &&
            llmc_buf_puts(&p, ".so") == LLMC_OK) {
            struct stat sb;
            if (stat(p.data, &sb) == 0)
                loaded = try_file(p.data, kind, name, 1);
        }
        llmc_buf_free(&p);
    }
    /* Then whatever else the directories hold. */
    for (size_t i = 0; dirs[i] && !loaded; i++) {
        char **files = list_so(dirs[i]);
        for (size_t j = 0; files && files[j] && !loaded; j++)
            loaded = try_file(files[j], kind, name, 0);
        free_dirs(files);
    }
    if (!loaded) {
        if (!negative || n_negative == MAX_NEGATIVE) {
            negative_clear();
            if (!negative)
                negative = calloc(MAX_NEGATIVE, sizeof *negative);
        }
        if (negative && (negative[n_negative] = llmc__strdup(key)) != NULL)
            n_negative++;
    }
out:
    free(sig);
    free_dirs(dirs);
    pthread_mutex_unlock(&plug_lock);
    return loaded;
}

/* ------------------------------------------------------------------ */
/* Caches hold references to the plugins whose tables they use. */

static plugin *owner_of(const llmc_component *t)
{
    for (plugin *p = plugins; p; p = p->next)
        for (int k = 0; k < LLMC_KIND_COUNT_; k++) {
            const llmc_component *x;
            for (size_t i = 0; (x = table_at(p->desc, (llmc_kind)k, i)) != NULL; i++)
                if (x == t)
                    return p;
        }
    return NULL;
}

void llmc__plugin_acquire(const llmc_component *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&plug_lock);
    plugin *p = plugins ? owner_of(t) : NULL;
    if (p)
        p->refs++;
    pthread_mutex_unlock(&plug_lock);
}

void llmc__plugin_release(const llmc_component *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&plug_lock);
    plugin *p = plugins ? owner_of(t) : NULL;
    if (p && p->refs)
        p->refs--;
    pthread_mutex_unlock(&plug_lock);
}

/* ------------------------------------------------------------------ */
/* Listing. */

static void fill_info(llmc_plugin_info *in, const char *path, const llmc_plugin_descriptor *d)
{
    memset(in, 0, sizeof *in);
    in->struct_size = sizeof *in;
    in->path = path;
    in->error = "";
    if (d) {
        in->name = d->name;
        in->version = d->version;
        in->abi_major = d->abi_major;
        in->abi_minor = d->abi_minor;
        in->descriptor = d;
    }
}

void llmc_plugin_foreach(llmc_plugin_cb cb, void *ud)
{
    if (!cb)
        return;
    pthread_mutex_lock(&plug_lock);
    for (plugin *p = plugins; p; p = p->next) {
        llmc_plugin_info in;
        fill_info(&in, p->path, p->desc);
        in.loaded = 1;
        in.busy = p->refs;
        if (cb(ud, &in))
            break;
    }
    pthread_mutex_unlock(&plug_lock);
}

void llmc_plugin_scan(llmc_plugin_cb cb, void *ud)
{
    if (!cb)
        return;
    llmc_init();
    pthread_mutex_lock(&plug_lock);
    char **dirs = search_dirs(NULL);
    int stop = 0;
    for (size_t i = 0; dirs && dirs[i] && !stop; i++) {
        char **files = list_so(dirs[i]);
        for (size_t j = 0; files && files[j] && !stop; j++) {
            char real[PATH_MAX];
            const char *path = realpath(files[j], real) ? real : files[j];
            llmc_plugin_info in;
            plugin *p = find_loaded_path(path);
            if (p) {
                fill_info(&in, p->path, p->desc);
                in.loaded = 1;
                in.busy = p->refs;
                stop = cb(ud, &in);
                continue;
            }
            opened o;
            llmc_err e;
            llmc_err_clear(&e);
            llmc_status st = open_file(path, &o, &e);
            fill_info(&in, path, st == LLMC_OK ? o.desc : NULL);
            in.status = st;
            in.error = st == LLMC_OK ? "" : e.msg;
            stop = cb(ud, &in);
            if (st == LLMC_OK)
                dlclose(o.handle);
        }
        free_dirs(files);
    }
    free_dirs(dirs);
    pthread_mutex_unlock(&plug_lock);
}
