// In-memory links and addresses with the kernel's rules: what rtnetlink refuses, this refuses
// with the same error codes (test/dataplane/netif/contract.test.ts and test/vm/netif.vm.ts run
// generated sequences on both); dump() prints `ip -o link` / `ip -o addr` style lines and load()
// reads them back.
import { DataplaneError } from '../errors.js';
import { formatIp, hostPrefix, isLinkLocal, isLoopback, parseCidr, parseIp } from '../../model/ip.js';
import type { ParsedIp } from '../../model/ip.js';
import type { InterfaceAddress, NetifBackend } from './backend.js';
import { UNUSABLE_ADDRESS, validLinkName } from './real.js';
import type { NetifAddressOp, NetifLink, NetifOpResult } from './real.js';

export interface FakeNetifOptions {
  /** The node's own interface (default eth0 with 192.168.0.10/24); null for none. */
  readonly node?: { readonly name: string; readonly kind?: string; readonly addresses: readonly string[] } | null;
  /** False models a kernel without the dummy module (ensureDummy → UNAVAILABLE). */
  readonly dummyAvailable?: boolean;
  /** Link kinds that can be created (default dummy, bridge, veth). */
  readonly kinds?: readonly string[];
  /** Without the default loopback lo (127.0.0.1/8, ::1/128): a fresh network namespace. */
  readonly noLoopback?: boolean;
}

interface Addr {
  readonly ip: ParsedIp;
  readonly text: string;
  readonly prefix: number;
}

interface Link extends NetifLink {
  readonly addrs: Addr[];
}

function scopeOf(a: Addr): string {
  if (isLoopback(a.ip)) return 'host';
  if (isLinkLocal(a.ip)) return 'link';
  return 'global';
}

function sameAddr(a: Addr, ip: ParsedIp, prefix?: number): boolean {
  return a.ip.family === ip.family && a.text === formatIp(ip) && (prefix === undefined || a.prefix === prefix);
}

/**
 * Why the kernel will not hold `ip` on the link: IPv6 refuses the unspecified address, multicast,
 * and ::1 off the loopback device (EADDRNOTAVAIL); IPv4 answers 0.0.0.0 with success and stores
 * nothing ("ignored"). Checked with RealNetif on 6.x.
 */
function unusable(ip: ParsedIp, link: Link): string | 'ignored' | undefined {
  const zero = ip.bytes.every((b) => b === 0);
  if (ip.family === 'IPv4') return zero ? 'ignored' : undefined;
  if (zero || ip.bytes[0] === 0xff || (isLoopback(ip) && link.name !== 'lo')) return UNUSABLE_ADDRESS;
  return undefined;
}

export class FakeNetif implements NetifBackend {
  private links_: Link[] = [];
  private nextIndex = 1;
  private readonly dummyAvailable: boolean;
  private readonly kinds: ReadonlySet<string>;

  constructor(opts: FakeNetifOptions = {}) {
    this.dummyAvailable = opts.dummyAvailable ?? true;
    this.kinds = new Set(opts.kinds ?? ['dummy', 'bridge', 'veth']);
    if (!opts.noLoopback) this.addLink('lo', 'loopback', ['127.0.0.1/8', '::1/128']);
    const node = opts.node === undefined ? { name: 'eth0', kind: 'veth', addresses: ['192.168.0.10/24'] } : opts.node;
    if (node) this.addLink(node.name, node.kind ?? '', node.addresses);
  }

