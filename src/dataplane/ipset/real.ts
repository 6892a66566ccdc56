// The ipset subsystem through the `ipset` binary: `ipset save` to observe, one
// `ipset restore -exist` per batch (script streamed on stdin, no shell, no temp files) to apply.
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IpsetSpec, IpsetState } from '../../model/kernel.js';
import { DataplaneError } from '../errors.js';
import type { DataplaneErrorCode } from '../errors.js';
import { isTextParseError } from '../../model/text/error.js';
import type { IpsetApplyResult, IpsetBackend, IpsetOp } from './backend.js';
import { ipsetOpObject, ipsetOpProblem, renderIpsetOp } from './restore-script.js';
import { normalizeIpsetEntry, parseIpsetSave } from '../../model/text/ipset.js';

export interface RealIpsetOptions {
  /** The ipset binary (default "ipset"); ignored when `command` is given. */
  readonly binary?: string;
  /** The full command prefix, e.g. ['ip', 'netns', 'exec', 'ns1', 'ipset'] to work in another netns. */
  readonly command?: readonly string[];
  /** Kill ipset after this long (default 60 s). */
  readonly timeoutMs?: number;
}

const INSTALL_HINT = 'install it (Debian/Ubuntu: apt-get install ipset; RHEL/Fedora: dnf install ipset)';

