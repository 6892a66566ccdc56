// What every command does with the kube-proxy process flags before its own work: --version and
// --write-config-to end it, and the configuration's warnings are logged once.
import { writeFileSync } from 'node:fs';
import type { LoadResult, LoadWarning } from '../config/load.js';
import { formatKubeProxyConfiguration } from '../config/kubeproxyconfig.js';
import { fileErrorText } from '../model/error-text.js';
import type { Logger } from '../observe/log.js';
import { rawVersion, versionLine } from '../version.js';

export interface ProcessIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

export function logLoadWarnings(loaded: LoadResult, log: Logger): void {
  for (const w of loaded.warnings) log.warn(w.message, w.fields);
}

/** One line for commands that print warnings rather than log them. */
export function formatLoadWarning(w: LoadWarning): string {
  const fields = Object.entries(w.fields).map(([k, v]) => `${k}: ${v}`);
  return fields.length > 0 ? `${w.message} (${fields.join('; ')})` : w.message;
}

/**
 * --version prints and ends the command (0); --write-config-to writes the effective configuration
 * and ends it (0, or 1 when the file cannot be written), as kube-proxy does. Undefined: go on.
 */
export function runProcessFlags(loaded: LoadResult, io: ProcessIo, log: Logger): number | undefined {
  if (loaded.printVersion !== undefined) {
    io.out(`${loaded.printVersion === 'raw' ? rawVersion() : versionLine()}\n`);
    return 0;
  }
  const file = loaded.writeConfigTo;
  if (file === undefined) return undefined;
  for (const [address, what] of [[loaded.config.healthzBindAddress, 'healthzBindAddress'], [loaded.config.metricsBindAddress, 'metricsBindAddress']] as const) {
    // A KubeProxyConfiguration has no way to say "disabled": "" there means the default address.
    if (address === '') log.warn(`${what} is empty (server disabled); in a KubeProxyConfiguration "" means the default address, so a kube-proxy reading the file serves it`, { file });
  }
  try {
    writeFileSync(file, formatKubeProxyConfiguration(loaded.settings));
  } catch (e) {
    log.error(`cannot write --write-config-to file ${file}: ${fileErrorText(e, 'write')}`);
    return 1;
  }
  log.info('Wrote configuration', { file });
  return 0;
}
