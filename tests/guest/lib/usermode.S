/* enter_user64: from the library's 32-bit protected mode (CPL0, no paging) into 64-bit long mode at CPL3.
 *
 *   void enter_user64(uint32_t entry, uint32_t stack, uint32_t arg)  -- never returns
 *
 * Identity-maps the first 4 GiB with 2 MiB pages, all user-accessible and writable (RAM and the MMIO BARs below
 * 4 GiB alike), loads its own GDT, enables PAE + EFER.LME + paging, jumps to a 64-bit code segment, sets
 * EFLAGS.IOPL = 3 (port I/O allowed at CPL3) with interrupts off, and enters `entry` at CPL3 with RSP = stack and
 * RDI = arg (the first argument of a SysV x86-64 function).
 *
 * Why SYSEXIT: on PVM hosts all CPL0 code runs in KVM's instruction emulator, which emulates neither IRET in
 * protected/long mode nor an outer-privilege far return, but does emulate SYSEXIT (with REX.W: to 64-bit CPL3).
 * On AMD hardware a native SYSEXIT in long mode raises #UD; the #UD handler below then enters CPL3 with IRETQ,
 * which runs natively there. (Intel hardware: SYSEXIT works natively.)
 *
 * GDT (SYSENTER_CS = 0x08, so 64-bit SYSEXIT loads CS = 0x08+32 = 0x28 | 3 and SS = 0x08+40 = 0x30 | 3):
 *   0x08 64-bit code DPL0, 0x10 data DPL0, 0x18 32-bit code DPL3, 0x20 data DPL3, 0x28 64-bit code DPL3,
 *   0x30 data DPL3, 0x38 32-bit code DPL0 (unused).
 *   0x40: a 64-bit TSS (16 bytes), loaded with LTR, whose I/O permission bitmap allows every port.
 * The TSS is there for its I/O bitmap: CPL3 port I/O must not depend on EFLAGS.IOPL alone, because PVM hosts run
 * guest CPL3 code with the host's IOPL 0 and check the guest's I/O bitmap when they emulate IN/OUT (measured: without
 * it QEMU's run of blkbench's IDE loop took #GP on port 0xc000 after SeaBIOS, while hako's boot state let it by).
 * Only vector 6 is in the IDT: a fault at CPL3 ends in a triple fault (the VMM resets or exits).
 * A SYSENTER from CPL3 exits through isa-debug-exit with code 124.
 */

#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_U 0x4
#define PTE_PS 0x80
#define USER_CS 0x2B
#define USER_SS 0x33
#define TSS_IOMAP 104                    /* the I/O bitmap right after the 104-byte 64-bit TSS */
#define TSS_LIMIT (TSS_IOMAP + 8192)     /* 65536 ports, one bit each (0: allowed), then the 0xff byte */

    .section .text
    .code32
    .globl enter_user64
enter_user64:
    cli
    movl 4(%esp), %ebx   /* entry */
    movl 8(%esp), %esi   /* user stack */
    movl 12(%esp), %ebp  /* arg */

    /* Page tables: clear PML4 and PDPT, then 4 page directories of 512 2-MiB pages each. */
    xorl %eax, %eax
    movl $um_pml4, %edi
    movl $2048, %ecx     /* PML4 and PDPT, 2 x 4 KiB */
    rep stosl
    movl $um_pd, %edi
    movl $(PTE_P | PTE_W | PTE_U | PTE_PS), %eax
    xorl %ecx, %ecx
1:  movl %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    addl $0x200000, %eax
    incl %ecx
    cmpl $2048, %ecx
    jne 1b
    movl $um_pdpt, %edi
    movl $(um_pd + PTE_P + PTE_W + PTE_U), %eax
    xorl %ecx, %ecx
