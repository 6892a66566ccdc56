// The iptables contract on the fake (always) and on the host's iptables 1.8 inside a private
// network namespace per test (when root with ip, iptables and ipset; skipped with the reason
// otherwise). Both must give the same rules and the same error codes for the same payloads.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import type { IpFamily } from '../../../src/model/types.js';
import { FakeIptables } from '../../../src/dataplane/iptables/fake.js';
import { RealIptables } from '../../../src/dataplane/iptables/real.js';
import type { RulesetGeneration } from '../../../src/dataplane/iptables/nft-generation.js';
import { iptablesContract, type ContractHarness, type SetSpec } from './contract.js';
import { GENERATED_BASE, RESET_PAYLOAD, generatedSets, generatedState, payloadsArb } from './generated.js';

function fakeHarness(family: IpFamily, ipvsMatch: boolean): () => Promise<ContractHarness> {
  return () => {
    const sets = new Set<string>();
    const backend = new FakeIptables({ family, hasSet: (n) => sets.has(n), unavailableMatches: ipvsMatch ? [] : ['ipvs'] });
    return Promise.resolve({
      backend,
      ipvsMatch,
      createSets: (specs: readonly SetSpec[]) => {
        for (const s of specs) sets.add(s.name);
        return Promise.resolve();
      },
      cleanup: () => Promise.resolve(),
    });
  };
}

function run(argv: readonly string[]): { ok: boolean; out: string } {
  const [file = '', ...args] = argv;
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 20_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

const created = new Set<string>();
let counter = 0;

function deleteNetns(name: string): void {
  run(['ip', 'netns', 'delete', name]);
  created.delete(name);
}

// Namespaces are removed per test; this catches a test that died before its cleanup.
after(() => {
  for (const ns of [...created]) deleteNetns(ns);
});

/** Why real iptables cannot be tested here, or false. */
function realSkip(family: IpFamily): string | false {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const ns = `kipvs-ipt-${process.pid}-probe`;
  const add = run(['ip', 'netns', 'add', ns]);
  if (!add.ok) return `ip netns add failed: ${add.out}`;
  created.add(ns);
  try {
    for (const argv of [[`${tool}-save`], ['ipset', 'list']]) {
      const r = run(['ip', 'netns', 'exec', ns, ...argv]);
      if (!r.ok) return `${argv.join(' ')} unusable in a netns: ${r.out}`;
    }
    return false;
  } finally {
    deleteNetns(ns);
  }
}

/** Whether the kernel has xt_ipvs: one -m ipvs rule in a throw-away namespace. */
function kernelHasIpvsMatch(family: IpFamily): boolean {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const r = spawnSync('unshare', ['-n', `${tool}-restore`, '-w', '5'], { input: '*filter\n:KUBE-PROBE - [0:0]\n-A KUBE-PROBE -m ipvs --ipvs -j ACCEPT\nCOMMIT\n', encoding: 'utf8', timeout: 20_000 });
  return r.status === 0;
}

/** The namespace's nf_tables generation, read by a process inside it (our socket is in ours). */
function generationIn(ns: string): RulesetGeneration {
  const script = fileURLToPath(new URL('./read-generation.js', import.meta.url));
  return {
    read: () => {
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, script], { encoding: 'utf8', timeout: 20_000 });
      const g = Number(r.stdout.trim());
      return Promise.resolve(r.status === 0 && Number.isInteger(g) ? g : undefined);
    },
    close: () => undefined,
  };
}

function realHarness(family: IpFamily): () => Promise<ContractHarness> {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const ipvsMatch = kernelHasIpvsMatch(family);
  return () => {
    const ns = `kipvs-ipt-${process.pid}-${counter++}`;
    const add = run(['ip', 'netns', 'add', ns]);
    if (!add.ok) return Promise.reject(new Error(`ip netns add ${ns}: ${add.out}`));
    created.add(ns);
    const prefix = ['ip', 'netns', 'exec', ns];
    const backend = new RealIptables({ family, command: { save: [...prefix, `${tool}-save`], restore: [...prefix, `${tool}-restore`] }, generation: generationIn(ns) });
    return Promise.resolve({
      backend,
      ipvsMatch,
      // One `ipset restore` for all of them: a process per set would dominate the test's time.
      createSets: (specs: readonly SetSpec[]) => {
        const script = specs
          .map((s) => `create ${s.name} ${s.type} ${s.type === 'bitmap:port' ? 'range 0-65535' : family === 'IPv6' ? 'family inet6' : ''}\n`)
          .join('');
        const r = spawnSync('ip', [...prefix.slice(1), 'ipset', 'restore'], { input: script, encoding: 'utf8', timeout: 20_000 });
        return r.status === 0 ? Promise.resolve() : Promise.reject(new Error(`ipset restore: ${r.stderr}`));
      },
      // The namespace takes its tables and sets with it.
      cleanup: () => {
        deleteNetns(ns);
        return Promise.resolve();
      },
    });
  };
}

