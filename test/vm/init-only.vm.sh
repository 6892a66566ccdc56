#!/usr/bin/env bash
# `kube-ipvs run --init-only` on a clean node (inside the VM), as an init container runs it: it
# exits 0 having loaded ip_vs, set the kernel settings kube-proxy's IPVS mode sets
# (src/plan/sysctl.ts) and the IPVS timeouts, and having created nothing else: no virtual
# server, no kube-ipvs0, no ipset, no KUBE-* chain. A second run changes nothing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

INIT=(node "$ROOT/dist/kube-ipvs.mjs" run --init-only --ipvs-tcp-timeout 900s --ipvs-tcpfin-timeout 60s
  --ipvs-udp-timeout 200s --hostname-override n1 --log-format json)
get() { local v; read -r v _ <"/proc/sys/$1" && printf '%s' "$v"; }
set_if() { [[ -e /proc/sys/$1 ]] && printf '%s\n' "$2" >"/proc/sys/$1"; return 0; }
expect() { # expect KEY VALUE
  local v
  v=$(get "$1" 2>/dev/null) || v='(missing)'
  [[ $v == "$2" ]] && ok "$1 = $2" || bad "$1 is $v, expected $2"
}

vm_log "== a clean node: ip_vs unloaded, settings at their kernel defaults"
# The suite (and earlier scenarios) load ip_vs; unload it and what holds it (schedulers, xt_ipvs),
# so loading is part of what is checked. Its net/ipv4/vs settings go back to defaults with it.
ipvs_unloaded=0
for _ in 1 2 3 4; do
  mapfile -t mods < <(awk '$1 ~ /^(ip_vs|xt_ipvs)/ {print $1}' /proc/modules)
  ((${#mods[@]} == 0)) && { ipvs_unloaded=1; break; }
  for m in "${mods[@]}"; do [[ $m == ip_vs ]] || rmmod "$m" 2>/dev/null || true; done
  rmmod ip_vs 2>/dev/null || true
done
if ((ipvs_unloaded)); then
  ok "ip_vs is not loaded before the run"
else
  vm_log "note: ip_vs stays loaded ($(grep '^ip_vs ' /proc/modules)); resetting its settings by hand instead"
  for k in conntrack expire_nodest_conn expire_quiescent_template; do set_if "net/ipv4/vs/$k" 0; done
  ipvsadm --set 900 120 300
fi
set_if net/ipv4/ip_forward 0
set_if net/netfilter/nf_conntrack_max 1024
set_if net/netfilter/nf_conntrack_tcp_timeout_established 432000
set_if net/netfilter/nf_conntrack_tcp_timeout_close_wait 60
reuse_before=$(get net/ipv4/vs/conn_reuse_mode 2>/dev/null || echo 1) # the kernel default when unloaded

vm_log "== kube-ipvs run --init-only"
t0=$SECONDS
rc=0
out=$("${INIT[@]}" 2>&1) || rc=$?
vm_log "init-only took $((SECONDS - t0)) s: $out"
((rc == 0)) && ok "exit 0" || bad "exit status $rc"
[[ $out == *'"msg":"init done"'* && $out == *'sysctl.write='* ]] && ok "logs init done with the settings it wrote" || bad "unexpected log: $out"

[[ -e /proc/net/ip_vs ]] && grep -q '^ip_vs ' /proc/modules && ok "ip_vs loaded" || bad "ip_vs not loaded"
expect net/ipv4/vs/conntrack 1
expect net/ipv4/vs/expire_nodest_conn 1
expect net/ipv4/vs/expire_quiescent_template 1
expect net/ipv4/ip_forward 1
kver=$(uname -r)
if [[ $kver =~ ^([0-9]+)\.([0-9]+) ]] && ((BASH_REMATCH[1] > 5 || (BASH_REMATCH[1] == 5 && BASH_REMATCH[2] >= 9))); then
  expect net/ipv4/vs/conn_reuse_mode "$reuse_before" # kernel >= 5.9: left alone (k/k #93297)
else
  expect net/ipv4/vs/conn_reuse_mode 0
fi
ncpu=$(nproc)
want_max=$((32768 * ncpu > 131072 ? 32768 * ncpu : 131072))
expect net/netfilter/nf_conntrack_max "$want_max"
expect net/netfilter/nf_conntrack_tcp_timeout_established 86400
expect net/netfilter/nf_conntrack_tcp_timeout_close_wait 3600
timeouts=$(ipvsadm -L --timeout)
[[ $timeouts == *'(tcp tcpfin udp): 900 60 200'* ]] && ok "IPVS timeouts 900 60 200" || bad "IPVS timeouts: $timeouts"

vm_log "== and nothing else"
vs=$(ipvsadm -Sn)
[[ -z $vs ]] && ok "no virtual server" || bad "virtual servers created: $vs"
ip link show kube-ipvs0 >/dev/null 2>&1 && bad "kube-ipvs0 created" || ok "no kube-ipvs0"
sets=$(ipset list -n)
[[ -z $sets ]] && ok "no ipset" || bad "ipsets created: $sets"
rules=$(iptables-save; ip6tables-save)
[[ $rules != *KUBE-* ]] && ok "no KUBE-* chain or rule (IPv4, IPv6)" || bad "iptables touched: $(grep KUBE- <<<"$rules")"

vm_log "== a second run changes nothing"
rc=0
out=$("${INIT[@]}" 2>&1) || rc=$?
((rc == 0)) && [[ $out == *'"changes":"none"'* ]] && ok "second run: exit 0, no change" || bad "second run: exit $rc: $out"

((fails == 0)) || vm_die "$fails check(s) failed"
vm_log "init-only.vm.sh: all checks passed"
