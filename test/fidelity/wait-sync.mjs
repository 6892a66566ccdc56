// Waits (in the VM) until the proxy on 127.0.0.1:10249 has completed, for every IP family that
// queued a change after --since, a sync that STARTED after that family's last queued change. A sync
// already running when a change is queued does not count: it may have read the old objects.
// Both proxies export kube-proxy's metrics: last_queued_timestamp (set when a change is queued),
// last_timestamp (set when a sync ends) and the duration histogram (its _sum grows by each sync's
// length), so a completed sync's start is last_timestamp minus its duration.
// With --two-syncs, after a change (--since > 0) it also requires two syncs completed after the
// change was first seen queued (for a proxy that syncs periodically, as IPVS mode does every
// --ipvs-sync-period; nftables mode may not sync again for an hour): the second one started after the first ended, so after the change, whatever the
// guest's wall clock did (a forward step during a sync that began before the change makes that
// sync's computed start look later than the change; kube-proxy's timestamps are wall clock).
// Then it waits until nothing more is queued for --quiet seconds (a proxy may learn of things late,
// e.g. kube-proxy's first sync can run before it has seen the Node's topology labels), and waits
// for that sync too if something is.
// When one scrape shows two or more syncs completed since the previous one, the last of them began
// after the previous scrape was requested (syncs run one at a time, and the one before it ended
// after that scrape's values were taken): that time bounds its start, not only last_timestamp
// minus the summed durations, which would also count the syncs before it. Without that bound a
// proxy that syncs often (each change, each drain check) and is scraped slowly looked unsynced
// until its next periodic resync, up to a sync period later.
// Both proxies run again when a change is queued during a sync, so a proxy that has ended a sync
// after the last queued change and then neither queues nor completes anything for --settle seconds
// (at least twice the longest sync seen) has nothing left to do, even though that sync seems to have
// begun before the change (e.g. the guest's wall clock stepped back; CI once saw nftables mode so and
// waited out the whole timeout). That is accepted, with a note on stderr.
// With --after FILE it scrapes from its start but judges nothing until FILE exists: started while
// changes are still being written (the benchmark's churn), it sees each sync's start one scrape at
// a time. Started only once they were done, its first scrape lumps every sync since the baseline
// together, so the last one's start is unknown, and a proxy that then has nothing left to do is
// seen synced only at its next periodic sync or after --settle.
//   node wait-sync.mjs --since SECONDS [--baseline FILE] [--timeout SECONDS] [--quiet SECONDS] [--settle SECONDS] [--two-syncs] [--after FILE] [--url URL]
// --since 0 waits for a first completed sync of every family. Exit 0 when synced, 1 on timeout.
// Plain JavaScript without imports: it starts fast in the VM.
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const since = Number(opt('--since', '0'));
const timeoutMs = Number(opt('--timeout', '600')) * 1000;
const baselineFile = opt('--baseline');
const quietMs = Number(opt('--quiet', '5')) * 1000;
const settleMs = Number(opt('--settle', '30')) * 1000;
const twoSyncs = args.includes('--two-syncs');
const gate = opt('--after');
const FAMILIES = ['IPv4', 'IPv6'];
const URL_ = opt('--url', 'http://127.0.0.1:10249/metrics');
// last_timestamp is set a moment before the duration is observed, so a computed start is early by
// that moment: a sync that began this close after a queued change still counts.
const SLACK = 0.05;

function parse(text) {
  const out = {};
  for (const f of FAMILIES) out[f] = { last: 0, queued: 0, count: 0, sum: 0 };
  for (const line of text.split('\n')) {
    const m = /^(kubeproxy_sync_proxy_rules_(?:last_timestamp_seconds|last_queued_timestamp_seconds|duration_seconds_count|duration_seconds_sum))\{ip_family="(IPv[46])"\} (\S+)$/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    const s = out[m[2]];
    if (m[1].endsWith('last_timestamp_seconds')) s.last = v;
    else if (m[1].endsWith('last_queued_timestamp_seconds')) s.queued = v;
    else if (m[1].endsWith('_count')) s.count = v;
    else s.sum = v;
  }
  return out;
}

