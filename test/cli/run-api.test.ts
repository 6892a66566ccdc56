// `kube-ipvs run` in API mode refuses to start, with a message an operator can act on, when it
// cannot know the cluster: no kubeconfig, or an API server nobody answers at.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';
import { freePort as closedPort } from '../helpers/net.js';

describe('run without manifests (API mode) at start-up', () => {
  test('a missing kubeconfig: exit 1 naming the file', () => {
    const r = runCli(['run', '--kubeconfig', '/nonexistent/kubeconfig', '--hostname-override', 'n1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--kubeconfig \/nonexistent\/kubeconfig: no such file/);
  });

  test('no kubeconfig, no master, not in a pod: exit 1 saying what to give', () => {
    const r = runCli(['run', '--hostname-override', 'n1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no API server given: use --kubeconfig FILE or --master URL/);
  });

  test('an unreachable API server: exit 1 naming its URL, before touching the kernel', async () => {
    const port = await closedPort();
    const r = runCli(['run', '--master', `http://127.0.0.1:${port}`, '--hostname-override', 'n1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach the API server http://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`));
    assert.doesNotMatch(r.stderr, /IPVS|kube-ipvs starting/);
  });
});
