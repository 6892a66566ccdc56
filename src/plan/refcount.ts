// A set whose members are counted: several service ports may contribute the same ipset entry or
// address, and it must stay until the last of them is gone.

export class CountedSet implements ReadonlySet<string> {
  private readonly counts = new Map<string, number>();

  add(v: string): void {
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
  }

  remove(v: string): void {
    const c = this.counts.get(v);
    if (c === undefined) throw new Error(`CountedSet: removing absent member ${v}`);
    if (c <= 1) this.counts.delete(v);
    else this.counts.set(v, c - 1);
  }

  has(v: string): boolean {
    return this.counts.has(v);
  }

  get size(): number {
    return this.counts.size;
  }

  keys(): SetIterator<string> {
    return this.counts.keys();
  }

  values(): SetIterator<string> {
    return this.counts.keys();
  }

  *entries(): SetIterator<[string, string]> {
    for (const k of this.counts.keys()) yield [k, k];
  }

  forEach(cb: (value: string, value2: string, set: ReadonlySet<string>) => void): void {
    for (const k of this.counts.keys()) cb(k, k, this);
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.counts.keys();
  }
}
