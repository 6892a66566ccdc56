#!/usr/bin/env bash
# Runs every compiled *.test.js under dist/test with node's test runner. Files under test/vm are
# real-kernel scenarios and run inside the VM (npm run test:vm); files under test/api need a real
# kube-apiserver (scripts/test-api.sh); neither runs here.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/test -name '*.test.js' -not -path 'dist/test/vm/*' -not -path 'dist/test/api/*' | sort)
exec node --test --test-concurrency=2 "${files[@]}"
