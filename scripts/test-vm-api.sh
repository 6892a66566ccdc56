#!/usr/bin/env bash
# The daemon inside the test VM against a real kube-apiserver on the host (test/vm/api.vm.sh,
# driven by test/vm/api-host.ts). Builds dist only when it is missing; builds the API server
# binaries once into the cache (test/apiserver/build.sh). KUBE_IPVS_SKIP_VM=1 or
# KUBE_IPVS_SKIP_API=1 skips. Exits with the scenario's status.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${KUBE_IPVS_SKIP_VM:-0} == 1 ]]; then
  echo "test-vm-api: KUBE_IPVS_SKIP_VM=1: VM + API server scenario skipped"
  exit 0
fi
if [[ ${KUBE_IPVS_SKIP_API:-0} == 1 ]]; then
  echo "test-vm-api: KUBE_IPVS_SKIP_API=1: VM + API server scenario skipped"
  exit 0
fi
if [[ ! -f dist/src/cli/main.js ]]; then
  echo "test-vm-api: no dist/: building"
  npm run build
fi
test/apiserver/build.sh
exec node --import tsx test/vm/api-host.ts "$@"
