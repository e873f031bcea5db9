/* A boot sector (MBR) for firmware boot tests: the BIOS loads it at 0x7C00 from the first sector of a disk and jumps
 * to it; it prints "hako-mbr: booted from disk 0xNN" (DL, the BIOS drive number) on COM1 and writes 0x22 to
 * isa-debug-exit (port 0xf4), so the VMM exits with status (0x22 << 1) | 1 = 69. It also reads sector 1 through
 * int 13h (extended read, AH=42h) and checks the marker the test puts there, so the firmware's disk driver really
 * moved data, not just the boot sector. On a failed read it exits with 0x23 (status 71). Before exiting it finds the
 * SMBIOS entry point the firmware installed ("_SM_" on a 16-byte boundary in F0000-FFFFF) and prints the type 1
 * (system) manufacturer string: "hako-mbr: smbios manufacturer NAME" (or "hako-mbr: no smbios").
 * Built with: as --32, ld -Ttext 0x7c00 --oformat binary; the 0x55AA signature ends the 512 bytes. */
    .code16
    .section .text
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    mov %dl, drive
    sti

    mov $message, %si
    call puts
    mov drive, %al
    call puthex
    mov $crlf, %si
    call puts

    /* int 13h AH=42h: read 1 sector (LBA 1) to 0x8000. */
    mov $dap, %si
    mov drive, %dl
    mov $0x42, %ah
    int $0x13
    jc bad
    mov $0x8000, %si
    mov $marker, %di
    mov $marker_len, %cx
    cld
    repe cmpsb
    jne bad
    mov $read_ok, %si
    call puts
    call smbios
    mov $0x22, %al
    jmp done
bad:
    mov $read_bad, %si
    call puts
    mov $0x23, %al
done:
    out %al, $0xf4
1:  hlt
    jmp 1b

/* Prints the SMBIOS type 1 manufacturer (tables below 1 MiB, as SeaBIOS installs them). */
smbios:
    push %ds
    mov $0xf000, %ax
    mov %ax, %ds
    xor %bx, %bx
5:  cmpl $0x5f4d535f, (%bx)     /* "_SM_" */
    je 6f
    add $16, %bx
    jnz 5b
    jmp nosm
6:  mov 24(%bx), %eax           /* the structure table's physical address */
    mov %ax, %si
    and $15, %si
    shr $4, %eax
    mov %ax, %ds
7:  cmpb $1, (%si)              /* type 1: system information */
    je 8f
    cmpb $127, (%si)
    je nosm
    movzbw 1(%si), %ax          /* skip the formatted area, then the strings up to the double NUL */
    add %ax, %si
9:  cmpw $0, (%si)
    je 10f
    inc %si
    jmp 9b
10: add $2, %si
    jmp 7b
8:  movzbw 4(%si), %cx          /* the manufacturer's string number */
    jcxz nosm
    movzbw 1(%si), %ax
    add %ax, %si
11: dec %cx
    jz 12f
13: lodsb
    test %al, %al
    jnz 13b
    jmp 11b
12: push %si
    push %ds
    xor %ax, %ax
    mov %ax, %ds
    mov $sm_msg, %si
    call puts
    pop %ds
    pop %si
    call puts
    xor %ax, %ax
    mov %ax, %ds
    mov $crlf, %si
    call puts
    pop %ds
    ret
nosm:
    xor %ax, %ax
    mov %ax, %ds
    mov $sm_none, %si
    call puts
    pop %ds
    ret

/* Prints the NUL-terminated string at DS:SI on COM1 (polling the line status register). */
puts:
    lodsb
    test %al, %al
    jz 3f
    call putc
    jmp puts
3:  ret

putc:
    push %dx
    push %ax
    mov $0x3fd, %dx
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    pop %ax
    mov $0x3f8, %dx
    out %al, %dx
    pop %dx
    ret

/* Prints AL as two hex digits. */
puthex:
    push %ax
    shr $4, %al
    call nibble
    pop %ax
    and $0x0f, %al
nibble:
    and $0x0f, %al
    add $'0', %al
    cmp $'9', %al
    jbe 4f
    add $7, %al
4:  jmp putc

drive: .byte 0
    .balign 4
dap:                        /* int 13h extensions disk address packet */
    .byte 16, 0
    .word 1                 /* sectors */
    .word 0x8000, 0         /* buffer offset, segment */
    .long 1, 0              /* LBA */
message: .asciz "hako-mbr: booted from disk 0x"
crlf: .asciz "\r\n"
read_ok: .asciz "hako-mbr: sector 1 read through int 13h\r\n"
read_bad: .asciz "hako-mbr: int 13h read of sector 1 failed\r\n"
sm_msg: .asciz "hako-mbr: smbios manufacturer "
sm_none: .asciz "hako-mbr: no smbios\r\n"
marker: .ascii "HAKO-SECTOR-ONE"
    .set marker_len, . - marker

    .org 510
    .byte 0x55, 0xaa
