#!/usr/bin/env bash
# The cluster's node, inside the VM (booted by test/cluster/cluster.sh up with KUBE_IPVS_VM_NET=tap):
# containerd + runc + the CNI bridge, kubelet and kube-ipvs (a process, not the DaemonSet: the
# guest runs the host's node and dist/ over 9p, and no kube-ipvs image is built), all in the guest's
# real kernel. The control plane is on the far end of eth0, at 10.0.2.2:6443.
#
# KUBE_IPVS_CLUSTER_DIR is the harness' state folder (read-only here, but its node/ is shared
# read-write): this script writes progress, its components' logs and `ready` into node/, and stops
# everything and returns (powering the guest off) when node/stop appears or a component exits.
set -euo pipefail

STATE=${KUBE_IPVS_CLUSTER_DIR:?KUBE_IPVS_CLUSTER_DIR is not set: run test/cluster/cluster.sh up}
BIN=${KUBE_IPVS_CLUSTER_BIN:?}
CONTAINERD_BIN=${KUBE_IPVS_CLUSTER_CONTAINERD_BIN:?}
IMAGES=${KUBE_IPVS_CLUSTER_IMAGES:?}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
OUT=$STATE/node
NODE=kube-ipvs-vm
NODE_IP=10.0.2.15
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
CONF=/run/kube-ipvs-node
SOCK=/run/containerd/containerd.sock
export PATH=$CONTAINERD_BIN:$PATH
T0=$SECONDS

progress() { printf '%s (%s s)\n' "$*" "$((SECONDS - T0))" | tee -a "$OUT/progress" >&2; }
die() { progress "FAILED: $*"; exit 1; }

PIDS=()
stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT

# ---- writable state: the shared root is read-only. Pods' layers, kubelet's pod dirs and logs live
# in the guest's RAM (tmpfs); overlayfs accepts tmpfs as its upper layer.
mkdir -p "$CONF"
for d in /var/lib /var/log; do
  mount -t tmpfs -o mode=0755 tmpfs "$d" || die "mount tmpfs $d"
done
mkdir -p /var/lib/kubelet /var/lib/containerd /var/log/pods /var/log/containers "$CONF/cni"
# kubelet and containerd need mount propagation (Bidirectional volumes, kubelet's own mounts).
mount --make-rshared /

# ---- cgroup v2 (mounted by test/vm/guest/run.sh): hand the controllers down to kubelet's cgroups.
[[ -f /sys/fs/cgroup/cgroup.controllers ]] || die "no cgroup v2 at /sys/fs/cgroup"
ctrls=$(sed 's/\([a-z_]*\)/+\1/g' /sys/fs/cgroup/cgroup.controllers)
echo "$ctrls" >/sys/fs/cgroup/cgroup.subtree_control || die "cannot enable cgroup controllers: $ctrls"

# ---- kernel: overlayfs for the snapshotter; br_netfilter so bridged pod-to-pod packets pass the
# IP hooks (conntrack sees both directions of a Service connection whose backend shares the bridge).
modprobe -a overlay br_netfilter veth bridge ip_vs nf_conntrack || die "modprobe failed"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
progress "kernel and mounts ready"

