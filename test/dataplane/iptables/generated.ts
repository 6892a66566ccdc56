// Generated iptables-restore payloads for the fake-versus-real contract: sequences of tables whose
// lines mix what kube-proxy writes with the mistakes near it (bad options, values, addresses,
// targets in the wrong table or hook, missing chains and sets, loops). Most parts are valid, so
// state builds up and later lines meet chains, rules and references made by earlier ones.
import fc from 'fast-check';
import type { IpFamily } from '../../../src/model/types.js';
import { BUILTIN_CHAINS, renderIptablesSave, type IptablesTables } from '../../../src/model/text/iptables.js';

export const GENERATED_TABLES = ['filter', 'nat', 'mangle', 'raw'] as const;
const USER_CHAINS = ['KUBE-A', 'KUBE-B', 'KUBE-C'];
export const MISSING_SET = 'KUBE-NO-SUCH-SET';

/** The sets the harness creates for each family (hash:ip and hash:ip,port, of the family). */
export function generatedSets(family: IpFamily): { readonly name: string; readonly type: 'hash:ip' | 'hash:ip,port' }[] {
  const p = family === 'IPv4' ? 'KUBE-GEN' : 'KUBE-GEN6';
  return [
    { name: `${p}-IP`, type: 'hash:ip' },
    { name: `${p}-IPPORT`, type: 'hash:ip,port' },
  ];
}

/** Valid parts weigh 9, broken ones 1. */
function pool(valid: readonly string[], broken: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 9 }, { arbitrary: fc.constantFrom(...broken), weight: 1 });
}

function parts(family: IpFamily) {
  const v4 = family === 'IPv4';
  const [ipSet, portSet] = generatedSets(family).map((s) => s.name);
  const addr = pool(
    v4 ? ['10.0.0.0/8', '10.1.2.3/24', '10.0.0.1', '127.0.0.0/8', '10.0.0.1,10.0.0.2', '10.1.2.3/255.255.0.0', '10.1.2.3/255.0.255.0', '0.0.0.0/0'] : ['fd00::/64', 'fd00::1', '::1/128', 'fd00::1,fd00::2', 'fd00::5/ffff::', '::/0'],
    v4 ? ['10.0.0.0/33', '999.1.1.1', 'fd00::1'] : ['fd00::1/129', '10.0.0.1', 'fd00::zz'],
  );
  const head = fc.oneof(
    addr.map((a) => `-s ${a}`),
    addr.map((a) => `! -s ${a}`),
    addr.map((a) => `-d ${a}`),
    pool(['-i eth0', '-i eth+', '-o eth1', '-p tcp', '-p udp', '-p sctp', '-p 6', '! -p tcp', '-p all'], ['-i abcdefghijklmnop', '-p bogus', '-p 300', '-s', '! ! -p tcp']),
  );
  const vip = v4 ? '10.96.0.1' : 'fd00::1';
  const match = pool(
    [
      '-m comment --comment "kube comment"',
      '-m mark --mark 0x4000/0x4000',
      '-m mark ! --mark 0x4000/0x4000',
      `-m set --match-set ${ipSet} dst`,
      `-m set ! --match-set ${ipSet} src`,
      `-m set --match-set ${portSet} dst,dst`,
      '-m conntrack --ctstate NEW',
      '-m conntrack --ctstate established,RELATED',
      '-m addrtype --dst-type LOCAL',
      '-m addrtype ! --src-type local',
      '-m addrtype --dst-type LOCAL,UNICAST',
      '-m addrtype --dst-type LOCAL --limit-iface-in',
      '-m addrtype --src-type LOCAL --limit-iface-out',
      '-m physdev ! --physdev-is-in',
      '-p tcp --dport 80',
      '-p udp --sport 1:1024',
      '-p tcp -m tcp --dport 80',
      '-p udp -m udp --dport 53',
      '-p tcp -m multiport --dports 80,443',
      `-m ipvs --vaddr ${vip} --vport 80`,
    ],
    [
      '-m comment',
      '-m comment --comment a --comment b',
      '-m mark',
      '-m mark --mark bogus',
      '-m mark --mark 0x100000000',
      `-m set --match-set ${MISSING_SET} dst`,
      `-m set --match-set ${ipSet} bogus`,
      `-m set --match-set ${ipSet} src,dst,src,dst,src,dst,src`,
      '-m set',
      '-m conntrack --ctstate BOGUS',
      '-m conntrack',
      '-m addrtype --src-type BOGUS',
      '-m addrtype',
      '-m physdev',
      '--dport 70000',
      '--dport 80',
      '-m tcp --dport 80',
      '-m multiport --dports 80,443',
      '-m bogus',
      '--bogus',
      'stray',
    ],
  );
  const other = v4 ? '10.0.0.9' : 'fd00::9';
  // Targets each table accepts; the others' targets are among the broken parts.
  const byTable: Readonly<Record<string, readonly string[]>> = {
    filter: ['-j ACCEPT', '-j DROP', '-j REJECT', `-j REJECT --reject-with ${v4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`, '-p tcp -j REJECT --reject-with tcp-reset', '-j LOG --log-prefix kube'],
    nat: ['-j ACCEPT', '-j MASQUERADE', '-j MASQUERADE --random-fully', `-j DNAT --to-destination ${other}`, `-j SNAT --to-source ${other}`],
    mangle: ['-j ACCEPT', '-j DROP', '-j MARK --xor-mark 0x4000'],
    raw: ['-j ACCEPT', '-j DROP', '-j CT --notrack'],
  };
  const common = ['-j RETURN', '-j MARK --set-xmark 0x4000/0x4000', '-j MARK --or-mark 0x4000', '-j KUBE-A', '-j KUBE-B', '-j KUBE-C', '-g KUBE-C'];
  const broken = [
    '-j MARK',
    '-j MARK --or-mark 0x4000/0x4000',
    '-j MARK --set-mark 1 --or-mark 2',
    '-j MASQUERADE --to-ports 80',
    '-j SNAT',
    `-j REJECT --reject-with ${v4 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'}`,
    '-j REJECT --reject-with bogus',
    '-j REJECT --reject-with tcp-reset',
    '-j KUBE-NOPE',
    '-j INPUT',
    '-j OUTPUT',
    '-g PREROUTING',
    '-j ACCEPT --bogus',
    '-j ACCEPT -j DROP',
    '! -j ACCEPT',
    '-j',
    '-j ACCEPT extra',
  ];
  const target = (table: string): fc.Arbitrary<string> =>
    pool([...common, ...(byTable[table] ?? [])], [...broken, ...Object.entries(byTable).filter(([t]) => t !== table).flatMap(([, list]) => list)]);
  return { head, match, target };
}

