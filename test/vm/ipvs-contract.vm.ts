// The IPVS backend contract against the real kernel, through RealIpvs (generic netlink). Runs only
// inside the VM, which has ip_vs and lets us own the whole IPVS table:
//   test/vm/vm.sh -- node --import tsx --test test/vm/ipvs-contract.vm.ts
import { execFileSync } from 'node:child_process';
import { it } from 'node:test';
import { RealIpvs } from '../../src/dataplane/ipvs/real.js';
import { ipvsContract } from '../dataplane/ipvs/contract.js';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/**
 * Without any IPv4 route the kernel refuses every IPv4 real server with EINVAL (see FakeIpvs's
 * hasRoute), so give a bare guest a node-like address and a default route first.
 */
function ensureRoute(): void {
  if (ip('-4', 'route', 'show', 'default').trim() !== '') return;
  ip('link', 'add', 'node0', 'type', 'dummy');
  ip('addr', 'add', '192.168.0.10/24', 'dev', 'node0');
  ip('link', 'set', 'node0', 'up');
  ip('route', 'add', 'default', 'via', '192.168.0.1', 'dev', 'node0', 'onlink');
}

if (process.env['KUBE_IPVS_VM'] === '1') {
  ensureRoute();
  ipvsContract('real', () => Promise.resolve(new RealIpvs()));
} else {
  it('IPVS backend contract: real (kernel)', { skip: 'runs only inside the VM: test/vm/vm.sh -- node --import tsx --test test/vm/ipvs-contract.vm.ts' }, () => {});
}
