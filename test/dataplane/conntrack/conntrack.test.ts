import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ConntrackBackend, ConntrackFilter } from '../../../src/dataplane/conntrack/backend.js';
import { FakeConntrack } from '../../../src/dataplane/conntrack/fake.js';
import type { SpawnResult, Spawner } from '../../../src/dataplane/conntrack/real.js';
import { RealConntrack, deleteArgs, parseDeletedCount, spawnCollect } from '../../../src/dataplane/conntrack/real.js';

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

const DNS: ConntrackFilter = { family: 'IPv4', protocol: 'udp', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.1.5' };

function scripted(result: Partial<SpawnResult>, calls: (readonly string[])[] = []): Spawner {
  return async (cmd, args) => {
    calls.push([cmd, ...args]);
    return { code: 0, stdout: '', stderr: '', ...result };
  };
}

describe('conntrack arguments', () => {
  it('builds the delete command', () => {
    assert.deepEqual(deleteArgs(DNS), [
      '-D', '-f', 'ipv4', '-p', 'udp', '--orig-dst', '10.96.0.10', '--orig-port-dst', '53', '--reply-src', '10.244.1.5',
    ]);
    assert.deepEqual(deleteArgs({ family: 'IPv6', protocol: 'sctp', origDstPort: 30053, replySrc: 'FD00:10::0005' }), [
      '-D', '-f', 'ipv6', '-p', 'sctp', '--orig-port-dst', '30053', '--reply-src', 'fd00:10::5',
    ]);
  });

  it('refuses malformed filters', () => {
    const bad: ConntrackFilter[] = [
      { ...DNS, replySrc: 'fd00::5' },
      { ...DNS, origDst: '10.96.0.300' },
      { ...DNS, origDstPort: 0 },
      { ...DNS, origDstPort: 70000 },
      { family: 'IPv4', protocol: 'udp', replySrc: '10.244.1.5' },
    ];
    for (const f of bad) {
      assert.throws(() => deleteArgs(f), (e: unknown) => (e as { code?: string }).code === 'INVALID', JSON.stringify(f));
    }
  });

  it('reads the deleted count', () => {
    assert.equal(parseDeletedCount('conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n'), 3);
    assert.equal(parseDeletedCount('conntrack v1.4.5 (conntrack-tools): 0 flow entries have been deleted.'), 0);
    assert.equal(parseDeletedCount('something else'), undefined);
  });
});

describe('RealConntrack with a scripted spawner', () => {
  it('returns the count and passes an argument array', async () => {
    const calls: (readonly string[])[] = [];
    const c = new RealConntrack({
      spawn: scripted({ stderr: 'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n' }, calls),
    });
    assert.equal(await c.deleteFlows(DNS), 2);
    assert.deepEqual(calls, [['conntrack', ...deleteArgs(DNS)]]);
  });

  it('treats exit 1 with nothing deleted as 0', async () => {
    const c = new RealConntrack({
      spawn: scripted({ code: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n' }),
    });
    assert.equal(await c.deleteFlows(DNS), 0);
  });

  it('maps failures', async () => {
    const enoent = Object.assign(new Error('spawn conntrack ENOENT'), { code: 'ENOENT' });
    const missing = new RealConntrack({ spawn: scripted({ code: null, error: enoent }) });
    try {
      await missing.deleteFlows(DNS);
      assert.fail('expected UNAVAILABLE');
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'UNAVAILABLE');
      assert.match((e as Error).message, /apt-get install conntrack/);
    }
    const perm = new RealConntrack({
      spawn: scripted({ code: 1, stderr: 'conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted\n' }),
    });
    assert.equal(await code(perm.deleteFlows(DNS)), 'PERMISSION');
    assert.equal(await code(new RealConntrack({ spawn: scripted({ code: 2, stderr: 'weird' }) }).deleteFlows(DNS)), 'FAILED');
    assert.equal(await code(new RealConntrack({ spawn: scripted({}) }).deleteFlows({ ...DNS, replySrc: 'x' })), 'INVALID');
  });

  it('reports a binary that is not installed (real spawn)', async () => {
    const c = new RealConntrack({ binary: '/nonexistent/conntrack' });
    assert.equal(await code(c.deleteFlows(DNS)), 'UNAVAILABLE');
  });
});

/** Both backends, given the flows of seed(). */
async function shared(c: ConntrackBackend): Promise<void> {
  assert.equal(await c.deleteFlows(DNS), 1);
  assert.equal(await c.deleteFlows(DNS), 0);
  // Other endpoint of the same service: untouched until asked for.
  assert.equal(await c.deleteFlows({ ...DNS, replySrc: '10.244.2.6' }), 1);
  // By node port alone (any destination IP).
  assert.equal(await c.deleteFlows({ family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.1.5' }), 2);
  assert.equal(await c.deleteFlows({ family: 'IPv6', protocol: 'udp', origDstPort: 53, replySrc: 'fd00:244::5' }), 1);
  assert.equal(await c.deleteFlows({ family: 'IPv4', protocol: 'udp', origDstPort: 30053, replySrc: '10.244.1.5' }), 0);
}

const SEED = [
  { protocol: 'udp', origSrc: '10.0.0.1', origDst: '10.96.0.10', origSport: 1111, origDstPort: 53, replySrc: '10.244.1.5' },
  { protocol: 'udp', origSrc: '10.0.0.2', origDst: '10.96.0.10', origSport: 1112, origDstPort: 53, replySrc: '10.244.2.6' },
  { protocol: 'udp', origSrc: '10.0.0.3', origDst: '192.168.0.10', origSport: 1113, origDstPort: 30053, replySrc: '10.244.1.5' },
  { protocol: 'udp', origSrc: '10.0.0.4', origDst: '192.168.0.11', origSport: 1114, origDstPort: 30053, replySrc: '10.244.1.5' },
  { protocol: 'udp', origSrc: 'fd00::1', origDst: 'fd00:96::10', origSport: 1115, origDstPort: 53, replySrc: 'fd00:244::5' },
] as const;

describe('FakeConntrack', () => {
  it('deletes with the conntrack filter rules', async () => {
    const c = new FakeConntrack();
    for (const f of SEED) c.addFlow(f);
    c.addFlow({ protocol: 'tcp', origSrc: '10.0.0.9', origDst: '10.96.0.10', origDstPort: 53, replySrc: '10.244.1.5' });
    await shared(c);
    assert.deepEqual(c.flows().map((f) => f.protocol), ['tcp']);
    assert.equal(c.deletions.length, 6);
  });

  it('refuses flows mixing families', () => {
    const c = new FakeConntrack();
    assert.throws(() => c.addFlow({ protocol: 'udp', origSrc: '10.0.0.1', origDst: 'fd00::1', origDstPort: 53, replySrc: '10.244.1.5' }));
  });
});

function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for a network namespace';
  const probe = spawnSync('conntrack', ['--version'], { encoding: 'utf8' });
  if (probe.error) return 'the conntrack tool is not installed';
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return ns.status === 0 ? undefined : `ip netns unavailable: ${ns.stderr.trim()}`;
}

describe('RealConntrack in a private network namespace', { skip: netnsUnavailable() }, () => {
  const ns = `kipvs-ct-${process.pid}`;
  const inNs = spawnCollect(20_000);
  const spawnInNs: Spawner = (cmd, args) => inNs('ip', ['netns', 'exec', ns, cmd, ...args]);
  let unavailable: string | undefined;

  before(() => {
    const r = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
    if (r.status !== 0) unavailable = `ip netns add failed: ${r.stderr.trim()}`;
  });
  after(() => {
    spawnSync('ip', ['netns', 'delete', ns]);
  });

  it('deletes nothing from an empty table and returns 0', async (t) => {
    if (unavailable) return t.skip(unavailable);
    const c = new RealConntrack({ spawn: spawnInNs });
    try {
      assert.equal(await c.deleteFlows(DNS), 0);
    } catch (e) {
      if ((e as { code?: string }).code === 'UNAVAILABLE') return t.skip(`nf_conntrack unavailable: ${(e as Error).message}`);
      throw e;
    }
  });

  it('deletes inserted flows with the same results as the fake', async (t) => {
    if (unavailable) return t.skip(unavailable);
    for (const f of SEED) {
      const r = spawnSync(
        'ip',
        [
          // -I takes the family from the addresses (-f is refused).
          'netns', 'exec', ns, 'conntrack', '-I', '-p', f.protocol,
          '-s', f.origSrc, '-d', f.origDst, '--sport', String(f.origSport), '--dport', String(f.origDstPort),
          '-r', f.replySrc, '-q', f.origSrc, '--reply-port-src', String(f.origDstPort), '--reply-port-dst', String(f.origSport),
          '-t', '120',
        ],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) return t.skip(`conntrack -I failed: ${r.stderr.trim()}`);
    }
    await shared(new RealConntrack({ spawn: spawnInNs }));
  });
});
