// The fake IPVS table: the shared contract, plus what only the fake has (test hooks, dump/load,
// the no-route mode and fault injection).
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { IpvsOp, IpvsOpResult } from '../../../src/dataplane/ipvs/backend.js';
import { IpvsError } from '../../../src/dataplane/ipvs/errors.js';
import { FakeIpvs } from '../../../src/dataplane/ipvs/fake.js';
import type { IpvsDestSpec, IpvsServiceSpec } from '../../../src/dataplane/ipvs/netlink-codec.js';
import { TextParseError } from '../../../src/model/text/error.js';
import { VsFlag } from '../../../src/model/kernel.js';
import { ipvsContract } from './contract.js';

ipvsContract('fake', () => Promise.resolve(new FakeIpvs()));

const vs: IpvsServiceSpec = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.1', port: 443, scheduler: 'rr', flags: 0, timeout: 0 };
const vs6: IpvsServiceSpec = { family: 'IPv6', protocol: 'UDP', address: 'fd00::a', port: 53, scheduler: 'mh', flags: VsFlag.SCHED2, timeout: 0 };
const rs: IpvsDestSpec = { address: '10.244.1.5', port: 6443, weight: 1, forward: 'masq' };
const rs6: IpvsDestSpec = { address: 'fd00:10:244::5', port: 53, weight: 1, forward: 'masq' };

function codes(results: readonly IpvsOpResult[]): string[] {
  return results.map((r) => (r.ok ? 'ok' : r.error.code));
}

