// The packet tracer: "a packet from S to D:P/proto ends at which real servers, masqueraded or not,
// or is it dropped, rejected or delivered to the host?", answered by evaluating a DesiredState's
// iptables rules, ipset members and IPVS virtual servers the way the kernel would. Tests and
// `kube-ipvs trace` share it.
//
// Model (one connection's first packet unless ctState says otherwise):
// - Family: the destination's; the source must be of the same family. Only that family's tables,
//   sets and virtual servers are consulted (familyIptablesTables, so the jumps from the built-in
//   chains are included). Built-in chain policies are taken to be ACCEPT.
// - Local addresses: the node's addresses ∪ the family's boundAddresses (kube-ipvs0) ∪ loopback.
//   `-m addrtype --src-type/--dst-type LOCAL` and routing use them.
// - `-m physdev --physdev-is-in` is always false: the model has no bridge, so `! --physdev-is-in`
//   always matches (true for external clients and routed pods alike).
// - Input interface: `-i` reads `inInterface`; a rule that needs it when it was not given throws.
//   Hooks without an input device (OUTPUT, POSTROUTING) see '' and loopback re-entry sees 'lo'.
// - origin node (locally generated), as netfilter orders the LOCAL_OUT hooks:
//   nat OUTPUT (-100) → IPVS ip_vs_local_request (-99: DNAT to a real server if D:P is a virtual
//   server) → filter OUTPUT (0: the packet now carries IPVS's info, so KUBE-IPVS-OUT-FILTER's
//   `-m ipvs` matches; its destination is the real server) → nat POSTROUTING per real server.
//   Not handled by IPVS and D local: the packet loops back through lo into filter INPUT (where
//   KUBE-IPVS-FILTER may reject it), then reaches a host socket. Not local: routed off the node.
// - origin pod / external (the two differ only in their label here): nat PREROUTING → routing
//   (D not local: forwarded, 'not-local'; FORWARD is not traced) → filter INPUT (0) → IPVS
//   ip_vs_remote_request (LOCAL_IN, 98) → per real server: IPVS's NAT transmit runs the LOCAL_OUT
//   hooks, so filter OUTPUT again, then nat POSTROUTING. A real server that is itself a local
//   address is delivered on this host: no POSTROUTING, no masquerade. A loopback source never
//   leaves the host: dropped as martian from outside, and towards a remote real server.
// - A virtual server without real servers: IPVS's scheduler finds none and answers ICMP port
//   unreachable (ip_vs_leave) → 'no-endpoints'. Not a virtual server and local → 'host'.
// - Masquerade per real server: nat POSTROUTING with the packet addressed to the real server,
//   carrying the mark nat PREROUTING/OUTPUT left (KUBE-LOOP-BACK hairpin or the mark bit).
//   `masquerade` is true only when every surviving candidate is masqueraded.
// - ctState ESTABLISHED: `--ctstate` matches see it (so KUBE-IPVS-FILTER's NEW-only REJECT does
//   not fire). nat chains only run for a connection's first packet; conntrack replays their NAT
//   on later ones, so they are still evaluated to show the connection's NAT decision. IPVS is
//   assumed to hold the connection already (it schedules TCP only on a SYN), so the candidates are
//   the same.
import { familyIptablesTables } from '../plan/render.js';
import type { DesiredState, FamilyDesiredState } from '../plan/desired.js';
import { IpsetIndex } from './ipset-match.js';
import { compileTable, hex, PROTOCOL_NUMBERS, traverse, withoutComments } from './rule-eval.js';
import type { ConntrackState, EvalPacket, HookVerdict, IpvsInfo, MatchEnv, RuleTable } from './rule-eval.js';
import { TraceError } from './trace-error.js';
import { formatIp, isLoopback, parseIp } from '../model/ip.js';
import type { ParsedIp } from '../model/ip.js';
import { rsKey, vsKey } from '../model/kernel.js';
import type { RealServer } from '../model/kernel.js';
import { hostPort } from '../model/types.js';
import type { Protocol } from '../model/types.js';

export { TraceError } from './trace-error.js';

export type TraceOrigin = 'pod' | 'node' | 'external';
export const TRACE_ORIGINS: readonly TraceOrigin[] = ['pod', 'node', 'external'];

export interface TracePacket {
  readonly src: string;
  readonly dst: string;
  readonly dstPort: number;
  readonly protocol: Protocol;
  readonly origin: TraceOrigin;
  /** For `-i` matches on packets that arrive from outside the host (pod, external). */
  readonly inInterface?: string;
  /** Default NEW. */
  readonly ctState?: ConntrackState;
}

export interface TraceNode {
  /** The node's own addresses (not those on kube-ipvs0). */
  readonly addresses: readonly string[];
}

