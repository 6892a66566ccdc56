// Makes IPVS hold the planned virtual and real servers: observe → diff → ordered batch → apply.
// Owns every virtual server of its families outside --ipvs-exclude-cidrs (as kube-proxy does), so
// anything no longer wanted is gone after one full sync. Real servers leave gracefully: TCP ones
// drain at weight 0 until their connections end (or a drain timeout passes); UDP/SCTP ones go at
// once and their conntrack flows are flushed. A draining server that is wanted again is put back
// to weight 1 in place, without dropping its connections.
//
// A partial sync diffs a changed virtual server against the real servers we last wrote to it, not
// against a kernel dump: the dump is most of the cost of an endpoint change. It reads the kernel
// when it would remove a TCP real server, for its connection counts (as kube-proxy does): one
// without connections is deleted at once, one with connections drains at weight 0 and its counts
// are checked again (drain checks: 1 s, then doubling intervals up to a minute, kube-proxy's check
// interval). The kernel is also re-read where our memory may be wrong (after a failed write) and
// on every full sync, which repairs whatever changed behind our back (reading all real servers at
// once from /proc/net/ip_vs, and parsing only the virtual servers whose lines differ from those a
// full sync found in order).
import type { ConntrackBackend } from '../dataplane/conntrack/backend.js';
import type { IpvsBackend, IpvsOp, ListedRealServer, ObservedVirtualServerSetup, RealServerBlock } from '../dataplane/ipvs/backend.js';
import { isNotFound } from '../dataplane/errors.js';
import type { ParsedCidr } from '../model/ip.js';
import { inAnyCidr } from '../model/ip.js';
import type { RealServer, VirtualServer, VirtualServerSpec } from '../model/kernel.js';
import { rsKey, sameVirtualServer, vsKey } from '../model/kernel.js';
import type { IpFamily } from '../model/types.js';
import type { Clock } from '../model/clock.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

export interface IpvsReconcilerOptions {
  readonly backend: IpvsBackend;
  readonly conntrack: ConntrackBackend | undefined;
  readonly families: readonly IpFamily[];
  readonly excludeCIDRs: readonly ParsedCidr[];
  readonly clock: Clock;
  /** Longest time a TCP real server drains at weight 0 before it is deleted anyway. */
  readonly drainTimeoutMs: number;
}

/** A real server being drained: weight 0 since `since`; its connections are next read at `checkAt`. */
export interface Draining {
  readonly vs: VirtualServer;
  readonly rs: RealServer;
  readonly since: number;
  readonly checkAt: number;
}

/** The first look at a drained server's connections: most have none left by then. */
export const FIRST_DRAIN_CHECK_MS = 1000;
/** Later looks double the wait up to kube-proxy's check interval. */
export const MAX_DRAIN_CHECK_MS = 60_000;

/** A real server as a sync sees it; `conns` is undefined when it comes from our memory, not a dump. */
interface CurrentRealServer {
  readonly rs: RealServer;
  readonly conns: number | undefined;
}

/** The planned virtual servers by vsKey (a view over the families' maps, never copied). */
export type VirtualServerLookup = Pick<ReadonlyMap<string, VirtualServerSpec>, 'get' | 'has' | 'keys'>;

/** Which virtual servers a sync looks at: all (full resync) or the keys the plan changed. */
export type IpvsScope = { readonly full: true } | { readonly full: false; readonly keys: ReadonlySet<string> };

function toVirtualServer(o: ObservedVirtualServerSetup): VirtualServer {
  return { family: o.family, protocol: o.protocol, address: o.address, port: o.port, scheduler: o.scheduler, flags: o.flags, timeout: o.timeout };
}

/**
 * Whether a partial visit would remove a TCP real server we wrote: then it reads the kernel first,
 * as kube-proxy does (GracefulDeleteRS, pkg/proxy/ipvs/graceful_termination.go, v1.36.3), so that
 * a server without connections is deleted in this sync rather than drained at weight 0 and checked
 * a second later.
 */
function removesTcp(vs: VirtualServer, record: VirtualServerRecord, want: readonly RealServer[]): boolean {
  if (vs.protocol !== 'TCP' || record.written === undefined || record.written === want) return false;
  const wanted = new Set(want.map(rsKey));
  return record.written.some((rs) => !wanted.has(rsKey(rs)));
}

function fromKernel(c: ListedRealServer): CurrentRealServer {
  return { rs: { address: c.address, port: c.port, weight: c.weight, forward: c.forward }, conns: c.activeConns + c.inactiveConns };
}

