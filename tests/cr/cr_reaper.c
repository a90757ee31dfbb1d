/* Runs a test script as a child subreaper. CRIU restores a process as a
 * child of `criu restore -d`, which then exits; the restored process is
 * re-parented to the nearest subreaper, or to PID 1. On machines whose
 * PID 1 does not reap (container and VM init shims), a killed restored
 * process stays a zombie, keeps its PID, and the next restore of the same
 * images fails with "File exists". This wrapper reaps every orphan of the
 * test, forwards SIGTERM/SIGINT to it, and exits with its status.
 * usage: cr_reaper PROGRAM [ARGS...] */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t g_child;

static void forward(int sig)
{
    if (g_child > 0)
        kill(g_child, sig);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cr_reaper PROGRAM [ARGS...]\n");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "cr_reaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
        return 2;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "cr_reaper: fork: %s\n", strerror(errno));
        return 2;
    }
    if (child == 0) {
        execvp(argv[1], argv + 1);
        fprintf(stderr, "cr_reaper: cannot run %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    g_child = child;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int status = 0, child_status = -1;
    for (;;) {
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nobody left */
        }
        if (pid == child)
            child_status = status;
        if (child_status != -1) {
            /* The test is over; reap what is already dead, leave the rest. */
            while (waitpid(-1, &status, WNOHANG) > 0)
                ;
            break;
        }
    }
    if (WIFEXITED(child_status))
        return WEXITSTATUS(child_status);
    if (WIFSIGNALED(child_status))
        return 128 + WTERMSIG(child_status);
    return 1;
}