/** stderr patterns → codes, first match wins (texts of ipset v7.17). */
const STDERR_CODES: readonly (readonly [RegExp, DataplaneErrorCode])[] = [
  [/The set with the given name does not exist/, 'NOT_FOUND'],
  [/Element cannot be deleted from the set: it's not added/, 'NOT_FOUND'],
  [/Set cannot be destroyed: it is in use by a kernel component/, 'IN_USE'],
  [/set with the same name already exists|Element cannot be added to the set: it's already added/, 'EXISTS'],
  [/Operation not permitted|Permission denied|must be root/i, 'PERMISSION'],
  [/Hash is full/, 'FAILED'],
  // `ip netns exec` (or env) could not exec the binary; the module or set type is missing.
  [/exec of .* failed: No such file or directory|Cannot open session to kernel|Kernel support protocol versions|not supported/i, 'UNAVAILABLE'],
  // "There are not allowed options (28)…": ipset v7.17's words for a CIDR as the last element of hash:ip,port,ip.
  [/Syntax error|Unknown argument|invalid|Missing|Mandatory option|No command specified|out of (the )?range|Null-valued|cannot parse|not allowed options/i, 'INVALID'],
];

export interface IpsetStderr {
  readonly code: DataplaneErrorCode;
  /** The 1-based restore line ipset named, if it named one. */
  readonly line?: number;
  readonly reason: string;
}

/** Reads ipset's error output: "ipset v7.17: Error in line 3: <reason>" (line optional). */
export function classifyIpsetStderr(stderr: string): IpsetStderr {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const first = lines.find((l) => /^ipset v[\d.]+: /.test(l)) ?? lines[0] ?? '';
  const m = /^(?:ipset v[\d.]+: )?(?:Error in line (\d+): )?(.*)$/.exec(first);
  const reason = m?.[2] ?? first;
  const line = m?.[1] === undefined ? undefined : Number(m[1]);
  const all = lines.join('\n');
  const code = STDERR_CODES.find(([re]) => re.test(reason))?.[1] ?? STDERR_CODES.find(([re]) => re.test(all))?.[1] ?? 'FAILED';
  return line === undefined ? { code, reason: reason || 'failed without a message' } : { code, line, reason };
}

interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class RealIpset implements IpsetBackend {
  private readonly command: readonly [string, ...string[]];
  private readonly timeoutMs: number;

  constructor(options: RealIpsetOptions = {}) {
    const command = options.command ?? [options.binary ?? 'ipset'];
    const [head, ...rest] = command;
    if (head === undefined) throw new Error('RealIpset: empty command');
    this.command = [head, ...rest];
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /**
   * One `ipset save` for all sets, filtered by name before parsing: `ipset save NAME` takes one
   * name (a process per set, and an error per missing one), and filtering first means a foreign
   * set we cannot parse never breaks the observation of ours.
   */
  async observe(names?: readonly string[]): Promise<IpsetState[]> {
    const res = await this.run(['save'], 'save', '');
    if (res.status !== 0) throw this.failure(res, 'save', names?.join(',') ?? '');
    let text = res.stdout;
    if (names !== undefined) {
      const wanted = new Set(names);
      text = text
        .split('\n')
        .filter((l) => wanted.has(l.split(' ', 2)[1] ?? ''))
        .join('\n');
    }
    try {
      return parseIpsetSave(text);
    } catch (e) {
      if (isTextParseError(e)) throw new DataplaneError('PARSE', 'ipset', 'save', '', e.message);
      throw e;
    }
  }

  async apply(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    // Ops ipset could not parse are refused here: ipset would drop lines it had buffered before
    // them, and some of its parse errors do not say which line failed.
    const bad = ops.findIndex((op) => ipsetOpProblem(op) !== undefined);
    if (bad < 0) return this.restore(ops);
    const head = await this.restore(ops.slice(0, bad));
    if (head.error) return head;
    const op = ops[bad] as IpsetOp;
    const problem = ipsetOpProblem(op) ?? '';
    return { applied: bad, error: new DataplaneError('INVALID', 'ipset', op.kind, ipsetOpObject(op), `Syntax error: ${problem}`, bad) };
  }

  /** The ipset version, e.g. "7.17". */
  async version(): Promise<string> {
    const res = await this.run(['--version'], 'version', '');
    const m = /ipset v(\d+(?:\.\d+)*)/.exec(res.stdout + res.stderr);
    if (res.status !== 0 || !m?.[1]) throw this.failure(res, 'version', '');
    return m[1];
  }

  private async restore(ops: readonly IpsetOp[]): Promise<IpsetApplyResult> {
    if (ops.length === 0) return { applied: 0 };
    const res = await this.run(['restore', '-exist'], 'restore', ops);
    if (res.status === 0) return { applied: ops.length };
    const { code, line, reason } = classifyIpsetStderr(res.stderr);
    let index = line !== undefined && line >= 1 && line <= ops.length ? line - 1 : undefined;
    if (code === 'UNAVAILABLE' || code === 'PERMISSION') index ??= 0;
    // ipset's port parser reports without a line number ("'70000' is out of range 0-65535").
    index ??= await this.locateUnnumbered(ops);
    if (index === undefined) {
      return { applied: 0, error: new DataplaneError(code, 'ipset', 'restore', '', `${withHint(code, reason)} (failed op unknown)`) };
    }
    const op = ops[index] as IpsetOp;
    const error = new DataplaneError(code, 'ipset', op.kind, ipsetOpObject(op), withHint(code, reason), index);
    // ipset restore buffers consecutive add (or del) lines of one set and drops that buffer when
    // the next line fails in userspace (syntax, missing set): replay that run so "applied = index"
    // holds. Re-adding or re-deleting is a no-op under -exist if the kernel had applied them.
    const start = bufferedRunStart(ops, index);
    if (start < index) {
      const replay = await this.restore(ops.slice(start, index));
      if (replay.error) return { applied: start + replay.applied, error: shifted(replay.error, start) };
    }
    return { applied: index, error };
  }

  /**
   * The first add/del whose entry does not fit its set's type, following creates and destroys in
   * the batch and the kernel's current headers for the rest; undefined when none stands out.
   */
  private async locateUnnumbered(ops: readonly IpsetOp[]): Promise<number | undefined> {
    const res = await this.run(['save'], 'save', '');
    if (res.status !== 0) return undefined;
    let kernel: Map<string, IpsetSpec>;
    try {
      const headers = res.stdout.split('\n').filter((l) => l.startsWith('create '));
      kernel = new Map(parseIpsetSave(headers.join('\n')).map((s) => [s.spec.name, s.spec]));
    } catch {
      return undefined;
    }
    const batch = new Map<string, IpsetSpec | undefined>();
    for (const [i, op] of ops.entries()) {
      if (op.kind === 'create') batch.set(op.spec.name, op.spec);
      else if (op.kind === 'destroy') batch.set(op.name, undefined);
      else if (op.kind === 'add' || op.kind === 'del') {
        const spec = batch.has(op.name) ? batch.get(op.name) : kernel.get(op.name);
        if (spec === undefined) continue;
        if (normalizeIpsetEntry(spec.type, op.entry, spec.type === 'bitmap:port' ? undefined : spec.family) === undefined) return i;
      }
    }
    return undefined;
  }

  private failure(res: RunResult, op: string, object: string): DataplaneError {
    const { code, reason } = classifyIpsetStderr(res.stderr);
    const why = withHint(code, reason);
    return new DataplaneError(code, 'ipset', op, object, res.status === null ? `${why} (killed)` : why);
  }

  /** Runs ipset with `args`; `input` (ops or text) is streamed to stdin. */
  private run(args: readonly string[], op: string, input: readonly IpsetOp[] | string): Promise<RunResult> {
    const [file, ...prefix] = this.command;
    return new Promise<RunResult>((resolve, reject) => {
      // The limit grows with the batch: a slow kernel (or a VM) takes milliseconds per entry.
      // `save` has no size known up front: a large node's sets take long to print on a slow kernel
      // (36,000 entries took over a minute in the TCG test VM), so reads get five times the limit.
      const timeout = op === 'save' ? this.timeoutMs * 5 : this.timeoutMs + (typeof input === 'string' ? 0 : input.length * 20);
      const child = spawn(file, [...prefix, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      // Our own timer, not spawn's `timeout` option: after a failed spawn Node never clears that
      // one, which kept the process alive for the whole limit (5 min for `save`).
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      // A spawn failure (ENOENT, EACCES) arrives as 'error'; the promise ignores the later 'close'.
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(spawnFailure(e, file, op));
      });
      // ipset stops reading at the first failed line; the resulting EPIPE is expected, the exit
      // status and stderr tell what happened.
      const lines = typeof input === 'string' ? [input] : scriptLines(input);
      pipeline(Readable.from(lines), child.stdin).catch(() => undefined);
      child.on('close', (status, signal) => {
        clearTimeout(timer);
        const stderr = Buffer.concat(err).toString('utf8');
        const timedOut = status === null && signal !== null;
        resolve({
          status,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: timedOut ? `${stderr}\nipset ${op} killed by ${signal} after ${timeout} ms` : stderr,
        });
      });
    });
  }
}

/** Where the run of add (or del) ops on one set that ends just before `index` starts. */
function bufferedRunStart(ops: readonly IpsetOp[], index: number): number {
  const last = ops[index - 1];
  if (last === undefined || (last.kind !== 'add' && last.kind !== 'del')) return index;
  let start = index - 1;
  for (;;) {
    const prev = ops[start - 1];
    if (prev === undefined || prev.kind !== last.kind || prev.name !== last.name) return start;
    start--;
  }
}

/** Script lines in chunks, so a large batch is streamed with backpressure instead of built whole. */
function* scriptLines(ops: readonly IpsetOp[]): Generator<string> {
  let chunk = '';
  for (const op of ops) {
    chunk += `${renderIpsetOp(op)}\n`;
    if (chunk.length >= 65536) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

function shifted(e: DataplaneError, by: number): DataplaneError {
  const msg = e.message.slice(`${e.subsystem} ${e.op} ${e.object}: `.length);
  return new DataplaneError(e.code, e.subsystem, e.op, e.object, msg, e.opIndex === undefined ? undefined : e.opIndex + by);
}

/** A missing binary behind a wrapper (`ip netns exec`) gets the same install hint as ENOENT. */
function withHint(code: DataplaneErrorCode, reason: string): string {
  return code === 'UNAVAILABLE' && /No such file/.test(reason) ? `${reason}; ${INSTALL_HINT}` : reason;
}

function spawnFailure(e: NodeJS.ErrnoException, file: string, op: string): DataplaneError {
  if (e.code === 'ENOENT') {
    return new DataplaneError('UNAVAILABLE', 'ipset', op, file, `the ${file} binary was not found; ${INSTALL_HINT}`);
  }
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new DataplaneError('PERMISSION', 'ipset', op, file, `cannot run ${file}: ${e.message}`);
  }
  return new DataplaneError('FAILED', 'ipset', op, file, `cannot run ${file}: ${e.message}`);
}
