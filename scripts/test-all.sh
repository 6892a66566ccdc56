#!/usr/bin/env bash
# The whole test suite: build, lint, unit and fake-kernel tests natively, the tests against a real
# kube-apiserver + etcd (built once from the Go module proxy, cached), then the real-kernel
# scenarios in one VM boot. Ends with one "N passed, M failed" line for everything.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
npm run build || exit 1
npm run lint || exit 1
# node_stage NAME CMD...: runs a node --test stage, sets NAME_rc, NAME_pass and NAME_fail; a stage
# that failed without reporting (e.g. a build step) counts as one failure.
node_stage() {
  local name=$1 log rc pass fail
  shift
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  pass=$(awk '/^# pass /{print $3}' "$log" | tail -1)
  fail=$(awk '/^# fail /{print $3}' "$log" | tail -1)
  rm -f "$log"
  ((rc != 0 && ${fail:-0} == 0)) && fail=1
  printf -v "${name}_rc" '%s' "$rc"
  printf -v "${name}_pass" '%s' "${pass:-0}"
  printf -v "${name}_fail" '%s' "${fail:-0}"
}
node_stage unit scripts/run-tests.sh
node_stage api scripts/test-api.sh
vm_rc=0
vm_pass=0
vm_fail=0
if [[ ${KUBE_IPVS_SKIP_VM:-0} == 1 ]]; then
  echo "test-all: KUBE_IPVS_SKIP_VM=1: real-kernel scenarios skipped"
else
  vm_log=$(mktemp)
  test/vm/vm.sh --timeout 2400 -- bash test/vm/suite.sh 2>&1 | tee "$vm_log"
  vm_rc=${PIPESTATUS[0]}
  read -r vm_pass vm_fail < <(awk '/^vm: [0-9]+ passed, [0-9]+ failed/{p=$2; f=$4} END{print p+0, f+0}' "$vm_log")
  rm -f "$vm_log"
  # A VM that never reported counts as one failure.
  ((vm_rc != 0 && vm_fail == 0)) && vm_fail=1
  # The daemon in its own VM boot (user networking) against the real API server on the host.
  if [[ ${KUBE_IPVS_SKIP_API:-0} == 1 ]]; then
    echo "test-all: KUBE_IPVS_SKIP_API=1: VM + API server scenario skipped"
  elif scripts/test-vm-api.sh; then
    vm_pass=$((vm_pass + 1))
  else
    vm_fail=$((vm_fail + 1)); vm_rc=1
  fi
  # bench:compare at a tiny size in its own VM boot: it must keep producing its table.
  if scripts/test-compare.sh; then
    vm_pass=$((vm_pass + 1))
  else
    vm_fail=$((vm_fail + 1)); vm_rc=1
  fi
fi
total_pass=$(( ${unit_pass:-0} + ${api_pass:-0} + vm_pass ))
total_fail=$(( ${unit_fail:-0} + ${api_fail:-0} + vm_fail ))
echo "unit: ${unit_pass:-0} passed, ${unit_fail:-0} failed"
echo "api: ${api_pass:-0} passed, ${api_fail:-0} failed"
echo "vm: $vm_pass passed, $vm_fail failed"
echo "total: $total_pass passed, $total_fail failed"
((unit_rc == 0 && api_rc == 0 && vm_rc == 0))
