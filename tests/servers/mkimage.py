#!/usr/bin/python3
"""OCI image layouts for srlaunch's pull tests, built from small declarative descriptions, and
pushed to a loopback docker-registry with skopeo.

Subcommands
    populate --registry HOST:PORT [--only NAME:TAG ...] [--work DIR] [--busybox PATH]
        Builds every lab image (below) and pushes it with `skopeo copy --all --preserve-digests`.
        Prints one line per image: "NAME:TAG sha256:HEX", HEX being the digest of the manifest
        (or index) the registry now serves for the tag, which is checked to be the one built
        here (skopeo must not rewrite it).
    layout NAME:TAG OUT_DIR [--busybox PATH]
        Only builds one lab image's OCI layout (tag TAG inside), e.g. for umoci or a static tree.
    layout-json SPEC.json OUT_DIR
        Builds an OCI layout from a JSON description (format below).
    push LAYOUT_DIR TAG --registry HOST:PORT NAME[:TAG]
        Pushes a layout's tag; prints "NAME:TAG sha256:HEX" as populate does.
    tarball-image --tar FILE --registry HOST:PORT [--name library/debian:bookworm]
                  [--cache DIR] [--cmd bash]
        A one-layer (gzip) linux/amd64 image from a rootfs tarball (the Debian fixture),
        pushed like populate. With --cache, the layout is built once into DIR and reused while
        the tarball's size and mtime stay the same.
    corrupt-layer --registry HOST:PORT --storage DIR NAME:TAG
        Changes the content of the image's last layer inside the registry's storage
        (DIR/docker/registry/v2/blobs/sha256/XX/HEX/data), same size, so the registry serves
        bytes that no longer match the layer digest. If the layer holds the marker
        "srlaunch-corrupt-me" (lab/corrupt:1 does, in an uncompressed layer) that marker is
        changed, leaving a valid tar; otherwise one byte in the middle is flipped.
        Prints the layer digest.
    static-registry OUT_DIR [--huge-bytes N] [--busybox PATH]
        A tree for httpd.py that acts as a read-only registry: v2/index (GET /v2/ -> 200 {}),
        lab/static:1 (lab/plain's content with "static" as lab-release), lab/huge:1 (an OCI
        manifest of N bytes, default 100 MiB, valid JSON padded with an annotation), each
        manifest also under its digest, with .content-type and .digest sidecars. Prints
        "NAME:TAG sha256:HEX" lines.

Lab images (every one runs in srlaunch: the base layer holds a static busybox as /bin/busybox
with /bin/sh, /bin/cat, ... symlinks, /etc/passwd and /etc/group; PATH is set in the config):
    lab/plain:1          OCI, gzip, 2 layers. /etc/lab-release "plain"; /usr/share/lab/hello.txt
                         "hello from lab/plain"; config Env LAB_IMAGE=plain, WorkingDir
                         /usr/share/lab, Cmd ["/bin/sh", "-c", "echo cmd-$LAB_IMAGE; pwd"].
    lab/docker:1         the same with Docker v2s2 media types (manifest, config, rootfs.diff.tar.gzip);
                         /etc/lab-release "docker", LAB_IMAGE=docker.
    lab/multi:1          OCI index: linux/arm64/v8 (first!), linux/amd64, and two attestation
                         manifests (platform unknown/unknown, vnd.docker.reference.type=
                         attestation-manifest, an application/vnd.in-toto+json layer).
                         /etc/lab-arch is "amd64" resp. "arm64"; only amd64 has busybox.
    lab/multi-docker:1   the same as a Docker manifest list (v2s2 manifests, no attestations).
    lab/zstd:1           OCI, both layers tar+zstd; /etc/lab-release "zstd".
    lab/whiteout:1       OCI, gzip, 3 layers with whiteouts; merged tree in WHITEOUT_EXPECTED.
    lab/armonly:1        OCI index with linux/arm64/v8 and linux/arm/v7 only.
    lab/baddiff:1        OCI; the config's second diff_id is wrong (layer digests are right).
    lab/dotdot:1         second layer: "ok.txt", then "../escape".
    lab/symlink-escape:1 second layer: symlink "evil" -> "/tmp", then the file
                         "evil/srlaunch-symlink-escape-canary".
    lab/symlink-escape:2 the same split across layers: layer 2 has the symlink, layer 3 the file.
    lab/corrupt:1        OCI; layer 2 is an uncompressed tar holding corrupt/payload with the
                         marker "srlaunch-corrupt-me" (for corrupt-layer).
    lab/uncompressed:1   OCI, both layers plain tar (application/vnd.oci.image.layer.v1.tar);
                         /etc/lab-release "uncompressed".

JSON description (layout-json), every key but layers optional:
    {"tag": "1", "format": "oci" | "docker",
     "images": [ {"platform": {"os": "linux", "architecture": "amd64"},
                  "config": {"Cmd": [...], "Entrypoint": [...], "Env": [...], "WorkingDir": "",
                             "User": ""},
                  "layers": [ {"compression": "gzip" | "zstd" | "none",
                               "base": true,                 # the busybox base entries first
                               "entries": [["dir", "a", 493], ["file", "a/x", "text", 420],
                                           ["symlink", "a/l", "x"], ["hardlink", "a/h", "a/x"],
                                           ["whiteout", "a/.wh.y"]]} ],
                  "diff_ids": ["sha256:..."]}   # overrides the computed ones
               ], "index": false}
    More than one image, or "index": true, makes an image index (Docker manifest list for
    format docker).

Whiteouts in lab/whiteout:1 (tar order as listed; the markers come after siblings/children
written earlier in the same layer, which they must not hide):
    layer 1: base, a/keep.txt "keep", a/gone.txt "gone", a/sub/deep.txt "deep",
             b/old1.txt "old1", b/old2.txt "old2", b/oldsub/x.txt "x", c/file.txt "c",
             d/f "d1", hl/orig "hardlinked" + hl/link (hard link to hl/orig)
    layer 2: a/new.txt "new", a/.wh.gone.txt, b/new1.txt "new1", b/.wh..wh..opq,
             b/newsub/y.txt "y", .wh.c, d/f "d2"
    layer 3: a/sub/.wh.deep.txt, b/later.txt "later", b/.wh.new1.txt,
             e/inner "e", e/.wh..wh..opq
    merged (WHITEOUT_EXPECTED, besides the base layer's bin/ dev/ etc/ proc/ root/ sys/ tmp/):
    a/ a/keep.txt=keep a/new.txt=new a/sub/ b/ b/later.txt=later b/newsub/ b/newsub/y.txt=y
    d/ d/f=d2 e/ e/inner=e hl/ hl/link=hardlinked hl/orig=hardlinked (one inode)
    and no c/, no name starting with .wh. anywhere.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

MTIME = 1700000000
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APPLETS = ["sh", "cat", "ls", "echo", "env", "id", "pwd", "find", "stat", "readlink", "test",
           "true", "false", "wc", "sort", "head", "tail", "sleep", "uname", "mkdir", "touch",
           "rm", "grep", "od"]

MT = {
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "none": "application/vnd.oci.image.layer.v1.tar",
        "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    },
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "none": "application/vnd.docker.image.rootfs.diff.tar",
        "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    },
}
ACCEPT = ", ".join([MT["oci"]["index"], MT["docker"]["index"], MT["oci"]["manifest"], MT["docker"]["manifest"]])

WHITEOUT_EXPECTED = {
    "a": None, "a/keep.txt": "keep", "a/new.txt": "new", "a/sub": None,
    "b": None, "b/later.txt": "later", "b/newsub": None, "b/newsub/y.txt": "y",
    "d": None, "d/f": "d2", "e": None, "e/inner": "e",
    "hl": None, "hl/link": "hardlinked", "hl/orig": "hardlinked",
}


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canon(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- layers ---------------------------------------------------------------------------------

def base_entries(busybox):
    with open(busybox, "rb") as f:
        bb = f.read()
    entries = [["dir", d, 0o755] for d in ("bin", "dev", "etc", "proc", "root", "sys")]
    entries.append(["dir", "tmp", 0o1777])
    entries.append(["file", "bin/busybox", bb, 0o755])
    entries += [["symlink", f"bin/{a}", "busybox"] for a in APPLETS]
    entries.append(["file", "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644])
    entries.append(["file", "etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644])
    return entries


def tar_bytes(entries):
    """An uncompressed tar of the entries, in order, with fixed owners and mtimes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            kind, name = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            data = None
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e[2] if len(e) > 2 else 0o755
            elif kind in ("file", "whiteout"):
                ti.type = tarfile.REGTYPE
                content = e[2] if kind == "file" else b""
                data = content.encode() if isinstance(content, str) else content
                ti.size = len(data)
                ti.mode = e[3] if len(e) > 3 else 0o644
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e[2]
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e[2]
                ti.mode = 0o644
            else:
                raise ValueError(f"unknown entry kind {kind!r}")
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(raw, how):
    if how == "none":
        return raw
    if how == "gzip":
        return gzip.compress(raw, compresslevel=6, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c", "-3", "--no-progress"], input=raw,
                              stdout=subprocess.PIPE, check=True).stdout
    raise ValueError(f"unknown compression {how!r}")


