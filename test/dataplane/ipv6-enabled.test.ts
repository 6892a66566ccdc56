// The kernel's IPv6 switch as kube-proxy v1.36.3 reads it before it runs an IPv6 proxier
// (cmd/kube-proxy/app/server_linux.go platformCheckSupported).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipv6Enabled } from '../../src/dataplane/real-dataplane.js';

test('IPv6 is on when /proc/net/if_inet6 exists and disable_ipv6 is not 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-v6-'));
  const ifInet6 = join(dir, 'if_inet6');
  const disableIpv6 = join(dir, 'disable_ipv6');
  assert.equal(await ipv6Enabled({ ifInet6, disableIpv6 }), false, 'no if_inet6: the kernel has no IPv6');
  writeFileSync(ifInet6, '');
  assert.equal(await ipv6Enabled({ ifInet6, disableIpv6 }), true, 'an unreadable switch is not "disabled"');
  writeFileSync(disableIpv6, '0\n');
  assert.equal(await ipv6Enabled({ ifInet6, disableIpv6 }), true);
  writeFileSync(disableIpv6, '1\n');
  assert.equal(await ipv6Enabled({ ifInet6, disableIpv6 }), false);
});
