/* The fake provider server (fake_provider.c) as a process, for test suites
 * written in other languages (the Python module's pytest suite). It
 * prints "PORT <n>" once listening on 127.0.0.1, then answers one command
 * per stdin line with one stdout line:
 *
 *   count                      -> number of requests received so far
 *   reset                      -> "ok": forget requests, replies, faults
 *   fail <n> <status> <retry>  -> "ok": the next n requests get status
 *                                 (Retry-After: retry seconds when >= 0)
 *   reply <status> <body>      -> "ok": the next request gets this JSON
 *   cut <events>               -> "ok": the next stream is cut off
 *   delay <ms>                 -> "ok": answer every request this late
 *   lastpath                   -> path of the last request ("-" if none)
 *
 * End of input stops the server and exits; the process also dies with
 * its parent, so a crashed test leaves nothing behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "fake_provider.h"

int main(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* A client that gave up (a timeout test) must not kill the server
     * when the late answer is written to its closed socket. */
    signal(SIGPIPE, SIG_IGN);
    fp_server *s = fp_start();
    if (!s) {
        fprintf(stderr, "fake_provider_ctl: cannot start the server\n");
        return 1;
    }
    printf("PORT %d\n", fp_port(s));
    fflush(stdout);
    static char line[1 << 20];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        int a, b, c;
        if (strcmp(line, "count") == 0) {
            printf("%zu\n", fp_count(s));
        } else if (strcmp(line, "reset") == 0) {
            fp_reset(s);
            puts("ok");
        } else if (sscanf(line, "fail %d %d %d", &a, &b, &c) == 3) {
            fp_fail_next(s, a, b, c);
            puts("ok");
        } else if (sscanf(line, "reply %d %n", &a, &b) == 1) {
            fp_push_reply(s, a, "application/json", line + b, NULL);
            puts("ok");
        } else if (sscanf(line, "cut %d", &a) == 1) {
            fp_cut_stream_next(s, a);
            puts("ok");
        } else if (sscanf(line, "delay %d", &a) == 1) {
            fp_set_delay_ms(s, a);
            puts("ok");
        } else if (strcmp(line, "lastpath") == 0) {
            const fp_request *r = fp_last(s);
            puts(r ? r->path : "-");
        } else {
            printf("error: unknown command\n");
        }
        fflush(stdout);
    }
    fp_stop(s);
    return 0;
}
