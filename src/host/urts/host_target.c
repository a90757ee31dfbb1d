/* Which host this process's enclaves live on: the SGX platform directory
 * an import rebuilds ELRANGE on and the spmd socket every ME relay goes
 * to. At load both come from the process (its options and environment),
 * but a process that CRIU restored on another host still carries the
 * source host's environment; the restoring side names the new host in its
 * "resume" request (control.h) and the process adopts those values here,
 * for the import and everything after it. Readers are the control thread
 * and every enclave thread relaying to the ME, so the values are copied
 * out under a mutex, never handed out by pointer. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "common/log.h"
#include "platform/sim/sim.h"
#include "spm/abi/me_abi.h"
#include "urts_internal.h"

static struct {
    pthread_mutex_t lock;
    char platform[PATH_MAX];                                /* "" until adopted */
    char spmd[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" until adopted */
} g_host = {.lock = PTHREAD_MUTEX_INITIALIZER};

int spm_urts_adopt_host(const char *platform_dir, const char *spmd_socket)
{
    bool set_platform = platform_dir && platform_dir[0];
    bool set_spmd = spmd_socket && spmd_socket[0];
    /* Checked before anything changes: a refused request adopts nothing. */
    if (set_platform && (platform_dir[0] != '/' || strlen(platform_dir) >= sizeof(g_host.platform)))
        return -EINVAL;
    if (set_spmd && spmd_socket[0] != '/')
        return -EINVAL;
    if (set_spmd && strlen(spmd_socket) >= sizeof(g_host.spmd))
        return -ENAMETOOLONG; /* me_relay connects by sun_path */
    pthread_mutex_lock(&g_host.lock);
    if (set_platform && strcmp(g_host.platform, platform_dir) != 0) {
        spm_info("this process now uses the SGX platform at %s", platform_dir);
        snprintf(g_host.platform, sizeof(g_host.platform), "%s", platform_dir);
    }
    if (set_spmd && strcmp(g_host.spmd, spmd_socket) != 0) {
        spm_info("this process now reaches the Migration Enclave through spmd at %s", spmd_socket);
        snprintf(g_host.spmd, sizeof(g_host.spmd), "%s", spmd_socket);
    }
    pthread_mutex_unlock(&g_host.lock);
    return 0;
}

void spm_urts_spmd_socket(char *path, size_t size)
{
    pthread_mutex_lock(&g_host.lock);
    const char *env = getenv(SPM_SPMD_SOCKET_ENV);
    const char *chosen = g_host.spmd[0]  ? g_host.spmd
                         : env && env[0] ? env
                                         : SPM_SPMD_SOCKET_DEFAULT;
    snprintf(path, size, "%s", chosen);
    pthread_mutex_unlock(&g_host.lock);
}

void spm_urts_platform_dir(const char *recorded, char *dir, size_t size)
{
    pthread_mutex_lock(&g_host.lock);
    /* After a migration the recorded directory may be the source host's;
     * $SPM_PLATFORM set now (an old convention) still beats it. */
    const char *env = getenv(SPM_PLATFORM_ENV);
    const char *chosen = g_host.platform[0] ? g_host.platform
                         : env && env[0]    ? env
                                            : spm_sim_platform_dir(recorded);
    snprintf(dir, size, "%s", chosen);
    pthread_mutex_unlock(&g_host.lock);
}

void spm_urts_load_platform_dir(const char *explicit_dir, char *dir, size_t size)
{
    pthread_mutex_lock(&g_host.lock);
    /* An enclave loaded after a migration belongs on this host too, even
     * if the application names the directory it was configured with. */
    const char *chosen = g_host.platform[0] ? g_host.platform : spm_sim_platform_dir(explicit_dir);
    snprintf(dir, size, "%s", chosen);
    pthread_mutex_unlock(&g_host.lock);
}
