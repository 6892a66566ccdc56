#!/usr/bin/env bash
# A real single-node Kubernetes v1.36.3 cluster with kube-ipvs as its service proxy (docs/cluster.md).
#
#   test/cluster/cluster.sh up | down | status | kubectl ARGS... | scenario | e2e [E2E ARGS...] | logs [NAME]
#   test/cluster/cluster.sh proxy [kube-ipvs|kube-proxy]; e2e --suite: the network selection (e2e.sh)
#   (npm run cluster -- up, ...)
#
# Layout: a network namespace of its own (kube-ipvs-cluster) holds a tap device, 10.0.2.2/24, and
# the control plane (etcd, kube-apiserver :6443, kube-controller-manager, kube-scheduler) at native
# speed; the qemu VM (test/vm/vm.sh, KUBE_IPVS_VM_NET=tap) runs in that namespace, its eth0 the far
# end of the tap (10.0.2.15), with the node: containerd, kubelet, the CNI bridge (10.244.0.0/24) and
# kube-ipvs, as a process, in the guest's real kernel (test/cluster/node.vm.sh). The namespace has no
# other interface and no default route: nothing leaves it. Routes there send the pod and Service
# ranges to the node, so the API server reaches kubelet (exec, logs, port-forward) and pods (proxy).
#
# State (certificates, tokens, kubeconfigs, etcd data, logs) is kept outside git under
# ${KUBE_IPVS_CACHE:-~/.cache/kube-ipvs}/cluster/state and wiped by `up`. With KUBE_IPVS_VM_LOCK=FILE
# the VM is booted under `flock FILE` (one VM at a time on a shared machine) and keeps the lock
# until it powers off.
#
# The node's service proxy is kube-ipvs unless KUBE_IPVS_CLUSTER_PROXY=kube-proxy is set for `up`
# (upstream kube-proxy --proxy-mode=ipvs, the reference); `proxy NAME` swaps it on the running
# node (the old one stopped and its kernel state cleaned up by `kube-proxy --cleanup`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
CACHE=${KUBE_IPVS_CACHE:-$HOME/.cache/kube-ipvs}
STATE=$CACHE/cluster/state
NS=${KUBE_IPVS_CLUSTER_NETNS:-kube-ipvs-cluster}
TAP=tap0
HOST_IP=10.0.2.2
NODE_IP=10.0.2.15
NODE=kube-ipvs-vm
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
API_PORT=6443
VM_MEM=${KUBE_IPVS_CLUSTER_MEM:-6G}
VM_TTL=${KUBE_IPVS_CLUSTER_TTL:-14400}

log() { echo "cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { echo "$((SECONDS - ${1:-0})) s"; }

usage() {
  sed -n 's/^#   //p' "${BASH_SOURCE[0]}" | head -3 >&2
  exit 2
}

in_ns() { ip netns exec "$NS" "$@"; }

alive() { # alive NAME: the process recorded for NAME runs
  local pid
  [[ -s $STATE/pids/$1 ]] || return 1
  pid=$(<"$STATE/pids/$1")
  kill -0 "$pid" 2>/dev/null
}

# spawn NAME CMD...: runs CMD in the namespace, detached, output to logs/NAME.log, pid recorded.
spawn() {
  local name=$1
  shift
  setsid ip netns exec "$NS" "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/pids/$name"
}

wait_until() { # wait_until SECONDS WHAT CMD...
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - t0 < limit)) || { log "$what: not within $limit s"; return 1; }
    sleep 1
  done
  log "$what ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------- certificates and credentials
make_pki() {
  local pki=$STATE/pki
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=kube-ipvs-cluster-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' \
      "IP:$HOST_IP,IP:10.96.0.1,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # kube-apiserver's client certificate towards kubelet (exec, logs, port-forward)
    openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out kubelet-client.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || die "openssl failed"
  # Static tokens, one per identity, with the groups the bootstrap RBAC and the Node authorizer
  # expect: kube-ipvs runs as system:kube-proxy, which the built-in binding system:node-proxier
  # grants what kube-proxy gets.
  local user groups token
  : >"$pki/tokens.csv"
  while read -r user groups; do
    token=$(openssl rand -hex 16)
    printf '%s,%s,%s,"%s"\n' "$token" "$user" "$user" "$groups" >>"$pki/tokens.csv"
    kubeconfig "$user" "$token" >"$STATE/kubeconfig-${user//:/-}"
  done <<EOF
admin system:masters
system:kube-controller-manager -
system:kube-scheduler -
system:node:$NODE system:nodes
system:kube-proxy -
EOF
  sed -i 's/,"-"$//' "$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv" "$STATE"/kubeconfig-*
}

