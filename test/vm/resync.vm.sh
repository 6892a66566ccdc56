#!/usr/bin/env bash
# The periodic full resync on a busy node, in a real kernel (inside the VM): one Service's
# endpoints change about every second (so partial syncs never stop) while a load client
# (load-client.mjs) hits another, stable Service. Tampering with the stable Service is repaired
# within one --ipvs-sync-period all the same, and the client fails only until then:
#   1. iptables -D of the INPUT jump to KUBE-IPVS-FILTER, and ipvsadm -D of the stable Service's
#      virtual server: nothing the churn touches, so only a full resync can repair them (the old
#      runner let every change postpone that resync, and they stayed broken);
#   2. ipvsadm -C: the whole table, the churned Service's virtual server included.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

SYNC_PERIOD=10
# A full resync is due a period after the last one started; it may wait for the partial sync in
# flight (or the 1 s minimum period after it), then takes its own time (seconds under TCG), and
# the checks poll every 0.2 s: allow 5 s on top of the period.
REPAIR_LIMIT=$((SYNC_PERIOD + 5))
LOAD_INTERVAL_MS=50
DIR=$(mktemp -d)
LOG=$(mktemp)
NODE=$(hostname | tr '[:upper:]' '[:lower:]')
INPUT_JUMP=(INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER)

write() { # write FILE < content, atomically as editors do
  cat >"$DIR/.$1.tmp" && mv "$DIR/.$1.tmp" "$DIR/$1"
}
vm_stable_yaml "$NODE" | write stable.yaml
vm_churn_yaml 0 "$NODE" | write churn.yaml

vm_pod pod-a 10.244.1.2
vm_hold_server pod-a 9000
"${KI[@]}" run --manifests "$DIR" --ipvs-min-sync-period 1s --ipvs-sync-period "${SYNC_PERIOD}s" \
  --healthz-bind-address= --metrics-bind-address= --log-format json >>"$LOG" 2>&1 &
DAEMON=$!
vm_track "$DAEMON"

stable_served() { ipvsadm -Ln -t 10.96.0.60:9000 2>/dev/null | grep -q '10.244.1.2:9000'; }
jump_in() { iptables -C "${INPUT_JUMP[@]}" 2>/dev/null; }
churn_served() { ipvsadm -Ln -t 10.96.0.70:80 >/dev/null 2>&1; }
programmed() { stable_served && jump_in; }
wait_until 240 "the daemon programmed the stable Service and the INPUT jump to KUBE-IPVS-FILTER" programmed

# The churn: a new endpoint list about every second (each file write is a change, and a sync no
# sooner than --ipvs-min-sync-period after the last one).
(
  i=0
  while :; do i=$((i + 1)); vm_churn_yaml "$i" "$NODE" | write churn.yaml; sleep 0.5; done
) </dev/null >/dev/null 2>&1 &
printf '%s\n' "$!" >>"$VM_STATE/pids"

