// IpsetOp → one line of an `ipset restore -exist` script, and the syntax checks both backends share.
// ipset's restore parser drops already-buffered lines when it meets a line it cannot parse, and
// some parse errors carry no line number at all (e.g. a bitmap range without "-"), so the real
// backend refuses such ops before they reach ipset; the fake refuses them with the same code.
import type { IpsetSpec } from '../../model/kernel.js';
import { IPSET_MAX_NAME_LENGTH } from '../../model/names.js';
import type { IpsetOp } from './backend.js';
import { isIpsetType, renderIpsetCreate } from '../../model/text/ipset.js';

// A token ipset reads as one word: no whitespace, no quotes (restore strips them), no control
// characters, and no leading "-" (it would be taken for an option).
const TOKEN = /^[^\s"'\-\p{Cc}][^\s"'\p{Cc}]*$/u;

/** The bounds of a bitmap:port range, ordered as the kernel stores them ("200-100" → 100-200). */
export function parseBitmapRange(range: string): { readonly from: number; readonly to: number } | undefined {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(range);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2]);
  if (a > 65535 || b > 65535) return undefined;
  return { from: Math.min(a, b), to: Math.max(a, b) };
}

/** The hashsize the kernel uses (and `ipset save` prints): at least 64, rounded up to a power of two. */
export function kernelHashSize(hashSize: number): number {
  let size = 64;
  while (size < hashSize) size *= 2;
  return size;
}

/** The spec as the kernel stores it, so a fake prints what `ipset save` prints. */
export function kernelIpsetSpec(spec: IpsetSpec): IpsetSpec {
  if (spec.type === 'bitmap:port') {
    const r = parseBitmapRange(spec.range);
    return r ? { ...spec, range: `${r.from}-${r.to}` } : spec;
  }
  return { ...spec, hashSize: kernelHashSize(spec.hashSize) };
}

function nameProblem(name: string): string | undefined {
  if (!TOKEN.test(name)) return `invalid set name ${JSON.stringify(name)}`;
  if (name.length > IPSET_MAX_NAME_LENGTH) return `setname '${name}' is longer than ${IPSET_MAX_NAME_LENGTH} characters`;
  return undefined;
}

function specProblem(spec: IpsetSpec): string | undefined {
  if (!isIpsetType(spec.type)) return `unsupported set type ${JSON.stringify(spec.type)}`;
  if (spec.type === 'bitmap:port') {
    return parseBitmapRange(spec.range) ? undefined : `invalid bitmap:port range ${JSON.stringify(spec.range)}`;
  }
  if (spec.family !== 'inet' && spec.family !== 'inet6') return `invalid family ${JSON.stringify(spec.family)}`;
  // Upper bounds: the netlink attributes are u32; hashsize beyond 2^31 cannot be rounded up.
  if (!Number.isInteger(spec.hashSize) || spec.hashSize < 1 || spec.hashSize > 2 ** 31) return `invalid hashsize ${spec.hashSize}`;
  if (!Number.isInteger(spec.maxElem) || spec.maxElem < 0 || spec.maxElem > 2 ** 32 - 1) return `invalid maxelem ${spec.maxElem}`;
  return undefined;
}

/**
 * Why ipset would refuse this op while parsing its line (before the kernel sees it), or undefined.
 * Entries are only checked for being one word here: whether they fit the set's type is the
 * kernel's (real) or normalizeIpsetEntry's (fake) decision.
 */
export function ipsetOpProblem(op: IpsetOp): string | undefined {
  if (op.kind === 'create') return nameProblem(op.spec.name) ?? specProblem(op.spec);
  const bad = nameProblem(op.name);
  if (bad !== undefined) return bad;
  if ((op.kind === 'add' || op.kind === 'del') && !TOKEN.test(op.entry)) return `invalid entry ${JSON.stringify(op.entry)}`;
  return undefined;
}

/** The op's line in an `ipset restore -exist` script (no trailing newline). */
export function renderIpsetOp(op: IpsetOp): string {
  switch (op.kind) {
    case 'create':
      return renderIpsetCreate(op.spec);
    case 'add':
    case 'del':
      return `${op.kind} ${op.name} ${op.entry}`;
    case 'flush':
    case 'destroy':
      return `${op.kind} ${op.name}`;
  }
}

/** What an op is about, for DataplaneError.object: "KUBE-CLUSTER-IP 10.96.0.10,tcp:80". */
export function ipsetOpObject(op: IpsetOp): string {
  if (op.kind === 'create') return op.spec.name;
  if (op.kind === 'add' || op.kind === 'del') return `${op.name} ${op.entry}`;
  return op.name;
}
