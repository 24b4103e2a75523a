#!/usr/bin/env bash
# Compares srinit with tini-static, catatonit and dumb-init, each as PID 1 of a fresh PID
# namespace (unshare --fork --pid --mount-proc), in one run, and prints a Markdown table.
#   bench/init.sh [BUILD_DIR]      (default: build; needs root, hyperfine, the three peers)
# Figures on this shared machine are noisy: compare the ratios, not the absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
srinit=$(realpath "$build/srinit")
orphans=$(realpath "$build/helpers/orphans")
siglat=$(realpath "$build/helpers/siglat")
runs=${RUNS:-3}
[[ $EUID -eq 0 ]] || { echo "bench/init.sh: needs root (PID namespaces)" >&2; exit 1; }
for t in hyperfine tini-static catatonit dumb-init jq taskset; do
  command -v "$t" >/dev/null || { echo "bench/init.sh: needs $t (toolchain/install-deps.sh)" >&2; exit 1; }
done

# name | command prefix that runs the rest of the line as the workload
inits=(
  "srinit|$srinit --"
  "tini-static|$(command -v tini-static) --"
  "catatonit|$(command -v catatonit) --"
  "dumb-init|$(command -v dumb-init)"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Idle VmRSS of PID 1 while its workload sleeps.
idle_rss_kib() {
  unshare --fork --pid --mount-proc $1 sleep 1000 &
  local outer=$! pid1="" i
  for i in $(seq 100); do
    pid1=$(cat /proc/$outer/task/$outer/children 2>/dev/null | awk '{print $1}')
    [[ -n $pid1 ]] && [[ -n $(cat /proc/$pid1/task/$pid1/children 2>/dev/null) ]] && break
    sleep 0.02
  done
  sleep 0.2
  awk '/^VmRSS/ {print $2}' /proc/$pid1/status
  kill -KILL "$pid1" 2>/dev/null || true
  wait "$outer" 2>/dev/null || true
}

# Median wall seconds of a workload under each init, all in one hyperfine run.
median_ms() {  # $1 = label, $2 = workload
  local args=()
  for entry in "${inits[@]}"; do
    args+=(-n "${entry%%|*}" "unshare --fork --pid --mount-proc ${entry#*|} $2")
  done
  hyperfine -N --runs "$runs" --export-json "$tmp/$1.json" "${args[@]}" >/dev/null
}

median_ms spawn "$orphans spawn 10000"
median_ms burst "$orphans burst 10000"

declare -A size rss spawn burst lat
for entry in "${inits[@]}"; do
  name=${entry%%|*}
  prefix=${entry#*|}
  bin=${prefix%% *}
  size[$name]=$(stat -c %s "$bin")
  rss[$name]=$(idle_rss_kib "$prefix")
  spawn[$name]=$(jq -r --arg n "$name" '.results[] | select(.command==$n) | .median * 1000 | floor' "$tmp/spawn.json")
  burst[$name]=$(jq -r --arg n "$name" '.results[] | select(.command==$n) | .median * 1000 | floor' "$tmp/burst.json")
done
# Signal latency is measured with every process on one CPU: unpinned, whether the init and its
# workload land on the same CPU decides more than the init does (a cross-CPU wake-up in this VM
# costs ~50 µs). Rounds alternate between the inits; the figure is the mean of their medians.
rounds=${LATENCY_ROUNDS:-6}
for r in $(seq "$rounds"); do
  for entry in "${inits[@]}"; do
    name=${entry%%|*}
    l=$(taskset -c 1 "$siglat" measure 201 ${entry#*|})
    lat[$name]=$(awk -v a="${lat[$name]:-0}" -v b="$l" -v n="$rounds" 'BEGIN { printf "%.1f", a + b / n }')
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| init | binary bytes | idle VmRSS KiB | 10,000 orphans ms | burst of 10,000 ms | SIGTERM→handler µs |"
echo "|---|---:|---:|---:|---:|---:|"
for entry in "${inits[@]}"; do
  n=${entry%%|*}
  echo "| $n | ${size[$n]} | ${rss[$n]} | ${spawn[$n]} | ${burst[$n]} | ${lat[$n]} |"
done
t=tini-static
echo "| srinit ÷ tini-static | $(ratio "${size[srinit]}" "${size[$t]}") | $(ratio "${rss[srinit]}" "${rss[$t]}") | $(ratio "${spawn[srinit]}" "${spawn[$t]}") | $(ratio "${burst[srinit]}" "${burst[$t]}") | $(ratio "${lat[srinit]}" "${lat[$t]}") |"
