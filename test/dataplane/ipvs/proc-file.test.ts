// ProcFile: the bytes a whole read(2) loop gives, across reads of two kept buffers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcFile } from '../../../src/dataplane/ipvs/proc-file.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'proc-file-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('ProcFile', () => {
  test('a seq_file, which the kernel hands out a page per read, reads whole', () => {
    // The mount table of this process: a seq_file that does not change while the test runs.
    const f = new ProcFile('/proc/self/mountinfo');
    const expected = readFileSync('/proc/self/mountinfo', 'utf8');
    assert.ok(expected.length > 0);
    assert.equal(f.read().toString('utf8'), expected);
    assert.equal(f.read().toString('utf8'), expected);
  });

  test('a file larger than the buffer, then a smaller one: each read is exactly the file, and stays so', () => {
    withDir((dir) => {
      const path = join(dir, 'ip_vs');
      const big = Array.from({ length: 6000 }, (_, i) => `  -> 0A00${(i % 256).toString(16).padStart(2, '0')}01:1F90      Masq    1      0          0\n`).join('');
      assert.ok(big.length > 4 * (64 << 10));
      writeFileSync(path, big);
      const f = new ProcFile(path);
      const first = f.read();
      assert.equal(first.toString('latin1'), big);
      writeFileSync(path, 'TCP  0A60000A:0050 rr \n');
      const second = f.read();
      assert.equal(second.toString('latin1'), 'TCP  0A60000A:0050 rr \n');
      // A read's bytes stay as they were through the next read: the one after overwrites them.
      assert.equal(first.toString('latin1'), big);
      writeFileSync(path, '');
      assert.equal(f.read().length, 0);
      assert.equal(second.toString('latin1'), 'TCP  0A60000A:0050 rr \n');
      writeFileSync(path, big);
      assert.equal(f.read().toString('latin1'), big);
    });
  });

  test('a read that fails leaves the last read\'s bytes as they were, through the read after it', () => {
    withDir((dir) => {
      const path = join(dir, 'ip_vs');
      writeFileSync(path, 'TCP  0A60000A:0050 rr \n');
      const f = new ProcFile(path);
      const first = f.read();
      rmSync(path);
      assert.throws(() => f.read(), { code: 'ENOENT' });
      writeFileSync(path, 'UDP  0A60000A:0035 rr \n');
      assert.equal(f.read().toString('latin1'), 'UDP  0A60000A:0035 rr \n');
      assert.equal(first.toString('latin1'), 'TCP  0A60000A:0050 rr \n');
    });
  });

  test('a missing file throws ENOENT', () => {
    withDir((dir) => {
      assert.throws(() => new ProcFile(join(dir, 'ip_vs')).read(), { code: 'ENOENT' });
    });
  });
});
