/* llmcache: plugins, shared objects that add components at run time.
 *
 * A plugin is a shared object (`.so`) exporting one function,
 * `llmc_plugin_entry`, that returns a constant descriptor: ABI numbers,
 * the plugin's name and version, and NULL-terminated arrays of the tables
 * it provides (any number of backends, providers, key strategies and
 * serializers). The loader dlopen()s the file (RTLD_NOW | RTLD_LOCAL),
 * checks the descriptor and registers every table with the plugin's
 * absolute file path as its origin (see llmc_registry_foreach). All or
 * nothing: if one table is refused (duplicate name or URL scheme, invalid
 * table) none of the plugin's tables stays registered and the file is
 * closed again.
 *
 * Writing one (see docs/plugins.md for a walk-through):
 *
 *     #include <llmcache/llmcache.h>
 *     static const llmc_backend_ops my_backend = { ... };
 *     static const llmc_backend_ops *const backends[] = {&my_backend, NULL};
 *     LLMC_PLUGIN("my-plugin", "1.0.0", backends, NULL, NULL, NULL)
 *
 * and build it with
 *     cc -shared -fPIC -o llmc-my.so my.c $(pkg-config --cflags --libs llmcache)
 *
 * Where plugins are found:
 *   1. every directory of LLMCACHE_PLUGIN_PATH (colon-separated, empty
 *      entries ignored), in order, then
 *   2. the installed plugin directory, <prefix>/<libdir>/llmcache/plugins
 *      (`pkg-config --variable=plugindir llmcache`; llmc_plugin_dir()).
 *
 * Autoloading: when a backend (cache type or URL scheme), provider, key
 * strategy or serializer name is not registered, the registry asks the
 * loader before giving up. The loader looks in each directory, in order,
 * for the conventional file `llmc-<name>.so` (name lower-cased), and then
 * reads the descriptor of every other `*.so` file in the directories until
 * one provides that name (files that do not are closed again). The first
 * plugin found wins. Files that fail to load during autoloading are
 * skipped (logged with LLMCACHE_LOG) so one broken file cannot hide the
 * others. A name that no plugin provides is remembered until a plugin
 * directory changes (its mtime; checked at most once a second),
 * LLMCACHE_PLUGIN_PATH changes, or a plugin is loaded or unloaded
 * explicitly, so unknown names stay cheap.
 *
 * ABI and versions. The descriptor and every table start with abi_major,
 * abi_minor and struct_size.
 *   - A minor version (LLMC_ABI_MINOR + 1) may only append: new members at
 *     the end of the descriptor or of a table, new optional functions, new
 *     capability or flag bits, new status codes, new kinds of component
 *     arrays after the existing ones. The loader reads a member only when
 *     struct_size says the plugin's struct has it, so a plugin built
 *     against an older minor works unchanged with a newer library, and a
 *     plugin built against a newer minor works with an older library as
 *     long as it does not depend on what the older one lacks (its extra
 *     members are ignored).
 *   - A major version (LLMC_ABI_MAJOR + 1) is needed for anything else:
 *     removing, reordering or retyping a member, changing a function's
 *     signature or the meaning of an argument, changing the entry point's
 *     name or signature, changing ownership rules. A plugin whose
 *     abi_major differs from the library's is refused with LLMC_EABI and
 *     must be rebuilt.
 *
 * Thread safety: every function here may be called from any thread; the
 * loader has one lock and the registries their own. Loading while other
 * threads look components up is safe. Unloading is safe against lookups
 * but not against code that is still using the plugin's tables: the
 * loader refuses (LLMC_EBUSY) while a cache opened with one of its
 * backends, key strategies or serializers is open, or a client uses one
 * of its vector indexes or verifiers, but it cannot know
 * about a client that forced one of its providers (client option
 * `provider`), completion calls in flight, a cache being opened at that
 * very moment, or an llmc_registry_foreach walk in another thread; the
 * application must make sure those are over. The usual pattern is to
 * load early and let the exit handler unload. */
#ifndef LLMCACHE_PLUGIN_H
#define LLMCACHE_PLUGIN_H

#include "common.h"
#include "backend.h"
#include "entry.h"
#include "keys.h"
#include "provider.h"
#include "semantic.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The descriptor a plugin hands back. All pointers must stay valid while
 * the plugin is loaded (use static storage). Arrays are NULL-terminated;
 * a NULL array means "none of this kind". */
