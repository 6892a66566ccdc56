// Sysctls in a map. Like the kernel, writing a key that does not exist fails instead of creating it.
import { DataplaneError } from '../errors.js';
import type { SysctlBackend } from './backend.js';
import { missingKeyMessage, normalizeSysctlKey } from './real.js';

export interface FakeSysctlOptions {
  /** Keys that refuse writes (PERMISSION), as in a container with a read-only /proc/sys. */
  readonly readOnly?: readonly string[];
}

export class FakeSysctl implements SysctlBackend {
  private readonly values = new Map<string, string>();
  private readonly readOnly: ReadonlySet<string>;
  /** Every successful write, in order, so tests can tell "left alone" from "rewritten". */
  readonly writes: { readonly key: string; readonly value: string }[] = [];

  constructor(initial: Readonly<Record<string, string>> = {}, opts: FakeSysctlOptions = {}) {
    for (const [k, v] of Object.entries(initial)) this.values.set(normalizeSysctlKey(k), v.trim());
    this.readOnly = new Set((opts.readOnly ?? []).map(normalizeSysctlKey));
  }

  /** Makes a key exist, as loading a module would. */
  define(key: string, value: string): void {
    this.values.set(normalizeSysctlKey(key), value.trim());
  }

  async read(key: string): Promise<string | undefined> {
    return this.values.get(normalizeSysctlKey(key));
  }

  async write(key: string, value: string): Promise<void> {
    const path = normalizeSysctlKey(key);
    if (!this.values.has(path)) throw new DataplaneError('NOT_FOUND', 'sysctl', 'write', path, missingKeyMessage(path));
    if (this.readOnly.has(path)) {
      throw new DataplaneError('PERMISSION', 'sysctl', 'write', path, 'EROFS: run as root with a writable /proc/sys');
    }
    this.values.set(path, value.trim());
    this.writes.push({ key: path, value: value.trim() });
  }

  /** "key = value" lines sorted by key, like `sysctl -a` but with slash keys. */
  dump(): string {
    return [...this.values.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k} = ${v}\n`)
      .join('');
  }
}
