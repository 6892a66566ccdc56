// FakeIpset: each refusal the kernel makes (codes, reasons, failed index, kept prefix), -exist
// semantics, dump/load, and FaultyIpset's deterministic failures.
import assert from 'node:assert/strict';
import { fixture } from '../../model/text/helpers.js';
import { describe, it } from 'node:test';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import { FakeIpset, FaultyIpset, IpsetReason } from '../../../src/dataplane/ipset/fake.js';
import type { IpsetOp } from '../../../src/dataplane/ipset/backend.js';
import { parseIpsetSave, renderIpsetSave } from '../../../src/model/text/ipset.js';
import { add, create, del, destroy, flush, outcome, spec } from './contract.js';

const CIP = spec('KUBE-CLUSTER-IP', 'hash:ip,port');
const FIXTURE = fixture('ipset-save-v7.17.txt');

async function fresh(ops: IpsetOp[] = [create(CIP)]): Promise<FakeIpset> {
  const f = new FakeIpset();
  assert.deepEqual(outcome(await f.apply(ops)), { applied: ops.length });
  return f;
}

describe('FakeIpset refusals', () => {
  const cases: { name: string; ops: IpsetOp[]; code: string; reason: RegExp }[] = [
    { name: 'add to a missing set', ops: [add('NOPE', '1.1.1.1')], code: 'NOT_FOUND', reason: /: The set with the given name does not exist$/ },
    { name: 'del from a missing set', ops: [del('NOPE', '1.1.1.1')], code: 'NOT_FOUND', reason: /does not exist/ },
    { name: 'flush of a missing set', ops: [flush('NOPE')], code: 'NOT_FOUND', reason: /does not exist/ },
    { name: 'create over another type', ops: [create({ ...CIP, type: 'hash:ip' })], code: 'EXISTS', reason: /same name already exists/ },
    { name: 'create with another maxelem', ops: [create({ ...CIP, maxElem: 10 })], code: 'EXISTS', reason: /same name already exists/ },
    { name: 'add of the wrong family', ops: [add(CIP.name, 'fd00::1,tcp:1')], code: 'INVALID', reason: /Syntax error/ },
    { name: 'add of the wrong arity', ops: [add(CIP.name, '10.0.0.1')], code: 'INVALID', reason: /Syntax error/ },
    { name: 'add of the zero address', ops: [add(CIP.name, '0.0.0.0,tcp:1')], code: 'INVALID', reason: /Syntax error/ },
    { name: 'del of a malformed entry', ops: [del(CIP.name, '10.0.0.1,tcp:x')], code: 'INVALID', reason: /Syntax error/ },
    { name: 'a name over 31 characters', ops: [create(spec('X'.repeat(32), 'hash:ip'))], code: 'INVALID', reason: /longer than 31/ },
    { name: 'an entry of two words', ops: [add(CIP.name, '10.0.0.1,tcp:1 10.0.0.2,tcp:2')], code: 'INVALID', reason: /invalid entry/ },
    { name: 'a bitmap range without "-"', ops: [create(spec('B', 'bitmap:port', { range: '5' }))], code: 'INVALID', reason: /range/ },
    { name: 'a negative hashsize', ops: [create(spec('H', 'hash:ip', { hashSize: -1 }))], code: 'INVALID', reason: /hashsize/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const f = await fresh();
      const before = f.dump();
      const r = await f.apply([add(CIP.name, '10.0.0.9,tcp:9'), ...c.ops]);
      assert.equal(r.applied, 1);
      assert.ok(r.error instanceof DataplaneError);
      assert.equal(r.error.code, c.code);
      assert.equal(r.error.subsystem, 'ipset');
      assert.equal(r.error.opIndex, 1);
      assert.match(r.error.message, c.reason);
      // The op before the refused one took effect, nothing after it did.
      assert.notEqual(f.dump(), before);
      assert.match(f.dump(), /add KUBE-CLUSTER-IP 10\.0\.0\.9,tcp:9\n/);
    });
  }

  it('stops at the first refusal: later ops in the batch do not run', async () => {
    const f = await fresh();
    const r = await f.apply([add(CIP.name, '10.0.0.1,tcp:1'), add('NOPE', '1.1.1.1'), add(CIP.name, '10.0.0.2,tcp:2')]);
    assert.deepEqual(outcome(r), { applied: 1, code: 'NOT_FOUND', opIndex: 1 });
    assert.deepEqual([...((await f.observe([CIP.name]))[0]?.entries ?? [])], ['10.0.0.1,tcp:1']);
  });

  it('refuses destroy of a referenced set with IN_USE, then allows it', async () => {
    let referenced = true;
    const f = new FakeIpset({ isReferenced: (n) => referenced && n === CIP.name });
    await f.apply([create(CIP)]);
    const r = await f.apply([flush(CIP.name), destroy(CIP.name)]);
    assert.deepEqual(outcome(r), { applied: 1, code: 'IN_USE', opIndex: 1 });
    assert.equal(r.error?.message, `ipset destroy ${CIP.name}: ${IpsetReason.IN_USE}`);
    referenced = false;
    assert.deepEqual(outcome(await f.apply([destroy(CIP.name)])), { applied: 1 });
    assert.equal(f.dump(), '');
  });

  it('refuses adds to a full hash with FAILED "Hash is full"', async () => {
    const f = await fresh([create(spec('E', 'hash:ip', { maxElem: 1 })), add('E', '1.1.1.1')]);
    const r = await f.apply([add('E', '1.1.1.1'), add('E', '1.1.1.2')]);
    assert.deepEqual(outcome(r), { applied: 1, code: 'FAILED', opIndex: 1 });
    assert.match(r.error?.message ?? '', /Hash is full/);
  });

  it('refuses bitmap ports outside the range, on add and del', async () => {
    const f = await fresh([create(spec('B', 'bitmap:port', { range: '200-100' }))]);
    assert.match(f.dump(), /range 100-200/);
    for (const op of [add('B', '99'), add('B', '201'), del('B', '300'), add('B', '70000')]) {
      assert.equal((await f.apply([op])).error?.code, 'INVALID', JSON.stringify(op));
    }
    assert.deepEqual(outcome(await f.apply([add('B', '100'), add('B', 'udp:200')])), { applied: 2 });
    assert.match(f.dump(), /add B 100\nadd B 200\n$/);
  });
});

