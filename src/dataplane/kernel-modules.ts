// Loading the kernel modules a first sync needs before it runs. On a fresh node the kernel loads
// them on first use, inside the first sync: the first iptables-restore waits while nf_tables, the
// xt matches and targets and the nat chain type load (over a second under emulation), and that
// delays the API server's own Service. Asked for while the API lists are out, they cost nothing
// on the critical path. The names are those the kernel itself hands modprobe on first use, so
// nothing loads that the first sync would not have loaded anyway.
import type { IpFamily } from '../model/types.js';
import type { IptablesTable } from '../model/kernel.js';
import { splitRuleSpec } from '../model/text/iptables.js';
import { errorMessage } from '../model/error-text.js';
import { runCommand } from './command.js';
import type { IptablesVariant } from './iptables/select.js';

/** What a first sync will write, as far as modules go. */
export interface ModuleNeeds {
  /** Each family's planned rules (only tables, `-m` matches and `-j`/`-g` targets are read). */
  readonly families: ReadonlyArray<{ readonly family: IpFamily; readonly tables: readonly IptablesTable[] }>;
  /** The iptables build in use: it decides which table modules the kernel asks for. */
  readonly iptables: IptablesVariant;
  /** The IPVS scheduler of the virtual servers (`ip_vs_<name>`). */
  readonly scheduler: string;
  /** The link kind of kube-ipvs0. */
  readonly linkKind: string;
}

/** Verdicts built into every table; any other target that is not a chain is an extension. */
const BUILTIN_TARGETS: ReadonlySet<string> = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']);

/** NFPROTO_IPV4 and NFPROTO_IPV6 (include/uapi/linux/netfilter.h): nf_tables' chain types are asked for by number. */
const NFPROTO: Readonly<Record<IpFamily, number>> = { IPv4: 2, IPv6: 10 };
/** xt_prefix[] of net/netfilter/x_tables.c: matches, targets and legacy tables are asked for as `<prefix>t_<name>`. */
const XT_PREFIX: Readonly<Record<IpFamily, string>> = { IPv4: 'ip', IPv6: 'ip6' };

/**
 * The module names the kernel would request for these needs, each once, in the order a first sync
 * meets them: the link, the scheduler, then per family the tables and the extensions. Sources of the
 * names (Linux): rtnetlink.c `rtnl-link-<kind>`; ip_vs_sched.c `ip_vs_<scheduler>`; nfnetlink.c
 * `nfnetlink-subsys-10` (nf_tables); nf_tables_api.c `nft-chain-<nfproto>-<type>` and
 * `nft-expr-match`/`nft-expr-target` (nft_compat, through which iptables-nft runs xt extensions);
 * x_tables.c `<prefix>table_<table>` (legacy tables) and `<prefix>t_<extension>` (both builds).
 */
export function kernelModuleRequests(needs: ModuleNeeds): string[] {
  const out = new Set<string>([`rtnl-link-${needs.linkKind}`, `ip_vs_${needs.scheduler}`]);
  for (const { family, tables } of needs.families) {
    const prefix = XT_PREFIX[family];
    // 'default' is whichever build `iptables` is: its table modules are left to the kernel.
    if (needs.iptables === 'nft') {
      out.add('nfnetlink-subsys-10');
      // The filter chain type is part of nf_tables itself; nat and route are modules.
      for (const t of tables) if (t.table === 'nat') out.add(`nft-chain-${NFPROTO[family]}-nat`);
      out.add('nft-expr-match');
      out.add('nft-expr-target');
    } else if (needs.iptables === 'legacy') {
      for (const t of tables) out.add(`${prefix}table_${t.table}`);
    }
    for (const t of tables) {
      const chains = new Set(t.chains);
      for (const r of t.rules) {
        const args = splitRuleSpec(r.spec);
        for (let i = 0; i + 1 < args.length; i++) {
          const flag = args[i];
          const name = args[i + 1] as string;
          if (flag === '-m') out.add(`${prefix}t_${name}`);
          else if ((flag === '-j' || flag === '-g') && !BUILTIN_TARGETS.has(name) && !chains.has(name)) out.add(`${prefix}t_${name}`);
        }
      }
    }
  }
  return [...out];
}

export interface ModuleLoadOutcome {
  readonly ok: boolean;
  readonly ms: number;
  /** Why not (modprobe missing, refused, or some names unknown to this kernel). */
  readonly detail?: string;
}

export type ModprobeRunner = (args: readonly string[]) => Promise<{ code: number | null; error?: string; stderr: string }>;

/** `modprobe` with an argument array (runCommand: never through a shell, killed after a minute). */
export const runModprobeArgs: ModprobeRunner = async (args) => {
  try {
    const r = await runCommand(['modprobe', ...args], undefined, 60_000);
    return { code: r.status, stderr: r.stderr };
  } catch (e) {
    return { code: null, error: errorMessage(e), stderr: '' };
  }
};

/**
 * Asks modprobe for every name at once (`-a`: it goes on past a name it cannot load). Never
 * rejects: without modprobe, or without the right to load modules, the kernel still loads them on
 * first use, as before.
 */
export async function loadKernelModules(names: readonly string[], run: ModprobeRunner = runModprobeArgs, now: () => number = () => performance.now()): Promise<ModuleLoadOutcome> {
  const start = now();
  if (names.length === 0) return { ok: true, ms: 0 };
  const r = await run(['-a', ...names]);
  const ms = Math.round(now() - start);
  if (r.error !== undefined) return { ok: false, ms, detail: `cannot run modprobe (${r.error})` };
  if (r.code !== 0) return { ok: false, ms, detail: r.stderr.trim().split('\n').slice(0, 3).join('; ') || `modprobe exited with ${String(r.code)}` };
  return { ok: true, ms };
}
