/* Test support: `llmcache serve` as a child process, and requests to it
 * through libcurl (support/proxyproc.h). */
#include "proxyproc.h"

#include "proc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int px_start(testsrv *s, const char *name, const px_conf *c, int *port)
{
    if (testsrv_mkdir(s, name) != 0) {
        fprintf(stderr, "px_start: no directory for %s\n", name);
        return -1;
    }
    *port = testsrv_free_port();
    char text[4096];
    snprintf(text, sizeof text,
             "{\"listen\": \"127.0.0.1:%d\",\n"
             " \"cache\": {\"url\": \"%s\", \"options\": {%s}},\n"
             " \"client\": {\"max_retries\": 0, \"timeout_ms\": 20000},\n"
             " \"models\": [{\"name\": \"gpt-4o-mini\", \"provider\": \"openai\", "
             "\"api_base\": \"%s\", \"api_key\": \"sk-test-provider\"}],\n"
             " \"limits\": {\"threads\": %d, \"workers\": %d}%s}\n",
             *port, c->cache_url, c->cache_options, c->api_base, c->threads, c->workers,
             c->extra ? c->extra : "");
    return proc_serve(s, *port, text);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    px_reply *r = ud;
    size_t k = sz * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, k < room ? k : room);
    r->len += k < room ? k : room;
    r->body[r->len] = 0;
    return sz * n;
}

/* Header `name` ("x-llmcache-status:") into out when line p is it. */
static void take(const char *p, size_t k, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    if (k <= nl || strncasecmp(p, name, nl) != 0)
        return;
    const char *v = p + nl;
    while (*v == ' ')
        v++;
    size_t vl = (size_t)(p + k - v);
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    snprintf(out, outsz, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    px_reply *r = ud;
    size_t k = sz * n;
    take(p, k, "x-llmcache-status:", r->xstatus, sizeof r->xstatus);
    take(p, k, "warning:", r->warning, sizeof r->warning);
    take(p, k, "age:", r->age, sizeof r->age);
    if (k >= 26 && strncasecmp(p, "x-llmcache-coalesced: true", 26) == 0)
        r->coalesced = 1;
    return k;
}

int px_request(int port, const char *path, const char *body, const char *const *headers,
               long timeout_s, px_reply *r, const char **err)
{
    memset(r, 0, sizeof *r);
    if (err)
        *err = "curl_easy_init failed";
    CURL *h = curl_easy_init();
    if (!h)
        return -1;
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; headers && headers[i]; i++)
        hd = curl_slist_append(hd, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (err)
        *err = curl_easy_strerror(cc);
    return cc == CURLE_OK ? 0 : -1;
}
