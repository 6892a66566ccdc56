// The image runs the daemon with the Node flags bench:compare measures it with
// (src/cli/daemon-node-flags.ts), and Node accepts each of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../../src/cli/daemon-node-flags.js';
import { repoRoot } from '../helpers/cli.js';

test('the image entrypoint passes DAEMON_NODE_FLAGS to node, before the entry', () => {
  const containerfile = readFileSync(join(repoRoot(), 'deploy', 'Containerfile'), 'utf8');
  const line = containerfile.split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'an ENTRYPOINT line');
  const argv = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  assert.deepEqual(argv, ['node', ...DAEMON_NODE_FLAGS, '/app/dist/kube-ipvs.mjs']);
});

test('node accepts each flag', () => {
  for (const flag of DAEMON_NODE_FLAGS) {
    const r = spawnSync(process.execPath, [flag, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${flag}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${flag}: ${r.stderr}`);
  }
});
