#!/usr/bin/env bash
# The Debian rootfs fixture: `debootstrap --variant=minbase bookworm` from Debian's archive,
# tarred with numeric owners to CACHE_DIR/debian-bookworm-minbase.tar.
#
#   debian_rootfs.sh CACHE_DIR [MIRROR]      (MIRROR default http://deb.debian.org/debian)
#
# Skipped when the tarball is already there. The tarball appears atomically (written beside it,
# then renamed), and a lock keeps two runs from building it at once. Needs root and debootstrap
# (without them it exits 77, "skipped", unless CI=true).
# The one test fixture that talks to a non-loopback host: Debian's archive.
set -euo pipefail

cache=${1:?usage: debian_rootfs.sh CACHE_DIR [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
out="$cache/debian-bookworm-minbase.tar"

if [[ -s $out ]]; then
  echo "debian_rootfs.sh: $out is there"
  exit 0
fi
# A missing prerequisite skips (77, ctest's SKIP_RETURN_CODE) except under CI=true.
missing() {
  echo "debian_rootfs.sh: missing prerequisite: $1" >&2
  [[ ${CI:-} == true ]] && exit 1
  exit 77
}
command -v debootstrap >/dev/null || missing "debootstrap"
[[ $(id -u) == 0 ]] || missing "root"

mkdir -p "$cache"
exec 9>"$cache/debian-rootfs.lock"
flock 9
if [[ -s $out ]]; then  # built by the run we waited for
  echo "debian_rootfs.sh: $out is there"
  exit 0
fi

remove_tree() {
  # debootstrap unmounts what it mounted, unless it was killed: unmount anything left below.
  grep -o " $1/[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m"
  done
  rm -rf "$1"
}
# Trees left by a run that was killed (we hold the lock, so nobody is using them).
for stale in "$cache"/tmp-debootstrap-*; do
  [[ -e $stale ]] && (set +e; remove_tree "$stale")
done

work=$(mktemp -d "$cache/tmp-debootstrap-XXXXXX")
trap 'set +e; remove_tree "$work"' EXIT
trap 'exit 1' INT TERM HUP

echo "debian_rootfs.sh: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  [[ -f $work/rootfs/debootstrap/debootstrap.log ]] && tail -n 30 "$work/rootfs/debootstrap/debootstrap.log" >&2
  echo "debian_rootfs.sh: debootstrap failed" >&2
  exit 1
}
# What the official images also leave out: downloaded packages and index files.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/debootstrap"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$work/rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
echo "debian_rootfs.sh: wrote $out ($(du -h "$out" | cut -f1))"
