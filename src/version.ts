// kube-ipvs's own version (package.json) and the kube-proxy release it follows, for --version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KUBE_PROXY_VERSION } from './config/upstream/version.js';

/** The version in the package.json above this module (the source tree, dist/ or the image's /app). */
export function kubeIpvsVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'kube-ipvs' && typeof pkg.version === 'string') return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

/** `--version`: one line. */
export function versionLine(): string {
  return `kube-ipvs v${kubeIpvsVersion()} (kube-proxy ${KUBE_PROXY_VERSION} in IPVS mode)`;
}

/** `--version=raw`: every detail, as JSON. */
export function rawVersion(): string {
  return JSON.stringify({
    kubeIpvs: kubeIpvsVersion(),
    kubeProxy: KUBE_PROXY_VERSION,
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
  });
}
