// The module names the daemon loads ahead of its first sync. The expectations are the names the
// kernel itself requests on first use (Linux 6.1): x_tables.c asks for `ipt_<ext>`/`ip6t_<ext>`
// and, for legacy tables, `iptable_<table>`/`ip6table_<table>`; nfnetlink asks for
// `nfnetlink-subsys-10` (nf_tables), nf_tables for `nft-chain-<2|10>-<type>` and `nft-expr-<name>`
// (nft_compat runs xt extensions); IPVS for `ip_vs_<scheduler>`; rtnetlink for `rtnl-link-<kind>`.
// test/vm/modules.vm.ts checks the names against a real kernel's aliases.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { kernelModuleRequests, loadKernelModules } from '../../src/dataplane/kernel-modules.js';
import type { ModprobeRunner } from '../../src/dataplane/kernel-modules.js';
import type { IptablesTable } from '../../src/model/kernel.js';
import { firstSyncModules, preloadKernelModules } from '../../src/cli/module-preload.js';
import type { IptablesBackend } from '../../src/dataplane/iptables/backend.js';
import { createLogger } from '../../src/observe/log.js';
import { config } from '../helpers/world.js';

const filter: IptablesTable = {
  table: 'filter',
  chains: ['KUBE-A'],
  rules: [
    { chain: 'INPUT', spec: '-m comment --comment "-m fake -j NOPE" -j KUBE-A' },
    { chain: 'KUBE-A', spec: '-m conntrack --ctstate INVALID -j DROP' },
    { chain: 'KUBE-A', spec: '-m set --match-set KUBE-X dst,dst -j ACCEPT' },
    { chain: 'KUBE-A', spec: '-j REJECT' },
    { chain: 'KUBE-A', spec: '-g KUBE-A' },
    { chain: 'KUBE-A', spec: '-j RETURN' },
  ],
};
const nat: IptablesTable = { table: 'nat', chains: ['KUBE-B'], rules: [{ chain: 'KUBE-B', spec: '-m mark ! --mark 0x4000/0x4000 -j MASQUERADE --random-fully' }] };

describe('kernelModuleRequests: the names the kernel asks modprobe for', () => {
  it('nf_tables build, IPv4: nf_tables, the nat chain type, nft_compat and each extension as ipt_<name>; verdicts, chains and quoted text are not extensions', () => {
    const names = kernelModuleRequests({ families: [{ family: 'IPv4', tables: [filter, nat] }], iptables: 'nft', scheduler: 'rr', linkKind: 'dummy' });
    assert.deepEqual(new Set(names), new Set(['rtnl-link-dummy', 'ip_vs_rr', 'nfnetlink-subsys-10', 'nft-chain-2-nat', 'nft-expr-match', 'nft-expr-target', 'ipt_comment', 'ipt_conntrack', 'ipt_set', 'ipt_REJECT', 'ipt_mark', 'ipt_MASQUERADE']));
  });

  it('IPv6 asks for ip6t_<name> and the nat chain type of NFPROTO_IPV6 (10); a family without a nat table asks for no nat chain type', () => {
    const names = kernelModuleRequests({ families: [{ family: 'IPv6', tables: [filter] }], iptables: 'nft', scheduler: 'sh', linkKind: 'dummy' });
    assert.deepEqual(new Set(names), new Set(['rtnl-link-dummy', 'ip_vs_sh', 'nfnetlink-subsys-10', 'nft-expr-match', 'nft-expr-target', 'ip6t_comment', 'ip6t_conntrack', 'ip6t_set', 'ip6t_REJECT']));
    const both = kernelModuleRequests({ families: [{ family: 'IPv4', tables: [nat] }, { family: 'IPv6', tables: [nat] }], iptables: 'nft', scheduler: 'rr', linkKind: 'dummy' });
    assert.ok(both.includes('nft-chain-2-nat') && both.includes('nft-chain-10-nat') && both.includes('ip6t_MASQUERADE') && both.includes('ipt_MASQUERADE'));
  });

  it('the legacy build asks for each table as <prefix>table_<table> and nothing of nf_tables', () => {
    const names = kernelModuleRequests({ families: [{ family: 'IPv4', tables: [filter, nat] }, { family: 'IPv6', tables: [filter] }], iptables: 'legacy', scheduler: 'rr', linkKind: 'dummy' });
    assert.ok(['iptable_filter', 'iptable_nat', 'ip6table_filter'].every((n) => names.includes(n)));
    assert.equal(names.filter((n) => n.startsWith('nf') || n === 'ip6table_nat').length, 0, names.join(' '));
  });

  it('the default build (whichever `iptables` is) leaves the table modules to the kernel: extensions only', () => {
    const names = kernelModuleRequests({ families: [{ family: 'IPv4', tables: [nat] }], iptables: 'default', scheduler: 'rr', linkKind: 'dummy' });
    assert.deepEqual(names, ['rtnl-link-dummy', 'ip_vs_rr', 'ipt_mark', 'ipt_MASQUERADE']);
  });
});

