/* The CPL3 part of blkbench (user.c, a flat 64-bit binary built at BB_USER_BASE); blkbench.c copies it there. The
 * build passes the binary's directory to the assembler (-Wa,-I...). */
    .section .rodata
    .align 16
    .globl blkbench_user_start
    .globl blkbench_user_end
blkbench_user_start:
    .incbin "blkbench-user.bin"
blkbench_user_end:

    .section .note.GNU-stack, "", @progbits
