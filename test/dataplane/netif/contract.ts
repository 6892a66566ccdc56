// Sequences of link and address operations, one written out and many generated, run against the
// fake and (in a private network namespace) the real rtnetlink backend; both must give the same
// step-by-step results.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { InterfaceAddress } from '../../../src/dataplane/netif/backend.js';
import type { NetifAddressOp, NetifLink, NetifOpResult } from '../../../src/dataplane/netif/real.js';

export interface ContractNetif {
  ensureDummy(name: string): Promise<{ readonly created: boolean }>;
  deleteDummy(name: string): Promise<{ readonly deleted: boolean }>;
  ensureLink(name: string, kind: string): Promise<{ readonly created: boolean }>;
  deleteLink(name: string, kind: string): Promise<{ readonly deleted: boolean }>;
  link(name: string): Promise<NetifLink | undefined>;
  addresses(): Promise<InterfaceAddress[]>;
  bind(dev: string, ip: string): Promise<void>;
  unbind(dev: string, ip: string): Promise<void>;
  bindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]>;
  unbindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]>;
}

/** Puts a wider (non-host) address on a link, as the host's own configuration would. */
export type AddCidr = (dev: string, cidr: string) => Promise<void>;

export type Step = readonly [string, unknown];

const DEV = 'kipvs-test';

function outcome(r: NetifOpResult): unknown {
  return r.ok ? 'ok' : r.error.code;
}

async function addressesOf(n: ContractNetif, dev: string): Promise<string[]> {
  return (await n.addresses())
    .filter((a) => a.ifname === dev)
    .map((a) => `${a.address}/${a.prefix}`)
    .sort();
}

export async function runContract(n: ContractNetif, addCidr: AddCidr): Promise<Step[]> {
  const steps: Step[] = [];
  const step = async (name: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      const v = await f();
      steps.push([name, v === undefined ? 'ok' : v]);
    } catch (e) {
      steps.push([name, `error ${(e as { code?: string }).code ?? String(e)}`]);
    }
  };
  await step('ensureDummy', () => n.ensureDummy('kipvs-dummy'));
  await step('deleteDummy', () => n.deleteDummy('kipvs-dummy'));
  await step('deleteDummy missing', () => n.deleteDummy('kipvs-dummy'));
  await step('ensureDummy bad name', () => n.ensureDummy('a-name-far-too-long'));
  await step('create', () => n.ensureLink(DEV, 'bridge'));
  await step('create again', () => n.ensureLink(DEV, 'bridge'));
  await step('ensureDummy over bridge', () => n.ensureDummy(DEV));
  await step('kind', async () => (await n.link(DEV))?.kind);
  await step('bind v4', () => n.bind(DEV, '10.96.0.1'));
  await step('bind v4 again', () => n.bind(DEV, '10.96.0.1'));
  await step('bind v6', () => n.bind(DEV, 'fd00:0:0::0a'));
  await step('bind v6 again', () => n.bind(DEV, 'fd00::a'));
  await step('bind bad ip', () => n.bind(DEV, '10.96.0.300'));
  // Addresses the kernel will not hold on an interface; 0.0.0.0 it takes and drops.
  await step('bind multicast v6', () => n.bind(DEV, 'ff02::5'));
  await step('bind unspecified v6', () => n.bind(DEV, '::'));
  await step('bind loopback v6 off lo', () => n.bind(DEV, '::1'));
  await step('bind unspecified v4', () => n.bind(DEV, '0.0.0.0'));
  await step('bind missing link', () => n.bind('kipvs-none', '10.96.0.1'));
  await step('unbind missing link', () => n.unbind('kipvs-none', '10.96.0.1'));
  await step('addresses', () => addressesOf(n, DEV));
  // The host prefix and a wider address with the same IP: IPv4 keeps both, IPv6 refuses the
  // second (EEXIST, which bind counts as success); unbind removes only the host prefix.
  await step('wider v4', () => addCidr(DEV, '10.0.0.5/24'));
  await step('wider v6', () => addCidr(DEV, 'fd00:1::5/64'));
  await step('bind over wider v4', () => n.bind(DEV, '10.0.0.5'));
  await step('bind over wider v6', () => n.bind(DEV, 'fd00:1::5'));
  await step('addresses with wider', () => addressesOf(n, DEV));
  await step('unbind v4 over wider', () => n.unbind(DEV, '10.0.0.5'));
  await step('unbind v6 over wider', () => n.unbind(DEV, 'fd00:1::5'));
  await step('addresses after', () => addressesOf(n, DEV));
  await step('bindMany', async () =>
    (
      await n.bindMany([
        { dev: DEV, ip: '10.96.0.2' },
        { dev: DEV, ip: '10.96.0.1' },
        { dev: 'kipvs-none', ip: '10.96.0.3' },
        { dev: DEV, ip: 'nope' },
        { dev: DEV, ip: 'fd00::b' },
      ])
    ).map(outcome),
  );
  await step('addresses after bindMany', () => addressesOf(n, DEV));
  await step('unbindMany', async () =>
    (
      await n.unbindMany([
        { dev: DEV, ip: '10.96.0.2' },
        { dev: DEV, ip: '10.96.0.2' },
        { dev: 'kipvs-none', ip: '10.96.0.3' },
        { dev: DEV, ip: 'fd00::b' },
        { dev: DEV, ip: 'fd00::a' },
      ])
    ).map(outcome),
  );
  await step('unbind v4', () => n.unbind(DEV, '10.96.0.1'));
  await step('unbind v4 again', () => n.unbind(DEV, '10.96.0.1'));
  await step('addresses at end', () => addressesOf(n, DEV));
  await step('deleteDummy on bridge', () => n.deleteDummy(DEV));
  await step('delete', () => n.deleteLink(DEV, 'bridge'));
  await step('gone', async () => (await n.link(DEV)) === undefined);
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Generated sequences: links of one kind (dummy in the VM, bridge where the kernel lacks dummy),
// binds and unbinds of usable and unusable addresses, one by one and batched, on present,
// missing and badly named links. run on the fake and on the kernel, step for step.

