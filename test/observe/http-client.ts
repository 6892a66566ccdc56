// A minimal HTTP GET for the observe tests: no keep-alive (so closed servers really close) and
// the raw status, headers and body.
import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

export interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export function get(host: string, port: number, path = '/'): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the connect error code (ECONNREFUSED once a port is closed), or 'connected'. */
export async function probe(host: string, port: number): Promise<string> {
  try {
    await get(host, port);
    return 'connected';
  } catch (e) {
    return typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : String(e);
  }
}
