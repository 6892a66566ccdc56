// The long-running loop shared by both cluster sources: the bounded-frequency runner syncs on
// changes (no closer than --ipvs-min-sync-period) and fully at least every --ipvs-sync-period,
// however often changes come; SIGHUP asks the source to re-read and forces a full sync;
// SIGTERM/SIGINT stop after the sync in flight and leave the dataplane in place, as kube-proxy
// does. A sync that throws is logged with its stack, counted, and retried like a failed one.
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import type { Clock } from '../model/clock.js';
import { realClock } from '../model/clock.js';
import { BoundedFrequencyRunner } from '../sync/runner.js';
import { errorMessage } from '../model/error-text.js';

/** Where the cluster's objects come from, as the daemon drives it. */
export interface DaemonSource {
  /** Starts delivering changes; `onChange` asks for a sync. */
  start(onChange: () => void): void;
  /** Before each periodic full sync (the manifest source re-reads its files). */
  beforeResync(): void;
  /** SIGHUP. */
  hangup(): void;
  close(): void;
}

/** Health, metrics and the like: told when a change is queued and when a sync throws. */
export interface DaemonObserver {
  queued(): void;
  /** A sync threw instead of returning its outcome (already logged). */
  syncThrew(): void;
  close(): Promise<void>;
}

export interface DaemonParts {
  readonly log: Logger;
  readonly source: DaemonSource;
  /** One sync (full or partial); resolves true on success. */
  readonly sync: (full: boolean) => Promise<boolean>;
  /** When the dataplane wants its next sync at the latest (drain checks), if sooner than periodic. */
  readonly nextSyncBy?: () => number | undefined;
  readonly config: ProxyConfig;
  readonly observer?: DaemonObserver;
  readonly close: () => void;
  /** The runner's time (tests); the real clock by default. */
  readonly clock?: Clock;
}

/** The sync loop without the process signals (runDaemon adds them). */
export interface SyncLoop {
  /** SIGHUP: the source re-reads and the next sync is a full one. */
  hangup(): void;
  /** Stops after the sync in flight, then closes the source, the observer and the dataplane. */
  stop(): Promise<void>;
}

export function startSyncLoop(d: DaemonParts): SyncLoop {
  let forceFull = false;
  const retryIntervalMs = Math.min(d.config.ipvs.syncPeriodMs, Math.max(d.config.ipvs.minSyncPeriodMs, 5000));
  const runner = new BoundedFrequencyRunner({
    minIntervalMs: d.config.ipvs.minSyncPeriodMs,
    maxIntervalMs: d.config.ipvs.syncPeriodMs,
    // After a failure, retry soon but never faster than the minimum period allows.
    retryIntervalMs,
    clock: d.clock ?? realClock,
    run: async (reason) => {
      // The periodic run is the full resync that repairs anything changed behind our back; the
      // runner makes one due every sync period, whatever requests come in between.
      const full = reason !== 'requested' || forceFull;
      forceFull = false;
      try {
        if (reason === 'periodic') d.source.beforeResync();
        return await d.sync(full);
      } catch (e) {
        // A bug, not a dataplane failure (those come back in the outcome): keep the stack.
        d.log.error('sync threw; retrying', { full, error: errorMessage(e), stack: e instanceof Error ? e.stack : undefined, retryIn: `${retryIntervalMs / 1000}s` });
        d.observer?.syncThrew();
        return false;
      }
    },
    ...(d.nextSyncBy ? { nextRunBy: d.nextSyncBy } : {}),
  });
  const onChange = (): void => {
    d.observer?.queued();
    runner.request();
  };
  d.source.start(onChange);
  runner.start();
  return {
    hangup(): void {
      d.source.hangup();
      forceFull = true;
      onChange();
    },
    async stop(): Promise<void> {
      runner.stop();
      d.source.close();
      await runner.settled();
      await d.observer?.close();
      d.close();
    },
  };
}

export function runDaemon(d: DaemonParts): Promise<number> {
  const loop = startSyncLoop(d);
  const onHup = (): void => {
    d.log.info('SIGHUP: re-reading the cluster source and syncing fully');
    loop.hangup();
  };
  process.on('SIGHUP', onHup);
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      d.log.info('stopping; the dataplane stays in place (use kube-ipvs cleanup to remove it)', { signal });
      process.off('SIGHUP', onHup);
      void loop.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
