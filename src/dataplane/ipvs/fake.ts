// An in-memory IPVS table that behaves like the kernel's (net/netfilter/ipvs/ip_vs_ctl.c as seen
// through IpvsNetlinkClient): same identities, same defaults on read, same errno codes in the same
// order of checks. Tests drive the sync loop against it and compare `dump()` text; the contract
// suite (test/dataplane/ipvs/contract.ts) holds it to the real kernel's behaviour.
import type { ForwardMethod, RealServer, VirtualServerSpec } from '../../model/kernel.js';
import { SCHEDULERS, VsFlag, rsKey, vsKey } from '../../model/kernel.js';
import type { IpFamily, Protocol } from '../../model/types.js';
import { formatIp, parseIp } from '../../model/ip.js';
import type { ParsedIp } from '../../model/ip.js';
import type { IpvsBackend, IpvsOp, IpvsOpResult, IpvsTimeouts, ObservedRealServer, ObservedVirtualServer, ObservedVirtualServerSetup } from './backend.js';
import type { IpvsErrorCode, IpvsOpName } from './errors.js';
import { Errno, IpvsError } from './errors.js';
import type { IpvsDestSpec, IpvsServiceSpec, IpvsStats, TunnelType } from './netlink-codec.js';
import { FORWARD_CODES, TUNNEL_CODES, ZERO_STATS, destLabel, serviceLabel } from './netlink-codec.js';
import { compareRealServers, compareVirtualServers, parseAddrPort, parseIpvsadmSave, renderIpvsadmSave } from '../../model/text/ipvs.js';
import { seededRandom } from '../prng.js';
import type { RealServerBlock } from './proc.js';
import { ProcIpvsReader, renderProcIpvs } from './proc.js';

/** Fails a seeded share of writes without applying them (convergence tests). */
export interface IpvsFaults {
  /** Share of ops to fail, 0..1. */
  readonly rate: number;
  readonly seed: number;
}

export interface FakeIpvsOptions {
  /**
   * false: the host has no IPv4 routing table at all (not even lo up). The kernel classifies a new
   * IPv4 real server's address with inet_addr_type(), which then answers "broadcast", so every new
   * IPv4 real server, whatever its forwarding method, is refused with EINVAL; IPv6 ones are not
   * (checked in the VM: netns with lo down vs up). Default true.
   */
  readonly hasRoute?: boolean;
  readonly faults?: IpvsFaults;
  /** Scheduler modules the kernel can load (default: every upstream one, see SCHEDULERS). */
  readonly schedulers?: readonly string[];
  /** Persistence engines the kernel can load (default: "sip", the only upstream one). */
  readonly persistenceEngines?: readonly string[];
}

/** Connection counters of a real server, as `ipvsadm -Ln` shows them. */
export interface IpvsConnections {
  readonly active: number;
  readonly inactive: number;
  readonly persist: number;
}

type ServiceRef = string | Pick<IpvsServiceSpec, 'family' | 'protocol' | 'address' | 'port'> & { readonly fwmark?: number };
type DestRef = string | Pick<RealServer, 'address' | 'port'>;

/** The kernel's defaults (ip_vs_proto_tcp/udp timeout tables): tcp 15 min, fin_wait 2 min, udp 5 min. */
export const DEFAULT_IPVS_TIMEOUTS: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };

const EIO = 5;
const INT32_MAX = 0x7fffffff;
const U32_MAX = 0xffffffff;
/** IP_VS_SCHEDNAME_MAXLEN / IP_VS_PENAME_MAXLEN, with the NUL. */
const NAME_MAXLEN = 16;
/** What the client allows for a timeout: INT_MAX / HZ with HZ at most 1000. */
const MAX_GLOBAL_TIMEOUT = 2147483;
const PROTOCOLS: ReadonlySet<string> = new Set<Protocol>(['TCP', 'UDP', 'SCTP']);

interface Service {
  readonly family: IpFamily;
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  readonly fwmark: number;
  scheduler: string;
  flags: number;
  timeout: number;
  netmask: number;
  peName: string;
  stats: IpvsStats;
  readonly dests: Map<string, Dest>;
}

interface Dest {
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
  weight: number;
  forward: ForwardMethod;
  upperThreshold: number;
  lowerThreshold: number;
  tunnelType: TunnelType;
  tunnelPort: number;
  tunnelFlags: number;
  activeConns: number;
  inactiveConns: number;
  persistConns: number;
  stats: IpvsStats;
}


