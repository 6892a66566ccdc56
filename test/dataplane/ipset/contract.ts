// The IpsetBackend contract, written once and run against the fake and against real ipset in a
// private network namespace: the same op sequences must give the same results, error codes and
// `ipset save` dumps. Expectations are what ipset v7.17 did on a real kernel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IpsetSpec } from '../../../src/model/kernel.js';
import type { IpsetType } from '../../../src/model/names.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from '../../../src/dataplane/ipset/backend.js';
import type { DataplaneErrorCode } from '../../../src/dataplane/errors.js';
import { renderIpsetSave } from '../../../src/model/text/ipset.js';
import { IpsetReconciler } from '../../../src/sync/ipset-reconciler.js';
import { SyncReport } from '../../../src/sync/report.js';
import { distinctVariants, plannedFamily, type PlannerVariant } from '../../helpers/planner-variants.js';

export interface IpsetHarness {
  readonly backend: IpsetBackend;
  /** Makes a kernel component reference the set (an iptables --match-set rule); absent when impossible. */
  readonly reference?: (name: string) => Promise<void>;
  readonly unreference?: (name: string) => Promise<void>;
  close(): Promise<void>;
}

export interface ContractOptions {
  /** A reason to skip the whole suite (e.g. no root). */
  readonly skip?: string;
}

