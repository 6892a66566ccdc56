// Standalone mode's cluster source: the objects in manifest files and directories, re-read when a
// file is added, changed or removed (fs.watch, debounced) or on demand (SIGHUP). Each reload is
// diffed against the previous one, so only objects that changed reach the tracker; a file that
// fails to parse is reported and the previous objects stay (the dataplane is never flushed because
// of a typo).
import { statSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { FSWatcher } from 'node:fs';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { deepEqual } from '../model/equal.js';
import { loadManifests } from './manifests.js';
import type { ParsedFiles } from './manifests.js';
import type { ClusterTracker } from './tracker.js';
import { nodeView } from './node.js';
import { objectMeta } from './shape.js';
import { errorMessage } from '../model/error-text.js';

export interface ReloadResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly services: number;
  readonly endpointSlices: number;
  /** Objects added, changed or removed by this reload. */
  readonly changed: number;
}

function key(o: unknown): string {
  const m = objectMeta(o);
  return `${m.namespace}/${m.name ?? ''}`;
}

export class ManifestSource {
  private services = new Map<string, V1Service>();
  private slices = new Map<string, V1EndpointSlice>();
  private nodes: V1Node[] = [];
  private nodeCache: { readonly raw: V1Node; readonly view: V1Node } | undefined;
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | undefined;
  /** Each file's text and objects as last parsed: an unchanged file is not parsed again. */
  private readonly parsed: ParsedFiles = new Map();

  constructor(
    private readonly paths: readonly string[],
    private readonly tracker: ClusterTracker,
  ) {}

  /** The Node object of that name in the manifests, if any (only its well-formed fields). */
  node(name: string): V1Node | undefined {
    const raw = this.nodes.find((n) => objectMeta(n).name === name);
    if (raw === undefined) return undefined;
    // The same object while the file is unchanged: the proxier compares Nodes by identity.
    if (this.nodeCache?.raw !== raw) this.nodeCache = { raw, view: nodeView(raw) };
    return this.nodeCache.view;
  }

  /** Re-reads every path and hands the differences to the tracker. */
  reload(): ReloadResult {
    let objects;
    try {
      objects = loadManifests(this.paths, this.parsed);
    } catch (e) {
      return { ok: false, error: errorMessage(e), services: this.services.size, endpointSlices: this.slices.size, changed: 0 };
    }
    let changed = 0;
    const nextServices = new Map(objects.services.map((s) => [key(s), s]));
    const nextSlices = new Map(objects.endpointSlices.map((s) => [key(s), s]));
    for (const [k, s] of nextServices) {
      if (deepEqual(this.services.get(k), s)) continue;
      this.tracker.upsertService(s);
      changed++;
    }
    for (const k of this.services.keys()) {
      if (nextServices.has(k)) continue;
      const [ns = 'default', name = ''] = k.split('/');
      this.tracker.deleteService(ns, name);
      changed++;
    }
    for (const [k, s] of nextSlices) {
      if (deepEqual(this.slices.get(k), s)) continue;
      this.tracker.upsertEndpointSlice(s);
      changed++;
    }
    for (const k of this.slices.keys()) {
      if (nextSlices.has(k)) continue;
      const [ns = 'default', name = ''] = k.split('/');
      this.tracker.deleteEndpointSlice(ns, name);
      changed++;
    }
    this.services = nextServices;
    this.slices = nextSlices;
    this.nodes = objects.nodes;
    return { ok: true, services: nextServices.size, endpointSlices: nextSlices.size, changed };
  }

  /** Watches the paths; `onChange` runs (debounced) after files change. */
  watch(onChange: () => void, debounceMs = 200): void {
    const fire = (): void => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(onChange, debounceMs);
    };
    for (const p of this.paths) {
      try {
        // Editors replace files (write new, rename over): watch a file's directory, not its inode.
        const isDir = statSync(p).isDirectory();
        const w = isDir
          ? watch(p, { recursive: true }, fire)
          : watch(dirname(p), (_event, file) => {
              if (file === null || file === basename(p)) fire();
            });
        // A watched directory that disappears must not crash the daemon; SIGHUP still reloads.
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        // Unwatchable (e.g. missing): reloads still happen on SIGHUP and every resync.
      }
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
