#!/usr/bin/env bash
# Bundles the compiled CLI (dist/src/cli/main.js) into dist/kube-ipvs.mjs plus chunks in
# dist/bundle/, so that a start reads a few files instead of ~1,900 modules: that is most of a
# start-up where files are slow to open (the test VM's 9p root) and a fair part of it anywhere.
# Code splitting keeps each command's dynamic imports (src/cli/main.ts, run.ts) in their own
# chunks, so --help reads only the entry and the daemon never parses what only plan or trace use.
# esbuild keeps main.js's shebang; the banner gives bundled CommonJS dependencies a require() in
# every file. Outside the bundle, found through node_modules as usual: `netlink` (it loads a native
# addon next to its own files) and @kubernetes/client-node (only kubeconfigs with exec plugins,
# auth providers or proxies import it, and bundled it would be a 14 MB chunk).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist/bundle dist/kube-ipvs.mjs
npx --no-install esbuild kube-ipvs=dist/src/cli/main.js --bundle --splitting --platform=node --format=esm --target=node20 \
  --external:netlink --external:@kubernetes/client-node --outdir=dist --entry-names='[name]' --chunk-names='bundle/[name]-[hash]' --out-extension:.js=.mjs \
  --log-level=warning \
  --banner:js="import { createRequire as kubeIpvsCreateRequire } from 'node:module'; const require = kubeIpvsCreateRequire(import.meta.url);"
chmod +x dist/kube-ipvs.mjs
