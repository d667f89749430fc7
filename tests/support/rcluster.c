#include "rcluster.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Like testsrv_spawn, but the server dies with the process that started
 * it (Check ends a failed test's child with _exit, no cleanup runs). */
static int spawn_tied(testsrv *s, const char *const *argv)
{
    const char *exe = testsrv_which(argv[0]);
    if (!exe)
        return -1;
    char exe_copy[512], log[600];
    snprintf(exe_copy, sizeof exe_copy, "%s", exe);
    snprintf(log, sizeof log, "%s/%s.log", s->dir, s->name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        if (chdir(s->dir) != 0)
            _exit(126);
        setpgid(0, 0);
        execv(exe_copy, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    return 0;
}

static char *run_capture(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, got;
    char *out = malloc(cap);
    while (out && (got = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *p = realloc(out, cap * 2);
            if (!p) {
                free(out);
                out = NULL;
                break;
            }
            out = p;
            cap *= 2;
        }
    }
    pclose(f);
    if (out)
        out[len] = 0;
    return out;
}

/* tls: NULL, or {ca, client cert, client key}. */
static char *cli(int port, const char *password, int cluster, const char *const *tls,
                 const char *const *args)
{
    const char *exe = testsrv_which("redis-cli");
    if (!exe)
        return NULL;
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "'%s' -h 127.0.0.1 -p %d%s", exe, port, cluster ? " -c" : "");
    if (password)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " -a '%s' --no-auth-warning", password);
    if (tls)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --tls --cacert '%s' --cert '%s' --key '%s'",
                      tls[0], tls[1], tls[2]);
    for (; *args && n > 0 && (size_t)n < sizeof cmd; args++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", *args);
    if ((size_t)n < sizeof cmd)
        snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>/dev/null");
    return run_capture(cmd);
}

char *rcluster_cli_port(int port, int cluster, const char *const *args)
{
    return cli(port, RCLUSTER_PASSWORD, cluster, NULL, args);
}

char *rcluster_cli(rcluster *c, int i, const char *const *args)
{
    const char *tls[3] = {c->ca, c->client_cert, c->client_key};
    return cli(c->node[i].port, RCLUSTER_PASSWORD, 0, c->tls ? tls : NULL, args);
}

/* tls: NULL, or {ca, server cert, server key}. */
static int start_node(rcnode *nd, const char *name, int cluster, int replica_of,
                      const char *const *tls)
{
    if (testsrv_mkdir(&nd->srv, name) != 0)
        return -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        nd->port = testsrv_free_port();
        nd->bus_port = testsrv_free_port();
        if (nd->port == nd->bus_port)
            continue;
        char port[16], bus[16], master[16];
        snprintf(port, sizeof port, "%d", nd->port);
        snprintf(bus, sizeof bus, "%d", nd->bus_port);
        snprintf(master, sizeof master, "%d", replica_of);
        const char *argv[60];
        int a = 0;
        argv[a++] = "redis-server";
        argv[a++] = "--port";
        if (tls) {
            argv[a++] = "0";
            argv[a++] = "--tls-port";
            argv[a++] = port;
            argv[a++] = "--tls-cluster";
            argv[a++] = "yes";
            argv[a++] = "--tls-replication";
            argv[a++] = "yes";
            argv[a++] = "--tls-cert-file";
            argv[a++] = tls[1];
            argv[a++] = "--tls-key-file";
            argv[a++] = tls[2];
            argv[a++] = "--tls-ca-cert-file";
            argv[a++] = tls[0];
        } else {
            argv[a++] = port;
        }
        argv[a++] = "--bind";
        argv[a++] = "127.0.0.1";
        argv[a++] = "--save";
        argv[a++] = "";
        argv[a++] = "--appendonly";
        argv[a++] = "no";
        argv[a++] = "--requirepass";
        argv[a++] = RCLUSTER_PASSWORD;
        argv[a++] = "--masterauth";
        argv[a++] = RCLUSTER_PASSWORD;
        if (cluster) {
            argv[a++] = "--cluster-enabled";
            argv[a++] = "yes";
            argv[a++] = "--cluster-config-file";
            argv[a++] = "nodes.conf";
            argv[a++] = "--cluster-node-timeout";
            argv[a++] = "2000";
            argv[a++] = "--cluster-port";
            argv[a++] = bus;
        }
        if (replica_of > 0) {
            argv[a++] = "--replicaof";
            argv[a++] = "127.0.0.1";
            argv[a++] = master;
        }
        argv[a] = NULL;
        if (spawn_tied(&nd->srv, argv) != 0)
            return -1;
        if (testsrv_wait_tcp(&nd->srv, nd->port, 15000) == 0)
            return 0;
        testsrv_kill(&nd->srv, 1); /* port taken meanwhile: try others */
    }
    fprintf(stderr, "rcluster: redis-server did not come up (see %s)\n", nd->srv.dir);
    return -1;
}

