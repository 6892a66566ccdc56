// The daemon re-reads its manifests at every resync: a file whose text did not change is not parsed
// again (its objects come back as the very same objects), and any change to a file, or a file that
// comes or goes, is seen at the next reload.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadManifests } from '../../src/cluster/manifests.js';
import type { ParsedFiles } from '../../src/cluster/manifests.js';
import { ManifestSource } from '../../src/cluster/manifest-source.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { NODE, service } from '../helpers/world.js';

const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-reload-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const web = (port: number) => stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port }] }));
const db = () => stringify(service('db', { clusterIP: '10.96.0.20', ports: [{ name: 'sql', port: 5432 }] }));

describe('manifest reloads', () => {
  test('unchanged files give back the objects parsed before; a changed, added or removed file is read anew', () => {
    const d = mkdtempSync(join(dir, 'files-'));
    writeFileSync(join(d, 'a.yaml'), web(80));
    writeFileSync(join(d, 'b.yaml'), db());
    const parsed: ParsedFiles = new Map();
    const first = loadManifests([d], parsed);
    const again = loadManifests([d], parsed);
    assert.equal(again.services.length, 2);
    assert.ok(again.services.every((s, i) => s === first.services[i]), 'the same objects, not a new parse');

    writeFileSync(join(d, 'a.yaml'), web(8080));
    const changed = loadManifests([d], parsed);
    assert.notEqual(changed.services[0], first.services[0]);
    assert.equal(changed.services[0]?.spec?.ports?.[0]?.port, 8080);
    assert.equal(changed.services[1], first.services[1], 'the other file is not parsed again');

    writeFileSync(join(d, 'c.yaml'), stringify(service('dns', { clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] })));
    rmSync(join(d, 'b.yaml'));
    const moved = loadManifests([d], parsed);
    assert.deepEqual(moved.services.map((s) => s.metadata?.name), ['web', 'dns']);
    assert.deepEqual([...parsed.keys()].sort(), [join(d, 'a.yaml'), join(d, 'c.yaml')], 'a removed file is forgotten');
  });

  test('the daemon source reports no change for a reload of unchanged files, and the one object a rewrite changed', () => {
    const d = mkdtempSync(join(dir, 'source-'));
    writeFileSync(join(d, 'a.yaml'), `${web(80)}---\n${db()}`);
    const tracker = new ClusterTracker(NODE, () => {});
    const source = new ManifestSource([d], tracker);
    assert.equal(source.reload().changed, 2);
    assert.equal(source.reload().changed, 0);
    writeFileSync(join(d, 'a.yaml'), `${web(81)}---\n${db()}`);
    assert.equal(source.reload().changed, 1);
    tracker.drain();
    assert.equal(tracker.current().services.get('default/web')?.ports[0]?.port, 81);
  });
});
