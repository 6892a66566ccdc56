// RealIptables.observe() reuses its last save while nf_tables' ruleset generation, read before
// that save, has not moved (nothing was committed since, so iptables-save would print the same),
// and saves again otherwise: after a commit, after its own restore, with a legacy build, or when
// the generation cannot be read. The iptables tools here are a script that counts its saves.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealIptables } from '../../../src/dataplane/iptables/real.js';
import type { RulesetGeneration } from '../../../src/dataplane/iptables/nft-generation.js';

/** iptables-save/-restore/--version stand-ins: each save appends a line to `saves`. */
function tools(version: string): { save: string[]; restore: string[]; saves: () => number } {
  const dir = mkdtempSync(join(tmpdir(), 'ipt-reuse-'));
  const log = join(dir, 'saves');
  writeFileSync(log, '');
  const script = join(dir, 'tool.mjs');
  writeFileSync(
    script,
    [
      "import { appendFileSync } from 'node:fs';",
      'const [mode, log, version] = process.argv.slice(2);',
      "if (process.argv.includes('--version')) console.log(version);",
      "else if (mode === 'save') { appendFileSync(log, 'save\\n'); process.stdout.write('*nat\\n:PREROUTING ACCEPT [0:0]\\n:KUBE-SERVICES - [0:0]\\nCOMMIT\\n'); }",
      "else process.stdin.resume();",
    ].join('\n'),
  );
  return {
    save: [process.execPath, script, 'save', log, version],
    restore: [process.execPath, script, 'restore', log, version],
    saves: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length,
  };
}

/** A generation the test moves by hand (undefined: cannot be read). */
function generation(start = 7): RulesetGeneration & { value: number | undefined } {
  const g = { value: start as number | undefined, read: () => Promise.resolve(g.value), close: () => undefined };
  return g;
}

describe('RealIptables reuses its last save while the ruleset generation stands still', () => {
  test('no commit since the last save: the second observe spawns no save and sees the same rules', async () => {
    const t = tools('iptables v1.8.9 (nf_tables)');
    const b = new RealIptables({ family: 'IPv4', command: t, generation: generation() });
    const first = await b.observe();
    const second = await b.observe();
    assert.equal(t.saves(), 1);
    assert.deepEqual([...(second.get('nat')?.chains.keys() ?? [])], ['PREROUTING', 'KUBE-SERVICES']);
    assert.equal(second, first);
  });

  test('a commit since (the generation moved) or our own restore: the next observe saves again', async () => {
    const t = tools('iptables v1.8.9 (nf_tables)');
    const g = generation();
    const b = new RealIptables({ family: 'IPv4', command: t, generation: g });
    await b.observe();
    g.value = 8;
    await b.observe();
    assert.equal(t.saves(), 2, 'another writer committed');
    await b.restore('*nat\nCOMMIT\n');
    await b.observe();
    assert.equal(t.saves(), 3, 'after a restore (whose commit the kernel counts too; here the generation did not move)');
  });

  test('a legacy build, or a generation that cannot be read: every observe saves', async () => {
    const legacy = tools('iptables v1.8.9 (legacy)');
    const b = new RealIptables({ family: 'IPv4', command: legacy, generation: generation() });
    await b.observe();
    await b.observe();
    assert.equal(legacy.saves(), 2, 'legacy');
    const nft = tools('iptables v1.8.9 (nf_tables)');
    const g = generation();
    g.value = undefined;
    const c = new RealIptables({ family: 'IPv4', command: nft, generation: g });
    await c.observe();
    await c.observe();
    assert.equal(nft.saves(), 2, 'unreadable generation');
  });
});
