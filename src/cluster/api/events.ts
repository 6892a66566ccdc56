// Kubernetes Events on a Service for failures its owner must fix (a health-check node port that
// cannot bind, say), as kube-proxy's event recorder does. The same event is not re-posted while it
// repeats within the window, so a failure retried every sync does not flood the API server.
import type { Logger } from '../../observe/log.js';
import type { RestClient } from './rest.js';
import { errorMessage } from '../../model/error-text.js';

export interface EventTarget {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface EventSink {
  warn(target: EventTarget, reason: string, message: string): void;
}

const REPEAT_WINDOW_MS = 10 * 60 * 1000;

export class EventRecorder implements EventSink {
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly rest: RestClient,
    private readonly node: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  warn(target: EventTarget, reason: string, message: string): void {
    const key = `${target.namespace}/${target.name}/${reason}/${message}`;
    const t = this.now();
    const last = this.lastSent.get(key);
    if (last !== undefined && t - last < REPEAT_WINDOW_MS) return;
    this.lastSent.set(key, t);
    const at = new Date(t).toISOString();
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Service', namespace: target.namespace, name: target.name, ...(target.uid ? { uid: target.uid } : {}) },
      reason,
      message,
      type: 'Warning',
      source: { component: 'kube-ipvs', host: this.node },
      reportingComponent: 'kube-ipvs',
      reportingInstance: this.node,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    this.rest.create(`/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`, event).catch((e: unknown) => {
      // An event is best effort: say so once, never fail the sync for it.
      this.log.warn('could not post an event', { service: `${target.namespace}/${target.name}`, reason, error: errorMessage(e) });
    });
  }
}
