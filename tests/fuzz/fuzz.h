/* Shared by the libFuzzer harnesses in this folder and by replay.c, the
 * driver that runs the same entry points over the checked-in corpora
 * and regression cases without libFuzzer (see docs/testing.md). */
#ifndef LLMC_FUZZ_H
#define LLMC_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A finding: print what disagreed and abort, so that libFuzzer saves the
 * input and the replay test fails. The message also goes through the
 * sanitizers' report channel, which stays open when libFuzzer closes the
 * target's stderr (-close_fd_mask=2). */
void __sanitizer_report_error_summary(const char *msg) __attribute__((weak));

__attribute__((format(printf, 3, 4), noreturn, unused)) static void
fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    int n = snprintf(msg, sizeof msg, "fuzz finding at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof msg)
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg);
    if (__sanitizer_report_error_summary)
        __sanitizer_report_error_summary(msg);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                        \
    } while (0)

/* nonet.c: the harnesses that reach code able to open sockets (cache
 * URLs, the client) link it; every connect() and getaddrinfo() of the
 * process fails at once, so no input can reach the network. Returns the
 * number of refused attempts so far. */
unsigned long fuzz_nonet_refused(void);

#endif
