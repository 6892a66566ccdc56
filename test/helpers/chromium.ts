// Debian's Chromium, headless, driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// JSON messages separated by NUL on file descriptors 3 and 4), so no browser download, no
// WebSocket and no npm package is needed. One page per browser; the page's requests, console
// errors, exceptions and Content-Security-Policy reports are recorded for the test to check.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = process.env.KUBE_IPVS_CHROMIUM ?? '/usr/bin/chromium';

/** What a test needs installed, said the way the user can fix it. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`;
}

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
  method: string;
}

export interface PageEvents {
  /** Every URL the page requested. */
  readonly requests: string[];
  /** Console errors, uncaught exceptions and browser log errors (CSP violations land here). */
  readonly errors: string[];
}

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners: Array<(method: string, params: Record<string, unknown>, sessionId: string | undefined) => void> = [];
  private buffer = '';
  private session: string | undefined;
  readonly events: PageEvents = { requests: [], errors: [] };
  private exited: Error | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const out = child.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.receive(chunk));
    child.on('exit', (code, signal) => {
      this.exited = new Error(`chromium exited (${signal ?? code})`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
  }

  static async launch(opts: { width?: number; height?: number } = {}): Promise<Browser> {
    const missing = chromiumMissing();
    if (missing) throw new Error(missing);
    const profile = mkdtempSync(join(tmpdir(), 'kube-ipvs-chromium-'));
    const child = spawn(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--disable-default-apps',
        '--disable-domain-reliability',
        '--disable-client-side-phishing-detection',
        '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
        // Only loopback resolves: the page must not reach anything else (and cannot).
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
        '--hide-scrollbars',
        '--font-render-hinting=none',
        `--user-data-dir=${profile}`,
        '--remote-debugging-pipe',
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    (child.stdio[2] as Readable).on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    const b = new Browser(child, profile);
    try {
      const { targetId } = (await b.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
      const { sessionId } = (await b.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
      b.session = sessionId;
      b.listeners.push((method, params, sid) => {
        if (sid !== b.session) return;
        if (method === 'Network.requestWillBeSent') b.events.requests.push(String((params.request as { url: string }).url));
        else if (method === 'Runtime.exceptionThrown') b.events.errors.push(`exception: ${JSON.stringify((params.exceptionDetails as { exception?: { description?: string }; text?: string }).exception?.description ?? params.exceptionDetails)}`);
        else if (method === 'Runtime.consoleAPICalled' && params.type === 'error') b.events.errors.push(`console: ${JSON.stringify(params.args)}`);
        else if (method === 'Log.entryAdded') {
          const e = params.entry as { level: string; text: string; source: string };
          if (e.level === 'error') b.events.errors.push(`log (${e.source}): ${e.text}`);
        }
      });
      for (const domain of ['Page', 'Runtime', 'Network', 'Log']) await b.send(`${domain}.enable`, {}, true);
      await b.send('Emulation.setDeviceMetricsOverride', { width: opts.width ?? 1280, height: opts.height ?? 860, deviceScaleFactor: 1, mobile: false }, true);
    } catch (e) {
      await b.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}; chromium said: ${stderr.trim().slice(-1000)}`);
    }
    return b;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let nul: number;
    while ((nul = this.buffer.indexOf('\0')) >= 0) {
      const text = this.buffer.slice(0, nul);
      this.buffer = this.buffer.slice(nul + 1);
      const msg = JSON.parse(text) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method) {
        for (const l of this.listeners) l(msg.method, msg.params ?? {}, msg.sessionId);
      }
    }
  }

  /** One DevTools command, to the browser or (onPage) to the page's session. */
  send(method: string, params: Record<string, unknown> = {}, onPage = false): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    const msg = { id, method, params, ...(onPage ? { sessionId: this.session } : {}) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(msg)}\0`);
    });
  }

  /** Resolves on the next event of this name from the page. */
  waitFor(method: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${method} within ${timeoutMs} ms`)), timeoutMs);
      const l = (m: string, params: Record<string, unknown>, sid: string | undefined): void => {
        if (m !== method || sid !== this.session) return;
        clearTimeout(timer);
        this.listeners.splice(this.listeners.indexOf(l), 1);
        resolve(params);
      };
      this.listeners.push(l);
    });
  }

  async navigate(url: string): Promise<void> {
    const loaded = this.waitFor('Page.loadEventFired');
    const r = (await this.send('Page.navigate', { url }, true)) as { errorText?: string };
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page (promises awaited) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, true)) as { result: { value?: T }; exceptionDetails?: { text: string; exception?: { description?: string } } };
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls an expression until it is truthy. */
  async waitUntil(expression: string, what: string, timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > end) throw new Error(`the page did not show ${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Types into an input as a user would (an input event per change). */
  async type(selector: string, text: string): Promise<void> {
    await this.evaluate(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); e.focus(); e.value = ''; e.dispatchEvent(new Event('input', { bubbles: true })); })()`);
    await this.send('Input.insertText', { text }, true);
  }

  /** Clicks the centre of the first element matching the selector, with real mouse events. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number } | null>(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null; e.scrollIntoView({ block: 'center' }); const r = e.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`);
    if (!box) throw new Error(`nothing matches ${selector}`);
    for (const type of ['mousePressed', 'mouseReleased']) await this.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 }, true);
  }

  /** A PNG of the viewport (or the whole page). */
  async screenshot(fullPage = false): Promise<Buffer> {
    let clip: Record<string, number> | undefined;
    if (fullPage) {
      const size = await this.evaluate<{ w: number; h: number }>('({ w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight })');
      clip = { x: 0, y: 0, width: size.w, height: size.h, scale: 1 };
    }
    const r = (await this.send('Page.captureScreenshot', { format: 'png', ...(clip ? { clip, captureBeyondViewport: true } : {}) }, true)) as { data: string };
    return Buffer.from(r.data, 'base64');
  }

  async close(): Promise<void> {
    if (!this.exited) {
      const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
      await this.send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
