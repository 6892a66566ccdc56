// What every IpvsBackend must do, as node:test tests: the same op sequences run against the fake
// (test/dataplane/ipvs/fake.test.ts) and against the kernel inside the VM
// (test/vm/ipvs-contract.vm.ts), so the fake cannot drift from the kernel unnoticed.
// The suite owns the whole IPVS table: it flushes before and after every test.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { IpvsBackend, IpvsOp, IpvsOpResult, ObservedRealServer, ObservedVirtualServer } from '../../../src/dataplane/ipvs/backend.js';
import { IpvsError, isAlreadyExists, isNotFound } from '../../../src/dataplane/ipvs/errors.js';
import { allRealServers } from '../../../src/dataplane/ipvs/proc.js';
import type { IpvsDestSpec, IpvsServiceSpec } from '../../../src/dataplane/ipvs/netlink-codec.js';
import { VsFlag } from '../../../src/model/kernel.js';

type Outcome = 'ok' | IpvsError['code'];

function service(address: string, port: number, more: Partial<IpvsServiceSpec> = {}): IpvsServiceSpec {
  return {
    family: address.includes(':') ? 'IPv6' : 'IPv4',
    protocol: 'TCP',
    address,
    port,
    scheduler: 'rr',
    flags: 0,
    timeout: 0,
    ...more,
  };
}

function dest(address: string, port: number, more: Partial<IpvsDestSpec> = {}): IpvsDestSpec {
  return { address, port, weight: 1, forward: 'masq', ...more };
}

function outcomes(results: readonly IpvsOpResult[]): Outcome[] {
  return results.map((r) => (r.ok ? 'ok' : r.error.code));
}

function assertAllOk(results: readonly IpvsOpResult[]): void {
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(
    failed.map((r) => (r.ok ? '' : r.error.message)),
    [],
    'every op should succeed',
  );
}

/** The parts of a virtual server the contract pins down (stats only as "no traffic yet"). */
function vsView(v: ObservedVirtualServer): Record<string, unknown> {
  return {
    family: v.family,
    protocol: v.protocol,
    address: v.address,
    port: v.port,
    scheduler: v.scheduler,
    flags: v.flags,
    timeout: v.timeout,
    netmask: v.netmask,
    fwmark: v.fwmark,
    conns: v.stats.conns,
  };
}

function rsView(r: ObservedRealServer): Record<string, unknown> {
  return {
    family: r.family,
    address: r.address,
    port: r.port,
    weight: r.weight,
    forward: r.forward,
    upperThreshold: r.upperThreshold,
    lowerThreshold: r.lowerThreshold,
    activeConns: r.activeConns,
    inactiveConns: r.inactiveConns,
    persistConns: r.persistConns,
  };
}

