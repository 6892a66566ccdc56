// The host side of test/vm/api.vm.sh: the daemon inside the VM against a real kube-apiserver on
// the host. Run on the HOST:   node --import tsx test/vm/api-host.ts   (scripts/test-vm-api.sh)
//
// Starts kube-apiserver + etcd (test/helpers/apiserver.ts) on 127.0.0.1, which qemu's user
// network shows the guest as 10.0.2.2; grants the token user kube-ipvs-node the ClusterRole we
// ship (deploy/kube-ipvs.yaml); creates the Node object for the guest's hostname; writes into a
// directory the guest sees (the host's / is the guest's /, but not /tmp):
//   kubeconfig   kube-ipvs-node's, server https://10.0.2.2:<port>, certificate-authority: <dir>/ca.crt
//   ca.crt       the API server's CA
//   admin-token  a system:masters token, for the scenario's own curl calls
//   server       https://10.0.2.2:<port>
//   node         the Node's name (the guest hostname, lower-cased as the daemon does)
// then boots the VM with KUBE_IPVS_VM_NET=user and KUBE_IPVS_API_DIR=<dir> running
// `bash test/vm/api.vm.sh`, streams its output, stops the API server and exits with the VM's code.
// Extra arguments replace the guest command (e.g. `-- bash` for a shell-less debug run).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { stringify } from 'yaml';
import { apiRequest, startTestApiServer } from '../helpers/apiserver.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { grant, must, projectRoot, shippedProxyRules } from '../api/support.js';

const GUEST_SERVER_HOST = '10.0.2.2'; // qemu user net: the host's loopback
const GUEST_NODE_IP = '10.0.2.15'; // test/vm/guest/run.sh gives eth0 this address
const USER = 'kube-ipvs-node';

function log(msg: string): void {
  process.stderr.write(`api-host: ${msg}\n`);
}

async function main(): Promise<number> {
  const root = projectRoot();
  const hostname = process.env.KUBE_IPVS_VM_HOSTNAME ?? 'kube-ipvs-vm';
  const nodeName = hostname.trim().toLowerCase();
  const cache = process.env.KUBE_IPVS_CACHE ?? join(homedir(), '.cache', 'kube-ipvs');
  const dir = join(cache, 'vm-api', String(process.pid));
  const guestCommand = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));

  const t0 = Date.now();
  let server: TestApiServer | undefined;
  let child: ReturnType<typeof spawn> | undefined;
  const cleanup = async (): Promise<void> => {
    await server?.stop();
    if (process.env.KUBE_IPVS_KEEP_APISERVER !== '1') rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      child?.kill('SIGTERM');
      void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }

  try {
    server = await startTestApiServer({ bindAddress: '127.0.0.1' });
    log(`kube-apiserver ready at ${server.url} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await grant(server, USER, shippedProxyRules());
    await must(apiRequest(server, 'POST', '/api/v1/nodes', {
      metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } },
    }), 'create node');
    await must(apiRequest(server, 'PATCH', `/api/v1/nodes/${nodeName}/status`, {
      status: { addresses: [{ type: 'InternalIP', address: GUEST_NODE_IP }, { type: 'Hostname', address: nodeName }] },
    }), 'node status');

    const guestUrl = `https://${GUEST_SERVER_HOST}:${server.port}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = join(dir, 'ca.crt');
    copyFileSync(server.caFile, ca);
    writeFileSync(join(dir, 'kubeconfig'), stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'host', cluster: { server: guestUrl, 'certificate-authority': ca } }],
      users: [{ name: USER, user: { token: server.tokenFor(USER) } }],
      contexts: [{ name: 'host', context: { cluster: 'host', user: USER } }],
      'current-context': 'host',
    }), { mode: 0o600 });
    writeFileSync(join(dir, 'admin-token'), `${server.tokenFor('admin')}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'server'), `${guestUrl}\n`);
    writeFileSync(join(dir, 'node'), `${nodeName}\n`);
    log(`guest files in ${dir}; node ${nodeName}; booting the VM (user network)`);

    const vmArgs = ['--', ...(guestCommand.length > 0 ? guestCommand : ['bash', 'test/vm/api.vm.sh'])];
    const env = { ...process.env, KUBE_IPVS_VM_NET: 'user', KUBE_IPVS_VM_HOSTNAME: hostname, KUBE_IPVS_API_DIR: dir };
    const code = await new Promise<number>((resolve) => {
      child = spawn(join(root, 'test', 'vm', 'vm.sh'), vmArgs, { cwd: root, env, stdio: 'inherit' });
      child.on('error', (e) => {
        log(`cannot run vm.sh: ${e.message}`);
        resolve(125);
      });
      child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 125)));
    });
    if (code !== 0 && process.env.KUBE_IPVS_VM_API_LOGS !== '0') {
      log('---- kube-apiserver / etcd (last 30 lines) ----');
      process.stderr.write(`${server.logs().split('\n').slice(-30).join('\n')}\n`);
    }
    log(`VM exited ${code}; ${((Date.now() - t0) / 1000).toFixed(1)} s in all`);
    return code;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(125);
  },
);