kubeconfig() { # kubeconfig USER TOKEN
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kube-ipvs-cluster
  cluster:
    server: https://$HOST_IP:$API_PORT
    certificate-authority: $STATE/pki/ca.crt
users:
- name: $1
  user:
    token: $2
contexts:
- name: kube-ipvs-cluster
  context:
    cluster: kube-ipvs-cluster
    user: $1
current-context: kube-ipvs-cluster
EOF
}

# ---------------------------------------------------------------- network namespace
make_netns() {
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  in_ns ip -batch - <<EOF || die "cannot set up the network namespace $NS"
link set lo up
tuntap add dev $TAP mode tap
link set $TAP up
addr add $HOST_IP/24 dev $TAP
route add $CLUSTER_CIDR via $NODE_IP dev $TAP
route add $SERVICE_CIDR via $NODE_IP dev $TAP
EOF
}

# ---------------------------------------------------------------- up
up() {
  local t0=$SECONDS t
  if [[ -d $STATE ]] && { alive vm || alive kube-apiserver; }; then
    die "the cluster is already up (test/cluster/cluster.sh status; down first)"
  fi
  [[ -f $ROOT/dist/src/cli/main.js ]] || die "no dist/: run npm run build first"
  t=$SECONDS
  local build
  build=$("$ROOT/test/cluster/build.sh") || die "test/cluster/build.sh failed"
  local BIN CONTAINERD_BIN IMAGES K8S_SRC
  eval "$(grep -E '^(BIN|CONTAINERD_BIN|IMAGES|K8S_SRC)=' <<<"$build")"
  log "binaries and images ready ($(elapsed "$t"))"

  down_quiet
  # A failed up leaves nothing running (KUBE_IPVS_CLUSTER_KEEP=1 keeps it for a look).
  [[ ${KUBE_IPVS_CLUSTER_KEEP:-0} == 1 ]] || trap 'down_quiet' EXIT
  rm -rf "$STATE"
  mkdir -p "$STATE"/{pids,logs,node,etcd}
  local proxy=${KUBE_IPVS_CLUSTER_PROXY:-kube-ipvs}
  valid_proxy "$proxy" || die "KUBE_IPVS_CLUSTER_PROXY=$proxy: expected kube-ipvs or kube-proxy"
  echo "$proxy" >"$STATE/node/proxy"
  printf 'BIN=%s\nCONTAINERD_BIN=%s\nIMAGES=%s\n' "$BIN" "$CONTAINERD_BIN" "$IMAGES" >"$STATE/env"
  make_pki
  make_netns

  t=$SECONDS
  local pki=$STATE/pki
  spawn etcd "$BIN/etcd" --name=node --data-dir="$STATE/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=node=http://127.0.0.1:2380 --log-level=warn --unsafe-no-fsync
  local issuer=https://kubernetes.default.svc.cluster.local
  spawn kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --advertise-address=$HOST_IP --secure-port=$API_PORT \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv" \
    --kubelet-client-certificate="$pki/kubelet-client.crt" --kubelet-client-key="$pki/kubelet-client.key" \
    --authorization-mode=Node,RBAC --allow-privileged=true --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-cluster-ip-range=$SERVICE_CIDR --service-node-port-range=30000-32767 \
    --service-account-issuer=$issuer --api-audiences=$issuer \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --profiling=false
  wait_until 120 "kube-apiserver ready" kubectl_admin get --raw /readyz ||
    { tail -20 "$STATE/logs/kube-apiserver.log" >&2; die "kube-apiserver did not become ready"; }
  spawn kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/kubeconfig-system-kube-controller-manager" \
    --authentication-kubeconfig="$STATE/kubeconfig-system-kube-controller-manager" \
    --authorization-kubeconfig="$STATE/kubeconfig-system-kube-controller-manager" \
    --use-service-account-credentials=true --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr=$CLUSTER_CIDR --node-cidr-mask-size=24 \
    --service-cluster-ip-range=$SERVICE_CIDR --leader-elect=false --profiling=false
  spawn kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/kubeconfig-system-kube-scheduler" \
    --authentication-kubeconfig="$STATE/kubeconfig-system-kube-scheduler" \
    --authorization-kubeconfig="$STATE/kubeconfig-system-kube-scheduler" \
    --leader-elect=false --profiling=false
  log "control plane up ($(elapsed "$t"))"

  t=$SECONDS
  local lock=()
  # flock exits 75 when the wait runs out; say so in vm.log, which is otherwise empty then.
  [[ -n ${KUBE_IPVS_VM_LOCK:-} ]] && lock=(bash -c 'flock -w 1800 -E 75 "$@"; rc=$?
    ((rc != 75)) || echo "cluster: gave up waiting 1800 s for the VM lock $1 (other VMs hold it)" >&2
    exit $rc' flock "$KUBE_IPVS_VM_LOCK")
  # The VM stays up until `down` (node/stop) or VM_TTL seconds.
  setsid "${lock[@]}" ip netns exec "$NS" env KUBE_IPVS_VM_NET=tap KUBE_IPVS_VM_TAP=$TAP \
    KUBE_IPVS_VM_HOSTNAME=$NODE KUBE_IPVS_CLUSTER_DIR="$STATE" \
    KUBE_IPVS_CLUSTER_BIN="$BIN" KUBE_IPVS_CLUSTER_CONTAINERD_BIN="$CONTAINERD_BIN" KUBE_IPVS_CLUSTER_IMAGES="$IMAGES" \
    "$ROOT/test/vm/vm.sh" --mem "$VM_MEM" --cpus 2 --timeout "$VM_TTL" --rw "$STATE/node" \
    -- bash "$ROOT/test/cluster/node.vm.sh" </dev/null >"$STATE/logs/vm.log" 2>&1 &
  echo $! >"$STATE/pids/vm"
  wait_node_ready 900 || { status >&2 || true; die "the node did not become ready"; }
  wait_until 300 "service proxy $proxy healthy" proxy_healthy || die "$proxy is not healthy (cluster.sh logs $proxy)"
  log "node up ($(elapsed "$t"))"
  t=$SECONDS
  kubectl_admin apply -f "$ROOT/test/cluster/coredns.yaml" >/dev/null || die "cannot apply test/cluster/coredns.yaml"
  kubectl_admin -n kube-system rollout status deployment/coredns --timeout=600s >/dev/null ||
    { kubectl_admin -n kube-system get pods -o wide >&2; die "CoreDNS did not become ready"; }
  log "cluster DNS ready ($(elapsed "$t"))"
  trap - EXIT
  log "cluster up in $(elapsed "$t0"): npm run cluster -- kubectl get nodes -o wide"
}

node_ready() {
  [[ $(kubectl_admin get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

wait_node_ready() { # wait_node_ready SECONDS: counted from the guest's first progress line
  local limit=$1 t0=$SECONDS last= booted=0
  until node_ready; do
    alive vm || { log "the VM exited:"; tail -30 "$STATE/logs/vm.log" >&2; return 1; }
    if ((!booted)) && [[ -s $STATE/node/progress ]]; then
      booted=1
      log "the VM booted after $(elapsed "$t0") (including any wait for the VM lock)"
      t0=$SECONDS
    fi
    ((!booted || SECONDS - t0 < limit)) || { log "node $NODE not Ready within $limit s"; return 1; }
    local step
    step=$(tail -1 "$STATE/node/progress" 2>/dev/null || true)
    [[ -n $step && $step != "$last" ]] && { log "node: $step"; last=$step; }
    sleep 2
  done
  log "node $NODE Ready ($(elapsed "$t0"))"
}

kubectl_admin() {
  local bin
  bin=$(sed -n 's/^BIN=//p' "$STATE/env" 2>/dev/null)
  in_ns "${bin:-$CACHE/apiserver/v1.36.3/bin}/kubectl" --kubeconfig "$STATE/kubeconfig-admin" "$@"
}

# ---------------------------------------------------------------- the service proxy
valid_proxy() { [[ $1 == kube-ipvs || $1 == kube-proxy ]]; }

# Both serve kube-proxy's health endpoint on the node's port 10256 (200 once synced).
proxy_healthy() { in_ns curl -sf -o /dev/null "http://$NODE_IP:10256/healthz"; }

# proxy [NAME]: print the node's proxy, or swap it for NAME and wait until NAME is up and healthy.
proxy() {
  local want=${1:-} t0=$SECONDS
  alive vm || die "the cluster is not up"
  if [[ -z $want ]]; then
    tr -d '[:space:]' <"$STATE/node/proxy"
    echo
    return
  fi
  valid_proxy "$want" || die "proxy $want: expected kube-ipvs or kube-proxy"
  echo "$want" >"$STATE/node/proxy"
  # the swap is done when the last proxy start in the node's progress names it
  wait_until 300 "$want started on the node" bash -c \
    '[[ $(grep -E "^(kube-ipvs|kube-proxy) started \\(" "$1" | tail -1) == "$2 started "* ]]' _ "$STATE/node/progress" "$want" ||
    die "$want did not start (see $STATE/node/progress)"
  wait_until 300 "$want healthy" proxy_healthy || die "$want is not healthy (cluster.sh logs $want)"
  log "the node's proxy is $want ($(elapsed "$t0"))"
}

# ---------------------------------------------------------------- down
stop_pid() { # stop_pid NAME SECONDS: TERM, then KILL after SECONDS, to the process group spawn made
  local name=$1 limit=$2 pid i
  alive "$name" || return 0
  pid=$(<"$STATE/pids/$name")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 2; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

down_quiet() {
  [[ -d $STATE ]] || { ip netns del "$NS" 2>/dev/null || true; return 0; }
  if alive vm; then
    # node.vm.sh stops the node's processes and returns, and the guest powers off.
    : >"$STATE/node/stop"
    local i
    for ((i = 0; i < 120; i++)); do alive vm || break; sleep 0.5; done
    stop_pid vm 10
  fi
  local c
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c" 15; done
  ip netns del "$NS" 2>/dev/null || true
}

down() {
  local t0=$SECONDS
  down_quiet
  log "cluster down ($(elapsed "$t0")); state kept in $STATE until the next up"
}

# ---------------------------------------------------------------- status
status() {
  [[ -d $STATE ]] || { echo "cluster: never started"; return 3; }
  local c rc=0
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler vm; do
    if alive "$c"; then echo "$c: running (pid $(<"$STATE/pids/$c"))"; else echo "$c: not running"; rc=3; fi
  done
  [[ -s $STATE/node/progress ]] && echo "node: $(tail -1 "$STATE/node/progress")"
  [[ -s $STATE/node/proxy ]] && echo "proxy: $(<"$STATE/node/proxy")"
  if alive kube-apiserver; then
    kubectl_admin get nodes -o wide 2>&1 || rc=3
  fi
  return $rc
}

logs() {
  local name=${1:-}
  if [[ -z $name ]]; then
    ls "$STATE/logs" "$STATE/node" 2>/dev/null
    return
  fi
  local f
  for f in "$STATE/logs/$name.log" "$STATE/node/$name.log"; do [[ -f $f ]] && { cat "$f"; return; }; done
  die "no log $name"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
  up) up ;;
  down) down ;;
  status) status ;;
  kubectl) kubectl_admin "$@" ;;
  logs) logs "$@" ;;
  proxy) proxy "$@" ;;
  scenario) exec ip netns exec "$NS" env KUBE_IPVS_CLUSTER_DIR="$STATE" bash "$ROOT/test/cluster/scenario.sh" "$@" ;;
  e2e)
    # e2e.test and the ginkgo CLI: built once (a long build), a version check afterwards.
    ginkgo=$("$ROOT/test/cluster/build.sh" --e2e | sed -n 's/^GINKGO=//p') || die "test/cluster/build.sh --e2e failed"
    exec ip netns exec "$NS" env KUBE_IPVS_CLUSTER_DIR="$STATE" KUBE_IPVS_E2E_GINKGO="$ginkgo" \
      bash "$ROOT/test/cluster/e2e.sh" "$@" ;;
  -h | --help | help) usage ;;
  *) log "unknown command $cmd"; usage ;;
esac
