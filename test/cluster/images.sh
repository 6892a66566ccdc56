#!/usr/bin/env bash
# Builds the container images the cluster's pods run, as OCI archives, from binaries built here:
# no registry is reachable and there is no docker engine, so each image is an OCI image layout
# (oci-layout, index.json, blobs/sha256/...) written by this script and tarred, for
# `ctr -n k8s.io images import` in the node (test/cluster/node.vm.sh). Names and tags are the exact
# ones kubelet and the e2e suite ask for (k8s.io/kubernetes v1.36.3 test/utils/image/manifest.go),
# so pods with imagePullPolicy IfNotPresent find them:
#   registry.k8s.io/pause:3.10.2                          build/pause/linux/pause.c, static (gcc)
#   registry.k8s.io/e2e-test-images/agnhost:2.63.0        agnhost (static Go) + busybox applets + curl
#                                                         + OpenBSD nc (e2e tests run `nc -v -t -w 2`)
#   registry.k8s.io/e2e-test-images/busybox:1.37.0-1      Debian's busybox-static
#   registry.k8s.io/coredns/coredns:v1.14.2               coredns (static Go), kubeadm v1.36.3's version
# Layers are uncompressed tars (digest = diff ID): gunzip under TCG would cost more than the bytes.
# Every tar is reproducible (sorted, mtime 0, uid/gid 0), so an unchanged input gives the same
# digests. Usage: test/cluster/images.sh OUTDIR AGNHOST_BINARY COREDNS_BINARY; prints one archive
# path a line.
set -euo pipefail

OUT=${1:?usage: images.sh OUTDIR AGNHOST_BINARY COREDNS_BINARY}
AGNHOST=${2:?usage: images.sh OUTDIR AGNHOST_BINARY COREDNS_BINARY}
COREDNS=${3:?usage: images.sh OUTDIR AGNHOST_BINARY COREDNS_BINARY}
K8S_SRC=${KUBE_IPVS_K8S_SRC:?KUBE_IPVS_K8S_SRC: the k8s.io/kubernetes module directory}

log() { echo "cluster-images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ -x $AGNHOST ]] || die "no agnhost binary at $AGNHOST (test/apiserver/build.sh agnhost)"
[[ -x $COREDNS ]] || die "no coredns binary at $COREDNS (test/cluster/build.sh)"
[[ -x /bin/nc.openbsd ]] || die "no /bin/nc.openbsd (apt-get install netcat-openbsd)"
[[ -x /bin/busybox ]] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
  die "/bin/busybox is not Debian's static busybox (apt-get install busybox-static)"
command -v gcc >/dev/null || die "gcc not found (apt-get install gcc libc6-dev)"
mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# blob FILE LAYOUT: moves FILE into LAYOUT's blob store; prints its digest.
blob() {
  local d
  d=$(sha "$1")
  mkdir -p "$2/blobs/sha256"
  mv "$1" "$2/blobs/sha256/$d"
  echo "$d"
}


# image NAME:TAG ROOTFS_DIR CONFIG_JSON_FRAGMENT: writes OUT/<file>.tar with one layer holding
# ROOTFS_DIR; the fragment is the image config's "config" object (Entrypoint, Cmd, User, ...).
image() {
  local ref=$1 rootfs=$2 config=$3 layout layer cfg man idx ldig cdig mdig archive
  layout=$WORK/layout-${ref//[\/:]/_}
  mkdir -p "$layout"
  layer=$WORK/layer.tar
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$layer" .
  local lsize
  lsize=$(size "$layer")
  ldig=$(blob "$layer" "$layout")
  cfg=$WORK/config.json
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"kube-ipvs test/cluster/images.sh"}]}' \
    "$config" "$ldig" >"$cfg"
  local csize
  csize=$(size "$cfg")
  cdig=$(blob "$cfg" "$layout")
  man=$WORK/manifest.json
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cdig" "$csize" "$ldig" "$lsize" >"$man"
  local msize
  msize=$(size "$man")
  mdig=$(blob "$man" "$layout")
  # io.containerd.image.name is the full reference ctr import names the image by.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$mdig" "$msize" "$ref" "${ref##*:}" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  archive=$OUT/$(basename "${ref%%:*}")-${ref##*:}.tar
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$archive.tmp" oci-layout index.json blobs
  mv "$archive.tmp" "$archive"
  log "$ref: $archive ($(du -h "$archive" | cut -f1), manifest sha256:${mdig:0:12})"
  echo "$archive"
}

# busybox_tree DIR: busybox at /bin/busybox and a link per applet at its usual path.
busybox_tree() {
  local dir=$1 path
  mkdir -p "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin"
  cp /bin/busybox "$dir/bin/busybox"
  while IFS= read -r path; do
    [[ $path == bin/busybox ]] && continue
    [[ -e $dir/$path || -L $dir/$path ]] || ln -s /bin/busybox "$dir/$path"
  done < <(/bin/busybox --list-full)
}

