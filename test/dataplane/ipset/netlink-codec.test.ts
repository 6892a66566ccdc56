// Byte-exact checks of the ipset netlink codec. Request bytes are the ones kernel 6.18 accepted
// (the netlink contract runs them); reply fixtures were captured from it (`ipset restore` of the
// sets below, then IPSET_CMD_SAVE / PROTOCOL / TYPE / HEADER over netlink). Little-endian host
// assumed for the host-order fields (nlmsghdr, nla_len/nla_type, LINENO).
import { strict as assert } from 'node:assert';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';
import { DataplaneError } from '../../../src/dataplane/errors.js';
import type { IpsetElement } from '../../../src/dataplane/ipset/netlink-codec.js';
import {
  IpsetCmd,
  collectIpsetDump,
  decodeHeaderReply,
  decodeListMessage,
  decodeProtocolReply,
  decodeTypeReply,
  elementText,
  encodeAdt,
  encodeAttr,
  encodeCreate,
  encodeElement,
  encodeFlush,
  encodeNlMessage,
  encodeSave,
  entryElement,
  ipsetMsgType,
  parseIpsetNlError,
  parseNlMessages,
} from '../../../src/dataplane/ipset/netlink-codec.js';
import { ipsetErrnoInfo } from '../../../src/dataplane/ipset/netlink-errors.js';
import { normalizeIpsetEntry, renderIpsetSave } from '../../../src/model/text/ipset.js';
import type { IpsetType } from '../../../src/model/names.js';
import { spec } from './contract.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Captured from kernel 6.18 after:
//   create A hash:ip,port family inet hashsize 1024 maxelem 65536 / add A 10.96.0.10,tcp:53
//   create B bitmap:port range 30000-32767 / add B 30080
//   create C hash:ip,port,net family inet6 hashsize 64 maxelem 10 comment / add C fd00::1,tcp:80,fd00:1::/64 comment "hi"
//   create E hash:ip family inet timeout 100 counters / add E 10.1.1.1 timeout 50
//   create F hash:ip,port,net family inet / add F 1.2.3.4,udp:80,10.0.0.0/8 nomatch
//   create G hash:net family inet / add G 10.0.0.0/8
const DUMP = [
  '020000000500010007000000060002004100000011000300686173683a69702c706f7274000000000500050002000000050004000700000006000b40000000003c00078008001240000004000800134000010000050015000c0000000800114071d579df080019400000000008001a4000000108080018400000000124000880200007800c000180080001000a60000a06000440003500000500070006000000',
  '0200000005000100070000000600020042000000100003006269746d61703a706f7274000500050000000000050004000300000006000b40000100002c0007800600044075300000060005407fff0000080019400000000008001a40000001a80800184000000001100008800c0007800600044075800000',
  '020000000500010007000000060002004300000015000300686173683a69702c706f72742c6e657400000000050005000a000000050004000800000006000b4000020000440007800800124000000040080013400000000a050015000c00000008001140058dd884080019400000000008001a400000057b0800184000000001080008400000001058000880540007801800018014000200fd0000000000000000000000000000011800148014000200fd00000100000000000000000000000006000440005000000500150040000000050007000600000007001a0068690000',
  '02000000050001000700000006000200450000000c000300686173683a6970000500050002000000050004000600000006000b40000300004c00078008001240000004000800134000010000050015000c00000008001140fba0c58b080019400000000008001a400000013808001840000000010800064000000064080008400000000834000880300007800c000180080001000a01010108000640000000310c00184000000000000000000c0019400000000000000000',
  '020000000500010007000000060002004600000015000300686173683a69702c706f72742c6e6574000000000500050002000000050004000800000006000b40000400003c00078008001240000004000800134000010000050015000c00000008001140b1e9e2ce080019400000000008001a40000002080800184000000001400008803c0007800c00018008000100010203040c001480080001000a0000000600044000500000050015000800000005000700110000000800084000000004',
  '02000000050001000700000006000200470000000d000300686173683a6e6574000000000500050002000000050004000700000006000b40000500003c00078008001240000004000800134000010000050015000c000000080011408f1aa4cc080019400000000008001a40000001f808001840000000011c000880180007800c000180080001000a0000000500030008000000',
].map(h);

