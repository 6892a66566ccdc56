// kube-ipvs against upstream kube-proxy v1.36.3 itself (the binary test/apiserver/build.sh builds,
// which scripts/test-api.sh runs before this stage, so here a missing binary is a failure):
// - its --help lists exactly the flags checked in under test/fixtures/kube-proxy/;
// - for the same flags or the same file, `--write-config-to` writes the same bytes in both;
// - each reads the other's written files back unchanged (upstream strictly, without its lenient
//   fallback), so kube-ipvs's file is a KubeProxyConfiguration upstream accepts as its own;
// - files with unknown or duplicate fields: both start (lenient decoding) and name the same fields;
// - what upstream refuses (wrong types, unknown or locked feature gates, ...) kube-ipvs refuses;
// - the feature gate table matches upstream's registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, type LoadResult } from '../../src/config/load.js';
import { formatKubeProxyConfiguration } from '../../src/config/kubeproxyconfig.js';
import { UPSTREAM_FEATURE_GATES } from '../../src/config/upstream/feature-gates.js';
import { fixtureFlagLines, helpFlagLines, IPVS_DEFAULTS_FIXTURE, MISSING_BINARY, referenceKubeProxy, runReference } from '../helpers/kube-proxy.js';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';

let dir = '';
let serial = 0;

function binary(): string {
  const bin = referenceKubeProxy();
  if (!bin) throw new Error(MISSING_BINARY);
  return bin;
}

interface Written {
  readonly ok: boolean;
  readonly yaml: string | undefined;
  readonly log: string;
}

/** `kube-proxy ARGS --write-config-to F`: exit status, F's content, stderr. */
function upstream(args: readonly string[]): Written {
  const out = join(dir, `upstream-${++serial}.yaml`);
  const r = runReference(binary(), [...args, '--write-config-to', out], dir);
  return { ok: r.code === 0, yaml: existsSync(out) ? readFileSync(out, 'utf8') : undefined, log: r.stderr };
}

/**
 * kube-ipvs's loader and writer on the same arguments (relative --config paths resolve in `dir`);
 * --write-config-to is passed too, since it changes what the deprecated port flags do.
 */
function ours(args: readonly string[]): { loaded: LoadResult; yaml: string } {
  const loaded = loadConfig([...args, '--write-config-to', join(dir, 'unused.yaml')], { extraFlags: [], hostname: 'node-a', readFile: (p) => readFileSync(p.startsWith('/') ? p : join(dir, p), 'utf8') });
  return { loaded, yaml: formatKubeProxyConfiguration(loaded.settings) };
}

function file(body: string): string {
  const name = `input-${++serial}.yaml`;
  writeFileSync(join(dir, name), body);
  return name;
}

/** Both write the same configuration for `args`; returns upstream's file. */
function sameWritten(args: readonly string[]): string {
  const up = upstream(args);
  assert.ok(up.ok && up.yaml !== undefined, `kube-proxy ${args.join(' ')} failed: ${up.log}`);
  assert.equal(ours(args).yaml, up.yaml, `kube-proxy ${args.join(' ')}`);
  return up.yaml;
}

const FLAG_SCENARIOS: ReadonlyArray<readonly string[]> = [
  ['--ipvs-scheduler=wrr', '--ipvs-sync-period=10s', '--ipvs-min-sync-period=2s', '--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/64', '--ipvs-strict-arp',
    '--ipvs-tcp-timeout=900s', '--ipvs-tcpfin-timeout=2m', '--ipvs-udp-timeout=5m'],
  ['--masquerade-all', '--iptables-masquerade-bit=15', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--detect-local-mode=InterfaceNamePrefix',
    '--pod-interface-name-prefix=veth', '--pod-bridge-interface=cbr0'],
  ['--nodeport-addresses=primary', '--healthz-bind-address=127.0.0.1:1234', '--metrics-bind-address=0.0.0.0:9999', '--bind-address=10.0.0.1',
    '--hostname-override=  Node-A '],
  ['--kube-api-qps=7.5', '--kube-api-burst=20', '--kube-api-content-type=application/json', '--kubeconfig=/etc/k.conf', '--config-sync-period=5m'],
  ['--feature-gates=AllowServiceExternalIPs=false,LoggingAlphaOptions=true', '--logging-format=json', '--log-json-split-stream', '-v=3',
    '--log-flush-frequency=2s', '--log-json-info-buffer-size=64Ki'],
  ['--feature-gates=LoggingAlphaOptions=true', '--log-text-split-stream', '--log-text-info-buffer-size=1k', '--vmodule=proxier*=4,server=2'],
  ['--oom-score-adj=-500', '--bind-address-hard-fail', '--profiling', '--show-hidden-metrics-for-version=1.35', '--iptables-localhost-nodeports=false'],
  ['--conntrack-max-per-core=0', '--conntrack-min=5', '--conntrack-tcp-timeout-established=0s', '--conntrack-tcp-timeout-close-wait=30m',
    '--conntrack-tcp-be-liberal', '--conntrack-udp-timeout=30s', '--conntrack-udp-timeout-stream=2m'],
  // Without effect in ipvs mode upstream too, and the deprecated ports apply neither with --write-config-to.
  ['--iptables-sync-period=7s', '--iptables-min-sync-period=2s', '--healthz-port=0', '--metrics-port=1234', '--boot-id-file=/x', '--machine-id-file=/y'],
  ['--feature-gates=AllAlpha=false,AllBeta=false,ComponentStatusz=false'],
];

