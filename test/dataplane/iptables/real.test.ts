// RealIptables' reading of iptables-restore's stderr (forms captured from iptables 1.8.9, nf_tables
// and legacy builds), its version check, and the host-only cases the contract does not cover.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import { RealIptables, parseRestoreError, restoreError, versionSupportsRandomFully } from '../../../src/dataplane/iptables/real.js';

const TRY = "Try `iptables-restore -h' or 'iptables-restore --help' for more information.";

describe('parseRestoreError', () => {
  const cases: readonly [string, string, string, number | undefined][] = [
    ['nft: jump to missing chain', `iptables-restore v1.8.9 (nf_tables): Chain 'KUBE-NOPE' does not exist\nError occurred at line: 4\n${TRY}\n`, 'NOT_FOUND', 4],
    ['legacy: jump to missing chain', `iptables-restore v1.8.9 (legacy): Couldn't load target \`KUBE-NOPE':No such file or directory\n\nError occurred at line: 3\n${TRY}\n`, 'NOT_FOUND', 3],
    ['nft: rule in missing chain', 'iptables-restore: line 2 failed: No chain/target/match by that name.\n', 'NOT_FOUND', 2],
    ['nft: missing set', `iptables-restore v1.8.9 (nf_tables): Set KUBE-NOSET doesn't exist.\n\nError occurred at line: 3\n${TRY}\n`, 'NOT_FOUND', 3],
    ['legacy: missing set', `iptables-restore v1.8.9 (legacy): Set KUBE-NOSET doesn't exist.\n\nError occurred at line: 3\n${TRY}\n`, 'NOT_FOUND', 3],
    ['unknown option', `iptables-restore v1.8.9 (nf_tables): unknown option "--bogus"\nError occurred at line: 3\n${TRY}\n`, 'INVALID', 3],
    ['bad argument', `Bad argument \`GARBAGE'\nError occurred at line: 2\n${TRY}\n`, 'INVALID', 2],
    ['missing COMMIT', 'iptables-restore: COMMIT expected at line 3\n', 'INVALID', 3],
    ['missing rule', 'iptables-restore: line 3 failed: Bad rule (does a matching rule exist in that chain?).\n', 'NOT_FOUND', 3],
    ['chain in use (nft)', 'iptables-restore v1.8.9 (nf_tables): \nline 2: CHAIN_DEL failed (Device or resource busy): chain KUBE-D\n', 'IN_USE', 2],
    ['chain exists', 'iptables-restore: line 2 failed: Chain already exists.\n', 'EXISTS', 2],
    ['bad table', `iptables-restore v1.8.9 (nf_tables): iptables-restore: line 1 table name 'bogus' invalid\nError occurred at line: 1\n${TRY}\n`, 'INVALID', 1],
    ['nat target in filter', 'iptables-restore v1.8.9 (nf_tables): \nline 3: RULE_APPEND failed (Invalid argument): rule in chain KUBE-A\n', 'INVALID', 3],
    ['unknown match', `iptables-restore v1.8.9 (nf_tables): Couldn't load match \`nosuchmatch':No such file or directory\n\nError occurred at line: 3\n${TRY}\n`, 'UNAVAILABLE', 3],
    [
      'xt_ipvs missing (nft)',
      'Warning: Extension ipvs revision 0 not supported, missing kernel module?\niptables-restore v1.8.9 (nf_tables): \nline 3: RULE_APPEND failed (No such file or directory): rule in chain KUBE-A\n',
      'UNAVAILABLE',
      3,
    ],
    ['xt_ipvs missing (legacy)', 'Warning: Extension ipvs revision 0 not supported, missing kernel module?\niptables-restore: line 4 failed\n', 'UNAVAILABLE', 4],
    ['insert past the end', 'iptables-restore: line 3 failed: Index of insertion too big.\n', 'INVALID', 3],
    ['delete past the end', 'iptables-restore: line 3 failed: Index of deletion too big.\n', 'NOT_FOUND', 3],
    ['long chain name', `iptables-restore v1.8.9 (nf_tables): chain name \`KUBE-ABCDEFGHIJKLMNOPQRSTUVWXYZ' too long (must be under 29 chars)\nError occurred at line: 2\n${TRY}\n`, 'INVALID', 2],
    ['bad policy', 'iptables-restore: line 2 failed: Bad policy name.\n', 'INVALID', 2],
    ['set of the other family', `ip6tables-restore v1.8.9 (nf_tables): The protocol family of set KPROBE is IPv4, which is not applicable.\n\nError occurred at line: 3\n${TRY}\n`, 'INVALID', 3],
    ['not root (nft)', 'iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n', 'PERMISSION', undefined],
    ['not root (legacy lock)', 'Fatal: can\'t open lock file /run/xtables.lock: Permission denied\n', 'PERMISSION', undefined],
    ['binary missing behind ip netns exec', 'exec of "iptables-restore" failed: No such file or directory\n', 'UNAVAILABLE', undefined],
    ['legacy: bare line failure', 'iptables-restore: line 7 failed\n', 'FAILED', 7],
  ];
  for (const [what, stderr, code, line] of cases) {
    it(`${what} → ${code}`, () => {
      const r = parseRestoreError(stderr);
      assert.equal(r.code, code, r.reason);
      assert.equal(r.line, line);
      assert.ok(!r.reason.startsWith('Try `') && r.reason !== '', r.reason);
    });
  }

  it('gives the reason without the tool prefix', () => {
    assert.equal(parseRestoreError('iptables-restore: line 2 failed: Chain already exists.\n').reason, 'line 2 failed: Chain already exists.');
    assert.equal(parseRestoreError(`iptables-restore v1.8.9 (nf_tables): Chain 'X' does not exist\nError occurred at line: 4\n${TRY}\n`).reason, "Chain 'X' does not exist");
  });
});

