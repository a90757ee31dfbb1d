/* The allocator and helpers the trusted runtime provides (see spm/trts.h). */
#ifndef SPM_TRUSTED_STDLIB_H
#define SPM_TRUSTED_STDLIB_H
#include "spm/trts.h"
#endif