describe('firstSyncModules: an empty cluster under the configuration', () => {
  const fam = (family: 'IPv4' | 'IPv6') => ({ family }) as unknown as IptablesBackend;
  it("covers upstream IPVS mode's base rules for each family the host proxies (REJECT in filter, MASQUERADE in nat, the set, mark, comment, conntrack and addrtype matches)", () => {
    const names = firstSyncModules(config(), { iptables: [fam('IPv4'), fam('IPv6')], iptablesBuild: 'nft' });
    for (const p of ['ipt', 'ip6t']) for (const ext of ['REJECT', 'MASQUERADE', 'MARK', 'set', 'mark', 'comment', 'conntrack', 'addrtype']) assert.ok(names.includes(`${p}_${ext}`), `${p}_${ext} in ${names.join(' ')}`);
    assert.ok(names.includes('nft-chain-2-nat') && names.includes('nft-chain-10-nat'));
  });

  it('an IPv4-only host asks for nothing of IPv6; the scheduler follows --ipvs-scheduler', () => {
    const names = firstSyncModules(config('--ipvs-scheduler=wlc'), { iptables: [fam('IPv4')], iptablesBuild: 'nft' });
    assert.equal(names.filter((n) => n.startsWith('ip6') || n.includes('-10-')).length, 0, names.join(' '));
    assert.ok(names.includes('ip_vs_wlc') && !names.includes('ip_vs_rr'));
  });
});

describe('loadKernelModules and preloadKernelModules', () => {
  const recorder = (result: Awaited<ReturnType<ModprobeRunner>>) => {
    const calls: string[][] = [];
    const run: ModprobeRunner = async (args) => {
      calls.push([...args]);
      return result;
    };
    return { calls, run };
  };

  it('one modprobe -a with every name as its own argument', async () => {
    const r = recorder({ code: 0, stderr: '' });
    const out = await loadKernelModules(['ipt_set', 'nft-chain-2-nat'], r.run);
    assert.deepEqual(r.calls, [['-a', 'ipt_set', 'nft-chain-2-nat']]);
    assert.equal(out.ok, true);
  });

  it('modprobe missing or refusing is an outcome with the reason, never a rejection', async () => {
    const missing = await loadKernelModules(['ipt_set'], recorder({ code: null, error: 'spawn modprobe ENOENT', stderr: '' }).run);
    assert.deepEqual([missing.ok, missing.detail], [false, 'cannot run modprobe (spawn modprobe ENOENT)']);
    const refused = await loadKernelModules(['ipt_set'], recorder({ code: 1, stderr: 'modprobe: ERROR: could not insert \'xt_set\': Operation not permitted\n' }).run);
    assert.deepEqual([refused.ok, refused.detail], [false, "modprobe: ERROR: could not insert 'xt_set': Operation not permitted"]);
  });

  it('the daemon logs the outcome at info (a failure is not a warning: the kernel loads the modules on first use)', async () => {
    const lines: string[] = [];
    const log = createLogger('json', (l) => void lines.push(l));
    const dp = { iptables: [{ family: 'IPv4' } as unknown as IptablesBackend], iptablesBuild: 'nft' as const };
    await preloadKernelModules(config(), dp, log, async () => ({ ok: false, ms: 12, detail: 'cannot run modprobe (spawn modprobe ENOENT)' }));
    const entry = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(entry.level, 'info');
    assert.match(String(entry.msg), /the kernel loads them when the sync first uses them/);
    assert.equal(entry.detail, 'cannot run modprobe (spawn modprobe ENOENT)');
  });
});
