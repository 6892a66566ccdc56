// Shared by the text codec tests: fixture files (found from the repo root, so the tests run from
// src via tsx and from dist alike) and running the host's tools in a throwaway network namespace.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

export function fixture(name: string): string {
  return readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'text', name), 'utf8');
}

export interface NetnsResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a bash script in a new network namespace (never touching the host's tables). */
export function inNetns(script: string, input = ''): NetnsResult {
  const r = spawnSync('unshare', ['-n', 'bash', '-c', script], { input, encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** Why the host tools cannot be used here, or undefined when they can. */
export function hostToolsUnavailable(tools: readonly string[]): string | undefined {
  const probe = inNetns(tools.map((t) => `command -v ${t} >/dev/null || { echo "missing ${t}" >&2; exit 1; }`).join('\n') + '\nipset list >/dev/null');
  return probe.ok ? undefined : `host tools unusable in a netns: ${probe.stderr.trim() || 'unshare failed'}`;
}
