#!/bin/busybox sh
# PID 1 of the cgroup v2 test guest (run-in-vm.sh), from its initramfs. Two stages:
#
#   stage 1 (/init in the initramfs): load the modules, make the root an overlay of the
#     host's / (virtio-9p, read-only) under a tmpfs, mount the scratch disk (ext4) on /tmp,
#     the control share on /run/srl-vm and the read-write shares at their host paths, then
#     switch_root into it, so every host tool and library is there.
#   stage 2 (PID 1 in that root): mount cgroup2 alone (nsdelegate) with cpu, memory, io, pids
#     and cpuset enabled, turn on swap (the second disk), run /run/srl-vm/cmd in a session
#     cgroup, write its exit status to /run/srl-vm/status and power off.
#
# Busybox only (the host's tools are not there in stage 1, and stage 2 must not depend on
# which of them the host has). Anything that goes wrong ends the guest with a message on the
# console and no status file, which run-in-vm.sh reports.
export PATH=/bin

die() {
    echo "guest-init: $*" >/dev/console
    sync
    # -no-reboot makes a reboot end QEMU; reboot=t on the command line (triple fault) needs
    # no keyboard controller or ACPI.
    reboot -f
    sleep 60
}

stage1() {
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev || die "mount devtmpfs"
    for m in $(cat /etc/modules); do modprobe "$m" || die "modprobe $m"; done

    # 9p: the largest message the virtio transport takes (fewer round trips for big reads).
    # cache=loose for the read-only host root: the guest may cache what cannot change under it.
    nine="trans=virtio,version=9p2000.L,msize=512000"
    mkdir -p /mnt/host /mnt/rw /newroot
    mount -t 9p -o "$nine,ro,cache=loose" host /mnt/host || die "mount the host's / (9p)"
    # The upper layer on tmpfs: overlayfs cannot use 9p as its upper layer.
    mount -t tmpfs -o mode=0755 rootrw /mnt/rw
    mkdir /mnt/rw/upper /mnt/rw/work
    mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work guestroot /newroot ||
        die "mount the overlay root"

    mount -t tmpfs -o mode=0755,nosuid,nodev run /newroot/run
    mkdir -p /newroot/run/srl-vm /newroot/run/srl-guest
    mount -t 9p -o "$nine" vmctl /newroot/run/srl-vm || die "mount the control share"
    # /tmp on ext4, not on the overlay or tmpfs: the containers' overlays need an upper layer
    # that is not itself an overlay, and --userns auto an idmapped mount, which tmpfs has only
    # from Linux 6.3.
    mount -t ext4 -o noatime /dev/vda /newroot/tmp || die "mount the scratch disk on /tmp"
    chmod 1777 /newroot/tmp
    while read -r tag path; do
        [ -n "$tag" ] || continue
        mkdir -p "/newroot$path"
        mount -t 9p -o "$nine" "$tag" "/newroot$path" || die "mount share $tag on $path"
    done </newroot/run/srl-vm/shares

    # The modules, where modprobe (the kernel's request_module too) looks for them.
    mkdir -p "/newroot/lib/modules"
    cp -a "/lib/modules/$(uname -r)" /newroot/lib/modules/
    cp /bin/busybox /init /newroot/run/srl-guest/
    for fs in dev proc sys; do mount --move "/$fs" "/newroot/$fs"; done
    exec switch_root /newroot /run/srl-guest/busybox sh /run/srl-guest/init stage2
}

stage2() {
    bb=/run/srl-guest/busybox
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    export HOME=/root LANG=C.UTF-8
    cd /

    # cgroup v2 alone, as on current Debian, Ubuntu and Fedora (systemd mounts it with
    # nsdelegate), every controller srlaunch uses enabled below the root.
    $bb mount -t cgroup2 -o nsdelegate,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup || $bb reboot -f
    controllers="+cpu +memory +io +pids +cpuset"
    echo "$controllers" >/sys/fs/cgroup/cgroup.subtree_control
    # The command runs in a leaf cgroup two levels down, as a login session does under
    # systemd (user.slice/user-0.slice/session-1.scope): the root cgroup is exempt from the
    # "no internal processes" rule, a real host's launcher cgroup never is. So srlaunch is
    # tested where it runs on such hosts, in a cgroup that holds processes of its own.
    slice=/sys/fs/cgroup/test.slice
    $bb mkdir -p $slice/session.scope
    echo "$controllers" >$slice/cgroup.subtree_control

    $bb mkdir -p /dev/pts /dev/shm /dev/mqueue
    $bb mount -t devpts -o newinstance,gid=5,mode=620,ptmxmode=666 devpts /dev/pts
    $bb ln -sf pts/ptmx /dev/ptmx 2>/dev/null || true
    $bb mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
    $bb mount -t mqueue mqueue /dev/mqueue
    $bb ln -sf /proc/self/fd /dev/fd
    $bb ln -sf /proc/self/fd/0 /dev/stdin
    $bb ln -sf /proc/self/fd/1 /dev/stdout
    $bb ln -sf /proc/self/fd/2 /dev/stderr
    # Swap, as most hosts have: the memory tests show that -m alone allows as much swap as
    # memory (memory.swap.max) and no more. The disk is the second virtio disk, made by
    # run-in-vm.sh; the kernel accounts swap per cgroup unless told not to (swapaccount=0).
    if ! { $bb mkswap /dev/vdb >/dev/null && $bb swapon /dev/vdb; }; then
        echo "guest-init: no swap on /dev/vdb" >/dev/console
        $bb reboot -f
    fi
    $bb hostname srl-v2-guest
    $bb ip link set lo up
    # The kernel's request_module runs this; the host need not have kmod.
    printf '#!%s sh\nexec %s modprobe "$@"\n' $bb $bb >/run/srl-guest/modprobe
    $bb chmod 755 /run/srl-guest/modprobe
    echo /run/srl-guest/modprobe >/proc/sys/kernel/modprobe
    # The host's clock (QEMU's RTC may be off, or in local time).
    [ -s /run/srl-vm/epoch ] && $bb date -s "@$(cat /run/srl-vm/epoch)" >/dev/null

    echo "guest-init: $($bb uname -r), cgroup2 only; running the command" >/dev/console
    (
        echo 0 >$slice/session.scope/cgroup.procs
        exec /bin/bash /run/srl-vm/cmd
    ) </dev/null >/dev/hvc0 2>/dev/hvc1
    status=$?
    echo "guest-init: the command exited with $status" >/dev/console
    echo "$status" >/run/srl-vm/status.tmp && $bb mv /run/srl-vm/status.tmp /run/srl-vm/status
    $bb sync
    $bb reboot -f
    $bb sleep 60
}

case "${1:-stage1}" in
    stage2) stage2 ;;
    *) stage1 ;;
esac