const FULL_FILE = `${HEAD}mode: ipvs
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
detectLocalMode: InterfaceNamePrefix
detectLocal:
  bridgeInterface: cbr0
  interfaceNamePrefix: veth
nodePortAddresses: [192.168.0.0/16, "fd00::/64"]
healthzBindAddress: 10.0.0.1
metricsBindAddress: 0.0.0.0:9999
bindAddress: 10.0.0.1
hostnameOverride: Node-A
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  acceptContentTypes: application/json
  contentType: application/json
  qps: 7.5
  burst: 20
configSyncPeriod: 5m
featureGates:
  AllowServiceExternalIPs: false
  LoggingAlphaOptions: true
oomScoreAdj: -500
bindAddressHardFail: true
enableProfiling: true
showHiddenMetricsForVersion: "1.35"
logging:
  format: text
  flushFrequency: 2s
  verbosity: 4
  vmodule:
  - filePattern: proxier*
    verbosity: 5
  options:
    text:
      splitStream: true
      infoBufferSize: 64Ki
ipvs:
  scheduler: wlc
  syncPeriod: 1m
  minSyncPeriod: 2s
  excludeCIDRs: [10.0.0.0/8]
  strictARP: yes
  tcpTimeout: 900s
  tcpFinTimeout: 120s
  udpTimeout: 300s
iptables:
  masqueradeBit: 15
  masqueradeAll: true
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 5
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 30m
  tcpBeLiberal: true
  udpTimeout: 30s
  udpStreamTimeout: 2m
`;

