// `kube-ipvs cleanup` on a kernel that cannot load ip_vs still removes the sets, chains and
// kube-ipvs0 an earlier run left (this machine's kernel has no IPVS; CI's neither). Runs in a
// private network namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';

test('cleanup without IPVS removes leftover ipsets and chains, and says IPVS is unavailable', () => {
  const main = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
  const script = [
    'set -e',
    'ipset create KUBE-CLUSTER-IP hash:ip,port',
    'ipset create KUBE-6-CLUSTER-IP hash:ip,port family inet6',
    'ipset create FOREIGN hash:ip',
    'iptables -t nat -N KUBE-SERVICES',
    'iptables -t nat -N KUBE-MARK-MASQ',
    `"${process.execPath}" "${main}" cleanup; echo "rc=$?"`,
    'echo "sets: $(ipset list -n | sort | tr "\\n" " ")"',
    'echo "chains: $(iptables-save -t nat | grep "^:KUBE" | tr "\\n" " ")"',
  ].join('\n');
  const r = spawnSync('unshare', ['-n', 'bash', '-c', script], { encoding: 'utf8' });
  assert.match(r.stdout, /rc=0/, r.stderr);
  assert.match(r.stdout, /sets: FOREIGN $/m, 'our sets are gone, a foreign one stays');
  assert.match(r.stdout, /chains: $/m);
  if (/IPVS unavailable/.test(r.stderr)) assert.match(r.stderr, /cleaning iptables, ipsets and kube-ipvs0 only/);
});
