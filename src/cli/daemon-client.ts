// Reaching the running daemon from the operator commands: its metrics server (kube-proxy's
// --metrics-bind-address, default 127.0.0.1:10249) serves /status and /diff. A wildcard bind
// address is reached on loopback.
import { parseBindAddress } from '../observe/bind-address.js';
import { UsageError } from './errors.js';
import { errorMessage } from '../model/error-text.js';
import { hostPort } from '../model/types.js';

/** The base URL of the daemon's metrics server for a --metrics-bind-address value. */
export function daemonBaseUrl(metricsBindAddress: string): string {
  let target;
  try {
    target = parseBindAddress('metrics-bind-address', metricsBindAddress);
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
  if (!target) throw new UsageError('--metrics-bind-address is empty, so the daemon serves no metrics server to ask: give the address it listens on, e.g. --metrics-bind-address 127.0.0.1:10249');
  let host = target.host ?? '127.0.0.1';
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return `http://${hostPort(host, target.port)}`;
}

/** The daemon could not be asked: not running, wrong address, or an older version. */
export class DaemonUnreachable extends Error {
  override readonly name = 'DaemonUnreachable';
}

/** GETs a JSON document from the daemon; non-2xx answers become errors that quote its message. */
export async function getDaemonJson<T>(base: string, path: string, timeoutMs: number): Promise<T> {
  const url = `${base}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : errorMessage(e);
    throw new DaemonUnreachable(`cannot reach the kube-ipvs daemon at ${base} (${cause}): is it running, and is --metrics-bind-address the address it listens on?`);
  }
  const text = await res.text();
  if (res.status === 404) throw new DaemonUnreachable(`the daemon at ${base} does not serve ${path.split('?')[0]}: is it a kube-ipvs of this version (or kube-proxy)?`);
  if (!res.ok) {
    let message = text.trim();
    try {
      const body = JSON.parse(text) as { error?: unknown };
      if (typeof body.error === 'string') message = body.error;
    } catch {
      // Not JSON: quote the text.
    }
    throw new DaemonUnreachable(`the daemon at ${base} answered ${res.status} for ${path}: ${message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new DaemonUnreachable(`the daemon at ${base} answered ${path} with something that is not JSON`);
  }
}