export type TraceVerdict = 'load-balanced' | 'no-endpoints' | 'host' | 'dropped' | 'rejected' | 'not-local';

/** One real server IPVS may pick, and what POSTROUTING does with the packet sent to it. */
export interface RealServerTrace {
  readonly realServer: string;
  readonly masquerade: boolean;
  readonly masqueradeReason?: string;
}

export interface TraceResult {
  readonly verdict: TraceVerdict;
  /** vsKey of the virtual server that took the packet. */
  readonly virtualServer?: string;
  /** "IP:port" of every real server the scheduler may pick (after filter OUTPUT). */
  readonly realServers: string[];
  /** True when the packet is masqueraded whichever real server is picked. */
  readonly masquerade: boolean;
  readonly masqueradeReason?: string;
  /** Per candidate: masquerade or not, and why. */
  readonly perRealServer: RealServerTrace[];
  /** Every rule and decision, in order, human-readable. */
  readonly steps: string[];
}

function ipOrThrow(text: string, what: string): ParsedIp {
  const ip = parseIp(text.trim());
  if (!ip) throw new TraceError(`${what} ${JSON.stringify(text)} is not an IP address`);
  return ip;
}

function localAddresses(f: FamilyDesiredState, node: TraceNode): Set<string> {
  const out = new Set<string>(f.boundAddresses);
  for (const a of node.addresses) {
    const ip = parseIp(a);
    if (ip && ip.family === f.family) out.add(formatIp(ip));
  }
  return out;
}

function familyOf(state: DesiredState, ip: ParsedIp): FamilyDesiredState {
  const f = state.families.find((x) => x.family === ip.family);
  if (!f) throw new TraceError(`the plan has no ${ip.family} state: the node has no ${ip.family} address`);
  return f;
}

/** The origin `kube-ipvs trace` assumes: node when the source is one of the node's addresses. */
export function defaultOrigin(state: DesiredState, src: string, node: TraceNode): TraceOrigin {
  const ip = ipOrThrow(src, 'source');
  if (isLoopback(ip)) return 'node';
  const f = state.families.find((x) => x.family === ip.family);
  const local = f ? localAddresses(f, node) : new Set(node.addresses.map((a) => canonical(a)));
  return local.has(formatIp(ip)) ? 'node' : 'external';
}

function canonical(a: string): string {
  const ip = parseIp(a);
  return ip ? formatIp(ip) : a;
}

interface Marking {
  readonly text: string;
}

