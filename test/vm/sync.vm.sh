#!/usr/bin/env bash
# Real-kernel proof of the dataplane and sync loop (run inside the VM: test/vm/vm.sh -- bash
# test/vm/sync.vm.sh). kube-ipvs programs the examples cluster and the kernel then holds exactly
# what `kube-ipvs plan` prints; tampering is repaired; real packets reach pods through a ClusterIP,
# a NodePort and UDP; deleted services leave nothing; cleanup leaves nothing and is idempotent;
# a virtual server in --ipvs-exclude-cidrs survives everything.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

# The node's own global addresses (qemu user networking gives IPv4 and possibly IPv6).
NODE_IPS=$(ip -o addr show scope global | awk '$2 != "kube-ipvs0" {print $4}' | cut -d/ -f1 | paste -sd,)
OFF=(--healthz-bind-address= --metrics-bind-address=)
PLAN=("${KI[@]}" plan --manifests "$ROOT/examples" --hostname-override node-a --node-ip "$NODE_IPS" --kernel-version "$(uname -r)")
EMPTY=$(mktemp -d)
step() { vm_log "== $*"; }
check() { # check WHAT EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then vm_log "ok: $1"; else
    vm_log "FAIL: $1"; diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true; fails=$((fails + 1)); fi
}
kernel_state() { # the kernel's view, in the same shapes `plan` prints
  ipvsadm -Sn | sort
  echo '--- ipset'
  ipset save | grep '^add ' | sort
  echo '--- iptables'
  { iptables-save; ip6tables-save; } | grep -E '^-A ' | grep -E 'KUBE-' | sort
  echo '--- addresses'
  ip -o addr show dev kube-ipvs0 2>/dev/null | awk '{print $4}' | sort
}
planned_state() {
  "${PLAN[@]}" --output ipvs | sort
  echo '--- ipset'
  "${PLAN[@]}" --output ipset | grep '^add ' | sort
  echo '--- iptables'
  "${PLAN[@]}" --output iptables | grep -E '^-A ' | sort
  echo '--- addresses'
  "${PLAN[@]}" --output addresses | sort
}

step "a foreign virtual server inside the excluded range"
modprobe ip_vs
ipvsadm -A -t 172.16.0.5:80 -s rr
EXCL=(--ipvs-exclude-cidrs 172.16.0.0/12)

step "run --once on examples/ (every service type)"
"${KI[@]}" run --once --manifests "$ROOT/examples" --hostname-override node-a "${EXCL[@]}" "${OFF[@]}"
want=$(planned_state)
got=$(kernel_state | grep -v '172.16.0.5')
check "kernel equals the plan after the first sync" "$want" "$got"
[[ $(sysctl -n net.ipv4.vs.conntrack) == 1 ]] && vm_log "ok: net.ipv4.vs.conntrack=1" || { vm_log "FAIL: vs.conntrack"; fails=$((fails + 1)); }

step "a second run changes nothing and flushes nothing"
out=$("${KI[@]}" run --once --manifests "$ROOT/examples" --hostname-override node-a "${EXCL[@]}" "${OFF[@]}" 2>&1)
vm_assert_contains "$out" "changes=none" "second run"
check "kernel unchanged" "$want" "$(kernel_state | grep -v '172.16.0.5')"

step "tampering: ipvsadm -C, ipset flush, address flush, a chain flushed"
ipvsadm -C
ipset flush KUBE-CLUSTER-IP
ip addr flush dev kube-ipvs0
iptables -t nat -F KUBE-SERVICES
"${KI[@]}" run --once --manifests "$ROOT/examples" --hostname-override node-a "${EXCL[@]}" "${OFF[@]}"
check "repaired to the plan" "$want" "$(kernel_state | grep -v '172.16.0.5')"

