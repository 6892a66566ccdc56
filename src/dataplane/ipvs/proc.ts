// /proc/net/ip_vs: every virtual server of the network namespace with its real servers, weights
// and connection counts, in one read. A full resync needs exactly that for every virtual server;
// over generic netlink it is one dump per virtual server (15,000 at 10k services), so the read is
// the cheap way to it. The format is the kernel's (ip_vs_ctl.c, ip_vs_info_seq_show):
//   IP Virtual Server version 1.2.1 (size=4096)
//   Prot LocalAddress:Port Scheduler Flags
//     -> RemoteAddress:Port Forward Weight ActiveConn InActConn
//   TCP  0A60000A:0050 rr
//     -> 0AF40102:1F90      Masq    1      0          0
//   UDP  [fd00:0000:0000:0000:0000:0000:0000:000a]:0035 rr persistent 10800 FFFFFFFF
//   FWM  00000001 rr
// IPv4 addresses are host-order hex, IPv6 ones the full %pI6 form in brackets, ports hex.
import type { ParsedIp } from '../../model/ip.js';
import { formatIp, parseIp } from '../../model/ip.js';
import type { ForwardMethod } from '../../model/kernel.js';
import { vsKey } from '../../model/kernel.js';
import type { IpFamily, Protocol } from '../../model/types.js';
import type { ObservedRealServer } from './netlink-codec.js';

export const PROC_IPVS_PATH = '/proc/net/ip_vs';

/** What the file tells of a real server: enough to diff it and to drain it. */
export type ListedRealServer = Pick<ObservedRealServer, 'family' | 'address' | 'port' | 'weight' | 'forward' | 'activeConns' | 'inactiveConns'>;

/** A virtual server of the file (fwmark ones are not listed: we own none). */
export interface ListedVirtualServer {
  readonly family: IpFamily;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  readonly realServers: ListedRealServer[];
}

const FORWARD_BY_NAME: Readonly<Record<string, ForwardMethod>> = { Masq: 'masq', Local: 'local', Tunnel: 'tunnel', Route: 'route' };
const NAME_BY_FORWARD: Readonly<Record<ForwardMethod, string>> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', bypass: 'Masq' };
const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

const SERVICE_LINE = /^(\S+)\s+(\S+):([0-9A-Fa-f]{4}) (\S+)/;
const DEST_LINE = /^\s+-> (\S+):([0-9A-Fa-f]{4})\s+(\S+)\s+(-?\d+)\s+(\d+)\s+(\d+)/;

/** "0A60000A" or "[2001:0db8:…]" → a parsed address, or undefined when it is neither. */
function procAddress(text: string): ParsedIp | undefined {
  if (text.startsWith('[') && text.endsWith(']')) {
    const ip = parseIp(text.slice(1, -1));
    return ip?.family === 'IPv6' ? ip : undefined;
  }
  if (!/^[0-9A-Fa-f]{8}$/.test(text)) return undefined;
  const n = Number.parseInt(text, 16);
  return { family: 'IPv4', bytes: Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255) };
}

function procAddressText(address: string): string {
  const ip = parseIp(address);
  if (!ip) throw new Error(`not an IP address: ${address}`);
  if (ip.family === 'IPv4') return Array.from(ip.bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join('');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0)).toString(16).padStart(4, '0'));
  return `[${groups.join(':')}]`;
}

const hex4 = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');

/** A real-server line, or undefined when it is not one this reader knows. */
function parseDestLine(line: string): ListedRealServer | undefined {
  const m = DEST_LINE.exec(line);
  const ip = m ? procAddress(m[1] as string) : undefined;
  const forward = m ? FORWARD_BY_NAME[m[3] as string] : undefined;
  if (!m || !ip || !forward) return undefined;
  return { family: ip.family, address: formatIp(ip), port: Number.parseInt(m[2] as string, 16), forward, weight: Number(m[4]), activeConns: Number(m[5]), inactiveConns: Number(m[6]) };
}

/** A virtual-server line of a protocol we use, or undefined (headers, FWM lines, others). */
function parseServiceLine(line: string): Omit<ListedVirtualServer, 'realServers'> | undefined {
  const m = SERVICE_LINE.exec(line);
  if (!m || !PROTOCOLS.has(m[1] as string)) return undefined;
  const ip = procAddress(m[2] as string);
  if (!ip) return undefined;
  return { family: ip.family, protocol: m[1] as Protocol, address: formatIp(ip), port: Number.parseInt(m[3] as string, 16), scheduler: m[4] as string };
}

