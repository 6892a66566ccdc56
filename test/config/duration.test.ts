import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration, parseDurationNs } from '../../src/config/duration.js';

test('parseDuration accepts Go durations', () => {
  const table: ReadonlyArray<readonly [string, number]> = [
    ['0', 0],
    ['-0', 0],
    ['+0', 0],
    ['0s', 0],
    ['30s', 30_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['2h22m', 2 * 3_600_000 + 22 * 60_000],
    ['24h0m0s', 86_400_000],
    ['15m0s', 900_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['1.s', 1_000],
    ['1.5h', 5_400_000],
    ['100us', 0.1],
    ['100µs', 0.1],
    ['100μs', 0.1],
    ['1000000ns', 1],
    ['1h1h', 7_200_000],
    ['-1s', -1_000],
    ['+2s', 2_000],
    ['-1m30s', -90_000],
    ['007s', 7_000],
  ];
  for (const [text, ms] of table) {
    assert.equal(parseDuration(text), ms, text);
  }
});

test('parseDuration rejects garbage', () => {
  for (const text of [
    '', ' ', '10', '1', '-', '+', 's', '.s', '10x', '1 s', ' 1s', '1s ', '5sec', '1M', '1H', '1d', 'one',
    '1e3s', '1..5s', '1.5.s', '--1s', '1s-2s', 'ms', '1h 30m', '1,5s', 'NaN', 'Infinity',
  ]) {
    assert.equal(parseDuration(text), undefined, JSON.stringify(text));
  }
});

test('parseDuration truncates below a nanosecond and keeps exact sums', () => {
  assert.equal(parseDurationNs('1.0000000009s'), 1_000_000_000n);
  assert.equal(parseDurationNs('1h0.000000001s'), 3_600_000_000_001n);
  assert.equal(parseDurationNs('1.5ns'), 1n);
});

test('parseDuration rejects values beyond int64 nanoseconds, like Go', () => {
  assert.equal(parseDurationNs('2562047h'), 2_562_047n * 3_600_000_000_000n);
  assert.equal(parseDuration('2562048h'), undefined);
  assert.equal(parseDuration('9223372036854775807ns'), Number(9223372036854775807n) / 1e6);
  assert.equal(parseDuration('9223372036854775808ns'), undefined);
  assert.equal(parseDurationNs('-9223372036854775808ns'), -9223372036854775808n);
});

test('formatDuration prints like Go Duration.String()', () => {
  const table: ReadonlyArray<readonly [number, string]> = [
    [0, '0s'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [900_000, '15m0s'],
    [3_600_000, '1h0m0s'],
    [86_400_000, '24h0m0s'],
    [1_500, '1.5s'],
    [500, '500ms'],
    [0.1, '100µs'],
    [0.0015, '1.5µs'],
    [0.000001, '1ns'],
    [-1_000, '-1s'],
    [3_723_500, '1h2m3.5s'],
  ];
  for (const [ms, text] of table) {
    assert.equal(formatDuration(ms), text, String(ms));
  }
});

test('formatDuration output parses back to the same value', () => {
  for (const ms of [0, 1, 999, 1_000, 61_000, 3_599_999, 86_400_000, 0.25, 12_345.678]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
});