/**
 * What we believe the kernel holds for one virtual server, and what we last did to it.
 */
interface VirtualServerRecord {
  /** The virtual server as last read from the kernel or written there. */
  vs: VirtualServer;
  /**
   * The real servers we last made it hold besides its draining ones: the plan's own array (shared,
   * never copied). Undefined means unknown (new to us, a failed write, a full sync re-reading), and
   * the next visit reads the kernel.
   */
  written: readonly RealServer[] | undefined;
  /** Its real servers draining at weight 0, by rsKey (changed through setDrain and undrain only). */
  readonly draining: Map<string, Draining>;
  /**
   * Set by a full sync that read its real servers, found nothing to write and nothing draining:
   * the kernel's lines for it then (`fingerprint`) and the plan's array it matched (`wanted`).
   * Cleared by any other visit. The next full sync that reads the same lines while the plan still
   * wants the same array knows it is in order without parsing or diffing it.
   */
  verified: { readonly fingerprint: string; readonly wanted: readonly RealServer[] } | undefined;
}

export class IpvsReconciler {
  /**
   * Invariant: one record per virtual server we believe the kernel holds, by vsKey, and nothing else.
   * (Order: as we learnt of them; a full sync rebuilds it from the kernel's listing, in its order.)
   */
  private servers = new Map<string, VirtualServerRecord>();
  /**
   * An index of `servers`: exactly the records with draining servers, in the order their drains
   * began, so drain checks and status need not scan every virtual server.
   */
  private readonly withDrains = new Map<string, VirtualServerRecord>();
  /** A full sync has read the kernel once: from then on the records are what we left there. */
  private observedOnce = false;
  /**
   * Each listed setup's key and virtual server, by the listing's entry: the backend hands back the
   * same entry while the kernel's bytes for it are unchanged, so an unchanged listing builds no
   * key strings or objects.
   */
  private readonly listed = new WeakMap<ObservedVirtualServerSetup, { readonly key: string; readonly vs: VirtualServer }>();
  /**
   * The last full sync's listing, until a virtual server is next written (added, updated or
   * deleted, whatever the outcome): while it is set, `servers` holds exactly the records adopting
   * it made. A full sync listing the very same entries (the backend hands back an entry whose
   * kernel bytes did not change) skips adopting them again: at 15,000 virtual servers, most of
   * an idle resync's own work under emulation.
   */
  private untouchedListing: readonly ObservedVirtualServerSetup[] | undefined;

  constructor(private readonly options: IpvsReconcilerOptions) {}

  /** Real servers currently draining (for status and tests). */
  drainingServers(): readonly Draining[] {
    return [...this.withDrains.values()].flatMap((r) => [...r.draining.values()]);
  }

  /** When the earliest drain check is due (ms, clock time), if any server is draining. */
  nextDrainCheckAt(): number | undefined {
    let at: number | undefined;
    for (const r of this.withDrains.values()) for (const d of r.draining.values()) if (at === undefined || d.checkAt < at) at = d.checkAt;
    return at;
  }

  private owned(vs: Pick<VirtualServer, 'family' | 'address'>): boolean {
    return this.options.families.includes(vs.family) && !inAnyCidr(vs.address, this.options.excludeCIDRs);
  }

