/* Dot products of the vector index (core/vecdot.c): the fastest kernel
 * the CPU runs, chosen once, and the plain loops the benchmark compares
 * them with. Thread-safe. Not installed. */
#ifndef LLMC_VECDOT_H
#define LLMC_VECDOT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

float llmc__dot_f32(const float *a, const float *b, size_t n);
int32_t llmc__dot_i8(const int8_t *a, const int8_t *b, size_t n);
/* out[r] = rows[r] . q for each of nrows rows of dim values. */
void llmc__dot_f32_rows(const float *rows, size_t nrows, size_t dim, const float *q,
                        float *out);
void llmc__dot_i8_rows(const int8_t *rows, size_t nrows, size_t dim, const int8_t *q,
                       int32_t *out);
/* The plain loops. */
float llmc__dot_f32_scalar(const float *a, const float *b, size_t n);
int32_t llmc__dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n);
/* "avx2+fma", "vector extensions" or "scalar". */
const char *llmc__dot_kernel_name(void);

#endif