2:  movl %eax, (%edi,%ecx,8)
    addl $4096, %eax
    incl %ecx
    cmpl $4, %ecx
    jne 2b
    movl $(um_pdpt + PTE_P + PTE_W + PTE_U), %eax
    movl %eax, um_pml4

    /* IDT entry 6: 64-bit interrupt gate, DPL0, to um_ud_handler. */
    movl $um_ud_handler, %eax
    movw %ax, um_idt + 6 * 16
    movw $0x08, um_idt + 6 * 16 + 2
    movw $0x8E00, um_idt + 6 * 16 + 4
    shrl $16, %eax
    movw %ax, um_idt + 6 * 16 + 6

    /* The TSS descriptor (GDT 0x40): base um_tss, limit through the bitmap's 0xff terminator, present, type 9
     * (available 64-bit TSS); the upper 8 bytes (base 63:32) stay 0. I/O map base 104: the bitmap follows. */
    movl $um_tss, %eax
    movw $(TSS_LIMIT & 0xffff), um_gdt_tss
    movw %ax, um_gdt_tss + 2
    shrl $16, %eax
    movb %al, um_gdt_tss + 4
    movb $0x89, um_gdt_tss + 5
    movb $(TSS_LIMIT >> 16), um_gdt_tss + 6
    movb %ah, um_gdt_tss + 7
    movw $TSS_IOMAP, um_tss + 102
    movb $0xff, um_tss + TSS_IOMAP + 8192

    /* PAE, page tables, EFER.LME, paging: compatibility mode until the far jump. */
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $um_pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    lgdt um_gdt_desc
    lidt um_idt_desc /* 32-bit base; interrupts stay off until CPL3, and there too */
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmp $0x08, $um_long

    .code64
um_long:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movl $stack_top, %esp  /* the library's stack becomes the CPL0 stack */
    movw $0x40, %ax
    ltr %ax
    movl $MSR_SYSENTER_CS, %ecx
    movl $0x08, %eax
    xorl %edx, %edx
    wrmsr
    movl $MSR_SYSENTER_ESP, %ecx
    movl $stack_top, %eax
    wrmsr
    movl $MSR_SYSENTER_EIP, %ecx
    movl $um_sysenter, %eax
    wrmsr
    /* IOPL = 3, IF = 0 */
    pushq $0x3002
    popfq
    movl %esi, %ecx   /* RSP after SYSEXIT (zero-extends) */
    movl %ebx, %edx   /* RIP after SYSEXIT */
    movl %ebp, %edi   /* RDI: the argument */
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %esi, %esi
    xorl %ebp, %ebp
    sysexitq
    ud2

    /* #UD at CPL0: SYSEXIT is invalid in long mode on AMD hardware. Enter CPL3 with IRETQ instead (RCX, RDX and
     * RDI still hold the stack, entry and argument). Any other #UD at CPL0 would also come here: there is none. */
um_ud_handler:
    pushq $USER_SS
    pushq %rcx
    pushq $0x3002
    pushq $USER_CS
    pushq %rdx
    iretq

um_sysenter:
    movl $124, %eax
    outl %eax, $0xf4
3:  hlt
    jmp 3b

    .section .data  /* writable: LTR marks the TSS descriptor busy */
    .align 16
um_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF /* 0x08: 64-bit code, DPL0 */
    .quad 0x00CF92000000FFFF /* 0x10: data, DPL0 */
    .quad 0x00CFFA000000FFFF /* 0x18: 32-bit code, DPL3 */
    .quad 0x00CFF2000000FFFF /* 0x20: data, DPL3 */
    .quad 0x00AFFA000000FFFF /* 0x28: 64-bit code, DPL3 */
    .quad 0x00CFF2000000FFFF /* 0x30: data, DPL3 */
    .quad 0x00CF9A000000FFFF /* 0x38: 32-bit code, DPL0 */
um_gdt_tss:
    .quad 0, 0               /* 0x40: the TSS, filled in by enter_user64 */
um_gdt_end:
um_gdt_desc:
    .word um_gdt_end - um_gdt - 1
    .long um_gdt

    .section .data
    .align 16
    /* 64-bit IDT: vectors 0-6, only #UD (6) present. */
um_idt:
    .fill 7 * 16, 1, 0 /* entry 6 is filled in by enter_user64 */
um_idt_end:
um_idt_desc:
    .word um_idt_end - um_idt - 1
    .long um_idt

    .section .bss
    .align 4096
um_pml4:
    .skip 4096
um_pdpt:
    .skip 4096
um_pd:
    .skip 4 * 4096
    .align 16
um_tss:
    .skip TSS_LIMIT + 1  /* zero: RSP0 etc. unused (no interrupts at CPL3), every port allowed */

    .section .note.GNU-stack, "", @progbits
