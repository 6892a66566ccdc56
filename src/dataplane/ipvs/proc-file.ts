// A whole read of a seq_file such as /proc/net/ip_vs into one buffer kept across reads. The kernel
// hands a seq_file out a page per read(2) whatever the size asked for, so readFileSync's loop
// allocates a fresh 64 KiB buffer per page (2,500 of them for the 9.5 MB at 10,000 Services),
// each faulted in and then copied once more into the result; this buffer is faulted in once.
import { closeSync, openSync, readSync } from 'node:fs';

const FIRST_BYTES = 64 << 10;

export class ProcFile {
  /** Grows to the largest file read (by doubling), never shrinks: the next read is as large. */
  private buf = Buffer.allocUnsafe(FIRST_BYTES);

  constructor(readonly path: string) {}

  /** The file's text, read synchronously (a thread-pool round trip per page costs more). */
  read(): string {
    const fd = openSync(this.path, 'r');
    let n = 0;
    try {
      for (;;) {
        if (n === this.buf.length) {
          const bigger = Buffer.allocUnsafe(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, n);
          this.buf = bigger;
        }
        const k = readSync(fd, this.buf, n, this.buf.length - n, null);
        if (k === 0) break;
        n += k;
      }
    } finally {
      closeSync(fd);
    }
    // The kernel writes ASCII there; latin1 makes a one-byte string without a UTF-8 check.
    return this.buf.toString('latin1', 0, n);
  }
}