  /**
   * Creates and updates the wanted virtual servers and their real servers. Deleting unwanted
   * virtual servers is a separate step (prune), run after the iptables rules are in place.
   */
  async apply(desired: VirtualServerLookup, scope: IpvsScope, report: SyncReport): Promise<void> {
    // Records of the virtual servers a full sync no longer finds: only its drift count reads them.
    let gone: ReadonlyMap<string, VirtualServerRecord> = new Map();
    if (scope.full) {
      const observed = await this.options.backend.listServiceSetups();
      // The very entries of the last listing, and nothing written since: the records are what
      // adopting this listing would make, and there is no drift to count.
      if (!sameEntries(observed, this.untouchedListing)) {
        const fresh = new Map<string, VirtualServer>();
        for (const o of observed) {
          if (o.fwmark !== undefined) continue;
          let entry = this.listed.get(o);
          if (!entry) this.listed.set(o, (entry = { key: vsKey(o), vs: toVirtualServer(o) }));
          fresh.set(entry.key, entry.vs);
        }
        if (this.observedOnce) report.noteDrift('ipvs', this.virtualServerDrift(fresh));
        gone = this.adopt(fresh);
      }
      this.untouchedListing = observed;
    }
    const keys = scope.full ? [...desired.keys()] : [...scope.keys].filter((k) => desired.has(k));
    const serviceOps: IpvsOp[] = [];
    const created = new Set<string>();
    for (const key of keys) {
      const want = (desired.get(key) as VirtualServerSpec).vs;
      const have = this.servers.get(key)?.vs;
      if (!have) {
        serviceOps.push({ kind: 'addService', vs: want });
        created.add(key);
      } else if (!sameVirtualServer(have, want)) {
        serviceOps.push({ kind: 'updateService', vs: want });
      }
    }
    const failedServices = new Set<string>();
    if (serviceOps.length > 0) this.untouchedListing = undefined;
    for (const r of await this.options.backend.apply(serviceOps)) {
      const key = vsKey(r.op.vs);
      if (r.ok) {
        const record = this.servers.get(key);
        if (record) record.vs = r.op.vs;
        else this.servers.set(key, { vs: r.op.vs, written: undefined, draining: new Map(), verified: undefined });
        report.count(`ipvs.${r.op.kind}`);
      } else {
        failedServices.add(key);
        report.fail({ subsystem: 'ipvs', op: r.op.kind, object: key, message: errorMessage(r.error) });
      }
    }

    // Real servers of the changed virtual servers, and of those with a drain check due. A full
    // sync reads all of them at once; if that read fails, it dumps them one by one.
    const all = scope.full ? await this.options.backend.listRealServerBlocks().catch(() => undefined) : undefined;
    // Virtual servers whose lines are those a full sync verified, for the array the plan still wants.
    const unchanged = new Set<string>();
    if (scope.full) {
      for (const [key, record] of this.servers) {
        const v = record.verified;
        if (v && v.fingerprint === all?.get(key)?.fingerprint && record.written === v.wanted && desired.get(key)?.realServers === v.wanted) unchanged.add(key);
      }
      if (all && this.observedOnce) report.noteDrift('ipvs', this.realServerDrift(all, gone, unchanged));
      for (const [key, r] of this.servers) r.written = unchanged.has(key) ? r.written : undefined;
      this.observedOnce = true;
    }
    const now = this.options.clock.now();
    // (A verified record was created before this sync and has no drains: both end a verification.)
    const visit = new Set(keys.filter((k) => !failedServices.has(k) && !unchanged.has(k)));
    const dueChecks = new Set<string>();
    for (const [key, r] of this.withDrains) {
      if (!scope.full && ![...r.draining.values()].some((d) => d.checkAt <= now)) continue;
      visit.add(key);
      dueChecks.add(key);
    }
    const destOps: IpvsOp[] = [];
    const udpFlushes: Array<{ vs: VirtualServer; rs: RealServer }> = [];
    const visited: Array<{ key: string; record: VirtualServerRecord; wanted: readonly RealServer[] | undefined; fingerprint: string | undefined; ops: number }> = [];
    for (const key of visit) {
      const spec = desired.get(key);
      const record = this.servers.get(key);
      const vs = spec?.vs ?? record?.draining.values().next().value?.vs;
      // No record: its virtual server is gone (behind our back), and the servers it drained with it.
      if (!vs || !record) continue;
      const source = created.has(key) ? 'none' : scope.full || dueChecks.has(key) || removesTcp(vs, record, spec?.realServers ?? []) ? 'kernel' : 'memory';
      const current = await this.currentRealServers(key, record, vs, source, all);
      const have = new Map(current.map((c) => [rsKey(c.rs), c]));
      // A kernel read (or a virtual server just created) is the truth about what drains: a server
      // it lacks needs no more checks.
      if (source !== 'memory') for (const k of record.draining.keys()) if (!have.has(k)) this.undrain(key, record, k);
      const before = destOps.length;
      this.diffRealServers(key, vs, record, spec?.realServers ?? [], have, now, destOps, udpFlushes);
      visited.push({ key, record, wanted: spec?.realServers, fingerprint: source === 'kernel' ? all?.get(key)?.fingerprint : undefined, ops: destOps.length - before });
    }
    const failedDests = new Set<string>();
    for (const r of await this.options.backend.apply(destOps)) {
      const key = vsKey(r.op.vs);
      const k = rsKey((r.op as { rs: RealServer }).rs);
      if (r.ok) report.count(`ipvs.${r.op.kind}`);
      else if (r.op.kind === 'deleteDest' && isNotFound(r.error)) {
        const record = this.servers.get(key);
        if (record) this.undrain(key, record, k);
      } else {
        failedDests.add(key);
        report.fail({ subsystem: 'ipvs', op: r.op.kind, object: `${key}/${k}`, message: errorMessage(r.error) });
      }
    }
    // After a failed write the kernel's state is unknown: the next visit reads it.
    for (const { key, record, wanted, fingerprint, ops } of visited) {
      record.written = failedDests.has(key) ? undefined : wanted;
      const verified = scope.full && fingerprint !== undefined && wanted !== undefined && ops === 0 && record.draining.size === 0;
      record.verified = verified ? { fingerprint, wanted } : undefined;
    }
    await this.flushUdp(udpFlushes, report);
  }

