// The long-running loop shared by both cluster sources: the bounded-frequency runner syncs on
// changes (no closer than --ipvs-min-sync-period) and fully every --ipvs-sync-period; SIGHUP
// asks the source to re-read and forces a full sync; SIGTERM/SIGINT stop after the sync in
// flight and leave the dataplane in place, as kube-proxy does.
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../observe/log.js';
import { realClock } from '../sync/clock.js';
import { BoundedFrequencyRunner } from '../sync/runner.js';

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

/** Health, metrics and the like: told when a change is queued and when a sync ends. */
export interface DaemonObserver {
  queued(): void;
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
}

export function runDaemon(d: DaemonParts): Promise<number> {
  let forceFull = false;
  const runner = new BoundedFrequencyRunner({
    minIntervalMs: d.config.ipvs.minSyncPeriodMs,
    maxIntervalMs: d.config.ipvs.syncPeriodMs,
    // After a failure, retry soon but never faster than the minimum period allows.
    retryIntervalMs: Math.min(d.config.ipvs.syncPeriodMs, Math.max(d.config.ipvs.minSyncPeriodMs, 5000)),
    clock: realClock,
    run: async (reason) => {
      // The periodic run is the full resync that repairs anything changed behind our back.
      if (reason === 'periodic') d.source.beforeResync();
      const full = reason !== 'requested' || forceFull;
      forceFull = false;
      return d.sync(full);
    },
    ...(d.nextSyncBy ? { nextRunBy: d.nextSyncBy } : {}),
  });
  const onChange = (): void => {
    d.observer?.queued();
    runner.request();
  };
  d.source.start(onChange);
  const onHup = (): void => {
    d.log.info('SIGHUP: re-reading the cluster source and syncing fully');
    d.source.hangup();
    forceFull = true;
    onChange();
  };
  process.on('SIGHUP', onHup);
  runner.start();
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      d.log.info('stopping; the dataplane stays in place (use kube-ipvs cleanup to remove it)', { signal });
      runner.stop();
      d.source.close();
      process.off('SIGHUP', onHup);
      void runner
        .settled()
        .then(() => d.observer?.close())
        .then(() => {
          d.close();
          resolve(0);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
