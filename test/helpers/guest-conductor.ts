// The host side of a VM run driven from the host: an HTTP "conductor" the guest calls over qemu's
// user network (it reaches the host's loopback as GUEST_HOST), and the VM boot itself. Shared by
// the fidelity harness and bench:compare, whose guests both report to a conductor.
import { spawn } from 'node:child_process';
import type { StdioOptions } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { TestApiServer } from './apiserver.js';

/** The host as the guest sees it on qemu's user network. */
export const GUEST_HOST = '10.0.2.2';

/** The whole body of a request, as text. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export interface Conductor {
  /** The port on the host's loopback; the guest reaches it at GUEST_HOST:port. */
  readonly port: number;
  close(): void;
}

/**
 * Writes DIR/ca.crt and DIR/kubeconfig: the admin of `server`, reached from the guest at
 * GUEST_HOST. Returns both paths (the guest reads them over 9p).
 */
export function writeGuestKubeconfig(server: TestApiServer, dir: string): { kubeconfig: string; caFile: string } {
  const caFile = join(dir, 'ca.crt');
  copyFileSync(server.caFile, caFile);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'host', cluster: { server: `https://${GUEST_HOST}:${server.port}`, 'certificate-authority': caFile } }],
    users: [{ name: 'admin', user: { token: server.tokenFor('admin') } }],
    contexts: [{ name: 'host', context: { cluster: 'host', user: 'admin' } }],
    'current-context': 'host',
  }), { mode: 0o600 });
  return { kubeconfig, caFile };
}

/** Serves `handle` on an ephemeral port of 127.0.0.1. */
export async function startConductor(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<Conductor> {
  const http = createServer();
  http.on('request', (req, res) => void handle(req, res));
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  const address = http.address();
  return { port: typeof address === 'object' && address ? address.port : 0, close: () => http.close() };
}

/**
 * Boots test/vm/vm.sh with `args` and resolves with its exit code: 125 when it could not start,
 * 128 when a signal ended it.
 */
export function bootVm(root: string, args: readonly string[], env: NodeJS.ProcessEnv, stdio: StdioOptions = 'inherit'): Promise<number> {
  return new Promise<number>((done) => {
    const child = spawn(join(root, 'test', 'vm', 'vm.sh'), args, { cwd: root, env, stdio });
    child.on('error', () => done(125));
    child.on('exit', (c, sig) => done(c ?? (sig ? 128 : 125)));
  });
}
