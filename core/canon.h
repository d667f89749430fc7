/* Internal: RFC 8785 canonical JSON writer (see canon.c). */
#ifndef LLMC_CANON_H
#define LLMC_CANON_H

#include "internal.h"

struct json_object;

llmc_status llmc__canon_value(llmc_buf *b, const struct json_object *v);
llmc_status llmc__canon_string(llmc_buf *b, const char *s, size_t n);
llmc_status llmc__canon_double(llmc_buf *b, double d);
int llmc__canon_keycmp(const char *a, size_t al, const char *b, size_t bl);
/* Member filter: return 0 to drop the member; may replace *val. */
typedef int (*llmc__canon_filter)(void *ud, const char *key, struct json_object **val);
llmc_status llmc__canon_object_filtered(llmc_buf *b, const struct json_object *v,
                                        llmc__canon_filter filter, void *ud);

/* Thread-cached SHA-256 (OpenSSL EVP with a reused context). */
void llmc__sha256(const void *data, size_t len, uint8_t out[32]);
/* Fast 64-bit checksum used by the envelopes to detect corruption. */
uint64_t llmc__hash64(const void *data, size_t len);

#endif
