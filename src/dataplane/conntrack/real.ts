// Conntrack flow removal through the conntrack(8) tool, spawned with an argument array.
import { spawn } from 'node:child_process';
import { DataplaneError } from '../errors.js';
import { canonicalIp, ipFamilyOf } from '../../model/ip.js';
import type { ConntrackBackend, ConntrackFilter } from './backend.js';

export interface SpawnResult {
  /** Exit code; null when killed by a signal. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when the process could not be started (ENOENT: binary missing). */
  readonly error?: NodeJS.ErrnoException;
}

export type Spawner = (cmd: string, args: readonly string[]) => Promise<SpawnResult>;

export interface RealConntrackOptions {
  /** Default "conntrack" from PATH. */
  readonly binary?: string;
  /** For tests: run something else, or the same tool in another network namespace. */
  readonly spawn?: Spawner;
  /** Kill the tool after this long (default 30 s): a huge table can take a while, not forever. */
  readonly timeoutMs?: number;
}

/** The filter with canonical IPs, or INVALID: the same checks for the real tool and the fake. */
export function checkFilter(f: ConntrackFilter): ConntrackFilter {
  const label = describeFilter(f);
  const bad = (why: string): DataplaneError => new DataplaneError('INVALID', 'conntrack', 'delete', label, why);
  if (f.protocol !== 'udp' && f.protocol !== 'sctp') throw bad(`unsupported protocol ${String(f.protocol)}`);
  const replySrc = canonicalIp(f.replySrc);
  if (!replySrc || ipFamilyOf(replySrc) !== f.family) throw bad(`reply source ${f.replySrc} is not an ${f.family} address`);
  let origDst: string | undefined;
  if (f.origDst !== undefined) {
    origDst = canonicalIp(f.origDst);
    if (!origDst || ipFamilyOf(origDst) !== f.family) throw bad(`original destination ${f.origDst} is not an ${f.family} address`);
  }
  if (f.origDstPort !== undefined && !(Number.isInteger(f.origDstPort) && f.origDstPort >= 1 && f.origDstPort <= 65535)) {
    throw bad(`bad port ${f.origDstPort}`);
  }
  // Without a destination the filter would hit every flow to that endpoint.
  if (origDst === undefined && f.origDstPort === undefined) throw bad('needs an original destination or port');
  return { family: f.family, protocol: f.protocol, origDst, origDstPort: f.origDstPort, replySrc };
}

export function describeFilter(f: ConntrackFilter): string {
  const dst = `${f.origDst ?? '*'}:${f.origDstPort ?? '*'}`;
  return `${f.protocol} ${dst} -> ${f.replySrc}`;
}

/** `-D -f ipv4|ipv6 -p udp [--orig-dst IP] [--orig-port-dst PORT] --reply-src IP`. */
export function deleteArgs(filter: ConntrackFilter): string[] {
  const f = checkFilter(filter);
  const args = ['-D', '-f', f.family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', f.protocol];
  if (f.origDst !== undefined) args.push('--orig-dst', f.origDst);
  if (f.origDstPort !== undefined) args.push('--orig-port-dst', String(f.origDstPort));
  args.push('--reply-src', f.replySrc);
  return args;
}

/** "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted." → 3. */
export function parseDeletedCount(stderr: string): number | undefined {
  const m = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

export function spawnCollect(timeoutMs: number): Spawner {
  return (cmd, args) =>
    new Promise<SpawnResult>((resolve) => {
      const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let error: NodeJS.ErrnoException | undefined;
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.once('error', (e) => (error = e));
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve(error ? { code, stdout, stderr, error } : { code, stdout, stderr });
      });
    });
}

export class RealConntrack implements ConntrackBackend {
  private readonly binary: string;
  private readonly run: Spawner;

  constructor(opts: RealConntrackOptions = {}) {
    this.binary = opts.binary ?? 'conntrack';
    this.run = opts.spawn ?? spawnCollect(opts.timeoutMs ?? 30_000);
  }

  async deleteFlows(filter: ConntrackFilter): Promise<number> {
    const args = deleteArgs(filter);
    const label = describeFilter(filter);
    const r = await this.run(this.binary, args);
    if (r.error) {
      if (r.error.code === 'ENOENT') {
        throw new DataplaneError(
          'UNAVAILABLE',
          'conntrack',
          'delete',
          label,
          `the ${this.binary} tool is not installed (apt-get install conntrack, or dnf install conntrack-tools)`,
        );
      }
      throw new DataplaneError('FAILED', 'conntrack', 'delete', label, r.error.message);
    }
    const count = parseDeletedCount(r.stderr);
    // conntrack exits 1 when nothing matched, so the printed count decides, not the exit code.
    if (count !== undefined && (r.code === 0 || count === 0)) return count;
    const text = r.stderr.trim() || r.stdout.trim() || `exit code ${String(r.code)}`;
    if (/Operation not permitted|Permission denied/i.test(text)) {
      throw new DataplaneError('PERMISSION', 'conntrack', 'delete', label, text);
    }
    if (/Protocol not supported|nfnetlink|No such file or directory/i.test(text)) {
      throw new DataplaneError('UNAVAILABLE', 'conntrack', 'delete', label, `${text} (is nf_conntrack loaded?)`);
    }
    throw new DataplaneError('FAILED', 'conntrack', 'delete', label, text);
  }
}
