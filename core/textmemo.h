/* A per-thread memo of small results computed from a text (core/textmemo.c).
 *
 * For readers that see the same bytes again and again: the usage read
 * from a stored response is the same for every hit of that entry, and
 * was read on every hit for the savings headers and metrics. A result is
 * returned only for a byte-identical text of the same kind (hash, length,
 * then the bytes compared), so the memo can never answer for a different
 * text. Each thread has its own few slots (no locks); they are freed when
 * the thread ends. Texts longer than LLMC__TEXTMEMO_MAX_TEXT and results
 * larger than LLMC__TEXTMEMO_MAX_VAL are never memoised. */
#ifndef LLMC_TEXTMEMO_H
#define LLMC_TEXTMEMO_H

#include <stddef.h>
#include <stdint.h>

#define LLMC__TEXTMEMO_MAX_TEXT (16 * 1024)
#define LLMC__TEXTMEMO_MAX_VAL 256

/* What the result is: results of different kinds never answer for each
 * other, and each kind has slots of its own. */
enum {
    LLMC__TEXTMEMO_USAGE = 0,      /* a stored response -> its usage (savings.c) */
    LLMC__TEXTMEMO_KEY_SHA256 = 1, /* a key -> its SHA-256 (entry.c) */
    LLMC__TEXTMEMO_KINDS = 2
};

/* 1 with the vlen bytes memoised for (kind, text) copied to val, else 0.
 * *h receives the text's hash for llmc__textmemo_put. */
int llmc__textmemo_get(int kind, const char *text, size_t len, void *val, size_t vlen,
                       uint64_t *h);
/* Remember val (vlen bytes, copied) as the result for (kind, text); h is
 * what llmc__textmemo_get gave for the same text. Out of memory or too
 * large: nothing is remembered. */
void llmc__textmemo_put(int kind, const char *text, size_t len, uint64_t h, const void *val,
                        size_t vlen);

#endif
