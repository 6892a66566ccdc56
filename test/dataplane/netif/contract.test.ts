// The fake and the real rtnetlink backend agree on one sequence; the real one runs in a private
// network namespace (on a bridge link: this host's kernel may lack the dummy module).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { FakeNetif } from '../../../src/dataplane/netif/fake.js';
import fc from 'fast-check';
import type { GeneratedStep, Step } from './contract.js';
import { assertFakeMatches, netifOpsArb, runContract } from './contract.js';
import { netnsUnavailable, unshareChildArgs } from '../../helpers/netns-child.js';

function runReal(args: readonly string[] = [], input?: string): unknown {
  const r = spawnSync('unshare', [...unshareChildArgs(import.meta.url, 'netns-child'), ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(input === undefined ? {} : { input }),
  });
  assert.equal(r.status, 0, `child failed (${r.error?.message ?? r.signal ?? 'exit ' + String(r.status)}): ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}

function fakeWith(dummyAvailable: boolean): FakeNetif {
  // A fresh namespace has only lo, and lo has no addresses until it is up.
  const n = new FakeNetif({ node: null, noLoopback: true, dummyAvailable });
  n.addLink('lo', 'loopback');
  return n;
}

function fakeAddCidr(n: FakeNetif) {
  return async (dev: string, cidr: string): Promise<void> => {
    const { name, kind } = (await n.link(dev)) ?? { name: dev, kind: '' };
    // Re-create the link with the extra address, keeping its current ones.
    const current = (await n.addresses()).filter((a) => a.ifname === dev).map((a) => `${a.address}/${a.prefix}`);
    await n.deleteLink(name, kind);
    n.addLink(name, kind, [...current, cidr]);
  };
}

describe('netif contract', () => {
  it('fake: dummy available', async () => {
    const n = fakeWith(true);
    const steps = new Map(await runContract(n, fakeAddCidr(n)));
    assert.deepEqual(steps.get('ensureDummy'), { created: true });
    assert.deepEqual(steps.get('deleteDummy'), { deleted: true });
    assert.deepEqual(steps.get('deleteDummy missing'), { deleted: false });
    assert.deepEqual(steps.get('ensureDummy bad name'), 'error INVALID');
    for (const s of ['bind multicast v6', 'bind unspecified v6', 'bind loopback v6 off lo']) assert.equal(steps.get(s), 'error INVALID', s);
    assert.equal(steps.get('bind unspecified v4'), 'ok');
    assert.deepEqual(steps.get('addresses'), ['10.96.0.1/32', 'fd00::a/128']);
    assert.deepEqual(steps.get('addresses with wider'), [
      '10.0.0.5/24',
      '10.0.0.5/32',
      '10.96.0.1/32',
      'fd00:1::5/64',
      'fd00::a/128',
    ]);
    assert.deepEqual(steps.get('addresses after'), ['10.0.0.5/24', '10.96.0.1/32', 'fd00:1::5/64', 'fd00::a/128']);
    assert.deepEqual(steps.get('bindMany'), ['ok', 'ok', 'NOT_FOUND', 'INVALID', 'ok']);
    assert.deepEqual(steps.get('unbindMany'), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.deepEqual(steps.get('addresses at end'), ['10.0.0.5/24', 'fd00:1::5/64']);
    assert.equal(steps.get('gone'), true);
  });

  it('real (private netns) gives the same results as the fake', { skip: netnsUnavailable() }, async () => {
    const real = runReal() as Step[];
    const dummy = real.find(([name]) => name === 'ensureDummy')?.[1];
    // A kernel without the dummy module answers EOPNOTSUPP; model the same kernel.
    const n = fakeWith(dummy !== 'error UNAVAILABLE');
    const fake = await runContract(n, fakeAddCidr(n));
    assert.deepEqual(real, fake);
  });

  // KUBE_IPVS_CONTRACT_RUNS and _SEED lengthen and vary the sequences to hunt for disagreements.
  const runs = Number(process.env['KUBE_IPVS_CONTRACT_RUNS'] ?? 30);
  const seed = Number(process.env['KUBE_IPVS_CONTRACT_SEED'] ?? 20250612);
  it(`real (private netns) and fake agree on ${runs} generated sequences`, { skip: netnsUnavailable() }, async () => {
    const sequences = fc.sample(netifOpsArb(), { numRuns: runs, seed });
    // This host's kernel may lack the dummy module: bridge links stand in (addresses behave alike).
    const real = runReal(['--generated', 'bridge'], JSON.stringify(sequences)) as GeneratedStep[][];
    await assertFakeMatches(sequences, real, () => fakeWith(true), 'bridge');
  });

  it('real (private netns): a listing of thousands of addresses, read again after changes, is what iproute2 lists', { skip: netnsUnavailable() }, () => {
    const reads = runReal(['--listing']) as Array<{ ours: string[]; ip: string[] }>;
    assert.equal(reads.length, 4);
    for (const [i, r] of reads.entries()) assert.deepEqual(r.ours, r.ip, `read ${i + 1}`);
    // 3,500 bound; 5 removed and 3 added; the same; the same under the link's new name.
    assert.deepEqual(
      reads.map((r) => r.ip.length),
      [3500, 3498, 3498, 3498],
    );
    assert.ok(reads[1]?.ip.includes('kipvs-list 10.97.0.2/24') && !reads[1].ip.includes('kipvs-list 10.96.5.1/32'));
    assert.ok(reads[3]?.ip.every((a) => a.startsWith('kipvs-list2 ')));
  });
});