function fail(code: IpvsErrorCode, op: IpvsOpName, object: string, detail?: string): never {
  const errno = code === 'UNKNOWN' ? EIO : (Errno[code as keyof typeof Errno] ?? 0);
  throw new IpvsError({ code, errno, op, object, ...(detail !== undefined ? { detail } : {}) });
}

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

function isPort(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function validName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) < NAME_MAXLEN && !name.includes('\0');
}

function serviceKeyOf(family: IpFamily, fwmark: number, protocol: Protocol, address: string, port: number): string {
  return fwmark > 0 ? `${family} fwmark ${fwmark}` : `${family} ${vsKey({ address, port, protocol })}`;
}

function destKeyOf(family: IpFamily, address: string, port: number): string {
  return `${family} ${rsKey({ address, port })}`;
}

/**
 * What ip_vs_new_dest accepts as a real server address: IPv4 unicast or local (not 0/8, not
 * 255.255.255.255, not multicast); IPv6 unicast and not link-local.
 */
function acceptableDestAddress(ip: ParsedIp, hasRoute: boolean): boolean {
  const b = ip.bytes;
  if (ip.family === 'IPv4') {
    if (!hasRoute) return false;
    const first = b[0] ?? 0;
    if (first === 0) return false; // 0.0.0.0/8: "broadcast" to inet_addr_type
    if (first >= 224 && first < 240) return false; // multicast
    return !b.every((x) => x === 255); // limited broadcast
  }
  const first = b[0] ?? 0;
  if (first === 0xff) return false; // multicast
  if (first === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80) return false; // fe80::/10
  return b.some((x) => x !== 0); // :: is not unicast
}

function copyService(s: Service): Service {
  const dests = new Map<string, Dest>();
  for (const [k, d] of s.dests) dests.set(k, { ...d });
  return { ...s, dests };
}

/** The IPVS table of one network namespace. */
class Table {
  readonly services = new Map<string, Service>();
  timeouts: IpvsTimeouts = DEFAULT_IPVS_TIMEOUTS;

  constructor(
    private readonly schedulers: ReadonlySet<string>,
    private readonly engines: ReadonlySet<string>,
    public hasRoute: boolean,
  ) {}

  clone(): Table {
    const t = new Table(this.schedulers, this.engines, this.hasRoute);
    for (const [k, s] of this.services) t.services.set(k, copyService(s));
    t.timeouts = this.timeouts;
    return t;
  }

  /** Resolves a service identity the way the client encodes it; undefined `op` errors are list/hook misuse. */
  identity(vs: ServiceRef, op: IpvsOpName): { key: string; family: IpFamily; protocol: Protocol; address: string; port: number; fwmark: number } {
    if (typeof vs === 'string') return this.identityFromLabel(vs, op);
    const object = serviceLabel(vs);
    const fwmark = vs.fwmark ?? 0;
    if (vs.family !== 'IPv4' && vs.family !== 'IPv6') fail('EAFNOSUPPORT', op, object);
    if (fwmark !== 0) {
      if (!isU32(fwmark)) fail('EINVAL', op, object, `fwmark ${fwmark} is not an unsigned 32-bit integer`);
      return { key: serviceKeyOf(vs.family, fwmark, 'TCP', '', 0), family: vs.family, protocol: 'TCP', address: '', port: 0, fwmark };
    }
    const ip = parseIp(vs.address);
    if (!ip) fail('EINVAL', op, object, `"${vs.address}" is not an IP address`);
    if (ip.family !== vs.family) fail('EINVAL', op, object, `address ${vs.address} is not ${vs.family}`);
    if (!isPort(vs.port)) fail('EINVAL', op, object, `port ${vs.port} is not a port number`);
    if (!PROTOCOLS.has(vs.protocol)) fail('EINVAL', op, object, `unknown protocol ${String(vs.protocol)}`);
    const address = formatIp(ip);
    return { key: serviceKeyOf(vs.family, 0, vs.protocol, address, vs.port), family: vs.family, protocol: vs.protocol, address, port: vs.port, fwmark: 0 };
  }

