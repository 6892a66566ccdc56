// Conntrack flows in memory, deleted with the same filter rules as `conntrack -D`.
import type { IpFamily } from '../../model/types.js';
import { DataplaneError } from '../errors.js';
import { canonicalIp, ipFamilyOf } from '../../model/ip.js';
import type { ConntrackBackend, ConntrackFilter } from './backend.js';
import { checkFilter } from './real.js';

export interface FakeFlow {
  readonly protocol: 'udp' | 'sctp' | 'tcp';
  readonly origSrc: string;
  readonly origDst: string;
  readonly origDstPort: number;
  /** Where the reply comes from: the endpoint after DNAT. */
  readonly replySrc: string;
}

interface StoredFlow extends FakeFlow {
  readonly family: IpFamily;
}

export class FakeConntrack implements ConntrackBackend {
  private table: StoredFlow[] = [];
  /** Every filter deleteFlows was called with, so tests can check which cleanups ran. */
  readonly deletions: ConntrackFilter[] = [];

  addFlow(flow: FakeFlow): void {
    const origSrc = canonicalIp(flow.origSrc);
    const origDst = canonicalIp(flow.origDst);
    const replySrc = canonicalIp(flow.replySrc);
    const family = origDst ? ipFamilyOf(origDst) : undefined;
    if (!origSrc || !origDst || !replySrc || !family || ipFamilyOf(origSrc) !== family || ipFamilyOf(replySrc) !== family) {
      throw new DataplaneError('INVALID', 'conntrack', 'add', `${flow.origSrc} -> ${flow.origDst}`, 'addresses of one family expected');
    }
    this.table.push({ ...flow, family, origSrc, origDst, replySrc });
  }

  flows(): FakeFlow[] {
    return this.table.map(({ protocol, origSrc, origDst, origDstPort, replySrc }) => ({
      protocol,
      origSrc,
      origDst,
      origDstPort,
      replySrc,
    }));
  }

  async deleteFlows(filter: ConntrackFilter): Promise<number> {
    const f = checkFilter(filter);
    this.deletions.push(f);
    const keep = this.table.filter(
      (x) =>
        !(
          x.family === f.family &&
          x.protocol === f.protocol &&
          x.replySrc === f.replySrc &&
          (f.origDst === undefined || x.origDst === f.origDst) &&
          (f.origDstPort === undefined || x.origDstPort === f.origDstPort)
        ),
    );
    const n = this.table.length - keep.length;
    this.table = keep;
    return n;
  }
}
