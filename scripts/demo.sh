#!/usr/bin/env bash
# npm run demo: kube-ipvs serving real traffic. Runs demo/demo-node.sh natively in a private
# network namespace when this kernel has IPVS (and we are root), otherwise inside the test VM
# (test/vm/vm.sh installs what it needs). demo-node.sh prints the plan of its cluster and checks
# the kernel's table against it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
npm run build >/dev/null
if [[ $(id -u) == 0 ]] && { [[ -e /proc/net/ip_vs ]] || modprobe -q ip_vs 2>/dev/null; } && [[ -e /proc/net/ip_vs ]] && ip link add kipvs-probe type dummy 2>/dev/null; then
  ip link del kipvs-probe
  echo "== this kernel has IPVS: running the demo in a private network namespace"
  exec unshare -n bash demo/demo-node.sh
fi
echo "== this kernel has no IPVS (or no dummy links): running the demo in a VM (test/vm)"
exec test/vm/vm.sh --timeout 900 -- bash demo/demo-node.sh