  /** "10.0.0.1:80/TCP", "[fd00::1]:53/UDP" (model vsKey) or "fwmark:7/IPv4" (serviceLabel). */
  private identityFromLabel(label: string, op: IpvsOpName): ReturnType<Table['identity']> {
    const mark = /^fwmark:(\d+)\/(IPv4|IPv6)$/.exec(label);
    if (mark) return this.identity({ family: mark[2] as IpFamily, protocol: 'TCP', address: '', port: 0, fwmark: Number(mark[1]) }, op);
    const slash = label.lastIndexOf('/');
    const ap = slash > 0 ? parseAddrPort(label.slice(0, slash)) : undefined;
    const protocol = label.slice(slash + 1);
    if (!ap || !PROTOCOLS.has(protocol)) throw new Error(`fake IPVS: ${JSON.stringify(label)} is not a virtual server key like 10.0.0.1:80/TCP`);
    return this.identity({ family: ap.family, protocol: protocol as Protocol, address: ap.address, port: ap.port }, op);
  }

  /** Client-side checks of a full service (codec serviceNest), then the kernel's module lookups are done by the caller. */
  private checkServiceAttrs(vs: IpvsServiceSpec, op: IpvsOpName, object: string): number {
    if (!validName(vs.scheduler)) fail('EINVAL', op, object, `scheduler "${vs.scheduler}" must be 1..${NAME_MAXLEN - 1} bytes`);
    if (!isU32(vs.flags)) fail('EINVAL', op, object, `flags ${vs.flags} is not an unsigned 32-bit integer`);
    if (!isU32(vs.timeout)) fail('EINVAL', op, object, `timeout ${vs.timeout} is not an unsigned 32-bit integer`);
    const netmask = vs.netmask ?? (vs.family === 'IPv4' ? U32_MAX : 128);
    if (!isU32(netmask)) fail('EINVAL', op, object, `netmask ${netmask} is not an unsigned 32-bit integer`);
    if (vs.family === 'IPv6' && (netmask < 1 || netmask > 128)) fail('EINVAL', op, object, `IPv6 netmask is a prefix length 1..128, got ${netmask}`);
    if (vs.peName !== undefined && vs.peName !== '' && !validName(vs.peName)) fail('EINVAL', op, object, `persistence engine "${vs.peName}" must be 1..15 bytes`);
    return netmask;
  }

  /** ip_vs_add_service / ip_vs_edit_service: the scheduler and persistence engine must load. */
  private checkModules(vs: IpvsServiceSpec, op: IpvsOpName, object: string): void {
    // "none" is the kernel's own "no scheduler" and needs no module.
    if (vs.scheduler !== 'none' && !this.schedulers.has(vs.scheduler)) fail('ENOENT', op, object);
    if (vs.peName !== undefined && vs.peName !== '' && !this.engines.has(vs.peName)) fail('ENOENT', op, object);
  }

  /** Client-side checks of a destination (codec destNest). */
  private destIdentity(rs: IpvsDestSpec, full: boolean, op: IpvsOpName, object: string): ParsedIp {
    const ip = parseIp(rs.address);
    if (!ip) fail('EINVAL', op, object, `"${rs.address}" is not an IP address`);
    if (!isPort(rs.port)) fail('EINVAL', op, object, `port ${rs.port} is not a port number`);
    if (!full) return ip;
    if (FORWARD_CODES[rs.forward] === undefined) fail('EINVAL', op, object, `unknown forwarding method ${String(rs.forward)}`);
    if (!Number.isInteger(rs.weight) || rs.weight < -0x80000000 || rs.weight > INT32_MAX) fail('EINVAL', op, object, `weight ${rs.weight} is not a 32-bit integer`);
    if (!isU32(rs.upperThreshold ?? 0)) fail('EINVAL', op, object, 'upper threshold is not an unsigned 32-bit integer');
    if (!isU32(rs.lowerThreshold ?? 0)) fail('EINVAL', op, object, 'lower threshold is not an unsigned 32-bit integer');
    if (rs.tunnelType !== undefined && TUNNEL_CODES[rs.tunnelType] === undefined) fail('EINVAL', op, object, `unknown tunnel type ${String(rs.tunnelType)}`);
    if (rs.tunnelPort !== undefined && !isPort(rs.tunnelPort)) fail('EINVAL', op, object, 'tunnel port is not a port number');
    if (rs.tunnelFlags !== undefined && !(Number.isInteger(rs.tunnelFlags) && rs.tunnelFlags >= 0 && rs.tunnelFlags <= 0xffff)) {
      fail('EINVAL', op, object, 'tunnel flags are not a 16-bit integer');
    }
    return ip;
  }

