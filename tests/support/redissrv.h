/* Test support for the Redis backend: start redis-server instances on
 * free loopback ports (plain TCP with requirepass and an ACL user, TLS
 * with certificates made by the `openssl` command, a Unix socket), and
 * look at them from outside (raw hiredis connection, redis-cli). */
#ifndef LLMC_REDISSRV_H
#define LLMC_REDISSRV_H

#include "testsrv.h"

#define REDISSRV_PASSWORD "s3cret-Pa55"
#define REDISSRV_ACL_USER "alice"
#define REDISSRV_ACL_PASS "alice-pw-42"
/* An ACL user that may only read (GET, PING, SELECT). */
#define REDISSRV_RO_USER "reader"
#define REDISSRV_RO_PASS "reader-pw-7"

typedef enum redissrv_kind {
    REDISSRV_TCP = 0,  /* requirepass + ACL user */
    REDISSRV_TLS = 1,  /* TLS only, client certificates required */
    REDISSRV_UNIX = 2  /* Unix socket, no password */
} redissrv_kind;

typedef struct redissrv {
    testsrv srv;
    redissrv_kind kind;
    int port;              /* TCP or TLS port */
    char sock[300];        /* unix socket path */
    /* TLS material (in srv.dir) */
    char ca[300], cert[300], key[300], client_cert[300], client_key[300], other_ca[300];
    char url[1400];        /* a URL that works (with password / certs) */
} redissrv;

/* Start a server of the given kind. 0 on success. */
int redissrv_start(redissrv *r, redissrv_kind kind);
/* Kill it hard (SIGKILL) but keep the directory; restart on the same
 * port/socket with redissrv_restart. */
void redissrv_kill(redissrv *r);
int redissrv_restart(redissrv *r);
void redissrv_stop(redissrv *r);

/* Run a command through redis-cli against the server and return its
 * output (malloc'd, caller frees) or NULL. args are appended to the
 * connection arguments. */
char *redissrv_cli(redissrv *r, const char *const *args);

/* Calls of one command (lower case: "mget") the server counted since it
 * started or since redissrv_reset_calls (INFO commandstats): 0 for a
 * command never called, -1 when the server did not answer. */
long redissrv_calls(redissrv *r, const char *cmd);
/* Zero the server's command counts (CONFIG RESETSTAT). 0 on success. */
int redissrv_reset_calls(redissrv *r);

/* One command over a raw hiredis connection (plain TCP/unix servers
 * only), returning an integer reply in *out. 0 on success. */
int redissrv_raw_int(redissrv *r, long long *out, const char *fmt, ...);

/* Conformance suite glue: start a TCP server and return its URL; stop it. */
const char *redissrv_conformance_setup(void **state);
void redissrv_conformance_teardown(void *state);

#endif
