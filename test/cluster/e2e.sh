#!/usr/bin/env bash
# Upstream's e2e suite (k8s.io/kubernetes v1.36.3 test/e2e, `go test -c`, built by
# test/cluster/build.sh --e2e) against the cluster; run by `cluster.sh e2e [ARGS...]` inside the
# cluster's network namespace. Without ARGS: the CI selection (E2E_FOCUS below). ARGS are e2e.test
# flags, e.g. --ginkgo.focus='\[sig-network\] Services' --ginkgo.skip='\[Slow\]|\[Serial\]'.
set -euo pipefail

STATE=${KUBE_IPVS_CLUSTER_DIR:?run through test/cluster/cluster.sh e2e}
BIN=$(sed -n 's/^BIN=//p' "$STATE/env")
E2E=$BIN/e2e.test
[[ -x $E2E ]] || { echo "e2e: no $E2E: run test/cluster/build.sh --e2e (a long build)" >&2; exit 2; }

# Services tests that need nothing but agnhost, pause and a working service proxy.
E2E_FOCUS=${KUBE_IPVS_E2E_FOCUS:-'\[sig-network\] Services should serve a basic endpoint from pods'}
args=("$@")
((${#args[@]})) || args=(--ginkgo.focus="$E2E_FOCUS")
mkdir -p "$STATE/e2e"
cd "$STATE/e2e"
exec "$E2E" --kubeconfig="$STATE/kubeconfig-admin" --provider=skeleton --kubectl-path="$BIN/kubectl" \
  --report-dir="$STATE/e2e" --num-nodes=1 --ginkgo.no-color --ginkgo.v "${args[@]}"