describe('FakeIpvs', () => {
  it('refuses every new IPv4 real server (any forwarding) with EINVAL when the host has no route', async () => {
    const f = new FakeIpvs({ hasRoute: false });
    const r = await f.apply([
      { kind: 'addService', vs },
      { kind: 'addService', vs: vs6 },
      { kind: 'addDest', vs, rs },
      { kind: 'addDest', vs, rs: { ...rs, address: '10.244.1.6', forward: 'route' } },
      { kind: 'addDest', vs: vs6, rs: rs6 },
    ]);
    assert.deepEqual(codes(r), ['ok', 'ok', 'EINVAL', 'EINVAL', 'ok']);
    f.setHasRoute(true);
    assert.deepEqual(codes(await f.apply([{ kind: 'addDest', vs, rs }])), ['ok']);
  });

  it('refuses real server addresses the kernel does not take as unicast', async () => {
    const f = new FakeIpvs();
    const bad = ['0.0.0.0', '224.0.0.1', '255.255.255.255'].map((address): IpvsOp => ({ kind: 'addDest', vs, rs: { ...rs, address } }));
    const bad6 = ['::', 'ff02::1', 'fe80::1'].map((address): IpvsOp => ({ kind: 'addDest', vs: vs6, rs: { ...rs6, address } }));
    const r = await f.apply([{ kind: 'addService', vs }, { kind: 'addService', vs: vs6 }, ...bad, ...bad6]);
    assert.deepEqual(codes(r), ['ok', 'ok', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL']);
  });

  it('reports what the client would refuse to encode as EINVAL', async () => {
    const f = new FakeIpvs();
    const r = await f.apply([
      { kind: 'addService', vs: { ...vs, address: 'not-an-ip' } },
      { kind: 'addService', vs: { ...vs, family: 'IPv6' } },
      { kind: 'addService', vs: { ...vs, port: 70000 } },
      { kind: 'addService', vs: { ...vs6, netmask: 129 } },
      { kind: 'addService', vs: { ...vs, scheduler: 'a-very-long-scheduler' } },
    ]);
    assert.deepEqual(codes(r), ['EINVAL', 'EINVAL', 'EINVAL', 'EINVAL', 'EINVAL']);
  });

  it('accepts the "none" scheduler and every upstream scheduler, unless told a module is missing', async () => {
    const f = new FakeIpvs({ schedulers: ['rr'] });
    const r = await f.apply([
      { kind: 'addService', vs: { ...vs, scheduler: 'none' } },
      { kind: 'addService', vs: { ...vs, port: 1, scheduler: 'rr' } },
      { kind: 'addService', vs: { ...vs, port: 2, scheduler: 'twos' } },
      { kind: 'addService', vs: { ...vs, port: 3, peName: 'sip' } },
      { kind: 'addService', vs: { ...vs, port: 4, peName: 'nope' } },
    ]);
    assert.deepEqual(codes(r), ['ok', 'ok', 'ENOENT', 'ok', 'ENOENT']);
    assert.equal((await f.listServices()).find((v) => v.port === 3)?.peName, 'sip');
  });

  it('setConnections shows draining connections on a real server', async () => {
    const f = new FakeIpvs();
    await f.apply([
      { kind: 'addService', vs: vs6 },
      { kind: 'addDest', vs: vs6, rs: rs6 },
      { kind: 'updateDest', vs: vs6, rs: { ...rs6, weight: 0 } },
    ]);
    f.setConnections('[fd00::a]:53/UDP', '[fd00:10:244::5]:53', { active: 2, inactive: 3, persist: 1 });
    const [r] = await f.listRealServers(vs6);
    assert.deepEqual([r?.weight, r?.activeConns, r?.inactiveConns, r?.persistConns], [0, 2, 3, 1]);
    // An update keeps the counters (they belong to connections, not to the settings).
    await f.apply([{ kind: 'updateDest', vs: vs6, rs: { ...rs6, weight: 3 } }]);
    assert.equal((await f.listRealServers(vs6))[0]?.activeConns, 2);
    f.setConnections(vs6, rs6, { active: 0, inactive: 0, persist: 0 });
    assert.equal((await f.listRealServers(vs6))[0]?.activeConns, 0);
    assert.throws(() => f.setConnections('10.9.9.9:1/TCP', rs6, { active: 1, inactive: 0, persist: 0 }), /no virtual server/);
    assert.throws(() => f.setConnections(vs6, '[fd00::99]:1', { active: 1, inactive: 0, persist: 0 }), /no real server/);
  });

  it('setStats changes the counters of a virtual or real server', async () => {
    const f = new FakeIpvs();
    await f.apply([{ kind: 'addService', vs }, { kind: 'addDest', vs, rs }]);
    f.setStats(vs, undefined, { conns: 7 });
    f.setStats(vs, rs, { inpkts: 9 });
    assert.equal((await f.listServices())[0]?.stats.conns, 7);
    assert.equal((await f.listRealServers(vs))[0]?.stats.inpkts, 9);
  });

  it('dumps ipvsadm -Sn text and loads it back', async () => {
    const f = new FakeIpvs();
    await f.apply([
      { kind: 'addService', vs: vs6 },
      { kind: 'addDest', vs: vs6, rs: rs6 },
      { kind: 'addService', vs: { ...vs, flags: VsFlag.PERSISTENT, timeout: 10800 } },
      { kind: 'addDest', vs, rs: { ...rs, address: '10.244.2.5' } },
      { kind: 'addDest', vs, rs: { ...rs, weight: 0 } },
    ]);
    const text = [
      '-A -t 10.96.0.1:443 -s rr -p 10800',
      '-a -t 10.96.0.1:443 -r 10.244.1.5:6443 -m -w 0',
      '-a -t 10.96.0.1:443 -r 10.244.2.5:6443 -m -w 1',
      '-A -u [fd00::a]:53 -s mh -b mh-port',
      '-a -u [fd00::a]:53 -r [fd00:10:244::5]:53 -m -w 1',
      '',
    ].join('\n');
    assert.equal(f.dump(), text);
    const g = new FakeIpvs();
    g.load(text);
    assert.equal(g.dump(), text);
    assert.deepEqual(await g.listServices(), await f.listServices());
    assert.deepEqual(await g.listRealServers(vs), await f.listRealServers(vs));
    g.load('');
    assert.deepEqual(await g.listServices(), []);
  });

  it('load refuses what the kernel or the parser would and keeps the old table', async () => {
    const f = new FakeIpvs();
    f.load('-A -t 10.0.0.1:80 -s rr\n');
    const before = f.dump();
    assert.throws(() => f.load('-A -t 10.0.0.2:80 -s nosuch\n'), (e: unknown) => e instanceof IpvsError && e.code === 'ENOENT');
    assert.throws(() => f.load('-A -t 10.0.0.2:80 -s rr\n-a -t 10.0.0.2:80 -r [fd00::1]:80 -m -w 1\n'), (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL');
    assert.throws(() => f.load('-X nonsense\n'), TextParseError);
    assert.equal(f.dump(), before);
  });

  it('supports firewall-mark virtual servers (left out of dump)', async () => {
    const f = new FakeIpvs();
    const mark: IpvsServiceSpec = { ...vs, fwmark: 7 };
    const r = await f.apply([
      { kind: 'addService', vs: mark },
      { kind: 'addService', vs: { ...mark, address: '10.1.1.1' } },
      { kind: 'addDest', vs: mark, rs },
    ]);
    assert.deepEqual(codes(r), ['ok', 'EEXIST', 'ok']);
    const [got] = await f.listServices();
    assert.deepEqual([got?.fwmark, got?.address, got?.port], [7, '', 0]);
    assert.equal((await f.listRealServers(mark)).length, 1);
    assert.equal(f.dump(), '');
  });

  it('returns copies: changing what it listed does not change the table', async () => {
    const f = new FakeIpvs();
    await f.apply([{ kind: 'addService', vs }]);
    const [got] = await f.listServices();
    assert.ok(got);
    (got as { scheduler: string }).scheduler = 'wlc';
    assert.equal((await f.listServices())[0]?.scheduler, 'rr');
  });

  it('fails everything with CLOSED after close()', async () => {
    const f = new FakeIpvs();
    f.close();
    await assert.rejects(f.listServices(), (e: unknown) => e instanceof IpvsError && e.code === 'CLOSED');
    assert.deepEqual(codes(await f.apply([{ kind: 'addService', vs }])), ['CLOSED']);
  });

  it('rejects timeouts the client would not send', async () => {
    const f = new FakeIpvs();
    await assert.rejects(f.setTimeouts({ tcp: -1, tcpFin: 0, udp: 0 }), (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL');
    assert.deepEqual(await f.getTimeouts(), { tcp: 900, tcpFin: 120, udp: 300 });
  });

  describe('faults', () => {
    function batch(): IpvsOp[] {
      const ops: IpvsOp[] = [];
      for (let i = 0; i < 50; i++) {
        const v = { ...vs, port: 1000 + i };
        ops.push({ kind: 'addService', vs: v }, { kind: 'addDest', vs: v, rs }, { kind: 'addDest', vs: v, rs: { ...rs, address: '10.244.9.9' } });
      }
      return ops;
    }

    it('fails a seeded share of ops without applying them, the same way for the same seed', async () => {
      const a = new FakeIpvs({ faults: { rate: 0.3, seed: 42 } });
      const b = new FakeIpvs({ faults: { rate: 0.3, seed: 42 } });
      const ra = await a.apply(batch());
      const rb = await b.apply(batch());
      assert.deepEqual(codes(ra), codes(rb));
      const injected = ra.filter((r) => !r.ok && r.error.code === 'UNKNOWN');
      assert.ok(injected.length > 20 && injected.length < 70, `about 30% of 150 failed, got ${injected.length}`);
      assert.equal(a.injectedFaults, injected.length);
      for (const r of injected) assert.ok(!r.ok && r.error instanceof IpvsError && r.error.errno === 5);
      // A dest whose service add failed reports ESRCH, as the kernel would.
      assert.ok(ra.some((r) => !r.ok && r.error.code === 'ESRCH'));
      const c = new FakeIpvs({ faults: { rate: 0.3, seed: 7 } });
      assert.notDeepEqual(codes(await c.apply(batch())), codes(ra));
    });

    it('converges when the failed ops are retried', async () => {
      const clean = new FakeIpvs();
      await clean.apply(batch());
      const f = new FakeIpvs({ faults: { rate: 0.5, seed: 1 } });
      let todo = batch();
      for (let round = 0; round < 50 && todo.length > 0; round++) {
        const results = await f.apply(todo);
        todo = results.filter((r) => !r.ok).map((r) => r.op);
      }
      assert.deepEqual(todo, []);
      assert.equal(f.dump(), clean.dump());
    });

    it('rate 1 fails every op; setFaults(undefined) stops it', async () => {
      const f = new FakeIpvs({ faults: { rate: 1, seed: 3 } });
      assert.deepEqual(codes(await f.apply([{ kind: 'addService', vs }])), ['UNKNOWN']);
      assert.deepEqual(await f.listServices(), []);
      f.setFaults(undefined);
      assert.deepEqual(codes(await f.apply([{ kind: 'addService', vs }])), ['ok']);
      assert.throws(() => f.setFaults({ rate: 2, seed: 1 }), RangeError);
    });
  });
});
