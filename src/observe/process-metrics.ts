// The process metrics kube-proxy's /metrics carries from Go's process collector, under the same
// names, read cheaply at each scrape: CPU from getrusage, memory from the runtime, open file
// descriptors from /proc/self/fd, the descriptor limit once. prom-client's default collectors
// (event-loop histograms, GC, handles, /proc/self/status parsing) cost more per scrape than all of
// kube-proxy's own metrics together, and a proxy is scraped for its sync metrics, not for those.
import { readdirSync, readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

/** "Max open files" soft limit from /proc/self/limits, if readable. */
function maxFds(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers,
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  const start = Date.now() / 1000 - process.uptime();
  new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers }).set(Math.round(start));
  new Gauge({
    name: 'process_open_fds',
    help: 'Number of open file descriptors.',
    registers,
    collect() {
      const n = openFds();
      if (n !== undefined) this.set(n);
    },
  });
  const limit = maxFds();
  if (limit !== undefined) new Gauge({ name: 'process_max_fds', help: 'Maximum number of open file descriptors.', registers }).set(limit);
  new Gauge({
    name: 'nodejs_heap_size_used_bytes',
    help: 'Process heap size used from Node.js in bytes.',
    registers,
    collect() {
      this.set(getHeapStatistics().used_heap_size);
    },
  });
  new Gauge({
    name: 'nodejs_heap_size_total_bytes',
    help: 'Process heap size from Node.js in bytes.',
    registers,
    collect() {
      this.set(getHeapStatistics().total_heap_size);
    },
  });
}
