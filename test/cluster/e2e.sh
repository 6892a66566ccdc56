#!/usr/bin/env bash
# Upstream's e2e suite (k8s.io/kubernetes v1.36.3 test/e2e, `go test -c`, built by
# test/cluster/build.sh --e2e) against the cluster; run by `cluster.sh e2e [--suite] [ARGS...]`
# inside the cluster's network namespace.
#
#   (no ARGS)  the CI selection: one Services test (E2E_FOCUS below)
#   --suite    the network selection of docs/e2e-report.md: every `[sig-network] Services` and
#              `[sig-network] Networking` test but those tagged [Disruptive], [Feature:...],
#              [Slow] or [Serial] (SUITE_SKIP below says why)
#   ARGS       e2e.test flags, e.g. --ginkgo.focus='\[sig-network\] Services should be updated'
#
# KUBE_IPVS_E2E_PROCS=N (default 1) runs the specs in N parallel processes through the ginkgo CLI
# (KUBE_IPVS_E2E_GINKGO, which cluster.sh sets). The JUnit report (junit_01.xml) and the log go to
# KUBE_IPVS_E2E_REPORT_DIR (default: a new folder under the cluster's state, named by the time and
# the node's proxy); `node test/cluster/e2e-report.mjs` turns two of them into a comparison.
set -euo pipefail

STATE=${KUBE_IPVS_CLUSTER_DIR:?run through test/cluster/cluster.sh e2e}
BIN=$(sed -n 's/^BIN=//p' "$STATE/env")
E2E=$BIN/e2e.test
[[ -x $E2E ]] || { echo "e2e: no $E2E: run test/cluster/build.sh --e2e (a long build)" >&2; exit 2; }

# Services tests that need nothing but agnhost, pause and a working service proxy.
E2E_FOCUS=${KUBE_IPVS_E2E_FOCUS:-'\[sig-network\] Services should serve a basic endpoint from pods'}
SUITE_FOCUS='\[sig-network\] (Services|Networking) '
# [Disruptive]: restart kube-proxy or the API server as pods, or delete iptables rules over SSH
#   (neither runs as a pod here, and there is no SSH to the node);
# [Feature:Networking-IPv4|IPv6|DNS]: reach the Internet; [Feature:Networking-Performance]: iperf2
#   between several nodes; [Feature:SCTPConnectivity]: needs the feature's own test setup;
# [Slow], [Serial]: not run in parallel with the rest; left out for time under TCG.
SUITE_SKIP='\[Disruptive\]|\[Feature:|\[Slow\]|\[Serial\]'

args=()
focus= skip=
if [[ ${1:-} == --suite ]]; then
  shift
  focus=$SUITE_FOCUS skip=$SUITE_SKIP
fi
args=("$@")
[[ -z $focus && ${#args[@]} -eq 0 ]] && focus=$E2E_FOCUS

proxy=$(tr -d '[:space:]' 2>/dev/null <"$STATE/node/proxy" || echo kube-ipvs)
REPORT=${KUBE_IPVS_E2E_REPORT_DIR:-$STATE/e2e/$(date -u +%Y%m%dT%H%M%SZ)-$proxy}
mkdir -p "$REPORT"
cd "$REPORT"
echo "e2e: node proxy $proxy; report in $REPORT" >&2

suite_flags=(--kubeconfig="$STATE/kubeconfig-admin" --provider=skeleton --kubectl-path="$BIN/kubectl"
  --report-dir="$REPORT" --num-nodes=1)
procs=${KUBE_IPVS_E2E_PROCS:-1}
if ((procs <= 1)); then
  run=("$E2E" "${suite_flags[@]}" --ginkgo.no-color --ginkgo.v --ginkgo.timeout=4h)
  [[ -n $focus ]] && run+=(--ginkgo.focus="$focus")
  [[ -n $skip ]] && run+=(--ginkgo.skip="$skip")
  run+=("${args[@]}")
else
  GINKGO=${KUBE_IPVS_E2E_GINKGO:?KUBE_IPVS_E2E_PROCS needs the ginkgo CLI (cluster.sh e2e sets it)}
  # The ginkgo CLI takes the suite's --ginkgo.X flags as its own --X.
  gflags=(--procs="$procs" --no-color -v --timeout=4h)
  [[ -n $focus ]] && gflags+=(--focus="$focus")
  [[ -n $skip ]] && gflags+=(--skip="$skip")
  rest=()
  for a in "${args[@]}"; do
    case $a in --ginkgo.*) gflags+=("--${a#--ginkgo.}") ;; *) rest+=("$a") ;; esac
  done
  run=("$GINKGO" "${gflags[@]}" "$E2E" -- "${suite_flags[@]}" "${rest[@]}")
fi
printf '%q ' "${run[@]}" >"$REPORT/command"
echo >>"$REPORT/command"
t0=$SECONDS
rc=0
"${run[@]}" 2>&1 | tee "$REPORT/e2e.log" || rc=${PIPESTATUS[0]}
echo "e2e: exit $rc after $((SECONDS - t0)) s; report in $REPORT" >&2
exit "$rc"
