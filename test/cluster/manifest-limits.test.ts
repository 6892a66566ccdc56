// Manifests that would exhaust memory are refused before they can: a YAML alias bomb ("billion
// laughs"), a 100 MB file, files that add up past the total. Each refusal names the file and says
// what to do; `plan` does it inside a 128 MB heap; the daemon keeps its previous objects.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ManifestSource } from '../../src/cluster/manifest-source.js';
import { ManifestError, MAX_MANIFEST_FILE_BYTES, MAX_MANIFEST_TOTAL_BYTES, loadManifests } from '../../src/cluster/manifests.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { repoRoot } from '../helpers/cli.js';
import { NODE, service } from '../helpers/world.js';

const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-limits-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Nine levels of nine aliases each: 9^10 strings once expanded. */
function aliasBomb(): string {
  const lines = ['apiVersion: v1', 'kind: List', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(',')}]`);
  lines.push('items: [*a9]');
  return `${lines.join('\n')}\n`;
}

/** A file of `bytes` that takes no disk: the refusal must come before any read. */
function sparse(name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, bytes);
  return p;
}

/** `kube-ipvs plan` in a child limited to a 128 MB heap. */
function planIn128MB(path: string): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--max-old-space-size=128', join(repoRoot(), 'dist', 'kube-ipvs.mjs'), 'plan', '--manifests', path, '--hostname-override', NODE], { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

describe('manifest size and alias limits', () => {
  test('an alias bomb is refused, naming the file and the cause, inside a 128 MB heap', () => {
    const bomb = join(dir, 'bomb.yaml');
    writeFileSync(bomb, aliasBomb());
    assert.throws(() => loadManifests([bomb]), (e: unknown) => e instanceof ManifestError && /bomb\.yaml:1: YAML aliases expand past 100 copies .*without anchors and aliases/.test(e.message));
    const r = planIn128MB(bomb);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^kube-ipvs: .*bomb\.yaml:1: YAML aliases expand past 100 copies/);
  });

  test('a few anchors and aliases, as people write them, still load', () => {
    const ok = join(dir, 'anchors.yaml');
    writeFileSync(ok, 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, labels: &l {app: web}}\nspec:\n  clusterIP: 10.96.0.10\n  selector: *l\n  ports: [{name: http, port: 80}]\n');
    assert.equal(loadManifests([ok]).services.length, 1);
  });

  test('a 100 MB file is refused before it is read, inside a 128 MB heap', () => {
    const huge = sparse('huge.yaml', 100 * 1024 * 1024);
    assert.throws(() => loadManifests([huge]), (e: unknown) => e instanceof ManifestError && /huge\.yaml: 100\.0 MiB is over the 16\.0 MiB a manifest file may hold .*split it into smaller files/.test(e.message));
    const r = planIn128MB(huge);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /huge\.yaml: 100\.0 MiB is over the 16\.0 MiB/);
  });

  test('files that each fit but add up past the total are refused at the one that crosses it', () => {
    const many = join(dir, 'many');
    rmSync(many, { recursive: true, force: true });
    const each = MAX_MANIFEST_FILE_BYTES - 1;
    const count = Math.floor(MAX_MANIFEST_TOTAL_BYTES / each) + 1;
    for (let i = 0; i < count; i++) sparse(`many-${i}.yaml`, each);
    const paths = Array.from({ length: count }, (_, i) => join(dir, `many-${i}.yaml`));
    assert.throws(() => loadManifests(paths), (e: unknown) => e instanceof ManifestError && e.file === paths[count - 1] && /add up to more than 64\.0 MiB/.test(e.message));
  });

  test('the daemon keeps its previous objects when a file turns into a bomb', () => {
    const d = join(dir, 'daemon');
    rmSync(d, { recursive: true, force: true });
    const tracker = new ClusterTracker(NODE, () => undefined);
    const source = new ManifestSource([d], tracker);
    mkdirSync(d);
    writeFileSync(join(d, 'web.yaml'), stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })));
    assert.equal(source.reload().ok, true);
    tracker.drain();
    writeFileSync(join(d, 'web.yaml'), aliasBomb());
    const r = source.reload();
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /web\.yaml:1: YAML aliases expand/);
    assert.equal(tracker.drain().changed.size, 0, 'nothing changed');
    assert.ok(tracker.current().services.has('default/web'));
  });
});
