// Real-kernel check of the modules the daemon loads ahead of its first sync. Runs as root inside
// the VM, first in the suite (the fewest modules loaded):
//   test/vm/vm.sh -- node --import tsx test/vm/modules.vm.ts
// 1. Every name kernelModuleRequests gives, for every planner variant (every rule kind the planner
//    writes), both families and both iptables builds, is one this kernel knows (`modprobe -R`
//    resolves it to a module), as the kernel's own requests would be.
// 2. After loading the names for the default configuration (nf_tables build, both families), the
//    first sync's writes load no further module: the empty cluster's sets and rules restored, the
//    dummy kube-ipvs0 created and a virtual server with the rr scheduler added. Sets' types are
//    not counted: the daemon loads them when it opens its dataplane.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { firstSyncModules } from '../../src/cli/module-preload.js';
import type { IptablesBackend } from '../../src/dataplane/iptables/backend.js';
import { kernelModuleRequests, loadKernelModules } from '../../src/dataplane/kernel-modules.js';
import { renderIptablesSave } from '../../src/model/text/iptables.js';
import { Planner } from '../../src/plan/planner.js';
import { familyIptablesTables, renderIpsets } from '../../src/plan/render.js';
import { plannedFamily, plannerVariants } from '../helpers/planner-variants.js';
import { config, node } from '../helpers/world.js';

const loaded = (): Set<string> => new Set(readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0] ?? '').filter((m) => m !== ''));
const run = (cmd: string, args: readonly string[], input?: string): string => execFileSync(cmd, [...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });

console.log('== every name resolves to a module of this kernel');
const names = new Set<string>();
for (const v of plannerVariants()) {
  for (const build of ['nft', 'legacy'] as const) {
    const families = (['IPv4', 'IPv6'] as const).map((family) => ({ family, tables: familyIptablesTables(plannedFamily(v, family)) }));
    for (const n of kernelModuleRequests({ families, iptables: build, scheduler: 'rr', linkKind: 'dummy' })) names.add(n);
  }
}
const unresolved: string[] = [];
for (const n of [...names].sort()) {
  let module = '';
  try {
    module = run('modprobe', ['-R', n]).trim();
  } catch {
    unresolved.push(n);
  }
  console.log(`${n} -> ${module || 'UNKNOWN'}`);
}
assert.deepEqual(unresolved, [], `names this kernel does not know: ${unresolved.join(' ')}`);

console.log('== after the preload, the first sync loads no module');
const before = loaded();
const fam = (family: 'IPv4' | 'IPv6') => ({ family }) as unknown as IptablesBackend;
const preload = firstSyncModules(config(), { iptables: [fam('IPv4'), fam('IPv6')], iptablesBuild: 'nft' });
const outcome = await loadKernelModules(preload);
assert.equal(outcome.ok, true, `modprobe: ${outcome.detail ?? ''}`);
const afterPreload = loaded();
console.log(`preload: ${preload.length} names, ${outcome.ms} ms; loaded now: ${[...afterPreload].filter((m) => !before.has(m)).sort().join(' ') || '(nothing new)'}`);

const state = new Planner({ node: node(), config: config() }).state();
run('ipset', ['restore'], `${renderIpsets(state)}\n`);
for (const f of state.families) run(f.family === 'IPv4' ? 'iptables-nft-restore' : 'ip6tables-nft-restore', ['--noflush'], renderIptablesSave(familyIptablesTables(f)));
run('ip', ['link', 'add', 'kube-ipvs0', 'type', 'dummy']);
run('ip', ['addr', 'add', '10.96.0.1/32', 'dev', 'kube-ipvs0']);
run('ipvsadm', ['-A', '-t', '10.96.0.1:443', '-s', 'rr']);
const afterSync = [...loaded()].filter((m) => !afterPreload.has(m) && !m.startsWith('ip_set'));
console.log(`loaded by the first sync's writes: ${afterSync.sort().join(' ') || '(nothing)'}`);
assert.deepEqual(afterSync, [], 'the preload missed modules the first sync needed');
console.log('modules: ok');
