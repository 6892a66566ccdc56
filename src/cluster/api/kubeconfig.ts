// Where the API server is and who we are: --kubeconfig, --master, or the pod's service account,
// in kube-proxy's order. Every failure names the file or setting and says what to do.
//
// Read here, without the Kubernetes client library: the server, its CA (file or data),
// insecure-skip-tls-verify, tls-server-name, and the user's token, token file (kubeadm's
// `tokenFile`, re-read as it rotates), client certificate and key (files or data) or basic
// credentials: what a node proxy's kubeconfig holds. A user with an `exec` credential plugin or an
// `auth-provider`, or a cluster behind a `proxy-url`, is handed to @kubernetes/client-node, loaded
// only then (it is most of a start-up's time and memory otherwise).
import { accessSync, constants, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { errorMessage, fileErrorText } from '../../model/error-text.js';
import { redactPatterns } from '../../observe/redact.js';
import type { ApiConnection } from './connection.js';
import { KubeConfigError } from './kubeconfig-error.js';

export { KubeConfigError };

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How long a token read from a file is used before the file is read again (client-go: 1 min). */
const TOKEN_FILE_TTL_MS = 60_000;

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

/** A file's bytes or inline base64 data, read when a request is made (certificates rotate). */
type Material = { readonly file: string } | { readonly data: Buffer };

/** What a request needs, from a kubeconfig's cluster and user or the pod's service account. */
interface Credentials {
  readonly ca?: Material;
  readonly cert?: Material;
  readonly key?: Material;
  readonly insecure?: boolean;
  readonly serverName?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly basic?: { readonly username: string; readonly password: string };
}

function readMaterial(m: Material): Buffer {
  return 'file' in m ? readFileSync(m.file) : m.data;
}

/** The connection for plain credentials: files are read per request, a token file once a minute. */
class DirectConnection implements ApiConnection {
  private token: { value: string; readAt: number } | undefined;

  constructor(
    readonly server: string,
    private readonly c: Credentials,
    private readonly listed: readonly string[] = [],
    private readonly now: () => number = Date.now,
  ) {}

  secrets(): string[] {
    const out = [...this.listed, ...urlPassword(this.server)];
    if (this.c.tokenFile) out.push(...currentTokenOf(this.c.tokenFile));
    return out;
  }

  async requestOptions(): Promise<RequestOptions> {
    const opts: RequestOptions = { headers: {} };
    if (this.c.ca) opts.ca = readMaterial(this.c.ca);
    if (this.c.cert) opts.cert = readMaterial(this.c.cert);
    if (this.c.key) opts.key = readMaterial(this.c.key);
    if (this.c.insecure) opts.rejectUnauthorized = false;
    if (this.c.serverName) opts.servername = this.c.serverName;
    const token = this.c.token ?? this.fileToken();
    if (token) opts.headers = { Authorization: `Bearer ${token}` };
    else if (this.c.basic) opts.auth = `${this.c.basic.username}:${this.c.basic.password}`;
    return opts;
  }

  private fileToken(): string | undefined {
    if (!this.c.tokenFile) return undefined;
    const t = this.now();
    if (!this.token || t - this.token.readAt >= TOKEN_FILE_TTL_MS) this.token = { value: readFileSync(this.c.tokenFile, 'utf8').trim(), readAt: t };
    return this.token.value;
  }
}

/** Credentials only the client library knows how to obtain (exec plugins, auth providers, proxies). */
class ClientLibraryConnection implements ApiConnection {
  private kc: Promise<{ applyToHTTPSOptions(o: RequestOptions): Promise<void> }> | undefined;

  constructor(
    readonly server: string,
    private readonly text: string,
    private readonly path: string,
    private readonly listed: readonly string[],
  ) {}

  secrets(): string[] {
    return [...this.listed, ...urlPassword(this.server)];
  }

  async requestOptions(): Promise<RequestOptions> {
    this.kc ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromString(this.text);
      kc.makePathsAbsolute(dirname(this.path));
      const cluster = kc.getCurrentCluster();
      // --master overrides the server here too.
      if (cluster) kc.clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: this.server } : c));
      return kc;
    });
    const opts: RequestOptions = { headers: {} };
    await (await this.kc).applyToHTTPSOptions(opts);
    return opts;
  }
}

type Raw = Record<string, unknown>;

const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The named entry of a kubeconfig list (clusters, users, contexts), its inner object. */
function named(list: unknown, field: string, name: string, path: string, what: string): Raw | undefined {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new KubeConfigError(`--kubeconfig ${path}: not a valid kubeconfig (${what} is not a list)`);
  for (const entry of list) {
    if (isObject(entry) && entry.name === name) {
      const inner = entry[field];
      if (inner !== undefined && inner !== null && !isObject(inner)) throw new KubeConfigError(`--kubeconfig ${path}: not a valid kubeconfig (${what} ${name} has no ${field} map)`);
      return inner ?? {};
    }
  }
  return undefined;
}

