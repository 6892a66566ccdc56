// Service (v1) → ServiceInfo, with kube-proxy's skip rules and per-field validation. Objects come
// from the API (already validated there) or from hand-written manifests (not validated), so every
// field is checked before use.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import { canonicalCidr, canonicalIp, isLinkLocal, isLoopback, parseIp } from '../model/ip.js';
import { Annotation, Label } from '../model/names.js';
import { isScheduler, VsFlag } from '../model/kernel.js';
import type { Protocol, ServiceInfo, ServicePort } from '../model/types.js';
import { PROTOCOLS, serviceKey, servicePortKey } from '../model/types.js';
import type { ProblemSink } from './problems.js';
import { isRecord, objectMeta } from './shape.js';
import { errorMessage } from '../model/error-text.js';

/** The API server's default for sessionAffinityConfig.clientIP.timeoutSeconds (3 hours). */
export const DEFAULT_STICKY_SECONDS = 10800;
const MAX_STICKY_SECONDS = 86400;

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

class InvalidService extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(reason);
  }
}

function isPort(v: unknown, min = 1): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= 65535;
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new InvalidService(field, 'must be a list of strings');
  }
  return v as string[];
}

/**
 * Why the API server (v1.36.3, StrictIPCIDRValidation on by default) would refuse this value in a
 * legacy IP field (`IsValidIPForLegacyField`, apimachinery pkg/util/validation/ip.go), and for
 * spec.externalIPs also `ValidateEndpointIP` (pkg/apis/core/validation/validation.go); undefined
 * when it accepts it. Status load balancer ingress IPs get the first check only: the API server
 * takes 0.0.0.0 or a loopback address there.
 */
export function apiIpRefusal(text: string, field: 'externalIP' | 'ingressIP'): string | undefined {
  // ParseIPSloppy neither trims nor takes a zone; leading 0s fail to parse here already.
  const ip = text.trim() === text ? parseIp(text) : undefined;
  if (!ip) return `${JSON.stringify(text)} is not a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)`;
  const b = ip.bytes;
  if (ip.family === 'IPv6' && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `${JSON.stringify(text)} must not be an IPv4-mapped IPv6 address`;
  }
  if (field === 'ingressIP') return undefined;
  if (b.every((x) => x === 0)) return `${JSON.stringify(text)} may not be unspecified`;
  if (isLoopback(ip)) return `${JSON.stringify(text)} may not be in the loopback range (127.0.0.0/8, ::1/128)`;
  if (isLinkLocal(ip)) return `${JSON.stringify(text)} may not be in the link-local range (169.254.0.0/16, fe80::/10)`;
  // Go's IsLinkLocalMulticast: 224.0.0.0/24, and ffX2::/16 whatever the flags nibble X.
  const llMulticast = ip.family === 'IPv4' ? b[0] === 224 && b[1] === 0 && b[2] === 0 : b[0] === 0xff && ((b[1] ?? 0) & 0x0f) === 0x02;
  if (llMulticast) return `${JSON.stringify(text)} may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)`;
  return undefined;
}

/** spec.externalIPs, canonical; a value the API server refuses refuses the whole Service, as there. */
function externalIps(v: unknown, field: string): string[] {
  return stringList(v, field).map((s, i) => {
    const refusal = apiIpRefusal(s, 'externalIP');
    if (refusal) throw new InvalidService(`${field}[${i}]`, `${refusal}; the API server refuses it`);
    return canonicalIp(s) as string;
  });
}

/** Whether kube-proxy would ignore this Service altogether (no problem to report). */
export function isIgnoredService(svc: V1Service): boolean {
  const labels = objectMeta(svc).labels;
  return Label.SERVICE_PROXY_NAME in labels || Label.HEADLESS in labels;
}

/** Scheduler flag names accepted in the kube-ipvs.io/scheduler-flags annotation. */
const SCHEDULER_FLAG_NAMES: Readonly<Record<string, number>> = {
  'flag-1': VsFlag.SCHED1,
  'flag-2': VsFlag.SCHED2,
  'flag-3': VsFlag.SCHED3,
  'sh-fallback': VsFlag.SCHED1,
  'sh-port': VsFlag.SCHED2,
  'mh-fallback': VsFlag.SCHED1,
  'mh-port': VsFlag.SCHED2,
};

interface SchedulerChoice {
  scheduler: string | undefined;
  flags: number;
}

