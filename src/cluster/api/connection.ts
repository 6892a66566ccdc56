// How to reach the API server and who we are, per request (kubeconfig.ts builds it; rest.ts and
// watch.ts use it). Per request, because credentials change under a running daemon: a projected
// service account token or a client certificate is rotated on disk.
import type { RequestOptions } from 'node:https';

export interface ApiConnection {
  /** The API server's base URL, e.g. https://10.96.0.1:443. */
  readonly server: string;
  /** TLS settings (ca, cert, key, rejectUnauthorized, servername) and the Authorization header. */
  requestOptions(): Promise<RequestOptions>;
  /** The credentials it holds, now (a token file's current token), so logs can mask them. */
  secrets(): string[];
}
