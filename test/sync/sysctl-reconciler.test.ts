// applySysctls: the kernel settings of a sync, read and written through the sysctl backend.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { SysctlBackend } from '../../src/dataplane/sysctl/backend.js';
import type { SysctlSetting } from '../../src/plan/sysctl.js';
import { applySysctls } from '../../src/sync/sysctl-reconciler.js';
import { SyncReport } from '../../src/sync/report.js';

const setting = (key: string, value: number, mode: 'exact' | 'atLeast' = 'exact'): SysctlSetting => ({ key, value, mode, why: 'test' });

/** A /proc/sys whose reads and writes each wait for a timer turn, logging when they start and end. */
function slowSysctl(values: Record<string, string>, missing: readonly string[] = []): { backend: SysctlBackend; log: string[] } {
  const log: string[] = [];
  const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 5));
  return {
    log,
    backend: {
      async read(key) {
        log.push(`read ${key}`);
        await turn();
        log.push(`read done ${key}`);
        if (missing.includes(key)) throw new Error(`no such sysctl ${key}`);
        return values[key];
      },
      async write(key, value) {
        log.push(`write ${key}=${value}`);
        await turn();
        values[key] = value;
        log.push(`write done ${key}`);
      },
    },
  };
}

describe('applySysctls', () => {
  test('different keys are read at once, and only differing ones written', async () => {
    const values: Record<string, string> = { 'net/ipv4/vs/conntrack': '0', 'net/ipv4/ip_forward': '1', 'net/netfilter/nf_conntrack_max': '65536' };
    const { backend, log } = slowSysctl(values);
    const report = new SyncReport();
    await applySysctls(backend, [setting('net/ipv4/vs/conntrack', 1), setting('net/ipv4/ip_forward', 1), setting('net/netfilter/nf_conntrack_max', 131072, 'atLeast')], report);
    // Every read began before the first one ended.
    assert.deepEqual(log.slice(0, 3), ['read net/ipv4/vs/conntrack', 'read net/ipv4/ip_forward', 'read net/netfilter/nf_conntrack_max']);
    assert.deepEqual(values, { 'net/ipv4/vs/conntrack': '1', 'net/ipv4/ip_forward': '1', 'net/netfilter/nf_conntrack_max': '131072' });
    assert.equal(report.summary(), 'sysctl.write=2');
    assert.ok(report.ok);
  });

  test('settings of one key stay in order: the second reads what the first wrote', async () => {
    const values: Record<string, string> = { 'net/ipv4/vs/conntrack': '0' };
    const { backend, log } = slowSysctl(values);
    const report = new SyncReport();
    await applySysctls(backend, [setting('net/ipv4/vs/conntrack', 1), setting('net/ipv4/vs/conntrack', 1)], report);
    assert.deepEqual(log, ['read net/ipv4/vs/conntrack', 'read done net/ipv4/vs/conntrack', 'write net/ipv4/vs/conntrack=1', 'write done net/ipv4/vs/conntrack', 'read net/ipv4/vs/conntrack', 'read done net/ipv4/vs/conntrack']);
    assert.equal(report.summary(), 'sysctl.write=1');
  });

  test('a failing key is reported in the settings order and does not stop the others', async () => {
    const values: Record<string, string> = { 'net/ipv4/ip_forward': '0' };
    const { backend } = slowSysctl(values, ['net/ipv4/vs/conntrack', 'net/bridge/bridge-nf-call-iptables']);
    const report = new SyncReport();
    await applySysctls(backend, [setting('net/ipv4/vs/conntrack', 1), setting('net/ipv4/ip_forward', 1), setting('net/bridge/bridge-nf-call-iptables', 1)], report);
    assert.equal(values['net/ipv4/ip_forward'], '1');
    assert.deepEqual(
      report.failures.map((f) => f.object),
      ['net/ipv4/vs/conntrack=1', 'net/bridge/bridge-nf-call-iptables=1'],
    );
    assert.match(report.failures[0]?.message ?? '', /no such sysctl net\/ipv4\/vs\/conntrack/);
  });
});
