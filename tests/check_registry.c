/* Registries: custom backends opened through their URL scheme, duplicate
 * and ABI checks, the checks every kind's table gets whoever registers it,
 * short (older-header) tables whose optional members are never read,
 * enumeration. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "internal.h"

/* A tiny custom backend: one slot, to prove the core routes to it. */
typedef struct one {
    llmc_buf key, val;
    char prefix[64];
} one;

static llmc_status one_open(const llmc_backend_config *cfg, void **ctx, llmc_err *err)
{
    one *o = calloc(1, sizeof *o);
    if (!o)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "oom");
    const char *p = llmc_options_get(cfg->options, "label");
    snprintf(o->prefix, sizeof o->prefix, "%s", p ? p : "");
    if (strcmp(o->prefix, "fail") == 0) {
        free(o);
        return llmc_err_set(err, LLMC_ECONN, 0, "one: refusing to open (label=fail)");
    }
    *ctx = o;
    return LLMC_OK;
}
static void one_close(void *ctx)
{
    one *o = ctx;
    llmc_buf_free(&o->key);
    llmc_buf_free(&o->val);
    free(o);
}
static llmc_status one_get(void *ctx, const char *k, size_t kl, llmc_buf *out, llmc_err *err)
{
    (void)err;
    one *o = ctx;
    if (o->key.len != kl || memcmp(o->key.data, k, kl) != 0)
        return LLMC_MISS;
    llmc_buf_set(out, o->prefix, strlen(o->prefix));
    return llmc_buf_append(out, o->val.data, o->val.len);
}
static llmc_status one_set(void *ctx, const char *k, size_t kl, const void *v, size_t vl,
                           int64_t ttl, llmc_err *err)
{
    (void)ttl;
    (void)err;
    one *o = ctx;
    llmc_buf_set(&o->key, k, kl);
    return llmc_buf_set(&o->val, v, vl);
}
static llmc_status one_del(void *ctx, const char *k, size_t kl, llmc_err *err)
{
    (void)err;
    one *o = ctx;
    if (o->key.len != kl || memcmp(o->key.data, k, kl) != 0)
        return LLMC_MISS;
    llmc_buf_clear(&o->key);
    return LLMC_OK;
}

static const char *const one_schemes[] = {"one", "single", NULL};
static const char *const one_options[] = {"label", NULL};
static const llmc_backend_ops one_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "one-slot", "test: one key"),
    .schemes = one_schemes,
    .options = one_options,
    .caps = 0, /* not thread-safe: the core serialises it */
    .open = one_open,
    .close = one_close,
    .get = one_get,
    .set = one_set,
    .del = one_del,
};

START_TEST(t_custom_backend)
{
    llmc_err e;
    ck_assert_int_eq(llmc_register_backend(&one_ops, &e), LLMC_OK);
    ck_assert_ptr_eq(llmc_find_backend("ONE"), &one_ops);
    ck_assert_ptr_eq(llmc_find_backend("single"), &one_ops);
    ck_assert_ptr_eq(llmc_find_backend("one-slot"), &one_ops);
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open("one://?label=L-", NULL, &c, &e), LLMC_OK);
    ck_assert_str_eq(llmc_cache_backend_name(c), "one-slot");
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, "v", 1, 0), LLMC_OK);
    llmc_buf v = LLMC_BUF_INIT;
    ck_assert_int_eq(llmc_cache_get(c, "k", 1, &v), LLMC_OK);
    ck_assert_str_eq(v.data, "L-v");
    /* emulated operations: exists via get, mget and mset as loops */
    ck_assert_int_eq(llmc_cache_exists(c, "k", 1), LLMC_OK);
    const char *keys[] = {"k", "x"};
    size_t kl[] = {1, 1};
    llmc_buf vals[2] = {LLMC_BUF_INIT, LLMC_BUF_INIT};
    llmc_status sts[2];
    ck_assert_int_eq(llmc_cache_mget(c, 2, keys, kl, vals, sts), LLMC_OK);
    ck_assert_int_eq(sts[0], LLMC_OK);
    ck_assert_int_eq(sts[1], LLMC_MISS);
    llmc_kv kv = {"z", 1, "zz", 2, LLMC_TTL_DEFAULT};
    ck_assert_int_eq(llmc_cache_mset(c, 1, &kv), LLMC_OK);
    ck_assert_int_eq(llmc_cache_get(c, "z", 1, &v), LLMC_OK);
    ck_assert_str_eq(v.data, "L-zz");
    /* what it lacks is refused clearly */
    ck_assert_int_eq(llmc_cache_flush(c, "ns", NULL), LLMC_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(llmc_cache_errmsg(c), "one-slot"));
    ck_assert_int_eq(llmc_cache_scan(c, "", 0, NULL, NULL), LLMC_EINVAL);
    llmc_cache_close(c);
    /* its own option is accepted, others are not */
    ck_assert_int_eq(llmc_cache_open("one://?colour=red", NULL, &c, &e), LLMC_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "colour"));
    ck_assert_ptr_nonnull(strstr(e.msg, "label"));
    /* open failures come back with the backend's message */
    ck_assert_int_eq(llmc_cache_open("single://?label=fail", NULL, &c, &e), LLMC_ECONN);
    ck_assert_ptr_nonnull(strstr(e.msg, "refusing"));
    ck_assert_ptr_null(c);
    llmc_buf_free(&v);
    llmc_buf_free(&vals[0]);
    llmc_buf_free(&vals[1]);
}
END_TEST

