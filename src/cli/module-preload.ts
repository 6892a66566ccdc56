// The daemon asks for the kernel modules its first sync needs while the API lists are out (see
// src/dataplane/kernel-modules.ts for why). Which ones follows from the rules of an empty cluster
// under this configuration: what the first sync writes for default/kubernetes and every cluster.
import { buildNodeInfo } from '../cluster/node.js';
import type { ProxyConfig } from '../config/types.js';
import type { IptablesBackend } from '../dataplane/iptables/backend.js';
import type { IptablesVariant } from '../dataplane/iptables/select.js';
import { kernelModuleRequests, loadKernelModules } from '../dataplane/kernel-modules.js';
import type { ModuleLoadOutcome } from '../dataplane/kernel-modules.js';
import { errorMessage } from '../model/error-text.js';
import type { Logger } from '../observe/log.js';
import { Planner } from '../plan/planner.js';
import { familyIptablesTables } from '../plan/render.js';

/** What of the opened dataplane decides the names: its families and its iptables build. */
type DataplaneFacts = { readonly iptables: readonly IptablesBackend[]; readonly iptablesBuild: IptablesVariant };

/** The module names for this configuration and the dataplane's families and iptables build. */
export function firstSyncModules(config: ProxyConfig, dp: DataplaneFacts): string[] {
  const families = dp.iptables.map((b) => b.family);
  const node = buildNodeInfo({ name: config.hostnameOverride, node: undefined, addresses: [], families });
  const state = new Planner({ node, config }).state();
  return kernelModuleRequests({
    families: state.families.map((f) => ({ family: f.family, tables: familyIptablesTables(f) })),
    iptables: dp.iptablesBuild,
    scheduler: config.ipvs.scheduler,
    linkKind: 'dummy',
  });
}

/** Loads them and logs how it went; never throws (the kernel loads what is missing on first use). */
export async function preloadKernelModules(
  config: ProxyConfig,
  dp: DataplaneFacts,
  log: Logger,
  load: (names: readonly string[]) => Promise<ModuleLoadOutcome> = loadKernelModules,
): Promise<ModuleLoadOutcome> {
  let names: string[];
  try {
    names = firstSyncModules(config, dp);
  } catch (e) {
    // A planner bug must not stop the daemon over an optimisation: the first sync reports it.
    const outcome = { ok: false, ms: 0, detail: `cannot tell which modules: ${errorMessage(e)}` };
    log.info('kernel modules not loaded ahead of the first sync; the kernel loads them when the sync first uses them', { detail: outcome.detail });
    return outcome;
  }
  const r = await load(names);
  if (r.ok) log.info('kernel modules for the first sync loaded ahead of it', { modules: names.length, ms: r.ms });
  else log.info('kernel modules not all loaded ahead of the first sync; the kernel loads them when the sync first uses them', { modules: names.join(','), ms: r.ms, detail: r.detail });
  return r;
}
