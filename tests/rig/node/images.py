#!/usr/bin/env python3
"""Builds the rig's container images as single-layer docker-archive tarballs, from files on this
machine only: no registry, no Docker daemon.

  images.py argocd OUT.tar TAG ARGOCD_BINARY HACK_DIR   the real argocd binary, as upstream's image lays it out
  images.py redis  OUT.tar TAG                          Debian's redis-server with its libraries
  images.py pause  OUT.tar TAG PAUSE_BINARY             the pod sandbox
  images.py static OUT.tar TAG BINARY PATH [ENTRYPOINT]  one static program at PATH (kind rig:
                                                        control plane, etcd, CoreDNS)
  images.py kube-proxy OUT.tar TAG BINARY               kube-proxy with Debian's iptables (nft)
                                                        and conntrack, as kubeadm runs it
  images.py kind-base OUT.tar TAG ROOTFS.tar            kind's base image from a root filesystem
                                                        (tests/rig/kind/base.sh), with the config
                                                        kind's base Dockerfile gives it

Programs taken from Debian bring the shared libraries `ldd` names and the dynamic loader.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

ARGOCD_USER = 999
# Every name the upstream image links to the one argocd binary.
ARGOCD_NAMES = [
    "argocd-server", "argocd-repo-server", "argocd-application-controller",
    "argocd-applicationset-controller", "argocd-notifications", "argocd-cmp-server",
    "argocd-dex", "argocd-k8s-auth", "argocd-git-ask-pass", "argocd-commit-server",
]
BUSYBOX_APPLETS = ["sh", "cp", "ln", "cat", "ls", "mkdir", "rm", "env", "id", "sleep", "grep", "sed", "tr"]


class Layer:
    """A tar layer built in memory: directories, files and links, each with an owner."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.GNU_FORMAT)
        self.seen = set()

    def _dirs(self, path):
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, path, mode=0o755, uid=0):
        path = path.strip("/")
        if path in self.seen:
            return
        self._dirs(path)
        self.seen.add(path)
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
        self.tar.addfile(info)

    def _claim(self, path):
        """The entry's name with its parent directories added, or None when it is already in."""
        path = path.strip("/")
        self._dirs(path)
        if path in self.seen:
            return None
        self.seen.add(path)
        return path

    def data(self, path, content, mode=0o644):
        path = self._claim(path)
        if path is None:
            return
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(content), mode
        self.tar.addfile(info, io.BytesIO(content))

    def file(self, path, source, mode=None):
        with open(source, "rb") as f:
            content = f.read()
        self.data(path, content, mode if mode is not None else (os.stat(source).st_mode & 0o777))

    def link(self, path, target):
        path = self._claim(path)
        if path is None:
            return
        info = tarfile.TarInfo(path)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        self.tar.addfile(info)

    def program(self, path, source):
        """A dynamically linked program from this machine, with every library ldd names."""
        self.file(path, source)
        out = subprocess.run(["ldd", source], capture_output=True, text=True).stdout
        for line in out.splitlines():
            words = line.split()
            lib = words[2] if "=>" in words and len(words) > 2 else words[0]
            if lib.startswith("/"):
                self.file(lib, os.path.realpath(lib))

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def base(layer, users):
    """/etc/passwd and group, /tmp, and a static busybox for the shell and the few tools scripts use."""
    layer.data("etc/passwd", "".join(f"{n}:x:{u}:{u}::{h}:/bin/sh\n" for n, u, h in users).encode())
    layer.data("etc/group", "".join(f"{n}:x:{u}:\n" for n, u, _ in users).encode())
    layer.dir("tmp", mode=0o1777)
    layer.file("bin/busybox", "/bin/busybox", mode=0o755)
    for applet in BUSYBOX_APPLETS:
        layer.link(f"bin/{applet}", "busybox")


def save(out, tag, layer_bytes, config):
    """Writes a docker-archive (the `docker save` layout) that skopeo and ctr import."""
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    image = {
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "argocd-mtls-verify tests/rig/node/images.py"}],
    }
    image_json = json.dumps(image, sort_keys=True).encode()
    config_name = hashlib.sha256(image_json).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]).encode()
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        for name, content in [(f"{diff_id}/layer.tar", layer_bytes), (config_name, image_json), ("manifest.json", manifest)]:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    os.replace(tmp, out)


