#!/usr/bin/env bash
# Container start-to-exit time of `/bin/true`: srlaunch against crun, runc, bwrap and a bare
# unshare+chroot (the floor), all over the same Alpine minirootfs, in one run; prints a Markdown
# table of wall and CPU (user+sys) medians and their ratios to crun.
#   bench/start.sh [BUILD_DIR]     (default: build, relative to the repo root; needs root)
#   RUNS=N                         timed runs per runtime (default 30)
# Figures on this shared machine are noisy: compare the ratios, not the absolute numbers.
set -euo pipefail

[[ $EUID -eq 0 ]] || { echo "bench/start.sh: needs root (namespaces, mounts)" >&2; exit 1; }

# crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported") as long as it can
# read /sys/fs/cgroup/unified/cgroup.controllers. We hide that file behind an empty one, and to do
# so without touching the host we run the whole script in a private mount namespace: every mount
# made here vanishes with it, even if the script is killed. The other runtimes never read that file
# (runc only statfs()es the directory, srlaunch mounts a fresh cgroup2), so sharing the namespace
# changes nothing for them, and lets all five be measured interleaved in one hyperfine run.
if [[ -z ${SRBENCH_PRIVATE_MNTNS:-} ]]; then
  export SRBENCH_PRIVATE_MNTNS=1
  exec unshare --mount --propagation private -- "$BASH" "$(realpath "${BASH_SOURCE[0]}")" "$@"
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
runs=${RUNS:-30}
fixture=$(realpath ../shared/fixtures/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz)
[[ -x $build/srlaunch ]] || { echo "bench/start.sh: no $build/srlaunch (build first)" >&2; exit 1; }
srlaunch=$(realpath "$build/srlaunch")
for t in hyperfine jq crun runc bwrap unshare chroot; do
  command -v "$t" >/dev/null || { echo "bench/start.sh: needs $t (toolchain/install-deps.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d -t srbench.XXXXXX)
rootfs=$tmp/rootfs
mask=/sys/fs/cgroup/unified/cgroup.controllers
id_prefix=srbench-$$   # container ids name cgroups too: keep them apart from anyone else's

cleanup() {
  set +e
  if [[ -n ${hyperfine_pid:-} ]]; then
    kill -TERM -- "-$hyperfine_pid" 2>/dev/null
    wait "$hyperfine_pid" 2>/dev/null
  fi
  # An interrupted `crun/runc run` leaves its container (state and cgroups) behind.
  local rt id
  for rt in crun runc; do
    [[ -d $tmp/$rt-state ]] || continue
    for id in $("$rt" --root "$tmp/$rt-state" list -q 2>/dev/null); do
      "$rt" --root "$tmp/$rt-state" delete -f "$id" >/dev/null 2>&1
    done
  done
  mountpoint -q "$mask" && umount "$mask"
  # Nothing should be mounted under $tmp (each runtime mounts in its own namespace), but never let
  # rm descend into a mount if something is.
  grep -F " $tmp/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -e $mask ]]; then
  : >"$tmp/empty"
  mount --bind "$tmp/empty" "$mask"
fi

# One rootfs for everyone, unpacked from the same tarball srlaunch imports. It is never written:
# crun/runc get `root.readonly`, bwrap `--ro-bind`, the floor only mounts over its /proc in its own
# namespace, and srlaunch runs on its own image under an overlay.
mkdir "$rootfs"
tar -xzf "$fixture" -C "$rootfs"
"$srlaunch" --root "$tmp/store" import "$fixture" alpine:3.20 >/dev/null
touch "$tmp/stamp"

# Same OCI config for crun and runc, differing from `crun spec` only in what runs. The probe bundle
# proves the workload really runs inside Alpine and its status comes back (exit 0 alone would not).
make_bundle() {  # $1 = bundle dir, $2 = JSON array of process.args
  mkdir -p "$1"
  (cd "$1" && crun spec)
  jq --argjson args "$2" --arg root "$rootfs" \
    '.process.args = $args | .process.terminal = false | .root = {path: $root, readonly: true}' \
    "$1/config.json" >"$1/config.json.new"
  mv "$1/config.json.new" "$1/config.json"
}
probe_sh='test -f /etc/alpine-release && exit 42'
make_bundle "$tmp/bundle-true" '["/bin/true"]'
make_bundle "$tmp/bundle-probe" "$(jq -cn --arg s "$probe_sh" '["/bin/sh", "-c", $s]')"

names=(srlaunch crun runc bwrap "unshare+chroot (floor)" "srlaunch + limits")
keys=(srlaunch crun runc bwrap floor limits)
# Issue 5's row: every kind of limit set, with the root filesystem's disk for the blkio one.
rootdev=$(findmnt -no SOURCE / || true)
limits=(-m 256m --memory-swap 512m --cpus 1.5 --cpu-shares 512 --pids-limit 200)
[[ -b $rootdev ]] && limits+=(--device-read-bps "$rootdev:100mb" --device-write-iops "$rootdev:1000")

# Sets `cmd` to the command line of runtime $1 as container $2, running bundle $3 (crun, runc) or
# the argv that follows (the others). The timed and the checked command come from here alike.
runtime_cmd() {
  local rt=$1 id=$2 bundle=$3
  shift 3
  case $rt in
    srlaunch) cmd=("$srlaunch" --root "$tmp/store" run --rm alpine:3.20 "$@") ;;
    limits) cmd=("$srlaunch" --root "$tmp/store" run --rm "${limits[@]}" alpine:3.20 "$@") ;;
    crun | runc) cmd=("$rt" --root "$tmp/$rt-state" run --bundle "$bundle" "$id_prefix-$id") ;;
    bwrap) cmd=(bwrap --unshare-all --die-with-parent --ro-bind "$rootfs" / --proc /proc --dev /dev "$@") ;;
    floor) cmd=(unshare -fpmiun --mount-proc="$rootfs/proc" chroot "$rootfs" "$@") ;;
  esac
}

