// Runs the netif contract against the real kernel and prints the steps as JSON. Meant to run as
// root inside a throw-away network namespace (`unshare -n node --import tsx <this file>`).
import { execFileSync } from 'node:child_process';
import { RealNetif } from '../../../src/dataplane/netif/real.js';
import { runContract } from './contract.js';

const netif = new RealNetif({ timeoutMs: 5000 });
const steps = await runContract(netif, async (dev, cidr) => {
  // Arbitrary prefixes are host configuration, not something RealNetif offers: use iproute2.
  execFileSync('ip', ['addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : [])], { stdio: 'pipe' });
});
netif.close();
process.stdout.write(`${JSON.stringify(steps)}\n`);
