#!/usr/bin/env bash
# The guest side of the fidelity harness (test/fidelity/harness.ts runs it in the VM with a user
# network). It asks the conductor on the host (http://10.0.2.2:$PORT) what to run next, runs that
# proxy with the given flags against the host's kube-apiserver until it has synced, dumps the
# kernel state, applies the scenario's change steps through the conductor, stops the proxy, runs
# its cleanup and scrubs whatever is left, so that every run starts from the same clean kernel.
#
# The protocol is plain text, one item per line, so that the guest needs nothing but curl:
#   GET  /next            -> "run <id> <proxy>" then one argument per line, "addr <cidr>" lines for
#                            addresses the node's eth0 must have; or "done"
#   GET  /step?id=<id>    -> "step <n>" once the host has applied the change, or "end"
#   POST /dump?id=<id>&step=<n>   body: the dump
#   POST /log?id=<id>     body: the proxy's log (when it did not sync)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../vm/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/guest-lib.sh"
vm_require_guest

CONDUCTOR=${KUBE_IPVS_FIDELITY_CONDUCTOR:?set by test/fidelity/harness.ts}
KUBE_PROXY=${KUBE_IPVS_FIDELITY_KUBE_PROXY:?set by test/fidelity/harness.ts}
KUBE_IPVS=(node "$ROOT/dist/kube-ipvs.mjs")
SYNC_TIMEOUT=${KUBE_IPVS_FIDELITY_SYNC_TIMEOUT:-600}
WORK=$(mktemp -d)
PROXY_PID=
METRICS=http://127.0.0.1:10249/metrics

dump() {
  local s
  echo '### ipvs'
  ipvsadm -Sn
  echo '### ipvs-timeouts'
  ipvsadm -L --timeout
  echo '### ipset'
  ipset save
  echo '### iptables'
  iptables-save
  echo '### ip6tables'
  ip6tables-save
  echo '### addresses'
  ip -o addr show dev kube-ipvs0 2>/dev/null | awk '{print $4}'
  echo '### link'
  ip -d -o link show dev kube-ipvs0 2>/dev/null | sed -E 's/^[0-9]+: //; s/link\/ether [0-9a-f:]+ brd [0-9a-f:]+ //; s/\\ +/ /g; s/ +/ /g'
  echo '### sysctl'
  for s in "${SYSCTLS[@]}"; do
    if [[ -r /proc/sys/$s ]]; then printf '%s = %s\n' "$s" "$(</proc/sys/$s)"; else printf '%s absent\n' "$s"; fi
  done
  printf 'nf_conntrack hashsize = %s\n' "$(cat /sys/module/nf_conntrack/parameters/hashsize 2>/dev/null || echo absent)"
}

run_one() { # run_one ID PROXY ARGS...
  local id=$1 proxy=$2 step t0 log=$WORK/proxy.log
  shift 2
  local args=("$@") cmd
  if [[ $proxy == kube-proxy ]]; then cmd=("$KUBE_PROXY" --proxy-mode=ipvs "${args[@]}"); else cmd=("${KUBE_IPVS[@]}" run "${args[@]}"); fi
  local attempt synced=1
  for attempt in 1 2; do
    t0=$(date +%s)
    "${cmd[@]}" >"$log" 2>&1 &
    PROXY_PID=$!
    wait_sync --since 0 --timeout "$SYNC_TIMEOUT" && { synced=0; break; }
    # Say why in the log (the proxy gone or the wait over, and what the kernel said), then try
    # once more on a clean node: a run lost to the VM must not read as a difference.
    {
      if kill -0 "$PROXY_PID" 2>/dev/null; then echo "fidelity guest: attempt $attempt: no sync in time"; else wait "$PROXY_PID"; echo "fidelity guest: attempt $attempt: the proxy exited with status $?"; fi
      dmesg | tail -5
    } >>"$log" 2>&1
    ((attempt == 1)) || break
    cp "$log" "$WORK/first-attempt.log"
    stop_proxy
    cleanup_after "$proxy"
  done
  if ((synced == 0)); then
    dump >"$WORK/dump"
    conductor POST "/dump?id=$id&step=0&seconds=$(($(date +%s) - t0))" "$WORK/dump" >/dev/null
    while curl -fsS --max-time 5 "$METRICS" >"$WORK/baseline" 2>/dev/null; t0=$(date +%s.%N) && step=$(conductor GET "/step?id=$id") && [[ $step == step* ]]; do
      # A step can need two full syncs of kube-proxy (one already running when the change is
      # queued, then the one that reads it): minutes each on a loaded TCG host.
      if ! wait_sync --since "$t0" --baseline "$WORK/baseline" --timeout "$SYNC_TIMEOUT" --two-syncs; then
        # A change the proxy never queued is dumped all the same; a proxy that died is not.
        kill -0 "$PROXY_PID" 2>/dev/null || { conductor POST "/log?id=$id" "$log" >/dev/null; break; }
        echo "fidelity guest: ${step}: no sync of the change within ${SYNC_TIMEOUT}s; dumped as it is" >>"$log"
      fi
      dump >"$WORK/dump"
      conductor POST "/dump?id=$id&step=${step#step }" "$WORK/dump" >/dev/null
    done
  else
    conductor POST "/log?id=$id" "$log" >/dev/null
  fi
  stop_proxy
  [[ -f $WORK/first-attempt.log ]] && { cat "$WORK/first-attempt.log" - <"$log" >"$WORK/both.log"; mv "$WORK/both.log" "$log"; rm -f "$WORK/first-attempt.log"; }
  conductor POST "/log?id=$id&final=1" "$log" >/dev/null
  cleanup_after "$proxy"
}

cleanup_after() { # cleanup_after PROXY: its own cleanup, then the scrub
  if [[ $1 == kube-proxy ]]; then
    "$KUBE_PROXY" --proxy-mode=ipvs --cleanup >"$WORK/cleanup.log" 2>&1
  else
    "${KUBE_IPVS[@]}" run --cleanup >"$WORK/cleanup.log" 2>&1
  fi
  scrub
}

trap 'stop_proxy; scrub' EXIT
record_boot_state
scrub
while :; do
  conductor GET /next >"$WORK/next" || exit 1
  mapfile -t lines <"$WORK/next"
  [[ ${lines[0]:-} == done ]] && break
  [[ ${lines[0]:-} == skip\ * ]] && continue
  read -r verb id proxy <<<"${lines[0]}"
  [[ $verb == run ]] || vm_die "conductor said: ${lines[0]}"
  args=()
  for l in "${lines[@]:1}"; do
    if [[ $l == addr\ * ]]; then ip addr replace "${l#addr }" dev eth0 nodad; else args+=("$l"); fi
  done
  run_one "$id" "$proxy" "${args[@]}"
done
echo "fidelity guest: done"
