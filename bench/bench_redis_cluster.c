/* Redis Cluster benchmark: the redis-cluster backend next to the
 * single-node redis backend, same run, same machine.
 *
 * Starts a single redis-server and a Redis Cluster of 3 masters (no
 * replicas: replication would only add load on the same cores) on free
 * loopback ports, then measures get and set of 1.5 KB values at 1 thread
 * and at N threads, and MGET of 100 keys (spread over all masters in the
 * cluster), through llmc_cache_* for both. The two sides alternate in
 * short blocks so they see the same machine load; the ratio (cluster /
 * single node) is the median of the per-block ratios. The client's CPU
 * time per operation (user + system, over all its threads) is printed
 * too: unlike throughput it hardly depends on the machine's load, so it
 * shows the cost of the cluster routing itself.
 *
 * On a machine with few cores the three cluster nodes compete with the
 * client threads for the same CPUs, so the ratio measures the routing
 * overhead (slot computation, more connections, per-node pipelines),
 * not the scale-out a cluster gives on separate machines.
 *
 * Environment: LLMC_BENCH_THREADS (default 4), LLMC_BENCH_SECONDS (per
 * case and side, default 1.0), LLMC_BENCH_ONLY (run only the cases whose
 * name contains this text). */
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "../tests/support/rcluster.h"

#define NKEYS 1000
#define VLEN 1500

static int g_threads = 4;
static double g_seconds = 1.0;
static char g_keys[NKEYS][48];
static size_t g_klens[NKEYS];
static char g_val[VLEN];

typedef enum op { OP_GET, OP_SET, OP_MGET } op;

typedef struct worker {
    llmc_cache *c;
    op which;
    int id;
    double until_us;
    uint64_t ops;
    int failed;
} worker;

static double now_us(void)
{
    return (double)llmc_mono_ns() / 1000.0;
}

static void *work(void *p)
{
    worker *w = p;
    llmc_buf buf = LLMC_BUF_INIT;
    enum { B = 100 };
    const char *kp[B];
    size_t kl[B];
    llmc_buf bv[B];
    llmc_status sts[B];
    memset(bv, 0, sizeof bv);
    unsigned k = (unsigned)w->id * 7919u;
    while (now_us() < w->until_us) {
        for (int i = 0; i < 50; i++) {
            k = (k + 1) % NKEYS;
            llmc_status st;
            if (w->which == OP_GET) {
                st = llmc_cache_get(w->c, g_keys[k], g_klens[k], &buf);
                w->ops++;
            } else if (w->which == OP_SET) {
                st = llmc_cache_set(w->c, g_keys[k], g_klens[k], g_val, VLEN, 0);
                w->ops++;
            } else {
                for (int j = 0; j < B; j++) {
                    unsigned kk = (k + (unsigned)j * 13u) % NKEYS;
                    kp[j] = g_keys[kk];
                    kl[j] = g_klens[kk];
                }
                st = llmc_cache_mget(w->c, B, kp, kl, bv, sts);
                w->ops++;
                i += 9;
            }
            if (st != LLMC_OK)
                w->failed = 1;
        }
    }
    llmc_buf_free(&buf);
    for (int j = 0; j < B; j++)
        llmc_buf_free(&bv[j]);
    return NULL;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Run `threads` workers on cache c for `secs`; returns ops/s and adds
 * the client's CPU time per operation (user + system, all threads) to
 * *cpu_per_op. */
static double run_block(llmc_cache *c, op which, int threads, double secs, int *failed,
                        double *cpu_per_op)
{
    double c0 = cpu_us();
    worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double t0 = now_us();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){c, which, i, t0 + secs * 1e6, 0, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
        *failed |= w[i].failed;
    }
    double el = (now_us() - t0) / 1e6;
    if (ops)
        *cpu_per_op += (cpu_us() - c0) / (double)ops;
    free(w);
    free(th);
    return el > 0 ? (double)ops / el : 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static llmc_cache *open_or_die(const char *url, int pool)
{
    char full[1200];
    snprintf(full, sizeof full, "%s%spool_size=%d", url, strchr(url, '?') ? "&" : "?", pool);
    llmc_cache *c = NULL;
    llmc_err e;
    if (llmc_cache_open(full, NULL, &c, &e) != LLMC_OK) {
        fprintf(stderr, "bench: open %s failed: %s\n", url, e.msg);
        exit(1);
    }
    return c;
}

static const char *g_only; /* LLMC_BENCH_ONLY: cases whose name contains it */

static void bench_case(const char *name, const char *single_url, const char *cluster_url,
                       op which, int threads)
{
    if (g_only && *g_only && !strstr(name, g_only))
        return;
    llmc_cache *s = open_or_die(single_url, threads);
    llmc_cache *c = open_or_die(cluster_url, threads);
    /* Alternate ROUNDS short blocks per side so both see the same load;
     * the ratio is the median of the per-round ratios, which a load
     * spike in one block moves less than the ratio of the sums. */
    enum { ROUNDS = 10 };
    double so = 0, co = 0, r[ROUNDS], scpu = 0, ccpu = 0;
    int failed = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double a, b;
        if (round % 2 == 0) {
            a = run_block(s, which, threads, g_seconds / ROUNDS, &failed, &scpu);
            b = run_block(c, which, threads, g_seconds / ROUNDS, &failed, &ccpu);
        } else {
            b = run_block(c, which, threads, g_seconds / ROUNDS, &failed, &ccpu);
            a = run_block(s, which, threads, g_seconds / ROUNDS, &failed, &scpu);
        }
        so += a;
        co += b;
        r[round] = a > 0 ? b / a : 0;
    }
    so /= ROUNDS;
    co /= ROUNDS;
    qsort(r, ROUNDS, sizeof r[0], cmp_d);
    double ratio = (r[ROUNDS / 2 - 1] + r[ROUNDS / 2]) / 2;
    printf("%-28s %12.0f %12.0f   %5.2fx   %7.1f %7.1f%s\n", name, so, co, ratio,
           scpu / ROUNDS, ccpu / ROUNDS,
           failed ? "  (errors seen!)" : "");
    fflush(stdout);
    llmc_cache_close(s);
    llmc_cache_close(c);
}

