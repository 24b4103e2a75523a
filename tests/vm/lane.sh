#!/usr/bin/env bash
# The cgroup v2 lane's command inside the test guest (run by ctest through run-in-vm.sh):
#
#   lane.sh BUILD_DIR cgroup        the resource-limit tests (cgroup_tests), alone
#   lane.sh BUILD_DIR integration   run, security, seccomp, devices, privileged, escape,
#                                   rootless and lifecycle tests (integration_tests), in two
#                                   shards at once
#
# It first checks that the guest is what the lane claims to test (cgroup v2 as the only
# hierarchy, every controller srlaunch uses, swap), and last that no container's cgroup is
# left anywhere in it. Exit status: 0 when everything passed, 1 otherwise (never 77: ctest would
# read that as "skipped", and Catch2 exits with its failed-assertion count).
set -euo pipefail

die() { echo "lane: $*" >&2; exit 1; }
(($# == 2)) || die "usage: lane.sh BUILD_DIR cgroup|integration"
build=$1 group=$2

# The integration tests of the lane, by tag. One combined filter, so that a tag with no tests
# yet (lifecycle, while it is being written) selects nothing instead of failing the run.
# Not here: the pull tests (loopback servers, nothing cgroup-related, slow under emulation),
# the 100-container leak test and the 100 killed starts (minutes of emulation each; every test here and in the
# cgroup group checks for leftover cgroups, and this script checks the whole tree at the end).
integration_filter='[run]~[pull]~"leaks: 100*",[security],[seccomp],[cgroup-v2-devices],[privileged],[escape],'
integration_filter+='[rootless]~"rootless: pull*",[lifecycle]~"recovery: 100*"'

# ---- the guest is a pure cgroup v2 host ------------------------------------------------
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] || die "/sys/fs/cgroup is not cgroup2"
if grep -qE '^[^ ]+ [^ ]+ cgroup ' /proc/mounts; then die "a cgroup v1 hierarchy is mounted"; fi
for c in cpu memory io pids cpuset; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.subtree_control || die "controller $c is not enabled below the root"
done
# Swap (guest-init.sh turns it on), accounted per cgroup: the memory tests need both.
swap_kib=$(awk 'NR > 1 { kib += $3 } END { print kib + 0 }' /proc/swaps)
((swap_kib > 0)) || die "no swap in the guest"
[[ -e /sys/fs/cgroup/test.slice/memory.swap.max ]] || die "the kernel does not account swap (no memory.swap.max)"
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
echo "lane: $(uname -r), cgroup2 only ($(grep -o 'nsdelegate' /proc/mounts | head -1 || true)), controllers:" \
    "$(cat /sys/fs/cgroup/cgroup.subtree_control), $((swap_kib / 1024)) MiB of swap, running in $own"

status=0
case $group in
    cgroup)
        # Everything, the [swap] tests too (ctest on the host, which has no swap, leaves them out).
        "$build/tests/cgroup_tests" --use-colour no -d yes || status=1
        ;;
    integration)
        bin="$build/tests/integration_tests"
        mapfile -t names < <("$bin" --list-test-names-only "$integration_filter" | sed '/^$/d')
        ((${#names[@]})) || die "no integration test matches $integration_filter"
        # Two shards at once (the guest has two CPUs, and one test keeps about one busy), the
        # tests dealt alternately. Names are escaped for Catch2's test spec: , [ ] \.
        specs=("" "")
        for i in "${!names[@]}"; do
            n=${names[$i]//\\/\\\\}
            n=${n//,/\\,}
            n=${n//[/\\[}
            n=${n//]/\\]}
            specs[$((i % 2))]+="${specs[$((i % 2))]:+,}\"$n\""
        done
        echo "lane: ${#names[@]} integration tests in 2 shards"
        out=$(mktemp -d)
        pids=()
        for s in 0 1; do
            [[ -n ${specs[$s]} ]] || continue
            "$bin" --use-colour no -d yes "${specs[$s]}" >"$out/$s.log" 2>&1 &
            pids[$s]=$!
        done
        for s in "${!pids[@]}"; do
            wait "${pids[$s]}" || status=1
            echo "==== shard $((s + 1)) of 2"
            cat "$out/$s.log"
        done
        rm -rf "$out"
        ;;
    *) die "unknown group $group (cgroup or integration)" ;;
esac

# ---- nothing srlaunch made is left ------------------------------------------------------
# No container's cgroup (a directory below a srlaunch/ one). The guest runs the lane alone, so
# every one is the lane's own. The shared srlaunch/ parent itself may stay, as docker's does.
left=$(find /sys/fs/cgroup -mindepth 1 -type d -path '*/srlaunch/*' 2>/dev/null || true)
if [[ -n $left ]]; then
    echo "lane: container cgroups left behind:" >&2
    echo "$left" | sed 's/^/  /' >&2
    status=1
else
    echo "lane: no container cgroup left in /sys/fs/cgroup"
fi
exit "$status"
