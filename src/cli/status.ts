// `kube-ipvs status`: asks the running daemon for /status and prints its Services (virtual
// servers, real servers with pods, counts and rates) and its own state, as a table sized to the
// terminal, a wide table or the JSON document. Needs no privileges: only the metrics server.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import type { FlagSpec } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { StatusDocument, StatusFilter } from '../observe/status-document.js';
import { filterQuery, STATUS_API_VERSION } from '../observe/status-document.js';
import { renderStatus } from '../observe/status-table.js';
import { daemonBaseUrl, DaemonUnreachable, getDaemonJson } from './daemon-client.js';
import { UsageError } from './errors.js';

const OUTPUTS = ['text', 'wide', 'json'] as const;

export const STATUS_USAGE = 'Usage: kube-ipvs status [SERVICE | NAMESPACE/SERVICE] [-n NAMESPACE] [--node-port] [--draining] [-o text|wide|json] [--metrics-bind-address ADDRESS]';

export const STATUS_FLAGS: readonly FlagSpec[] = [
  { name: 'namespace', short: 'n', kind: 'string', valueName: 'namespace', help: 'Only Services of this namespace.' },
  { name: 'node-port', kind: 'bool', help: 'Only service ports with a node port.' },
  { name: 'draining', kind: 'bool', help: 'Only real servers draining at weight 0 (and the service ports that have some).' },
  { name: 'output', short: 'o', kind: 'string', default: 'text', valueName: 'format', help: `What to print: ${OUTPUTS.join(', ')} (the /status JSON document).` },
  { name: 'timeout', kind: 'string', default: '10s', valueName: 'duration', help: 'How long to wait for the daemon.' },
];

export interface StatusIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** Terminal columns; undefined when the output is not a terminal. */
  readonly width?: number;
}

/** The filter of the command line: a positional SERVICE or NAMESPACE/SERVICE, -n, --node-port, --draining. */
export function statusFilter(positional: readonly string[], extra: ReadonlyMap<string, unknown>): StatusFilter {
  if (positional.length > 1) throw new UsageError(`status takes at most one SERVICE, got ${positional.length}: ${positional.join(' ')}`);
  let namespace = (extra.get('namespace') as string | undefined) || undefined;
  let service = positional[0];
  if (service?.includes('/')) {
    const [ns, name, ...rest] = service.split('/');
    if (!ns || !name || rest.length > 0) throw new UsageError(`invalid SERVICE ${JSON.stringify(service)}: expected NAME or NAMESPACE/NAME`);
    if (namespace !== undefined && namespace !== ns) throw new UsageError(`-n ${namespace} and ${service} name different namespaces`);
    namespace = ns;
    service = name;
  }
  return { ...(namespace ? { namespace } : {}), ...(service ? { service } : {}), nodePort: extra.get('node-port') === true, draining: extra.get('draining') === true };
}

export async function runStatus(argv: readonly string[], io: StatusIo): Promise<number> {
  const loaded = loadConfig(argv, { extraFlags: STATUS_FLAGS, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  if (loaded.help) return -1;
  const output = loaded.extra.get('output') as string;
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`invalid value ${JSON.stringify(output)} for --output: expected one of ${OUTPUTS.join(', ')}`);
  const timeoutText = loaded.extra.get('timeout') as string;
  const timeoutMs = parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`invalid value ${JSON.stringify(timeoutText)} for --timeout: expected a duration such as 10s`);
  const filter = statusFilter(loaded.positional, loaded.extra);
  const base = daemonBaseUrl(loaded.config.metricsBindAddress);
  let doc: StatusDocument;
  try {
    doc = await getDaemonJson<StatusDocument>(base, `/status${filterQuery(filter)}`, timeoutMs);
  } catch (e) {
    if (!(e instanceof DaemonUnreachable)) throw e;
    io.err(`kube-ipvs: status: ${e.message}\n`);
    return 1;
  }
  if (doc.apiVersion !== STATUS_API_VERSION) {
    io.err(`kube-ipvs: status: the daemon at ${base} speaks ${String(doc.apiVersion)}, this command ${STATUS_API_VERSION}: use the kube-ipvs binary of the daemon's version\n`);
    return 1;
  }
  if (output === 'json') io.out(`${JSON.stringify(doc, null, 2)}\n`);
  else io.out(renderStatus(doc, { wide: output === 'wide', ...(io.width !== undefined ? { width: io.width } : {}) }));
  return 0;
}
