// Applies the planned kernel settings: read first, write only when different ("atLeast" ones only
// when lower), report what changed.
import type { SysctlBackend } from '../dataplane/sysctl/backend.js';
import type { SysctlSetting } from '../plan/sysctl.js';
import type { SyncReport } from './report.js';
import { errorMessage } from '../model/error-text.js';

export async function applySysctls(backend: SysctlBackend, settings: readonly SysctlSetting[], report: SyncReport): Promise<void> {
  for (const s of settings) {
    try {
      const current = await backend.read(s.key);
      const n = current === undefined ? NaN : Number(current.split(/\s+/)[0]);
      const ok = s.mode === 'atLeast' ? n >= s.value : n === s.value;
      if (ok) continue;
      await backend.write(s.key, String(s.value));
      report.count('sysctl.write');
    } catch (e) {
      report.fail({ subsystem: 'sysctl', op: 'write', object: `${s.key}=${s.value}`, message: errorMessage(e) });
    }
  }
}
