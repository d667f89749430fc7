/* Test support: HTTP through the curl command (a real client in another
 * process, as a user would run it): one request's status, headers and
 * body read back from files. For the Check suites only. */
#ifndef LLMC_CURLCMD_H
#define LLMC_CURLCMD_H

#include <stddef.h>
#include <sys/types.h>

typedef struct cc_resp {
    int status; /* HTTP status, 0 if none */
    int curl_exit;
    char *headers;
    char *body; /* never NULL after cc_finish */
    size_t body_len;
} cc_resp;

void cc_free(cc_resp *r);

/* Header value (case-insensitive name), copied into a static buffer;
 * NULL if absent. The last header block counts. */
const char *cc_hdr(const cc_resp *r, const char *name);

/* Check that the x-llmcache-status of response r (a cc_resp *) is
 * want, with the body in the failure message. */
#define ck_status(r, want)                                                           \
    do {                                                                             \
        const char *got_ = cc_hdr((r), "x-llmcache-status");                         \
        ck_assert_msg(got_ && strcmp(got_, (want)) == 0,                             \
                      "x-llmcache-status %s, wanted %s (HTTP %d): %.400s",           \
                      got_ ? got_ : "(none)", (want), (r)->status, (r)->body);       \
    } while (0)

/* A curl running in the background. */
typedef struct cc_call {
    pid_t pid;
    char hfile[300], bfile[300], cfile[300];
} cc_call;

/* Start one curl, its files in dir. body: sent as a JSON POST (method
 * still given with -X); headers: NULL-terminated "Name: value" list or
 * NULL; max_time: curl's --max-time (NULL: "30"). */
void cc_start(cc_call *c, const char *dir, const char *method, const char *url, const char *body,
              const char *const *headers, const char *max_time);

/* Wait for the curl and read its answer into r (files removed). */
void cc_finish(cc_call *c, cc_resp *r);

#endif
