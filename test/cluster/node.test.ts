// The node as kube-proxy v1.36.3 sees it: node IPs from the Node object (pkg/util/node/node.go
// GetNodeHostIPs), the primary family and loopback defaults (cmd/kube-proxy/app/server.go
// detectNodeIPs), and families that depend on the host, not on the node's addresses
// (cmd/kube-proxy/app/server_linux.go platformCheckSupported).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Node } from '@kubernetes/client-node';
import { buildNodeInfo, nodeHostIPs } from '../../src/cluster/node.js';

const nodeWith = (addresses: { type: string; address: string }[]): V1Node => ({ metadata: { name: 'n1' }, status: { addresses } });
const BOTH = ['IPv4', 'IPv6'] as const;

describe('node IPs (GetNodeHostIPs)', () => {
  test('InternalIPs come before ExternalIPs, then the first address of the other family', () => {
    const n = nodeWith([
      { type: 'ExternalIP', address: '203.0.113.7' },
      { type: 'Hostname', address: 'n1' },
      { type: 'InternalIP', address: '10.0.0.5' },
      { type: 'InternalIP', address: '10.0.0.6' },
      { type: 'ExternalIP', address: '2001:db8::7' },
    ]);
    assert.deepEqual(nodeHostIPs(n), ['10.0.0.5', '2001:db8::7']);
  });

  test('a node without addresses has none', () => {
    assert.deepEqual(nodeHostIPs(nodeWith([])), []);
    assert.deepEqual(nodeHostIPs(undefined), []);
  });
});

describe('primary family and loopback defaults (detectNodeIPs)', () => {
  test('an IPv4-only node: IPv4 primary, IPv6 node IP is ::1, both families proxied', () => {
    const n = buildNodeInfo({ name: 'n1', node: nodeWith([{ type: 'InternalIP', address: '10.0.0.5' }]), addresses: ['10.0.0.5'], families: BOTH });
    assert.equal(n.primaryFamily, 'IPv4');
    assert.deepEqual(n.primaryIPs, { IPv4: '10.0.0.5', IPv6: '::1' });
    assert.deepEqual(n.families, ['IPv4', 'IPv6']);
  });

  test('an IPv6-first node is IPv6-primary', () => {
    const n = buildNodeInfo({ name: 'n1', node: nodeWith([{ type: 'InternalIP', address: 'fd00::5' }, { type: 'InternalIP', address: '10.0.0.5' }]), addresses: [], families: BOTH });
    assert.equal(n.primaryFamily, 'IPv6');
    assert.deepEqual(n.primaryIPs, { IPv4: '10.0.0.5', IPv6: 'fd00::5' });
  });

  test('no node IP at all: IPv4 primary with 127.0.0.1, whatever the interfaces hold', () => {
    const n = buildNodeInfo({ name: 'n1', node: nodeWith([]), addresses: ['192.168.1.1', 'fd00::1'], families: BOTH });
    assert.equal(n.primaryFamily, 'IPv4');
    assert.deepEqual(n.primaryIPs, { IPv4: '127.0.0.1', IPv6: '::1' });
  });

  test('a --bind-address overrides the primary family and its IP; a wildcard does not', () => {
    const node = nodeWith([{ type: 'InternalIP', address: '10.0.0.5' }]);
    const v6 = buildNodeInfo({ name: 'n1', node, addresses: [], families: BOTH, bindAddress: 'fd00::9' });
    assert.equal(v6.primaryFamily, 'IPv6');
    assert.deepEqual(v6.primaryIPs, { IPv4: '10.0.0.5', IPv6: 'fd00::9' });
    for (const wildcard of ['0.0.0.0', '::']) {
      const w = buildNodeInfo({ name: 'n1', node, addresses: [], families: BOTH, bindAddress: wildcard });
      assert.equal(w.primaryFamily, 'IPv4');
      assert.deepEqual(w.primaryIPs, { IPv4: '10.0.0.5', IPv6: '::1' });
    }
  });

  test('given node IPs (plan --node-ip, manifest mode without a Node) skip loopback and link-local', () => {
    const n = buildNodeInfo({ name: 'n1', node: undefined, addresses: [], families: BOTH, nodeIPs: ['127.0.0.1', 'fe80::1', 'fd00::2', '10.1.1.1', 'fd00::3'] });
    assert.equal(n.primaryFamily, 'IPv6');
    assert.deepEqual(n.primaryIPs, { IPv4: '10.1.1.1', IPv6: 'fd00::2' });
  });

  test('families are the host\'s: a host without working ip6tables proxies IPv4 only', () => {
    const n = buildNodeInfo({ name: 'n1', node: nodeWith([{ type: 'InternalIP', address: '10.0.0.5' }, { type: 'InternalIP', address: 'fd00::5' }]), addresses: [], families: ['IPv4'] });
    assert.deepEqual(n.families, ['IPv4']);
  });
});