step "real traffic: two pods behind a ClusterIP and a NodePort"
vm_pod pod-a 10.244.1.2
vm_pod pod-b 10.244.1.3
for p in pod-a pod-b; do vm_http_server "$p" 8080; vm_udp_echo "$p" 5353; done
# The outside client's link gives the node the address 192.168.100.1 before the sync, as a node
# has its addresses before kube-ipvs starts (NodePorts are planned on the addresses present).
vm_external_client ext 192.168.100.2/24 192.168.100.1
ipvsadm -A -t 172.16.0.5:80 -s rr 2>/dev/null || true # tampering above removed it too
"${KI[@]}" run --once --manifests "$ROOT/test/vm/fixtures/traffic.yaml" --hostname-override "$(hostname)" "${EXCL[@]}" "${OFF[@]}"
seen=""
for _ in 1 2 3 4 5 6; do seen+="$(vm_http_get - http://10.96.0.10/) "; done
vm_assert_contains "$seen" "pod-a" "ClusterIP answers"
vm_assert_contains "$seen" "pod-b" "ClusterIP answers"
vm_log "ok: ClusterIP TCP balanced over both pods"
u=$(vm_udp_query - 10.96.0.10 53)
[[ $u == pod-* ]] && vm_log "ok: ClusterIP UDP answered by ${u%% *}" || { vm_log "FAIL: UDP: $u"; fails=$((fails + 1)); }
n=$(vm_http_get ext http://192.168.100.1:30080/)
vm_assert_contains "$n" "pod-" "NodePort from outside"
vm_log "ok: NodePort from outside answered: $n"
# externalTrafficPolicy Cluster: the pod sees the node's address, not the client's.
[[ $n != *192.168.100.2* ]] && vm_log "ok: NodePort traffic masqueraded" || { vm_log "FAIL: not masqueraded: $n"; fails=$((fails + 1)); }
if vm_in - curl -sS --connect-timeout 2 --max-time 3 http://10.96.0.10:22/ >/dev/null 2>&1; then
  vm_log "FAIL: a non-service port on a ClusterIP answered"; fails=$((fails + 1))
else vm_log "ok: a non-service port on a ClusterIP is refused"; fi
vsn=$(ipvsadm -Sn | grep -c '^-A' || true)
check "examples' virtual servers gone: echo's (ClusterIP + 2 node IPs) x (TCP, UDP) and the foreign one" "7" "$vsn"

step "deleting every service (the seed's stale-rule bug)"
"${KI[@]}" run --once --manifests "$EMPTY" --hostname-override "$(hostname)" "${EXCL[@]}" "${OFF[@]}"
check "only the excluded virtual server remains" "-A -t 172.16.0.5:80 -s rr" "$(ipvsadm -Sn)"
check "no ipset entry remains" "" "$(ipset save | grep '^add ' || true)"
check "no address on kube-ipvs0" "" "$(ip -o addr show dev kube-ipvs0 | awk '{print $4}')"
if vm_in - curl -sS --connect-timeout 2 --max-time 3 http://10.96.0.10/ >/dev/null 2>&1; then
  vm_log "FAIL: deleted ClusterIP still answers"; fails=$((fails + 1))
else vm_log "ok: deleted ClusterIP no longer answers"; fi

step "cleanup removes everything we own, and is idempotent"
"${KI[@]}" run --once --manifests "$ROOT/examples" --hostname-override node-a "${EXCL[@]}" "${OFF[@]}"
"${KI[@]}" cleanup --ipvs-exclude-cidrs 172.16.0.0/12
check "IPVS after cleanup" "-A -t 172.16.0.5:80 -s rr" "$(ipvsadm -Sn)"
check "no KUBE chain or rule" "" "$(iptables-save | grep KUBE || true)"
check "no KUBE set" "" "$(ipset list -n | grep KUBE || true)"
ip link show kube-ipvs0 >/dev/null 2>&1 && { vm_log "FAIL: kube-ipvs0 still there"; fails=$((fails + 1)); } || vm_log "ok: kube-ipvs0 deleted"
"${KI[@]}" cleanup --ipvs-exclude-cidrs 172.16.0.0/12
vm_log "ok: second cleanup succeeded"
"${KI[@]}" run --cleanup-ipvs "${OFF[@]}"
vm_log "ok: the historical --cleanup-ipvs works too"

((fails == 0)) || vm_die "$fails check(s) failed"
vm_log "sync.vm.sh: all checks passed"