static const char *const clash_schemes[] = {"redisx", "LOCAL", NULL};
static const llmc_backend_ops clash_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "clash", "test"),
    .schemes = clash_schemes,
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
};
static const llmc_backend_ops dup_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "Local", "test"),
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
};
static const llmc_backend_ops abi_ops = {
    .hdr = {LLMC_ABI_MAJOR + 1, 0, sizeof(llmc_backend_ops), "future", "test"},
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
};
static const llmc_backend_ops small_ops = {
    .hdr = {LLMC_ABI_MAJOR, 0, 16, "tiny", "test"},
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
};
static const llmc_backend_ops incomplete_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "incomplete", "test"),
    .open = one_open, .close = one_close, .get = one_get,
};
static const llmc_backend_ops badname_ops = {
    .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "bad name", "test"),
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
};

START_TEST(t_rejections)
{
    llmc_err e;
    ck_assert_int_eq(llmc_register_backend(&dup_ops, &e), LLMC_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "already registered"));
    ck_assert_int_eq(llmc_register_backend(&clash_ops, &e), LLMC_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "LOCAL"));
    ck_assert_ptr_null(llmc_find_backend("redisx")); /* nothing half-registered */
    ck_assert_int_eq(llmc_register_backend(&abi_ops, &e), LLMC_EABI);
    ck_assert_ptr_nonnull(strstr(e.msg, "ABI"));
    ck_assert_int_eq(llmc_register_backend(&small_ops, &e), LLMC_EABI);
    ck_assert_int_eq(llmc_register_backend(&incomplete_ops, &e), LLMC_EINVAL);
    ck_assert_int_eq(llmc_register_backend(&badname_ops, &e), LLMC_EINVAL);
    ck_assert_int_eq(llmc_register_backend(NULL, &e), LLMC_EINVAL);
    ck_assert_int_eq(llmc_register(LLMC_KIND_COUNT_, &one_ops.hdr, NULL, &e), LLMC_EINVAL);
    /* serializers with a taken id */
    llmc_serializer_ops s2 = llmc__serializer_json;
    s2.hdr.name = "json2";
    ck_assert_int_eq(llmc_register_serializer(&s2, &e), LLMC_EEXIST);
    ck_assert_ptr_nonnull(strstr(e.msg, "id 1"));
}
END_TEST

/* ---- every kind's table is checked by the registry, whichever entry
 * point registers it ---- */

/* Members past a short table's struct_size: the core must never call
 * them (a table built against an older header ends before them). */
