// The daemon's recent syncs, for /status and the status page: the last N syncs (duration, full or
// partial, result, writes, drift), the last one's failed operations, and drift totals. Owns only
// what the sync loop reports to it; one instance per daemon.
import type { OperationFailure, SubsystemCounts, SyncRecord, SyncStatus } from './status-document.js';

/** How many syncs the history keeps (the status page charts them). */
export const SYNC_HISTORY_LENGTH = 60;

export interface SyncEvent {
  /** Epoch ms when the sync ended. */
  readonly at: number;
  readonly full: boolean;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly changedServices: number;
  readonly changes: string;
  readonly failures: ReadonlyArray<{ readonly subsystem: string; readonly op: string; readonly object: string; readonly message: string }>;
  readonly drift: ReadonlyMap<string, number>;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class SyncHistory {
  private readonly records: SyncRecord[] = [];
  private lastFailures: OperationFailure[] = [];
  private lastSuccessAt: number | undefined;
  private lastFullAt: number | undefined;
  private lastDriftAt: number | undefined;
  private lastDrift: SubsystemCounts = {};
  private readonly driftTotal = new Map<string, number>();

  constructor(private readonly capacity = SYNC_HISTORY_LENGTH) {}

  record(e: SyncEvent): void {
    let drift = 0;
    for (const [subsystem, n] of e.drift) {
      drift += n;
      this.driftTotal.set(subsystem, (this.driftTotal.get(subsystem) ?? 0) + n);
    }
    if (drift > 0) {
      this.lastDriftAt = e.at;
      this.lastDrift = Object.fromEntries(e.drift);
    }
    this.records.push({
      at: iso(e.at),
      full: e.full,
      ok: e.ok,
      durationSeconds: Math.round(e.durationMs) / 1000,
      changedServices: e.changedServices,
      changes: e.changes,
      failures: e.failures.length,
      drift,
    });
    if (this.records.length > this.capacity) this.records.splice(0, this.records.length - this.capacity);
    this.lastFailures = e.failures.map((f) => ({ subsystem: f.subsystem, operation: f.op, object: f.object, error: f.message }));
    if (e.ok) this.lastSuccessAt = e.at;
    if (e.full) this.lastFullAt = e.at;
  }

  /** The failed operations of the last sync (none after a good one). */
  failures(): readonly OperationFailure[] {
    return this.lastFailures;
  }

  /** The sync part of /status, given the changes waiting for the next sync. */
  status(pending: { services: number; endpoints: number }): SyncStatus {
    const last = this.records.at(-1);
    return {
      ...(last ? { last } : {}),
      ...(this.lastSuccessAt !== undefined ? { lastSuccessAt: iso(this.lastSuccessAt) } : {}),
      ...(this.lastFullAt !== undefined ? { lastFullAt: iso(this.lastFullAt) } : {}),
      pending: { services: pending.services, endpoints: pending.endpoints },
      history: [...this.records],
      drift: {
        ...(this.lastDriftAt !== undefined ? { lastAt: iso(this.lastDriftAt) } : {}),
        last: this.lastDrift,
        total: Object.fromEntries(this.driftTotal),
      },
    };
  }
}
