// Private network namespaces for the real-ipset tests: ipsets are per netns, so the tests never see
// or touch the host's sets. Everything runs through argument arrays (no shell).
import { spawnSync } from 'node:child_process';
import { RealIpset } from '../../../src/dataplane/ipset/real.js';
import type { IpsetBackend } from '../../../src/dataplane/ipset/backend.js';
import type { IpsetHarness } from './contract.js';
import { NetlinkIpsetProxy } from './netlink-proxy.js';

let counter = 0;

function run(argv: readonly string[]): { ok: boolean; out: string } {
  const [file, ...args] = argv;
  if (file === undefined) return { ok: false, out: 'empty command' };
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error.message) : ''}`.trim();
  return { ok: r.status === 0, out };
}

/** Why the real suite cannot run here, or undefined when it can. */
export function realIpsetSkipReason(): string | undefined {
  const v = run(['ipset', '--version']);
  if (!v.ok) return `ipset binary unusable: ${v.out}`;
  const name = `kipvs-test-${process.pid}-probe`;
  const add = run(['ip', 'netns', 'add', name]);
  if (!add.ok) return `cannot create a network namespace (needs root): ${add.out}`;
  const probe = run(['ip', 'netns', 'exec', name, 'ipset', 'save']);
  run(['ip', 'netns', 'delete', name]);
  if (!probe.ok) return `ipset does not work in a network namespace: ${probe.out}`;
  return undefined;
}

function iptablesWorks(ns: string): boolean {
  return run(['ip', 'netns', 'exec', ns, 'iptables', '-w', '-S', 'INPUT']).ok;
}

export interface Netns {
  readonly name: string;
  /** argv prefix that runs a command inside the namespace. */
  readonly exec: readonly string[];
  delete(): void;
}

export function makeNetns(): Netns {
  const name = `kipvs-test-${process.pid}-${++counter}`;
  const add = run(['ip', 'netns', 'add', name]);
  if (!add.ok) throw new Error(`ip netns add ${name}: ${add.out}`);
  return {
    name,
    exec: ['ip', 'netns', 'exec', name],
    delete: () => {
      // Deleting the namespace frees its sets and iptables rules with it.
      run(['ip', 'netns', 'delete', name]);
    },
  };
}

/** A harness around `backend` in `ns`; references are iptables --match-set rules in it. */
function harnessIn(ns: Netns, backend: IpsetBackend, closeBackend: () => Promise<void>): IpsetHarness {
  const rule = (op: '-A' | '-D', set: string): Promise<void> => {
    const r = run([...ns.exec, 'iptables', '-w', op, 'INPUT', '-m', 'set', '--match-set', set, 'src', '-j', 'ACCEPT']);
    return r.ok ? Promise.resolve() : Promise.reject(new Error(`iptables ${op} --match-set ${set}: ${r.out}`));
  };
  const withRefs = iptablesWorks(ns.name);
  return {
    backend,
    ...(withRefs ? { reference: (s: string) => rule('-A', s), unreference: (s: string) => rule('-D', s) } : {}),
    close: async () => {
      await closeBackend();
      ns.delete();
    },
  };
}

/** A RealIpset inside a fresh namespace; references are iptables --match-set rules in it. */
export function makeRealHarness(): Promise<IpsetHarness> {
  const ns = makeNetns();
  return Promise.resolve(harnessIn(ns, new RealIpset({ command: [...ns.exec, 'ipset'] }), () => Promise.resolve()));
}

export interface NetlinkHarness extends IpsetHarness {
  readonly backend: NetlinkIpsetProxy;
  readonly ns: Netns;
  /** `ipset` (the tool) in the same namespace, for cross-checks. */
  tool(args: readonly string[], input?: string): { ok: boolean; out: string };
}

/** A NetlinkIpset inside a fresh namespace (in a child process: sockets belong to their netns). */
export async function makeNetlinkHarness(): Promise<NetlinkHarness> {
  const ns = makeNetns();
  let proxy: NetlinkIpsetProxy;
  try {
    proxy = await NetlinkIpsetProxy.start(ns.exec);
  } catch (e) {
    ns.delete();
    throw e;
  }
  return {
    ...harnessIn(ns, proxy, () => proxy.close()),
    backend: proxy,
    ns,
    tool: (args, input) => {
      const r = spawnSync('ip', ['netns', 'exec', ns.name, 'ipset', ...args], { encoding: 'utf8', timeout: 60_000, ...(input === undefined ? {} : { input }) });
      return { ok: r.status === 0, out: r.status === 0 ? (r.stdout ?? '') : `${r.stdout ?? ''}${r.stderr ?? ''}` };
    },
  };
}
