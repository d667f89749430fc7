/* The two built-in serializers. Both write the envelope of DESIGN.md and
 * check it strictly on the way back: a value that does not parse exactly,
 * whose body length or checksum does not match, is corrupt.
 *
 * Version 2 (written):
 * json:   {"llmcache":2,"ser":"json","call":"chat","created":<ms>,
 *          "expires":<ms>,"upstream_ms":<ms>,"key_sha256":"<hex>",
 *          ["mac":"<64 hex>",]"body_len":<n>,"crc32c":"<8 hex>",
 *          "body_enc":"json"|"base64","body":<body>}
 *         The body is embedded verbatim when it is a JSON object or array
 *         (so `redis-cli GET` shows the response), base64 otherwise. The
 *         member order is fixed so the reader can find the body without
 *         parsing it.
 * binary: "LLMC" v:u8 ser:u8 call:u8 flags:u8 created:i64le expires:i64le
 *         upstream_ms:i64le key_sha256[32] body_len:u64le crc32c:u32le
 *         [mac[32] when flags bit 0] body
 * The CRC-32C covers every field (see entry_crc), so any 1-, 2- or 3-bit
 * flip and any burst up to 32 bits anywhere in the entry is caught.
 *
 * Version 1 (still read): no upstream_ms, no mac, and a 64-bit
 * "body_hash" (json) / body_hash:u64le after body_len (binary) computed by
 * entry_check_v1. */
#include "builtins.h"
#include "hash.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SER_JSON_ID 1
#define SER_BINARY_ID 2

/* Version 1 check value: the body and the times and call type, with the
 * 64-bit multiply-xor hash. Kept only to read version 1 entries. */
