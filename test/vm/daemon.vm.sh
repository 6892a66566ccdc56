#!/usr/bin/env bash
# The daemon end to end in a real kernel (inside the VM): `kube-ipvs run` watches a manifest
# directory and keeps real traffic flowing as files change; SIGHUP re-reads; kill -9 and restart
# keep established connections and converge without a flush; tampering is repaired within one
# sync period; SIGTERM leaves the dataplane in place. Also the daemon's process settings:
# oom_score_adj -999 (kube-proxy's default) and --bind-address-hard-fail stopping on a taken port.
# (That an established TCP connection survives its endpoint's removal is proven against the fake
# kernel in test/sync; a real-kernel check needs a server that holds connections open.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

DIR=$(mktemp -d)
LOG=$(mktemp)
NODE=$(hostname)

service_yaml() { # service_yaml NAME CLUSTER_IP
  cat <<YAML
apiVersion: v1
kind: Service
metadata: { name: $1, namespace: default }
spec:
  clusterIP: $2
  ports:
    - { name: http, port: 80, protocol: TCP }
    - { name: dns, port: 53, protocol: UDP }
YAML
}
slice_yaml() { # slice_yaml NAME IP...
  local name=$1; shift
  printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n  namespace: default\n  labels: { kubernetes.io/service-name: %s }\naddressType: IPv4\nports:\n  - { name: http, port: 8080, protocol: TCP }\n  - { name: dns, port: 5353, protocol: UDP }\nendpoints:\n' "$name" "$name"
  for ip in "$@"; do printf '  - { addresses: [%s], nodeName: %s }\n' "$ip" "$NODE"; done
}
write() { # write FILE < content, atomically as editors do
  cat >"$DIR/.$1.tmp" && mv "$DIR/.$1.tmp" "$DIR/$1"
}
answers() { local body; body=$(vm_http_get - "http://$1/") && [[ $body == *"$2"* ]]; }
start_daemon() {
  "${KI[@]}" run --manifests "$DIR" --ipvs-min-sync-period 0s --ipvs-sync-period 10s \
    --healthz-bind-address= --metrics-bind-address= --log-format json >>"$LOG" 2>&1 &
  DAEMON=$!
  vm_track "$DAEMON"
}

vm_pod pod-a 10.244.1.2
vm_pod pod-b 10.244.1.3
for p in pod-a pod-b; do vm_http_server "$p" 8080; vm_udp_echo "$p" 5353; done

service_yaml web 10.96.0.10 | write web.yaml
slice_yaml web 10.244.1.2 10.244.1.3 | write web-eps.yaml
start_daemon
wait_until 60 "the daemon serves the ClusterIP" answers 10.96.0.10 pod-
# Twice on 2026-12-05 (quiet machine) a request right after the first answer was reset by peer:
# cause not found yet. A reset is retried once with a NOTICE that keeps what the node showed.
get_noting_resets() { # get_noting_resets URL
  vm_http_get - "$1" && return 0
  echo "NOTICE: daemon: a request to $1 failed right after start; ipvs: $(ipvsadm -Ln 2>&1 | tail -n +4 | tr -s ' \n' ' '); syncs: $(grep '"msg":"synced"' "$LOG" | cut -c1-200 | tr '\n' ' ')"
  sleep 1
  vm_http_get - "$1"
}
seen=""
for _ in 1 2 3 4; do seen+="$(get_noting_resets http://10.96.0.10/) "; done
[[ $seen == *pod-a* && $seen == *pod-b* ]] && ok "both pods answer" || bad "not balanced: $seen"

vm_log "== the daemon's OOM score: kube-proxy's default -999 (--oom-score-adj)"
oom=$(cat "/proc/$DAEMON/oom_score_adj")
[[ $oom == -999 ]] && ok "oom_score_adj is -999" || bad "oom_score_adj is $oom, not -999"

vm_log "== --bind-address-hard-fail: a taken health check address stops a second daemon (exit 1)"
node -e "require('net').createServer().listen(10299, '127.0.0.1')" &
HOLDER=$!
wait_until 10 "port 10299 taken" bash -c 'exec 3<>/dev/tcp/127.0.0.1/10299'
HARDLOG=$(mktemp)
rc=0
timeout 60 "${KI[@]}" run --manifests "$DIR" --healthz-bind-address=127.0.0.1:10299 --metrics-bind-address= \
  --bind-address-hard-fail --log-format json >"$HARDLOG" 2>&1 || rc=$?
kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true
[[ $rc == 1 ]] && grep -q 'healthz server failed' "$HARDLOG" && ok "exit 1 naming the healthz server" ||
  bad "second daemon: exit $rc, log: $(tail -3 "$HARDLOG")"

vm_log "== a file change: pod-b leaves the endpoints"
slice_yaml web 10.244.1.2 | write web-eps.yaml
wait_until 30 "pod-b is weighted out or removed" bash -c '! ipvsadm -Ln -t 10.96.0.10:80 | grep -q "10.244.1.3:8080 *Masq *1 "'
seen=""
for _ in 1 2 3 4; do seen+="$(vm_http_get - http://10.96.0.10/) "; done
[[ $seen != *pod-b* ]] && ok "new connections go to pod-a only" || bad "pod-b still gets new connections: $seen"

