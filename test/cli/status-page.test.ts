// The /ui status page in a real browser: Debian's headless Chromium loads it from a daemon over
// the in-memory kernel and the test checks what it shows against the daemon's own /status: the
// node and source, the Services table, draining pods, search and filters, the sync chart (full vs
// partial, a failed sync marked), drift and failure indicators, live updates, that object text is
// shown as text, and that the page reaches nothing but its own server (no console error, no CSP
// report). It saves screenshots; UPDATE_SCREENSHOTS=1 writes them to docs/ for the README.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusDocument } from '../../src/observe/status-document.js';
import { Browser } from '../helpers/chromium.js';
import { repoRoot } from '../helpers/cli.js';
import type { FakeDaemon } from '../helpers/fake-daemon.js';
import { podSlice, shopCluster, startFakeDaemon } from '../helpers/fake-daemon.js';
import { NODE, service } from '../helpers/world.js';

const WEB = '10.96.0.10:80/TCP';
const WEB_VS = { family: 'IPv4', protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: 0, timeout: 0 } as const;

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG signature');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

const webSlice = (ips: Array<[string, string, string]>) =>
  podSlice('web', 'shop', [{ name: 'http', port: 8080 }], ips.map(([ip, pod, node]) => ({ ip, pod, node, zone: node === NODE ? 'eu-west-1a' : 'eu-west-1b' })));

