#!/usr/bin/env bash
# Installs the npm dependencies when a fresh clone has none yet, so `npm test` and `npm run demo`
# work as the first command on a new machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi
