// An IpsetBackend that forwards to a NetlinkIpset running in another network namespace
// (netlink-child.ts), so the contract written for in-process backends runs against it unchanged.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { IpsetSpec, IpsetState } from '../../../src/model/kernel.js';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import type { DataplaneErrorCode, Subsystem } from '../../../src/dataplane/errors.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from '../../../src/dataplane/ipset/backend.js';

export interface WireError {
  readonly code: DataplaneErrorCode;
  readonly subsystem: Subsystem;
  readonly op: string;
  readonly object: string;
  readonly reason: string;
  readonly opIndex?: number;
}

export type WireRequest =
  | { readonly id: number; readonly method: 'observe'; readonly names: readonly string[] | null }
  | { readonly id: number; readonly method: 'apply'; readonly ops: readonly IpsetOp[] };

export type WireResponse =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

function toError(w: WireError): DataplaneError {
  return new DataplaneError(w.code, w.subsystem, w.op, w.object, w.reason, w.opIndex);
}

// Compiled (dist) tests run the compiled child with plain node; tsx runs the TypeScript one.
const compiled = import.meta.url.endsWith('.js');
const CHILD = fileURLToPath(new URL(compiled ? './netlink-child.js' : './netlink-child.ts', import.meta.url));

export class NetlinkIpsetProxy implements IpsetBackend {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: WireResponse) => void>();
  private exited: string | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    /** The protocol version the child negotiated. */
    readonly protocol: number,
  ) {}

  /** Starts the child with `prefix` (e.g. ['ip', 'netns', 'exec', NS]) and waits for its handshake. */
  static start(prefix: readonly string[]): Promise<NetlinkIpsetProxy> {
    const [file, ...args] = [...prefix, process.execPath, ...(compiled ? [] : ['--import', 'tsx']), CHILD];
    if (file === undefined) throw new Error('empty command');
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const lines = createInterface({ input: child.stdout });
    return new Promise<NetlinkIpsetProxy>((resolve, reject) => {
      let proxy: NetlinkIpsetProxy | undefined;
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        const why = `netlink child exited (${code ?? signal}): ${stderr}`;
        if (!proxy) reject(new Error(why));
        else proxy.fail(why);
      });
      lines.on('line', (line) => {
        const r = JSON.parse(line) as WireResponse;
        if (!proxy) {
          if (!r.ok) return reject(toError(r.error));
          proxy = new NetlinkIpsetProxy(child, (r.result as { protocol: number }).protocol);
          return resolve(proxy);
        }
        proxy.waiting.get(r.id)?.(r);
        proxy.waiting.delete(r.id);
      });
    });
  }

  private fail(why: string): void {
    this.exited = why;
    for (const done of this.waiting.values()) done({ id: 0, ok: false, error: { code: 'FAILED', subsystem: 'ipset', op: 'child', object: '', reason: why } });
    this.waiting.clear();
  }

  private call(req: WireRequest): Promise<WireResponse> {
    if (this.exited !== undefined) return Promise.reject(new Error(this.exited));
    return new Promise<WireResponse>((resolve) => {
      this.waiting.set(req.id, resolve);
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  async observe(names?: readonly string[]): Promise<IpsetState[]> {
    const r = await this.call({ id: this.nextId++, method: 'observe', names: names ?? null });
    if (!r.ok) throw toError(r.error);
    return (r.result as { spec: IpsetSpec; entries: string[] }[]).map((s) => ({ spec: s.spec, entries: new Set(s.entries) }));
  }

  async apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    const r = await this.call({ id: this.nextId++, method: 'apply', ops });
    if (!r.ok) throw toError(r.error);
    const res = r.result as { applied: number; error?: WireError };
    return res.error ? { applied: res.applied, error: toError(res.error) } : { applied: res.applied };
  }

  /** Ends the child (closing stdin ends its loop) and waits for it. */
  close(): Promise<void> {
    if (this.exited !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.stdin.end();
    });
  }
}