describe('ipset netlink codec', { skip: endianness() !== 'LE' ? 'byte expectations assume a little-endian host' : false }, () => {
  it('pads attributes to 4 bytes, nla_len excludes the padding, and refuses > u16 lengths', () => {
    assert.equal(hex(encodeAttr(2, Buffer.from('A\0'))), '06000200' + '41000000');
    assert.throws(() => encodeAttr(8, Buffer.alloc(65532)), DataplaneError);
  });

  it('encodes CREATE of a hash set: PROTOCOL first, NESTED data, big-endian sizes with NET_BYTEORDER', () => {
    const got = encodeCreate(7, spec('KUBE-CLUSTER-IP', 'hash:ip,port'), 7);
    const want =
      '02000000' + // nfgenmsg: NFPROTO_IPV4, v0, res_id 0
      '05000100 07000000' + // PROTOCOL 7
      '14000200 4b5542452d434c55535445522d495000' + // SETNAME "KUBE-CLUSTER-IP\0"
      '11000300 686173683a69702c706f727400 000000' + // TYPENAME "hash:ip,port\0" + pad
      '05000400 07000000' + // REVISION 7
      '05000500 02000000' + // FAMILY inet
      '14000780' + // DATA | NLA_F_NESTED
      '08001240 00000400' + // HASHSIZE 1024 | NET_BYTEORDER
      '08001340 00010000'; // MAXELEM 65536 | NET_BYTEORDER
    assert.equal(hex(got), want.replace(/\s+/g, ''));
  });

  it('encodes CREATE of bitmap:port with family UNSPEC and the range ordered', () => {
    const got = encodeCreate(7, spec('NP', 'bitmap:port', { range: '32767-30000' }), 3);
    const want =
      '00000000' +
      '05000100 07000000' +
      '07000200 4e500000' + // SETNAME "NP\0"
      '10000300 6269746d61703a706f727400' + // TYPENAME "bitmap:port\0"
      '05000400 03000000' +
      '05000500 00000000' + // FAMILY unspec
      '14000780 06000440 75300000 06000540 7fff0000'; // DATA { PORT 30000, PORT_TO 32767 }
    assert.equal(hex(got), want.replace(/\s+/g, ''));
  });

  it('encodes elements: nested IPs with NET_BYTEORDER (IPv6 too), no PROTO for bitmap:port, LINENO host order', () => {
    const el = (type: IpsetType, entry: string, family: 'inet' | 'inet6', n: number): string => {
      const parsed = entryElement(type, entry, family);
      assert.ok(parsed, entry);
      return hex(encodeElement(type, parsed.element, n));
    };
    const bytes = (s: string): string => s.replace(/\s+/g, '');
    assert.equal(
      el('hash:ip,port', '10.96.0.10,TCP:53', 'inet', 1),
      bytes('28000780' + '0c000180 08000140 0a60000a' + '06000440 00350000' + '05000700 06000000' + '08000900 01000000'),
    );
    assert.equal(
      el('hash:ip,port,net', 'fd00::1,udp:80,fd00:1::5/64', 'inet6', 2),
      bytes(
        '54000780' +
          '18000180 14000240 fd000000000000000000000000000001' + // IP { IPV6 | NET_BYTEORDER }
          '06000440 00500000' + // PORT 80
          '05000700 11000000' + // PROTO udp
          '18001480 14000240 fd000001000000000000000000000000' + // IP2, host bits cleared
          '05001500 40000000' + // CIDR2 64
          '08000900 02000000', // LINENO 2
      ),
    );
    assert.equal(el('bitmap:port', 'tcp:30080', 'inet', 3), bytes('14000780' + '06000440 75800000' + '08000900 03000000'));
  });

  it('encodes a bulk DEL with ADT and a command-level LINENO 0', () => {
    const got = encodeAdt(7, IpsetCmd.DEL, 'NP', [encodeElement('bitmap:port', { port: 80 }, 1)]);
    assert.equal(hex(got), '00000000' + '0500010007000000' + '070002004e500000' + '0800090000000000' + '18000880' + '14000780 06000440 00500000 08000900 01000000'.replace(/\s+/g, ''));
  });

  it('frames messages (type = IPSET subsystem << 8 | cmd, padded) and parses them back', () => {
    const m = encodeNlMessage({ type: ipsetMsgType(IpsetCmd.FLUSH), flags: 5, seq: 0x01020304, pid: 0x99, payload: encodeFlush(7, 'AB') });
    assert.equal(hex(m), '24000000' + '0406' + '0500' + '04030201' + '99000000' + '00000000' + '0500010007000000' + '0700020041420000');
    const [back] = parseNlMessages(Buffer.concat([m, m]));
    assert.deepEqual({ ...back, payload: hex(back?.payload ?? Buffer.alloc(0)) }, { type: 0x604, flags: 5, seq: 0x01020304, pid: 0x99, payload: hex(encodeFlush(7, 'AB')) });
    assert.throws(() => parseNlMessages(h('ff000000 0406 0500 00000000 00000000')), DataplaneError);
  });

  it('never encodes a FLUSH, DESTROY or SAVE-of-one without a valid name (no name means every set)', () => {
    assert.throws(() => encodeFlush(7, ''), DataplaneError);
    assert.throws(() => encodeFlush(7, 'K'.repeat(32)), DataplaneError);
    assert.equal(hex(encodeSave(7, 'A')), '00000000' + '0500010007000000' + '0600020041000000');
    assert.equal(hex(encodeSave(7)), '00000000' + '0500010007000000');
  });

  it('decodes PROTOCOL, TYPE and HEADER replies', () => {
    assert.deepEqual(decodeProtocolReply(h('02000000 0500010007000000 05000a0006000000')), { protocol: 7, protocolMin: 6 });
    // A kernel before protocol 7 sends no PROTOCOL_MIN.
    assert.deepEqual(decodeProtocolReply(h('02000000 0500010006000000')), { protocol: 6, protocolMin: 6 });
    assert.deepEqual(decodeTypeReply(h('02000000 0500010007000000 11000300686173683a69702c706f7274000000000500050002000000 0500040007000000 05000a0000000000')), {
      typeName: 'hash:ip,port',
      family: 2,
      revision: 7,
      revisionMin: 0,
    });
    assert.deepEqual(decodeHeaderReply(h('02000000 0500010007000000 0600020041000000 11000300686173683a69702c706f727400000000 0500050002000000 0500040007000000')), {
      name: 'A',
      typeName: 'hash:ip,port',
      family: 2,
      revision: 7,
    });
  });

  it('decodes a SAVE dump: headers with their flags, elements with extensions, unknown types skipped', () => {
    const msgs = DUMP.map(decodeListMessage);
    assert.deepEqual(
      msgs.map((m) => [m.name, m.header?.typeName, m.header?.revision]),
      [
        ['A', 'hash:ip,port', 7],
        ['B', 'bitmap:port', 3],
        ['C', 'hash:ip,port,net', 8],
        ['E', 'hash:ip', 6],
        ['F', 'hash:ip,port,net', 8],
        ['G', 'hash:net', 7],
      ],
    );
    const c = msgs[2]?.header;
    assert.deepEqual([c?.family, c?.hashSize, c?.maxElem, c?.comment, c?.counters, c?.elements], [10, 64, 10, true, false, 1]);
    const e = msgs[3]?.header;
    assert.deepEqual([e?.timeout, e?.counters, e?.comment], [100, true, false]);
    assert.deepEqual(msgs[1]?.header && [msgs[1].header.portFrom, msgs[1].header.portTo, msgs[1].header.family], [30000, 32767, 0]);
    assert.deepEqual(msgs[2]?.elements, [{ ip: 'fd00::1', proto: 6, port: 80, ip2: 'fd00:1::', cidr2: 64, comment: 'hi' }]);
    assert.equal(msgs[3]?.elements[0]?.timeout, 49);
    assert.deepEqual(msgs[4]?.elements, [{ ip: '1.2.3.4', proto: 17, port: 80, ip2: '10.0.0.0', cidr2: 8, nomatch: true }]);

    const { sets, skipped } = collectIpsetDump(msgs);
    assert.deepEqual(skipped, [{ name: 'G', type: 'hash:net' }]);
    // What `ipset save` printed, through the text model (extensions and unknown types dropped).
    assert.equal(
      renderIpsetSave(sets),
      [
        'create A hash:ip,port family inet hashsize 1024 maxelem 65536',
        'add A 10.96.0.10,tcp:53',
        'create B bitmap:port range 30000-32767',
        'add B 30080',
        'create C hash:ip,port,net family inet6 hashsize 64 maxelem 10',
        'add C fd00::1,tcp:80,fd00:1::/64',
        'create E hash:ip family inet hashsize 1024 maxelem 65536',
        'add E 10.1.1.1',
        'create F hash:ip,port,net family inet hashsize 1024 maxelem 65536',
        'add F 1.2.3.4,udp:80,10.0.0.0/8',
        '',
      ].join('\n'),
    );
  });

  it('refuses (PARSE) elements the model cannot hold, and elements before their header', () => {
    const icmp = decodeListMessage(DUMP[0] as Buffer);
    const bad = { ...icmp, elements: [{ ip: '1.1.1.1', proto: 1, port: 0x0800 }] };
    assert.throws(() => collectIpsetDump([bad]), (e: unknown) => e instanceof DataplaneError && e.code === 'PARSE' && /A/.test(e.object));
    assert.throws(() => collectIpsetDump([{ name: 'X', elements: [] }]), (e: unknown) => e instanceof DataplaneError && e.code === 'PARSE');
  });

  it('reads the failed element of a bulk request from the LINENO the kernel rewrote', () => {
    // ADD A { 5.5.5.1 (line 1), 0.0.0.0 (line 2) }: EINVAL, and the copy's LINENO now says 2.
    const lineErr = h(
      'eaffffff 80000000 0906 0500 69000000 00000000 02000000 0500010007000000 0600020041000000 0800090002000000 54000880' +
        '280007800c0001800800014005050501060004400050000005000700060000000800090001000000' +
        '280007800c0001800800014000000000060004400050000005000700060000000800090002000000',
    );
    assert.deepEqual(parseIpsetNlError(lineErr), { errno: 22, lineno: 2 });
    // A plain error (the set is missing) carries our request back unchanged and no LINENO.
    const notFound = h('feffffff 50000000 0906 0500 6a000000 00000000 02000000 0500010007000000 090002004e4f504500000000 280007800c0001800800014005050501060004400050000005000700060000000800090000000000');
    assert.deepEqual(parseIpsetNlError(notFound), { errno: 2 });
    assert.deepEqual(parseIpsetNlError(h('00000000 14000000 0906 0001 01000000 00000000')), { errno: 0 });
  });

  it('maps errnos as ipset words them, type-specific codes by set type', () => {
    assert.deepEqual(ipsetErrnoInfo(4352, { op: 'add', type: 'hash:ip' }), { code: 'FAILED', reason: 'Hash is full, cannot add more elements' });
    assert.deepEqual(ipsetErrnoInfo(4352, { op: 'add', type: 'bitmap:port' }), { code: 'INVALID', reason: 'Element is out of the range of the set' });
    assert.equal(ipsetErrnoInfo(17, { op: 'create' }).code, 'EXISTS');
    assert.equal(ipsetErrnoInfo(2, { op: 'add' }).code, 'NOT_FOUND');
    assert.equal(ipsetErrnoInfo(4100, { op: 'destroy' }).code, 'IN_USE');
    assert.equal(ipsetErrnoInfo(4098, { op: 'create' }).code, 'UNAVAILABLE');
    assert.equal(ipsetErrnoInfo(1, { op: 'add' }).code, 'PERMISSION');
    assert.equal(ipsetErrnoInfo(4103, { op: 'del' }).code, 'NOT_FOUND');
    assert.equal(ipsetErrnoInfo(9999, { op: 'add' }).code, 'FAILED');
  });
});

