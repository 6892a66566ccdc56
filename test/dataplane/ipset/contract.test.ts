// Runs the IpsetBackend contract against the fake (always), and against real ipset and the netlink
// backend in private netns (when root and ipset are available), then replays one generated op
// sequence on the fake and on each real backend and compares every result and the dumps: the
// "fake and real agree" proof.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeIpset } from '../../../src/dataplane/ipset/fake.js';
import type { IpsetOp } from '../../../src/dataplane/ipset/backend.js';
import type { IpsetSpec } from '../../../src/model/kernel.js';
import { add, create, del, destroy, dumpOf, flush, ipsetContract, outcome, spec } from './contract.js';
import type { IpsetHarness } from './contract.js';
import { makeNetlinkHarness, makeRealHarness, realIpsetSkipReason } from './netns.js';
import { seededRandom } from '../../../src/dataplane/prng.js';

function makeFakeHarness(): Promise<IpsetHarness> {
  const refs = new Map<string, number>();
  const backend = new FakeIpset({ isReferenced: (name) => (refs.get(name) ?? 0) > 0 });
  return Promise.resolve({
    backend,
    reference: (name: string) => {
      refs.set(name, (refs.get(name) ?? 0) + 1);
      return Promise.resolve();
    },
    unreference: (name: string) => {
      refs.set(name, (refs.get(name) ?? 1) - 1);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  });
}

const skipReal = realIpsetSkipReason();

ipsetContract('FakeIpset', makeFakeHarness);
ipsetContract('RealIpset in a private netns', makeRealHarness, skipReal === undefined ? {} : { skip: skipReal });
ipsetContract('NetlinkIpset in a private netns', makeNetlinkHarness, skipReal === undefined ? {} : { skip: skipReal });

// ---------------------------------------------------------------------------------------------
// Generated sequences. Each name keeps one intended spec plus one conflicting variant; entry pools
// hold valid, non-canonical and invalid entries for the intended type. Pools avoid what ipset
// resolves but the model refuses on purpose (host names, bare numbers read as IPv4 by inet_aton,
// ranges and CIDRs on hash:ip), so any difference is a real disagreement.

interface Family {
  readonly spec: IpsetSpec;
  readonly variant: IpsetSpec;
  readonly pool: readonly string[];
}

const FAMILIES: readonly Family[] = [
  {
    spec: spec('A', 'hash:ip,port'),
    variant: spec('A', 'hash:ip,port,ip'),
    pool: ['10.0.0.1,tcp:80', '10.0.0.1,TCP:80', '10.0.0.2,udp:53', '10.0.0.3,80', '10.0.0.4,sctp:9', 'fd00::1,tcp:80', '0.0.0.0,tcp:1', '10.0.0.5,tcp:80,10.0.0.5'],
  },
  {
    spec: spec('B', 'bitmap:port', { range: '0-1000' }),
    variant: spec('B', 'bitmap:port', { range: '0-100' }),
    pool: ['80', 'tcp:81', 'udp:82', '500', '999', '2000', '70000'],
  },
  {
    spec: spec('C', 'hash:ip', { family: 'inet6' }),
    // Not a family variant: `ipset restore` reads the adds after "create C … family inet" as IPv4
    // even when -exist kept the existing IPv6 set (the kernel and the netlink backend do not).
    variant: spec('C', 'hash:ip', { family: 'inet6', maxElem: 1000 }),
    pool: ['fd00::1', 'FD00::2', 'fd00::3/128', '::', '10.0.0.1'],
  },
  {
    spec: spec('D', 'hash:ip,port,net', { maxElem: 4 }),
    variant: spec('D', 'hash:ip,port,net', { maxElem: 2 }),
    pool: ['1.2.3.4,tcp:80,10.0.0.0/8', '1.2.3.4,tcp:80,10.1.1.1/32', '1.2.3.4,tcp:80,10.1.1.9/24', '1.2.3.4,udp:80,10.2.0.0/16', '1.2.3.5,tcp:1,10.9.9.9', '1.2.3.4,tcp:80,10.0.0.0/0', '1.2.3.4,tcp:80', '0.0.0.0,tcp:80,10.0.0.0/8', '1.2.3.4,tcp:80,0.0.0.0/8'],
  },
  {
    spec: spec('E', 'hash:ip,port,ip'),
    variant: spec('E', 'hash:ip,port,net'),
    pool: ['10.0.0.1,tcp:80,10.0.0.2', '10.0.0.1/32,udp:53,10.0.0.2', '0.0.0.0,tcp:80,10.0.0.1', '10.0.0.1,tcp:80,0.0.0.0', '10.0.0.1,tcp:0,10.0.0.3', '10.0.0.1,tcp:80,10.0.0.2/32', '10.0.0.1,tcp:80,fd00::1', '10.0.0.1,80'],
  },
  {
    spec: spec('F', 'hash:ip,port', { family: 'inet6' }),
    variant: spec('F', 'hash:ip', { family: 'inet6' }),
    pool: ['fd00::1,tcp:80', 'fd00::1,UDP:0', '::,tcp:80', 'fd00::1/128,sctp:9', 'fd00::1/64,tcp:80', '10.0.0.1,tcp:80', 'fd00::1,tcp:65536'],
  },
];


function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('empty pool');
  return item;
}

