#!/usr/bin/env bash
# The VM soak (inside the VM, not part of suite.sh: it takes KUBE_IPVS_SOAK_MINUTES, 10 by
# default): `kube-ipvs run --manifests` with real traffic to a stable Service (load-client.mjs:
# a new connection every 50 ms and one long-lived connection, against pod-a) while
#   - another Service's endpoints change every second, and every 20 s a Service is added or
#     removed (partial syncs never stop);
#   - every 2 minutes the daemon is restarted, alternately by SIGTERM and by kill -9, and comes
#     back adopting the kernel state (no flush).
# Passes when the client saw 0 failed requests (new and long-lived) over the whole soak. Prints
# the figures: requests, failures, restarts, syncs, the daemon's RSS at each restart.
#
#   KUBE_IPVS_ONLY=soak test/vm/vm.sh --timeout 3600 -- bash test/vm/suite.sh    (as a scenario)
#   test/vm/vm.sh --timeout 3600 -- bash test/vm/soak.vm.sh                       (alone)
# (KUBE_IPVS_VM_CAPS=manifest runs it as the unprivileged DaemonSet would.)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

MINUTES=${KUBE_IPVS_SOAK_MINUTES:-10}
RESTART_EVERY=120
LOAD_INTERVAL_MS=50
DIR=$(mktemp -d)
LOG=$(mktemp)
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
write() { cat >"$DIR/.$1.tmp" && mv "$DIR/.$1.tmp" "$DIR/$1"; }

vm_stable_yaml "$NODE" | write stable.yaml
extra_yaml() { # extra_yaml N: a NodePort Service that comes and goes
  printf 'apiVersion: v1\nkind: Service\nmetadata: { name: extra-%d, namespace: default }\nspec:\n  type: NodePort\n  clusterIP: 10.96.1.%d\n  ports: [{ name: http, port: 80, nodePort: %d, protocol: TCP }]\n' "$1" "$1" $((31000 + $1))
}
vm_churn_yaml 0 "$NODE" | write churn.yaml

vm_pod pod-a 10.244.1.2
# Kernel witnesses of every failure, so a failed request can be blamed: each TCP reset sent or
# received and each TCP packet conntrack calls INVALID is logged (iptables LOG in raw/mangle, which
# kube-ipvs never touches) in the node and in pod-a, and their TCP counters are read before and
# after. KUBE_IPVS_SOAK_OBSERVE=DIR (a directory shared with --rw) also keeps the raw material
# there: the daemon's log, the client's figures, dmesg, conntrack events and statistics.
OBS=${KUBE_IPVS_SOAK_OBSERVE:-}
NSTAT_KEYS='TcpOutRsts|TcpExtTCPAbortOnData|TcpExtTCPAbortOnClose|TcpExtListenOverflows|TcpExtListenDrops|TcpExtTCPSynRetrans|TcpRetransSegs|TcpExtTCPChallengeACK'
observe_start() {
  local ns
  # the kernel drops LOG output from network namespaces other than the first unless told
  echo 1 >/proc/sys/net/netfilter/nf_log_all_netns 2>/dev/null || vm_log "nf_log_all_netns not settable: no kernel log from pod-a"
  for ns in - pod-a; do
    vm_in "$ns" iptables -t raw -A PREROUTING -p tcp --tcp-flags RST RST -j LOG --log-prefix "rst-in[$ns] "
    vm_in "$ns" iptables -t raw -A OUTPUT -p tcp --tcp-flags RST RST -j LOG --log-prefix "rst-out[$ns] "
    vm_in "$ns" iptables -t mangle -A PREROUTING -p tcp -m conntrack --ctstate INVALID -j LOG --log-prefix "invalid-in[$ns] "
    vm_in "$ns" iptables -t mangle -A OUTPUT -p tcp -m conntrack --ctstate INVALID -j LOG --log-prefix "invalid-out[$ns] "
    NSTAT_HISTORY=$DIR/nstat-history.$ns vm_in "$ns" nstat -n >/dev/null
  done
  [[ -n $OBS ]] || return 0
  { date -u +%FT%T.%N; cat /proc/uptime; } >"$OBS/clock.start"
  for f in /proc/sys/net/ipv4/vs/{conn_reuse_mode,expire_nodest_conn,conntrack,expire_quiescent_template} /proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal /proc/sys/net/ipv4/ip_local_port_range; do
    printf '%s %s\n' "$f" "$(cat "$f" 2>/dev/null)"
  done >"$OBS/sysctl"
  conntrack -E -p tcp -o timestamp,id >"$OBS/conntrack.events" 2>&1 &
  printf '%s\n' "$!" >>"$VM_STATE/pids"
}
observe_end() { # prints one "soak kernel figures" line; the kernel log lines go to stderr
  local ns prefix
  dmesg >"$DIR/dmesg"
  for ns in - pod-a; do NSTAT_HISTORY=$DIR/nstat-history.$ns vm_in "$ns" nstat -z >"$DIR/nstat.$ns"; done # since observe_start
  local line="soak kernel figures:"
  for ns in - pod-a; do
    [[ $ns == - ]] && line+=" [node]" || line+=" [$ns]"
    line+=" $(grep -Eo "^($NSTAT_KEYS) +[0-9]+" "$DIR/nstat.$ns" | awk '{printf "%s=%s ", $1, $2}')"
    for prefix in rst-in rst-out invalid-in invalid-out; do line+="$prefix=$(grep -c "$prefix\[$ns\]" "$DIR/dmesg" || true) "; done
  done
  vm_log "$line"
  grep -E '(rst|invalid)-(in|out)\[' "$DIR/dmesg" | head -40 >&2 || true
  [[ -n $OBS ]] || return 0
  { date -u +%FT%T.%N; cat /proc/uptime; } >"$OBS/clock.end"
  cp "$LOG" "$OBS/daemon.log"; cp "$OUT" "$OBS/load.out"; cp "$DIR/dmesg" "$DIR"/nstat.* "$OBS/"
  conntrack -S >"$OBS/conntrack.stats" 2>&1 || true
  ipvsadm -Ln --stats >"$OBS/ipvs.stats"; cat /proc/net/ip_vs_stats >>"$OBS/ipvs.stats"
  iptables-save >"$OBS/iptables.node"
}
vm_hold_server pod-a 9000
start_daemon() {
  "${KI[@]}" run --manifests "$DIR" --ipvs-min-sync-period 1s --ipvs-sync-period 30s \
    --healthz-bind-address= --metrics-bind-address= --log-format json >>"$LOG" 2>&1 &
  DAEMON=$!
  vm_track "$DAEMON"
}
start_daemon
# Load starts once the first sync has ended: until then the node is half programmed (virtual
# servers are written before the VIPs are bound and the rules restored), which is no promise of
# a proxy's; a reset in that window was one of the two failures this soak once counted.
stable_served() { grep -q '"msg":"synced"' "$LOG" && ipvsadm -Ln -t 10.96.0.60:9000 2>/dev/null | grep -q '10.244.1.2:9000'; }
wait_until 240 "the daemon's first sync done and the stable Service served" stable_served

