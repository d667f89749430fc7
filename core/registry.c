/* The registries, one per kind: name -> const table, one mutex for all. Tables are
 * never copied or modified; the registry only holds pointers. */
#include "builtins.h"
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct reg_entry {
    const llmc_component *t;
    char *origin;
} reg_entry;

typedef struct reg_list {
    reg_entry *v;
    size_t n, cap;
} reg_list;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_list regs[LLMC_KIND_COUNT_];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static llmc_status init_status = LLMC_OK;

const char *llmc_kind_name(llmc_kind k)
{
    switch (k) {
    case LLMC_KIND_BACKEND: return "backend";
    case LLMC_KIND_PROVIDER: return "provider";
    case LLMC_KIND_KEY_STRATEGY: return "key_strategy";
    case LLMC_KIND_SERIALIZER: return "serializer";
    case LLMC_KIND_INDEX: return "index";
    case LLMC_KIND_VERIFIER: return "verifier";
    default: return "unknown";
    }
}

/* Smallest acceptable struct_size per kind: up to the last required
 * member. Optional members added later sit beyond it and are read only
 * through LLMC_HAS_MEMBER. */
static size_t min_size(llmc_kind k)
{
    switch (k) {
    case LLMC_KIND_BACKEND:
        return offsetof(llmc_backend_ops, del) + sizeof(void *);
    case LLMC_KIND_PROVIDER:
        return offsetof(llmc_provider_ops, parse_stream_event) + sizeof(void *);
    case LLMC_KIND_SERIALIZER:
        return offsetof(llmc_serializer_ops, decode) + sizeof(void *);
    case LLMC_KIND_KEY_STRATEGY:
        return offsetof(llmc_key_strategy_ops, compute) + sizeof(void *);
    case LLMC_KIND_INDEX:
        return offsetof(llmc_index_ops, count) + sizeof(void *);
    case LLMC_KIND_VERIFIER:
        return offsetof(llmc_verifier_ops, verify) + sizeof(void *);
    default:
        return sizeof(llmc_component);
    }
}

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.' && *s != '+')
            return 0;
    return 1;
}

/* Does a registered backend already answer `name` (as name or scheme)? */
static const llmc_component *find_locked(llmc_kind kind, const char *name)
{
    reg_list *l = &regs[kind];
    for (size_t i = 0; i < l->n; i++) {
        const llmc_component *t = l->v[i].t;
        if (llmc__strcaseeq(t->name, name))
            return t;
        if (kind == LLMC_KIND_BACKEND) {
            const llmc_backend_ops *b = (const llmc_backend_ops *)t;
            for (const char *const *s = b->schemes; s && *s; s++)
                if (llmc__strcaseeq(*s, name))
                    return t;
        }
    }
    return NULL;
}

/* The rules of each kind, past the common header checks. */
static llmc_status validate_backend(const llmc_backend_ops *b, llmc_err *err)
{
    if (!b->open || !b->close || !b->get || !b->set || !b->del)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "backend \"%s\": open, close, get, set and del are required",
                            b->hdr.name);
    for (const char *const *s = b->schemes; s && *s; s++)
        if (!valid_name(*s))
            return llmc_err_set(err, LLMC_EINVAL, 0, "backend \"%s\": invalid URL scheme \"%.64s\"",
                                b->hdr.name, *s);
    int acq = LLMC_HAS_MEMBER(llmc_backend_ops, b, lease_acquire) && b->lease_acquire;
    int rel = LLMC_HAS_MEMBER(llmc_backend_ops, b, lease_release) && b->lease_release;
    if (acq != rel)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "backend \"%s\": lease_acquire and lease_release go together",
                            b->hdr.name);
    if (LLMC_HAS_MEMBER(llmc_backend_ops, b, lease_renew) && b->lease_renew && !acq)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "backend \"%s\": lease_renew needs lease_acquire and lease_release",
                            b->hdr.name);
    return LLMC_OK;
}

static llmc_status validate_provider(const llmc_provider_ops *p, llmc_err *err)
{
    const char *nm = p->hdr.name;
    /* The name is the routing prefix of "provider/model" and the plugin
     * file name of an autoloaded provider, so it cannot hold '/' or '.'. */
    if (strchr(nm, '/') || strchr(nm, '.'))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "provider name \"%s\" must not contain '/' or '.'", nm);
    if (p->flags & LLMC_PROVIDER_LOCAL) {
        if (!LLMC_HAS_MEMBER(llmc_provider_ops, p, respond_local) || !p->respond_local)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "provider \"%s\": the LOCAL flag needs respond_local", nm);
    } else if (!p->build_request || !p->parse_response) {
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "provider \"%s\": build_request and parse_response are required",
                            nm);
    }
    if ((p->flags & LLMC_PROVIDER_STREAM) && !(p->flags & LLMC_PROVIDER_LOCAL) &&
        !p->parse_stream_event)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "provider \"%s\": the STREAM flag needs parse_stream_event", nm);
    if ((p->stream_new == NULL) != (p->stream_free == NULL))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "provider \"%s\": stream_new and stream_free go together", nm);
    return LLMC_OK;
}

