// Byte-exact checks of the IPVS generic netlink codec against the wire layout of Linux
// include/uapi/linux/ip_vs.h and net/netfilter/ipvs/ip_vs_ctl.c (little-endian host assumed for
// host-order integers).
import { strict as assert } from 'node:assert';
import { endianness } from 'node:os';
import { describe, it } from 'node:test';
import type { VirtualServer } from '../../../src/model/kernel.js';
import { VsFlag } from '../../../src/model/kernel.js';
import { IpvsError } from '../../../src/dataplane/ipvs/errors.js';
import {
  CmdAttr,
  DestAttr,
  IpvsCmd,
  NlMsgType,
  StatsAttr,
  SvcAttr,
  decodeDest,
  decodeFamily,
  decodeInfo,
  decodeService,
  decodeTimeouts,
  encodeAttr,
  encodeDelDest,
  encodeDelService,
  encodeGenl,
  encodeGetFamily,
  encodeListDests,
  encodeListServices,
  encodeNested,
  encodeNewDest,
  encodeNewService,
  encodeNlMessage,
  encodeSetTimeouts,
  parseAttrs,
  parseGenl,
  parseNlError,
  parseNlMessages,
  serviceSetupRange,
} from '../../../src/dataplane/ipvs/netlink-codec.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const tcp80: VirtualServer = {
  family: 'IPv4',
  protocol: 'TCP',
  address: '10.0.0.1',
  port: 80,
  scheduler: 'rr',
  flags: 0,
  timeout: 0,
};

