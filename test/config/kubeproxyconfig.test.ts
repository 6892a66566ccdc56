import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKubeProxyConfiguration } from '../../src/config/kubeproxyconfig.js';
import { validateSettings } from '../../src/config/settings.js';
import { throwsConfigError } from './helpers.js';

const HEAD = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';
const FILE = '/etc/kp.yaml';

function parse(body: string) {
  return parseKubeProxyConfiguration(HEAD + body, FILE);
}

// The defaults are those kube-proxy v1.36.3 writes for an empty file (kube-proxy --config empty.yaml
// --write-config-to out.yaml); test/api/kube-proxy-reference.test.ts checks them against the binary.
test('an empty configuration gets the v1alpha1 defaults', () => {
  const { settings } = parse('');
  assert.deepEqual(settings, {
    mode: '',
    scheduler: '',
    syncPeriodMs: 30_000,
    // No defaulting for ipvs.minSyncPeriod in a file (unlike the flag's 1s).
    minSyncPeriodMs: 0,
    excludeCIDRs: [],
    strictARP: false,
    tcpTimeoutMs: 0,
    tcpFinTimeoutMs: 0,
    udpTimeoutMs: 0,
    masqueradeAll: false,
    masqueradeBit: 14,
    clusterCIDR: '',
    detectLocalMode: 'ClusterCIDR',
    bridgeInterface: '',
    interfaceNamePrefix: '',
    nodePortAddresses: [],
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    bindAddress: '0.0.0.0',
    hostnameOverride: '',
    kubeconfig: '',
    conntrackMaxPerCore: 32768,
    conntrackMin: 131072,
    conntrackTcpEstablishedTimeoutMs: 86_400_000,
    conntrackTcpCloseWaitTimeoutMs: 3_600_000,
    conntrackTcpBeLiberal: false,
    conntrackUdpTimeoutMs: 0,
    conntrackUdpStreamTimeoutMs: 0,
    configSyncPeriodMs: 900_000,
    featureGates: {},
    acceptContentTypes: '',
    contentType: 'application/vnd.kubernetes.protobuf',
    qps: 5,
    burst: 10,
    oomScoreAdj: -999,
    bindAddressHardFail: false,
    enableProfiling: false,
    showHiddenMetricsForVersion: '',
    iptablesLocalhostNodePorts: true,
    logging: {
      format: 'text',
      flushFrequencyMs: 5000,
      verbosity: 0,
      vmodule: [],
      textSplitStream: false,
      textInfoBufferSize: '0',
      jsonSplitStream: false,
      jsonInfoBufferSize: '0',
    },
  });
});

