#!/usr/bin/env bash
# iPXE's option ROM for a NIC (Debian's ipxe-qemu) under SeaBIOS, on hako or QEMU: SeaBIOS must find the ROM in the
# NIC's expansion ROM BAR and run it, and iPXE must get through its device initialisation to its banner and the
# "Press Ctrl-B for the iPXE command line" prompt.
# On hosts without VT-x/AMD-V (PVM, see ../shared/KVM-HERE.md) KVM's emulator refuses iPXE's 32-bit iret, and KVM
# cannot deliver an interrupt to iPXE's protected mode (segments based at its load address; KVM turns the delivery
# into a triple fault): QEMU stops at the prompt (an emulation failure on an iret); hako emulates the irets and
# delivers the timer interrupts itself, so on hako iPXE goes on past the prompt, opens the NIC and must get a DHCP
# lease from slirp (10.0.2.15, gateway 10.0.2.2). The run ends at the last milestone; the script prints how long each
# milestone took.
#
# usage: run-ipxe-test.sh <hako|qemu> <rom> <model>
#   model: virtio (the ROM declares 1af4:1041, so the NIC is modern-only: hako legacy=off, QEMU disable-legacy=on),
#          e1000, rtl8139, pcnet (the NIC models of the same names on both VMMs),
#          ne2k_pci (pxe-ne2k_pci.rom, the RTL8029AS; QEMU runs its default ROM, see below)
# Environment: HAKO, QEMU, LOG (the serial log; default a temp file), BIOS (default /usr/share/seabios/bios-256k.bin),
#              IPXE_TIMEOUT (seconds, default 150)
set -u
[ $# -eq 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
vmm=$1 rom=$2 model=$3
bios=${BIOS:-/usr/share/seabios/bios-256k.bin}
log=${LOG:-$(mktemp)}
mkdir -p "$(dirname "$log")"
[ -f "$rom" ] || { echo "run-ipxe-test: FAIL: no ROM $rom (package ipxe-qemu)"; exit 1; }
[ -f "$bios" ] || { echo "run-ipxe-test: FAIL: no firmware $bios (package seabios)"; exit 1; }
case $model in
    virtio) hako_nic="user,romfile=$rom,legacy=off" qemu_dev="virtio-net-pci,netdev=n0,disable-legacy=on,romfile=$rom" ;;
    e1000|rtl8139|pcnet) hako_nic="user,model=$model,romfile=$rom" qemu_dev="$model,netdev=n0,romfile=$rom" ;;
    # The ROM's PCI data structure names no device (0000:0000, one image for every NE2000 clone): hako writes the
    # NIC's IDs into it; QEMU only does that for a device's default ROM (Debian: efi-ne2k_pci.rom, whose legacy image
    # is the same iPXE build), so QEMU gets no romfile=. iPXE's legacy ns8390 driver prints the MAC it read from the
    # card's PROM inside the initialisation line.
    ne2k_pci) hako_nic="user,model=ne2k_pci,romfile=$rom" qemu_dev="ne2k_pci,netdev=n0"
        devices_ok="Using legacy NIC wrapper on 52:54:00:12:34:" ;;
    *) echo "run-ipxe-test: unknown model $model" >&2; exit 2 ;;
esac
case $vmm in
    hako) cmd=("${HAKO:-build/hako}" run -v --firmware "$bios" --vga none --memory 64M --on-reboot exit --net "$hako_nic") ;;
    qemu) cmd=("${QEMU:-qemu-system-x86_64}" -M pc -accel kvm -cpu host,-arch-capabilities -m 64M -nodefaults
               -nographic -display none -serial stdio -no-reboot -bios "$bios" -netdev user,id=n0 -device "$qemu_dev") ;;
    *) echo "run-ipxe-test: VMM must be hako or qemu, not $vmm" >&2; exit 2 ;;
esac
echo "run-ipxe-test: ${cmd[*]}"
milestones=("iPXE (http://ipxe.org) 00:02.0" "${devices_ok:-iPXE initialising devices...ok}" "Press Ctrl-B for the iPXE command line")
# On hako: the NIC opened with slirp's link up, and the lease.
[ "$vmm" = hako ] && milestones+=("net0: 52:54:00:12:34:56 using" "net0: 10.0.2.15/255.255.255.0 gw 10.0.2.2")
start=$(date +%s.%N)
"${cmd[@]}" </dev/null >"$log" 2>&1 &
pid=$!
declare -A seen_at=()
deadline=$(( $(date +%s) + ${IPXE_TIMEOUT:-150} ))
ended=""
while :; do
    for m in "${milestones[@]}"; do
        if [ -z "${seen_at[$m]:-}" ] && grep -aqF "$m" "$log"; then
            seen_at[$m]=$(echo "$(date +%s.%N) - $start" | bc)
        fi
    done
    if [ -n "${seen_at[${milestones[-1]}]:-}" ]; then ended="at the last milestone"; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"; ended="the VMM exited with status $?"; break
    fi
    # QEMU pauses the VM on a KVM emulation failure and waits: that is the end of this run.
    if grep -aq "emulation failure" "$log"; then ended="KVM emulation failure (VM paused)"; break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then ended="still running after ${IPXE_TIMEOUT:-150} s"; break; fi
    sleep 0.5
done
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
grep -a "triple fault\|could not emulate\|Guest stopped\|hako emulated" "$log" | sed 's/^/run-ipxe-test: /'
ok=1
for m in "${milestones[@]}"; do
    if [ -n "${seen_at[$m]:-}" ]; then
        printf 'run-ipxe-test: %6.1f s  %s\n' "${seen_at[$m]}" "$m"
    else
        echo "run-ipxe-test: FAIL: never saw \"$m\""
        ok=0
    fi
done
echo "run-ipxe-test: $vmm ended: $ended"
[ $ok -eq 1 ] || { echo "run-ipxe-test: serial log in $log"; tail -c 2000 "$log"; exit 1; }
echo "run-ipxe-test: ok"
