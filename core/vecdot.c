/* Dot products for the vector index: float32 and int8, a portable kernel
 * written with GCC/Clang vector extensions (SSE2 code on any x86-64,
 * NEON on arm64, plain code elsewhere) and, on x86-64, AVX2+FMA kernels
 * chosen at run time when the CPU has them. The scalar loops are kept for
 * the benchmark's baseline and for compilers without vector extensions. */
#include "vecdot.h"

#include <string.h>

float llmc__dot_f32_scalar(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

int32_t llmc__dot_i8_scalar(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

#if defined(__GNUC__) || defined(__clang__)
#define HAVE_VEXT 1
typedef float v4f __attribute__((vector_size(16)));

/* Four independent accumulators hide the add latency; memcpy loads make
 * no alignment assumption (they compile to unaligned vector loads). */
static float dot_f32_vext(const float *a, const float *b, size_t n)
{
    v4f s0 = {0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v4f a0, a1, a2, a3, b0, b1, b2, b3;
        memcpy(&a0, a + i, 16);
        memcpy(&a1, a + i + 4, 16);
        memcpy(&a2, a + i + 8, 16);
        memcpy(&a3, a + i + 12, 16);
        memcpy(&b0, b + i, 16);
        memcpy(&b1, b + i + 4, 16);
        memcpy(&b2, b + i + 8, 16);
        memcpy(&b3, b + i + 12, 16);
        s0 += a0 * b0;
        s1 += a1 * b1;
        s2 += a2 * b2;
        s3 += a3 * b3;
    }
    for (; i + 4 <= n; i += 4) {
        v4f x, y;
        memcpy(&x, a + i, 16);
        memcpy(&y, b + i, 16);
        s0 += x * y;
    }
    v4f s = (s0 + s1) + (s2 + s3);
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

typedef int16_t v8s __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

/* int8 through 16-bit products: each product fits in 15 bits plus sign,
 * and is widened before it is summed. */
static int32_t dot_i8_vext(const int8_t *a, const int8_t *b, size_t n)
{
    v4i acc = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8s x = {a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7]};
        v8s y = {b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]};
        v8s p = x * y;
        v4i lo = {p[0], p[1], p[2], p[3]};
        v4i hi = {p[4], p[5], p[6], p[7]};
        acc += lo + hi;
    }
    int32_t r = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; i < n; i++)
        r += (int32_t)a[i] * (int32_t)b[i];
    return r;
}
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2_KERNELS 1
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b,
                                                             size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float r = _mm_cvtss_f32(h);
    for (; i < n; i++)
        r += a[i] * b[i];
    return r;
}

__attribute__((target("avx2"))) static int32_t dot_i8_avx2(const int8_t *a, const int8_t *b,
                                                          size_t n)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(b + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t r = _mm_cvtsi128_si32(h);
    for (; i < n; i++)
        r += (int32_t)a[i] * (int32_t)b[i];
    return r;
}
#endif

typedef float (*dot_f32_fn)(const float *, const float *, size_t);
typedef int32_t (*dot_i8_fn)(const int8_t *, const int8_t *, size_t);

typedef struct kernels {
    dot_f32_fn f32;
    dot_i8_fn i8;
    const char *name;
} kernels;

static kernels pick(void)
{
    kernels k = {llmc__dot_f32_scalar, llmc__dot_i8_scalar, "scalar"};
#ifdef HAVE_VEXT
    k.f32 = dot_f32_vext;
    k.i8 = dot_i8_vext;
    k.name = "vector extensions";
#endif
#ifdef HAVE_AVX2_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        k.f32 = dot_f32_avx2;
        k.i8 = dot_i8_avx2;
        k.name = "avx2+fma";
    }
#endif
    return k;
}

static kernels active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void pick_once(void)
{
    active = pick();
}

static const kernels *get_kernels(void)
{
    pthread_once(&active_once, pick_once);
    return &active;
}

float llmc__dot_f32(const float *a, const float *b, size_t n)
{
    return get_kernels()->f32(a, b, n);
}

int32_t llmc__dot_i8(const int8_t *a, const int8_t *b, size_t n)
{
    return get_kernels()->i8(a, b, n);
}

void llmc__dot_f32_rows(const float *rows, size_t nrows, size_t dim, const float *q,
                        float *out)
{
    dot_f32_fn f = get_kernels()->f32;
    for (size_t r = 0; r < nrows; r++)
        out[r] = f(rows + r * dim, q, dim);
}

void llmc__dot_i8_rows(const int8_t *rows, size_t nrows, size_t dim, const int8_t *q,
                       int32_t *out)
{
    dot_i8_fn f = get_kernels()->i8;
    for (size_t r = 0; r < nrows; r++)
        out[r] = f(rows + r * dim, q, dim);
}

const char *llmc__dot_kernel_name(void)
{
    return get_kernels()->name;
}