load_start() { # load_start NAME: the load client on the stable Service
  LOAD_OUT=$DIR/$1.out
  rm -f "$LOAD_OUT" "$VM_STATE/$1.ready"
  node "$ROOT/test/vm/load-client.mjs" 10.96.0.60 9000 "$LOAD_OUT" "$VM_STATE/$1.ready" "$LOAD_INTERVAL_MS" 3000 </dev/null >"$DIR/$1.log" 2>&1 &
  LOAD=$!
  printf '%s\n' "$LOAD" >>"$VM_STATE/pids"
  for _ in $(seq 600); do [[ -s $VM_STATE/$1.ready ]] && return 0; kill -0 "$LOAD" 2>/dev/null || break; sleep 0.1; done
  cat "$DIR/$1.log" >&2
  vm_die "load client $1 not ready"
}
declare -A load=()
load_stop() { # load_stop: stops the client, reads its counts into load[] and prints them
  kill -TERM "$LOAD"
  for _ in $(seq 150); do [[ -s $LOAD_OUT ]] && break; sleep 0.1; done
  wait "$LOAD" 2>/dev/null || true
  [[ -s $LOAD_OUT ]] || vm_die "the load client wrote no result: $(cat "$DIR"/*.log)"
  load=()
  while read -r k v; do [[ $k == error ]] && vm_log "load client: $v" || load[$k]=$v; done <"$LOAD_OUT"
  vm_log "load: ${load[new_ok]} new connections ok, ${load[new_failed]} failed (one every $LOAD_INTERVAL_MS ms); long-lived: ${load[long_ok]}/${load[long_sent]} answered, ${load[long_failed]} failed; over ${load[duration_ms]} ms"
}
uptime_cs() { # uptime_cs VAR: the guest's uptime in centiseconds, without forking
  local u
  read -r u _ </proc/uptime
  printf -v "$1" '%d' "$((10#${u/./}))"
}
TAMPERED_CS=0 REPAIRED_CS=0 REPAIRED=0
tamper_start() { uptime_cs TAMPERED_CS; }
repaired_within() { # repaired_within WHAT CHECK...: polls until every check passes, within REPAIR_LIMIT of tamper_start
  local what=$1 c all seconds
  shift
  REPAIRED=0
  while :; do
    all=1
    for c in "$@"; do "$c" || { all=0; break; }; done
    uptime_cs REPAIRED_CS
    seconds="$(((REPAIRED_CS - TAMPERED_CS) / 100)).$(((REPAIRED_CS - TAMPERED_CS) % 100 / 10))"
    if ((all)); then
      REPAIRED=1
      ok "$what repaired ${seconds} s after the tampering (sync period ${SYNC_PERIOD} s, limit ${REPAIR_LIMIT} s)"
      return 0
    fi
    ((REPAIRED_CS - TAMPERED_CS <= REPAIR_LIMIT * 100)) || { bad "$what not repaired within ${REPAIR_LIMIT} s"; return 1; }
    sleep 0.2
  done
}
syncs_since() { # syncs_since LINE: "P partial, F full" syncs logged after that log line
  local lines
  lines=$(tail -n +"$(($1 + 1))" "$LOG" | grep '"msg":"synced"' || true)
  printf '%s partial, %s full' "$(grep -c '"full":false' <<<"$lines" || true)" "$(grep -c '"full":true' <<<"$lines" || true)"
}
bounded_failures() { # the client failed only while the Service was broken: at most one per tick then, plus 2 s
  local limit
  ((REPAIRED)) || { bad "$1: ${load[new_failed]} failed new connections, and no bound since it was not repaired"; return 0; }
  limit=$(((REPAIRED_CS - TAMPERED_CS + 200) * 10 / LOAD_INTERVAL_MS))
  ((load[new_failed] <= limit)) && ok "$1: ${load[new_failed]} failed new connections (bound $limit: one per tick until the repair, plus 2 s)" ||
    bad "$1: ${load[new_failed]} failed new connections, more than $limit"
  ((load[new_ok] > 0)) && ok "$1: ${load[new_ok]} new connections answered" || bad "$1: no new connection answered"
}
served_after() { # five fresh connections to the stable Service, all answered by pod-a
  local n line
  for n in 1 2 3 4 5; do
    exec 4<>/dev/tcp/10.96.0.60/9000 || return 1
    printf 'after %d\n' "$n" >&4
    IFS= read -r -t 5 line <&4 || { exec 4>&-; return 1; }
    exec 4>&-
    [[ $line == pod-a* ]] || return 1
  done
}

sleep 3
mark=$(wc -l <"$LOG")
sleep 5
vm_log "churn: $(syncs_since "$mark") syncs in 5 s before any tampering"

vm_log "== 1. the INPUT jump and the stable Service's virtual server deleted during the churn"
load_start phase1
mark=$(wc -l <"$LOG")
tamper_start
iptables -D "${INPUT_JUMP[@]}"
ipvsadm -D -t 10.96.0.60:9000
jump_in && bad "the INPUT jump is still there" || true
repaired_within "the INPUT jump and the stable virtual server" jump_in stable_served || true
vm_log "syncs meanwhile: $(syncs_since "$mark")"
sleep 2
load_stop
bounded_failures "deleted virtual server"
served_after && ok "the stable Service answers after the repair" || bad "the stable Service does not answer after the repair"

vm_log "== 2. ipvsadm -C during the churn"
load_start phase2
mark=$(wc -l <"$LOG")
tamper_start
ipvsadm -C
repaired_within "every virtual server after ipvsadm -C" stable_served churn_served || true
vm_log "syncs meanwhile: $(syncs_since "$mark")"
sleep 2
load_stop
bounded_failures "ipvsadm -C"
served_after && ok "the stable Service answers after the repair" || bad "the stable Service does not answer after the repair"

kill -TERM "$DAEMON"; wait "$DAEMON" || true
threw=$(grep -c '"msg":"sync threw' "$LOG" || true)
((threw == 0)) && ok "no sync threw" || bad "$threw syncs threw"
vm_log "daemon logged $(grep -c '"msg":"synced"' "$LOG") syncs ($(syncs_since 0))"
((fails == 0)) || { tail -20 "$LOG" >&2; vm_die "$fails check(s) failed"; }
vm_log "resync.vm.sh: all checks passed"
