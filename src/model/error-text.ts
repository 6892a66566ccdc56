// Error text for people: the message of anything thrown, and file-system failures in words that
// say what was wrong and what to do, instead of bare errno names (ENOENT, EACCES).

/** The message of anything thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const FILE_FAILURES: Readonly<Record<string, (use: 'read' | 'write') => string>> = {
  ENOENT: (use) => (use === 'read' ? 'does not exist; check the path' : 'its directory does not exist; create it or choose another path'),
  EACCES: (use) => `permission denied; run as a user who may ${use} it, or change its permissions`,
  EPERM: (use) => `not permitted; run as a user who may ${use} it, or change its permissions`,
  EISDIR: () => 'is a directory; give a file',
  ENOTDIR: () => 'a part of the path is not a directory; check the path',
  ELOOP: () => 'too many symbolic links in the path; check the path',
  ENAMETOOLONG: () => 'the path is too long',
  EMFILE: () => 'too many open files in this process; raise its limit (ulimit -n)',
  ENFILE: () => 'too many open files on this machine; close some or raise fs.file-max',
  ENOSPC: () => 'no space left on the device',
  EROFS: () => 'the file system is read-only; choose a writable path',
};

/** Why reading or writing a file failed, e.g. "does not exist; check the path". */
export function fileErrorText(e: unknown, use: 'read' | 'write' = 'read'): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const words = code === undefined ? undefined : FILE_FAILURES[code];
  if (words) return words(use);
  // Node's own text leads with the code ("EIO: i/o error, open 'x'"): keep the words, drop the path
  // the caller names anyway.
  return errorMessage(e).replace(/^E[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
}
