// EndpointSlices (discovery.k8s.io/v1) → endpoints per service port, merged the way kube-proxy's
// endpoint slice cache merges them: slices in name order, one entry per IP:port, a local copy
// preferred over a remote one, only the first address of each endpoint used.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { canonicalIp } from '../model/ip.js';
import { Label } from '../model/names.js';
import type { Endpoint, IpFamily, Protocol, ServiceEndpoints, ServiceKey } from '../model/types.js';
import { hostPort, PROTOCOLS, serviceKey, servicePortKey } from '../model/types.js';
import type { ProblemSink } from './problems.js';
import { arrayOf, isRecord, objectMeta } from './shape.js';
import { errorMessage } from '../model/error-text.js';

/** The service a slice belongs to, or undefined when kube-proxy ignores the slice. */
export function sliceServiceKey(slice: V1EndpointSlice): ServiceKey | undefined {
  const { namespace, labels } = objectMeta(slice);
  const svcName = labels[Label.SERVICE_NAME];
  if (!svcName) return undefined;
  if (Label.SERVICE_PROXY_NAME in labels || Label.HEADLESS in labels) return undefined;
  return serviceKey(namespace, svcName);
}

function sliceFamily(addressType: unknown): IpFamily | undefined {
  if (addressType === 'IPv4') return 'IPv4';
  if (addressType === 'IPv6') return 'IPv6';
  return undefined; // FQDN slices are ignored, as in kube-proxy
}

const NO_HINTS: readonly string[] = Object.freeze([]);

function hintNames(v: unknown): readonly string[] {
  if (!Array.isArray(v) || v.length === 0) return NO_HINTS;
  const out: string[] = [];
  for (const h of v) {
    if (h && typeof h === 'object' && typeof (h as { name?: unknown }).name === 'string') out.push((h as { name: string }).name);
  }
  return out;
}

/**
 * Builds the endpoints of one service from all its slices. `nodeName` decides which endpoints are
 * local (a local duplicate wins over a remote one).
 */
export function endpointsFromSlices(
  key: ServiceKey,
  slices: readonly V1EndpointSlice[],
  nodeName: string,
  report: ProblemSink,
): ServiceEndpoints {
  const [namespace = 'default', name = ''] = key.split('/');
  const byPort = new Map<string, Map<string, Endpoint>>();
  const nameOf = (sl: V1EndpointSlice): string => objectMeta(sl).name ?? '<unnamed>';
  const sorted = [...slices].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  for (const slice of sorted) {
    const sliceName = nameOf(slice);
    const problem = (field: string, reason: string): void =>
      report({ kind: 'EndpointSlice', namespace, name: sliceName, field, reason, effect: 'ignored-field' });
    const family = sliceFamily(slice.addressType);
    if (!family) {
      if (slice.addressType !== 'FQDN') problem('addressType', `${JSON.stringify(slice.addressType) ?? 'missing'} is not IPv4, IPv6 or FQDN; the slice is ignored`);
      continue;
    }
    try {
      addSlice(slice, family, nodeName, { namespace, name }, byPort, problem);
    } catch (e) {
      // A field of a type no check foresaw costs this slice only.
      problem('', `cannot be read (${errorMessage(e)}); the rest of the slice is ignored`);
    }
  }
  const result = new Map<string, readonly Endpoint[]>();
  for (const [k, v] of byPort) if (v.size > 0) result.set(k, [...v.values()]);
  return { key, byPort: result };
}

/** One slice's endpoints into `byPort` (per service port key, per IP:port). */
function addSlice(
  slice: V1EndpointSlice,
  family: IpFamily,
  nodeName: string,
  svc: { readonly namespace: string; readonly name: string },
  byPort: Map<string, Map<string, Endpoint>>,
  problem: (field: string, reason: string) => void,
): void {
  const ports = arrayOf(slice.ports) as NonNullable<V1EndpointSlice['ports']>;
  const endpoints = arrayOf(slice.endpoints) as V1EndpointSlice['endpoints'];
  ports.forEach((p, pi) => {
    if (!isRecord(p)) return;
    if (p.port === undefined || p.port === null) return; // kube-proxy skips ports without a number
    if (typeof p.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      problem(`ports[${pi}].port`, `${JSON.stringify(p.port)} is not a valid port (1-65535)`);
      return;
    }
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    if (!PROTOCOLS.includes(protocol)) {
      problem(`ports[${pi}].protocol`, `unknown protocol ${JSON.stringify(p.protocol)}; use TCP, UDP or SCTP`);
      return;
    }
    if (p.name !== undefined && p.name !== null && typeof p.name !== 'string') {
      problem(`ports[${pi}].name`, 'must be a string');
      return;
    }
    const portKey = servicePortKey({ namespace: svc.namespace, name: svc.name, port: p.name ?? '', protocol });
    let set = byPort.get(portKey);
    if (!set) byPort.set(portKey, (set = new Map()));
    endpoints.forEach((ep, ei) => {
      if (!isRecord(ep) || !Array.isArray(ep.addresses) || ep.addresses.length === 0) return;
      const raw = ep.addresses[0];
      const ip = typeof raw === 'string' ? canonicalIp(raw) : undefined;
      // Canonical text: the separator tells the family without parsing again.
      if (!ip || ip.includes(':') !== (family === 'IPv6')) {
        // Reported once per slice, on its first port, not once per port.
        if (pi === 0) problem(`endpoints[${ei}].addresses[0]`, `${JSON.stringify(raw)} is not a valid ${family} address`);
        return;
      }
      const c = isRecord(ep.conditions) ? ep.conditions : {};
      const ready = c.ready ?? true;
      const e: Endpoint = {
        ip,
        port: p.port as number,
        family,
        nodeName: typeof ep.nodeName === 'string' ? ep.nodeName : undefined,
        zone: typeof ep.zone === 'string' ? ep.zone : undefined,
        ready: ready === true,
        serving: (c.serving ?? ready) === true,
        terminating: c.terminating === true,
        zoneHints: hintNames(isRecord(ep.hints) ? ep.hints.forZones : undefined),
        nodeHints: hintNames(isRecord(ep.hints) ? ep.hints.forNodes : undefined),
      };
      const id = hostPort(ip, e.port);
      if (!set.has(id) || e.nodeName === nodeName) set.set(id, e);
    });
  });
}