describe('upstream kube-proxy v1.36.3 as the reference', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-reference-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('its --help lists exactly the checked-in flags', () => {
    const r = runReference(binary(), ['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(helpFlagLines(r.stdout), fixtureFlagLines());
  });

  test('--proxy-mode=ipvs --write-config-to: the checked-in defaults file is what it writes', () => {
    assert.equal(upstream(['--proxy-mode=ipvs']).yaml, readFileSync(IPVS_DEFAULTS_FIXTURE, 'utf8'));
  });

  test('each flag at the default its --help shows: both write the same configuration', () => {
    const r = runReference(binary(), ['--help']);
    const withDefaults = r.stdout
      .split('\n')
      .map((l) => /^\s+(?:-[a-z], )?--([a-z0-9-]+)\b.*\(default (.*)\)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1] ?? '', (m[2] ?? '').replace(/^"(.*)"$/, '$1')] as const);
    assert.ok(withDefaults.length >= 20, `${withDefaults.length} flags with defaults`);
    const defaults = readFileSync(IPVS_DEFAULTS_FIXTURE, 'utf8');
    for (const [name, value] of withDefaults) {
      // The flag at its default changes nothing: both must write the defaults file.
      const args = ['--proxy-mode=ipvs', `--${name}=${value}`];
      assert.equal(sameWritten(args), defaults, args.join(' '));
    }
  });

  test('non-default flag values: both write the same configuration', () => {
    for (const s of FLAG_SCENARIOS) sameWritten(['--proxy-mode=ipvs', ...s]);
  });

  test('config files: both write the same configuration, logging and hostname flags applying over the file', () => {
    const full = file(FULL_FILE);
    sameWritten(['--config', full]);
    sameWritten(['--config', file(`${HEAD}mode: ipvs\n`)]);
    sameWritten(['--config', full, '--hostname-override=Other', '-v=2', '--vmodule=x=1', '--log-flush-frequency=9s']);
    sameWritten(['--config', file(`${HEAD}mode: ipvs\nfeatureGates:\n  LoggingAlphaOptions: true\n`), '--log-text-split-stream', '--logging-format=text']);
    // Setting flags are ignored with a file, in both.
    sameWritten(['--config', full, '--ipvs-scheduler=sh', '--masquerade-all=false', '--kube-api-qps=1']);
  });

  test('upstream\'s written files load in kube-ipvs, in ipvs mode, strictly, and both read them the same', () => {
    const outputs = [...FLAG_SCENARIOS.map((s) => ['--proxy-mode=ipvs', ...s]), ['--config', file(FULL_FILE)]].map((a) => upstream(a).yaml ?? '');
    for (const yaml of outputs) {
      const name = file(yaml);
      const back = ours(['--config', name]);
      assert.equal(back.loaded.config.mode, 'ipvs');
      assert.deepEqual(back.loaded.warnings.filter((w) => w.message.includes('leniently')), []);
      sameWritten(['--config', name]);
    }
  });

  test('kube-ipvs\'s written files decode strictly in upstream, and both read them the same', () => {
    for (const args of [...FLAG_SCENARIOS.map((s) => ['--proxy-mode=ipvs', ...s]), ['--config', file(FULL_FILE)]]) {
      const name = file(ours(args).yaml);
      const up = upstream(['--config', name]);
      assert.ok(up.ok, `${args.join(' ')}: ${up.log}`);
      assert.doesNotMatch(up.log, /lenient/, args.join(' '));
      sameWritten(['--config', name]);
    }
  });

  test('without split streams (which upstream drops from files), a written file is a fixed point of both', () => {
    for (const args of [...FLAG_SCENARIOS.filter((s) => !s.some((a) => a.includes('split-stream'))).map((s) => ['--proxy-mode=ipvs', ...s]), ['--config', file(FULL_FILE.replace('      splitStream: true\n', ''))]]) {
      const mine = ours(args).yaml;
      assert.equal(ours(['--config', file(mine)]).yaml, mine, args.join(' '));
      assert.equal(upstream(['--config', file(mine)]).yaml, mine, args.join(' '));
    }
  });

  test('unknown and duplicate fields: both start, naming the same fields (lenient decoding)', () => {
    const cases = [
      `${HEAD}mode: ipvs\nfutureField: 1\nipvs:\n  scheduler: wrr\n  newThing: x\nconntrack:\n  max: null\n`,
      `${HEAD}mode: ipvs\nipvs:\n  Scheduler: wrr\nlogging:\n  sampling: 3\n`,
      `${HEAD}mode: ipvs\nipvs:\n  scheduler: wrr\nipvs:\n  strictARP: true\n`,
      `${HEAD}mode: ipvs\nmode: ipvs\nudpIdleTimeout: 250ms\n`,
      '{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","kind":"KubeProxyConfiguration","mode":"ipvs","ipvs":{"scheduler":"wrr"},"ipvs":{"strictARP":true}}',
    ];
    for (const body of cases) {
      const name = file(body);
      const up = upstream(['--config', name]);
      assert.ok(up.ok, up.log);
      assert.match(up.log, /Using lenient decoding as strict decoding failed/);
      const mine = ours(['--config', name]);
      const warning = mine.loaded.warnings.find((w) => w.message.includes('leniently'));
      assert.ok(warning, body);
      const named = (text: string, re: RegExp): string[] => [...text.matchAll(re)].map((m) => m[1] ?? '').sort();
      // Upstream: unknown field \"ipvs.newThing\" ... or: key "ipvs" already set in map.
      // Upstream names duplicates as 'key "x" already set in map' (YAML) or 'duplicate field "x"' (JSON).
      const upstreamDuplicates = [...named(up.log, /key \\?"([^"\\]+)\\?" already set/g), ...named(up.log, /duplicate field \\?"([^"\\]+)\\?"/g)].sort();
      const upstreamNamed = [...named(up.log, /unknown field \\?"([^"\\]+)\\?"/g), ...upstreamDuplicates];
      assert.ok(upstreamNamed.length > 0, `kube-proxy named no field: ${up.log}`);
      assert.deepEqual(named(warning.fields.fields ?? '', /unknown field "([^"]+)"/g), named(up.log, /unknown field \\?"([^"\\]+)\\?"/g), body);
      assert.deepEqual(named(warning.fields.fields ?? '', /duplicate field "([^"]+)"/g), upstreamDuplicates, body);
      assert.equal(mine.yaml, up.yaml, body);
    }
  });

  test('what upstream refuses, kube-ipvs refuses', () => {
    const refused: ReadonlyArray<readonly string[]> = [
      ['--config', file(`${HEAD}mode: ipvs\nipvs:\n  scheduler: 5\n`)],
      ['--config', file(`${HEAD}mode: ipvs\nipvs:\n  strictARP: "yes"\n`)],
      ['--config', file(`${HEAD}mode: ipvs\nclientConnection:\n  qps: "5"\n`)],
      ['--config', file(`${HEAD}mode: ipvs\nfeatureGates:\n  NoSuchGate: true\n`)],
      ['--config', file(`${HEAD}mode: ipvs\noomScoreAdj: 1001\n`)],
      ['--config', file(`${HEAD}mode: ipvs\nconntrack:\n  udpTimeout: -1s\n`)],
      ['--proxy-mode=ipvs', '--feature-gates=NoSuchGate=true'],
      ['--proxy-mode=ipvs', '--feature-gates=PreferSameTrafficDistribution=false'],
      ['--proxy-mode=ipvs', '--feature-gates=AllowServiceExternalIPs'],
      ['--proxy-mode=ipvs', '--feature-gates=ClusterTrustBundleProjection=true'],
      ['--proxy-mode=ipvs', '--logging-format=json', '--vmodule=x=1'],
      ['--proxy-mode=ipvs', '--log-text-split-stream'],
      ['--proxy-mode=ipvs', '--logging-format=json', '--feature-gates=LoggingBetaOptions=false'],
      ['--proxy-mode=ipvs', '--logging-format=xml'],
      ['--proxy-mode=ipvs', '--log-flush-frequency=0s'],
      ['--proxy-mode=ipvs', '--v=-1'],
      ['--proxy-mode=ipvs', '--oom-score-adj=-1001'],
      ['--proxy-mode=ipvs', '--kube-api-burst=-1'],
      ['--proxy-mode=ipvs', '--show-hidden-metrics-for-version=1.34'],
      ['--proxy-mode=ipvs', '--conntrack-udp-timeout-stream=-1s'],
      ['--proxy-mode=ipvs', '--version=v1.2.3'],
      ['--proxy-mode=ipvs', '--version=sometimes'],
      ['--proxy-mode=ipvs', '--healthz-bind-address=10.0.0.1'],
    ];
    for (const args of refused) {
      const up = upstream(args);
      assert.equal(up.ok, false, `kube-proxy accepted ${args.join(' ')}`);
      assert.throws(() => ours(args), ConfigError, args.join(' '));
    }
  });

  test('the feature gate table is upstream\'s registry: every gate known, stages and defaults as --help shows', () => {
    // All gates at their defaults in one run: an unknown name would fail it.
    const all = UPSTREAM_FEATURE_GATES.map((g) => `${g.name}=${g.default}`).join(',');
    const up = upstream(['--proxy-mode=ipvs', `--feature-gates=${all}`]);
    assert.ok(up.ok, up.log);
    const help = runReference(binary(), ['--help']).stdout;
    const listed = [...help.matchAll(/^\s+(\w+)=true\|false \((ALPHA|BETA) - default=(true|false)\)$/gm)];
    assert.ok(listed.length > 100, `${listed.length} gates in --help`);
    for (const [, name, stage, def] of listed) {
      const g = UPSTREAM_FEATURE_GATES.find((x) => x.name === name);
      assert.ok(g, `${name} is missing from the table`);
      assert.equal(g.stage, stage, name);
      assert.equal(String(g.default), def, name);
    }
  });

  test('every locked gate set against its lock is refused by both', () => {
    for (const g of UPSTREAM_FEATURE_GATES.filter((x) => x.locked === true)) {
      const args = ['--proxy-mode=ipvs', `--feature-gates=${g.name}=${!g.default}`];
      assert.equal(upstream(args).ok, false, `kube-proxy accepted ${args.join(' ')}`);
      assert.throws(() => ours(args), ConfigError, args.join(' '));
    }
  });
});
