// Log lines on stderr: readable text by default, one JSON object per line with --logging-format
// json. With a split stream (--log-text-split-stream, --log-json-split-stream) info and warning
// lines go to stdout and errors to stderr, as klog's split output routes them. Every message and
// field passes through a redaction, so no credential is ever written.
import type { LogFormat, LoggingConfig } from '../config/types.js';
import { redactPatterns } from './redact.js';

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
  /** Masks credentials (a Redactor's redact knows the kubeconfig's secrets too). */
  redact: (text: string) => string = redactPatterns,
): Logger {
  const emit = (level: LogLevel, rawMsg: string, fields: LogFields = {}): void => {
    const out = level === 'error' ? writeError : write;
    const msg = redact(rawMsg);
    const defined = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, typeof v === 'string' ? redact(v) : v]) as Array<[string, string | number | boolean]>;
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
export function processLogger(logging: LoggingConfig, redact: (text: string) => string = redactPatterns): Logger {
  const stderr = (l: string): void => void process.stderr.write(l);
  if (!logging.splitStream) return createLogger(logging.format, stderr, undefined, stderr, redact);
  return createLogger(logging.format, (l) => void process.stdout.write(l), undefined, stderr, redact);
}
