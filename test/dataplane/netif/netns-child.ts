// Runs netif sequences against the real kernel and prints the steps as JSON. Meant to run as root
// inside a throw-away network namespace (`unshare -n node --import tsx <this file>`):
//   (no arguments)          the written-out contract
//   --generated KIND        the generated sequences read from stdin (a JSON array), links of KIND
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RealNetif } from '../../../src/dataplane/netif/real.js';
import { runContract, runGenerated, type NetifOp } from './contract.js';

const netif = new RealNetif({ timeoutMs: 5000 });
if (process.argv[2] === '--generated') {
  const kind = process.argv[3] ?? 'bridge';
  const sequences = JSON.parse(readFileSync(0, 'utf8')) as NetifOp[][];
  const results = [];
  for (const ops of sequences) results.push(await runGenerated(netif, ops, kind));
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else {
  const steps = await runContract(netif, async (dev, cidr) => {
    // Arbitrary prefixes are host configuration, not something RealNetif offers: use iproute2.
    execFileSync('ip', ['addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : [])], { stdio: 'pipe' });
  });
  process.stdout.write(`${JSON.stringify(steps)}\n`);
}
netif.close();
