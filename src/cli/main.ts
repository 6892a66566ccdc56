#!/usr/bin/env node
// kube-ipvs command line: dispatches to the subcommands and maps errors to exit codes
// (2: bad flags or usage, 1: unreadable input or failed operation).
// Each command's modules are imported when it runs, so that a command loads only what it uses
// (--help loads nothing; the Kubernetes client only in API mode): in the bundle
// (scripts/bundle.sh) each becomes a chunk read on demand. Only the error classes and the lists
// of the kube-proxy flags each command's --help shows are static.
import { ConfigError } from '../config/errors.js';
import { ManifestError } from '../cluster/manifest-error.js';
import { KubeConfigError } from '../cluster/api/kubeconfig-error.js';
import { DataplaneError } from '../dataplane/errors.js';
import { UsageError } from './errors.js';
import { CLEANUP_KUBE_PROXY_FLAGS, DIFF_KUBE_PROXY_FLAGS, PLAN_KUBE_PROXY_FLAGS, STATUS_KUBE_PROXY_FLAGS, TRACE_KUBE_PROXY_FLAGS } from './command-flags.js';
import { redactPatterns } from '../observe/redact.js';

const USAGE = `Usage: kube-ipvs <command> [flags]

Commands:
  plan    Print the kernel state kube-proxy's IPVS mode would program for a cluster
          (ipvsadm -Sn, ipset save, iptables-save, kube-ipvs0 addresses, sysctls).
  run     Program this node's IPVS, ipsets, iptables and kube-ipvs0 from the Kubernetes API
          (--kubeconfig, --master or the pod's service account) or from manifests
          (--manifests; --once: sync once and exit; --cleanup: remove everything kube-ipvs owns).
  cleanup Remove everything kube-ipvs (or kube-proxy in IPVS mode) owns on this node.
  trace   Follow one packet through the planned rules, ipsets and virtual servers: which
          real servers it may reach, masqueraded or not, or where it is dropped
          (--live: through what the kernel holds now, naming the Service and pods).
  status  Ask the running daemon for this node's Services, real servers, pods, connection
          counts and rates, and for its syncs, failures and conflicts.
  diff    Show what the next sync would change in the kernel (+/- lines grouped by
          Service); exit 0 when nothing differs, 1 when something does.

Run 'kube-ipvs <command> --help' for the command's flags; 'kube-ipvs --version' for the version.
`;

export async function main(argv: readonly string[], io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'plan': {
        const [{ PLAN_FLAGS, runPlan }, { formatHelp }, { release }] = await Promise.all([import('./plan.js'), import('../config/load.js'), import('node:os')]);
        const code = runPlan(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`Usage: kube-ipvs plan --manifests PATH... [--node-ip IP,...] [--output FORMAT] [kube-proxy flags]\n\n${formatHelp(PLAN_FLAGS, PLAN_KUBE_PROXY_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'trace': {
        const [{ runTrace, wantsLive, TRACE_FLAGS, TRACE_USAGE }, { formatHelp }, { release }] = await Promise.all([import('./trace.js'), import('../config/load.js'), import('node:os')]);
        const code = wantsLive(rest) ? await (await import('./trace-live.js')).runLiveTrace(rest, io) : runTrace(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`${TRACE_USAGE}\n\n${formatHelp(TRACE_FLAGS, TRACE_KUBE_PROXY_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'status': {
        const [{ runStatus, STATUS_FLAGS, STATUS_USAGE }, { formatHelp }] = await Promise.all([import('./status.js'), import('../config/load.js')]);
        const code = await runStatus(rest, { ...io, ...(process.stdout.isTTY ? { width: process.stdout.columns } : {}) });
        if (code === -1) io.out(`${STATUS_USAGE}\n\n${formatHelp(STATUS_FLAGS, STATUS_KUBE_PROXY_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'diff': {
        const [{ DIFF_FLAGS, DIFF_USAGE, runDiff }, { formatHelp }] = await Promise.all([import('./diff.js'), import('../config/load.js')]);
        const code = await runDiff(rest, io);
        if (code === -1) io.out(`${DIFF_USAGE}\n\n${formatHelp(DIFF_FLAGS, DIFF_KUBE_PROXY_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'run': {
        const [{ RUN_FLAGS, runRun }, { formatHelp }] = await Promise.all([import('./run.js'), import('../config/load.js')]);
        const code = await runRun(rest, io);
        // runRun printed the usage line.
        if (code === -1) io.out(`\n${formatHelp(RUN_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'cleanup': {
        const [{ runCleanup }, { formatHelp, loadConfig }, { processLogger }, { logLoadWarnings, runProcessFlags }, { readFileSync }, { hostname }] = await Promise.all([
          import('./run.js'),
          import('../config/load.js'),
          import('../observe/log.js'),
          import('./process-flags.js'),
          import('node:fs'),
          import('node:os'),
        ]);
        // The kube-proxy flags apply (notably --ipvs-exclude-cidrs, --log-format, --config).
        const loaded = loadConfig(rest, { extraFlags: [], hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
        if (loaded.help) {
          io.out(`Usage: kube-ipvs cleanup [--ipvs-exclude-cidrs CIDRS] [kube-proxy flags]\nRemoves every virtual server (outside the excluded CIDRs), ipset, chain, jump and kube-ipvs0 address kube-ipvs owns.\n\n${formatHelp([], CLEANUP_KUBE_PROXY_FLAGS)}`);
          return 0;
        }
        const log = processLogger(loaded.config.logging);
        logLoadWarnings(loaded, log);
        return runProcessFlags(loaded, io, log) ?? (await runCleanup(log, loaded.config.ipvs.excludeCIDRs));
      }
      case '--version':
        io.out(`${(await import('../version.js')).versionLine()}\n`);
        return 0;
      case '--version=raw':
        io.out(`${(await import('../version.js')).rawVersion()}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.err(`kube-ipvs: unknown command ${JSON.stringify(command)}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
      io.err(`kube-ipvs: ${redactPatterns(e.message)}\n`);
      return 2;
    }
    if (e instanceof ManifestError || e instanceof DataplaneError || e instanceof KubeConfigError) {
      // e.g. IPVS unavailable: the message names the module and what to do.
      io.err(`kube-ipvs: ${redactPatterns(e.message)}\n`);
      return 1;
    }
    // A bug: keep the stack for the report, but no credential a message may have picked up.
    io.err(`kube-ipvs: unexpected error: ${redactPatterns(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
