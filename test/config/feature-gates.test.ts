// Feature gates checked as kube-proxy v1.36.3 checks them (component-base featuregate). The
// expectations are kube-proxy's own answers, e.g. `kube-proxy --feature-gates=NoSuchGate=true`:
// "unrecognized feature gate: NoSuchGate"; PreferSameTrafficDistribution=false: "cannot set
// feature gate PreferSameTrafficDistribution to false, feature is locked to true";
// AllowServiceExternalIPs=false: accepted with "Warning: setting GA feature gate".
// test/api/kube-proxy-reference.test.ts runs such cases through the binary itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureGatesHelp, parseFeatureGatesFlag, resolveFeatureGates } from '../../src/config/feature-gates.js';
import { UPSTREAM_FEATURE_GATES } from '../../src/config/upstream/feature-gates.js';
import { KUBE_PROXY_VERSION } from '../../src/config/upstream/version.js';
import { throwsConfigError } from './helpers.js';

const L = '--feature-gates';

test('the flag value: comma-separated key=value pairs, strconv.ParseBool values, later pairs win', () => {
  assert.deepEqual(parseFeatureGatesFlag(['A=true,B=false', 'A=0'], L), { A: false, B: false });
  assert.deepEqual(parseFeatureGatesFlag([' A = T '], L), { A: true });
  assert.deepEqual(parseFeatureGatesFlag([''], L), {});
  throwsConfigError(() => parseFeatureGatesFlag(['A'], L), '--feature-gates', '"A"', 'key=value');
  throwsConfigError(() => parseFeatureGatesFlag(['A=yes'], L), '--feature-gates', '"A=yes"', 'A=true or A=false');
});

test('an unknown gate is an error naming it, as in kube-proxy (a newer release\'s gate too)', () => {
  throwsConfigError(() => resolveFeatureGates({ NoSuchGate: true }, L), 'unrecognized feature gate "NoSuchGate"', L, KUBE_PROXY_VERSION);
});

test('a locked gate set against its lock is an error; at its lock value it is accepted', () => {
  throwsConfigError(() => resolveFeatureGates({ PreferSameTrafficDistribution: false }, L), 'cannot set feature gate PreferSameTrafficDistribution to false', 'locked to true');
  assert.equal(resolveFeatureGates({ PreferSameTrafficDistribution: true }, L).enabled('PreferSameTrafficDistribution'), true);
});

test('GA and deprecated gates are accepted with a warning each; alpha and beta silently', () => {
  const r = resolveFeatureGates({ AllowServiceExternalIPs: false, LoggingAlphaOptions: true }, L);
  assert.equal(r.enabled('AllowServiceExternalIPs'), false);
  assert.equal(r.enabled('LoggingAlphaOptions'), true);
  assert.deepEqual(r.warnings, ['setting GA feature gate AllowServiceExternalIPs=false; it will be removed in a future release']);
  const deprecated = UPSTREAM_FEATURE_GATES.find((g) => g.stage === 'DEPRECATED' && g.locked !== true);
  assert.ok(deprecated);
  assert.match(resolveFeatureGates({ [deprecated.name]: deprecated.default }, L).warnings[0] ?? '', /deprecated feature gate/);
});

test('defaults apply to gates not set; explicit values are kept as given', () => {
  const r = resolveFeatureGates({}, L);
  assert.equal(r.enabled('AllowServiceExternalIPs'), true);
  assert.equal(r.enabled('LoggingBetaOptions'), true);
  assert.equal(r.enabled('LoggingAlphaOptions'), false);
  assert.deepEqual(resolveFeatureGates({ LoggingAlphaOptions: true }, L).explicit, { LoggingAlphaOptions: true });
});

test('AllAlpha and AllBeta set the gates of their stage that are not set explicitly', () => {
  const r = resolveFeatureGates({ AllBeta: false, LoggingBetaOptions: true }, L);
  assert.equal(r.enabled('LoggingBetaOptions'), true);
  assert.equal(r.enabled('APIResponseCompression'), false);
  assert.equal(r.enabled('AllowServiceExternalIPs'), true, 'GA gates are not beta');
});

test('an enabled gate whose dependency is disabled is an error naming both', () => {
  // ClusterTrustBundleProjection (beta, off) depends on ClusterTrustBundle (beta, off).
  throwsConfigError(() => resolveFeatureGates({ ClusterTrustBundleProjection: true }, L), 'ClusterTrustBundleProjection', 'ClusterTrustBundle');
  assert.equal(resolveFeatureGates({ ClusterTrustBundleProjection: true, ClusterTrustBundle: true }, L).enabled('ClusterTrustBundleProjection'), true);
});

test('the table: every gate once, dependencies registered, and the gates --help names exist', () => {
  const names = UPSTREAM_FEATURE_GATES.map((g) => g.name);
  assert.equal(new Set(names).size, names.length);
  for (const g of UPSTREAM_FEATURE_GATES) for (const d of g.dependsOn ?? []) assert.ok(names.includes(d), `${g.name} → ${d}`);
  assert.match(featureGatesHelp(), /AllowServiceExternalIPs=true\|false \(GA - default=true\)/);
  assert.match(featureGatesHelp(), /LoggingAlphaOptions=true\|false \(ALPHA - default=false\)/);
});
