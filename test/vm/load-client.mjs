// A load generator for the VM scenarios: keeps opening fresh TCP connections to HOST:PORT and
// keeps one long-lived connection busy, counting every failure, until it gets SIGTERM; then it
// writes its counts to OUT_FILE and exits 0.
//
//   node load-client.mjs HOST PORT OUT_FILE [READY_FILE] [INTERVAL_MS=20] [TIMEOUT_MS=5000]
//
// The backend must answer each line it reads with one line whose first word names it
// (hold-server.mjs does). Fresh connections: one every INTERVAL_MS (at most 32 in flight), each
// sends "new N", must get a line back within TIMEOUT_MS, then closes. The long-lived connection
// sends "long N" every 100 ms; a reply missing for TIMEOUT_MS, an error or a close is a failure
// (a broken long-lived connection is not reopened: it counts once per missed tick from then on).
// READY_FILE is written once the long-lived connection and one fresh connection have answered.
//
// OUT_FILE lines ("key value", for bash):
//   new_ok N / new_failed N / new_slow N (answered, but after > 1 s) / new_skipped N (ticks
//   skipped because 32 were in flight) / new_max_ms N / new_backends pod-b=N,pod-a=M /
//   long_sent N / long_ok N / long_failed N / long_backend NAME / long_max_ms N / duration_ms N /
//   error TEXT (the first 10 failures, one line each)
import net from 'node:net';
import fs from 'node:fs';
import process from 'node:process';
import { setTimeout, clearTimeout, setInterval, clearInterval } from 'node:timers';

const [host, portArg, outFile, readyFile, intervalArg, timeoutArg] = process.argv.slice(2);
const port = Number(portArg);
const intervalMs = Number(intervalArg ?? 20);
const timeoutMs = Number(timeoutArg ?? 5000);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535 || !outFile || !(intervalMs > 0) || !(timeoutMs > 0)) {
  process.stderr.write('usage: load-client.mjs HOST PORT OUT_FILE [READY_FILE] [INTERVAL_MS] [TIMEOUT_MS]\n');
  process.exit(2);
}

const MAX_IN_FLIGHT = 32;
const SLOW_MS = 1000;
const t0 = Date.now();
const s = {
  newOk: 0, newFailed: 0, newSlow: 0, newSkipped: 0, newMaxMs: 0, backends: new Map(),
  longSent: 0, longOk: 0, longFailed: 0, longBackend: '', longMaxMs: 0,
};
const errors = [];
const fail = (what) => {
  // Wall-clock time too, to line a failure up with the daemon's log and kernel traces.
  const now = Date.now();
  if (errors.length < 10) errors.push(`${((now - t0) / 1000).toFixed(2)}s (${new Date(now).toISOString()}) ${what}`);
};
let inFlight = 0;
let stopping = false;
let readyWritten = false;
const maybeReady = () => {
  if (readyWritten || !readyFile || s.newOk === 0 || s.longOk === 0) return;
  readyWritten = true;
  fs.writeFileSync(readyFile, `${process.pid}\n`);
};

function fresh(n) {
  inFlight++;
  const started = Date.now();
  let done = false;
  let buf = '';
  let connected = false;
  const sock = net.connect({ host, port });
  const finish = (ok, why) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    inFlight--;
    const ms = Date.now() - started;
    if (ok) {
      s.newOk++;
      s.newMaxMs = Math.max(s.newMaxMs, ms);
      if (ms > SLOW_MS) s.newSlow++;
      const name = buf.split(' ', 1)[0] || '?';
      s.backends.set(name, (s.backends.get(name) ?? 0) + 1);
      maybeReady();
      sock.end();
    } else {
      s.newFailed++;
      fail(`new #${n} from port ${sock.localPort ?? '?'}: ${why} after ${ms} ms (${connected ? 'after' : 'before'} connect)`);
      sock.destroy();
    }
  };
  const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
  sock.setEncoding('utf8');
  sock.on('connect', () => {
    connected = true;
    sock.write(`new ${n}\n`);
  });
  sock.on('data', (d) => {
    buf += d;
    if (buf.includes('\n')) finish(true);
  });
  sock.on('error', (e) => finish(false, e.code ?? e.message));
  sock.on('close', () => finish(false, 'closed before answering'));
}

// The long-lived connection: pending pings by sequence number → send time.
const pending = new Map();
let longBuf = '';
let longBroken = false;
const long = net.connect({ host, port });
long.setEncoding('utf8');
long.setNoDelay(true);
long.on('data', (d) => {
  longBuf += d;
  let i;
  while ((i = longBuf.indexOf('\n')) >= 0) {
    const line = longBuf.slice(0, i);
    longBuf = longBuf.slice(i + 1);
    const [name, , seq] = line.split(' '); // "NAME long N"
    const sent = pending.get(Number(seq));
    if (sent === undefined) continue;
    pending.delete(Number(seq));
    s.longOk++;
    s.longMaxMs = Math.max(s.longMaxMs, Date.now() - sent);
    if (!s.longBackend) s.longBackend = name;
    else if (s.longBackend !== name) {
      s.longFailed++;
      fail(`long: answered by ${name}, was ${s.longBackend}`);
    }
    maybeReady();
  }
});
const breakLong = (why) => {
  if (longBroken || stopping) return;
  longBroken = true;
  s.longFailed++;
  fail(`long: ${why}`);
};
long.on('error', (e) => breakLong(e.code ?? e.message));
long.on('close', () => breakLong('closed'));

let seq = 0;
const longTick = setInterval(() => {
  const now = Date.now();
  for (const [n, sent] of pending) {
    if (now - sent > timeoutMs) {
      pending.delete(n);
      s.longFailed++;
      fail(`long #${n}: no answer in ${timeoutMs} ms`);
    }
  }
  s.longSent++;
  if (longBroken) {
    s.longFailed++;
    return;
  }
  pending.set(seq, now);
  long.write(`long ${seq}\n`);
  seq++;
}, 100);

let n = 0;
const newTick = setInterval(() => {
  if (inFlight >= MAX_IN_FLIGHT) {
    s.newSkipped++;
    return;
  }
  fresh(n++);
}, intervalMs);

function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(newTick);
  clearInterval(longTick);
  // let in-flight work finish (each has its own timeout), then report
  const deadline = Date.now() + timeoutMs + 500;
  const wait = () => {
    if ((inFlight > 0 || pending.size > 0) && Date.now() < deadline) return void setTimeout(wait, 20);
    for (const [k] of pending) {
      s.longFailed++;
      fail(`long #${k}: unanswered at stop`);
    }
    long.destroy();
    const lines = [
      `new_ok ${s.newOk}`, `new_failed ${s.newFailed}`, `new_slow ${s.newSlow}`, `new_skipped ${s.newSkipped}`,
      `new_max_ms ${s.newMaxMs}`, `new_backends ${[...s.backends].map(([k, v]) => `${k}=${v}`).join(',') || '-'}`,
      `long_sent ${s.longSent}`, `long_ok ${s.longOk}`, `long_failed ${s.longFailed}`,
      `long_backend ${s.longBackend || '-'}`, `long_max_ms ${s.longMaxMs}`, `duration_ms ${Date.now() - t0}`,
      ...errors.map((e) => `error ${e}`),
    ];
    fs.writeFileSync(`${outFile}.tmp`, lines.join('\n') + '\n');
    fs.renameSync(`${outFile}.tmp`, outFile);
    process.exit(0);
  };
  wait();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
