// `kube-ipvs trace`: where would a packet go on this node? Plans the cluster from manifests (as
// `kube-ipvs plan` does) and runs the packet tracer over the plan: the real servers IPVS may pick,
// whether the packet is masqueraded, or where it is dropped, rejected or delivered to the host.
import type { FlagSpec } from '../config/load.js';
import { formatProblem } from '../cluster/problems.js';
import { canonicalIp, ipFamilyOf } from '../model/ip.js';
import type { Protocol } from '../model/types.js';
import type { DesiredState } from '../plan/desired.js';
import type { TraceNode, TraceOrigin, TracePacket, TraceResult } from '../trace/trace.js';
import { defaultOrigin, formatTrace, TRACE_ORIGINS, TraceError, tracePacket } from '../trace/trace.js';
import type { TraceNames } from './trace-names.js';
import { namesFromTracker, nameTrace } from './trace-names.js';
import { UsageError } from './errors.js';
import { MANIFEST_FLAGS, planFromArgs } from './plan.js';

const TRACE_OUTPUTS = ['text', 'json'] as const;

/** The usage line main prints above the flags when runTrace returns -1 (--help). */
/** Whether a trace command line asks for --live (main dispatches on it). */
export function wantsLive(argv: readonly string[]): boolean {
  let live = false;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--live' || a === '--live=true') live = true;
    else if (a === '--live=false') live = false;
  }
  return live;
}

export const TRACE_USAGE =
  'Usage: kube-ipvs trace (--manifests PATH... | --live) --from IP --to IP:PORT [--protocol tcp|udp|sctp] [--origin pod|node|external] ' +
  '[--in-interface NAME] [--new|--established] [--output text|json] [--node-ip IP,...] [kube-proxy flags]';

export const TRACE_FLAGS: readonly FlagSpec[] = [
  ...MANIFEST_FLAGS,
  { name: 'from', kind: 'string', valueName: 'ip', help: 'Source address of the packet (required).' },
  { name: 'to', kind: 'string', valueName: 'ip:port', help: 'Destination address and port, IPv6 in brackets: 10.96.0.10:80, [fd00::1]:80 (required).' },
  { name: 'protocol', kind: 'string', default: 'tcp', valueName: 'proto', help: 'tcp, udp or sctp.' },
  { name: 'origin', kind: 'string', valueName: 'where', help: 'Where the packet starts: pod, node or external. Default: node when --from is one of the node\'s addresses (or a kube-ipvs0 address), else external.' },
  { name: 'in-interface', kind: 'string', valueName: 'name', help: 'Interface the packet arrives on (pod and external origins), for rules matching -i.' },
  { name: 'new', kind: 'bool', help: 'Trace the first packet of a connection (conntrack NEW; the default).' },
  { name: 'established', kind: 'bool', help: 'Trace a packet of an established connection (conntrack ESTABLISHED).' },
  { name: 'output', short: 'o', kind: 'string', default: 'text', valueName: 'format', help: `What to print: ${TRACE_OUTPUTS.join(', ')}.` },
  { name: 'live', kind: 'bool', help: 'Trace through what the kernel holds now (IPVS, ipsets, our iptables chains, kube-ipvs0; needs root) instead of the plan; Services and pods are named from the running daemon (--metrics-bind-address) or --manifests.' },
];

/** "IP:PORT" or "[IPv6]:PORT". */
export function parseDestination(text: string): { ip: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const ip = m?.[1] !== undefined ? canonicalIp(m[1]) : undefined;
  const port = Number(m?.[2]);
  // Brackets are only for IPv6: "[1.2.3.4]:80" is as suspicious as a bare IPv6 address.
  const bracketed = text.startsWith('[');
  if (!m || !ip || port > 65535 || bracketed !== (ipFamilyOf(ip) === 'IPv6')) {
    throw new UsageError(`invalid value ${JSON.stringify(text)} for --to: expected IP:PORT, e.g. 10.96.0.10:80 or [fd00::1]:80`);
  }
  return { ip, port };
}

function parseProtocol(text: string): Protocol {
  const p = text.toUpperCase();
  if (p === 'TCP' || p === 'UDP' || p === 'SCTP') return p;
  throw new UsageError(`invalid value ${JSON.stringify(text)} for --protocol: expected tcp, udp or sctp`);
}

