// The error every dataplane backend (real or fake) throws or reports, with a stable code per class
// of failure, so reconcilers treat "already there" and "already gone" as success and tests can
// assert that a fake refuses exactly what the kernel refuses.

export type Subsystem = 'ipvs' | 'ipset' | 'iptables' | 'netif' | 'sysctl' | 'conntrack';

export type DataplaneErrorCode =
  /** The object (set, entry, chain, rule, address, link, virtual/real server) does not exist. */
  | 'NOT_FOUND'
  /** It exists already (with EXCL semantics) or with a different definition. */
  | 'EXISTS'
  /** The request is malformed for the kernel (bad entry for a set type, bad rule, bad address). */
  | 'INVALID'
  /** Still referenced (a set used by a rule, a chain jumped to). */
  | 'IN_USE'
  /** The kernel feature or the tool is missing (module not loaded, binary not installed). */
  | 'UNAVAILABLE'
  | 'PERMISSION'
  /** The tool printed something we cannot read. */
  | 'PARSE'
  | 'FAILED';

export class DataplaneError extends Error {
  override readonly name = 'DataplaneError';

  constructor(
    readonly code: DataplaneErrorCode,
    readonly subsystem: Subsystem,
    /** The operation, e.g. "add", "restore", "bind". */
    readonly op: string,
    /** The object it was about, e.g. "KUBE-CLUSTER-IP 10.96.0.10,tcp:80". */
    readonly object: string,
    message: string,
    /** Index of the failed operation within a batch, when the backend knows it. */
    readonly opIndex?: number,
  ) {
    super(`${subsystem} ${op} ${object}: ${message}`);
  }
}

function codeOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}

/** Deleting something already gone is success: callers use this to ignore those errors. */
export function isNotFound(e: unknown): boolean {
  const c = codeOf(e);
  // IPVS reports a missing service as ESRCH and a missing destination as ENOENT.
  return c === 'NOT_FOUND' || c === 'ESRCH' || c === 'ENOENT' || c === 'EADDRNOTAVAIL' || c === 'ENODEV';
}

export function isAlreadyExists(e: unknown): boolean {
  const c = codeOf(e);
  return c === 'EXISTS' || c === 'EEXIST';
}
