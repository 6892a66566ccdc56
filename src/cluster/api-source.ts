// The cluster source for a node in a cluster: Services, EndpointSlices and this node's Node from
// the API server, fed into the ClusterTracker. Selectors as kube-proxy's: objects labelled
// service.kubernetes.io/service-proxy-name (another proxy's) or service.kubernetes.io/headless are
// never even listed. The dataplane is never flushed because the API is unreachable: the tracker
// keeps the last objects, and a relist after reconnecting only changes what really changed.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import type { ApiConnection } from './api/connection.js';
import type { Logger } from '../observe/log.js';
import type { RateLimiter } from './api/rate-limiter.js';
import { Reflector } from './api/reflector.js';
import { RestClient } from './api/rest.js';
import type { ServiceKey } from '../model/types.js';
import type { ClusterTracker } from './tracker.js';

export const PROXY_LABEL_SELECTOR = '!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless';

export interface ApiSourceOptions {
  readonly connection: ApiConnection;
  readonly tracker: ClusterTracker;
  readonly nodeName: string;
  readonly log: Logger;
  /** Something changed that a sync must apply. */
  readonly onChange: () => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Shared with every other API client of the process (--kube-api-qps, --kube-api-burst). */
  readonly limiter?: RateLimiter;
}

function nsName(o: { metadata?: { namespace?: string; name?: string } }): [string, string] {
  return [o.metadata?.namespace ?? 'default', o.metadata?.name ?? ''];
}

export class ApiSource {
  private nodeObject: V1Node | undefined;
  private readonly reflectors: {
    readonly services: Reflector<V1Service>;
    readonly slices: Reflector<V1EndpointSlice>;
    readonly node: Reflector<V1Node>;
  };
  private readonly failing = new Set<string>();
  /** Until the initial lists settle, failures go into waitForInitialSync's answer, not the log. */
  private starting = true;
  /** Set by close(): lists held back by start() never start after it. */
  private closed = false;

  constructor(private readonly options: ApiSourceOptions) {
    const onError = (resource: string) => (message: string, retryInMs: number) => {
      this.failing.add(resource);
      if (!this.starting) options.log.error(message, { retryIn: `${(retryInMs / 1000).toFixed(1)}s` });
    };
    const recovered = (resource: string) => () => {
      if (this.failing.delete(resource)) options.log.info('API source recovered', { resource });
    };
    const shared = { ...(options.backoff ? { backoff: options.backoff } : {}), ...(options.limiter ? { limiter: options.limiter } : {}) };
    this.reflectors = {
      services: new Reflector<V1Service>({
        connection: options.connection,
        path: '/api/v1/services',
        resource: 'services',
        labelSelector: PROXY_LABEL_SELECTOR,
        onUpsert: (s) => this.changed(() => options.tracker.upsertService(s)),
        onDelete: (s) => this.changed(() => options.tracker.deleteService(...nsName(s))),
        onError: onError('services'),
        onListed: recovered('services'),
        ...shared,
      }),
      slices: new Reflector<V1EndpointSlice>({
        connection: options.connection,
        path: '/apis/discovery.k8s.io/v1/endpointslices',
        resource: 'endpointslices.discovery.k8s.io',
        labelSelector: PROXY_LABEL_SELECTOR,
        onUpsert: (s) => this.changed(() => options.tracker.upsertEndpointSlice(s)),
        onDelete: (s) => this.changed(() => options.tracker.deleteEndpointSlice(...nsName(s))),
        onError: onError('endpointslices'),
        onListed: recovered('endpointslices'),
        ...shared,
      }),
      node: new Reflector<V1Node>({
        connection: options.connection,
        path: '/api/v1/nodes',
        resource: 'nodes',
        fieldSelector: `metadata.name=${options.nodeName}`,
        onUpsert: (n) => this.setNode(n),
        onDelete: () => this.setNode(undefined),
        onError: onError('nodes'),
        onListed: recovered('nodes'),
        ...shared,
      }),
    };
  }