static int trap_calls;
static llmc_status trap_exists(void *ctx, const char *k, size_t kl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)err;
    trap_calls++;
    return LLMC_EINTERNAL;
}
static llmc_status trap_ttl(void *ctx, const char *k, size_t kl, int64_t *ttl, llmc_err *err)
{
    (void)ctx; (void)k; (void)kl; (void)ttl; (void)err;
    trap_calls++;
    return LLMC_EINTERNAL;
}
static llmc_status trap_ping(void *ctx, llmc_err *err)
{
    (void)ctx; (void)err;
    trap_calls++;
    return LLMC_EINTERNAL;
}
static llmc_status trap_flush_all(void *ctx, llmc_err *err)
{
    (void)ctx; (void)err;
    trap_calls++;
    return LLMC_EINTERNAL;
}
static const char *const short_schemes[] = {"shorty", NULL};
/* A table as an older header would have built it: struct_size ends right
 * after del, and the optional members that follow in memory hold traps. */
static const llmc_backend_ops short_ops = {
    .hdr = {LLMC_ABI_MAJOR, 0, (uint32_t)(offsetof(llmc_backend_ops, del) + sizeof(void *)),
            "short-table", "test"},
    .schemes = short_schemes,
    .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del,
    .exists = trap_exists, .ttl = trap_ttl, .ping = trap_ping, .flush_all = trap_flush_all,
};

START_TEST(t_short_table_optional_members)
{
    llmc_err e;
    ck_assert(LLMC_HAS_MEMBER(llmc_backend_ops, &short_ops, del));
    ck_assert(!LLMC_HAS_MEMBER(llmc_backend_ops, &short_ops, exists));
    ck_assert(LLMC_HAS_MEMBER(llmc_backend_ops, &one_ops, ttl));
    ck_assert_int_eq(llmc_register(LLMC_KIND_BACKEND, &short_ops.hdr, NULL, &e), LLMC_OK);
    llmc_cache *c = NULL;
    ck_assert_int_eq(llmc_cache_open("shorty://", NULL, &c, &e), LLMC_OK);
    ck_assert_int_eq(llmc_cache_set(c, "k", 1, "v", 1, 0), LLMC_OK);
    /* exists is emulated through get, ping counts as answered, ttl and
     * flush_all are not supported: none reaches the traps */
    ck_assert_int_eq(llmc_cache_exists(c, "k", 1), LLMC_OK);
    ck_assert_int_eq(llmc_cache_exists(c, "nope", 4), LLMC_MISS);
    ck_assert_int_eq(llmc_cache_ping(c), LLMC_OK);
    int64_t ttl = 0;
    ck_assert_int_eq(llmc_cache_ttl(c, "k", 1, &ttl), LLMC_ENOTSUP);
    ck_assert_int_eq(llmc_cache_flush_all(c), LLMC_ENOTSUP);
    ck_assert_int_eq(trap_calls, 0);
    llmc_cache_close(c);
}
END_TEST

static llmc_status p_build(const llmc_provider_call *call, struct json_object *req,
                           llmc_http_request *out, llmc_err *err)
{
    (void)call; (void)req; (void)out;
    return llmc_err_set(err, LLMC_ENOTSUP, 0, "test provider");
}
static llmc_status p_parse(const llmc_provider_call *call, const llmc_http_response *resp,
                           struct json_object **out, llmc_err *err)
{
    (void)call; (void)resp; (void)out;
    return llmc_err_set(err, LLMC_ENOTSUP, 0, "test provider");
}
static llmc_status p_local(const llmc_provider_call *call, struct json_object *req,
                           struct json_object **out, llmc_err *err)
{
    (void)call; (void)req; (void)out;
    return llmc_err_set(err, LLMC_ENOTSUP, 0, "test provider");
}
static llmc_status p_snew(const llmc_provider_call *call, void **state, llmc_err *err)
{
    (void)call; (void)err;
    *state = NULL;
    return LLMC_OK;
}

#define PROV_HDR(name) LLMC_COMPONENT_INIT(llmc_provider_ops, name, "test")
static const llmc_provider_ops prov_good = {
    .hdr = PROV_HDR("regtest-good"), .flags = LLMC_PROVIDER_CHAT,
    .build_request = p_build, .parse_response = p_parse};
static const llmc_provider_ops prov_no_parse = {
    .hdr = PROV_HDR("regtest-noparse"), .flags = LLMC_PROVIDER_CHAT, .build_request = p_build};
