import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RealServer, VirtualServer, VirtualServerSpec } from '../../../src/model/kernel.js';
import { VsFlag } from '../../../src/model/kernel.js';
import {
  parseIpvsadmSave,
  parseIpvsadmSaveDetailed,
  renderIpvsadmSave,
  schedulerFlagNames,
} from '../../../src/model/text/ipvs.js';
import { TextParseError } from '../../../src/model/text/error.js';
import { fixture } from './helpers.js';

function vs(address: string, port: number, protocol: VirtualServer['protocol'] = 'TCP', extra: Partial<VirtualServer> = {}): VirtualServer {
  return {
    family: address.includes(':') ? 'IPv6' : 'IPv4',
    protocol,
    address,
    port,
    scheduler: 'rr',
    flags: 0,
    timeout: 0,
    ...extra,
  };
}

function rs(address: string, port: number, extra: Partial<RealServer> = {}): RealServer {
  return { address, port, weight: 1, forward: 'masq', ...extra };
}

function spec(v: VirtualServer, ...servers: RealServer[]): VirtualServerSpec {
  return { vs: v, realServers: servers };
}

test('renders the ipvsadm -Sn forms', () => {
  const text = renderIpvsadmSave([
    spec(vs('10.96.0.10', 53, 'UDP')),
    spec(vs('10.96.0.10', 53), rs('10.244.1.2', 53)),
    spec(vs('10.96.0.1', 5000, 'SCTP')),
    spec(vs('10.96.0.5', 443, 'TCP', { flags: VsFlag.PERSISTENT, timeout: 600 })),
    spec(vs('10.96.0.6', 80, 'TCP', { scheduler: 'sh', flags: VsFlag.SCHED1 | VsFlag.SCHED2 })),
    spec(vs('10.96.0.7', 53, 'UDP', { flags: VsFlag.ONEPACKET | VsFlag.SCHED3 })),
    spec(vs('fd00::10', 80), rs('fd00:244::2', 8080, { forward: 'route', weight: 3 }), rs('fd00:244::1', 8080, { forward: 'tunnel' })),
  ]);
  assert.equal(
    text,
    [
      '-A -t 10.96.0.5:443 -s rr -p 600',
      '-A -t 10.96.0.6:80 -s sh -b sh-fallback,sh-port',
      '-A -t 10.96.0.10:53 -s rr',
      '-a -t 10.96.0.10:53 -r 10.244.1.2:53 -m -w 1',
      '-A -u 10.96.0.7:53 -s rr -o -b flag-3',
      '-A -u 10.96.0.10:53 -s rr',
      '-A --sctp-service 10.96.0.1:5000 -s rr',
      '-A -t [fd00::10]:80 -s rr',
      '-a -t [fd00::10]:80 -r [fd00:244::1]:8080 -i -w 1 --tun-type ipip',
      '-a -t [fd00::10]:80 -r [fd00:244::2]:8080 -g -w 3',
      '',
    ].join('\n'),
  );
});

test('sorts addresses numerically, not as strings, and real servers by address then port', () => {
  const text = renderIpvsadmSave([
    spec(vs('10.96.0.100', 80), rs('10.0.0.10', 80), rs('10.0.0.9', 81), rs('10.0.0.9', 80)),
    spec(vs('10.96.0.9', 80)),
    spec(vs('200.0.0.1', 80)),
    spec(vs('10.96.0.9', 8)),
  ]);
  assert.deepEqual(text.trim().split('\n'), [
    '-A -t 10.96.0.9:8 -s rr',
    '-A -t 10.96.0.9:80 -s rr',
    '-A -t 10.96.0.100:80 -s rr',
    '-a -t 10.96.0.100:80 -r 10.0.0.9:80 -m -w 1',
    '-a -t 10.96.0.100:80 -r 10.0.0.9:81 -m -w 1',
    '-a -t 10.96.0.100:80 -r 10.0.0.10:80 -m -w 1',
    '-A -t 200.0.0.1:80 -s rr',
  ]);
});

