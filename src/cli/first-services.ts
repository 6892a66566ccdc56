// The first-services pass while the API lists are out: default/kubernetes listed on its own and
// programmed before the whole cluster is in (see startFirstServicesPass).
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import type { ClusterSnapshot } from '../cluster/tracker.js';
import { errorMessage } from '../model/error-text.js';
import type { Logger } from '../observe/log.js';
import type { SyncReport } from '../sync/report.js';

/** What the pass needs of the proxier. */
export interface FirstServicesProxier {
  programFirstServices(snapshot: ClusterSnapshot): Promise<SyncReport | undefined>;
}

/** What the first-services pass needs of the API source while its lists are out. */
export interface ListingSource {
  listFirstServices(keys: readonly string[]): Promise<{ services: V1Service[]; slices: V1EndpointSlice[] }>;
  node(): V1Node | undefined;
}

/**
 * The first-services pass from objects listed on their own (kube-ipvs's own improvement on
 * kubernetes#133773: the API server's Service answers before the whole cluster is even listed).
 * `settle` is called once the whole lists are in: a pass not yet writing is dropped (the first
 * sync makes it), one writing is awaited, so the first sync's writes never overlap it. Logs what
 * it did; never throws.
 */
export function startFirstServicesPass(api: ListingSource, proxierOnce: () => Promise<FirstServicesProxier>, nodeName: string, log: Logger): { settle(): Promise<void> } {
  const started = performance.now();
  let settled = false;
  let writing: Promise<void> | undefined;
  const notAhead = (e: unknown): void => log.info('not programmed ahead of the whole lists; the first sync programs them', { error: errorMessage(e) });
  void (async () => {
    try {
      const [{ FIRST_SERVICES }, { ClusterTracker }] = await Promise.all([import('../sync/proxier.js'), import('../cluster/tracker.js')]);
      const [objects, proxier] = await Promise.all([api.listFirstServices(FIRST_SERVICES), proxierOnce()]);
      if (settled) return;
      const own = new ClusterTracker(nodeName, () => undefined);
      for (const s of objects.services) own.upsertService(s);
      for (const s of objects.slices) own.upsertEndpointSlice(s);
      writing = proxier.programFirstServices(own.drain(FIRST_SERVICES).snapshot).then(
        (report) => {
          if (report === undefined) return;
          const fields = { services: FIRST_SERVICES.join(','), ms: Math.round(performance.now() - started) };
          if (report.ok) log.info('programmed ahead of the whole lists', fields);
          else log.warn('programmed ahead of the whole lists, with failures; the first sync retries them', { ...fields, failed: report.failures.length, first: report.failures[0]?.message });
        },
        notAhead,
      );
    } catch (e) {
      if (!settled) notAhead(e);
    }
  })();
  return {
    settle: async () => {
      settled = true;
      await writing;
    },
  };
}