/* Every check a table gets, whoever registers it (llmc_init, the
 * application, the plugin loader): nothing else validates tables. */
static llmc_status validate(llmc_kind kind, const llmc_component *t, llmc_err *err)
{
    if (!t)
        return llmc_err_set(err, LLMC_EINVAL, 0, "NULL %s table", llmc_kind_name(kind));
    const char *nm = t->name ? t->name : "(unnamed)";
    if (t->abi_major != LLMC_ABI_MAJOR)
        return llmc_err_set(err, LLMC_EABI, 0,
                            "%s \"%.64s\" was built for ABI %u.%u; this library has ABI "
                            "%d.%d (major versions must match)",
                            llmc_kind_name(kind), nm, t->abi_major, t->abi_minor,
                            LLMC_ABI_MAJOR, LLMC_ABI_MINOR);
    if (t->struct_size < min_size(kind))
        return llmc_err_set(err, LLMC_EABI, 0,
                            "%s \"%.64s\": table size %u is smaller than the minimum %zu",
                            llmc_kind_name(kind), nm, t->struct_size, min_size(kind));
    if (!valid_name(t->name))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s name \"%.64s\" is invalid (letters, digits, - _ . +; "
                            "at most 64)", llmc_kind_name(kind), nm);
    switch (kind) {
    case LLMC_KIND_BACKEND:
        return validate_backend((const llmc_backend_ops *)t, err);
    case LLMC_KIND_PROVIDER:
        return validate_provider((const llmc_provider_ops *)t, err);
    case LLMC_KIND_SERIALIZER: {
        const llmc_serializer_ops *s = (const llmc_serializer_ops *)t;
        if (!s->encode || !s->decode)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "serializer \"%s\": encode and decode are required", t->name);
        return LLMC_OK;
    }
    case LLMC_KIND_KEY_STRATEGY:
        if (!((const llmc_key_strategy_ops *)t)->compute)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "key strategy \"%s\": compute is required", t->name);
        return LLMC_OK;
    case LLMC_KIND_INDEX: {
        const llmc_index_ops *x = (const llmc_index_ops *)t;
        if (!x->open || !x->close || !x->add || !x->remove || !x->search || !x->count)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "index \"%s\": open, close, add, remove, search and count are "
                                "required", t->name);
        return LLMC_OK;
    }
    case LLMC_KIND_VERIFIER:
        if (!((const llmc_verifier_ops *)t)->verify)
            return llmc_err_set(err, LLMC_EINVAL, 0, "verifier \"%s\": verify is required",
                                t->name);
        return LLMC_OK;
    default:
        return LLMC_OK;
    }
}

static llmc_status register_locked(llmc_kind kind, const llmc_component *t,
                                   const char *origin, llmc_err *err)
{
    if (find_locked(kind, t->name))
        return llmc_err_set(err, LLMC_EEXIST, 0, "%s \"%s\" is already registered",
                            llmc_kind_name(kind), t->name);
    if (kind == LLMC_KIND_BACKEND) {
        const llmc_backend_ops *b = (const llmc_backend_ops *)t;
        for (const char *const *s = b->schemes; s && *s; s++)
            if (find_locked(kind, *s))
                return llmc_err_set(err, LLMC_EEXIST, 0,
                                    "backend \"%s\": URL scheme \"%s\" is already taken",
                                    t->name, *s);
    } else if (kind == LLMC_KIND_SERIALIZER) {
        uint8_t id = ((const llmc_serializer_ops *)t)->id;
        reg_list *l = &regs[kind];
        for (size_t i = 0; i < l->n; i++)
            if (((const llmc_serializer_ops *)l->v[i].t)->id == id)
                return llmc_err_set(err, LLMC_EEXIST, 0,
                                    "serializer \"%s\": id %u is already used by \"%s\"",
                                    t->name, id, l->v[i].t->name);
    }
    reg_list *l = &regs[kind];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        reg_entry *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        l->v = nv;
        l->cap = cap;
    }
    char *o = llmc__strdup(origin ? origin : "application");
    if (!o)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    l->v[l->n].t = t;
    l->v[l->n].origin = o;
    l->n++;
    return LLMC_OK;
}

static llmc_status add(llmc_kind kind, const llmc_component *t, const char *origin,
                       llmc_err *err)
{
    if ((unsigned)kind >= LLMC_KIND_COUNT_)
        return llmc_err_set(err, LLMC_EINVAL, 0, "unknown component kind %d", (int)kind);
    llmc_status st = validate(kind, t, err);
    if (st != LLMC_OK)
        return st;
    pthread_mutex_lock(&reg_lock);
    st = register_locked(kind, t, origin, err);
    pthread_mutex_unlock(&reg_lock);
    return st;
}

static void free_registries(void)
{
    for (int k = 0; k < LLMC_KIND_COUNT_; k++) {
        for (size_t i = 0; i < regs[k].n; i++)
            free(regs[k].v[i].origin);
        free(regs[k].v);
        regs[k].v = NULL;
        regs[k].n = regs[k].cap = 0;
    }
}

