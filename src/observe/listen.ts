// Starting and stopping node:http servers as promises, so callers see a bind failure as a
// rejected promise (not an 'error' event that would crash the process) and close means closed.
import type { Server } from 'node:http';

export interface ListenTarget {
  /** undefined listens on every address of both families (Go's "0.0.0.0" and "::"). */
  readonly host: string | undefined;
  readonly port: number;
  /** For "::": accept IPv6 only, leaving IPv4 to a "0.0.0.0" socket on the same port. */
  readonly ipv6Only?: boolean;
}

/** Resolves with the bound port once listening; rejects with the listen error (EADDRINUSE, EACCES…). */
export function listen(server: Server, target: ListenTarget): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : target.port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: target.host, port: target.port, ...(target.ipv6Only ? { ipv6Only: true } : {}) });
  });
}

/**
 * Stops listening and drops open connections at once, as Go's http.Server.Close does: a load
 * balancer's keep-alive connection must not keep a health-check port open.
 */
export function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
