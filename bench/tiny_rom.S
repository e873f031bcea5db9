/* The smallest guest: a 64 KiB "firmware" whose reset vector writes 0 to isa-debug-exit (port 0xf4).
 * Run as --firmware by hako and as -bios by QEMU, it measures a VMM's fixed cost: start, first KVM_RUN, exit. */
    .code16
    .section .text
    .org 0xfff0
reset_vector:
    xorw %ax, %ax
    outb %al, $0xf4
1:  hlt
    jmp 1b
    .org 0x10000