for (const family of ['IPv4', 'IPv6'] as const) {
  iptablesContract('FakeIptables', fakeHarness(family, true), { family });
  // The same fake modelling a kernel without xt_ipvs (as this host's may be).
  iptablesContract('FakeIptables without xt_ipvs', fakeHarness(family, false), { family });
  const skip = realSkip(family);
  const ipvs = skip === false && kernelHasIpvsMatch(family) ? 'with xt_ipvs' : 'without xt_ipvs';
  iptablesContract(`RealIptables in a netns (kernel ${ipvs})`, skip === false ? realHarness(family) : () => Promise.reject(new Error(skip)), { family, skip });
}

// ---------------------------------------------------------------------------------------------
// Generated payloads: the same sequence on the fake and on real iptables must give the same
// outcome class (accepted, or refused with the same code at the same line) and the same tables.

/** Runs per family; KUBE_IPVS_CONTRACT_RUNS raises it to hunt for disagreements, KUBE_IPVS_CONTRACT_SEED varies it. */
const RUNS = Number(process.env['KUBE_IPVS_CONTRACT_RUNS'] ?? 40);
const SEED = Number(process.env['KUBE_IPVS_CONTRACT_SEED'] ?? 20250611);

async function outcomeOf(p: Promise<void>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof DataplaneError) return `${e.code} at line ${String(e.opIndex)}`;
    throw e;
  }
}

/** A network namespace with the generated sets, reused across runs (reset between them). */
function realForGenerated(family: IpFamily): { backend: RealIptables; reset: () => void; ipvs: boolean; close: () => void } {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const ns = `kipvs-ipt-${process.pid}-gen${family === 'IPv4' ? 4 : 6}`;
  const add = run(['ip', 'netns', 'add', ns]);
  if (!add.ok) throw new Error(`ip netns add ${ns}: ${add.out}`);
  created.add(ns);
  const prefix = ['ip', 'netns', 'exec', ns];
  for (const s of generatedSets(family)) {
    const r = run([...prefix, 'ipset', 'create', s.name, s.type, ...(family === 'IPv6' ? ['family', 'inet6'] : [])]);
    if (!r.ok) throw new Error(`ipset create ${s.name}: ${r.out}`);
  }
  const restore = (payload: string): boolean => {
    const r = spawnSync('ip', ['netns', 'exec', ns, `${tool}-restore`, '-w', '5'], { input: payload, encoding: 'utf8', timeout: 20_000 });
    return r.status === 0;
  };
  // Whether this kernel has xt_ipvs (the fake must model the same kernel).
  const ipvs = restore(`*filter\n:KUBE-PROBE - [0:0]\n-A KUBE-PROBE -m ipvs --ipvs -j ACCEPT\nCOMMIT\n`);
  const reset = (): void => {
    if (!restore(RESET_PAYLOAD)) throw new Error('could not reset the generated tables');
  };
  const backend = new RealIptables({ family, command: { save: [...prefix, `${tool}-save`], restore: [...prefix, `${tool}-restore`] } });
  return { backend, reset, ipvs, close: () => deleteNetns(ns) };
}

for (const family of ['IPv4', 'IPv6'] as const) {
  describe(`fake and real iptables agree on generated payloads (${family})`, { skip: realSkip(family) }, () => {
    it(`${RUNS} generated sequences: same outcome for every payload, same tables after each`, async () => {
      const real = realForGenerated(family);
      const sets = new Set(generatedSets(family).map((s) => s.name));
      const seen = { ok: 0, refused: new Map<string, number>() };
      try {
        await fc.assert(
          fc.asyncProperty(payloadsArb(family), async (payloads) => {
            real.reset();
            const fake = new FakeIptables({ family, hasSet: (n) => sets.has(n), unavailableMatches: real.ipvs ? [] : ['ipvs'] });
            await real.backend.restore(GENERATED_BASE);
            await fake.restore(GENERATED_BASE);
            for (const [i, payload] of payloads.entries()) {
              const r = await outcomeOf(real.backend.restore(payload));
              const f = await outcomeOf(fake.restore(payload));
              const where = `payload ${i}:\n${payload}`;
              assert.equal(f, r, `fake ${f}, real ${r} for ${where}`);
              assert.equal(generatedState(await fake.observe()), generatedState(await real.backend.observe()), `tables differ after ${where}`);
              if (r === 'ok') seen.ok++;
              else seen.refused.set(r.split(' ')[0] ?? r, (seen.refused.get(r.split(' ')[0] ?? r) ?? 0) + 1);
            }
          }),
          { numRuns: RUNS, seed: SEED, includeErrorInReport: true },
        );
      } finally {
        real.close();
      }
      // The sequences must reach both outcomes and several refusal classes, not only the happy path.
      const summary = `accepted ${seen.ok}, refused ${[...seen.refused].map(([c, k]) => `${c} ${k}`).join(', ')}`;
      console.log(`# ${family}: ${summary}`);
      assert.ok(seen.ok >= RUNS / 4, summary);
      assert.ok(seen.refused.size >= 3, summary);
    });
  });
}