test('renders non-canonical addresses in canonical form and an empty state as empty text', () => {
  assert.equal(renderIpvsadmSave([spec(vs('FD00:0::A', 80))]), '-A -t [fd00::a]:80 -s rr\n');
  assert.equal(renderIpvsadmSave([]), '');
});

test('scheduler flags print as ipvsadm names them per scheduler', () => {
  assert.deepEqual(schedulerFlagNames('mh', VsFlag.SCHED1 | VsFlag.SCHED2), ['mh-fallback', 'mh-port']);
  assert.deepEqual(schedulerFlagNames('rr', VsFlag.SCHED1 | VsFlag.SCHED2 | VsFlag.SCHED3), ['flag-1', 'flag-2', 'flag-3']);
  // ipvsadm prints a bare "-b " when the scheduler has no name for the bit; we match it.
  assert.equal(renderIpvsadmSave([spec(vs('1.2.3.4', 80, 'TCP', { scheduler: 'sh', flags: VsFlag.SCHED3 }))]), '-A -t 1.2.3.4:80 -s sh -b \n');
});

test('refuses to render what ipvsadm cannot print', () => {
  assert.throws(() => renderIpvsadmSave([spec(vs('1.2.3.4', 80), rs('10.0.0.1', 80, { forward: 'bypass' }))]), /bypass/);
  assert.throws(() => renderIpvsadmSave([spec(vs('not-an-ip', 80))]), /invalid/);
});

test('round trip: render → parse → render is identical', () => {
  const specs = [
    spec(vs('10.96.0.10', 53, 'UDP'), rs('10.244.1.2', 53), rs('10.244.1.3', 53, { weight: 0 })),
    spec(vs('10.96.0.5', 443, 'TCP', { flags: VsFlag.PERSISTENT, timeout: 10800 })),
    spec(vs('10.96.0.6', 80, 'TCP', { scheduler: 'mh', flags: VsFlag.SCHED2 })),
    spec(vs('10.96.0.7', 53, 'UDP', { flags: VsFlag.ONEPACKET })),
    spec(vs('10.96.0.8', 5000, 'SCTP'), rs('10.244.1.9', 5000)),
    spec(vs('fd00::10', 80), rs('fd00:244::2', 8080, { forward: 'route' }), rs('fd00:244::3', 8080, { forward: 'tunnel', weight: 7 })),
  ];
  const text = renderIpvsadmSave(specs);
  const parsed = parseIpvsadmSave(text);
  assert.equal(renderIpvsadmSave(parsed), text);
  const persistent = parsed.find((s) => s.vs.port === 443);
  assert.deepEqual(persistent?.vs, specs[1]?.vs);
});

test('parses the sample built from ipvsadm 1.31 FMT_RULE output', () => {
  const { specs, dropped } = parseIpvsadmSaveDetailed(fixture('ipvsadm-save-sample.txt'));
  assert.equal(renderIpvsadmSave(specs), fixture('ipvsadm-save-sample.rendered.txt'));
  const sctp = specs.find((s) => s.vs.protocol === 'SCTP');
  assert.deepEqual(sctp?.vs, vs('10.96.0.50', 5000, 'SCTP'));
  const v6 = specs.find((s) => s.vs.address === 'fd00::10' && s.vs.protocol === 'TCP');
  assert.equal(v6?.vs.family, 'IPv6');
  assert.equal(v6?.vs.flags, VsFlag.PERSISTENT);
  assert.equal(v6?.vs.timeout, 600);
  const ops = specs.find((s) => s.vs.address === '10.96.0.11');
  assert.equal(ops?.vs.flags, VsFlag.ONEPACKET | VsFlag.SCHED1 | VsFlag.SCHED3);
  const sh = specs.find((s) => s.vs.address === '10.96.0.40');
  assert.equal(sh?.vs.flags, VsFlag.SCHED1 | VsFlag.SCHED2);
  const np = specs.find((s) => s.vs.port === 30080);
  assert.deepEqual(
    np?.realServers.map((r) => r.forward),
    ['route', 'tunnel', 'tunnel', 'tunnel'],
  );
  assert.deepEqual(
    dropped.map((d) => [d.line, d.what]),
    [
      [9, 'persistence netmask 255.255.255.0'],
      [9, 'persistence engine sip'],
      [15, 'tunnel options --tun-type gue --tun-port 6080 --tun-nocsum'],
      [16, 'tunnel options --tun-type gre --tun-csum'],
      [22, 'persistence netmask 64'],
      [26, 'firewall-mark virtual server 100'],
      [27, 'firewall-mark real server 100'],
      [28, 'firewall-mark virtual server 7'],
    ],
  );
});

