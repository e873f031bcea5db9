#!/usr/bin/env bash
# Fetches the guest assets hako's default run and tests use, from Debian's archive, into a cache outside the repo:
#   $HAKO_CACHE/kernel/bzImage      Debian 12's current amd64 kernel (linux-image-*-amd64)
#   $HAKO_CACHE/kernel/vmlinux      the ELF kernel inside it (PVH entry note), extracted from the bzImage payload
#   $HAKO_CACHE/initramfs.cpio.gz   busybox-static + scripts/initramfs/init (prints HAKO-READY, powers off)
#   $HAKO_CACHE/memtest/            memtest86+ (Debian's memtest86+): memtest86+x64.bin (a bzImage-style kernel) and
#                                   memtest86+x64.iso (a bootable CD)
# Idempotent: what exists is kept. HAKO_CACHE defaults to /var/tmp/hako.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${HAKO_CACHE:-/var/tmp/hako}
mkdir -p "$CACHE/debs" "$CACHE/kernel"

apt_download() { # apt_download PACKAGE -> prints the .deb path
  local pkg=$1 deb
  deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    (cd "$CACHE/debs" && { apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download "$pkg" >/dev/null; }; })
    deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb | head -n 1)
  fi
  echo "$deb"
}

# The kernel: resolve the metapackage to the real image package.
if [ ! -s "$CACHE/kernel/bzImage" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    apt-get update -q >/dev/null
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || { echo "fetch-guests: cannot resolve linux-image-amd64" >&2; exit 1; }
  deb=$(apt_download "$pkg")
  rm -rf "$CACHE/kernel/root"
  dpkg-deb -x "$deb" "$CACHE/kernel/root"
  cp "$CACHE"/kernel/root/boot/vmlinuz-* "$CACHE/kernel/bzImage.tmp"
  mv "$CACHE/kernel/bzImage.tmp" "$CACHE/kernel/bzImage"
  echo "$pkg" > "$CACHE/kernel/package"
  rm -rf "$CACHE/kernel/root"
  echo "fetch-guests: kernel $pkg -> $CACHE/kernel/bzImage"
fi

# The ELF vmlinux: the bzImage's compressed payload (setup header: payload_offset/payload_length).
if [ ! -s "$CACHE/kernel/vmlinux" ]; then
  python3 - "$CACHE/kernel/bzImage" "$CACHE/kernel/payload" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
setup_sects = data[0x1f1] or 4
start = (setup_sects + 1) * 512
off, length = struct.unpack_from("<II", data, 0x248)
open(sys.argv[2], "wb").write(data[start + off:start + off + length])
PY
  magic=$(head -c 6 "$CACHE/kernel/payload" | od -An -tx1 | tr -d ' \n')
  case $magic in
    fd377a585a00*) xz -dc --single-stream "$CACHE/kernel/payload" > "$CACHE/kernel/vmlinux.tmp" ;;
    28b52ffd*) zstd -dc "$CACHE/kernel/payload" > "$CACHE/kernel/vmlinux.tmp" ;;
    1f8b*) gzip -dc "$CACHE/kernel/payload" > "$CACHE/kernel/vmlinux.tmp" 2>/dev/null || true ;;
    *) echo "fetch-guests: unknown kernel payload compression ($magic)" >&2; exit 1 ;;
  esac
  rm -f "$CACHE/kernel/payload"
  head -c 4 "$CACHE/kernel/vmlinux.tmp" | grep -q ELF || { echo "fetch-guests: payload is not an ELF" >&2; exit 1; }
  mv "$CACHE/kernel/vmlinux.tmp" "$CACHE/kernel/vmlinux"
  echo "fetch-guests: extracted $CACHE/kernel/vmlinux"
fi

# The initramfs: busybox-static and our init.
if [ ! -s "$CACHE/initramfs.cpio.gz" ] || [ "$here/initramfs/init" -nt "$CACHE/initramfs.cpio.gz" ]; then
  deb=$(apt_download busybox-static)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  dpkg-deb -x "$deb" "$work/pkg"
  mkdir -p "$work/root/bin" "$work/root/proc" "$work/root/sys" "$work/root/dev" "$work/root/tmp"
  cp "$work/pkg/bin/busybox" "$work/root/bin/busybox"
  for applet in sh mount echo cat grep uname poweroff reboot ls dmesg ip udhcpc sleep; do
    ln -sf busybox "$work/root/bin/$applet"
  done
  cp "$here/initramfs/init" "$work/root/init"
  chmod 755 "$work/root/init"
  (cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -9) > "$CACHE/initramfs.cpio.gz.tmp"
  mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
  echo "fetch-guests: built $CACHE/initramfs.cpio.gz"
fi
# memtest86+: the 64-bit image (Linux boot protocol) and its CD image.
if [ ! -s "$CACHE/memtest/memtest86+x64.bin" ] || [ ! -s "$CACHE/memtest/memtest86+x64.iso" ]; then
  deb=$(apt_download memtest86+)
  work_mt=$(mktemp -d)
  dpkg-deb -x "$deb" "$work_mt"
  mkdir -p "$CACHE/memtest"
  cp "$work_mt/boot/memtest86+x64.bin" "$work_mt/usr/lib/memtest86+/memtest86+x64.iso" "$CACHE/memtest/"
  rm -rf "$work_mt"
  echo "fetch-guests: memtest86+ -> $CACHE/memtest"
fi
echo "fetch-guests: guest assets ready in $CACHE"
