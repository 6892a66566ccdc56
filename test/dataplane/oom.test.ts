// --oom-score-adj: the value lands in the process's /proc entry (kube-proxy's oom.ApplyOOMScoreAdj
// on pid 0, i.e. itself); a refusal is reported to the caller, which logs it and goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { applyOomScoreAdj } from '../../src/dataplane/oom.js';

test('the value is written as decimal text', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'oom-')), 'oom_score_adj');
  await applyOomScoreAdj(-999, file);
  assert.equal(readFileSync(file, 'utf8').trim(), '-999');
});

test('in a real process, /proc/self/oom_score_adj takes the value (raising it needs no privilege)', () => {
  const mod = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dataplane', 'oom.js')).href;
  const script = `const { applyOomScoreAdj } = await import(${JSON.stringify(mod)}); await applyOomScoreAdj(500); process.stdout.write(require('node:fs').readFileSync('/proc/self/oom_score_adj', 'utf8'));`;
  const r = spawnSync(process.execPath, ['--input-type=commonjs', '-e', `(async () => { ${script} })()`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '500');
});

test('a refused write rejects with the system error', async () => {
  await assert.rejects(applyOomScoreAdj(0, '/nonexistent-dir/oom_score_adj'), /ENOENT/);
});