  /** Adds a link with arbitrary addresses (CIDR text), as the host's own configuration would. */
  addLink(name: string, kind: string, cidrs: readonly string[] = []): void {
    if (!validLinkName(name)) throw new DataplaneError('INVALID', 'netif', 'create', name, 'not a valid link name');
    if (this.find(name)) throw new DataplaneError('EXISTS', 'netif', 'create', name, 'EEXIST');
    const link: Link = { name, index: this.nextIndex++, kind, addrs: [] };
    for (const c of cidrs) {
      const slash = c.indexOf('/');
      const ip = parseIp(c.slice(0, slash));
      if (!ip || !parseCidr(c)) throw new DataplaneError('INVALID', 'netif', 'bind', `${c} on ${name}`, 'not a CIDR');
      link.addrs.push({ ip, text: formatIp(ip), prefix: Number(c.slice(slash + 1)) });
    }
    this.links_.push(link);
  }

  private find(name: string): Link | undefined {
    return this.links_.find((l) => l.name === name);
  }

  private lookup(dev: string, op: string, opIndex?: number): Link | undefined {
    if (!validLinkName(dev)) throw new DataplaneError('INVALID', 'netif', op, dev, 'not a valid link name', opIndex);
    return this.find(dev);
  }

  async links(): Promise<NetifLink[]> {
    return this.links_.map(({ name, index, kind }) => ({ name, index, kind }));
  }

  async link(name: string): Promise<NetifLink | undefined> {
    if (!validLinkName(name)) throw new DataplaneError('INVALID', 'netif', 'lookup', name, 'not a valid link name');
    const l = this.find(name);
    return l ? { name: l.name, index: l.index, kind: l.kind } : undefined;
  }

  async ensureLink(name: string, kind: string): Promise<{ readonly created: boolean }> {
    if (await this.link(name)) return { created: false };
    if (!this.kinds.has(kind) || (kind === 'dummy' && !this.dummyAvailable)) {
      throw new DataplaneError(
        'UNAVAILABLE',
        'netif',
        'create',
        name,
        `link kind ${kind} is unavailable: the ${kind} module is missing: modprobe ${kind}`,
      );
    }
    this.addLink(name, kind);
    return { created: true };
  }

  ensureDummy(name: string): Promise<{ readonly created: boolean }> {
    return this.ensureLink(name, 'dummy');
  }

  async deleteLink(name: string, kind: string): Promise<{ readonly deleted: boolean }> {
    const l = await this.link(name);
    if (!l || l.kind !== kind) return { deleted: false };
    this.links_ = this.links_.filter((x) => x.name !== name);
    return { deleted: true };
  }

  deleteDummy(name: string): Promise<{ readonly deleted: boolean }> {
    return this.deleteLink(name, 'dummy');
  }

  async addresses(): Promise<InterfaceAddress[]> {
    return this.links_.flatMap((l) =>
      l.addrs.map((a) => ({ ifname: l.name, ifindex: l.index, family: a.ip.family, address: a.text, prefix: a.prefix })),
    );
  }

  private bindNow(dev: string, ip: string, opIndex?: number): void {
    const p = parseIp(ip);
    if (!p) throw new DataplaneError('INVALID', 'netif', 'bind', `${ip} on ${dev}`, 'not an IP address', opIndex);
    const l = this.lookup(dev, 'bind', opIndex);
    if (!l) throw new DataplaneError('NOT_FOUND', 'netif', 'bind', dev, 'no such link', opIndex);
    const problem = unusable(p, l);
    if (problem === 'ignored') return;
    if (problem) throw new DataplaneError('INVALID', 'netif', 'bind', `${ip} on ${dev}`, problem, opIndex);
    const prefix = hostPrefix(p.family);
    // The kernel refuses a second IPv6 address with the same IP whatever its prefix, but keeps
    // IPv4 addresses apart by prefix (10.0.0.5/24 and 10.0.0.5/32 can coexist). Both EEXIST,
    // which bind treats as success.
    if (l.addrs.some((a) => sameAddr(a, p, p.family === 'IPv6' ? undefined : prefix))) return;
    l.addrs.push({ ip: p, text: formatIp(p), prefix });
  }

