// The benchmark's reading of the host's steal: /proc/stat's aggregate line, and the share of
// CPU time that was steal between two readings.
import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseProcStat, readHostCpu, stealPercent } from '../../bench/host-cpu.js';

// As the kernel prints it (fs/proc/stat.c): user nice system idle iowait irq softirq steal guest guest_nice.
const BEFORE = 'cpu  5110445 4029 309742 5967373 3544 0 144885 87121 0 0\ncpu0 2555222 2014 154871 2983686 1772 0 72442 43560 0 0\nintr 1\n';
const AFTER = 'cpu  5110749 4029 309801 5967805 3545 0 144889 87476 0 0\ncpu0 2555374 2014 154900 2983902 1772 0 72444 43737 0 0\nintr 2\n';

describe('host CPU steal', () => {
  it('reads the aggregate line, steal being the eighth value', () => {
    assert.deepEqual(parseProcStat(BEFORE), { total: 5110445 + 4029 + 309742 + 5967373 + 3544 + 0 + 144885 + 87121, steal: 87121 });
  });

  it('gives steal as a share of the CPU time between two readings', () => {
    // 304 user + 59 system + 432 idle + 1 iowait + 4 softirq + 355 steal = 1155 ticks.
    const pct = stealPercent(parseProcStat(BEFORE), parseProcStat(AFTER));
    assert.ok(pct !== undefined && Math.abs(pct - (355 / 1155) * 100) < 1e-9, String(pct));
  });

  it('has no figure without two readings, or when none is readable', () => {
    assert.equal(stealPercent(undefined, parseProcStat(AFTER)), undefined);
    assert.equal(stealPercent(parseProcStat(AFTER), parseProcStat(AFTER)), undefined);
    assert.equal(parseProcStat('intr 1\n'), undefined);
    const dir = mkdtempSync(join(tmpdir(), 'host-cpu-'));
    writeFileSync(join(dir, 'stat'), AFTER);
    assert.deepEqual(readHostCpu(join(dir, 'stat')), parseProcStat(AFTER));
    assert.equal(readHostCpu(join(dir, 'missing')), undefined);
  });
});
