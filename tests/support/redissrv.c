#include "redissrv.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_in(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd '%s' && %s >>openssl.log 2>&1", dir, cmd);
    int rc = system(full);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

/* A CA, a server certificate for localhost/127.0.0.1, a client
 * certificate, and an unrelated CA (for the "wrong CA" test). EC keys:
 * much faster to make than RSA. */
static int make_certs(redissrv *r)
{
    const char *d = r->srv.dir;
    char san[400];
    snprintf(san, sizeof san, "%s/san.ext", d);
    FILE *f = fopen(san, "w");
    if (!f)
        return -1;
    fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\n", f);
    fclose(f);
    static const char *const cmds[] = {
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.crt -days 2 -subj /CN=llmc-test-ca",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj /CN=localhost",
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out server.crt -days 2 -extfile san.ext",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout client.key -out client.csr -subj /CN=llmc-test-client",
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out client.crt -days 2",
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout other.key -out other-ca.crt -days 2 -subj /CN=llmc-other-ca",
        NULL};
    for (int i = 0; cmds[i]; i++)
        if (run_in(d, cmds[i]) != 0) {
            fprintf(stderr, "redissrv: certificate step failed: %s (see %s/openssl.log)\n",
                    cmds[i], d);
            return -1;
        }
    snprintf(r->ca, sizeof r->ca, "%s/ca.crt", d);
    snprintf(r->cert, sizeof r->cert, "%s/server.crt", d);
    snprintf(r->key, sizeof r->key, "%s/server.key", d);
    snprintf(r->client_cert, sizeof r->client_cert, "%s/client.crt", d);
    snprintf(r->client_key, sizeof r->client_key, "%s/client.key", d);
    snprintf(r->other_ca, sizeof r->other_ca, "%s/other-ca.crt", d);
    return 0;
}

/* Like testsrv_spawn, but the server is killed when the process that
 * started it dies: Check ends a failed test's child with _exit, so no
 * cleanup code runs there, and a server started by that test would
 * otherwise outlive the suite. */
static int spawn_tied(redissrv *r, const char *const *argv)
{
    const char *exe = testsrv_which(argv[0]);
    if (!exe)
        return -1;
    char exe_copy[512], log[600];
    snprintf(exe_copy, sizeof exe_copy, "%s", exe);
    snprintf(log, sizeof log, "%s/%s.log", r->srv.dir, r->srv.name);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0); /* the parent died before prctl */
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
        if (chdir(r->srv.dir) != 0)
            _exit(126);
        setpgid(0, 0);
        execv(exe_copy, (char *const *)argv);
        _exit(127);
    }
    r->srv.pid = pid;
    return 0;
}

static int spawn(redissrv *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    const char *tcp[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--requirepass", REDISSRV_PASSWORD, "--user",
                         REDISSRV_ACL_USER, "on", ">" REDISSRV_ACL_PASS, "~*", "&*", "+@all",
                         "--user", REDISSRV_RO_USER, "on", ">" REDISSRV_RO_PASS, "~*", "+get",
                         "+ping", "+auth", "+select", NULL};
    const char *tls[] = {"redis-server", "--port", "0", "--tls-port", port, "--bind",
                         "127.0.0.1", "--save", "", "--appendonly", "no", "--tls-cert-file",
                         r->cert, "--tls-key-file", r->key, "--tls-ca-cert-file", r->ca,
                         "--tls-auth-clients", "yes", NULL};
    const char *uni[] = {"redis-server", "--port", "0", "--unixsocket", r->sock,
                         "--unixsocketperm", "700", "--save", "", "--appendonly", "no", NULL};
    const char **argv = r->kind == REDISSRV_TCP ? tcp : r->kind == REDISSRV_TLS ? tls : uni;
    if (spawn_tied(r, argv) != 0)
        return -1;
    int rc = r->kind == REDISSRV_UNIX ? testsrv_wait_unix(&r->srv, r->sock, 10000)
                                      : testsrv_wait_tcp(&r->srv, r->port, 10000);
    if (rc != 0)
        fprintf(stderr, "redissrv: redis-server did not come up (see %s/%s.log)\n", r->srv.dir,
                r->srv.name);
    return rc;
}