  /**
   * What a virtual server holds: nothing when created in this batch; from the kernel (the full
   * sync's one read of all, else a dump) when fresh counts are needed or we have no memory of it;
   * else our memory of the last write plus its draining servers.
   */
  private async currentRealServers(key: string, record: VirtualServerRecord, vs: VirtualServer, source: 'none' | 'kernel' | 'memory', all: ReadonlyMap<string, RealServerBlock> | undefined): Promise<CurrentRealServer[]> {
    if (source === 'none') return [];
    const written = source === 'memory' ? record.written : undefined;
    if (written === undefined) return (all?.get(key)?.servers() ?? (await this.options.backend.listRealServers(vs))).map(fromKernel);
    const current: CurrentRealServer[] = written.map((rs) => ({ rs, conns: undefined }));
    for (const d of record.draining.values()) current.push({ rs: d.rs, conns: undefined });
    return current;
  }

  /**
   * A full sync's records: one per virtual server the kernel lists, in its order, each keeping
   * what we remember of its real servers. Returns the records of the virtual servers it lacks,
   * whose drains end with them.
   */
  private adopt(fresh: ReadonlyMap<string, VirtualServer>): Map<string, VirtualServerRecord> {
    const next = new Map<string, VirtualServerRecord>();
    for (const [key, vs] of fresh) {
      const record = this.servers.get(key);
      if (record) {
        record.vs = vs;
        this.servers.delete(key);
        next.set(key, record);
      } else {
        next.set(key, { vs, written: undefined, draining: new Map(), verified: undefined });
      }
    }
    const gone = this.servers;
    this.servers = next;
    for (const key of gone.keys()) this.withDrains.delete(key);
    return gone;
  }

  /** Our virtual servers added, removed or changed behind our back since we last looked. */
  private virtualServerDrift(fresh: ReadonlyMap<string, VirtualServer>): number {
    let n = 0;
    for (const [key, { vs }] of this.servers) {
      const now = fresh.get(key);
      if (this.owned(vs) && (!now || !sameVirtualServer(now, vs))) n++;
    }
    for (const [key, vs] of fresh) if (!this.servers.has(key) && this.owned(vs)) n++;
    return n;
  }

  /**
   * Real servers of the virtual servers we wrote whose presence or weight differs from our last
   * write (draining ones are expected at weight 0; one gone early is not counted). A virtual server
   * deleted behind our back and created again by this sync is judged by its old record (`gone`).
   * Those `unchanged` since a full sync verified them have none.
   */
  private realServerDrift(all: ReadonlyMap<string, RealServerBlock>, gone: ReadonlyMap<string, VirtualServerRecord>, unchanged: ReadonlySet<string>): number {
    let n = 0;
    for (const [key, current] of this.servers) {
      const record = gone.get(key) ?? current;
      if (record.written === undefined || unchanged.has(key)) continue;
      const have = new Map((all.get(key)?.servers() ?? []).map((r) => [rsKey(r), r]));
      for (const rs of record.written) {
        const h = have.get(rsKey(rs));
        if (!h || h.weight !== rs.weight) n++;
        have.delete(rsKey(rs));
      }
      for (const k of have.keys()) if (!record.draining.has(k)) n++;
    }
    return n;
  }

  /** Notes that real server `k` drains (or its next check); a record's first drain indexes it last. */
  private setDrain(key: string, record: VirtualServerRecord, k: string, d: Draining): void {
    if (record.draining.size === 0) this.withDrains.set(key, record);
    record.draining.set(k, d);
  }

  /** Forgets the drain of real server `k`, if any; a record left without drains leaves the index. */
  private undrain(key: string, record: VirtualServerRecord, k: string): void {
    if (record.draining.delete(k) && record.draining.size === 0) this.withDrains.delete(key);
  }

  /** When to look at a drained server's connections next: doubling waits, never past its timeout. */
  private nextCheck(since: number, now: number): number {
    const wait = Math.min(Math.max(now - since, FIRST_DRAIN_CHECK_MS), MAX_DRAIN_CHECK_MS);
    return Math.min(now + wait, since + this.options.drainTimeoutMs);
  }

