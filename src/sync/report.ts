// What one reconciliation did: counts per operation and every failure with its object, so the
// daemon can log one line per sync and --once can list the failed operations.
import { DataplaneError } from '../dataplane/errors.js';
import type { Subsystem } from '../dataplane/errors.js';
import { errorMessage } from '../model/error-text.js';

export interface SyncFailure {
  /** 'sync': an unexpected exception outside any dataplane operation (a bug). */
  readonly subsystem: Subsystem | 'sync';
  readonly op: string;
  readonly object: string;
  readonly message: string;
  /** For an unexpected exception: where it came from. */
  readonly stack?: string;
}

export class SyncReport {
  readonly counts = new Map<string, number>();
  readonly failures: SyncFailure[] = [];
  /**
   * Objects a full sync found changed behind our back (then repaired), per subsystem: what the
   * kernel held differed from what we last wrote there.
   */
  readonly drift = new Map<Subsystem, number>();

  count(what: string, n = 1): void {
    if (n !== 0) this.counts.set(what, (this.counts.get(what) ?? 0) + n);
  }

  fail(f: SyncFailure): void {
    this.failures.push(f);
  }

  noteDrift(subsystem: Subsystem, n: number): void {
    if (n > 0) this.drift.set(subsystem, (this.drift.get(subsystem) ?? 0) + n);
  }

  get ok(): boolean {
    return this.failures.length === 0;
  }

  /** "ipvs.addService=3 ipset.add=12" for the per-sync log line. */
  summary(): string {
    return [...this.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(' ');
  }
}

/** An exception that escaped the reconcilers, as a failure: a dataplane error keeps its object. */
export function failureOf(e: unknown): SyncFailure {
  if (e instanceof DataplaneError) return { subsystem: e.subsystem, op: e.op, object: e.object, message: e.message };
  return { subsystem: 'sync', op: 'sync', object: 'proxier', message: errorMessage(e), ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) };
}
