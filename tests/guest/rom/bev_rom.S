/* A minimal PnP option ROM with a Boot Entry Vector, delivered to SeaBIOS through fw_cfg as genroms/hako-bev.bin.
 * SeaBIOS runs its init entry at boot-device setup, lists the BEV as a boot device ("Booting from ROM..."),
 * and when it boots it, the BEV prints "hako-bev: booted" on COM1 and writes 0x21 to isa-debug-exit (port 0xf4),
 * so the VMM exits with status (0x21 << 1) | 1 = 67. It shows that the firmware ran to the point of booting.
 * Format: PCI Firmware spec / BIOS Boot Specification 1.01 (option ROM header, $PnP expansion header, and a PCI data
 * structure "PCIR" naming PCI_VENDOR:PCI_DEVICE, so the same ROM also works as a device's expansion ROM: build with
 * --defsym PCI_DEVICE=0x1001 for a virtio-blk's romfile=).
 * The checksum byte at the end is filled in by tests/guest/rom/fix_checksum.py. */
    .code16
    .section .text
    .globl _start
_start:
    .byte 0x55, 0xaa            /* signature */
    .byte 1                     /* size in 512-byte blocks */
    jmp init                    /* offset 3: initialisation entry (3 bytes with the short jump + nop) */
    nop
    .org 0x18
    .word pcir                  /* offset of the PCI data structure */
    .word pnp_header            /* offset of the $PnP header */

    .ifndef PCI_VENDOR
    .set PCI_VENDOR, 0x1af4
    .endif
    .ifndef PCI_DEVICE
    .set PCI_DEVICE, 0xffff
    .endif
    .balign 4
pcir:                           /* PCI Firmware Specification 3.0, 5.1.2 */
    .ascii "PCIR"
    .word PCI_VENDOR
    .word PCI_DEVICE
    .word 0                     /* vital product data */
    .word 0x18                  /* structure length */
    .byte 0                     /* revision */
    .byte 0x00, 0x00, 0x01      /* class code: mass storage, SCSI (informational) */
    .word 1                     /* image length in 512-byte units */
    .word 0                     /* code revision */
    .byte 0                     /* code type: x86 PC-AT compatible */
    .byte 0x80                  /* indicator: last image */
    .word 0

    .balign 16
pnp_header:
    .ascii "$PnP"
    .byte 1                     /* structure revision */
    .byte 2                     /* length in 16-byte units */
    .word 0                     /* next header */
    .byte 0                     /* reserved */
    .byte 0                     /* checksum: fixed up so the 32 header bytes sum to 0 */
    .long 0                     /* device identifier */
    .word manufacturer          /* manufacturer string */
    .word product               /* product name string */
    .byte 0x02, 0x00, 0x00      /* device type: mass storage, other */
    .byte 0x14                  /* indicators: IPL device, boot device */
    .word 0                     /* boot connection vector */
    .word 0                     /* disconnect vector */
    .word bev                   /* bootstrap entry vector */
    .word 0                     /* reserved */
    .word 0                     /* static resource information vector */

manufacturer: .asciz "hako"
product: .asciz "hako test boot ROM"
message: .asciz "hako-bev: booted\r\n"

init:
    lret                        /* nothing to set up */

bev:
    cli
    push %cs
    pop %ds
    mov $message, %si
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %ah
    mov $0x3fd, %dx             /* COM1 line status */
2:  in %dx, %al
    test $0x20, %al             /* THR empty */
    jz 2b
    mov $0x3f8, %dx
    mov %ah, %al
    out %al, %dx
    jmp 1b
3:  mov $0x21, %al
    out %al, $0xf4
4:  hlt
    jmp 4b

    .org 0x1ff
    .byte 0                     /* ROM checksum */
