/* Test support: files read and written whole, child processes with
 * redirected output (support/proc.h). */
#include "proc.h"

#include "testsrv.h"
#include "llmc_config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *proc_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *b = malloc(cap);
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

void proc_spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

void proc_copy(const char *from, const char *to)
{
    char *text = proc_slurp(from, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", from);
    proc_spit(to, text);
    free(text);
}

static void redirect(const char *path, int to)
{
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, to);
    close(fd);
}

pid_t proc_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        redirect(out_path, 1);
        redirect(err_path, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

int proc_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int proc_run(char *const argv[], const char *out_path, const char *err_path)
{
    return proc_wait(proc_spawn(argv, out_path, err_path));
}

int proc_serve(testsrv *s, int port, const char *config)
{
    char cfg[400];
    snprintf(cfg, sizeof cfg, "%s/proxy.json", s->dir);
    proc_spit(cfg, config);
    char *argv[] = {LLMC_BUILD_ROOT "/cli/llmcache", "serve", "--config", cfg, NULL};
    if (testsrv_spawn(s, argv) != 0)
        return -1;
    return testsrv_wait_tcp(s, port, 10000);
}

int proc_npm_ready(const char *prefix, const char *name, const char *spec, const char *logdir)
{
    char pkg[512];
    snprintf(pkg, sizeof pkg, "%s/node_modules/%s/package.json", prefix, name);
    struct stat st;
    if (stat(pkg, &st) == 0)
        return 1;
    if (!testsrv_which("node") || !testsrv_which("npm"))
        return 0;
    mkdir(prefix, 0755);
    char *argv[] = {"npm", "install", "--prefix", (char *)prefix, "--no-audit", "--no-fund",
                    "--no-save", "--loglevel=error", (char *)spec, NULL};
    int rc = testsrv_run(logdir, argv);
    return rc == 0 && stat(pkg, &st) == 0;
}
