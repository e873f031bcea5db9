/* exit_only: the benchmark guest. No library, no output: the first instructions write 0 to isa-debug-exit
 * (VMM exit status 1). Measures VMM start-up + boot + exit. */
    .section .multiboot, "a"
    .align 4
    .long 0x1BADB002
    .long 0x00000003
    .long -(0x1BADB002 + 0x00000003)

    .section .text
    .code32
    .globl _start
_start:
    xorl %eax, %eax
    outl %eax, $0xf4
1:  cli
    hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
