/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the check value
 * of stored entries. The polynomial is (x+1) times a primitive polynomial
 * of degree 31, so every odd number of flipped bits is caught, and every
 * two-bit flip within 2^31 - 1 bits (256 MiB) of each other, every burst
 * of 32 bits or fewer, and a random corruption with probability 1 - 2^-32.
 *
 * Software: slicing-by-8 over tables built once. x86-64 with SSE 4.2:
 * the crc32 instruction, chosen at run time, same results. */
#include "hash.h"
#include "internal.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        /* Little-endian assembly of the word, so the result does not
         * depend on the host's byte order. */
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
              table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
              table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_HW_CRC 1

/* The crc32 instruction has a latency of three cycles and a throughput
 * of one: one chain over the data runs at a third of what the CPU can
 * do. So long inputs run as three chains over three adjacent lanes of
 * CRC_LANE bytes, joined with the lanes' shift: the CRC register is
 * linear, so reg(A B) = shift_|B|(reg(A)) ^ reg_0(B), where shift_L is
 * "L zero bytes more", a linear map applied through four byte tables
 * (built once from the portable code). A hit checks every stored body,
 * and at one chain that was a quarter of a memo hit's time. */
#define CRC_LANE 128
static uint32_t lane_tab[4][256];

static void build_lane_tables(void)
{
    static const unsigned char zeros[CRC_LANE];
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++)
            lane_tab[k][v] = crc_sw(v << (8 * k), zeros, CRC_LANE);
}

static uint32_t lane_shift(uint32_t x)
{
    return lane_tab[0][x & 0xFF] ^ lane_tab[1][(x >> 8) & 0xFF] ^ lane_tab[2][(x >> 16) & 0xFF] ^
           lane_tab[3][x >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                          size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        n--;
    }
    uint64_t c = crc;
    while (n >= 3 * CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC_LANE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + CRC_LANE + i, 8);
            memcpy(&w2, p + 2 * CRC_LANE + i, 8);
            c = _mm_crc32_u64(c, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c = lane_shift(lane_shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * CRC_LANE;
        n -= 3 * CRC_LANE;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    crc = (uint32_t)c;
    while (n--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

static int use_hw;
#endif

static void init_once(void)
{
    build_tables();
#ifdef HAVE_HW_CRC
    __builtin_cpu_init();
    use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (use_hw)
        build_lane_tables();
#endif
}

uint32_t llmc__crc32c_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, init_once);
    const unsigned char *p = data;
    crc = ~crc;
#ifdef HAVE_HW_CRC
    if (use_hw)
        return ~crc_hw(crc, p, len);
#endif
    return ~crc_sw(crc, p, len);
}

uint32_t llmc__crc32c_sw_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, init_once);
    return ~crc_sw(~crc, data, len);
}
