// Where the API server is and who we are: --kubeconfig, --master, or the pod's service account,
// in kube-proxy's order. Every failure names the file or setting and says what to do.
import { accessSync, constants, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigInput {
  readonly kubeconfig: string;
  readonly master: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Prefix of the service account directory (tests put it under a temporary root). */
  readonly serviceAccountPrefix?: string;
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function loadKubeConfig(input: KubeConfigInput): KubeConfig {
  const kc = new KubeConfig();
  const env = input.env ?? process.env;
  if (input.kubeconfig !== '') {
    let text: string;
    try {
      text = readFileSync(input.kubeconfig, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new KubeConfigError(
        code === 'ENOENT'
          ? `--kubeconfig ${input.kubeconfig}: no such file; give the path of a kubeconfig file, or --manifests to run without an API server`
          : `--kubeconfig ${input.kubeconfig}: cannot read it (${code ?? String(e)}); check the file's permissions`,
      );
    }
    try {
      kc.loadFromString(text);
      // Relative certificate paths in a kubeconfig are relative to the file, as with kubectl.
      kc.makePathsAbsolute(input.kubeconfig.replace(/[^/]*$/, '') || '.');
    } catch (e) {
      throw new KubeConfigError(`--kubeconfig ${input.kubeconfig}: not a valid kubeconfig (${e instanceof Error ? e.message : String(e)})`);
    }
    useTokenFiles(kc, text, input.kubeconfig);
    if (!kc.getCurrentCluster()) throw new KubeConfigError(`--kubeconfig ${input.kubeconfig}: its current-context names no cluster; set current-context`);
  } else if (input.master !== '') {
    // A bare --master is kube-proxy's insecure port case: plain HTTP, no credentials.
    kc.loadFromClusterAndUser({ name: 'master', server: input.master, skipTLSVerify: input.master.startsWith('http:') }, { name: 'anonymous' });
  } else {
    const prefix = input.serviceAccountPrefix ?? '';
    const dir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new KubeConfigError(
        'no API server given: use --kubeconfig FILE or --master URL, run in a pod with a service account, or use --manifests PATH for standalone mode',
      );
    }
    if (!readable(`${dir}/token`)) throw new KubeConfigError(`in-cluster config: ${dir}/token is not readable; mount the service account token (automountServiceAccountToken: true)`);
    // As the library's loadFromCluster, but reading the environment we were given.
    const host = env.KUBERNETES_SERVICE_HOST.includes(':') ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST;
    kc.loadFromClusterAndUser(
      { name: 'in-cluster', server: `https://${host}:${env.KUBERNETES_SERVICE_PORT}`, caFile: `${dir}/ca.crt`, skipTLSVerify: false },
      { name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile: `${dir}/token` } } },
    );
  }
  if (input.master !== '' && input.kubeconfig !== '') {
    // --master overrides the kubeconfig's server, as in kube-proxy.
    const cluster = kc.getCurrentCluster();
    if (cluster) kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: input.master } : c));
  }
  return kc;
}

interface RawUser {
  readonly name?: unknown;
  readonly user?: { readonly tokenFile?: unknown; readonly 'token-file'?: unknown; readonly token?: unknown } | null;
}

/**
 * kubeadm's kube-proxy kubeconfig names the service account token with `tokenFile`, which the
 * client library ignores; and a token read once would expire as the kubelet rotates it. Such
 * users authenticate through the library's token-file provider, which re-reads the file.
 */
function useTokenFiles(kc: KubeConfig, text: string, path: string): void {
  let raw: { users?: RawUser[] | null } | null;
  try {
    raw = parseYaml(text) as { users?: RawUser[] | null } | null;
  } catch {
    return;
  }
  const base = path.replace(/[^/]*$/, '') || './';
  const files = new Map<string, string>();
  for (const u of raw?.users ?? []) {
    const file = u.user?.tokenFile ?? u.user?.['token-file'];
    if (typeof u.name === 'string' && typeof file === 'string' && file !== '' && u.user?.token === undefined) files.set(u.name, file.startsWith('/') ? file : base + file);
  }
  if (files.size === 0) return;
  kc.users = kc.users.map((u) => {
    const tokenFile = files.get(u.name);
    return tokenFile === undefined ? u : { name: u.name, authProvider: { name: 'tokenFile', config: { tokenFile } } };
  });
}

/** The API server URL in use, for messages. */
export function serverOf(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '(no server)';
}
