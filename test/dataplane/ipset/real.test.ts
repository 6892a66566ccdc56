// RealIpset specifics: the stderr texts of ipset v7.17 and their codes, a missing binary, no
// privilege, foreign sets, and errors ipset reports without a line number. Kernel tests run in a
// private network namespace and are skipped with the reason when that is impossible.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RealIpset, classifyIpsetStderr } from '../../../src/dataplane/ipset/real.js';
import { add, create, dumpOf, outcome, spec } from './contract.js';
import { makeNetns, realIpsetSkipReason } from './netns.js';
import type { Netns } from './netns.js';

describe('classifyIpsetStderr (texts printed by ipset v7.17)', () => {
  const cases: [string, string, number | undefined][] = [
    ['ipset v7.17: Error in line 3: The set with the given name does not exist', 'NOT_FOUND', 3],
    ['ipset v7.17: The set with the given name does not exist', 'NOT_FOUND', undefined],
    ['ipset v7.17: Error in line 2: Set cannot be destroyed: it is in use by a kernel component', 'IN_USE', 2],
    ['ipset v7.17: Error in line 1: Set cannot be created: set with the same name already exists', 'EXISTS', 1],
    ["ipset v7.17: Error in line 1: Element cannot be added to the set: it's already added", 'EXISTS', 1],
    ["ipset v7.17: Error in line 1: Element cannot be deleted from the set: it's not added", 'NOT_FOUND', 1],
    ['ipset v7.17: Error in line 4: Hash is full, cannot add more elements', 'FAILED', 4],
    ['ipset v7.17: Error in line 2: Syntax error: cannot parse fd00::1: resolving to IPv4 address failed', 'INVALID', 2],
    ['ipset v7.17: Error in line 1: Syntax error: Two elem separators in 1.2.3.4,tcp:5,1.2.3.4, but settype hash:ip,port supports one.', 'INVALID', 1],
    ['ipset v7.17: Error in line 1: Null-valued element, cannot be stored in a hash type of set', 'INVALID', 1],
    ['ipset v7.17: Error in line 2: Element is out of the range of the set', 'INVALID', 2],
    ['ipset v7.17: Error in line 2: The value of the CIDR parameter of the IP address is invalid', 'INVALID', 2],
    ['ipset v7.17: Error in line 1: Kernel error received: Invalid argument', 'INVALID', 1],
    ["ipset v7.17: Syntax error: '70000' is out of range 0-65535\nSyntax error: 'tcp' is invalid as number\ncannot parse '70000' as a tcp port", 'INVALID', undefined],
    ["ipset v7.17: Unknown argument: `bogus'\nTry `ipset help' for more information.", 'INVALID', undefined],
    ["ipset v7.17: No command specified: unknown argument bogus\nTry `ipset help' for more information.", 'INVALID', undefined],
    ["ipset v7.17: Missing second mandatory argument to command add\nTry `ipset help' for more information.", 'INVALID', undefined],
    ["ipset v7.17: Mandatory option `to' is missing\nTry `ipset help' for more information.", 'INVALID', undefined],
    ['ipset v7.17: Error in line 1: Kernel error received: Operation not permitted', 'PERMISSION', 1],
    ['ipset v7.17: Kernel error received: Operation not permitted', 'PERMISSION', undefined],
    ['exec of "ipset" failed: No such file or directory', 'UNAVAILABLE', undefined],
    ['something new', 'FAILED', undefined],
  ];
  for (const [stderr, code, line] of cases) {
    it(`${code}: ${stderr.split('\n')[0] ?? ''}`, () => {
      const c = classifyIpsetStderr(stderr);
      assert.equal(c.code, code);
      assert.equal(c.line, line);
      assert.ok(!c.reason.startsWith('ipset v') && !c.reason.startsWith('Error in line'), c.reason);
    });
  }
});

describe('RealIpset without the binary', () => {
  it('reports UNAVAILABLE with how to install it', async () => {
    const b = new RealIpset({ binary: '/nonexistent/ipset' });
    await assert.rejects(b.observe(), (e: unknown) => {
      assert.ok(e instanceof Error && 'code' in e && e.code === 'UNAVAILABLE');
      assert.match(e.message, /apt-get install ipset/);
      return true;
    });
    await assert.rejects(b.apply([create(spec('A', 'hash:ip'))]), /apt-get install ipset/);
    await assert.rejects(b.version(), /apt-get install ipset/);
  });
});

const skip = realIpsetSkipReason();

describe('RealIpset in a private netns', { skip: skip ?? false }, () => {
  let ns: Netns;
  let ipset: RealIpset;
  before(() => {
    ns = makeNetns();
    ipset = new RealIpset({ command: [...ns.exec, 'ipset'] });
  });
  after(() => ns.delete());

  it('reads the version', async () => {
    assert.match(await ipset.version(), /^\d+\.\d+/);
  });

  it('a missing binary behind `ip netns exec` is UNAVAILABLE with the install hint', async () => {
    const b = new RealIpset({ command: [...ns.exec, '/nonexistent/ipset'] });
    const r = await b.apply([create(spec('A', 'hash:ip'))]);
    assert.equal(r.error?.code, 'UNAVAILABLE');
    assert.match(r.error?.message ?? '', /apt-get install ipset/);
    await assert.rejects(b.observe(), /apt-get install ipset/);
  });

  it('without privilege, writes are PERMISSION', { skip: spawnSync('setpriv', ['--version']).status === 0 ? false : 'no setpriv' }, async () => {
    const b = new RealIpset({ command: [...ns.exec, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'ipset'] });
    const r = await b.apply([create(spec('A', 'hash:ip'))]);
    assert.deepEqual(outcome(r), { applied: 0, code: 'PERMISSION', opIndex: 0 });
    await assert.rejects(b.observe(), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'PERMISSION');
  });

  it('observe(names) ignores foreign sets it could not parse; observe() reports PARSE', async () => {
    const foreign = spawnSync(ns.exec[0] ?? 'ip', [...ns.exec.slice(1), 'ipset', 'restore', '-exist'], {
      input: 'create FOREIGN hash:ip,port family inet hashsize 1024 maxelem 65536\nadd FOREIGN 1.2.3.4,icmp:ping\ncreate OTHER hash:net family inet\n',
    });
    assert.equal(foreign.status, 0, String(foreign.stderr));
    assert.deepEqual(outcome(await ipset.apply([create(spec('MINE', 'hash:ip')), add('MINE', '1.1.1.1')])), { applied: 2 });
    assert.equal(await dumpOf(ipset, ['MINE', 'OTHER']), 'create MINE hash:ip family inet hashsize 1024 maxelem 65536\nadd MINE 1.1.1.1\n');
    await assert.rejects(ipset.observe(), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'PARSE');
  });

  it('finds the op of an error ipset reports without a line, and keeps the buffered adds before it', async () => {
    const r = await ipset.apply([create(spec('B', 'bitmap:port', { range: '0-1000' })), add('B', '1'), add('B', '2'), add('B', '10.0.0.1'), add('B', '3')]);
    assert.deepEqual(outcome(r), { applied: 3, code: 'INVALID', opIndex: 3 });
    assert.match(r.error?.message ?? '', /invalid as number/);
    assert.equal(await dumpOf(ipset, ['B']), 'create B bitmap:port range 0-1000\nadd B 1\nadd B 2\n');
  });
});
