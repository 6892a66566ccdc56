// A backend that keeps connections open (for graceful-termination scenarios): every line a client
// sends is answered with "NAME LINE" on the same connection, until the client closes it.
//   node hold-server.mjs PORT NAME [READY_FILE]
import net from 'node:net';
import fs from 'node:fs';
import process from 'node:process';

const [portArg, name, readyFile] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !name) {
  process.stderr.write('usage: hold-server.mjs PORT NAME [READY_FILE]\n');
  process.exit(2);
}
const server = net.createServer((sock) => {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      sock.write(`${name} ${buf.slice(0, i)}\n`);
      buf = buf.slice(i + 1);
    }
  });
  sock.on('error', () => sock.destroy());
});
server.listen(port, () => {
  if (readyFile) fs.writeFileSync(readyFile, `${process.pid}\n`);
});