async function scrape() {
  try {
    const r = await fetch(URL_, { signal: AbortSignal.timeout(5000) });
    return r.ok ? parse(await r.text()) : undefined;
  } catch {
    return undefined;
  }
}

const { existsSync, readFileSync } = await import('node:fs');
// Hold the event loop for the whole wait: under a loaded TCG guest a pending fetch has let the
// loop drain, and node then exits 13 (an unsettled top-level await) instead of waiting on.
setInterval(() => {}, 60_000);
let prev = baselineFile ? parse(readFileSync(baselineFile, 'utf8')) : parse('');
// The latest start of a completed sync seen per family (a lower bound when several completed
// between two scrapes).
const lastStart = { IPv4: -Infinity, IPv6: -Infinity };
// Per family: the queued time and completed-sync count when that queued change was first seen.
const seen = {};
// A monotonic clock: the guest's wall clock may step under a loaded TCG host.
const now_ = () => performance.now();
const deadline = now_() + timeoutMs;
// When the proxy was last seen synced, and the queued times then.
let syncedSince;
let queuedThen = '';
// When the previous successful scrape was requested (wall clock, as the proxy's timestamps).
let prevAt;
// When a scrape last showed a sync completed or a change queued (monotonic), and the most sync
// time one scrape has shown (a bound on the longest sync).
let progressAt = now_();
let longestMs = 0;
while (now_() < deadline) {
  const at = Date.now() / 1000;
  // Before the scrape: a scrape asked for after FILE appeared shows every change written before it.
  const open = gate === undefined || existsSync(gate);
  const askedAt = now_();
  const now = await scrape();
  const scrapeMs = now_() - askedAt;
  if (now) {
    for (const f of FAMILIES) {
      const d = now[f].count - prev[f].count;
      if (d > 0 || now[f].queued !== prev[f].queued) progressAt = now_();
      if (d <= 0) continue;
      // Without a baseline the first scrape's sum holds every sync so far: not one sync's length.
      if (prevAt !== undefined || baselineFile) longestMs = Math.max(longestMs, (now[f].sum - prev[f].sum) * 1000);
      let start = now[f].last - (now[f].sum - prev[f].sum);
      if (d >= 2 && prevAt !== undefined) start = Math.max(start, prevAt);
      lastStart[f] = Math.max(lastStart[f], start);
    }
    prev = now;
    prevAt = at;
    const changed = since === 0 ? FAMILIES : FAMILIES.filter((f) => now[f].queued > since);
    for (const f of changed) if (seen[f]?.queued !== now[f].queued) seen[f] = { queued: now[f].queued, count: now[f].count };
    const twoAfter = (f) => !twoSyncs || since === 0 || now[f].count - seen[f].count >= 2;
    const startedAfter = (f) => lastStart[f] >= now[f].queued - SLACK;
    const settled = (f) => now[f].last >= now[f].queued && now_() - progressAt >= Math.max(settleMs, 2 * longestMs);
    const done = open && changed.length > 0 && changed.every((f) => now[f].count > 0 && (startedAfter(f) || settled(f)) && twoAfter(f));
    if (done && !changed.every(startedAfter)) {
      process.stderr.write(`wait-sync: accepting a sync that ended after the last change though it seems to have begun before it; nothing has been queued or completed for ${Math.round((now_() - progressAt) / 1000)}s: ${JSON.stringify(now)}\n`);
      process.exit(0);
    }
    const queued = FAMILIES.map((f) => now[f].queued).join(',');
    if (!done || queued !== queuedThen) syncedSince = undefined;
    else if (syncedSince !== undefined && now_() - syncedSince >= quietMs) process.exit(0);
    if (done && syncedSince === undefined) syncedSince = now_();
    queuedThen = queued;
  }
  // Every 0.5 s, or less often when a scrape is slow: a proxy whose /metrics is big (kube-ipvs's
  // per-Service counters, ~10 MB at 10,000 Services) would otherwise spend a good part of the
  // wait answering this poll, and the churn figure would charge it to the proxy.
  await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(500, 4 * scrapeMs))));
}
process.stderr.write(`wait-sync: no sync after ${since} completed within ${timeoutMs / 1000}s: ${JSON.stringify(prev)}\n`);
process.exit(1);