function schedulerFromAnnotations(svc: V1Service, report: (field: string, reason: string) => void): SchedulerChoice {
  const annotations = objectMeta(svc).annotations;
  const choice: SchedulerChoice = { scheduler: undefined, flags: 0 };
  const sched = annotations[Annotation.SCHEDULER];
  if (sched !== undefined) {
    const s = sched.trim();
    if (isScheduler(s)) choice.scheduler = s;
    else report(`metadata.annotations["${Annotation.SCHEDULER}"]`, `unknown IPVS scheduler ${JSON.stringify(sched)}; use one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos`);
  }
  const flagsText = annotations[Annotation.SCHEDULER_FLAGS];
  if (flagsText !== undefined) {
    let flags = 0;
    for (const raw of flagsText.split(',')) {
      const name = raw.trim();
      if (!name) continue;
      const bit = SCHEDULER_FLAG_NAMES[name];
      if (bit === undefined) {
        report(`metadata.annotations["${Annotation.SCHEDULER_FLAGS}"]`, `unknown scheduler flag ${JSON.stringify(name)}; use flag-1, flag-2, flag-3, sh-fallback, sh-port, mh-fallback or mh-port`);
        flags = -1;
        break;
      }
      flags |= bit;
    }
    if (flags >= 0) choice.flags = flags;
  }
  return choice;
}

/**
 * Builds the ServiceInfo of a Service, or undefined when kube-proxy would not proxy it (headless,
 * ExternalName, labelled for another proxy) or when it is malformed (reported through `report`).
 */
export function toServiceInfo(svc: V1Service, report: ProblemSink): ServiceInfo | undefined {
  const { namespace, name } = objectMeta(svc);
  const problem = (field: string, reason: string, effect: 'skipped' | 'ignored-field'): void =>
    report({ kind: 'Service', namespace, name: name ?? '<unnamed>', field, reason, effect });
  if (name === undefined) {
    problem('metadata.name', 'missing or not a string', 'skipped');
    return undefined;
  }
  if (isIgnoredService(svc)) return undefined;
  try {
    return buildServiceInfo(svc, namespace, name, (field, reason) => problem(field, reason, 'ignored-field'));
  } catch (e) {
    // A field of a type no check foresaw must cost this Service only, never the sync.
    problem(e instanceof InvalidService ? e.field : '', e instanceof InvalidService ? e.message : `cannot be read (${errorMessage(e)}); check its fields against the Service API`, 'skipped');
    return undefined;
  }
}

