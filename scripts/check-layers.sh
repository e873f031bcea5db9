#!/usr/bin/env bash
# Enforces the layering of docs/architecture.md: which src/ directories may include which, and that raw memory
# casts stay in src/memory/ and src/kvm/.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
allowed() {
  case "$1" in
    base) echo "base" ;;
    memory) echo "base memory" ;;
    # the userspace instruction emulator: pure logic over emu::CpuState and emu::PhysicalMemory
    emu) echo "base emu" ;;
    arch) echo "base memory arch" ;;
    bus) echo "base bus" ;;
    block) echo "base block" ;;
    net) echo "base memory net" ;;
    # every device family (legacy, pci, virtio, display, ...) is layer "devices"
    devices) echo "base memory bus arch block net devices" ;;
    kvm) echo "base memory arch emu kvm" ;;
    api) echo "base api" ;;
    # the display's outputs and input (VNC): renders through devices/display's Image, feeds PS/2 bytes to hooks
    ui) echo "base devices ui" ;;
    # the management daemon (hako serve): runs VMs as `hako run` processes, creates images through block/, answers
    # with api/'s Reply
    serve) echo "base block api serve" ;;
    vmm) echo "base memory arch bus block net devices emu kvm api ui vmm" ;;
    cli) echo "base memory arch bus block net devices emu kvm api ui vmm serve cli" ;;
  esac
}
for f in $(find src -name '*.h' -o -name '*.cpp'); do
  layer=$(echo "$f" | cut -d/ -f2)
  ok=$(allowed "$layer")
  for inc in $(grep -oE '^#include "[a-z_]+/' "$f" | sed -E 's/#include "([a-z_]+)\//\1/'); do
    if ! echo " $ok " | grep -q " $inc "; then
      echo "check-layers: $f ($layer) includes $inc/"
      status=1
    fi
  done
  # Device families stay apart: src/devices/<family>/ may include devices/pci/ (the bus they sit on) and its own
  # family, nothing of another (virtio and the emulated NICs in devices/net share only net::Backend).
  if [ "$layer" = devices ]; then
    family=$(echo "$f" | cut -d/ -f3)
    for inc in $(grep -oE '^#include "devices/[a-z_]+/' "$f" | sed -E 's/#include "devices\/([a-z_]+)\//\1/'); do
      if [ "$inc" != pci ] && [ "$inc" != "$family" ]; then
        echo "check-layers: $f (devices/$family) includes devices/$inc/"
        status=1
      fi
    done
  fi
  if [ "$layer" != memory ] && [ "$layer" != kvm ] && grep -n 'reinterpret_cast' "$f" >/dev/null; then
    echo "check-layers: $f uses reinterpret_cast outside src/memory and src/kvm"
    status=1
  fi
done
if grep -rn '#include <linux/kvm.h>' src --include='*.cpp' --include='*.h' | grep -v '^src/kvm/'; then
  echo "check-layers: <linux/kvm.h> outside src/kvm"
  status=1
fi
[ $status -eq 0 ] && echo "check-layers: layering and raw-memory rules hold"
exit $status