int redissrv_start(redissrv *r, redissrv_kind kind)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    const char *names[] = {"redis-tcp", "redis-tls", "redis-unix"};
    if (testsrv_mkdir(&r->srv, names[kind]) != 0)
        return -1;
    if (kind == REDISSRV_TLS && make_certs(r) != 0)
        return -1;
    if (kind == REDISSRV_UNIX)
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->srv.dir);
    else
        r->port = testsrv_free_port();
    switch (kind) {
    case REDISSRV_TCP:
        snprintf(r->url, sizeof r->url, "redis://:%s@127.0.0.1:%d", REDISSRV_PASSWORD, r->port);
        break;
    case REDISSRV_TLS:
        snprintf(r->url, sizeof r->url,
                 "rediss://127.0.0.1:%d?tls_ca=%s&tls_cert=%s&tls_key=%s", r->port, r->ca,
                 r->client_cert, r->client_key);
        break;
    case REDISSRV_UNIX:
        snprintf(r->url, sizeof r->url, "unix://%s", r->sock);
        break;
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if (spawn(r) == 0)
            return 0;
        /* The free port may have been taken meanwhile: try another. */
        testsrv_kill(&r->srv, 1);
        if (kind == REDISSRV_UNIX)
            return -1;
        int old = r->port;
        r->port = testsrv_free_port();
        char from[16], to[16];
        snprintf(from, sizeof from, ":%d", old);
        snprintf(to, sizeof to, ":%d", r->port);
        char *p = strstr(r->url, from);
        if (p && strlen(from) == strlen(to))
            memcpy(p, to, strlen(to));
        else
            return -1;
    }
    return -1;
}

void redissrv_kill(redissrv *r)
{
    testsrv_kill(&r->srv, 1);
    if (r->kind == REDISSRV_UNIX)
        unlink(r->sock);
}

int redissrv_restart(redissrv *r)
{
    return spawn(r);
}

void redissrv_stop(redissrv *r)
{
    testsrv_stop(&r->srv);
}

char *redissrv_cli(redissrv *r, const char *const *args)
{
    char cmd[4096];
    int n;
    const char *cli = testsrv_which("redis-cli");
    if (!cli)
        return NULL;
    switch (r->kind) {
    case REDISSRV_TCP:
        n = snprintf(cmd, sizeof cmd, "'%s' -h 127.0.0.1 -p %d -a '%s' --no-auth-warning", cli,
                     r->port, REDISSRV_PASSWORD);
        break;
    case REDISSRV_TLS:
        n = snprintf(cmd, sizeof cmd,
                     "'%s' -h 127.0.0.1 -p %d --tls --cacert '%s' --cert '%s' --key '%s'", cli,
                     r->port, r->ca, r->client_cert, r->client_key);
        break;
    default:
        n = snprintf(cmd, sizeof cmd, "'%s' -s '%s'", cli, r->sock);
        break;
    }
    for (; *args && n > 0 && (size_t)n < sizeof cmd; args++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " '%s'", *args);
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t got;
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

long redissrv_calls(redissrv *r, const char *cmd)
{
    const char *args[] = {"INFO", "commandstats", NULL};
    char *out = redissrv_cli(r, args);
    if (!out || !strstr(out, "# Commandstats")) {
        free(out);
        return -1;
    }
    char pat[64];
    snprintf(pat, sizeof pat, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(out, pat);
    long n = p ? strtol(p + strlen(pat), NULL, 10) : 0;
    free(out);
    return n;
}

int redissrv_reset_calls(redissrv *r)
{
    const char *args[] = {"CONFIG", "RESETSTAT", NULL};
    char *out = redissrv_cli(r, args);
    int ok = out && strncmp(out, "OK", 2) == 0;
    free(out);
    return ok ? 0 : -1;
}

int redissrv_raw_int(redissrv *r, long long *out, const char *fmt, ...)
{
    redisContext *c = r->kind == REDISSRV_UNIX ? redisConnectUnix(r->sock)
                                               : redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    int rc = -1;
    if (r->kind == REDISSRV_TCP) {
        redisReply *a = redisCommand(c, "AUTH %s", REDISSRV_PASSWORD);
        if (!a) {
            redisFree(c);
            return -1;
        }
        freeReplyObject(a);
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep && rep->type == REDIS_REPLY_INTEGER) {
        *out = rep->integer;
        rc = 0;
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return rc;
}

const char *redissrv_conformance_setup(void **state)
{
    redissrv *r = calloc(1, sizeof *r);
    if (!r || redissrv_start(r, REDISSRV_TCP) != 0) {
        if (r)
            redissrv_stop(r);
        free(r);
        return NULL;
    }
    *state = r;
    return r->url;
}

void redissrv_conformance_teardown(void *state)
{
    redissrv *r = state;
    if (!r)
        return;
    redissrv_stop(r);
    free(r);
}
