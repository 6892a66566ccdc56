// /proc/net/ip_vs as the kernel prints it (ip_vs_info_seq_show): parsed into the real servers of
// each virtual server, and the fake's rendering reads back the same.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { allRealServers, parseProcIpvs, procBlocks, ProcIpvsReader, realServersByVirtualServer, renderProcIpvs } from '../../../src/dataplane/ipvs/proc.js';

// Column widths and trailing blanks as the kernel's format strings leave them.
const KERNEL_TEXT = [
  'IP Virtual Server version 1.2.1 (size=4096)',
  'Prot LocalAddress:Port Scheduler Flags',
  '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn',
  'TCP  0A60000A:0050 rr persistent 10800 FFFFFFFF',
  '  -> 0AF40102:1F90      Masq    1      3          7         ',
  '  -> 0AF40103:1F90      Masq    0      0          1         ',
  'UDP  [fd00:0000:0000:0000:0000:0000:0000:000a]:0035 rr ',
  '  -> [fd00:0010:0244:0000:0000:0000:0000:0005]:14E9      Masq    1      0          0         ',
  'FWM  00000007 rr ',
  '  -> 0AF40904:0050      Masq    1      0          0         ',
  'SCTP  0A60005B:0F1C wrr ops ',
  '  -> 0AF40903:0F1C      Route   2      0          0         ',
  '  -> [fd00:0010:0244:0000:0000:0000:0000:0009]:0F1C      Tunnel  1      0          0         ',
  'TCP  0A60005C:01BB sh ',
  '',
].join('\n');

/**
 * Texts as ProcFile gives them: each written into one of two buffers in turn, so the bytes of the
 * read before last are overwritten while a reader still remembers where its blocks lay there.
 */
function alternatingBuffers(): (text: string) => Buffer {
  const bufs = [Buffer.alloc(1 << 16, 0x2a), Buffer.alloc(1 << 16, 0x2a)];
  let turn = 0;
  return (text) => {
    const buf = bufs[turn] as Buffer;
    turn = 1 - turn;
    buf.fill(0x2a);
    return buf.subarray(0, buf.write(text, 'latin1'));
  };
}

