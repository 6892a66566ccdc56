// --write-config-to round trip: the file kube-ipvs writes for a command line loads back (--config)
// to the same configuration. Two things a KubeProxyConfiguration cannot carry are left out of the
// generated command lines, as upstream cannot carry them either: a disabled health or metrics
// server ("" in a file means the default address) and split log streams (kube-proxy v1.36.3 resets
// a file's splitStream; see load.ts). That the layout is upstream's is checked against the binary
// in test/api/kube-proxy-reference.test.ts and against its checked-in output in
// kube-proxy-flags.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, loadConfig, type LoadResult } from '../../src/config/load.js';
import { formatKubeProxyConfiguration, parseKubeProxyConfiguration } from '../../src/config/kubeproxyconfig.js';

function load(argv: readonly string[], files: Readonly<Record<string, string>> = {}): LoadResult {
  return loadConfig(argv, { extraFlags: [], hostname: 'host-1', readFile: (p) => files[p] ?? '' });
}

/** Each entry: one flag's possible values (undefined: not given). */
const FLAG_CHOICES: ReadonlyArray<readonly (string | undefined)[]> = [
  [undefined, '--ipvs-scheduler=wrr', '--ipvs-scheduler=mh'],
  [undefined, '--ipvs-sync-period=10s', '--ipvs-sync-period=1h30m'],
  [undefined, '--ipvs-min-sync-period=0s', '--ipvs-min-sync-period=500ms'],
  [undefined, '--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/64'],
  [undefined, '--ipvs-strict-arp', '--ipvs-strict-arp=false'],
  [undefined, '--ipvs-tcp-timeout=15m', '--ipvs-udp-timeout=1m', '--ipvs-tcpfin-timeout=30s'],
  [undefined, '--masquerade-all'],
  [undefined, '--iptables-masquerade-bit=0', '--iptables-masquerade-bit=31'],
  [undefined, '--cluster-cidr=10.244.0.0/16', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56'],
  [undefined, '--detect-local-mode=NodeCIDR', '--detect-local-mode=BridgeInterface --pod-bridge-interface=cbr0'],
  [undefined, '--nodeport-addresses=primary', '--nodeport-addresses=192.168.0.0/16'],
  [undefined, '--healthz-bind-address=127.0.0.1:1234', '--metrics-bind-address=[::1]:9999'],
  [undefined, '--bind-address=10.0.0.7'],
  [undefined, '--hostname-override=Node-X'],
  [undefined, '--kubeconfig=/etc/k.conf'],
  [undefined, '--kube-api-qps=7.5 --kube-api-burst=3', '--kube-api-qps=-1', '--kube-api-content-type=application/json'],
  [undefined, '--config-sync-period=1m'],
  [undefined, '--feature-gates=AllowServiceExternalIPs=false', '--feature-gates=LoggingAlphaOptions=true,AllBeta=false'],
  [undefined, '--oom-score-adj=0', '--oom-score-adj=1000'],
  [undefined, '--bind-address-hard-fail'],
  [undefined, '--conntrack-max-per-core=0', '--conntrack-min=7'],
  [undefined, '--conntrack-tcp-timeout-established=0s', '--conntrack-tcp-timeout-close-wait=5m'],
  [undefined, '--conntrack-tcp-be-liberal', '--conntrack-udp-timeout=30s --conntrack-udp-timeout-stream=2m'],
  [undefined, '--logging-format=json', '-v=4', '--vmodule=a*=2'],
  [undefined, '--log-flush-frequency=1s'],
  [undefined, '--profiling', '--iptables-localhost-nodeports=false', '--show-hidden-metrics-for-version=1.35'],
];

const commandLine = fc
  .tuple(...FLAG_CHOICES.map((choices) => fc.constantFrom(...choices)))
  .map((picked) => picked.flatMap((p) => (p === undefined ? [] : p.split(' '))));

test('a written configuration loads back to the same configuration (property)', () => {
  fc.assert(
    fc.property(commandLine, (argv) => {
      // Some combinations are refused (json with --vmodule, or with AllBeta=false turning off
      // LoggingBetaOptions), as kube-proxy refuses them: nothing to write then.
      let first: LoadResult;
      try {
        first = load(argv);
      } catch (e) {
        if (e instanceof ConfigError) return;
        throw e;
      }
      const written = formatKubeProxyConfiguration(first.settings);
      const second = load(['--config=/w.yaml'], { '/w.yaml': written });
      assert.deepEqual({ ...second.config, configFile: undefined }, first.config);
      // And the file is a fixed point of the writer.
      assert.equal(formatKubeProxyConfiguration(second.settings), written);
      assert.deepEqual(parseKubeProxyConfiguration(written, '/w.yaml').lenient, []);
    }),
    { numRuns: 300 },
  );
});

test('the written file is a KubeProxyConfiguration in ipvs mode with every field, keys sorted', () => {
  const text = formatKubeProxyConfiguration(load(['--ipvs-scheduler=sh', '--feature-gates=AllowServiceExternalIPs=false']).settings);
  assert.match(text, /^apiVersion: kubeproxy\.config\.k8s\.io\/v1alpha1\n/);
  assert.match(text, /\nkind: KubeProxyConfiguration\n/);
  assert.match(text, /\nmode: ipvs\n/);
  assert.match(text, /\nfeatureGates:\n {2}AllowServiceExternalIPs: false\n/);
  assert.match(text, /\nipvs:\n {2}excludeCIDRs: null\n {2}minSyncPeriod: 1s\n {2}scheduler: sh\n/);
  const top = text.split('\n').filter((l) => /^[a-zA-Z]/.test(l)).map((l) => l.replace(/:.*$/, ''));
  assert.deepEqual(top, [...top].sort());
  // Fields of other modes are written as kube-proxy writes them in ipvs mode.
  assert.match(text, /\niptables:\n {2}localhostNodePorts: true\n {2}masqueradeAll: false\n {2}masqueradeBit: 14\n {2}minSyncPeriod: 0s\n {2}syncPeriod: 0s\n/);
});

test('mode is written as ipvs whatever the input said ("" means ipvs in kube-ipvs, iptables in kube-proxy)', () => {
  const fromFile = load(['--config=/k'], { '/k': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n' });
  assert.match(formatKubeProxyConfiguration(fromFile.settings), /\nmode: ipvs\n/);
});
