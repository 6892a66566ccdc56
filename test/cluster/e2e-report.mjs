#!/usr/bin/env node
// Compares two runs of upstream's e2e selection (test/cluster/e2e.sh --suite), one per service
// proxy, from the JUnit reports the e2e framework writes (junit_01.xml), as a Markdown table:
//
//   node test/cluster/e2e-report.mjs REFERENCE_NAME=JUNIT_XML[,JUNIT_XML...] CANDIDATE_NAME=JUNIT_XML[,...] [FOCUS_REGEX]
//
// One row per spec whose name matches FOCUS_REGEX (default: the suite's focus): its state and
// duration under each proxy; the runtime skip message when a spec skipped itself (e.g. "requires
// at least two ready nodes"); rows where the two differ are marked. Then the counts per proxy.
// Several reports for one proxy are read in order, a later one's result replacing an earlier one's
// for each spec it ran (e.g. an interrupted run continued by a focused one); each cell names the
// report (#1, #2, ...) its result comes from. A report may also be an earlier output of this
// script (a FILE.md holding its table, e.g. the checked-in docs/e2e-report.md), whose JUnit files
// were not kept: the column headed NAME is read back cell by cell, keeping each cell's #N, and the
// JUnit files after it are numbered on from its highest #N.
import { readFileSync } from 'node:fs';

const usage = 'usage: e2e-report.mjs NAME=JUNIT_XML[,JUNIT_XML...] NAME=JUNIT_XML[,...] [FOCUS_REGEX]';
const [refArg, candArg, focusArg] = process.argv.slice(2);
if (!refArg?.includes('=') || !candArg?.includes('=')) {
  console.error(usage);
  process.exit(2);
}
const focus = new RegExp(focusArg ?? '\\[sig-network\\] (Services|Networking) ');

const entities = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescape = (s) =>
  s.replace(/&(#x?[0-9a-fA-F]+|amp|lt|gt|quot|apos);/g, (_, e) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16))
      : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1)))
        : entities[e]);
const attr = (tag, name) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? unescape(m[1]) : undefined;
};

/** name -> { state, seconds, why, report } for every spec of the reports that matches the focus. */
function readRun(arg) {
  const at = arg.indexOf('=');
  const name = arg.slice(0, at);
  const files = arg.slice(at + 1).split(',');
  const specs = new Map();
  const labels = [];
  let last = 0;
  for (const file of files) {
    if (file.endsWith('.md')) {
      last = Math.max(last, readTable(file, name, specs));
      labels.push(last > 1 ? `#1 to #${last}` : `#${last}`);
    } else {
      readReport(file, ++last, specs);
      labels.push(`#${last}`);
    }
  }
  return { name, files, labels, specs };
}

/** Reads column NAME of an earlier table of this script into specs; returns the highest #N in it. */
function readTable(file, name, specs) {
  const rows = readFileSync(file, 'utf8').split('\n');
  // Cells are split on ' | ': an escaped '\|' in a name or message has no space before its '|'.
  const cells = (row) => row.slice(2, -2).split(' | ').map((c) => c.replace(/\\\|/g, '|'));
  const header = rows.findIndex((r) => r.startsWith('| test |') && cells(r).includes(name));
  if (header < 0) throw new Error(`${file}: no results table with a column ${name}`);
  const col = cells(rows[header]).indexOf(name);
  let highest = 0;
  for (const row of rows.slice(header + 2)) {
    if (!row.startsWith('|')) break; // the table's end
    const c = cells(row);
    const full = c[0].replace(/^\*\*≠\*\* /, '');
    if (!focus.test(full)) continue;
    const cell = c[col];
    const verdict = /^(\w+) \((\d+) s, #(\d+)\)$/.exec(cell);
    if (verdict) {
      const report = Number(verdict[3]);
      highest = Math.max(highest, report);
      specs.set(full, { state: verdict[1], seconds: Number(verdict[2]), why: '', report });
    } else if (cell.startsWith('skipped: ')) {
      specs.set(full, { state: 'skipped', seconds: 0, why: cell.slice('skipped: '.length), report: 0 });
    } else if (cell === 'not run') {
      if (!specs.has(full)) specs.set(full, { state: 'skipped', seconds: 0, why: '', report: 0 });
    } else {
      throw new Error(`${file}: ${name} of ${full}: cannot read "${cell}"`);
    }
  }
  return highest;
}

function readReport(file, report, specs) {
  const xml = readFileSync(file, 'utf8');
  let matched = 0;
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const tag = m[1];
    const body = m[3] ?? '';
    const full = (attr(tag, 'name') ?? '').replace(/^\[It\] /, '');
    if (!focus.test(full)) continue;
    const status = attr(tag, 'status') ?? (/<failure\b/.test(body) ? 'failed' : /<skipped\b/.test(body) ? 'skipped' : 'passed');
    const skipped = /<skipped\b([^>]*)/.exec(body);
    let why = skipped ? attr(skipped[1], 'message') ?? '' : '';
    // Specs left out by --focus/--skip carry no message; a spec that skipped itself says why.
    why = why.replace(/^skipped - /, '').replace(/^skipped$/, '').split('\n')[0].trim();
    matched++;
    // A spec this report did not run leaves an earlier report's result in place.
    if (status === 'skipped' && !why && specs.has(full)) continue;
    specs.set(full, { state: status, seconds: Number(attr(tag, 'time') ?? 0), why, report });
  }
  if (matched === 0) throw new Error(`${file}: no spec matches ${focus} (is it the e2e framework's junit_01.xml?)`);
}

const runs = [readRun(refArg), readRun(candArg)];
const cell = (spec) => {
  if (!spec) return 'not in report';
  const dur = `${Math.round(spec.seconds)} s`;
  if (spec.state === 'skipped') return spec.why ? `skipped: ${spec.why.replace(/\|/g, '\\|')}` : 'not run';
  return `${spec.state} (${dur}, #${spec.report})`;
};
const names = [...new Set(runs.flatMap((r) => [...r.specs.keys()]))].sort();
const out = [];
out.push(`| test | ${runs[0].name} | ${runs[1].name} |`, '|---|---|---|');
for (const n of names) {
  const [a, b] = runs.map((r) => r.specs.get(n));
  // Marked only where both proxies reached a verdict and the verdicts differ.
  const verdict = (x) => (x?.state === 'passed' || x?.state === 'failed' ? x.state : undefined);
  const differs = verdict(a) !== undefined && verdict(b) !== undefined && verdict(a) !== verdict(b);
  out.push(`| ${differs ? '**≠** ' : ''}${n.replace(/\|/g, '\\|')} | ${cell(a)} | ${cell(b)} |`);
}
out.push('');
for (const r of runs) r.files.forEach((f, i) => out.push(`- ${r.name} ${r.labels[i]}: ${f}`));
out.push('');
for (const r of runs) {
  const count = (pred) => [...r.specs.values()].filter(pred).length;
  const secs = [...r.specs.values()].reduce((s, x) => s + (x.state === 'skipped' ? 0 : x.seconds), 0);
  out.push(
    `- ${r.name}: ${count((s) => s.state === 'passed')} passed, ` +
      `${count((s) => s.state === 'failed')} failed, ` +
      `${count((s) => s.state !== 'passed' && s.state !== 'failed' && s.state !== 'skipped')} interrupted, ` +
      `${count((s) => s.state === 'skipped' && s.why)} skipped themselves at run time, ` +
      `${count((s) => s.state === 'skipped' && !s.why)} not run; ` +
      `${Math.round(secs)} s of spec time`,
  );
}
console.log(out.join('\n'));
