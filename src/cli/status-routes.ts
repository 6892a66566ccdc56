// The operator endpoints the daemon adds to its metrics server: /status (JSON, filters in the
// query), /diff (the kernel against the latest plan, JSON) and /ui (the status page, which reads
// /status). docs/status.md describes them.
import type { RouteHandler, RouteResponse } from '../observe/http-servers.js';
import { parseFilterQuery } from '../observe/status-document.js';
import { STATUS_PAGE, STATUS_PAGE_CSP } from '../observe/status-page.js';
import type { NodeStatusInput } from './node-status.js';
import { nodeDiff, nodeStatus } from './node-status.js';

const JSON_HEADERS = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' };

function json(status: number, body: unknown): RouteResponse {
  return { status, headers: JSON_HEADERS, body: `${JSON.stringify(body, null, 2)}\n` };
}

export function statusRoutes(i: NodeStatusInput): ReadonlyMap<string, RouteHandler> {
  return new Map<string, RouteHandler>([
    [
      '/status',
      async (url) => {
        const filter = parseFilterQuery(url.searchParams);
        if ('error' in filter) return json(400, { error: filter.error });
        return json(200, await nodeStatus(i, filter));
      },
    ],
    [
      '/diff',
      async () => {
        const d = await nodeDiff(i);
        return d ? json(200, d) : json(503, { error: 'no sync has run yet: there is no plan to compare the kernel with; try again after the first sync' });
      },
    ],
    [
      '/ui',
      async () => ({
        status: 200,
        headers: {
          'Content-Type': 'text/html; charset=utf-8',
          // Only this page's own script and style, and requests to this server: nothing outside.
          'Content-Security-Policy': STATUS_PAGE_CSP,
          'X-Content-Type-Options': 'nosniff',
          'Cache-Control': 'no-store',
        },
        body: STATUS_PAGE,
      }),
    ],
  ]);
}