describe('restoreError', () => {
  const payload = '*filter\n:KUBE-A - [0:0]\n-A KUBE-A -j KUBE-NOPE\nCOMMIT\n';

  it('points at the rule naming the missing chain, not the COMMIT iptables-nft blames, and quotes it', () => {
    const e = restoreError(`iptables-restore v1.8.9 (nf_tables): Chain 'KUBE-NOPE' does not exist\nError occurred at line: 4\n${TRY}\n`, payload);
    assert.equal(e.code, 'NOT_FOUND');
    assert.equal(e.opIndex, 3);
    assert.equal(e.op, 'restore');
    assert.equal(e.object, 'filter KUBE-A');
    assert.ok(e.message.includes('"-A KUBE-A -j KUBE-NOPE"'), e.message);
  });

  it('keeps the reported line when it already names the object', () => {
    const e = restoreError('iptables-restore v1.8.9 (legacy): Set S doesn\'t exist.\n\nError occurred at line: 3\n', '*filter\n-A INPUT -m set --match-set S dst -j ACCEPT\n-A INPUT -m set --match-set S src -j ACCEPT\nCOMMIT\n');
    assert.equal(e.opIndex, 3);
  });

  it('works without a line number', () => {
    const e = restoreError('Fatal: can\'t open lock file /run/xtables.lock: Permission denied\n', payload);
    assert.equal(e.code, 'PERMISSION');
    assert.equal(e.opIndex, undefined);
    assert.equal(e.object, 'payload');
  });
});

describe('versionSupportsRandomFully', () => {
  it('is true from 1.6.2', () => {
    assert.equal(versionSupportsRandomFully('iptables v1.8.9 (nf_tables)'), true);
    assert.equal(versionSupportsRandomFully('iptables v1.6.2'), true);
    assert.equal(versionSupportsRandomFully('iptables v1.6.1'), false);
    assert.equal(versionSupportsRandomFully('iptables v1.4.21'), false);
    assert.equal(versionSupportsRandomFully('iptables v1.10.0'), true);
    assert.equal(versionSupportsRandomFully('garbage'), undefined);
  });
});