export function tracePacket(state: DesiredState, packet: TracePacket, node: TraceNode): TraceResult {
  const src = ipOrThrow(packet.src, 'source');
  const dst = ipOrThrow(packet.dst, 'destination');
  if (src.family !== dst.family) throw new TraceError(`source ${packet.src} and destination ${packet.dst} are of different families`);
  if (!Number.isInteger(packet.dstPort) || packet.dstPort < 0 || packet.dstPort > 65535) throw new TraceError(`bad destination port ${packet.dstPort}`);
  const fam = familyOf(state, dst);
  const local = localAddresses(fam, node);
  const isLocal = (ip: ParsedIp): boolean => isLoopback(ip) || local.has(formatIp(ip));
  const env: MatchEnv = { isLocal, sets: new IpsetIndex(fam.ipsets) };
  const tables = new Map(familyIptablesTables(fam).map((t) => [t.table, compileTable(t, fam.family)]));
  const table = (name: 'nat' | 'filter'): RuleTable => {
    const t = tables.get(name);
    if (!t) throw new TraceError(`the plan has no ${fam.family} ${name} table`);
    return t;
  };
  const ctState: ConntrackState = packet.ctState ?? 'NEW';
  const proto = packet.protocol;
  const steps: string[] = [];
  const markings: Marking[] = [];
  const log = {
    step: (s: string) => void steps.push(s),
    marked: (m: { path: readonly string[]; via: readonly string[]; before: number; after: number }) => {
      // Only bits turned on explain a later masquerade; the POSTROUTING clear is not a reason.
      const on = (m.after & ~m.before) >>> 0;
      if (on === 0) return;
      const by = m.via.at(-1);
      // The jump into the marking chain (KUBE-MARK-MASQ) says which service set matched.
      const at = by !== undefined ? `${m.path.at(-2) ?? ''} rule "${withoutComments(by)}"` : `nat ${m.path.join(' → ')}`;
      markings.push({ text: `mark ${hex(on)} set by ${at}` });
    },
  };
  const dstText = formatIp(dst);
  const key = vsKey({ address: dstText, port: packet.dstPort, protocol: proto });
  const fromOutside = packet.origin !== 'node';

  const pkt = (over: Partial<EvalPacket>, mark: number): EvalPacket => ({
    family: fam.family,
    src,
    dst,
    dstPort: packet.dstPort,
    protocol: proto,
    inInterface: fromOutside ? packet.inInterface : '',
    ctState,
    ipvs: undefined,
    mark,
    ...over,
  });
  const done = (verdict: TraceVerdict, extra: Partial<TraceResult> = {}): TraceResult => ({
    verdict,
    realServers: [],
    masquerade: false,
    perRealServer: [],
    steps,
    ...extra,
  });
  const blocked = (v: HookVerdict, where: string): TraceResult | undefined => {
    if (v.verdict === 'DROP') {
      steps.push(`${where}: dropped`);
      return done('dropped');
    }
    if (v.verdict === 'REJECT') {
      steps.push(`${where}: rejected (${v.rejectWith})`);
      return done('rejected');
    }
    return undefined;
  };

  steps.push(
    `packet ${formatIp(src)} → ${hostPort(dstText, packet.dstPort)}/${proto}, origin ${packet.origin}` +
      `${fromOutside && packet.inInterface ? ` in on ${packet.inInterface}` : ''}, conntrack ${ctState}`,
  );
  if (ctState !== 'NEW') steps.push('nat chains run only for a connection\'s first packet; evaluated as for that packet to show the connection\'s NAT');

  // (1) nat PREROUTING (from outside) or OUTPUT (locally generated).
  const first = pkt({}, 0);
  const natHook = fromOutside ? 'PREROUTING' : 'OUTPUT';
  const natVerdict = traverse(table('nat'), natHook, first, env, log);
  const stop = blocked(natVerdict, `nat ${natHook}`);
  if (stop) return stop;
  const mark = first.mark;
  const spec = fam.virtualServers.get(key);
  const dstLocal = isLocal(dst);

  if (fromOutside) {
    if (isLoopback(src)) {
      steps.push(`routing: martian source ${formatIp(src)} on a packet from outside the host: dropped`);
      return done('dropped');
    }
    // (2) routing, then filter INPUT before IPVS (LOCAL_IN priority 98 runs after filter's 0).
    if (!dstLocal) {
      steps.push(`routing: ${dstText} is not a local address: the packet is forwarded (filter FORWARD is not traced)`);
      return done('not-local');
    }
    steps.push(`routing: ${dstText} is local: filter INPUT, then IPVS (LOCAL_IN)`);
    const input = blocked(traverse(table('filter'), 'INPUT', pkt({}, mark), env, log), 'filter INPUT');
    if (input) return input;
    if (!spec) {
      steps.push(`IPVS: no virtual server ${key}: delivered to a host socket`);
      return done('host');
    }
  } else if (!spec) {
    // Not IPVS's: filter OUTPUT sees the original destination, then routing decides.
    const out = blocked(traverse(table('filter'), 'OUTPUT', pkt({}, mark), env, log), 'filter OUTPUT');
    if (out) return out;
    if (!dstLocal) {
      steps.push(`IPVS: no virtual server ${key}; routing: ${dstText} is not local: the packet leaves the node`);
      return done('not-local');
    }
    steps.push(`IPVS: no virtual server ${key}; routing: ${dstText} is local: looped back through lo into filter INPUT`);
    const input = blocked(traverse(table('filter'), 'INPUT', pkt({ inInterface: 'lo' }, mark), env, log), 'filter INPUT');
    if (input) return input;
    steps.push('delivered to a host socket');
    return done('host');
  }

  // (3) IPVS.
  const vs = spec.vs;
  const hook = fromOutside ? 'LOCAL_IN' : 'LOCAL_OUT';
  if (spec.realServers.length === 0) {
    steps.push(`IPVS (${hook}): virtual server ${key} has no real servers: the kernel answers ICMP port unreachable and drops the packet`);
    return done('no-endpoints', { virtualServer: key });
  }
  const persistence = vs.timeout > 0 ? `, persistent ${vs.timeout}s` : '';
  steps.push(`IPVS (${hook}): virtual server ${key} (scheduler ${vs.scheduler}${persistence}) picks one of ${spec.realServers.map(rsKey).join(', ')}`);
  const ipvs: IpvsInfo = { vaddr: dst, vproto: PROTOCOL_NUMBERS[proto], vport: packet.dstPort };

  // (4) per real server: filter OUTPUT (LOCAL_OUT after IPVS, or IPVS's NAT transmit), POSTROUTING.
  const per: RealServerTrace[] = [];
  let firstBlock: TraceVerdict | undefined;
  for (const rs of spec.realServers) {
    const r = traceRealServer(rs);
    if (r === 'dropped' || r === 'rejected') firstBlock ??= r;
    else per.push(r);
  }
  if (per.length === 0) return done(firstBlock ?? 'dropped', { virtualServer: key });
  const masquerade = per.every((r) => r.masquerade);
  const reasons = [...new Set(per.map((r) => r.masqueradeReason).filter((r): r is string => r !== undefined))];
  const masqueraded = per.filter((r) => r.masquerade).length;
  steps.push(
    masquerade
      ? 'masquerade: every candidate is masqueraded'
      : masqueraded === 0
        ? 'masquerade: no candidate is masqueraded (the real server sees the client address)'
        : `masquerade: only ${per.filter((r) => r.masquerade).map((r) => r.realServer).join(', ')} of ${per.length} candidates`,
  );
  return done('load-balanced', {
    virtualServer: key,
    realServers: per.map((r) => r.realServer),
    masquerade,
    ...(masquerade ? { masqueradeReason: reasons.join('; ') } : {}),
    perRealServer: per,
  });

  function traceRealServer(rs: RealServer): RealServerTrace | 'dropped' | 'rejected' {
    const name = rsKey(rs);
    const rsIp = ipOrThrow(rs.address, 'real server');
    const toRs = (m: number): EvalPacket => pkt({ dst: rsIp, dstPort: rs.port, ipvs, inInterface: '' }, m);
    if (fromOutside && isLocal(rsIp)) {
      steps.push(`→ ${name}: a local address: IPVS delivers it on this host (no POSTROUTING, not masqueraded)`);
      return { realServer: name, masquerade: false };
    }
    if (isLoopback(src) && !isLocal(rsIp)) {
      // A loopback source never leaves the host (no route_localnet in IPVS mode).
      steps.push(`→ ${name}: dropped: a loopback source cannot be sent to a remote real server`);
      return 'dropped';
    }
    const where = fromOutside ? 'filter OUTPUT (IPVS NAT transmit)' : 'filter OUTPUT';
    steps.push(`→ ${name}: ${where}`);
    const out = traverse(table('filter'), 'OUTPUT', toRs(mark), env, log);
    if (out.verdict === 'DROP' || out.verdict === 'REJECT') {
      const v = out.verdict === 'DROP' ? 'dropped' : 'rejected';
      steps.push(`→ ${name}: ${v} in filter OUTPUT`);
      return v;
    }
    steps.push(`→ ${name}: nat POSTROUTING`);
    const post = traverse(table('nat'), 'POSTROUTING', toRs(mark), env, { step: log.step });
    if (post.verdict !== 'MASQUERADE') {
      steps.push(`→ ${name}: not masqueraded (source stays ${formatIp(src)})`);
      return { realServer: name, masquerade: false };
    }
    const reason = post.rule.includes('LOOP-BACK')
      ? `hairpin: the real server is the client itself (KUBE-POSTROUTING rule "${withoutComments(post.rule)}")`
      : markings.length > 0
        ? markings.map((m) => m.text).join('; ')
        : `KUBE-POSTROUTING rule "${withoutComments(post.rule)}"`;
    steps.push(`→ ${name}: masqueraded: ${reason}`);
    return { realServer: name, masquerade: true, masqueradeReason: reason };
  }
}

