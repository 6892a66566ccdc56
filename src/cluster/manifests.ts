// Reads Kubernetes objects from YAML/JSON files and directories (standalone mode and `plan`).
// Unreadable files and invalid YAML are errors naming the file and line; objects of kinds we do not
// proxy (Deployments, ConfigMaps, ...) are ignored so a whole app manifest can be pointed at.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { LineCounter, parseAllDocuments } from 'yaml';
import { ManifestError } from './manifest-error.js';
import { errorMessage, fileErrorText } from '../model/error-text.js';

export { ManifestError };

export interface ManifestObjects {
  readonly services: V1Service[];
  readonly endpointSlices: V1EndpointSlice[];
  readonly nodes: V1Node[];
  /** Every file read, for watching. */
  readonly files: string[];
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * Parsing YAML takes about 40 bytes of memory per byte of text (10,000 Services with their
 * EndpointSlices: 11.5 MB of YAML, 470 MB resident), so files are measured before they are read:
 * a bigger one is refused, whatever it holds, rather than exhaust the daemon's memory.
 */
export const MAX_MANIFEST_FILE_BYTES = 16 * 1024 * 1024;
/** All files of one load together: what their objects may cost once parsed. */
export const MAX_MANIFEST_TOTAL_BYTES = 64 * 1024 * 1024;
/** Alias expansions one document may make (a "billion laughs" document makes billions). */
const MAX_ALIAS_COUNT = 100;

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function unreadable(path: string, e: unknown): ManifestError {
  return new ManifestError(path, undefined, `cannot read: ${fileErrorText(e)}`);
}

/** Files a path stands for: itself, or every manifest file below a directory, sorted. */
export function manifestFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw unreadable(path, e);
  }
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(path).sort();
  } catch (e) {
    throw unreadable(path, e);
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const full = join(path, name);
    let isDir: boolean;
    try {
      isDir = statSync(full).isDirectory();
    } catch (e) {
      throw unreadable(full, e);
    }
    if (isDir) out.push(...manifestFiles(full));
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
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      const line = doc.range ? lineCounter.linePos(doc.range[0]).line : undefined;
      if (e instanceof ReferenceError && /alias/i.test(e.message)) {
        throw new ManifestError(file, line, `YAML aliases expand past ${MAX_ALIAS_COUNT} copies (refused as a resource exhaustion attack): write the objects out without anchors and aliases`);
      }
      throw new ManifestError(file, line, `cannot read the document: ${errorMessage(e)}`);
    }
    collect(value, into);
  }
}

/**
 * What each file held when last parsed, by path: a reload that reads the same text takes the same
 * objects (the same identities) instead of parsing again. A daemon re-reads its manifests at every
 * resync; parsing 10,000 Services' YAML takes seconds of CPU.
 */
export type ParsedFiles = Map<string, { readonly text: string; readonly objects: Omit<ManifestObjects, 'files'> }>;

export function loadManifests(paths: readonly string[], parsed?: ParsedFiles): ManifestObjects {
  const into: ManifestObjects = { services: [], endpointSlices: [], nodes: [], files: [] };
  const seen = new Set<string>();
  let total = 0;
  for (const p of paths) {
    for (const file of manifestFiles(p)) {
      let text: string;
      try {
        // Measured on the open file, so a file replaced meanwhile cannot slip past the limit.
        const fd = openSync(file, 'r');
        try {
          const size = fstatSync(fd).size;
          if (size > MAX_MANIFEST_FILE_BYTES) {
            throw new ManifestError(file, undefined, `${mib(size)} is over the ${mib(MAX_MANIFEST_FILE_BYTES)} a manifest file may hold (its parse would take about 40 times that in memory); split it into smaller files`);
          }
          total += size;
          if (total > MAX_MANIFEST_TOTAL_BYTES) {
            throw new ManifestError(file, undefined, `the manifests add up to more than ${mib(MAX_MANIFEST_TOTAL_BYTES)} with this file; give kube-ipvs fewer or smaller files`);
          }
          text = readFileSync(fd, 'utf8');
        } finally {
          closeSync(fd);
        }
      } catch (e) {
        if (e instanceof ManifestError) throw e;
        throw unreadable(file, e);
      }
      into.files.push(file);
      seen.add(file);
      const cached = parsed?.get(file);
      let objects = cached?.text === text ? cached.objects : undefined;
      if (!objects) {
        const fresh: ManifestObjects = { services: [], endpointSlices: [], nodes: [], files: [] };
        parseManifestText(file, text, fresh);
        objects = fresh;
        parsed?.set(file, { text, objects });
      }
      // (Not push(...): a big file's thousands of objects would each be an argument.)
      for (const o of objects.services) into.services.push(o);
      for (const o of objects.endpointSlices) into.endpointSlices.push(o);
      for (const o of objects.nodes) into.nodes.push(o);
    }
  }
  if (parsed) for (const file of [...parsed.keys()]) if (!seen.has(file)) parsed.delete(file);
  return into;
}
