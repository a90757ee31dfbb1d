/* The checkpoint engine (filled in by the issue-3 work). */
#include "trts_internal.h"