# ---- layouts --------------------------------------------------------------------------------

class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.refs = []

    def blob(self, data):
        d = sha256(data)
        p = os.path.join(self.path, "blobs", "sha256", d.split(":")[1])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
        return d

    def descriptor(self, media_type, data, **extra):
        desc = {"mediaType": media_type, "digest": self.blob(data), "size": len(data)}
        desc.update(extra)
        return desc

    def tag(self, desc, tag):
        d = dict(desc)
        d["annotations"] = dict(d.get("annotations", {}))
        d["annotations"]["org.opencontainers.image.ref.name"] = tag
        self.refs.append(d)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            f.write(json.dumps({"schemaVersion": 2, "manifests": self.refs}, indent=2))


def build_image(layout, fmt, platform, config, layers, diff_ids=None, busybox="/bin/busybox"):
    """Writes layers, config and manifest; returns the manifest descriptor (with platform)."""
    mt = MT[fmt]
    layer_descs, computed = [], []
    for layer in layers:
        entries = (base_entries(busybox) if layer.get("base") else []) + layer.get("entries", [])
        raw = tar_bytes(entries)
        computed.append(sha256(raw))
        how = layer.get("compression", "gzip")
        media = layer.get("media_type") or mt[how]
        layer_descs.append(layout.descriptor(media, compress(raw, how), **({"annotations": layer["annotations"]} if "annotations" in layer else {})))
    cfg = {
        "created": CREATED,
        "architecture": platform.get("architecture", "amd64"),
        "os": platform.get("os", "linux"),
    }
    if "variant" in platform:
        cfg["variant"] = platform["variant"]
    if config is not None:
        cfg["config"] = config
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids or computed}
    cfg["history"] = [{"created": CREATED, "created_by": f"mkimage.py layer {i}"} for i in range(len(layers))]
    config_desc = layout.descriptor(mt["config"], canon(cfg))
    manifest = {"schemaVersion": 2, "mediaType": mt["manifest"], "config": config_desc, "layers": layer_descs}
    desc = layout.descriptor(mt["manifest"], canon(manifest))
    desc["platform"] = {k: platform[k] for k in ("architecture", "os", "variant") if k in platform}
    return desc


