// IpvsBackend over the kernel: a thin adapter so the sync loop, the fake and the contract suite
// all speak one interface. Everything of substance lives in IpvsNetlinkClient.
import type { IpvsBackend, IpvsOp, IpvsOpResult, IpvsTimeouts, ObservedRealServer, ObservedVirtualServer, ObservedVirtualServerSetup } from './backend.js';
import type { IpvsNetlinkClientOptions } from './netlink-client.js';
import { IpvsNetlinkClient } from './netlink-client.js';
import type { RealServerBlock } from './proc.js';
import { ProcFile } from './proc-file.js';
import { PROC_IPVS_PATH, ProcIpvsReader } from './proc.js';

export class RealIpvs implements IpvsBackend {
  readonly client: IpvsNetlinkClient;
  private readonly proc = new ProcIpvsReader();
  private readonly procFile: ProcFile;

  /** Takes an existing client, or options to open one (a NETLINK_GENERIC socket). */
  constructor(
    client: IpvsNetlinkClient | IpvsNetlinkClientOptions = {},
    procPath = PROC_IPVS_PATH,
  ) {
    this.procFile = new ProcFile(procPath);
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
   * Most of a read's cost is the kernel's: for each page it walks its service table from the start
   * to where the last page ended (ip_vs_info_seq_start in ip_vs_ctl.c).
   */
  async listRealServerBlocks(): Promise<ReadonlyMap<string, RealServerBlock>> {
    return this.proc.read(this.procFile.read());
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
