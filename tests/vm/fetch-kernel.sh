#!/usr/bin/env bash
# Fetches Debian's stock kernel for the cgroup v2 test guest into a cache directory and prints
# the directory that holds it:
#   CACHE/<package>_<version>/vmlinux                  uncompressed, booted via PVH
#   CACHE/<package>_<version>/lib/modules/<release>/   the modules the guest loads, modules.dep
#   CACHE/<package>_<version>/release                  e.g. 6.1.0-57-amd64
#
#   fetch-kernel.sh CACHE [PACKAGE]
#
# PACKAGE defaults to $SRLAUNCH_VM_KERNEL, else to what Debian's linux-image-amd64 depends on
# (the distribution's current stock kernel). The package comes from the apt archive with
# `apt-get download` and is unpacked with `dpkg-deb -x`: nothing is installed on the host.
# Only the vmlinux and ~30 modules are kept (the package unpacks to ~400 MB).
set -euo pipefail

die() { echo "fetch-kernel: $*" >&2; exit 1; }
(($# >= 1 && $# <= 2)) || die "usage: fetch-kernel.sh CACHE [PACKAGE]"
cache=$1
pkg=${2:-${SRLAUNCH_VM_KERNEL:-}}

# The modules the guest loads (tests/vm/modules); their dependencies come along.
mapfile -t modules < <(sed 's/#.*//; /^ *$/d; s/ *$//' "$(dirname "$0")/modules")

stock_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1
}

mkdir -p "$cache"
if [[ -z $pkg ]]; then
    pkg=$(stock_package)
    if [[ -z $pkg && $(id -u) == 0 ]]; then
        apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(stock_package)
    fi
    if [[ -z $pkg ]]; then
        # No apt lists (or no network): any kernel fetched before will do.
        for done_file in "$cache"/*/.complete; do
            [[ -e $done_file ]] && found "$(dirname "$done_file")"
        done
        die "cannot tell which kernel package to use (apt-cache knows no linux-image-amd64; run apt-get update)"
    fi
fi

# The kernel chosen, also for `run-in-vm.sh --offline`: $cache/current.
found() {
    ln -sfn "$(basename "$1")" "$cache/current"
    echo "$1"
    exit 0
}

version=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
if [[ -n $version ]]; then
    dir="$cache/${pkg}_${version}"
    [[ -e $dir/.complete ]] && found "$dir"
else
    # Known by name only from an earlier fetch.
    for done_file in "$cache/${pkg}"_*/.complete; do
        [[ -e $done_file ]] && found "$(dirname "$done_file")"
    done
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download -q "$pkg" >"$work/apt.log" 2>&1); }
if ! download; then
    # Stale lists name a version the archive no longer has: refresh once (root only).
    [[ $(id -u) == 0 ]] && apt-get update -qq >/dev/null 2>&1 || true
    download || die "apt-get download $pkg failed: $(tail -1 "$work/apt.log")"
fi
deb=$(echo "$work"/*.deb)
[[ -f $deb ]] || die "apt-get download $pkg produced no .deb"
version=$(dpkg-deb -f "$deb" Version)
dir="$cache/${pkg}_${version}"
[[ -e $dir/.complete ]] && found "$dir"

# Only the parts that can hold what the guest loads: the whole package unpacks to ~400 MB,
# mostly hardware drivers.
mkdir "$work/x"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards './boot/*' './lib/modules/*/modules.*' \
    './lib/modules/*/kernel/'{fs,net,lib,crypto,arch,drivers/virtio,drivers/block,drivers/char,drivers/net}'/*'
vmlinuz=$(echo "$work"/x/boot/vmlinuz-*)
[[ -f $vmlinuz ]] || die "$pkg has no /boot/vmlinuz-*"
release=${vmlinuz##*/vmlinuz-}

# vmlinux out of the bzImage, as the kernel's scripts/extract-vmlinux does: the payload is the
# first compressed stream in it (Debian: xz; the others for a kernel built otherwise). A PVH
# boot of the ELF vmlinux takes half the time of a BIOS boot of the bzImage under TCG.
extract() {  # MAGIC-as-grep-P DECOMPRESSOR...
    local magic=$1 off
    shift
    off=$(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | head -1 | cut -d: -f1) || true
    [[ -n $off ]] || return 1
    # The decompressor complains about the data after the stream; what it wrote is checked.
    tail -c +$((off + 1)) "$vmlinuz" | "$@" >"$work/vmlinux" 2>/dev/null || true
    [[ $(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ') == 177ELF ]]
}
extract '\xfd7zXZ\x00' xz -dc || extract '\x28\xb5\x2f\xfd' zstd -dc || extract '\x1f\x8b\x08' gzip -dc ||
    die "cannot extract vmlinux from $vmlinuz (not xz, zstd or gzip?)"

# The module closure, from each module's own `depends=` (its .modinfo section): no depmod over
# the whole tree (the host need not have kmod, and busybox's takes long). A dependency outside
# the directories unpacked is an error here.
moddir="$work/x/lib/modules/$release"
declare -A path_of=() want=()
while read -r f; do
    n=${f##*/}
    n=${n%.ko}
    path_of[${n//-/_}]=$f
done < <(cd "$moddir" && find kernel -name '*.ko')
add() {  # module name
    local n=${1//-/_} dep
    [[ -n ${want[$n]:-} ]] && return
    [[ -n ${path_of[$n]:-} ]] || die "$pkg has no module $n (built in? then drop it from tests/vm/modules)"
    want[$n]=${path_of[$n]}
    objcopy -O binary --only-section=.modinfo "$moddir/${path_of[$n]}" "$work/modinfo"
    for dep in $(tr '\0' '\n' <"$work/modinfo" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add "$dep"
    done
}
for m in "${modules[@]}"; do add "$m"; done

out="$work/out"
mkdir -p "$out/lib/modules/$release"
for path in "${want[@]}"; do
    mkdir -p "$out/lib/modules/$release/$(dirname "$path")"
    cp "$moddir/$path" "$out/lib/modules/$release/$path"
done
cp "$moddir/modules.builtin" "$moddir/modules.order" "$out/lib/modules/$release/" 2>/dev/null || true
busybox depmod -b "$out" "$release"
mv "$work/vmlinux" "$out/vmlinux"
cp "$work/x/boot/config-$release" "$out/config"
echo "$release" >"$out/release"
echo "$pkg $version" >"$out/package"
rm -rf "$dir"
mv "$out" "$dir"
touch "$dir/.complete"
echo "fetch-kernel: $pkg $version ($release) in $dir" >&2
found "$dir"