# ---- CNI: a bridge with host-local addresses from the node's podCIDR (the controller manager
# allocates the first /24 of 10.244.0.0/16 to the only node).
cat >"$CONF/cni/10-bridge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kube-ipvs-cluster",
  "plugins": [
    { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

# ---- containerd
cat >"$CONF/containerd.toml" <<EOF
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.2"
[plugins."io.containerd.cri.v1.runtime"]
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$CONF/cni"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
      SystemdCgroup = false
EOF
containerd --config "$CONF/containerd.toml" >"$OUT/containerd.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 240; i++)); do
  [[ -S $SOCK ]] && ctr --address "$SOCK" version >/dev/null 2>&1 && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || die "containerd exited (node/containerd.log)"
  sleep 0.5
done
[[ -S $SOCK ]] || die "containerd did not open $SOCK"
progress "containerd $(containerd --version | awk '{print $3}') up"

# ---- images: imported, unpacked, and pinned (kubelet's image GC must never remove an image that
# cannot be pulled again).
for archive in "$IMAGES"/*.tar; do
  names=$(ctr --address "$SOCK" -n k8s.io images import "$archive" 2>&1) || die "ctr import $archive: $names"
done
ctr --address "$SOCK" -n k8s.io images ls -q | grep -v '^sha256:' | while read -r name; do
  ctr --address "$SOCK" -n k8s.io images label "$name" io.cri-containerd.pinned=pinned >/dev/null
done
progress "images imported: $(ctr --address "$SOCK" -n k8s.io images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# ---- kubelet
cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
failSwapOn: false
clusterDomain: cluster.local
# CoreDNS (test/cluster/coredns.yaml, applied by cluster.sh up once the node is Ready).
clusterDNS: [10.96.0.10]
# Pods with dnsPolicy Default get no resolver from the node: no query may leave the VM.
resolvConf: ""
# Everything is in RAM (tmpfs): evict only when it is really short; images cannot be pulled again.
evictionHard: {memory.available: 64Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podCIDR: $POD_CIDR
# The default (/usr/libexec/...) is on the read-only shared root.
volumePluginDir: /var/lib/kubelet/volume-plugins
EOF
"$BIN/kubelet" --config "$CONF/kubelet.yaml" --kubeconfig "$STATE/kubeconfig-system-node-$NODE" \
  --hostname-override "$NODE" --node-ip "$NODE_IP" --root-dir /var/lib/kubelet \
  >"$OUT/kubelet.log" 2>&1 &
PIDS+=($!)
progress "kubelet started"

# ---- the service proxy: kube-ipvs (a process) or, as the reference, upstream kube-proxy in IPVS
# mode, both as system:kube-proxy (bootstrap binding system:node-proxier). node/proxy names the one
# to run; `cluster.sh proxy NAME` rewrites it and the loop below swaps them on this same node: the
# running one is stopped, `kube-proxy --cleanup` removes what either left in the kernel (IPVS
# services, kube-ipvs0, the KUBE-* ipsets and chains), then the other starts.
PROXY=
PROXY_PID=
proxy_wanted() {
  local want
  want=$(tr -d '[:space:]' 2>/dev/null <"$OUT/proxy" || true)
  echo "${want:-kube-ipvs}"
}
start_proxy() { # start_proxy NAME
  case $1 in
    kube-ipvs)
      node "$ROOT/dist/src/cli/main.js" run --kubeconfig "$STATE/kubeconfig-system-kube-proxy" \
        --hostname-override "$NODE" --cluster-cidr "$CLUSTER_CIDR" --log-format json \
        >>"$OUT/kube-ipvs.log" 2>&1 &
      ;;
    kube-proxy)
      "$BIN/kube-proxy" --proxy-mode=ipvs --kubeconfig "$STATE/kubeconfig-system-kube-proxy" \
        --hostname-override "$NODE" --cluster-cidr "$CLUSTER_CIDR" --v=2 \
        >>"$OUT/kube-proxy.log" 2>&1 &
      ;;
    *) die "node/proxy names $1: expected kube-ipvs or kube-proxy" ;;
  esac
  PROXY_PID=$!
  PROXY=$1
  progress "$1 started"
}
stop_proxy() {
  [[ -n $PROXY_PID ]] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  # kube-proxy --cleanup runs the iptables mode's cleanup before the IPVS mode's (platformCleanup,
  # cmd/kube-proxy/app/server_linux.go v1.36.3) and exits 1 if either reported an error. After
  # kube-ipvs the iptables mode's could not delete KUBE-MARK-MASQ and KUBE-PROXY-FIREWALL (still
  # used by IPVS-mode rules); whether it does the same after kube-proxy's own state is unchecked.
  if "$BIN/kube-proxy" --cleanup >>"$OUT/proxy-cleanup.log" 2>&1; then
    progress "$PROXY stopped, kube-proxy --cleanup done"
  else
    progress "$PROXY stopped, kube-proxy --cleanup reported errors (node/proxy-cleanup.log)"
  fi
  PROXY= PROXY_PID=
}
# At power-off the proxy is only stopped: the guest's kernel state goes with it.
trap 'kill -TERM "$PROXY_PID" 2>/dev/null; stop_all' EXIT
start_proxy "$(proxy_wanted)"

names=(containerd kubelet)
all_running() {
  local i
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || die "${names[$i]} exited (node/${names[$i]}.log)"
  done
  kill -0 "$PROXY_PID" 2>/dev/null || die "$PROXY exited (node/$PROXY.log)"
}
for ((i = 0; i < 600; i++)); do
  curl -sf http://127.0.0.1:10248/healthz >/dev/null 2>&1 && break
  all_running
  sleep 1
done
progress "kubelet healthz ok"
: >"$OUT/ready"

# ---- run until told to stop, or until a component exits; swap the proxy when node/proxy changes
while [[ ! -e $OUT/stop ]]; do
  all_running
  want=$(proxy_wanted)
  if [[ $want != "$PROXY" ]]; then
    stop_proxy
    start_proxy "$want"
  fi
  sleep 2
done
progress "stopping"