int rcluster_alive(const rcluster *c, int i)
{
    return c->node[i].srv.pid > 0;
}

void rcluster_kill(rcluster *c, int i)
{
    testsrv_kill(&c->node[i].srv, 1);
}

int rcluster_wait_ok(rcluster *c, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    const char *args[] = {"CLUSTER", "INFO", NULL};
    while (now_ms() < end) {
        int ok = 1;
        for (int i = 0; i < c->n && ok; i++) {
            if (!rcluster_alive(c, i))
                continue;
            char *out = rcluster_cli(c, i, args);
            ok = out && strstr(out, "cluster_state:ok") && strstr(out, "cluster_slots_ok:16384");
            free(out);
        }
        if (ok)
            return 0;
        usleep(200000);
    }
    return -1;
}

static int start_cluster(rcluster *c, int masters, int replicas);

int rcluster_start(rcluster *c, int masters, int replicas)
{
    memset(c, 0, sizeof *c);
    return start_cluster(c, masters, replicas);
}

int rcluster_start_tls(rcluster *c, int masters, int replicas, const char *ca, const char *cert,
                       const char *key, const char *client_cert, const char *client_key)
{
    memset(c, 0, sizeof *c);
    c->tls = 1;
    snprintf(c->ca, sizeof c->ca, "%s", ca);
    snprintf(c->cert, sizeof c->cert, "%s", cert);
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->client_cert, sizeof c->client_cert, "%s", client_cert);
    snprintf(c->client_key, sizeof c->client_key, "%s", client_key);
    return start_cluster(c, masters, replicas);
}

static int start_cluster(rcluster *c, int masters, int replicas)
{
    for (int i = 0; i < RCLUSTER_MAX; i++)
        c->node[i].srv.pid = -1;
    c->n = masters * (1 + replicas);
    if (c->n > RCLUSTER_MAX || masters < 3)
        return -1;
    const char *tls[3] = {c->ca, c->cert, c->key};
    for (int i = 0; i < c->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "rcluster%d", i);
        if (start_node(&c->node[i], name, 1, 0, c->tls ? tls : NULL) != 0)
            return -1;
    }
    char addrs[RCLUSTER_MAX][32], reps[16];
    snprintf(reps, sizeof reps, "%d", replicas);
    const char *argv[RCLUSTER_MAX + 20];
    int a = 0;
    argv[a++] = "redis-cli";
    argv[a++] = "-a";
    argv[a++] = RCLUSTER_PASSWORD;
    argv[a++] = "--no-auth-warning";
    if (c->tls) {
        argv[a++] = "--tls";
        argv[a++] = "--cacert";
        argv[a++] = c->ca;
        argv[a++] = "--cert";
        argv[a++] = c->client_cert;
        argv[a++] = "--key";
        argv[a++] = c->client_key;
    }
    argv[a++] = "--cluster";
    argv[a++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", c->node[i].port);
        argv[a++] = addrs[i];
    }
    argv[a++] = "--cluster-replicas";
    argv[a++] = reps;
    argv[a++] = "--cluster-yes";
    argv[a] = NULL;
    if (testsrv_run(c->node[0].srv.dir, (char *const *)argv) != 0) {
        fprintf(stderr, "rcluster: redis-cli --cluster create failed (see %s/run.log)\n",
                c->node[0].srv.dir);
        return -1;
    }
    if (rcluster_wait_ok(c, 60000) != 0) {
        fprintf(stderr, "rcluster: cluster did not reach cluster_state:ok\n");
        return -1;
    }
    int n = snprintf(c->url, sizeof c->url, "%s://:%s@", c->tls ? "rediss-cluster" : "redis-cluster",
                     RCLUSTER_PASSWORD);
    /* Seed with the first three nodes only: the rest is discovered. */
    for (int i = 0; i < 3; i++)
        n += snprintf(c->url + n, sizeof c->url - (size_t)n, "%s127.0.0.1:%d", i ? "," : "",
                      c->node[i].port);
    if (c->tls)
        snprintf(c->url + n, sizeof c->url - (size_t)n, "?tls_ca=%s&tls_cert=%s&tls_key=%s",
                 c->ca, c->client_cert, c->client_key);
    return 0;
}