/** Batches of ops over FAMILIES; mostly adds and deletes, sometimes structure changes. */
export function generateBatches(seed: number, batches: number): IpsetOp[][] {
  const random = seededRandom(seed);
  const out: IpsetOp[][] = [];
  for (let b = 0; b < batches; b++) {
    const ops: IpsetOp[] = [];
    const size = 1 + Math.floor(random() * 8);
    for (let i = 0; i < size; i++) {
      const f = pick(random, FAMILIES);
      const r = random();
      if (r < 0.15) ops.push(create(f.spec));
      else if (r < 0.2) ops.push(create(f.variant));
      else if (r < 0.6) ops.push(add(f.spec.name, pick(random, f.pool)));
      else if (r < 0.8) ops.push(del(f.spec.name, pick(random, f.pool)));
      else if (r < 0.9) ops.push(flush(f.spec.name));
      else ops.push(destroy(f.spec.name));
    }
    out.push(ops);
  }
  return out;
}

const REAL_BACKENDS: readonly (readonly [string, () => Promise<IpsetHarness>])[] = [
  ['RealIpset', makeRealHarness],
  ['NetlinkIpset', makeNetlinkHarness],
];

for (const [label, make] of REAL_BACKENDS) {
  describe(`fake and ${label} agree on a generated sequence`, { skip: skipReal ?? false }, () => {
    it('same result for every batch and the same dump after each', async () => {
      const fake = new FakeIpset();
      const real = await make();
      try {
        // KUBE_IPVS_CONTRACT_SEED and _RUNS vary and lengthen the sequence to hunt for disagreements.
        const batches = generateBatches(Number(process.env['KUBE_IPVS_CONTRACT_SEED'] ?? 20240607), Number(process.env['KUBE_IPVS_CONTRACT_RUNS'] ?? 100));
        let failures = 0;
        for (const [i, ops] of batches.entries()) {
          const [f, r] = [await fake.apply(ops), await real.backend.apply(ops)];
          const where = `batch ${i}: ${JSON.stringify(ops)}\nreal: ${r.error?.message ?? 'ok'}\nfake: ${f.error?.message ?? 'ok'}`;
          assert.deepEqual(outcome(r), outcome(f), where);
          assert.equal(await dumpOf(real.backend), fake.dump(), where);
          if (f.error) failures++;
        }
        // The sequence must exercise refusals, not only the happy path.
        assert.ok(failures > 15, `only ${failures} failing batches`);
      } finally {
        await real.close();
      }
    });
  });
}
