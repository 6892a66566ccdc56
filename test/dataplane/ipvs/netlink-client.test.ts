// The client against a fake kernel transport: error classes, batching within the datagram budget,
// sequence matching, family (re-)resolution and module loading.
import { strict as assert } from 'node:assert';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';
import type { VirtualServer } from '../../../src/model/kernel.js';
import { VsFlag } from '../../../src/model/kernel.js';
import { IpvsError, isAlreadyExists, isNotFound, isUnavailable } from '../../../src/dataplane/ipvs/errors.js';
import type { IpvsOp } from '../../../src/dataplane/ipvs/netlink-client.js';
import { IpvsNetlinkClient } from '../../../src/dataplane/ipvs/netlink-client.js';
import { FakeIpvsKernel } from './fake-kernel.js';

const vs4: VirtualServer = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.1', port: 443, scheduler: 'rr', flags: 0, timeout: 0 };
const vs6: VirtualServer = { family: 'IPv6', protocol: 'UDP', address: 'fd00:10:96::a', port: 53, scheduler: 'mh', flags: VsFlag.SCHED2, timeout: 0 };
const rs = { address: '10.244.1.5', port: 6443, weight: 1, forward: 'masq' } as const;

function setup(opts: { loaded?: boolean; timeoutMs?: number; batchBytes?: number } = {}): {
  kernel: FakeIpvsKernel;
  client: IpvsNetlinkClient;
  modprobes: string[];
} {
  const kernel = new FakeIpvsKernel();
  kernel.loaded = opts.loaded ?? true;
  const modprobes: string[] = [];
  const client = new IpvsNetlinkClient({
    transport: kernel,
    timeoutMs: opts.timeoutMs ?? 2000,
    ...(opts.batchBytes ? { batchBytes: opts.batchBytes } : {}),
    modprobe: (m) => {
      modprobes.push(m);
      return Promise.resolve();
    },
  });
  return { kernel, client, modprobes };
}

async function rejects(p: Promise<unknown>, code: string, check?: (e: IpvsError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IpvsError, String(e));
    assert.equal(e.code, code, e.message);
    check?.(e);
    return true;
  });
}