def argocd(out, tag, binary, hack):
    layer = Layer()
    base(layer, [("root", 0, "/root"), ("argocd", ARGOCD_USER, "/home/argocd")])
    layer.dir("home/argocd", uid=ARGOCD_USER)
    layer.file("usr/local/bin/argocd", binary, mode=0o755)
    for name in ARGOCD_NAMES:
        layer.link(f"usr/local/bin/{name}", "argocd")
    for script in ["gpg-wrapper.sh", "git-verify-wrapper.sh"]:
        layer.file(f"usr/local/bin/{script}", os.path.join(hack, script), mode=0o755)
    # The repo-server enables GnuPG by default and runs these at start.
    for program in ["gpg", "gpg-agent", "gpgconf"]:
        layer.program(f"usr/bin/{program}", f"/usr/bin/{program}")
    # It fetches Applications' sources with the git CLI (as the upstream image does); git runs
    # its own helpers (index-pack) from its exec path. Debian's git, git:// and local only.
    layer.program("usr/bin/git", "/usr/bin/git")
    layer.program("usr/lib/git-core/git", "/usr/bin/git")
    save(out, tag, layer.bytes(), {
        "User": str(ARGOCD_USER), "WorkingDir": "/home/argocd",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "USER=argocd"],
    })


def redis(out, tag):
    layer = Layer()
    base(layer, [("root", 0, "/root"), ("redis", ARGOCD_USER, "/data")])
    layer.dir("data", uid=ARGOCD_USER)
    layer.program("usr/bin/redis-server", "/usr/bin/redis-server")
    save(out, tag, layer.bytes(), {
        "Entrypoint": ["/usr/bin/redis-server"], "WorkingDir": "/data",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "ExposedPorts": {"6379/tcp": {}},
    })


def pause(out, tag, binary):
    layer = Layer()
    layer.file("pause", binary, mode=0o755)
    save(out, tag, layer.bytes(), {"Entrypoint": ["/pause"], "User": "65535:65535"})


def static(out, tag, binary, path, entrypoint=None):
    layer = Layer()
    layer.dir("tmp", mode=0o1777)
    layer.file(path, binary, mode=0o755)
    config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    if entrypoint:
        config["Entrypoint"] = [entrypoint]
    save(out, tag, layer.bytes(), config)


def tool(out, tag, binary):
    """argocd-mtls-verify's own image, laid out as deploy/image/Dockerfile's final stage: the static
    binary, a non-root user (65532) and nothing else (no shell, no package manager)."""
    layer = Layer()
    layer.data("etc/passwd", b"nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n")
    layer.data("etc/group", b"nonroot:x:65532:\n")
    layer.dir("tmp", mode=0o1777)
    layer.file("usr/local/bin/argocd-mtls-verify", binary, mode=0o755)
    save(out, tag, layer.bytes(), {
        "Entrypoint": ["/usr/local/bin/argocd-mtls-verify"],
        "User": "65532:65532",
        "WorkingDir": "/tmp",
    })


XTABLES = "/usr/lib/x86_64-linux-gnu/xtables"
IPTABLES_NAMES = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"]


def kube_proxy(out, tag, binary):
    """kubeadm's kube-proxy DaemonSet runs `/usr/local/bin/kube-proxy`, which execs iptables and
    conntrack; iptables loads its match and target modules from the xtables directory at run time."""
    layer = Layer()
    base(layer, [("root", 0, "/root")])
    layer.file("usr/local/bin/kube-proxy", binary, mode=0o755)
    layer.program("usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-nft-multi")
    for name in IPTABLES_NAMES:
        layer.link(f"usr/sbin/{name}", "xtables-nft-multi")
    for module in sorted(os.listdir(XTABLES)):
        layer.program(f"{XTABLES}/{module}".lstrip("/"), f"{XTABLES}/{module}")
    layer.program("usr/sbin/conntrack", "/usr/sbin/conntrack")
    save(out, tag, layer.bytes(), {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    })


def kind_base(out, tag, rootfs):
    with open(rootfs, "rb") as f:
        layer = f.read()
    save(out, tag, layer, {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=docker"],
        "StopSignal": "SIGRTMIN+3",
        "Entrypoint": ["/usr/local/bin/entrypoint", "/sbin/init"],
    })


if __name__ == "__main__":
    kind, rest = sys.argv[1], sys.argv[2:]
    {"argocd": argocd, "redis": redis, "pause": pause, "static": static, "tool": tool,
     "kube-proxy": kube_proxy, "kind-base": kind_base}[kind](*rest)
