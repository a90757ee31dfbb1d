/* spmd as a child of a test (spmd_child.h). */
#include "spmd_child.h"

#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int spm_test_spmd_start(const char *spmd_exe, const char *platform, const char *state,
                        const char *socket, const char *me_image, const char *extra,
                        const char *log_path, struct spm_test_spmd *out)
{
    int pipe_fds[2];
    if (pipe(pipe_fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(pipe_fds[1], 1);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0)
            dup2(log, 2);
        close(pipe_fds[0]);
        const char *argv[] = {spmd_exe, "--platform", platform, "--state", state, "--socket",
                              socket,   "--me",       me_image, extra,     NULL};
        execv(spmd_exe, (char *const *)argv);
        _exit(127);
    }
    close(pipe_fds[1]);
    char line[512];
    size_t n = 0;
    bool exiting = false; /* EOF: spmd stopped before it was ready */
    struct pollfd p = {.fd = pipe_fds[0], .events = POLLIN};
    while (n < sizeof(line) - 1) {
        if (poll(&p, 1, 20000) <= 0)
            break; /* not ready in time */
        ssize_t got = read(pipe_fds[0], line + n, 1);
        if (got <= 0) {
            exiting = true;
            break;
        }
        if (line[n++] == '\n')
            break;
    }
    line[n] = 0;
    close(pipe_fds[0]);
    unsigned long base = 0, size = 0;
    const char *elrange = strstr(line, "ELRANGE ");
    if (!strstr(line, "spmd: ready on") || !elrange ||
        sscanf(elrange, "ELRANGE %lx+%lx", &base, &size) != 2) {
        int status = 0;
        if (!exiting)
            kill(pid, SIGKILL); /* not ready in time, or said something else */
        waitpid(pid, &status, 0);
        if (!exiting)
            return -1;
        return WIFEXITED(status) ? (WEXITSTATUS(status) ? WEXITSTATUS(status) : 255) : 254;
    }
    out->pid = pid;
    out->elrange_base = base;
    out->elrange_size = size;
    return 0;
}

int spm_test_spmd_stop(struct spm_test_spmd *spmd, int sig)
{
    if (spmd->pid <= 0)
        return -1;
    kill(spmd->pid, sig);
    int status = 0;
    if (waitpid(spmd->pid, &status, 0) != spmd->pid)
        status = -1;
    spmd->pid = 0;
    return status;
}
