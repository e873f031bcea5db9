/* hello: the smallest guest that uses the library. Prints a greeting and passes. */
#include "guest.h"

int guest_main(void)
{
    printf("hello from hako guest\n");
    printf("cmdline: %s\n", mb_cmdline());
    return 0;
}
