#!/usr/bin/env bash
# Builds (once) and caches outside git everything the single-node cluster needs
# (${KUBE_IPVS_CACHE:-~/.cache/kube-ipvs}):
#   apiserver/v1.36.3/bin/   kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubelet,
#                            kubectl, agnhost (test/apiserver/build.sh), e2e.test with --e2e
#   cluster/ginkgo-<v>/bin/ginkgo  with --e2e: the ginkgo CLI at the version e2e.test links, which
#                            runs the suite in parallel processes (test/cluster/e2e.sh)
#   cluster/containerd-<v>/bin/  containerd, ctr, containerd-shim-runc-v2 from the Go module proxy:
#                            Debian bookworm's containerd is 1.6.20, which kubelet 1.36 no longer
#                            supports (docs/cluster.md)
#   cluster/images/<key>/    the OCI image archives (test/cluster/images.sh)
# and installs Debian's runc and containernetworking-plugins (CNI bridge, host-local, loopback,
# portmap in /usr/lib/cni), and curl, netcat-openbsd and wget for the agnhost image. Go builds run one at a time (2 cores). Prints KEY=VALUE lines the
# harness reads: BIN, CONTAINERD_BIN, IMAGES, K8S_SRC, GINKGO (empty without --e2e).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
K8S_VERSION=${KUBE_IPVS_K8S_VERSION:-v1.36.3}
CONTAINERD_VERSION=${KUBE_IPVS_CONTAINERD_VERSION:-v2.2.9}
CACHE=${KUBE_IPVS_CACHE:-$HOME/.cache/kube-ipvs}
BIN=$CACHE/apiserver/$K8S_VERSION/bin
CTRD=$CACHE/cluster/containerd-$CONTAINERD_VERSION
COREDNS_VERSION=${KUBE_IPVS_COREDNS_VERSION:-v1.14.2}
COREDNS_DIR=$CACHE/cluster/coredns-$COREDNS_VERSION
export PATH=$PATH:/usr/local/go/bin

log() { echo "cluster-build: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

e2e=()
cached_only=0
for a in "$@"; do
  case $a in
    --e2e) e2e=(e2e.test) ;;
    # --cached: build nothing; exit 0 when every Go build is already in the cache, 3 when one is
    # missing (CI runs the cluster only then: a cold build takes most of an hour on 2 cores).
    --cached) cached_only=1 ;;
    *) die "unknown argument $a (--e2e, --cached)" ;;
  esac
done

