// Running a tool of the dataplane (iptables, modprobe): an argument array, never a shell; output
// collected; a time limit. Shared by the iptables backend, its probe and the module loaders.
import { spawn } from 'node:child_process';

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class SpawnFailure extends Error {
  constructor(
    readonly errno: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Runs argv with optional stdin, collecting output; rejects only when it could not run at all. */
export function runCommand(argv: readonly string[], input: string | undefined, timeoutMs: number): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new SpawnFailure(undefined, 'empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => reject(new SpawnFailure(e.code, e.message)));
    child.on('close', (status, signal) => {
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        status: signal ? null : status,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}killed by ${signal} (timeout ${timeoutMs} ms?)` : stderr,
      });
    });
    // The tool may exit before reading all of stdin (a usage error): that EPIPE is not our failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}