  /** One command, checked in ip_vs_genl_set_cmd's order; throws IpvsError, changes nothing on error. */
  applyOne(op: IpvsOp): void {
    const isDest = op.kind === 'addDest' || op.kind === 'updateDest' || op.kind === 'deleteDest';
    const object = isDest ? destLabel(op.vs, op.rs) : serviceLabel(op.vs);
    const id = this.identity(op.vs, op.kind);
    // Encoding checks happen in the client before anything is sent.
    const netmask = op.kind === 'addService' || op.kind === 'updateService' ? this.checkServiceAttrs(op.vs, op.kind, object) : 0;
    const ip = isDest ? this.destIdentity(op.rs, op.kind !== 'deleteDest', op.kind, object) : undefined;

    const svc = this.services.get(id.key);
    if (op.kind === 'addService') {
      if (svc) fail('EEXIST', op.kind, object);
      this.checkModules(op.vs, op.kind, object);
      this.services.set(id.key, {
        family: id.family,
        protocol: id.protocol,
        address: id.address,
        port: id.port,
        fwmark: id.fwmark,
        scheduler: op.vs.scheduler,
        flags: op.vs.flags & ~VsFlag.HASHED,
        timeout: op.vs.timeout,
        netmask,
        peName: op.vs.peName ?? '',
        stats: ZERO_STATS,
        dests: new Map(),
      });
      return;
    }
    if (!svc) fail('ESRCH', op.kind, object);
    switch (op.kind) {
      case 'updateService':
        this.checkModules(op.vs, op.kind, object);
        svc.scheduler = op.vs.scheduler;
        svc.flags = op.vs.flags & ~VsFlag.HASHED;
        svc.timeout = op.vs.timeout;
        svc.netmask = netmask;
        svc.peName = op.vs.peName ?? '';
        return;
      case 'deleteService':
        this.services.delete(id.key);
        return;
      default:
    }
    if (!ip) return;
    const rs = op.rs;
    const dkey = destKeyOf(ip.family, formatIp(ip), rs.port);
    if (op.kind === 'deleteDest') {
      if (!svc.dests.delete(dkey)) fail('ENOENT', op.kind, object);
      return;
    }
    // Mixed-family services only forward through tunnels.
    if (ip.family !== svc.family && rs.forward !== 'tunnel') fail('EINVAL', op.kind, object, 'real server family differs from the virtual server without tunnel forwarding');
    const upper = rs.upperThreshold ?? 0;
    const lower = rs.lowerThreshold ?? 0;
    if (rs.weight < 0 || lower > upper) fail('ERANGE', op.kind, object);
    const tunnelType = rs.tunnelType ?? 'ipip';
    const tunnelPort = rs.tunnelPort ?? 0;
    if (tunnelType === 'gue' && tunnelPort === 0) fail('EINVAL', op.kind, object, 'a GUE tunnel needs a tunnel port');
    const existing = svc.dests.get(dkey);
    const settings = { weight: rs.weight, forward: rs.forward, upperThreshold: upper, lowerThreshold: lower, tunnelType, tunnelPort, tunnelFlags: rs.tunnelFlags ?? 0 };
    if (op.kind === 'updateDest') {
      if (!existing) fail('ENOENT', op.kind, object);
      Object.assign(existing, settings);
      return;
    }
    if (existing) fail('EEXIST', op.kind, object);
    if (!acceptableDestAddress(ip, this.hasRoute)) {
      fail('EINVAL', op.kind, object, this.hasRoute ? 'real server address is not unicast' : 'no route: the kernel cannot classify the real server address');
    }
    svc.dests.set(dkey, { family: ip.family, address: formatIp(ip), port: rs.port, ...settings, activeConns: 0, inactiveConns: 0, persistConns: 0, stats: ZERO_STATS });
  }
}

function observeService(s: Service): ObservedVirtualServer {
  return {
    family: s.family,
    protocol: s.protocol,
    address: s.address,
    port: s.port,
    scheduler: s.scheduler,
    flags: s.flags,
    timeout: s.timeout,
    netmask: s.netmask,
    stats: { ...s.stats },
    ...(s.fwmark > 0 ? { fwmark: s.fwmark } : {}),
    ...(s.peName ? { peName: s.peName } : {}),
  };
}

function observeDest(d: Dest): ObservedRealServer {
  return {
    address: d.address,
    port: d.port,
    weight: d.weight,
    forward: d.forward,
    family: d.family,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    activeConns: d.activeConns,
    inactiveConns: d.inactiveConns,
    persistConns: d.persistConns,
    stats: { ...d.stats },
    // The decoder reports tunnel attributes only for tunnel real servers.
    ...(d.forward === 'tunnel' ? { tunnelType: d.tunnelType, tunnelPort: d.tunnelPort, tunnelFlags: d.tunnelFlags } : {}),
  };
}

