// `kube-ipvs trace --live`: the packet tracer walked over what the kernel holds now (IPVS with its
// real servers, ipsets, our iptables chains and the jumps into them, kube-ipvs0 and the node's
// addresses) instead of the plan. Real servers at weight 0 are draining: IPVS never picks them for
// a new connection, so a NEW packet's trace leaves them out (an established one keeps them).
// Services and pods are named from the running daemon's /status, or from --manifests.
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { loadManifests } from '../cluster/manifests.js';
import { ClusterTracker } from '../cluster/tracker.js';
import { loadConfig } from '../config/load.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import { openRealDataplane } from '../dataplane/real-dataplane.js';
import type { StatusDocument } from '../observe/status-document.js';
import { foreignRuleCount, liveAsDesired, observeLive } from '../sync/live.js';
import { rsKey, vsKey } from '../model/kernel.js';
import { daemonBaseUrl, DaemonUnreachable, getDaemonJson } from './daemon-client.js';
import type { TraceNames } from './trace-names.js';
import { namesFromStatus, namesFromTracker } from './trace-names.js';
import { packetOf, printTrace, TRACE_FLAGS, traceRequest } from './trace.js';

export interface LiveTraceIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** The node's dataplane (tests pass the in-memory one); the real one by default. */
  readonly openDataplane?: () => Promise<Dataplane & { close(): void }>;
}

export async function runLiveTrace(argv: readonly string[], io: LiveTraceIo): Promise<number> {
  const loaded = loadConfig(argv, { extraFlags: TRACE_FLAGS, hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
  if (loaded.help) return -1;
  const req = traceRequest(loaded.extra);
  const manifests = loaded.extra.get('manifests') as readonly string[];

  const dp = await (io.openDataplane ?? openRealDataplane)();
  let live;
  try {
    live = await observeLive(dp);
  } finally {
    dp.close();
  }
  const state = liveAsDesired(live, { skipWeightZero: req.ctState === 'NEW' });
  const node = { addresses: live.nodeAddresses };
  const packet = packetOf(req, state, node);

  const notes: string[] = [];
  const quiesced = (live.realServers.get(vsKey({ address: req.dst, port: req.dstPort, protocol: req.protocol })) ?? []).filter((r) => r.weight === 0);
  if (req.ctState === 'NEW' && quiesced.length > 0) notes.push(`not picked for a new connection (weight 0, draining): ${quiesced.map((r) => rsKey(r)).join(', ')}`);
  for (const t of live.iptables) {
    for (const table of ['nat', 'filter'] as const) {
      const n = foreignRuleCount(t.tables, table);
      if (n > 0) notes.push(`${n} rule${n === 1 ? '' : 's'} of other programs in the ${t.family} ${table} built-in chains ${n === 1 ? 'is' : 'are'} not evaluated`);
    }
  }

  let names: TraceNames | undefined;
  if (manifests.length > 0) {
    const tracker = new ClusterTracker(loaded.config.hostnameOverride, () => undefined);
    const objects = loadManifests(manifests);
    for (const s of objects.services) tracker.upsertService(s);
    for (const s of objects.endpointSlices) tracker.upsertEndpointSlice(s);
    tracker.drain();
    names = namesFromTracker(tracker);
  } else if (loaded.config.metricsBindAddress !== '') {
    try {
      names = namesFromStatus(await getDaemonJson<StatusDocument>(daemonBaseUrl(loaded.config.metricsBindAddress), '/status', 10_000));
    } catch (e) {
      if (!(e instanceof DaemonUnreachable)) throw e;
      notes.push(`Services and pods are not named: ${e.message}; or give --manifests`);
    }
  }
  return printTrace(state, packet, node, req.output, names, io, notes);
}