describe('RealIptables without the tools', () => {
  const missing = { save: ['/nonexistent/iptables-save'], restore: ['/nonexistent/iptables-restore'] };

  it('reports a missing binary as UNAVAILABLE with an install hint', async () => {
    const b = new RealIptables({ family: 'IPv4', command: missing });
    for (const p of [b.restore('*filter\nCOMMIT\n'), b.observe()]) {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof DataplaneError);
        assert.equal(e.code, 'UNAVAILABLE');
        assert.match(e.message, /apt-get install iptables/);
        return true;
      });
    }
    assert.equal(await b.supportsRandomFully(), false);
  });

  it('reports unreadable iptables-save output as PARSE', async () => {
    const b = new RealIptables({ family: 'IPv4', command: { save: ['echo', '-A INPUT -j ACCEPT'], restore: ['true'] } });
    await assert.rejects(b.observe(), (e: unknown) => e instanceof DataplaneError && e.code === 'PARSE' && e.opIndex === 1);
  });

  it('reports a failed iptables-save as FAILED with its stderr', async () => {
    const b = new RealIptables({ family: 'IPv4', command: { save: ['sh', '-c', 'echo boom >&2; exit 3'], restore: ['true'] } });
    await assert.rejects(b.observe(), (e: unknown) => e instanceof DataplaneError && e.code === 'FAILED' && /exit 3: boom/.test(e.message));
  });

  it('passes the restore flags and the payload on stdin', async () => {
    // The stand-in prints how many payload lines it read and the arguments it was given.
    const b = new RealIptables({ family: 'IPv4', command: { save: ['true'], restore: ['sh', '-c', 'echo "$(wc -l) $*" >&2; exit 1', 'sh'] } });
    await assert.rejects(b.restore('*filter\nCOMMIT\n'), (e: unknown) => {
      assert.ok(e instanceof DataplaneError);
      assert.match(e.message, /^iptables restore payload: 2 --noflush --counters -w 5$/);
      return true;
    });
  });
});

const hostSkip = ((): string | false => {
  if (process.getuid?.() !== 0) return 'needs root';
  const r = spawnSync('iptables', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'iptables not installed';
})();

describe('RealIptables on the host', { skip: hostSkip }, () => {
  it('reads the version of the iptables in PATH (1.8.9 here supports --random-fully)', async () => {
    const b = new RealIptables({ family: 'IPv4' });
    assert.equal(await b.supportsRandomFully(), true);
    assert.equal(await b.supportsRandomFully(), true);
  });

  it('reports -m ipvs without the xt_ipvs module as UNAVAILABLE', async () => {
    const ns = `kipvs-ipt-${process.pid}-ipvs`;
    if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return;
    try {
      const prefix = ['ip', 'netns', 'exec', ns];
      const b = new RealIptables({ family: 'IPv4', command: { save: [...prefix, 'iptables-save'], restore: [...prefix, 'iptables-restore'] } });
      const payload = '*filter\n:KUBE-IPVS-OUT-FILTER - [0:0]\n-A KUBE-IPVS-OUT-FILTER -s 203.0.113.11/32 -m ipvs --vaddr 203.0.113.11 --vproto tcp --vport 80 -j DROP\nCOMMIT\n';
      try {
        await b.restore(payload);
        // The module is present on this host: the rule must then read back canonically.
        const t = await b.observe();
        assert.deepEqual(t.get('filter')?.rules.map((r) => r.spec), ['-s 203.0.113.11/32 -m ipvs --vaddr 203.0.113.11 --vproto 6 --vport 80 -j DROP']);
      } catch (e) {
        assert.ok(e instanceof DataplaneError, String(e));
        assert.equal(e.code, 'UNAVAILABLE', e.message);
        assert.equal(e.opIndex, 3);
      }
    } finally {
      spawnSync('ip', ['netns', 'delete', ns]);
    }
  });
});