typedef struct llmc_plugin_descriptor {
    uint16_t abi_major;   /* LLMC_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* LLMC_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(llmc_plugin_descriptor) at build time */
    const char *name;     /* plugin name: letters, digits, - _ . + (<= 64);
                             unique among loaded plugins */
    const char *version;  /* the plugin's own version, free text (<= 64) */
    const llmc_backend_ops *const *backends;
    const llmc_provider_ops *const *providers;
    const llmc_key_strategy_ops *const *key_strategies;
    const llmc_serializer_ops *const *serializers;
    /* ABI 1.0 ends here; later minors append members below. */
    /* ABI 1.1: semantic lookups' vector indexes and verifiers
     * (semantic.h); read only when struct_size covers them. */
    const llmc_index_ops *const *indexes;
    const llmc_verifier_ops *const *verifiers;
} llmc_plugin_descriptor;

/* The entry point's name and type. The loader calls it once per load,
 * passing the library's ABI numbers (a plugin may use them to refuse, by
 * returning NULL, or to hand back a smaller descriptor). Returning NULL
 * makes the load fail with LLMC_EABI. */
#define LLMC_PLUGIN_ENTRY_NAME "llmc_plugin_entry"
typedef const llmc_plugin_descriptor *(*llmc_plugin_entry_fn)(unsigned host_abi_major,
                                                                unsigned host_abi_minor);

#if defined(__GNUC__)
#define LLMC_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define LLMC_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
#define LLMC_PLUGIN_EXTERN_C_ extern "C"
#else
#define LLMC_PLUGIN_EXTERN_C_
#endif

/* Declare the plugin: one line at file scope, after the tables. Each of
 * backends_, providers_, strategies_ and serializers_ is the name of a
 * NULL-terminated array of table pointers of that kind, or NULL. Exports
 * `llmc_plugin_entry` with default visibility (so it works with
 * -fvisibility=hidden). */
#define LLMC_PLUGIN(name_, version_, backends_, providers_, strategies_, serializers_) \
    static const llmc_plugin_descriptor llmc_plugin_descriptor_ = {                  \
        LLMC_ABI_MAJOR, LLMC_ABI_MINOR, (uint32_t)sizeof(llmc_plugin_descriptor),    \
        (name_), (version_), (backends_), (providers_), (strategies_),               \
        (serializers_), NULL, NULL};                                                 \
    LLMC_PLUGIN_EXTERN_C_ LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *          \
    llmc_plugin_entry(unsigned host_abi_major, unsigned host_abi_minor);             \
    LLMC_PLUGIN_EXTERN_C_ LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *          \
    llmc_plugin_entry(unsigned host_abi_major, unsigned host_abi_minor)              \
    {                                                                                \
        (void)host_abi_major;                                                        \
        (void)host_abi_minor;                                                        \
        return &llmc_plugin_descriptor_;                                             \
    }

/* The same with vector indexes and verifiers too (ABI 1.1): indexes_
 * and verifiers_ name NULL-terminated arrays of llmc_index_ops and
 * llmc_verifier_ops pointers, or NULL. */
#define LLMC_PLUGIN_EX(name_, version_, backends_, providers_, strategies_, serializers_, \
                       indexes_, verifiers_)                                          \
    static const llmc_plugin_descriptor llmc_plugin_descriptor_ = {                  \
        LLMC_ABI_MAJOR, LLMC_ABI_MINOR, (uint32_t)sizeof(llmc_plugin_descriptor),    \
        (name_), (version_), (backends_), (providers_), (strategies_),               \
        (serializers_), (indexes_), (verifiers_)};                                   \
    LLMC_PLUGIN_EXTERN_C_ LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *          \
    llmc_plugin_entry(unsigned host_abi_major, unsigned host_abi_minor);             \
    LLMC_PLUGIN_EXTERN_C_ LLMC_PLUGIN_EXPORT const llmc_plugin_descriptor *          \
    llmc_plugin_entry(unsigned host_abi_major, unsigned host_abi_minor)              \
    {                                                                                \
        (void)host_abi_major;                                                        \
        (void)host_abi_minor;                                                        \
        return &llmc_plugin_descriptor_;                                             \
    }