static const llmc_provider_ops prov_stream_no_event = {
    .hdr = PROV_HDR("regtest-stream"), .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_STREAM,
    .build_request = p_build, .parse_response = p_parse};
static const llmc_provider_ops prov_local_no_respond = {
    .hdr = PROV_HDR("regtest-local"), .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_LOCAL};
/* respond_local is set, but lies past the table's struct_size */
static const llmc_provider_ops prov_local_short = {
    .hdr = {LLMC_ABI_MAJOR, 0, (uint32_t)offsetof(llmc_provider_ops, map_error),
            "regtest-localshort", "test"},
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_LOCAL, .respond_local = p_local};
static const llmc_provider_ops prov_slash = {
    .hdr = PROV_HDR("regtest/slash"), .flags = LLMC_PROVIDER_CHAT,
    .build_request = p_build, .parse_response = p_parse};
static const llmc_provider_ops prov_dot = {
    .hdr = PROV_HDR("regtest.dot"), .flags = LLMC_PROVIDER_CHAT,
    .build_request = p_build, .parse_response = p_parse};
static const llmc_provider_ops prov_half_stream_state = {
    .hdr = PROV_HDR("regtest-half"), .flags = LLMC_PROVIDER_CHAT,
    .build_request = p_build, .parse_response = p_parse, .stream_new = p_snew};
static const llmc_provider_ops prov_abi = {
    .hdr = {LLMC_ABI_MAJOR + 1, 0, sizeof(llmc_provider_ops), "regtest-abi", "test"},
    .build_request = p_build, .parse_response = p_parse};
static const llmc_provider_ops prov_small = {
    .hdr = {LLMC_ABI_MAJOR, 0, (uint32_t)offsetof(llmc_provider_ops, parse_stream_event),
            "regtest-small", "test"},
    .build_request = p_build, .parse_response = p_parse};

/* The generic llmc_register must refuse `t` exactly as the typed call
 * does, with the status and a message naming `what`. */
static void expect_refused(llmc_kind kind, const llmc_component *t, llmc_status want,
                           const char *what)
{
    llmc_err e;
    llmc_err_clear(&e);
    ck_assert_int_eq(llmc_register(kind, t, "check_registry", &e), want);
    ck_assert_msg(strstr(e.msg, what), "\"%s\" not in \"%s\"", what, e.msg);
    if (t && t->name)
        ck_assert_ptr_null(llmc_find(kind, t->name));
    llmc_err_clear(&e);
    llmc_status st = LLMC_OK;
    switch (kind) {
    case LLMC_KIND_BACKEND: st = llmc_register_backend((const llmc_backend_ops *)t, &e); break;
    case LLMC_KIND_PROVIDER: st = llmc_register_provider((const llmc_provider_ops *)t, &e); break;
    case LLMC_KIND_SERIALIZER:
        st = llmc_register_serializer((const llmc_serializer_ops *)t, &e);
        break;
    case LLMC_KIND_KEY_STRATEGY:
        st = llmc_register_key_strategy((const llmc_key_strategy_ops *)t, &e);
        break;
    default: break;
    }
    ck_assert_int_eq(st, want);
    ck_assert_msg(strstr(e.msg, what), "\"%s\" not in \"%s\"", what, e.msg);
}