/* Set while do_init runs on this thread: the built-ins register through
 * the public llmc_register, which must not wait on the init it is part
 * of. */
static __thread int in_init;

static void do_init(void)
{
    in_init = 1;
    llmc_err e;
    llmc_err_clear(&e);
    llmc_status st = llmc__builtins_register(&e);
    if (st != LLMC_OK)
        llmc__log("error", "registering built-in components failed: %s", e.msg);
    init_status = st;
    in_init = 0;
    /* Free the registry lists at exit so leak checkers stay quiet. */
    atexit(free_registries);
}

llmc_status llmc_init(void)
{
    pthread_once(&init_once, do_init);
    return init_status;
}

llmc_status llmc_register(llmc_kind kind, const llmc_component *table, const char *origin,
                          llmc_err *err)
{
    if (!in_init)
        llmc_init();
    return add(kind, table, origin, err);
}

const llmc_component *llmc_find(llmc_kind kind, const char *name)
{
    if ((unsigned)kind >= LLMC_KIND_COUNT_ || !name || !*name)
        return NULL;
    llmc_init();
    pthread_mutex_lock(&reg_lock);
    const llmc_component *t = find_locked(kind, name);
    pthread_mutex_unlock(&reg_lock);
    if (!t && llmc__plugin_autoload(kind, name)) {
        pthread_mutex_lock(&reg_lock);
        t = find_locked(kind, name);
        pthread_mutex_unlock(&reg_lock);
    }
    return t;
}

void llmc_registry_foreach(llmc_kind kind, llmc_registry_cb cb, void *ud)
{
    if ((unsigned)kind >= LLMC_KIND_COUNT_ || !cb)
        return;
    llmc_init();
    /* Snapshot under the lock, call back without it (callbacks may look
     * things up). Tables and origins are never freed while in use. */
    pthread_mutex_lock(&reg_lock);
    size_t n = regs[kind].n;
    reg_entry *snap = malloc((n ? n : 1) * sizeof *snap);
    /* A kind may have no entries (no verifier is built in): its vector
     * is then NULL, which memcpy must not be given even for 0 bytes. */
    if (snap && n)
        memcpy(snap, regs[kind].v, n * sizeof *snap);
    pthread_mutex_unlock(&reg_lock);
    if (!snap)
        return;
    for (size_t i = 0; i < n; i++)
        if (cb(ud, kind, snap[i].t, snap[i].origin))
            break;
    free(snap);
}

char *llmc_registry_names(llmc_kind kind)
{
    llmc_buf b = LLMC_BUF_INIT;
    llmc_init();
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; (unsigned)kind < LLMC_KIND_COUNT_ && i < regs[kind].n; i++) {
        if (i)
            llmc_buf_puts(&b, ", ");
        llmc_buf_puts(&b, regs[kind].v[i].t->name);
    }
    pthread_mutex_unlock(&reg_lock);
    if (!b.data)
        llmc_buf_puts(&b, "");
    return b.data;
}

size_t llmc__registry_remove_origin(const char *origin)
{
    size_t removed = 0;
    pthread_mutex_lock(&reg_lock);
    for (int k = 0; k < LLMC_KIND_COUNT_; k++) {
        reg_list *l = &regs[k];
        size_t j = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (strcmp(l->v[i].origin, origin) == 0) {
                free(l->v[i].origin);
                removed++;
            } else {
                l->v[j++] = l->v[i];
            }
        }
        l->n = j;
    }
    pthread_mutex_unlock(&reg_lock);
    return removed;
}

/* Typed shorthands. */
llmc_status llmc_register_backend(const llmc_backend_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_BACKEND, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_backend_ops *llmc_find_backend(const char *name)
{
    return (const llmc_backend_ops *)llmc_find(LLMC_KIND_BACKEND, name);
}

llmc_status llmc_register_serializer(const llmc_serializer_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_SERIALIZER, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_serializer_ops *llmc_find_serializer(const char *name)
{
    return (const llmc_serializer_ops *)llmc_find(LLMC_KIND_SERIALIZER, name);
}

llmc_status llmc_register_key_strategy(const llmc_key_strategy_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_KEY_STRATEGY, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_key_strategy_ops *llmc_find_key_strategy(const char *name)
{
    return (const llmc_key_strategy_ops *)llmc_find(LLMC_KIND_KEY_STRATEGY, name);
}

llmc_status llmc_register_index(const llmc_index_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_INDEX, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_index_ops *llmc_find_index(const char *name)
{
    return (const llmc_index_ops *)llmc_find(LLMC_KIND_INDEX, name);
}

llmc_status llmc_register_verifier(const llmc_verifier_ops *ops, llmc_err *err)
{
    return llmc_register(LLMC_KIND_VERIFIER, ops ? &ops->hdr : NULL, NULL, err);
}

const llmc_verifier_ops *llmc_find_verifier(const char *name)
{
    return (const llmc_verifier_ops *)llmc_find(LLMC_KIND_VERIFIER, name);
}
