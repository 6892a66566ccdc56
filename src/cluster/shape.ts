// Reading objects whose shape is not guaranteed: manifests are hand-written and unvalidated, so a
// field may hold any JSON. These helpers return well-typed views (anything of the wrong type reads
// as absent) so that no lookup on a bad object can throw.

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The string-valued entries of a label or annotation map; anything else reads as empty. */
export function stringMap(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

export interface ObjectMetaView {
  /** "default" when absent or not a string, as kubectl would default it. */
  readonly namespace: string;
  /** undefined when absent, empty or not a string. */
  readonly name: string | undefined;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

export function objectMeta(o: unknown): ObjectMetaView {
  const md = isRecord(o) && isRecord(o.metadata) ? o.metadata : {};
  return {
    namespace: typeof md.namespace === 'string' && md.namespace !== '' ? md.namespace : 'default',
    name: typeof md.name === 'string' && md.name !== '' ? md.name : undefined,
    labels: stringMap(md.labels),
    annotations: stringMap(md.annotations),
  };
}

/** "namespace/name" of an object, with "<unnamed>" for a missing name. */
export function objectKey(o: unknown): string {
  const m = objectMeta(o);
  return `${m.namespace}/${m.name ?? '<unnamed>'}`;
}

/** An array, or empty for anything else. */
export function arrayOf(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}
