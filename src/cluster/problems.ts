// Malformed objects are reported, never fatal: each problem names the object and the field so a
// user can find and fix it, and the object (or the part of it) is skipped.

export interface Problem {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** JSON-path-like field, e.g. "spec.ports[1].port"; empty for the whole object. */
  readonly field: string;
  readonly reason: string;
  /** What happened to the object: skipped entirely, or planned without the bad part. */
  readonly effect: 'skipped' | 'ignored-field';
}

export type ProblemSink = (p: Problem) => void;

export function formatProblem(p: Problem): string {
  const where = p.field ? `${p.field}: ` : '';
  const effect = p.effect === 'skipped' ? 'skipped' : 'field ignored';
  return `${p.kind} ${p.namespace}/${p.name}: ${where}${p.reason} (${effect})`;
}
