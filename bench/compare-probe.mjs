// Small probes bench/compare-guest.sh runs in the VM. Plain JavaScript with node: imports only, so
// that it starts fast from the guest's 9p root.
//   node compare-probe.mjs reach --ca FILE --token-file FILE --ready FILE [--timeout SECONDS]
//     Starts a request to https://10.96.0.1:443/version (default/kubernetes through its ClusterIP)
//     every 100 ms and prints the epoch time (seconds) of the first 200 answer. The API server's certificate
//     must name 10.96.0.1 and chain to --ca, so nothing but our API server counts as an answer.
//     Touches --ready once it polls. Prints "none" on timeout.
//   node compare-probe.mjs clock --url URL
//     The offset of this clock from the host's (seconds, guest minus host): five exchanges with
//     the conductor's /time, the one with the shortest round trip taken, its midpoint compared.
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';

const [mode, ...args] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function getOnce(ca, token, onConnect = () => undefined) {
  return new Promise((resolve) => {
    const req = httpsRequest(
      { host: '10.96.0.1', port: 443, path: '/version', method: 'GET', ca, servername: '10.96.0.1', headers: { Authorization: `Bearer ${token}` }, agent: false, timeout: 1000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      },
    );
    req.on('socket', (socket) => socket.once('connect', onConnect));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

async function reach() {
  const ca = readFileSync(opt('--ca'), 'utf8');
  const token = readFileSync(opt('--token-file'), 'utf8').trim();
  const deadline = Date.now() + Number(opt('--timeout', '3600')) * 1000;
  writeFileSync(opt('--ready'), 'ready\n');
  // A new attempt every 100 ms, not after the last one ended: an attempt whose SYN left before the
  // path existed can hang until its 1 s timeout, and waiting for it would add up to a second. None
  // while one is connected (its TLS handshake would share the CPU with more of them).
  let answered = false;
  let connected = 0;
  while (!answered && Date.now() < deadline) {
    if (connected === 0) {
      let mine = false;
      void getOnce(ca, token, () => {
        mine = true;
        connected++;
      }).then((ok) => {
        if (mine) connected--;
        if (!ok || answered) return;
        answered = true;
        // The request left at most a second earlier; the answer proves the path worked by now.
        process.stdout.write(`${(Date.now() / 1000).toFixed(3)}\n`, () => process.exit(0));
      });
    }
    await sleep(100);
  }
  if (!answered) process.stdout.write('none\n', () => process.exit(0));
}

function hostTime(url) {
  return new Promise((resolve, reject) => {
    const t1 = Date.now();
    const req = httpRequest(`${url}/time`, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ t1, t2: Date.now(), host: Number(body) * 1000 }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function clock() {
  const url = opt('--url');
  let best;
  for (let i = 0; i < 5; i++) {
    const s = await hostTime(url);
    if (!best || s.t2 - s.t1 < best.t2 - best.t1) best = s;
  }
  const offset = ((best.t1 + best.t2) / 2 - best.host) / 1000;
  process.stdout.write(`${offset.toFixed(4)} ${((best.t2 - best.t1) / 1000).toFixed(4)}\n`);
}

if (mode === 'reach') await reach();
else if (mode === 'clock') await clock();
else {
  process.stderr.write(`compare-probe: unknown mode ${mode}\n`);
  process.exit(2);
}
