#!/usr/bin/env bash
# Builds the real Kubernetes peers the tests judge us by, and caches them outside git under
# ${KUBE_IPVS_CACHE:-$HOME/.cache/kube-ipvs}/apiserver/<version>/bin/: kube-apiserver and etcd for
# the API tests, and upstream kube-proxy (the reference of the fidelity and comparison harnesses).
# Arguments name extra k8s.io/kubernetes commands to build (e.g. kubelet, kubectl), and two
# non-commands the cluster harness (test/cluster) needs: agnhost (test/images/agnhost, static, for
# the test images) and e2e.test (the e2e suite, `go test -c` of test/e2e). Idempotent: with the cache
# present it only checks the binaries run. Sources come from the Go module proxy, never git.
set -euo pipefail

K8S_VERSION=${KUBE_IPVS_K8S_VERSION:-v1.36.3}
# Staging modules (k8s.io/api, ...) are tagged v0.<minor>.<patch> alongside k8s.io/kubernetes v1.<minor>.<patch>.
STAGING_VERSION=v0.${K8S_VERSION#v1.}
ETCD_VERSION=${KUBE_IPVS_ETCD_VERSION:-v3.6.8}
CACHE=${KUBE_IPVS_CACHE:-$HOME/.cache/kube-ipvs}/apiserver/$K8S_VERSION
BIN=$CACHE/bin
export PATH=$PATH:/usr/local/go/bin

log() { echo "apiserver-build: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

apt_updated=0
apt_install() {
  ((apt_updated)) || { log "apt-get update"; apt-get update -qq >&2 || die "apt-get update failed"; apt_updated=1; }
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || die "apt-get install $* failed"
}

# openssl makes the test CA and certificates.
command -v openssl >/dev/null || apt_install openssl
command -v go >/dev/null || die "go not found (expected at /usr/local/go/bin)"
mkdir -p "$BIN"

# k8s.io/kubernetes commands (kube-apiserver, kube-proxy, ...): a throw-away module in the cache that
# requires k8s.io/kubernetes, so every command comes from the one module version. Its go.mod
# replaces staging modules with relative paths, which only apply inside that repository, so a
# dependent must map each of them to the published v0.x tag itself.
k8s_package() { # the k8s.io/kubernetes package of a name given as argument
  case $1 in
    agnhost) echo test/images/agnhost ;;
    e2e.test) echo test/e2e ;;
    *) echo "cmd/$1" ;;
  esac
}
build_k8s_commands() {
  local src=$CACHE/src-apiserver gomod cmd
  mkdir -p "$src"
  log "downloading k8s.io/kubernetes@$K8S_VERSION"
  local info
  info=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION") ||
    die "go mod download k8s.io/kubernetes@$K8S_VERSION failed: $info"
  gomod=$(sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p' <<<"$info")
  [[ -f $gomod ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION in: $info"
  {
    echo "module kube-ipvs.test/apiserver-build"
    echo
    grep -E '^(go|godebug) ' "$gomod"
    echo
    for cmd in "$@"; do [[ $cmd == e2e.test ]] || echo "tool k8s.io/kubernetes/$(k8s_package "$cmd")"; done
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -oE '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" |
      awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >"$src/go.mod"
  # e2e.test is not a command, so no tool line names it: a build-tagged blank import keeps
  # k8s.io/kubernetes and the suite's dependencies in go.mod (tidy reads every build tag).
  rm -f "$src/e2e_deps.go"
  if [[ " $* " == *" e2e.test "* ]]; then
    printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/test/e2e"\n' >"$src/e2e_deps.go"
  fi
  log "resolving dependencies (go mod tidy)"
  (cd "$src" && go mod tidy) || die "go mod tidy failed in $src"
  local pkg=k8s.io/component-base/version minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  for cmd in "$@"; do
    log "compiling $cmd $K8S_VERSION (many minutes on 2 cores the first time)"
    case $cmd in
      # Tidy does not keep the requirements only the suite's _test.go files need: -mod=mod lets
      # `go test` add them, at the versions k8s.io/kubernetes' go.mod (in the graph) pins.
      e2e.test) (cd "$src" && GOFLAGS=-mod=mod go test -c -trimpath -o "$BIN/$cmd.tmp" -ldflags="$ldflags" \
        "k8s.io/kubernetes/$(k8s_package "$cmd")") || die "go test -c $cmd failed" ;;
      # agnhost goes into container images (test/cluster/images.sh): static, like upstream's.
      agnhost) (cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$BIN/$cmd.tmp" -ldflags="$ldflags" \
        "k8s.io/kubernetes/$(k8s_package "$cmd")") || die "go build $cmd failed" ;;
      *) (cd "$src" && go build -trimpath -o "$BIN/$cmd.tmp" -ldflags="$ldflags" \
        "k8s.io/kubernetes/$(k8s_package "$cmd")") || die "go build $cmd failed" ;;
    esac
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
}

# etcd: built from the module proxy, at the version kube-apiserver's own client pins. Debian's
# etcd-server (3.4.23) was tried first: kube-apiserver 1.36 runs against it, but logs
# "RequestWatchProgress feature is not supported" (needs etcd >= 3.4.31 / 3.5.13) and then turns off
# watch-cache consistent reads, so informer tests would exercise a path no real cluster takes; it
# also lacks --unsafe-no-fsync, which keeps test writes fast. The build costs ~2 min once.
build_etcd() {
  local src=$CACHE/src-etcd
  mkdir -p "$src"
  printf 'module kube-ipvs.test/etcd-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$src/go.mod"
  # etcd's own main.go lives in the root module; this shim is the same one-liner.
  cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "resolving etcd $ETCD_VERSION dependencies"
  (cd "$src" && go mod tidy) || die "go mod tidy failed in $src"
  log "compiling etcd $ETCD_VERSION"
  (cd "$src" && go build -trimpath -ldflags="-s -w" -o "$BIN/etcd.tmp" .) || die "go build etcd failed"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

version_of() { # what a cached binary says it is; fails when it does not run
  case $1 in
    # Neither has --version; the build moves a finished binary into place, so present means whole.
    agnhost | e2e.test) [[ -x $BIN/$1 ]] && echo "$K8S_VERSION sources" ;;
    kubectl) "$BIN/$1" version --client 2>/dev/null | head -1 ;;
    *) "$BIN/$1" --version 2>/dev/null ;;
  esac
}

start=$SECONDS
missing=()
for cmd in kube-apiserver kube-proxy "$@"; do
  if version_of "$cmd" >/dev/null; then
    log "$cmd cached"
  else
    missing+=("$cmd")
  fi
done
((${#missing[@]} == 0)) || build_k8s_commands "${missing[@]}"
if [[ -x $BIN/etcd ]] && "$BIN/etcd" --version >/dev/null 2>&1; then
  log "etcd cached"
else
  build_etcd
fi
log "done in $((SECONDS - start)) s"
for cmd in kube-apiserver kube-proxy "$@"; do
  echo "$cmd: $BIN/$cmd ($(version_of "$cmd"))"
done
echo "etcd: $BIN/etcd ($("$BIN/etcd" --version | head -1))"
