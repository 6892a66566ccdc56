// The iptables backend on a real host: iptables-save to observe, one iptables-restore --noflush
// per sync to change (ip6tables-* for IPv6). Commands are argument arrays, never shell strings, so
// tests can prefix them (`ip netns exec NAME`) without quoting problems.
import type { IpFamily } from '../../model/types.js';
import { DataplaneError, type DataplaneErrorCode } from '../errors.js';
import { isTextParseError } from '../../model/text/error.js';
import type { IptablesBackend } from './backend.js';
import { parseIptablesSave, splitRuleSpec, type IptablesTables } from '../../model/text/iptables.js';
import { errorMessage } from '../../model/error-text.js';
import type { RulesetGeneration } from './nft-generation.js';
import { runCommand, SpawnFailure, type RunResult } from '../command.js';

export interface IptablesCommands {
  /** argv of iptables-save, e.g. ['iptables-save'] or ['ip', 'netns', 'exec', 'ns1', 'iptables-save']. */
  readonly save: readonly string[];
  /** argv of iptables-restore; the restore flags are appended. */
  readonly restore: readonly string[];
}

export interface RealIptablesOptions {
  readonly family: IpFamily;
  readonly command?: IptablesCommands;
  /** Per-invocation limit; a hung tool must not stall the sync loop forever. */
  readonly timeoutMs?: number;
  /** nf_tables' ruleset generation of this namespace; used only when the build is iptables-nft. */
  readonly generation?: RulesetGeneration;
}

export function defaultIptablesCommands(family: IpFamily): IptablesCommands {
  const tool = family === 'IPv4' ? 'iptables' : 'ip6tables';
  return { save: [`${tool}-save`], restore: [`${tool}-restore`] };
}

/**
 * --noflush: only the chains the payload declares are flushed. --counters: keep the [p:b] of the
 * input (all zero) rather than failing on them. -w 5: wait up to 5 s for the xtables lock held by
 * another writer (kubelet, CNI); iptables 1.8 restore accepts it in both legacy and nft builds.
 */
const RESTORE_FLAGS: readonly string[] = ['--noflush', '--counters', '-w', '5'];

const INSTALL_HINT = 'install it (apt-get install iptables)';

// ---------------------------------------------------------------------------------------------
// Reading iptables-restore's stderr

export interface RestoreFailure {
  readonly code: DataplaneErrorCode;
  /** 1-based line of the payload the tool blamed, when it said. */
  readonly line: number | undefined;
  /** The tool's own words, one line. */
  readonly reason: string;
}

/** Where each iptables 1.8 build puts the line number, most specific first. */
const LINE_PATTERNS: readonly RegExp[] = [
  /line (\d+) failed/, // iptables-restore: line 3 failed[: reason]  (legacy, and nft per-command errors)
  /^line (\d+): /m, // nft batch errors: "line 3: RULE_APPEND failed (Invalid argument): rule in chain X"
  /Error occurred at line: (\d+)/, // parse-time errors of both builds
  /COMMIT expected at line (\d+)/,
  /line (\d+) table name/,
];

