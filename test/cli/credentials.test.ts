// No credential reaches a log line or an error: kubeconfigs holding a token, a password, a client
// key or a token file, against API servers that refuse, fail or echo our request headers back in
// their error bodies (as a broken server or proxy may), at start-up (the CLI's whole output) and
// while running (every line the API source and the event recorder log).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiSource } from '../../src/cluster/api-source.js';
import { EventRecorder } from '../../src/cluster/api/events.js';
import { credentialsOf, loadKubeConfig } from '../../src/cluster/api/kubeconfig.js';
import { RestClient } from '../../src/cluster/api/rest.js';
import { ClusterTracker } from '../../src/cluster/tracker.js';
import { createLogger } from '../../src/observe/log.js';
import { Redactor, redactPatterns } from '../../src/observe/redact.js';
import { runCliAsync } from '../helpers/cli.js';

const TOKEN = 'kipvs-test-token-4f9c2a7e51b8d3';
const PASSWORD = 'hunter2-but-longer-9d1c';
const KEY_DATA = 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2Z0lCQURBTkJna3Foa2lHOXcwQkFRRUZBQVND';
const FILE_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJlLWJ5dGVz';
const SECRETS = [TOKEN, PASSWORD, KEY_DATA, FILE_TOKEN];

const dir = mkdtempSync(join(tmpdir(), 'kube-ipvs-creds-'));
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

type Behaviour = (req: IncomingMessage, res: ServerResponse, echo: string) => void;

/** An HTTP "API server" whose answers `behave` decides; `echo` is every request header as text. */
async function apiServer(behave: Behaviour): Promise<string> {
  const s = createServer((req, res) => behave(req, res, JSON.stringify(req.headers)));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

const status = (res: ServerResponse, code: number, message: string): void => {
  res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason: 'InternalError', code }));
};
const emptyList = (res: ServerResponse): void => {
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'List', apiVersion: 'v1', items: [], metadata: { resourceVersion: '7' } }));
};

let files = 0;
function kubeconfig(server: string, user: string): string {
  const path = join(dir, `kubeconfig-${files++}`);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "${server}", insecure-skip-tls-verify: true}
users:
- name: u
  user: ${user}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`,
  );
  return path;
}

function tokenFile(): string {
  const path = join(dir, `token-${files++}`);
  // No newline: client-node sends a token file as it is (client-go trims it).
  writeFileSync(path, FILE_TOKEN);
  return path;
}

function assertNoSecret(text: string, what: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${what} shows a credential (${s.slice(0, 8)}…):\n${text}`);
  assert.doesNotMatch(text, /Bearer (?!\[redacted\])\S/, `${what} shows an Authorization header:\n${text}`);
}

