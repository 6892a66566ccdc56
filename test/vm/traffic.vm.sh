#!/usr/bin/env bash
# Real packets through the daemon (inside the VM: test/vm/vm.sh -- bash test/vm/traffic.vm.sh).
# `kube-ipvs run` programs the node from a manifest directory; pods (netns + veth) and outside
# clients (netns on their own subnets) then exercise, one named section each:
#   [clusterip]        ClusterIP from a pod: balanced over the ready pods, port 80 -> 8080
#   [external]         ExternalIP and LoadBalancer ingress IP from an outside client
#   [source-ranges]    loadBalancerSourceRanges: an allowed /32 is served, another client dropped
#   [etp]              NodePort externalTrafficPolicy Local keeps the client IP, Cluster does not
#   [masquerade]       who is masqueraded by default, with --masquerade-all, with --cluster-cidr
#   [affinity]         sessionAffinity ClientIP: one client sticks to one pod
#   [hairpin]          a pod reaching its own service (the only endpoint) is served by itself
#   [udp-flow]         a UDP flow moves at once when its endpoint is removed
#   [terminating]      only serving+terminating endpoints left: they still serve
#   [dual-stack]       an IPv6 ClusterIP served over IPv6
#   [nodeport-addresses] --nodeport-addresses limits the NodePort to the matching node address
#   [scale]            1,000 ClusterIP services in one file: programmed, one served; time to serve
# Every check prints "ok: ..." or "FAIL: ..."; the script exits non-zero if any check failed.
# A check that fails because of a known kube-ipvs bug prints "KNOWN-FAIL: ..." (not counted).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest

DIR=$(mktemp -d)      # manifests of the main cluster
LOGS=$(mktemp -d)     # one log per daemon run
NODE=$(hostname)
NODE=${NODE,,}        # the daemon lower-cases the host name, as kube-proxy does
[[ $NODE =~ ^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$ ]] || vm_die "unexpected host name '$NODE'"
known=0
DAEMON='' DLOG=''
T0=$SECONDS

known_fail() { vm_log "KNOWN-FAIL: $*"; known=$((known + 1)); }
section() { vm_log "== [$1] ${*:2}"; }

# ---- daemon ---------------------------------------------------------------------------------
start_daemon() { # start_daemon RUN-NAME MANIFEST-DIR [EXTRA FLAGS...]
  local name=$1 dir=$2; shift 2
  DLOG=$LOGS/$name.log
  "${KI[@]}" run --manifests "$dir" --ipvs-min-sync-period 0s --ipvs-sync-period 10s \
    --healthz-bind-address= --metrics-bind-address= --log-format json "$@" >"$DLOG" 2>&1 &
  DAEMON=$!
  vm_track "$DAEMON"
}
daemon_synced() { grep -q '"msg":"synced"' "$DLOG"; }
stop_daemon() {
  [[ -n $DAEMON ]] || return 0
  kill -TERM "$DAEMON" 2>/dev/null || true
  wait "$DAEMON" 2>/dev/null || true
  DAEMON=''
}
on_exit() { stop_daemon; vm_cleanup; }
trap on_exit EXIT

