#!/usr/bin/env bash
# What each capability of deploy/kube-ipvs-unprivileged.yaml is for, in a real kernel. (That the
# set suffices for everything the daemon does is shown by the other scenarios run with
# KUBE_IPVS_VM_CAPS=manifest: test/vm/README.md.) Each `run` below is preceded by a privileged
# `run --init-only`, as the manifest's init container does, and runs with /proc/sys read-only.
#   - the daemon holds exactly the manifest's capabilities, with no_new_privs;
#   - with no capability at all, `run --once` fails, says why, and programs nothing: NET_ADMIN is
#     needed (IPVS, ipset and rtnetlink writes all check it);
#   - NET_ADMIN alone programs a node whose iptables is nf_tables (this kernel's default);
#   - on a node using iptables-legacy (kubelet's KUBE-IPTABLES-HINT chain there), NET_ADMIN alone
#     fails at the iptables restore, and NET_ADMIN + NET_RAW works: iptables-legacy talks to the
#     kernel through a raw socket.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

FIX=$ROOT/test/vm/fixtures/traffic.yaml
ARGS=(--manifests "$FIX" --hostname-override "$(hostname)" --healthz-bind-address= --metrics-bind-address=)
limited() { KUBE_IPVS_VM_CAPS=$1 bash "$VM_LIB_DIR/limited.sh" "${@:2}"; }
clean() {
  node "$ROOT/dist/kube-ipvs.mjs" cleanup >/dev/null 2>&1 || true
  for t in filter nat mangle raw; do for c in iptables-legacy ip6tables-legacy; do "$c" -t "$t" -F 2>/dev/null; "$c" -t "$t" -X 2>/dev/null; done; done
  true
}
programmed() { [[ -n $(ipvsadm -Sn) ]]; }

vm_log "== the daemon with the manifest's capabilities"
LOG=$(mktemp)
KUBE_IPVS_VM_CAPS=manifest bash "$VM_LIB_DIR/limited.sh" run "${ARGS[@]}" --ipvs-sync-period 10s >"$LOG" 2>&1 &
DAEMON=$!
vm_track "$DAEMON"
wait_until 120 "the limited daemon programs the node" programmed
status=$(cat "/proc/$DAEMON/status")
eff=$(awk '/^CapEff:/{print $2}' <<<"$status")
bnd=$(awk '/^CapBnd:/{print $2}' <<<"$status")
decoded=$(capsh --decode="$eff" | sed 's/.*=//')
[[ $decoded == cap_net_admin,cap_net_raw && $bnd == "$eff" ]] && ok "kube-ipvs runs with $decoded only (bounding set the same)" || bad "capabilities: effective $decoded ($eff), bounding $bnd"
grep -q '^NoNewPrivs:[[:space:]]*1' <<<"$status" && ok "no_new_privs is set" || bad "no_new_privs is not set"
[[ $(awk '$5 == "/proc/sys" {print $6}' "/proc/$DAEMON/mountinfo" | tail -1) == ro* ]] && ok "it sees /proc/sys read-only" || bad "/proc/sys is writable for it"
kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
grep -q '"msg":"synced"\|INFO  synced' "$LOG" && ok "it synced" || bad "no sync logged: $(tail -5 "$LOG")"
grep -q 'sysctl' <(grep -i 'fail\|error' "$LOG") && bad "a sysctl failed: $(grep -i sysctl "$LOG" | head -3)" || ok "no sysctl failure: the init step's settings are only read"
clean

vm_log "== no capability: refused, said, nothing programmed"
if out=$(limited none run --once "${ARGS[@]}" 2>&1); then bad "run --once succeeded without NET_ADMIN"; else
  reason=$(grep -m1 -io '[^"]*\(not permitted\|eperm\|permission denied\)[^"]*' <<<"$out" | head -c 240)
  [[ -n $reason ]] && ok "exit 1, saying: $reason" || bad "no reason given: $out"
fi
[[ -z $(ipvsadm -Sn) ]] && ok "no virtual server was created" || bad "virtual servers without NET_ADMIN: $(ipvsadm -Sn | head -3)"
clean

once_fails_at_set_match() { # once_fails_at_set_match WHAT: run --once with NET_ADMIN only
  local out
  if out=$(limited net_admin run --once "${ARGS[@]}" 2>&1); then bad "$1: run --once succeeded without NET_RAW"; return; fi
  grep -q "subsystem=iptables.*Can't open socket to ipset" <<<"$out" && ok "$1: NET_ADMIN alone fails at the iptables restore: Can't open socket to ipset" ||
    bad "$1: failed otherwise: $out"
}
once_works() { # once_works WHAT SAVE: run --once with NET_ADMIN + NET_RAW; SAVE shows the rules
  local out
  if out=$(limited net_admin,net_raw run --once "${ARGS[@]}" 2>&1); then ok "$1: NET_ADMIN + NET_RAW: run --once succeeds"; else bad "$1: run --once failed: $out"; fi
  "$2" -t nat | grep -q -- '-A KUBE-SERVICES' && ok "$1: KUBE-SERVICES rules are there ($2)" || bad "$1: no KUBE-SERVICES rule in $2"
}

vm_log "== a node on nf_tables"
once_fails_at_set_match nf_tables
clean
once_works nf_tables iptables-nft-save
clean

vm_log "== a node on iptables-legacy"
iptables-legacy -t mangle -N KUBE-IPTABLES-HINT
once_fails_at_set_match legacy
clean
iptables-legacy -t mangle -N KUBE-IPTABLES-HINT
once_works legacy iptables-legacy-save
clean
exit $((fails > 0))