function buildServiceInfo(
  svc: V1Service,
  namespace: string,
  name: string,
  warn: (field: string, reason: string) => void,
): ServiceInfo | undefined {
  const spec = svc.spec;
  if (!spec || !isRecord(spec as unknown)) throw new InvalidService('spec', 'missing or not an object');
  const type = spec.type ?? 'ClusterIP';
  if (!(SERVICE_TYPES as readonly unknown[]).includes(type)) {
    throw new InvalidService('spec.type', `unknown type ${JSON.stringify(type)}; use ClusterIP, NodePort, LoadBalancer or ExternalName`);
  }
  if (type === 'ExternalName') return undefined;

  if (spec.clusterIPs !== undefined && spec.clusterIPs !== null && !Array.isArray(spec.clusterIPs)) throw new InvalidService('spec.clusterIPs', 'must be a list of IP addresses');
  const fromList = Array.isArray(spec.clusterIPs) && spec.clusterIPs.length > 0;
  const rawClusterIPs: readonly unknown[] = fromList ? (spec.clusterIPs as unknown[]) : spec.clusterIP ? [spec.clusterIP] : [];
  if (rawClusterIPs[0] === 'None') return undefined; // headless
  // The API server allocates one; a manifest must say it.
  if (rawClusterIPs.length === 0) throw new InvalidService('spec.clusterIP', 'missing: set it in the manifest (the API server would allocate one), or None for a headless Service');
  const clusterIPs = rawClusterIPs.map((s, i) => {
    const ip = typeof s === 'string' ? canonicalIp(s) : undefined;
    if (!ip) throw new InvalidService(fromList ? `spec.clusterIPs[${i}]` : 'spec.clusterIP', `${JSON.stringify(s) ?? String(s)} is not a valid IP address`);
    return ip;
  });
  if (clusterIPs.length > 2 || (clusterIPs.length === 2 && clusterIPs[0]?.includes(':') === clusterIPs[1]?.includes(':'))) {
    throw new InvalidService('spec.clusterIPs', 'must hold at most one address per IP family');
  }

  const externalIPs = externalIps(spec.externalIPs, 'spec.externalIPs');
  const sourceRanges = stringList(spec.loadBalancerSourceRanges, 'spec.loadBalancerSourceRanges').map((s, i) => {
    // The API server mistakenly allows whitespace around ranges; kube-proxy trims it.
    const cidr = canonicalCidr(s.trim());
    if (!cidr) throw new InvalidService(`spec.loadBalancerSourceRanges[${i}]`, `${JSON.stringify(s)} is not a valid CIDR`);
    return cidr;
  });

  const lbVIPs: string[] = [];
  const ingress = svc.status?.loadBalancer?.ingress ?? [];
  if (!Array.isArray(ingress)) throw new InvalidService('status.loadBalancer.ingress', 'must be a list');
  ingress.forEach((ing, i) => {
    if (!isRecord(ing)) throw new InvalidService(`status.loadBalancer.ingress[${i}]`, 'must be an object');
    if (!ing.ip) return; // hostname-only ingress: nothing to program
    if (ing.ipMode === 'Proxy') return; // the LB proxies to node ports itself
    const refusal = typeof ing.ip === 'string' ? apiIpRefusal(ing.ip, 'ingressIP') : `${JSON.stringify(ing.ip)} is not a valid IP address`;
    if (refusal) throw new InvalidService(`status.loadBalancer.ingress[${i}].ip`, `${refusal}; the API server refuses it`);
    lbVIPs.push(canonicalIp(ing.ip as string) as string);
  });

  const etp = spec.externalTrafficPolicy ?? 'Cluster';
  const itp = spec.internalTrafficPolicy ?? 'Cluster';
  if (etp !== 'Cluster' && etp !== 'Local') throw new InvalidService('spec.externalTrafficPolicy', `must be Cluster or Local, not ${JSON.stringify(etp)}`);
  if (itp !== 'Cluster' && itp !== 'Local') throw new InvalidService('spec.internalTrafficPolicy', `must be Cluster or Local, not ${JSON.stringify(itp)}`);
  const externallyReachableType = type === 'NodePort' || type === 'LoadBalancer' || externalIPs.length > 0;
  const externalPolicyLocal = externallyReachableType && etp === 'Local';
  const internalPolicyLocal = itp === 'Local';

  let sticky = 0;
  const affinity = spec.sessionAffinity ?? 'None';
  if (affinity === 'ClientIP') {
    const t = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_STICKY_SECONDS;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > MAX_STICKY_SECONDS) {
      throw new InvalidService('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `${JSON.stringify(t)} must be a whole number of seconds from 1 to ${MAX_STICKY_SECONDS}`);
    }
    sticky = t;
  } else if (affinity !== 'None') {
    throw new InvalidService('spec.sessionAffinity', `must be None or ClientIP, not ${JSON.stringify(affinity)}`);
  }

  let healthCheckNodePort = 0;
  if (type === 'LoadBalancer' && externalPolicyLocal) {
    const hc = spec.healthCheckNodePort;
    if (hc === undefined || hc === 0) warn('spec.healthCheckNodePort', 'missing for a LoadBalancer with externalTrafficPolicy Local; no health-check port is opened');
    else if (!isPort(hc)) throw new InvalidService('spec.healthCheckNodePort', `${JSON.stringify(hc)} is not a valid port (1-65535)`);
    else healthCheckNodePort = hc;
  }

  const { scheduler, flags: schedulerFlags } = schedulerFromAnnotations(svc, warn);

  const rawPorts: unknown = spec.ports ?? [];
  if (!Array.isArray(rawPorts)) throw new InvalidService('spec.ports', 'must be a list');
  const needsNodePort = type === 'NodePort' || (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
  const seen = new Set<string>();
  const ports: ServicePort[] = (rawPorts as V1ServicePort[]).map((p, i) => {
    const field = `spec.ports[${i}]`;
    if (!p || typeof p !== 'object') throw new InvalidService(field, 'must be an object');
    const portName = p.name ?? '';
    if (typeof portName !== 'string') throw new InvalidService(`${field}.name`, 'must be a string');
    if (!isPort(p.port)) throw new InvalidService(`${field}.port`, `${JSON.stringify(p.port)} is not a valid port (1-65535)`);
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    if (!PROTOCOLS.includes(protocol)) throw new InvalidService(`${field}.protocol`, `unknown protocol ${JSON.stringify(p.protocol)}; use TCP, UDP or SCTP`);
    const nodePort = p.nodePort ?? 0;
    if (!isPort(nodePort, 0)) throw new InvalidService(`${field}.nodePort`, `${JSON.stringify(p.nodePort)} is not a valid port (1-65535)`);
    if (needsNodePort && nodePort === 0) {
      throw new InvalidService(`${field}.nodePort`, `missing for type ${type}; set it explicitly (the API server would allocate one)`);
    }
    if (seen.has(`${portName}/${protocol}`)) throw new InvalidService(`${field}.name`, `duplicate port name ${JSON.stringify(portName)}`);
    seen.add(`${portName}/${protocol}`);
    const spn = { namespace, name, port: portName, protocol };
    return {
      name: spn,
      key: servicePortKey(spn),
      port: p.port,
      protocol,
      nodePort: type === 'ClusterIP' ? 0 : nodePort,
      healthCheckNodePort,
      clusterIPs,
      externalIPs,
      // Like kube-proxy, status ingress and source ranges count whatever the type says.
      loadBalancerVIPs: lbVIPs,
      loadBalancerSourceRanges: sourceRanges,
      stickyMaxAgeSeconds: sticky,
      externalPolicyLocal,
      internalPolicyLocal,
      scheduler,
      schedulerFlags,
    };
  });
  return { key: serviceKey(namespace, name), namespace, name, ports };
}