describe('/proc/net/ip_vs', () => {
  test('reads every non-fwmark virtual server with its real servers, weights and counts', () => {
    const byVs = realServersByVirtualServer(parseProcIpvs(KERNEL_TEXT));
    assert.deepEqual([...byVs.keys()], ['10.96.0.10:80/TCP', '[fd00::a]:53/UDP', '10.96.0.91:3868/SCTP', '10.96.0.92:443/TCP']);
    assert.deepEqual(byVs.get('10.96.0.10:80/TCP'), [
      { family: 'IPv4', address: '10.244.1.2', port: 8080, forward: 'masq', weight: 1, activeConns: 3, inactiveConns: 7 },
      { family: 'IPv4', address: '10.244.1.3', port: 8080, forward: 'masq', weight: 0, activeConns: 0, inactiveConns: 1 },
    ]);
    assert.deepEqual(byVs.get('[fd00::a]:53/UDP'), [{ family: 'IPv6', address: 'fd00:10:244::5', port: 5353, forward: 'masq', weight: 1, activeConns: 0, inactiveConns: 0 }]);
    assert.deepEqual(byVs.get('10.96.0.91:3868/SCTP')?.map((r) => `${r.address} ${r.forward} ${r.weight}`), ['10.244.9.3 route 2', 'fd00:10:244::9 tunnel 1']);
    assert.deepEqual(byVs.get('10.96.0.92:443/TCP'), [], 'a virtual server without real servers is listed empty');
  });

  test('a line it cannot read loses only that line, never gives a wrong server', () => {
    const garbled = KERNEL_TEXT.replace('  -> 0AF40103:1F90      Masq', '  -> 0AF40103:1F90      Sideways').replace('TCP  0A60005C:01BB', 'ESP  0A60005C:01BB');
    const byVs = realServersByVirtualServer(parseProcIpvs(garbled));
    assert.deepEqual(byVs.get('10.96.0.10:80/TCP')?.map((r) => r.address), ['10.244.1.2']);
    assert.equal(byVs.has('10.96.0.92:443/TCP'), false);
    assert.deepEqual(parseProcIpvs(''), []);
  });

  test('the fake\'s rendering is the kernel\'s format and reads back the same', () => {
    const services = parseProcIpvs(KERNEL_TEXT);
    const rendered = renderProcIpvs(services);
    assert.deepEqual(parseProcIpvs(rendered), services);
    assert.match(rendered, /^TCP {2}0A60000A:0050 rr $/m);
    assert.match(rendered, /^ {2}-> \[fd00:0010:0244:0000:0000:0000:0000:0005\]:14E9 {6}Masq {4}1 {6}0 {10}0 {9}$/m);
  });

  test('read in blocks, each virtual server has the same real servers as parsed whole', () => {
    const garbled = KERNEL_TEXT.replace('  -> 0AF40103:1F90      Masq', '  -> 0AF40103:1F90      Sideways').replace('TCP  0A60005C:01BB', 'ESP  0A60005C:01BB');
    for (const text of [KERNEL_TEXT, garbled, '', KERNEL_TEXT.trimEnd()]) {
      assert.deepEqual(allRealServers(procBlocks(text)), realServersByVirtualServer(parseProcIpvs(text)));
    }
  });

  test('a reader that remembers its last read gives every read what a first read of that text gives', () => {
    const lines = KERNEL_TEXT.split('\n');
    const counts = KERNEL_TEXT.replace('Masq    1      3          7         ', 'Masq    1      4          7         ');
    const weight = KERNEL_TEXT.replace('Masq    0      0          1         ', 'Masq    1      0          1         ');
    const scheduler = KERNEL_TEXT.replace('TCP  0A60005C:01BB sh ', 'TCP  0A60005C:01BB mh ');
    const added = [...lines.slice(0, 3), 'TCP  0A60000B:0050 rr ', '  -> 0AF40106:1F90      Masq    1      0          0         ', ...lines.slice(3)].join('\n');
    const removed = [...lines.slice(0, 6), ...lines.slice(8)].join('\n');
    const swapped = [...lines.slice(0, 3), ...lines.slice(6, 8), ...lines.slice(3, 6), ...lines.slice(8)].join('\n');
    const unended = KERNEL_TEXT.slice(0, -1);
    const goesOn = `${unended}\n  -> 0AF40106:1F90      Masq    1      0          0         \n`;
    const reader = new ProcIpvsReader();
    const feed = alternatingBuffers();
    // Parsed or not before, same text or not: counts, weights, added, removed and reordered blocks all read fresh.
    const texts = [KERNEL_TEXT, KERNEL_TEXT, counts, counts, weight, KERNEL_TEXT, scheduler, added, added, removed, swapped, KERNEL_TEXT, unended, goesOn, unended, '', KERNEL_TEXT];
    for (const [i, text] of texts.entries()) {
      const got = reader.read(feed(text));
      const fresh = procBlocks(text);
      assert.deepEqual([...got.keys()], [...fresh.keys()], `read ${i}: blocks`);
      for (const [key, block] of fresh) assert.equal(got.get(key)?.fingerprint, block.fingerprint, `read ${i}: ${key}`);
      if (i % 3 !== 0) assert.deepEqual(allRealServers(got), allRealServers(fresh), `read ${i}: servers`);
    }
  });

  test('random reads through two alternating buffers, as ProcFile gives them, each read as a first read would', () => {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    type Vs = Parameters<typeof renderProcIpvs>[0][number];
    const server = (i: number): Vs => ({
      family: 'IPv4', protocol: i % 5 === 0 ? 'UDP' : 'TCP', address: `10.96.0.${i}`, port: 80, scheduler: 'rr',
      realServers: Array.from({ length: random(4) }, (_, e) => ({ family: 'IPv4' as const, address: `10.244.${i}.${e}`, port: 8080, weight: 1, forward: 'masq' as const, activeConns: 0, inactiveConns: 0 })),
    });
    let services = Array.from({ length: 30 }, (_, i) => server(i));
    const reader = new ProcIpvsReader();
    const feed = alternatingBuffers();
    for (let r = 0; r < 300; r++) {
      const at = random(Math.max(services.length, 1));
      const change = random(7);
      if (change === 0) services.splice(at, 1);
      else if (change === 1) services.splice(at, 0, server(40 + random(60)));
      else if (change === 2 && services.length > 1) services = [...services.slice(at), ...services.slice(0, at)];
      else if (change === 3 && services[at]) services[at] = { ...services[at], scheduler: random(2) === 0 ? 'rr' : 'wlc' };
      else if (change === 4 && services[at]) {
        const s = services[at];
        services[at] = { ...s, realServers: s.realServers.map((rs) => ({ ...rs, activeConns: random(3), inactiveConns: random(3), weight: random(4) === 0 ? 0 : rs.weight })) };
      }
      // Otherwise the same text as before.
      const text = renderProcIpvs(services);
      const got = reader.read(feed(text));
      assert.deepEqual(allRealServers(got), allRealServers(procBlocks(text)), `read ${r}`);
      for (const [key, block] of procBlocks(text)) assert.equal(got.get(key)?.fingerprint, block.fingerprint, `read ${r}: ${key}`);
    }
  });

  test('a block whose bytes are those of the last read is that read\'s block again, parsed once', () => {
    const reader = new ProcIpvsReader();
    const feed = alternatingBuffers();
    const first = reader.read(feed(KERNEL_TEXT));
    const servers = first.get('10.96.0.10:80/TCP')?.servers();
    const counts = KERNEL_TEXT.replace(':14E9      Masq    1      0 ', ':14E9      Masq    1      1 ');
    assert.notEqual(counts, KERNEL_TEXT);
    const second = reader.read(feed(counts));
    assert.equal(second.get('10.96.0.10:80/TCP')?.servers(), servers, 'the same parse');
    assert.notEqual(second.get('[fd00::a]:53/UDP'), first.get('[fd00::a]:53/UDP'), 'its counts changed');
    assert.equal(second.get('[fd00::a]:53/UDP')?.servers()[0]?.activeConns, 1);
  });

  test('a reader keeps no older read\'s text alive, however many reads bring new lines', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const services: Parameters<typeof renderProcIpvs>[0][number][] = [];
    for (let i = 0; i < 3000; i++) {
      const realServers = Array.from({ length: 10 }, (_, e) => ({ family: 'IPv4' as const, address: `10.244.${i >> 8}.${e}`, port: 8080, weight: 1, forward: 'masq' as const, activeConns: 0, inactiveConns: 0 }));
      services.push({ family: 'IPv4', protocol: 'TCP', address: `10.96.${i >> 8}.${i & 255}`, port: 80, scheduler: 'rr', realServers });
    }
    const reader = new ProcIpvsReader();
    reader.read(Buffer.from(renderProcIpvs(services), 'latin1'));
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let r = 0; r < 40; r++) {
      // Each read brings a new virtual server and changes a weight in another one.
      services.push({ family: 'IPv4', protocol: 'TCP', address: `10.97.0.${r}`, port: 80, scheduler: 'rr', realServers: [] });
      const changed = services[r * 7] as (typeof services)[number];
      services[r * 7] = { ...changed, realServers: changed.realServers.map((rs, i) => (i === 0 ? { ...rs, weight: 2 } : rs)) };
      reader.read(Buffer.from(renderProcIpvs(services), 'latin1'));
    }
    const text = renderProcIpvs(services).length;
    gc();
    const retained = process.memoryUsage().heapUsed - before;
    // The last read's text (its blocks are slices of it) replaced the first one's; forty texts if leaked.
    assert.ok(retained < 4 * text, `${retained} bytes retained; one text is ${text}`);
  });

  test('a block\'s fingerprint ignores connection counts and nothing else', () => {
    const print = (text: string) => procBlocks(text).get('10.96.0.10:80/TCP')?.fingerprint;
    const base = print(KERNEL_TEXT);
    assert.equal(print(KERNEL_TEXT.replace('Masq    1      3          7         ', 'Masq    1      12345      678901    ')), base, 'counts');
    assert.equal(procBlocks(KERNEL_TEXT).get('10.96.0.92:443/TCP')?.fingerprint, '', 'no real servers');
    for (const [what, from, to] of [
      ['weight', 'Masq    1      3', 'Masq    2      3'],
      ['forwarding', '0AF40102:1F90      Masq ', '0AF40102:1F90      Route'],
      ['address', '0AF40102:1F90', '0AF40104:1F90'],
      ['port', '0AF40102:1F90', '0AF40102:1F91'],
      ['a server more', '  -> 0AF40103:1F90      Masq    0      0          1         ', '  -> 0AF40103:1F90      Masq    0      0          1         \n  -> 0AF40105:1F90      Masq    1      0          0         '],
      ['a server less', '  -> 0AF40103:1F90      Masq    0      0          1         \n', ''],
    ] as const) {
      assert.notEqual(print(KERNEL_TEXT.replace(from, to)), base, what);
    }
  });
});
