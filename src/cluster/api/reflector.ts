// One resource kept in step with the API server: list, then watch from the list's version, with
// client-node's ListWatch (which relists on 410 Gone). What ListWatch leaves to us: restarting
// after an error with capped exponential backoff, telling when the first list has landed, and
// saying clearly why a list or watch failed. Objects are raw JSON in both paths, so a relist of
// unchanged objects compares equal downstream and changes nothing.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ListWatch, Watch } from '@kubernetes/client-node';
import { UNLIMITED, type RateLimiter } from './rate-limiter.js';
import { explainApiError, RestClient } from './rest.js';

export interface ReflectorOptions<T extends KubernetesObject> {
  readonly kc: KubeConfig;
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
  /** The process's API request limiter: lists and watch starts wait on it, as in client-go. */
  readonly limiter?: RateLimiter;
}

/** A Watch whose requests wait on the rate limiter first. */
class LimitedWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly limiter: RateLimiter,
  ) {
    super(kc);
  }

  override async watch(...args: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    await this.limiter.acquire();
    return super.watch(...args);
  }
}

export const DEFAULT_BACKOFF = { initialMs: 800, maxMs: 30_000 };

export class Reflector<T extends KubernetesObject> {
  private readonly informer: ListWatch<T>;
  private readonly rest: RestClient;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private listedOnce = false;
  private firstList: Promise<void>;
  private resolveFirst: () => void = () => undefined;
  private rejectFirst: (e: Error) => void = () => undefined;
  /** Lists done so far (the first and every relist), for tests and status. */
  lists = 0;
  /** Errors since the last successful list or watch event. */
  private consecutiveErrors = 0;

  constructor(private readonly o: ReflectorOptions<T>) {
    const limiter = o.limiter ?? UNLIMITED;
    this.rest = new RestClient(o.kc, limiter);
    this.delayMs = (o.backoff ?? DEFAULT_BACKOFF).initialMs;
    this.firstList = new Promise((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    // Unobserved until waitForFirstList(); keep an early rejection from being "unhandled".
    this.firstList.catch(() => undefined);
    const query: Record<string, string> = {};
    if (o.labelSelector) query.labelSelector = o.labelSelector;
    if (o.fieldSelector) query.fieldSelector = o.fieldSelector;
    const list = async (): Promise<{ items: T[]; metadata: { resourceVersion: string } }> => {
      const result = await this.rest.list<T>(o.path, query);
      // ListWatch applies the items right after this promise settles; report once it has.
      setImmediate(() => this.listed(result.items.length));
      return result;
    };
    this.informer = new ListWatch<T>(o.path, new LimitedWatch(o.kc, limiter), list as never, false, o.labelSelector, o.fieldSelector);
    this.informer.on('add', (obj: T) => this.event(() => o.onUpsert(obj)));
    this.informer.on('update', (obj: T) => this.event(() => o.onUpsert(obj)));
    this.informer.on('delete', (obj: T) => this.event(() => o.onDelete(obj)));
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  start(): void {
    this.stopped = false;
    void this.informer.start();
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
    clearTimeout(this.retryTimer);
    void this.informer.stop();
  }

  private event(apply: () => void): void {
    this.consecutiveErrors = 0;
    this.delayMs = (this.o.backoff ?? DEFAULT_BACKOFF).initialMs;
    apply();
  }

  private listed(count: number): void {
    this.lists++;
    this.consecutiveErrors = 0;
    this.delayMs = (this.o.backoff ?? DEFAULT_BACKOFF).initialMs;
    this.o.onListed?.(count);
    if (!this.listedOnce) {
      this.listedOnce = true;
      this.resolveFirst();
    }
  }

  private failed(err: unknown): void {
    // Aborting the watch on stop() surfaces as an error: not one.
    if (this.stopped) return;
    this.consecutiveErrors++;
    const message = explainApiError(err, this.o.resource, this.rest.server);
    const wait = this.delayMs;
    const max = (this.o.backoff ?? DEFAULT_BACKOFF).maxMs;
    this.delayMs = Math.min(max, this.delayMs * 2);
    if (!this.listedOnce && this.consecutiveErrors === 1) this.rejectFirst(new Error(message));
    this.o.onError(message, wait, err);
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) void this.informer.start();
    }, wait);
  }
}