export type NetifOp =
  | { readonly op: 'ensureLink' | 'deleteLink'; readonly name: string }
  | { readonly op: 'bind' | 'unbind'; readonly dev: string; readonly ip: string }
  | { readonly op: 'bindMany' | 'unbindMany'; readonly ops: readonly NetifAddressOp[] };

/** Links a sequence may create; everything else it names is lo, missing or invalid. */
export const GENERATED_LINKS = ['kipvs-a', 'kipvs-b'];

const DEVS = [...GENERATED_LINKS, ...GENERATED_LINKS, 'lo', 'kipvs-none', 'a-name-far-too-long', 'bad/name'];
const IPS = [
  '10.96.0.1', '10.96.0.2', '192.0.2.1', '127.0.0.2', '255.255.255.255', '224.0.0.1', '169.254.1.1', '0.0.0.0',
  'fd00::1', 'FD00:0::2', 'fe80::1', '::ffff:10.0.0.1', '::1', '::', 'ff02::5', 'ff05::1:3', '10.96.0.300', 'nope',
];

export function netifOpsArb(): fc.Arbitrary<NetifOp[]> {
  const dev = fc.constantFrom(...DEVS);
  const ip = fc.constantFrom(...IPS);
  const addressOp = fc.record({ dev, ip });
  return fc.array(
    fc.oneof(
      { arbitrary: fc.record({ op: fc.constantFrom('ensureLink' as const, 'deleteLink' as const), name: fc.constantFrom(...GENERATED_LINKS, 'lo', 'a-name-far-too-long') }), weight: 2 },
      { arbitrary: fc.record({ op: fc.constantFrom('bind' as const, 'unbind' as const), dev, ip }), weight: 5 },
      { arbitrary: fc.record({ op: fc.constantFrom('bindMany' as const, 'unbindMany' as const), ops: fc.array(addressOp, { minLength: 1, maxLength: 5 }) }), weight: 2 },
    ),
    { minLength: 1, maxLength: 12 },
  );
}

/** Our links (kind) and every address on them and on lo, sorted: what the step left behind. */
async function netifState(n: ContractNetif): Promise<string[]> {
  const names = [...GENERATED_LINKS, 'lo'];
  const links: string[] = [];
  for (const name of GENERATED_LINKS) {
    const l = await n.link(name);
    if (l) links.push(`${l.name} ${l.kind}`);
  }
  const addrs = (await n.addresses()).filter((a) => names.includes(a.ifname)).map((a) => `${a.ifname} ${a.address}/${a.prefix}`);
  return [...links, ...addrs.sort()];
}

/** One step's outcome and the state after it. */
export type GeneratedStep = readonly [string, unknown, readonly string[]];

/** Runs one sequence with links of `kind`, then removes the links it made and lo's addresses. */
export async function runGenerated(n: ContractNetif, ops: readonly NetifOp[], kind: string): Promise<GeneratedStep[]> {
  const steps: GeneratedStep[] = [];
  const outcomeOf = async (f: () => Promise<unknown>): Promise<unknown> => {
    try {
      const v = await f();
      return v === undefined ? 'ok' : v;
    } catch (e) {
      return `error ${(e as { code?: string }).code ?? String(e)}`;
    }
  };
  for (const o of ops) {
    let result: unknown;
    switch (o.op) {
      case 'ensureLink':
        result = await outcomeOf(() => n.ensureLink(o.name, kind));
        break;
      case 'deleteLink':
        result = await outcomeOf(() => n.deleteLink(o.name, kind));
        break;
      case 'bind':
        result = await outcomeOf(() => n.bind(o.dev, o.ip));
        break;
      case 'unbind':
        result = await outcomeOf(() => n.unbind(o.dev, o.ip));
        break;
      case 'bindMany':
        result = await outcomeOf(async () => (await n.bindMany(o.ops)).map(outcome));
        break;
      case 'unbindMany':
        result = await outcomeOf(async () => (await n.unbindMany(o.ops)).map(outcome));
        break;
    }
    steps.push([JSON.stringify(o), result, await netifState(n)]);
  }
  for (const name of GENERATED_LINKS) await n.deleteLink(name, kind);
  for (const a of await n.addresses()) if (a.ifname === 'lo') await n.unbind('lo', a.address);
  return steps;
}

/**
 * Requires the fake to give every generated sequence's steps exactly as the kernel did, and the
 * sequences to have met refusals (not only the happy path). Returns how many steps were refused.
 */
export async function assertFakeMatches(sequences: readonly (readonly NetifOp[])[], real: readonly (readonly GeneratedStep[])[], makeFake: () => ContractNetif, kind: string): Promise<number> {
  let refused = 0;
  for (const [i, ops] of sequences.entries()) {
    const fake = await runGenerated(makeFake(), ops, kind);
    const kernel = real[i] ?? [];
    for (const [j, step] of kernel.entries()) {
      assert.deepEqual(fake[j], step, `sequence ${i} step ${j} (${step[0]}): kernel ${JSON.stringify(step[1])}, fake ${JSON.stringify(fake[j]?.[1])}`);
      if (JSON.stringify(step[1]).includes('INVALID')) refused++;
    }
    assert.equal(fake.length, kernel.length);
  }
  assert.ok(refused > sequences.length / 4, `only ${refused} refused steps`);
  return refused;
}
