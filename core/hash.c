/* The hash helpers: SHA-256 for keys and entry checksums, a fast 64-bit
 * hash for envelopes, hash tables and the request memo. */
#include "hash.h"
#include "internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* ---- SHA-256 with a per-thread reusable context ---- */

static EVP_MD *sha256_md;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

static void free_ctx(void *p) { EVP_MD_CTX_free(p); }
static void free_md(void) { EVP_MD_free(sha256_md); }

static void md_init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    pthread_key_create(&ctx_key, free_ctx);
    atexit(free_md);
}

void llmc__sha256(const void *data, size_t len, uint8_t out[32])
{
    pthread_once(&md_once, md_init);
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        pthread_setspecific(ctx_key, ctx);
    }
    unsigned int n = 32;
    if (!ctx || !sha256_md || !EVP_DigestInit_ex(ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, out, &n)) {
        /* Fall back to the one-shot API (slower, same result). */
        EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
    }
}

void llmc_sha256(const void *data, size_t len, uint8_t out[32])
{
    llmc__sha256(data, len, out);
}

void llmc_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* A fast non-cryptographic 64-bit hash (multiply-xor over 8-byte words),
 * used for checksums, hash tables and the client's request memo. Not for
 * anything adversarial. Inputs of 32 bytes or more run four independent
 * lanes so the multiplies pipeline: request texts and response bodies are
 * kilobytes long and hashed on the hit path. */
uint64_t llmc__hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    const uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t h = 0x165667B19E3779F9ull ^ (len * k1);
    if (len >= 32) {
        uint64_t a = h, b = ~h, c = 0x27D4EB2F165667C5ull, d = len;
        for (; len >= 32; p += 32, len -= 32) {
            uint64_t w[4];
            memcpy(w, p, 32);
            a = (a ^ (w[0] * k2)) * k1;
            b = (b ^ (w[1] * k2)) * k1;
            c = (c ^ (w[2] * k2)) * k1;
            d = (d ^ (w[3] * k2)) * k1;
            a ^= a >> 29;
            b ^= b >> 29;
            c ^= c >> 29;
            d ^= d >> 29;
        }
        h = a ^ (b << 1 | b >> 63) ^ (c << 7 | c >> 57) ^ (d << 13 | d >> 51);
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w *= k2;
        w ^= w >> 31;
        h ^= w * k1;
        h = (h << 27 | h >> 37) * k1 + 0x52DCE729;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h ^= (w * k2) ^ ((w * k2) >> 29);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}
