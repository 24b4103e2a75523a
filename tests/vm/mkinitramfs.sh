#!/usr/bin/env bash
# Builds the test guest's initramfs (an uncompressed newc cpio): busybox-static, the kernel's
# modules from fetch-kernel.sh, and guest-init.sh as /init.
#
#   mkinitramfs.sh KERNEL_DIR OUT
set -euo pipefail

die() { echo "mkinitramfs: $*" >&2; exit 1; }
(($# == 2)) || die "usage: mkinitramfs.sh KERNEL_DIR OUT"
kdir=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox) || die "busybox not found (package busybox-static)"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static (package busybox-static)"
release=$(cat "$kdir/release")

work=$(mktemp -d "${TMPDIR:-/tmp}/srl-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,etc,mnt,newroot,lib/modules}
# The kernel opens /dev/console for init's stdio before anything is mounted.
mknod -m 0600 "$work/dev/console" c 5 1 || die "mknod /dev/console (run as root)"
cp "$busybox" "$work/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$work/bin/$applet"
done
cp -a "$kdir/lib/modules/$release" "$work/lib/modules/"
sed 's/#.*//; /^ *$/d; s/ *$//' "$here/modules" >"$work/etc/modules"
install -m 0755 "$here/guest-init.sh" "$work/init"
# Uncompressed: QEMU hands it over in one DMA copy, and decompressing under TCG is slow.
(cd "$work" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) >"$out.tmp"
mv "$out.tmp" "$out"