  /** `have`: what the virtual server holds now, by rsKey; `record`: its record, whose drains this keeps. */
  private diffRealServers(key: string, vs: VirtualServer, record: VirtualServerRecord, want: readonly RealServer[], have: ReadonlyMap<string, CurrentRealServer>, now: number, ops: IpvsOp[], udpFlushes: Array<{ vs: VirtualServer; rs: RealServer }>): void {
    const wanted = new Set<string>();
    for (const w of want) {
      const k = rsKey(w);
      wanted.add(k);
      const c = have.get(k);
      if (!c) {
        ops.push({ kind: 'addDest', vs, rs: w });
        this.undrain(key, record, k);
      } else if (record.draining.get(k)) {
        // Wanted again while draining: back to full weight in place, connections kept.
        ops.push({ kind: 'updateDest', vs, rs: w });
        this.undrain(key, record, k);
      } else if (c.rs.weight !== w.weight) {
        // A wanted server at the wrong weight without a drain record of ours: left at 0 by an
        // earlier process (k/k #92019, #108319) or changed behind our back. Fix it in place.
        ops.push({ kind: 'updateDest', vs, rs: w });
      }
    }
    for (const [k, c] of have) {
      if (wanted.has(k)) continue;
      const rs = c.rs;
      const d = record.draining.get(k);
      if (vs.protocol !== 'TCP') {
        // UDP/SCTP have no connection end to wait for: delete now and flush the flows.
        ops.push({ kind: 'deleteDest', vs, rs });
        udpFlushes.push({ vs, rs });
        this.undrain(key, record, k);
      } else if (c.conns === 0 || (d && now - d.since >= this.options.drainTimeoutMs)) {
        ops.push({ kind: 'deleteDest', vs, rs });
        this.undrain(key, record, k);
      } else if (!d) {
        // Counts unknown or non-zero: stop new connections now, look at the counts later. A server
        // already at weight 0 (drained by an earlier process) is adopted without a write.
        if (rs.weight !== 0) ops.push({ kind: 'updateDest', vs, rs: { ...rs, weight: 0 } });
        this.setDrain(key, record, k, { vs, rs: { ...rs, weight: 0 }, since: now, checkAt: this.nextCheck(now, now) });
      } else {
        if (c.conns !== undefined) this.setDrain(key, record, k, { ...d, checkAt: this.nextCheck(d.since, now) });
        if (rs.weight !== 0) ops.push({ kind: 'updateDest', vs, rs: { ...rs, weight: 0 } });
      }
    }
  }

  private async flushUdp(items: ReadonlyArray<{ vs: VirtualServer; rs: RealServer }>, report: SyncReport): Promise<void> {
    if (!this.options.conntrack) return;
    for (const { vs, rs } of items) {
      try {
        const n = await this.options.conntrack.deleteFlows({
          family: vs.family,
          protocol: vs.protocol === 'SCTP' ? 'sctp' : 'udp',
          origDst: vs.address,
          origDstPort: vs.port,
          replySrc: rs.address,
        });
        report.count('conntrack.deleted', n);
      } catch (e) {
        report.fail({ subsystem: 'conntrack', op: 'delete', object: `${vsKey(vs)}/${rsKey(rs)}`, message: errorMessage(e) });
      }
    }
  }

  /**
   * Deletes the virtual servers we own that are not wanted (full: every one in the kernel; partial:
   * the changed keys). Whole virtual servers go at once, as in kube-proxy.
   */
  async prune(desired: VirtualServerLookup, scope: IpvsScope, report: SyncReport): Promise<void> {
    const candidates = scope.full ? [...this.servers.keys()] : [...scope.keys];
    const ops: IpvsOp[] = [];
    for (const key of candidates) {
      if (desired.has(key)) continue;
      const vs = this.servers.get(key)?.vs;
      if (!vs || !this.owned(vs)) continue;
      ops.push({ kind: 'deleteService', vs });
    }
    if (ops.length > 0) this.untouchedListing = undefined;
    for (const r of await this.options.backend.apply(ops)) {
      const key = vsKey(r.op.vs);
      if (r.ok || isNotFound(r.error)) {
        this.servers.delete(key);
        this.withDrains.delete(key);
        if (r.ok) report.count('ipvs.deleteService');
      } else {
        report.fail({ subsystem: 'ipvs', op: 'deleteService', object: key, message: errorMessage(r.error) });
      }
    }
  }
}

/** Whether two listings hold the very same entry objects, in the same order. */
function sameEntries(a: readonly ObservedVirtualServerSetup[], b: readonly ObservedVirtualServerSetup[] | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