describe('netlink-codec', { skip: endianness() !== 'LE' ? 'byte expectations assume a little-endian host' : false }, () => {
  it('pads attributes to 4 bytes and excludes the padding from nla_len', () => {
    assert.equal(hex(encodeAttr(6, Buffer.from('rr\0'))), '070006007272' + '0000');
    assert.equal(hex(encodeAttr(13, Buffer.from([2]))), '05000d0002000000');
    assert.equal(hex(encodeNested(1, [encodeAttr(1, Buffer.from([2, 0]))])), '0c000180' + '0600010002000000');
  });

  it('encodes NEW_SERVICE byte for byte', () => {
    const got = encodeNewService(tcp80);
    const want = h(`
      01 01 0000
      4800 0180
        0600 0100 0200 0000
        0600 0200 0600 0000
        0800 0300 0a000001
        0600 0400 0050 0000
        0700 0600 727200 00
        0c00 0700 00000000 ffffffff
        0800 0800 00000000
        0800 0900 ffffffff`);
    assert.equal(hex(got), hex(want));
  });

  it('writes ports big-endian and the IPv6 netmask as a host-order prefix length', () => {
    const vs = encodeNewService({
      family: 'IPv6',
      protocol: 'UDP',
      address: 'fd00::1',
      port: 0x1234,
      scheduler: 'sh',
      flags: VsFlag.SCHED1 | VsFlag.SCHED2,
      timeout: 0,
    });
    const svc = parseAttrs(parseGenl(vs).attrs.get(CmdAttr.SERVICE) ?? Buffer.alloc(0));
    assert.equal(hex(svc.get(SvcAttr.AF) ?? Buffer.alloc(0)), '0a00');
    assert.equal(hex(svc.get(SvcAttr.PROTOCOL) ?? Buffer.alloc(0)), '1100');
    assert.equal(hex(svc.get(SvcAttr.ADDR) ?? Buffer.alloc(0)), 'fd000000000000000000000000000001');
    assert.equal(hex(svc.get(SvcAttr.PORT) ?? Buffer.alloc(0)), '1234');
    assert.equal(hex(svc.get(SvcAttr.NETMASK) ?? Buffer.alloc(0)), '80000000');
    assert.equal(hex(svc.get(SvcAttr.FLAGS) ?? Buffer.alloc(0)), '18000000ffffffff');
  });

  it('never sends HASHED, and sends a PE name when given', () => {
    const b = encodeNewService({ ...tcp80, flags: VsFlag.PERSISTENT | VsFlag.HASHED, timeout: 10800, peName: 'sip' });
    const svc = parseAttrs(parseGenl(b).attrs.get(CmdAttr.SERVICE) ?? Buffer.alloc(0));
    assert.equal(hex(svc.get(SvcAttr.FLAGS) ?? Buffer.alloc(0)), '01000000ffffffff');
    assert.equal(hex(svc.get(SvcAttr.TIMEOUT) ?? Buffer.alloc(0)), '302a0000');
    assert.equal(hex(svc.get(SvcAttr.PE_NAME) ?? Buffer.alloc(0)), '73697000');
  });

  it('identifies fwmark services by AF + FWMARK only', () => {
    const b = encodeDelService({ ...tcp80, fwmark: 0x4000 });
    assert.equal(hex(b), '03010000' + '14000180' + '0600010002000000' + '0800050000400000');
  });

  it('sends identity only for DEL_SERVICE and for dumps', () => {
    assert.equal(hex(encodeListServices()), '04010000');
    const del = parseAttrs(parseGenl(encodeDelService(tcp80)).attrs.get(CmdAttr.SERVICE) ?? Buffer.alloc(0));
    assert.deepEqual([...del.keys()], [SvcAttr.AF, SvcAttr.PROTOCOL, SvcAttr.ADDR, SvcAttr.PORT]);
    const list = parseGenl(encodeListDests(tcp80));
    assert.equal(list.cmd, IpvsCmd.GET_DEST);
    assert.deepEqual([...list.attrs.keys()], [CmdAttr.SERVICE]);
  });

  it('encodes NEW_DEST: identity nest, then the destination with BE port and host-order u32s', () => {
    const b = encodeNewDest(tcp80, { address: '10.1.0.5', port: 8080, weight: 3, forward: 'masq', upperThreshold: 100, lowerThreshold: 10 });
    const g = parseGenl(b);
    assert.equal(g.cmd, IpvsCmd.NEW_DEST);
    assert.equal(g.version, 1);
    const dest = g.attrs.get(CmdAttr.DEST);
    assert.ok(dest);
    assert.equal(
      hex(dest),
      h(`
        0800 0100 0a010005
        0600 0200 1f90 0000
        0600 0b00 0200 0000
        0800 0300 00000000
        0800 0400 03000000
        0800 0500 64000000
        0800 0600 0a000000`).toString('hex'),
    );
  });

  it('encodes forwarding methods and tunnel attributes', () => {
    const b = encodeNewDest(tcp80, { address: '10.1.0.5', port: 80, weight: 1, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelFlags: 1 });
    const d = parseAttrs(parseGenl(b).attrs.get(CmdAttr.DEST) ?? Buffer.alloc(0));
    assert.equal(hex(d.get(DestAttr.FWD_METHOD) ?? Buffer.alloc(0)), '02000000');
    assert.equal(hex(d.get(DestAttr.TUN_TYPE) ?? Buffer.alloc(0)), '01');
    assert.equal(hex(d.get(DestAttr.TUN_PORT) ?? Buffer.alloc(0)), '17c0');
    assert.equal(hex(d.get(DestAttr.TUN_FLAGS) ?? Buffer.alloc(0)), '0100');
    const route = encodeNewDest(tcp80, { address: '10.1.0.5', port: 80, weight: 1, forward: 'route' });
    const r = parseAttrs(parseGenl(route).attrs.get(CmdAttr.DEST) ?? Buffer.alloc(0));
    assert.equal(hex(r.get(DestAttr.FWD_METHOD) ?? Buffer.alloc(0)), '03000000');
  });

  it('identifies a destination by address and port for DEL_DEST', () => {
    const d = parseAttrs(parseGenl(encodeDelDest(tcp80, { address: 'fd00::5', port: 53 })).attrs.get(CmdAttr.DEST) ?? Buffer.alloc(0));
    assert.deepEqual([...d.keys()], [DestAttr.ADDR, DestAttr.PORT, DestAttr.ADDR_FAMILY]);
    assert.equal(hex(d.get(DestAttr.ADDR_FAMILY) ?? Buffer.alloc(0)), '0a00');
  });

  it('rejects what the kernel could not take, before sending', () => {
    const bad = [
      () => encodeNewService({ ...tcp80, address: '10.0.0' }),
      () => encodeNewService({ ...tcp80, family: 'IPv6' }),
      () => encodeNewService({ ...tcp80, port: 70000 }),
      () => encodeNewService({ ...tcp80, scheduler: 'x'.repeat(16) }),
      () => encodeNewService({ ...tcp80, family: 'IPv6', address: '::1', netmask: 129 }),
      () => encodeNewDest(tcp80, { address: 'nope', port: 1, weight: 1, forward: 'masq' }),
      () => encodeNewDest(tcp80, { address: '10.0.0.2', port: 1, weight: 1.5, forward: 'masq' }),
      () => encodeSetTimeouts({ tcp: -1 }),
    ];
    for (const f of bad) {
      assert.throws(f, (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL' && e.op === 'encode');
    }
  });

  it('encodes SET_CONFIG with only the given timeouts', () => {
    assert.equal(hex(encodeSetTimeouts({ tcp: 900, udp: 300 })), '0c010000' + '0800040084030000' + '080006002c010000');
  });

  it('decodes a service dump entry: 16-byte address, BE port, HASHED stripped, STATS64 preferred', () => {
    // As ip_vs_genl_fill_service writes it (kernel 6.1): address padded to nf_inet_addr.
    const stats = encodeNested(SvcAttr.STATS, [
      encodeAttr(StatsAttr.CONNS, h('05000000')),
      encodeAttr(StatsAttr.INBYTES, h('0100000000000000')),
    ]);
    const stats64 = encodeNested(SvcAttr.STATS64, [
      encodeAttr(StatsAttr.CONNS, h('0000000001000000')), // 2^32: only STATS64 can carry it
      encodeAttr(StatsAttr.INPKTS, h('0700000000000000')),
      encodeAttr(StatsAttr.OUTBYTES, h('0900000000000000')),
      encodeAttr(11, h('0000000000000000')), // IPVS_STATS_ATTR_PAD
    ]);
    const svc = encodeNested(CmdAttr.SERVICE, [
      encodeAttr(SvcAttr.AF, h('0200')),
      encodeAttr(SvcAttr.PROTOCOL, h('0600')),
      encodeAttr(SvcAttr.ADDR, h('0a000001 00000000 00000000 00000000')),
      encodeAttr(SvcAttr.PORT, h('1f90')),
      encodeAttr(SvcAttr.SCHED_NAME, Buffer.from('wrr\0')),
      encodeAttr(SvcAttr.FLAGS, h('03000000 ffffffff')),
      encodeAttr(SvcAttr.TIMEOUT, h('302a0000')),
      encodeAttr(SvcAttr.NETMASK, h('ffffff00')),
      stats,
      stats64,
    ]);
    const vs = decodeService(encodeGenl(IpvsCmd.NEW_SERVICE, 1, [svc]));
    assert.deepEqual(vs, {
      family: 'IPv4',
      protocol: 'TCP',
      address: '10.0.0.1',
      port: 8080,
      scheduler: 'wrr',
      flags: VsFlag.PERSISTENT,
      timeout: 10800,
      netmask: 0xffffff00,
      stats: { conns: 2 ** 32, inpkts: 7, outpkts: 0, inbytes: 0, outbytes: 9, cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
    });
  });

  it('falls back to STATS (u32 counters, u64 bytes) on kernels without STATS64', () => {
    const stats = encodeNested(SvcAttr.STATS, [
      encodeAttr(StatsAttr.CONNS, h('05000000')),
      encodeAttr(StatsAttr.INBYTES, h('0000000002000000')),
      encodeAttr(StatsAttr.CPS, h('02000000')),
    ]);
    const svc = encodeNested(CmdAttr.SERVICE, [
      encodeAttr(SvcAttr.AF, h('0a00')),
      encodeAttr(SvcAttr.PROTOCOL, h('8400')),
      encodeAttr(SvcAttr.ADDR, h('20010db8000000000000000000000001')),
      encodeAttr(SvcAttr.PORT, h('0050')),
      encodeAttr(SvcAttr.SCHED_NAME, Buffer.from('mh\0')),
      encodeAttr(SvcAttr.FLAGS, h('12000000 ffffffff')),
      encodeAttr(SvcAttr.TIMEOUT, h('00000000')),
      encodeAttr(SvcAttr.NETMASK, h('80000000')),
      encodeAttr(SvcAttr.PE_NAME, Buffer.from('sip\0')),
      stats,
    ]);
    const vs = decodeService(encodeGenl(IpvsCmd.NEW_SERVICE, 1, [svc]));
    assert.ok(vs);
    assert.equal(vs.protocol, 'SCTP');
    assert.equal(vs.address, '2001:db8::1');
    assert.equal(vs.flags, VsFlag.SCHED2);
    assert.equal(vs.netmask, 128);
    assert.equal(vs.peName, 'sip');
    assert.equal(vs.stats.conns, 5);
    assert.equal(vs.stats.inbytes, 2 ** 33);
    assert.equal(vs.stats.cps, 2);
  });

  it('decodes fwmark services and skips unknown protocols', () => {
    const fw = encodeNested(CmdAttr.SERVICE, [
      encodeAttr(SvcAttr.AF, h('0200')),
      encodeAttr(SvcAttr.FWMARK, h('64000000')),
      encodeAttr(SvcAttr.SCHED_NAME, Buffer.from('rr\0')),
      encodeAttr(SvcAttr.FLAGS, h('02000000 ffffffff')),
    ]);
    const vs = decodeService(encodeGenl(IpvsCmd.NEW_SERVICE, 1, [fw]));
    assert.equal(vs?.fwmark, 100);
    assert.equal(vs?.address, '');
    assert.equal(vs?.flags, 0);
    const esp = encodeNested(CmdAttr.SERVICE, [
      encodeAttr(SvcAttr.AF, h('0200')),
      encodeAttr(SvcAttr.PROTOCOL, h('3200')),
      encodeAttr(SvcAttr.ADDR, h('0a000001')),
      encodeAttr(SvcAttr.PORT, h('0000')),
    ]);
    assert.equal(decodeService(encodeGenl(IpvsCmd.NEW_SERVICE, 1, [esp])), undefined);
  });

  it('decodes a destination dump entry written by hand', () => {
    const dest = h(`
      14000280
      1400 0100 0a010005 00000000 00000000 00000000
      0600 0200 1f90 0000
      0800 0300 00000000
      0800 0400 05000000
      0800 0500 00000000
      0800 0600 00000000
      0800 0700 02000000
      0800 0800 03000000
      0800 0900 04000000
      0600 0b00 0200 0000`);
    // Fix the nest length (4 + 20 + 8*8 + 8 + 8 = 104 = 0x68).
    dest.writeUInt16LE(dest.length, 0);
    const rs = decodeDest(Buffer.concat([h('05010000'), dest]), 'IPv4');
    assert.deepEqual(rs, {
      address: '10.1.0.5',
      port: 8080,
      weight: 5,
      forward: 'masq',
      family: 'IPv4',
      upperThreshold: 0,
      lowerThreshold: 0,
      activeConns: 2,
      inactiveConns: 3,
      persistConns: 4,
      stats: { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0, cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
    });
  });

  it('uses the service family when a destination has no ADDR_FAMILY (kernels < 3.18)', () => {
    const dest = encodeNested(CmdAttr.DEST, [
      encodeAttr(DestAttr.ADDR, h('fd000000000000000000000000000005')),
      encodeAttr(DestAttr.PORT, h('0035')),
      encodeAttr(DestAttr.FWD_METHOD, h('03000000')),
      encodeAttr(DestAttr.WEIGHT, h('00000000')),
    ]);
    const rs = decodeDest(encodeGenl(IpvsCmd.NEW_DEST, 1, [dest]), 'IPv6');
    assert.equal(rs.address, 'fd00::5');
    assert.equal(rs.port, 53);
    assert.equal(rs.forward, 'route');
    assert.equal(rs.family, 'IPv6');
  });

  it('frames messages with 4-byte padding and parses a batch back', () => {
    const a = encodeNlMessage({ type: 0x20, flags: 5, seq: 7, pid: 0, payload: Buffer.from([1, 1, 0, 0, 9]) });
    assert.equal(hex(a), '15000000' + '2000' + '0500' + '07000000' + '00000000' + '0101000009' + '000000');
    const b = encodeNlMessage({ type: 0x20, flags: 5, seq: 8, pid: 0, payload: Buffer.from([1, 1, 0, 0]) });
    const msgs = parseNlMessages(Buffer.concat([a, b]));
    assert.deepEqual(
      msgs.map((m) => [m.seq, m.payload.length]),
      [
        [7, 5],
        [8, 4],
      ],
    );
  });

  it('reads errno from NLMSG_ERROR and NLMSG_DONE payloads', () => {
    assert.equal(parseNlError(h('efffffff' + '00'.repeat(16))), 17);
    assert.equal(parseNlError(h('00000000')), 0);
    assert.equal(parseNlError(Buffer.alloc(0)), 0);
    assert.equal(NlMsgType.ERROR, 2);
  });

  it('encodes GETFAMILY and decodes the controller reply', () => {
    assert.equal(hex(encodeGetFamily('IPVS')), '03010000' + '0900020049505653' + '00000000');
    const ops = encodeNested(6, [encodeNested(1, [encodeAttr(1, h('01000000'))]), encodeNested(2, [encodeAttr(1, h('02000000'))])]);
    const reply = encodeGenl(1, 2, [
      encodeAttr(2, Buffer.from('IPVS\0')),
      encodeAttr(1, h('2000')),
      encodeAttr(3, h('01000000')),
      encodeAttr(5, h('06000000')),
      ops,
    ]);
    assert.deepEqual(decodeFamily(reply), { id: 32, name: 'IPVS', version: 1, maxAttr: 6, ops: 2 });
  });

  it('decodes GET_INFO and GET_CONFIG replies', () => {
    const info = encodeGenl(IpvsCmd.SET_INFO, 1, [encodeAttr(1, h('01020100')), encodeAttr(2, h('00100000'))]);
    assert.deepEqual(decodeInfo(info), { version: 0x010201, versionText: '1.2.1', connTableSize: 4096 });
    const cfg = encodeGenl(IpvsCmd.SET_CONFIG, 1, [encodeAttr(4, h('84030000')), encodeAttr(5, h('78000000')), encodeAttr(6, h('2c010000'))]);
    assert.deepEqual(decodeTimeouts(cfg), { tcp: 900, tcpFin: 120, udp: 300 });
  });

  it('refuses truncated attributes', () => {
    assert.throws(() => parseAttrs(h('0800010002')), (e: unknown) => e instanceof IpvsError && e.code === 'PROTOCOL');
  });

  it('a service entry\'s setup range leaves out its counters and nothing else', () => {
    const u16 = (v: number) => Buffer.from(Uint16Array.of(v).buffer);
    const u32 = (v: number) => Buffer.from(Uint32Array.of(v).buffer);
    const counters = (conns: number) => [encodeNested(SvcAttr.STATS, [encodeAttr(StatsAttr.CONNS, u32(conns))]), encodeNested(SvcAttr.STATS64, [encodeAttr(StatsAttr.CONNS, Buffer.alloc(8, conns))])];
    // In ip_vs_genl_fill_service's order: identity, scheduler, PE, flags, timeout, netmask, counters.
    const entry = (o: { timeout?: number; conns?: number; peLast?: boolean } = {}) => {
      const setup = [encodeAttr(SvcAttr.AF, u16(2)), encodeAttr(SvcAttr.PROTOCOL, u16(6)), encodeAttr(SvcAttr.ADDR, Buffer.from([10, 96, 0, 1, ...Array(12).fill(0)])), encodeAttr(SvcAttr.PORT, Buffer.from([1, 187])), encodeAttr(SvcAttr.SCHED_NAME, Buffer.from('rr\0'))];
      const rest = [encodeAttr(SvcAttr.FLAGS, Buffer.alloc(8)), encodeAttr(SvcAttr.TIMEOUT, u32(o.timeout ?? 0)), encodeAttr(SvcAttr.NETMASK, u32(0xffffffff))];
      const pe = encodeAttr(SvcAttr.PE_NAME, Buffer.from('sip\0'));
      const attrs = o.peLast ? [...setup, ...rest, ...counters(o.conns ?? 0), pe] : [...setup, pe, ...rest, ...counters(o.conns ?? 0)];
      return encodeGenl(IpvsCmd.NEW_SERVICE, 1, [encodeNested(CmdAttr.SERVICE, attrs)]);
    };
    const bytes = (payload: Buffer) => {
      const r = serviceSetupRange(payload);
      assert.ok(r);
      return hex(payload.subarray(r.from, r.to));
    };
    assert.equal(bytes(entry({ conns: 5 })), bytes(entry({ conns: 9 })), 'counters left out');
    assert.notEqual(bytes(entry({ timeout: 60 })), bytes(entry()), 'a timeout is setup');
    assert.deepEqual(decodeService(entry()), { ...decodeService(entry({ conns: 9 })), stats: decodeService(entry())?.stats }, 'same range, same virtual server');
    assert.equal(serviceSetupRange(entry({ peLast: true })), undefined, 'setup after the counters: no range');
  });
});
