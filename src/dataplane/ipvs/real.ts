// IpvsBackend over the kernel: a thin adapter so the sync loop, the fake and the contract suite
// all speak one interface. Everything of substance lives in IpvsNetlinkClient.
import { readFileSync } from 'node:fs';
import type { IpvsBackend, IpvsOp, IpvsOpResult, IpvsTimeouts, ObservedRealServer, ObservedVirtualServer, ObservedVirtualServerSetup } from './backend.js';
import type { IpvsNetlinkClientOptions } from './netlink-client.js';
import { IpvsNetlinkClient } from './netlink-client.js';
import type { RealServerBlock } from './proc.js';
import { PROC_IPVS_PATH, ProcIpvsReader } from './proc.js';

export class RealIpvs implements IpvsBackend {
  readonly client: IpvsNetlinkClient;
  private readonly proc = new ProcIpvsReader();

  /** Takes an existing client, or options to open one (a NETLINK_GENERIC socket). */
  constructor(
    client: IpvsNetlinkClient | IpvsNetlinkClientOptions = {},
    private readonly procPath = PROC_IPVS_PATH,
  ) {
    this.client = client instanceof IpvsNetlinkClient ? client : new IpvsNetlinkClient(client);
  }

  listServices(): Promise<ObservedVirtualServer[]> {
    return this.client.listServices();
  }

  listServiceSetups(): Promise<ObservedVirtualServerSetup[]> {
    return this.client.listServiceSetups();
  }

  listRealServers(vs: ObservedVirtualServer | IpvsOp['vs']): Promise<ObservedRealServer[]> {
    return this.client.listDestinations(vs);
  }

  /**
   * Read synchronously: the kernel hands a seq_file out a page at a time, and an asynchronous read
   * makes each page a thread-pool round trip (1,400 of them at 5,000 Services); the read itself
   * is the kernel's formatting, which a thread-pool read costs as well.
   */
  async listRealServerBlocks(): Promise<Map<string, RealServerBlock>> {
    return this.proc.read(readFileSync(this.procPath, 'utf8'));
  }

  apply(ops: readonly IpvsOp[]): Promise<IpvsOpResult[]> {
    return this.client.applyBatch(ops);
  }

  setTimeouts(t: IpvsTimeouts): Promise<void> {
    return this.client.setTimeouts(t);
  }

  getTimeouts(): Promise<IpvsTimeouts> {
    return this.client.getTimeouts();
  }

  flush(): Promise<void> {
    return this.client.flush();
  }

  close(): void {
    this.client.close();
  }
}
