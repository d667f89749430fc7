#include "testsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int testsrv_free_port(void)
{
    /* Pick a random port in a wide range and check that it binds. Asking
     * the kernel for port 0 tends to hand neighbouring suites the same
     * recently freed port; a private PRNG seeded per process spreads
     * parallel test processes over 30000 ports. */
    static __thread unsigned long long x;
    if (!x) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = ((unsigned long long)getpid() << 32) ^ (unsigned long long)ts.tv_nsec ^ 0x9E3779B97F4A7C15ull;
    }
    for (int attempt = 0; attempt < 200; attempt++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int port = 20000 + (int)(x % 30000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((unsigned short)port);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        /* the cluster bus uses port + 10000: keep that free too */
        if (ok && port + 10000 < 65536)
            return port;
    }
    return -1;
}

int testsrv_mkdir(testsrv *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->pid = -1;
    snprintf(s->name, sizeof s->name, "%s", name);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/llmc-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    return mkdtemp(s->dir) ? 0 : -1;
}

const char *testsrv_which(const char *prog)
{
    static __thread char buf[512];
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? prog : NULL;
    const char *path = getenv("PATH");
    char all[4096];
    snprintf(all, sizeof all, "%s:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin",
             path ? path : "");
    for (char *save = NULL, *d = strtok_r(all, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(buf, sizeof buf, "%s/%s", d, prog);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static pid_t spawn(const char *dir, const char *logname, char *const argv[])
{
    const char *exe = testsrv_which(argv[0]);
    if (!exe) {
        fprintf(stderr, "testsrv: %s not found in PATH\n", argv[0]);
        return -1;
    }
    char exe_copy[512];
    snprintf(exe_copy, sizeof exe_copy, "%s", exe);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (dir) {
            char log[600];
            snprintf(log, sizeof log, "%s/%s.log", dir, logname);
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            if (chdir(dir) != 0)
                _exit(126);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        setpgid(0, 0);
        execv(exe_copy, argv);
        _exit(127);
    }
    return pid;
}

int testsrv_spawn(testsrv *s, char *const argv[])
{
    s->pid = spawn(s->dir, s->name, argv);
    return s->pid > 0 ? 0 : -1;
}

static int alive(testsrv *s)
{
    if (s->pid <= 0)
        return 0;
    int st;
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
        s->pid = -1;
        return 0;
    }
    return 1;
}

int testsrv_wait_tcp(testsrv *s, int port, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (s && !alive(s))
            return -1;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((unsigned short)port);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) {
            /* Something answers; make sure it is our server and not another
             * suite's that already held the port (ours would then have
             * failed to bind and be exiting). */
            if (s) {
                usleep(100000);
                if (!alive(s))
                    return -1;
                s->port = port;
            }
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

int testsrv_wait_unix(testsrv *s, const char *path, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (s && !alive(s))
            return -1;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(20000);
    }
    return -1;
}

void testsrv_kill(testsrv *s, int hard)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, hard ? SIGKILL : SIGTERM);
    long long end = now_ms() + 3000;
    int st;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    s->pid = -1;
}

static void rm_rf(const char *dir)
{
    if (!dir[0] || strncmp(dir, "/tmp/", 5) != 0 ? (strstr(dir, "/llmc-") == NULL) : 0)
        return;
    char *argv[] = {"rm", "-rf", (char *)dir, NULL};
    testsrv_run(NULL, argv);
}

void testsrv_stop(testsrv *s)
{
    testsrv_kill(s, 0);
    if (s->dir[0] && !getenv("LLMC_TEST_KEEP"))
        rm_rf(s->dir);
    s->dir[0] = 0;
}

int testsrv_run(const char *dir, char *const argv[])
{
    pid_t pid = spawn(dir, "run", argv);
    if (pid < 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
