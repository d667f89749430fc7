/* Test support: files read and written whole, and child processes with
 * their output redirected to files. For the Check suites only (writing
 * a file that cannot be opened fails the running test). */
#ifndef LLMC_PROC_H
#define LLMC_PROC_H

#include "testsrv.h"

#include <stddef.h>
#include <sys/types.h>

/* The whole file, NUL-terminated, in malloc'd memory (its length into
 * *len when len != NULL); NULL if it cannot be opened. */
char *proc_slurp(const char *path, size_t *len);

/* Write text as the whole file path (ck_assert that it can be opened). */
void proc_spit(const char *path, const char *text);

/* Copy the file from to the file to (ck_assert that from can be read);
 * e.g. a node script from the source tree next to its node_modules. */
void proc_copy(const char *from, const char *to);

/* Start argv[0] (looked up in PATH) with argv, stdout to out_path and
 * stderr to err_path (either NULL: inherited). Returns the child's pid. */
pid_t proc_spawn(char *const argv[], const char *out_path, const char *err_path);

/* Reap pid: its exit status, or 128 + the signal that ended it. */
int proc_wait(pid_t pid);

/* proc_spawn, then proc_wait. */
int proc_run(char *const argv[], const char *out_path, const char *err_path);

/* The build's `llmcache serve --config <s->dir>/proxy.json` as s, config
 * written there first; waits up to 10 s until 127.0.0.1:port (the
 * config's "listen") accepts. 0 when it does, -1 otherwise (s->dir must
 * be set: testsrv_mkdir). */
int proc_serve(testsrv *s, int port, const char *config);

/* 1 when the npm package `name` is installed under prefix (its
 * node_modules/<name>/package.json exists), installing spec ("openai@4")
 * there first when it is not (node and npm needed; npm's output to a log
 * in logdir). Kept in the build dir: later runs need no network. */
int proc_npm_ready(const char *prefix, const char *name, const char *spec, const char *logdir);

#endif
