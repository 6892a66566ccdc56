#!/usr/bin/env node
// kube-ipvs command line: dispatches to the subcommands and maps errors to exit codes
// (2: bad flags or usage, 1: unreadable input or failed operation).
import { readFileSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { ConfigError, formatHelp, loadConfig } from '../config/load.js';
import { ManifestError } from '../cluster/manifests.js';
import { KubeConfigError } from '../cluster/api/kubeconfig.js';
import { DataplaneError } from '../dataplane/errors.js';
import { UsageError } from './errors.js';
import { PLAN_FLAGS, runPlan } from './plan.js';
import { runTrace, TRACE_FLAGS, TRACE_USAGE } from './trace.js';
import { RUN_FLAGS, runCleanup, runRun } from './run.js';
import { runStatus, STATUS_FLAGS, STATUS_USAGE } from './status.js';
import { DIFF_FLAGS, DIFF_USAGE, runDiff } from './diff.js';
import { runLiveTrace, wantsLive } from './trace-live.js';
import { processLogger } from '../observe/log.js';
import { logLoadWarnings, runProcessFlags } from './process-flags.js';
import { rawVersion, versionLine } from '../version.js';
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
        const code = runPlan(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`Usage: kube-ipvs plan --manifests PATH... [--node-ip IP,...] [--output FORMAT] [kube-proxy flags]\n\n${formatHelp(PLAN_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'trace': {
        const code = wantsLive(rest) ? await runLiveTrace(rest, io) : runTrace(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`${TRACE_USAGE}\n\n${formatHelp(TRACE_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'status': {
        const code = await runStatus(rest, { ...io, ...(process.stdout.isTTY ? { width: process.stdout.columns } : {}) });
        if (code === -1) io.out(`${STATUS_USAGE}\n\n${formatHelp(STATUS_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'diff': {
        const code = await runDiff(rest, io);
        if (code === -1) io.out(`${DIFF_USAGE}\n\n${formatHelp(DIFF_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'run': {
        const code = await runRun(rest, io);
        if (code === -1) io.out(formatHelp(RUN_FLAGS));
        return Math.max(code, 0);
      }
      case 'cleanup': {
        // The kube-proxy flags apply (notably --ipvs-exclude-cidrs, --log-format, --config).
        const loaded = loadConfig(rest, { extraFlags: [], hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
        if (loaded.help) {
          io.out(`Usage: kube-ipvs cleanup [--ipvs-exclude-cidrs CIDRS] [kube-proxy flags]\nRemoves every virtual server (outside the excluded CIDRs), ipset, chain, jump and kube-ipvs0 address kube-ipvs owns.\n\n${formatHelp()}`);
          return 0;
        }
        const log = processLogger(loaded.config.logging);
        logLoadWarnings(loaded, log);
        return runProcessFlags(loaded, io, log) ?? (await runCleanup(log, loaded.config.ipvs.excludeCIDRs));
      }
      case '--version':
        io.out(`${versionLine()}\n`);
        return 0;
      case '--version=raw':
        io.out(`${rawVersion()}\n`);
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