/** ipvsadm's order; firewall-mark services (no address) after the others, by mark. */
function compareServices(a: Service, b: Service): number {
  if (a.fwmark > 0 || b.fwmark > 0) return (a.fwmark > 0 ? 1 : 0) - (b.fwmark > 0 ? 1 : 0) || a.fwmark - b.fwmark || a.family.localeCompare(b.family);
  return compareVirtualServers(a, b);
}

export class FakeIpvs implements IpvsBackend {
  private table: Table;
  private faults: IpvsFaults | undefined;
  private random: () => number = Math.random;
  private closed = false;
  /** Ops failed on purpose so far. */
  injectedFaults = 0;
  /** The real backend's reader of /proc/net/ip_vs, which remembers its last read. */
  private readonly proc = new ProcIpvsReader();
  /** The last listServiceSetups' entries, in order. */
  private lastSetups: ObservedVirtualServerSetup[] = [];

  constructor(opts: FakeIpvsOptions = {}) {
    this.table = new Table(new Set(opts.schedulers ?? SCHEDULERS), new Set(opts.persistenceEngines ?? ['sip']), opts.hasRoute ?? true);
    this.setFaults(opts.faults);
  }

  /** Changes or (undefined) stops fault injection; the sequence restarts from the seed. */
  setFaults(faults: IpvsFaults | undefined): void {
    if (faults && !(faults.rate >= 0 && faults.rate <= 1)) throw new RangeError(`fault rate ${faults.rate} is not within 0..1`);
    this.faults = faults;
    if (faults) this.random = seededRandom(faults.seed);
  }

  /** Simulates gaining or losing the host's routes (see FakeIpvsOptions.hasRoute). */
  setHasRoute(hasRoute: boolean): void {
    this.table.hasRoute = hasRoute;
  }

  listServices(): Promise<ObservedVirtualServer[]> {
    return this.run('listServices', () => [...this.table.services.values()].sort(compareServices).map(observeService));
  }

  /**
   * As the netlink client (IpvsNetlinkClient.listServiceSetups): an entry equal to the one at its
   * place in the last listing is that listing's object again.
   */
  listServiceSetups(): Promise<ObservedVirtualServerSetup[]> {
    return this.listServices().then((list) => {
      const last = this.lastSetups;
      this.lastSetups = list.map(({ stats: _stats, ...setup }, i) => {
        const seen = last[i];
        return seen !== undefined && JSON.stringify(seen) === JSON.stringify(setup) ? seen : setup;
      });
      return [...this.lastSetups];
    });
  }

  listRealServers(vs: ObservedVirtualServer | IpvsOp['vs']): Promise<ObservedRealServer[]> {
    return this.run('listDests', () => {
      const svc = this.table.services.get(this.table.identity(vs, 'listDests').key);
      return svc ? [...svc.dests.values()].sort(compareRealServers).map(observeDest) : [];
    });
  }

  /** Through the text the kernel prints in /proc/net/ip_vs, so the parser is what is exercised. */
  listRealServerBlocks(): Promise<ReadonlyMap<string, RealServerBlock>> {
    return this.run('listDests', () => {
      const services = [...this.table.services.values()].filter((s) => s.fwmark === 0).sort(compareServices);
      return this.proc.read(Buffer.from(renderProcIpvs(services.map((s) => ({ ...s, realServers: [...s.dests.values()].sort(compareRealServers) }))), 'latin1'));
    });
  }

  /** Like the kernel, each op commits on its own: a failed op leaves the table as it was and the rest still run. */
  apply(ops: readonly IpvsOp[]): Promise<IpvsOpResult[]> {
    return this.run('apply', () =>
      ops.map((op): IpvsOpResult => {
        const object = op.kind === 'addDest' || op.kind === 'updateDest' || op.kind === 'deleteDest' ? destLabel(op.vs, op.rs) : serviceLabel(op.vs);
        if (this.closed) return { op, ok: false, error: new IpvsError({ code: 'CLOSED', errno: 0, op: op.kind, object }) };
        if (this.faults && this.random() < this.faults.rate) {
          this.injectedFaults++;
          const error = new IpvsError({ code: 'UNKNOWN', errno: EIO, op: op.kind, object, detail: 'injected fault (EIO), not applied' });
          return { op, ok: false, error };
        }
        try {
          this.table.applyOne(op);
          return { op, ok: true };
        } catch (e) {
          if (e instanceof IpvsError) return { op, ok: false, error: e };
          throw e;
        }
      }),
    );
  }