describe('FakeIpset -exist semantics and canonical storage', () => {
  it('stores entries as ipset prints them', async () => {
    const f = await fresh([create(CIP), add(CIP.name, '10.96.0.10,TCP:53'), add(CIP.name, '10.96.0.10,53'), add(CIP.name, '10.96.0.10/32,udp:53')]);
    assert.deepEqual([...((await f.observe())[0]?.entries ?? [])].sort(), ['10.96.0.10,tcp:53', '10.96.0.10,udp:53']);
    // Deleting in another spelling removes the canonical entry.
    await f.apply([del(CIP.name, '10.96.0.10,TCP:53')]);
    assert.deepEqual([...((await f.observe())[0]?.entries ?? [])], ['10.96.0.10,udp:53']);
  });

  it('re-create, re-add, del of absent and destroy of missing succeed', async () => {
    const f = await fresh([create(CIP), add(CIP.name, '10.0.0.1,tcp:1')]);
    const before = f.dump();
    const r = await f.apply([create(CIP), add(CIP.name, '10.0.0.1,tcp:1'), del(CIP.name, '10.0.0.2,tcp:2'), destroy('NOPE'), create({ ...CIP, hashSize: 4096, family: 'inet6' })]);
    assert.deepEqual(outcome(r), { applied: 5 });
    // Family and hashsize are not compared by the kernel: the existing set stays as it was.
    assert.equal(f.dump(), before);
  });

  it('rounds hashsize as the kernel does', async () => {
    const f = await fresh([create(spec('A', 'hash:ip', { hashSize: 1 })), create(spec('B', 'hash:ip', { hashSize: 1025 }))]);
    assert.match(f.dump(), /create A hash:ip family inet hashsize 64 /);
    assert.match(f.dump(), /create B hash:ip family inet hashsize 2048 /);
  });

  it('observe returns copies and filters by name', async () => {
    const f = await fresh([create(CIP), add(CIP.name, '10.0.0.1,tcp:1'), create(spec('OTHER', 'hash:ip'))]);
    const seen = await f.observe([CIP.name, 'NOPE']);
    assert.deepEqual(seen.map((s) => s.spec.name), [CIP.name]);
    await f.apply([flush(CIP.name)]);
    assert.equal(seen[0]?.entries.size, 1);
  });
});

