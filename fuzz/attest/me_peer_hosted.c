/* The ME-to-ME protocol (src/enclaves/me/me_peer.c) compiled hosted for
 * the me_peer harness, included for the same reason as me_enclave_hosted.c:
 * every input starts with no peer sessions (g_peer is static). */
#include "me_peer.c"

#include "me_hosted.h"

void fuzz_me_peer_reset(void)
{
    spm_wipe(&g_peer, sizeof(g_peer));
}
