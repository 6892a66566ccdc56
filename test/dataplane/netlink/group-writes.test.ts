// exchangeWrites against the real kernel: its one ACK per datagram relies on netlink_rcv_skb
// (net/netlink/af_netlink.c), which every netlink family we write through shares (genetlink for
// IPVS, rtnetlink here, since this host may lack ip_vs): a failed request gets an ERROR though it
// did not ask, a success that did not ask gets nothing, and the messages run in order. The child
// adds addresses to lo in a private network namespace.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Errno } from '../../../src/dataplane/netlink/errno.js';
import { netnsUnavailable, unshareChildArgs } from '../../helpers/netns-child.js';

const ENODEV = 19;

describe('NetlinkRequester.exchangeWrites (real kernel, rtnetlink in a private netns)', { skip: netnsUnavailable() ?? false }, () => {
  it('one datagram, only the last asking for an ACK: each failure is its own, the rest were done', () => {
    const r = spawnSync('unshare', unshareChildArgs(import.meta.url, 'group-writes-child'), { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `child failed (${r.error?.message ?? r.signal ?? 'exit ' + String(r.status)}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { errnos: number[]; addresses: string[] };
    // 10.1.0.1 added, added again (EEXIST), 10.1.0.2 on a link that does not exist (ENODEV), 10.1.0.3 added.
    assert.deepEqual(out.errnos, [0, Errno.EEXIST, ENODEV, 0]);
    assert.deepEqual([...out.addresses].sort(), ['10.1.0.1/32', '10.1.0.3/32']);
  });
});
