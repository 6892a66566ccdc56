// Builders for Kubernetes objects and planner inputs, so tests read like the cluster they describe.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config/load.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { buildNodeInfo } from '../../src/cluster/node.js';
import type { Problem } from '../../src/cluster/problems.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import type { ClusterSnapshot } from '../../src/cluster/tracker.js';
import type { IpFamily, NodeInfo } from '../../src/model/types.js';
import type { DesiredState } from '../../src/plan/desired.js';
import { planCluster } from '../../src/plan/planner.js';

export const NODE = 'node-a';
export const NODE_IP = '192.168.0.10';

/** A ProxyConfig from kube-proxy flags, e.g. config('--masquerade-all'). */
export function config(...flags: string[]): ProxyConfig {
  return loadConfig(['--hostname-override', NODE, ...flags], { extraFlags: [], hostname: NODE, readFile: () => '' }).config;
}

/**
 * A node whose Node object lists `addresses` as InternalIPs (so the first of each family is its
 * node IP) and whose interfaces hold them; both families proxied, as on any host with iptables
 * and ip6tables, unless `families` says otherwise.
 */
export function node(opts: { addresses?: string[]; labels?: Record<string, string>; kernel?: string; families?: IpFamily[] } = {}): NodeInfo {
  const addresses = opts.addresses ?? [NODE_IP];
  return buildNodeInfo({
    name: NODE,
    node: { metadata: { name: NODE, labels: opts.labels ?? {} }, status: { addresses: addresses.map((address) => ({ type: 'InternalIP', address })) } },
    addresses,
    families: opts.families ?? ['IPv4', 'IPv6'],
    kernelVersion: opts.kernel ?? '6.1.0',
  });
}

type Spec = NonNullable<V1Service['spec']>;

export function service(name: string, spec: Spec, extra: Partial<V1Service> = {}, namespace = 'default'): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, ...extra.metadata }, spec, ...(extra.status ? { status: extra.status } : {}) };
}

export interface Ep {
  ip: string;
  node?: string;
  zone?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zoneHints?: string[];
  nodeHints?: string[];
}

export function slice(
  svc: string,
  ports: Array<{ name?: string; port: number; protocol?: string }>,
  eps: Ep[],
  opts: { name?: string; namespace?: string; addressType?: string } = {},
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: opts.name ?? `${svc}-slice`, namespace: opts.namespace ?? 'default', labels: { 'kubernetes.io/service-name': svc } },
    addressType: opts.addressType ?? (eps[0]?.ip.includes(':') ? 'IPv6' : 'IPv4'),
    ports,
    endpoints: eps.map((e) => ({
      addresses: [e.ip],
      ...(e.node ? { nodeName: e.node } : {}),
      ...(e.zone ? { zone: e.zone } : {}),
      conditions: {
        ...(e.ready !== undefined ? { ready: e.ready } : {}),
        ...(e.serving !== undefined ? { serving: e.serving } : {}),
        ...(e.terminating !== undefined ? { terminating: e.terminating } : {}),
      },
      ...(e.zoneHints || e.nodeHints
        ? { hints: { forZones: (e.zoneHints ?? []).map((name) => ({ name })), forNodes: (e.nodeHints ?? []).map((name) => ({ name })) } }
        : {}),
    })),
  };
}

export interface World {
  services?: V1Service[];
  slices?: V1EndpointSlice[];
}

export function snapshotOf(world: World, problems: Problem[] = []): ClusterSnapshot {
  const t = new ClusterTracker(NODE, (p) => problems.push(p));
  for (const s of world.services ?? []) t.upsertService(s);
  for (const s of world.slices ?? []) t.upsertEndpointSlice(s);
  return t.drain().snapshot;
}

export function plan(world: World, opts: { config?: ProxyConfig; node?: NodeInfo; problems?: Problem[] } = {}): DesiredState {
  return planCluster(snapshotOf(world, opts.problems), { node: opts.node ?? node(), config: opts.config ?? config() });
}

/** The single family's state (IPv4 unless asked). */
export function fam(state: DesiredState, family: 'IPv4' | 'IPv6' = 'IPv4') {
  const f = state.families.find((x) => x.family === family);
  if (!f) throw new Error(`no ${family} state`);
  return f;
}

/** Entries of a set by kernel name. */
export function setEntries(state: DesiredState, name: string): string[] {
  for (const f of state.families) {
    const s = f.ipsets.find((x) => x.spec.name === name);
    if (s) return [...s.entries].sort();
  }
  throw new Error(`no set ${name}`);
}

/** "IP:port -> rs1,rs2" for quick real-server assertions. */
export function realServers(state: DesiredState, vsKey: string): string[] | undefined {
  for (const f of state.families) {
    const spec = f.virtualServers.get(vsKey);
    if (spec) return spec.realServers.map((r) => (r.address.includes(':') ? `[${r.address}]:${r.port}` : `${r.address}:${r.port}`));
  }
  return undefined;
}

/** "-A CHAIN spec" lines of one table of one family. */
export function rules(state: DesiredState, table: 'nat' | 'filter', family: 'IPv4' | 'IPv6' = 'IPv4'): string[] {
  const t = fam(state, family).iptables.find((x) => x.table === table);
  return (t?.rules ?? []).map((r) => `-A ${r.chain} ${r.spec}`);
}
