#!/usr/bin/env bash
# Installs every build and test dependency of srlaunch from Debian's archive.
# Idempotent and quiet: packages already present are not fetched again.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config
  musl-tools            # srinit: musl headers, crt files and libc.a (static PID 1)
  libcli11-dev          # srlaunch command line
  nlohmann-json3-dev    # image configs, state files, OCI JSON
  libarchive-dev        # rootfs tarballs (gzip, xz, zstd, plain) with safe extraction
  libssl-dev            # sha256 digests (OpenSSL libcrypto)
  libcap-dev            # capability names (cap_from_name) in the launcher
  libcurl4-openssl-dev  # pull: HTTP(S) transfers (headers; libcurl.so.4 is dlopen()ed)
  libyaml-cpp-dev       # pull: Alpine's latest-releases.yaml
  libseccomp-dev        # seccomp profiles compiled to BPF by the launcher (static libseccomp.a)
  libmnl-dev            # netlink (bridge, veth, addresses, routes) for --net bridge; shared only, no libmnl.a
  uidmap                # rootless mode: newuidmap/newgidmap with /etc/subuid and /etc/subgid
  libzstd-dev liblz4-dev liblzma-dev libbz2-dev zlib1g-dev libacl1-dev nettle-dev libxml2-dev libicu-dev  # static libarchive deps
  # tests
  catch2                # unit and integration test framework
  busybox-static        # a libc-free root filesystem for srinit and container tests
  util-linux            # unshare, script
  iproute2 nftables     # network tests: inspect links, a firewall inside a test's own netns
  coreutils procps file binutils
  python3 python3-jwt python3-cryptography   # loopback HTTP mirror and registry token issuer
  docker-registry skopeo umoci               # a real OCI registry on loopback, filled by skopeo
  debootstrap zstd curl libarchive-tools     # the Debian image fixture, zstd layers, bench
  # the cgroup v2 lane (tests/vm): a QEMU guest (TCG; seabios comes along) booting Debian's
  # kernel, which fetch-kernel.sh gets with apt-get download and unpacks without installing;
  # xz to extract its vmlinux, mkfs.ext4 for the guest's scratch disk
  qemu-system-x86 xz-utils e2fsprogs
  # benchmarks (bench/, run by hand)
  hyperfine jq tini catatonit dumb-init crun runc bubblewrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "installed: ${missing[*]}"
fi
