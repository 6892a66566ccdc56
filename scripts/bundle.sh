#!/usr/bin/env bash
# Bundles the compiled CLI (dist/src/cli/main.js) into one file, dist/kube-ipvs.mjs, so that a
# start reads one file instead of ~1,900 modules: that is most of a start-up where files are slow
# to open (the test VM's 9p root) and a fair part of it anywhere. esbuild keeps main.js's shebang;
# the banner gives bundled CommonJS dependencies a require(). `netlink` stays outside: it
# loads a native addon next to its own files, found through node_modules as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install esbuild dist/src/cli/main.js --bundle --platform=node --format=esm --target=node20 \
  --external:netlink --outfile=dist/kube-ipvs.mjs --log-level=warning \
  --banner:js="import { createRequire as kubeIpvsCreateRequire } from 'node:module'; const require = kubeIpvsCreateRequire(import.meta.url);"
chmod +x dist/kube-ipvs.mjs
