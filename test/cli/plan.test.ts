// `kube-ipvs plan` as a user runs it: golden output for the examples cluster (every service type),
// exit codes and messages for bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from '../helpers/cli.js';

const EXAMPLE_ARGS = ['plan', '--manifests', 'examples/', '--hostname-override', 'node-a', '--node-ip', '192.168.0.10,fd00:192::10', '--kernel-version', '6.1.0'];

function golden(name: string, actual: string): void {
  const path = join(repoRoot(), 'test', 'golden', name);
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it after review)`);
}

describe('plan of the examples cluster', () => {
  for (const output of ['ipvs', 'ipset', 'iptables', 'addresses', 'sysctl', 'json']) {
    test(`--output ${output} matches its golden file`, () => {
      const r = runCli([...EXAMPLE_ARGS, '--output', output]);
      assert.equal(r.stderr, 'planning dual-stack: IPv4 (primary) with node IP 192.168.0.10; IPv6 with node IP fd00:192::10\n');
      assert.equal(r.code, 0);
      golden(`examples.${output}.txt`, r.stdout);
    });
  }

  test('--output all prints every format', () => {
    const r = runCli([...EXAMPLE_ARGS, '--output', 'all']);
    assert.equal(r.code, 0);
    for (const title of ['### ipvs (ipvsadm -Sn)', '### ipset (ipset save)', '### iptables (iptables-save)', '### addresses (kube-ipvs0)', '### sysctl']) {
      assert.ok(r.stdout.includes(title), title);
    }
  });

  test('node addresses default to the Node object when --node-ip is absent', () => {
    const withFlag = runCli([...EXAMPLE_ARGS, '--output', 'ipvs']);
    const fromNode = runCli(EXAMPLE_ARGS.filter((a, i, all) => a !== '--node-ip' && all[i - 1] !== '--node-ip').concat(['--output', 'ipvs']));
    assert.equal(fromNode.code, 0);
    assert.equal(fromNode.stdout, withFlag.stdout);
  });
});

// kube-proxy v1.36.3 runs both families on any host where iptables and ip6tables work, whatever
// addresses the node has (cmd/kube-proxy/app/server_linux.go platformCheckSupported), and gives a
// family without a node IP the loopback address (cmd/kube-proxy/app/server.go detectNodeIPs).
describe('IP families as kube-proxy decides them', () => {
  // Without examples/node.yaml: the node IPs are then --node-ip's, as `run` takes the interfaces'.
  const NO_NODE = ['--manifests', 'examples/services.yaml', '--manifests', 'examples/endpointslices.yaml'];
  const V4_ONLY = ['plan', ...NO_NODE, '--hostname-override', 'node-a', '--node-ip', '192.168.0.10', '--kernel-version', '6.1.0'];

  test('an IPv4-only node still programs the IPv6 Service: virtual server, sets, address, ip6tables', () => {
    const r = runCli([...V4_ONLY, '--output', 'all']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^planning dual-stack: IPv4 \(primary\) with node IP 192\.168\.0\.10; IPv6 with node IP ::1 /);
    assert.match(r.stdout, /^-A -t \[fd00:10:96::60\]:80 -s rr$/m);
    assert.match(r.stdout, /^-a -t \[fd00:10:96::60\]:80 -r \[fd00:244:1::61\]:8080 -m -w 1$/m);
    assert.match(r.stdout, /^add KUBE-6-CLUSTER-IP fd00:10:96::60,tcp:80$/m);
    assert.match(r.stdout, /^-A KUBE-SERVICES .*--match-set KUBE-6-CLUSTER-IP dst,dst -j ACCEPT$/m);
    assert.match(r.stdout, /fd00:10:96::60\/128/);
  });

  test('the Node object, when the manifests have one, gives the node IPs whatever --node-ip says', () => {
    const r = runCli(['plan', '--manifests', 'examples/', '--hostname-override', 'node-a', '--node-ip', '10.0.2.15', '--output', 'ipvs']);
    assert.match(r.stderr, /^planning dual-stack: IPv4 \(primary\) with node IP 192\.168\.0\.10; IPv6 with node IP fd00:192::10$/m);
    assert.match(r.stdout, /^-A -t 10\.0\.2\.15:30080 /m, 'NodePorts listen on the interface addresses');
  });

  test('--ip-families IPv4 (a host without ip6tables) plans no IPv6 and says so', () => {
    const r = runCli([...V4_ONLY, '--ip-families', 'IPv4', '--output', 'all']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^planning single-stack: IPv4 \(primary\) with node IP 192\.168\.0\.10; not IPv6$/m);
    assert.doesNotMatch(r.stdout, /fd00|KUBE-6-/);
  });

  test('an IPv6 primary on a host without IPv6 is named, as kube-proxy refuses to start there', () => {
    const r = runCli(['plan', ...NO_NODE, '--hostname-override', 'node-a', '--node-ip', 'fd00:192::10', '--ip-families', 'IPv4', '--output', 'ipvs']);
    assert.match(r.stderr, /the primary family IPv6 is not planned/);
  });

  test('an unknown family is a usage error', () => {
    const r = runCli([...V4_ONLY, '--ip-families', 'IPv5']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"IPv5" for --ip-families/);
  });
});

describe('bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-plan-'));

  test('malformed objects are named on stderr, the rest is planned, exit 0', () => {
    const file = join(dir, 'mixed.yaml');
    writeFileSync(file, [
      'apiVersion: v1\nkind: Service\nmetadata: {name: good, namespace: ns1}\nspec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: ns1}\nspec: {clusterIP: 10.96.0.11, ports: [{port: 99999}]}',
    ].join('\n---\n'));
    const r = runCli(['plan', '--manifests', file, '--hostname-override', 'n1', '--node-ip', '192.168.0.10', '--output', 'ipvs']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '-A -t 10.96.0.10:80 -s rr\n');
    assert.match(r.stderr, /Service ns1\/bad: spec\.ports\[0\]\.port: 99999 is not a valid port \(1-65535\) \(skipped\)/);
  });

  test('invalid YAML exits 1 naming the file and the line', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   bad: indent\n');
    const r = runCli(['plan', '--manifests', file, '--hostname-override', 'n1', '--node-ip', '192.168.0.10']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: invalid YAML \\(column 9\\): Nested mappings`));
  });

  test('an unreadable path exits 1 naming it and saying in words what is wrong', () => {
    const r = runCli(['plan', '--manifests', join(dir, 'nope.yaml'), '--hostname-override', 'n1', '--node-ip', '192.168.0.10']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.yaml: cannot read: does not exist; check the path\n$/);
    writeFileSync(join(dir, 'a-file.yaml'), '');
    const notDir = runCli(['plan', '--manifests', join(dir, 'a-file.yaml', 'x.yaml'), '--hostname-override', 'n1']);
    assert.equal(notDir.code, 1);
    assert.match(notDir.stderr, /a-file\.yaml\/x\.yaml: cannot read: a part of the path is not a directory; check the path\n$/);
    assert.doesNotMatch(r.stderr + notDir.stderr, /\bE[A-Z]{3,}\b/);
  });

  test('bad flags exit 2 with one line naming the flag, the value and the accepted form', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--ipvs-sync-period', '10x'], /--ipvs-sync-period/],
      [['--ipvs-scheduler', 'fastest'], /"fastest".*--ipvs-scheduler/],
      [['--proxy-mode', 'iptables'], /"iptables".*--proxy-mode/],
      [['--output', 'yaml'], /"yaml" for --output: expected one of/],
      [['--node-ip', '1.2.3'], /"1\.2\.3" for --node-ip/],
      [['--no-such-flag'], /no-such-flag/],
    ];
    for (const [flags, re] of cases) {
      const r = runCli(['plan', '--manifests', 'examples/', '--hostname-override', 'node-a', '--node-ip', '192.168.0.10', ...flags]);
      assert.equal(r.code, 2, flags.join(' '));
      assert.match(r.stderr, re, flags.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${flags.join(' ')}`);
      assert.equal(r.stdout, '');
    }
  });

  test('--manifests is required', () => {
    const r = runCli(['plan', '--node-ip', '192.168.0.10']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--manifests is required/);
  });
});

describe('--help of each command', () => {
  const flagsOf = (text: string): string[] => [...text.matchAll(/^ {2}(?:-\w, )?(?: {4})?--([\w-]+)/gm)].map((m) => m[1] ?? '');
  // Flags only the daemon acts on: its servers, the API client, its process, its sync timing.
  const DAEMON_ONLY = ['healthz-bind-address', 'oom-score-adj', 'kube-api-qps', 'kube-api-burst', 'ipvs-sync-period', 'ipvs-min-sync-period', 'init-only', 'cleanup', 'bind-address-hard-fail'];

  test('plan lists the flags that change the plan and no daemon-only flag, and still accepts those', () => {
    const help = runCli(['plan', '--help']);
    assert.equal(help.code, 0);
    const listed = flagsOf(help.stdout);
    for (const f of ['manifests', 'output', 'masquerade-all', 'cluster-cidr', 'nodeport-addresses', 'ipvs-scheduler', 'hostname-override', 'config']) assert.ok(listed.includes(f), `plan --help lacks --${f}`);
    for (const f of [...DAEMON_ONLY, 'kubeconfig', 'metrics-bind-address', 'profiling', 'v']) assert.ok(!listed.includes(f), `plan --help lists --${f}`);
    assert.match(help.stdout, /Every other kube-proxy flag is accepted and changes nothing here; 'kube-ipvs run --help' lists them\.\n$/);
    // A node's kube-proxy command line works unchanged.
    const withDaemonFlags = runCli([...EXAMPLE_ARGS, '--output', 'ipvs', '--healthz-bind-address', '0.0.0.0:10256', '--oom-score-adj', '-999', '--ipvs-sync-period', '30s']);
    assert.equal(withDaemonFlags.code, 0, withDaemonFlags.stderr);
    assert.equal(withDaemonFlags.stdout, readFileSync(join(repoRoot(), 'test', 'golden', 'examples.ipvs.txt'), 'utf8'));
  });

  test('status, diff, trace and cleanup list no daemon-only flag; run lists every kube-proxy flag', () => {
    for (const command of ['status', 'diff', 'trace', 'cleanup']) {
      const help = runCli([command, '--help']);
      assert.equal(help.code, 0, `${command}: ${help.stderr}`);
      const listed = flagsOf(help.stdout);
      for (const f of DAEMON_ONLY) assert.ok(!listed.includes(f), `${command} --help lists --${f}`);
    }
    assert.ok(flagsOf(runCli(['status', '--help']).stdout).includes('metrics-bind-address'));
    assert.ok(flagsOf(runCli(['cleanup', '--help']).stdout).includes('ipvs-exclude-cidrs'));
    const run = flagsOf(runCli(['run', '--help']).stdout);
    for (const f of [...DAEMON_ONLY, 'masquerade-all', 'profiling', 'v']) assert.ok(run.includes(f), `run --help lacks --${f}`);
  });
});