describe('credentials never appear in logs or errors', () => {
  test('redaction masks known secrets and anything shaped like a credential', () => {
    const r = new Redactor();
    r.add(TOKEN, 'short', undefined);
    assert.equal(r.redact(`echo ${TOKEN} back`), 'echo [redacted] back');
    assert.equal(r.redact('a short word stays'), 'a short word stays', 'values under 8 characters are not registered');
    for (const [input, want] of [
      ['{"authorization":"Bearer abc.def-123"}', '{"authorization":"[redacted]"}'],
      ['Authorization: Basic dXNlcjpwYXNz', 'Authorization: [redacted]'],
      ['got Bearer abcdefghijkl from you', 'got Bearer [redacted] from you'],
      ['https://admin:pw@10.0.0.1:6443/api', 'https://[redacted]@10.0.0.1:6443/api'],
      ['GET /api?access_token=abcdef123&limit=5', 'GET /api?access_token=[redacted]&limit=5'],
      [`id ${FILE_TOKEN} end`, 'id [redacted] end'],
      ['    token: abcdef0123456789', '    token: [redacted]'],
      ['client-key-data: LS0tLS1CRUdJTg==', 'client-key-data: [redacted]'],
      ['"password":"pa55word-long"', '"password":"[redacted]"'],
      ['check the kubeconfig\'s user or the service account token', 'check the kubeconfig\'s user or the service account token'],
      ['GET /api/v1/services: 403 forbidden', 'GET /api/v1/services: 403 forbidden'],
    ] as const) {
      assert.equal(redactPatterns(input), want, input);
    }
  });

  test('a kubeconfig gives up its token, password, client key, provider tokens and token file', () => {
    const kc = loadKubeConfig({ kubeconfig: kubeconfig('https://127.0.0.1:1', `{token: ${TOKEN}, password: ${PASSWORD}, username: admin, client-key-data: ${KEY_DATA}}`), master: '' });
    assert.deepEqual(new Set(credentialsOf(kc)), new Set([TOKEN, PASSWORD, KEY_DATA]));
    const kf = loadKubeConfig({ kubeconfig: kubeconfig('https://127.0.0.1:1', `{tokenFile: ${tokenFile()}}`), master: '' });
    assert.deepEqual(credentialsOf(kf), [FILE_TOKEN]);
    const master = loadKubeConfig({ kubeconfig: '', master: `https://admin:${PASSWORD}@127.0.0.1:1` });
    assert.deepEqual(credentialsOf(master), [PASSWORD]);
  });

  test('start-up failures: the whole output of `run` names the server and the problem, never a credential', async () => {
    const echo401 = await apiServer((_req, res, echo) => status(res, 401, `Unauthorized: you sent ${echo}`));
    const echo500 = await apiServer((_req, res, echo) => res.writeHead(500).end(`upstream said: ${echo}`));
    const tokenOnly = await apiServer((req, res) => res.writeHead(502).end(`bad gateway for ${(req.headers.authorization ?? '').replace(/^Bearer /, '')}`));
    const listThenRefuse = await apiServer((req, res, echo) => (req.url?.includes('endpointslices') ? status(res, 403, `forbidden: ${echo}`) : emptyList(res)));
    const users = {
      token: `{token: ${TOKEN}}`,
      basic: `{username: admin, password: ${PASSWORD}}`,
      tokenFile: `{tokenFile: ${tokenFile()}}`,
    };
    const cases: Array<{ what: string; args: string[]; says: RegExp }> = [];
    // Every failure shape with a token; the other kinds of user with the echoing 401.
    for (const [name, user] of Object.entries(users)) {
      cases.push({ what: `${name}: 401 echoing the request`, args: ['--kubeconfig', kubeconfig(echo401, user)], says: /rejected our credentials listing (services|endpointslices|nodes) \(401/ });
      if (name !== 'token') continue;
      cases.push({ what: `${name}: 500 with the headers as text`, args: ['--kubeconfig', kubeconfig(echo500, user)], says: /listing (services|endpointslices|nodes) at http:\/\/127\.0\.0\.1:\d+ failed: .*500/ });
      cases.push({ what: `${name}: 502 with the bare credential`, args: ['--kubeconfig', kubeconfig(tokenOnly, user)], says: /failed: .*502 bad gateway for/ });
      cases.push({ what: `${name}: a 403 on one resource`, args: ['--kubeconfig', kubeconfig(listThenRefuse, user)], says: /forbidden to list\/watch endpointslices/ });
    }
    cases.push({ what: 'a --master URL with user:password, unreachable', args: ['--master', `http://admin:${PASSWORD}@127.0.0.1:1`], says: /cannot reach the API server http:\/\/127\.0\.0\.1:1 / });
    const broken = join(dir, 'broken');
    writeFileSync(broken, `apiVersion: v1\nusers:\n- name: u\n  user:\n    token: ${TOKEN}\n    client-key-data: ${KEY_DATA}\n   password: [${PASSWORD}\n`);
    cases.push({ what: 'a kubeconfig that is not YAML, failing on the line after the secrets', args: ['--kubeconfig', broken], says: /not a valid kubeconfig \(.*line 7, column \d+/ });
    // Two at a time: the servers answer from this process, so the runs may overlap.
    const results: Awaited<ReturnType<typeof runCliAsync>>[] = [];
    for (let i = 0; i < cases.length; i += 2) {
      results.push(...(await Promise.all(cases.slice(i, i + 2).map((c) => runCliAsync(['run', ...c.args, '--hostname-override', 'n1'])))));
    }
    for (const [i, c] of cases.entries()) {
      const r = results[i] as Awaited<ReturnType<typeof runCliAsync>>;
      const out = r.stdout + r.stderr;
      assert.equal(r.code, 1, `${c.what}: exit 1\n${out}`);
      assert.match(out, c.says, c.what);
      assertNoSecret(out, c.what);
    }
  });

  test('while running: failed lists, watches and event posts are logged without a credential', async () => {
    let mode: 'ok' | 'echo' = 'ok';
    const seen: string[] = [];
    const listed = new Set<string>();
    const server = await apiServer((req, res, echo) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'POST') return status(res, 500, `cannot store event; request was ${echo}`);
      if (mode === 'ok' && !req.url?.includes('watch=')) {
        listed.add(req.url?.split('?')[0] ?? '');
        return emptyList(res);
      }
      // A watch before all three first lists are in stays open and quiet: the first lists succeed.
      if (req.url?.includes('watch=') && mode === 'ok' && listed.size < 3) return void res.writeHead(200, { 'Content-Type': 'application/json' }).flushHeaders();
      if (req.url?.includes('watch=') && mode === 'ok') {
        // The watch expires (410 Gone, carrying the request back): the next list is refused.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        mode = 'echo';
        return res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old; you sent ${echo}` } })}\n`);
      }
      status(res, 500, `relist refused: ${echo}`);
    });
    const kc = loadKubeConfig({ kubeconfig: kubeconfig(server, `{token: ${TOKEN}, password: ${PASSWORD}, client-key-data: ${KEY_DATA}}`), master: '' });
    // As run wires it: the kubeconfig's credentials registered with the log's redactor.
    const redactor = new Redactor();
    redactor.add(...credentialsOf(kc));
    const lines: string[] = [];
    const log = createLogger('json', (l) => void lines.push(l), undefined, undefined, redactor.redact);
    const source = new ApiSource({ connection: kc, tracker: new ClusterTracker('n1', () => undefined), nodeName: 'n1', log, onChange: () => undefined, backoff: { initialMs: 50, maxMs: 200 } });
    source.start();
    try {
      await source.waitForInitialSync(10_000);
      new EventRecorder(new RestClient(kc), 'n1', log).warn({ namespace: 'default', name: 'web' }, 'FailedToStartServiceHealthcheck', 'port 32000 in use');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !(lines.some((l) => l.includes('relist refused')) && lines.some((l) => l.includes('could not post an event')))) {
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      source.close();
    }
    const text = lines.join('');
    assert.match(text, /relist refused/, `the failing relists were logged:\n${text}\n${seen.join('\n')}`);
    assert.match(text, /could not post an event/);
    assertNoSecret(text, 'the running log');
  });
});
