// --healthz-bind-address / --metrics-bind-address values: "host:port", "[v6]:port" or ":port";
// the empty string disables the server, as in kube-proxy.
import { isIP } from 'node:net';

export interface BindAddress {
  /** undefined for ":port", which listens on every address. */
  readonly host: string | undefined;
  readonly port: number;
}

/** Returns undefined for "" (disabled); throws on anything that is not host:port. */
export function parseBindAddress(flag: string, value: string): BindAddress | undefined {
  if (value === '') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? NaN : Number(m[3]);
  const hostOk = host === '' || (host !== undefined && (m?.[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || isHostName(host)));
  if (!m || !hostOk || !(port >= 0 && port <= 65535)) {
    throw new Error(`--${flag} ${JSON.stringify(value)}: expected host:port such as 0.0.0.0:10256 or [::1]:10249 (or "" to disable)`);
  }
  return { host: host === '' ? undefined : host, port };
}

function isHostName(s: string): boolean {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(s);
}