/** Classes of failure by the tool's wording; the first match wins, so order matters. */
const CODE_PATTERNS: readonly (readonly [RegExp, DataplaneErrorCode])[] = [
  [/Permission denied|you must be root|Operation not permitted/, 'PERMISSION'],
  [/exec of .* failed: No such file or directory/, 'UNAVAILABLE'], // binary missing behind `ip netns exec`
  [/Extension \S+ revision \d+ not supported|Couldn't load match|Couldn't find match/, 'UNAVAILABLE'],
  // A jump to a missing chain: legacy tries to load it as a target extension, nft looks it up.
  [/Couldn't load target|Chain '[^']*' does not exist|No chain\/target\/match by that name/, 'NOT_FOUND'],
  [/Set \S+ doesn't exist/, 'NOT_FOUND'],
  [/does a matching rule exist|Index of deletion too big/, 'NOT_FOUND'],
  // nf_tables refuses a jump loop with ELOOP/EMLINK on the rule: a bad rule, not a busy chain.
  [/RULE_\w+ failed \((?:Too many links|Too many levels of symbolic links)\)/, 'INVALID'],
  [/Device or resource busy|Directory not empty|Too many links/, 'IN_USE'],
  [/Chain already exists|File exists/, 'EXISTS'],
  // nf_tables: a rule naming something the kernel does not have (a jump to a built-in chain from a user chain).
  [/RULE_\w+ failed \(No such file or directory\)/, 'NOT_FOUND'],
  [
    /Bad argument|unknown option|COMMIT expected|invalid|too long|Bad policy|Invalid argument|Operation not supported|Index of insertion too big|not applicable|Unknown arg|Bad built-in chain name|parameter problem/i,
    'INVALID',
  ],
];

/** The most telling line of stderr: skip usage boilerplate and bare "line N" pointers. */
function reasonOf(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Try `') && !/^Error occurred at line: \d+$/.test(l))
    .map((l) => l.replace(/^ip6?tables(?:-legacy|-nft)?-restore(?: v[\d.]+ \([^)]*\))?:\s*/, ''))
    .filter((l) => l !== '');
  const best = lines.find((l) => !l.startsWith('Warning:')) ?? lines[0];
  return best ?? 'failed without a message';
}

/** Classifies iptables-restore's stderr (legacy and nf_tables builds of 1.8). */
export function parseRestoreError(stderr: string): RestoreFailure {
  let line: number | undefined;
  for (const p of LINE_PATTERNS) {
    const m = p.exec(stderr);
    if (m) {
      line = Number(m[1]);
      break;
    }
  }
  // The first error line decides the class (a batch may fail on several lines, and warnings
  // come first); a missing module shows only in the warning before the kernel's ENOENT.
  const reason = reasonOf(stderr);
  const missingModule = /Extension \S+ revision \d+ not supported/.test(stderr) && /failed \(No such file or directory\)/.test(reason);
  const byWords = (text: string): DataplaneErrorCode | undefined => CODE_PATTERNS.find(([p]) => p.test(text))?.[1];
  const code: DataplaneErrorCode = missingModule
    ? 'UNAVAILABLE'
    : (byWords(reason) ??
      // iptables-restore ends every argument it cannot parse with "Error occurred at line: N".
      (/Error occurred at line: \d+/.test(stderr) ? 'INVALID' : undefined) ??
      byWords(stderr) ??
      'FAILED');
  return { code, line, reason };
}

/** The chain or set the error names, to find the rule that used it. */
function namedObject(stderr: string): string | undefined {
  const m =
    /Chain '([^']+)' does not exist/.exec(stderr) ??
    /Couldn't load target `([^']+)'/.exec(stderr) ??
    /Set (\S+) doesn't exist/.exec(stderr) ??
    /The protocol family of set (\S+) is/.exec(stderr);
  return m?.[1];
}

/**
 * iptables-nft checks jump targets when it builds the table's batch, and blames the COMMIT line.
 * Point at the rule that names the missing chain or set instead, as the legacy build does.
 */
function blamedLine(lines: readonly string[], reported: number | undefined, name: string | undefined): number | undefined {
  if (reported === undefined || name === undefined) return reported;
  // Only a jump, a goto or a --match-set names the missing object; "-N NAME" does not.
  const mentions = (i: number): boolean => {
    const text = lines[i - 1];
    if (text === undefined || !text.startsWith('-')) return false;
    try {
      const args = splitRuleSpec(text);
      return args.some((a, k) => a === name && ['-j', '--jump', '-g', '--goto', '--match-set'].includes(args[k - 1] ?? ''));
    } catch {
      return false;
    }
  };
  if (mentions(reported)) return reported;
  // The first rule of the table that names it is the one the lookup failed on.
  let start = Math.min(reported, lines.length);
  while (start > 1 && !lines[start - 1]?.startsWith('*')) start--;
  for (let i = start; i <= Math.min(reported, lines.length); i++) if (mentions(i)) return i;
  return reported;
}

/** "nat KUBE-SERVICES": the table open at `line` and the chain its command names. */
function objectAt(lines: readonly string[], line: number | undefined): string {
  if (line === undefined) return 'payload';
  let table = '';
  for (let i = line; i >= 1; i--) {
    const l = lines[i - 1] ?? '';
    if (l.startsWith('*')) {
      table = l.slice(1).trim();
      break;
    }
  }
  const text = lines[line - 1] ?? '';
  const chain = /^(?::(\S+)|-[A-Za-z]\s+(\S+)|--[a-z-]+\s+(\S+))/.exec(text);
  const name = chain?.[1] ?? chain?.[2] ?? chain?.[3];
  return [table, name].filter((s) => s !== undefined && s !== '').join(' ') || 'payload';
}

/** The DataplaneError for a failed iptables-restore of `payload`. */
export function restoreError(stderr: string, payload: string): DataplaneError {
  const parsed = parseRestoreError(stderr);
  const lines = payload.split('\n');
  const line = blamedLine(lines, parsed.line, namedObject(stderr));
  const quoted = line !== undefined && lines[line - 1] !== undefined ? `: ${JSON.stringify(lines[line - 1])}` : '';
  const where = line !== undefined ? ` at line ${line}${quoted}` : '';
  return new DataplaneError(parsed.code, 'iptables', 'restore', objectAt(lines, line), `${parsed.reason}${where}`, line);
}

function spawnError(e: unknown, argv: readonly string[], op: string): DataplaneError {
  const tool = argv.join(' ');
  if (e instanceof SpawnFailure && e.errno === 'ENOENT') {
    return new DataplaneError('UNAVAILABLE', 'iptables', op, tool, `${argv[0] ?? ''} not found; ${INSTALL_HINT}`);
  }
  if (e instanceof SpawnFailure && e.errno === 'EACCES') {
    return new DataplaneError('PERMISSION', 'iptables', op, tool, `${argv[0] ?? ''} cannot be run: permission denied; check that it is executable`);
  }
  return new DataplaneError('FAILED', 'iptables', op, tool, errorMessage(e));
}

/** iptables ≥ 1.6.2 knows MASQUERADE --random-fully. */
export function versionSupportsRandomFully(versionText: string): boolean | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 1) return major > 1;
  if (minor !== 6) return minor > 6;
  return patch >= 2;
}

/** `iptables --version` of the same build: "…/iptables-nft-save" → "…/iptables-nft". */
function versionCommand(save: readonly string[]): string[] {
  const last = save[save.length - 1] ?? '';
  if (last.endsWith('-save')) return [...save.slice(0, -1), last.slice(0, -'-save'.length), '--version'];
  return [...save, '--version'];
}

export class RealIptables implements IptablesBackend {
  readonly family: IpFamily;
  private readonly command: IptablesCommands;
  private readonly timeoutMs: number;
  private readonly nftGeneration: RulesetGeneration | undefined;
  /** `iptables --version` of this build, once read. */
  private version: string | undefined;
  /**
   * The last save, parsed, and the ruleset generation read just before it (nf_tables builds
   * only): while the generation stays there, nothing was committed since and the save would print
   * the same. Callers only read what observe() returns.
   */
  private lastSave: { readonly generation: number; readonly tables: IptablesTables } | undefined;

  constructor(options: RealIptablesOptions) {
    this.family = options.family;
    this.command = options.command ?? defaultIptablesCommands(options.family);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.nftGeneration = options.generation;
  }

  /** The build's version line ("iptables v1.8.9 (nf_tables)"); undefined when it cannot be read. */
  private async versionText(): Promise<string | undefined> {
    if (this.version !== undefined) return this.version;
    try {
      const r = await runCommand(versionCommand(this.command.save), undefined, this.timeoutMs);
      const text = r.stdout + r.stderr;
      // Only a version we could read is kept: a transient failure must not stick.
      if (/v\d+\.\d+\.\d+/.test(text)) this.version = text;
      return text;
    } catch {
      return undefined;
    }
  }

  async generation(): Promise<number | undefined> {
    if (!this.nftGeneration) return undefined;
    // A legacy build writes no nf_tables transaction: its rules change without the generation.
    const version = await this.versionText();
    if (version === undefined || !/\(nf_tables\)/.test(version)) return undefined;
    return this.nftGeneration.read();
  }

  async observe(): Promise<IptablesTables> {
    // Read before the save: a commit racing the save moves it, and the next observe saves again.
    // So the save made while the dataplane opened serves the first sync's API-server pass, a spawn
    // fewer before default/kubernetes answers.
    const generation = await this.generation().catch(() => undefined);
    const last = this.lastSave;
    if (generation !== undefined && last?.generation === generation) return last.tables;
    this.lastSave = undefined;
    const tables = await this.save();
    if (generation !== undefined) this.lastSave = { generation, tables };
    return tables;
  }

  private async save(): Promise<IptablesTables> {
    const argv = this.command.save;
    let r: RunResult;
    try {
      r = await runCommand(argv, undefined, this.timeoutMs);
    } catch (e) {
      throw spawnError(e, argv, 'observe');
    }
    if (r.status !== 0) {
      const parsed = parseRestoreError(r.stderr);
      const code = parsed.code === 'PERMISSION' || parsed.code === 'UNAVAILABLE' ? parsed.code : 'FAILED';
      throw new DataplaneError(code, 'iptables', 'observe', argv.join(' '), `exit ${String(r.status)}: ${parsed.reason}`);
    }
    try {
      return parseIptablesSave(r.stdout);
    } catch (e) {
      if (isTextParseError(e)) throw new DataplaneError('PARSE', 'iptables', 'observe', argv.join(' '), e.message, e.line);
      throw e;
    }
  }

  async restore(payload: string): Promise<void> {
    this.lastSave = undefined;
    const argv = [...this.command.restore, ...RESTORE_FLAGS];
    let r: RunResult;
    try {
      r = await runCommand(argv, payload, this.timeoutMs);
    } catch (e) {
      throw spawnError(e, argv, 'restore');
    }
    if (r.status !== 0) throw restoreError(r.stderr, payload);
  }

  async supportsRandomFully(): Promise<boolean> {
    const version = await this.versionText();
    return (version === undefined ? undefined : versionSupportsRandomFully(version)) ?? false;
  }
}
