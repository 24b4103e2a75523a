#!/usr/bin/env bash
# Pull speed, against the pipelines a user would otherwise type, in the same run:
#   1. `srlaunch pull alpine` from a loopback Alpine mirror   vs  curl URL | bsdtar -xzf -
#   2. a Debian image (>= 100 MB unpacked) from a loopback docker-registry
#                               vs  skopeo copy docker://... oci:DIR  +  umoci unpack
# Both sides start from an empty destination each run and end with an unpacked tree.
# srlaunch also verifies every digest and syncs the store before the image becomes visible.
# Every run writes into a new directory and nothing is deleted until the end: on ext4, files
# created right after a big `rm -rf` cost several times more (the allocator steps around
# recently deleted inodes), which would measure the benchmark's cleanup, not the tools.
#
#   bench/pull.sh BUILD_DIR        (as root; RUNS=N to change the run count)
set -euo pipefail
build=$(realpath "${1:?usage: bench/pull.sh BUILD_DIR}")
here=$(dirname "$(realpath "$0")")
servers=$here/../tests/servers
runs=${RUNS:-10}
for p in hyperfine curl bsdtar skopeo umoci docker-registry python3 jq; do
  command -v "$p" >/dev/null || { echo "bench/pull.sh: needs $p (toolchain/install-deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/srl-bench-pull.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Starts a server script that prints its port on stdout once it listens; sets $port.
serve() {
  local out=$work/port.$RANDOM
  "$@" > "$out" 2>>"$work/servers.log" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $out ]] && break; sleep 0.1; done
  port=$(head -1 "$out")
  [[ -n $port ]] || { echo "bench/pull.sh: server did not start: $*" >&2; cat "$work/servers.log" >&2; exit 1; }
}

echo "== Alpine minirootfs from a loopback mirror ($runs runs)"
"$servers/alpine_mirror.py" "$work/mirror" >/dev/null
serve "$servers/httpd.py" --root "$work/mirror"
mirror=http://127.0.0.1:$port
tarball=$mirror/alpine/latest-stable/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz
mkdir "$work/runs"
new='d=$(mktemp -d -p '"$work/runs"')'
hyperfine -N --runs "$runs" --warmup 2 --export-json "$work/alpine.json" \
  -n "srlaunch pull alpine" "bash -c '$new && $build/srlaunch --root \$d pull -q --mirror $mirror alpine'" \
  -n "curl | bsdtar" "bash -c '$new && curl -sf $tarball | bsdtar -xzf - -C \$d'" >/dev/null

echo "== Debian bookworm (minbase) from a loopback docker-registry ($runs runs)"
bash "$servers/debian_rootfs.sh" "$build/test-cache" >/dev/null
mkdir -p "$work/registry"
serve "$servers/registry.py" --storage "$work/registry"
registry=127.0.0.1:$port
"$servers/mkimage.py" tarball-image --tar "$build/test-cache/debian-bookworm-minbase.tar" \
  --registry "$registry" --name library/debian:bookworm --cache "$build/test-cache" >/dev/null
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/debian.json" \
  -n "srlaunch pull debian" "bash -c '$new && $build/srlaunch --root \$d pull -q $registry/library/debian:bookworm'" \
  -n "skopeo copy + umoci unpack" "bash -c '$new && skopeo copy -q --src-tls-verify=false docker://$registry/library/debian:bookworm oci:\$d/oci:b && umoci unpack --image \$d/oci:b \$d/bundle >/dev/null'" >/dev/null
unpacked=$(du -sm "$(ls -d "$work"/runs/*/bundle/rootfs | head -1)" | cut -f1)

report() {
  jq -r '.results[] | "\(.command)\t\(.mean*1000)\t\(.stddev*1000)"' "$1" | {
    IFS=$'\t' read -r c1 m1 s1; IFS=$'\t' read -r c2 m2 s2
    printf "| %-28s | %8.1f ms ± %5.1f | %5.2f× |\n" "$c1" "$m1" "$s1" "$(awk -v a="$m1" -v b="$m2" 'BEGIN{print a/b}')"
    printf "| %-28s | %8.1f ms ± %5.1f | %5.2f× |\n" "$c2" "$m2" "$s2" 1
  }
}
echo
echo "| command | mean ± σ | ratio |"
echo "|---|---|---|"
report "$work/alpine.json"
report "$work/debian.json"
echo "(Debian image: ${unpacked} MB unpacked)"
