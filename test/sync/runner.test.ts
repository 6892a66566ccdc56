import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/sync/clock.js';
import { BoundedFrequencyRunner } from '../../src/sync/runner.js';
import type { RunReason } from '../../src/sync/runner.js';

function setup(opts: { min?: number; max?: number; retry?: number; results?: boolean[]; runMs?: number; nextRunBy?: (now: number) => number | undefined } = {}) {
  const clock = new ManualClock();
  const runs: Array<{ at: number; reason: RunReason }> = [];
  const results = [...(opts.results ?? [])];
  const runner = new BoundedFrequencyRunner({
    minIntervalMs: opts.min ?? 1000,
    maxIntervalMs: opts.max ?? 30000,
    retryIntervalMs: opts.retry ?? 5000,
    clock,
    run: async (reason) => {
      runs.push({ at: clock.now(), reason });
      if (opts.runMs) await new Promise<void>((r) => clock.setTimer(opts.runMs as number, r));
      return results.shift() ?? true;
    },
    ...(opts.nextRunBy ? { nextRunBy: () => opts.nextRunBy?.(clock.now()) } : {}),
  });
  return { clock, runs, runner };
}

describe('BoundedFrequencyRunner', () => {
  test('runs at start, then every maxInterval when nothing is requested', async () => {
    const { clock, runs, runner } = setup();
    runner.start();
    await clock.advance(65000);
    assert.deepEqual(runs, [
      { at: 0, reason: 'requested' },
      { at: 30000, reason: 'periodic' },
      { at: 60000, reason: 'periodic' },
    ]);
    runner.stop();
  });

  test('requests within minInterval coalesce into one run at the earliest allowed time', async () => {
    const { clock, runs, runner } = setup();
    runner.start();
    await clock.advance(100);
    runner.request();
    runner.request();
    await clock.advance(200);
    runner.request();
    await clock.advance(2000);
    assert.deepEqual(runs.map((r) => r.at), [0, 1000]);
    runner.stop();
  });

  test('a request after a quiet period runs at once', async () => {
    const { clock, runs, runner } = setup();
    runner.start();
    await clock.advance(5000);
    runner.request();
    await clock.advance(0);
    assert.deepEqual(runs.map((r) => r.at), [0, 5000]);
    runner.stop();
  });

  test('a failed run is retried after retryInterval, then the period resumes', async () => {
    const { clock, runs, runner } = setup({ results: [false, false, true] });
    runner.start();
    await clock.advance(45000);
    assert.deepEqual(runs.map((r) => [r.at, r.reason]), [[0, 'requested'], [5000, 'retry'], [10000, 'retry'], [40000, 'periodic']]);
    runner.stop();
  });

  test('never two runs at once: a request during a run waits for it and for minInterval', async () => {
    const { clock, runs, runner } = setup({ runMs: 3000 });
    runner.start();
    await clock.advance(500);
    runner.request();
    await clock.advance(3000);
    assert.deepEqual(runs.map((r) => r.at), [0, 3000]);
    runner.stop();
  });

  test('minInterval 0 runs every request immediately', async () => {
    const { clock, runs, runner } = setup({ min: 0 });
    runner.start();
    await clock.advance(10);
    runner.request();
    await clock.advance(0);
    runner.request();
    await clock.advance(0);
    assert.equal(runs.length, 3);
    runner.stop();
  });

  test('stop cancels the schedule', async () => {
    const { clock, runs, runner } = setup();
    runner.start();
    await clock.advance(10);
    runner.stop();
    await clock.advance(100000);
    assert.equal(runs.length, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  test('a run wanted by a time (a drain check) comes then, not before minInterval, and never delays the periodic one', async () => {
    // After each run the dataplane wants the next one 400 ms later, until 3 s have passed.
    const { clock, runs, runner } = setup({ nextRunBy: (now) => (now < 3000 ? now + 400 : undefined) });
    runner.start();
    await clock.advance(40000);
    assert.deepEqual(
      runs.map((r) => `${r.at} ${r.reason}`),
      ['0 requested', '1000 requested', '2000 requested', '3000 requested', '33000 periodic'],
    );
    runner.stop();
  });

  test('a wanted time after the periodic run changes nothing', async () => {
    const { clock, runs, runner } = setup({ nextRunBy: (now) => now + 90000 });
    runner.start();
    await clock.advance(65000);
    assert.deepEqual(runs.map((r) => r.at), [0, 30000, 60000]);
    runner.stop();
  });
});
