// Serves a NetlinkIpset over stdin/stdout (one JSON object per line) from inside a network
// namespace: a netlink socket belongs to the netns it was opened in, so the tests run this with
// `ip netns exec NS node --import tsx <this file>` and drive it through NetlinkIpsetProxy.
import { createInterface } from 'node:readline';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import type { IpsetOp } from '../../../src/dataplane/ipset/backend.js';
import { NetlinkIpset } from '../../../src/dataplane/ipset/netlink.js';
import type { WireError, WireRequest, WireResponse } from './netlink-proxy.js';

function wireError(e: unknown): WireError {
  if (e instanceof DataplaneError) {
    const prefix = `${e.subsystem} ${e.op} ${e.object}: `;
    const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { code: e.code, subsystem: e.subsystem, op: e.op, object: e.object, reason, ...(e.opIndex === undefined ? {} : { opIndex: e.opIndex }) };
  }
  return { code: 'FAILED', subsystem: 'ipset', op: 'child', object: '', reason: e instanceof Error ? (e.stack ?? e.message) : String(e) };
}

function send(r: WireResponse): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

let backend: NetlinkIpset;
try {
  backend = await NetlinkIpset.open({ timeoutMs: 20_000 });
} catch (e) {
  send({ id: 0, ok: false, error: wireError(e) });
  process.exit(1);
}
send({ id: 0, ok: true, result: { protocol: backend.protocol } });

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const req = JSON.parse(line) as WireRequest;
  try {
    if (req.method === 'observe') {
      const sets = await backend.observe(req.names ?? undefined);
      send({ id: req.id, ok: true, result: sets.map((s) => ({ spec: s.spec, entries: [...s.entries] })) });
    } else {
      const r = await backend.apply(req.ops as IpsetOp[]);
      send({ id: req.id, ok: true, result: r.error ? { applied: r.applied, error: wireError(r.error) } : { applied: r.applied } });
    }
  } catch (e) {
    send({ id: req.id, ok: false, error: wireError(e) });
  }
}
backend.close();
