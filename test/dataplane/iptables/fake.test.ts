// FakeIptables on its own: each restore directive, per-table atomicity, every refusal, the set
// hooks for the ipset fake, dump/load and the seeded fault option.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DataplaneError, type DataplaneErrorCode } from '../../../src/dataplane/errors.js';
import { FakeIptables } from '../../../src/dataplane/iptables/fake.js';
import { rulesOf } from './contract.js';

const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join('');

async function refused(p: Promise<unknown>, code: DataplaneErrorCode, line?: number): Promise<DataplaneError> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof DataplaneError, String(caught));
  assert.equal(caught.code, code, caught.message);
  if (line !== undefined) assert.equal(caught.opIndex, line, caught.message);
  return caught;
}

async function filterRules(f: FakeIptables, ...chains: string[]): Promise<string[]> {
  return rulesOf(await f.observe(), 'filter', chains);
}

describe('FakeIptables', () => {
  it('starts with filter, nat, mangle and raw, built-in chains with ACCEPT policies', () => {
    const f = new FakeIptables({ family: 'IPv4' });
    assert.equal(
      f.dump(),
      lines(
        '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', 'COMMIT',
        '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', 'COMMIT',
        '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', 'COMMIT',
        '*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', 'COMMIT',
      ),
    );
  });

  it(':CHAIN creates a user chain, or flushes it when it exists', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*filter', ':KUBE-A - [0:0]', '-A KUBE-A -j ACCEPT', '-A KUBE-A -j DROP', 'COMMIT'));
    assert.deepEqual(await filterRules(f, 'KUBE-A'), ['-A KUBE-A -j ACCEPT', '-A KUBE-A -j DROP']);
    await f.restore(lines('*filter', ':KUBE-A - [0:0]', 'COMMIT'));
    assert.deepEqual(await filterRules(f, 'KUBE-A'), []);
    assert.ok((await f.observe()).get('filter')?.chains.has('KUBE-A'));
  });

  it('-A appends, -I inserts at 1 or at N, -D deletes by spec or number', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(
      lines('*filter', ':KUBE-A - [0:0]', '-A KUBE-A -s 10.0.0.1 -j ACCEPT', '-I KUBE-A -s 10.0.0.2 -j ACCEPT', '-I KUBE-A 3 -s 10.0.0.3 -j ACCEPT', '-I KUBE-A 2 -s 10.0.0.4 -j ACCEPT', 'COMMIT'),
    );
    assert.deepEqual(await filterRules(f, 'KUBE-A'), [
      '-A KUBE-A -s 10.0.0.2/32 -j ACCEPT',
      '-A KUBE-A -s 10.0.0.4/32 -j ACCEPT',
      '-A KUBE-A -s 10.0.0.1/32 -j ACCEPT',
      '-A KUBE-A -s 10.0.0.3/32 -j ACCEPT',
    ]);
    // -D by spec matches the canonical form, whatever spelling the payload uses.
    await f.restore(lines('*filter', '-D KUBE-A --source 10.0.0.4/32 --jump ACCEPT', '-D KUBE-A 1', 'COMMIT'));
    assert.deepEqual(await filterRules(f, 'KUBE-A'), ['-A KUBE-A -s 10.0.0.1/32 -j ACCEPT', '-A KUBE-A -s 10.0.0.3/32 -j ACCEPT']);
  });

  it('-F flushes one chain or the whole table; -N creates; -X deletes; -P sets a policy', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*filter', '-N KUBE-A', '-N KUBE-B', '-A KUBE-A -j ACCEPT', '-A KUBE-B -j ACCEPT', '-A INPUT -j KUBE-A', '-P FORWARD DROP', 'COMMIT'));
    await f.restore(lines('*filter', '-F KUBE-B', '-X KUBE-B', 'COMMIT'));
    let t = await f.observe();
    assert.deepEqual([...(t.get('filter')?.chains.keys() ?? [])], ['INPUT', 'FORWARD', 'OUTPUT', 'KUBE-A']);
    assert.equal(t.get('filter')?.chains.get('FORWARD')?.policy, 'DROP');
    await f.restore(lines('*filter', '-F', '-X', 'COMMIT'));
    t = await f.observe();
    assert.deepEqual([...(t.get('filter')?.chains.keys() ?? [])], ['INPUT', 'FORWARD', 'OUTPUT']);
    assert.deepEqual(t.get('filter')?.rules, []);
  });

  it('skips comments and blank lines and reports line numbers of the payload', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await refused(f.restore(lines('# generated', '', '*filter', '-A KUBE-NOPE -j ACCEPT', 'COMMIT')), 'NOT_FOUND', 4);
  });

  it('stores rules canonically: --or-mark 0x004000 is dumped as --set-xmark 0x4000/0x4000', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(
      lines(
        '*nat',
        ':KUBE-MARK-MASQ - [0:0]',
        ':KUBE-POSTROUTING - [0:0]',
        '-A KUBE-MARK-MASQ -j MARK --or-mark 0x004000',
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        'COMMIT',
      ),
    );
    const dump = f.dump();
    assert.ok(dump.includes('-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n'), dump);
    assert.ok(dump.includes('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully\n'), dump);
    // -D finds the rule by its restore spelling too.
    await f.restore(lines('*nat', '-D KUBE-MARK-MASQ -j MARK --or-mark 0x4000', 'COMMIT'));
    assert.deepEqual(rulesOf(await f.observe(), 'nat', ['KUBE-MARK-MASQ']), []);
  });

  it('applies each table at its COMMIT: a failure discards only that table', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*filter', ':KUBE-A - [0:0]', '-A KUBE-A -j ACCEPT', 'COMMIT'));
    const before = f.dump();
    await refused(
      f.restore(lines('*filter', ':KUBE-A - [0:0]', ':KUBE-B - [0:0]', '-A KUBE-A -j DROP', '-A KUBE-B -j KUBE-C', 'COMMIT', '*nat', ':KUBE-N - [0:0]', 'COMMIT')),
      'NOT_FOUND',
      5,
    );
    assert.equal(f.dump(), before, 'filter unchanged, nat never reached');
    await refused(f.restore(lines('*nat', ':KUBE-N - [0:0]', 'COMMIT', '*filter', ':KUBE-A - [0:0]', '-A KUBE-A -j NOPE', 'COMMIT')), 'NOT_FOUND', 6);
    assert.ok(f.dump().includes(':KUBE-N - [0:0]'), 'nat committed');
    assert.deepEqual(await filterRules(f, 'KUBE-A'), ['-A KUBE-A -j ACCEPT']);
  });

  it('lets a chain be jumped to once declared earlier in the same table, and deleted once unreferenced', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*filter', ':KUBE-A - [0:0]', ':KUBE-B - [0:0]', '-A KUBE-A -j KUBE-B', '-A KUBE-A -g KUBE-B', 'COMMIT'));
    await refused(f.restore(lines('*filter', '-X KUBE-B', 'COMMIT')), 'IN_USE', 2);
    await f.restore(lines('*filter', '-F KUBE-A', '-X KUBE-B', 'COMMIT'));
    assert.ok(!(await f.observe()).get('filter')?.chains.has('KUBE-B'));
  });

  const refusals: readonly [string, string, DataplaneErrorCode, number][] = [
    ['rule in a missing chain', lines('*filter', '-A KUBE-X -j ACCEPT', 'COMMIT'), 'NOT_FOUND', 2],
    ['jump to a missing chain', lines('*filter', '-A INPUT -j KUBE-X', 'COMMIT'), 'NOT_FOUND', 2],
    ['goto a missing chain', lines('*filter', '-A INPUT -g KUBE-X', 'COMMIT'), 'NOT_FOUND', 2],
    ['jump to a built-in chain', lines('*filter', '-A INPUT -j OUTPUT', 'COMMIT'), 'INVALID', 2],
    ['-X of a missing chain', lines('*filter', '-X KUBE-X', 'COMMIT'), 'NOT_FOUND', 2],
    ['-X of a built-in chain', lines('*filter', '-X INPUT', 'COMMIT'), 'NOT_FOUND', 2],
    ['-F of a missing chain', lines('*filter', '-F KUBE-X', 'COMMIT'), 'NOT_FOUND', 2],
    ['-N of an existing chain', lines('*filter', '-N INPUT', 'COMMIT'), 'EXISTS', 2],
    ['-D of a missing rule', lines('*filter', '-D INPUT -j ACCEPT', 'COMMIT'), 'NOT_FOUND', 2],
    ['-D past the end', lines('*filter', '-D INPUT 1', 'COMMIT'), 'NOT_FOUND', 2],
    ['-I past the end', lines('*filter', '-I INPUT 2 -j ACCEPT', 'COMMIT'), 'INVALID', 2],
    ['-I at 0', lines('*filter', '-I INPUT 0 -j ACCEPT', 'COMMIT'), 'INVALID', 2],
    ['unknown option', lines('*filter', '-A INPUT --bogus -j ACCEPT', 'COMMIT'), 'INVALID', 2],
    ['unknown match', lines('*filter', '-A INPUT -m nosuchmatch -j ACCEPT', 'COMMIT'), 'UNAVAILABLE', 2],
    ['unterminated quote', lines('*filter', '-A INPUT -m comment --comment "oops -j ACCEPT', 'COMMIT'), 'INVALID', 2],
    ['DNAT in filter', lines('*filter', '-A INPUT -j DNAT --to-destination 1.2.3.4', 'COMMIT'), 'INVALID', 2],
    ['bad policy', lines('*filter', ':INPUT QUEUE [0:0]', 'COMMIT'), 'INVALID', 2],
    ['-P on a user chain', lines('*filter', '-N KUBE-A', '-P KUBE-A DROP', 'COMMIT'), 'INVALID', 3],
    ['chain name too long', lines('*filter', '-N KUBE-0123456789012345678901234', 'COMMIT'), 'INVALID', 2],
    ['rule outside a table', lines('-A INPUT -j ACCEPT'), 'INVALID', 1],
    ['table opened twice', lines('*filter', '*nat', 'COMMIT'), 'INVALID', 2],
    ['unknown table', lines('*bogus', 'COMMIT'), 'INVALID', 1],
    ['missing COMMIT', lines('*filter', '-N KUBE-A'), 'INVALID', 3],
  ];
  for (const [what, payload, code, line] of refusals) {
    it(`refuses ${what} (${code}) and changes nothing`, async () => {
      const f = new FakeIptables({ family: 'IPv4' });
      const before = f.dump();
      const e = await refused(f.restore(payload), code, line);
      assert.equal(e.subsystem, 'iptables');
      assert.ok(e.message.includes(`line ${line}`), e.message);
      assert.equal(f.dump(), before);
    });
  }

  it('refuses --match-set of a set the ipset side lacks, and tells the ipset side which sets are used', async () => {
    const sets = new Set(['KUBE-CLUSTER-IP']);
    const f = new FakeIptables({ family: 'IPv4', hasSet: (n) => sets.has(n) });
    const rule = (set: string): string => lines('*nat', ':KUBE-SERVICES - [0:0]', `-A KUBE-SERVICES -m set ! --match-set ${set} dst,dst -j ACCEPT`, 'COMMIT');
    const e = await refused(f.restore(rule('KUBE-LOOP-BACK')), 'NOT_FOUND', 3);
    assert.match(e.message, /Set KUBE-LOOP-BACK doesn't exist/);
    await f.restore(rule('KUBE-CLUSTER-IP'));
    assert.equal(f.isSetReferenced('KUBE-CLUSTER-IP'), true);
    assert.equal(f.isSetReferenced('KUBE-LOOP-BACK'), false);
    await f.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', 'COMMIT'));
    assert.equal(f.isSetReferenced('KUBE-CLUSTER-IP'), false);
  });

  it('takes every set to exist when no ipset side is wired in', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*filter', '-A INPUT -m set --match-set ANY dst -j ACCEPT', 'COMMIT'));
    assert.equal(f.isSetReferenced('ANY'), true);
  });

  it('dump() and load() round-trip, and load() takes real iptables-save output', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    await f.restore(lines('*nat', ':KUBE-A - [0:0]', '-A KUBE-A -p tcp --dport 80 -j RETURN', '-A OUTPUT -j KUBE-A', ':POSTROUTING DROP [0:0]', 'COMMIT'));
    const dump = f.dump();
    const g = new FakeIptables({ family: 'IPv4' });
    g.load(dump);
    assert.equal(g.dump(), dump);
    assert.ok(dump.includes('-A KUBE-A -p tcp -m tcp --dport 80 -j RETURN\n'), dump);
    g.load(lines('# Generated by iptables-save v1.8.9 (nf_tables)', '*security', ':INPUT ACCEPT [0:0]', ':KUBE-S - [0:0]', '-A INPUT -j KUBE-S', 'COMMIT', '# Completed'));
    const t = await g.observe();
    assert.deepEqual(rulesOf(t, 'security', ['INPUT']), ['-A INPUT -j KUBE-S']);
    assert.deepEqual(t.get('nat')?.rules, [], 'tables missing from the text are empty');
    // Loaded references count for the kernel's checks.
    await refused(g.restore(lines('*security', '-X KUBE-S', 'COMMIT')), 'IN_USE', 2);
  });

  it('observe() returns a copy the caller cannot use to change the fake', async () => {
    const f = new FakeIptables({ family: 'IPv4' });
    const t = await f.observe();
    t.get('filter')?.rules.push({ chain: 'INPUT', spec: '-j DROP' });
    assert.deepEqual((await f.observe()).get('filter')?.rules, []);
  });

  it('canonicalises for its family: IPv6 REJECT gets icmp6-port-unreachable', async () => {
    const f = new FakeIptables({ family: 'IPv6' });
    await f.restore(lines('*filter', '-A INPUT -s ::1 -j REJECT', 'COMMIT'));
    assert.deepEqual(await filterRules(f, 'INPUT'), ['-A INPUT -s ::1/128 -j REJECT --reject-with icmp6-port-unreachable']);
  });

  it('fails a seeded share of restores with FAILED, applying nothing, repeatably', async () => {
    const outcomes = async (seed: number): Promise<boolean[]> => {
      const f = new FakeIptables({ family: 'IPv4', faults: { failureRate: 0.5, seed } });
      const out: boolean[] = [];
      for (let i = 0; i < 40; i++) {
        const before = f.dump();
        try {
          await f.restore(lines('*filter', `-A INPUT -s 10.0.0.${i} -j ACCEPT`, 'COMMIT'));
          out.push(true);
        } catch (e) {
          assert.ok(e instanceof DataplaneError && e.code === 'FAILED', String(e));
          assert.equal(f.dump(), before);
          out.push(false);
        }
      }
      assert.equal(f.restores, 40);
      assert.equal(f.injectedFailures, out.filter((ok) => !ok).length);
      return out;
    };
    const a = await outcomes(7);
    assert.deepEqual(await outcomes(7), a);
    const failed = a.filter((ok) => !ok).length;
    assert.ok(failed > 5 && failed < 35, `failed ${failed} of 40`);
    const never = new FakeIptables({ family: 'IPv4', faults: { failureRate: 0, seed: 1 } });
    await never.restore(lines('*filter', 'COMMIT'));
  });

  it('answers supportsRandomFully as configured', async () => {
    assert.equal(await new FakeIptables({ family: 'IPv4' }).supportsRandomFully(), true);
    assert.equal(await new FakeIptables({ family: 'IPv4', randomFully: false }).supportsRandomFully(), false);
  });
});
