#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running VM: installs the build and guest dependencies (apt),
# builds hako, fetches the default guest (Debian's kernel and a busybox initramfs, cached in /var/tmp/hako) and
# boots it with `hako run` on the serial console.
set -euo pipefail
cd "$(dirname "$0")/.."
export HAKO_CACHE=${HAKO_CACHE:-/var/tmp/hako}
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ninja -C build
scripts/fetch-guests.sh
echo "setup: booting the Debian kernel with a busybox initramfs (Ctrl-a x quits)"
if ! grep -qE 'vmx|svm' /proc/cpuinfo; then
  echo "setup: note: this host's /dev/kvm has no VT-x/AMD-V; the kernel's early boot runs in KVM's emulator and"
  echo "setup: will stop at an instruction the emulator cannot handle (see docs/architecture.md)"
fi
# The ELF vmlinux (PVH entry) starts at once; the bzImage works too but first runs its decompressor, which takes many
# minutes where KVM emulates guest kernel code.
exec build/hako run --cpus 2 --memory 512M \
  --kernel "$HAKO_CACHE/kernel/vmlinux" --initrd "$HAKO_CACHE/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 earlyprintk=ttyS0 panic=-1 io_delay=none" --debug-exit
