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
vm_require_guest

CONDUCTOR=${KUBE_IPVS_FIDELITY_CONDUCTOR:?set by test/fidelity/harness.ts}
KUBE_PROXY=${KUBE_IPVS_FIDELITY_KUBE_PROXY:?set by test/fidelity/harness.ts}
KUBE_IPVS=(node "$ROOT/dist/kube-ipvs.mjs")
SYNC_TIMEOUT=${KUBE_IPVS_FIDELITY_SYNC_TIMEOUT:-600}
WORK=$(mktemp -d)
PROXY_PID=
METRICS=http://127.0.0.1:10249/metrics

# The kernel settings either proxy may write (proxier.go NewProxier and server_linux.go
# setupConntrack in kube-proxy v1.36.3), read before the first run and put back after each.
SYSCTLS=(
  net/ipv4/vs/conntrack net/ipv4/vs/conn_reuse_mode net/ipv4/vs/expire_nodest_conn
  net/ipv4/vs/expire_quiescent_template net/ipv4/ip_forward net/ipv4/conf/all/arp_ignore
  net/ipv4/conf/all/arp_announce net/ipv4/conf/all/route_localnet net/ipv6/conf/all/forwarding
  net/netfilter/nf_conntrack_max net/netfilter/nf_conntrack_tcp_timeout_established
  net/netfilter/nf_conntrack_tcp_timeout_close_wait net/netfilter/nf_conntrack_tcp_be_liberal
  net/netfilter/nf_conntrack_udp_timeout net/netfilter/nf_conntrack_udp_timeout_stream
  net/bridge/bridge-nf-call-iptables
)
declare -A BOOT_SYSCTL=()

conductor() { # conductor METHOD PATH [FILE]: prints the reply; retries a refused connection
  local method=$1 path=$2 file=${3-} try
  for try in 1 2 3 4 5; do
    if [[ -n $file ]]; then
      curl -fsS --max-time 600 -X "$method" --data-binary "@$file" "$CONDUCTOR$path" && return 0
    else
      curl -fsS --max-time 600 -X "$method" "$CONDUCTOR$path" && return 0
    fi
    sleep "$try"
  done
  vm_log "conductor $method $path failed"
  return 1
}

record_boot_state() {
  modprobe ip_vs 2>/dev/null || true
  modprobe nf_conntrack 2>/dev/null || true
  local s
  for s in "${SYSCTLS[@]}"; do
    [[ -r /proc/sys/$s ]] && BOOT_SYSCTL[$s]=$(</proc/sys/$s)
  done
  BOOT_HASHSIZE=$(cat /sys/module/nf_conntrack/parameters/hashsize 2>/dev/null || true)
  BOOT_TIMEOUTS=$(ipvsadm -L --timeout 2>/dev/null | awk '/Timeout/{print $(NF-2), $(NF-1), $NF}')
}

# Everything either proxy can leave behind, whatever its cleanup did: the VM runs nothing else.
scrub() {
  local t s ipt
  ipvsadm -C 2>/dev/null
  for ipt in iptables ip6tables; do
    for t in filter nat mangle raw; do
      "$ipt" -t "$t" -F 2>/dev/null
      "$ipt" -t "$t" -X 2>/dev/null
    done
  done
  ipset destroy 2>/dev/null
  ip link del kube-ipvs0 2>/dev/null
  for s in "${!BOOT_SYSCTL[@]}"; do
    printf '%s\n' "${BOOT_SYSCTL[$s]}" >"/proc/sys/$s" 2>/dev/null
  done
  [[ -n $BOOT_HASHSIZE ]] && printf '%s\n' "$BOOT_HASHSIZE" >/sys/module/nf_conntrack/parameters/hashsize 2>/dev/null
  # shellcheck disable=SC2086 # three numbers
  [[ -n $BOOT_TIMEOUTS ]] && ipvsadm --set $BOOT_TIMEOUTS 2>/dev/null
  ip -o addr show dev eth0 | awk '$4 ~ /^fd00:/ {print $4}' | while read -r a; do ip addr del "$a" dev eth0; done
  return 0
}

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

# wait_sync ARGS...: test/fidelity/wait-sync.mjs, while the proxy is alive.
wait_sync() {
  node "$ROOT/test/fidelity/wait-sync.mjs" "$@" &
  local waiter=$!
  while kill -0 "$waiter" 2>/dev/null; do
    if ! kill -0 "$PROXY_PID" 2>/dev/null; then
      kill "$waiter" 2>/dev/null
      wait "$waiter" 2>/dev/null
      vm_log "the proxy exited"
      return 1
    fi
    sleep 1
  done
  wait "$waiter"
}

stop_proxy() {
  [[ -n $PROXY_PID ]] || return 0
  kill -TERM "$PROXY_PID" 2>/dev/null
  local i
  for i in $(seq 1 30); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 1; done
  kill -KILL "$PROXY_PID" 2>/dev/null
  wait "$PROXY_PID" 2>/dev/null
  PROXY_PID=
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
      if ! wait_sync --since "$t0" --baseline "$WORK/baseline" --timeout 120; then
        # A change the proxy never queued is dumped all the same; a proxy that died is not.
        kill -0 "$PROXY_PID" 2>/dev/null || { conductor POST "/log?id=$id" "$log" >/dev/null; break; }
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
