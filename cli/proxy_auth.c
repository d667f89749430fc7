/* Who is asking: the proxy's API keys (Bearer, x-api-key, api-key, or a
 * browser's Basic password on /ui), compared in constant time, each
 * naming the tenant whose namespace the request is confined to. */
#include "proxy_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Constant-time comparison, so a key cannot be guessed byte by byte from
 * response times. */
static int key_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned diff = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
    return diff == 0;
}

/* The password of an HTTP Basic credential (base64 "user:password") into
 * out; 0 when it is not one. */
static int basic_password(const char *b64, char *out, size_t outsz)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char dec[512];
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    while (*b64 == ' ')
        b64++;
    for (const char *p = b64; *p && *p != '=' && *p != ' '; p++) {
        const char *q = memchr(tbl, *p, 64);
        if (!q)
            return 0;
        acc = (acc << 6) | (unsigned)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= sizeof dec)
                return 0;
            dec[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    dec[n] = '\0';
    const char *colon = memchr(dec, ':', n);
    if (!colon || memchr(dec, '\0', n) || (size_t)(dec + n - colon) > outsz)
        return 0;
    memcpy(out, colon + 1, (size_t)(dec + n - colon));
    return 1;
}

/* 0 ok (r->tenant set), -1 answered (401, or 400 for repeated credentials). */
int px_authenticate(preq *r)
{
    const proxy_config *c = r->srv->cfg;
    if (c->n_keys == 0)
        return 0;
    /* Credentials cannot be combined: a request carrying several would
     * be read by whichever line a front end and this server each pick. */
    static const char *const cred[] = {"Authorization", "x-api-key", "api-key", NULL};
    for (int i = 0; cred[i]; i++) {
        int answered = 0;
        px_header_single(r, cred[i], &answered);
        if (answered)
            return -1;
    }
    const char *k = NULL;
    const char *h = px_header(r, "Authorization");
    if (h) {
        while (*h == ' ')
            h++;
        if (strncasecmp(h, "Bearer ", 7) == 0) {
            k = h + 7;
            while (*k == ' ')
                k++;
        }
    }
    char basic[512];
    if (!k && h && strncasecmp(h, "Basic ", 6) == 0 && basic_password(h + 6, basic, sizeof basic))
        k = basic; /* a browser on /ui: user name ignored, password = the key */
    if (!k)
        k = px_header(r, "x-api-key");
    if (!k)
        k = px_header(r, "api-key");
    if (k) {
        size_t kl = strlen(k);
        while (kl && k[kl - 1] == ' ')
            kl--;
        for (size_t i = 0; i < c->n_keys; i++) {
            if (key_equal(k, kl, c->keys[i].key)) {
                r->tenant = &c->keys[i];
                return 0;
            }
        }
    }
    px_queue_error(r, 401, "invalid_api_key",
                k ? "Incorrect API key provided to the llmcache proxy."
                  : "You didn't provide an API key. Send it as \"Authorization: Bearer "
                    "<key>\".");
    return -1;
}