function required(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag} is required`);
  return value;
}

/** The packet and output format of a trace command line (the origin resolved later when absent). */
export interface TraceRequest {
  readonly output: 'text' | 'json';
  readonly src: string;
  readonly dst: string;
  readonly dstPort: number;
  readonly protocol: Protocol;
  readonly ctState: 'NEW' | 'ESTABLISHED';
  readonly origin: TraceOrigin | undefined;
  readonly inInterface: string | undefined;
}

export function traceRequest(extra: ReadonlyMap<string, unknown>): TraceRequest {
  const output = extra.get('output') as string;
  if (!(TRACE_OUTPUTS as readonly string[]).includes(output)) {
    throw new UsageError(`invalid value ${JSON.stringify(output)} for --output: expected one of ${TRACE_OUTPUTS.join(', ')}`);
  }
  const fromText = required(extra.get('from'), 'from');
  const src = canonicalIp(fromText);
  if (!src) throw new UsageError(`invalid value ${JSON.stringify(fromText)} for --from: expected an IP address`);
  const to = parseDestination(required(extra.get('to'), 'to'));
  if (ipFamilyOf(src) !== ipFamilyOf(to.ip)) throw new UsageError(`--from ${src} and --to ${to.ip} are of different IP families`);
  const protocol = parseProtocol(extra.get('protocol') as string);
  if (extra.get('new') === true && extra.get('established') === true) throw new UsageError('--new and --established exclude each other');
  const originText = extra.get('origin') as string | undefined;
  let origin: TraceOrigin | undefined;
  if (originText !== undefined && originText !== '') {
    if (!(TRACE_ORIGINS as readonly string[]).includes(originText)) throw new UsageError(`invalid value ${JSON.stringify(originText)} for --origin: expected one of ${TRACE_ORIGINS.join(', ')}`);
    origin = originText as TraceOrigin;
  }
  const inInterface = (extra.get('in-interface') as string | undefined) || undefined;
  return { output: output as 'text' | 'json', src, dst: to.ip, dstPort: to.port, protocol, ctState: extra.get('established') === true ? 'ESTABLISHED' : 'NEW', origin, inInterface };
}

/** The packet of a request, its origin defaulted from the state (node when the source is the node's). */
export function packetOf(req: TraceRequest, state: DesiredState, node: TraceNode): TracePacket {
  return {
    src: req.src,
    dst: req.dst,
    dstPort: req.dstPort,
    protocol: req.protocol,
    origin: req.origin ?? defaultOrigin(state, req.src, node),
    ...(req.inInterface ? { inInterface: req.inInterface } : {}),
    ctState: req.ctState,
  };
}

/** Runs the tracer and prints its answer with the names it has; 1 when the state cannot be traced. */
export function printTrace(state: DesiredState, packet: TracePacket, node: TraceNode, output: 'text' | 'json', names: TraceNames | undefined, io: { out: (s: string) => void; err: (s: string) => void }, notes: readonly string[] = []): number {
  let result: TraceResult;
  try {
    result = tracePacket(state, packet, node);
  } catch (e) {
    // The state holds something the tracer cannot evaluate: say so rather than guess.
    if (!(e instanceof TraceError)) throw e;
    io.err(`kube-ipvs: trace: ${e.message}\n`);
    return 1;
  }
  const named = names ? nameTrace(result, names) : undefined;
  if (output === 'json') io.out(`${JSON.stringify({ packet, ...result, ...(named ? { names: named } : {}), ...(notes.length > 0 ? { notes } : {}) }, null, 2)}\n`);
  else io.out(`${formatTrace(result, named)}${notes.map((n) => `note: ${n}\n`).join('')}`);
  return 0;
}

export function runTrace(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void; kernelRelease: string }): number {
  const r = planFromArgs(argv, TRACE_FLAGS, io.kernelRelease, io);
  if (r.exit !== undefined) return r.exit;
  const req = traceRequest(r.extra);
  const node = { addresses: r.node.addresses };
  const packet = packetOf(req, r.state, node);
  for (const p of r.problems) io.err(`warning: ${formatProblem(p)}\n`);
  for (const c of r.state.conflicts) io.err(`warning: virtual server ${c.vsKey} is wanted by ${[c.winner, ...c.losers].join(', ')}; ${c.winner} is used\n`);
  return printTrace(r.state, packet, node, req.output, namesFromTracker(r.tracker), io);
}
