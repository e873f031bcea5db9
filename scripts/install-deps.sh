#!/usr/bin/env bash
# Installs everything hako needs to build and test on Debian 12, from Debian's archive only. Idempotent.
set -euo pipefail

PACKAGES=(
  # build
  g++ gcc make cmake ninja-build pkg-config
  libfmt-dev libspdlog-dev libcli11-dev libslirp-dev liburing-dev libboost-dev nlohmann-json3-dev zlib1g-dev
  libpng-dev  # screenshots (PNG)
  libvncserver-dev  # the built-in VNC server (--vnc)
  libsqlite3-dev  # hako serve: VM definitions and state (one SQLite file)
  libzydis-dev libzycore-dev  # the instruction decoder of the userspace emulator (src/emu/)
  # tests: unit (GoogleTest), sanitizer and libFuzzer builds (clang), test guests (gcc, 32-bit freestanding)
  googletest libgtest-dev clang libclang-rt-14-dev
  # guests and references: Debian kernel pieces, busybox initramfs, SeaBIOS, iPXE, QEMU as the reference VMM
  qemu-system-x86 qemu-utils seabios ipxe-qemu busybox-static cpio xz-utils zstd
  grub-rescue-pc  # grub-rescue-cdrom.iso: SeaBIOS boots it from the IDE CD-ROM
  ovmf  # UEFI firmware (OVMF_CODE_4M.fd, OVMF_VARS_4M.fd) for --firmware uefi
  acpica-tools python3 python3-yaml time bc dmidecode
  openssl  # the VNC test client's DES (VNC authentication)
  # tap networking tests: network namespaces and taps (iproute2), a DHCP server on the tap (dnsmasq)
  iproute2 dnsmasq-base
  # hako serve's web UI: built with npm (web/package-lock.json), tested with playwright-core driving Chromium headless
  nodejs npm chromium
  # benchmarks: exits to userspace per request (perf stat -e kvm:kvm_userspace_exit)
  linux-perf
)

missing=()
for p in "${PACKAGES[@]}"; do
  # A Node.js from NodeSource (or another) bundles its own npm and conflicts with Debian's: keep it.
  [ "$p" = npm ] && command -v npm >/dev/null && continue
  [ "$p" = nodejs ] && command -v node >/dev/null && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
