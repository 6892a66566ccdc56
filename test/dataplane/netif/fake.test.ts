import { strict as assert } from 'node:assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isAlreadyExists, isNotFound } from '../../../src/dataplane/errors.js';
import { FakeNetif } from '../../../src/dataplane/netif/fake.js';
import { errnoCode, errnoFromPackageError, kernelRelease, validLinkName } from '../../../src/dataplane/netif/real.js';

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('FakeNetif', () => {
  it('starts with lo and the node interface', async () => {
    const n = new FakeNetif({ node: { name: 'ens3', addresses: ['10.0.0.4/24', 'fd00::4/64'] } });
    assert.deepEqual(
      (await n.addresses()).map((a) => [a.ifname, a.ifindex, a.family, a.address, a.prefix]),
      [
        ['lo', 1, 'IPv4', '127.0.0.1', 8],
        ['lo', 1, 'IPv6', '::1', 128],
        ['ens3', 2, 'IPv4', '10.0.0.4', 24],
        ['ens3', 2, 'IPv6', 'fd00::4', 64],
      ],
    );
    assert.deepEqual(await new FakeNetif().links(), [
      { name: 'lo', index: 1, kind: 'loopback' },
      { name: 'eth0', index: 2, kind: 'veth' },
    ]);
  });

  it('creates kube-ipvs0 once, binds and unbinds idempotently, in canonical text', async () => {
    const n = new FakeNetif();
    assert.deepEqual(await n.ensureDummy('kube-ipvs0'), { created: true });
    assert.deepEqual(await n.ensureDummy('kube-ipvs0'), { created: false });
    await n.bind('kube-ipvs0', '10.96.0.10');
    await n.bind('kube-ipvs0', '10.96.0.10');
    await n.bind('kube-ipvs0', 'FD00:0:0:0::10');
    const mine = (await n.addresses()).filter((a) => a.ifname === 'kube-ipvs0');
    assert.deepEqual(
      mine.map((a) => `${a.address}/${a.prefix}`),
      ['10.96.0.10/32', 'fd00::10/128'],
    );
    assert.equal(mine[0]?.ifindex, 3);
    await n.unbind('kube-ipvs0', 'fd00::10');
    await n.unbind('kube-ipvs0', 'fd00::10');
    assert.equal((await n.addresses()).filter((a) => a.ifname === 'kube-ipvs0').length, 1);
  });

  it('refuses what the kernel refuses, with the same codes', async () => {
    const n = new FakeNetif();
    assert.equal(await code(n.bind('kube-ipvs0', '10.96.0.10')), 'NOT_FOUND');
    assert.equal(await code(n.bind('eth0', '10.96.0.300')), 'INVALID');
    assert.equal(await code(n.ensureDummy('x'.repeat(16))), 'INVALID');
    assert.equal(await code(n.bind('a/b', '10.96.0.1')), 'INVALID');
    assert.equal(await code(new FakeNetif({ dummyAvailable: false }).ensureDummy('kube-ipvs0')), 'UNAVAILABLE');
    assert.equal(await code(n.unbind('kube-ipvs0', '10.96.0.10')), undefined);
    try {
      await n.bind('kube-ipvs0', '10.96.0.10');
    } catch (e) {
      assert.ok(isNotFound(e));
      assert.ok(!isAlreadyExists(e));
    }
  });

  it('deletes only dummy links, and their addresses with them', async () => {
    const n = new FakeNetif();
    assert.deepEqual(await n.deleteDummy('eth0'), { deleted: false });
    assert.deepEqual(await n.deleteDummy('kube-ipvs0'), { deleted: false });
    await n.ensureDummy('kube-ipvs0');
    await n.bind('kube-ipvs0', '10.96.0.1');
    assert.deepEqual(await n.deleteDummy('kube-ipvs0'), { deleted: true });
    assert.equal((await n.addresses()).some((a) => a.ifname === 'kube-ipvs0'), false);
    // Indexes are never reused, as in the kernel.
    await n.ensureDummy('kube-ipvs0');
    assert.equal((await n.link('kube-ipvs0'))?.index, 4);
  });

  it('unbind leaves a wider address with the same IP alone', async () => {
    const n = new FakeNetif({ node: { name: 'eth0', addresses: ['192.168.0.10/24'] } });
    await n.unbind('eth0', '192.168.0.10');
    assert.deepEqual(
      (await n.addresses()).filter((a) => a.ifname === 'eth0').map((a) => a.prefix),
      [24],
    );
  });

  it('batches report per-op results and commit each op on its own', async () => {
    const n = new FakeNetif();
    await n.ensureDummy('kube-ipvs0');
    const r = await n.bindMany([
      { dev: 'kube-ipvs0', ip: '10.96.0.1' },
      { dev: 'nope0', ip: '10.96.0.2' },
      { dev: 'kube-ipvs0', ip: '10.96.0.3' },
    ]);
    assert.deepEqual(
      r.map((x) => (x.ok ? 'ok' : `${x.error.code}@${x.error.opIndex}`)),
      ['ok', 'NOT_FOUND@1', 'ok'],
    );
    assert.equal((await n.addresses()).filter((a) => a.ifname === 'kube-ipvs0').length, 2);
  });

  it('dump and load round-trip', async () => {
    const n = new FakeNetif();
    await n.ensureDummy('kube-ipvs0');
    await n.bind('kube-ipvs0', '10.96.0.1');
    await n.bind('kube-ipvs0', 'fd00::1');
    const text = n.dump();
    assert.equal(
      text,
      [
        '1: lo: kind loopback',
        '2: eth0: kind veth',
        '3: kube-ipvs0: kind dummy',
        '1: lo    inet 127.0.0.1/8 scope host',
        '1: lo    inet6 ::1/128 scope host',
        '2: eth0    inet 192.168.0.10/24 scope global',
        '3: kube-ipvs0    inet 10.96.0.1/32 scope global',
        '3: kube-ipvs0    inet6 fd00::1/128 scope global',
        '',
      ].join('\n'),
    );
    const m = new FakeNetif({ node: null, noLoopback: true });
    m.load(text);
    assert.equal(m.dump(), text);
    assert.deepEqual(await m.addresses(), await n.addresses());
    // New links continue after the highest loaded index.
    await m.ensureLink('br0', 'bridge');
    assert.equal((await m.link('br0'))?.index, 4);
  });

  it('load rejects malformed text with PARSE', () => {
    const n = new FakeNetif();
    for (const bad of ['garbage', '1: lo    inet 127.0.0.1/8 scope host', '1: lo: kind loopback\n1: lo    inet ::1/128']) {
      assert.throws(() => n.load(bad), (e: unknown) => (e as { code?: string }).code === 'PARSE', bad);
    }
  });
});

