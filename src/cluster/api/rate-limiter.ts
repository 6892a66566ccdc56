// The client-side rate limit of requests to the API server (--kube-api-qps, --kube-api-burst):
// client-go's token bucket, which every request of kube-proxy's clientset (lists, watch starts,
// events) waits on. The bucket starts full; each request takes one token; tokens come back at qps
// per second up to burst. Requests are served in arrival order (a waiting request reserves its
// token, as golang.org/x/time/rate does), so a burst of relists cannot starve an event.

export interface RateLimiter {
  /** Resolves when the caller may send one request. */
  acquire(): Promise<void>;
}

export interface LimiterClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: LimiterClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export const UNLIMITED: RateLimiter = { acquire: () => Promise.resolve() };

export class TokenBucket implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: LimiterClock = realClock,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`token bucket needs qps > 0 and burst >= 1, not ${qps} and ${burst}`);
    this.tokens = burst;
    this.last = clock.now();
  }

  acquire(): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    // Reserve the token now; a negative balance is the queue of waiting requests.
    this.tokens -= 1;
    if (this.tokens >= 0) return Promise.resolve();
    return this.clock.sleep((-this.tokens / this.qps) * 1000);
  }
}

/**
 * client-go's choice: qps 0 means its default of 5, a negative qps no limit; burst 0 means its
 * default of 10 (a positive qps with an explicit burst of 0 is refused by validation, as
 * client-go's clientset refuses it).
 */
export function rateLimiterFor(qps: number, burst: number, clock?: LimiterClock): RateLimiter {
  if (qps < 0) return UNLIMITED;
  return new TokenBucket(qps === 0 ? 5 : qps, burst === 0 ? 10 : burst, clock);
}