# with_libraries DIR BINARY...: each dynamically linked BINARY and the shared objects it loads,
# at the same paths (the node's own Debian builds: the image is only run on this kind of machine).
with_libraries() {
  local dir=$1 bin lib
  shift
  for bin in "$@"; do
    mkdir -p "$dir/$(dirname "$bin")"
    cp -L "$bin" "$dir/$bin"
    while IFS= read -r lib; do
      [[ -e $dir/$lib ]] && continue
      mkdir -p "$dir/$(dirname "$lib")"
      cp -L "$lib" "$dir/$lib"
    done < <(ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*')
  done
}

etc_files() { # DIR: passwd/group (the agnhost image's users), hosts, nsswitch
  mkdir -p "$1/etc" "$1/tmp"
  chmod 1777 "$1/tmp"
  cat >"$1/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh
EOF
  cat >"$1/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
user-defined-in-image:x:1000:
group-defined-in-image:x:50000:user-defined-in-image
EOF
  printf 'hosts: files dns\n' >"$1/etc/nsswitch.conf"
}

# --- pause: upstream's pause.c, built as its Makefile does (-Os -static), tag from the manifest
root=$WORK/pause
mkdir -p "$root"
gcc -Os -Wall -Werror -static -DVERSION=v3.10.2-kube-ipvs -o "$root/pause" "$K8S_SRC/build/pause/linux/pause.c" ||
  die "cannot compile pause.c"
strip "$root/pause"
image registry.k8s.io/pause:3.10.2 "$root" '{"Entrypoint":["/pause"],"User":"65535:65535"}'

# --- agnhost: what upstream's Dockerfile lays out (/agnhost, /agnhost-2, /uploads, the porter key
# pair, user 1000 and group 50000) on busybox instead of alpine, plus curl, which e2e tests exec.
root=$WORK/agnhost
mkdir -p "$root/uploads"
cp "$AGNHOST" "$root/agnhost"
ln -s agnhost "$root/agnhost-2"
cp "$K8S_SRC/test/images/agnhost/porter/localhost.crt" "$K8S_SRC/test/images/agnhost/porter/localhost.key" "$root/"
busybox_tree "$root"
etc_files "$root"
if command -v curl >/dev/null; then
  rm -f "$root/usr/bin/curl"
  with_libraries "$root" "$(command -v curl)"
else
  log "warning: no curl on this machine: the agnhost image has busybox wget only"
fi
# busybox's nc lacks -v and -t, which the e2e suite's service checks pass (`nc -v -t -w 2 HOST PORT`).
with_libraries "$root" /bin/nc.openbsd
rm -f "$root/bin/nc" "$root/usr/bin/nc"
ln -s /bin/nc.openbsd "$root/usr/bin/nc"
# The suite runs its commands through `/bin/sh -c`. Debian's static busybox is built to prefer its
# own applets (FEATURE_SH_STANDALONE), so its sh ran busybox's nc whatever PATH held; alpine's sh,
# upstream's, looks commands up in PATH. dash does too.
with_libraries "$root" /bin/dash
rm -f "$root/bin/sh"
ln -s dash "$root/bin/sh"
# Debian's busybox 1.35 wget crashes (SIGSEGV) when given a timeout (`wget -T 1`), which the
# suite's "verify service up" checks pass; alpine's does not. GNU wget takes the same options.
if command -v wget >/dev/null; then
  rm -f "$root/bin/wget" "$root/usr/bin/wget"
  with_libraries "$root" "$(command -v wget)"
else
  log "warning: no wget on this machine: the agnhost image has busybox's, which crashes with -T"
fi
# ss (iproute2, in upstream's image): "should release NodePorts on delete" runs
# `! ss -ant46 'sport = :PORT' | tail -n +2 | grep LISTEN` on the node; without ss it passes vacuously.
if command -v ss >/dev/null; then
  rm -f "$root/bin/ss" "$root/usr/bin/ss"
  with_libraries "$root" "$(command -v ss)"
fi
image registry.k8s.io/e2e-test-images/agnhost:2.63.0 "$root" "{\"Entrypoint\":[\"/agnhost\"],\"Cmd\":[\"pause\"],\"WorkingDir\":\"/\",\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]}"

# --- busybox
root=$WORK/busybox
busybox_tree "$root"
etc_files "$root"
image registry.k8s.io/e2e-test-images/busybox:1.37.0-1 "$root" \
  "{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]}"

# --- coredns: the binary alone, as upstream's image (which adds only CA certificates)
root=$WORK/coredns
mkdir -p "$root"
cp "$COREDNS" "$root/coredns"
etc_files "$root"
image registry.k8s.io/coredns/coredns:v1.14.2 "$root" '{"Entrypoint":["/coredns"],"User":"65532:65532"}'
