#!/usr/bin/env bash
# Connection lifecycle in a real kernel (inside the VM): an established TCP connection to a pod
# that leaves the endpoints keeps working (graceful termination: weight 0, not deleted), and keeps
# working across kill -9 and restart of the daemon, while new connections go elsewhere; a host
# listener is not reachable through a ClusterIP (closed by default); node-originated access to a
# source-range-restricted LoadBalancer IP is dropped, as kube-proxy's KUBE-IPVS-OUT-FILTER does.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KI=(node "$ROOT/dist/src/cli/main.js")
DIR=$(mktemp -d)
LOG=$(mktemp)
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
fails=0
ok() { vm_log "ok: $*"; }
bad() { vm_log "FAIL: $*"; fails=$((fails + 1)); }

hold_server() { # hold_server NS PORT: a connection-keeping backend in a pod
  local ready="$VM_STATE/$1-hold.ready"
  ip netns exec "$1" node "$ROOT/test/vm/hold-server.mjs" "$2" "$1" "$ready" </dev/null >/dev/null 2>&1 &
  printf '%s\n' "$!" >>"$VM_STATE/pids"
  for _ in $(seq 300); do [[ -s $ready ]] && return 0; sleep 0.1; done
  vm_die "hold server in $1 not ready"
}
manifests() { # manifests POD_IP...: the hold service with these endpoints, and a restricted LB
  cat <<YAML
apiVersion: v1
kind: Service
metadata: { name: hold, namespace: default }
spec:
  clusterIP: 10.96.0.50
  ports: [{ name: tcp, port: 9000, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: partner, namespace: default }
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.51
  loadBalancerSourceRanges: [198.51.100.0/24]
  ports: [{ name: http, port: 80, nodePort: 30051, protocol: TCP }]
status: { loadBalancer: { ingress: [{ ip: 203.0.113.11 }] } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: partner-1, namespace: default, labels: { kubernetes.io/service-name: partner } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints: [{ addresses: [10.244.1.2], nodeName: $NODE }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: hold-1, namespace: default, labels: { kubernetes.io/service-name: hold } }
addressType: IPv4
ports: [{ name: tcp, port: 9000, protocol: TCP }]
endpoints:
YAML
  for ip in "$@"; do printf '  - { addresses: [%s], nodeName: %s }\n' "$ip" "$NODE"; done
}
weight() { ipvsadm -Ln -t 10.96.0.50:9000 | awk -v rs="$1:9000" '$2 == rs {print $4}'; }
write() { manifests "$@" >"$DIR/.c.tmp" && mv "$DIR/.c.tmp" "$DIR/cluster.yaml"; }
start_daemon() {
  "${KI[@]}" run --manifests "$DIR" --ipvs-min-sync-period 0s --ipvs-sync-period 10s \
    --healthz-bind-address= --metrics-bind-address= >>"$LOG" 2>&1 &
  DAEMON=$!
}
ask() { # ask MSG: one line over the held connection (fd 3); prints the answering pod
  printf '%s\n' "$1" >&3
  local line
  IFS= read -r -t 5 line <&3 || return 1
  printf '%s' "${line%% *}"
}
fresh() { # a new connection's answering pod
  exec 4<>/dev/tcp/10.96.0.50/9000 || return 1
  printf 'new\n' >&4
  local line
  IFS= read -r -t 5 line <&4 || { exec 4>&-; return 1; }
  exec 4>&-
  printf '%s' "${line%% *}"
}

vm_pod pod-a 10.244.1.2
vm_pod pod-b 10.244.1.3
hold_server pod-a 9000
hold_server pod-b 9000
vm_http_server pod-a 8080
write 10.244.1.2 10.244.1.3
start_daemon
for _ in $(seq 120); do fresh >/dev/null 2>&1 && break; sleep 0.5; done

exec 3<>/dev/tcp/10.96.0.50/9000
first=$(ask one) || vm_die "no answer on the held connection"
other=pod-a; [[ $first == pod-a ]] && other=pod-b
ok "held connection to $first"
leaving=10.244.1.2; staying=10.244.1.3
[[ $first == pod-b ]] && { leaving=10.244.1.3; staying=10.244.1.2; }

vm_log "== $first leaves the endpoints"
write "$staying"
for _ in $(seq 60); do [[ $(weight "$leaving") == 0 ]] && break; sleep 0.5; done
[[ $(weight "$leaving") == 0 ]] && ok "$first drains at weight 0 (not deleted)" || bad "$first not at weight 0: $(ipvsadm -Ln -t 10.96.0.50:9000)"
r=$(ask two) && [[ $r == "$first" ]] && ok "the established connection still answers ($r)" || bad "established connection broken: '$r'"
n1=$(fresh); n2=$(fresh)
[[ $n1 == "$other" && $n2 == "$other" ]] && ok "new connections go to $other" || bad "new connections went to $n1 $n2"

vm_log "== kill -9 the daemon, restart it"
kill -9 "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
r=$(ask three) && [[ $r == "$first" ]] && ok "connection survives while the daemon is down" || bad "broken while down: '$r'"
[[ $(fresh) == "$other" ]] && ok "new connections served while the daemon is down" || bad "no service while down"
before=$(grep -c ' synced ' "$LOG" || true)
start_daemon
for _ in $(seq 120); do [[ $(grep -c ' synced ' "$LOG" || true) -gt $before ]] && break; sleep 0.5; done
[[ $(grep -c ' synced ' "$LOG" || true) -gt $before ]] && ok "the restarted daemon synced" || bad "the restarted daemon did not sync"
r=$(ask four) && [[ $r == "$first" ]] && ok "connection survives the restart (the draining server was adopted, not deleted)" || bad "broken by the restart: '$r'"
[[ $(weight "$leaving") == 0 ]] && ok "still draining at weight 0 after the restart" || bad "drain state lost: $(ipvsadm -Ln -t 10.96.0.50:9000)"
exec 3>&-

vm_log "== closed by default"
node "$ROOT/test/vm/hold-server.mjs" 2222 node "$VM_STATE/node-hold.ready" </dev/null >/dev/null 2>&1 &
printf '%s\n' "$!" >>"$VM_STATE/pids"
for _ in $(seq 300); do [[ -s $VM_STATE/node-hold.ready ]] && break; sleep 0.1; done
if (exec 5<>/dev/tcp/10.0.2.15/2222) 2>/dev/null; then ok "the host listener answers on the node address"; else bad "host listener unreachable on the node address"; fi
if (exec 5<>/dev/tcp/10.96.0.50/2222) 2>/dev/null; then bad "the host listener is reachable through a ClusterIP"; else ok "the host listener is not reachable through a ClusterIP"; fi

vm_log "== node-originated access to a restricted LoadBalancer IP"
if vm_http_get - http://203.0.113.11/ --max-time 3 >/dev/null 2>&1; then bad "the node reached a LB whose source ranges exclude it"; else ok "the node's request to the restricted LB IP is dropped (KUBE-IPVS-OUT-FILTER)"; fi
# (Read into a variable first: `iptables-save | grep -q` fails under pipefail when grep stops early.)
rules=$(iptables-save)
[[ $rules == *'-A KUBE-IPVS-OUT-FILTER -s 203.0.113.11/32 -m ipvs --vproto 6 --vaddr 203.0.113.11 --vport 80 -j DROP'* ]] && ok "the rule reads as planned in iptables-save" || bad "KUBE-IPVS-OUT-FILTER rule differs: $(grep OUT-FILTER <<<"$rules")"

kill -TERM "$DAEMON"; wait "$DAEMON" || true
((fails == 0)) || { tail -20 "$LOG" >&2; vm_die "$fails check(s) failed"; }
vm_log "lifecycle.vm.sh: all checks passed"