/* ------------------------------------------------------------------ */
/* Loading and unloading. */

/* Load a plugin and register its tables. `path` is a file path (anything
 * containing '/'), or a bare plugin name looked up as `llmc-<name>.so` in
 * the plugin directories. Loading a file that is already loaded (same
 * real path) is LLMC_OK and does nothing.
 * Errors, each with a message that names the file:
 *   LLMC_ENOTFOUND  no such file (or no llmc-<name>.so in the path)
 *   LLMC_EINVAL     not a regular file, not a loadable shared object
 *                   (dlopen's reason is quoted), a shared object without
 *                   the llmc_plugin_entry symbol ("not an llmcache
 *                   plugin"), or a malformed descriptor or table
 *   LLMC_EABI       built for another ABI major, or the entry returned NULL
 *   LLMC_EEXIST     a plugin of the same name is loaded, or one of its
 *                   component names / URL schemes / serializer ids is
 *                   already registered (the colliding name is given)
 * On failure nothing stays registered and the file is closed. `err` may be
 * NULL. Thread-safe. */
LLMC_API llmc_status llmc_plugin_load(const char *path, llmc_err *err);

/* Unload a loaded plugin given by its path (as passed to llmc_plugin_load
 * or its real path) or by its descriptor name: its tables are removed
 * from the registries and the file is dlclose()d. LLMC_ENOTFOUND if no
 * such plugin is loaded; LLMC_EBUSY (nothing changed) while caches that
 * use one of its backends, serializers or key strategies are open, or
 * clients that use one of its vector indexes or verifiers exist. The
 * caller must make sure no client still uses one of its providers (see
 * the top of this file). Thread-safe. */
LLMC_API llmc_status llmc_plugin_unload(const char *path_or_name, llmc_err *err);

/* Unload every plugin that is not busy. Returns how many remain loaded
 * (busy ones). Also run automatically at process exit. Thread-safe. */
LLMC_API size_t llmc_plugin_unload_all(void);

/* ------------------------------------------------------------------ */
/* Listing. */

typedef struct llmc_plugin_info {
    uint32_t struct_size;    /* sizeof(llmc_plugin_info) */
    const char *path;        /* absolute path of the file: the origin its
                                tables are registered under */
    int loaded;              /* 1 if currently loaded */
    llmc_status status;      /* LLMC_OK, or why the file cannot be loaded
                                (llmc_plugin_scan only) */
    const char *error;       /* message when status != LLMC_OK, else "" */
    /* From the descriptor (NULL / 0 when status != LLMC_OK): */
    const char *name;
    const char *version;
    unsigned abi_major, abi_minor;
    const llmc_plugin_descriptor *descriptor;
    /* Number of open caches using its tables (loaded plugins only). */
    unsigned long busy;
} llmc_plugin_info;

/* Called once per plugin; everything in `info` is borrowed and valid only
 * during the call (a scanned, not loaded, file is closed right after).
 * Return non-zero to stop. The callback must not load or unload plugins. */
typedef int (*llmc_plugin_cb)(void *ud, const llmc_plugin_info *info);

/* Visit the loaded plugins, in load order. Thread-safe. */
LLMC_API void llmc_plugin_foreach(llmc_plugin_cb cb, void *ud);

/* Visit every `*.so` file in the plugin directories (in search order,
 * files sorted by name within a directory), loaded or not, with its
 * descriptor or the reason it cannot be loaded; what `llmcache plugins`
 * shows as "available". Files that are not loaded are opened only to read
 * the descriptor and closed again; nothing is registered. Thread-safe. */
LLMC_API void llmc_plugin_scan(llmc_plugin_cb cb, void *ud);

/* The directories searched, in order: LLMCACHE_PLUGIN_PATH's entries and
 * then the installed directory, joined with ':'. Caller frees with
 * llmc_free. NULL on allocation failure. */
LLMC_API char *llmc_plugin_search_path(void);

/* The installed plugin directory (static string), e.g.
 * "/usr/local/lib/x86_64-linux-gnu/llmcache/plugins". */
LLMC_API const char *llmc_plugin_dir(void);

#ifdef __cplusplus
}
#endif
#endif
