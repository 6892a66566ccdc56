// NetlinkRequester.enlargeDumps against the real kernel: the kernel sizes a socket's dump
// datagrams by the largest read that socket has made (max_recvmsg_len in netlink_recvmsg, used by
// netlink_dump; net/netlink/af_netlink.c), shared by every netlink family (genetlink for IPVS;
// rtnetlink here, since this host may lack ip_vs). The child dumps 3,000 addresses of lo in a
// private network namespace before and after.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Errno } from '../../../src/dataplane/netlink/errno.js';
import { netnsUnavailable, unshareChildArgs } from '../../helpers/netns-child.js';

interface Dump {
  parts: number;
  datagrams: number;
  largest: number;
}

describe('NetlinkRequester.enlargeDumps (real kernel, rtnetlink in a private netns)', { skip: netnsUnavailable() ?? false }, () => {
  it('after one refused 32 KB request, a dump comes in datagrams of up to 32 KB instead of a page', () => {
    const r = spawnSync('unshare', unshareChildArgs(import.meta.url, 'large-dumps-child'), { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `child failed (${r.error?.message ?? r.signal ?? 'exit ' + String(r.status)}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { before: Dump; errno: number; after: Dump };
    assert.equal(out.errno, Errno.EOPNOTSUPP);
    // 3,000 addresses plus lo's own 127.0.0.1 when lo is up (it is down in a new namespace).
    assert.ok(out.before.parts >= 3000, JSON.stringify(out));
    assert.equal(out.after.parts, out.before.parts);
    assert.ok(out.before.largest <= 4096, `before: datagrams of at most a page (NLMSG_GOODSIZE): ${JSON.stringify(out.before)}`);
    assert.ok(out.after.largest > 16 * 1024 && out.after.largest <= 32 * 1024, `after: ${JSON.stringify(out.after)}`);
    assert.ok(out.after.datagrams * 4 < out.before.datagrams, `fewer datagrams: ${out.before.datagrams} -> ${out.after.datagrams}`);
  });
});
