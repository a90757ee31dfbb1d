/* Runs one benchmark part as a child subreaper. `criu restore -d` leaves
 * the restored process to the nearest subreaper (else PID 1, which on
 * container and VM init shims may never reap); with this wrapper a killed
 * restored process is reaped at once instead of lingering as a zombie that
 * keeps its PID. SIGTERM and SIGINT are passed on to the part, and the
 * part's exit status is returned once it and every orphan it left are gone
 * or still running on their own (the part ends those it started).
 * usage: bench_reaper PROGRAM [ARGS...] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t g_child;

static void forward(int sig)
{
    if (g_child > 0)
        kill((pid_t)g_child, sig);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_reaper PROGRAM [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("bench_reaper: PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("bench_reaper: fork");
        return 1;
    }
    if (child == 0) {
        execvp(argv[1], argv + 1);
        fprintf(stderr, "bench_reaper: cannot run %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    g_child = child;
    struct sigaction sa = {.sa_handler = forward};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int status = 1;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        if (pid == child) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
    }
    /* Orphans that already exited are reaped; live ones are left alone. */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return status;
}
