/* Multiboot v1 header, entry, GDT and the per-vector interrupt stubs of the hako test guests. */

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* page-aligned modules, memory info; ELF image: no address fields */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text
    .code32
    .globl _start
_start:
    cli
    cld
    movl $stack_top, %esp
    movl %eax, %esi
    movl %ebx, %edi
    lgdt gdt_desc
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    pushl %edi /* multiboot info */
    pushl %esi /* magic */
    call guest_start
2:  cli
    hlt
    jmp 2b

/* Interrupt stubs: one per vector, 16 bytes apart. Each pushes a dummy error code (unless the CPU pushes one)
 * and its vector number. */
    .align 16
    .globl isr_stubs_start
isr_stubs_start:
    .set vec, 0
    .rept 256
    .align 16
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushl $0
    .endif
    pushl $vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    pushal
    movl %esp, %eax
    pushl %eax
    call isr_dispatch
    addl $4, %esp
    popal
    addl $8, %esp /* vector, error code */
    /* Return without IRET: KVM's instruction emulator (which runs all CPL0 code on PVM hosts) cannot emulate
     * IRET in protected mode. Same-privilege return by hand: the frame is [EIP, CS, EFLAGS]; rotate it to
     * [EFLAGS, EIP, CS], then POPF + far RET. (An interrupt between the two nests harmlessly on this stack.) */
    pushl %eax
    movl 12(%esp), %eax    /* EFLAGS */
    xchgl %eax, 4(%esp)    /* EIP slot <- EFLAGS, eax = EIP */
    xchgl %eax, 8(%esp)    /* CS slot <- EIP, eax = CS */
    movl %eax, 12(%esp)    /* EFLAGS slot <- CS */
    popl %eax
    popfl
    lret

    .section .rodata
    .align 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF /* 0x08: flat 32-bit code */
    .quad 0x00CF92000000FFFF /* 0x10: flat data */
gdt_end:
    .globl gdt_desc
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .align 16
stack_bottom:
    .skip 16384
    .globl stack_top
stack_top:

    .section .note.GNU-stack, "", @progbits
