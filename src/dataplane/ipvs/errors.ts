// Typed errors of the IPVS kernel speaker. Codes are errno names where the kernel gave one, so
// callers branch on `code` (stable) rather than on message text; messages say what failed and,
// where there is one, what the operator can do about it.

/** Operations of the IPVS client, as they appear in errors and batch results. */
export type IpvsOpName =
  | 'addService'
  | 'updateService'
  | 'deleteService'
  | 'getService'
  | 'listServices'
  | 'addDest'
  | 'updateDest'
  | 'deleteDest'
  | 'listDests'
  | 'flush'
  | 'zero'
  | 'getInfo'
  | 'setTimeouts'
  | 'getTimeouts'
  | 'resolveFamily'
  | 'encode'
  | 'decode';

export type IpvsErrorCode =
  | 'EPERM'
  | 'ENOENT'
  | 'ESRCH'
  | 'ENOMEM'
  | 'EBUSY'
  | 'EEXIST'
  | 'ENODEV'
  | 'EINVAL'
  | 'ERANGE'
  | 'EMSGSIZE'
  | 'EOPNOTSUPP'
  | 'EAFNOSUPPORT'
  | 'ENOBUFS'
  | 'ETIMEDOUT'
  /** The IPVS generic netlink family is not registered: ip_vs is not loaded. */
  | 'UNAVAILABLE'
  /** The socket was closed while the request was in flight. */
  | 'CLOSED'
  /** The kernel answered something we could not parse. */
  | 'PROTOCOL'
  /** Any other errno (see `errno`). */
  | 'UNKNOWN';

const ERRNO_CODES: Readonly<Record<number, IpvsErrorCode>> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  12: 'ENOMEM',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  34: 'ERANGE',
  90: 'EMSGSIZE',
  95: 'EOPNOTSUPP',
  97: 'EAFNOSUPPORT',
  105: 'ENOBUFS',
  110: 'ETIMEDOUT',
};

/** Errno values the client itself needs by name. */
export { Errno } from '../netlink/errno.js';

export function errnoCode(errno: number): IpvsErrorCode {
  return ERRNO_CODES[errno] ?? 'UNKNOWN';
}

const DEST_OPS: ReadonlySet<IpvsOpName> = new Set(['addDest', 'updateDest', 'deleteDest', 'listDests']);
const SERVICE_OPS: ReadonlySet<IpvsOpName> = new Set(['addService', 'updateService', 'deleteService', 'getService']);

export const MODULE_HINT = 'the ip_vs kernel module is not loaded: run `modprobe ip_vs` or load it at boot';

function explain(code: IpvsErrorCode, op: IpvsOpName, errno: number): string {
  const dest = DEST_OPS.has(op);
  switch (code) {
    case 'EEXIST':
      return dest ? 'the real server already exists in this virtual server' : 'the virtual server already exists';
    case 'ESRCH':
      return 'no such virtual server';
    case 'ENOENT':
      if (dest) return 'no such real server';
      if (SERVICE_OPS.has(op)) {
        return 'unknown scheduler or persistence engine: check the name, or load its module (`modprobe ip_vs_<scheduler>`)';
      }
      return MODULE_HINT;
    case 'EPERM':
      return 'permission denied: IPVS needs CAP_NET_ADMIN in the initial user namespace (run as root or grant CAP_NET_ADMIN)';
    case 'EINVAL':
      return dest
        ? 'invalid real server (missing attribute, address not unicast/routable from this host, or family differs from the virtual server without tunnel forwarding)'
        : 'invalid request (missing or malformed attribute, bad netmask or flags)';
    case 'ERANGE':
      return 'value out of range (negative weight, or lower threshold above upper threshold)';
    case 'EAFNOSUPPORT':
      return 'address family not supported (is IPv6 disabled on this host?)';
    case 'EOPNOTSUPP':
      return 'operation not supported by this kernel';
    case 'ENOBUFS':
      return 'kernel replies were dropped because the socket receive buffer overflowed; the outcome is unknown, re-read the IPVS state';
    case 'EMSGSIZE':
      return 'request too large for the socket send buffer';
    case 'EBUSY':
      return 'another dump is running on this socket';
    case 'ETIMEDOUT':
      return 'no answer from the kernel in time';
    case 'UNAVAILABLE':
      return MODULE_HINT;
    case 'CLOSED':
      return 'the IPVS netlink socket was closed';
    case 'PROTOCOL':
      return 'malformed netlink reply';
    default:
      return `kernel error errno ${errno}`;
  }
}

export interface IpvsErrorOptions {
  readonly code: IpvsErrorCode;
  /** Positive errno (0 when the error did not come from the kernel). */
  readonly errno: number;
  readonly op: IpvsOpName;
  /** What the operation was about: "10.0.0.1:80/TCP" or "10.0.0.1:80/TCP -> 10.1.0.5:8080"; may be empty. */
  readonly object: string;
  /** Replaces the built-in explanation. */
  readonly detail?: string;
  readonly cause?: unknown;
}

export class IpvsError extends Error {
  readonly code: IpvsErrorCode;
  readonly errno: number;
  readonly op: IpvsOpName;
  readonly object: string;
  /** The explanation part of the message (without operation and code). */
  readonly detail: string;

  constructor(o: IpvsErrorOptions) {
    const what = o.object ? `${o.op} ${o.object}` : o.op;
    const detail = o.detail ?? explain(o.code, o.op, o.errno);
    super(`IPVS ${what}: ${detail} (${o.code})`, { cause: o.cause });
    this.detail = detail;
    this.name = 'IpvsError';
    this.code = o.code;
    this.errno = o.errno;
    this.op = o.op;
    this.object = o.object;
  }

  /** An error from a negative NLMSG_ERROR value (pass it positive). */
  static fromErrno(errno: number, op: IpvsOpName, object: string): IpvsError {
    return new IpvsError({ code: errnoCode(errno), errno, op, object });
  }
}

export function isIpvsError(e: unknown): e is IpvsError {
  return e instanceof IpvsError;
}

/**
 * The object the operation was about does not exist. ESRCH is the kernel's "no such virtual
 * server" for every command; ENOENT means "no such real server" only on destination commands (on
 * service commands it means an unknown scheduler). A destination whose virtual server is gone is
 * gone too, so ESRCH counts for destination commands as well.
 */
export function isNotFound(e: unknown): boolean {
  if (!isIpvsError(e)) return false;
  if (e.code === 'ESRCH') return true;
  return e.code === 'ENOENT' && DEST_OPS.has(e.op);
}

export function isAlreadyExists(e: unknown): boolean {
  return isIpvsError(e) && e.code === 'EEXIST';
}

/** IPVS is not usable on this host at all (module missing) or not by us (no CAP_NET_ADMIN). */
export function isUnavailable(e: unknown): boolean {
  return isIpvsError(e) && (e.code === 'UNAVAILABLE' || e.code === 'EPERM');
}
