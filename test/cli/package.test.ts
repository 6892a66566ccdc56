// The npm package as a user installs it: `npm pack` of the built tree, `npm install -g` of the
// tarball into a temporary prefix, then the installed `kube-ipvs` run from an empty directory, far
// from the sources and their node_modules. It proves package.json's "files" carry the bundle and
// its chunks and that the dependencies left outside the bundle resolve from the installed package.
// Installing fetches the dependencies: --prefer-offline takes them from the npm cache (filled by
// `npm ci`) and asks the npm registry only for what the cache lacks (package metadata, the first
// time on a machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';

// A user's shell: none of the npm_* variables `npm run` sets for the test runner.
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith('npm_')) env[k] = v;
  env['PATH'] = `${dirname(process.execPath)}${delimiter}${process.env['PATH'] ?? ''}`;
  return env;
}

function run(cmd: string, args: string[], cwd: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('npm pack gives a package that installs with npm install -g and runs from a clean directory', { timeout: 300_000 }, (t) => {
  const root = repoRoot();
  const tmp = mkdtempSync(join(tmpdir(), 'kube-ipvs-pack-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const clean = join(tmp, 'clean');
  const prefix = join(tmp, 'prefix');
  mkdirSync(clean);

  // --ignore-scripts: the tree is already built (prepack would build it again).
  const pack = run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], root);
  assert.equal(pack.code, 0, pack.stderr);
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const tarball = join(tmp, `kube-ipvs-${version}.tgz`);
  assert.ok(readdirSync(tmp).includes(`kube-ipvs-${version}.tgz`), `npm pack wrote ${readdirSync(tmp).join(', ')}`);

  const install = run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], clean);
  assert.equal(install.code, 0, `npm install -g failed (the npm registry is needed for what the npm cache lacks):\n${install.stderr}`);
  const bin = join(prefix, 'bin', 'kube-ipvs');

  const help = run(bin, ['--help'], clean);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: kube-ipvs <command> \[flags\]/);
  for (const command of ['plan', 'run', 'cleanup', 'trace', 'status', 'diff']) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'), command);

  const versionLine = run(bin, ['--version'], clean);
  assert.equal(versionLine.code, 0, versionLine.stderr);
  assert.equal(versionLine.stdout, `kube-ipvs v${version} (kube-proxy v1.36.3 in IPVS mode)\n`);

  // A command whose code lives in the bundle's chunks: the same plan as from the sources.
  const plan = run(bin, ['plan', '--manifests', join(root, 'examples'), '--hostname-override', 'node-a', '--node-ip', '192.168.0.10,fd00:192::10', '--kernel-version', '6.1.0', '--output', 'ipvs'], clean);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(plan.stdout, readFileSync(join(root, 'test', 'golden', 'examples.ipvs.txt'), 'utf8'));

  // The netlink addon, outside the bundle, resolves from the installed package.
  const pkgDir = join(prefix, 'lib', 'node_modules', 'kube-ipvs');
  const netlink = run(process.execPath, ['--input-type=module', '-e', "import('netlink').then((m) => console.log(typeof m.genl))"], pkgDir);
  assert.equal(netlink.stdout, 'object\n', netlink.stderr);

  // What runs is the bundle: the sources, the compiled modules and the tests stay out of the package.
  for (const left of ['src', 'test', 'bench', join('dist', 'src'), join('dist', 'test')]) assert.ok(!existsSync(join(pkgDir, left)), `the package holds ${left}/`);
});
