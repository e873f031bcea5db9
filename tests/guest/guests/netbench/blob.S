/* The CPL3 part of netbench (user.c, a flat 64-bit binary built at NB_USER_BASE); netbench.c copies it there. The
 * build passes the binary's directory to the assembler (-Wa,-I...). */
    .section .rodata
    .align 16
    .globl netbench_user_start
    .globl netbench_user_end
netbench_user_start:
    .incbin "netbench-user.bin"
netbench_user_end:

    .section .note.GNU-stack, "", @progbits
