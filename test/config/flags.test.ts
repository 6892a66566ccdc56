import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFlagHelp, parseBool, parseFlags, splitList, type FlagSpec } from '../../src/config/flags.js';
import { ConfigError } from '../../src/config/errors.js';

const SPECS: readonly FlagSpec[] = [
  { name: 'name', kind: 'string', help: 'a string' },
  { name: 'on', kind: 'bool', help: 'a bool' },
  { name: 'cidrs', kind: 'list', help: 'a list' },
  { name: 'file', kind: 'repeatable', help: 'a repeatable' },
  { name: 'v', short: 'v', kind: 'string', help: 'verbosity' },
  { name: 'help', short: 'h', kind: 'bool', help: 'help' },
];

function throwsConfigError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    for (const p of parts) assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} lacks ${p}`);
    return true;
  });
}

test('string flags: --name=value and --name value; the last one wins', () => {
  assert.equal(parseFlags(['--name=a'], SPECS).values.get('name'), 'a');
  assert.equal(parseFlags(['--name', 'b'], SPECS).values.get('name'), 'b');
  assert.equal(parseFlags(['--name=a', '--name', 'c'], SPECS).values.get('name'), 'c');
  assert.equal(parseFlags(['--name='], SPECS).values.get('name'), '');
  assert.equal(parseFlags(['--name=a=b'], SPECS).values.get('name'), 'a=b');
  // A single-dash value is a value (e.g. a negative duration).
  assert.equal(parseFlags(['--name', '-1s'], SPECS).values.get('name'), '-1s');
});

test('bool flags: bare, =true, =false and the strconv.ParseBool spellings', () => {
  assert.equal(parseFlags(['--on'], SPECS).values.get('on'), true);
  assert.equal(parseFlags(['--on=true'], SPECS).values.get('on'), true);
  assert.equal(parseFlags(['--on=false'], SPECS).values.get('on'), false);
  assert.equal(parseFlags(['--on=1'], SPECS).values.get('on'), true);
  assert.equal(parseFlags(['--on=F'], SPECS).values.get('on'), false);
  // "--on false" is not a value: false stays positional, as in pflag.
  const p = parseFlags(['--on', 'false'], SPECS);
  assert.equal(p.values.get('on'), true);
  assert.deepEqual(p.positional, ['false']);
  throwsConfigError(() => parseFlags(['--on=yes'], SPECS), '--on', '"yes"', 'true or false');
  assert.equal(parseBool('True'), true);
  assert.equal(parseBool('nope'), undefined);
});

test('list flags split on commas and append when repeated', () => {
  assert.deepEqual(parseFlags(['--cidrs=a,b', '--cidrs', 'c'], SPECS).values.get('cidrs'), ['a', 'b', 'c']);
  assert.deepEqual(parseFlags(['--cidrs='], SPECS).values.get('cidrs'), []);
  assert.deepEqual(parseFlags(['--cidrs= a , ,b'], SPECS).values.get('cidrs'), ['a', 'b']);
  assert.deepEqual(splitList(''), []);
});

test('repeatable flags keep one value per occurrence, commas included', () => {
  assert.deepEqual(parseFlags(['--file', 'a,b', '--file=c'], SPECS).values.get('file'), ['a,b', 'c']);
});

test('absent flags are absent', () => {
  const p = parseFlags([], SPECS);
  assert.equal(p.values.size, 0);
  assert.deepEqual(p.positional, []);
});

test('shorthands: -v=3, -v 3, -v3, -h', () => {
  assert.equal(parseFlags(['-v=3'], SPECS).values.get('v'), '3');
  assert.equal(parseFlags(['-v', '4'], SPECS).values.get('v'), '4');
  assert.equal(parseFlags(['-v5'], SPECS).values.get('v'), '5');
  assert.equal(parseFlags(['--v=6'], SPECS).values.get('v'), '6');
  assert.equal(parseFlags(['-h'], SPECS).values.get('help'), true);
  throwsConfigError(() => parseFlags(['-x'], SPECS), 'unknown flag -x');
});

test('positional arguments interleave with flags; -- ends flags; - is positional', () => {
  const p = parseFlags(['a', '--on', 'b', '--name', 'n', '-', '--', '--name=x', '-h'], SPECS);
  assert.deepEqual(p.positional, ['a', 'b', '-', '--name=x', '-h']);
  assert.equal(p.values.get('name'), 'n');
  assert.equal(p.values.has('help'), false);
});

test('unknown flags are errors naming the flag', () => {
  throwsConfigError(() => parseFlags(['--nope'], SPECS), 'unknown flag --nope');
  throwsConfigError(() => parseFlags(['--nope=1'], SPECS), 'unknown flag --nope');
  // Single-dash long names are not long flags.
  throwsConfigError(() => parseFlags(['-name=x'], SPECS), 'unknown flag -n');
});

test('a value flag without a value is an error', () => {
  throwsConfigError(() => parseFlags(['--name'], SPECS), '--name', 'needs a value');
  throwsConfigError(() => parseFlags(['--name', '--on'], SPECS), '--name', 'needs a value');
  throwsConfigError(() => parseFlags(['-v'], SPECS), '-v', 'needs a value');
});

test('duplicate definitions are programming errors', () => {
  assert.throws(
    () => parseFlags([], [...SPECS, { name: 'on', kind: 'bool', help: '' }]),
    (e: unknown) => e instanceof Error && !(e instanceof ConfigError) && /--on/.test(e.message),
  );
  assert.throws(() => parseFlags([], [...SPECS, { name: 'verbose', short: 'v', kind: 'bool', help: '' }]), /-v/);
});

test('formatFlagHelp lists names, value placeholders, help and defaults', () => {
  const text = formatFlagHelp([
    { name: 'sync', kind: 'string', valueName: 'duration', default: '30s', help: 'Sync period.' },
    { name: 'addr', kind: 'string', default: '0.0.0.0', help: 'Address.' },
    { name: 'zero', kind: 'string', valueName: 'duration', default: '0s', help: 'Zero.' },
    { name: 'on', kind: 'bool', help: 'Switch.', deprecated: 'use --off' },
    { name: 'v', short: 'v', kind: 'string', valueName: 'level', help: 'Verbosity.' },
    { name: 'l', kind: 'list', default: ['a', 'b'], help: 'List.' },
  ]);
  const lines = text.split('\n');
  assert.equal(lines.length, 6);
  assert.match(lines[0] ?? '', /^ {6}--sync duration +Sync period\. \(default 30s\)$/);
  assert.match(lines[1] ?? '', /--addr string +Address\. \(default "0\.0\.0\.0"\)$/);
  assert.match(lines[2] ?? '', /Zero\.$/);
  assert.match(lines[3] ?? '', /--on +Switch\. \(DEPRECATED: use --off\)$/);
  assert.match(lines[4] ?? '', /^ {2}-v, --v level +Verbosity\.$/);
  assert.match(lines[5] ?? '', /--l strings +List\. \(default \[a,b\]\)$/);
  // Help texts start in one column.
  const helps = ['Sync period.', 'Address.', 'Zero.', 'Switch.', 'Verbosity.', 'List.'];
  const cols = lines.map((l, i) => l.indexOf(helps[i] ?? '?'));
  assert.ok(cols.every((c) => c > 0));
  assert.equal(new Set(cols).size, 1);
});