function byKey<T extends Record<string, unknown>>(xs: T[]): T[] {
  const key = (x: T): string => JSON.stringify([x['family'], x['protocol'], x['address'], x['port']]);
  return [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

async function services(b: IpvsBackend): Promise<Record<string, unknown>[]> {
  return byKey((await b.listServices()).map(vsView));
}

async function realServers(b: IpvsBackend, vs: IpvsServiceSpec | ObservedVirtualServer): Promise<Record<string, unknown>[]> {
  return byKey((await b.listRealServers(vs)).map(rsView));
}

/** What a fresh virtual server reads back as. */
function expectedVs(vs: IpvsServiceSpec, canonicalAddress = vs.address): Record<string, unknown> {
  return {
    family: vs.family,
    protocol: vs.protocol,
    address: canonicalAddress,
    port: vs.port,
    scheduler: vs.scheduler,
    flags: vs.flags & ~VsFlag.HASHED,
    timeout: vs.timeout,
    netmask: vs.netmask ?? (vs.family === 'IPv4' ? 0xffffffff : 128),
    fwmark: undefined,
    conns: 0,
  };
}

function expectedRs(rs: IpvsDestSpec, family = rs.address.includes(':') ? 'IPv6' : 'IPv4'): Record<string, unknown> {
  return {
    family,
    address: rs.address,
    port: rs.port,
    weight: rs.weight,
    forward: rs.forward,
    upperThreshold: rs.upperThreshold ?? 0,
    lowerThreshold: rs.lowerThreshold ?? 0,
    activeConns: 0,
    inactiveConns: 0,
    persistConns: 0,
  };
}

/** Registers the contract tests for one backend; `make` is called once per test. */
export function ipvsContract(name: string, make: () => Promise<IpvsBackend>): void {
  /** A backend on an empty table, flushed and closed again afterwards whatever happens. */
  async function withBackend(fn: (b: IpvsBackend) => Promise<void>): Promise<void> {
    const b = await make();
    try {
      await b.flush();
      await fn(b);
    } finally {
      try {
        await b.flush();
      } finally {
        b.close();
      }
    }
  }

  describe(`IPVS backend contract: ${name}`, () => {
    it('starts empty after flush; a missing virtual server has no real servers', () =>
      withBackend(async (b) => {
        assert.deepEqual(await b.listServices(), []);
        assert.deepEqual(await b.listRealServers(service('10.96.0.1', 80)), []);
      }));

    it('adds TCP, UDP and SCTP virtual servers for IPv4 and IPv6 and reads them back canonically', () =>
      withBackend(async (b) => {
        const specs: IpvsServiceSpec[] = [];
        for (const protocol of ['TCP', 'UDP', 'SCTP'] as const) {
          specs.push(service('10.96.0.10', 53, { protocol }));
          specs.push(service('FD00:10:96:0:0::A', 53, { protocol, scheduler: 'wrr' }));
        }
        assertAllOk(await b.apply(specs.map((vs): IpvsOp => ({ kind: 'addService', vs }))));
        assert.deepEqual(
          await services(b),
          byKey(specs.map((vs) => expectedVs(vs, vs.family === 'IPv6' ? 'fd00:10:96::a' : vs.address))),
        );
        // Same address and port, different protocol: three distinct virtual servers per family.
        assert.equal((await b.listServices()).length, 6);
      }));

    it('updates scheduler, persistence and netmask in place', () =>
      withBackend(async (b) => {
        const vs = service('10.96.0.20', 443);
        const vs6 = service('fd00::20', 443);
        assertAllOk(await b.apply([
          { kind: 'addService', vs },
          { kind: 'addService', vs: vs6 },
        ]));
        const sticky = { ...vs, scheduler: 'wrr', flags: VsFlag.PERSISTENT, timeout: 10800, netmask: 0xffffff00 };
        const sticky6 = { ...vs6, scheduler: 'lc', flags: VsFlag.PERSISTENT, timeout: 60, netmask: 64 };
        assertAllOk(await b.apply([
          { kind: 'updateService', vs: sticky },
          { kind: 'updateService', vs: sticky6 },
        ]));
        assert.deepEqual(await services(b), byKey([expectedVs(sticky), expectedVs(sticky6)]));
        assertAllOk(await b.apply([{ kind: 'updateService', vs }]));
        assert.deepEqual(await services(b), byKey([expectedVs(vs), expectedVs(sticky6)]));
      }));

    it('keeps scheduler flags (mh with mh-port 0x10, sh with fallback and port) and never reports HASHED', () =>
      withBackend(async (b) => {
        const mh = service('10.96.0.30', 80, { scheduler: 'mh', flags: VsFlag.SCHED2 });
        const sh = service('10.96.0.31', 80, { scheduler: 'sh', flags: VsFlag.SCHED1 | VsFlag.SCHED2 });
        // HASHED is the kernel's bit: asking for it must not make it visible.
        const hashed = service('10.96.0.32', 80, { flags: VsFlag.PERSISTENT | VsFlag.HASHED, timeout: 300 });
        assertAllOk(await b.apply([mh, sh, hashed].map((vs): IpvsOp => ({ kind: 'addService', vs }))));
        const got = await b.listServices();
        for (const v of got) assert.equal(v.flags & VsFlag.HASHED, 0, `${v.address} reports HASHED`);
        assert.deepEqual(await services(b), byKey([expectedVs(mh), expectedVs(sh), expectedVs(hashed)]));
        assert.equal(got.find((v) => v.address === '10.96.0.30')?.flags, 0x10);
      }));

    it('adds masquerade real servers, sets weight 0 and thresholds, deletes them', () =>
      withBackend(async (b) => {
        const vs = service('10.96.0.40', 80);
        const vs6 = service('fd00::40', 80, { protocol: 'UDP' });
        const r1 = dest('10.244.1.5', 8080);
        const r2 = dest('10.244.2.5', 8080);
        const r6 = dest('fd00:10:244::5', 8080);
        assertAllOk(await b.apply([
          { kind: 'addService', vs },
          { kind: 'addService', vs: vs6 },
          { kind: 'addDest', vs, rs: r1 },
          { kind: 'addDest', vs, rs: r2 },
          { kind: 'addDest', vs: vs6, rs: r6 },
        ]));
        assert.deepEqual(await realServers(b, vs), byKey([expectedRs(r1), expectedRs(r2)]));
        assert.deepEqual(await realServers(b, vs6), [expectedRs(r6)]);

        // Graceful termination: weight 0 keeps the real server but stops new connections.
        const drained = { ...r1, weight: 0 };
        const limited = { ...r2, weight: 5, upperThreshold: 100, lowerThreshold: 10 };
        assertAllOk(await b.apply([
          { kind: 'updateDest', vs, rs: drained },
          { kind: 'updateDest', vs, rs: limited },
        ]));
        assert.deepEqual(await realServers(b, vs), byKey([expectedRs(drained), expectedRs(limited)]));

        assertAllOk(await b.apply([
          { kind: 'deleteDest', vs, rs: r1 },
          { kind: 'deleteDest', vs: vs6, rs: r6 },
        ]));
        assert.deepEqual(await realServers(b, vs), [expectedRs(limited)]);
        assert.deepEqual(await realServers(b, vs6), []);
        // Listing by an observed virtual server works as well as by a spec.
        const observed = (await b.listServices()).find((v) => v.address === '10.96.0.40');
        assert.ok(observed);
        assert.deepEqual(await realServers(b, observed), [expectedRs(limited)]);
      }));

    it('accepts a real server of the other family only with tunnel forwarding', () =>
      withBackend(async (b) => {
        const vs = service('10.96.0.50', 80);
        const tun = dest('fd00:10:244::50', 80, { forward: 'tunnel' });
        const rs = await b.apply([
          { kind: 'addService', vs },
          { kind: 'addDest', vs, rs: dest('fd00:10:244::51', 80) },
          { kind: 'addDest', vs, rs: tun },
        ]);
        assert.deepEqual(outcomes(rs), ['ok', 'EINVAL', 'ok']);
        assert.deepEqual(await realServers(b, vs), [expectedRs(tun, 'IPv6')]);
      }));

    it('deleting a virtual server deletes its real servers', () =>
      withBackend(async (b) => {
        const vs = service('10.96.0.60', 80);
        assertAllOk(await b.apply([
          { kind: 'addService', vs },
          { kind: 'addDest', vs, rs: dest('10.244.1.6', 80) },
          { kind: 'addDest', vs, rs: dest('10.244.1.7', 80) },
          { kind: 'deleteService', vs },
        ]));
        assert.deepEqual(await b.listServices(), []);
        assert.deepEqual(await b.listRealServers(vs), []);
        assertAllOk(await b.apply([{ kind: 'addService', vs }]));
        assert.deepEqual(await b.listRealServers(vs), [], 'a re-created virtual server starts without real servers');
      }));

    it('refuses with the kernel errno codes, one result per op, and runs the rest of the batch', () =>
      withBackend(async (b) => {
        const a = service('10.96.0.70', 80);
        const missing = service('10.96.0.71', 80);
        const d = service('10.96.0.72', 80, { protocol: 'UDP' });
        const r1 = dest('10.244.7.1', 80);
        const r2 = dest('10.244.7.2', 80);
        const ops: IpvsOp[] = [
          { kind: 'addService', vs: a },
          { kind: 'addService', vs: a },
          { kind: 'updateService', vs: missing },
          { kind: 'deleteService', vs: missing },
          { kind: 'addDest', vs: missing, rs: r1 },
          { kind: 'updateDest', vs: missing, rs: r1 },
          { kind: 'deleteDest', vs: missing, rs: r1 },
          { kind: 'addService', vs: { ...missing, scheduler: 'nosuch' } },
          { kind: 'updateService', vs: { ...a, scheduler: 'nosuch' } },
          { kind: 'addDest', vs: a, rs: r1 },
          { kind: 'addDest', vs: a, rs: r1 },
          { kind: 'updateDest', vs: a, rs: r2 },
          { kind: 'deleteDest', vs: a, rs: r2 },
          { kind: 'addDest', vs: a, rs: { ...r2, weight: -1 } },
          { kind: 'updateDest', vs: a, rs: { ...r1, weight: -1 } },
          { kind: 'addDest', vs: a, rs: { ...r2, upperThreshold: 5, lowerThreshold: 10 } },
          { kind: 'addDest', vs: a, rs: dest('fd00:10:244::7', 80) },
          { kind: 'addService', vs: d },
        ];
        const results = await b.apply(ops);
        assert.equal(results.length, ops.length);
        assert.deepEqual(outcomes(results), [
          'ok',
          'EEXIST',
          'ESRCH',
          'ESRCH',
          'ESRCH',
          'ESRCH',
          'ESRCH',
          'ENOENT',
          'ENOENT',
          'ok',
          'EEXIST',
          'ENOENT',
          'ENOENT',
          'ERANGE',
          'ERANGE',
          'ERANGE',
          'EINVAL',
          'ok',
        ]);
        results.forEach((r, i) => {
          assert.equal(r.op, ops[i], 'results are in op order and carry their op');
          if (r.ok) return;
          assert.ok(r.error instanceof IpvsError);
          assert.equal(r.error.op, r.op.kind);
          assert.ok(r.error.errno > 0, `${r.error.code} has its errno`);
        });
        const err = (i: number): unknown => {
          const r = results[i];
          return r && !r.ok ? r.error : undefined;
        };
        assert.ok(isAlreadyExists(err(1)) && isAlreadyExists(err(10)));
        assert.ok(isNotFound(err(2)) && isNotFound(err(4)) && isNotFound(err(11)) && isNotFound(err(12)));
        assert.ok(!isNotFound(err(7)), 'an unknown scheduler is not "not found"');

        // Failed ops changed nothing.
        assert.deepEqual(await services(b), byKey([expectedVs(a), expectedVs(d)]));
        assert.deepEqual(await realServers(b, a), [expectedRs(r1)]);
      }));

    it('applies a 200-op batch and undoes it with another', () =>
      withBackend(async (b) => {
        const add: IpvsOp[] = [];
        const undo: IpvsOp[] = [];
        const specs: IpvsServiceSpec[] = [];
        for (let i = 0; i < 20; i++) {
          const vs = service(`10.96.1.${i + 1}`, 80 + i, { protocol: i % 2 === 0 ? 'TCP' : 'UDP' });
          specs.push(vs);
          add.push({ kind: 'addService', vs });
          for (let j = 0; j < 9; j++) {
            const rs = dest(`10.244.${i}.${j + 10}`, 8080);
            add.push({ kind: 'addDest', vs, rs });
            if (j < 4) undo.push({ kind: 'updateDest', vs, rs: { ...rs, weight: 0 } });
            else undo.push({ kind: 'deleteDest', vs, rs });
          }
        }
        assert.equal(add.length, 200);
        assertAllOk(await b.apply(add));
        assert.deepEqual(await services(b), byKey(specs.map((vs) => expectedVs(vs))));
        for (const vs of specs) assert.equal((await b.listRealServers(vs)).length, 9);

        for (const vs of specs) undo.push({ kind: 'deleteService', vs });
        assert.equal(undo.length, 200);
        assertAllOk(await b.apply(undo));
        assert.deepEqual(await b.listServices(), []);
      }));

    it('sets and reads the global timeouts; 0 leaves a timeout unchanged', () =>
      withBackend(async (b) => {
        const before = await b.getTimeouts();
        try {
          await b.setTimeouts({ tcp: 1000, tcpFin: 100, udp: 200 });
          assert.deepEqual(await b.getTimeouts(), { tcp: 1000, tcpFin: 100, udp: 200 });
          await b.setTimeouts({ tcp: 0, tcpFin: 0, udp: 250 });
          assert.deepEqual(await b.getTimeouts(), { tcp: 1000, tcpFin: 100, udp: 250 });
        } finally {
          await b.setTimeouts(before);
        }
      }));

    it('lists every virtual server\'s real servers in one read, as the per-service dumps show them', () =>
      withBackend(async (b) => {
        const tcp = service('10.96.0.90', 80, { flags: VsFlag.PERSISTENT, timeout: 10800 });
        const udp6 = service('fd00::90', 53, { protocol: 'UDP' });
        const sctp = service('10.96.0.91', 3868, { protocol: 'SCTP', scheduler: 'wrr' });
        const empty = service('10.96.0.92', 443);
        const marked = { ...service('0.0.0.0', 0), fwmark: 7 };
        assertAllOk(await b.apply([
          { kind: 'addService', vs: tcp },
          { kind: 'addService', vs: udp6 },
          { kind: 'addService', vs: sctp },
          { kind: 'addService', vs: empty },
          { kind: 'addService', vs: marked },
          { kind: 'addDest', vs: tcp, rs: dest('10.244.9.1', 8080) },
          { kind: 'addDest', vs: tcp, rs: dest('10.244.9.2', 8080, { weight: 0 }) },
          { kind: 'addDest', vs: tcp, rs: dest('fd00:10:244::9', 8080, { forward: 'tunnel' }) },
          { kind: 'addDest', vs: udp6, rs: dest('fd00:10:244::10', 5353, { weight: 3 }) },
          { kind: 'addDest', vs: sctp, rs: dest('10.244.9.3', 3868, { forward: 'route' }) },
          { kind: 'addDest', vs: marked, rs: dest('10.244.9.4', 80) },
        ]));
        const listed = allRealServers(await b.listRealServerBlocks());
        const view = (r: Pick<ObservedRealServer, 'family' | 'address' | 'port' | 'weight' | 'forward' | 'activeConns' | 'inactiveConns'>) => ({ family: r.family, address: r.address, port: r.port, weight: r.weight, forward: r.forward, activeConns: r.activeConns, inactiveConns: r.inactiveConns });
        assert.deepEqual([...listed.keys()].sort(), ['10.96.0.90:80/TCP', '10.96.0.91:3868/SCTP', '10.96.0.92:443/TCP', '[fd00::90]:53/UDP'], 'fwmark services are not listed');
        for (const vs of [tcp, udp6, sctp, empty]) {
          const key = [...listed.keys()].find((k) => k.startsWith(vs.family === 'IPv6' ? `[${vs.address}]:${vs.port}/` : `${vs.address}:${vs.port}/`));
          assert.ok(key, vs.address);
          assert.deepEqual(byKey((listed.get(key) ?? []).map(view)), byKey((await b.listRealServers(vs)).map(view)), key);
        }
        assert.equal(listed.get('10.96.0.90:80/TCP')?.length, 3);
        // The same read in blocks: the same servers; a fingerprint that holds until a weight changes.
        const blocks = await b.listRealServerBlocks();
        assert.deepEqual(new Map([...blocks].map(([k, v]) => [k, v.servers().map(view)])), new Map([...listed].map(([k, v]) => [k, v.map(view)])));
        const before = (await b.listRealServerBlocks()).get('10.96.0.90:80/TCP')?.fingerprint;
        assert.equal(before, blocks.get('10.96.0.90:80/TCP')?.fingerprint);
        assertAllOk(await b.apply([{ kind: 'updateDest', vs: tcp, rs: dest('10.244.9.2', 8080, { weight: 4 }) }]));
        const after = await b.listRealServerBlocks();
        assert.notEqual(after.get('10.96.0.90:80/TCP')?.fingerprint, before);
        assert.equal(after.get('[fd00::90]:53/UDP')?.fingerprint, blocks.get('[fd00::90]:53/UDP')?.fingerprint);
      }));

    it('flush removes every virtual server', () =>
      withBackend(async (b) => {
        const vs = service('10.96.0.80', 80);
        assertAllOk(await b.apply([
          { kind: 'addService', vs },
          { kind: 'addService', vs: service('fd00::80', 80) },
          { kind: 'addDest', vs, rs: dest('10.244.8.1', 80) },
        ]));
        await b.flush();
        assert.deepEqual(await b.listServices(), []);
        assert.deepEqual(await b.listRealServers(vs), []);
      }));
  });
}
