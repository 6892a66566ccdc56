// The behaviour every IptablesBackend must show, run on the fake and on real iptables in a private
// network namespace: the same payloads must leave the same rules in our chains and fail with the
// same error codes, so tests written against the fake hold on a node.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { IpFamily } from '../../../src/model/types.js';
import { JUMP_RULES, OWNED_CHAINS, SET_INFO, ipsetName, type IpsetType } from '../../../src/model/names.js';
import type { FamilyDesiredState } from '../../../src/plan/desired.js';
import { jumpRuleSpec, jumpRulesInChainOrder } from '../../../src/plan/rules.js';
import { IptablesReconciler, chainsMatch, missingJumps, restorePayload } from '../../../src/sync/iptables-reconciler.js';
import { SyncReport } from '../../../src/sync/report.js';
import { distinctVariants, plannedFamily, plannerVariants, type PlannerVariant } from '../../helpers/planner-variants.js';
import { DataplaneError, type DataplaneErrorCode } from '../../../src/dataplane/errors.js';
import type { IptablesBackend } from '../../../src/dataplane/iptables/backend.js';
import type { IptablesTables } from '../../../src/model/text/iptables.js';

export interface SetSpec {
  readonly name: string;
  readonly type: IpsetType;
}

export interface ContractHarness {
  readonly backend: IptablesBackend;
  /** Whether the kernel has xt_ipvs (-m ipvs); without it the kernel refuses such rules. */
  readonly ipvsMatch: boolean;
  /** Makes these ipsets exist (the kernel refuses --match-set of a missing set). */
  createSets(sets: readonly SetSpec[]): Promise<void>;
  cleanup(): Promise<void>;
}

/** Every set of kube-proxy's list, in the family's names. */
export function allSets(family: IpFamily): SetSpec[] {
  return SET_INFO.map((s) => ({ name: ipsetName(s.base, family), type: s.type }));
}

/** The reconciler's first payload for the planner's output: our chains, their rules, every jump. */
export function plannerPayload(f: FamilyDesiredState): string {
  return restorePayload(f.iptables, JUMP_RULES);
}

/** The sets a planned family's rules name, as the harness must create them. */
export function plannedSets(f: FamilyDesiredState): SetSpec[] {
  return f.ipsets.map((s) => ({ name: s.spec.name, type: s.spec.type }));
}

/** kube-proxy's jumps from the built-in chains, each inserted at position 1. */
export const JUMPS_PAYLOAD = [
  '*nat',
  '-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-I POSTROUTING 1 -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
  'COMMIT',
  '*filter',
  '-I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
  '-I INPUT 1 -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
  '-I INPUT 1 -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
  '-I FORWARD 1 -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
  '-I INPUT 1 -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
  '-I OUTPUT 1 -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER',
  'COMMIT',
]
  .map((l) => `${l}\n`)
  .join('');

/** "-A CHAIN spec" lines of one table of the observed state, for the given chains, in order. */
export function rulesOf(tables: IptablesTables, table: string, chains: readonly string[]): string[] {
  const state = tables.get(table);
  if (!state) return [];
  const wanted = new Set(chains);
  const byChain = new Map<string, string[]>();
  for (const r of state.rules) {
    if (!wanted.has(r.chain)) continue;
    byChain.set(r.chain, [...(byChain.get(r.chain) ?? []), `-A ${r.chain} ${r.spec}`.trimEnd()]);
  }
  return chains.flatMap((c) => byChain.get(c) ?? []);
}

