/* llmcache: common definitions shared by every public header.
 *
 * Status codes, version and ABI numbers, the export macro, binary-safe
 * buffers and the error record that components fill in. */
#ifndef LLMCACHE_COMMON_H
#define LLMCACHE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LLMC_API __declspec(dllexport)
#elif defined(__GNUC__)
#define LLMC_API __attribute__((visibility("default")))
#else
#define LLMC_API
#endif

#if defined(__GNUC__)
#define LLMC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LLMC_PRINTF(a, b)
#endif

#define LLMC_VERSION_MAJOR 0
#define LLMC_VERSION_MINOR 1
#define LLMC_VERSION_PATCH 0
#define LLMC_VERSION_STRING "0.1.0"

/* ABI of the component tables (backends, providers, key strategies,
 * serializers) and of plugins. A table whose abi_major differs from
 * LLMC_ABI_MAJOR is refused; members are only ever appended, so a table
 * with a smaller struct_size is accepted and the missing members are
 * treated as absent. */
#define LLMC_ABI_MAJOR 1
#define LLMC_ABI_MINOR 1

/* The status list. One X-macro so the enum, names and messages cannot
 * drift. Append only: values are part of the ABI. */
#define LLMC_STATUS_MAP(X)                                                     \
    X(OK, "success")                                                           \
    X(MISS, "cache miss")                                                      \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(ENOTFOUND, "no such component")                                          \
    X(ENOTBUILT, "component not built in")                                     \
    X(EEXIST, "name already registered")                                       \
    X(ETOOBIG, "value too large")                                              \
    X(ETIMEDOUT, "operation timed out")                                        \
    X(ECONN, "connection failed")                                              \
    X(EAUTH, "authentication failed")                                          \
    X(EIO, "I/O error")                                                        \
    X(EPROTO, "protocol error")                                                \
    X(ECORRUPT, "corrupt or foreign entry")                                    \
    X(ENOTSUP, "operation not supported")                                      \
    X(EBACKEND, "backend error")                                               \
    X(EBUSY, "resource busy")                                                  \
    X(EABI, "ABI version mismatch")                                            \
    X(EVERSION, "unsupported format version")                                  \
    X(ECIRCUIT, "backend skipped: circuit breaker open")                       \
    X(ERATELIMIT, "rate limited by provider")                                  \
    X(ECONTEXT, "context length exceeded")                                     \
    X(EBADREQUEST, "request rejected by provider")                             \
    X(EUPSTREAM, "provider server error")                                      \
    X(EPROVIDER, "provider error")                                             \
    X(ESTREAM, "stream ended early")                                           \
    X(ECANCELED, "operation canceled")                                         \
    X(EPERM, "permission denied")                                              \
    X(EINTERNAL, "internal error")

typedef enum llmc_status {
#define LLMC_X_ENUM(name, msg) LLMC_##name,
    LLMC_STATUS_MAP(LLMC_X_ENUM)
#undef LLMC_X_ENUM
    LLMC_STATUS_COUNT_
} llmc_status;

/* A static, human-readable message for a status. Never NULL; unknown
 * values give "unknown status". */
LLMC_API const char *llmc_strerror(llmc_status st);

/* The status's symbolic name without prefix ("EINVAL", "MISS"). Never
 * NULL. */
LLMC_API const char *llmc_status_name(llmc_status st);

/* The library's version string, e.g. "0.1.0". Static. */
LLMC_API const char *llmc_version(void);

/* ------------------------------------------------------------------ */
/* Buffers: binary-safe byte strings owned by the library's allocator. */

typedef struct llmc_buf {
    char *data; /* NUL-terminated for convenience; may contain NULs */
    size_t len;
    size_t cap;
} llmc_buf;

#define LLMC_BUF_INIT {NULL, 0, 0}

/* Make room for at least `extra` more bytes. Returns LLMC_ENOMEM on
 * failure (the buffer is untouched). */
LLMC_API llmc_status llmc_buf_reserve(llmc_buf *b, size_t extra);
/* Replace the contents with a copy of data[0..len). */
LLMC_API llmc_status llmc_buf_set(llmc_buf *b, const void *data, size_t len);
/* Append a copy of data[0..len). */
LLMC_API llmc_status llmc_buf_append(llmc_buf *b, const void *data, size_t len);
/* Append a NUL-terminated string. */
LLMC_API llmc_status llmc_buf_puts(llmc_buf *b, const char *s);
/* Append printf-formatted text. */
LLMC_API llmc_status llmc_buf_printf(llmc_buf *b, const char *fmt, ...) LLMC_PRINTF(2, 3);
/* Empty the buffer, keeping its memory. */
LLMC_API void llmc_buf_clear(llmc_buf *b);
/* Release the memory; the buffer is reset to LLMC_BUF_INIT. NULL ok. */
LLMC_API void llmc_buf_free(llmc_buf *b);
/* Take the bytes out: the caller owns the returned pointer (free with
 * llmc_free) and the buffer is reset. Returns NULL if empty. */
LLMC_API char *llmc_buf_steal(llmc_buf *b, size_t *len);

/* Free memory that the library handed to the caller (strings, values).
 * NULL is accepted. */
LLMC_API void llmc_free(void *p);

/* ------------------------------------------------------------------ */
/* Error records. Components (backends, providers, ...) report failures
 * by filling one in; the core copies it to the handle's last error. */

#define LLMC_ERRMSG_MAX 512

typedef struct llmc_err {
    llmc_status status;
    long native;           /* backend's own code: hiredis err, memcached
                              return, SQLite extended code, CURLcode, HTTP
                              status ... 0 when none */
    char msg[LLMC_ERRMSG_MAX];
} llmc_err;

/* Reset an error record to OK with an empty message. */
LLMC_API void llmc_err_clear(llmc_err *e);
/* Fill an error record and return `st` (so `return llmc_err_set(...)`
 * works). `e` may be NULL, in which case only the status is returned.
 * Never put secrets (passwords, API keys) in the message. */
LLMC_API llmc_status llmc_err_set(llmc_err *e, llmc_status st, long native,
                                  const char *fmt, ...) LLMC_PRINTF(4, 5);
LLMC_API llmc_status llmc_err_vset(llmc_err *e, llmc_status st, long native,
                                   const char *fmt, va_list ap);

/* Milliseconds since the Unix epoch (wall clock) and a monotonic clock
 * in nanoseconds. Helpers for components. */
LLMC_API int64_t llmc_now_ms(void);
LLMC_API uint64_t llmc_mono_ns(void);

#ifdef __cplusplus
}
#endif
#endif
