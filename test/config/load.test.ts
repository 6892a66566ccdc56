import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, KUBE_PROXY_FLAGS, formatHelp, loadConfig, type FlagSpec, type LoadOptions } from '../../src/config/load.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { throwsConfigError } from './helpers.js';

const EXTRA: readonly FlagSpec[] = [
  { name: 'manifests', kind: 'repeatable', help: 'Manifest files or directories.' },
  { name: 'node-ip', kind: 'list', help: 'Node IPs.' },
  { name: 'output', kind: 'string', help: 'What to print.', default: 'all' },
  { name: 'once', kind: 'bool', help: 'Sync once and exit.' },
  { name: 'status-file', kind: 'string', help: 'No default.' },
];

function opts(files: Readonly<Record<string, string>> = {}, hostname = 'Host-1'): LoadOptions {
  return {
    extraFlags: EXTRA,
    hostname,
    readFile: (path) => {
      const text = files[path];
      // As node:fs fails: a message led by the errno name, and the name in `code`.
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
  };
}

function load(...argv: string[]): ProxyConfig {
  return loadConfig(argv, opts()).config;
}

const DEFAULTS: ProxyConfig = {
  mode: 'ipvs',
  ipvs: {
    scheduler: 'rr',
    syncPeriodMs: 30_000,
    minSyncPeriodMs: 1_000,
    excludeCIDRs: [],
    strictARP: false,
    tcpTimeoutS: 0,
    tcpFinTimeoutS: 0,
    udpTimeoutS: 0,
  },
  masqueradeAll: false,
  masqueradeBit: 14,
  detectLocal: {
    mode: 'ClusterCIDR',
    clusterCIDRs: [],
    nodeCIDRs: [],
    bridgeInterface: '',
    interfaceNamePrefix: '',
  },
  nodePortAddresses: [],
  hostnameOverride: 'host-1',
  healthzBindAddress: '0.0.0.0:10256',
  metricsBindAddress: '127.0.0.1:10249',
  bindAddress: '0.0.0.0',
  kubeconfig: '',
  master: '',
  cleanup: false,
  initOnly: false,
  configSyncPeriodMs: 900_000,
  conntrack: {
    maxPerCore: 32768,
    min: 131072,
    tcpEstablishedTimeoutS: 86_400,
    tcpCloseWaitTimeoutS: 3_600,
    tcpBeLiberal: false,
    udpTimeoutS: 0,
    udpStreamTimeoutS: 0,
  },
  // kube-proxy v1.36.3's flag defaults (kube-proxy --help).
  clientConnection: { qps: 5, burst: 10, contentType: 'application/vnd.kubernetes.protobuf', acceptContentTypes: '' },
  featureGates: {},
  allowServiceExternalIPs: true,
  oomScoreAdj: -999,
  bindAddressHardFail: false,
  logging: { format: 'text', splitStream: false },
  configFile: undefined,
};

test('no flags gives the kube-proxy defaults', () => {
  const r = loadConfig([], opts());
  assert.deepEqual(r.config, DEFAULTS);
  assert.equal(r.help, false);
  assert.deepEqual(r.positional, []);
  assert.deepEqual(r.ignoredFlags, []);
});

test('every kube-proxy setting flag', () => {
  const cases: ReadonlyArray<readonly [string[], (c: ProxyConfig) => unknown, unknown]> = [
    [['--proxy-mode=ipvs'], (c) => c.mode, 'ipvs'],
    [['--proxy-mode='], (c) => c.mode, 'ipvs'],
    [['--ipvs-scheduler=wrr'], (c) => c.ipvs.scheduler, 'wrr'],
    [['--ipvs-scheduler', ''], (c) => c.ipvs.scheduler, 'rr'],
    [['--ipvs-sync-period=1m'], (c) => c.ipvs.syncPeriodMs, 60_000],
    [['--ipvs-min-sync-period', '0'], (c) => c.ipvs.minSyncPeriodMs, 0],
    [['--ipvs-min-sync-period=500ms'], (c) => c.ipvs.minSyncPeriodMs, 500],
    [['--ipvs-exclude-cidrs=10.0.0.0/8,fd00::1/64', '--ipvs-exclude-cidrs', '192.168.1.7/24'],
      (c) => c.ipvs.excludeCIDRs, ['10.0.0.0/8', 'fd00::/64', '192.168.1.0/24']],
    [['--ipvs-strict-arp'], (c) => c.ipvs.strictARP, true],
    [['--ipvs-strict-arp=false'], (c) => c.ipvs.strictARP, false],
    [['--ipvs-tcp-timeout=15m'], (c) => c.ipvs.tcpTimeoutS, 900],
    // Whole seconds, truncated like Go's int(d.Seconds()).
    [['--ipvs-tcpfin-timeout=1.9s'], (c) => c.ipvs.tcpFinTimeoutS, 1],
    [['--ipvs-udp-timeout', '5m'], (c) => c.ipvs.udpTimeoutS, 300],
    [['--masquerade-all'], (c) => c.masqueradeAll, true],
    [['--masquerade-all=true'], (c) => c.masqueradeAll, true],
    [['--iptables-masquerade-bit=0'], (c) => c.masqueradeBit, 0],
    [['--iptables-masquerade-bit', '31'], (c) => c.masqueradeBit, 31],
    [['--cluster-cidr=10.244.1.0/16'], (c) => c.detectLocal.clusterCIDRs, ['10.244.0.0/16']],
    [['--cluster-cidr', '10.244.0.0/16, fd00:10:244::/56'], (c) => c.detectLocal.clusterCIDRs,
      ['10.244.0.0/16', 'fd00:10:244::/56']],
    [['--detect-local-mode=NodeCIDR'], (c) => c.detectLocal.mode, 'NodeCIDR'],
    [['--detect-local-mode=BridgeInterface', '--pod-bridge-interface=cbr0'], (c) => c.detectLocal,
      { ...DEFAULTS.detectLocal, mode: 'BridgeInterface', bridgeInterface: 'cbr0' }],
    [['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix', 'veth'], (c) => c.detectLocal,
      { ...DEFAULTS.detectLocal, mode: 'InterfaceNamePrefix', interfaceNamePrefix: 'veth' }],
    [['--nodeport-addresses=192.168.0.5/16,fd00::/64'], (c) => c.nodePortAddresses, ['192.168.0.0/16', 'fd00::/64']],
    [['--nodeport-addresses=primary'], (c) => c.nodePortAddresses, ['primary']],
    [['--hostname-override=  Node-B.Example '], (c) => c.hostnameOverride, 'node-b.example'],
    [['--healthz-bind-address=10.0.0.1:1234'], (c) => c.healthzBindAddress, '10.0.0.1:1234'],
    [['--healthz-bind-address='], (c) => c.healthzBindAddress, ''],
    [['--metrics-bind-address=[::]:9999'], (c) => c.metricsBindAddress, '[::]:9999'],
    [['--metrics-bind-address', ''], (c) => c.metricsBindAddress, ''],
    [['--bind-address=10.0.0.7'], (c) => c.bindAddress, '10.0.0.7'],
    [['--bind-address=FD00:0:0::7'], (c) => c.bindAddress, 'fd00::7'],
    [['--kubeconfig=/etc/kubernetes/proxy.conf'], (c) => c.kubeconfig, '/etc/kubernetes/proxy.conf'],
    [['--master', 'https://10.0.0.1:6443'], (c) => c.master, 'https://10.0.0.1:6443'],
    [['--cleanup'], (c) => c.cleanup, true],
    [['--cleanup-ipvs'], (c) => c.cleanup, true],
    [['--cleanup-ipvs=true'], (c) => c.cleanup, true],
    [['--cleanup-ipvs=false'], (c) => c.cleanup, false],
    [['--init-only'], (c) => c.initOnly, true],
    [['--config-sync-period=1h'], (c) => c.configSyncPeriodMs, 3_600_000],
    [['--conntrack-max-per-core=0'], (c) => c.conntrack.maxPerCore, 0],
    [['--conntrack-min', '1000'], (c) => c.conntrack.min, 1000],
    [['--conntrack-tcp-timeout-established=0'], (c) => c.conntrack.tcpEstablishedTimeoutS, 0],
    [['--conntrack-tcp-timeout-close-wait=60s'], (c) => c.conntrack.tcpCloseWaitTimeoutS, 60],
    [['--log-format=json'], (c) => c.logging.format, 'json'],
    [['--log-format', 'text'], (c) => c.logging.format, 'text'],
  ];
  for (const [argv, get, want] of cases) {
    assert.deepEqual(get(load(...argv)), want, argv.join(' '));
  }
});

test('the flag table covers every flag the tests exercise, with help texts', () => {
  const names = new Set(KUBE_PROXY_FLAGS.map((f) => f.name));
  for (const n of [
    'proxy-mode', 'ipvs-scheduler', 'ipvs-sync-period', 'ipvs-min-sync-period', 'ipvs-exclude-cidrs',
    'ipvs-strict-arp', 'ipvs-tcp-timeout', 'ipvs-tcpfin-timeout', 'ipvs-udp-timeout', 'masquerade-all',
    'iptables-masquerade-bit', 'cluster-cidr', 'detect-local-mode', 'pod-bridge-interface',
    'pod-interface-name-prefix', 'nodeport-addresses', 'hostname-override', 'healthz-bind-address',
    'metrics-bind-address', 'bind-address', 'kubeconfig', 'master', 'cleanup', 'cleanup-ipvs', 'init-only',
    'config', 'config-sync-period', 'conntrack-max-per-core', 'conntrack-min',
    'conntrack-tcp-timeout-established', 'conntrack-tcp-timeout-close-wait', 'log-format', 'v', 'help',
  ]) {
    assert.ok(names.has(n), n);
  }
  for (const f of KUBE_PROXY_FLAGS) assert.ok(f.help.length > 10, `help for --${f.name}`);
  const sync = KUBE_PROXY_FLAGS.find((f) => f.name === 'ipvs-sync-period');
  assert.equal(sync?.default, '30s');
  assert.equal(KUBE_PROXY_FLAGS.find((f) => f.name === 'ipvs-min-sync-period')?.default, '1s');
});

test('-v and --v are accepted and ignored', () => {
  assert.deepEqual(load('-v', '4'), DEFAULTS);
  assert.deepEqual(load('-v=2', '--v=9'), DEFAULTS);
  assert.deepEqual(load('-v3'), DEFAULTS);
});

test('the host name is trimmed and lower-cased when not overridden', () => {
  assert.equal(loadConfig([], opts({}, ' Worker-7.LAN\n')).config.hostnameOverride, 'worker-7.lan');
});

test('an IPv6 --bind-address moves the default server addresses to IPv6', () => {
  const c = load('--bind-address=::');
  assert.equal(c.bindAddress, '::');
  assert.equal(c.healthzBindAddress, '[::]:10256');
  assert.equal(c.metricsBindAddress, '[::1]:10249');
  // Explicit addresses stay as given.
  assert.equal(load('--bind-address=::', '--healthz-bind-address=0.0.0.0:1').healthzBindAddress, '0.0.0.0:1');
});

test('extra flags: given values, defaults, false and [] when absent', () => {
  const r = loadConfig(
    ['plan', '--manifests', 'a.yaml', '--node-ip=10.0.0.1,fd00::1', '--manifests=dir,with,commas', '--once', 'x'],
    opts(),
  );
  assert.deepEqual(r.extra.get('manifests'), ['a.yaml', 'dir,with,commas']);
  assert.deepEqual(r.extra.get('node-ip'), ['10.0.0.1', 'fd00::1']);
  assert.equal(r.extra.get('output'), 'all');
  assert.equal(r.extra.get('once'), true);
  assert.equal(r.extra.has('status-file'), false);
  assert.deepEqual(r.positional, ['plan', 'x']);

  const empty = loadConfig([], opts());
  assert.deepEqual(empty.extra.get('manifests'), []);
  assert.deepEqual(empty.extra.get('node-ip'), []);
  assert.equal(empty.extra.get('once'), false);
  assert.equal(loadConfig(['--output=ipvs'], opts()).extra.get('output'), 'ipvs');
});

test('extra flags that clash with kube-proxy flags are programming errors', () => {
  assert.throws(
    () => loadConfig([], { ...opts(), extraFlags: [{ name: 'cleanup', kind: 'bool', help: 'x' }] }),
    (e: unknown) => e instanceof Error && !(e instanceof ConfigError),
  );
});

test('--help skips validation and file loading and reports help', () => {
  const r = loadConfig(
    ['--help', '--ipvs-sync-period=0s', '--config=/missing.yaml', '--hostname-override= ', '--log-format=xml'],
    opts(),
  );
  assert.equal(r.help, true);
  assert.deepEqual(r.config, DEFAULTS);
  assert.equal(loadConfig(['-h'], opts()).help, true);
  // Unknown flags are still reported, as pflag does.
  throwsConfigError(() => loadConfig(['--help', '--bogus'], opts()), '--bogus');
});

test('formatHelp lists command flags and kube-proxy flags with defaults', () => {
  const text = formatHelp(EXTRA);
  assert.match(text, /Command flags:\n/);
  assert.match(text, /--manifests string +Manifest files or directories\./);
  assert.match(text, /--ipvs-sync-period duration +.*\(default 30s\)/);
  // Value types and defaults as kube-proxy v1.36.3's --help shows them.
  assert.match(text, /--healthz-bind-address ipport +.*\(default 0\.0\.0\.0:10256\)/);
  assert.match(text, /--iptables-masquerade-bit int32 +.*\(default 14\)/);
  assert.match(text, /--kube-api-qps float32 +.*\(default 5\)/);
  assert.match(text, /--oom-score-adj int32 +.*\(default -999\)/);
  assert.match(text, /--feature-gates mapStringBool +.*AllowServiceExternalIPs=true\|false \(GA - default=true\)/);
  assert.match(text, /--version version\[=true\]/);
  assert.match(text, /--cleanup-ipvs +.*DEPRECATED/);
  assert.match(text, / {2}-v, --v Level/);
  assert.doesNotMatch(formatHelp(), /Command flags/);
  // Flags without effect are listed apart; upstream's hidden deprecated flags are not listed.
  const [effective = '', inert = ''] = text.split('accepted without effect');
  for (const f of ['--profiling', '--iptables-sync-period', '--iptables-min-sync-period', '--iptables-localhost-nodeports', '--show-hidden-metrics-for-version', '--boot-id-file', '--machine-id-file', '--vmodule', '--log-json-info-buffer-size']) {
    assert.ok(inert.includes(`${f} `), f);
    assert.ok(!effective.includes(`${f} `), f);
  }
  assert.doesNotMatch(text, /--healthz-port|--metrics-port/);
});

const FILE = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
hostnameOverride: From-File
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
ipvs:
  scheduler: lc
  syncPeriod: 45s
  excludeCIDRs: [10.96.0.0/12]
`;

test('--config replaces the kube-proxy settings, with the file defaults', () => {
  const r = loadConfig(['--config', '/etc/kp.yaml'], opts({ '/etc/kp.yaml': FILE }));
  assert.deepEqual(r.config, {
    ...DEFAULTS,
    // minSyncPeriod is 0s in a file that does not set it, unlike the 1s flag default.
    ipvs: { ...DEFAULTS.ipvs, scheduler: 'lc', syncPeriodMs: 45_000, minSyncPeriodMs: 0, excludeCIDRs: ['10.96.0.0/12'] },
    kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf',
    hostnameOverride: 'from-file',
    configFile: '/etc/kp.yaml',
  });
  assert.deepEqual(r.ignoredFlags, []);
});

test('with --config, kube-proxy setting flags are ignored and reported', () => {
  const r = loadConfig(
    ['--ipvs-scheduler=sh', '--config=/etc/kp.yaml', '--kubeconfig=/other', '--masquerade-all', '--ipvs-sync-period=bogus'],
    opts({ '/etc/kp.yaml': FILE }),
  );
  assert.equal(r.config.ipvs.scheduler, 'lc');
  assert.equal(r.config.ipvs.syncPeriodMs, 45_000);
  assert.equal(r.config.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  assert.equal(r.config.masqueradeAll, false);
  assert.deepEqual(r.ignoredFlags, ['--ipvs-scheduler', '--ipvs-sync-period', '--masquerade-all', '--kubeconfig']);
});

test('with --config, hostname, logging, process and extra flags still apply', () => {
  const r = loadConfig(
    ['--config=/etc/kp.yaml', '--hostname-override=Node-X', '--log-format=json', '-v=5', '--master=https://api:6443',
      '--cleanup', '--init-only', '--once', '--manifests', 'm.yaml'],
    opts({ '/etc/kp.yaml': FILE }),
  );
  assert.equal(r.config.hostnameOverride, 'node-x');
  assert.equal(r.config.logging.format, 'json');
  assert.equal(r.config.master, 'https://api:6443');
  assert.equal(r.config.cleanup, true);
  assert.equal(r.config.initOnly, true);
  assert.equal(r.extra.get('once'), true);
  assert.deepEqual(r.extra.get('manifests'), ['m.yaml']);
  assert.deepEqual(r.ignoredFlags, []);
});

test('with --config and no hostnameOverride anywhere, the host name is used', () => {
  const file = FILE.replace('hostnameOverride: From-File\n', '');
  assert.equal(loadConfig(['--config=/k'], opts({ '/k': file }, 'MyHost')).config.hostnameOverride, 'myhost');
  // An explicitly empty flag counts as unset, as upstream.
  assert.equal(loadConfig(['--config=/k', '--hostname-override='], opts({ '/k': FILE })).config.hostnameOverride, 'from-file');
});

test('an empty --config means no file', () => {
  assert.deepEqual(load('--config='), DEFAULTS);
});

test('--config errors: unreadable file, bad content, validation in file terms', () => {
  throwsConfigError(() => loadConfig(['--config=/nope.yaml'], opts()), 'cannot read --config file /nope.yaml: does not exist; check the path');
  throwsConfigError(
    () => loadConfig(['--config=/k'], opts({ '/k': FILE.replace('syncPeriod: 45s', 'syncPeriod: 45s\n  minSyncPeriod: 1m') })),
    '"1m"',
    'ipvs.minSyncPeriod in /k',
    'ipvs.syncPeriod in /k (45s)',
  );
  throwsConfigError(
    () => loadConfig(['--config=/k'], opts({ '/k': FILE.replace('kind: KubeProxyConfiguration', 'kind: Other') })),
    'kind in /k',
    '"Other"',
  );
});

test('validation errors name the flag, the value and the accepted form', () => {
  const cases: ReadonlyArray<readonly [string[], ...string[]]> = [
    [['--proxy-mode=iptables'], 'invalid value "iptables" for --proxy-mode', '"ipvs"'],
    [['--proxy-mode=nftables'], '"nftables"', '--proxy-mode'],
    [['--ipvs-scheduler=fastest'], 'invalid value "fastest" for --ipvs-scheduler', 'rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos'],
    [['--ipvs-scheduler=RR'], '"RR"', '--ipvs-scheduler'],
    [['--ipvs-sync-period=10x'], 'invalid value "10x" for --ipvs-sync-period: expected a duration such as 30s, 1m or 500ms'],
    [['--ipvs-sync-period=30'], '"30"', '--ipvs-sync-period', 'a duration'],
    [['--ipvs-sync-period=0s'], 'invalid value "0s" for --ipvs-sync-period', 'greater than 0'],
    [['--ipvs-sync-period=-1s'], '"-1s"', '--ipvs-sync-period', 'greater than 0'],
    [['--ipvs-min-sync-period=-1s'], 'invalid value "-1s" for --ipvs-min-sync-period', 'at least 0s'],
    [['--ipvs-min-sync-period=1m'], 'invalid value "1m" for --ipvs-min-sync-period', 'no longer than --ipvs-sync-period (30s)'],
    // The default --ipvs-min-sync-period (1s) must fit under a short --ipvs-sync-period too.
    [['--ipvs-sync-period=500ms'], 'invalid value "1s" for --ipvs-min-sync-period', '--ipvs-sync-period (500ms)'],
    [['--ipvs-min-sync-period=xyz'], '"xyz"', '--ipvs-min-sync-period', 'a duration'],
    [['--ipvs-exclude-cidrs=10.0.0.0/8,10.0.0.1'], 'invalid value "10.0.0.1" for --ipvs-exclude-cidrs', 'CIDRs'],
    [['--ipvs-exclude-cidrs=10.0.0.0/33'], '"10.0.0.0/33"', '--ipvs-exclude-cidrs'],
    [['--ipvs-strict-arp=maybe'], 'invalid value "maybe" for --ipvs-strict-arp', 'true or false'],
    [['--ipvs-tcp-timeout=-1s'], 'invalid value "-1s" for --ipvs-tcp-timeout', 'at least 0s'],
    [['--ipvs-tcp-timeout=1x'], '"1x"', '--ipvs-tcp-timeout', 'a duration'],
    [['--ipvs-tcpfin-timeout=-2m'], 'invalid value "-2m" for --ipvs-tcpfin-timeout', 'at least 0s'],
    [['--ipvs-udp-timeout=-3h'], 'invalid value "-3h" for --ipvs-udp-timeout', 'at least 0s'],
    [['--masquerade-all=2'], '"2"', '--masquerade-all', 'true or false'],
    [['--iptables-masquerade-bit=32'], 'invalid value "32" for --iptables-masquerade-bit', '0 to 31'],
    [['--iptables-masquerade-bit=-1'], '"-1"', '--iptables-masquerade-bit', '0 to 31'],
    [['--iptables-masquerade-bit=1.5'], '"1.5"', '--iptables-masquerade-bit', 'an integer'],
    [['--iptables-masquerade-bit=0x0e'], '"0x0e"', '--iptables-masquerade-bit', 'an integer'],
    [['--cluster-cidr=10.0.0.0'], 'invalid value "10.0.0.0" for --cluster-cidr', 'CIDR'],
    [['--cluster-cidr=10.0.0.0/8,10.1.0.0/16'], 'invalid value "10.0.0.0/8,10.1.0.0/16" for --cluster-cidr', 'one CIDR per IP family'],
    [['--cluster-cidr=10.0.0.0/8,fd00::/48,10.1.0.0/16'], '--cluster-cidr', 'one CIDR per IP family'],
    [['--detect-local-mode=LocalCIDR'], 'invalid value "LocalCIDR" for --detect-local-mode', 'ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix'],
    [['--detect-local-mode=BridgeInterface'], 'invalid value "" for --pod-bridge-interface', 'when --detect-local-mode is BridgeInterface'],
    [['--detect-local-mode=InterfaceNamePrefix', '--pod-interface-name-prefix= '], '--pod-interface-name-prefix', 'when --detect-local-mode is InterfaceNamePrefix'],
    [['--nodeport-addresses=primary,10.0.0.0/8'], 'invalid value "primary,10.0.0.0/8" for --nodeport-addresses', '"primary" alone'],
    [['--nodeport-addresses=10.0.0.0/8,eth0'], 'invalid value "eth0" for --nodeport-addresses', 'CIDRs'],
    [['--hostname-override=   '], 'invalid value "   " for --hostname-override', 'non-empty'],
    [['--healthz-bind-address=10256'], 'invalid value "10256" for --healthz-bind-address', 'IP:port', 'disable'],
    [['--healthz-bind-address=0.0.0.0:0'], '"0.0.0.0:0"', '--healthz-bind-address'],
    [['--healthz-bind-address=localhost:10256'], '"localhost:10256"', '--healthz-bind-address'],
    [['--metrics-bind-address=::1:10249'], 'invalid value "::1:10249" for --metrics-bind-address', 'IP:port'],
    [['--metrics-bind-address=127.0.0.1:65536'], '"127.0.0.1:65536"', '--metrics-bind-address'],
    [['--bind-address=0.0.0.0:80'], 'invalid value "0.0.0.0:80" for --bind-address', 'an IP address'],
    [['--bind-address=host'], '"host"', '--bind-address'],
    [['--config-sync-period=0'], 'invalid value "0" for --config-sync-period', 'greater than 0'],
    [['--config-sync-period=soon'], '"soon"', '--config-sync-period', 'a duration'],
    [['--conntrack-max-per-core=-1'], 'invalid value "-1" for --conntrack-max-per-core', 'at least 0'],
    [['--conntrack-max-per-core=lots'], '"lots"', '--conntrack-max-per-core', 'an integer'],
    [['--conntrack-max-per-core=4294967296'], '"4294967296"', '--conntrack-max-per-core', 'an integer'],
    [['--conntrack-min=-5'], 'invalid value "-5" for --conntrack-min', 'at least 0'],
    [['--conntrack-tcp-timeout-established=-1h'], 'invalid value "-1h" for --conntrack-tcp-timeout-established', 'at least 0s'],
    [['--conntrack-tcp-timeout-close-wait=-1s'], 'invalid value "-1s" for --conntrack-tcp-timeout-close-wait', 'at least 0s'],
    [['--log-format=xml'], 'invalid value "xml" for --log-format', 'text or json'],
    [['--cleanup=please'], '"please"', '--cleanup', 'true or false'],
    [['--bogus-flag'], 'unknown flag --bogus-flag'],
    [['--kubeconfig'], '--kubeconfig', 'needs a value'],
  ];
  for (const [argv, ...parts] of cases) {
    let err;
    try {
      err = throwsConfigError(() => load(...argv), ...parts);
    } catch (e) {
      throw new Error(`${argv.join(' ')}: ${e instanceof Error ? e.message : String(e)}`);
    }
    assert.ok(err.setting.startsWith('-'), `${argv.join(' ')}: setting ${err.setting}`);
  }
});

test('an empty host name without --hostname-override is an error', () => {
  throwsConfigError(() => loadConfig([], opts({}, '  ')), '--hostname-override');
  assert.equal(loadConfig(['--hostname-override=n1'], opts({}, '')).config.hostnameOverride, 'n1');
});

// The flags kube-ipvs lacked before following kube-proxy v1.36.3's full list, with the values
// kube-proxy gives them (test/api/kube-proxy-reference.test.ts compares the written
// configurations with the binary's).
test('client connection, OOM score, hard fail, conntrack and feature gate flags take effect', () => {
  const cases: ReadonlyArray<readonly [string[], (c: ProxyConfig) => unknown, unknown]> = [
    [['--kube-api-qps=7.5', '--kube-api-burst=20', '--kube-api-content-type=application/json'], (c) => c.clientConnection,
      { qps: 7.5, burst: 20, contentType: 'application/json', acceptContentTypes: '' }],
    [['--kube-api-qps=-1'], (c) => c.clientConnection.qps, -1],
    [['--oom-score-adj=-500'], (c) => c.oomScoreAdj, -500],
    [['--oom-score-adj', '1000'], (c) => c.oomScoreAdj, 1000],
    [['--bind-address-hard-fail'], (c) => c.bindAddressHardFail, true],
    [['--conntrack-tcp-be-liberal'], (c) => c.conntrack.tcpBeLiberal, true],
    [['--conntrack-udp-timeout=30s', '--conntrack-udp-timeout-stream=2m'], (c) => [c.conntrack.udpTimeoutS, c.conntrack.udpStreamTimeoutS], [30, 120]],
    [['--feature-gates=AllowServiceExternalIPs=false'], (c) => [c.allowServiceExternalIPs, c.featureGates], [false, { AllowServiceExternalIPs: false }]],
    [['--feature-gates=LoggingAlphaOptions=true', '--feature-gates', 'AllowServiceExternalIPs=true'], (c) => c.featureGates,
      { LoggingAlphaOptions: true, AllowServiceExternalIPs: true }],
    [['--logging-format=json'], (c) => c.logging, { format: 'json', splitStream: false }],
    [['--feature-gates=LoggingAlphaOptions=true', '--log-text-split-stream'], (c) => c.logging, { format: 'text', splitStream: true }],
    [['--feature-gates=LoggingAlphaOptions=true', '--log-json-split-stream', '--logging-format=json'], (c) => c.logging, { format: 'json', splitStream: true }],
    // The text option does not split the json format.
    [['--feature-gates=LoggingAlphaOptions=true', '--log-text-split-stream', '--logging-format=json'], (c) => c.logging, { format: 'json', splitStream: false }],
    // Both name the format; when both are given, kube-proxy's --logging-format wins.
    [['--logging-format=json', '--log-format=text'], (c) => c.logging.format, 'json'],
    // pflag's IP:port flags take a bare IP; the port comes from the deprecated port flags (default 10256/10249).
    [['--healthz-bind-address=10.0.0.1'], (c) => c.healthzBindAddress, '10.0.0.1:10256'],
    [['--metrics-bind-address=127.0.0.2', '--metrics-port=9999'], (c) => c.metricsBindAddress, '127.0.0.2:9999'],
    [['--healthz-port=0'], (c) => c.healthzBindAddress, ''],
    [['--healthz-port=1234'], (c) => c.healthzBindAddress, '0.0.0.0:10256'],
  ];
  for (const [argv, get, want] of cases) assert.deepEqual(get(load(...argv)), want, argv.join(' '));
});

test('--version: bare or true prints, raw prints everything, false or this release\'s version do not; --help wins', () => {
  assert.equal(loadConfig(['--version'], opts()).printVersion, 'short');
  assert.equal(loadConfig(['--version=true'], opts()).printVersion, 'short');
  assert.equal(loadConfig(['--version=raw'], opts()).printVersion, 'raw');
  assert.equal(loadConfig(['--version=false'], opts()).printVersion, undefined);
  assert.equal(loadConfig(['--version', '--help'], opts()).printVersion, undefined);
  // As --help, it skips loading and validating the rest.
  assert.equal(loadConfig(['--version', '--config=/missing', '--ipvs-sync-period=0s'], opts()).printVersion, 'short');
  const reported = loadConfig(['--version=v1.36.3-custom'], opts());
  assert.equal(reported.printVersion, undefined);
  assert.match(JSON.stringify(reported.warnings), /--version=v1\.36\.3-custom \(kube-ipvs reports its own version\)/);
  throwsConfigError(() => loadConfig(['--version=v1.35.0'], opts()), '"v1.35.0"', '--version', 'v1.36.3');
  throwsConfigError(() => loadConfig(['--version=often'], opts()), '"often"', '--version', 'true, false or raw');
});

test('--write-config-to: the effective settings, with --hostname-override as kube-proxy applies it; deprecated ports not applied', () => {
  const r = loadConfig(['--write-config-to=/tmp/x.yaml', '--hostname-override= Node-B ', '--healthz-port=0'], opts());
  assert.equal(r.writeConfigTo, '/tmp/x.yaml');
  assert.equal(r.settings.hostnameOverride, 'node-b');
  assert.equal(r.settings.healthzBindAddress, '0.0.0.0:10256');
  assert.equal(r.settings.mode, '');
  // Without the deprecated ports a bare IP stays bare, which validation refuses (kube-proxy too).
  throwsConfigError(() => loadConfig(['--write-config-to=/tmp/x.yaml', '--healthz-bind-address=10.0.0.1'], opts()), '--healthz-bind-address', 'IP:port');
});

function warning(r: { warnings: readonly { message: string; fields: Readonly<Record<string, string>> }[] }, text: string): Readonly<Record<string, string>> | undefined {
  return r.warnings.find((w) => w.message.includes(text))?.fields;
}

test('flags without effect in kube-ipvs are named once, in one warning', () => {
  const r = loadConfig(
    ['--profiling', '--iptables-sync-period=5s', '--iptables-min-sync-period=1s', '--iptables-localhost-nodeports=false', '-v=2', '--vmodule=x=1',
      '--show-hidden-metrics-for-version=1.35', '--kube-api-content-type=application/cbor', '--feature-gates=ComponentStatusz=true,LoggingAlphaOptions=true',
      '--log-text-info-buffer-size=1Ki', '--boot-id-file=/x', '--machine-id-file=/y'],
    opts(),
  );
  assert.equal(r.warnings.filter((w) => w.message.includes('without effect')).length, 1);
  const named = (warning(r, 'without effect')?.settings ?? '').split('; ').map((s) => s.replace(/ \(.*$/, ''));
  assert.deepEqual(named.sort(), [
    '--boot-id-file', '--feature-gates: ComponentStatusz', '--iptables-localhost-nodeports', '--iptables-min-sync-period', '--iptables-sync-period',
    '--kube-api-content-type', '--log-text-info-buffer-size', '--machine-id-file', '--profiling', '--show-hidden-metrics-for-version', '--v', '--vmodule',
  ]);
  // Flags at their defaults, and the protobuf/JSON content types, change nothing worth a warning.
  assert.deepEqual(loadConfig(['--kube-api-content-type=application/json', '--profiling=false', '-v=0', '--iptables-localhost-nodeports'], opts()).warnings, []);
  assert.deepEqual(loadConfig([], opts()).warnings, []);
});

test('with --config: ignored flags in one warning; lenient decoding named; file fields without effect named', () => {
  const file = `${FILE}futureField: 1\nnftables:\n  syncPeriod: 5s\nlogging:\n  verbosity: 3\n`;
  const r = loadConfig(['--config=/k', '--ipvs-scheduler=sh', '--feature-gates=Nope=true', '--iptables-sync-period=1s'], opts({ '/k': file }));
  assert.deepEqual(warning(r, 'ignored because --config'), { flags: '--ipvs-scheduler, --feature-gates, --iptables-sync-period' });
  assert.deepEqual(warning(r, 'leniently'), { file: '/k', fields: 'unknown field "futureField"' });
  assert.deepEqual(warning(r, 'without effect'), {
    settings: 'nftables.syncPeriod in /k (nftables mode only); logging.verbosity in /k (kube-ipvs has no verbose log levels)',
  });
  assert.equal(r.config.ipvs.scheduler, 'lc');
});

test('GA feature gates and deprecated flags are warned about, as kube-proxy does', () => {
  const r = loadConfig(['--feature-gates=AllowServiceExternalIPs=true', '--healthz-port=10256', '--cleanup-ipvs=false'], opts());
  assert.ok(warning(r, 'setting GA feature gate AllowServiceExternalIPs=true'));
  assert.deepEqual(warning(r, 'deprecated flags'), { flags: '--cleanup-ipvs (use --cleanup), --healthz-port (use --healthz-bind-address)' });
});

test('logging flags apply over the file\'s logging section; the file\'s split streams do not apply (kube-proxy resets them)', () => {
  const file = `${FILE}featureGates:\n  LoggingAlphaOptions: true\nlogging:\n  format: json\n  options:\n    json:\n      splitStream: true\n`;
  const fromFile = loadConfig(['--config=/k'], opts({ '/k': file }));
  assert.deepEqual(fromFile.config.logging, { format: 'json', splitStream: false });
  assert.match(warning(fromFile, 'without effect')?.settings ?? '', /logging\.options\.json\.splitStream in \/k \(kube-proxy resets it/);
  const flags = loadConfig(['--config=/k', '--logging-format=text', '--log-text-split-stream', '-v=1'], opts({ '/k': file }));
  assert.deepEqual(flags.config.logging, { format: 'text', splitStream: true });
  assert.equal(flags.settings.logging.verbosity, 1);
});

test('validation of the added flags names the flag and what is accepted', () => {
  const cases: ReadonlyArray<readonly [string[], ...string[]]> = [
    [['--kube-api-qps=fast'], '"fast"', '--kube-api-qps', 'a number'],
    [['--kube-api-burst=-1'], '"-1"', '--kube-api-burst', 'at least 0'],
    [['--kube-api-burst=0'], '--kube-api-burst', 'greater than 0 when --kube-api-qps'],
    [['--oom-score-adj=1001'], '"1001"', '--oom-score-adj', '-1000 to 1000'],
    [['--show-hidden-metrics-for-version=1.34'], '"1.34"', '--show-hidden-metrics-for-version', '"1.35"'],
    [['--feature-gates=Nope=true'], 'unrecognized feature gate "Nope" in --feature-gates'],
    [['--feature-gates=PreferSameTrafficDistribution=false'], '--feature-gates', 'locked to true'],
    [['--v=-1'], '"-1"', '--v', 'log level'],
    [['--vmodule=x'], '"x"', '--vmodule', 'pattern=N'],
    [['--log-flush-frequency=0s'], '--log-flush-frequency', 'greater than 0'],
    [['--log-flush-frequency=often'], '"often"', '--log-flush-frequency'],
    [['--logging-format=json', '--vmodule=x=1'], '--vmodule', 'only supported with the text log format'],
    [['--log-text-split-stream'], '--log-text-split-stream', 'LoggingAlphaOptions'],
    [['--log-json-info-buffer-size=1Ki'], '--log-json-info-buffer-size', 'LoggingAlphaOptions'],
    [['--log-json-info-buffer-size=1K'], '"1K"', '--log-json-info-buffer-size', 'quantity'],
    [['--logging-format=json', '--feature-gates=LoggingBetaOptions=false'], '--logging-format', 'LoggingBetaOptions'],
    [['--logging-format=yaml'], '"yaml"', '--logging-format', 'text or json'],
    [['--conntrack-udp-timeout=-1s'], '"-1s"', '--conntrack-udp-timeout', 'at least 0s'],
    [['--conntrack-udp-timeout-stream=x'], '"x"', '--conntrack-udp-timeout-stream'],
    [['--iptables-sync-period=soon'], '"soon"', '--iptables-sync-period', 'a duration'],
    [['--healthz-port=x'], '"x"', '--healthz-port', 'an integer'],
  ];
  for (const [argv, ...parts] of cases) {
    try {
      throwsConfigError(() => load(...argv), ...parts);
    } catch (e) {
      throw new Error(`${argv.join(' ')}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
});
