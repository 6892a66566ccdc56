// The bounded-frequency runner (kube-proxy's pkg/proxy/runner semantics): runs are serialised;
// after a run the next one waits at least minInterval; a failed run is retried after
// retryInterval. The full resync ('periodic') is due maxInterval after the last one started,
// whatever ran in between: a run starting at or after that time is the full one, and requests
// never move it, so churn cannot starve it. It is late by at most the run in flight or
// minInterval. (Upstream re-arms maxInterval after every run, enough for its IPVS mode where
// every sync is full; its iptables mode times full syncs from the last one, as here:
// pkg/proxy/iptables/proxier.go lastFullSync, v1.36.3.)
import type { Clock, Timer } from '../model/clock.js';

export interface RunnerOptions {
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retryIntervalMs: number;
  readonly clock: Clock;
  /** One sync; resolves true on success, false (or rejects) on failure. */
  readonly run: (reason: RunReason) => Promise<boolean>;
  /** After a successful run: a time (clock ms) by which the next run is wanted, e.g. a drain check. */
  readonly nextRunBy?: () => number | undefined;
}

/** 'periodic': the full resync is due (the first run is one too); otherwise why the run came. */
export type RunReason = 'requested' | 'periodic' | 'retry';

export class BoundedFrequencyRunner {
  private running = false;
  private pending: RunReason | undefined;
  private lastRunStart = Number.NEGATIVE_INFINITY;
  /** From this time on, the next run is a full one ('periodic'); only a 'periodic' run moves it. */
  private fullDueAt = Number.NEGATIVE_INFINITY;
  private timer: Timer | undefined;
  private timerReason: RunReason | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = true;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: RunnerOptions) {}

  /** Starts the loop with an immediate run. */
  start(): void {
    this.stopped = false;
    this.request();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Resolves when no run is in flight. */
  async settled(): Promise<void> {
    await this.idle;
  }

  /** Asks for a run as soon as minInterval allows; requests during a run coalesce into one. */
  request(): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending ??= 'requested';
      return;
    }
    const at = Math.max(this.options.clock.now(), this.lastRunStart + this.options.minIntervalMs);
    this.schedule(at, 'requested');
  }

  private schedule(at: number, reason: RunReason): void {
    // Keep the earlier of two schedules; a request never postpones a sooner run.
    if (this.timer && this.timerAt <= at) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timerReason = reason;
    this.timer = this.options.clock.setTimer(at - this.options.clock.now(), () => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      // Whatever the timer was set for, a run once the full resync is due is that resync.
      void this.execute(this.options.clock.now() >= this.fullDueAt ? 'periodic' : (this.timerReason ?? reason));
    });
  }

  private async execute(reason: RunReason): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    this.lastRunStart = this.options.clock.now();
    if (reason === 'periodic') this.fullDueAt = this.lastRunStart + this.options.maxIntervalMs;
    let done: () => void = () => {};
    this.idle = new Promise((r) => (done = r));
    let ok = false;
    try {
      ok = await this.options.run(reason);
    } catch {
      // The caller logs its own errors; a rejection still counts as a failed run to retry.
      ok = false;
    } finally {
      this.running = false;
    }
    if (!this.stopped) {
      const now = this.options.clock.now();
      const earliest = this.lastRunStart + this.options.minIntervalMs;
      this.schedule(Math.max(this.fullDueAt, earliest), 'periodic');
      if (this.pending) {
        this.pending = undefined;
        this.schedule(Math.max(now, earliest), 'requested');
      } else if (!ok) {
        this.schedule(Math.max(now + this.options.retryIntervalMs, earliest), 'retry');
      } else {
        const by = this.options.nextRunBy?.();
        if (by !== undefined) this.schedule(Math.max(by, earliest), 'requested');
      }
    }
    done();
  }
}
