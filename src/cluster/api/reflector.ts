// One resource kept in step with the API server, as client-go's reflector does: list (paginated),
// then watch from the list's resourceVersion (with bookmarks, so the version we resume from stays
// recent); when a watch ends, watch again from the last version seen; when the version has
// expired (410 Gone), list again and report what the new list no longer holds as deleted. After
// an error: retry with capped exponential backoff, and say clearly why the list or watch failed.
// Objects are raw JSON in both paths, so a relist of unchanged objects changes nothing downstream.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { ApiConnection } from './connection.js';
import { UNLIMITED, type RateLimiter } from './rate-limiter.js';
import { ApiError, explainApiError, RestClient } from './rest.js';
import type { WatchEvent, WatchHandle } from './watch.js';
import { watch } from './watch.js';

export interface ReflectorOptions<T extends KubernetesObject> {
  readonly connection: ApiConnection;
  /** Collection path, e.g. /api/v1/services. */
  readonly path: string;
  /** Plural name for messages, e.g. "services". */
  readonly resource: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly onUpsert: (obj: T) => void;
  readonly onDelete: (obj: T) => void;
  /** A list or watch failed (message says what to do); `retryInMs` is when we try again. */
  readonly onError: (message: string, retryInMs: number, error: unknown) => void;
  /** Called after each successful list (the first one, and every relist). */
  readonly onListed?: (count: number) => void;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Server-side timeout of each watch (client-go picks 5 to 10 minutes at random). */
  readonly watchTimeoutSeconds?: () => number;
  /** The process's API request limiter: lists and watch starts wait on it, as in client-go. */
  readonly limiter?: RateLimiter;
}

export const DEFAULT_BACKOFF = { initialMs: 800, maxMs: 30_000 };

const keyOf = (o: KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
const randomWatchTimeout = (): number => 300 + Math.floor(Math.random() * 300);

export class Reflector<T extends KubernetesObject> {
  private readonly rest: RestClient;
  /** The objects as last listed or watched, by namespace/name: what a relist is compared with. */
  private readonly objects = new Map<string, T>();
  /** Where the next watch resumes; empty: list first. */
  private resourceVersion = '';
  private watchHandle: WatchHandle | undefined;
  /** Bumped by stop() and by every new run, so a superseded run's callbacks do nothing. */
  private generation = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private listedOnce = false;
  private readonly firstList: Promise<void>;
  private resolveFirst: () => void = () => undefined;
  private rejectFirst: (e: Error) => void = () => undefined;
  /** Lists done so far (the first and every relist), for tests and status. */
  lists = 0;
  /** Errors since the last successful list or watch event. */
  private consecutiveErrors = 0;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.rest = new RestClient(options.connection, options.limiter ?? UNLIMITED);
    this.delayMs = (options.backoff ?? DEFAULT_BACKOFF).initialMs;
    this.firstList = new Promise((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    // Unobserved until waitForFirstList(); keep an early rejection from being "unhandled".
    this.firstList.catch(() => undefined);
  }

  start(): void {
    this.stopped = false;
    void this.run();
  }

  /**
   * Resolves after the first successful list; rejects (with the explained message) when the
   * first attempt fails. Retries go on either way until stop().
   */
  waitForFirstList(): Promise<void> {
    return this.firstList;
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.watchHandle?.abort();
    this.watchHandle = undefined;
  }

  private query(): Record<string, string> {
    const q: Record<string, string> = {};
    if (this.options.labelSelector) q.labelSelector = this.options.labelSelector;
    if (this.options.fieldSelector) q.fieldSelector = this.options.fieldSelector;
    return q;
  }

  /** Lists when there is no version to resume from, then watches. */
  private async run(): Promise<void> {
    const gen = ++this.generation;
    this.watchHandle?.abort();
    this.watchHandle = undefined;
    if (this.resourceVersion === '') {
      let list;
      try {
        list = await this.rest.list<T>(this.options.path, this.query());
      } catch (e) {
        if (gen === this.generation) this.failed(e);
        return;
      }
      if (gen !== this.generation) return;
      this.replaceAll(list.items);
      this.resourceVersion = list.metadata.resourceVersion;
      this.listed(list.items.length);
    }
    // An ERROR event in the stream ends this watch; what it said decides what comes next.
    let streamError: ApiError | undefined;
    await (this.options.limiter ?? UNLIMITED).acquire();
    if (gen !== this.generation) return;
    const handle = await watch(
      this.options.connection,
      this.options.path,
      { ...this.query(), resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true' },
      (this.options.watchTimeoutSeconds ?? randomWatchTimeout)(),
      (e) => {
        if (gen !== this.generation) return;
        streamError = this.event(e) ?? streamError;
      },
      (err) => {
        if (gen !== this.generation) return;
        this.watchHandle = undefined;
        const why = err ?? streamError;
        if (why && why.statusCode !== 410) return this.failed(why);
        // A normal end resumes from the last version; an expired one (410) lists again.
        if (why) this.resourceVersion = '';
        void this.run();
      },
    );
    if (gen === this.generation) this.watchHandle = handle;
    else handle.abort();
  }

  /** Applies one watch event; an ERROR event comes back as the error it reports. */
  private event(e: WatchEvent): ApiError | undefined {
    if (e.type === 'ERROR') {
      const st = (e.object ?? {}) as { code?: number; message?: string; reason?: string };
      const code = st.code ?? 0;
      return new ApiError(`watch ${this.options.path}: ${code} ${st.message ?? ''}`.trim(), code, this.options.path, st.reason ?? `HTTP${code}`);
    }
    const obj = e.object as T;
    this.consecutiveErrors = 0;
    this.delayMs = (this.options.backoff ?? DEFAULT_BACKOFF).initialMs;
    if (e.type === 'ADDED' || e.type === 'MODIFIED') this.upsert(obj);
    else if (e.type === 'DELETED') {
      const key = keyOf(obj);
      if (this.objects.delete(key)) this.options.onDelete(obj);
    }
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private upsert(obj: T): void {
    const key = keyOf(obj);
    const known = this.objects.get(key);
    // The same version is the same object: a relist of unchanged objects reports nothing.
    if (known && known.metadata?.resourceVersion !== undefined && known.metadata.resourceVersion === obj.metadata?.resourceVersion) return;
    this.objects.set(key, obj);
    this.options.onUpsert(obj);
  }

  /** A (re)list: objects it no longer holds are deleted, then every listed object upserted. */
  private replaceAll(items: readonly T[]): void {
    const listed = new Set(items.map(keyOf));
    for (const [key, obj] of this.objects) {
      if (!listed.has(key)) {
        this.objects.delete(key);
        this.options.onDelete(obj);
      }
    }
    for (const item of items) this.upsert(item);
  }

  private listed(count: number): void {
    this.lists++;
    this.consecutiveErrors = 0;
    this.delayMs = (this.options.backoff ?? DEFAULT_BACKOFF).initialMs;
    this.options.onListed?.(count);
    if (!this.listedOnce) {
      this.listedOnce = true;
      this.resolveFirst();
    }
  }

  private failed(err: unknown): void {
    if (this.stopped) return;
    this.consecutiveErrors++;
    const message = explainApiError(err, this.options.resource, this.rest.displayServer);
    const wait = this.delayMs;
    const max = (this.options.backoff ?? DEFAULT_BACKOFF).maxMs;
    this.delayMs = Math.min(max, this.delayMs * 2);
    if (!this.listedOnce && this.consecutiveErrors === 1) this.rejectFirst(new Error(message));
    this.options.onError(message, wait, err);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) void this.run();
    }, wait);
  }
}
