// Runs netif sequences against the real kernel and prints the steps as JSON. Meant to run as root
// inside a throw-away network namespace (`unshare -n node --import tsx <this file>`):
//   (no arguments)          the written-out contract
//   --generated KIND        the generated sequences read from stdin (a JSON array), links of KIND
//   --listing               a big address listing read again after changes made with iproute2
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
} else if (process.argv[2] === '--listing') {
  process.stdout.write(`${JSON.stringify(await bigListing())}\n`);
} else {
  const steps = await runContract(netif, async (dev, cidr) => {
    // Arbitrary prefixes are host configuration, not something RealNetif offers: use iproute2.
    execFileSync('ip', ['addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : [])], { stdio: 'pipe' });
  });
  process.stdout.write(`${JSON.stringify(steps)}\n`);
}
netif.close();

/**
 * A listing spanning many dump datagrams, read by one RealNetif four times: as bound, after
 * iproute2 removed and added addresses in its middle, unchanged, and after iproute2 renamed the
 * link. Each read is paired with `ip -o addr show` at that moment.
 */
async function bigListing(): Promise<Array<{ ours: string[]; ip: string[] }>> {
  const dev = 'kipvs-list';
  await netif.ensureLink(dev, 'bridge');
  const v4 = Array.from({ length: 3000 }, (_, i) => `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
  const v6 = Array.from({ length: 500 }, (_, i) => `fd00::${(i + 1).toString(16)}`);
  const outcomes = await netif.bindMany([...v4, ...v6].map((ip) => ({ dev, ip })));
  if (outcomes.some((o) => !o.ok)) throw new Error('bindMany failed');
  const reads: Array<{ ours: string[]; ip: string[] }> = [];
  const read = async (name: string): Promise<void> => {
    const ours = (await netif.addresses()).filter((a) => a.ifname === name).map((a) => `${a.ifname} ${a.address}/${a.prefix}`);
    const ip = execFileSync('ip', ['-o', 'addr', 'show', 'dev', name], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\n')
      .flatMap((line) => {
        const m = /^\d+:\s+(\S+)\s+inet6?\s+(\S+)/.exec(line);
        return m ? [`${m[1]} ${m[2]}`] : [];
      });
    reads.push({ ours: ours.sort(), ip: ip.sort() });
  };
  await read(dev);
  const batch = ['10.96.0.7', '10.96.5.1', '10.96.11.183', 'fd00::3', 'fd00::1f0']
    .map((ip) => `addr del ${ip}/${ip.includes(':') ? 128 : 32} dev ${dev}`)
    .concat(['10.97.0.1/32', '10.97.0.2/24', 'fd01::1/128'].map((c) => `addr add ${c} dev ${dev}${c.includes(':') ? ' nodad' : ''}`));
  execFileSync('ip', ['-batch', '-'], { input: `${batch.join('\n')}\n` });
  await read(dev);
  await read(dev);
  execFileSync('ip', ['link', 'set', 'dev', dev, 'name', `${dev}2`]);
  await read(`${dev}2`);
  await netif.deleteLink(`${dev}2`, 'bridge');
  return reads;
}