  /**
   * Starts this node's Node at once, and Services and EndpointSlices once `listsFrom` settles
   * (at once without it). A node joining a big cluster decodes megabytes of lists on the same
   * thread that loads the daemon's sync modules and opens its dataplane; holding them until then
   * lets the first-services pass program default/kubernetes seconds sooner, and the lists are
   * decoded while it writes.
   */
  start(listsFrom?: Promise<unknown>): void {
    this.reflectors.node.start();
    const lists = (): void => {
      if (this.closed) return;
      this.reflectors.services.start();
      this.reflectors.slices.start();
    };
    if (listsFrom === undefined) lists();
    else void listsFrom.then(lists, lists);
  }

  /**
   * Resolves once Services, EndpointSlices and the Node have each listed once — no sync may run
   * before, or it would delete every service not yet seen. Rejects with the first failure's
   * explanation (start-up should exit with it) or after `timeoutMs`.
   */
  async waitForInitialSync(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the API server did not answer the initial lists within ${timeoutMs / 1000}s; check that it is reachable`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(Object.values(this.reflectors).map((r) => r.waitForFirstList())), timeout]);
    } finally {
      clearTimeout(timer);
      this.starting = false;
    }
  }

  /**
   * A few Services and their EndpointSlices, listed on their own while the whole lists are out (a
   * namespaced list with a name field selector: kube-proxy's role may list, not get), once this
   * node's Node has listed. They feed the first-services pass (src/sync/proxier.ts), which only
   * adds: nothing is removed before the whole lists are in.
   */
  async listFirstServices(keys: readonly ServiceKey[]): Promise<{ services: V1Service[]; slices: V1EndpointSlice[] }> {
    const rest = new RestClient(this.options.connection, this.options.limiter);
    const fetched = await Promise.all(
      keys.map(async (key) => {
        const [namespace, name] = key.split('/') as [string, string];
        const ns = encodeURIComponent(namespace);
        const [services, slices] = await Promise.all([
          rest.list<V1Service>(`/api/v1/namespaces/${ns}/services`, { fieldSelector: `metadata.name=${name}`, labelSelector: PROXY_LABEL_SELECTOR }),
          rest.list<V1EndpointSlice>(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, { labelSelector: `kubernetes.io/service-name=${name},${PROXY_LABEL_SELECTOR}` }),
        ]);
        return { services: services.items, slices: slices.items };
      }),
    );
    await this.reflectors.node.waitForFirstList();
    return { services: fetched.flatMap((f) => f.services), slices: fetched.flatMap((f) => f.slices) };
  }

  /** This node's Node object, when it exists. */
  node(): V1Node | undefined {
    return this.nodeObject;
  }

  /** Resources whose list or watch is failing right now (for health and status). */
  failingResources(): string[] {
    return [...this.failing].sort();
  }

  /** Relists done per resource (tests check that a 410 led to a relist). */
  listCounts(): { services: number; endpointSlices: number; node: number } {
    return { services: this.reflectors.services.lists, endpointSlices: this.reflectors.slices.lists, node: this.reflectors.node.lists };
  }

  close(): void {
    this.closed = true;
    for (const r of Object.values(this.reflectors)) r.stop();
  }

  private changed(apply: () => void): void {
    apply();
    this.options.onChange();
  }

  private setNode(node: V1Node | undefined): void {
    const before = this.nodeObject;
    this.nodeObject = node;
    const relevant = (n: V1Node | undefined): unknown => [n?.metadata?.labels, n?.status?.addresses, n?.spec?.podCIDRs, n?.spec?.podCIDR, n?.metadata?.deletionTimestamp];
    if (JSON.stringify(relevant(before)) === JSON.stringify(relevant(node))) return;
    // A change of labels or addresses (topology, NodeCIDR) re-plans at the next sync.
    this.options.onChange();
  }
}
