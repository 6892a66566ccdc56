// IP address and CIDR handling: parsing, canonical text (RFC 5952 for IPv6, as the kernel tools
// print), family and containment. Canonical text matters because ipset and IPVS state is compared
// as strings.
import { isIPv4, isIPv6 } from 'node:net';
import type { IpFamily } from './types.js';

export interface ParsedIp {
  readonly family: IpFamily;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

export interface ParsedCidr {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

function parseV4(s: string): Uint8Array | undefined {
  if (!isIPv4(s)) return undefined;
  const parts = s.split('.');
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? '';
    // Leading zeros are ambiguous (octal in some parsers); the API server rejects them too.
    if (part.length > 1 && part.startsWith('0')) return undefined;
    out[i] = Number(part);
  }
  return out;
}

function parseV6(s: string): Uint8Array | undefined {
  if (!isIPv6(s) || s.includes('%')) return undefined;
  let head = s;
  let tailV4: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (!tailV4) return undefined;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const groups: number[] = [];
  for (const g of left) groups.push(parseInt(g, 16));
  const missing = 8 - left.length - right.length;
  for (let i = 0; i < missing; i++) groups.push(0);
  for (const g of right) groups.push(parseInt(g, 16));
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tailV4) out.set(tailV4, 12);
  return out;
}

export function parseIp(s: string): ParsedIp | undefined {
  const v4 = parseV4(s);
  if (v4) return { family: 'IPv4', bytes: v4 };
  const v6 = parseV6(s);
  if (v6) return { family: 'IPv6', bytes: v6 };
  return undefined;
}

export function formatIp(ip: { family: IpFamily; bytes: Uint8Array }): string {
  const b = ip.bytes;
  if (ip.family === 'IPv4') return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[i * 2] ?? 0) << 8) | (b[i * 2 + 1] ?? 0));
  // IPv4-mapped addresses print with a dotted tail, as inet_ntop does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLen).join(':');
  return `${left}::${right}`;
}

// Dotted quad without leading zeros: already canonical, no need to parse and re-print it.
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Canonical text of an IP address, or undefined when it is not one. */
export function canonicalIp(s: string): string | undefined {
  if (CANONICAL_V4.test(s)) return s;
  const p = parseIp(s.trim());
  return p ? formatIp(p) : undefined;
}

export function ipFamilyOf(s: string): IpFamily | undefined {
  return parseIp(s)?.family;
}

export function parseCidr(s: string): ParsedCidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const prefixText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > ip.bytes.length * 8) return undefined;
  return { family: ip.family, bytes: maskBytes(ip.bytes, prefix), prefix };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** Canonical "network/prefix" text (host bits cleared), or undefined when invalid. */
export function canonicalCidr(s: string): string | undefined {
  const c = parseCidr(s.trim());
  return c ? `${formatIp(c)}/${c.prefix}` : undefined;
}

export function cidrContains(cidr: ParsedCidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  const masked = maskBytes(ip.bytes, cidr.prefix);
  for (let i = 0; i < masked.length; i++) if (masked[i] !== cidr.bytes[i]) return false;
  return true;
}

/** True when the text IP lies in any of the CIDRs. */
export function inAnyCidr(ip: string, cidrs: readonly ParsedCidr[]): boolean {
  const p = parseIp(ip);
  return p !== undefined && cidrs.some((c) => cidrContains(c, p));
}

export function isLoopback(ip: ParsedIp): boolean {
  if (ip.family === 'IPv4') return ip.bytes[0] === 127;
  return ip.bytes.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

export function isLinkLocal(ip: ParsedIp): boolean {
  if (ip.family === 'IPv4') return ip.bytes[0] === 169 && ip.bytes[1] === 254;
  return ip.bytes[0] === 0xfe && ((ip.bytes[1] ?? 0) & 0xc0) === 0x80;
}

/** Host prefix length of a family: 32 or 128. */
export function hostPrefix(family: IpFamily): number {
  return family === 'IPv4' ? 32 : 128;
}
