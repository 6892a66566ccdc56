// No usable API server configuration; the message names the file or setting and what to do (its
// own module: the CLI maps it to an exit code without loading the Kubernetes client).
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}