export function spec(name: string, type: IpsetType, more: Partial<IpsetSpec> = {}): IpsetSpec {
  return { name, type, family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535', ...more };
}

export const create = (s: IpsetSpec): IpsetOp => ({ kind: 'create', spec: s });
export const add = (name: string, entry: string): IpsetOp => ({ kind: 'add', name, entry });
export const del = (name: string, entry: string): IpsetOp => ({ kind: 'del', name, entry });
export const flush = (name: string): IpsetOp => ({ kind: 'flush', name });
export const destroy = (name: string): IpsetOp => ({ kind: 'destroy', name });

export async function dumpOf(backend: IpsetBackend, names?: readonly string[]): Promise<string> {
  return renderIpsetSave(await backend.observe(names));
}

/** The stable part of a result: applied, code, failed op index. */
export function outcome(r: IpsetApplyResult): { applied: number; code?: DataplaneErrorCode; opIndex?: number } {
  return r.error ? { applied: r.applied, code: r.error.code, opIndex: r.error.opIndex } : { applied: r.applied };
}

function expectOk(r: IpsetApplyResult, applied: number): void {
  assert.deepEqual(outcome(r), { applied }, r.error?.message);
}

function expectFail(r: IpsetApplyResult, applied: number, code: DataplaneErrorCode): void {
  assert.deepEqual(outcome(r), { applied, code, opIndex: applied });
}

const CIP = spec('KUBE-CLUSTER-IP', 'hash:ip,port');

export function ipsetContract(label: string, make: () => Promise<IpsetHarness>, options: ContractOptions = {}): void {
  const skip = options.skip ?? false;
  const scenario = (name: string, body: (h: IpsetHarness) => Promise<void>): void => {
    it(name, async () => {
      const h = await make();
      try {
        await body(h);
      } finally {
        await h.close();
      }
    });
  };

  describe(`IpsetBackend contract: ${label}`, { skip }, () => {
    scenario('starts empty; observe of missing names is empty, not an error', async ({ backend }) => {
      assert.deepEqual(await backend.observe(), []);
      assert.deepEqual(await backend.observe(['NOPE']), []);
      expectOk(await backend.apply([]), 0);
    });

    scenario('observe of named sets follows every change, however often it is read', async ({ backend }) => {
      const A = spec('A', 'hash:ip,port');
      const B = spec('B', 'hash:ip');
      expectOk(await backend.apply([create(A), add('A', '10.0.0.1,tcp:80'), create(B), add('B', '10.0.0.2')]), 4);
      const names = ['A', 'B'];
      const first = await dumpOf(backend, names);
      assert.equal(await dumpOf(backend, names), first, 'read again unchanged');
      expectOk(await backend.apply([add('A', '10.0.0.3,tcp:80')]), 1);
      assert.match(await dumpOf(backend, names), /^add A 10\.0\.0\.3,tcp:80$/m);
      expectOk(await backend.apply([del('A', '10.0.0.3,tcp:80'), del('A', '10.0.0.1,tcp:80')]), 2);
      const emptied = await dumpOf(backend, names);
      assert.doesNotMatch(emptied, /^add A /m);
      assert.match(emptied, /^add B 10\.0\.0\.2$/m);
      expectOk(await backend.apply([destroy('B')]), 1);
      assert.doesNotMatch(await dumpOf(backend, names), /B/);
      expectOk(await backend.apply([create(B), add('B', '10.0.0.2')]), 2);
      assert.equal(await dumpOf(backend, names), first.replace(/^add A .*\n/m, ''));
    });

    scenario('creates every set type and stores entries in ipset print form', async ({ backend }) => {
      const r = await backend.apply([
        create(CIP),
        add(CIP.name, '10.96.0.10,TCP:53'),
        add(CIP.name, '10.96.0.1,tcp:443'),
        add(CIP.name, '10.96.0.10,53'),
        add(CIP.name, '10.96.0.10,udp:53'),
        create(spec('KUBE-LOOP-BACK', 'hash:ip,port,ip')),
        add('KUBE-LOOP-BACK', '10.244.1.2/32,tcp:8080,10.244.1.2'),
        create(spec('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net')),
        add('KUBE-LOAD-BALANCER-SOURCE-CIDR', '192.0.2.10,tcp:80,10.1.1.5/24'),
        add('KUBE-LOAD-BALANCER-SOURCE-CIDR', '192.0.2.10,tcp:80,10.1.1.1/32'),
        create(spec('KUBE-NODE-PORT-TCP', 'bitmap:port')),
        add('KUBE-NODE-PORT-TCP', '30080'),
        add('KUBE-NODE-PORT-TCP', 'tcp:9'),
        create(spec('KUBE-IPVS-IPS', 'hash:ip')),
        add('KUBE-IPVS-IPS', '10.96.0.10'),
        create(spec('KUBE-6-CLUSTER-IP', 'hash:ip,port', { family: 'inet6' })),
        add('KUBE-6-CLUSTER-IP', 'FD00::A,UDP:53'),
        create(spec('SMALL', 'hash:ip', { hashSize: 100, maxElem: 10 })),
      ]);
      expectOk(r, 18);
      assert.equal(
        await dumpOf(backend),
        [
          'create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536',
          'add KUBE-6-CLUSTER-IP fd00::a,udp:53',
          'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
          'add KUBE-CLUSTER-IP 10.96.0.1,tcp:443',
          'add KUBE-CLUSTER-IP 10.96.0.10,tcp:53',
          'add KUBE-CLUSTER-IP 10.96.0.10,udp:53',
          'create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536',
          'add KUBE-IPVS-IPS 10.96.0.10',
          'create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536',
          'add KUBE-LOAD-BALANCER-SOURCE-CIDR 192.0.2.10,tcp:80,10.1.1.0/24',
          'add KUBE-LOAD-BALANCER-SOURCE-CIDR 192.0.2.10,tcp:80,10.1.1.1',
          'create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536',
          'add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2',
          'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
          'add KUBE-NODE-PORT-TCP 9',
          'add KUBE-NODE-PORT-TCP 30080',
          // The kernel rounds hashsize up to a power of two, at least 64.
          'create SMALL hash:ip family inet hashsize 128 maxelem 10',
          '',
        ].join('\n'),
      );
      const only = await backend.observe([CIP.name, 'NOPE']);
      assert.deepEqual(
        only.map((s) => [s.spec.name, [...s.entries].sort()]),
        [[CIP.name, ['10.96.0.1,tcp:443', '10.96.0.10,tcp:53', '10.96.0.10,udp:53']]],
      );
    });

    scenario('-exist: re-create, re-add, delete absent and destroy missing succeed', async ({ backend }) => {
      expectOk(await backend.apply([create(CIP), add(CIP.name, '10.96.0.1,tcp:443')]), 2);
      const before = await dumpOf(backend);
      const r = await backend.apply([
        create(CIP),
        add(CIP.name, '10.96.0.1,tcp:443'),
        add(CIP.name, '10.96.0.1,TCP:443'),
        del(CIP.name, '10.96.0.2,tcp:80'),
        destroy('NOPE'),
        // The kernel compares type and maxelem only: other family/hashsize keep the existing set.
        create({ ...CIP, hashSize: 4096 }),
        create({ ...CIP, family: 'inet6' }),
      ]);
      expectOk(r, 7);
      assert.equal(await dumpOf(backend), before);
    });

    scenario('create over an incompatible set is EXISTS; earlier ops stay applied', async ({ backend }) => {
      const np = spec('NP', 'bitmap:port', { range: '30000-32767' });
      expectOk(await backend.apply([create(CIP), create(np)]), 2);
      const r = await backend.apply([add(CIP.name, '10.0.0.1,tcp:1'), add(CIP.name, '10.0.0.2,tcp:2'), create({ ...CIP, type: 'hash:ip' }), add(CIP.name, '10.0.0.3,tcp:3')]);
      expectFail(r, 2, 'EXISTS');
      expectFail(await backend.apply([create({ ...CIP, maxElem: 1000 })]), 0, 'EXISTS');
      expectFail(await backend.apply([create({ ...np, range: '0-65535' })]), 0, 'EXISTS');
      // A reversed range is the same range to the kernel.
      expectOk(await backend.apply([create({ ...np, range: '32767-30000' })]), 1);
      assert.deepEqual([...((await backend.observe([CIP.name]))[0]?.entries ?? [])].sort(), ['10.0.0.1,tcp:1', '10.0.0.2,tcp:2']);
    });

    scenario('add, del and flush of a missing set are NOT_FOUND; earlier adds stay applied', async ({ backend }) => {
      let r = await backend.apply([create(spec('Y', 'hash:ip')), add('Y', '1.1.1.1'), add('NOPE', '1.1.1.1')]);
      expectFail(r, 2, 'NOT_FOUND');
      r = await backend.apply([add('Y', '1.1.1.2'), add('Y', '1.1.1.3'), del('NOPE', '1.1.1.1')]);
      expectFail(r, 2, 'NOT_FOUND');
      r = await backend.apply([del('Y', '1.1.1.3'), flush('NOPE')]);
      expectFail(r, 1, 'NOT_FOUND');
      // Missing set wins over a bad entry, as ipset needs the set's type to parse the entry.
      expectFail(await backend.apply([add('NOPE', 'garbage,,')]), 0, 'NOT_FOUND');
      r = await backend.apply([create(spec('L', 'hash:ip')), destroy('L'), add('L', '1.1.1.1')]);
      expectFail(r, 2, 'NOT_FOUND');
      assert.equal(await dumpOf(backend), 'create Y hash:ip family inet hashsize 1024 maxelem 65536\nadd Y 1.1.1.1\nadd Y 1.1.1.2\n');
    });

    scenario('entries invalid for the set type or family are INVALID', async ({ backend }) => {
      expectOk(
        await backend.apply([create(CIP), create(spec('IP6', 'hash:ip', { family: 'inet6' })), create(spec('NP', 'bitmap:port', { range: '100-200' })), create(spec('NET', 'hash:ip,port,net'))]),
        4,
      );
      const bad: [string, string][] = [
        [CIP.name, 'fd00::1,tcp:5'],
        [CIP.name, '1.2.3.4,tcp:5,1.2.3.4'],
        [CIP.name, '0.0.0.0,tcp:5'],
        [CIP.name, '1.2.3.4'],
        [CIP.name, '1.2.3.4,tcp:70000'],
        ['IP6', '1.2.3.4'],
        ['IP6', '::'],
        ['NP', '300'],
        ['NP', '70000'],
        ['NET', '1.2.3.4,tcp:80,10.0.0.0/0'],
        ['NET', '1.2.3.4,tcp:80,fd00::/64'],
      ];
      for (const [set, entry] of bad) {
        const r = await backend.apply([add(CIP.name, '10.0.0.9,tcp:9'), add(set, entry)]);
        assert.deepEqual(outcome(r), { applied: 1, code: 'INVALID', opIndex: 1 }, `${set} ${entry}: ${r.error?.message ?? 'accepted'}`);
      }
      // The same refusal on delete (with -exist only an absent valid entry is fine).
      expectFail(await backend.apply([del('NP', '300')]), 0, 'INVALID');
      assert.equal(await dumpOf(backend, [CIP.name]), `${renderIpsetSave([{ spec: CIP, entries: new Set(['10.0.0.9,tcp:9']) }])}`);
    });

    scenario('a bad entry after buffered adds of the same set keeps those adds', async ({ backend }) => {
      const b = spec('B', 'bitmap:port', { range: '0-1000' });
      expectFail(await backend.apply([create(b), add('B', '1'), add('B', '2'), add('B', '70000'), add('B', '3')]), 3, 'INVALID');
      expectFail(await backend.apply([create(CIP), add(CIP.name, '10.0.0.1,tcp:1'), add(CIP.name, '10.0.0.2,tcp:2'), add(CIP.name, 'fd00::1,tcp:5')]), 3, 'INVALID');
      expectFail(await backend.apply([del('B', '1'), del('B', '2'), add('NOPE', '1')]), 2, 'NOT_FOUND');
      assert.equal(
        await dumpOf(backend),
        'create B bitmap:port range 0-1000\ncreate KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 10.0.0.1,tcp:1\nadd KUBE-CLUSTER-IP 10.0.0.2,tcp:2\n',
      );
    });

    scenario('malformed names and words are INVALID before reaching the kernel', async ({ backend }) => {
      const long = 'K'.repeat(32);
      let r = await backend.apply([create(spec('OK', 'hash:ip')), add('OK', '1.1.1.1'), create(spec(long, 'hash:ip'))]);
      expectFail(r, 2, 'INVALID');
      r = await backend.apply([add('OK', '1.1.1.2'), add('OK', '1.1.1.3 1.1.1.4')]);
      expectFail(r, 1, 'INVALID');
      r = await backend.apply([add('OK', '1.1.1.5'), create(spec('BM', 'bitmap:port', { range: '5' }))]);
      expectFail(r, 1, 'INVALID');
      expectOk(await backend.apply([create(spec('K'.repeat(31), 'hash:ip'))]), 1);
      assert.equal(await dumpOf(backend, ['OK']), 'create OK hash:ip family inet hashsize 1024 maxelem 65536\nadd OK 1.1.1.1\nadd OK 1.1.1.2\nadd OK 1.1.1.5\n');
    });

    scenario('a full hash refuses new entries with FAILED; present ones are fine', async ({ backend }) => {
      const r = await backend.apply([create(spec('E', 'hash:ip', { maxElem: 2 })), add('E', '1.1.1.1'), add('E', '1.1.1.2'), add('E', '1.1.1.1'), add('E', '1.1.1.3')]);
      expectFail(r, 4, 'FAILED');
      expectFail(await backend.apply([create(spec('Z', 'hash:ip', { maxElem: 0 })), add('Z', '1.1.1.1')]), 1, 'FAILED');
      assert.equal(await dumpOf(backend, ['E']), 'create E hash:ip family inet hashsize 1024 maxelem 2\nadd E 1.1.1.1\nadd E 1.1.1.2\n');
    });

    scenario('del, flush, destroy and re-create with another type in one batch', async ({ backend }) => {
      const net = spec('NET', 'hash:ip,port,net');
      expectOk(await backend.apply([create(net), add('NET', '1.2.3.4,tcp:80,10.1.1.0/24'), add('NET', '1.2.3.4,tcp:80,10.2.2.2'), add('NET', '1.2.3.4,tcp:81,10.3.3.3')]), 4);
      expectOk(await backend.apply([del('NET', '1.2.3.4,tcp:80,10.1.1.77/24'), del('NET', '1.2.3.4,TCP:80,10.2.2.2/32')]), 2);
      assert.equal(await dumpOf(backend), 'create NET hash:ip,port,net family inet hashsize 1024 maxelem 65536\nadd NET 1.2.3.4,tcp:81,10.3.3.3\n');
      expectOk(await backend.apply([flush('NET'), add('NET', '5.5.5.5,udp:5,5.5.0.0/16')]), 2);
      assert.equal(await dumpOf(backend), 'create NET hash:ip,port,net family inet hashsize 1024 maxelem 65536\nadd NET 5.5.5.5,udp:5,5.5.0.0/16\n');
      expectOk(await backend.apply([destroy('NET'), create(spec('NET', 'bitmap:port')), add('NET', '80')]), 3);
      assert.equal(await dumpOf(backend), 'create NET bitmap:port range 0-65535\nadd NET 80\n');
    });

    scenario('destroying a set a kernel component references is IN_USE', async (h) => {
      const { backend, reference, unreference } = h;
      if (!reference || !unreference) return;
      expectOk(await backend.apply([create(CIP), add(CIP.name, '10.0.0.1,tcp:1'), create(spec('OTHER', 'hash:ip'))]), 3);
      await reference(CIP.name);
      const r = await backend.apply([destroy('OTHER'), flush(CIP.name), destroy(CIP.name)]);
      expectFail(r, 2, 'IN_USE');
      assert.equal(await dumpOf(backend), `${renderIpsetSave([{ spec: CIP, entries: new Set<string>() }])}`);
      await unreference(CIP.name);
      expectOk(await backend.apply([destroy(CIP.name)]), 1);
      assert.equal(await dumpOf(backend), '');
    });

    // Each configuration whose sets differ: the rule-only flags (masquerading, local-traffic
    // detection, --random-fully) plan the same sets as the defaults.
    const bothFamilies = (v: PlannerVariant) => (['IPv4', 'IPv6'] as const).flatMap((f) => plannedFamily(v, f).ipsets);
    for (const variant of distinctVariants((v) => renderIpsetSave(bothFamilies(v)))) {
      scenario(`takes the planner's sets (${variant.name}) and shows them as planned`, async ({ backend }) => {
        const desired = bothFamilies(variant);
        const report = new SyncReport();
        await new IpsetReconciler(backend).sync(desired, { full: true }, report);
        assert.deepEqual(report.failures, []);
        assert.equal(await dumpOf(backend), renderIpsetSave(desired));
        // What ipset save shows is what the planner wrote: a second full sync changes nothing.
        const again = new SyncReport();
        await new IpsetReconciler(backend).sync(desired, { full: true }, again);
        assert.deepEqual([...again.counts], []);
      });
    }

    scenario('a large batch is applied in one call', async ({ backend }) => {
      const ops: IpsetOp[] = [create(spec('BIG', 'hash:ip,port'))];
      for (let i = 0; i < 20000; i++) ops.push(add('BIG', `10.${(i >> 8) & 255}.${i & 255}.1,tcp:${1 + (i % 1000)}`));
      expectOk(await backend.apply(ops), ops.length);
      const [big] = await backend.observe(['BIG']);
      assert.equal(big?.entries.size, 20000);
      // A failure deep in a large batch still reports its exact index.
      const more: IpsetOp[] = [];
      for (let i = 0; i < 5000; i++) more.push(del('BIG', `10.${(i >> 8) & 255}.${i & 255}.1,tcp:${1 + (i % 1000)}`));
      more.push(add('BIG', '10.0.0.1,tcp:99999'));
      expectFail(await backend.apply(more), 5000, 'INVALID');
      assert.equal((await backend.observe(['BIG']))[0]?.entries.size, 15000);
    });
  });
}