  setTimeouts(t: IpvsTimeouts): Promise<void> {
    return this.run('setTimeouts', () => {
      for (const v of [t.tcp, t.tcpFin, t.udp]) {
        if (!Number.isInteger(v) || v < 0 || v > MAX_GLOBAL_TIMEOUT) fail('EINVAL', 'setTimeouts', '', `timeout ${v} out of range`);
      }
      // 0 leaves that timeout unchanged, as IPVS_CMD_SET_CONFIG does.
      const cur = this.table.timeouts;
      this.table.timeouts = { tcp: t.tcp || cur.tcp, tcpFin: t.tcpFin || cur.tcpFin, udp: t.udp || cur.udp };
    });
  }

  getTimeouts(): Promise<IpvsTimeouts> {
    return this.run('getTimeouts', () => ({ ...this.table.timeouts }));
  }

  flush(): Promise<void> {
    return this.run('flush', () => this.table.services.clear());
  }

  /** Later calls fail with CLOSED, as the real client's do. */
  close(): void {
    this.closed = true;
  }

  // ---- test hooks ----------------------------------------------------------------------------

  /** Sets a real server's connection counters, e.g. to hold a draining real server in place. */
  setConnections(vs: ServiceRef, rs: DestRef, conns: IpvsConnections): void {
    const d = this.findDest(vs, rs);
    d.activeConns = conns.active;
    d.inactiveConns = conns.inactive;
    d.persistConns = conns.persist;
  }

  /** Sets the counters of a virtual server, or of one of its real servers. */
  setStats(vs: ServiceRef, rs: DestRef | undefined, stats: Partial<IpvsStats>): void {
    if (rs === undefined) {
      const svc = this.findService(vs);
      svc.stats = { ...svc.stats, ...stats };
      return;
    }
    const d = this.findDest(vs, rs);
    d.stats = { ...d.stats, ...stats };
  }

  /**
   * The table as `ipvsadm -Sn` prints it. That text has no room for netmasks, thresholds,
   * counters or tunnel options, and the text model has no firewall-mark services, so those are
   * left out.
   */
  dump(): string {
    const specs: VirtualServerSpec[] = [];
    for (const s of this.table.services.values()) {
      if (s.fwmark > 0) continue;
      specs.push({
        vs: { family: s.family, protocol: s.protocol, address: s.address, port: s.port, scheduler: s.scheduler, flags: s.flags, timeout: s.timeout },
        realServers: [...s.dests.values()].map((d) => ({ address: d.address, port: d.port, weight: d.weight, forward: d.forward })),
      });
    }
    return renderIpvsadmSave(specs);
  }

  /**
   * Replaces the whole table with `ipvsadm -Sn` text, as `ipvsadm -C; ipvsadm -R` would. Throws
   * (TextParseError, or the IpvsError of the first refused line) and keeps the old table when the
   * text is not something the kernel would accept.
   */
  load(text: string): void {
    const specs = parseIpvsadmSave(text);
    const next = this.table.clone();
    next.services.clear();
    for (const { vs, realServers } of specs) {
      next.applyOne({ kind: 'addService', vs });
      for (const rs of realServers) next.applyOne({ kind: 'addDest', vs, rs });
    }
    this.table = next;
  }

  /** Like the client: asynchronous results, and CLOSED after close() (apply reports it per op). */
  private run<T>(op: IpvsOpName | 'apply', fn: () => T): Promise<T> {
    if (this.closed && op !== 'apply') return Promise.reject(new IpvsError({ code: 'CLOSED', errno: 0, op, object: '' }));
    try {
      return Promise.resolve(fn());
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private findService(vs: ServiceRef): Service {
    const id = this.table.identity(vs, 'getService');
    const svc = this.table.services.get(id.key);
    if (!svc) throw new Error(`fake IPVS: no virtual server ${serviceLabel(id)}`);
    return svc;
  }

  private findDest(vs: ServiceRef, rs: DestRef): Dest {
    const svc = this.findService(vs);
    const ref = typeof rs === 'string' ? parseAddrPort(rs) : rs;
    const ip = ref ? parseIp(ref.address) : undefined;
    const d = ref && ip ? svc.dests.get(destKeyOf(ip.family, formatIp(ip), ref.port)) : undefined;
    if (!d) throw new Error(`fake IPVS: no real server ${typeof rs === 'string' ? rs : rsKey(rs)} in ${serviceLabel(svc)}`);
    return d;
  }
}
