#!/usr/bin/env bash
# Tests against a real kube-apiserver + etcd (test/api): builds them once into the cache
# (test/apiserver/build.sh), then runs the compiled tests from dist/. KUBE_IPVS_SKIP_API=1 skips.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${KUBE_IPVS_SKIP_API:-0} == 1 ]]; then
  echo "test-api: KUBE_IPVS_SKIP_API=1: API server tests skipped"
  exit 0
fi
test/apiserver/build.sh
mapfile -t files < <(find dist/test/api -name '*.test.js' 2>/dev/null | sort)
if ((${#files[@]} == 0)); then
  echo "test-api: no dist/test/api/*.test.js: run npm run build first" >&2
  exit 1
fi
# One apiserver per file; two at once is what 2 cores carry.
exec node --test --test-concurrency=2 "${files[@]}"
