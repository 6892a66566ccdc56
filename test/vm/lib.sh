# shellcheck shell=bash
# lib.sh — helpers for scenarios that run INSIDE the test VM (test/vm/vm.sh).
# Source it from a bash script:   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   vm_pod NAME IP [GATEWAY]          netns NAME = a pod: veth eth0 IP/32, default via GATEWAY
#                                     (169.254.1.1, answered by proxy ARP on the node side);
#                                     node gets a host route IP/32 -> veth. IPv4.
#   vm_external_client NAME IP[/LEN] NODE_IP
#                                     netns NAME = a machine outside the node on its own
#                                     subnet (LEN default 24); the node side gets NODE_IP/LEN,
#                                     the client routes everything via NODE_IP.
#   vm_http_server NS PORT [NAME]     TCP server in NS answering every connection (HTTP or
#                                     not) with "NAME CLIENT_IP CLIENT_PORT"; NAME defaults to NS.
#   vm_udp_echo NS PORT [NAME]        same over UDP, one reply per datagram.
#   vm_hold_server NS PORT            TCP server in NS keeping connections open, answering each
#                                     line with "NS LINE" (hold-server.mjs; for load-client.mjs).
#   vm_in NS CMD [ARGS...]            run CMD in netns NS ("-" or "" = the node itself).
#   vm_http_get NS URL                curl from NS with short timeouts; prints the body.
#   vm_udp_query NS HOST PORT         one UDP request from NS; prints the reply.
#   vm_cleanup                        stop servers, delete namespaces (also on EXIT if
#                                     vm_trap_cleanup was called).
#   vm_log / vm_die / vm_assert_contains / vm_uptime
#
# For scenarios that print "ok: ..." / "FAIL: ..." lines and exit non-zero when any failed:
#   ROOT, KI                          the project root and the built CLI (node dist/.../main.js;
#                                     limited.sh with KUBE_IPVS_VM_CAPS set)
#   ok MSG / bad MSG                  one check's result; bad counts into $fails
#   wait_until SECONDS WHAT CMD...    poll CMD until it succeeds: ok WHAT, or bad after SECONDS
#
# Everything takes arguments as words (no eval, no string-built commands);
# names are validated. Servers log to $VM_STATE/<ns>-<proto>-<port>.log.

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
VM_STATE=${VM_STATE:-/tmp/kube-ipvs-vm-lib}
VM_POD_GATEWAY_DEFAULT=169.254.1.1
mkdir -p "$VM_STATE"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The bundle (npm run build): one file to read over 9p instead of ~1,900 modules.
KI=(node "$ROOT/dist/kube-ipvs.mjs")
# KUBE_IPVS_VM_CAPS=manifest (or a capability list): every kube-ipvs command of the scenarios runs
# as the unprivileged DaemonSet variant runs it (limited.sh).
[[ -n ${KUBE_IPVS_VM_CAPS:-} ]] && KI=(bash "$VM_LIB_DIR/limited.sh")
fails=0
ok() { vm_log "ok: $*"; }
bad() { vm_log "FAIL: $*"; fails=$((fails + 1)); }
wait_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { bad "$what (not within the time limit)"; return 1; }
    sleep 0.3
  done
  ok "$what"
}

vm_log() { printf '[vm %s] %s\n' "$(vm_uptime)" "$*" >&2; }
vm_die() { printf '[vm] FAIL: %s\n' "$*" >&2; exit 1; }
vm_uptime() { local u; read -r u _ </proc/uptime; printf '%s' "$u"; }

vm_require_guest() {
  [[ ${KUBE_IPVS_VM:-0} == 1 ]] || vm_die "run this inside the VM: test/vm/vm.sh -- bash $0"
  ((EUID == 0)) || vm_die "must run as root"
}

_vm_name() { # validate a netns / pod name
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || vm_die "bad name '$1' (letters, digits, _ . -)"
}
_vm_ipv4() {
  local re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$' i
  [[ $1 =~ $re ]] || vm_die "bad IPv4 address '$1'"
  for i in 1 2 3 4; do ((BASH_REMATCH[i] <= 255)) || vm_die "bad IPv4 address '$1'"; done
}
_vm_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)) || vm_die "bad port '$1'"; }