if ((cached_only)); then
  missing=()
  for f in "$BIN"/{kube-apiserver,etcd,kube-proxy,kubelet,kube-controller-manager,kube-scheduler,kubectl,agnhost} \
    "$CTRD"/bin/{containerd,ctr,containerd-shim-runc-v2} "$COREDNS_DIR/bin/coredns"; do
    [[ -x $f ]] || missing+=("$f")
  done
  if ((${#e2e[@]})); then
    [[ -x $BIN/e2e.test ]] || missing+=("$BIN/e2e.test")
    compgen -G "$CACHE/cluster/ginkgo-*/bin/ginkgo" >/dev/null || missing+=("$CACHE/cluster/ginkgo-*/bin/ginkgo")
  fi
  ((${#missing[@]} == 0)) || { log "not cached: ${missing[*]}"; exit 3; }
  log "every build is cached"
  exit 0
fi

start=$SECONDS
need_apt=()
for pkg in runc containernetworking-plugins busybox-static gcc libc6-dev curl netcat-openbsd wget; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; } >&2 ||
    die "apt-get install ${need_apt[*]} failed"
fi

"$ROOT/test/apiserver/build.sh" kubelet kube-controller-manager kube-scheduler kubectl agnhost "${e2e[@]}" >&2

# containerd: the daemon, ctr (image import) and the runc shim, from one module version. CGO off
# (upstream builds the shim that way too), which leaves out the btrfs snapshotter; devmapper and zfs
# are left out by tag: the node uses overlayfs.
if [[ -x $CTRD/bin/containerd && -x $CTRD/bin/ctr && -x $CTRD/bin/containerd-shim-runc-v2 ]] &&
  "$CTRD/bin/containerd" --version >/dev/null 2>&1; then
  log "containerd $CONTAINERD_VERSION cached"
else
  src=$CTRD/src
  mkdir -p "$src" "$CTRD/bin"
  {
    printf 'module kube-ipvs.test/containerd-build\n\ngo 1.25.0\n\n'
    for cmd in containerd ctr containerd-shim-runc-v2; do
      printf 'tool github.com/containerd/containerd/v2/cmd/%s\n' "$cmd"
    done
    printf '\nrequire github.com/containerd/containerd/v2 %s\n' "$CONTAINERD_VERSION"
  } >"$src/go.mod"
  log "resolving containerd $CONTAINERD_VERSION dependencies"
  (cd "$src" && go mod tidy) >&2 || die "go mod tidy failed in $src"
  pkg=github.com/containerd/containerd/v2/version
  ldflags="-s -w -X $pkg.Version=$CONTAINERD_VERSION -X $pkg.Revision=module-proxy -X $pkg.Package=github.com/containerd/containerd/v2"
  for cmd in containerd ctr containerd-shim-runc-v2; do
    tags=urfave_cli_no_docs,no_devmapper,no_zfs,no_btrfs
    [[ $cmd == containerd-shim-runc-v2 ]] && tags+=,no_grpc
    log "compiling $cmd $CONTAINERD_VERSION"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$CTRD/bin/$cmd.tmp" \
      "github.com/containerd/containerd/v2/cmd/$cmd") >&2 || die "go build $cmd failed"
    mv "$CTRD/bin/$cmd.tmp" "$CTRD/bin/$cmd"
  done
fi

# CoreDNS, at the version kubeadm v1.36.3 deploys (cmd/kubeadm/app/constants CoreDNSVersion), for
# the cluster DNS the e2e suite expects (Services are reached by name). Static: it goes into an image.
if [[ -x $COREDNS_DIR/bin/coredns ]] && "$COREDNS_DIR/bin/coredns" -version >/dev/null 2>&1; then
  log "coredns $COREDNS_VERSION cached"
else
  src=$COREDNS_DIR/src
  mkdir -p "$src" "$COREDNS_DIR/bin"
  printf 'module kube-ipvs.test/coredns-build\n\ngo 1.25.0\n\ntool github.com/coredns/coredns\n\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" >"$src/go.mod"
  log "resolving coredns $COREDNS_VERSION dependencies"
  (cd "$src" && go mod tidy) >&2 || die "go mod tidy failed in $src"
  log "compiling coredns $COREDNS_VERSION"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$COREDNS_DIR/bin/coredns.tmp" github.com/coredns/coredns) >&2 ||
    die "go build coredns failed"
  mv "$COREDNS_DIR/bin/coredns.tmp" "$COREDNS_DIR/bin/coredns"
fi

K8S_SRC=$(cd "$CACHE/apiserver/$K8S_VERSION/src-apiserver" && go list -m -f '{{.Dir}}' k8s.io/kubernetes) ||
  die "cannot find the k8s.io/kubernetes $K8S_VERSION sources"
# ginkgo CLI (with --e2e): the version k8s.io/kubernetes requires, so CLI and library agree.
GINKGO=
if ((${#e2e[@]})); then
  ginkgo_version=$(awk '$1 == "github.com/onsi/ginkgo/v2" { print $2; exit }' "$K8S_SRC/go.mod")
  [[ -n $ginkgo_version ]] || die "no github.com/onsi/ginkgo/v2 in $K8S_SRC/go.mod"
  gdir=$CACHE/cluster/ginkgo-$ginkgo_version
  GINKGO=$gdir/bin/ginkgo
  if [[ -x $GINKGO ]] && "$GINKGO" version >/dev/null 2>&1; then
    log "ginkgo $ginkgo_version cached"
  else
    mkdir -p "$gdir/src" "$gdir/bin"
    printf 'module kube-ipvs.test/ginkgo-build\n\ngo 1.25.0\n\ntool github.com/onsi/ginkgo/v2/ginkgo\n\nrequire github.com/onsi/ginkgo/v2 %s\n' \
      "$ginkgo_version" >"$gdir/src/go.mod"
    log "compiling ginkgo $ginkgo_version"
    (cd "$gdir/src" && go mod tidy && CGO_ENABLED=0 go build -trimpath -o "$GINKGO.tmp" github.com/onsi/ginkgo/v2/ginkgo) >&2 ||
      die "go build ginkgo failed"
    mv "$GINKGO.tmp" "$GINKGO"
  fi
fi

# Images: rebuilt when the script or an input binary changes.
key=$({ sha256sum "$ROOT/test/cluster/images.sh" "$BIN/agnhost" "$COREDNS_DIR/bin/coredns" /bin/busybox /bin/nc.openbsd \
  /bin/dash "$K8S_SRC/build/pause/linux/pause.c";
  for tool in curl ss wget; do command -v "$tool" >/dev/null && sha256sum "$(command -v "$tool")"; done; } | sha256sum | cut -c1-12)
IMAGES=$CACHE/cluster/images/$key
if [[ -f $IMAGES/done ]]; then
  log "images cached ($IMAGES)"
else
  rm -rf "$IMAGES"
  KUBE_IPVS_K8S_SRC=$K8S_SRC "$ROOT/test/cluster/images.sh" "$IMAGES" "$BIN/agnhost" "$COREDNS_DIR/bin/coredns" >/dev/null
  : >"$IMAGES/done"
  # Older builds' archives are of no further use.
  find "$CACHE/cluster/images" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
fi
log "done in $((SECONDS - start)) s"
echo "BIN=$BIN"
echo "CONTAINERD_BIN=$CTRD/bin"
echo "IMAGES=$IMAGES"
echo "K8S_SRC=$K8S_SRC"
echo "GINKGO=$GINKGO"
