// Time as the sync loop, the health checks and the drain timers see it, injectable so tests drive
// it without waiting.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary origin (monotonic for the real clock). */
  now(): number;
  setTimer(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
};

// Lets the promise chains a timer started (a whole sync over the promise-only fakes) finish before
// time moves on: every microtask runs before the next macrotask.
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A clock that only moves when told to, running due timers in order. */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const id = this.seq++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }

  /** Advances time by ms, firing every timer that falls due (timers set meanwhile included). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  get pendingTimers(): number {
    return this.timers.size;
  }
}
