// The tracer cannot evaluate something (an unknown rule match, a missing set or chain, an input it
// needs but was not given): it throws rather than guess, so a trace never silently lies.
export class TraceError extends Error {
  override readonly name = 'TraceError';
}
