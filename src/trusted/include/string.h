/* The string functions the trusted runtime provides (see spm/trts.h). */
#ifndef SPM_TRUSTED_STRING_H
#define SPM_TRUSTED_STRING_H
#include "spm/trts.h"
#endif
