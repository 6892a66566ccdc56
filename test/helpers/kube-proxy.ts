// Upstream kube-proxy as the reference for kube-ipvs's flags and configuration: the binary
// test/apiserver/build.sh caches, its --help flag list, and the lists checked in from it under
// test/fixtures/kube-proxy/ (so the native tests compare without the binary).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KUBE_PROXY_VERSION } from '../../src/config/upstream/version.js';
import { repoRoot } from './cli.js';

/** The cached reference binary, or undefined when test/apiserver/build.sh has not run. */
export function referenceKubeProxy(): string | undefined {
  const cache = process.env.KUBE_IPVS_CACHE ?? join(homedir(), '.cache', 'kube-ipvs');
  const bin = join(cache, 'apiserver', process.env.KUBE_IPVS_K8S_VERSION ?? KUBE_PROXY_VERSION, 'bin', 'kube-proxy');
  return existsSync(bin) ? bin : undefined;
}

export const MISSING_BINARY = `upstream kube-proxy ${KUBE_PROXY_VERSION} is not built (run test/apiserver/build.sh; scripts/test-api.sh does)`;

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runReference(bin: string, args: readonly string[], cwd?: string): RunResult {
  const r = spawnSync(bin, [...args], { encoding: 'utf8', ...(cwd ? { cwd } : {}), timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A flag as --help shows it: "--bind-address ip", "-v, --v Level", "--cleanup". */
export interface HelpFlag {
  readonly name: string;
  readonly short: string | undefined;
  /** pflag's value type; undefined for a flag that takes no value (bool). */
  readonly type: string | undefined;
}

/** The flag heads of a pflag --help text, one per flag, as printed. */
export function helpFlagLines(help: string): string[] {
  return help
    .split('\n')
    .filter((l) => /^\s+(-[a-z], )?--[a-z]/.test(l))
    .map((l) => l.trim().replace(/\s{2,}.*$/, ''));
}

export function parseHelpFlag(line: string): HelpFlag {
  const m = /^(?:-([a-z]), )?--([a-z0-9-]+)(?: (\S+))?$/.exec(line);
  if (!m) throw new Error(`not a flag line: ${JSON.stringify(line)}`);
  return { name: m[2] ?? '', short: m[1], type: m[3] };
}

export const FLAGS_FIXTURE = join(repoRoot(), 'test', 'fixtures', 'kube-proxy', `${KUBE_PROXY_VERSION}-flags.txt`);
export const IPVS_DEFAULTS_FIXTURE = join(repoRoot(), 'test', 'fixtures', 'kube-proxy', `${KUBE_PROXY_VERSION}-ipvs-defaults.yaml`);

/** The checked-in flag lines (comments and blank lines dropped). */
export function fixtureFlagLines(): string[] {
  return readFileSync(FLAGS_FIXTURE, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
}
