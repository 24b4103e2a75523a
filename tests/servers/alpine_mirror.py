#!/usr/bin/python3
"""Builds a directory laid out like dl-cdn.alpinelinux.org from the real Alpine fixture.

    alpine_mirror.py OUT_DIR [--fixtures DIR] [--bad-sha256] [--bad-sha512] [--truncate]
                     [--branch B ...]

Creates, for each branch B (default: latest-stable, v3.20, edge):
    OUT_DIR/alpine/B/releases/x86_64/latest-releases.yaml
    OUT_DIR/alpine/B/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz{,.sha256,.sha512}
Serve OUT_DIR with httpd.py; the mirror URL is then http://127.0.0.1:PORT (no trailing /alpine).

latest-releases.yaml is shaped like the real one (aports' mkimage-yaml.sh): a YAML list of
several flavors (standard, extended, netboot, minirootfs, virt, xen), each with title, a
multi-line `desc: |` block, branch, arch, version, flavor, file, iso, date, time, size, sha256,
sha512. Only the alpine-minirootfs entry names a file that exists; it carries the fixture's
real size and checksums. The netboot entry is also a .tar.gz, so only `flavor` tells them apart.

--bad-sha256   the YAML's minirootfs sha256 is wrong (the .sha256 file stays right)
--bad-sha512   the YAML's minirootfs sha512 is wrong (the .sha512 file stays right)
--truncate     the tarball is cut to half its size (YAML and checksum files stay the real ones)
"""
import argparse
import hashlib
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "../../../shared/fixtures/alpine"))
VERSION = "3.20.3"
TARBALL = f"alpine-minirootfs-{VERSION}-x86_64.tar.gz"

# (flavor, title, desc lines, file, size) in the order the real file lists them.
OTHERS_BEFORE = [
    ("alpine-standard", "Standard",
     ["Alpine as it was intended.", "Just enough to get you started.", "Network connection is required."],
     f"alpine-standard-{VERSION}-x86_64.iso", 218103808),
    ("alpine-extended", "Extended",
     ["Most common used packages included.", "Suitable for routers and firewalls.", "Runs from RAM.",
      "Includes AMD and Intel microcode updates."],
     f"alpine-extended-{VERSION}-x86_64.iso", 1006632960),
    ("alpine-netboot", "Netboot",
     ["Kernel, initramfs and modloop for", "netboot."],
     f"alpine-netboot-{VERSION}-x86_64.tar.gz", 226410496),
]
OTHERS_AFTER = [
    ("alpine-virt", "Virtual",
     ["Similar to standard.", "Slimmed down kernel.", "Optimized for virtual systems."],
     f"alpine-virt-{VERSION}-x86_64.iso", 64749568),
    ("alpine-xen", "Xen",
     ["Built-in support for Xen Hypervisor.", "Includes packages targeted at Xen usage.",
      "Use for Xen Dom0."],
     f"alpine-xen-{VERSION}-x86_64.iso", 236978176),
]


def entry(flavor, title, desc, file, size, branch, sha256, sha512):
    lines = ["-", f'  title: "{title}"', "  desc: |"]
    lines += [f"    {d}" for d in desc]
    lines += [
        f"  branch: {branch}",
        "  arch: x86_64",
        f"  version: {VERSION}",
        f"  flavor: {flavor}",
        f"  file: {file}",
        f"  iso: {file}",
        "  date: 2024-09-06",
        "  time: 11:34:00",
        f"  size: {size}",
        f"  sha256: {sha256}",
        f"  sha512: {sha512}",
    ]
    return "\n".join(lines) + "\n"


def fake(algo, name):
    return hashlib.new(algo, f"not a real file: {name}".encode()).hexdigest()


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    ap.add_argument("--bad-sha256", action="store_true")
    ap.add_argument("--bad-sha512", action="store_true")
    ap.add_argument("--truncate", action="store_true")
    ap.add_argument("--branch", action="append", dest="branches")
    args = ap.parse_args()
    branches = args.branches or ["latest-stable", "v3.20", "edge"]

    src = os.path.join(args.fixtures, TARBALL)
    if not os.path.isfile(src):
        sys.exit(f"alpine_mirror.py: fixture missing: {src}")
    with open(src, "rb") as f:
        data = f.read()
    size = len(data)
    sha256 = hashlib.sha256(data).hexdigest()
    sha512 = hashlib.sha512(data).hexdigest()
    with open(src + ".sha256") as f:
        if f.read().split()[0] != sha256:
            sys.exit(f"alpine_mirror.py: {src}.sha256 does not match the fixture")
    yaml_sha256 = fake("sha256", TARBALL) if args.bad_sha256 else sha256
    yaml_sha512 = fake("sha512", TARBALL) if args.bad_sha512 else sha512

    truncated = None
    for branch in branches:
        d = os.path.join(args.out_dir, "alpine", branch, "releases", "x86_64")
        os.makedirs(d, exist_ok=True)
        # latest-stable is a copy of the newest stable branch: its entries say branch v3.20.
        yaml_branch = "v3.20" if branch == "latest-stable" else branch
        text = "---\n"
        for fl, title, desc, file, fsize in OTHERS_BEFORE:
            text += entry(fl, title, desc, file, fsize, yaml_branch, fake("sha256", file), fake("sha512", file))
        text += entry("alpine-minirootfs", "Mini root filesystem",
                      ["Minimal root filesystem.", "For use in containers", "and minimal chroots."],
                      TARBALL, size, yaml_branch, yaml_sha256, yaml_sha512)
        for fl, title, desc, file, fsize in OTHERS_AFTER:
            text += entry(fl, title, desc, file, fsize, yaml_branch, fake("sha256", file), fake("sha512", file))
        with open(os.path.join(d, "latest-releases.yaml"), "w") as f:
            f.write(text)

        dst = os.path.join(d, TARBALL)
        if os.path.lexists(dst):
            os.unlink(dst)
        if args.truncate:
            if truncated is None:
                with open(dst, "wb") as f:
                    f.write(data[: size // 2])
                truncated = dst
            else:
                link_or_copy(truncated, dst)
        else:
            link_or_copy(src, dst)
        for ext in (".sha256", ".sha512"):
            with open(os.path.join(d, TARBALL + ext), "w") as f:
                digest = sha256 if ext == ".sha256" else sha512
                f.write(f"{digest}  {TARBALL}\n")


if __name__ == "__main__":
    main()
