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
const NEWLINE = 0x0a;
const BLANK = 0x20;

/** A block as the reader keeps it: its lines (a string of their own) besides the rest. */
class ReadBlock implements RealServerBlock {
  /** Its real servers once parsed. */
  private parsed: readonly ListedRealServer[] | undefined;

  constructor(
    private readonly lines: string,
    readonly fingerprint: string,
  ) {}

  servers(): readonly ListedRealServer[] {
    if (this.parsed) return this.parsed;
    const out: ListedRealServer[] = [];
    for (const line of this.lines.split('\n')) {
      const r = line.startsWith(' ') ? parseDestLine(line) : undefined;
      if (r) out.push(r);
    }
    this.parsed = out;
    return out;
  }
}

/**
 * Where a block lay in a read: its first line (a virtual server's, or a header of the file) from
 * `start`, its indented lines from `body` to `end`.
 */
interface Placed {
  readonly start: number;
  readonly body: number;
  readonly end: number;
  /** The first line's vsKey; null for headers, fwmark and unknown lines. */
  readonly key: string | null;
  readonly block: ReadBlock | undefined;
}

/** A read as the reader remembers it. Its bytes are those of the caller's buffer (see read()). */
interface LastRead {
  readonly bytes: Uint8Array;
  readonly placed: readonly Placed[];
  readonly blocks: ReadonlyMap<string, RealServerBlock>;
}

const NOTHING_READ: LastRead = { bytes: new Uint8Array(0), placed: [], blocks: new Map() };

/**
 * Reads the file as one block per non-fwmark virtual server, by vsKey, remembering its last read.
 * A read whose bytes are all those of the last read gives that read's blocks again; otherwise a
 * block whose bytes are those of the last read (counts included, as on a node without traffic) is
 * that read's block object again, and only blocks that differ are decoded into text. So a full
 * resync of an unchanged node costs a comparison of bytes, and no garbage in the size of the file.
 */
export class ProcIpvsReader {
  private last: LastRead = NOTHING_READ;
  /** Virtual-server lines by text: their vsKey, or null for lines that are not ours. */
  private keys = new Map<string, string | null>();

  /**
   * The blocks of one read of the file. `bytes` must stay unchanged until the next call returns:
   * that call compares with them (ProcFile's alternating buffers keep that promise).
   */
  read(bytes: Uint8Array): ReadonlyMap<string, RealServerBlock> {
    const last = this.last;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.equals(last.bytes)) {
      this.last = { ...last, bytes };
      return last.blocks;
    }
    if (this.keys.size > 2 * last.placed.length + 16) this.keys = new Map();
    const placed: Placed[] = [];
    const blocks = new Map<string, ReadBlock>();
    // Blocks mostly come in the last read's order: `next` is the one expected at `pos`.
    let next = 0;
    let indexOfKey: Map<string, number> | undefined;
    const n = buf.length;
    let pos = 0;
    while (pos < n) {
      const expected = last.placed[next];
      if (expected !== undefined) {
        const end = pos + expected.end - expected.start;
        // The same bytes, and the block ends there too: at the end of the file, or at a line that
        // is not one of its own (a last line without its newline may go on in this read).
        if (end <= n && (end === n || (buf[end - 1] === NEWLINE && buf[end] !== BLANK)) && buf.compare(last.bytes, expected.start, expected.end, pos, end) === 0) {
          placed.push({ start: pos, body: pos + expected.body - expected.start, end, key: expected.key, block: expected.block });
          if (expected.key !== null && expected.block) blocks.set(expected.key, expected.block);
          next++;
          pos = end;
          continue;
        }
      }
      const lineEnd = buf.indexOf(NEWLINE, pos);
      const body = lineEnd < 0 ? n : lineEnd + 1;
      let end = body;
      while (end < n && buf[end] === BLANK) {
        const e = buf.indexOf(NEWLINE, end);
        end = e < 0 ? n : e + 1;
      }
      const line = buf.toString('latin1', pos, lineEnd < 0 ? n : lineEnd);
      let key = this.keys.get(line);
      if (key === undefined) {
        const vs = parseServiceLine(line);
        this.keys.set(line, (key = vs ? vsKey(vs) : null));
      }
      let block: ReadBlock | undefined;
      if (key !== null) {
        let i = expected?.key === key ? next : undefined;
        if (i === undefined) {
          indexOfKey ??= new Map(last.placed.flatMap((p, j) => (p.key === null ? [] : [[p.key, j] as const])));
          i = indexOfKey.get(key);
        }
        const before = i === undefined ? undefined : last.placed[i];
        if (i !== undefined) next = i + 1;
        if (before?.block && before.end - before.body === end - body && buf.compare(last.bytes, before.body, before.end, body, end) === 0) block = before.block;
        else {
          const lines = buf.toString('latin1', body, end);
          block = new ReadBlock(lines, lines.replace(CONNECTION_COUNTS, ''));
        }
        blocks.set(key, block);
      }
      placed.push({ start: pos, body, end, key, block });
      pos = end;
    }
    this.last = { bytes, placed, blocks };
    return blocks;
  }
}

/** The file as one block per non-fwmark virtual server, by vsKey (a read with nothing before it). */
export function procBlocks(text: string): ReadonlyMap<string, RealServerBlock> {
  return new ProcIpvsReader().read(Buffer.from(text, 'latin1'));
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