function ruleArb(family: IpFamily, table: string): fc.Arbitrary<string> {
  const { head, match, target } = parts(family);
  return fc
    .tuple(fc.array(head, { maxLength: 1 }), fc.array(match, { maxLength: 2 }), fc.option(target(table), { freq: 6, nil: undefined }))
    .map(([h, m, t]) => [...h, ...m, ...(t === undefined ? [] : [t])].join(' '));
}

function chainArb(table: string): fc.Arbitrary<string> {
  return pool([...USER_CHAINS, ...(BUILTIN_CHAINS[table] ?? [])], ['KUBE-NOPE']);
}

function lineArb(table: string, family: IpFamily): fc.Arbitrary<string> {
  const chain = chainArb(table);
  const rule = ruleArb(family, table);
  const policy = pool(['-', 'ACCEPT', 'DROP'], ['RETURN', 'BOGUS']);
  const index = pool(['1', '2'], ['0', '5']);
  return fc.oneof(
    { arbitrary: fc.tuple(pool([...USER_CHAINS, ...(BUILTIN_CHAINS[table] ?? [])], ['DROP', '-bad', 'KUBE-ABCDEFGHIJKLMNOPQRSTUVWX']), policy).map(([c, p]) => `:${c} ${p} [0:0]`), weight: 2 },
    { arbitrary: fc.tuple(chain, rule).map(([c, r]) => `-A ${c} ${r}`.trimEnd()), weight: 8 },
    { arbitrary: fc.tuple(chain, fc.option(index, { nil: undefined }), rule).map(([c, i, r]) => [`-I ${c}`, i, r].filter((x) => x !== undefined && x !== '').join(' ')), weight: 2 },
    { arbitrary: fc.tuple(chain, fc.oneof(rule, index)).map(([c, r]) => `-D ${c} ${r}`.trimEnd()), weight: 2 },
    { arbitrary: fc.tuple(fc.constantFrom('-F', '-N'), fc.option(chain, { freq: 5, nil: undefined })).map(([op, c]) => (c === undefined ? op : `${op} ${c}`)), weight: 2 },
    // Not -X of a built-in chain: iptables-nft deletes an empty base chain the kernel has and
    // refuses one it has not created yet, which depends on history no save output shows.
    { arbitrary: fc.option(pool(USER_CHAINS, ['KUBE-NOPE']), { freq: 5, nil: undefined }).map((c) => (c === undefined ? '-X' : `-X ${c}`)), weight: 1 },
    { arbitrary: fc.tuple(chain, policy).map(([c, p]) => `-P ${c} ${p}`), weight: 1 },
    // No -Z: iptables-nft 1.8.9 puts back the old policy of a chain whose policy the same batch set.
  );
}

function tableArb(family: IpFamily): fc.Arbitrary<string[]> {
  return fc
    .constantFrom(...GENERATED_TABLES, 'filter', 'nat')
    .chain((table) => fc.tuple(fc.constant(table), fc.array(lineArb(table, family), { minLength: 1, maxLength: 3 })))
    .map(([table, lines]) => [`*${table}`, ...lines, 'COMMIT']);
}

/** 1-4 payloads of 1-2 tables (of 1-3 lines) each. */
export function payloadsArb(family: IpFamily): fc.Arbitrary<string[]> {
  return fc.array(
    fc.oneof({ arbitrary: tableArb(family).map((t) => [t]), weight: 3 }, { arbitrary: fc.tuple(tableArb(family), tableArb(family)), weight: 1 }).map((tables) => tables.flat().map((l) => `${l}\n`).join('')),
    { minLength: 1, maxLength: 4 },
  );
}

/** A start every run shares: the user chains exist in filter and nat. */
export const GENERATED_BASE = ['filter', 'nat']
  .map((t) => [`*${t}`, ...USER_CHAINS.map((c) => `:${c} - [0:0]`), 'COMMIT'])
  .flat()
  .map((l) => `${l}\n`)
  .join('');

/** The generated tables as iptables-save prints them; a table never touched reads as its empty built-ins. */
export function generatedState(tables: IptablesTables): string {
  const out: IptablesTables = new Map();
  for (const name of GENERATED_TABLES) {
    out.set(name, tables.get(name) ?? { chains: new Map((BUILTIN_CHAINS[name] ?? []).map((c) => [c, { policy: 'ACCEPT' }])), rules: [] });
  }
  return renderIptablesSave(out);
}

/** A payload that empties the generated tables (for iptables-restore without --noflush). */
export const RESET_PAYLOAD = GENERATED_TABLES.map((t) => [`*${t}`, ...(BUILTIN_CHAINS[t] ?? []).map((c) => `:${c} ACCEPT [0:0]`), 'COMMIT'])
  .flat()
  .map((l) => `${l}\n`)
  .join('');
