import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/model/clock.js';
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
  test('runs a full sync at start, then every maxInterval when nothing is requested', async () => {
    const { clock, runs, runner } = setup();
    runner.start();
    await clock.advance(65000);
    assert.deepEqual(runs, [
      { at: 0, reason: 'periodic' },
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

  test('a failed run is retried after retryInterval; the full resync stays due maxInterval after the last one', async () => {
    const { clock, runs, runner } = setup({ results: [false, false, true] });
    runner.start();
    await clock.advance(45000);
    assert.deepEqual(runs.map((r) => [r.at, r.reason]), [[0, 'periodic'], [5000, 'retry'], [10000, 'retry'], [30000, 'periodic']]);
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
      ['0 periodic', '1000 requested', '2000 requested', '3000 requested', '30000 periodic'],
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

  describe('under steady churn a full resync still comes every maxInterval', () => {
    // The figures with the daemon's defaults (sync period 30 s, min 1 s): the old runner
    // let each request replace the pending periodic run and re-armed the period after every run,
    // so a change every 10, 25 or 29 s for ten minutes gave no full sync after the first, and a
    // change every 500 ms for five minutes gave 301 partial runs and no full one.
    const cases = [
      { changeEveryMs: 10_000, forMs: 600_000, runMs: 0 },
      { changeEveryMs: 25_000, forMs: 600_000, runMs: 0 },
      { changeEveryMs: 29_000, forMs: 600_000, runMs: 0 },
      { changeEveryMs: 500, forMs: 300_000, runMs: 0 },
      // Runs longer than minInterval: a full run due during one starts when it ends.
      { changeEveryMs: 500, forMs: 300_000, runMs: 1_500 },
    ];
    for (const c of cases) {
      test(`a change every ${c.changeEveryMs} ms for ${c.forMs / 1000} s, runs of ${c.runMs} ms`, async () => {
        const min = 1000;
        const max = 30_000;
        const { clock, runs, runner } = setup({ min, max, runMs: c.runMs });
        const requests: number[] = [];
        runner.start();
        for (let t = c.changeEveryMs; t <= c.forMs; t += c.changeEveryMs) {
          await clock.advance(t - clock.now());
          requests.push(t);
          runner.request();
        }
        await clock.advance(c.forMs - clock.now());
        runner.stop();
        // A full run is due maxInterval after the last one started; it can only start once the
        // run in flight is over and minInterval has passed since that run began.
        const slack = Math.max(min, c.runMs);
        const fulls = runs.filter((r) => r.reason === 'periodic').map((r) => r.at);
        const figures = `${fulls.length} full and ${runs.length - fulls.length} partial runs, full at ${fulls.join(',')}`;
        assert.equal(fulls[0], 0, figures);
        for (let i = 1; i < fulls.length; i++) assert.ok((fulls[i] as number) - (fulls[i - 1] as number) <= max + slack, `gap before the full run at ${fulls[i]}: ${figures}`);
        assert.ok(c.forMs - (fulls.at(-1) as number) <= max + slack, `no full run in the last ${max + slack} ms: ${figures}`);
        // The guarantee does not cost the changes their prompt partial runs.
        assert.ok(runs.some((r) => r.reason === 'requested'), figures);
        for (const t of requests) assert.ok(runs.some((r) => r.at >= t && r.at <= t + slack), `the change at ${t} waited more than ${slack} ms: ${figures}`);
      });
    }
  });
});