test('parse accepts ipvsadm defaults, long options, thresholds, comments and blank lines', () => {
  const { specs, dropped } = parseIpvsadmSaveDetailed(
    [
      '# saved by hand',
      '',
      '--add-service --tcp-service 10.0.0.1:80',
      '-A -u 10.0.0.1:53 -s rr -p',
      '--add-server --tcp-service 10.0.0.1:80 --real-server 10.1.0.1:8080 -x 100 -y 10',
      '-a -t 10.0.0.1:80 -r 10.1.0.2',
    ].join('\n'),
  );
  assert.deepEqual(specs[0]?.vs, vs('10.0.0.1', 80, 'TCP', { scheduler: 'wlc' }));
  assert.deepEqual(specs[0]?.realServers, [rs('10.1.0.1', 8080, { forward: 'route' }), rs('10.1.0.2', 0, { forward: 'route' })]);
  assert.deepEqual(specs[1]?.vs, vs('10.0.0.1', 53, 'UDP', { flags: VsFlag.PERSISTENT, timeout: 360 }));
  assert.deepEqual(dropped.map((d) => d.what), ['thresholds -x 100 -y 10']);
});

const MALFORMED: readonly [string, RegExp][] = [
  ['-X -t 10.0.0.1:80 -s rr', /expected -A or -a/],
  ['-A -t 10.0.0.1:99999 -s rr', /invalid service address/],
  ['-A -t fd00::1:80 -s rr', /invalid service address/],
  ['-A -s rr', /no virtual service/],
  ['-A -t 10.0.0.1:80 -s rr --bogus', /unknown option/],
  ['-A -t 10.0.0.1:80 -s rr -b sh-port', /needs scheduler sh/],
  ['-A -t 10.0.0.1:80 -s rr -b flag-9', /invalid scheduler flag/],
  ['-A -t 10.0.0.1:80 -s rr -M 255.255.255.0', /-M needs -p/],
  ['-A -t 10.0.0.1:80 -s rr -w 1', /not allowed with -A/],
  ['-a -t 10.0.0.9:80 -r 10.1.0.1:80 -m -w 1', /not defined before/],
  ['-A -t 10.0.0.1:80 -s', /needs a value/],
];

test('rejects malformed lines, naming the line number and the line', () => {
  for (const [line, reason] of MALFORMED) {
    const text = `-A -t 10.9.9.9:80 -s rr\n${line}\n`;
    assert.throws(
      () => parseIpvsadmSave(text),
      (e: unknown) => {
        assert.ok(e instanceof TextParseError, `${line}: not a TextParseError`);
        assert.equal(e.line, 2);
        assert.equal(e.text, line);
        assert.match(e.message, reason);
        assert.match(e.message, /line 2/);
        assert.ok(e.message.includes(JSON.stringify(line)));
        return true;
      },
    );
  }
});

test('rejects duplicates and out-of-range weights', () => {
  assert.throws(() => parseIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s wlc\n'), /line 2: duplicate virtual server/);
  assert.throws(
    () => parseIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 2\n'),
    /line 3: duplicate real server/,
  );
  assert.throws(() => parseIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 70000\n'), /line 2: weight 70000 out of range/);
});
