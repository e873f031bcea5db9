#!/usr/bin/env bash
# Fetches the guest assets hako's tests boot, from Debian 12's archive, into a cache outside the repo:
#   $CACHE/kernel/bzImage       the current Debian 12 amd64 kernel (what linux-image-amd64 depends on)
#   $CACHE/kernel/vmlinux       the ELF kernel inside the bzImage payload (has the PVH entry note)
#   $CACHE/kernel/package       the kernel package name the files came from
#   $CACHE/initramfs.cpio.gz    busybox-static plus scripts/initramfs/init (prints HAKO-READY, powers off)
# CACHE is ${HAKO_CACHE:-/var/tmp/hako}. Idempotent: files that exist are kept (the initramfs is rebuilt when
# scripts/initramfs/init is newer). Needs root for apt-get; uses apt-get download + dpkg-deb -x, no installs
# except cpio when it is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${HAKO_CACHE:-/var/tmp/hako}
mkdir -p "$CACHE/debs" "$CACHE/kernel"
say() { echo "fetch-guests: $*"; }
die() { echo "fetch-guests: $*" >&2; exit 1; }

updated=
apt_update_once() {
  if [ -z "$updated" ]; then
    say "running apt-get update"
    apt-get update -q >/dev/null
    updated=1
  fi
}

# deb_for PACKAGE: prints the path of the package's .deb in $CACHE/debs, downloading it if needed.
deb_for() {
  local pkg=$1 deb
  deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
  if [ -z "$deb" ]; then
    if ! (cd "$CACHE/debs" && apt-get download "$pkg" >/dev/null 2>&1); then
      apt_update_once
      (cd "$CACHE/debs" && apt-get download "$pkg" >/dev/null) || die "cannot download $pkg"
    fi
    deb=$(find "$CACHE/debs" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
    [ -n "$deb" ] || die "apt-get download $pkg left no .deb"
    say "downloaded $(basename "$deb")" >&2
  fi
  echo "$deb"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The kernel: resolve the linux-image-amd64 metapackage to the real image package.
if [ -s "$CACHE/kernel/bzImage" ]; then
  say "kernel present: $CACHE/kernel/bzImage ($(cat "$CACHE/kernel/package" 2>/dev/null || echo unknown package))"
else
  resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
  pkg=$(resolve)
  if [ -z "$pkg" ]; then
    apt_update_once
    pkg=$(resolve)
  fi
  [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package"
  deb=$(deb_for "$pkg")
  dpkg-deb -x "$deb" "$work/kernel"
  vmlinuz=$(find "$work/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n 1)
  [ -n "$vmlinuz" ] || die "$pkg has no /boot/vmlinuz-*"
  cp "$vmlinuz" "$CACHE/kernel/bzImage.tmp"
  mv "$CACHE/kernel/bzImage.tmp" "$CACHE/kernel/bzImage"
  echo "$pkg" > "$CACHE/kernel/package"
  rm -f "$CACHE/kernel/vmlinux" # a new bzImage needs its own vmlinux
  say "kernel $pkg -> $CACHE/kernel/bzImage"
fi

# 2. The ELF vmlinux: the compressed payload at payload_offset (0x248) / payload_length (0x24c) from the start of the
#    protected-mode code, which begins after (setup_sects + 1) * 512 bytes (setup_sects 0 means 4).
le32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' '; }
u8() { od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' '; }
if [ -s "$CACHE/kernel/vmlinux" ]; then
  say "vmlinux present: $CACHE/kernel/vmlinux"
else
  bz=$CACHE/kernel/bzImage
  [ "$(od -An -tx1 -j 514 -N 4 "$bz" | tr -d ' ')" = 48647253 ] || die "$bz has no HdrS header"
  setup_sects=$(u8 "$bz" $((0x1f1)))
  [ "$setup_sects" -ne 0 ] || setup_sects=4
  pm_start=$(( (setup_sects + 1) * 512 ))
  payload_offset=$(le32 "$bz" $((0x248)))
  payload_length=$(le32 "$bz" $((0x24c)))
  [ "$payload_length" -gt 0 ] || die "$bz has no payload (payload_length 0)"
  dd if="$bz" of="$work/payload" bs=64K iflag=skip_bytes,count_bytes skip=$((pm_start + payload_offset)) \
    count="$payload_length" status=none
  [ "$(stat -c %s "$work/payload")" -eq "$payload_length" ] || die "$bz is shorter than its payload"
  magic=$(od -An -tx1 -N 6 "$work/payload" | tr -d ' \n')
  case $magic in
    fd377a585a00*) tool="xz -dc"; name=xz ;;
    1f8b*) tool="gzip -dc"; name=gzip ;;
    28b52ffd*) tool="zstd -dcq"; name=zstd ;;
    425a68*) tool="bzip2 -dc"; name=bzip2 ;;
    5d0000*) tool="xz -dc --format=lzma"; name=lzma ;;
    02214c18*) tool="lz4 -dc"; name=lz4 ;;
    894c5a4f*) tool="lzop -dc"; name=lzo ;;
    *) die "unknown payload compression (magic $magic)" ;;
  esac
  command -v "${tool%% *}" >/dev/null || die "the payload is $name-compressed but ${tool%% *} is not installed"
  # The kernel appends its size after the stream (and the decompressor may see trailing padding): ignore that error
  # as long as the output is a whole ELF.
  $tool < "$work/payload" > "$work/vmlinux" 2>/dev/null || true
  [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "the decompressed payload is not an ELF"
  # The PVH entry note: namesz 4, descsz 4 or 8, type 18 (XEN_ELFNOTE_PHYS32_ENTRY), name "Xen\0".
  if ! LC_ALL=C grep -qaP '\x04\x00\x00\x00[\x04\x08]\x00\x00\x00\x12\x00\x00\x00Xen\x00' "$work/vmlinux"; then
    die "vmlinux has no PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY): this kernel cannot boot through PVH"
  fi
  mv "$work/vmlinux" "$CACHE/kernel/vmlinux"
  say "extracted $name-compressed vmlinux -> $CACHE/kernel/vmlinux ($(stat -c %s "$CACHE/kernel/vmlinux") bytes)"
fi

# 3. The initramfs: busybox-static and our init.
if [ -s "$CACHE/initramfs.cpio.gz" ] && [ "$CACHE/initramfs.cpio.gz" -nt "$here/initramfs/init" ]; then
  say "initramfs present: $CACHE/initramfs.cpio.gz"
else
  if ! command -v cpio >/dev/null; then
    say "installing cpio"
    apt-get install -y -q cpio >/dev/null 2>&1 || { apt_update_once; apt-get install -y -q cpio >/dev/null; }
  fi
  deb=$(deb_for busybox-static)
  dpkg-deb -x "$deb" "$work/busybox"
  root=$work/root
  mkdir -p "$root/bin" "$root/sbin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc"
  cp "$work/busybox/bin/busybox" "$root/bin/busybox"
  for applet in sh ash mount umount echo cat ls grep uname dmesg sleep poweroff reboot halt ip ifconfig udhcpc; do
    ln -s busybox "$root/bin/$applet"
  done
  install -m 755 "$here/initramfs/init" "$root/init"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) > "$CACHE/initramfs.cpio.gz.tmp"
  mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
  say "built $CACHE/initramfs.cpio.gz ($(stat -c %s "$CACHE/initramfs.cpio.gz") bytes)"
fi
say "guest assets ready in $CACHE"