/** Who the objects of a trace are: the virtual server's Service port, each real server's pod. */
export interface TraceNaming {
  readonly service?: string;
  readonly realServers: Readonly<Record<string, { readonly pod?: string; readonly node?: string }>>;
}

function podText(n: { readonly pod?: string; readonly node?: string } | undefined): string {
  if (!n || (n.pod === undefined && n.node === undefined)) return '';
  return ` (${n.pod !== undefined ? `pod ${n.pod}` : 'no pod'}${n.node !== undefined ? ` on ${n.node}` : ''})`;
}

/** A short human summary of a trace (what `kube-ipvs trace --output text` prints before the steps). */
export function formatTrace(r: TraceResult, names?: TraceNaming): string {
  const lines = [`verdict: ${r.verdict}`];
  if (r.virtualServer) lines.push(`virtual server: ${r.virtualServer}${names?.service !== undefined ? ` (Service ${names.service})` : ''}`);
  if (r.perRealServer.length > 0) {
    lines.push('real servers:');
    for (const p of r.perRealServer) lines.push(`  ${p.realServer}${podText(names?.realServers[p.realServer])}  ${p.masquerade ? `masqueraded (${p.masqueradeReason ?? ''})` : 'not masqueraded'}`);
  }
  if (r.verdict === 'load-balanced') lines.push(`masquerade: ${r.masquerade ? 'yes' : 'no'}`);
  lines.push('steps:');
  r.steps.forEach((s, i) => lines.push(`  ${i + 1}. ${s}`));
  return `${lines.join('\n')}\n`;
}
