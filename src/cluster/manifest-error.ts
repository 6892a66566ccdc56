// A manifest that cannot be read or parsed, naming the file and line (its own module: the CLI maps
// it to an exit code without loading the YAML parser).
export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    reason: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${reason}`);
  }
}