  private unbindNow(dev: string, ip: string, opIndex?: number): void {
    const p = parseIp(ip);
    if (!p) throw new DataplaneError('INVALID', 'netif', 'unbind', `${ip} on ${dev}`, 'not an IP address', opIndex);
    const l = this.lookup(dev, 'unbind', opIndex);
    if (!l) return;
    // Only the host prefix goes; a wider address with the same IP is not ours (EADDRNOTAVAIL).
    const i = l.addrs.findIndex((a) => sameAddr(a, p, hostPrefix(p.family)));
    if (i >= 0) l.addrs.splice(i, 1);
  }

  async bind(dev: string, ip: string): Promise<void> {
    this.bindNow(dev, ip);
  }

  async unbind(dev: string, ip: string): Promise<void> {
    this.unbindNow(dev, ip);
  }

  async bindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]> {
    return this.many(ops, (o, i) => this.bindNow(o.dev, o.ip, i));
  }

  async unbindMany(ops: readonly NetifAddressOp[]): Promise<NetifOpResult[]> {
    return this.many(ops, (o, i) => this.unbindNow(o.dev, o.ip, i));
  }

  /** Each op commits on its own, as the kernel runs each message of a batch independently. */
  private many(ops: readonly NetifAddressOp[], run: (o: NetifAddressOp, i: number) => void): NetifOpResult[] {
    return ops.map((o, i) => {
      try {
        run(o, i);
        return { ...o, ok: true };
      } catch (e) {
        if (e instanceof DataplaneError) return { ...o, ok: false, error: e };
        throw e;
      }
    });
  }

  /**
   * Link lines (`N: NAME: kind KIND`, as `ip -o -d link` would say it) then address lines
   * (`N: NAME    inet ADDR/PREFIX scope SCOPE`, as `ip -o addr`), in index order.
   */
  dump(): string {
    const lines: string[] = [];
    for (const l of this.links_) lines.push(`${l.index}: ${l.name}: kind ${l.kind || '-'}`);
    for (const l of this.links_) {
      for (const a of l.addrs) {
        const fam = a.ip.family === 'IPv4' ? 'inet' : 'inet6';
        lines.push(`${l.index}: ${l.name}    ${fam} ${a.text}/${a.prefix} scope ${scopeOf(a)}`);
      }
    }
    return lines.map((s) => `${s}\n`).join('');
  }

  /** Replaces every link and address with those of a dump() text. */
  load(text: string): void {
    const links: Link[] = [];
    let maxIndex = 0;
    text.split('\n').forEach((raw, n) => {
      const line = raw.trim();
      if (line === '') return;
      const bad = (why: string): DataplaneError =>
        new DataplaneError('PARSE', 'netif', 'load', `line ${n + 1}`, `${why}: ${JSON.stringify(raw)}`);
      const lm = /^(\d+): (\S+): kind (\S+)$/.exec(line);
      if (lm) {
        const index = Number(lm[1]);
        const name = lm[2] ?? '';
        if (!validLinkName(name)) throw bad('bad link name');
        if (links.some((l) => l.index === index || l.name === name)) throw bad('duplicate link');
        links.push({ name, index, kind: lm[3] === '-' ? '' : (lm[3] ?? ''), addrs: [] });
        maxIndex = Math.max(maxIndex, index);
        return;
      }
      const am = /^(\d+): (\S+)\s+(inet6?) (\S+)\/(\d+)(?: scope \S+)?$/.exec(line);
      if (!am) throw bad('not a link or address line');
      const link = links.find((l) => l.index === Number(am[1]) && l.name === am[2]);
      if (!link) throw bad('address of an unknown link');
      const ip = parseIp(am[4] ?? '');
      const prefix = Number(am[5]);
      if (!ip || (ip.family === 'IPv4') !== (am[3] === 'inet') || prefix > hostPrefix(ip.family)) throw bad('bad address');
      link.addrs.push({ ip, text: formatIp(ip), prefix });
    });
    this.links_ = links;
    this.nextIndex = maxIndex + 1;
  }
}
