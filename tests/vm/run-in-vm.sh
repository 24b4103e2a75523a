#!/usr/bin/env bash
# Runs a command in a small Linux guest under QEMU (TCG: no KVM needed) whose only cgroup
# hierarchy is cgroup v2, and exits with the command's status. The command's stdout and
# stderr come out on this script's stdout and stderr.
#
#   run-in-vm.sh [options] -- CMD [ARG...]
#     --cpus N        vCPUs (default 2)
#     --mem SIZE      guest memory, QEMU syntax (default 2G)
#     --rw DIR        share DIR read-write at the same path in the guest (repeatable, mounted in
#                     order); the rest of the host's / is there read-only, with a writable tmpfs
#                     over it, except /tmp, which is the guest's own: a DIR under /tmp (or
#                     reached through a symlink there) appears at its path as given, symlinks
#                     not followed, so paths the tests were built with hold in the guest
#     --env NAME      pass the variable NAME (if set) into the guest (repeatable; CI always)
#     --cache DIR     where the kernel and initramfs are kept (default $SRLAUNCH_VM_CACHE, else
#                     ~/.cache/srlaunch-vm)
#     --timeout SECS  end the guest after SECS seconds (default 1800)
#     --console FILE  keep the guest's kernel console log in FILE
#     --offline       use the kernel fetched last into the cache (no apt look-up)
#     --prepare       only fetch the kernel and build the initramfs; no command
#
# The guest: Debian's stock kernel (fetch-kernel.sh; a different package with
# $SRLAUNCH_VM_KERNEL), busybox and the modules in an initramfs (mkinitramfs.sh), PID 1
# guest-init.sh. CMD runs as root in the host's current directory, in the cgroup
# /test.slice/session.scope, with /tmp on a fresh ext4 scratch disk (8 GiB, sparse) and 512 MiB
# of swap on a disk of its own (sparse too), as most hosts have swap and the memory tests show
# what the limits do with it.
#
# Exit status: CMD's; 125 when the guest ended without one (the console's last lines are
# printed). A missing prerequisite (QEMU, busybox-static, the kernel package) exits 77
# (skipped) — with CI=true it is a failure (1) instead.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "run-in-vm: $*" >&2; exit 125; }
missing() {
    if [[ ${CI:-} == true ]]; then
        echo "run-in-vm: FAILED: $* (a missing prerequisite fails under CI=true)" >&2
        exit 1
    fi
    echo "run-in-vm: SKIPPED: $*" >&2
    exit 77
}

cpus=2 mem=2G timeout_s=1800 console="" offline=false prepare=false cache=${SRLAUNCH_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/srlaunch-vm}
rw=() rw_at=() envs=(CI)
while (($#)); do
    case $1 in
        --cpus) cpus=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --rw) rw+=("$(realpath "$2")"); rw_at+=("$(realpath -s "$2")"); shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --console) console=$2; shift 2 ;;
        --offline) offline=true; shift ;;
        --prepare) prepare=true; shift ;;
        --) shift; break ;;
        *) die "unknown option $1 (usage: run-in-vm.sh [--cpus N] [--mem SIZE] [--rw DIR]... -- CMD...)" ;;
    esac
