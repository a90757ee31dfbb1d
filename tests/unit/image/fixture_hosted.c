/* A normal hosted program / shared library, with a .spm_meta section so
 * that what the image tests see refused is its dependence on libc (DT_NEEDED)
 * or its interpreter (PT_INTERP), not a missing section. */
#include <stdio.h>

__asm__(".pushsection .spm_meta,\"\",@progbits\n.zero 4096\n.popsection");

int fixture_hosted_hello(void);

int fixture_hosted_hello(void)
{
    return puts("hello from libc");
}

#ifdef FIXTURE_MAIN
int main(void)
{
    return fixture_hosted_hello() < 0;
}
#endif