describe('ipset entry text <-> element', () => {
  const cases: [IpsetType, 'inet' | 'inet6', string, string, IpsetElement][] = [
    ['hash:ip', 'inet', '10.96.0.10/32', '10.96.0.10', { ip: '10.96.0.10' }],
    ['hash:ip,port', 'inet', '10.96.0.10,TCP:53', '10.96.0.10,tcp:53', { ip: '10.96.0.10', proto: 6, port: 53 }],
    ['hash:ip,port', 'inet', '10.96.0.10,53', '10.96.0.10,tcp:53', { ip: '10.96.0.10', proto: 6, port: 53 }],
    ['hash:ip,port', 'inet6', 'FD00::A,UDP:53', 'fd00::a,udp:53', { ip: 'fd00::a', proto: 17, port: 53 }],
    ['hash:ip,port', 'inet', '10.0.0.1,sctp:9', '10.0.0.1,sctp:9', { ip: '10.0.0.1', proto: 132, port: 9 }],
    ['hash:ip,port,ip', 'inet', '10.244.1.5,tcp:8080,10.244.1.5', '10.244.1.5,tcp:8080,10.244.1.5', { ip: '10.244.1.5', proto: 6, port: 8080, ip2: '10.244.1.5' }],
    ['hash:ip,port,net', 'inet', '1.2.3.4,tcp:80,10.1.1.5/24', '1.2.3.4,tcp:80,10.1.1.0/24', { ip: '1.2.3.4', proto: 6, port: 80, ip2: '10.1.1.0', cidr2: 24 }],
    ['hash:ip,port,net', 'inet', '1.2.3.4,tcp:80,10.1.1.1/32', '1.2.3.4,tcp:80,10.1.1.1', { ip: '1.2.3.4', proto: 6, port: 80, ip2: '10.1.1.1', cidr2: 32 }],
    ['hash:ip,port,net', 'inet6', 'fd00::1,udplite:7,fd00:1::/64', 'fd00::1,udplite:7,fd00:1::/64', { ip: 'fd00::1', proto: 136, port: 7, ip2: 'fd00:1::', cidr2: 64 }],
    ['bitmap:port', 'inet', '30080', '30080', { port: 30080 }],
    ['bitmap:port', 'inet', 'udp:0', '0', { port: 0 }],
  ];
  for (const [type, family, entry, text, element] of cases) {
    it(`${type} ${entry}`, () => {
      assert.deepEqual(entryElement(type, entry, family), { text, element });
      assert.equal(elementText(type, element), text);
      // The print form is what the text model keeps: the same judgement as the fake's.
      assert.equal(normalizeIpsetEntry(type, text, type === 'bitmap:port' ? undefined : family), text);
    });
  }

  it('refuses what the fake refuses', () => {
    assert.equal(entryElement('hash:ip,port', 'fd00::1,tcp:5', 'inet'), undefined);
    assert.equal(entryElement('hash:ip,port', '1.2.3.4,tcp:5,1.2.3.4', 'inet'), undefined);
    assert.equal(entryElement('hash:ip,port', '0.0.0.0,tcp:5', 'inet'), undefined);
    assert.equal(entryElement('hash:ip,port,ip', '1.2.3.4,tcp:5,1.2.3.0/24', 'inet'), undefined);
    assert.equal(entryElement('hash:ip,port,net', '1.2.3.4,tcp:80,10.0.0.0/0', 'inet'), undefined);
    assert.equal(entryElement('bitmap:port', '70000'), undefined);
    assert.equal(entryElement('bitmap:port', 'icmp:8'), undefined);
  });

  it('has no text for elements the model cannot hold', () => {
    assert.equal(elementText('hash:ip,port', { ip: '1.1.1.1', proto: 1, port: 0x0800 }), undefined);
    assert.equal(elementText('hash:ip,port,ip', { ip: '1.1.1.1', proto: 6, port: 1 }), undefined);
    assert.equal(elementText('bitmap:port', {}), undefined);
  });
});
