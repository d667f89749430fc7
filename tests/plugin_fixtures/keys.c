/* Fixture: a plugin with a key strategy and a serializer and nothing
 * else, found by autoloading through its descriptor (its file name,
 * fixture-keys.so, names neither):
 *   key strategy "upper-v1": the v1 key with the hex digest upper-cased;
 *   serializer "fixture-bin" (id 200): magic "XS01", then version u32,
 *   id u8, created i64, expires i64, call u8, key SHA-256, body length
 *   u64 (all little-endian) and the body. */
#include <llmcache/llmcache.h>

#include <string.h>

static llmc_status up_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *mat,
                              llmc_err *err)
{
    llmc_status st = llmc_key_compute("v1", in, key, mat, err);
    if (st != LLMC_OK)
        return st;
    char *hex = key->data;
    char *colon = memchr(key->data, ':', key->len);
    if (colon)
        hex = colon + 1;
    for (; hex < key->data + key->len; hex++)
        if (*hex >= 'a' && *hex <= 'f')
            *hex = (char)(*hex - 'a' + 'A');
    return LLMC_OK;
}

static const llmc_key_strategy_ops upper_v1 = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "upper-v1", "fixture: v1, upper-case"),
    .compute = up_compute,
};

#define XS_HDR (4 + 4 + 1 + 8 + 8 + 1 + 32 + 8)

static void put(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static llmc_status xs_encode(const llmc_entry *e, llmc_buf *out, llmc_err *err)
{
    unsigned char h[XS_HDR];
    memcpy(h, "XS01", 4);
    put(h + 4, e->version, 4);
    h[8] = e->serializer_id;
    put(h + 9, (uint64_t)e->created_ms, 8);
    put(h + 17, (uint64_t)e->expires_ms, 8);
    h[25] = (unsigned char)e->call;
    memcpy(h + 26, e->key_sha256, 32);
    put(h + 58, (uint64_t)e->body_len, 8);
    if (llmc_buf_append(out, h, sizeof h) != LLMC_OK ||
        llmc_buf_append(out, e->body, e->body_len) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    return LLMC_OK;
}

static llmc_status xs_decode(const char *data, size_t len, llmc_entry *e, llmc_buf *scratch,
                             llmc_err *err)
{
    (void)scratch;
    const unsigned char *p = (const unsigned char *)data;
    if (len < XS_HDR || memcmp(p, "XS01", 4) != 0)
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "fixture-bin: not an XS01 entry");
    e->version = (uint32_t)get(p + 4, 4);
    if (e->version != LLMC_ENTRY_VERSION)
        return llmc_err_set(err, LLMC_EVERSION, 0, "fixture-bin: version %u", e->version);
    e->serializer_id = p[8];
    e->created_ms = (int64_t)get(p + 9, 8);
    e->expires_ms = (int64_t)get(p + 17, 8);
    e->call = (llmc_call_type)p[25];
    memcpy(e->key_sha256, p + 26, 32);
    uint64_t bl = get(p + 58, 8);
    if (bl != len - XS_HDR)
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "fixture-bin: body length mismatch");
    e->body = data + XS_HDR;
    e->body_len = (size_t)bl;
    return LLMC_OK;
}

static const llmc_serializer_ops fixture_bin = {
    .hdr = LLMC_COMPONENT_INIT(llmc_serializer_ops, "fixture-bin", "fixture: XS01 binary"),
    .id = 200,
    .encode = xs_encode,
    .decode = xs_decode,
};

static const llmc_key_strategy_ops *const strategies[] = {&upper_v1, NULL};
static const llmc_serializer_ops *const serializers[] = {&fixture_bin, NULL};

LLMC_PLUGIN("fixture-keys", "0.1", NULL, NULL, strategies, serializers)
