// Tests that run a child script of theirs in a private network namespace (`unshare -n`): whether
// this host allows one, and the command that runs the child as the test itself runs (compiled
// under dist with plain node, or TypeScript through tsx).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Why no private network namespace can be made here, or undefined when one can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for a network namespace';
  const r = spawnSync('unshare', ['-n', 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return `unshare unavailable: ${r.error.message}`;
  return r.status === 0 ? undefined : `unshare -n failed: ${r.stderr.trim()}`;
}

/**
 * `unshare -n` arguments that run `childBase` (a name without extension, next to the test whose
 * import.meta.url is `testUrl`) in a fresh network namespace.
 */
export function unshareChildArgs(testUrl: string, childBase: string): string[] {
  const compiled = testUrl.endsWith('.js');
  const child = fileURLToPath(new URL(`./${childBase}${compiled ? '.js' : '.ts'}`, testUrl));
  return ['-n', process.execPath, ...(compiled ? [] : ['--import', 'tsx']), child];
}
