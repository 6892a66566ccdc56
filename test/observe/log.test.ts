// The logger's streams: one (stderr) by default; with a split stream, as component-base's text and
// json loggers route them (logs/api/v1 text.go, logs/json), info and warnings to one writer and
// errors to the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/observe/log.js';

const at = () => new Date('2026-01-02T03:04:05.000Z');

test('one stream: every level to the same writer', () => {
  const lines: string[] = [];
  const log = createLogger('text', (l) => void lines.push(l), at);
  log.info('a');
  log.warn('b');
  log.error('c', { k: 'v' });
  assert.deepEqual(lines, ['2026-01-02T03:04:05.000Z INFO  a\n', '2026-01-02T03:04:05.000Z WARN  b\n', '2026-01-02T03:04:05.000Z ERROR c k=v\n']);
});

test('split streams: info and warnings to the info writer, errors to the error writer, in both formats', () => {
  for (const format of ['text', 'json'] as const) {
    const info: string[] = [];
    const errors: string[] = [];
    const log = createLogger(format, (l) => void info.push(l), at, (l) => void errors.push(l));
    log.info('a');
    log.warn('b');
    log.error('c');
    assert.equal(info.length, 2, format);
    assert.equal(errors.length, 1, format);
    assert.match(errors[0] ?? '', /c/);
  }
});