describe('the status page in headless Chromium', () => {
  let d: FakeDaemon;
  let b: Browser;
  const shots = process.env['UPDATE_SCREENSHOTS'] === '1' ? join(repoRoot(), 'docs') : mkdtempSync(join(tmpdir(), 'kube-ipvs-ui-'));

  before(async () => {
    d = await startFakeDaemon();
    d.node.apply(shopCluster());
    await d.sync(true);
    // Traffic as the kernel would count it.
    d.node.ipvs.setStats(WEB, undefined, { conns: 51_200, cps: 14, inbps: 28_000, outbps: 410_000 });
    d.node.ipvs.setStats(WEB, '10.244.1.11:8080', { conns: 26_000, cps: 8 });
    d.node.ipvs.setConnections(WEB, '10.244.1.11:8080', { active: 4, inactive: 11, persist: 0 });
    d.node.ipvs.setConnections(WEB, '10.244.1.13:8080', { active: 2, inactive: 3, persist: 0 });
    d.node.ipvs.setStats('10.96.0.53:53/UDP', undefined, { conns: 9_400, cps: 35, inbps: 5_200, outbps: 9_800 });
    // web-7d9c5-qw4lb goes away while it holds connections: it drains.
    d.node.apply({ slices: [webSlice([['10.244.1.11', 'web-7d9c5-x2kqp', NODE], ['10.244.2.12', 'web-7d9c5-m8rtz', 'node-b']])] });
    await d.sync();
    for (let i = 0; i < 5; i++) await d.sync();
    // A sync whose IPVS writes all fail, then the retry.
    d.node.ipvs.setFaults({ rate: 1, seed: 3 });
    d.node.apply({ slices: [podSlice('checkout', 'shop', [{ name: 'http', port: 8080 }], [{ ip: '10.244.1.21', pod: 'checkout-5f6d8-ab1cd', node: NODE, zone: 'eu-west-1a' }, { ip: '10.244.2.22', pod: 'checkout-5f6d8-ef2gh', node: 'node-b', zone: 'eu-west-1b' }, { ip: '10.244.1.23', pod: 'checkout-5f6d8-kl3mn', node: NODE, zone: 'eu-west-1a' }])] });
    assert.equal((await d.sync()).ok, false);
    d.node.ipvs.setFaults(undefined);
    await d.sync(true);
    // Someone deletes a real server behind kube-ipvs's back; the next full resync repairs it.
    await d.node.ipvs.apply([{ kind: 'deleteDest', vs: WEB_VS, rs: { address: '10.244.2.12', port: 8080, weight: 1, forward: 'masq' } }]);
    for (let i = 0; i < 4; i++) await d.sync();
    assert.deepEqual(Object.fromEntries((await d.sync(true)).report.drift), { ipvs: 1 });
    for (let i = 0; i < 3; i++) await d.sync();
    b = await Browser.launch({ width: 1280, height: 860 });
  });

  after(async () => {
    await b?.close();
    await d?.close();
  });

  const text = (selector: string): Promise<string> => b.evaluate<string>(`document.querySelector(${JSON.stringify(selector)}).textContent`);
  const rows = (): Promise<string[]> => b.evaluate<string[]>(`[...document.querySelectorAll('#services-body tr.svc')].map((r) => r.getAttribute('data-key'))`);

  test('it serves itself with a policy that admits only its own script, style and server', async () => {
    const res = await fetch(`${d.url}/ui`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|https?:/);
    assert.doesNotMatch(await res.text(), /<script[^>]+src=|<link[^>]+href="(?!data:)|@import|url\(/, 'nothing loaded from elsewhere');
  });

  test('the page shows the node, the Services and the daemon\'s state as /status has them', async () => {
    await b.navigate(`${d.url}/ui`);
    await b.waitUntil(`document.body.getAttribute('data-loaded') === 'true'`, 'the first /status');
    const doc = (await (await fetch(`${d.url}/status`)).json()) as StatusDocument;
    assert.equal(await text('#node-name'), 'node-a');
    assert.equal(await text('#health'), 'healthy');
    assert.equal(await text('#source'), 'manifests connected');
    assert.deepEqual(await rows(), doc.services.map((s) => s.key));
    const web = await b.evaluate<string[]>(`[...document.querySelector('tr.svc[data-key="shop/web:http/TCP"]').children].map((c) => c.textContent)`);
    assert.deepEqual(web.slice(0, 4), ['shop/web:http/TCP', 'ClusterIP', '10.96.0.10:80/TCP', 'rr']);
    assert.equal(web[4], '2/3 1 draining', 'two ready pods and the one draining');
    assert.deepEqual(web.slice(5, 8), ['6', '14', '14'], 'active and inactive summed over the pods; the kernel\'s conn/s');
    assert.match(await text('#drift'), /^repaired /);
    assert.match(await text('#drift-sub'), /^ipvs 1 /);
    assert.equal(await text('#issues'), '0 failed operations, 1 invalid object, 1 conflict');
    const issues = await b.evaluate<string[]>(`[...document.querySelectorAll('#issue-list li')].map((l) => l.textContent)`);
    assert.deepEqual(issues, [
      'Service default/broken spec.ports[0].port: 70000 is not a valid port (1-65535) (skipped)',
      'virtual server 10.96.0.77:80/TCP wanted by default/legacy-copy:http/TCP, default/legacy:http/TCP; default/legacy-copy:http/TCP has it',
    ]);
  });

  test('the sync chart has a bar per sync: full ones dark, partial ones light, the failed one outlined', async () => {
    const doc = (await (await fetch(`${d.url}/status`)).json()) as StatusDocument;
    const bars = await b.evaluate<Array<{ cls: string; title: string }>>(`[...document.querySelectorAll('#history rect.bar')].map((r) => ({ cls: r.getAttribute('class'), title: r.querySelector('title').textContent }))`);
    assert.equal(bars.length, doc.sync.history.length);
    assert.deepEqual(bars.map((x) => x.cls), doc.sync.history.map((r) => `bar ${r.full ? 'full' : 'partial'}${r.ok ? '' : ' failed'}`));
    assert.equal(bars.filter((x) => x.cls.includes('failed')).length, 1);
    assert.match(bars.find((x) => x.cls.includes('failed'))?.title ?? '', /partial sync, .*FAILED/);
    writeFileSync(join(shots, 'status-page.png'), await b.screenshot(true));
  });

  test('a click on a Service lists its pods; the draining one shows its time left', async () => {
    await b.click('tr.svc[data-key="shop/web:http/TCP"]');
    await b.waitUntil(`document.querySelector('tr.rs')`, 'the real servers');
    const pods = await b.evaluate<string[][]>(`[...document.querySelectorAll('tr.rs table tr')].slice(1).map((r) => [...r.children].map((c) => c.textContent))`);
    assert.deepEqual(pods.map((p) => p.slice(0, 6)), [
      ['10.244.1.11:8080', 'web-7d9c5-x2kqp', 'node-a (this node)', 'eu-west-1a', 'ready', '1'],
      ['10.244.1.13:8080', '\u2014', '\u2014', '\u2014', 'removed, draining', '0'],
      ['10.244.2.12:8080', 'web-7d9c5-m8rtz', 'node-b', 'eu-west-1b', 'ready', '1'],
    ]);
    assert.match(pods[1]?.[8] ?? '', /^\d+ s left$/);
    assert.deepEqual(pods[0]?.slice(6, 8), ['4', '11']);
  });

  test('search and filters narrow the table', async () => {
    await b.type('#search', 'coredns');
    await b.waitUntil(`document.querySelectorAll('#services-body tr.svc').length === 2`, 'two kube-dns ports');
    assert.deepEqual(await rows(), ['kube-system/kube-dns:dns-tcp/TCP', 'kube-system/kube-dns:dns/UDP']);
    await b.type('#search', '30080');
    await b.waitUntil(`document.querySelectorAll('#services-body tr.svc').length === 1`, 'the node port');
    assert.deepEqual(await rows(), ['shop/checkout:http/TCP']);
    await b.type('#search', '');
    await b.evaluate(`(() => { const s = document.getElementById('ns-filter'); s.value = 'shop'; s.dispatchEvent(new Event('change')); })()`);
    assert.deepEqual(await rows(), ['shop/checkout:http/TCP', 'shop/web:http/TCP']);
    await b.evaluate(`(() => { const s = document.getElementById('ns-filter'); s.value = ''; s.dispatchEvent(new Event('change')); })()`);
    await b.click('#nodeport-filter');
    assert.deepEqual(await rows(), ['default/ingress:https/TCP', 'shop/checkout:http/TCP']);
    await b.click('#nodeport-filter');
    await b.click('#draining-filter');
    assert.deepEqual(await rows(), ['shop/web:http/TCP']);
    writeFileSync(join(shots, 'status-page-draining.png'), await b.screenshot());
    await b.click('#draining-filter');
  });

  test('counts follow the kernel and the cluster without a reload', async () => {
    d.node.apply({ slices: [webSlice([['10.244.1.11', 'web-7d9c5-x2kqp', NODE], ['10.244.2.12', 'web-7d9c5-m8rtz', 'node-b'], ['10.244.1.14', 'web-7d9c5-zz9tt', NODE]])] });
    await d.sync();
    d.node.ipvs.setConnections(WEB, '10.244.1.14:8080', { active: 30, inactive: 0, persist: 0 });
    await b.waitUntil(`[...document.querySelectorAll('tr.rs td')].some((c) => c.textContent === 'web-7d9c5-zz9tt')`, 'the new pod', 10_000);
    await b.waitUntil(`document.querySelector('tr.svc[data-key="shop/web:http/TCP"]').children[5].textContent === '36'`, 'its connections', 10_000);
  });

  test('text from the objects is shown as text, never as markup', async () => {
    // A Service whose annotation carries markup: the invalid value is quoted in a problem.
    d.node.apply({ services: [service('odd', { clusterIP: '10.96.0.88', ports: [{ name: 'http', port: 80 }] }, { metadata: { name: 'odd', annotations: { 'kube-ipvs.io/scheduler': '<b id="injected">rr</b>' } } }, 'default')] });
    await d.sync();
    await b.waitUntil(`document.getElementById('issue-list').children.length === 3`, 'the new problem', 10_000);
    const issues = await b.evaluate<string[]>(`[...document.querySelectorAll('#issue-list li')].map((l) => l.textContent)`);
    assert.ok(issues.some((i) => i.includes('unknown IPVS scheduler "<b id=\\"injected\\">rr</b>"')), issues.join(' | '));
    assert.equal(await b.evaluate<boolean>(`document.getElementById('injected') === null`), true);
  });

  test('it requested nothing but its own server and logged no error', () => {
    const origin = new URL(d.url).origin;
    assert.ok(b.events.requests.length >= 3);
    for (const url of b.events.requests) assert.ok(url.startsWith(`${origin}/`), url);
    assert.deepEqual(b.events.errors, []);
  });

  test('the screenshots are PNGs of the page', async () => {
    for (const name of ['status-page.png', 'status-page-draining.png']) {
      const { width, height } = pngSize(readFileSync(join(shots, name)));
      assert.equal(width, 1280, name);
      assert.ok(height >= 860, `${name}: ${height}`);
    }
  });
});
