// run's own flags as the daemon reads them: the per-Service IPVS counters are on unless
// --service-metrics=false (docs/commands.md), whatever a bool flag reads as when absent.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { RUN_FLAGS } from '../../src/cli/run.js';

const serviceMetrics = (...argv: string[]): unknown => loadConfig(['--hostname-override', 'node-a', ...argv], { extraFlags: RUN_FLAGS, hostname: 'node-a', readFile: () => '' }).extra.get('service-metrics');

describe('run --service-metrics', () => {
  it('is on when not given', () => {
    assert.equal(serviceMetrics(), true);
  });

  it('is off with --service-metrics=false and on with --service-metrics', () => {
    assert.equal(serviceMetrics('--service-metrics=false'), false);
    assert.equal(serviceMetrics('--service-metrics'), true);
  });
});