START_TEST(t_bad_provider_tables)
{
    expect_refused(LLMC_KIND_PROVIDER, &prov_no_parse.hdr, LLMC_EINVAL, "parse_response");
    expect_refused(LLMC_KIND_PROVIDER, &prov_stream_no_event.hdr, LLMC_EINVAL,
                   "parse_stream_event");
    expect_refused(LLMC_KIND_PROVIDER, &prov_local_no_respond.hdr, LLMC_EINVAL,
                   "respond_local");
    expect_refused(LLMC_KIND_PROVIDER, &prov_local_short.hdr, LLMC_EINVAL, "respond_local");
    expect_refused(LLMC_KIND_PROVIDER, &prov_slash.hdr, LLMC_EINVAL, "is invalid");
    expect_refused(LLMC_KIND_PROVIDER, &prov_dot.hdr, LLMC_EINVAL, "'.'");
    expect_refused(LLMC_KIND_PROVIDER, &prov_half_stream_state.hdr, LLMC_EINVAL,
                   "stream_free");
    expect_refused(LLMC_KIND_PROVIDER, &prov_abi.hdr, LLMC_EABI, "ABI");
    expect_refused(LLMC_KIND_PROVIDER, &prov_small.hdr, LLMC_EABI, "smaller than the minimum");
    expect_refused(LLMC_KIND_PROVIDER, NULL, LLMC_EINVAL, "NULL provider");
    /* a sound table goes through the generic call and is found */
    llmc_err e;
    ck_assert_int_eq(llmc_register(LLMC_KIND_PROVIDER, &prov_good.hdr, NULL, &e), LLMC_OK);
    ck_assert_ptr_eq(llmc_find_provider("REGTEST-GOOD"), &prov_good);
}
END_TEST

static llmc_status s_enc(const llmc_entry *en, llmc_buf *out, llmc_err *err)
{
    (void)en; (void)out; (void)err;
    return LLMC_ENOTSUP;
}
static llmc_status s_dec(const char *d, size_t n, llmc_entry *en, llmc_buf *scratch,
                         llmc_err *err)
{
    (void)d; (void)n; (void)en; (void)scratch; (void)err;
    return LLMC_ECORRUPT;
}
static llmc_status k_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *m, llmc_err *err)
{
    (void)in; (void)m; (void)err;
    return llmc_buf_puts(key, "k");
}

START_TEST(t_bad_other_tables)
{
    /* backends */
    expect_refused(LLMC_KIND_BACKEND, &incomplete_ops.hdr, LLMC_EINVAL, "are required");
    expect_refused(LLMC_KIND_BACKEND, &abi_ops.hdr, LLMC_EABI, "ABI");
    expect_refused(LLMC_KIND_BACKEND, &small_ops.hdr, LLMC_EABI, "smaller than the minimum");
    expect_refused(LLMC_KIND_BACKEND, &badname_ops.hdr, LLMC_EINVAL, "is invalid");
    static const char *const bad_schemes[] = {"ok", "no way", NULL};
    static const llmc_backend_ops bad_scheme_ops = {
        .hdr = LLMC_COMPONENT_INIT(llmc_backend_ops, "badscheme", "test"),
        .schemes = bad_schemes,
        .open = one_open, .close = one_close, .get = one_get, .set = one_set, .del = one_del};
    expect_refused(LLMC_KIND_BACKEND, &bad_scheme_ops.hdr, LLMC_EINVAL, "URL scheme");
    /* serializers */
    static const llmc_serializer_ops ser_nodec = {
        .hdr = LLMC_COMPONENT_INIT(llmc_serializer_ops, "nodec", "test"), .id = 200,
        .encode = s_enc};
    static const llmc_serializer_ops ser_small = {
        .hdr = {LLMC_ABI_MAJOR, 0, (uint32_t)offsetof(llmc_serializer_ops, decode), "sersmall",
                "test"},
        .id = 201, .encode = s_enc, .decode = s_dec};
    static const llmc_serializer_ops ser_abi = {
        .hdr = {0, 0, sizeof(llmc_serializer_ops), "serabi", "test"}, .id = 202,
        .encode = s_enc, .decode = s_dec};
    expect_refused(LLMC_KIND_SERIALIZER, &ser_nodec.hdr, LLMC_EINVAL, "encode and decode");
    expect_refused(LLMC_KIND_SERIALIZER, &ser_small.hdr, LLMC_EABI, "smaller than the minimum");
    expect_refused(LLMC_KIND_SERIALIZER, &ser_abi.hdr, LLMC_EABI, "ABI");
    /* key strategies */
    static const llmc_key_strategy_ops ks_nocompute = {
        .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "nocompute", "test")};
    static const llmc_key_strategy_ops ks_small = {
        .hdr = {LLMC_ABI_MAJOR, 0, (uint32_t)sizeof(llmc_component), "kssmall", "test"},
        .compute = k_compute};
    static const llmc_key_strategy_ops ks_badname = {
        .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "", "test"), .compute = k_compute};
    expect_refused(LLMC_KIND_KEY_STRATEGY, &ks_nocompute.hdr, LLMC_EINVAL, "compute is required");
    expect_refused(LLMC_KIND_KEY_STRATEGY, &ks_small.hdr, LLMC_EABI, "smaller than the minimum");
    expect_refused(LLMC_KIND_KEY_STRATEGY, &ks_badname.hdr, LLMC_EINVAL, "is invalid");
}
END_TEST

