import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SysctlBackend } from '../../../src/dataplane/sysctl/backend.js';
import { FakeSysctl } from '../../../src/dataplane/sysctl/fake.js';
import { RealSysctl, normalizeSysctlKey } from '../../../src/dataplane/sysctl/real.js';

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string } | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

/** Behaviour both backends share, given the keys net/ipv4/ip_forward = 0 and net/ipv4/vs/conntrack = 0. */
async function shared(s: SysctlBackend): Promise<void> {
  assert.equal(await s.read('net.ipv4.ip_forward'), '0');
  assert.equal(await s.read('net/ipv4/ip_forward'), '0');
  await s.write('net.ipv4.vs.conntrack', '1');
  assert.equal(await s.read('net/ipv4/vs/conntrack'), '1');
  assert.equal(await s.read('net/ipv4/vs/expire_nodest_conn'), undefined);
  const e = await failure(s.write('net/ipv4/vs/expire_nodest_conn', '1'));
  assert.equal(e?.code, 'NOT_FOUND');
  assert.match(e?.message ?? '', /ip_vs module is not loaded/);
  assert.equal((await failure(s.write('net/bogus/key', '1')))?.code, 'NOT_FOUND');
  assert.equal(await s.read('net/bogus/key'), undefined);
  assert.equal((await failure(s.read('net/../etc')))?.code, 'INVALID');
}

describe('sysctl keys', () => {
  it('normalises dotted and slash keys', () => {
    assert.equal(normalizeSysctlKey('net.ipv4.vs.conntrack'), 'net/ipv4/vs/conntrack');
    assert.equal(normalizeSysctlKey('net/ipv4/vs/conntrack'), 'net/ipv4/vs/conntrack');
    // A slash key keeps its dots: interface names such as eth0.100.
    assert.equal(normalizeSysctlKey('net/ipv4/conf/eth0.100/arp_ignore'), 'net/ipv4/conf/eth0.100/arp_ignore');
    for (const bad of ['', '/net/ipv4', 'net//ipv4', 'net/../x', 'net..ipv4']) {
      assert.throws(() => normalizeSysctlKey(bad), (e: unknown) => (e as { code?: string }).code === 'INVALID', bad);
    }
  });
});

describe('RealSysctl (temp dir as /proc/sys)', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kipvs-sysctl-'));
    await mkdir(join(root, 'net/ipv4/vs'), { recursive: true });
    await writeFile(join(root, 'net/ipv4/ip_forward'), '0\n');
    await writeFile(join(root, 'net/ipv4/vs/conntrack'), '0\n');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('behaves like the fake', async () => {
    await shared(new RealSysctl(root));
  });

  it('writes the value over a longer old one and never creates files', async () => {
    const s = new RealSysctl(root);
    await writeFile(join(root, 'net/ipv4/ip_forward'), '100\n');
    await s.write('net.ipv4.ip_forward', '1');
    assert.equal(await readFile(join(root, 'net/ipv4/ip_forward'), 'utf8'), '1');
    await failure(s.write('net/ipv4/new_key', '1'));
    assert.equal(await s.read('net/ipv4/new_key'), undefined);
  });

  it('reports a directory key as INVALID', async () => {
    assert.equal((await failure(new RealSysctl(root).write('net/ipv4/vs', '1')))?.code, 'INVALID');
  });

  it('reports a read-only file as PERMISSION', { skip: process.getuid?.() === 0 ? 'root ignores file modes' : false }, async () => {
    await chmod(join(root, 'net/ipv4/ip_forward'), 0o444);
    assert.equal((await failure(new RealSysctl(root).write('net/ipv4/ip_forward', '1')))?.code, 'PERMISSION');
  });

  it('reads the real /proc/sys', async () => {
    const s = new RealSysctl();
    assert.match((await s.read('kernel.osrelease')) ?? '', /^\d+\.\d+/);
    assert.equal(await s.read('net/no/such/key'), undefined);
  });

  it('maps a read-only /proc/sys to PERMISSION', { skip: procSysWritable() }, async () => {
    // Only reached where /proc/sys is mounted read-only (containers); writes the current value.
    const s = new RealSysctl();
    const v = (await s.read('net/ipv4/ip_forward')) ?? '0';
    assert.equal((await failure(s.write('net/ipv4/ip_forward', v)))?.code, 'PERMISSION');
  });
});

function procSysWritable(): string | false {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    const line = mounts.split('\n').find((l) => l.split(' ')[1] === '/proc/sys');
    return line && /\bro\b/.test(line.split(' ')[3] ?? '') ? false : '/proc/sys is writable here; not writing the host kernel';
  } catch {
    return 'cannot read /proc/self/mounts';
  }
}

describe('FakeSysctl', () => {
  it('behaves like the real one', async () => {
    await shared(new FakeSysctl({ 'net.ipv4.ip_forward': '0', 'net/ipv4/vs/conntrack': '0\n' }));
  });

  it('records writes, refuses read-only keys, and dumps', async () => {
    const s = new FakeSysctl({ 'net.ipv4.ip_forward': '1', 'net.ipv4.vs.conntrack': '0' }, { readOnly: ['net/ipv4/ip_forward'] });
    assert.equal((await failure(s.write('net.ipv4.ip_forward', '1')))?.code, 'PERMISSION');
    await s.write('net.ipv4.vs.conntrack', '1');
    assert.deepEqual(s.writes, [{ key: 'net/ipv4/vs/conntrack', value: '1' }]);
    s.define('net/ipv4/vs/conn_reuse_mode', '1');
    assert.equal(s.dump(), 'net/ipv4/ip_forward = 1\nnet/ipv4/vs/conn_reuse_mode = 1\nnet/ipv4/vs/conntrack = 1\n');
  });
});
