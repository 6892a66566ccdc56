// Reads Kubernetes objects from YAML/JSON files and directories (standalone mode and `plan`).
// Unreadable files and invalid YAML are errors naming the file and line; objects of kinds we do not
// proxy (Deployments, ConfigMaps, ...) are ignored so a whole app manifest can be pointed at.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { LineCounter, parseAllDocuments } from 'yaml';
import { ManifestError } from './manifest-error.js';

export { ManifestError };

export interface ManifestObjects {
  readonly services: V1Service[];
  readonly endpointSlices: V1EndpointSlice[];
  readonly nodes: V1Node[];
  /** Every file read, for watching. */
  readonly files: string[];
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Files a path stands for: itself, or every manifest file below a directory, sorted. */
export function manifestFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new ManifestError(path, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (name.startsWith('.')) continue;
    const full = join(path, name);
    if (statSync(full).isDirectory()) out.push(...manifestFiles(full));
    else if (MANIFEST_EXTENSIONS.some((ext) => name.endsWith(ext))) out.push(full);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function collect(obj: unknown, into: ManifestObjects): void {
  if (!isObject(obj)) return;
  const kind = obj['kind'];
  const apiVersion = obj['apiVersion'];
  if (kind === 'List' && Array.isArray(obj['items'])) {
    for (const item of obj['items']) collect(item, into);
    return;
  }
  if (kind === 'Service' && apiVersion === 'v1') into.services.push(obj as V1Service);
  else if (kind === 'EndpointSlice' && apiVersion === 'discovery.k8s.io/v1') into.endpointSlices.push(obj as unknown as V1EndpointSlice);
  else if (kind === 'Node' && apiVersion === 'v1') into.nodes.push(obj as V1Node);
}

/** Parses one file's text (multi-document YAML or JSON). */
export function parseManifestText(file: string, text: string, into: ManifestObjects): void {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0] ?? lineCounter.linePos(err.pos[0]);
      // The parser's message repeats the position and quotes the source; file:line says it already.
      const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      throw new ManifestError(file, pos.line, `invalid YAML (column ${pos.col}): ${reason}`);
    }
    collect(doc.toJS({ maxAliasCount: 100 }), into);
  }
}

export function loadManifests(paths: readonly string[]): ManifestObjects {
  const into: ManifestObjects = { services: [], endpointSlices: [], nodes: [], files: [] };
  for (const p of paths) {
    for (const file of manifestFiles(p)) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new ManifestError(file, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      into.files.push(file);
      parseManifestText(file, text, into);
    }
  }
  return into;
}