done
(($#)) || $prepare || die "no command (usage: run-in-vm.sh [options] -- CMD...)"
[[ $(id -u) == 0 ]] || missing "root (9p passthrough shares, mknod in the initramfs)"

qemu=$(command -v qemu-system-x86_64) || missing "qemu-system-x86_64 (package qemu-system-x86)"
command -v busybox >/dev/null || missing "busybox (package busybox-static)"
command -v mkfs.ext4 >/dev/null || missing "mkfs.ext4 (package e2fsprogs)"

mkdir -p "$cache"
cache=$(realpath "$cache")
if $offline && [[ -e $cache/current/.complete ]]; then
    kdir=$cache/current
else
    kdir=$("$here/fetch-kernel.sh" "$cache") || missing "the guest kernel (fetch-kernel.sh failed)"
fi
release=$(cat "$kdir/release")
# Rebuilt whenever the guest's init, module list or busybox change.
key=$(cat "$here/guest-init.sh" "$here/modules" "$here/mkinitramfs.sh" "$(command -v busybox)" | sha256sum | cut -c1-12)
initramfs="$cache/initramfs-$release-$key.cpio"
if [[ ! -e $initramfs ]]; then
    rm -f "$cache"/initramfs-*.cpio
    "$here/mkinitramfs.sh" "$kdir" "$initramfs"
fi
if $prepare; then
    echo "run-in-vm: $(cat "$kdir/package") and $initramfs ready"
    exit 0
fi

run=$(mktemp -d "${TMPDIR:-/tmp}/srl-vm.XXXXXX")
qemu_pid=""
cleanup() {
    [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$run/ctl"

# The command, as a bash script run in the guest: same directory, same arguments.
{
    for name in "${envs[@]}"; do
        [[ -n ${!name+set} ]] && printf 'export %s=%q\n' "$name" "${!name}"
    done
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$run/ctl/cmd"
date +%s >"$run/ctl/epoch"

# /tmp of the guest. No journal and no metadata checksums: nothing on it outlives the run, and
# both cost under emulation. Inode tables written now, not by the guest's lazy init thread
# while the I/O tests measure.
truncate -s 8G "$run/scratch.img"
mkfs.ext4 -q -F -O ^has_journal,^metadata_csum -i 65536 -E lazy_itable_init=0,nodiscard,root_owner=0:0 \
    "$run/scratch.img" || die "mkfs.ext4 failed"

# The guest's swap: a disk of its own rather than a file on /tmp, so the tests' scratch space
# is all theirs; mkswap'd by the guest (busybox), which has it on /dev/vdb.
truncate -s 512M "$run/swap.img"

# A path inside a QEMU option: commas doubled.
q() { printf '%s' "${1//,/,,}"; }

# A pc machine booting the ELF vmlinux through its PVH entry point: about half the time of a
# BIOS boot of the bzImage. (microvm would be leaner, but under TCG its guest finds no clock to
# calibrate the TSC against and hangs.) Kernel command line: tsc=reliable, as TCG's TSC is the
# host's on every vCPU (the guest would otherwise call it unsynchronised and read the time from
# the emulated HPET, a trap into QEMU on every clock_gettime); mitigations=off, as there is
# nothing to protect in a throwaway guest and emulating them costs.
args=(
    -M pc -accel tcg -cpu max -smp "$cpus" -m "$mem"
    -nodefaults -no-user-config -display none -no-reboot -monitor none
    -kernel "$kdir/vmlinux" -initrd "$initramfs"
    -append "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init tsc=reliable mitigations=off"
    -chardev "file,id=console,path=$(q "$run/console.log")" -serial chardev:console
    -fsdev "local,id=host,path=/,security_model=passthrough,readonly=on,multidevs=remap"
    -device virtio-9p-pci,fsdev=host,mount_tag=host
    -fsdev "local,id=vmctl,path=$(q "$run/ctl"),security_model=passthrough"
    -device virtio-9p-pci,fsdev=vmctl,mount_tag=vmctl
    -drive "file=$(q "$run/scratch.img"),if=none,id=scratch,format=raw,cache=unsafe,discard=ignore"
    -device virtio-blk-pci,drive=scratch
    -drive "file=$(q "$run/swap.img"),if=none,id=swap,format=raw,cache=unsafe,discard=ignore"
    -device virtio-blk-pci,drive=swap
    # hvc0 and hvc1: the command's stdout and stderr, through FIFOs into ours (below).
    -device virtio-serial-pci
    -chardev "file,id=out,path=$(q "$run/out.fifo")" -device virtconsole,chardev=out
    -chardev "file,id=err,path=$(q "$run/err.fifo")" -device virtconsole,chardev=err
)
: >"$run/ctl/shares"
for i in "${!rw[@]}"; do
    args+=(-fsdev "local,id=rw$i,path=$(q "${rw[$i]}"),security_model=passthrough"
        -device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
    printf 'rw%d %s\n' "$i" "${rw_at[$i]}" >>"$run/ctl/shares"
done

# cat writes to this script's own stdout and stderr: QEMU opening /proc/self/fd/1 would get a
# file description of its own, whose offset overwrites ours when that is a plain file.
mkfifo "$run/out.fifo" "$run/err.fifo"
cat "$run/out.fifo" &
out_pid=$!
cat "$run/err.fifo" >&2 &
err_pid=$!
timeout -k 10 "$timeout_s" "$qemu" "${args[@]}" </dev/null &
qemu_pid=$!
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=""
# If QEMU failed before it opened the FIFOs, the cats still wait for a writer: be one, briefly
# (read-write opens of a FIFO do not block).
exec 3<>"$run/out.fifo" 4<>"$run/err.fifo"
exec 3>&- 4>&-
wait "$out_pid" "$err_pid" || true
[[ -n $console ]] && { cp "$run/console.log" "$console" 2>/dev/null || : >"$console"; }

if [[ ! -s $run/ctl/status ]]; then
    {
        if ((qemu_status == 124)); then
            echo "run-in-vm: the guest did not finish within ${timeout_s}s"
        else
            echo "run-in-vm: the guest ended without the command's status (QEMU exit $qemu_status)"
        fi
        echo "run-in-vm: the guest console's last lines:"
        tail -n 40 "$run/console.log" 2>/dev/null | sed 's/^/  | /' || true
    } >&2
    exit 125
fi
exit "$(cat "$run/ctl/status")"
