// Netlink replies we cannot trust: every decoder of the IPVS (generic netlink), ipset (nfnetlink)
// and rtnetlink speakers, fed random bytes and valid messages truncated, bit-flipped or spliced,
// either decodes or throws its subsystem's typed error (IpvsError, DataplaneError) — never a
// RangeError or TypeError from reading past a buffer. And the IPVS client over a kernel whose
// reply datagrams are corrupted the same way resolves or rejects with an IpvsError, with no
// uncaught exception.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AttrStream, rt } from 'netlink';
import { DataplaneError } from '../../src/dataplane/errors.js';
import { IpvsError } from '../../src/dataplane/ipvs/errors.js';
import { IpvsNetlinkClient } from '../../src/dataplane/ipvs/netlink-client.js';
import * as ipvs from '../../src/dataplane/ipvs/netlink-codec.js';
import * as ipset from '../../src/dataplane/ipset/netlink-codec.js';
import { decodeAddresses, decodeLinks } from '../../src/dataplane/netif/real.js';
import { parseIp } from '../../src/model/ip.js';
import { FakeIpvsKernel } from './ipvs/fake-kernel.js';

const RUNS = Number(process.env.KUBE_IPVS_FUZZ_RUNS ?? 60) * 10;

/** Valid bytes made worse: cut short, bits flipped, bytes spliced in, or replaced by noise. */
function damaged(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
    fc.tuple(seed, fc.nat()).map(([b, n]) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
    fc.tuple(seed, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })).map(([b, flips]) => {
      const c = Buffer.from(b);
      for (const [at, v] of flips) if (c.length > 0) c[at % c.length] = v;
      return c;
    }),
    fc.tuple(seed, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 12 })).map(([b, at, ins]) => {
      const i = b.length === 0 ? 0 : at % b.length;
      return Buffer.concat([b.subarray(0, i), Buffer.from(ins), b.subarray(i)]);
    }),
    seed,
  );
}