vm_log "== SIGHUP re-reads the manifests"
slice_yaml web 10.244.1.2 10.244.1.3 >"$DIR/web-eps.yaml" # written in place, then a HUP
kill -HUP "$DAEMON"
wait_until 30 "pod-b is back at weight 1" bash -c 'ipvsadm -Ln -t 10.96.0.10:80 | grep -q "10.244.1.3:8080 *Masq *1 "'

vm_log "== a removed endpoint without connections: deleted by the change's own partial sync"
# 10.244.1.9 never gets a connection (no traffic flows meanwhile). As in kube-proxy
# (GracefulDeleteRS, pkg/proxy/ipvs/graceful_termination.go, v1.36.3) the sync that removes it
# reads its counts first and, finding none, deletes it at once: no weight-0 step, no drain check.
# It goes from both virtual servers of web (TCP 80 and UDP 53; UDP ones always go at once) in that
# one sync. The periodic resync (10 s here) is a full one, so the log tells which sync deleted it.
slice_yaml web 10.244.1.2 10.244.1.3 10.244.1.9 | write web-eps.yaml
wait_until 30 "10.244.1.9 is a real server" bash -c 'ipvsadm -Ln -t 10.96.0.10:80 | grep -q "10.244.1.9:8080 *Masq *1 "'
# Right after a periodic full resync, so that the next one (10 s on) cannot come first and do the
# delete itself (correct, but not what this checks).
mark=$(wc -l <"$LOG")
wait_until 30 "a periodic full resync has run" bash -c "tail -n +$((mark + 1)) '$LOG' | grep '\"msg\":\"synced\"' | grep -q '\"full\":true'"
mark=$(wc -l <"$LOG")
slice_yaml web 10.244.1.2 10.244.1.3 | write web-eps.yaml
wait_until 30 "10.244.1.9 deleted" bash -c '! ipvsadm -Ln -t 10.96.0.10:80 | grep -q "10.244.1.9:8080"'
# The sync that deleted it logs its line only after its kernel writes: wait for that line too.
wait_until 30 "the deleting sync has logged" bash -c "tail -n +$((mark + 1)) '$LOG' | grep '\"msg\":\"synced\"' | grep -q 'ipvs.deleteDest=2'"
synced=$(tail -n +"$((mark + 1))" "$LOG" | grep '"msg":"synced"' || true)
grep '"full":false' <<<"$synced" | grep -q 'ipvs.deleteDest=2' && ok "the endpoint change's partial sync deleted it from both ports" || bad "no partial sync deleted it: $synced"
! grep -q 'ipvs.updateDest' <<<"$synced" && ok "it was never set to weight 0" || bad "a sync set it to weight 0 first: $synced"

vm_log "== tampering is repaired within one sync period"
ipvsadm -C
ipset flush KUBE-CLUSTER-IP
wait_until 25 "service restored after ipvsadm -C and an ipset flush" answers 10.96.0.10 pod-

vm_log "== kill -9: traffic keeps flowing while the daemon is down, restart converges without flush"
before=$(ipvsadm -Sn | sort)
kill -9 "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
answers 10.96.0.10 pod- && ok "served while the daemon is down" || bad "not served while down"
mark=$(wc -l <"$LOG")
start_daemon
# The log is shared with the first daemon: only lines after the mark are the restarted one's.
wait_until 90 "the restarted daemon synced" bash -c "tail -n +$((mark + 1)) '$LOG' | grep -q '\"msg\":\"synced\"'"
after=$(ipvsadm -Sn | sort)
[[ $before == "$after" ]] && ok "state unchanged by the restart (no duplicates, no flush)" || bad "restart changed state"

vm_log "== deleting the service file: its VIP stops answering and leaves nothing"
rm "$DIR/web.yaml"
wait_until 30 "virtual servers removed" bash -c '! ipvsadm -Sn | grep -q 10.96.0.10'
[[ -z $(ip -o addr show dev kube-ipvs0) ]] && ok "no kube-ipvs0 address left" || bad "address left on kube-ipvs0"
ipset save | grep -q '^add KUBE-CLUSTER-IP' && bad "ipset entry left" || ok "no ipset entry left"

vm_log "== SIGTERM leaves the dataplane in place"
service_yaml web 10.96.0.10 | write web.yaml
wait_until 30 "service back" answers 10.96.0.10 pod-
kill -TERM "$DAEMON"
wait "$DAEMON" && ok "daemon exited 0 on SIGTERM" || bad "daemon exit status $? on SIGTERM"
answers 10.96.0.10 pod- && ok "still served after SIGTERM" || bad "not served after SIGTERM"

vm_log "daemon logged $(grep -c '"msg":"synced"' "$LOG") syncs"
((fails == 0)) || { tail -20 "$LOG" >&2; vm_die "$fails check(s) failed"; }
vm_log "daemon.vm.sh: all checks passed"
