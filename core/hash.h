/* Internal hash helpers (core/hash.c, core/crc32c.c), for the core and
 * for backends that hash keys (the local backend's table) without pulling
 * in the canonicaliser. The public llmc_sha256 and
 * llmc_hex (entry.h) are the same functions for out-of-tree code. */
#ifndef LLMC_HASH_H
#define LLMC_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 with a per-thread reusable OpenSSL context. Thread-safe. */
void llmc__sha256(const void *data, size_t len, uint8_t out[32]);
/* Fast non-cryptographic 64-bit hash: checksums, hash tables, the memo.
 * Not for anything an attacker chooses to collide. Thread-safe. */
uint64_t llmc__hash64(const void *data, size_t len);
/* CRC-32C of data[0..len) continuing from crc (start with 0); see crc32c.c.
 * The _sw form always uses the portable tables (tests compare the two). */
uint32_t llmc__crc32c_update(uint32_t crc, const void *data, size_t len);
uint32_t llmc__crc32c_sw_update(uint32_t crc, const void *data, size_t len);

#endif
