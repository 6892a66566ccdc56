// The periodic full resync reads iptables-save only when nf_tables' ruleset generation says
// something may have changed. The kernel bumps that generation on every committed nf_tables
// transaction (net/netfilter/nf_tables_api.c, nf_tables_commit), which is every iptables-nft
// write; a legacy xtables build has none. The fake models both (a restore or a load bumps it).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeIptables } from '../../src/dataplane/iptables/fake.js';
import { IptablesReconciler } from '../../src/sync/iptables-reconciler.js';
import { SyncReport } from '../../src/sync/report.js';
import type { IptablesTable } from '../../src/model/kernel.js';
import { fakeNode } from '../helpers/fake-dataplane.js';
import { service, slice, NODE } from '../helpers/world.js';

const ACCESS_JUMP = '-D INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER';

function programmed() {
  const n = fakeNode();
  n.apply({
    services: [service('web', { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, nodePort: 30080 }] })],
    slices: [slice('web', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.2', node: NODE }])],
  });
  return n;
}

/** Observes (iptables-save runs) and restores of one full sync. */
async function fullSync(n: ReturnType<typeof fakeNode>) {
  const [observes, restores] = [n.iptables.observes, n.iptables.restores];
  const r = await n.proxier.sync({ full: true });
  assert.deepEqual(r.report.failures, []);
  return { saves: n.iptables.observes - observes, restores: n.iptables.restores - restores, drift: r.report.drift.get('iptables') ?? 0 };
}

describe('iptables and the nf_tables ruleset generation', () => {
  test('an idle node saves once after its own restore, then not while nothing is committed', async () => {
    const n = programmed();
    assert.deepEqual(await fullSync(n), { saves: 1, restores: 1, drift: 0 });
    // Our own restore moved the generation: it cannot vouch for what others did meanwhile.
    assert.deepEqual(await fullSync(n), { saves: 1, restores: 0, drift: 0 });
    assert.deepEqual(await fullSync(n), { saves: 0, restores: 0, drift: 0 });
    assert.deepEqual(await fullSync(n), { saves: 0, restores: 0, drift: 0 });
  });

  test("another writer's commit makes the next full sync read; a removed jump is found and put back", async () => {
    const n = programmed();
    await fullSync(n);
    await fullSync(n);
    const intact = n.iptables.dump();
    // A commit that leaves our rules alone: read, nothing to repair.
    await n.iptables.restore('*filter\n:OTHER-FIREWALL - [0:0]\nCOMMIT\n');
    assert.deepEqual(await fullSync(n), { saves: 1, restores: 0, drift: 0 });
    assert.deepEqual(await fullSync(n), { saves: 0, restores: 0, drift: 0 });
    await n.iptables.restore(`*filter\n${ACCESS_JUMP}\nCOMMIT\n`);
    assert.deepEqual(await fullSync(n), { saves: 1, restores: 1, drift: 1 });
    assert.equal(n.iptables.dump().replace(/^:OTHER-FIREWALL .*\n/m, ''), intact);
  });

  test('a legacy build, which has no generation, is saved at every full sync', async () => {
    const iptables = new FakeIptables({ family: 'IPv4', legacy: true });
    const r = new IptablesReconciler(iptables);
    const tables = await plannedTables();
    for (let i = 0; i < 4; i++) assert.equal(await r.sync(tables, new SyncReport()), true);
    assert.equal(iptables.observes, 4);
    assert.equal(iptables.restores, 1);
  });

  test('a generation that cannot be read (a refused netlink request) leaves the save in place', async () => {
    class Unreadable extends FakeIptables {
      override generation(): Promise<number | undefined> {
        return Promise.reject(new Error('nfnetlink: Operation not permitted'));
      }
    }
    const iptables = new Unreadable({ family: 'IPv4' });
    const r = new IptablesReconciler(iptables);
    const tables = await plannedTables();
    for (let i = 0; i < 3; i++) assert.equal(await r.sync(tables, new SyncReport()), true);
    assert.deepEqual([iptables.observes, iptables.restores], [3, 1]);
  });

  test('new rules are written even when the generation has not moved', async () => {
    const iptables = new FakeIptables({ family: 'IPv4' });
    const r = new IptablesReconciler(iptables);
    const tables = await plannedTables();
    await r.sync(tables, new SyncReport());
    await r.sync(tables, new SyncReport());
    assert.equal(await r.sync(tables, new SyncReport()), true);
    assert.deepEqual([iptables.observes, iptables.restores], [2, 1]);
    // The planner hands over a new array when the rules change: read and write it.
    const more = tables.map((t) => (t.table === 'filter' ? { ...t, chains: [...t.chains, 'KUBE-EXTRA'], rules: [...t.rules, { chain: 'KUBE-EXTRA', spec: '-j RETURN' }] } : t));
    const report = new SyncReport();
    assert.equal(await r.sync(more, report), true);
    assert.deepEqual([iptables.observes, iptables.restores], [3, 2]);
    assert.match(iptables.dump(), /^-A KUBE-EXTRA -j RETURN$/m);
  });
});

/** The planner's IPv4 tables for a small cluster. */
async function plannedTables(): Promise<readonly IptablesTable[]> {
  const state = await programmed().proxier.preview();
  const fam = state.families.find((f) => f.family === 'IPv4');
  assert.ok(fam);
  return fam.iptables;
}
