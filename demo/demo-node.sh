#!/usr/bin/env bash
# The demo, run as root on a throw-away node (the VM, or a private network namespace): pods as
# network namespaces, kube-ipvs running as a daemon on demo/cluster.yaml, real requests showing
# which pod answered for a ClusterIP, a NodePort and a LoadBalancer IP, the IPVS table, and what
# happens when a pod is removed.
set -euo pipefail
DEMO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$DEMO")
. "$ROOT/test/vm/lib.sh"
vm_trap_cleanup
# The bundle (npm run build): one file to read over 9p instead of ~1,900 modules.
KI=(node "$ROOT/dist/kube-ipvs.mjs")
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
DIR=$(mktemp -d)
LOG=$(mktemp)
# Headings in bold on a terminal only: a log or a pipe gets plain text.
if [[ -t 1 ]]; then say() { printf '\n\033[1m%s\033[0m\n' "$*"; }; else say() { printf '\n%s\n' "$*"; }; fi

# A node needs an interface and a default route (IPVS refuses masquerade real servers otherwise).
ip link show node0 >/dev/null 2>&1 || {
  ip link add node0 type dummy && ip addr add 10.0.2.15/24 dev node0 && ip link set node0 up && ip link set lo up &&
    ip route add default via 10.0.2.2 dev node0
}

say "Starting pods (network namespaces with an HTTP server answering its name and the client it saw)"
pods=(web-1:10.244.1.11 web-2:10.244.1.12 web-3:10.244.1.13 shop-1:10.244.1.31 shop-2:10.244.1.32 lb-1:10.244.1.41 lb-2:10.244.1.42)
for p in "${pods[@]}"; do vm_pod "${p%%:*}" "${p#*:}"; done
for p in "${pods[@]}"; do vm_http_server "${p%%:*}" 8080 & done
wait
vm_external_client client 192.168.100.2/24 192.168.100.1
echo "pods: ${pods[*]}; outside client: 192.168.100.2"

slices() { # slices WEB_IPS... : EndpointSlices for the three services (web gets the given pods)
  local svc ips
  for svc in web shop ingress; do
    case $svc in web) ips=("$@") ;; shop) ips=(10.244.1.31 10.244.1.32) ;; ingress) ips=(10.244.1.41 10.244.1.42) ;; esac
    printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: %s-1, namespace: default, labels: { kubernetes.io/service-name: %s } }\naddressType: IPv4\nports: [{ name: http, port: 8080, protocol: TCP }]\nendpoints:\n' "$svc" "$svc"
    for ip in "${ips[@]}"; do printf '  - { addresses: [%s], nodeName: %s }\n' "$ip" "$NODE"; done
  done
}
cp "$DEMO/cluster.yaml" "$DIR/services.yaml"
slices 10.244.1.11 10.244.1.12 10.244.1.13 >"$DIR/endpoints.yaml"

# The plan of this very cluster, with the node's addresses as `run --manifests` reads them (every
# interface but kube-ipvs0, in the kernel's order).
PLAN=$(mktemp)
KERNEL=$(mktemp)
node_ips=$(ip -o addr show | awk '$2 != "kube-ipvs0" { split($4, a, "/"); print a[1] }' | paste -sd, -)
say "kube-ipvs plan of this cluster (demo/cluster.yaml and its endpoints on node $NODE): the IPVS table it will program"
"${KI[@]}" plan --manifests "$DIR" --hostname-override "$NODE" --node-ip "$node_ips" --output ipvs 2>/dev/null >"$PLAN"
cat "$PLAN"
# in_plan_order: stdin's lines in the order the plan prints them (lines the plan lacks last).
in_plan_order() { awk 'NR == FNR { order[$0] = NR; next } { print (($0 in order) ? order[$0] : 1000000) "\t" $0 }' "$PLAN" - | sort -n -s | cut -f2-; }

say "Starting kube-ipvs: kube-ipvs run --manifests $DIR --ipvs-min-sync-period 0s"
"${KI[@]}" run --manifests "$DIR" --ipvs-min-sync-period 0s --ipvs-sync-period 30s --healthz-bind-address= --metrics-bind-address= >"$LOG" 2>&1 &
DAEMON=$!
for _ in $(seq 120); do grep -q '"synced"\| synced ' "$LOG" && break; sleep 0.5; done
cat "$LOG"

requests() { # requests WHAT NS URL: six requests, one line each: the pod that answered and the client it saw
  say "$1"
  for _ in 1 2 3 4 5 6; do printf '  %s -> %s\n' "$3" "$(vm_http_get "$2" "$3" || echo 'no answer')"; done
}
requests "ClusterIP 10.96.0.10:80 from the node (round robin over web-1..3)" - http://10.96.0.10/
requests "NodePort 192.168.100.1:30080 from the outside client (masqueraded: pods see a node address)" client http://192.168.100.1:30080/
requests "LoadBalancer 203.0.113.10:80 from the outside client" client http://203.0.113.10/

say "The kernel's IPVS table (ipvsadm -Sn, in the plan's order)"
ipvsadm -Sn | in_plan_order | tee "$KERNEL"
if cmp -s "$PLAN" "$KERNEL"; then
  echo "= kube-ipvs plan's text above, line for line"
else
  echo "differs from kube-ipvs plan's text (- plan, + kernel):"
  diff -u "$PLAN" "$KERNEL" | tail -n +3 || true
fi

say "Removing web-2 from the endpoints (the file changes; kube-ipvs applies it)"
slices 10.244.1.11 10.244.1.13 >"$DIR/.endpoints.tmp" && mv "$DIR/.endpoints.tmp" "$DIR/endpoints.yaml"
# web-2's counts are read first: the requests above left it connections, so it leaves new-connection
# scheduling at once (weight 0) and is deleted when they end (without any it would go at once).
serving() { ipvsadm -Ln -t 10.96.0.10:80 | awk '$2 == "10.244.1.12:8080" && $4 != 0 {found = 1} END {exit !found}'; }
for _ in $(seq 60); do serving || break; sleep 0.5; done
tail -2 "$LOG"
ipvsadm -Ln -t 10.96.0.10:80
requests "ClusterIP 10.96.0.10:80 again: web-2 (draining at weight 0) gets no new requests" - http://10.96.0.10/

kill -TERM "$DAEMON"; wait "$DAEMON" || true
say "kube-ipvs stopped (SIGTERM leaves the dataplane in place; kube-ipvs cleanup removes it)"
"${KI[@]}" cleanup
rm -rf "$DIR" "$LOG" "$PLAN" "$KERNEL"
