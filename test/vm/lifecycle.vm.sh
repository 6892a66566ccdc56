#!/usr/bin/env bash
# Connection lifecycle in a real kernel (inside the VM): an established TCP connection to a pod
# that leaves the endpoints keeps working (graceful termination: weight 0, not deleted), and keeps
# working across kill -9 and restart of the daemon, while new connections go elsewhere; under a
# steady load (test/vm/load-client.mjs) no new or long-lived connection fails while the daemon is
# down or restarting, and the restart converges to the same dataplane without a flush; a host
# listener is not reachable through a ClusterIP (closed by default); node-originated access to a
# source-range-restricted LoadBalancer IP is dropped, as kube-proxy's KUBE-IPVS-OUT-FILTER does.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

DIR=$(mktemp -d)
LOG=$(mktemp)
NODE=$(hostname | tr '[:upper:]' '[:lower:]')

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
  vm_track "$DAEMON"
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
vm_hold_server pod-a 9000
vm_hold_server pod-b 9000
vm_http_server pod-a 8080
write 10.244.1.2 10.244.1.3
start_daemon
for _ in $(seq 120); do fresh >/dev/null 2>&1 && break; sleep 0.5; done

# Once on 2026-12-05 (quiet machine) this connect was reset right after a fresh connection had
# been answered: cause not found yet. Say so with what the node showed, and try again; three
# failures end the scenario.
first=""
for attempt in 1 2 3; do
  if exec 3<>/dev/tcp/10.96.0.50/9000 && first=$(ask one); then break; fi
  first=""
  exec 3>&- || true
  echo "NOTICE: lifecycle: the held connection to 10.96.0.50:9000 failed (attempt $attempt) after a fresh one was answered; ipvs: $(ipvsadm -Ln -t 10.96.0.50:9000 2>&1 | tail -n +4 | tr -s ' \n' ' '); syncs: $(grep -i 'synced' "$LOG" | cut -c1-200 | tr '\n' ' ')"
  sleep 1
done
[[ -n $first ]] || vm_die "no answer on the held connection"
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

vm_log "== kill -9 the daemon under load, restart it"
# A load generator runs from before the kill until the restarted daemon has synced: a fresh
# connection every 20 ms and one long-lived connection pinged every 100 ms. Not one may fail.
LOAD_OUT=$DIR/load.out
rm -f "$LOAD_OUT" "$VM_STATE/load.ready"
node "$ROOT/test/vm/load-client.mjs" 10.96.0.50 9000 "$LOAD_OUT" "$VM_STATE/load.ready" 20 5000 </dev/null >"$DIR/load.log" 2>&1 &
LOAD=$!
printf '%s\n' "$LOAD" >>"$VM_STATE/pids"
for _ in $(seq 300); do [[ -s $VM_STATE/load.ready ]] && break; kill -0 "$LOAD" 2>/dev/null || break; sleep 0.1; done
[[ -s $VM_STATE/load.ready ]] || { cat "$DIR/load.log" >&2; vm_die "load client not ready"; }
ok "load running (a new connection every 20 ms, one long-lived connection)"
snapshot() { # the dataplane as the daemon left it: IPVS, ipsets, iptables rules (sorted)
  ipvsadm -Sn | sort
  ipset save | sort
  iptables-save | grep '^-A' | sort
}
vs_conns() { ipvsadm -Ln --stats --exact -t 10.96.0.50:9000 | awk '$1 == "TCP" {print $3}'; }
before_ipvs=$(ipvsadm -Sn | sort)
before_all=$(snapshot)
conns_before=$(vs_conns)
kill -9 "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
r=$(ask three) && [[ $r == "$first" ]] && ok "connection survives while the daemon is down" || bad "broken while down: '$r'"
[[ $(fresh) == "$other" ]] && ok "new connections served while the daemon is down" || bad "no service while down"
sleep 2 # the load keeps going with no daemon at all
conns_down=$(vs_conns)
((conns_down > conns_before)) && ok "the load reached the VIP while the daemon was down (conns $conns_before -> $conns_down)" || bad "VIP connection counter did not move while down: $conns_before -> $conns_down"
before=$(grep -c ' synced ' "$LOG" || true)
t_restart=$SECONDS
start_daemon
# (node starts slowly under TCG, more so on a busy host: allow minutes, the load keeps running)
synced() { [[ $(grep -c ' synced ' "$LOG" || true) -gt $before ]]; }
while ((SECONDS - t_restart < 240)) && ! synced; do sleep 0.25; done
after_ipvs=$(ipvsadm -Sn | sort)
after_all=$(snapshot)
conns_after=$(vs_conns)
if synced; then
  ok "the restarted daemon synced ($((SECONDS - t_restart)) s after the restart)"
  [[ $before_ipvs == "$after_ipvs" ]] && ok "ipvsadm -Sn after the first sync equals the one before the kill (no duplicates)" ||
    bad "IPVS state changed by the restart: $(diff <(printf '%s\n' "$before_ipvs") <(printf '%s\n' "$after_ipvs"))"
  [[ $before_all == "$after_all" ]] && ok "ipsets and iptables rules unchanged by the restart" ||
    bad "dataplane changed by the restart: $(diff <(printf '%s\n' "$before_all") <(printf '%s\n' "$after_all"))"
  ((conns_after >= conns_down)) && ok "no flush: the VIP's connection counter kept counting ($conns_down -> $conns_after)" ||
    bad "the VIP's connection counter went down ($conns_down -> $conns_after): the virtual server was flushed or recreated"
else
  bad "the restarted daemon did not sync within $((SECONDS - t_restart)) s (convergence not checked)"
fi
sleep 2 # and a little load on the restarted daemon
kill -TERM "$LOAD"
for _ in $(seq 150); do [[ -s $LOAD_OUT ]] && break; sleep 0.1; done
wait "$LOAD" 2>/dev/null || true
if [[ -s $LOAD_OUT ]]; then
  declare -A load=()
  while read -r k v; do [[ $k == error ]] && vm_log "load client: $v" || load[$k]=$v; done <"$LOAD_OUT"
  vm_log "load: ${load[new_ok]} new connections ok, ${load[new_failed]} failed, ${load[new_slow]} slower than 1 s (max ${load[new_max_ms]} ms), ${load[new_skipped]} ticks skipped, backends ${load[new_backends]}; long-lived: ${load[long_ok]}/${load[long_sent]} answered by ${load[long_backend]}, ${load[long_failed]} failed (max ${load[long_max_ms]} ms), over ${load[duration_ms]} ms"
  ((load[new_failed] == 0 && load[new_ok] >= 100)) && ok "zero failed new connections (${load[new_ok]} ok) across the kill and the restart" ||
    bad "new connections failed under load: ${load[new_failed]} failed, ${load[new_ok]} ok"
  [[ ${load[new_backends]} == "$other=${load[new_ok]}" ]] && ok "every new connection went to $other (the draining server got none)" ||
    bad "new connections spread as ${load[new_backends]} (expected only $other)"
  ((load[long_failed] == 0 && load[long_ok] == load[long_sent] && load[long_sent] >= 50)) &&
    ok "the long-lived connection answered all ${load[long_sent]} pings" ||
    bad "the long-lived connection failed: ${load[long_failed]} failures, ${load[long_ok]}/${load[long_sent]} answered"
else
  bad "the load client wrote no result: $(cat "$DIR/load.log")"
fi
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
