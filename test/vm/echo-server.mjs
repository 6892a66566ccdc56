// Tiny test backends for the VM scenarios (started by lib.sh inside a pod netns).
//
//   node echo-server.mjs tcp|udp PORT NAME [READY_FILE]
//
// Every TCP connection / UDP datagram is answered with one line
//   "NAME CLIENT_IP CLIENT_PORT\n"
// i.e. who answered and the client address this backend saw (to tell
// masqueraded from source-preserving paths). A TCP client that sends an HTTP
// request gets the line as an HTTP/1.0 response body (so curl works); a client
// that sends another line gets the bare line at once, one that sends nothing
// after 2 s. Listens on all addresses (IPv4 and IPv6). READY_FILE is created
// once listening.
import net from 'node:net';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import console from 'node:console';
import { setTimeout, clearTimeout } from 'node:timers';

const [mode, portArg, name, readyFile] = process.argv.slice(2);
const port = Number(portArg);
if (!['tcp', 'udp'].includes(mode) || !Number.isInteger(port) || port <= 0 || port > 65535 || !name) {
  console.error('usage: echo-server.mjs tcp|udp PORT NAME [READY_FILE]');
  process.exit(2);
}

const plain = (ip) => (ip && ip.startsWith('::ffff:') ? ip.slice(7) : ip);
const ready = () => {
  if (readyFile) fs.writeFileSync(readyFile, `${process.pid}\n`);
};

if (mode === 'tcp') {
  const server = net.createServer((sock) => {
    const line = `${name} ${plain(sock.remoteAddress)} ${sock.remotePort}\n`;
    let buf = '';
    let answered = false;
    const answer = () => {
      if (answered) return;
      answered = true;
      clearTimeout(idle);
      if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r?\n/.test(buf)) {
        sock.end(
          'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n' +
            `Content-Length: ${Buffer.byteLength(line)}\r\n\r\n${line}`,
        );
      } else {
        sock.end(line);
      }
      // keep reading (and discarding) until the peer closes, so unread request
      // bytes never turn our close into an RST; give up after 5 s
      setTimeout(() => sock.destroy(), 5000).unref();
    };
    // Long enough that a slow client's HTTP request (a loaded TCG guest can take well over 200 ms
    // between connect and send) is never answered as a bare line, which curl calls HTTP/0.9.
    const idle = setTimeout(answer, 2000);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      if (answered) return;
      buf += d;
      // An HTTP request is answered at the end of its header; any other first line at once.
      const http = /^[A-Z]+ \S+ HTTP\//.test(buf);
      if ((!http && buf.includes('\n')) || buf.includes('\r\n\r\n') || buf.includes('\n\n') || buf.length > 65536) answer();
    });
    sock.on('end', answer);
    sock.on('error', () => sock.destroy());
  });
  let host = '::';
  server.on('error', (e) => {
    if (host === '::' && ['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(e.code)) {
      host = '0.0.0.0'; // IPv6 disabled in this namespace
      server.listen({ port, host, backlog: 1024 }, ready);
      return;
    }
    console.error(`echo-server ${name}: ${e.message}`);
    process.exit(1);
  });
  server.listen({ port, host, ipv6Only: false, backlog: 1024 }, ready);
} else {
  const start = (type, host) => {
    const sock = dgram.createSocket({ type, ipv6Only: false });
    sock.on('message', (_msg, rinfo) => {
      sock.send(`${name} ${plain(rinfo.address)} ${rinfo.port}\n`, rinfo.port, rinfo.address);
    });
    sock.on('error', (e) => {
      if (type === 'udp6' && ['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(e.code)) {
        sock.close();
        start('udp4', '0.0.0.0'); // IPv6 disabled in this namespace
        return;
      }
      console.error(`echo-server ${name}: ${e.message}`);
      process.exit(1);
    });
    sock.bind(port, host, ready);
  };
  start('udp6', '::');
}
