// A wrong command line: printed as one line, exit status 2 (like ConfigError).
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