test('every field we read is read', () => {
  const { settings } = parse(`
mode: ipvs
clusterCIDR: 10.244.0.0/16,fd00:10:244::/56
detectLocalMode: InterfaceNamePrefix
detectLocal:
  bridgeInterface: cbr0
  interfaceNamePrefix: veth
nodePortAddresses: [192.168.0.0/16, "fd00::/64"]
healthzBindAddress: 10.0.0.1:1234
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
  format: json
  flushFrequency: 2s
  verbosity: 4
  vmodule:
  - filePattern: proxier*
    verbosity: 5
  options:
    json:
      splitStream: true
      infoBufferSize: 64Ki
    text:
      infoBufferSize: 1k
ipvs:
  scheduler: wlc
  syncPeriod: 1m
  minSyncPeriod: 2s
  excludeCIDRs: [10.0.0.0/8]
  strictARP: true
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
`);
  assert.deepEqual(settings, {
    mode: 'ipvs',
    scheduler: 'wlc',
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 2_000,
    excludeCIDRs: ['10.0.0.0/8'],
    strictARP: true,
    tcpTimeoutMs: 900_000,
    tcpFinTimeoutMs: 120_000,
    udpTimeoutMs: 300_000,
    masqueradeAll: true,
    masqueradeBit: 15,
    clusterCIDR: '10.244.0.0/16,fd00:10:244::/56',
    detectLocalMode: 'InterfaceNamePrefix',
    bridgeInterface: 'cbr0',
    interfaceNamePrefix: 'veth',
    nodePortAddresses: ['192.168.0.0/16', 'fd00::/64'],
    healthzBindAddress: '10.0.0.1:1234',
    metricsBindAddress: '0.0.0.0:9999',
    bindAddress: '10.0.0.1',
    hostnameOverride: 'Node-A',
    kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf',
    // Explicit zeros in conntrack are kept (pointers in v1alpha1), not defaulted.
    conntrackMaxPerCore: 0,
    conntrackMin: 5,
    conntrackTcpEstablishedTimeoutMs: 0,
    conntrackTcpCloseWaitTimeoutMs: 1_800_000,
    conntrackTcpBeLiberal: true,
    conntrackUdpTimeoutMs: 30_000,
    conntrackUdpStreamTimeoutMs: 120_000,
    configSyncPeriodMs: 300_000,
    featureGates: { AllowServiceExternalIPs: false, LoggingAlphaOptions: true },
    acceptContentTypes: 'application/json',
    contentType: 'application/json',
    qps: 7.5,
    burst: 20,
    oomScoreAdj: -500,
    bindAddressHardFail: true,
    enableProfiling: true,
    showHiddenMetricsForVersion: '1.35',
    iptablesLocalhostNodePorts: false,
    logging: {
      format: 'json',
      flushFrequencyMs: 2000,
      verbosity: 4,
      vmodule: [{ pattern: 'proxier*', level: 5 }],
      textSplitStream: false,
      textInfoBufferSize: '1k',
      jsonSplitStream: true,
      jsonInfoBufferSize: '64Ki',
    },
  });
});

test('JSON files are accepted', () => {
  const { settings } = parseKubeProxyConfiguration(
    JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'ipvs',
      ipvs: { scheduler: 'sh', syncPeriod: '10s' },
    }),
    'kp.json',
  );
  assert.equal(settings.scheduler, 'sh');
  assert.equal(settings.syncPeriodMs, 10_000);
});

test('zero ipvs.syncPeriod and configSyncPeriod mean unset, as v1alpha1 defaulting does', () => {
  const { settings } = parse('ipvs:\n  syncPeriod: 0s\nconfigSyncPeriod: "0"\n');
  assert.equal(settings.syncPeriodMs, 30_000);
  assert.equal(settings.configSyncPeriodMs, 900_000);
});

test('null fields and sections keep their defaults', () => {
  const { settings } = parse('ipvs: null\nconntrack:\n  maxPerCore: null\n  max: null\nnodePortAddresses: null\n');
  assert.equal(settings.syncPeriodMs, 30_000);
  assert.equal(settings.conntrackMaxPerCore, 32768);
  assert.deepEqual(settings.nodePortAddresses, []);
});

test('health and metrics addresses: empty means default, a bare IP gets the default port', () => {
  assert.equal(parse('healthzBindAddress: ""\n').settings.healthzBindAddress, '0.0.0.0:10256');
  assert.equal(parse('healthzBindAddress: 10.1.2.3\n').settings.healthzBindAddress, '10.1.2.3:10256');
  assert.equal(parse('metricsBindAddress: "::1"\n').settings.metricsBindAddress, '[::1]:10249');
  const v6 = parse('bindAddress: "fd00::1"\n').settings;
  assert.equal(v6.healthzBindAddress, '[::]:10256');
  assert.equal(v6.metricsBindAddress, '[::1]:10249');
});

