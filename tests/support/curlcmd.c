/* Test support: HTTP through the curl command (support/curlcmd.h). */
#include "curlcmd.h"

#include "proc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void cc_free(cc_resp *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *cc_hdr(const cc_resp *r, const char *name)
{
    static char val[512];
    if (!r->headers)
        return NULL;
    const char *block = r->headers, *p;
    while ((p = strstr(block, "\r\n\r\n")) && p[4])
        block = p + 4;
    size_t nl = strlen(name);
    for (p = block; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= sizeof val)
                n = sizeof val - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            return val;
        }
    }
    return NULL;
}

static int call_seq;

void cc_start(cc_call *c, const char *dir, const char *method, const char *url, const char *body,
              const char *const *headers, const char *max_time)
{
    int n = ++call_seq;
    snprintf(c->hfile, sizeof c->hfile, "%s/h%d", dir, n);
    snprintf(c->bfile, sizeof c->bfile, "%s/b%d", dir, n);
    snprintf(c->cfile, sizeof c->cfile, "%s/c%d", dir, n);
    char reqfile[300];
    snprintf(reqfile, sizeof reqfile, "%s/r%d", dir, n);
    char *argv[64];
    int a = 0;
    argv[a++] = "curl";
    argv[a++] = "-s";
    argv[a++] = "-N";
    argv[a++] = "-X";
    argv[a++] = (char *)method;
    argv[a++] = "-D";
    argv[a++] = c->hfile;
    argv[a++] = "-o";
    argv[a++] = c->bfile;
    argv[a++] = "-w";
    argv[a++] = "%{http_code}";
    argv[a++] = "--max-time";
    argv[a++] = (char *)(max_time ? max_time : "30");
    char dataarg[320];
    if (body) {
        proc_spit(reqfile, body);
        snprintf(dataarg, sizeof dataarg, "@%s", reqfile);
        argv[a++] = "--data-binary";
        argv[a++] = dataarg;
        argv[a++] = "-H";
        argv[a++] = "Content-Type: application/json";
    }
    for (int i = 0; headers && headers[i] && a < 60; i++) {
        argv[a++] = "-H";
        argv[a++] = (char *)headers[i];
    }
    argv[a++] = (char *)url;
    argv[a] = NULL;
    c->pid = proc_spawn(argv, c->cfile, NULL);
    ck_assert_int_gt(c->pid, 0);
}

void cc_finish(cc_call *c, cc_resp *r)
{
    memset(r, 0, sizeof *r);
    r->curl_exit = proc_wait(c->pid);
    char *code = proc_slurp(c->cfile, NULL);
    r->status = code ? atoi(code) : 0;
    free(code);
    r->headers = proc_slurp(c->hfile, NULL);
    r->body = proc_slurp(c->bfile, &r->body_len);
    if (!r->body)
        r->body = strdup("");
    unlink(c->hfile);
    unlink(c->bfile);
    unlink(c->cfile);
}
