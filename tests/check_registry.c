/* Registries: custom backends opened through their URL scheme, duplicate
 * and ABI checks, enumeration. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
