// The iptables contract on the fake (always) and on the host's iptables 1.8 inside a private
// network namespace per test (when root with ip, iptables and ipset; skipped with the reason
// otherwise). Both must give the same rules and the same error codes for the same payloads.
import { spawnSync } from 'node:child_process';
import { after } from 'node:test';
import type { IpFamily } from '../../../src/model/types.js';
import { FakeIptables } from '../../../src/dataplane/iptables/fake.js';
import { RealIptables } from '../../../src/dataplane/iptables/real.js';
import { iptablesContract, type ContractHarness, type SetSpec } from './contract.js';

function fakeHarness(family: IpFamily): () => Promise<ContractHarness> {
  return () => {
    const sets = new Set<string>();
    const backend = new FakeIptables({ family, hasSet: (n) => sets.has(n) });
    return Promise.resolve({
      backend,
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

function realHarness(family: IpFamily): () => Promise<ContractHarness> {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  return () => {
    const ns = `kipvs-ipt-${process.pid}-${counter++}`;
    const add = run(['ip', 'netns', 'add', ns]);
    if (!add.ok) return Promise.reject(new Error(`ip netns add ${ns}: ${add.out}`));
    created.add(ns);
    const prefix = ['ip', 'netns', 'exec', ns];
    const backend = new RealIptables({ family, command: { save: [...prefix, `${tool}-save`], restore: [...prefix, `${tool}-restore`] } });
    return Promise.resolve({
      backend,
      createSets: (specs: readonly SetSpec[]) => {
        for (const s of specs) {
          const extra = s.type === 'bitmap:port' ? ['range', '0-65535'] : family === 'IPv6' ? ['family', 'inet6'] : [];
          const r = run([...prefix, 'ipset', 'create', s.name, s.type, ...extra]);
          if (!r.ok) return Promise.reject(new Error(`ipset create ${s.name}: ${r.out}`));
        }
        return Promise.resolve();
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
  iptablesContract('FakeIptables', fakeHarness(family), { family });
  iptablesContract('RealIptables in a netns', realHarness(family), { family, skip: realSkip(family) });
}
