// `ipvsadm -Sn` text (ipvsadm 1.31, FMT_RULE): render a desired state as the tool prints it, and
// parse what the tool prints back into virtual-server specs. Planner output, fake dumps and real
// observations all go through here, so they compare byte for byte.
import type { ForwardMethod, RealServer, VirtualServer, VirtualServerSpec } from '../kernel.js';
import { VsFlag } from '../kernel.js';
import type { IpFamily, Protocol } from '../types.js';
import { hostPort } from '../types.js';
import { formatIp, parseIp } from '../ip.js';
import type { ParsedIp } from '../ip.js';
import { atLine, failLine, numberedLines } from './error.js';

/** ipvsadm's defaults when an option is absent (ipvsadm.c DEF_SCHED, libipvs.h). */
export const IPVSADM_DEFAULT_SCHEDULER = 'wlc';
export const IPVSADM_DEFAULT_PERSISTENT_TIMEOUT = 360;
const MAX_TIMEOUT = 86400 * 31;

const PROTOCOL_OPTION: Readonly<Record<Protocol, string>> = { TCP: '-t', UDP: '-u', SCTP: '--sctp-service' };
/** IPPROTO numbers: ipvsadm sorts services by protocol number before address. */
const PROTOCOL_NUMBER: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

const SERVICE_OPTIONS: ReadonlyMap<string, Protocol> = new Map([
  ['-t', 'TCP'],
  ['--tcp-service', 'TCP'],
  ['-u', 'UDP'],
  ['--udp-service', 'UDP'],
  ['--sctp-service', 'SCTP'],
]);

// ---------------------------------------------------------------------------------------------
// Rendering

