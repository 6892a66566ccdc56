// Applies the planned kernel settings: read first, write only when different ("atLeast" ones only
// when lower), report what changed.
import type { SysctlBackend } from '../dataplane/sysctl/backend.js';
import type { SysctlSetting } from '../plan/sysctl.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

type Outcome = 'kept' | 'written' | { readonly failed: string };

async function applyOne(backend: SysctlBackend, s: SysctlSetting): Promise<Outcome> {
  try {
    const current = await backend.read(s.key);
    const n = current === undefined ? NaN : Number(current.split(/\s+/)[0]);
    const ok = s.mode === 'atLeast' ? n >= s.value : n === s.value;
    if (ok) return 'kept';
    await backend.write(s.key, String(s.value));
    return 'written';
  } catch (e) {
    return { failed: errorMessage(e) };
  }
}

/**
 * Different keys are applied at once: each read and write is a file round trip through the thread
 * pool, and on a fresh node these lie on the way to default/kubernetes answering (seven round
 * trips one after another took about 0.2 s of a 0.9 s first-services pass under emulation).
 * Settings of one key stay in their order; outcomes are reported in the settings' order.
 */
export async function applySysctls(backend: SysctlBackend, settings: readonly SysctlSetting[], report: SyncReport): Promise<void> {
  const byKey = new Map<string, number[]>();
  settings.forEach((s, i) => {
    const indexes = byKey.get(s.key);
    if (indexes) indexes.push(i);
    else byKey.set(s.key, [i]);
  });
  const outcomes: Outcome[] = new Array<Outcome>(settings.length).fill('kept');
  await Promise.all(
    [...byKey.values()].map(async (indexes) => {
      for (const i of indexes) outcomes[i] = await applyOne(backend, settings[i] as SysctlSetting);
    }),
  );
  outcomes.forEach((o, i) => {
    const s = settings[i] as SysctlSetting;
    if (o === 'written') report.count('sysctl.write');
    else if (o !== 'kept') report.fail({ subsystem: 'sysctl', op: 'write', object: `${s.key}=${s.value}`, message: o.failed });
  });
}
