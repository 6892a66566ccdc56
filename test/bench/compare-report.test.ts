// bench:compare's figures for the churn, from what the guest sends: the whole churn's CPU per
// minute (catch-up included), its cost minute by minute, and the minutes after the first alone.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { figuresOf } from '../../bench/compare-report.js';

const CLK_TCK = 100;

/** A guest result with marks at `t` seconds carrying `cpu` seconds of the proxy's CPU (utime). */
function result(marks: ReadonlyArray<readonly [name: string, t: number, cpu: number]>): string {
  const lines = marks.map(([name, t, cpu]) => `${name} ${t} ${Math.round(cpu * CLK_TCK)} 0 0 0 50000 60000`);
  return ['### status', 'ok', '### marks', ...lines, '### churn', 'ok 240', ''].join('\n');
}

const COLD: ReadonlyArray<readonly [string, number, number]> = [
  ['start', 0, 0],
  ['synced', 20, 10],
];

describe('bench:compare churn figures', () => {
  it('shows each minute of the writer and the minutes after the first on their own', () => {
    const fig = figuresOf(
      'kube-ipvs',
      result([...COLD, ['churn-start', 100, 20], ['churn-m1', 160, 38], ['churn-m2', 220, 44], ['churn-end', 250, 47], ['churn-synced', 260, 48]]),
      CLK_TCK,
    );
    // The whole window (catch-up included) over the writer's 150 s.
    assert.equal(fig.churnSeconds, 150);
    assert.ok(Math.abs((fig.churnCpuPerMin ?? NaN) - (28 / 150) * 60) < 1e-9);
    // 18 s in the first minute, then 6 s a minute: 9 s over the last 90 s of the writer.
    assert.ok(Math.abs((fig.churnLaterCpuPerMin ?? NaN) - 6) < 1e-9);
    assert.ok(fig.notes.includes('churn CPU s per minute, minute by minute: 18.0, 6.0, 6.0'), fig.notes.join('\n'));
  });

  it('has no later figure when the writer ran less than two minutes or was not marked', () => {
    const short = figuresOf('kube-ipvs', result([...COLD, ['churn-start', 100, 20], ['churn-m1', 160, 30], ['churn-end', 190, 33], ['churn-synced', 200, 34]]), CLK_TCK);
    assert.equal(short.churnLaterCpuPerMin, undefined);
    assert.ok(short.notes.includes('churn CPU s per minute, minute by minute: 10.0, 6.0'), short.notes.join('\n'));
    const unmarked = figuresOf('kube-ipvs', result([...COLD, ['churn-start', 100, 20], ['churn-end', 160, 30], ['churn-synced', 170, 31]]), CLK_TCK);
    assert.equal(unmarked.churnLaterCpuPerMin, undefined);
    assert.ok(!unmarked.notes.some((n) => n.startsWith('churn CPU s per minute')));
  });
});