async function rejectsWith(p: Promise<unknown>, code: DataplaneErrorCode, line?: number): Promise<DataplaneError> {
  let caught: unknown;
  await assert.rejects(p, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof DataplaneError, `expected a DataplaneError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.subsystem, 'iptables');
  if (line !== undefined) assert.equal(caught.opIndex, line, caught.message);
  return caught;
}

const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join('');

const ALL_OURS = {
  nat: [...OWNED_CHAINS.nat],
  filter: [...OWNED_CHAINS.filter],
};

/** Our chains' rules and the built-ins' rules, per table: what the contract compares. */
async function ourState(b: IptablesBackend): Promise<Record<string, string[]>> {
  const t = await b.observe();
  return {
    nat: rulesOf(t, 'nat', [...ALL_OURS.nat, 'PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-T1', 'KUBE-T2']),
    filter: rulesOf(t, 'filter', [...ALL_OURS.filter, 'INPUT', 'FORWARD', 'OUTPUT', 'KUBE-T1', 'KUBE-T2', 'KUBE-T3']),
    chains: [...(t.get('filter')?.chains.keys() ?? []), ...(t.get('nat')?.chains.keys() ?? [])].filter((c) => c.startsWith('KUBE-')).sort(),
  };
}

export interface ContractOptions {
  readonly family: IpFamily;
  /** A reason to skip (tools missing, not root), or false. */
  readonly skip?: string | false;
}

/** Registers the contract tests for one backend. `make` gives a fresh, empty backend per test. */
export function iptablesContract(name: string, make: () => Promise<ContractHarness>, options: ContractOptions): void {
  const { family } = options;
  const v4 = family === 'IPv4';
  const withHarness = async (fn: (h: ContractHarness) => Promise<void>): Promise<void> => {
    const h = await make();
    try {
      await fn(h);
    } finally {
      await h.cleanup();
    }
  };
  /** A table with user chains T1 → T2 (jump), T3 empty, for the refusal cases. */
  const base = lines('*filter', ':KUBE-T1 - [0:0]', ':KUBE-T2 - [0:0]', ':KUBE-T3 - [0:0]', '-A KUBE-T1 -j KUBE-T2', '-A KUBE-T2 -j ACCEPT', 'COMMIT');

  describe(`iptables contract: ${name} (${family})`, { skip: options.skip ?? false }, () => {
    // Each configuration whose rules differ (the --nodeport-addresses ones mostly change sets only).
    const rulesOf1 = (v: PlannerVariant): string => JSON.stringify(plannedFamily(v, family).iptables);
    for (const variant of distinctVariants(rulesOf1)) {
      it(`loads the planner's output (${variant.name}): iptables-save shows exactly the planned rules`, () =>
        withHarness(async (h) => {
          const f = plannedFamily(variant, family);
          await h.createSets(plannedSets(f));
          const payload = restorePayload(f.iptables, missingJumps(await h.backend.observe()));
          if (variant.outFilter && !h.ipvsMatch) {
            // A kernel without xt_ipvs refuses the first -m ipvs rule, and the filter table stays as it was.
            const line = payload.split('\n').findIndex((l) => l.includes(' -m ipvs ')) + 1;
            await rejectsWith(h.backend.restore(payload), 'UNAVAILABLE', line);
            assert.deepEqual(rulesOf(await h.backend.observe(), 'filter', ALL_OURS.filter), []);
            return;
          }
          await h.backend.restore(payload);
          const observed = await h.backend.observe();
          for (const t of f.iptables) {
            const planned = t.rules.map((r) => `-A ${r.chain} ${r.spec}`);
            assert.deepEqual(rulesOf(observed, t.table, [...t.chains]), rulesOf(new Map([[t.table, { chains: new Map(), rules: [...t.rules] }]]), t.table, [...t.chains]), `${t.table}:\n${planned.join('\n')}`);
          }
          assert.ok(chainsMatch(observed, f.iptables), 'every chain holds exactly the planned rules');
          assert.deepEqual(missingJumps(observed), []);
          const jumps = jumpRulesInChainOrder();
          for (const table of ['nat', 'filter'] as const) {
            const builtins = [...new Set(jumps.filter((j) => j.table === table).map((j) => j.from))];
            const want = builtins.flatMap((c) => jumps.filter((j) => j.table === table && j.from === c).map((j) => `-A ${c} ${jumpRuleSpec(j)}`));
            assert.deepEqual(rulesOf(observed, table, builtins), want, `${table} jumps`);
          }
          // The planner writes what iptables-save prints, so the next sync has nothing to do.
          const report = new SyncReport();
          assert.equal(await new IptablesReconciler(h.backend).sync(f.iptables, report), true);
          assert.deepEqual(report.failures, []);
          assert.equal(report.counts.get(`iptables.restore.${family}`), undefined, 'no second restore');
        }));
    }

    it('inserts the jumps from built-in chains at position 1 and deletes them by spec', () =>
      withHarness(async (h) => {
        const f = plannedFamily(plannerVariants()[0] as PlannerVariant, family);
        await h.createSets(plannedSets(f));
        await h.backend.restore(restorePayload(f.iptables, []));
        await h.backend.restore(JUMPS_PAYLOAD);
        const t = await h.backend.observe();
        assert.deepEqual(rulesOf(t, 'filter', ['INPUT', 'FORWARD']), [
          '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
          '-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
          '-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
          '-A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
          '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        ]);
        // Cleanup (kubernetes v1.36.3 pkg/proxy/ipvs/cleanup.go): delete the jumps, flush, then delete our chains, in one restore per table.
        const cleanup = lines(
          '*nat',
          '-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          '-D POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
          ...ALL_OURS.nat.map((c) => `-F ${c}`),
          ...ALL_OURS.nat.map((c) => `-X ${c}`),
          'COMMIT',
        );
        await h.backend.restore(cleanup);
        const after = await h.backend.observe();
        assert.deepEqual(rulesOf(after, 'nat', ['PREROUTING', 'OUTPUT', 'POSTROUTING']), []);
        assert.deepEqual([...(after.get('nat')?.chains.keys() ?? [])].filter((c) => c.startsWith('KUBE-')), []);
        // Deleting the jump again: the rule is gone.
        await rejectsWith(h.backend.restore(lines('*filter', '-D INPUT 4', 'COMMIT')), 'NOT_FOUND', 2);
        await h.backend.restore(lines('*filter', '-D INPUT 1', 'COMMIT'));
        assert.equal(rulesOf(await h.backend.observe(), 'filter', ['INPUT']).length, 2);
      }));

    it('rewrites only the chains a payload declares (--noflush)', () =>
      withHarness(async (h) => {
        const f = plannedFamily(plannerVariants()[0] as PlannerVariant, family);
        await h.createSets(plannedSets(f));
        await h.backend.restore(plannerPayload(f));
        await h.backend.restore(lines('*nat', ':KUBE-T1 - [0:0]', '-A KUBE-T1 -j ACCEPT', 'COMMIT'));
        await h.backend.restore(lines('*nat', ':KUBE-SERVICES - [0:0]', '-A KUBE-SERVICES -j KUBE-MARK-MASQ', '-A KUBE-T1 -j RETURN', 'COMMIT'));
        const t = await h.backend.observe();
        assert.deepEqual(rulesOf(t, 'nat', ['KUBE-SERVICES', 'KUBE-MARK-MASQ', 'KUBE-T1']), [
          '-A KUBE-SERVICES -j KUBE-MARK-MASQ',
          '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
          '-A KUBE-T1 -j ACCEPT',
          '-A KUBE-T1 -j RETURN',
        ]);
      }));

    it('sets a built-in chain policy and ignores one given for a user chain', () =>
      withHarness(async (h) => {
        await h.backend.restore(lines('*filter', ':FORWARD DROP [0:0]', ':KUBE-T1 DROP [0:0]', 'COMMIT'));
        const t = await h.backend.observe();
        assert.equal(t.get('filter')?.chains.get('FORWARD')?.policy, 'DROP');
        assert.equal(t.get('filter')?.chains.get('KUBE-T1')?.policy, undefined);
        await rejectsWith(h.backend.restore(lines('*filter', ':INPUT RETURN [0:0]', 'COMMIT')), 'INVALID', 2);
      }));

    it('commits each table at its COMMIT: a later table failing keeps the earlier one', () =>
      withHarness(async (h) => {
        await h.backend.restore(base);
        const before = await ourState(h.backend);
        const payload = lines(
          '*nat',
          ':KUBE-T1 - [0:0]',
          '-A KUBE-T1 -j RETURN',
          'COMMIT',
          '*filter',
          ':KUBE-T2 - [0:0]',
          ':KUBE-NEW - [0:0]',
          '-A KUBE-T2 -j KUBE-MISSING',
          'COMMIT',
        );
        await rejectsWith(h.backend.restore(payload), 'NOT_FOUND', 8);
        const after = await ourState(h.backend);
        assert.deepEqual(after['filter'], before['filter'], 'filter untouched (KUBE-T2 not flushed)');
        assert.deepEqual(after['nat'], ['-A KUBE-T1 -j RETURN']);
        assert.ok(!(after['chains'] ?? []).includes('KUBE-NEW'), 'KUBE-NEW not created');
      }));

    const refusals: readonly { what: string; payload: string; code: DataplaneErrorCode; line: number }[] = [
      { what: 'a jump to a missing chain', payload: lines('*filter', ':KUBE-T3 - [0:0]', '-A KUBE-T3 -j KUBE-NOPE', 'COMMIT'), code: 'NOT_FOUND', line: 3 },
      { what: 'a rule in a missing chain', payload: lines('*filter', '-A KUBE-NOPE -j ACCEPT', 'COMMIT'), code: 'NOT_FOUND', line: 2 },
      {
        what: '--match-set of a missing set',
        payload: lines('*filter', ':KUBE-T3 - [0:0]', '-A KUBE-T3 -m set --match-set KUBE-NO-SUCH-SET dst -j ACCEPT', 'COMMIT'),
        code: 'NOT_FOUND',
        line: 3,
      },
      { what: 'an unknown option', payload: lines('*filter', ':KUBE-T3 - [0:0]', '-A KUBE-T3 --bogus -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'a stray argument', payload: lines('*filter', '-A KUBE-T3 foo -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a port without its protocol', payload: lines('*filter', '-A KUBE-T3 --dport 80 -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'deleting a chain jumped to', payload: lines('*filter', '-F KUBE-T2', '-X KUBE-T2', 'COMMIT'), code: 'IN_USE', line: 3 },
      { what: 'deleting a chain with rules', payload: lines('*filter', '-X KUBE-T1', 'COMMIT'), code: 'IN_USE', line: 2 },
      { what: 'deleting a missing chain', payload: lines('*filter', '-X KUBE-NOPE', 'COMMIT'), code: 'NOT_FOUND', line: 2 },
      { what: 'flushing a missing chain', payload: lines('*filter', '-F KUBE-NOPE', 'COMMIT'), code: 'NOT_FOUND', line: 2 },
      { what: 'creating an existing chain', payload: lines('*filter', '-N KUBE-T3', 'COMMIT'), code: 'EXISTS', line: 2 },
      { what: 'deleting a missing rule', payload: lines('*filter', '-D KUBE-T3 -j ACCEPT', 'COMMIT'), code: 'NOT_FOUND', line: 2 },
      { what: 'deleting past the end', payload: lines('*filter', '-D KUBE-T2 2', 'COMMIT'), code: 'NOT_FOUND', line: 2 },
      { what: 'inserting past the end', payload: lines('*filter', '-I KUBE-T3 2 -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'MASQUERADE outside nat', payload: lines('*filter', '-A KUBE-T3 -j MASQUERADE', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a chain name over 28 characters', payload: lines('*filter', ':KUBE-ABCDEFGHIJKLMNOPQRSTUVWX - [0:0]', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an unknown table', payload: lines('*bogus', 'COMMIT'), code: 'INVALID', line: 1 },
      { what: 'a missing COMMIT', payload: lines('*filter', ':KUBE-T3 - [0:0]'), code: 'INVALID', line: 3 },
      { what: 'an unknown command', payload: lines('*filter', '-Q KUBE-T3', 'COMMIT'), code: 'INVALID', line: 2 },
      // What iptables-restore 1.8.9 (nf_tables) and the kernel refuse that the fake once took.
      { what: 'MARK without an operation', payload: lines('*nat', ':KUBE-T1 - [0:0]', '-A KUBE-T1 -j MARK', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'DROP in nat', payload: lines('*nat', ':KUBE-T1 - [0:0]', '-A KUBE-T1 -j DROP', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'REJECT in nat', payload: lines('*nat', ':KUBE-T1 - [0:0]', '-A KUBE-T1 -j REJECT', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'a prefix longer than the address', payload: lines('*filter', `-A KUBE-T3 -s ${v4 ? '10.0.0.0/33' : 'fd00::/129'} -j ACCEPT`, 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an address of the other family', payload: lines('*filter', `-A KUBE-T3 -d ${v4 ? 'fd00::1' : '10.0.0.1'} -j ACCEPT`, 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an inverted match-all address', payload: lines('*filter', `-A KUBE-T3 ! -s ${v4 ? '0.0.0.0/0' : '::/0'} -j ACCEPT`, 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an interface name over 15 characters', payload: lines('*filter', '-A KUBE-T3 -i abcdefghijklmnop -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: '-o in INPUT', payload: lines('*filter', '-A INPUT -o eth0 -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an unknown protocol', payload: lines('*filter', '-A KUBE-T3 -p bogus -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a port out of range', payload: lines('*filter', '-A KUBE-T3 -p tcp --dport 70000 -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'multiport without its protocol first', payload: lines('*filter', '-A KUBE-T3 -m multiport --dports 80,443 -p tcp -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a match without its option', payload: lines('*filter', '-A KUBE-T3 -m conntrack -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a bad conntrack state', payload: lines('*filter', '-A KUBE-T3 -m conntrack --ctstate BOGUS -j ACCEPT', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a reject type of the other family', payload: lines('*filter', `-A KUBE-T3 -j REJECT --reject-with ${v4 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'}`, 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'tcp-reset without -p tcp', payload: lines('*filter', '-A KUBE-T3 -j REJECT --reject-with tcp-reset', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'an option the target does not have', payload: lines('*filter', '-A KUBE-T3 -j ACCEPT --random', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'two targets', payload: lines('*filter', '-A KUBE-T3 -j ACCEPT -j DROP', 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'MASQUERADE reachable from OUTPUT', payload: lines('*nat', ':KUBE-T1 - [0:0]', '-A KUBE-T1 -j MASQUERADE', '-A OUTPUT -j KUBE-T1', 'COMMIT'), code: 'INVALID', line: 4 },
      { what: 'DNAT in POSTROUTING', payload: lines('*nat', `-A POSTROUTING -j DNAT --to-destination ${v4 ? '10.0.0.9' : 'fd00::9'}`, 'COMMIT'), code: 'INVALID', line: 2 },
      { what: 'a jump loop reachable from a built-in chain', payload: lines('*filter', '-A KUBE-T2 -j KUBE-T1', '-A INPUT -j KUBE-T1', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'a chain named like a target', payload: lines('*filter', ':DROP - [0:0]', 'COMMIT'), code: 'INVALID', line: 2 },
      // iptables-nft reports lookups at COMMIT, after every parse error of the table.
      { what: 'a parse error after a missing chain', payload: lines('*filter', '-A KUBE-T3 -j KUBE-NOPE', '-A KUBE-T3 --bogus', 'COMMIT'), code: 'INVALID', line: 3 },
      { what: 'a missing chain before a kernel refusal', payload: lines('*filter', '-A KUBE-T3 -j MASQUERADE', '-A KUBE-T3 -j KUBE-NOPE', 'COMMIT'), code: 'NOT_FOUND', line: 3 },
    ];
    for (const r of refusals) {
      it(`refuses ${r.what} with ${r.code}, changing nothing in that table`, () =>
        withHarness(async (h) => {
          await h.backend.restore(base);
          const before = await ourState(h.backend);
          const e = await rejectsWith(h.backend.restore(r.payload), r.code, r.line);
          assert.ok(e.message.includes(`line ${r.line}`), e.message);
          assert.deepEqual(await ourState(h.backend), before);
        }));
    }

    it("takes what iptables-nft takes: a refused append flushed before COMMIT, udp ports modulo 65536", () =>
      withHarness(async (h) => {
        await h.backend.restore(base);
        // iptables-nft drops a flushed chain's pending appends; a redeclaration does not.
        await h.backend.restore(lines('*filter', '-A KUBE-T3 -j MASQUERADE', '-F KUBE-T3', 'COMMIT'));
        await rejectsWith(h.backend.restore(lines('*filter', '-A KUBE-T3 -j MASQUERADE', ':KUBE-T3 - [0:0]', 'COMMIT')), 'INVALID', 2);
        await h.backend.restore(lines('*filter', '-A KUBE-T3 -p udp --dport 70000 -j ACCEPT', 'COMMIT'));
        assert.deepEqual(rulesOf(await h.backend.observe(), 'filter', ['KUBE-T3']), ['-A KUBE-T3 -p udp -m udp --dport 4464 -j ACCEPT']);
      }));

    // nf_tables bumps its generation at every committed transaction (nf_tables_commit); the periodic
    // resync trusts an unchanged one to mean unchanged rules, so a save must not move it and every
    // accepted restore, even one that changes nothing, must.
    it('the nf_tables ruleset generation: a save leaves it, each accepted restore moves it', () =>
      withHarness(async (h) => {
        const g0 = await h.backend.generation();
        assert.equal(typeof g0, 'number', 'an nf_tables build has a generation');
        await h.backend.observe();
        assert.equal(await h.backend.generation(), g0);
        await h.backend.restore(base);
        const g1 = await h.backend.generation();
        assert.notEqual(g1, g0);
        await h.backend.restore(base);
        const g2 = await h.backend.generation();
        assert.notEqual(g2, g1);
        await h.backend.observe();
        assert.equal(await h.backend.generation(), g2);
      }));

    it('reports MASQUERADE --random-fully support', async () => {
      await withHarness(async (h) => assert.equal(await h.backend.supportsRandomFully(), true));
    });
  });
}