function str(o: Raw | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function fromKubeconfigFile(path: string, master: string): ApiConnection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KubeConfigError(
      code === 'ENOENT'
        ? `--kubeconfig ${path}: no such file; give the path of a kubeconfig file, or --manifests to run without an API server`
        : `--kubeconfig ${path}: cannot read it: ${fileErrorText(e)}`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    // The parser's first line says what and where; the lines after quote the file, and with it
    // perhaps a token or a key.
    const what = (errorMessage(e)).split('\n')[0] ?? '';
    throw new KubeConfigError(`--kubeconfig ${path}: not a valid kubeconfig (${redactPatterns(what)}); check the file's YAML`);
  }
  if (!isObject(raw)) throw new KubeConfigError(`--kubeconfig ${path}: not a valid kubeconfig (not a YAML map)`);
  const contextName = str(raw, 'current-context');
  const context = contextName === undefined ? undefined : named(raw.contexts, 'context', contextName, path, 'contexts');
  const clusterName = str(context, 'cluster');
  const cluster = clusterName === undefined ? undefined : named(raw.clusters, 'cluster', clusterName, path, 'clusters');
  if (!cluster) throw new KubeConfigError(`--kubeconfig ${path}: its current-context names no cluster; set current-context`);
  const server = master !== '' ? master : str(cluster, 'server');
  if (server === undefined) throw new KubeConfigError(`--kubeconfig ${path}: cluster ${clusterName} has no server; set its server URL`);
  const userName = str(context, 'user');
  const user = userName === undefined ? undefined : named(raw.users, 'user', userName, path, 'users');

  const listed = secretsOf(user);
  if (str(cluster, 'proxy-url') !== undefined || isObject(user?.exec) || isObject(user?.['auth-provider'])) return new ClientLibraryConnection(server, text, path, listed);

  // Relative paths in a kubeconfig are relative to the file, as with kubectl.
  const base = dirname(path);
  const file = (key: string, o: Raw | undefined): Material | undefined => {
    const data = str(o, `${key}-data`);
    if (data !== undefined) return { data: Buffer.from(data, 'base64') };
    const f = str(o, key);
    if (f === undefined) return undefined;
    const abs = isAbsolute(f) ? f : join(base, f);
    if (!readable(abs)) throw new KubeConfigError(`--kubeconfig ${path}: ${key} ${abs} is not readable; check the path (relative paths are relative to the kubeconfig)`);
    return { file: abs };
  };
  // kubeadm's kube-proxy kubeconfig names the service account token with `tokenFile`.
  const tokenFile = str(user, 'tokenFile') ?? str(user, 'token-file');
  const username = str(user, 'username');
  const creds: Credentials = {
    ca: file('certificate-authority', cluster),
    cert: file('client-certificate', user),
    key: file('client-key', user),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    serverName: str(cluster, 'tls-server-name'),
    token: str(user, 'token'),
    tokenFile: tokenFile === undefined ? undefined : isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile),
    basic: username === undefined ? undefined : { username, password: str(user, 'password') ?? '' },
  };
  return new DirectConnection(server, creds, listed);
}

export function loadKubeConfig(input: KubeConfigInput): ApiConnection {
  const env = input.env ?? process.env;
  if (input.kubeconfig !== '') return fromKubeconfigFile(input.kubeconfig, input.master);
  // A bare --master is kube-proxy's insecure port case: plain HTTP, no credentials.
  if (input.master !== '') return new DirectConnection(input.master, { insecure: input.master.startsWith('http:') });
  const prefix = input.serviceAccountPrefix ?? '';
  const dir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new KubeConfigError(
      'no API server given: use --kubeconfig FILE or --master URL, run in a pod with a service account, or use --manifests PATH for standalone mode',
    );
  }
  if (!readable(`${dir}/token`)) throw new KubeConfigError(`in-cluster config: ${dir}/token is not readable; mount the service account token (automountServiceAccountToken: true)`);
  const host = env.KUBERNETES_SERVICE_HOST.includes(':') ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST;
  // The projected token rotates: it is read again once a minute, as client-go does.
  return new DirectConnection(`https://${host}:${env.KUBERNETES_SERVICE_PORT}`, { ca: { file: `${dir}/ca.crt` }, tokenFile: `${dir}/token` });
}

/** The API server URL in use (for requests: it may carry user:password@). */
export function serverOf(c: ApiConnection): string {
  return c.server;
}

/** The API server URL for messages: no user information, query or fragment. */
export function displayServer(c: ApiConnection): string {
  return displayUrl(c.server);
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

/**
 * Every credential the connection holds, for the log's Redactor: the user's token, password and
 * client key, auth-provider tokens, a password in the server URL, and the current content of a
 * token file (the kubelet rotates it; JWT-shaped later ones are masked by pattern).
 */
export function credentialsOf(c: ApiConnection): string[] {
  return c.secrets();
}

/** Keys of auth-provider configs whose values are credentials. */
const PROVIDER_SECRET_KEYS = /token|secret|password/i;

/** The secrets written in a kubeconfig user entry. */
function secretsOf(user: Raw | undefined): string[] {
  const out = ['token', 'password', 'client-key-data'].map((k) => str(user, k)).filter((v): v is string => v !== undefined);
  const provider = user?.['auth-provider'];
  const config = isObject(provider) && isObject(provider.config) ? provider.config : {};
  for (const [k, v] of Object.entries(config)) if (typeof v === 'string' && PROVIDER_SECRET_KEYS.test(k)) out.push(v);
  return out;
}

function urlPassword(server: string): string[] {
  try {
    const p = new URL(server).password;
    return p ? [decodeURIComponent(p)] : [];
  } catch {
    // Not a URL: requests to it fail with their own message.
    return [];
  }
}

function currentTokenOf(file: string): string[] {
  try {
    return [readFileSync(file, 'utf8').trim()];
  } catch {
    // Unreadable now: the request will say so, and the token cannot leak either.
    return [];
  }
}