describe('RealNetif helpers', () => {
  it('maps the netlink package error text back to errno', () => {
    assert.equal(errnoFromPackageError(new Error('Request rejected: EEXIST')), 17);
    assert.equal(errnoFromPackageError(new Error('Request rejected: ENOTSUP')), 95);
    assert.equal(errnoFromPackageError(new Error('Request rejected: EADDRNOTAVAIL')), 99);
    assert.equal(errnoFromPackageError(new Error('Request rejected: -4095')), 4095);
    assert.equal(errnoFromPackageError(new Error('Timeout has been reached')), undefined);
    assert.equal(errnoCode(17), 'EXISTS');
    assert.equal(errnoCode(95), 'UNAVAILABLE');
    assert.equal(errnoCode(19), 'NOT_FOUND');
    assert.equal(errnoCode(1), 'PERMISSION');
  });

  it('validates link names like the kernel', () => {
    assert.ok(validLinkName('kube-ipvs0'));
    assert.ok(validLinkName('x'.repeat(15)));
    for (const bad of ['', 'x'.repeat(16), '.', '..', 'a/b', 'a b', 'a:b']) assert.ok(!validLinkName(bad), bad);
  });

  it('reads the kernel release', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kipvs-osrelease-'));
    try {
      await writeFile(join(dir, 'osrelease'), '5.4.0-150-generic\n');
      assert.equal(await kernelRelease(join(dir, 'osrelease')), '5.4.0-150-generic');
      assert.match(await kernelRelease(), /^\d+\.\d+/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
