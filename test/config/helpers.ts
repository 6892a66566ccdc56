// Shared assertions for the config tests.
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';

/** Asserts fn throws a one-line ConfigError whose message contains every part. */
export function throwsConfigError(fn: () => unknown, ...parts: string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.ok(!caught.message.includes('\n'), `message is not one line: ${caught.message}`);
  for (const p of parts) {
    assert.ok(caught.message.includes(p), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
  }
  return caught;
}
