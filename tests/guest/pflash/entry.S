/* Reset vector and the switch to 32-bit protected mode for the pflash test firmware (pflash_fw.c).
 * The CPU starts at 0xFFFFFFF0 in real mode with CS base 0xFFFF0000: load a flat GDT (built in RAM), set
 * CR0.PE, far-jump to 32-bit code, set up segments and a stack in RAM, copy .ramcode/.data to RAM, zero .bss and
 * call fw_main(). */
    .section .reset, "ax"
    .code16
    .globl reset_vector
reset_vector:
    jmp start16                /* IP wraps to 0: CS base 0xFFFF0000 is the image's start */
    .balign 16, 0xf4

    .section .text.entry, "ax"
    .code16
start16:
    cli
    cld
    /* The GDT is built in RAM at 0x600: with the GDT in the flash (a read-only KVM memory slot), QEMU + KVM on a
     * PVM host loops forever on the far jump below (KVM's emulator). */
    xorw %ax, %ax
    movw %ax, %ds
    movl $0, 0x600
    movl $0, 0x604
    movl $0x0000ffff, 0x608   /* 0x08: flat 32-bit code */
    movl $0x00cf9a00, 0x60c
    movl $0x0000ffff, 0x610   /* 0x10: flat 32-bit data */
    movl $0x00cf9200, 0x614
    movw $23, 0x618
    movl $0x600, 0x61a
    lgdtl 0x618
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $start32

    .code32
start32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $0x80000, %esp
    /* .ramcode and .data to RAM */
    movl $ram_load, %esi
    movl $ram_start, %edi
    movl $ram_end, %ecx
    subl %edi, %ecx
    rep movsb
    /* .bss */
    movl $bss_start, %edi
    movl $bss_end, %ecx
    subl %edi, %ecx
    xorl %eax, %eax
    rep stosb
    call fw_main
1:  hlt
    jmp 1b

