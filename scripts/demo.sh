#!/usr/bin/env bash
# The README's main job: kube-ipvs serving real traffic. Runs demo/demo-node.sh natively in a
# private network namespace when this kernel has IPVS (and we are root), otherwise inside the
# test VM (test/vm/vm.sh installs what it needs). Prints `kube-ipvs plan` of the examples too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
npm run build >/dev/null
echo "== kube-ipvs plan of examples/ (every service type; no kernel needed)"
node dist/src/cli/main.js plan --manifests examples/ --hostname-override node-a --node-ip 192.168.0.10,fd00:192::10 --output ipvs
echo
if [[ $(id -u) == 0 ]] && { [[ -e /proc/net/ip_vs ]] || modprobe -q ip_vs 2>/dev/null; } && [[ -e /proc/net/ip_vs ]] && ip link add kipvs-probe type dummy 2>/dev/null; then
  ip link del kipvs-probe
  echo "== this kernel has IPVS: running the demo in a private network namespace"
  exec unshare -n bash demo/demo-node.sh
fi
echo "== this kernel has no IPVS (or no dummy links): running the demo in a VM (test/vm)"
exec test/vm/vm.sh --timeout 900 -- bash demo/demo-node.sh
