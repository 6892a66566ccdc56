// Where the API server is and who we are: --kubeconfig, --master, or the pod's service account,
// in kube-proxy's order. Every failure names the file or setting and says what to do.
import { accessSync, constants, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { redactPatterns } from '../../observe/redact.js';

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
      // The parser's first line says what and where; the lines after quote the file, and with it
      // perhaps a token or a key.
      const what = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
      throw new KubeConfigError(`--kubeconfig ${input.kubeconfig}: not a valid kubeconfig (${redactPatterns(what)}); check the file's YAML`);
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

/** The API server URL in use (for requests: it may carry user:password@). */
export function serverOf(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '(no server)';
}

/** The API server URL for messages: no user information, query or fragment. */
export function displayServer(kc: KubeConfig): string {
  return displayUrl(serverOf(kc));
}

export function displayUrl(text: string): string {
  try {
    const u = new URL(text);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return redactPatterns(text);
  }
}

/** Keys of auth-provider configs whose values are credentials. */
const PROVIDER_SECRET_KEYS = /token|secret|password/i;

/**
 * Every credential the kubeconfig holds, for the log's Redactor: the user's token, password and
 * client key, auth-provider tokens, and the current content of a token file (the kubelet rotates
 * it; JWT-shaped later ones are masked by pattern).
 */
export function credentialsOf(kc: KubeConfig): string[] {
  const out: string[] = [];
  for (const u of kc.users) {
    out.push(...[u.token, u.password, u.keyData].filter((v): v is string => typeof v === 'string'));
    const config = (u.authProvider as { config?: Record<string, unknown> } | undefined)?.config ?? {};
    for (const [k, v] of Object.entries(config)) {
      if (typeof v !== 'string') continue;
      if (PROVIDER_SECRET_KEYS.test(k) && k !== 'tokenFile') out.push(v);
      if (k === 'tokenFile') {
        try {
          out.push(readFileSync(v, 'utf8').trim());
        } catch {
          // Unreadable now: the request will say so, and the token cannot leak either.
        }
      }
    }
  }
  for (const c of kc.clusters) {
    try {
      const p = new URL(c.server).password;
      if (p) out.push(decodeURIComponent(p));
    } catch {
      // Not a URL: requests to it fail with their own message.
    }
  }
  return out;
}