# Fail loudly before timing anything: each runtime must run the probe (status 42 from inside
# Alpine), then `/bin/true` with status 0; the latter three times over, as warm-up.
for k in "${keys[@]}"; do
  runtime_cmd "$k" probe "$tmp/bundle-probe" /bin/sh -c "$probe_sh"
  status=0
  "${cmd[@]}" </dev/null >"$tmp/out" 2>&1 || status=$?
  if ((status != 42)); then
    echo "bench/start.sh: $k: probe exited $status, want 42: ${cmd[*]}" >&2
    cat "$tmp/out" >&2
    exit 1
  fi
  for w in 1 2 3; do
    runtime_cmd "$k" "warm$w" "$tmp/bundle-true" /bin/true
    "${cmd[@]}" </dev/null >"$tmp/out" 2>&1 || {
      echo "bench/start.sh: $k: /bin/true failed (status $?): ${cmd[*]}" >&2
      cat "$tmp/out" >&2
      exit 1
    }
  done
done

# hyperfine 1.15's JSON has per-run wall times but only the mean user/system per benchmark. To get
# per-run CPU (and fresh container ids for crun/runc, as hyperfine has no {iteration}), every run is
# its own one-run benchmark over a parameter {i} = 1..RUNS. hyperfine orders them run-major
# (i=1: all runtimes, i=2: ...), which also spreads the machine's noise evenly over the runtimes.
commands=()
for k in "${keys[@]}"; do
  runtime_cmd "$k" '{i}' "$tmp/bundle-true" /bin/true
  # hyperfine -N splits the line like a shell would: no word may hold a blank or a quote.
  for word in "${cmd[@]}"; do
    if [[ $word == *[[:space:]\"\'\\]* ]]; then
      echo "bench/start.sh: cannot pass '$word' to hyperfine -N" >&2
      exit 1
    fi
  done
  commands+=("${cmd[*]}")
done
# hyperfine carries on after Ctrl-C here (each benchmark is one run), and bash would run our traps
# only once it returned: so it runs in its own session, which the cleanup can stop as a whole.
setsid hyperfine -N --runs 1 --parameter-scan i 1 "$runs" --export-json "$tmp/start.json" \
  "${commands[@]}" >"$tmp/hyperfine.log" 2>&1 &
hyperfine_pid=$!
wait "$hyperfine_pid" || { cat "$tmp/hyperfine.log" >&2; exit 1; }
hyperfine_pid=

# The runtimes must not have written to the shared rootfs, or later runs measured something else.
if [[ -n $(find "$rootfs" -newer "$tmp/stamp" -print -quit) ]]; then
  echo "bench/start.sh: warning: the rootfs changed during the benchmark:" >&2
  find "$rootfs" -newer "$tmp/stamp" | head >&2
fi

# Medians in ms of wall time and of user+system over one runtime's results, told apart by their
# command line with {i} filled in.
medians_ms() {  # $1 = the runtime's hyperfine command; prints "WALL CPU"
  jq -r --arg t "$1" --argjson runs "$runs" '
    def median: sort | length as $l
      | if $l % 2 == 1 then .[($l - 1) / 2] else (.[$l / 2 - 1] + .[$l / 2]) / 2 end;
    [.results[] | . as $r | select(.command == ($t | gsub("[{]i[}]"; $r.parameters.i)))]
    | if length != $runs then error("\(length) results for \($t), want \($runs)") else . end
    | "\(map(.times[0]) | median * 1000) \(map(.user + .system) | median * 1000)"
  ' "$tmp/start.json"
}
declare -a wall cpu
for i in "${!keys[@]}"; do
  pair=$(medians_ms "${commands[i]}")
  read -r "wall[i]" "cpu[i]" <<<"$pair"
done

echo "start-to-exit of /bin/true, median of $runs runs each; $(crun --version | head -1)," \
  "$(runc --version | head -1), $(bwrap --version), $(hyperfine --version), kernel $(uname -r)"
echo
echo "| runtime | wall median ms | cpu median ms | wall ÷ crun | cpu ÷ crun |"
echo "|---|---:|---:|---:|---:|"
for i in "${!keys[@]}"; do
  awk -v n="${names[i]}" -v w="${wall[i]}" -v c="${cpu[i]}" -v cw="${wall[1]}" -v cc="${cpu[1]}" \
    'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", n, w, c, w / cw, c / cc }'
done
echo
awk -v w="${wall[5]}" -v c="${cpu[5]}" -v bw="${wall[0]}" -v bc="${cpu[0]}" -v l="${limits[*]}" \
  'BEGIN { printf "srlaunch with limits (%s) ÷ without: wall %.2f, cpu %.2f\n", l, w / bw, c / bc }'