void rcluster_stop(rcluster *c)
{
    for (int i = 0; i < RCLUSTER_MAX; i++)
        if (c->node[i].srv.dir[0])
            testsrv_stop(&c->node[i].srv);
}

int rcluster_is_master(rcluster *c, int i)
{
    if (!rcluster_alive(c, i))
        return -1;
    const char *args[] = {"ROLE", NULL};
    char *out = rcluster_cli(c, i, args);
    int r = !out || !*out ? -1 : strncmp(out, "master", 6) == 0 ? 1 : 0;
    free(out);
    return r;
}

int rcluster_replica_of(rcluster *c, int i)
{
    const char *args[] = {"INFO", "replication", NULL};
    char *out = rcluster_cli(c, i, args);
    if (!out)
        return -1;
    /* "slave0:ip=127.0.0.1,port=30004,state=online,..." */
    int found = -1;
    for (char *p = strstr(out, "\nslave"); p && found < 0; p = strstr(p + 1, "\nslave")) {
        char *q = strstr(p, ",port=");
        if (!q)
            break;
        int port = atoi(q + 6);
        for (int j = 0; j < c->n; j++)
            if (c->node[j].port == port)
                found = j;
    }
    free(out);
    return found;
}

int rcluster_wait_agree(rcluster *c, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        int live = -1;
        for (int i = 0; i < c->n && live < 0; i++)
            if (rcluster_alive(c, i))
                live = i;
        if (live < 0)
            return -1;
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", c->node[live].port);
        const char *args[] = {"--cluster", "check", addr, NULL};
        /* --cluster takes the address itself: no -h/-p needed, but they
         * do no harm. */
        char *out = rcluster_cli(c, live, args);
        int ok = out && strstr(out, "[OK] All nodes agree about slots configuration") &&
                 strstr(out, "[OK] All 16384 slots covered") && !strstr(out, "[WARNING]") &&
                 !strstr(out, "[ERR]");
        free(out);
        if (ok)
            return 0;
        usleep(300000);
    }
    return -1;
}

int rcluster_node_id(rcluster *c, int i, char *buf, size_t n)
{
    const char *args[] = {"CLUSTER", "MYID", NULL};
    char *out = rcluster_cli(c, i, args);
    if (!out)
        return -1;
    out[strcspn(out, "\r\n")] = 0;
    int ok = strlen(out) == 40;
    snprintf(buf, n, "%s", out);
    free(out);
    return ok ? 0 : -1;
}

long long rcluster_int(rcluster *c, int i, const char *const *args)
{
    char *out = rcluster_cli(c, i, args);
    if (!out)
        return -1;
    char *end;
    long long v = strtoll(out, &end, 10);
    int ok = end != out;
    free(out);
    return ok ? v : -1;
}

/* ---- Sentinel ---- */

char *rsentinel_cli(rsentinel *s, int i, const char *const *args)
{
    const char *tls[3] = {s->ca, s->client_cert, s->client_key};
    return cli(s->sentinel[i].port, RSENTINEL_PASSWORD, 0, s->tls ? tls : NULL, args);
}

static int start_sentinel(rcnode *nd, const char *name, int master_port, int quorum,
                          const char *const *tls)
{
    if (testsrv_mkdir(&nd->srv, name) != 0)
        return -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        nd->port = testsrv_free_port();
        char conf[400];
        snprintf(conf, sizeof conf, "%s/sentinel.conf", nd->srv.dir);
        FILE *f = fopen(conf, "w");
        if (!f)
            return -1;
        if (tls)
            fprintf(f,
                    "port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
                    "tls-ca-cert-file %s\ntls-replication yes\n",
                    nd->port, tls[1], tls[2], tls[0]);
        else
            fprintf(f, "port %d\n", nd->port);
        fprintf(f,
                "bind 127.0.0.1\ndir %s\nrequirepass %s\n"
                "sentinel monitor %s 127.0.0.1 %d %d\n"
                "sentinel auth-pass %s %s\n"
                "sentinel down-after-milliseconds %s 2000\n"
                "sentinel failover-timeout %s 10000\n",
                nd->srv.dir, RSENTINEL_PASSWORD, RSENTINEL_MASTER, master_port, quorum,
                RSENTINEL_MASTER,
                RCLUSTER_PASSWORD, RSENTINEL_MASTER, RSENTINEL_MASTER);
        fclose(f);
        const char *argv[] = {"redis-server", conf, "--sentinel", NULL};
        if (spawn_tied(&nd->srv, argv) != 0)
            return -1;
        if (testsrv_wait_tcp(&nd->srv, nd->port, 15000) == 0)
            return 0;
        testsrv_kill(&nd->srv, 1);
    }
    fprintf(stderr, "rsentinel: sentinel did not come up (see %s)\n", nd->srv.dir);
    return -1;
}

