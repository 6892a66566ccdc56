// Kernel errno → DataplaneError code and reason for ipset over netlink. Reasons are ipset v7.17's
// texts (lib/errcode.c) and codes are what classifyIpsetStderr gives those texts, so the netlink
// backend, RealIpset and the fake report a refusal alike.
import type { IpsetType } from '../../model/names.js';
import type { DataplaneErrorCode } from '../errors.js';
import { Errno } from '../netlink/errno.js';
import { IpsetErrno } from './netlink-codec.js';

export { Errno };

export interface IpsetErrorInfo {
  readonly code: DataplaneErrorCode;
  readonly reason: string;
}

/** What the failed request was, where the meaning of an errno depends on it. */
export interface IpsetErrorContext {
  readonly op: 'create' | 'destroy' | 'flush' | 'add' | 'del' | 'list' | 'header' | 'type' | 'protocol';
  /** The set's type, for the type-specific codes (4352+ mean different things for hash and bitmap). */
  readonly type?: IpsetType | undefined;
}

const GENERIC: Readonly<Record<number, IpsetErrorInfo>> = {
  [Errno.EPERM]: { code: 'PERMISSION', reason: 'Kernel error received: Operation not permitted' },
  [Errno.EACCES]: { code: 'PERMISSION', reason: 'Kernel error received: Permission denied' },
  [Errno.ENOENT]: { code: 'NOT_FOUND', reason: 'The set with the given name does not exist' },
  [Errno.EINVAL]: { code: 'INVALID', reason: 'Kernel error received: Invalid argument' },
  [Errno.ENOMEM]: { code: 'FAILED', reason: 'Kernel error received: Cannot allocate memory' },
  [Errno.EMSGSIZE]: { code: 'FAILED', reason: 'Kernel error received: message could not be created' },
  [Errno.ENOBUFS]: {
    code: 'FAILED',
    reason: 'kernel replies were dropped because the netlink receive buffer overflowed; the outcome is unknown, re-read the sets',
  },
  [Errno.ETIMEDOUT]: { code: 'FAILED', reason: 'no answer from the kernel in time' },
  [IpsetErrno.PROTOCOL]: { code: 'FAILED', reason: 'Kernel error received: ipset protocol error' },
  [IpsetErrno.FIND_TYPE]: { code: 'UNAVAILABLE', reason: 'Kernel error received: set type not supported' },
  [IpsetErrno.MAX_SETS]: { code: 'FAILED', reason: 'Kernel error received: maximal number of sets reached, cannot create more.' },
  [IpsetErrno.BUSY]: { code: 'IN_USE', reason: 'Set cannot be destroyed: it is in use by a kernel component' },
  [IpsetErrno.REFERENCED]: { code: 'IN_USE', reason: 'Set is referenced by another set or a kernel component' },
  [IpsetErrno.TYPE_MISMATCH]: { code: 'INVALID', reason: 'The sets cannot be swapped: their type does not match' },
  [IpsetErrno.INVALID_CIDR]: { code: 'INVALID', reason: 'The value of the CIDR parameter of the IP address is invalid' },
  [IpsetErrno.INVALID_NETMASK]: { code: 'INVALID', reason: 'The value of the netmask parameter is invalid' },
  [IpsetErrno.INVALID_FAMILY]: { code: 'INVALID', reason: 'Protocol family not supported by the set type' },
  [IpsetErrno.TIMEOUT]: { code: 'INVALID', reason: 'Timeout cannot be used: set was created without timeout support' },
  [IpsetErrno.IPADDR_IPV4]: { code: 'INVALID', reason: 'An IPv4 address is expected, but not received' },
  [IpsetErrno.IPADDR_IPV6]: { code: 'INVALID', reason: 'An IPv6 address is expected, but not received' },
};

const HASH_SPECIFIC: readonly IpsetErrorInfo[] = [
  { code: 'FAILED', reason: 'Hash is full, cannot add more elements' },
  { code: 'INVALID', reason: 'Null-valued element, cannot be stored in a hash type of set' },
  { code: 'INVALID', reason: 'Invalid protocol specified' },
  { code: 'INVALID', reason: 'Protocol missing, but must be specified' },
  { code: 'INVALID', reason: 'Range is not supported in the "net" component of the element' },
  { code: 'INVALID', reason: 'Invalid range, covers the whole address space' },
];

const BITMAP_SPECIFIC: readonly IpsetErrorInfo[] = [
  { code: 'INVALID', reason: 'Element is out of the range of the set' },
  { code: 'INVALID', reason: 'The range you specified exceeds the size limit of the set type' },
];

export function ipsetErrnoInfo(errno: number, ctx: IpsetErrorContext): IpsetErrorInfo {
  // With -exist the kernel hides these; they only appear for requests sent with NLM_F_EXCL.
  if (errno === IpsetErrno.EXIST) {
    if (ctx.op === 'del') return { code: 'NOT_FOUND', reason: "Element cannot be deleted from the set: it's not added" };
    return { code: 'EXISTS', reason: "Element cannot be added to the set: it's already added" };
  }
  if (errno === Errno.EEXIST && ctx.op === 'create') {
    return { code: 'EXISTS', reason: 'Set cannot be created: set with the same name already exists' };
  }
  if (errno >= IpsetErrno.TYPE_SPECIFIC && ctx.type !== undefined) {
    const table = ctx.type === 'bitmap:port' ? BITMAP_SPECIFIC : HASH_SPECIFIC;
    const info = table[errno - IpsetErrno.TYPE_SPECIFIC];
    if (info) return info;
  }
  return GENERIC[errno] ?? { code: 'FAILED', reason: `Kernel error received: errno ${errno}` };
}
