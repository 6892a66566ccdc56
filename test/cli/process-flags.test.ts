// The process-level kube-proxy flags as a user meets them: --version, --write-config-to (write,
// then exit, as kube-proxy does), start-up warnings named once, and a configuration file from a
// newer kube-proxy (an unknown field) that must not stop the command.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCli } from '../helpers/cli.js';

const PKG = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
const VERSION_LINE = `kube-ipvs v${PKG.version} (kube-proxy v1.36.3 in IPVS mode)\n`;
const PLAN = ['plan', '--manifests', 'examples/', '--hostname-override', 'node-a', '--node-ip', '192.168.0.10', '--kernel-version', '6.1.0', '--output', 'ipvs'];

describe('--version', () => {
  test('prints kube-ipvs\'s version and the kube-proxy release it follows, for every command and alone', () => {
    for (const args of [['--version'], ['run', '--version'], ['plan', '--version'], ['cleanup', '--version'], ['run', '--version=true', '--ipvs-sync-period=0s']]) {
      const r = runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.equal(r.stdout, VERSION_LINE, args.join(' '));
    }
  });

  test('--version=raw prints the details as JSON; --version=false does nothing', () => {
    const raw = runCli(['run', '--version=raw']);
    assert.equal(raw.code, 0);
    const info = JSON.parse(raw.stdout) as Record<string, string>;
    assert.equal(info.kubeIpvs, PKG.version);
    assert.equal(info.kubeProxy, 'v1.36.3');
    const off = runCli([...PLAN, '--version=false']);
    assert.equal(off.code, 0);
    assert.match(off.stdout, /-A -t 10\.96\./);
  });
});

describe('--write-config-to', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-write-config-'));

  test('writes the effective configuration and exits 0 without doing anything else', () => {
    const out = join(dir, 'a.yaml');
    const r = runCli(['run', '--write-config-to', out, '--ipvs-scheduler=wrr', '--oom-score-adj=-10', '--hostname-override=Node-A', '--cleanup']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Wrote configuration file=/);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /\n {2}scheduler: wrr\n/);
    assert.match(text, /\noomScoreAdj: -10\n/);
    assert.match(text, /\nhostnameOverride: node-a\n/);
    // Loading it back and writing again gives the same file.
    const again = join(dir, 'b.yaml');
    assert.equal(runCli(['run', '--config', out, '--write-config-to', again]).code, 0);
    assert.equal(readFileSync(again, 'utf8'), text);
  });

  test('a file that cannot be written: exit 1 naming it', () => {
    const r = runCli(['run', '--write-config-to', join(dir, 'missing-dir', 'x.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot write --write-config-to file .*missing-dir\/x\.yaml: its directory does not exist; create it or choose another path/);
  });

  test('a disabled server is written as "" with a warning that a file cannot say "disabled"', () => {
    const r = runCli(['run', '--write-config-to', join(dir, 'c.yaml'), '--metrics-bind-address=']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /metricsBindAddress is empty \(server disabled\)/);
  });
});

describe('start-up warnings', () => {
  test('flags without effect are named once, in one warning line', () => {
    const r = runCli([...PLAN, '--profiling', '--iptables-sync-period=5s', '-v=2']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.includes('without effect'));
    assert.equal(lines.length, 1, r.stderr);
    for (const f of ['--profiling', '--iptables-sync-period', '--v']) assert.equal(lines[0]?.split(`${f} (`).length, 2, f);
  });

  test('a config file from a newer kube-proxy (an unknown field) still runs, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-newer-'));
    const file = join(dir, 'kp.yaml');
    writeFileSync(file, 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  scheduler: lc\n  someFutureOption: true\n');
    const r = runCli([...PLAN, '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /decoded leniently.*unknown field "ipvs\.someFutureOption"/);
    assert.match(r.stdout, / -s lc/);
  });
});