def attestation(layout, subject):
    """A BuildKit-style attestation manifest for the manifest `subject` (a descriptor)."""
    statement = canon({"_type": "https://in-toto.io/Statement/v0.1",
                       "predicateType": "https://spdx.dev/Document",
                       "subject": [{"name": "lab", "digest": {"sha256": subject["digest"].split(":")[1]}}],
                       "predicate": {"spdxVersion": "SPDX-2.3"}})
    layer = layout.descriptor("application/vnd.in-toto+json", statement,
                              annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"})
    cfg = canon({"architecture": "unknown", "os": "unknown", "config": {},
                 "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}})
    config_desc = layout.descriptor(MT["oci"]["config"], cfg)
    manifest = {"schemaVersion": 2, "mediaType": MT["oci"]["manifest"], "config": config_desc, "layers": [layer]}
    desc = layout.descriptor(MT["oci"]["manifest"], canon(manifest))
    desc["annotations"] = {"vnd.docker.reference.digest": subject["digest"],
                           "vnd.docker.reference.type": "attestation-manifest"}
    desc["platform"] = {"architecture": "unknown", "os": "unknown"}
    return desc


def build_index(layout, fmt, manifests):
    mt = MT[fmt]
    index = {"schemaVersion": 2, "mediaType": mt["index"], "manifests": manifests}
    return layout.descriptor(mt["index"], canon(index))


def strip_platform(desc):
    return {k: v for k, v in desc.items() if k != "platform"}


def image_config(lab, **extra):
    cfg = {"Env": [PATH_ENV, f"LAB_IMAGE={lab}"], "Cmd": ["/bin/sh"]}
    cfg.update(extra)
    return cfg


AMD64 = {"architecture": "amd64", "os": "linux"}
ARM64 = {"architecture": "arm64", "os": "linux", "variant": "v8"}
ARMV7 = {"architecture": "arm", "os": "linux", "variant": "v7"}


def release_layer(text, how="gzip", extra=()):
    return {"compression": how, "entries": [["dir", "etc"], ["file", "etc/lab-release", text + "\n"], *extra]}


def lab_images():
    """name:tag -> function(layout, busybox) returning the descriptor to tag."""
    def plain(fmt, lab):
        def build(lo, bb):
            layers = [{"base": True},
                      release_layer(lab, extra=[["dir", "usr"], ["dir", "usr/share"], ["dir", "usr/share/lab"],
                                                ["file", "usr/share/lab/hello.txt", f"hello from lab/{lab}\n"]])]
            cfg = image_config(lab, WorkingDir="/usr/share/lab", Cmd=["/bin/sh", "-c", "echo cmd-$LAB_IMAGE; pwd"])
            return strip_platform(build_image(lo, fmt, AMD64, cfg, layers, busybox=bb))
        return build

    def multi(fmt, attest):
        def build(lo, bb):
            arm = build_image(lo, fmt, ARM64, image_config("multi"), [
                {"entries": [["dir", "etc"], ["file", "etc/lab-arch", "arm64\n"], ["file", "etc/lab-release", "multi\n"]]}],
                busybox=bb)
            amd = build_image(lo, fmt, AMD64, image_config("multi"), [
                {"base": True},
                {"entries": [["dir", "etc"], ["file", "etc/lab-arch", "amd64\n"], ["file", "etc/lab-release", "multi\n"]]}],
                busybox=bb)
            entries = [arm, amd]
            if attest:
                entries += [attestation(lo, amd), attestation(lo, arm)]
            return build_index(lo, fmt, entries)
        return build

    def zstd(lo, bb):
        layers = [{"base": True, "compression": "zstd"}, release_layer("zstd", "zstd")]
        return strip_platform(build_image(lo, "oci", AMD64, image_config("zstd"), layers, busybox=bb))

    def uncompressed(lo, bb):
        layers = [{"base": True, "compression": "none"}, release_layer("uncompressed", "none")]
        return strip_platform(build_image(lo, "oci", AMD64, image_config("uncompressed"), layers, busybox=bb))

    def whiteout(lo, bb):
        l1 = {"base": True, "entries": [
            ["dir", "a"], ["file", "a/keep.txt", "keep"], ["file", "a/gone.txt", "gone"],
            ["dir", "a/sub"], ["file", "a/sub/deep.txt", "deep"],
            ["dir", "b"], ["file", "b/old1.txt", "old1"], ["file", "b/old2.txt", "old2"],
            ["dir", "b/oldsub"], ["file", "b/oldsub/x.txt", "x"],
            ["dir", "c"], ["file", "c/file.txt", "c"],
            ["dir", "d"], ["file", "d/f", "d1"],
            ["dir", "hl"], ["file", "hl/orig", "hardlinked"], ["hardlink", "hl/link", "hl/orig"]]}
        l2 = {"entries": [
            ["dir", "a"], ["file", "a/new.txt", "new"], ["whiteout", "a/.wh.gone.txt"],
            ["dir", "b"], ["file", "b/new1.txt", "new1"], ["whiteout", "b/.wh..wh..opq"],
            ["dir", "b/newsub"], ["file", "b/newsub/y.txt", "y"],
            ["whiteout", ".wh.c"],
            ["dir", "d"], ["file", "d/f", "d2"]]}
        l3 = {"entries": [
            ["dir", "a"], ["dir", "a/sub"], ["whiteout", "a/sub/.wh.deep.txt"],
            ["dir", "b"], ["file", "b/later.txt", "later"], ["whiteout", "b/.wh.new1.txt"],
            ["dir", "e"], ["file", "e/inner", "e"], ["whiteout", "e/.wh..wh..opq"]]}
        return strip_platform(build_image(lo, "oci", AMD64, image_config("whiteout"), [l1, l2, l3], busybox=bb))

    def armonly(lo, bb):
        descs = [build_image(lo, "oci", p, image_config("armonly"), [
            {"entries": [["dir", "etc"], ["file", "etc/lab-arch", p["architecture"] + "\n"]]}], busybox=bb)
            for p in (ARM64, ARMV7)]
        return build_index(lo, "oci", descs)

    def baddiff(lo, bb):
        layers = [{"base": True}, release_layer("baddiff")]
        # Compute the real diff_ids, then replace the second one.
        real = [sha256(tar_bytes(base_entries(bb))), sha256(tar_bytes(release_layer("baddiff")["entries"]))]
        wrong = [real[0], sha256(b"this is not the uncompressed layer")]
        return strip_platform(build_image(lo, "oci", AMD64, image_config("baddiff"), layers, diff_ids=wrong, busybox=bb))

    def dotdot(lo, bb):
        layers = [{"base": True}, {"entries": [["file", "ok.txt", "fine\n"], ["file", "../escape", "escaped\n"]]}]
        return strip_platform(build_image(lo, "oci", AMD64, image_config("dotdot"), layers, busybox=bb))

    def symlink_escape(split):
        def build(lo, bb):
            link = [["symlink", "evil", "/tmp"]]
            write = [["file", "evil/srlaunch-symlink-escape-canary", "escaped\n"]]
            if split:
                layers = [{"base": True}, {"entries": link}, {"entries": write}]
            else:
                layers = [{"base": True}, {"entries": link + write}]
            return strip_platform(build_image(lo, "oci", AMD64, image_config("symlink-escape"), layers, busybox=bb))
        return build

    def corrupt(lo, bb):
        payload = "srlaunch-corrupt-me\n" + "A" * 4000 + "\n"
        layers = [{"base": True}, {"compression": "none", "entries": [["dir", "corrupt"], ["file", "corrupt/payload", payload]]}]
        return strip_platform(build_image(lo, "oci", AMD64, image_config("corrupt"), layers, busybox=bb))

    return {
        "lab/plain:1": plain("oci", "plain"),
        "lab/docker:1": plain("docker", "docker"),
        "lab/multi:1": multi("oci", True),
        "lab/multi-docker:1": multi("docker", False),
        "lab/zstd:1": zstd,
        "lab/uncompressed:1": uncompressed,
        "lab/whiteout:1": whiteout,
        "lab/armonly:1": armonly,
        "lab/baddiff:1": baddiff,
        "lab/dotdot:1": dotdot,
        "lab/symlink-escape:1": symlink_escape(False),
        "lab/symlink-escape:2": symlink_escape(True),
        "lab/corrupt:1": corrupt,
    }


# ---- registry -------------------------------------------------------------------------------

def split_ref(ref):
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag


def dir_transport(layout_dir, digest):
    """skopeo's oci: transport only sees OCI media types in index.json, so Docker-typed images
    go through its dir: transport: manifest.json, <hex>.manifest.json per list instance, blobs
    named by hex. Returns the directory (LAYOUT_DIR/dir-HEX)."""
    def blob(d):
        with open(os.path.join(layout_dir, "blobs", "sha256", d.split(":")[1]), "rb") as f:
            return f.read()
    out = os.path.join(layout_dir, "dir-" + digest.split(":")[1][:16])
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for hexd in os.listdir(os.path.join(layout_dir, "blobs", "sha256")):
        shutil.copyfile(os.path.join(layout_dir, "blobs", "sha256", hexd), os.path.join(out, hexd))
    top = blob(digest)
    with open(os.path.join(out, "manifest.json"), "wb") as f:
        f.write(top)
    for m in json.loads(top).get("manifests", []):
        with open(os.path.join(out, m["digest"].split(":")[1] + ".manifest.json"), "wb") as f:
            f.write(blob(m["digest"]))
    with open(os.path.join(out, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return out


def skopeo_push(layout_dir, layout_tag, registry, name, tag):
    src = f"oci:{layout_dir}:{layout_tag}"
    with open(os.path.join(layout_dir, "index.json")) as f:
        for d in json.load(f)["manifests"]:
            if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == layout_tag \
                    and d["mediaType"] in (MT["docker"]["manifest"], MT["docker"]["index"]):
                src = "dir:" + dir_transport(layout_dir, d["digest"])
    cmd = ["skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--preserve-digests",
           "--dest-tls-verify=false", src, f"docker://{registry}/{name}:{tag}"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"mkimage.py: {' '.join(cmd)} failed:\n{r.stderr}")


def registry_manifest(registry, name, ref):
    req = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{ref}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read(), resp.headers.get("Content-Type"), resp.headers.get("Docker-Content-Digest")


def push_checked(layout_dir, layout_tag, expected_digest, registry, ref):
    name, tag = split_ref(ref)
    skopeo_push(layout_dir, layout_tag, registry, name, tag)
    body, _ctype, header = registry_manifest(registry, name, tag)
    got = sha256(body)
    if got != expected_digest or header != expected_digest:
        sys.exit(f"mkimage.py: {ref}: the registry serves {got} (header {header}), built {expected_digest}")
    print(f"{name}:{tag} {got}", flush=True)
    return got


def no_proxy():
    # Loopback only, whatever the environment says about proxies.
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        os.environ.pop(k, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


# ---- subcommands ----------------------------------------------------------------------------

def cmd_populate(args):
    images = lab_images()
    wanted = args.only or list(images)
    for ref in wanted:
        if ref not in images:
            sys.exit(f"mkimage.py: no lab image {ref}; known: {', '.join(images)}")
    work = args.work or tempfile.mkdtemp(prefix="mkimage-")
    try:
        for ref in wanted:
            d = os.path.join(work, ref.replace("/", "_").replace(":", "_"))
            lo = Layout(d)
            desc = images[ref](lo, args.busybox)
            lo.tag(desc, "t")
            push_checked(d, "t", desc["digest"], args.registry, ref)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def cmd_layout(args):
    images = lab_images()
    if args.ref not in images:
        sys.exit(f"mkimage.py: no lab image {args.ref}")
    lo = Layout(args.out_dir)
    desc = images[args.ref](lo, args.busybox)
    lo.tag(desc, split_ref(args.ref)[1])
    print(f"{args.ref} {desc['digest']}")


def cmd_layout_json(args):
    with open(args.spec) as f:
        spec = json.load(f)
    fmt = spec.get("format", "oci")
    lo = Layout(args.out_dir)
    descs = []
    for img in spec["images"]:
        descs.append(build_image(lo, fmt, img.get("platform", AMD64), img.get("config"), img["layers"],
                                 img.get("diff_ids"), busybox=args.busybox))
    desc = build_index(lo, fmt, descs) if len(descs) > 1 or spec.get("index") else strip_platform(descs[0])
    tag = spec.get("tag", "latest")
    lo.tag(desc, tag)
    print(f"{tag} {desc['digest']}")


def cmd_push(args):
    with open(os.path.join(args.layout, "index.json")) as f:
        refs = json.load(f)["manifests"]
    desc = next((d for d in refs if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == args.tag), None)
    if desc is None:
        sys.exit(f"mkimage.py: {args.layout} has no tag {args.tag}")
    push_checked(args.layout, args.tag, desc["digest"], args.registry, args.ref)


def tarball_layout(tar, out, cmd):
    lo = Layout(out)
    h = hashlib.sha256()
    tmp = os.path.join(out, "layer.tmp")
    with open(tar, "rb") as src, open(tmp, "wb") as raw_out:
        with gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=1, mtime=0) as gz:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                gz.write(chunk)
    diff_id = "sha256:" + h.hexdigest()
    gh = hashlib.sha256()
    with open(tmp, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            gh.update(chunk)
    size = os.path.getsize(tmp)
    digest = "sha256:" + gh.hexdigest()
    os.replace(tmp, os.path.join(out, "blobs", "sha256", gh.hexdigest()))
    layer = {"mediaType": MT["oci"]["gzip"], "digest": digest, "size": size}
    cfg = {"created": CREATED, "architecture": "amd64", "os": "linux",
           "config": {"Env": [PATH_ENV], "Cmd": cmd},
           "rootfs": {"type": "layers", "diff_ids": [diff_id]},
           "history": [{"created": CREATED, "created_by": f"mkimage.py tarball-image {os.path.basename(tar)}"}]}
    manifest = {"schemaVersion": 2, "mediaType": MT["oci"]["manifest"],
                "config": lo.descriptor(MT["oci"]["config"], canon(cfg)), "layers": [layer]}
    desc = lo.descriptor(MT["oci"]["manifest"], canon(manifest))
    lo.tag(desc, "t")
    return desc


def cmd_tarball_image(args):
    st = os.stat(args.tar)
    stamp = f"{st.st_size} {st.st_mtime_ns} {' '.join(args.cmd)}\n"
    if args.cache:
        out = os.path.join(args.cache, os.path.basename(args.tar) + ".oci")
        stamp_file = os.path.join(out, "source-stamp")
        try:
            with open(stamp_file) as f:
                fresh = f.read() == stamp
        except FileNotFoundError:
            fresh = False
        if not fresh:
            tmp = tempfile.mkdtemp(prefix=".tmp-oci-", dir=args.cache)
            try:
                tarball_layout(args.tar, tmp, args.cmd)
                with open(os.path.join(tmp, "source-stamp"), "w") as f:
                    f.write(stamp)
                shutil.rmtree(out, ignore_errors=True)
                os.rename(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        with open(os.path.join(out, "index.json")) as f:
            digest = json.load(f)["manifests"][0]["digest"]
        push_checked(out, "t", digest, args.registry, args.name)
    else:
        out = tempfile.mkdtemp(prefix="mkimage-tar-")
        try:
            desc = tarball_layout(args.tar, out, args.cmd)
            push_checked(out, "t", desc["digest"], args.registry, args.name)
        finally:
            shutil.rmtree(out, ignore_errors=True)


def cmd_corrupt_layer(args):
    name, tag = split_ref(args.ref)
    body, _, _ = registry_manifest(args.registry, name, tag)
    manifest = json.loads(body)
    if "layers" not in manifest:
        sys.exit(f"mkimage.py: {args.ref} is not a single-platform image")
    digest = manifest["layers"][-1]["digest"]
    hexd = digest.split(":")[1]
    path = os.path.join(args.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        at = data.find(b"srlaunch-corrupt-me")
        if at >= 0:
            data[at] = ord("S")
        else:
            data[len(data) // 2] ^= 0xFF
        f.seek(0)
        f.write(data)
    print(digest)


def write_static(root, name, ref, data, media_type, digest=None):
    for r in (ref, digest) if digest else (ref,):
        p = os.path.join(root, "v2", name, "manifests", r)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        with open(p + ".content-type", "w") as f:
            f.write(media_type)
        with open(p + ".digest", "w") as f:
            f.write(sha256(data) if digest is None else digest)


def cmd_static_registry(args):
    root = args.out_dir
    os.makedirs(os.path.join(root, "v2"), exist_ok=True)
    with open(os.path.join(root, "v2", "index"), "w") as f:
        f.write("{}")
    with open(os.path.join(root, "v2", "index.content-type"), "w") as f:
        f.write("application/json")
    with open(os.path.join(root, "v2", "index.headers"), "w") as f:
        f.write("Docker-Distribution-API-Version: registry/2.0\n")

    # lab/static:1: lab/plain's shape, served from files.
    tmp = tempfile.mkdtemp(prefix="mkimage-static-")
    try:
        lo = Layout(tmp)
        layers = [{"base": True}, release_layer("static", extra=[["dir", "usr"], ["dir", "usr/share"], ["dir", "usr/share/lab"],
                                                                 ["file", "usr/share/lab/hello.txt", "hello from lab/static\n"]])]
        desc = strip_platform(build_image(lo, "oci", AMD64, image_config("static"), layers, busybox=args.busybox))
        blobdir = os.path.join(root, "v2", "lab/static", "blobs")
        os.makedirs(blobdir, exist_ok=True)
        for hexd in os.listdir(os.path.join(tmp, "blobs", "sha256")):
            dst = os.path.join(blobdir, "sha256:" + hexd)
            shutil.copyfile(os.path.join(tmp, "blobs", "sha256", hexd), dst)
            with open(dst + ".digest", "w") as f:
                f.write("sha256:" + hexd)
        with open(os.path.join(tmp, "blobs", "sha256", desc["digest"].split(":")[1]), "rb") as f:
            manifest = f.read()
        write_static(root, "lab/static", "1", manifest, desc["mediaType"], desc["digest"])
        print(f"lab/static:1 {desc['digest']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # lab/huge:1: a syntactically valid OCI manifest of --huge-bytes bytes.
    head = ('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"sha256:%s","size":2},'
            '"layers":[],"annotations":{"pad":"' % (MT["oci"]["manifest"], MT["oci"]["config"], "0" * 64)).encode()
    tail = b'"}}'
    pad = max(0, args.huge_bytes - len(head) - len(tail))
    p = os.path.join(root, "v2", "lab/huge", "manifests", "1")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    h = hashlib.sha256()
    with open(p, "wb") as f:
        for part in (head, None, tail):
            if part is None:
                block = b"x" * (1 << 20)
                left = pad
                while left:
                    n = min(left, len(block))
                    f.write(block[:n])
                    h.update(block[:n])
                    left -= n
            else:
                f.write(part)
                h.update(part)
    digest = "sha256:" + h.hexdigest()
    with open(p + ".content-type", "w") as f:
        f.write(MT["oci"]["manifest"])
    with open(p + ".digest", "w") as f:
        f.write(digest)
    os.link(p, os.path.join(os.path.dirname(p), digest))
    for ext in (".content-type", ".digest"):
        shutil.copyfile(p + ext, os.path.join(os.path.dirname(p), digest + ext))
    print(f"lab/huge:1 {digest}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("populate")
    p.add_argument("--registry", required=True)
    p.add_argument("--only", action="append")
    p.add_argument("--work")
    p.add_argument("--busybox", default="/bin/busybox")
    p.set_defaults(fn=cmd_populate)

    p = sub.add_parser("layout")
    p.add_argument("ref")
    p.add_argument("out_dir")
    p.add_argument("--busybox", default="/bin/busybox")
    p.set_defaults(fn=cmd_layout)

    p = sub.add_parser("layout-json")
    p.add_argument("spec")
    p.add_argument("out_dir")
    p.add_argument("--busybox", default="/bin/busybox")
    p.set_defaults(fn=cmd_layout_json)

    p = sub.add_parser("push")
    p.add_argument("layout")
    p.add_argument("tag")
    p.add_argument("ref")
    p.add_argument("--registry", required=True)
    p.set_defaults(fn=cmd_push)

    p = sub.add_parser("tarball-image")
    p.add_argument("--tar", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--name", default="library/debian:bookworm")
    p.add_argument("--cache")
    p.add_argument("--cmd", nargs="+", default=["bash"])
    p.set_defaults(fn=cmd_tarball_image)

    p = sub.add_parser("corrupt-layer")
    p.add_argument("ref")
    p.add_argument("--registry", required=True)
    p.add_argument("--storage", required=True)
    p.set_defaults(fn=cmd_corrupt_layer)

    p = sub.add_parser("static-registry")
    p.add_argument("out_dir")
    p.add_argument("--huge-bytes", type=int, default=100 * 1024 * 1024)
    p.add_argument("--busybox", default="/bin/busybox")
    p.set_defaults(fn=cmd_static_registry)

    args = ap.parse_args()
    no_proxy()
    args.fn(args)


if __name__ == "__main__":
    main()
