#!/usr/bin/env bash
# smoke.sh — proves the VM recipe: IPVS NAT to two pods through a ClusterIP on
# kube-ipvs0, reached from the node and from an external client, plus ipset,
# `-m set`, `-m ipvs`, REJECT and conntrack. Run it with:
#   test/vm/vm.sh -- bash test/vm/smoke.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup
t_start=$(vm_uptime)
vm_log "boot-to-command: ${t_start}s guest uptime ($(uname -r))"

CIP=10.96.0.10          # ClusterIP with two endpoints
CIP_NOEP=10.96.0.11     # ClusterIP that REJECTs
POD_A=10.244.1.2
POD_B=10.244.2.2

section() { printf '\n=== %s\n' "$*"; }

section "ip_vs"
modprobe ip_vs
[[ -r /proc/net/ip_vs ]] || vm_die "no /proc/net/ip_vs after modprobe ip_vs"
printf '%s\n' 1 >/proc/sys/net/ipv4/vs/conntrack   # as kube-proxy sets it
head -1 /proc/net/ip_vs

section "kube-ipvs0 (dummy, left down like kube-proxy does)"
ip link add kube-ipvs0 type dummy
ip addr add "$CIP/32" dev kube-ipvs0
ip addr add "$CIP_NOEP/32" dev kube-ipvs0
ip -d addr show dev kube-ipvs0
ip route show table local dev kube-ipvs0

section "pods"
vm_pod pod-a "$POD_A"
vm_pod pod-b "$POD_B"
# start the four backends in parallel (node is slow to start under TCG)
starters=()
vm_http_server pod-a 8080 & starters+=($!)
vm_http_server pod-b 8080 & starters+=($!)
vm_udp_echo pod-a 5353 & starters+=($!)
vm_udp_echo pod-b 5353 & starters+=($!)
for p in "${starters[@]}"; do wait "$p" || vm_die "a backend did not start"; done
vm_log "backends ready"
vm_assert_contains "$(vm_http_get - "http://$POD_A:8080/")" "pod-a" "direct GET pod-a"

section "IPVS services"
ipvsadm -A -t "$CIP:80" -s rr
ipvsadm -a -t "$CIP:80" -r "$POD_A:8080" -m -w 1
ipvsadm -a -t "$CIP:80" -r "$POD_B:8080" -m -w 1
ipvsadm -A -u "$CIP:53" -s rr
ipvsadm -a -u "$CIP:53" -r "$POD_A:5353" -m -w 1
ipvsadm -a -u "$CIP:53" -r "$POD_B:5353" -m -w 1
echo "--- ipvsadm -Sn"
ipvsadm -Sn

section "ipset + iptables"
ipset create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 \
  comment
ipset add KUBE-CLUSTER-IP "$CIP,tcp:80" comment "default/smoke:http"
ipset add KUBE-CLUSTER-IP "$CIP,udp:53" comment "default/smoke:dns"
ipset create KUBE-LOOP-BACK hash:ip,port,ip
ipset add KUBE-LOOP-BACK "$POD_A,tcp:8080,$POD_A"
iptables-restore --noflush <<EOF
*filter
:SMOKE-REJECT - [0:0]
-A INPUT -j SMOKE-REJECT
-A SMOKE-REJECT -d $CIP_NOEP/32 -p tcp -m comment --comment "smoke: no endpoints" -m tcp --dport 80 -j REJECT
-A SMOKE-REJECT -d $CIP_NOEP/32 -p tcp -m tcp --dport 81 -j REJECT --reject-with tcp-reset
COMMIT
*mangle
:SMOKE-IPVS - [0:0]
-A POSTROUTING -j SMOKE-IPVS
-A SMOKE-IPVS -m ipvs --vaddr $CIP/32 --vproto tcp --vport 80 -j RETURN
-A SMOKE-IPVS -m ipvs --ipvs --vdir ORIGINAL --vmethod MASQ -j RETURN
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
COMMIT
EOF

section "traffic: node -> ClusterIP (tcp, rr)"
seen=""
for i in 1 2 3 4 5 6; do
  line=$(vm_http_get - "http://$CIP/")
  printf '  GET %d: %s\n' "$i" "$line"
  seen+=" $line"
done
vm_assert_contains "$seen" "pod-a" "node->ClusterIP answers"
vm_assert_contains "$seen" "pod-b" "node->ClusterIP answers"

section "traffic: node -> ClusterIP (udp)"
useen=""
for i in 1 2 3 4; do
  line=$(vm_udp_query - "$CIP" 53)
  printf '  UDP %d: %s\n' "$i" "$line"
  useen+=" $line"
done
vm_assert_contains "$useen" "pod-a" "udp answers"
vm_assert_contains "$useen" "pod-b" "udp answers"

section "traffic: concurrent GETs"
for i in $(seq 1 8); do vm_http_get - "http://$CIP/" >"$VM_STATE/par.$i" & done
wait
cat "$VM_STATE"/par.* | sort | awk '{print "  " $1}' | uniq -c

section "traffic: external client -> ClusterIP (routed via the node)"
vm_external_client ext 192.168.100.2 192.168.100.1
eseen=""
for i in 1 2 3 4; do
  line=$(vm_http_get ext "http://$CIP/")
  printf '  ext GET %d: %s\n' "$i" "$line"
  eseen+=" $line"
done
vm_assert_contains "$eseen" "pod-a" "external->ClusterIP answers"
vm_assert_contains "$eseen" "pod-b" "external->ClusterIP answers"
vm_assert_contains "$eseen" "192.168.100.2" "pod sees the client address (no masquerade rule matched)"

section "REJECT"
set +e
out=$(vm_http_get - "http://$CIP_NOEP/" 2>&1); rc=$?
set -e
printf '  curl %s -> exit %d: %s\n' "$CIP_NOEP" "$rc" "$out"
((rc == 7)) || vm_die "expected connection refused (curl exit 7) from the REJECT rule"

section "ipvsadm -Ln --stats"
ipvsadm -Ln --stats
section "ipset save"
ipset save
section "iptables-save -c"
iptables-save -c | grep -v '^#'
pkts=$(iptables -t mangle -L SMOKE-IPVS -nvx | awk '$0 ~ /vaddr/ {print $1; exit}')
vm_log "-m ipvs --vaddr rule matched $pkts packets"
((pkts > 0)) || vm_die "the -m ipvs rule never matched"
section "conntrack -L (ClusterIP)"
conntrack -L -d "$CIP" 2>&1 | head -5 || true

t_end=$(vm_uptime)
printf '\nSMOKE OK: boot-to-command %ss, smoke %ss\n' "$t_start" \
  "$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')"