# node-side interface name for netns $1: "v" + name, at most 15 chars
# (long names get a checksum suffix so they stay unique)
_vm_hostif() {
  local n=$1 sum
  if ((${#n} <= 14)); then printf 'v%s' "$n"; return; fi
  sum=$(printf '%s' "$n" | cksum | cut -d' ' -f1)
  printf 'v%s%s' "${n:0:8}" "$(printf '%06x' $((sum % 16777216)))"
}

_vm_sysctl() { # _vm_sysctl net/ipv4/ip_forward 1
  printf '%s\n' "$2" >"/proc/sys/$1" || vm_die "sysctl $1=$2"
}

_vm_netns_add() {
  [[ -e /run/netns/$1 ]] && vm_die "netns $1 exists already"
  ip netns add "$1" || vm_die "ip netns add $1"
  printf '%s\n' "$1" >>"$VM_STATE/netns"
}

vm_pod() {
  (($# >= 2 && $# <= 3)) || vm_die "usage: vm_pod NAME IP [GATEWAY]"
  local name=$1 ip=$2 gw=${3:-$VM_POD_GATEWAY_DEFAULT} hostif
  _vm_name "$name"; _vm_ipv4 "$ip"; _vm_ipv4 "$gw"
  hostif=$(_vm_hostif "$name")
  _vm_netns_add "$name"
  ip link add "$hostif" type veth peer name eth0 netns "$name" || vm_die "veth for pod $name"
  _vm_sysctl "net/ipv4/conf/$hostif/proxy_arp" 1
  _vm_sysctl net/ipv4/ip_forward 1
  printf '%s\n' "link set $hostif up" "route add $ip/32 dev $hostif" |
    ip -batch - || vm_die "node side of pod $name"
  printf '%s\n' "link set lo up" "link set eth0 up" "addr add $ip/32 dev eth0" \
    "route add $gw/32 dev eth0 scope link" "route add default via $gw dev eth0" |
    ip -n "$name" -batch - || vm_die "pod side of pod $name"
}

vm_external_client() {
  (($# == 3)) || vm_die "usage: vm_external_client NAME IP[/LEN] NODE_IP"
  local name=$1 ip=${2%/*} len=24 node_ip=$3 hostif
  [[ $2 == */* ]] && len=${2#*/}
  [[ $len =~ ^[0-9]+$ ]] && ((len >= 1 && len <= 30)) || vm_die "bad prefix length '$len'"
  _vm_name "$name"; _vm_ipv4 "$ip"; _vm_ipv4 "$node_ip"
  hostif=$(_vm_hostif "$name")
  _vm_netns_add "$name"
  ip link add "$hostif" type veth peer name eth0 netns "$name" || vm_die "veth for client $name"
  _vm_sysctl net/ipv4/ip_forward 1
  printf '%s\n' "link set $hostif up" "addr add $node_ip/$len dev $hostif" |
    ip -batch - || vm_die "node side of client $name"
  printf '%s\n' "link set lo up" "link set eth0 up" "addr add $ip/$len dev eth0" \
    "route add default via $node_ip dev eth0" |
    ip -n "$name" -batch - || vm_die "client side of $name"
}

vm_in() { # vm_in NS CMD [ARGS...]; NS "-" or "" = the node
  (($# >= 2)) || vm_die "usage: vm_in NS CMD [ARGS...]"
  local ns=$1; shift
  if [[ -z $ns || $ns == - ]]; then "$@"; else _vm_name "$ns"; ip netns exec "$ns" "$@"; fi
}

_vm_server() { # proto ns port [name]
  local proto=$1 ns=$2 port=$3 name=${4:-$2} ready log pid i
  _vm_name "$ns"; _vm_port "$port"
  [[ -n $name && $name != *[[:space:]]* ]] || vm_die "bad server name '$name'"
  ready=$VM_STATE/$ns-$proto-$port.ready
  log=$VM_STATE/$ns-$proto-$port.log
  rm -f "$ready"
  ip netns exec "$ns" node "$VM_LIB_DIR/echo-server.mjs" "$proto" "$port" "$name" "$ready" \
    </dev/null >"$log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >>"$VM_STATE/pids"
  for ((i = 0; i < 600; i++)); do # node starts slowly under TCG: up to 60 s
    [[ -s $ready ]] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; vm_die "$proto server in $ns:$port exited"; }
    sleep 0.1
  done
  vm_die "$proto server in $ns:$port not ready after 60 s"
}
vm_http_server() { (($# >= 2 && $# <= 3)) || vm_die "usage: vm_http_server NS PORT [NAME]"; _vm_server tcp "$@"; }
vm_udp_echo() { (($# >= 2 && $# <= 3)) || vm_die "usage: vm_udp_echo NS PORT [NAME]"; _vm_server udp "$@"; }

vm_hold_server() { # vm_hold_server NS PORT
  (($# == 2)) || vm_die "usage: vm_hold_server NS PORT"
  local ns=$1 port=$2 ready i pid
  _vm_name "$ns"; _vm_port "$port"
  ready=$VM_STATE/$ns-hold-$port.ready
  rm -f "$ready"
  ip netns exec "$ns" node "$VM_LIB_DIR/hold-server.mjs" "$port" "$ns" "$ready" </dev/null >/dev/null 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >>"$VM_STATE/pids"
  for ((i = 0; i < 600; i++)); do # node starts slowly under TCG: up to 60 s
    [[ -s $ready ]] && return 0
    kill -0 "$pid" 2>/dev/null || vm_die "hold server in $ns:$port exited"
    sleep 0.1
  done
  vm_die "hold server in $ns:$port not ready after 60 s"
}

vm_http_get() { # vm_http_get NS URL [CURL ARGS...]
  (($# >= 2)) || vm_die "usage: vm_http_get NS URL [CURL ARGS...]"
  local ns=$1 url=$2; shift 2
  vm_in "$ns" curl -sS --connect-timeout 3 --max-time 8 "$@" "$url"
}

vm_udp_query() { # vm_udp_query NS HOST PORT
  (($# == 3)) || vm_die "usage: vm_udp_query NS HOST PORT"
  _vm_port "$3"
  local host=$2
  [[ $host == *:* ]] && host="[$host]"
  printf 'ping\n' | vm_in "$1" socat -t 3 -T 3 - "UDP:$host:$3"
}

vm_assert_contains() { # vm_assert_contains HAYSTACK NEEDLE [WHAT]
  [[ $1 == *"$2"* ]] || vm_die "${3:-output} does not contain '$2': $1"
}

# The resync and soak scenarios' workload. vm_stable_yaml NODE: a Service (10.96.0.60:9000) whose
# one endpoint, 10.244.1.2, never changes, for a client that must keep working throughout.
vm_stable_yaml() {
  printf 'apiVersion: v1\nkind: Service\nmetadata: { name: stable, namespace: default }\nspec:\n  clusterIP: 10.96.0.60\n  ports: [{ name: tcp, port: 9000, protocol: TCP }]\n---\n'
  printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: stable-1, namespace: default, labels: { kubernetes.io/service-name: stable } }\naddressType: IPv4\nports: [{ name: tcp, port: 9000, protocol: TCP }]\n'
  printf 'endpoints: [{ addresses: [10.244.1.2], nodeName: %s }]\n' "$1"
}
# vm_churn_yaml N NODE: the churned Service (10.96.0.70:80) with two of five endpoints, chosen by N.
vm_churn_yaml() {
  printf 'apiVersion: v1\nkind: Service\nmetadata: { name: churn, namespace: default }\nspec:\n  clusterIP: 10.96.0.70\n  ports: [{ name: http, port: 80, protocol: TCP }]\n---\n'
  printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: churn-1, namespace: default, labels: { kubernetes.io/service-name: churn } }\naddressType: IPv4\nports: [{ name: http, port: 8080, protocol: TCP }]\n'
  printf 'endpoints:\n  - { addresses: [10.244.2.%d], nodeName: %s }\n  - { addresses: [10.244.2.%d], nodeName: %s }\n' $((10 + $1 % 5)) "$2" $((10 + ($1 + 2) % 5)) "$2"
}
# vm_track PID: the scenario's EXIT trap (vm_trap_cleanup) kills PID, so a scenario that fails
# midway leaves no daemon behind to reprogram the next scenario's kernel.
vm_track() { printf '%s\n' "$1" >>"$VM_STATE/pids"; }
vm_cleanup() {
  local pid ns
  if [[ -f $VM_STATE/pids ]]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$VM_STATE/pids"
    rm -f "$VM_STATE/pids"
  fi
  if [[ -f $VM_STATE/netns ]]; then
    while read -r ns; do ip netns delete "$ns" 2>/dev/null || true; done <"$VM_STATE/netns"
    rm -f "$VM_STATE/netns"
  fi
}
vm_trap_cleanup() { trap vm_cleanup EXIT; }
