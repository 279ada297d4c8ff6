#!/usr/bin/env bash
# The kind base image's root filesystem, from Debian's packages (mmdebstrap) and the files kind
# ships in its own module (images/base/files), laid out the way kind's base Dockerfile lays them
# out. Written as a tar to $1; kind's Dockerfile builds containerd, runc and the CNI plugins from
# git, which this machine cannot reach, so Debian's builds of them stand in.
#   base.sh OUT.tar KIND_MODULE_DIR
set -euo pipefail
out=$1 kind_module=$2
files="$kind_module/images/base/files"
[ -d "$files" ] || { echo "no $files: build kind first" >&2; exit 2; }
root=$(mktemp -d "${out%/*}/rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
# Packages kind's base installs, less nfs/iscsi and fuse-overlayfs (rootless only), plus the
# runtime pieces kind would build from git.
mmdebstrap --quiet --variant=minbase --format=directory \
  --include=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins \
  bookworm "$root" >&2
install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
mkdir -p "$root/kind/bin" "$root/LICENSES" "$root/etc/containerd" "$root/etc/default" \
  "$root/etc/sysctl.d" "$root/etc/systemd/system/kubelet.service.d" "$root/etc/kubernetes/manifests" \
  "$root/opt/cni/bin" "$root/etc/cni/net.d"
install -m 0644 "$files"/kind/README.txt "$root/kind/"
install -m 0755 "$files"/kind/bin/* "$root/kind/bin/"
install -m 0644 "$files"/etc/crictl.yaml "$root/etc/"
install -m 0644 "$files"/etc/containerd/* "$root/etc/containerd/"
install -m 0644 "$files"/etc/default/* "$root/etc/default/"
install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$root/etc/systemd/system/"
install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
# Where kind's units and config expect the runtime: Debian installs containerd in /usr/bin and the
# CNI plugins in /usr/lib/cni.
ln -sf /usr/bin/containerd "$root/usr/local/bin/containerd"
ln -sf /usr/bin/containerd-shim-runc-v2 "$root/usr/local/bin/containerd-shim-runc-v2"
for plugin in "$root"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/${plugin##*/}" "$root/opt/cni/bin/"; done
# The container's OOM score cannot be lowered where the node runs without CAP_SYS_RESOURCE.
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$root/etc/containerd/config.toml"
# kind's node-image build asks `ctr info` (Debian's ctr 1.6 has no such command) and `ctr content
# fetch` for the images it does not build itself; with no registry those are answered from what
# is already in the image's containerd (preloaded by build.sh), and kindnetd/local-path, which
# cannot be had, are left out (the rig's clusters use the bridge CNI below and no storage class).
cat >"$root/usr/local/bin/ctr" <<'CTR'
#!/bin/sh
# tests/rig/kind: see base.sh
if [ "$1" = info ]; then exec /usr/bin/ctr version; fi
for a in "$@"; do last=$a; done
case " $* " in
  *" content fetch "*)
    if /usr/bin/ctr --namespace=k8s.io images list -q | grep -qxF "$last"; then exit 0; fi
    case "$last" in
      *kindnetd*|*local-path*) echo "ctr: $last is not available without a registry; left out" >&2; exit 0 ;;
    esac
    echo "ctr: $last is neither preloaded nor available without a registry" >&2; exit 1 ;;
esac
exec /usr/bin/ctr "$@"
CTR
chmod 0755 "$root/usr/local/bin/ctr"
# One node, one bridge: pods get 10.244.0.0/24, the range kubeadm gives the first node of kind's
# default pod subnet.
cat >"$root/etc/cni/net.d/10-rig-bridge.conflist" <<'CNI'
{"cniVersion": "1.0.0", "name": "rig", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
chroot "$root" /bin/sh -c '
  set -e
  ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
  find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
        /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
        /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo ReadKMsg=no >> /etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*
'
tar -C "$root" --numeric-owner -cf "$out.tmp" .
mv "$out.tmp" "$out"