int rsentinel_master_port(rsentinel *s)
{
    for (int i = 0; i < 3; i++) {
        const char *args[] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", RSENTINEL_MASTER, NULL};
        char *out = rsentinel_cli(s, i, args);
        if (!out)
            continue;
        char *nl = strchr(out, '\n');
        int port = nl ? atoi(nl + 1) : -1;
        free(out);
        if (port > 0)
            return port;
    }
    return -1;
}

int rsentinel_start(rsentinel *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++)
        s->node[i].srv.pid = -1;
    for (int i = 0; i < 3; i++)
        s->sentinel[i].srv.pid = -1;
    if (start_node(&s->node[0], "rsent-master", 0, 0, NULL) != 0 ||
        start_node(&s->node[1], "rsent-replica", 0, s->node[0].port, NULL) != 0)
        return -1;
    /* Wait until the replica is in sync, so a failover can pick it. */
    long long end = now_ms() + 30000;
    const char *info[] = {"INFO", "replication", NULL};
    int synced = 0;
    while (!synced && now_ms() < end) {
        char *out = cli(s->node[1].port, RCLUSTER_PASSWORD, 0, NULL, info);
        synced = out && strstr(out, "master_link_status:up");
        free(out);
        if (!synced)
            usleep(100000);
    }
    if (!synced) {
        fprintf(stderr, "rsentinel: replica did not sync\n");
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "rsent-sentinel%d", i);
        if (start_sentinel(&s->sentinel[i], name, s->node[0].port, 2, NULL) != 0)
            return -1;
    }
    snprintf(s->url, sizeof s->url,
             "redis-sentinel://:%s@127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/%s?sentinel_password=%s",
             RCLUSTER_PASSWORD, s->sentinel[0].port, s->sentinel[1].port, s->sentinel[2].port,
             RSENTINEL_MASTER, RSENTINEL_PASSWORD);
    return 0;
}

int rsentinel_start_tls(rsentinel *s, const char *ca, const char *cert, const char *key,
                        const char *client_cert, const char *client_key)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++)
        s->node[i].srv.pid = -1;
    for (int i = 0; i < 3; i++)
        s->sentinel[i].srv.pid = -1;
    s->tls = 1;
    snprintf(s->ca, sizeof s->ca, "%s", ca);
    snprintf(s->client_cert, sizeof s->client_cert, "%s", client_cert);
    snprintf(s->client_key, sizeof s->client_key, "%s", client_key);
    const char *srv[3] = {ca, cert, key};
    if (start_node(&s->node[0], "rsent-tls-master", 0, 0, srv) != 0 ||
        start_sentinel(&s->sentinel[0], "rsent-tls-sentinel", s->node[0].port, 1, srv) != 0)
        return -1;
    snprintf(s->url, sizeof s->url,
             "rediss-sentinel://:%s@127.0.0.1:%d/%s?sentinel_password=%s&tls_ca=%s&tls_cert=%s"
             "&tls_key=%s",
             RCLUSTER_PASSWORD, s->sentinel[0].port, RSENTINEL_MASTER, RSENTINEL_PASSWORD, ca,
             client_cert, client_key);
    return 0;
}

void rsentinel_stop(rsentinel *s)
{
    for (int i = 0; i < 3; i++)
        if (s->sentinel[i].srv.dir[0])
            testsrv_stop(&s->sentinel[i].srv);
    for (int i = 0; i < 2; i++)
        if (s->node[i].srv.dir[0])
            testsrv_stop(&s->node[i].srv);
}

/* ---- conformance ---- */

static rcluster conf_cluster;

int conf_redis_cluster_setup(char *url, size_t n)
{
    if (rcluster_start(&conf_cluster, 3, 1) != 0) {
        rcluster_stop(&conf_cluster);
        return -1;
    }
    snprintf(url, n, "%s", conf_cluster.url);
    return 0;
}

void conf_redis_cluster_teardown(void)
{
    rcluster_stop(&conf_cluster);
}