/**
 * Parses the file. A line it cannot read is skipped (a real-server line alone; a virtual-server
 * line with its real servers), so a format it does not know yields fewer servers (the caller then
 * dumps), never wrong ones.
 */
export function parseProcIpvs(text: string): ListedVirtualServer[] {
  const out: ListedVirtualServer[] = [];
  let current: ListedVirtualServer | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) {
      const rs = current ? parseDestLine(line) : undefined;
      if (rs) current?.realServers.push(rs);
      continue;
    }
    const vs = parseServiceLine(line);
    current = vs ? { ...vs, realServers: [] } : undefined;
    if (current) out.push(current);
  }
  return out;
}

/** The real servers of each listed virtual server, by vsKey. */
export function realServersByVirtualServer(services: readonly ListedVirtualServer[]): Map<string, ListedRealServer[]> {
  return new Map(services.map((s) => [vsKey(s), s.realServers]));
}

/** One virtual server's real-server lines, compared whole before anything in them is parsed. */
export interface RealServerBlock {
  /**
   * The lines without their connection counts: two reads with equal fingerprints list the same
   * real servers, in the same order, with the same weights and forwarding methods.
   */
  readonly fingerprint: string;
  /** Its real servers, parsed at the first call (lines the reader does not know are skipped). */
  servers(): readonly ListedRealServer[];
}

// The two connection counts that end a real-server line (and the blanks the format pads with).
const CONNECTION_COUNTS = / +\d+ +\d+ *$/gm;

/**
 * The file as one block per non-fwmark virtual server, by vsKey: a full resync compares each
 * block with what it read last time and parses only those that differ, so that an idle node's
 * resync costs a scan of the text rather than an object per real server.
 */
export function procBlocks(text: string): Map<string, RealServerBlock> {
  const out = new Map<string, RealServerBlock>();
  let key: string | undefined;
  let blockStart = 0;
  const close = (end: number): void => {
    if (key === undefined) return;
    const lines = text.slice(blockStart, end);
    let parsed: ListedRealServer[] | undefined;
    out.set(key, {
      fingerprint: lines.replace(CONNECTION_COUNTS, ''),
      servers: () => {
        if (parsed) return parsed;
        parsed = [];
        for (const line of lines.split('\n')) {
          const r = line.startsWith(' ') ? parseDestLine(line) : undefined;
          if (r) parsed.push(r);
        }
        return parsed;
      },
    });
    key = undefined;
  };
  for (let at = 0; at < text.length; ) {
    const nl = text.indexOf('\n', at);
    const end = nl === -1 ? text.length : nl;
    // Real-server lines are not looked at here: they belong to the open block.
    if (text.charCodeAt(at) !== 32) {
      close(at);
      const vs = parseServiceLine(text.slice(at, end));
      if (vs) {
        key = vsKey(vs);
        blockStart = end + 1;
      }
    }
    at = end + 1;
  }
  close(text.length);
  return out;
}

/** Every block's real servers, parsed (what a caller that needs them all wants). */
export function allRealServers(blocks: ReadonlyMap<string, RealServerBlock>): Map<string, ListedRealServer[]> {
  return new Map([...blocks].map(([k, b]) => [k, [...b.servers()]]));
}

/** Renders services as the kernel prints them (the fake's view of the file). */
export function renderProcIpvs(services: ReadonlyArray<Omit<ListedVirtualServer, 'realServers'> & { readonly realServers: readonly ListedRealServer[] }>): string {
  const lines = ['IP Virtual Server version 1.2.1 (size=4096)', 'Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn'];
  for (const s of services) {
    lines.push(`${s.protocol}  ${procAddressText(s.address)}:${hex4(s.port)} ${s.scheduler} `);
    for (const r of s.realServers) {
      lines.push(`  -> ${procAddressText(r.address)}:${hex4(r.port)}      ${NAME_BY_FORWARD[r.forward].padEnd(7)} ${String(r.weight).padEnd(6)} ${String(r.activeConns).padEnd(10)} ${String(r.inactiveConns).padEnd(10)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
