#!/usr/bin/env node
// kube-ipvs command line: dispatches to the subcommands and maps errors to exit codes
// (2: bad flags or usage, 1: unreadable input or failed operation).
import { release } from 'node:os';
import { ConfigError, formatHelp } from '../config/load.js';
import { ManifestError } from '../cluster/manifests.js';
import { UsageError } from './errors.js';
import { PLAN_FLAGS, runPlan } from './plan.js';
import { runTrace, TRACE_FLAGS, TRACE_USAGE } from './trace.js';

const USAGE = `Usage: kube-ipvs <command> [flags]

Commands:
  plan    Print the kernel state kube-proxy's IPVS mode would program for a cluster
          (ipvsadm -Sn, ipset save, iptables-save, kube-ipvs0 addresses, sysctls).
  trace   Follow one packet through the planned rules, ipsets and virtual servers: which
          real servers it may reach, masqueraded or not, or where it is dropped.

Run 'kube-ipvs <command> --help' for the command's flags.
`;

export function main(argv: readonly string[], io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) }): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'plan': {
        const code = runPlan(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`Usage: kube-ipvs plan --manifests PATH... [--node-ip IP,...] [--output FORMAT] [kube-proxy flags]\n\n${formatHelp(PLAN_FLAGS)}`);
        return Math.max(code, 0);
      }
      case 'trace': {
        const code = runTrace(rest, { ...io, kernelRelease: release() });
        if (code === -1) io.out(`${TRACE_USAGE}\n\n${formatHelp(TRACE_FLAGS)}`);
        return Math.max(code, 0);
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
    if (e instanceof ManifestError) {
      io.err(`kube-ipvs: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
