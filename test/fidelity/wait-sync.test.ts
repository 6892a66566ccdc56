// wait-sync.mjs (the benchmark's and the fidelity harness's "has the proxy caught up?") against a
// scripted /metrics: syncs run one at a time, so when a scrape shows several completed since the
// one before, the last began after that scrape was asked for; a single sync that began before the
// change does not count until the proxy has settled: nothing queued or completed for --settle
// seconds and twice the longest sync seen.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../test/fidelity/wait-sync.mjs', import.meta.url));

interface State {
  readonly count: number;
  readonly sum: number;
  readonly last: number;
  readonly queued: number;
}

function text(s: State): string {
  return ['IPv4', 'IPv6']
    .map(
      (f) =>
        `kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="${f}"} ${s.last}\n` +
        `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="${f}"} ${s.queued}\n` +
        `kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="${f}"} ${s.count}\n` +
        `kubeproxy_sync_proxy_rules_duration_seconds_sum{ip_family="${f}"} ${s.sum}\n`,
    )
    .join('');
}

/** Runs wait-sync.mjs with `args` against a /metrics that `serve` answers; its exit code. */
async function runWaiter(serve: () => string, args: readonly string[]): Promise<number> {
  const server = createServer((_req, res) => res.end(serve()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const child = spawn(process.execPath, [SCRIPT, ...args, '--url', `http://127.0.0.1:${port}/metrics`], { stdio: 'ignore' });
    return await new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  } finally {
    server.close();
  }
}

/**
 * A change queued 2 s before the first scrape, while a 3 s sync ran; after the first scrape that
 * sync ends and `after(t1)` more follow, t1 being when the first scrape was answered. With
 * `noneAfter`, nothing more completes after the first scrape.
 */
async function waitAgainst(
  after: (t1: number) => readonly number[],
  { settle = 30, timeout = 3, noneAfter = false }: { settle?: number; timeout?: number; noneAfter?: boolean } = {},
): Promise<number> {
  const t1 = Date.now() / 1000;
  const queued = t1 - 2;
  const before: State = { count: 10, sum: 5, last: queued - 1.5, queued };
  let served = 0;
  const durations = [3, ...after(t1)];
  const end = t1 + 0.06 + durations.slice(1).reduce((a, b) => a + b, 0);
  const later: State = { count: 10 + durations.length, sum: 5 + durations.reduce((a, b) => a + b, 0), last: end, queued };
  return runWaiter(() => text(served++ === 0 || noneAfter ? before : later), ['--since', String(queued - 0.5), '--quiet', '0.3', '--settle', String(settle), '--timeout', String(timeout)]);
}

/**
 * The benchmark's churn: twenty syncs since the baseline scrape, the last change queued after the
 * twentieth ended, then one 0.1 s sync that begins after it, and nothing more. The waiter starts
 * while the churn runs (`gated`: it sees two scrapes of the twenty, then the one after; the churn
 * ends, FILE appears, once that one has been served) or only after it (it sees all 21 at once).
 */
async function waitAfterChurn({ gated, openGate = true, timeout = 4 }: { gated: boolean; openGate?: boolean; timeout?: number }): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'wait-sync-'));
  const gate = join(dir, 'churn-done');
  const baseline = join(dir, 'baseline');
  writeFileSync(baseline, text({ count: 0, sum: 0, last: 0, queued: 0 }));
  const queued = Date.now() / 1000 - 0.2;
  const during: State = { count: 20, sum: 10, last: queued - 0.1, queued };
  let after: State | undefined;
  let served = 0;
  const serve = (): string => {
    if (gated && served++ < 2) return text(during);
    // The last sync ends just before it is first seen, so it began after the change.
    after ??= { count: 21, sum: 10.1, last: Date.now() / 1000 - 0.01, queued };
    if (openGate) writeFileSync(gate, '');
    return text(after);
  };
  const args = ['--since', String(queued - 5), '--baseline', baseline, '--quiet', '0.3', '--timeout', String(timeout)];
  try {
    return await runWaiter(serve, gated ? [...args, '--after', gate] : args);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('wait-sync', () => {
  test('started during the churn (--after): the sync after the last change counts once the churn has ended', async () => {
    assert.equal(await waitAfterChurn({ gated: true }), 0);
  });

  test('started after the churn: the first scrape cannot place that sync, so it waits for another', async () => {
    assert.equal(await waitAfterChurn({ gated: false }), 1);
  });

  test('--after: nothing is judged while the file is missing, however synced the proxy is', async () => {
    assert.equal(await waitAfterChurn({ gated: true, openGate: false, timeout: 3 }), 1);
  });

  test('two quick syncs after a long one: the last began after the previous scrape, so the proxy has caught up', async () => {
    assert.equal(await waitAgainst(() => [0.02, 0.02]), 0);
  });

  test('one sync that began before the change does not count', async () => {
    assert.equal(await waitAgainst(() => []), 1);
  });

  test('a proxy that ended a sync after the change and then stayed quiet has caught up', async () => {
    assert.equal(await waitAgainst(() => [], { settle: 1, timeout: 12 }), 0);
  });

  test('settling waits twice the longest sync seen: a 3 s sync is not settled after 4 s', async () => {
    assert.equal(await waitAgainst(() => [], { settle: 1, timeout: 4 }), 1);
  });

  test('a proxy whose last sync ended before the change has not caught up, however quiet', async () => {
    assert.equal(await waitAgainst(() => [], { settle: 1, timeout: 4, noneAfter: true }), 1);
  });
});
