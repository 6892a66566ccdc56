// Kernel settings through /proc/sys files. The root is injectable so tests run against a temp dir.
import { constants } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataplaneError } from '../errors.js';
import type { SysctlBackend } from './backend.js';
import { errorMessage } from '../../model/error-text.js';

/**
 * "net.ipv4.vs.conntrack" or "net/ipv4/vs/conntrack" → "net/ipv4/vs/conntrack". A key with a
 * slash is taken as a path already (interface names may contain dots, e.g. conf/eth0.100).
 */
export function normalizeSysctlKey(key: string): string {
  const path = key.includes('/') ? key : key.replaceAll('.', '/');
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new DataplaneError('INVALID', 'sysctl', 'key', key, 'not a sysctl key');
  }
  return path;
}

// Which module provides a missing directory: the usual reason a key does not exist.
const PROVIDERS: readonly (readonly [string, string])[] = [
  ['net/ipv4/vs/', 'ip_vs'],
  ['net/netfilter/nf_conntrack', 'nf_conntrack'],
  ['net/nf_conntrack_max', 'nf_conntrack'],
  ['net/bridge/', 'br_netfilter'],
];

/** Why a key is missing, with the module to load when we know it. */
export function missingKeyMessage(path: string): string {
  const mod = PROVIDERS.find(([prefix]) => path.startsWith(prefix))?.[1];
  return mod
    ? `no such sysctl: the ${mod} module is not loaded (modprobe ${mod})`
    : 'no such sysctl';
}

function errCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

export class RealSysctl implements SysctlBackend {
  constructor(private readonly root = '/proc/sys') {}

  private file(key: string): { readonly path: string; readonly file: string } {
    const path = normalizeSysctlKey(key);
    return { path, file: join(this.root, path) };
  }

  async read(key: string): Promise<string | undefined> {
    const { path, file } = this.file(key);
    try {
      return (await readFile(file, 'utf8')).trim();
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.failure(e, 'read', path);
    }
  }

  async write(key: string, value: string): Promise<void> {
    const { path, file } = this.file(key);
    try {
      // Never O_CREAT: a key the kernel does not have must fail, not appear as a new file.
      // O_TRUNC matters only for plain files (tests); /proc ignores it.
      await writeFile(file, value, { flag: constants.O_WRONLY | constants.O_TRUNC });
    } catch (e) {
      throw this.failure(e, 'write', path);
    }
  }

  private failure(e: unknown, op: string, path: string): DataplaneError {
    const code = errCode(e);
    const text = errorMessage(e);
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
        return new DataplaneError('NOT_FOUND', 'sysctl', op, path, missingKeyMessage(path));
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new DataplaneError('PERMISSION', 'sysctl', op, path, `${code}: run as root with a writable /proc/sys`);
      case 'EINVAL':
      case 'EISDIR':
        return new DataplaneError('INVALID', 'sysctl', op, path, text);
      default:
        return new DataplaneError('FAILED', 'sysctl', op, path, text);
    }
  }
}
