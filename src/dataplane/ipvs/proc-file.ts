// A whole read of a seq_file such as /proc/net/ip_vs into buffers kept across reads. The kernel
// hands a seq_file out a page per read(2) whatever the size asked for, so readFileSync's loop
// allocates a fresh 64 KiB buffer per page (2,500 of them for the 9.5 MB at 10,000 Services),
// each faulted in and then copied once more into the result; these buffers are faulted in once.
// The bytes are returned as they are: a 9.5 MB string per read would go straight to V8's old
// generation and bring its full collections on sooner.
import { closeSync, openSync, readSync } from 'node:fs';

const FIRST_BYTES = 64 << 10;

export class ProcFile {
  /**
   * Two buffers, read into in turn, so that a read's bytes stay as they are until the read after
   * next (a reader compares each read with the one before). Each grows to the largest file read
   * into it (by doubling) and never shrinks.
   */
  private readonly bufs = [Buffer.allocUnsafe(FIRST_BYTES), Buffer.allocUnsafe(FIRST_BYTES)];
  private turn = 0;

  constructor(readonly path: string) {}

  /**
   * The file's bytes, read synchronously (a thread-pool round trip per page costs more): a view of
   * a kept buffer, unchanged until the read after next overwrites it.
   */
  read(): Buffer {
    const i = this.turn;
    let buf = this.bufs[i] as Buffer;
    const fd = openSync(this.path, 'r');
    let n = 0;
    try {
      for (;;) {
        if (n === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, n);
          this.bufs[i] = buf = bigger;
        }
        const k = readSync(fd, buf, n, buf.length - n, null);
        if (k === 0) break;
        n += k;
      }
    } finally {
      closeSync(fd);
    }
    // Only a read that returns takes a turn: after one that threw, the last read's bytes must
    // still be those the caller was given.
    this.turn = 1 - i;
    return buf.subarray(0, n);
  }
}
