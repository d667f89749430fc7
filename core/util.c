/* Status strings, buffers, error records, clocks, small string helpers. */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_msgs[] = {
#define LLMC_X_MSG(name, msg) msg,
    LLMC_STATUS_MAP(LLMC_X_MSG)
#undef LLMC_X_MSG
};

static const char *const status_names[] = {
#define LLMC_X_NAME(name, msg) #name,
    LLMC_STATUS_MAP(LLMC_X_NAME)
#undef LLMC_X_NAME
};

const char *llmc_strerror(llmc_status st)
{
    if ((unsigned)st >= LLMC_ARRAY_LEN(status_msgs))
        return "unknown status";
    return status_msgs[st];
}

const char *llmc_status_name(llmc_status st)
{
    if ((unsigned)st >= LLMC_ARRAY_LEN(status_names))
        return "UNKNOWN";
    return status_names[st];
}

const char *llmc_version(void) { return LLMC_VERSION_STRING; }

void llmc_free(void *p) { free(p); }

/* ---- buffers ---- */

llmc_status llmc_buf_reserve(llmc_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return LLMC_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return LLMC_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return LLMC_ENOMEM;
    b->data = p;
    b->cap = cap;
    return LLMC_OK;
}

llmc_status llmc_buf_set(llmc_buf *b, const void *data, size_t len)
{
    b->len = 0;
    return llmc_buf_append(b, data, len);
}

llmc_status llmc_buf_append(llmc_buf *b, const void *data, size_t len)
{
    if (llmc_buf_reserve(b, len) != LLMC_OK)
        return LLMC_ENOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
    return LLMC_OK;
}

llmc_status llmc_buf_puts(llmc_buf *b, const char *s)
{
    return llmc_buf_append(b, s, strlen(s));
}

llmc_status llmc_buf_printf(llmc_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return LLMC_EINVAL;
    if ((size_t)n < sizeof small)
        return llmc_buf_append(b, small, (size_t)n);
    if (llmc_buf_reserve(b, (size_t)n) != LLMC_OK)
        return LLMC_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LLMC_OK;
}

void llmc_buf_clear(llmc_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void llmc_buf_free(llmc_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *llmc_buf_steal(llmc_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    if (!p || b->len == 0) {
        free(p);
        p = NULL;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- errors ---- */

void llmc_err_clear(llmc_err *e)
{
    if (!e)
        return;
    e->status = LLMC_OK;
    e->native = 0;
    e->msg[0] = 0;
}

llmc_status llmc_err_vset(llmc_err *e, llmc_status st, long native, const char *fmt,
                          va_list ap)
{
    if (!e)
        return st;
    e->status = st;
    e->native = native;
    if (fmt)
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    else
        snprintf(e->msg, sizeof e->msg, "%s", llmc_strerror(st));
    return st;
}

llmc_status llmc_err_set(llmc_err *e, llmc_status st, long native, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    llmc_err_vset(e, st, native, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- clocks ---- */

int64_t llmc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t llmc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- strings ---- */

int llmc__strcaseeq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    while (*a && *b) {
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        a++;
        b++;
    }
    return *a == *b;
}

char *llmc__strdup(const char *s)
{
    return s ? llmc__strndup(s, strlen(s)) : NULL;
}

char *llmc__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void llmc__log(const char *level, const char *fmt, ...)
{
    const char *env = getenv("LLMCACHE_LOG");
    int is_warn = level && (strcmp(level, "warn") == 0 || strcmp(level, "error") == 0);
    if (!is_warn && !(env && *env && strcmp(env, "0") != 0))
        return;
    if (env && strcmp(env, "quiet") == 0)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "llmcache %s: %s\n", level ? level : "info", line);
}

/* ---- call types ---- */

const char *llmc_call_type_name(llmc_call_type t)
{
    switch (t) {
    case LLMC_CALL_RAW: return "raw";
    case LLMC_CALL_CHAT: return "chat";
    case LLMC_CALL_TEXT: return "text";
    case LLMC_CALL_EMBEDDING: return "embedding";
    case LLMC_CALL_RESPONSES: return "responses";
    case LLMC_CALL_MESSAGES: return "messages";
    }
    return NULL;
}

llmc_status llmc_call_type_parse(const char *s, llmc_call_type *out)
{
    static const llmc_call_type all[] = {LLMC_CALL_RAW, LLMC_CALL_CHAT, LLMC_CALL_TEXT,
                                         LLMC_CALL_EMBEDDING, LLMC_CALL_RESPONSES,
                                         LLMC_CALL_MESSAGES};
    for (size_t i = 0; s && i < LLMC_ARRAY_LEN(all); i++)
        if (strcmp(s, llmc_call_type_name(all[i])) == 0) {
            *out = all[i];
            return LLMC_OK;
        }
    return LLMC_EINVAL;
}

/* ---- per-thread scratch ---- */

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    llmc_buf *b = p;
    for (int i = 0; i < LLMC_TLS_COUNT_; i++)
        llmc_buf_free(&b[i]);
    free(b);
}

static void tls_init(void) { pthread_key_create(&tls_key, tls_free); }

llmc_buf *llmc__tls_buf(int which)
{
    pthread_once(&tls_once, tls_init);
    llmc_buf *b = pthread_getspecific(tls_key);
    if (!b) {
        b = calloc(LLMC_TLS_COUNT_, sizeof *b);
        if (!b)
            return NULL;
        pthread_setspecific(tls_key, b);
    }
    return &b[which];
}
