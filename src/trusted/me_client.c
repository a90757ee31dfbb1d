/* The client side of the Migration Enclave protocol (filled in by the issue-3 work). */
#include "me_client.h"