# ---- traffic helpers ------------------------------------------------------------------------
# get NS URL: the backend's line "NAME CLIENT_IP CLIENT_PORT", empty when nothing answered
get() { vm_http_get "$@" --connect-timeout 2 --max-time 4 2>/dev/null || true; }
first() { printf '%s' "${1%% *}"; }
second() { local r=${1#* }; printf '%s' "${r%% *}"; }
NODE_ADDRS=()
is_node_addr() { local a; for a in "${NODE_ADDRS[@]}"; do [[ $a == "$1" ]] && return 0; done; return 1; }
# curl_rc NS URL: curl's exit code (28 = timed out, i.e. dropped; 7 = refused)
curl_rc() { local rc=0; vm_in "$1" curl -sS -o /dev/null --connect-timeout 2 --max-time 3 "$2" 2>/dev/null || rc=$?; printf '%s' "$rc"; }
vs_exists() { ipvsadm -Ln "$@" >/dev/null 2>&1; }
rs_list() { # rs_list -t|-u VIP:PORT: the real servers, one "IP:PORT" a line
  ipvsadm -Ln "$1" "$2" 2>/dev/null | awk '$1 == "->" && $2 ~ /^[0-9\[]/ {print $2}' | sort
}

# ---- manifests --------------------------------------------------------------------------------
write() { cat >"$DIR/.$1.tmp" && mv "$DIR/.$1.tmp" "$DIR/$1"; } # atomically, as editors do
svc() { # svc NAME CLUSTER_IP [EXTRA SPEC LINES...]: one TCP port 80 named http (-> 8080 in slices)
  local name=$1 ip=$2 line; shift 2
  printf -- '---\napiVersion: v1\nkind: Service\nmetadata: { name: %s, namespace: default }\nspec:\n  clusterIP: %s\n' "$name" "$ip"
  for line in "$@"; do printf '  %s\n' "$line"; done
  if [[ " $* " != *" ports:"* ]]; then printf '  ports:\n    - { name: http, port: 80, targetPort: 8080, protocol: TCP }\n'; fi
}
slice() { # slice SLICE-NAME SERVICE FAMILY PORT-LINE ENDPOINT-LINE...
  local name=$1 service=$2 family=$3 port=$4 ep; shift 4
  printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s\n  namespace: default\n  labels: { kubernetes.io/service-name: %s }\naddressType: %s\nports:\n  - %s\nendpoints:\n' \
    "$name" "$service" "$family" "$port"
  for ep in "$@"; do printf '  - %s\n' "$ep"; done
}
HTTP='{ name: http, port: 8080, protocol: TCP }'
ep() { printf '{ addresses: [%s], nodeName: %s%s }' "$1" "$NODE" "${2:+, conditions: $2}"; }

A=10.244.1.2 B=10.244.1.3 C=10.244.1.4
A6=fd00:244::2 C6=fd00:244::4
EXT=192.168.100.2 EXT_NODE=192.168.100.1 EXT2=192.168.200.2 EXT2_NODE=192.168.200.1

# ---- the node: pods, outside clients, IPv6 --------------------------------------------------
section setup "pods pod-a pod-b pod-c, outside clients ext ext2, backends"
vm_pod pod-a "$A"
vm_pod pod-b "$B"
vm_pod pod-c "$C"
vm_external_client ext "$EXT/24" "$EXT_NODE"
vm_external_client ext2 "$EXT2/24" "$EXT2_NODE"
starters=()
vm_http_server pod-a 8080 & starters+=($!)
vm_http_server pod-b 8080 & starters+=($!)
vm_http_server pod-c 8080 & starters+=($!)
vm_udp_echo pod-a 5353 & starters+=($!)
vm_udp_echo pod-b 5353 & starters+=($!)

# IPv6 by hand (vm_pod is IPv4-only): node0 fd00:2::15/64 + default route; pod-a and pod-c get a
# /128 each, routed by the node over their veth; the pods route via the node side's fe80::1.
HAVE_V6=0 V6_WHY=''
setup_v6() {
  [[ -d /proc/sys/net/ipv6 ]] || { V6_WHY='no IPv6 in this kernel'; return 1; }
  ip6tables-save >/dev/null 2>&1 || { V6_WHY='ip6tables does not work here'; return 1; }
  _vm_sysctl net/ipv6/conf/all/forwarding 1
  printf '%s\n' "addr add fd00:2::15/64 dev node0 nodad" "route add default via fd00:2::2 dev node0" \
    "addr add fe80::1/64 dev vpod-a nodad" "route add $A6/128 dev vpod-a" \
    "addr add fe80::1/64 dev vpod-c nodad" "route add $C6/128 dev vpod-c" |
    ip -6 -batch - || { V6_WHY='node side of the IPv6 setup failed'; return 1; }
  local pod addr
  for pod in pod-a pod-c; do
    addr=$A6; [[ $pod == pod-c ]] && addr=$C6
    printf '%s\n' "addr add $addr/128 dev eth0 nodad" "route add default via fe80::1 dev eth0" |
      ip -6 -n "$pod" -batch - || { V6_WHY="pod side of the IPv6 setup failed ($pod)"; return 1; }
  done
}
if setup_v6; then HAVE_V6=1; else vm_log "IPv6 setup skipped: $V6_WHY"; fi
for p in "${starters[@]}"; do wait "$p" || vm_die "a backend did not start"; done
mapfile -t NODE_ADDRS < <(ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1)
vm_log "backends ready; node addresses: ${NODE_ADDRS[*]} ($((SECONDS - T0)) s)"

# ---- the cluster ------------------------------------------------------------------------------
{
  svc web 10.96.0.10
  svc ext-ip 10.96.0.11 'externalIPs: [198.51.100.20]'
  svc lb 10.96.0.12 'type: LoadBalancer' 'ports:' '  - { name: http, port: 80, targetPort: 8080, nodePort: 30082, protocol: TCP }'
  printf 'status:\n  loadBalancer:\n    ingress:\n      - ip: 203.0.113.10\n'
  svc lb-fw 10.96.0.13 'type: LoadBalancer' "loadBalancerSourceRanges: [\"$EXT/32\"]" \
    'ports:' '  - { name: http, port: 80, targetPort: 8080, nodePort: 30083, protocol: TCP }'
  printf 'status:\n  loadBalancer:\n    ingress:\n      - ip: 203.0.113.11\n'
  svc np-local 10.96.0.14 'type: NodePort' 'externalTrafficPolicy: Local' \
    'ports:' '  - { name: http, port: 80, targetPort: 8080, nodePort: 30081, protocol: TCP }'
  svc np-cluster 10.96.0.15 'type: NodePort' 'externalTrafficPolicy: Cluster' \
    'ports:' '  - { name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP }'
  svc sticky 10.96.0.16 'sessionAffinity: ClientIP' 'sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } }'
  svc self 10.96.0.17
  svc dns 10.96.0.18 'ports:' '  - { name: dns, port: 53, targetPort: 5353, protocol: UDP }'
  svc term 10.96.0.19
  if ((HAVE_V6)); then
    svc dual 10.96.0.20 'clusterIPs: [10.96.0.20, "fd00:10:96::20"]' 'ipFamilies: [IPv4, IPv6]' 'ipFamilyPolicy: RequireDualStack'
  fi
} | write services.yaml
{
  # pod-c is not ready: it must get no traffic
  slice web-1 web IPv4 "$HTTP" "$(ep "$A")" "$(ep "$B")" "$(ep "$C" '{ ready: false }')"
  slice ext-ip-1 ext-ip IPv4 "$HTTP" "$(ep "$A")" "$(ep "$B")"
  slice lb-1 lb IPv4 "$HTTP" "$(ep "$A")" "$(ep "$B")"
  slice lb-fw-1 lb-fw IPv4 "$HTTP" "$(ep "$A")" "$(ep "$B")"
  slice np-local-1 np-local IPv4 "$HTTP" "$(ep "$A")"
  slice np-cluster-1 np-cluster IPv4 "$HTTP" "$(ep "$A")"
  slice sticky-1 sticky IPv4 "$HTTP" "$(ep "$A")" "$(ep "$B")"
  slice self-1 self IPv4 "$HTTP" "$(ep "$C")"
  slice term-1 term IPv4 "$HTTP" "$(ep "$A" '{ ready: false, serving: true, terminating: true }')" \
    "$(ep "$B" '{ ready: false, serving: false, terminating: true }')"
  if ((HAVE_V6)); then
    slice dual-v4 dual IPv4 "$HTTP" "$(ep "$A")"
    slice dual-v6 dual IPv6 "$HTTP" "$(ep "$A6")"
  fi
} | write slices.yaml
DNS_PORT='{ name: dns, port: 5353, protocol: UDP }'
slice dns-1 dns IPv4 "$DNS_PORT" "$(ep "$A")" "$(ep "$B")" | write dns-slice.yaml

t=$SECONDS
start_daemon default "$DIR"
wait_until 90 "daemon (default flags) synced the cluster" daemon_synced
wait_until 30 "ClusterIP 10.96.0.10 programmed" vs_exists -t 10.96.0.10:80
vm_log "daemon start to first sync: $((SECONDS - t)) s; $(grep -c '"msg":"synced"' "$DLOG") sync(s) logged"

# ---- 1 -----------------------------------------------------------------------------------------
section clusterip "ClusterIP 10.96.0.10:80 -> pods :8080, from pod-c (pod-c itself not ready)"
seen='' line=''
for _ in 1 2 3 4 5 6; do line=$(get pod-c http://10.96.0.10/); seen+="$(first "$line") "; done
[[ $seen == *pod-a* && $seen == *pod-b* ]] && ok "balanced over pod-a and pod-b: $seen" || bad "not balanced over the ready pods: $seen"
[[ $seen != *pod-c* ]] && ok "the not-ready endpoint pod-c gets no traffic" || bad "not-ready pod-c answered: $seen"
[[ $(first "$line") == pod-[ab] ]] && ok "service port 80 reached the pods' target port 8080 (they listen on 8080 only)" || bad "ClusterIP answer: '$line'"

# ---- 2 -----------------------------------------------------------------------------------------
section external "ExternalIP 198.51.100.20 and LoadBalancer ingress 203.0.113.10 from the outside client ext"
r=$(get ext http://198.51.100.20/)
[[ $(first "$r") == pod-[ab] ]] && ok "externalIP served from outside: $r" || bad "externalIP from outside: '$r'"
r=$(get ext http://203.0.113.10/)
[[ $(first "$r") == pod-[ab] ]] && ok "LoadBalancer ingress IP served from outside: $r" || bad "LoadBalancer IP from outside: '$r'"
r=$(get ext http://$EXT_NODE:30082/)
[[ $(first "$r") == pod-[ab] ]] && ok "the LoadBalancer's NodePort 30082 served from outside" || bad "LB NodePort: '$r'"

# ---- 3 -----------------------------------------------------------------------------------------
section source-ranges "LoadBalancer 203.0.113.11 with loadBalancerSourceRanges [$EXT/32]"
r=$(get ext http://203.0.113.11/)
[[ $(first "$r") == pod-[ab] ]] && ok "allowed client $EXT served: $r" || bad "allowed client $EXT not served: '$r'"
rc=$(curl_rc ext2 http://203.0.113.11/)
[[ $rc == 28 ]] && ok "client $EXT2 outside the ranges gets no answer (dropped: curl timed out)" || bad "client $EXT2 outside the ranges: curl exit $rc (want 28, a drop)"

# ---- 4 -----------------------------------------------------------------------------------------
section etp "NodePort externalTrafficPolicy Local (30081) vs Cluster (30080), from ext to $EXT_NODE"
r=$(get ext http://$EXT_NODE:30081/)
[[ $(second "$r") == "$EXT" ]] && ok "Local: the pod sees the client's real address ($r)" || bad "Local: pod saw '$r', want client $EXT"
r=$(get ext http://$EXT_NODE:30080/)
src=$(second "$r")
[[ -n $src ]] && is_node_addr "$src" && ok "Cluster: the pod sees a node address ($r)" || bad "Cluster: pod saw '$r', want a node address"

# ---- 5 (default flags) ------------------------------------------------------------------------
section masquerade "default flags: who is masqueraded on the way to ClusterIP 10.96.0.10"
r=$(get pod-c http://10.96.0.10/)
[[ $(second "$r") == "$C" ]] && ok "default: pod source not masqueraded ($r)" || bad "default: pod-c to ClusterIP seen as '$r', want $C"
r=$(get - http://10.96.0.10/)
src=$(second "$r")
[[ -n $src && $src != 10.96.0.10 ]] && is_node_addr "$src" && ok "default: node source (the VIP) masqueraded to a node address ($r)" || bad "default: node to ClusterIP seen as '$r'"
r=$(get ext http://10.96.0.10/)
[[ $(second "$r") == "$EXT" ]] && ok "default: off-cluster source not masqueraded (src,dst rule only) ($r)" || bad "default: ext to ClusterIP seen as '$r', want $EXT"

# ---- 6 -----------------------------------------------------------------------------------------
section affinity "sessionAffinity ClientIP on 10.96.0.16: 6 requests from pod-c"
seen=()
for _ in 1 2 3 4 5 6; do seen+=("$(first "$(get pod-c http://10.96.0.16/)")"); done
uniq=$(printf '%s\n' "${seen[@]}" | sort -u)
[[ $uniq == pod-[ab] ]] && ok "all 6 requests landed on $uniq" || bad "affinity broken: ${seen[*]}"

# ---- 7 -----------------------------------------------------------------------------------------
section hairpin "pod-c reaches its own service 10.96.0.17 (its only endpoint)"
r=$(get pod-c http://10.96.0.17/)
[[ $(first "$r") == pod-c ]] && ok "pod-c served by itself through the ClusterIP ($r)" || bad "hairpin: '$r'"
src=$(second "$r")
[[ -n $src ]] && is_node_addr "$src" && ok "hairpin source masqueraded to a node address (KUBE-LOOP-BACK)" || bad "hairpin source: '$r'"

# ---- 8 -----------------------------------------------------------------------------------------
section udp-flow "UDP 10.96.0.18:53 -> :5353, one flow from pod-c (fixed source port 40053)"
udp_flow() { printf 'ping\n' | vm_in pod-c socat -t 1 -T 3 - UDP:10.96.0.18:53,sourceport=40053,reuseaddr 2>/dev/null || true; }
r1=$(udp_flow)
p1=$(first "$r1")
if [[ $p1 == pod-[ab] ]]; then
  ok "first datagram answered by $p1"
  r=$(udp_flow)
  [[ $(first "$r") == "$p1" ]] && ok "the flow stays on $p1 while it is an endpoint" || bad "flow moved without a change: '$r'"
  other=pod-b rm_ip=$A keep_ip=$B
  [[ $p1 == pod-b ]] && other=pod-a rm_ip=$B keep_ip=$A
  slice dns-1 dns IPv4 "$DNS_PORT" "$(ep "$keep_ip")" | write dns-slice.yaml
  rs_only_other() { [[ $(rs_list -u 10.96.0.18:53) == "$keep_ip:5353" ]]; }
  wait_until 30 "$p1 ($rm_ip) removed from the UDP virtual server" rs_only_other
  r=$(udp_flow)
  [[ $(first "$r") == "$other" ]] && ok "the same flow moved to $other at once ($r)" || bad "flow after removing $p1: '$r', want $other"
else
  bad "UDP ClusterIP not answered: '$r1'"
fi

# ---- 9 -----------------------------------------------------------------------------------------
section terminating "10.96.0.19: pod-a ready:false serving:true terminating:true, pod-b not serving"
rs=$(rs_list -t 10.96.0.19:80 | paste -sd' ')
[[ $rs == "$A:8080" ]] && ok "only the serving-terminating endpoint is a real server ($rs)" || bad "real servers of 10.96.0.19:80: '$rs'"
seen=''
for _ in 1 2 3; do seen+="$(first "$(get pod-c http://10.96.0.19/)") "; done
[[ $seen == "pod-a pod-a pod-a " ]] && ok "serving-terminating pod-a still serves: $seen" || bad "terminating fallback: '$seen'"

# ---- 12 ----------------------------------------------------------------------------------------
section dual-stack "IPv6 ClusterIP [fd00:10:96::20]:80 from pod-c ($C6) to pod-a ($A6)"
if ((HAVE_V6)); then
  if wait_until 20 "IPv6 virtual server programmed" vs_exists -t '[fd00:10:96::20]:80'; then
    r=$(get pod-c 'http://[fd00:10:96::20]/' -g)
    [[ $(first "$r") == pod-a && $(second "$r") == "$C6" ]] && ok "IPv6 ClusterIP served over IPv6, pod source kept ($r)" || bad "IPv6 ClusterIP: '$r'"
    r=$(get pod-c http://10.96.0.20/)
    [[ $(first "$r") == pod-a ]] && ok "the same service's IPv4 ClusterIP served too" || bad "dual-stack IPv4 side: '$r'"
  else
    grep -m3 -E 'IPv6|error' "$DLOG" >&2 || true
  fi
else
  vm_log "skipped: $V6_WHY"
fi
stop_daemon

# ---- 5 (--masquerade-all, --cluster-cidr) ------------------------------------------------------
mark_rule() { iptables-save -t nat | grep -E -- '-A KUBE-SERVICES .*KUBE-CLUSTER-IP .*-j KUBE-MARK-MASQ' || true; }
section masquerade "daemon restarted with --masquerade-all"
start_daemon masquerade-all "$DIR" --masquerade-all
wait_until 120 "daemon (--masquerade-all) synced" daemon_synced
rule=$(mark_rule)
[[ $rule == *'dst,dst -j KUBE-MARK-MASQ'* && $rule != *'! -s'* ]] && ok "KUBE-SERVICES marks every ClusterIP packet" || bad "masquerade rule: $rule"
r=$(get pod-c http://10.96.0.10/)
src=$(second "$r")
[[ -n $src ]] && is_node_addr "$src" && ok "--masquerade-all: pod source masqueraded ($r)" || bad "--masquerade-all: pod-c seen as '$r', want a node address"
r=$(get ext http://10.96.0.10/)
src=$(second "$r")
[[ -n $src ]] && is_node_addr "$src" && ok "--masquerade-all: off-cluster source masqueraded ($r)" || bad "--masquerade-all: ext seen as '$r', want a node address"
stop_daemon

# One restart serves two independent flags: --cluster-cidr changes only the ClusterIP masquerade
# rule, --nodeport-addresses only which node addresses get NodePort virtual servers.
section masquerade "daemon restarted with --cluster-cidr 10.244.0.0/16 --nodeport-addresses 192.168.100.0/24"
start_daemon cluster-cidr "$DIR" --cluster-cidr 10.244.0.0/16 --nodeport-addresses 192.168.100.0/24
wait_until 120 "daemon (--cluster-cidr, --nodeport-addresses) synced" daemon_synced
rule=$(mark_rule)
[[ $rule == *'! -s 10.244.0.0/16'*'dst,dst -j KUBE-MARK-MASQ'* ]] && ok "KUBE-SERVICES marks ClusterIP packets not from 10.244.0.0/16" || bad "cluster-cidr rule: $rule"
r=$(get pod-c http://10.96.0.10/)
[[ $(second "$r") == "$C" ]] && ok "--cluster-cidr: pod source not masqueraded ($r)" || bad "--cluster-cidr: pod-c seen as '$r', want $C"
r=$(get ext http://10.96.0.10/)
src=$(second "$r")
[[ -n $src ]] && is_node_addr "$src" && ok "--cluster-cidr: off-cluster source masqueraded ($r)" || bad "--cluster-cidr: ext seen as '$r', want a node address"
r=$(get - http://10.96.0.10/)
src=$(second "$r")
[[ -n $src && $src != 10.96.0.10 ]] && is_node_addr "$src" && ok "--cluster-cidr: node source (the VIP) masqueraded ($r)" || bad "--cluster-cidr: node seen as '$r'"

# ---- 10 ----------------------------------------------------------------------------------------
section nodeport-addresses "same run: --nodeport-addresses 192.168.100.0/24 (node0 10.0.2.15 and $EXT2_NODE excluded)"
vsl=$(ipvsadm -Ln)
[[ $vsl == *"$EXT_NODE:30080 "* ]] && ok "NodePort 30080 on $EXT_NODE" || bad "no virtual server $EXT_NODE:30080"
[[ $vsl != *"10.0.2.15:30080 "* ]] && ok "no virtual server 10.0.2.15:30080 (the restart removed the old one)" || bad "10.0.2.15:30080 still a virtual server"
[[ $vsl != *"$EXT2_NODE:30080 "* ]] && ok "no virtual server $EXT2_NODE:30080" || bad "$EXT2_NODE:30080 still a virtual server"
r=$(get ext http://$EXT_NODE:30080/)
[[ $(first "$r") == pod-a ]] && ok "NodePort served on the allowed address $EXT_NODE ($r)" || bad "NodePort on $EXT_NODE: '$r'"
rc=$(curl_rc ext2 http://$EXT2_NODE:30080/)
[[ $rc != 0 ]] && ok "NodePort not served on $EXT2_NODE (curl exit $rc)" || bad "NodePort answered on $EXT2_NODE"
stop_daemon

# ---- 11 ----------------------------------------------------------------------------------------
# A fresh directory: the restarted daemon also removes the main cluster's virtual servers.
section scale "1,000 ClusterIP services in one manifest file (a new manifest directory)"
SCALE=$(mktemp -d)
{
  for ((i = 0; i < 1000; i++)); do
    printf -- '---\napiVersion: v1\nkind: Service\nmetadata: { name: s%d, namespace: scale }\nspec:\n  clusterIP: 10.97.%d.%d\n  ports:\n    - { name: http, port: 80, targetPort: 8080, protocol: TCP }\n' \
      "$i" $((i / 250)) $((i % 250 + 1))
  done
  # s777 = 10.97.3.28 has pod-a as its endpoint
  printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s777-1\n  namespace: scale\n  labels: { kubernetes.io/service-name: s777 }\naddressType: IPv4\nports:\n  - %s\nendpoints:\n  - %s\n' \
    "$HTTP" "$(ep "$A")"
} >"$SCALE/services.yaml"
t_up=$(vm_uptime)
start_daemon scale "$SCALE"
scale_served() { vs_exists -t 10.97.3.28:80 && [[ $(first "$(get - http://10.97.3.28/)") == pod-a ]]; }
if wait_until 240 "s777 (10.97.3.28) served by pod-a" scale_served; then
  t_end=$(vm_uptime)
  wait_until 60 "the first sync finished" daemon_synced || true
  ok "daemon start to serving s777: $(awk -v a="$t_up" -v b="$t_end" 'BEGIN{printf "%.1f", b - a}') s (the first sync itself took $(grep -m1 '"msg":"synced"' "$DLOG" | grep -o '"ms":[0-9]*' | cut -d: -f2) ms)"
fi
n=$(ipvsadm -Sn | grep -c '^-A' || true)
((n >= 1000)) && ok "$n virtual servers programmed" || bad "only $n virtual servers programmed"
stop_daemon

vm_log "traffic.vm.sh: $((SECONDS - T0)) s; $fails failed, $known known failure(s)"
((fails == 0)) || { for f in "$LOGS"/*.log; do vm_log "--- $f"; tail -5 "$f" >&2; done; vm_die "$fails check(s) failed"; }
vm_log "traffic.vm.sh: all checks passed"
