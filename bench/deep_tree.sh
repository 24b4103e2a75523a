#!/usr/bin/env bash
# Deep trees (issue 14): `srlaunch import` of a tarball holding a tree N directories deep, against
# bsdtar and GNU tar extracting the same tarball, and `srlaunch rmi` of the image, against rm -rf
# of the same tree; N = 1000, 2000, 4000, 10000. Prints Markdown tables of means and ratios.
#
# The tree: N nested directories named "d" and a file at the bottom, in pax format (the paths
# outgrow ustar's 100 bytes, and past depth 2,048 they outgrow PATH_MAX, 4096 bytes). Each tool
# is run once, checked (the bottom file's content, read through fds, as no path reaches it) and
# only then timed; a tool that fails shows how and after how long instead of a time.
#
#   bench/deep_tree.sh [BUILD_DIR]   (as root; default BUILD_DIR: build)
#   DEPTHS="1000 4000"  the depths (default 1000 2000 4000 10000)
#   RUNS=N              timed runs per command (default 5)
#   WORK=DIR            where the trees go (default /var/tmp): its file system is part of what is
#                       measured (an ext4 mounted with discard makes every removal slow, for
#                       rm -rf as much as for rmi)
#   LIMIT=S             seconds after which a tool is given up on (default 300)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
[[ $EUID -eq 0 ]] || { echo "bench/deep_tree.sh: needs root (srlaunch keeps owners)" >&2; exit 1; }
[[ -x $build/srlaunch ]] || { echo "bench/deep_tree.sh: no $build/srlaunch (build first)" >&2; exit 1; }
srlaunch=$(realpath "$build/srlaunch")
for t in hyperfine jq python3 bsdtar tar timeout; do
  command -v "$t" >/dev/null || { echo "bench/deep_tree.sh: needs $t (toolchain/install-deps.sh)" >&2; exit 1; }
done
depths=${DEPTHS:-1000 2000 4000 10000}
runs=${RUNS:-5}
limit=${LIMIT:-300}

work=$(mktemp -d "${WORK:-/var/tmp}/srl-bench-deep.XXXXXX")
trap 'rm -rf "$work"' EXIT

# make DEPTH FILE: the tarball, written directly (no tool can make such a tree from paths).
make_tar() {
  python3 - "$1" "$2" <<'EOF'
import sys
def header(name, typeflag, size, mode):
    h = bytearray(512)
    h[0:99] = name.encode()[:99].ljust(99, b"\0")
    h[100:108] = b"%07o\0" % mode
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % 1700000000
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)
def pad(n): return b"\0" * (-n % 512)
def entry(out, path, typeflag, data=b"", mode=0o755):
    body = b" path=%s\n" % path.encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n: n += 1
    rec = str(n).encode() + body
    out.write(header("PaxHeader", b"x", len(rec), 0o644) + rec + pad(len(rec)))
    out.write(header(path, typeflag, len(data), mode) + data + pad(len(data)))
depth, dest = int(sys.argv[1]), sys.argv[2]
with open(dest, "wb", buffering=1 << 20) as out:
    path = ""
    for _ in range(depth):
        path += "d/"
        entry(out, path, b"5")
    entry(out, path + "bottom", b"0", b"the bottom\n", 0o644)
    out.write(b"\0" * 1024)
EOF
}

# bottom DIR DEPTH: the content of the file at the bottom, or nothing.
bottom() {
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for _ in range(int(sys.argv[2])):
    fd = os.open("d", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
print(open(os.open("bottom", os.O_RDONLY, dir_fd=fd)).read(), end="")
EOF
}

# cell NAME CHECK PREPARE COMMAND: PREPARE and COMMAND once, then CHECK (evaluated here, true if
# the result is right), then hyperfine; prints the table cell ("123.4 ms ± 5.6"), and the mean in
# ms to $work/NAME.mean (empty when the tool failed).
cell() {
  local name=$1 check=$2 prepare=$3 command=$4 start err mean
  : > "$work/$name.mean"
  bash -c "$prepare" >/dev/null 2>&1
  start=$EPOCHREALTIME
  if ! err=$(timeout "$limit" bash -c "$command" 2>&1 >/dev/null); then
    # The error without the path it names, which is as long as the tree is deep.
    printf "fails after %.1f s: %s" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')" \
      "$(head -1 <<<"${err:-timed out after $limit s}" | awk -F': ' 'NF > 2 {print $(NF-1) ": " $NF; next} {print}' | cut -c1-80)"
    return
  fi
  if ! eval "$check"; then
    printf "wrong result"
    return
  fi
  hyperfine -N --runs "$runs" --prepare "bash -c '$prepare'" --export-json "$work/$name.json" \
    "bash -c '$command'" >/dev/null 2>&1
  mean=$(jq '.results[0].mean * 1000' "$work/$name.json")
  echo "$mean" > "$work/$name.mean"
  printf "%.1f ms ± %.1f" "$mean" "$(jq '.results[0].stddev * 1000' "$work/$name.json")"
}
mean() { cat "$work/$1.mean"; }

ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f×", a/b}' || printf -- "-"; }

echo "srlaunch $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(findmnt -no FSTYPE,OPTIONS -T "$work" | tail -1 | cut -c1-60), $runs runs"
import_rows=() rmi_rows=()
for n in $depths; do
  tar=$work/deep-$n.tar
  make_tar "$n" "$tar"
  s=$work/store x=$work/x rootfs=$work/store/images/deep/@1/rootfs
  fresh="rm -rf $s $x; mkdir $x"
  has_bottom() { [[ $(bottom "$1" "$n") == "the bottom" ]]; }
  srl=$(cell "import-$n" 'has_bottom $rootfs' "$fresh" "$srlaunch --root $s import $tar deep:1")
  bsd=$(cell "bsdtar-$n" 'has_bottom $x' "$fresh" "bsdtar -xf $tar -C $x")
  gnu=$(cell "gnutar-$n" 'has_bottom $x' "$fresh" "tar -xf $tar -C $x")
  import_rows+=("| $n | $srl | $bsd | $gnu | $(ratio "$(mean import-$n)" "$(mean bsdtar-$n)") | $(ratio "$(mean import-$n)" "$(mean gnutar-$n)") |")
  imported="rm -rf $s; $srlaunch --root $s import $tar deep:1"
  gone='[[ -z $(ls -A $s/images) ]]'
  rmi=$(cell "rmi-$n" "$gone" "$imported" "$srlaunch --root $s rmi deep:1")
  rm=$(cell "rm-$n" "$gone" "$imported" "rm -rf $s/images/deep")
  rmi_rows+=("| $n | $rmi | $rm | $(ratio "$(mean rmi-$n)" "$(mean rm-$n)") |")
  rm -rf "$s" "$x" "$tar"
done
echo
echo "| depth | srlaunch import | bsdtar -x | GNU tar -x | vs bsdtar | vs GNU tar |"
echo "|---|---|---|---|---|---|"
printf "%s\n" "${import_rows[@]}"
echo
echo "| depth | srlaunch rmi | rm -rf | vs rm -rf |"
echo "|---|---|---|---|"
printf "%s\n" "${rmi_rows[@]}"
