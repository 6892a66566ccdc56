import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IpsetSpec, IpsetState } from '../../../src/model/kernel.js';
import type { IpsetType } from '../../../src/model/names.js';
import {
  bitmapPortEntry,
  ipEntry,
  ipPortEntry,
  ipPortIpEntry,
  ipPortNetEntry,
  normalizeIpsetEntry,
  parseIpsetSave,
  parseIpsetSaveDetailed,
  renderIpsetSave,
  sameIpsetSpec,
  sortIpsetEntries,
} from '../../../src/model/text/ipset.js';
import { TextParseError } from '../../../src/model/text/error.js';
import { fixture, hostToolsUnavailable, inNetns } from './helpers.js';

function hashSpec(name: string, type: IpsetType, family: 'inet' | 'inet6' = 'inet'): IpsetSpec {
  return { name, type, family, hashSize: 1024, maxElem: 65536, range: '0-65535' };
}

function set(spec: IpsetSpec, ...entries: string[]): IpsetState {
  return { spec, entries: new Set(entries) };
}

test('entry helpers produce the text ipset prints', () => {
  assert.equal(ipEntry('10.96.0.10'), '10.96.0.10');
  assert.equal(ipEntry('FD00:0::A'), 'fd00::a');
  assert.equal(ipPortEntry('10.96.0.10', 'TCP', 53), '10.96.0.10,tcp:53');
  assert.equal(ipPortEntry('fd00::a', 'UDP', 53), 'fd00::a,udp:53');
  assert.equal(ipPortEntry('10.96.0.2', 'SCTP', 5000), '10.96.0.2,sctp:5000');
  assert.equal(ipPortIpEntry('10.244.1.2', 'TCP', 8080, '10.244.1.2'), '10.244.1.2,tcp:8080,10.244.1.2');
  assert.equal(ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.1.1.1/32'), '1.2.3.4,tcp:80,10.1.1.1');
  assert.equal(ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.1.1.1'), '1.2.3.4,tcp:80,10.1.1.1');
  assert.equal(ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.2.3.4/8'), '1.2.3.4,tcp:80,10.0.0.0/8');
  assert.equal(ipPortNetEntry('fd00::1', 'TCP', 80, 'fd00:1::1/128'), 'fd00::1,tcp:80,fd00:1::1');
  assert.equal(ipPortNetEntry('fd00::1', 'TCP', 80, 'fd00:1::/64'), 'fd00::1,tcp:80,fd00:1::/64');
  assert.equal(bitmapPortEntry(30080), '30080');
  assert.throws(() => ipPortEntry('10.0.0.300', 'TCP', 1), /invalid IP/);
  assert.throws(() => bitmapPortEntry(65536), /invalid port/);
  assert.throws(() => ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.0.0.0/0'), /invalid net/);
});

const NORMALIZE: readonly [IpsetType, string, string | undefined][] = [
  ['hash:ip', '10.1.1.1/32', '10.1.1.1'],
  ['hash:ip', 'FE80::1', 'fe80::1'],
  ['hash:ip', '::ffff:1.2.3.4', '::ffff:1.2.3.4'],
  ['hash:ip', '10.0.0.0/31', undefined],
  ['hash:ip', '0.0.0.0', undefined],
  ['hash:ip,port', '10.96.0.10,TCP:53', '10.96.0.10,tcp:53'],
  ['hash:ip,port', '10.96.0.3,80', '10.96.0.3,tcp:80'],
  ['hash:ip,port', '10.1.1.1/32,udplite:7', '10.1.1.1,udplite:7'],
  ['hash:ip,port', 'FD00::A,tcp:53', 'fd00::a,tcp:53'],
  ['hash:ip,port', '10.96.0.5,tcp:http', undefined],
  ['hash:ip,port', '10.96.0.5,tcp:65536', undefined],
  ['hash:ip,port', '10.96.0.5,icmp:ping', undefined],
  ['hash:ip,port', '10.96.0.5,tcp:80-81', undefined],
  ['hash:ip,port', '10.96.0.5', undefined],
  ['hash:ip,port,ip', '1.1.1.2/32,tcp:1,2.2.2.2', '1.1.1.2,tcp:1,2.2.2.2'],
  ['hash:ip,port,ip', '1.1.1.1,tcp:1,2.2.2.2/32', undefined],
  ['hash:ip,port,ip', '1.1.1.1,tcp:1,fd00::1', undefined],
  ['hash:ip,port,net', '1.2.3.4,tcp:80,10.1.1.1/32', '1.2.3.4,tcp:80,10.1.1.1'],
  ['hash:ip,port,net', '1.2.3.4,tcp:80,10.2.3.4/8', '1.2.3.4,tcp:80,10.0.0.0/8'],
  ['hash:ip,port,net', '2001:db8:0:0:1:0:0:1,tcp:1,2001:DB8::1/127', '2001:db8::1:0:0:1,tcp:1,2001:db8::/127'],
  ['hash:ip,port,net', '1.2.3.4,tcp:80,0.0.0.0/0', undefined],
  ['hash:ip,port,net', '1.2.3.4,tcp:80,10.0.0.0/33', undefined],
  ['bitmap:port', '30080', '30080'],
  ['bitmap:port', 'tcp:5', '5'],
  ['bitmap:port', '65536', undefined],
  ['bitmap:port', '0x10', undefined],
];

test('normalizeIpsetEntry gives the printed form or undefined', () => {
  for (const [type, input, want] of NORMALIZE) {
    assert.equal(normalizeIpsetEntry(type, input), want, `${type} ${input}`);
  }
  assert.equal(normalizeIpsetEntry('hash:ip', '10.0.0.1', 'inet6'), undefined);
  assert.equal(normalizeIpsetEntry('hash:ip', 'fd00::1', 'inet6'), 'fd00::1');
});

test('entries sort numerically by address, port, protocol, net', () => {
  assert.deepEqual(sortIpsetEntries(['10.96.0.10,tcp:53', '10.96.0.9,tcp:80', '10.96.0.10,tcp:443', '10.96.0.10,udp:53', '10.96.0.9,tcp:9']), [
    '10.96.0.9,tcp:9',
    '10.96.0.9,tcp:80',
    '10.96.0.10,tcp:53',
    '10.96.0.10,udp:53',
    '10.96.0.10,tcp:443',
  ]);
  assert.deepEqual(sortIpsetEntries(['30080', '80', '9']), ['9', '80', '30080']);
  assert.deepEqual(sortIpsetEntries(['1.2.3.4,tcp:80,10.1.0.0/16', '1.2.3.4,tcp:80,10.0.0.0/8', '1.2.3.4,tcp:80,10.1.1.1']), [
    '1.2.3.4,tcp:80,10.0.0.0/8',
    '1.2.3.4,tcp:80,10.1.0.0/16',
    '1.2.3.4,tcp:80,10.1.1.1',
  ]);
});

test('renders ipset save text: sets by name, headers as kube-proxy creates them', () => {
  const text = renderIpsetSave([
    set(hashSpec('KUBE-NODE-PORT-TCP', 'bitmap:port'), '30080', '9'),
    set(hashSpec('KUBE-CLUSTER-IP', 'hash:ip,port'), '10.96.0.10,udp:53', '10.96.0.1,tcp:443'),
    set(hashSpec('KUBE-6-IPVS-IPS', 'hash:ip', 'inet6')),
  ]);
  assert.equal(
    text,
    [
      'create KUBE-6-IPVS-IPS hash:ip family inet6 hashsize 1024 maxelem 65536',
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
      'add KUBE-CLUSTER-IP 10.96.0.1,tcp:443',
      'add KUBE-CLUSTER-IP 10.96.0.10,udp:53',
      'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
      'add KUBE-NODE-PORT-TCP 9',
      'add KUBE-NODE-PORT-TCP 30080',
      '',
    ].join('\n'),
  );
  assert.equal(renderIpsetSave([]), '');
});

test('parses real ipset v7.17 save output', () => {
  const { sets, skipped } = parseIpsetSaveDetailed(fixture('ipset-save-v7.17.txt'));
  assert.deepEqual(skipped.map((s) => [s.name, s.type]), [['FOREIGN-NETS', 'hash:net']]);
  const byName = new Map(sets.map((s) => [s.spec.name, s]));
  assert.deepEqual(byName.get('KUBE-CLUSTER-IP')?.spec, hashSpec('KUBE-CLUSTER-IP', 'hash:ip,port'));
  assert.deepEqual(sortIpsetEntries(byName.get('KUBE-CLUSTER-IP')?.entries ?? []), [
    '10.96.0.1,tcp:443',
    '10.96.0.2,sctp:5000',
    '10.96.0.9,tcp:9153',
    '10.96.0.10,tcp:53',
    '10.96.0.10,udp:53',
  ]);
  assert.deepEqual([...(byName.get('KUBE-LOAD-BALANCER-SOURCE-CIDR')?.entries ?? [])].sort(), [
    '192.0.2.10,tcp:80,10.0.0.0/8',
    '192.0.2.10,tcp:80,10.1.0.0/16',
    '192.0.2.10,tcp:80,10.1.1.1',
  ]);
  assert.equal(byName.get('KUBE-6-CLUSTER-IP')?.spec.family, 'inet6');
  assert.ok(byName.get('KUBE-6-LOAD-BALANCER-SOURCE-CID')?.entries.has('fd00::1,tcp:80,fd00:1::1'));
  assert.deepEqual([...(byName.get('OPTS')?.entries ?? [])], ['10.1.1.1,tcp:80', '10.1.1.2,tcp:80']);
  assert.deepEqual([...(byName.get('OPTS-BITMAP')?.entries ?? [])], ['65535']);
  assert.equal(byName.get('KUBE-HEALTH-CHECK-NODE-PORT')?.entries.size, 0);
  assert.equal(byName.get('KUBE-NODE-PORT-TCP')?.spec.range, '0-65535');
});

test('round trip: parse real output → render → parse → render is stable', () => {
  const once = renderIpsetSave(parseIpsetSave(fixture('ipset-save-v7.17.txt')));
  const parsed = parseIpsetSave(once);
  assert.equal(renderIpsetSave(parsed), once);
  const original = new Map(parseIpsetSave(fixture('ipset-save-v7.17.txt')).map((s) => [s.spec.name, s]));
  for (const s of parsed) {
    const o = original.get(s.spec.name);
    assert.ok(o && sameIpsetSpec(o.spec, s.spec), s.spec.name);
    assert.deepEqual([...s.entries].sort(), [...(o?.entries ?? [])].sort());
  }
});

test('accepts -exist and restore-style lines; rejects malformed ones naming the line', () => {
  const sets = parseIpsetSave('-exist create A hash:ip family inet\nadd -exist A 10.0.0.1\n');
  assert.deepEqual([...(sets[0]?.entries ?? [])], ['10.0.0.1']);
  const bad: readonly [string, RegExp][] = [
    ['add A 10.0.0.300', /invalid hash:ip entry/],
    ['add B 10.0.0.1', /not created before/],
    ['add A fd00::1', /invalid hash:ip entry/],
    ['create A hash:ip', /created twice/],
    ['create C hash:ip family inet hashsize', /needs a value/],
    ['create C hash:ip family ipx', /invalid family/],
    ['create C hash:ip bogus 1', /unknown create option/],
    ['create C bitmap:port', /needs "range FROM-TO"/],
    ['add A 10.0.0.2 comment "open', /unterminated quote/],
    ['add A 10.0.0.2 colour red', /unknown entry option/],
    ['flush A', /unsupported command/],
    ['create', /set name/],
  ];
  for (const [line, reason] of bad) {
    assert.throws(
      () => parseIpsetSave(`create A hash:ip family inet hashsize 1024 maxelem 65536\n${line}\n`),
      (e: unknown) => e instanceof TextParseError && e.line === 2 && e.text === line && reason.test(e.message) && e.message.includes('line 2'),
      line,
    );
  }
});

test('our rendered text is accepted by the real ipset and saved back the same', (t) => {
  const why = hostToolsUnavailable(['ipset']);
  if (why) {
    t.skip(why);
    return;
  }
  const desired = [
    set(hashSpec('KUBE-CLUSTER-IP', 'hash:ip,port'), ipPortEntry('10.96.0.10', 'TCP', 53), ipPortEntry('10.96.0.9', 'SCTP', 5000)),
    set(hashSpec('KUBE-LOOP-BACK', 'hash:ip,port,ip'), ipPortIpEntry('10.244.1.2', 'UDP', 53, '10.244.1.2')),
    set(hashSpec('KUBE-6-LOAD-BALANCER-SOURCE-CID', 'hash:ip,port,net', 'inet6'), ipPortNetEntry('fd00::1', 'TCP', 80, 'fd00:1::5/128'), ipPortNetEntry('fd00::1', 'TCP', 80, 'fd00:2::/48')),
    set(hashSpec('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net'), ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.1.1.1/32'), ipPortNetEntry('1.2.3.4', 'TCP', 80, '10.1.0.0/16')),
    set(hashSpec('KUBE-NODE-PORT-TCP', 'bitmap:port'), bitmapPortEntry(30080), bitmapPortEntry(8)),
    set(hashSpec('KUBE-6-IPVS-IPS', 'hash:ip', 'inet6'), ipEntry('fd00::10'), ipEntry('::ffff:10.0.0.1')),
  ];
  const text = renderIpsetSave(desired);
  const r = inNetns('ipset restore && ipset save', text);
  assert.ok(r.ok, r.stderr);
  assert.equal(renderIpsetSave(parseIpsetSave(r.stdout)), text);
});