describe('IpvsNetlinkClient (fake kernel)', { skip: endianness() !== 'LE' ? 'fake kernel is little-endian' : false }, () => {
  it('lists setups without counters that follow every change, as listServices does', async () => {
    const { client } = setup();
    const setups = async () => (await client.listServices()).map(({ stats: _stats, ...setup }) => setup);
    await client.addService(vs4);
    await client.addService({ ...vs6, peName: 'sip' });
    await client.addService({ ...vs4, port: 80 });
    const first = await client.listServiceSetups();
    assert.equal(first.length, 3);
    assert.deepEqual(first, await setups());
    assert.deepEqual(await client.listServiceSetups(), first, 'read again while the counters moved');
    await client.updateService({ ...vs4, scheduler: 'wrr', flags: VsFlag.PERSISTENT, timeout: 60 });
    const changed = await client.listServiceSetups();
    assert.deepEqual(changed, await setups());
    assert.deepEqual(
      changed.filter((s) => s.port === 443).map((s) => [s.scheduler, s.flags, s.timeout]),
      [['wrr', VsFlag.PERSISTENT, 60]],
    );
    await client.deleteService(vs6);
    await client.addService({ ...vs4, port: 8443, scheduler: 'sh' });
    assert.deepEqual(await client.listServiceSetups(), await setups());
  });

  it('reads a dump the kernel flags interrupted again from its start, for every listing', async () => {
    const { kernel, client } = setup();
    await client.addService(vs4);
    await client.addService(vs6);
    await client.addDestination(vs4, rs);
    const services = await client.listServices();
    const setups = await client.listServiceSetups();
    const dests = await client.listDestinations(vs4);
    assert.equal(services.length, 2);
    assert.equal(dests.length, 1);
    kernel.interruptDumps = 1;
    assert.deepEqual((await client.listServices()).map(({ stats: _s, ...rest }) => rest), services.map(({ stats: _s, ...rest }) => rest));
    kernel.interruptDumps = 1;
    assert.deepEqual(await client.listServiceSetups(), setups);
    kernel.interruptDumps = 1;
    assert.deepEqual((await client.listDestinations(vs4)).map(({ stats: _s, ...rest }) => rest), dests.map(({ stats: _s, ...rest }) => rest));
    assert.equal(kernel.interruptDumps, 0, 'each interrupted dump was read');
  });

  it('before its first dump, sends one request IPVS refuses, 32 KB, so later dumps come in 32 KB datagrams', async () => {
    const { kernel, client } = setup();
    await client.addService(vs4);
    const before = kernel.datagrams.length;
    assert.equal((await client.listServices()).length, 1);
    await client.listDestinations(vs4);
    await client.listServices();
    const large = kernel.datagrams.slice(before).filter((d) => d.bytes >= 32 * 1024);
    assert.deepEqual(large, [{ messages: 1, bytes: 32 * 1024 }], 'one refused request, once per socket');
    assert.equal(kernel.refusedCommands, 1, 'IPVS has no command 0: EOPNOTSUPP');
  });

  it('creates, lists, updates and deletes services and destinations', async () => {
    const { client } = setup();
    await client.addService(vs4);
    await client.addService({ ...vs6, peName: 'sip' });
    await client.addDestination(vs4, rs);
    await client.addDestination(vs4, { ...rs, address: '10.244.2.7', weight: 0, upperThreshold: 10, lowerThreshold: 2 });
    const services = await client.listServices();
    assert.equal(services.length, 2);
    const got4 = services.find((s) => s.family === 'IPv4');
    assert.deepEqual(
      { ...got4, stats: undefined },
      { ...vs4, netmask: 0xffffffff, stats: undefined },
      'HASHED is stripped, identity and netmask read back',
    );
    assert.equal(got4?.stats.conns, 1);
    const got6 = services.find((s) => s.family === 'IPv6');
    assert.equal(got6?.address, 'fd00:10:96::a');
    assert.equal(got6?.flags, VsFlag.SCHED2);
    assert.equal(got6?.netmask, 128);
    assert.equal(got6?.peName, 'sip');

    const dests = await client.listDestinations(vs4);
    assert.deepEqual(
      dests.map((d) => [d.address, d.port, d.weight, d.forward, d.upperThreshold, d.lowerThreshold, d.activeConns, d.inactiveConns]).sort(),
      [
        ['10.244.1.5', 6443, 1, 'masq', 0, 0, 1, 2],
        ['10.244.2.7', 6443, 0, 'masq', 10, 2, 1, 2],
      ],
    );
    await client.updateService({ ...vs4, scheduler: 'wrr', flags: VsFlag.PERSISTENT, timeout: 10800 });
    assert.deepEqual(
      (await client.getService(vs4)) && { ...(await client.getService(vs4)), stats: undefined },
      { ...vs4, scheduler: 'wrr', flags: VsFlag.PERSISTENT, timeout: 10800, netmask: 0xffffffff, stats: undefined },
    );
    await client.updateDestination(vs4, { ...rs, weight: 5 });
    assert.equal((await client.listDestinations(vs4)).find((d) => d.address === rs.address)?.weight, 5);
    await client.deleteDestination(vs4, rs);
    assert.equal((await client.listDestinations(vs4)).length, 1);
    await client.deleteService(vs4);
    assert.equal(await client.getService(vs4), undefined);
    assert.deepEqual(await client.listDestinations(vs4), [], 'a missing service dumps empty');
    client.close();
  });

  it('classifies kernel errors', async () => {
    const { client } = setup();
    await client.addService(vs4);
    await rejects(client.addService(vs4), 'EEXIST', (e) => {
      assert.ok(isAlreadyExists(e));
      assert.equal(e.errno, 17);
      assert.equal(e.op, 'addService');
      assert.equal(e.object, '10.96.0.1:443/TCP');
      assert.match(e.message, /already exists/);
    });
    await rejects(client.deleteService(vs6), 'ESRCH', (e) => assert.ok(isNotFound(e)));
    await rejects(client.updateService(vs6), 'ESRCH', (e) => assert.ok(isNotFound(e)));
    await rejects(client.addDestination(vs6, rs), 'ESRCH', (e) => assert.ok(isNotFound(e)));
    await rejects(client.deleteDestination(vs4, rs), 'ENOENT', (e) => {
      assert.ok(isNotFound(e));
      assert.match(e.message, /no such real server/);
    });
    await rejects(client.updateDestination(vs4, rs), 'ENOENT', (e) => assert.ok(isNotFound(e)));
    await client.addDestination(vs4, rs);
    await rejects(client.addDestination(vs4, rs), 'EEXIST', (e) => assert.ok(isAlreadyExists(e)));
    await rejects(client.updateDestination(vs4, { ...rs, weight: -1 }), 'ERANGE');
    await rejects(client.addService({ ...vs6, scheduler: 'nope' }), 'ENOENT', (e) => {
      assert.ok(!isNotFound(e), 'ENOENT on a service command is an unknown scheduler, not a missing object');
      assert.match(e.message, /scheduler/);
    });
    await rejects(client.addService({ ...vs4, address: 'bogus' }), 'EINVAL', (e) => assert.equal(e.op, 'addService'));
    client.close();
  });

  it('loads ip_vs when the family is missing, and says so when that does not help', async () => {
    const a = setup({ loaded: false });
    let calls = 0;
    const client = new IpvsNetlinkClient({
      transport: a.kernel,
      modprobe: (m) => {
        calls++;
        assert.equal(m, 'ip_vs');
        a.kernel.loaded = true;
        return Promise.resolve();
      },
    });
    assert.equal((await client.resolveFamily()).id, 32);
    assert.equal(calls, 1);
    client.close();

    const b = setup({ loaded: false });
    await rejects(b.client.listServices(), 'UNAVAILABLE', (e) => {
      assert.match(e.message, /modprobe ip_vs/);
      assert.ok(isUnavailable(e));
    });
    assert.deepEqual(b.modprobes, ['ip_vs']);
    b.client.close();
  });

  it('re-resolves the family id after ip_vs was reloaded', async () => {
    const { kernel, client } = setup();
    await client.addService(vs4);
    kernel.reload(40);
    assert.deepEqual(await client.listServices(), []);
    await client.addService(vs4);
    kernel.reload(41);
    const results = await client.applyBatch([
      { kind: 'addService', vs: vs4 },
      { kind: 'addDest', vs: vs4, rs },
    ]);
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true],
    );
    kernel.reload(42);
    await client.addService(vs6);
    kernel.loaded = false;
    await rejects(client.deleteService(vs6), 'UNAVAILABLE');
    client.close();
  });

  it('batches many ops per datagram within the byte budget, one result per op in order', async () => {
    const { kernel, client } = setup();
    const ops: IpvsOp[] = [];
    for (let i = 0; i < 300; i++) {
      const vs: VirtualServer = { ...vs4, address: `10.96.${i >> 8}.${i & 0xff}` };
      ops.push({ kind: 'addService', vs });
      for (let j = 0; j < 5; j++) ops.push({ kind: 'addDest', vs, rs: { ...rs, address: `10.244.${i >> 8}.${(i + j) & 0xff}` } });
    }
    ops.splice(10, 0, { kind: 'deleteService', vs: vs6 }); // fails with ESRCH in the middle
    ops.splice(20, 0, { kind: 'addService', vs: { ...vs4, address: '10.96.0.0' } }); // EEXIST (op 0 made it)
    ops.splice(30, 0, { kind: 'addService', vs: { ...vs4, address: 'x' } }); // never sent
    await client.resolveFamily();
    const sentBefore = kernel.datagrams.length;
    const results = await client.applyBatch(ops);
    assert.equal(results.length, ops.length);
    results.forEach((r, i) => assert.equal(r.op, ops[i]));
    const failed = results.flatMap((r, i) => (r.ok ? [] : [[i, r.error.code]]));
    assert.deepEqual(failed, [
      [10, 'ESRCH'],
      [20, 'EEXIST'],
      [30, 'EINVAL'],
    ]);
    const batches = kernel.datagrams.slice(sentBefore);
    assert.ok(batches.length > 1 && batches.length < 10, `datagrams: ${batches.length}`);
    assert.ok(batches.every((d) => d.bytes <= 64 * 1024));
    assert.equal(
      batches.reduce((n, d) => n + d.messages, 0),
      ops.length - 1,
    );
    assert.equal(kernel.services.size, 300);
    client.close();
  });

  it('asks one acknowledgement per datagram of writes and gives each failure to its own request', async () => {
    const { kernel, client } = setup();
    await client.addService(vs4);
    const before = kernel.errorMessages;
    const results = await client.applyBatch([
      { kind: 'addDest', vs: vs4, rs },
      { kind: 'addDest', vs: vs4, rs },
      { kind: 'deleteDest', vs: vs4, rs: { ...rs, port: 1 } },
      { kind: 'addDest', vs: vs4, rs: { ...rs, port: 2 } },
    ]);
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ok', 'EEXIST', 'ENOENT', 'ok'],
    );
    // The two failures' ERRORs, the group's one ACK and the ACK of the family lookup that an
    // ENOENT sets off (is the family id stale?): no acknowledgement per success.
    assert.equal(kernel.errorMessages - before, 4);
    assert.equal(kernel.services.size, 1);
    client.close();
  });

  it('a group whose acknowledgement is lost reports its requests as failed, not done', async () => {
    const { kernel, client } = setup({ batchBytes: 1024 });
    const ops: IpvsOp[] = Array.from({ length: 40 }, (_, i) => ({ kind: 'addService', vs: { ...vs4, port: 1000 + i } }));
    const results = await client.applyBatch(ops);
    assert.ok(results.every((r) => r.ok));
    assert.ok(kernel.datagrams.every((d) => d.bytes <= 1024));
    // Five deletes of services that are not there: five ERRORs, of which the receive buffer
    // (modelled as three messages) keeps three; the rest, and the group's ACK, are lost.
    kernel.ackLimit = 3;
    const missing: IpvsOp[] = Array.from({ length: 5 }, (_, i) => ({ kind: 'deleteService', vs: { ...vs4, port: 2000 + i } }));
    const r2 = await client.applyBatch(missing);
    assert.deepEqual(
      r2.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ESRCH', 'ESRCH', 'ESRCH', 'ENOBUFS', 'ENOBUFS'],
    );
    // A lost group ACK after successes: the kernel did delete them, but nothing says so.
    kernel.ackLimit = 0;
    const r3 = await client.applyBatch(ops.slice(0, 3).map((o) => ({ ...o, kind: 'deleteService' as const })));
    assert.deepEqual(
      r3.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ENOBUFS', 'ENOBUFS', 'ENOBUFS'],
    );
    client.close();
  });

  it('times out when the kernel stays silent, and fails in-flight requests on close', async () => {
    const { kernel, client } = setup({ timeoutMs: 50 });
    await client.resolveFamily();
    kernel.silent = true;
    await rejects(client.addService(vs4), 'ETIMEDOUT');
    const inflight = client.listServices();
    client.close();
    await rejects(inflight, 'CLOSED');
  });

  it('reads info and timeouts', async () => {
    const { client } = setup();
    assert.deepEqual(await client.getInfo(), { version: 0x010201, versionText: '1.2.1', connTableSize: 4096 });
    await client.setTimeouts({ tcp: 1200, udp: 0 });
    assert.deepEqual(await client.getTimeouts(), { tcp: 1200, tcpFin: 120, udp: 300 });
    await client.flush();
    await client.zero();
    client.close();
  });
});

describe('IpvsNetlinkClient (real netlink socket)', () => {
  it('talks to the genetlink controller: resolves IPVS, or reports UNAVAILABLE where ip_vs is absent', async () => {
    const client = new IpvsNetlinkClient({ modprobe: false, timeoutMs: 5000 });
    try {
      const family = await client.resolveFamily();
      assert.equal(family.name, 'IPVS');
      assert.ok(family.id >= 16);
    } catch (e) {
      assert.ok(e instanceof IpvsError, String(e));
      assert.equal(e.code, 'UNAVAILABLE', e.message);
      assert.match(e.message, /modprobe ip_vs/);
    } finally {
      client.close();
    }
  });
});
