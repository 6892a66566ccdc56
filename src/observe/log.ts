// Log lines on stderr: readable text by default, one JSON object per line with --logging-format
// json. With a split stream (--log-text-split-stream, --log-json-split-stream) info and warning
// lines go to stdout and errors to stderr, as klog's split output routes them.
import type { LogFormat, LoggingConfig } from '../config/types.js';

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

function quoteValue(v: string): string {
  return /^[\w./:@,[\]+-]*$/.test(v) && v !== '' ? v : JSON.stringify(v);
}

export function createLogger(
  format: LogFormat,
  write: (line: string) => void = (l) => void process.stderr.write(l),
  now: () => Date = () => new Date(),
  writeError: (line: string) => void = write,
): Logger {
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    const out = level === 'error' ? writeError : write;
    const defined = Object.entries(fields).filter(([, v]) => v !== undefined) as Array<[string, string | number | boolean]>;
    if (format === 'json') {
      out(`${JSON.stringify({ ts: now().toISOString(), level, msg, ...Object.fromEntries(defined) })}\n`);
      return;
    }
    const kv = defined.map(([k, v]) => `${k}=${quoteValue(String(v))}`).join(' ');
    out(`${now().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ` ${kv}` : ''}\n`);
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** The process's logger for a logging configuration (stderr, or stdout and stderr when split). */
export function processLogger(logging: LoggingConfig): Logger {
  const stderr = (l: string): void => void process.stderr.write(l);
  if (!logging.splitStream) return createLogger(logging.format, stderr);
  return createLogger(logging.format, (l) => void process.stdout.write(l), undefined, stderr);
}