/* The backends the build left out come from the build: each optional
 * backend's schemes are "not built" exactly when it was not compiled in,
 * and registered exactly when it was. */
START_TEST(t_not_built_from_the_build)
{
    static const struct {
        const char *scheme;
        int built;
    } known[] = {
        {"redis", LLMC_HAVE_REDIS},          {"rediss", LLMC_HAVE_REDIS},
        {"unix", LLMC_HAVE_REDIS},           {"redis-cluster", LLMC_HAVE_REDIS},
        {"rediss-cluster", LLMC_HAVE_REDIS}, {"redis-sentinel", LLMC_HAVE_REDIS},
        {"rediss-sentinel", LLMC_HAVE_REDIS}, {"memcached", LLMC_HAVE_MEMCACHED},
        {"sqlite", LLMC_HAVE_SQLITE},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *feat = llmc__backend_not_built(known[i].scheme);
        if (known[i].built) {
            ck_assert_msg(feat == NULL, "%s is built but listed as not built", known[i].scheme);
            ck_assert_ptr_nonnull(llmc_find_backend(known[i].scheme));
        } else {
            ck_assert_msg(feat != NULL, "%s is not built but not listed", known[i].scheme);
            llmc_cache *c = NULL;
            llmc_err e;
            char url[64];
            snprintf(url, sizeof url, "%s://x", known[i].scheme);
            ck_assert_int_eq(llmc_cache_open(url, NULL, &c, &e), LLMC_ENOTBUILT);
            ck_assert_ptr_nonnull(strstr(e.msg, feat));
        }
    }
    ck_assert_ptr_null(llmc__backend_not_built("local"));
    ck_assert_ptr_null(llmc__backend_not_built("no-such-scheme"));
}
END_TEST

typedef struct listing {
    int n;
    int saw_local, saw_v1;
    char origin[64];
} listing;

static int list_cb(void *ud, llmc_kind kind, const llmc_component *t, const char *origin)
{
    listing *l = ud;
    l->n++;
    if (kind == LLMC_KIND_BACKEND && strcmp(t->name, "local") == 0) {
        l->saw_local = 1;
        snprintf(l->origin, sizeof l->origin, "%s", origin);
    }
    if (kind == LLMC_KIND_KEY_STRATEGY && strcmp(t->name, "v1") == 0)
        l->saw_v1 = 1;
    return 0;
}

START_TEST(t_enumerate)
{
    listing l = {0, 0, 0, ""};
    llmc_registry_foreach(LLMC_KIND_BACKEND, list_cb, &l);
    llmc_registry_foreach(LLMC_KIND_KEY_STRATEGY, list_cb, &l);
    ck_assert(l.saw_local);
    ck_assert(l.saw_v1);
    ck_assert_str_eq(l.origin, "built-in");
    char *names = llmc_registry_names(LLMC_KIND_SERIALIZER);
    ck_assert_str_eq(names, "json, binary");
    llmc_free(names);
    ck_assert_str_eq(llmc_kind_name(LLMC_KIND_PROVIDER), "provider");
    ck_assert_ptr_null(llmc_find(LLMC_KIND_BACKEND, "definitely-not-there"));
    ck_assert_ptr_null(llmc_find(LLMC_KIND_BACKEND, ""));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, t_custom_backend);
    tcase_add_test(tc, t_rejections);
    tcase_add_test(tc, t_enumerate);
    tcase_add_test(tc, t_short_table_optional_members);
    tcase_add_test(tc, t_bad_provider_tables);
    tcase_add_test(tc, t_bad_other_tables);
    tcase_add_test(tc, t_not_built_from_the_build);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