/** Runs a decoder: a value, or one of the typed errors, and nothing else. */
function decodesOrTyped(what: string, decode: () => unknown, typed: (e: unknown) => boolean): void {
  try {
    decode();
  } catch (e) {
    assert.ok(typed(e), `${what} threw an untyped ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}

const isIpvsError = (e: unknown): boolean => e instanceof IpvsError;
const isDataplaneError = (e: unknown): boolean => e instanceof DataplaneError;

const tcp = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0, netmask: 0xffffffff } as const;
const v6 = { family: 'IPv6', protocol: 'UDP', address: 'fd00::10', port: 53, scheduler: 'mh', flags: 2, timeout: 10, netmask: 128 } as const;
const rs = { address: '10.244.1.5', port: 8080, weight: 1, forward: 'masq', upperThreshold: 0, lowerThreshold: 0 } as const;

describe('netlink decoders fed random and damaged replies', () => {
  test('IPVS: framing, genl, family, service, destination, timeouts, info', () => {
    const genl = [ipvs.encodeNewService(tcp), ipvs.encodeNewService(v6), ipvs.encodeNewDest(tcp, rs), ipvs.encodeSetTimeouts({ tcp: 900, tcpFin: 120, udp: 300 }), ipvs.encodeGetFamily('IPVS')];
    const framed = genl.map((payload, i) => ipvs.encodeNlMessage({ type: 32, flags: 2, seq: i + 1, pid: 0, payload }));
    fc.assert(
      fc.property(damaged([...genl, Buffer.concat(framed)]), (b) => {
        decodesOrTyped('parseNlMessages', () => ipvs.parseNlMessages(b), isIpvsError);
        decodesOrTyped('parseGenl', () => ipvs.parseGenl(b), isIpvsError);
        decodesOrTyped('decodeFamily', () => ipvs.decodeFamily(b), isIpvsError);
        decodesOrTyped('decodeService', () => ipvs.decodeService(b), isIpvsError);
        decodesOrTyped('decodeDest', () => ipvs.decodeDest(b, 'IPv4'), isIpvsError);
        decodesOrTyped('decodeDest (IPv6)', () => ipvs.decodeDest(b, 'IPv6'), isIpvsError);
        decodesOrTyped('decodeTimeouts', () => ipvs.decodeTimeouts(b), isIpvsError);
        decodesOrTyped('decodeInfo', () => ipvs.decodeInfo(b), isIpvsError);
      }),
      { numRuns: RUNS },
    );
  });

  test('ipset: framing, error, protocol, type, header and list replies, and the dump they make', () => {
    const spec = { name: 'KUBE-CLUSTER-IP', type: 'hash:ip,port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' } as const;
    const el = ipset.encodeElement('hash:ip,port', { ip: '10.96.0.10', proto: 6, port: 80 }, 1);
    const payloads = [
      ipset.encodeCreate(7, spec, 7),
      ipset.encodeCreate(7, { name: 'KUBE-NODE-PORT-TCP', type: 'bitmap:port', family: 'inet', hashSize: 1024, maxElem: 65536, range: '0-65535' }, 3),
      ipset.encodeAdt(7, ipset.IpsetCmd.ADD, 'KUBE-CLUSTER-IP', [el, ipset.encodeElement('hash:ip,port,ip', { ip: 'fd00::1', proto: 17, port: 53, ip2: 'fd00::2' }, 2)]),
      ipset.encodeProtocolRequest(7),
      ipset.encodeTypeRequest(7, 'hash:ip', 2),
      ipset.encodeHeaderRequest(7, 'KUBE-CLUSTER-IP'),
    ];
    const framed = payloads.map((payload, i) => ipset.encodeNlMessage({ type: ipset.ipsetMsgType(ipset.IpsetCmd.LIST), flags: 2, seq: i + 1, pid: 0, payload }));
    fc.assert(
      fc.property(fc.array(damaged([...payloads, Buffer.concat(framed)]), { minLength: 1, maxLength: 4 }), (bufs) => {
        for (const b of bufs) {
          decodesOrTyped('parseNlMessages', () => ipset.parseNlMessages(b), isDataplaneError);
          decodesOrTyped('parseIpsetNlError', () => ipset.parseIpsetNlError(b), isDataplaneError);
          decodesOrTyped('decodeProtocolReply', () => ipset.decodeProtocolReply(b), isDataplaneError);
          decodesOrTyped('decodeTypeReply', () => ipset.decodeTypeReply(b), isDataplaneError);
          decodesOrTyped('decodeHeaderReply', () => ipset.decodeHeaderReply(b), isDataplaneError);
        }
        // A dump is several LIST messages; the ones that decode are collected together.
        const decoded: ipset.IpsetListMessage[] = [];
        for (const b of bufs) {
          try {
            decoded.push(ipset.decodeListMessage(b));
          } catch (e) {
            assert.ok(isDataplaneError(e), `decodeListMessage threw an untyped ${String(e)}`);
          }
        }
        decodesOrTyped('collectIpsetDump', () => ipset.collectIpsetDump(decoded), isDataplaneError);
      }),
      { numRuns: RUNS },
    );
  });

  test('rtnetlink: link and address messages', () => {
    const link = new AttrStream();
    rt.formatLinkMessage({ kind: 'link', data: { index: 3 }, attrs: { ifname: 'kube-ipvs0', txqlen: 0 } }, link);
    const addr4 = new AttrStream();
    rt.formatAddressMessage({ kind: 'address', data: { family: 2, prefixlen: 32, index: 3 }, attrs: { local: Buffer.from([10, 96, 0, 10]), address: Buffer.from([10, 96, 0, 10]) } }, addr4);
    const addr6 = new AttrStream();
    rt.formatAddressMessage({ kind: 'address', data: { family: 10, prefixlen: 128, index: 3 }, attrs: { address: Buffer.alloc(16, 0xfd) } }, addr6);
    const seeds = [link, addr4, addr6].map((s) => Buffer.concat(s.bufs));
    fc.assert(
      fc.property(damaged(seeds), (b) => {
        decodesOrTyped('decodeLinks', () => decodeLinks([{ type: rt.MessageType.NEWLINK, data: b }]), isDataplaneError);
        decodesOrTyped('decodeAddresses', () => decodeAddresses([{ type: rt.MessageType.NEWADDR, data: b }], new Map([[3, 'kube-ipvs0']])), isDataplaneError);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('rtnetlink address messages read in place', () => {
  test('give what the netlink package\'s own parser reads from them', () => {
    const addr = (family: 2 | 10) => fc.uint8Array({ minLength: family === 2 ? 4 : 16, maxLength: family === 2 ? 4 : 16 }).map((b) => Buffer.from(b));
    const message = fc.constantFrom(2 as const, 10 as const).chain((family) =>
      fc.record({
        family: fc.constant(family),
        prefixlen: fc.integer({ min: 0, max: family === 2 ? 32 : 128 }),
        index: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        local: fc.option(addr(family), { nil: undefined }),
        address: fc.option(addr(family), { nil: undefined }),
        label: fc.option(fc.stringMatching(/^[a-z0-9-]{1,15}$/), { nil: undefined }),
      }),
    );
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), (msgs) => {
        const parts = msgs.map((m) => {
          const s = new AttrStream();
          rt.formatAddressMessage({ kind: 'address', data: { family: m.family, prefixlen: m.prefixlen, index: m.index }, attrs: { ...(m.local ? { local: m.local } : {}), ...(m.address ? { address: m.address } : {}), ...(m.label ? { label: m.label } : {}) } }, s);
          return { type: rt.MessageType.NEWADDR, data: Buffer.concat(s.bufs) };
        });
        const names = new Map([[msgs[0]?.index ?? 1, 'kube-ipvs0']]);
        const expected = parts.flatMap((p) => {
          const a = rt.parseAddressMessage(p.data);
          const raw = a.attrs.local ?? a.attrs.address;
          const family = a.data.family === 2 ? 'IPv4' : 'IPv6';
          if (!raw) return [];
          const index = a.data.index ?? 0;
          return [{ ifname: names.get(index) ?? (typeof a.attrs.label === 'string' ? a.attrs.label : ''), ifindex: index, family, bytes: [...raw].join('.'), prefix: a.data.prefixlen ?? 0 }];
        });
        const got = decodeAddresses(parts, names).map((a) => ({ ifname: a.ifname, ifindex: a.ifindex, family: a.family, bytes: [...(parseIp(a.address)?.bytes ?? [])].join('.'), prefix: a.prefix }));
        assert.deepEqual(got, expected);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('the IPVS client over a kernel whose replies arrive damaged', () => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  before(() => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
  });
  after(() => {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  });

  test('every call resolves or rejects with an IpvsError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean(), async (flips, cut, cutIt) => {
        const kernel = new FakeIpvsKernel();
        // The fake kernel's replies pass through here: the header keeps its seq, so each damaged
        // reply reaches the request it answers.
        const listen = kernel.listen.bind(kernel);
        kernel.listen = (onDatagram, onError) =>
          listen((d, port) => {
            const c = Buffer.from(d);
            for (const [at, v] of flips) if (c.length > 16) c[16 + (at % (c.length - 16))] = v;
            onDatagram(cutIt && c.length > 16 ? c.subarray(0, 16 + (cut % (c.length - 15))) : c, port);
          }, onError);
        const client = new IpvsNetlinkClient({ transport: kernel, timeoutMs: 50, modprobe: false });
        const calls: Array<() => Promise<unknown>> = [
          () => client.addService(tcp),
          () => client.addDestination(tcp, rs),
          () => client.listServices(),
          () => client.listDestinations(tcp),
          () => client.getService(tcp),
          () => client.getInfo(),
          () => client.getTimeouts(),
        ];
        try {
          for (const call of calls) {
            await call().catch((e: unknown) => assert.ok(e instanceof IpvsError, `untyped rejection: ${String(e)}`));
          }
        } finally {
          client.close();
        }
      }),
      { numRuns: Math.ceil(RUNS / 40) },
    );
    assert.deepEqual(uncaught, []);
  });
});