test('kube-proxy fields that ipvs mode does not use are accepted and ignored', () => {
  // What kubeadm writes for a default cluster (abridged, older release).
  const { settings, lenient, inert } = parse(`
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 5
conntrack:
  max: null
  maxPerCore: null
  min: null
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  tcpBeLiberal: false
  udpTimeout: 0s
  udpStreamTimeout: 0s
enableProfiling: false
featureGates: {}
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 1s
  syncPeriod: 30s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
nftables:
  masqueradeAll: false
  syncPeriod: 30s
oomScoreAdj: -999
portRange: ""
showHiddenMetricsForVersion: ""
udpIdleTimeout: 250ms
winkernel:
  enableDSR: false
  networkName: ""
`);
  assert.equal(settings.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  assert.equal(settings.masqueradeBit, 14);
  assert.equal(settings.conntrackTcpEstablishedTimeoutMs, 86_400_000);
  // Fields v1alpha1 no longer has: upstream decodes them leniently too.
  assert.deepEqual(lenient, ['unknown field "conntrack.max"', 'unknown field "udpIdleTimeout"']);
  // Other modes' fields at their defaults are not worth a warning.
  assert.deepEqual(inert, []);
});

test('other modes\' and Windows fields set to non-default values are named as without effect', () => {
  const { inert, lenient } = parse(`
iptables:
  syncPeriod: 10s
  minSyncPeriod: 1s
nftables:
  masqueradeBit: 14
  syncPeriod: 5s
winkernel:
  enableDSR: true
portRange: 30000-32767
`);
  assert.deepEqual(inert, [
    { name: 'iptables.syncPeriod', why: 'iptables mode only' },
    { name: 'nftables.syncPeriod', why: 'nftables mode only' },
    { name: 'winkernel.enableDSR', why: 'Windows only' },
  ]);
  assert.deepEqual(lenient, []);
});

test('wrong or missing apiVersion and kind are errors naming the field', () => {
  throwsConfigError(
    () => parseKubeProxyConfiguration('apiVersion: componentconfig/v1alpha1\nkind: KubeProxyConfiguration\n', FILE),
    'apiVersion in /etc/kp.yaml',
    '"componentconfig/v1alpha1"',
    'kubeproxy.config.k8s.io/v1alpha1',
  );
  throwsConfigError(() => parseKubeProxyConfiguration('kind: KubeProxyConfiguration\n', FILE), 'apiVersion in /etc/kp.yaml');
  throwsConfigError(
    () => parseKubeProxyConfiguration('apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n', FILE),
    'kind in /etc/kp.yaml',
    '"KubeletConfiguration"',
    'KubeProxyConfiguration',
  );
});

// kube-proxy v1.36.3 with such a file logs "Using lenient decoding as strict decoding failed"
// err="strict decoding error: unknown field \"futureField\", unknown field \"ipvs.newThing\"" and
// starts with the other fields (checked against the binary in test/api/kube-proxy-reference.test.ts).
test('unknown fields, at the top and inside sections, are named and ignored (lenient decoding)', () => {
  const f = parse('futureField: 1\nipvs:\n  scheduler: wrr\n  newThing: x\nconntrack:\n  maxPerCPU: 1\n');
  assert.deepEqual(f.lenient, ['unknown field "futureField"', 'unknown field "ipvs.newThing"', 'unknown field "conntrack.maxPerCPU"']);
  assert.equal(f.settings.scheduler, 'wrr');
  // Field names are case-sensitive, as upstream's decoder: a wrong case is an unknown field.
  const c = parse('ipvs:\n  Scheduler: wrr\n');
  assert.deepEqual(c.lenient, ['unknown field "ipvs.Scheduler"']);
  assert.equal(c.settings.scheduler, '');
  assert.deepEqual(parse('mode: ipvs\n').lenient, []);
});

test('duplicate fields: the last one wins whole, and is named (lenient decoding)', () => {
  // kube-proxy v1.36.3: 'key "ipvs" already set in map', then the second ipvs mapping replaces the first.
  const f = parse('ipvs:\n  scheduler: wrr\nipvs:\n  strictARP: true\nmode: ipvs\nmode: ipvs\n');
  assert.deepEqual(f.lenient, ['duplicate field "ipvs"', 'duplicate field "mode"']);
  assert.equal(f.settings.scheduler, '');
  assert.equal(f.settings.strictARP, true);
});

test('duplicate objects in a JSON file merge, as Go\'s encoding/json decodes them (kube-proxy v1.36.3 does so)', () => {
  const f = parseKubeProxyConfiguration(
    '{"apiVersion":"kubeproxy.config.k8s.io/v1alpha1","kind":"KubeProxyConfiguration","ipvs":{"scheduler":"wrr"},"ipvs":{"strictARP":true},"mode":"","mode":"ipvs"}',
    FILE,
  );
  assert.deepEqual(f.lenient, ['duplicate field "ipvs"', 'duplicate field "mode"']);
  assert.equal(f.settings.scheduler, 'wrr');
  assert.equal(f.settings.strictARP, true);
  assert.equal(f.settings.mode, 'ipvs');
});

test('YAML 1.1 scalars, as upstream decodes them: yes/no/on/off are booleans', () => {
  assert.equal(parse('ipvs:\n  strictARP: yes\n').settings.strictARP, true);
  assert.equal(parse('iptables:\n  masqueradeAll: on\n').settings.masqueradeAll, true);
  assert.equal(parse('ipvs:\n  scheduler: "on"\n').settings.scheduler, 'on');
});

test('fields of the wrong type are errors naming the field and the expected type', () => {
  throwsConfigError(() => parse('ipvs:\n  syncPeriod: 30\n'), 'invalid value "30" for ipvs.syncPeriod in /etc/kp.yaml', 'duration');
  throwsConfigError(() => parse('ipvs:\n  syncPeriod: 10x\n'), '"10x"', 'ipvs.syncPeriod', 'such as 30s');
  throwsConfigError(() => parse('ipvs:\n  strictARP: "yes"\n'), '"yes"', 'ipvs.strictARP', 'true or false');
  throwsConfigError(() => parse('ipvs:\n  scheduler: 5\n'), 'ipvs.scheduler', 'a string');
  throwsConfigError(() => parse('ipvs:\n  excludeCIDRs: 10.0.0.0/8\n'), 'ipvs.excludeCIDRs', 'a list of strings');
  throwsConfigError(() => parse('iptables:\n  masqueradeBit: "14"\n'), 'iptables.masqueradeBit', 'an integer');
  throwsConfigError(() => parse('iptables:\n  masqueradeBit: 1.5\n'), 'iptables.masqueradeBit', 'an integer');
  throwsConfigError(() => parse('conntrack:\n  min: 4294967296\n'), 'conntrack.min', 'an integer');
  throwsConfigError(() => parse('conntrack:\n  tcpCloseWaitTimeout: 1\n'), 'conntrack.tcpCloseWaitTimeout');
  throwsConfigError(() => parse('configSyncPeriod: forever\n'), 'configSyncPeriod', '"forever"');
  throwsConfigError(() => parse('nodePortAddresses: [1, 2]\n'), 'nodePortAddresses', 'a list of strings');
  throwsConfigError(() => parse('ipvs: rr\n'), 'ipvs in /etc/kp.yaml', 'a mapping');
  throwsConfigError(() => parse('hostnameOverride: [a]\n'), 'hostnameOverride', 'a string');
  throwsConfigError(() => parse('featureGates:\n  AllowServiceExternalIPs: "no"\n'), 'featureGates.AllowServiceExternalIPs in /etc/kp.yaml', 'true or false');
  throwsConfigError(() => parse('featureGates: [a]\n'), 'featureGates in /etc/kp.yaml', 'mapping');
  throwsConfigError(() => parse('clientConnection:\n  qps: fast\n'), 'clientConnection.qps', 'a number');
  throwsConfigError(() => parse('oomScoreAdj: "-999"\n'), 'oomScoreAdj', 'an integer');
  throwsConfigError(() => parse('logging:\n  verbosity: -1\n'), 'logging.verbosity', 'log level');
  throwsConfigError(() => parse('logging:\n  options:\n    json:\n      infoBufferSize: 1K\n'), 'logging.options.json.infoBufferSize', 'quantity');
  throwsConfigError(() => parse('logging:\n  vmodule: proxier=4\n'), 'logging.vmodule', 'filePattern');
  throwsConfigError(() => parse('nftables:\n  syncPeriod: 30\n'), 'nftables.syncPeriod', 'duration');
});

test('unparsable files and non-mappings are errors naming the file', () => {
  throwsConfigError(() => parseKubeProxyConfiguration('a: [\n', FILE), '--config file /etc/kp.yaml');
  throwsConfigError(() => parseKubeProxyConfiguration('- a\n- b\n', FILE), '/etc/kp.yaml', 'KubeProxyConfiguration');
  throwsConfigError(() => parseKubeProxyConfiguration('', FILE), '/etc/kp.yaml');
});

test('validation errors from a file name the file field', () => {
  const check = (body: string, ...parts: string[]): void => {
    const f = parse(body);
    throwsConfigError(() => validateSettings(f.settings, f.origin), ...parts);
  };
  check('mode: iptables\n', 'invalid value "iptables" for mode in /etc/kp.yaml', 'ipvs');
  check('ipvs:\n  scheduler: fancy\n', '"fancy"', 'ipvs.scheduler in /etc/kp.yaml', 'rr, wrr');
  check('ipvs:\n  syncPeriod: -1s\n', '"-1s"', 'ipvs.syncPeriod in /etc/kp.yaml', 'greater than 0');
  check('ipvs:\n  minSyncPeriod: -1s\n', '"-1s"', 'ipvs.minSyncPeriod in /etc/kp.yaml', 'at least 0s');
  check(
    'ipvs:\n  minSyncPeriod: 1m\n',
    '"1m"',
    'ipvs.minSyncPeriod in /etc/kp.yaml',
    'no longer than ipvs.syncPeriod in /etc/kp.yaml (30s)',
  );
  check('ipvs:\n  udpTimeout: -5s\n', '"-5s"', 'ipvs.udpTimeout in /etc/kp.yaml');
  check('ipvs:\n  excludeCIDRs: [10.0.0.0/8, bogus]\n', '"bogus"', 'ipvs.excludeCIDRs');
  check('iptables:\n  masqueradeBit: 32\n', '"32"', 'iptables.masqueradeBit in /etc/kp.yaml', '0 to 31');
  check('clusterCIDR: 10.0.0.0/8,10.1.0.0/16\n', 'clusterCIDR in /etc/kp.yaml', 'one CIDR per IP family');
  check('detectLocalMode: Magic\n', '"Magic"', 'detectLocalMode in /etc/kp.yaml');
  check('detectLocalMode: BridgeInterface\n', 'detectLocal.bridgeInterface in /etc/kp.yaml', 'BridgeInterface');
  check('nodePortAddresses: [primary, 10.0.0.0/8]\n', 'nodePortAddresses in /etc/kp.yaml', '"primary" alone');
  check('bindAddress: nowhere\n', '"nowhere"', 'bindAddress in /etc/kp.yaml');
  check('healthzBindAddress: "10.0.0.1:99999"\n', 'healthzBindAddress in /etc/kp.yaml', 'IP:port');
  check('conntrack:\n  min: -1\n', '"-1"', 'conntrack.min in /etc/kp.yaml', 'at least 0');
  check('conntrack:\n  tcpEstablishedTimeout: -1s\n', 'conntrack.tcpEstablishedTimeout in /etc/kp.yaml');
  check('configSyncPeriod: -1m\n', '"-1m"', 'configSyncPeriod in /etc/kp.yaml', 'greater than 0');
});