int main(void)
{
    const char *e = getenv("LLMC_BENCH_THREADS");
    if (e && atoi(e) > 0)
        g_threads = atoi(e);
    e = getenv("LLMC_BENCH_SECONDS");
    if (e && atof(e) > 0)
        g_seconds = atof(e);
    g_only = getenv("LLMC_BENCH_ONLY");
    llmc_init();

    rcluster clu;
    if (rcluster_start(&clu, 3, 0) != 0) {
        fprintf(stderr, "bench: cannot start the cluster\n");
        rcluster_stop(&clu);
        return 1;
    }
    /* The single node: same settings as the cluster nodes, minus cluster. */
    testsrv single;
    if (testsrv_mkdir(&single, "bench-single") != 0)
        return 1;
    int port = testsrv_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    char *argv[] = {"redis-server", "--port", ps, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--requirepass", RCLUSTER_PASSWORD, NULL};
    if (testsrv_spawn(&single, argv) != 0 || testsrv_wait_tcp(&single, port, 10000) != 0) {
        fprintf(stderr, "bench: cannot start redis-server\n");
        testsrv_stop(&single);
        rcluster_stop(&clu);
        return 1;
    }
    char single_url[256];
    snprintf(single_url, sizeof single_url, "redis://:%s@127.0.0.1:%d", RCLUSTER_PASSWORD, port);

    memset(g_val, 'v', sizeof g_val);
    llmc_cache *s = open_or_die(single_url, 4), *c = open_or_die(clu.url, 4);
    for (int i = 0; i < NKEYS; i++) {
        g_klens[i] = (size_t)snprintf(g_keys[i], sizeof g_keys[i], "bench:%d", i);
        if (llmc_cache_set(s, g_keys[i], g_klens[i], g_val, VLEN, 0) != LLMC_OK ||
            llmc_cache_set(c, g_keys[i], g_klens[i], g_val, VLEN, 0) != LLMC_OK) {
            fprintf(stderr, "bench: populate failed\n");
            return 1;
        }
    }
    llmc_cache_close(s);
    llmc_cache_close(c);

    printf("llmcache %s redis-cluster benchmark: 3-master cluster vs single node, %ld CPUs, "
           "1.5 KB values, %.1f s per side and case\n",
           llmc_version(), sysconf(_SC_NPROCESSORS_ONLN), g_seconds);
    printf("%-28s %12s %12s   %6s   %15s\n", "case", "single op/s", "cluster op/s", "ratio",
           "client CPU us/op");
    printf("%-28s %12s %12s   %6s   %7s %7s\n", "", "", "", "", "single", "cluster");
    char name[64];
    bench_case("get, 1 thread", single_url, clu.url, OP_GET, 1);
    snprintf(name, sizeof name, "get, %d threads", g_threads);
    bench_case(name, single_url, clu.url, OP_GET, g_threads);
    bench_case("set, 1 thread", single_url, clu.url, OP_SET, 1);
    snprintf(name, sizeof name, "set, %d threads", g_threads);
    bench_case(name, single_url, clu.url, OP_SET, g_threads);
    bench_case("mget 100 keys, 1 thread", single_url, clu.url, OP_MGET, 1);
    snprintf(name, sizeof name, "mget 100 keys, %d threads", g_threads);
    bench_case(name, single_url, clu.url, OP_MGET, g_threads);

    testsrv_stop(&single);
    rcluster_stop(&clu);
    return 0;
}
