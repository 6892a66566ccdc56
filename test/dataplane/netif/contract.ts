// One sequence of link and address operations, run against the fake and (in a private network
// namespace) the real rtnetlink backend; both must give the same step-by-step results.
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
