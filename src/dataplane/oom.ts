// The daemon's OOM score adjustment (--oom-score-adj, oomScoreAdj): kube-proxy writes it to its
// own /proc entry so that under memory pressure the kernel kills workloads before the proxy.
import { writeFile } from 'node:fs/promises';

export const OOM_SCORE_ADJ_PATH = '/proc/self/oom_score_adj';

/** Writes `value`; rejects with the system error (e.g. EACCES without CAP_SYS_RESOURCE). */
export async function applyOomScoreAdj(value: number, path = OOM_SCORE_ADJ_PATH): Promise<void> {
  await writeFile(path, `${value}\n`);
}
