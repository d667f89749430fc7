/* Test support: start real servers (redis-server, memcached, ...) on free
 * loopback ports, wait until they accept connections, stop them. Used by
 * the Check suites; never assumes a server is already running. */
#ifndef LLMC_TESTSRV_H
#define LLMC_TESTSRV_H

#include <sys/types.h>

typedef struct testsrv {
    pid_t pid;
    int port;            /* TCP port, 0 if none */
    char dir[256];       /* private temporary directory (removed on stop) */
    char name[64];
} testsrv;

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int testsrv_free_port(void);

/* Make a private temporary directory for a server (certs, sockets,
 * data). Returns 0 on success. */
int testsrv_mkdir(testsrv *s, const char *name);

/* Start argv[0] (looked up in PATH) with argv, stdout/stderr to
 * <dir>/<name>.log. Returns 0 on success. s->dir must be set (testsrv_mkdir). */
int testsrv_spawn(testsrv *s, char *const argv[]);

/* Wait until 127.0.0.1:port accepts a TCP connection (or a Unix socket
 * path when port <= 0 and path != NULL). Returns 0 when ready, -1 after
 * timeout_ms or if the process died. */
int testsrv_wait_tcp(testsrv *s, int port, int timeout_ms);
int testsrv_wait_unix(testsrv *s, const char *path, int timeout_ms);

/* Send SIGKILL (hard=1) or SIGTERM and reap. Keeps dir. */
void testsrv_kill(testsrv *s, int hard);
/* Stop (SIGTERM, then SIGKILL after 3 s) and remove the directory. */
void testsrv_stop(testsrv *s);

/* Run a command to completion (argv[0] looked up in PATH), output to
 * the log file in dir when dir != NULL. Returns its exit status or -1. */
int testsrv_run(const char *dir, char *const argv[]);

/* Path of a program in PATH or the usual sbin dirs; NULL if not found. */
const char *testsrv_which(const char *prog);

#endif
