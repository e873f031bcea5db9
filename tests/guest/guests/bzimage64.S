/* A minimal kernel in Linux's bzImage format that checks the 64-bit boot protocol from the inside
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"): it is entered at startup_64 (load address + 0x200)
 * in long mode with paging on, RSI pointing to boot_params. It checks the "HdrS" header copy, that the loader set
 * type_of_loader, the e820 table, the command line pointer (printed), then exits through isa-debug-exit with 0.
 * make-bzimage.py puts the real-mode setup header in front of this code. */
    .code64
    .section .text
    .globl _start
_start:
    .org 0x200
startup_64:
    cli
    mov %rsi, %rbx                 /* boot_params */
    lea msg_hello(%rip), %rdi
    call puts
    mov $1, %r12d
    cmpl $0x53726448, 0x202(%rbx)  /* "HdrS" */
    jne fail
    mov $2, %r12d
    mov $0xc0000080, %ecx          /* EFER: long mode active */
    rdmsr
    test $0x400, %eax
    jz fail
    mov $3, %r12d
    mov %cr0, %rax                 /* paging on */
    bt $31, %rax
    jnc fail
    mov $4, %r12d
    cmpb $0, 0x1e8(%rbx)           /* e820_entries */
    je fail
    mov $5, %r12d
    cmpb $0xff, 0x210(%rbx)        /* type_of_loader: "undefined" */
    jne fail
    mov $6, %r12d
    mov 0x228(%rbx), %edi          /* cmd_line_ptr */
    test %edi, %edi
    jz fail
    lea msg_cmdline(%rip), %rsi
    push %rdi
    mov %rsi, %rdi
    call puts
    pop %rdi
    call puts
    lea msg_pass(%rip), %rdi
    call puts
    xor %eax, %eax
    out %al, $0xf4
1:  hlt
    jmp 1b

fail:
    lea msg_fail(%rip), %rdi
    call puts
    mov %r12d, %eax
    out %al, $0xf4
2:  hlt
    jmp 2b

/* puts(rdi): polled COM1 output of a NUL-terminated string. */
puts:
    movb (%rdi), %al
    test %al, %al
    jz 4f
    mov %al, %ah
    mov $0x3fd, %dx
3:  in %dx, %al
    test $0x20, %al
    jz 3b
    mov $0x3f8, %dx
    mov %ah, %al
    out %al, %dx
    inc %rdi
    jmp puts
4:  ret

msg_hello: .asciz "bzimage64: entered startup_64 in long mode\r\n"
msg_cmdline: .asciz "bzimage64: command line: "
msg_pass: .asciz "\r\nbzimage64: PASS\r\n"
msg_fail: .asciz "bzimage64: FAIL\r\n"
