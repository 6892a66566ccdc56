#!/usr/bin/env bash
# bench/sync.sh — runs bench/sync (the sync loop against the real kernel) inside the qemu VM of
# test/vm, since this host's kernel has no IPVS. Build first (npm run build, or npx tsc -p .).
#
#   BENCH_SERVICES=1000 bench/sync.sh      # default 10000 services x 10 endpoints
#
# First it measures bench/calibrate natively (unshare -n, so root) and passes the figures in, for
# the native-equivalent estimate bench/sync prints.
# The VM gets 3G and 2 vCPUs and up to 40 minutes by default: 10,000 services under TCG emulation
# take many minutes (BENCH_VM_MEM, BENCH_VM_CPUS, BENCH_VM_TIMEOUT override).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
if [[ ! -f dist/bench/sync.js ]]; then
  echo "bench/sync.sh: dist/bench/sync.js is missing; build first: npm run build" >&2
  exit 2
fi
for b in sync calibrate; do
  if [[ bench/$b.ts -nt dist/bench/$b.js ]]; then
    echo "bench/sync.sh: warning: bench/$b.ts is newer than dist/bench/$b.js; rebuild (npm run build)" >&2
  fi
done
# The native half of the calibration (bench/calibrate.ts), here on the host, before qemu loads it;
# the guest runs the other half and divides. A private netns: it creates and destroys an ipset.
unset BENCH_NATIVE_CALIBRATION
if cal=$(unshare -n node dist/bench/calibrate.js); then
  export BENCH_NATIVE_CALIBRATION=$cal
else
  echo "bench/sync.sh: warning: the native calibration failed; no native-equivalent estimate this run" >&2
fi
# vm.sh passes only KUBE_IPVS_* and the names listed here into the guest.
export KUBE_IPVS_VM_PASSENV="BENCH_SERVICES BENCH_ENDPOINTS BENCH_ROUNDS BENCH_NATIVE_CALIBRATION ${KUBE_IPVS_VM_PASSENV:-}"
exec test/vm/vm.sh --mem "${BENCH_VM_MEM:-3G}" --cpus "${BENCH_VM_CPUS:-2}" --timeout "${BENCH_VM_TIMEOUT:-2400}" -- node dist/bench/sync.js
