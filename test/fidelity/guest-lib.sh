# shellcheck shell=bash
# Guest-side pieces shared by the fidelity harness (test/fidelity/guest.sh) and the side-by-side
# benchmark (bench/compare-guest.sh): the conductor client, the kernel's state at boot, the scrub
# that gives every run the same clean kernel, waiting for a proxy's sync and stopping it.
# The sourcing script sets CONDUCTOR (the host's conductor URL), ROOT and PROXY_PID.

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