function mustParseIp(address: string, what: string): ParsedIp {
  const ip = parseIp(address);
  if (!ip) throw new Error(`ipvsadm render: invalid ${what} address ${JSON.stringify(address)}`);
  return ip;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * ipvsadm's service order (libipvs ipvs_cmp_services): family, protocol number, address, port.
 * ipvsadm compares addresses by signed subtraction, which misorders addresses 2^31 apart; we
 * compare them as unsigned so the order is total.
 */
export function compareVirtualServers(a: VirtualServer, b: VirtualServer): number {
  const ia = mustParseIp(a.address, 'virtual server');
  const ib = mustParseIp(b.address, 'virtual server');
  return (
    ia.bytes.length - ib.bytes.length ||
    PROTOCOL_NUMBER[a.protocol] - PROTOCOL_NUMBER[b.protocol] ||
    compareBytes(ia.bytes, ib.bytes) ||
    a.port - b.port
  );
}

/** ipvsadm's real-server order (ipvs_cmp_dests): address, then port. */
export function compareRealServers(a: RealServer, b: RealServer): number {
  const ia = mustParseIp(a.address, 'real server');
  const ib = mustParseIp(b.address, 'real server');
  return compareBytes(ia.bytes, ib.bytes) || a.port - b.port;
}

function canonicalHostPort(address: string, port: number, what: string): string {
  return hostPort(formatIp(mustParseIp(address, what)), port);
}

/** "-t 10.96.0.10:53": how ipvsadm names a service in every -A/-a line. */
function serviceName(vs: VirtualServer): string {
  return `${PROTOCOL_OPTION[vs.protocol]} ${canonicalHostPort(vs.address, vs.port, 'virtual server')}`;
}

/** print_sched_flags: names depend on the scheduler; bits it has no name for print nothing. */
export function schedulerFlagNames(scheduler: string, flags: number): string[] {
  const names: string[] = [];
  const has = (bit: number): boolean => (flags & bit) !== 0;
  if (scheduler === 'sh' || scheduler === 'mh') {
    if (has(VsFlag.SCHED1)) names.push(`${scheduler}-fallback`);
    if (has(VsFlag.SCHED2)) names.push(`${scheduler}-port`);
    return names;
  }
  if (has(VsFlag.SCHED1)) names.push('flag-1');
  if (has(VsFlag.SCHED2)) names.push('flag-2');
  if (has(VsFlag.SCHED3)) names.push('flag-3');
  return names;
}

function renderServiceLine(vs: VirtualServer): string {
  let line = `-A ${serviceName(vs)} -s ${vs.scheduler}`;
  // The persistence netmask is always the host mask in our model, so -M never prints.
  if (vs.flags & VsFlag.PERSISTENT) line += ` -p ${vs.timeout}`;
  if (vs.flags & VsFlag.ONEPACKET) line += ' -o';
  if (vs.flags & (VsFlag.SCHED1 | VsFlag.SCHED2 | VsFlag.SCHED3)) {
    // ipvsadm prints "-b " even when no flag has a name for this scheduler.
    line += ` -b ${schedulerFlagNames(vs.scheduler, vs.flags).join(',')}`;
  }
  return line;
}

function forwardSwitch(forward: ForwardMethod): string {
  switch (forward) {
    case 'masq':
      return '-m';
    case 'tunnel':
      return '-i';
    case 'route':
    case 'local':
      return '-g';
    default:
      // ipvsadm would print "(null)": no real server can be added with it, so refuse.
      throw new Error(`ipvsadm render: forwarding method ${forward} has no ipvsadm switch`);
  }
}

function renderRealServerLine(svc: string, rs: RealServer): string {
  const line = `-a ${svc} -r ${canonicalHostPort(rs.address, rs.port, 'real server')} ${forwardSwitch(rs.forward)} -w ${rs.weight}`;
  // ipvsadm 1.31 prints the tunnel type of every tunnel dest; kernels without it report ipip.
  return rs.forward === 'tunnel' ? `${line} --tun-type ipip` : line;
}

/** The `ipvsadm -Sn` line of one virtual server ("-A -t 10.96.0.10:80 -s rr"). */
export function renderIpvsadmServiceLine(vs: VirtualServer): string {
  return renderServiceLine(vs);
}

/** The `ipvsadm -Sn` line of one real server of a virtual server ("-a -t … -r … -m -w 1"). */
export function renderIpvsadmRealServerLine(vs: VirtualServer, rs: RealServer): string {
  return renderRealServerLine(serviceName(vs), rs);
}

/** Exactly what `ipvsadm -Sn` prints for these virtual servers (one line per object). */
export function renderIpvsadmSave(specs: Iterable<VirtualServerSpec>): string {
  const sorted = [...specs].sort((a, b) => compareVirtualServers(a.vs, b.vs));
  const lines: string[] = [];
  for (const spec of sorted) {
    lines.push(renderServiceLine(spec.vs));
    const svc = serviceName(spec.vs);
    for (const rs of [...spec.realServers].sort(compareRealServers)) lines.push(renderRealServerLine(svc, rs));
  }
  return lines.map((l) => `${l}\n`).join('');
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** Something well-formed that the model cannot hold; parse drops it and says so here. */
export interface IpvsadmDropped {
  readonly line: number;
  readonly text: string;
  readonly what: string;
}

export interface IpvsadmParseResult {
  readonly specs: VirtualServerSpec[];
  readonly dropped: IpvsadmDropped[];
}

function parseNumber(text: string | undefined, min: number, max: number, what: string): number {
  if (text === undefined || !/^\d+$/.test(text)) failLine(`invalid ${what} ${JSON.stringify(text ?? '')}`);
  const n = Number(text);
  if (n < min || n > max) failLine(`${what} ${n} out of range ${min}-${max}`);
  return n;
}

interface AddrPort {
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
}

/** "10.0.0.1:80", "[fd00::1]:80", or either without the port (port 0), as ipvsadm accepts. */
export function parseAddrPort(text: string): AddrPort | undefined {
  let host = text;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const ip = parseIp(host);
  if (!ip || (ip.family === 'IPv6' && !text.startsWith('['))) return undefined;
  if (portText !== undefined && (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535)) return undefined;
  return { family: ip.family, address: formatIp(ip), port: portText === undefined ? 0 : Number(portText) };
}

const FLAG_BITS: ReadonlyMap<string, { bit: number; scheduler?: string }> = new Map([
  ['flag-1', { bit: VsFlag.SCHED1 }],
  ['flag-2', { bit: VsFlag.SCHED2 }],
  ['flag-3', { bit: VsFlag.SCHED3 }],
  ['sh-fallback', { bit: VsFlag.SCHED1, scheduler: 'sh' }],
  ['sh-port', { bit: VsFlag.SCHED2, scheduler: 'sh' }],
  ['mh-fallback', { bit: VsFlag.SCHED1, scheduler: 'mh' }],
  ['mh-port', { bit: VsFlag.SCHED2, scheduler: 'mh' }],
]);

/** parse_sched_flags: a comma list; the sh-/mh- names only with their scheduler. */
export function parseSchedulerFlags(scheduler: string, text: string): number {
  let flags = 0;
  for (const name of text.split(',').filter((n) => n !== '')) {
    const f = FLAG_BITS.get(name);
    if (!f) failLine(`invalid scheduler flag ${JSON.stringify(name)}`);
    if (f.scheduler !== undefined && f.scheduler !== scheduler) failLine(`scheduler flag ${name} needs scheduler ${f.scheduler}`);
    flags |= f.bit;
  }
  return flags;
}

/** Options of one -A/-a line, before they are checked against the command. */
interface LineOptions {
  command: 'service' | 'server';
  protocol?: Protocol;
  service?: AddrPort;
  fwmark?: string;
  scheduler?: string;
  persistent?: number;
  netmask?: string;
  pe?: string;
  onePacket: boolean;
  schedFlags?: string;
  server?: AddrPort;
  forward?: ForwardMethod;
  weight?: number;
  thresholds: string[];
  tunnel: string[];
}

const COMMANDS: ReadonlyMap<string, LineOptions['command']> = new Map([
  ['-A', 'service'],
  ['--add-service', 'service'],
  ['-a', 'server'],
  ['--add-server', 'server'],
]);

const FORWARD_SWITCHES: ReadonlyMap<string, ForwardMethod> = new Map([
  ['-m', 'masq'],
  ['--masquerading', 'masq'],
  ['-g', 'route'],
  ['--gatewaying', 'route'],
  ['-i', 'tunnel'],
  ['--ipip', 'tunnel'],
]);

/** Reads the value of an option; a missing value is an error. */
function takeValue(tokens: string[], i: number, option: string): string {
  const v = tokens[i + 1];
  if (v === undefined) failLine(`option ${option} needs a value`);
  return v;
}

function parseServiceAddress(o: LineOptions, protocol: Protocol, value: string): void {
  if (o.protocol !== undefined || o.fwmark !== undefined) failLine('more than one virtual service given');
  const ap = parseAddrPort(value);
  if (!ap) failLine(`invalid service address ${JSON.stringify(value)}`);
  o.protocol = protocol;
  o.service = ap;
}

/** Applies one option at tokens[i]; returns how many tokens it used. */
function applyOption(o: LineOptions, tokens: string[], i: number): number {
  const t = tokens[i] ?? '';
  const protocol = SERVICE_OPTIONS.get(t);
  if (protocol) {
    parseServiceAddress(o, protocol, takeValue(tokens, i, t));
    return 2;
  }
  const forward = FORWARD_SWITCHES.get(t);
  if (forward) {
    o.forward = forward;
    return 1;
  }
  switch (t) {
    case '-f':
    case '--fwmark-service':
      o.fwmark = takeValue(tokens, i, t);
      return 2;
    case '-6':
    case '--ipv6':
      return 1;
    case '-s':
    case '--scheduler':
      o.scheduler = takeValue(tokens, i, t);
      if (!/^[a-z0-9_-]+$/.test(o.scheduler)) failLine(`invalid scheduler ${JSON.stringify(o.scheduler)}`);
      return 2;
    case '-p':
    case '--persistent': {
      // The timeout is optional, as in ipvsadm (popt optional argument).
      const v = tokens[i + 1];
      if (v !== undefined && /^\d+$/.test(v)) {
        o.persistent = parseNumber(v, 0, MAX_TIMEOUT, 'persistence timeout');
        return 2;
      }
      o.persistent = IPVSADM_DEFAULT_PERSISTENT_TIMEOUT;
      return 1;
    }
    case '-M':
    case '--netmask':
      o.netmask = takeValue(tokens, i, t);
      return 2;
    case '--pe':
      o.pe = takeValue(tokens, i, t);
      return 2;
    case '-o':
    case '--ops':
      o.onePacket = true;
      return 1;
    case '-b':
    case '--sched-flags':
      // ipvsadm prints a bare "-b " when no set flag has a name for the scheduler.
      o.schedFlags = tokens[i + 1] ?? '';
      return tokens[i + 1] === undefined ? 1 : 2;
    case '-r':
    case '--real-server': {
      const v = takeValue(tokens, i, t);
      const ap = parseAddrPort(v);
      if (!ap) failLine(`invalid real server address ${JSON.stringify(v)}`);
      o.server = ap;
      return 2;
    }
    case '-w':
    case '--weight':
      o.weight = parseNumber(takeValue(tokens, i, t), 0, 65535, 'weight');
      return 2;
    case '-x':
    case '--u-threshold':
    case '-y':
    case '--l-threshold':
      parseNumber(takeValue(tokens, i, t), 0, 2147483647, 'threshold');
      o.thresholds.push(`${t} ${tokens[i + 1] ?? ''}`);
      return 2;
    case '--tun-type':
    case '--tun-port':
      o.tunnel.push(`${t} ${takeValue(tokens, i, t)}`);
      return 2;
    case '--tun-nocsum':
    case '--tun-csum':
    case '--tun-remcsum':
      o.tunnel.push(t);
      return 1;
    default:
      failLine(`unknown option ${JSON.stringify(t)}`);
  }
}

function parseLineOptions(tokens: string[]): LineOptions {
  const command = COMMANDS.get(tokens[0] ?? '');
  if (!command) failLine('expected -A or -a');
  const o: LineOptions = { command, onePacket: false, thresholds: [], tunnel: [] };
  for (let i = 1; i < tokens.length; ) i += applyOption(o, tokens, i);
  if (o.protocol === undefined && o.fwmark === undefined) failLine('no virtual service given');
  return o;
}

const SERVICE_ONLY: readonly (keyof LineOptions)[] = ['scheduler', 'persistent', 'netmask', 'pe', 'schedFlags'];
const SERVER_ONLY: readonly (keyof LineOptions)[] = ['server', 'forward', 'weight'];

function checkOptionsFit(o: LineOptions): void {
  const wrong = o.command === 'service' ? SERVER_ONLY : SERVICE_ONLY;
  for (const k of wrong) if (o[k] !== undefined) failLine(`option for ${k} not allowed with ${o.command === 'service' ? '-A' : '-a'}`);
  if (o.command === 'service' && (o.thresholds.length > 0 || o.tunnel.length > 0)) failLine('real-server options not allowed with -A');
  if (o.command === 'server' && o.onePacket) failLine('-o not allowed with -a');
  if (o.command === 'server' && !o.server) failLine('-a needs -r');
  if (o.tunnel.length > 0 && o.forward !== 'tunnel') failLine('tunnel options need -i');
}

function toVirtualServer(o: LineOptions, drop: (what: string) => void): VirtualServer {
  const service = o.service;
  if (!service || !o.protocol) failLine('no virtual service given');
  const scheduler = o.scheduler ?? IPVSADM_DEFAULT_SCHEDULER;
  let flags = o.schedFlags === undefined ? 0 : parseSchedulerFlags(scheduler, o.schedFlags);
  if (o.onePacket) flags |= VsFlag.ONEPACKET;
  if (o.persistent !== undefined) flags |= VsFlag.PERSISTENT;
  if (o.netmask !== undefined) {
    if (o.persistent === undefined) failLine('-M needs -p');
    if (!isPersistenceMask(service.family, o.netmask)) failLine(`invalid persistence netmask ${JSON.stringify(o.netmask)}`);
    drop(`persistence netmask ${o.netmask}`);
  }
  if (o.pe !== undefined) drop(`persistence engine ${o.pe}`);
  return {
    family: service.family,
    protocol: o.protocol,
    address: service.address,
    port: service.port,
    scheduler,
    flags,
    timeout: o.persistent ?? 0,
  };
}

/** -M: a dotted mask for IPv4 (ipvsadm parse_netmask), a prefix length 1-128 for IPv6. */
function isPersistenceMask(family: IpFamily, text: string): boolean {
  if (family === 'IPv6') return /^\d{1,3}$/.test(text) && Number(text) >= 1 && Number(text) <= 128;
  return parseIp(text)?.family === 'IPv4';
}

function toRealServer(o: LineOptions, drop: (what: string) => void): RealServer {
  const server = o.server;
  if (!server) failLine('-a needs -r');
  if (o.thresholds.length > 0) drop(`thresholds ${o.thresholds.join(' ')}`);
  // The model has no tunnel type; ipip (the default) is what a tunnel real server means to us.
  const tunnel = o.tunnel.filter((t) => t !== '--tun-type ipip');
  if (tunnel.length > 0) drop(`tunnel options ${tunnel.join(' ')}`);
  return { address: server.address, port: server.port, weight: o.weight ?? 1, forward: o.forward ?? 'route' };
}

interface MutableSpec {
  vs: VirtualServer;
  realServers: RealServer[];
}

function identity(protocol: Protocol, ap: AddrPort): string {
  return `${protocol} ${hostPort(ap.address, ap.port)}`;
}

class SaveParser {
  readonly specs = new Map<string, MutableSpec>();
  readonly dropped: IpvsadmDropped[] = [];
  private readonly fwmarks = new Set<string>();

  line(n: number, line: string): void {
    const tokens = line.trim().split(/\s+/);
    const o = parseLineOptions(tokens);
    checkOptionsFit(o);
    const drop = (what: string): void => {
      this.dropped.push({ line: n, text: line, what });
    };
    if (o.fwmark !== undefined) return this.fwmark(o, drop);
    if (!o.service || !o.protocol) failLine('no virtual service given');
    const id = identity(o.protocol, o.service);
    if (o.command === 'service') return this.service(id, toVirtualServer(o, drop));
    const spec = this.specs.get(id);
    if (!spec) failLine('real server for a virtual server not defined before it');
    const rs = toRealServer(o, drop);
    if (spec.realServers.some((r) => r.address === rs.address && r.port === rs.port)) failLine('duplicate real server');
    spec.realServers.push(rs);
  }

  private service(id: string, vs: VirtualServer): void {
    if (this.specs.has(id)) failLine('duplicate virtual server');
    this.specs.set(id, { vs, realServers: [] });
  }

  /** The model has no firewall-mark services: skip them (and their real servers) and say so. */
  private fwmark(o: LineOptions, drop: (what: string) => void): void {
    const mark = o.fwmark ?? '';
    if (!/^\d+$/.test(mark)) failLine(`invalid firewall mark ${JSON.stringify(mark)}`);
    if (o.command === 'service') this.fwmarks.add(mark);
    else if (!this.fwmarks.has(mark)) failLine('real server for a virtual server not defined before it');
    drop(`firewall-mark ${o.command === 'service' ? 'virtual server' : 'real server'} ${mark}`);
  }
}

/** Parses `ipvsadm -Sn` text; also reports what it accepted but the model cannot hold. */
export function parseIpvsadmSaveDetailed(text: string): IpvsadmParseResult {
  const parser = new SaveParser();
  for (const { n, line } of numberedLines(text)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    atLine('ipvsadm', n, line, () => parser.line(n, line));
  }
  const specs = [...parser.specs.values()].map((s) => ({ vs: s.vs, realServers: s.realServers }));
  return { specs, dropped: parser.dropped };
}

/**
 * Parses `ipvsadm -Sn` text into specs, in text order. Rejects malformed lines with a
 * TextParseError naming the line. Persistence netmask, persistence engine, thresholds, tunnel
 * options and firewall-mark services are accepted but not representable, so they are dropped
 * (see parseIpvsadmSaveDetailed for the list).
 */
export function parseIpvsadmSave(text: string): VirtualServerSpec[] {
  return parseIpvsadmSaveDetailed(text).specs;
}
