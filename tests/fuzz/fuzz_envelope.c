/* The stored-entry envelope and both serializers (core/serial.c,
 * core/entry.c). The first byte picks the mode:
 *   0: decode the rest as a json envelope, 1: as a binary one; what
 *      decodes must re-encode and decode to the same entry;
 *   2, 3: build an entry from the rest (call, times, key, body, and with
 *      bit 4 of the flips byte the end of a stale window), encode it
 *      with json (2) or binary (3), decode it with the key check: the
 *      same entry must come back; then flip one or two bits of the
 *      encoded value (positions from the input): the decode must fail or
 *      give back exactly the same entry, never other data. */
#include "fuzz.h"

#include <string.h>

#include "llmcache/llmcache.h"

static const char *const sers[] = {"json", "binary"};

static void same_entry(const llmc_entry *a, const llmc_entry *b, const char *what)
{
    FUZZ_CHECK(a->call == b->call && a->created_ms == b->created_ms &&
                   a->expires_ms == b->expires_ms && a->stale_until_ms == b->stale_until_ms &&
                   a->upstream_ms == b->upstream_ms &&
                   memcmp(a->key_sha256, b->key_sha256, 32) == 0 &&
                   a->body_len == b->body_len &&
                   (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0),
               "%s: a different entry came back (call %d/%d, created %lld/%lld, expires "
               "%lld/%lld, stale_until %lld/%lld, body %zu/%zu bytes)",
               what, (int)a->call, (int)b->call, (long long)a->created_ms,
               (long long)b->created_ms, (long long)a->expires_ms, (long long)b->expires_ms,
               (long long)a->stale_until_ms, (long long)b->stale_until_ms, a->body_len,
               b->body_len);
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void decode_raw(const char *ser, const uint8_t *data, size_t size)
{
    llmc_entry e, e2;
    llmc_buf scratch = LLMC_BUF_INIT, out = LLMC_BUF_INIT, scratch2 = LLMC_BUF_INIT;
    llmc_err err;
    memset(&e, 0, sizeof e);
    llmc_status st = llmc_entry_decode(ser, (const char *)data, size, NULL, 0, &e, &scratch,
                                       &err);
    if (st == LLMC_OK) {
        FUZZ_CHECK(e.body_len <= size, "body longer than the value");
        FUZZ_CHECK(llmc_entry_encode(ser, &e, &out, &err) == LLMC_OK,
                   "a decoded entry does not encode: %s", err.msg);
        memset(&e2, 0, sizeof e2);
        FUZZ_CHECK(llmc_entry_decode(ser, out.data, out.len, NULL, 0, &e2, &scratch2, &err) ==
                       LLMC_OK,
                   "re-encoded entry does not decode: %s", err.msg);
        same_entry(&e, &e2, "re-encode");
    } else {
        FUZZ_CHECK(st == LLMC_ECORRUPT || st == LLMC_EVERSION || st == LLMC_ENOMEM,
                   "decode status %s", llmc_status_name(st));
    }
    llmc_buf_free(&scratch);
    llmc_buf_free(&scratch2);
    llmc_buf_free(&out);
}

static void roundtrip(const char *ser, const uint8_t *data, size_t size)
{
    /* call(1) created(8) expires(8) flip1(3) flip2(3) nflips(1) klen(1) key body */
    if (size < 26)
        return;
    llmc_entry e;
    memset(&e, 0, sizeof e);
    e.version = LLMC_ENTRY_VERSION;
    e.call = (llmc_call_type)(data[0] % 4);
    e.created_ms = (int64_t)rd64(data + 1);
    e.expires_ms = (int64_t)rd64(data + 9);
    uint32_t f1 = (uint32_t)data[17] | (uint32_t)data[18] << 8 | (uint32_t)data[19] << 16;
    uint32_t f2 = (uint32_t)data[20] | (uint32_t)data[21] << 8 | (uint32_t)data[22] << 16;
    int nflips = data[23] % 3;
    size_t klen = data[24] % 32;
    if (klen > size - 25)
        klen = size - 25;
    if ((data[23] & 0x10) && size - 25 - klen >= 8) {
        /* the stale window's end: the 8 bytes after the key (never
         * negative, as the encoder requires) */
        e.stale_until_ms = (int64_t)(rd64(data + 25 + klen) & (uint64_t)INT64_MAX);
    }
    const char *key = (const char *)data + 25;
    llmc_sha256(key, klen, e.key_sha256);
    e.body = (const char *)data + 25 + klen;
    e.body_len = size - 25 - klen;

    llmc_buf enc = LLMC_BUF_INIT, scratch = LLMC_BUF_INIT;
    llmc_err err;
    llmc_status st = llmc_entry_encode(ser, &e, &enc, &err);
    FUZZ_CHECK(st == LLMC_OK, "%s encode failed: %s", ser, err.msg);
    llmc_entry d;
    memset(&d, 0, sizeof d);
    st = llmc_entry_decode(ser, enc.data, enc.len, key, klen, &d, &scratch, &err);
    FUZZ_CHECK(st == LLMC_OK, "%s: encoded entry does not decode: %s", ser, err.msg);
    same_entry(&e, &d, ser);
    if (nflips && enc.len) {
        size_t bits = enc.len * 8;
        size_t b1 = f1 % bits, b2 = f2 % bits;
        if (nflips == 2 && b1 == b2)
            nflips = 1;
        char *m = malloc(enc.len);
        memcpy(m, enc.data, enc.len);
        m[b1 / 8] ^= (char)(1u << (b1 % 8));
        if (nflips == 2)
            m[b2 / 8] ^= (char)(1u << (b2 % 8));
        llmc_buf_clear(&scratch);
        memset(&d, 0, sizeof d);
        st = llmc_entry_decode(ser, m, enc.len, key, klen, &d, &scratch, &err);
        if (st == LLMC_OK)
            same_entry(&e, &d, "flipped bits accepted");
        free(m);
    }
    llmc_buf_free(&enc);
    llmc_buf_free(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    switch (data[0] % 4) {
    case 0:
    case 1:
        decode_raw(sers[data[0] % 2], data + 1, size - 1);
        break;
    default:
        roundtrip(sers[data[0] % 2], data + 1, size - 1);
        break;
    }
    return 0;
}
