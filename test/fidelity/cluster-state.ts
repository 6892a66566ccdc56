// The objects a scenario puts into the API server (Node, Services with their load-balancer
// status, EndpointSlices), replaced between runs while no proxy runs, and changed step by step.
// Shared by the fidelity harness and the side-by-side benchmark.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { apiRequest } from '../helpers/apiserver.js';
import type { TestApiServer } from '../helpers/apiserver.js';
import { must } from '../api/support.js';
import type { NodeSpec, ObjectSet, Step } from './scenario.js';
import { NODE, objectKey } from './scenario.js';

/** The API objects of the current scenario, put in place between runs (no proxy runs then). */
export class ClusterState {
  private services = new Set<string>();
  private slices = new Set<string>();
  private namespaces = new Set<string>(['default']);

  constructor(private readonly server: TestApiServer) {}

  async reset(objects: ObjectSet, node: NodeSpec): Promise<void> {
    for (const k of this.slices) await this.deleteSlice(k);
    for (const k of this.services) await this.deleteService(k);
    await this.putNode(node);
    await this.upsert(objects);
  }

  async apply(step: Step): Promise<void> {
    for (const k of step.deleteSlices ?? []) await this.deleteSlice(k);
    for (const k of step.deleteServices ?? []) await this.deleteService(k);
    if (step.node) await this.putNode(step.node);
    await this.upsert({ services: step.upsert?.services ?? [], slices: step.upsert?.slices ?? [] });
  }

  private async upsert(objects: ObjectSet): Promise<void> {
    for (const s of objects.services) await this.putService(s);
    for (const s of objects.slices) await this.putSlice(s);
  }

  private async namespace(ns: string): Promise<void> {
    if (this.namespaces.has(ns)) return;
    const r = await apiRequest(this.server, 'POST', '/api/v1/namespaces', { metadata: { name: ns } });
    if (r.status !== 201 && r.status !== 409) throw new Error(`create namespace ${ns}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    this.namespaces.add(ns);
  }

  private async putService(s: V1Service): Promise<void> {
    const ns = s.metadata?.namespace ?? 'default';
    const name = s.metadata?.name ?? '';
    await this.namespace(ns);
    const key = objectKey(s);
    const { status, ...spec } = s;
    if (this.services.has(key)) {
      // A changed Service is updated in place, as a user's `kubectl apply` does.
      const current = await must(apiRequest<V1Service>(this.server, 'GET', `/api/v1/namespaces/${ns}/services/${name}`), `get service ${key}`);
      const body = { ...spec, metadata: { ...spec.metadata, resourceVersion: current.metadata?.resourceVersion } };
      await must(apiRequest(this.server, 'PUT', `/api/v1/namespaces/${ns}/services/${name}`, body), `update service ${key}`);
    } else {
      await must(apiRequest(this.server, 'POST', `/api/v1/namespaces/${ns}/services`, spec), `create service ${key}`);
      this.services.add(key);
    }
    if (status) await must(apiRequest(this.server, 'PATCH', `/api/v1/namespaces/${ns}/services/${name}/status`, { status }), `status of service ${key}`);
  }

  private async putSlice(s: V1EndpointSlice): Promise<void> {
    const ns = s.metadata?.namespace ?? 'default';
    await this.namespace(ns);
    const key = objectKey(s);
    const name = s.metadata?.name ?? '';
    if (this.slices.has(key)) {
      const current = await must(apiRequest<V1EndpointSlice>(this.server, 'GET', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`), `get slice ${key}`);
      const body = { ...s, metadata: { ...s.metadata, resourceVersion: current.metadata?.resourceVersion } };
      await must(apiRequest(this.server, 'PUT', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`, body), `update slice ${key}`);
    } else {
      await must(apiRequest(this.server, 'POST', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, s), `create slice ${key}`);
      this.slices.add(key);
    }
  }

  private async deleteService(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    const r = await apiRequest(this.server, 'DELETE', `/api/v1/namespaces/${ns}/services/${name}`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`delete service ${key}: HTTP ${r.status}`);
    this.services.delete(key);
  }

  private async deleteSlice(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    const r = await apiRequest(this.server, 'DELETE', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/${name}`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`delete slice ${key}: HTTP ${r.status}`);
    this.slices.delete(key);
  }

  /** Deleted and created anew: podCIDRs cannot change on a live Node. */
  private async putNode(node: NodeSpec): Promise<void> {
    const r = await apiRequest(this.server, 'DELETE', `/api/v1/nodes/${NODE}`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`delete node: HTTP ${r.status}`);
    await must(apiRequest(this.server, 'POST', '/api/v1/nodes', {
      metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE, ...(node.labels ?? {}) } },
      spec: node.podCIDRs ? { podCIDR: node.podCIDRs[0], podCIDRs: node.podCIDRs } : {},
    }), 'create node');
    await must(apiRequest(this.server, 'PATCH', `/api/v1/nodes/${NODE}/status`, { status: { addresses: node.addresses } }), 'node status');
  }
}