(
  i=0
  while :; do
    i=$((i + 1))
    vm_churn_yaml "$i" "$NODE" | write churn.yaml
    if ((i % 20 == 0)); then
      n=$(((i / 20) % 8))
      if [[ -f $DIR/extra-$n.yaml ]]; then rm -f "$DIR/extra-$n.yaml"; else extra_yaml "$n" | write "extra-$n.yaml"; fi
    fi
    sleep 1
  done
) </dev/null >/dev/null 2>&1 &
printf '%s\n' "$!" >>"$VM_STATE/pids"

OUT=$DIR/load.out
node "$ROOT/test/vm/load-client.mjs" 10.96.0.60 9000 "$OUT" "$VM_STATE/soak.ready" "$LOAD_INTERVAL_MS" 5000 </dev/null >"$DIR/load.log" 2>&1 &
LOAD=$!
printf '%s\n' "$LOAD" >>"$VM_STATE/pids"
for _ in $(seq 600); do [[ -s $VM_STATE/soak.ready ]] && break; sleep 0.1; done
[[ -s $VM_STATE/soak.ready ]] || vm_die "load client not ready: $(cat "$DIR/load.log")"
observe_start
vm_log "== soak: $MINUTES min of traffic, churn, and a restart every $RESTART_EVERY s"

restarts=0 kills=0 rss=()
end=$((SECONDS + MINUTES * 60))
next=$((SECONDS + RESTART_EVERY))
while ((SECONDS < end)); do
  sleep 5
  kill -0 "$DAEMON" 2>/dev/null || { bad "the daemon exited on its own: $(tail -5 "$LOG")"; start_daemon; }
  if ((SECONDS >= next && SECONDS + 30 < end)); then
    rss+=("$(awk '/^VmRSS:/{print $2}' "/proc/$DAEMON/status" 2>/dev/null || echo '?')")
    if ((restarts % 2 == 0)); then kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; else kill -9 "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; kills=$((kills + 1)); fi
    restarts=$((restarts + 1))
    start_daemon
    next=$((SECONDS + RESTART_EVERY))
  fi
done
rss+=("$(awk '/^VmRSS:/{print $2}' "/proc/$DAEMON/status" 2>/dev/null || echo '?')")

kill -TERM "$LOAD"
for _ in $(seq 150); do [[ -s $OUT ]] && break; sleep 0.1; done
wait "$LOAD" 2>/dev/null || true
observe_end
declare -A load=()
while read -r k v; do [[ $k == error ]] && vm_log "load client: $v" || load[$k]=$v; done <"$OUT"
syncs=$(grep -c '"msg":"synced"' "$LOG" || true)
failed=$(grep -c '"msg":"sync failed"' "$LOG" || true)
vm_log "soak figures: ${MINUTES} min; stable Service: ${load[new_ok]} new connections ok, ${load[new_failed]} failed, max ${load[new_max_ms]} ms; long-lived ${load[long_ok]}/${load[long_sent]} answered, ${load[long_failed]} failed; restarts $restarts ($kills by kill -9); syncs $syncs ok, $failed failed; daemon RSS at each restart (kB): ${rss[*]}"
((load[new_failed] == 0 && load[long_failed] == 0)) && ok "0 failed requests to the stable Service over $MINUTES min of churn and $restarts restarts" ||
  bad "${load[new_failed]} new and ${load[long_failed]} long-lived requests failed"
((restarts >= MINUTES * 60 / RESTART_EVERY - 1)) && ok "$restarts restarts" || bad "only $restarts restarts"
((load[new_ok] > 0)) || bad "no request answered"
((fails == 0)) || { tail -20 "$LOG" >&2; vm_die "$fails check(s) failed"; }
