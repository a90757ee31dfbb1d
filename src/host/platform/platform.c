/* Backend selection. Only the software backend exists today; a hardware
 * backend registers here beside it. */
#include "platform.h"

#include <stdlib.h>
#include <string.h>

const struct spm_platform_ops *spm_platform_backend(const char *name)
{
    if (!name)
        name = getenv("SPM_BACKEND");
    if (!name || strcmp(name, "sim") == 0)
        return &spm_sim_platform_ops;
    return NULL;
}
