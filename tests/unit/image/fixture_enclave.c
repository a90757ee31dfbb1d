/* A minimal valid enclave for the image tests: freestanding static-PIE with
 * initialised pointers (hence R_X86_64_RELATIVE relocations), read-only
 * data, writable data and the .spm_meta section the runtime reserves. It is
 * never run; only laid out, measured and signed. */
__asm__(".pushsection .spm_meta,\"\",@progbits\n.zero 4096\n.popsection");

static int counter = 5;
static const char *const greetings[] = {"hello", "enclave"};
int *counter_pointer = &counter;
const char *const *greeting_pointer = greetings;
char scratch[8192]; /* .bss: measured zero pages past p_filesz */

long fixture_entry(long selector);

long fixture_entry(long selector)
{
    scratch[selector & 4095] = (char)selector;
    return *counter_pointer + greeting_pointer[selector & 1][0];
}