describe('FakeIpset dump and load', () => {
  it('loads `ipset save` text and dumps it canonically', async () => {
    const f = new FakeIpset({ initial: FIXTURE });
    assert.equal(f.dump(), renderIpsetSave(parseIpsetSave(FIXTURE)));
    const again = new FakeIpset();
    again.load(f.dump());
    assert.equal(again.dump(), f.dump());
    // observe keeps creation order (as the kernel lists sets); compare by name.
    const byName = async (b: FakeIpset) => (await b.observe()).sort((x, y) => x.spec.name.localeCompare(y.spec.name));
    assert.deepEqual(await byName(again), await byName(f));
  });

  it('load replaces the whole state', async () => {
    const f = await fresh([create(spec('GONE', 'hash:ip'))]);
    f.load('create KEPT hash:ip family inet hashsize 1024 maxelem 65536\nadd KEPT 1.1.1.1\n');
    assert.equal(f.dump(), 'create KEPT hash:ip family inet hashsize 1024 maxelem 65536\nadd KEPT 1.1.1.1\n');
  });
});

describe('FaultyIpset', () => {
  const batch = (i: number): IpsetOp[] => [create(CIP), add(CIP.name, `10.0.0.${i},tcp:80`)];

  it('fails a deterministic share of applies with FAILED and applies nothing then', async () => {
    const pattern = async (seed: number): Promise<boolean[]> => {
      const inner = new FakeIpset();
      const f = new FaultyIpset(inner, { failureRate: 0.3, seed });
      const out: boolean[] = [];
      for (let i = 1; i <= 200; i++) {
        const before = inner.dump();
        const r = await f.apply(batch(i));
        out.push(r.error !== undefined);
        if (r.error) {
          assert.deepEqual(outcome(r), { applied: 0, code: 'FAILED', opIndex: 0 });
          assert.equal(inner.dump(), before);
        }
      }
      return out;
    };
    const a = await pattern(7);
    assert.deepEqual(await pattern(7), a);
    assert.notDeepEqual(await pattern(8), a);
    const share = a.filter(Boolean).length / a.length;
    assert.ok(share > 0.2 && share < 0.4, `share ${share}`);
  });

  it('retrying until success converges to the desired state', async () => {
    const inner = new FakeIpset();
    const f = new FaultyIpset(inner, { failureRate: 0.5, seed: 3 });
    const desired = [create(CIP), ...Array.from({ length: 50 }, (_, i) => add(CIP.name, `10.0.${i}.1,tcp:80`))];
    let tries = 0;
    for (;;) {
      tries++;
      const r = await f.apply(desired);
      if (!r.error) break;
      assert.ok(tries < 50);
    }
    const want = new FakeIpset();
    await want.apply(desired);
    assert.equal(inner.dump(), want.dump());
    assert.equal(f.injected, tries - 1);
  });

  it('rate 0 never fails, rate 1 always fails, other rates are refused', async () => {
    assert.equal((await new FaultyIpset(new FakeIpset(), { failureRate: 0 }).apply(batch(1))).error, undefined);
    assert.equal((await new FaultyIpset(new FakeIpset(), { failureRate: 1 }).apply(batch(1))).error?.code, 'FAILED');
    assert.throws(() => new FaultyIpset(new FakeIpset(), { failureRate: 2 }), RangeError);
  });
});