static uint64_t entry_check_v1(int64_t created, int64_t expires, llmc_call_type call,
                            const char *body, size_t len)
{
    unsigned char h[24];
    for (int i = 0; i < 8; i++) {
        h[i] = (unsigned char)((uint64_t)created >> (8 * i));
        h[8 + i] = (unsigned char)((uint64_t)expires >> (8 * i));
        h[16 + i] = (unsigned char)((uint64_t)call >> (8 * i));
    }
    return llmc__hash64(body, len) ^ (llmc__hash64(h, sizeof h) * 0x9E3779B97F4A7C15ull);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Version 2 check value: CRC-32C over one fixed byte layout of every
 * envelope field and the body, the same for both serializers. */
static uint32_t entry_crc(const llmc_entry *e, const char *body, size_t len)
{
    unsigned char h[3 + 8 * 3 + 32 + 32 + 8];
    size_t n = 0;
    h[n++] = 2;
    h[n++] = (unsigned char)e->call;
    h[n++] = e->mac_present ? 1 : 0;
    put64(h + n, (uint64_t)e->created_ms);
    put64(h + n + 8, (uint64_t)e->expires_ms);
    put64(h + n + 16, (uint64_t)e->upstream_ms);
    n += 24;
    memcpy(h + n, e->key_sha256, 32);
    n += 32;
    if (e->mac_present) {
        memcpy(h + n, e->mac, 32);
        n += 32;
    }
    put64(h + n, (uint64_t)len);
    n += 8;
    uint32_t crc = llmc__crc32c_update(0, h, n);
    return llmc__crc32c_update(crc, body, len);
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static llmc_status b64_encode(llmc_buf *out, const unsigned char *p, size_t n)
{
    if (llmc_buf_reserve(out, (n + 2) / 3 * 4) != LLMC_OK)
        return LLMC_ENOMEM;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return LLMC_OK;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int b64_decode(llmc_buf *out, const char *s, size_t n)
{
    if (n % 4)
        return -1;
    llmc_buf_clear(out);
    if (llmc_buf_reserve(out, n / 4 * 3) != LLMC_OK)
        return -1;
    unsigned char *o = (unsigned char *)out->data;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 4) {
        int a = b64_val((unsigned char)s[i]), b = b64_val((unsigned char)s[i + 1]);
        int last = i + 4 == n;
        int c = (last && s[i + 2] == '=') ? -2 : b64_val((unsigned char)s[i + 2]);
        int d = (last && s[i + 3] == '=') ? -2 : b64_val((unsigned char)s[i + 3]);
        if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
            return -1;
        /* Only the canonical spelling: the bits that padding leaves over
         * must be zero, or two stored strings would mean one body. */
        if ((c == -2 && (b & 15)) || (c >= 0 && d == -2 && (c & 3)))
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
                     (uint32_t)(d < 0 ? 0 : d);
        o[j++] = (unsigned char)(v >> 16);
        if (c >= 0)
            o[j++] = (unsigned char)(v >> 8);
        if (d >= 0)
            o[j++] = (unsigned char)v;
    }
    out->len = j;
    out->data[j] = 0;
    return 0;
}

/* ---- json ---- */

static int body_is_json_container(const char *b, size_t n)
{
    /* Only bodies that are one JSON object or array are embedded; the
     * length and checksum still guard them. Leading/trailing whitespace
     * would not round-trip, so it forces base64. */
    return n >= 2 && ((b[0] == '{' && b[n - 1] == '}') || (b[0] == '[' && b[n - 1] == ']'));
}

static llmc_status json_encode(const llmc_entry *e, llmc_buf *out, llmc_err *err)
{
    const char *call = llmc_call_type_name(e->call);
    if (!call)
        return llmc_err_set(err, LLMC_EINVAL, 0, "entry has an unknown call type %d",
                            (int)e->call);
    if (e->upstream_ms < 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "entry has a negative upstream time");
    char hex[65], mac[65];
    llmc_hex(e->key_sha256, 32, hex);
    if (e->mac_present)
        llmc_hex(e->mac, 32, mac);
    int embed = body_is_json_container(e->body, e->body_len);
    llmc_status st = llmc_buf_reserve(out, e->body_len + 320);
    if (st == LLMC_OK)
        st = llmc_buf_printf(out,
                             "{\"llmcache\":%u,\"ser\":\"json\",\"call\":\"%s\",\"created\":%lld,"
                             "\"expires\":%lld,\"upstream_ms\":%lld,\"key_sha256\":\"%s\",%s%s%s"
                             "\"body_len\":%zu,\"crc32c\":\"%08lx\",\"body_enc\":\"%s\",\"body\":",
                             (unsigned)LLMC_ENTRY_VERSION, call, (long long)e->created_ms,
                             (long long)e->expires_ms, (long long)e->upstream_ms, hex,
                             e->mac_present ? "\"mac\":\"" : "", e->mac_present ? mac : "",
                             e->mac_present ? "\"," : "", e->body_len,
                             (unsigned long)entry_crc(e, e->body, e->body_len),
                             embed ? "json" : "base64");
    if (st == LLMC_OK) {
        if (embed) {
            st = llmc_buf_append(out, e->body, e->body_len);
        } else {
            st = llmc_buf_append(out, "\"", 1);
            if (st == LLMC_OK)
                st = b64_encode(out, (const unsigned char *)e->body, e->body_len);
            if (st == LLMC_OK)
                st = llmc_buf_append(out, "\"", 1);
        }
    }
    if (st == LLMC_OK)
        st = llmc_buf_append(out, "}", 1);
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "out of memory encoding entry");
    return LLMC_OK;
}

/* A tiny cursor over the fixed envelope. */
typedef struct cur {
    const char *p, *end;
} cur;

static int lit(cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int num(cur *c, int64_t *out)
{
    int neg = 0;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return 0;
    /* Every int64 the encoder can write (times are int64 ms) reads back:
     * INT64_MIN included, anything beyond refused. */
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        uint64_t d = (uint64_t)(*c->p++ - '0');
        if (v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = !neg ? (int64_t)v : v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
    return 1;
}

static int hexbytes(cur *c, uint8_t *out, size_t n)
{
    if ((size_t)(c->end - c->p) < 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = c->p[2 * i + (size_t)k];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0)
                return 0;
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    c->p += 2 * n;
    return 1;
}

static llmc_status corrupt(llmc_err *err, const char *what)
{
    return llmc_err_set(err, LLMC_ECORRUPT, 0, "stored entry is corrupt or foreign: %s", what);
}

static llmc_status json_decode(const char *data, size_t len, llmc_entry *e, llmc_buf *scratch,
                               llmc_err *err)
{
    cur c = {data, data + len};
    int64_t v, created, expires, upstream = 0, blen;
    if (!lit(&c, "{\"llmcache\":") || !num(&c, &v))
        return corrupt(err, "not a llmcache json envelope");
    if (v > LLMC_ENTRY_VERSION || v < 1)
        return llmc_err_set(err, LLMC_EVERSION, 0,
                            "stored entry has format version %lld; this llmcache reads "
                            "versions 1 to %d", (long long)v, LLMC_ENTRY_VERSION);
    if (!lit(&c, ",\"ser\":\"json\",\"call\":\""))
        return corrupt(err, "bad header");
    /* The call type's name, as llmc_call_type_name writes it. */
    llmc_call_type call;
    const char *q = memchr(c.p, '"', (size_t)(c.end - c.p) < 16 ? (size_t)(c.end - c.p) : 16);
    char cname[16];
    if (!q || (size_t)(q - c.p) >= sizeof cname)
        return corrupt(err, "bad call type");
    memcpy(cname, c.p, (size_t)(q - c.p));
    cname[q - c.p] = '\0';
    if (llmc_call_type_parse(cname, &call) != LLMC_OK)
        return corrupt(err, "bad call type");
    c.p = q + 1;
    uint8_t ks[32], mac[32], hb[8];
    int has_mac = 0;
    if (!lit(&c, ",\"created\":") || !num(&c, &created) || !lit(&c, ",\"expires\":") ||
        !num(&c, &expires))
        return corrupt(err, "bad header fields");
    if (v >= 2 && (!lit(&c, ",\"upstream_ms\":") || !num(&c, &upstream) || upstream < 0))
        return corrupt(err, "bad upstream_ms");
    if (!lit(&c, ",\"key_sha256\":\"") || !hexbytes(&c, ks, 32) || !lit(&c, "\","))
        return corrupt(err, "bad key digest");
    if (v >= 2 && lit(&c, "\"mac\":\"")) {
        if (!hexbytes(&c, mac, 32) || !lit(&c, "\","))
            return corrupt(err, "bad mac");
        has_mac = 1;
    }
    if (!lit(&c, "\"body_len\":") || !num(&c, &blen) || blen < 0)
        return corrupt(err, "bad body length");
    if (v >= 2 ? !lit(&c, ",\"crc32c\":\"") || !hexbytes(&c, hb, 4)
               : !lit(&c, ",\"body_hash\":\"") || !hexbytes(&c, hb, 8))
        return corrupt(err, "bad check value");
    if (!lit(&c, "\",\"body_enc\":\""))
        return corrupt(err, "bad header fields");
    int embed;
    if (lit(&c, "json\",\"body\":"))
        embed = 1;
    else if (lit(&c, "base64\",\"body\":\""))
        embed = 0;
    else
        return corrupt(err, "bad body encoding");
    const char *body;
    size_t body_len;
    if (embed) {
        if ((size_t)(c.end - c.p) != (size_t)blen + 1 || c.end[-1] != '}')
            return corrupt(err, "body length mismatch (truncated?)");
        body = c.p;
        body_len = (size_t)blen;
    } else {
        if (c.end - c.p < 2 || c.end[-1] != '}' || c.end[-2] != '"')
            return corrupt(err, "truncated base64 body");
        if (!scratch || b64_decode(scratch, c.p, (size_t)(c.end - c.p - 2)) != 0)
            return corrupt(err, "bad base64 body");
        if (scratch->len != (size_t)blen)
            return corrupt(err, "body length mismatch");
        body = scratch->data;
        body_len = scratch->len;
    }
    llmc_entry d;
    memset(&d, 0, sizeof d);
    d.version = (uint32_t)v;
    d.serializer_id = SER_JSON_ID;
    d.created_ms = created;
    d.expires_ms = expires;
    d.upstream_ms = upstream;
    d.call = call;
    memcpy(d.key_sha256, ks, 32);
    d.mac_present = (uint8_t)has_mac;
    if (has_mac)
        memcpy(d.mac, mac, 32);
    d.body = body;
    d.body_len = body_len;
    if (v >= 2) {
        uint32_t want =
            (uint32_t)hb[0] << 24 | (uint32_t)hb[1] << 16 | (uint32_t)hb[2] << 8 | hb[3];
        if (entry_crc(&d, body, body_len) != want)
            return corrupt(err, "checksum mismatch");
    } else {
        uint64_t want = 0;
        for (int i = 0; i < 8; i++)
            want = want << 8 | hb[i];
        if (entry_check_v1(created, expires, call, body, body_len) != want)
            return corrupt(err, "body checksum mismatch");
    }
    *e = d;
    return LLMC_OK;
}

const llmc_serializer_ops llmc__serializer_json = {
    .hdr = LLMC_COMPONENT_INIT(llmc_serializer_ops, "json",
                               "human-readable JSON envelope (default)"),
    .id = SER_JSON_ID,
    .encode = json_encode,
    .decode = json_decode,
};

/* ---- binary ---- */

#define BIN1_HDR 72
#define BIN2_HDR 76
#define BIN_FLAG_MAC 1u

static llmc_status bin_encode(const llmc_entry *e, llmc_buf *out, llmc_err *err)
{
    if (!llmc_call_type_name(e->call))
        return llmc_err_set(err, LLMC_EINVAL, 0, "entry has an unknown call type %d",
                            (int)e->call);
    if (e->upstream_ms < 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "entry has a negative upstream time");
    size_t hdr = BIN2_HDR + (e->mac_present ? 32 : 0);
    if (llmc_buf_reserve(out, hdr + e->body_len) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory encoding entry");
    unsigned char *h = (unsigned char *)out->data + out->len;
    memcpy(h, "LLMC", 4);
    h[4] = LLMC_ENTRY_VERSION;
    h[5] = SER_BINARY_ID;
    h[6] = (unsigned char)e->call;
    h[7] = e->mac_present ? BIN_FLAG_MAC : 0;
    put64(h + 8, (uint64_t)e->created_ms);
    put64(h + 16, (uint64_t)e->expires_ms);
    put64(h + 24, (uint64_t)e->upstream_ms);
    memcpy(h + 32, e->key_sha256, 32);
    put64(h + 64, e->body_len);
    uint32_t crc = entry_crc(e, e->body, e->body_len);
    for (int i = 0; i < 4; i++)
        h[72 + i] = (unsigned char)(crc >> (8 * i));
    if (e->mac_present)
        memcpy(h + BIN2_HDR, e->mac, 32);
    if (e->body_len)
        memcpy(h + hdr, e->body, e->body_len);
    out->len += hdr + e->body_len;
    out->data[out->len] = 0;
    return LLMC_OK;
}

static llmc_status bin_decode_v1(const char *data, size_t len, llmc_entry *e, llmc_err *err)
{
    const unsigned char *h = (const unsigned char *)data;
    if (len < BIN1_HDR)
        return corrupt(err, "truncated header");
    if (h[5] != SER_BINARY_ID || !llmc_call_type_name((llmc_call_type)h[6]) || h[7] != 0)
        return corrupt(err, "bad header");
    uint64_t blen = get64(h + 56);
    if (blen != len - BIN1_HDR)
        return corrupt(err, "body length mismatch (truncated?)");
    if (entry_check_v1((int64_t)get64(h + 8), (int64_t)get64(h + 16), (llmc_call_type)h[6],
                       (const char *)h + BIN1_HDR, (size_t)blen) != get64(h + 64))
        return corrupt(err, "body checksum mismatch");
    memset(e, 0, sizeof *e);
    e->version = 1;
    e->serializer_id = SER_BINARY_ID;
    e->call = (llmc_call_type)h[6];
    e->created_ms = (int64_t)get64(h + 8);
    e->expires_ms = (int64_t)get64(h + 16);
    memcpy(e->key_sha256, h + 24, 32);
    e->body = data + BIN1_HDR;
    e->body_len = (size_t)blen;
    return LLMC_OK;
}

static llmc_status bin_decode(const char *data, size_t len, llmc_entry *e, llmc_buf *scratch,
                              llmc_err *err)
{
    (void)scratch;
    const unsigned char *h = (const unsigned char *)data;
    if (len < 6 || memcmp(h, "LLMC", 4) != 0)
        return corrupt(err, "not a llmcache binary envelope");
    if (h[4] > LLMC_ENTRY_VERSION || h[4] < 1)
        return llmc_err_set(err, LLMC_EVERSION, 0,
                            "stored entry has format version %u; this llmcache reads versions "
                            "1 to %d", h[4], LLMC_ENTRY_VERSION);
    if (h[4] == 1)
        return bin_decode_v1(data, len, e, err);
    if (len < BIN2_HDR)
        return corrupt(err, "truncated header");
    if (h[5] != SER_BINARY_ID || !llmc_call_type_name((llmc_call_type)h[6]) || (h[7] & ~BIN_FLAG_MAC) != 0)
        return corrupt(err, "bad header");
    size_t hdr = BIN2_HDR + ((h[7] & BIN_FLAG_MAC) ? 32 : 0);
    if (len < hdr)
        return corrupt(err, "truncated header");
    uint64_t blen = get64(h + 64);
    if (blen != len - hdr)
        return corrupt(err, "body length mismatch (truncated?)");
    llmc_entry d;
    memset(&d, 0, sizeof d);
    d.version = h[4];
    d.serializer_id = SER_BINARY_ID;
    d.call = (llmc_call_type)h[6];
    d.created_ms = (int64_t)get64(h + 8);
    d.expires_ms = (int64_t)get64(h + 16);
    d.upstream_ms = (int64_t)get64(h + 24);
    memcpy(d.key_sha256, h + 32, 32);
    if (h[7] & BIN_FLAG_MAC) {
        d.mac_present = 1;
        memcpy(d.mac, h + BIN2_HDR, 32);
    }
    d.body = data + hdr;
    d.body_len = (size_t)blen;
    uint32_t want = (uint32_t)h[72] | (uint32_t)h[73] << 8 | (uint32_t)h[74] << 16 |
                    (uint32_t)h[75] << 24;
    if (entry_crc(&d, d.body, d.body_len) != want)
        return corrupt(err, "checksum mismatch");
    if (d.upstream_ms < 0)
        return corrupt(err, "bad upstream_ms");
    *e = d;
    return LLMC_OK;
}

const llmc_serializer_ops llmc__serializer_binary = {
    .hdr = LLMC_COMPONENT_INIT(llmc_serializer_ops, "binary",
                               "compact length-prefixed envelope"),
    .id = SER_BINARY_ID,
    .encode = bin_encode,
    .decode = bin_decode,
};
