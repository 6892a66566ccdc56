// Which iptables build to drive. iptables 1.8 ships two (legacy xtables and nf_tables) with
// separate rule sets; writing to the one the rest of the node (kubelet, CNI) does not use leaves
// our rules unseen by half the packet path. Decided the way kube-proxy's image does it
// (kubernetes-sigs/iptables-wrappers): kubelet's marker chains first, then which holds more rules.
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type { IpFamily } from '../../model/types.js';
import type { IptablesCommands } from './real.js';
import { runCommand } from '../command.js';

export type IptablesVariant = 'nft' | 'legacy' | 'default';

/** What one build currently holds, over both families (kubelet may have written only one). */
export interface VariantObservation {
  /** Its save and restore binaries exist. */
  readonly available: boolean;
  /** A `KUBE-IPTABLES-HINT` or `KUBE-KUBELET-CANARY` chain exists (kubelet ≥ 1.17 creates them). */
  readonly kubeletChains: boolean;
  /** Number of rules (`-A` lines) it holds. */
  readonly rules: number;
}

export interface VariantDecision {
  readonly variant: IptablesVariant;
  readonly reason: string;
}

export interface IptablesSelection extends IptablesCommands, VariantDecision {}

/**
 * The pure decision. Unlike the old wrapper script, ties (including an empty node) go to the
 * `iptables` in PATH rather than to legacy: the distribution's default is the better guess there
 * (nf_tables on Debian 12), and the script's "≥ 10 legacy rules" shortcut only existed to avoid
 * running a hanging iptables-nft-save 1.8.3, which we bound with a timeout instead.
 */
export function decideIptablesVariant(obs: { readonly nft: VariantObservation; readonly legacy: VariantObservation }): VariantDecision {
  const { nft, legacy } = obs;
  if (!nft.available || !legacy.available) {
    const only = nft.available ? 'nft' : legacy.available ? 'legacy' : undefined;
    return { variant: 'default', reason: only ? `only the ${only} build is installed` : 'neither iptables-nft nor iptables-legacy is installed' };
  }
  if (nft.kubeletChains) return { variant: 'nft', reason: "kubelet's marker chain is in the nf_tables rules" };
  if (legacy.kubeletChains) return { variant: 'legacy', reason: "kubelet's marker chain is in the legacy rules" };
  if (legacy.rules > nft.rules) return { variant: 'legacy', reason: `legacy holds more rules (${legacy.rules} vs ${nft.rules})` };
  if (nft.rules > legacy.rules) return { variant: 'nft', reason: `nf_tables holds more rules (${nft.rules} vs ${legacy.rules})` };
  return { variant: 'default', reason: `both builds hold ${nft.rules} rules; using iptables in PATH` };
}

const KUBELET_CHAINS = /^:(KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY)\s/m;

/** Counts what one iptables-save output holds. */
export function summarizeSave(text: string): { kubeletChains: boolean; rules: number } {
  const rules = text.split('\n').filter((l) => l.startsWith('-A ') || /^\[\d+:\d+\] -A /.test(l)).length;
  return { kubeletChains: KUBELET_CHAINS.test(text), rules };
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `name` is found in PATH (or the sbin directories, which PATH may lack for non-root). */
async function inPath(name: string): Promise<boolean> {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/sbin'].filter((d) => d !== '');
  for (const d of new Set(dirs)) if (await isExecutable(path.join(d, name))) return true;
  return false;
}

export interface SelectOptions {
  /** Prepended to every command, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  readonly prefix?: readonly string[];
  /** Limit per save; iptables-nft-save 1.8.3 could loop forever. */
  readonly timeoutMs?: number;
}

async function observeVariant(variant: 'nft' | 'legacy', options: SelectOptions): Promise<VariantObservation> {
  const saves = [`iptables-${variant}-save`, `ip6tables-${variant}-save`];
  const restores = [`iptables-${variant}-restore`, `ip6tables-${variant}-restore`];
  const present = await Promise.all([...saves, ...restores].map(inPath));
  // The IPv4 pair is the minimum; an ip6tables-less install can still be chosen for IPv4.
  if (!present[0] || !present[2]) return { available: false, kubeletChains: false, rules: 0 };
  // Both families at once: a start-up under emulation pays seconds per spawn.
  const outputs = await Promise.all(
    saves.map(async (save, i) => {
      if (!present[i]) return undefined;
      try {
        const r = await runCommand([...(options.prefix ?? []), save], undefined, options.timeoutMs ?? 5000);
        return r.status === 0 ? summarizeSave(r.stdout) : undefined;
      } catch {
        // Best effort, as the wrapper: an unreadable build counts as empty.
        return undefined;
      }
    }),
  );
  let kubeletChains = false;
  let rules = 0;
  for (const s of outputs) {
    if (!s) continue;
    kubeletChains ||= s.kubeletChains;
    rules += s.rules;
  }
  return { available: true, kubeletChains, rules };
}

function commandsFor(variant: IptablesVariant, family: IpFamily, prefix: readonly string[]): IptablesCommands {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const infix = variant === 'default' ? '' : `-${variant}`;
  return { save: [...prefix, `${tool}${infix}-save`], restore: [...prefix, `${tool}${infix}-restore`] };
}

/** Picks the iptables build in use on this node (one look serves both families). */
export async function selectIptablesBuild(options: SelectOptions = {}): Promise<VariantDecision & { commandsFor(family: IpFamily): IptablesCommands }> {
  const [nft, legacy] = await Promise.all([observeVariant('nft', options), observeVariant('legacy', options)]);
  const decision = decideIptablesVariant({ nft, legacy });
  return { ...decision, commandsFor: (family) => commandsFor(decision.variant, family, options.prefix ?? []) };
}

/** Picks the iptables build in use on this node and returns its commands for `family`. */
export async function selectIptablesCommands(family: IpFamily, options: SelectOptions = {}): Promise<IptablesSelection> {
  const build = await selectIptablesBuild(options);
  return { ...build.commandsFor(family), variant: build.variant, reason: build.reason };
}
