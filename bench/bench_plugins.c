/* Plugin benchmark, each figure next to a baseline measured in the same
 * run:
 *   file plugin get  vs  raw open + read + close of the same file layout
 *   file plugin set  vs  raw write to a temp file + rename (same bytes)
 *   lookup of an unknown name (negative cache)  vs  lookup of a known one
 *   first autoload of a plugin, and a load + unload cycle (absolute times)
 * The file figures show what the plugin boundary and the dispatcher add
 * to the file system work itself; the lookup figure shows that unknown
 * names stay cheap after the first search.
 * Usage: bench_plugins PLUGIN_DIR [seconds-per-measurement, default 0.3] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llmcache/llmcache.h"

#define NKEYS 512
#define VLEN 1536

static double secs = 0.3;
static char dir[256];
static char value[VLEN];

static double now_s(void) { return (double)llmc_mono_ns() / 1e9; }

/* Run fn until `secs` have passed; operations per second. */
static double rate(void (*fn)(void *, unsigned long), void *ud)
{
    unsigned long n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 64; i++)
            fn(ud, n++);
        t = now_s();
    } while (t - t0 < secs);
    return (double)n / (t - t0);
}

static void key_of(unsigned long i, char *k, size_t n)
{
    snprintf(k, n, "bench:key-%lu", i % NKEYS);
}

static void plugin_get(void *ud, unsigned long i)
{
    static llmc_buf v;
    char k[64];
    key_of(i, k, sizeof k);
    if (llmc_cache_get(ud, k, strlen(k), &v) != LLMC_OK)
        abort();
}

static void plugin_set(void *ud, unsigned long i)
{
    char k[64];
    key_of(i, k, sizeof k);
    if (llmc_cache_set(ud, k, strlen(k), value, VLEN, LLMC_TTL_NEVER) != LLMC_OK)
        abort();
}

/* Raw baseline: the same layout (one file per key under a directory,
 * named by SHA-256, header + key + value) without llmcache. */
static void raw_path(unsigned long i, char *p, size_t n)
{
    char k[64], hex[65];
    uint8_t d[32];
    key_of(i, k, sizeof k);
    llmc_sha256(k, strlen(k), d);
    llmc_hex(d, 32, hex);
    snprintf(p, n, "%s/raw/%s", dir, hex);
}

static void raw_set(void *ud, unsigned long i)
{
    (void)ud;
    char p[400], tmp[420];
    raw_path(i, p, sizeof p);
    static unsigned long seq;
    snprintf(tmp, sizeof tmp, "%s/raw/.tmp-%lu", dir, seq++);
    char hdr[20 + 64];
    memset(hdr, 'h', sizeof hdr);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 || write(fd, hdr, sizeof hdr) != (ssize_t)sizeof hdr ||
        write(fd, value, VLEN) != VLEN || close(fd) != 0 || rename(tmp, p) != 0)
        abort();
}

static void raw_get(void *ud, unsigned long i)
{
    (void)ud;
    char p[400], buf[VLEN + 128];
    raw_path(i, p, sizeof p);
    int fd = open(p, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || read(fd, buf, sizeof buf) <= 0)
        abort();
    close(fd);
}

static void find_known(void *ud, unsigned long i)
{
    (void)ud;
    (void)i;
    if (!llmc_find_backend("local"))
        abort();
}

static void find_unknown(void *ud, unsigned long i)
{
    (void)ud;
    (void)i;
    if (llmc_find_backend("no-such-backend"))
        abort();
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_plugins PLUGIN_DIR [seconds]\n");
        return 2;
    }
    if (argc > 2)
        secs = atof(argv[2]);
    setenv("LLMCACHE_PLUGIN_PATH", argv[1], 1);
    snprintf(dir, sizeof dir, "/tmp/llmc-bench-plugins-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    for (int i = 0; i < VLEN; i++)
        value[i] = (char)('a' + i % 26);
    llmc_init();

    /* first autoload: scheme unknown until llmc-file.so is found */
    char url[400];
    snprintf(url, sizeof url, "file://%s/store", dir);
    llmc_cache *c = NULL;
    llmc_err err;
    double t0 = now_s();
    if (llmc_cache_open(url, NULL, &c, &err) != LLMC_OK) {
        fprintf(stderr, "bench_plugins: %s\n", err.msg);
        return 1;
    }
    double first_open = now_s() - t0;

    char rawdir[300];
    snprintf(rawdir, sizeof rawdir, "%s/raw", dir);
    mkdir(rawdir, 0777);
    /* every key exists before anything is timed */
    for (unsigned long i = 0; i < NKEYS; i++) {
        raw_set(NULL, i);
        plugin_set(c, i);
    }
    double raw_s = rate(raw_set, NULL);
    double plug_s = rate(plugin_set, c);
    double raw_g = rate(raw_get, NULL);
    double plug_g = rate(plugin_get, c);
    llmc_cache_close(c);

    double known = rate(find_known, NULL);
    double unknown = rate(find_unknown, NULL);

    /* load + unload cycles of the (now unused) file plugin */
    llmc_plugin_unload("file", &err);
    char so[600];
    snprintf(so, sizeof so, "%s/llmc-file.so", argv[1]);
    int cycles = 0;
    t0 = now_s();
    while (now_s() - t0 < secs) {
        if (llmc_plugin_load(so, &err) != LLMC_OK || llmc_plugin_unload(so, &err) != LLMC_OK) {
            fprintf(stderr, "bench_plugins: %s\n", err.msg);
            return 1;
        }
        cycles++;
    }
    double cycle_us = (now_s() - t0) / cycles * 1e6;

    printf("file plugin set (1.5 KB):   %9.0f ops/s   raw temp+rename %9.0f ops/s   ratio %.2f\n",
           plug_s, raw_s, plug_s / raw_s);
    printf("file plugin get (1.5 KB):   %9.0f ops/s   raw open+read   %9.0f ops/s   ratio %.2f\n",
           plug_g, raw_g, plug_g / raw_g);
    printf("find unknown name (cached): %9.0f ops/s   find known name %9.0f ops/s   ratio %.2f\n",
           unknown, known, unknown / known);
    printf("first open with autoload:   %9.2f ms\n", first_open * 1e3);
    printf("plugin load + unload cycle: %9.1f us\n", cycle_us);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
