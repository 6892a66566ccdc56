#!/usr/bin/env node
// kube-ipvs command line: dispatches to the subcommands and maps errors to exit codes
// (2: bad flags or usage, 1: unreadable input or failed operation).
// Each command's modules are imported when it runs, so that a command loads only what it uses
// (--help loads nothing; the Kubernetes client only in API mode): in the bundle
// (scripts/bundle.sh) each becomes a chunk read on demand. Only the error classes are static.
import { ConfigError } from '../config/errors.js';
import { ManifestError } from '../cluster/manifest-error.js';
import { KubeConfigError } from '../cluster/api/kubeconfig-error.js';
import { DataplaneError } from '../dataplane/errors.js';
import { UsageError } from './errors.js';

const USAGE = `Usage: kube-ipvs <command> [flags]

Commands:
  plan    Print the kernel state kube-proxy's IPVS mode would program for a cluster
          (ipvsadm -Sn, ipset save, iptables-save, kube-ipvs0 addresses, sysctls).
  run     Program this node's IPVS, ipsets, iptables and kube-ipvs0 from the Kubernetes API
          (--kubeconfig, --master or the pod's service account) or from manifests
          (--manifests; --once: sync once and exit; --cleanup: remove everything kube-ipvs owns).
  cleanup Remove everything kube-ipvs (or kube-proxy in IPVS mode) owns on this node.
  trace   Follow one packet through the planned rules, ipsets and virtual servers: which
          real servers it may reach, masqueraded or not, or where it is dropped.

Run 'kube-ipvs <command> --help' for the command's flags.
`;

export async function main(argv: readonly string[], io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'plan': {
        const [{ PLAN_FLAGS, runPlan }, { formatHelp }, { release }] = await Promise.all([import('./plan.js'), import('../config/load.js'), import('node:os')]);
        const code = runPlan(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`Usage: kube-ipvs plan --manifests PATH... [--node-ip IP,...] [--output FORMAT] [kube-proxy flags]\n\n${formatHelp(PLAN_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'trace': {
        const [{ runTrace, TRACE_FLAGS, TRACE_USAGE }, { formatHelp }, { release }] = await Promise.all([import('./trace.js'), import('../config/load.js'), import('node:os')]);
        const code = runTrace(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`${TRACE_USAGE}\n\n${formatHelp(TRACE_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'run': {
        const [{ RUN_FLAGS, runRun }, { formatHelp }] = await Promise.all([import('./run.js'), import('../config/load.js')]);
        const code = await runRun(rest, io);
        if (code === -1) io.out(formatHelp(RUN_FLAGS));
        return Math.max(code, 0);
      }
      case 'cleanup': {
        const [{ runCleanup }, { formatHelp, loadConfig }, { createLogger }, { readFileSync }, { hostname }] = await Promise.all([
          import('./run.js'),
          import('../config/load.js'),
          import('../observe/log.js'),
          import('node:fs'),
          import('node:os'),
        ]);
        // The kube-proxy flags apply (notably --ipvs-exclude-cidrs, --log-format, --config).
        const loaded = loadConfig(rest, { extraFlags: [], hostname: hostname(), readFile: (p) => readFileSync(p, 'utf8') });
        if (loaded.help) {
          io.out(`Usage: kube-ipvs cleanup [--ipvs-exclude-cidrs CIDRS] [kube-proxy flags]\nRemoves every virtual server (outside the excluded CIDRs), ipset, chain, jump and kube-ipvs0 address kube-ipvs owns.\n\n${formatHelp()}`);
          return 0;
        }
        return await runCleanup(createLogger(loaded.config.logFormat), loaded.config.ipvs.excludeCIDRs);
      }
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
      io.err(`kube-ipvs: ${e.message}\n`);
      return 2;
    }
    if (e instanceof ManifestError || e instanceof DataplaneError || e instanceof KubeConfigError) {
      // e.g. IPVS unavailable: the message names the module and what to do.
      io.err(`kube-ipvs: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
