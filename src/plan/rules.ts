// kube-proxy IPVS mode's iptables rules (writeIptablesRules), written directly in the canonical form
// iptables-save prints, so desired and observed rules compare as text. The rule count is constant:
// only which ipsets are non-empty and the source-range LBs without node access change it.
import type { ProxyConfig } from '../config/types.js';
import { quoteSaveString } from '../model/text/iptables.js';
import type { IptablesRule, IptablesTable } from '../model/kernel.js';
import { Chain, ipsetName, JUMP_RULES, OWNED_CHAINS, RuleComment, SetBase, setInfo } from '../model/names.js';
import type { JumpRule, SetBaseName } from '../model/names.js';
import type { IpFamily, Protocol } from '../model/types.js';

export interface RuleOptions {
  readonly family: IpFamily;
  readonly config: Pick<ProxyConfig, 'masqueradeAll' | 'masqueradeBit' | 'detectLocal'>;
  /** Whether the iptables binary supports MASQUERADE --random-fully (1.6.2+). */
  readonly randomFully: boolean;
  /** Sets with at least one entry; rules fed by an empty set are left out, as kube-proxy does. */
  readonly nonEmpty: (set: SetBaseName) => boolean;
  /** Canonical KUBE-IPVS-OUT-FILTER rule specs, already sorted. */
  readonly outFilterRules: readonly string[];
}

const PROTO_NUMBER: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Comments exactly as iptables-save prints them (quoted, with ' and " escaped). */
function quote(comment: string): string {
  return quoteSaveString(comment);
}

/** iptables-save's host form of an address: "1.2.3.4/32", "fd00::1/128". */
function hostCidr(ip: string, family: IpFamily): string {
  return `${ip}/${family === 'IPv4' ? 32 : 128}`;
}

/**
 * The KUBE-IPVS-OUT-FILTER rule that drops node-originated connections to a source-range-restricted
 * LB VIP (their source is the VIP itself, picked from kube-ipvs0).
 */
export function outFilterRule(vip: string, protocol: Protocol, port: number, family: IpFamily): string {
  // iptables-save prints the protocol as a number before --vaddr, and the address without a prefix.
  return `-s ${hostCidr(vip, family)} -m ipvs --vproto ${PROTO_NUMBER[protocol]} --vaddr ${vip} --vport ${port} -j DROP`;
}

/** The detector's "not from a pod" match for --cluster-cidr style local-traffic detection. */
export function notLocalMatch(config: RuleOptions['config'], family: IpFamily): string | undefined {
  const d = config.detectLocal;
  const ofFamily = (cidrs: readonly string[]): string | undefined => cidrs.find((c) => c.includes(':') === (family === 'IPv6'));
  switch (d.mode) {
    case 'ClusterCIDR': {
      const c = ofFamily(d.clusterCIDRs);
      return c ? `! -s ${c}` : undefined;
    }
    case 'NodeCIDR': {
      const c = ofFamily(d.nodeCIDRs);
      return c ? `! -s ${c}` : undefined;
    }
    case 'BridgeInterface':
      return d.bridgeInterface ? `! -i ${d.bridgeInterface}` : undefined;
    case 'InterfaceNamePrefix':
      return d.interfaceNamePrefix ? `! -i ${d.interfaceNamePrefix}+` : undefined;
  }
}

export function masqueradeMark(bit: number): string {
  return `0x${(1 << bit >>> 0).toString(16)}`;
}

export function buildRules(o: RuleOptions): IptablesTable[] {
  const f = o.family;
  const set = (base: SetBaseName): string => ipsetName(base, f);
  const comment = (base: SetBaseName): string => `-m comment --comment ${quote(setInfo(base).comment)}`;
  const match = (base: SetBaseName, dirs: string): string => `-m set --match-set ${set(base)} ${dirs}`;
  const mark = masqueradeMark(o.config.masqueradeBit);
  const nat: IptablesRule[] = [];
  const filter: IptablesRule[] = [];
  const n = (chain: string, spec: string): void => void nat.push({ chain, spec });
  const fl = (chain: string, spec: string): void => void filter.push({ chain, spec });

  // nat KUBE-SERVICES
  n(Chain.SERVICES, `-s ${f === 'IPv4' ? '127.0.0.0/8' : '::1/128'} -j RETURN`);
  if (o.nonEmpty(SetBase.LOAD_BALANCER)) n(Chain.SERVICES, `${comment(SetBase.LOAD_BALANCER)} ${match(SetBase.LOAD_BALANCER, 'dst,dst')} -j ${Chain.LOAD_BALANCER}`);
  if (o.nonEmpty(SetBase.CLUSTER_IP)) {
    const base = `${comment(SetBase.CLUSTER_IP)} ${match(SetBase.CLUSTER_IP, '')}`.trimEnd();
    const notLocal = notLocalMatch(o.config, f);
    if (o.config.masqueradeAll) n(Chain.SERVICES, `${base} dst,dst -j ${Chain.MARK_MASQ}`);
    else if (notLocal) n(Chain.SERVICES, `${notLocal} ${base} dst,dst -j ${Chain.MARK_MASQ}`);
    // Host-originated connections whose source was picked from a VIP on kube-ipvs0.
    else n(Chain.SERVICES, `${base} src,dst -j ${Chain.MARK_MASQ}`);
  }
  const externalAccepts = (base: SetBaseName): void => {
    const m = `${comment(base)} ${match(base, 'dst,dst')}`;
    n(Chain.SERVICES, `${m} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`);
    n(Chain.SERVICES, `${m} -m addrtype --dst-type LOCAL -j ACCEPT`);
  };
  if (o.nonEmpty(SetBase.EXTERNAL_IP)) {
    n(Chain.SERVICES, `${comment(SetBase.EXTERNAL_IP)} ${match(SetBase.EXTERNAL_IP, 'dst,dst')} -j ${Chain.MARK_MASQ}`);
    externalAccepts(SetBase.EXTERNAL_IP);
  }
  if (o.nonEmpty(SetBase.EXTERNAL_IP_LOCAL)) externalAccepts(SetBase.EXTERNAL_IP_LOCAL);
  n(Chain.SERVICES, `-m addrtype --dst-type LOCAL -j ${Chain.NODE_PORT}`);
  if (o.nonEmpty(SetBase.CLUSTER_IP)) n(Chain.SERVICES, `${match(SetBase.CLUSTER_IP, 'dst,dst')} -j ACCEPT`);
  if (o.nonEmpty(SetBase.LOAD_BALANCER)) n(Chain.SERVICES, `${match(SetBase.LOAD_BALANCER, 'dst,dst')} -j ACCEPT`);

  // nat KUBE-LOAD-BALANCER
  if (o.nonEmpty(SetBase.LOAD_BALANCER_LOCAL)) n(Chain.LOAD_BALANCER, `${comment(SetBase.LOAD_BALANCER_LOCAL)} ${match(SetBase.LOAD_BALANCER_LOCAL, 'dst,dst')} -j RETURN`);
  n(Chain.LOAD_BALANCER, `-j ${Chain.MARK_MASQ}`);

  // nat KUBE-NODE-PORT: a Local set's RETURN always precedes its protocol's masquerade rule.
  const nodePortRules: ReadonlyArray<readonly [string, SetBaseName, string, string]> = [
    ['tcp', SetBase.NODE_PORT_LOCAL_TCP, 'dst', 'RETURN'],
    ['tcp', SetBase.NODE_PORT_TCP, 'dst', Chain.MARK_MASQ],
    ['udp', SetBase.NODE_PORT_LOCAL_UDP, 'dst', 'RETURN'],
    ['udp', SetBase.NODE_PORT_UDP, 'dst', Chain.MARK_MASQ],
    ['sctp', SetBase.NODE_PORT_LOCAL_SCTP, 'dst,dst', 'RETURN'],
    ['sctp', SetBase.NODE_PORT_SCTP, 'dst,dst', Chain.MARK_MASQ],
  ];
  for (const [proto, base, dirs, target] of nodePortRules) {
    if (o.nonEmpty(base)) n(Chain.NODE_PORT, `-p ${proto} ${comment(base)} ${match(base, dirs)} -j ${target}`);
  }

  // nat KUBE-POSTROUTING
  if (o.nonEmpty(SetBase.LOOP_BACK)) n(Chain.POSTROUTING, `${comment(SetBase.LOOP_BACK)} ${match(SetBase.LOOP_BACK, 'dst,dst,src')} -j MASQUERADE`);
  n(Chain.POSTROUTING, `-m mark ! --mark ${mark}/${mark} -j RETURN`);
  // Clear the bit so a packet that re-enters the stack is not masqueraded twice.
  n(Chain.POSTROUTING, `-j MARK --set-xmark ${mark}/0x0`);
  n(Chain.POSTROUTING, `-m comment --comment ${quote(RuleComment.MASQUERADE)} -j MASQUERADE${o.randomFully ? ' --random-fully' : ''}`);

  // nat KUBE-MARK-MASQ
  n(Chain.MARK_MASQ, `-j MARK --set-xmark ${mark}/${mark}`);

  // filter KUBE-FORWARD
  fl(Chain.FORWARD, `-m comment --comment ${quote(RuleComment.FORWARD)} -m mark --mark ${mark}/${mark} -j ACCEPT`);
  fl(Chain.FORWARD, `-m comment --comment ${quote(RuleComment.FORWARD_CONNTRACK)} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);

  // filter KUBE-NODE-PORT: written even when the set is empty.
  fl(Chain.NODE_PORT, `${comment(SetBase.HEALTH_CHECK_NODE_PORT)} ${match(SetBase.HEALTH_CHECK_NODE_PORT, 'dst')} -j ACCEPT`);

  // filter KUBE-PROXY-FIREWALL and KUBE-SOURCE-RANGES-FIREWALL
  if (o.nonEmpty(SetBase.LOAD_BALANCER_FW)) fl(Chain.PROXY_FIREWALL, `${comment(SetBase.LOAD_BALANCER_FW)} ${match(SetBase.LOAD_BALANCER_FW, 'dst,dst')} -j ${Chain.SOURCE_RANGES_FIREWALL}`);
  if (o.nonEmpty(SetBase.LOAD_BALANCER_SOURCE_CIDR)) fl(Chain.SOURCE_RANGES_FIREWALL, `${comment(SetBase.LOAD_BALANCER_SOURCE_CIDR)} ${match(SetBase.LOAD_BALANCER_SOURCE_CIDR, 'dst,dst,src')} -j RETURN`);
  if (o.nonEmpty(SetBase.LOAD_BALANCER_SOURCE_IP)) fl(Chain.SOURCE_RANGES_FIREWALL, `${comment(SetBase.LOAD_BALANCER_SOURCE_IP)} ${match(SetBase.LOAD_BALANCER_SOURCE_IP, 'dst,dst,src')} -j RETURN`);
  fl(Chain.SOURCE_RANGES_FIREWALL, '-j DROP');

  // filter KUBE-IPVS-FILTER: no host port is reachable through a VIP (k/k #72236).
  for (const base of [SetBase.LOAD_BALANCER, SetBase.CLUSTER_IP, SetBase.EXTERNAL_IP, SetBase.EXTERNAL_IP_LOCAL] as const) {
    fl(Chain.IPVS_FILTER, `${match(base, 'dst,dst')} -j RETURN`);
  }
  fl(Chain.IPVS_FILTER, `${match(SetBase.HEALTH_CHECK_NODE_PORT, 'dst')} -j RETURN`);
  const reject = f === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
  fl(Chain.IPVS_FILTER, `-m conntrack --ctstate NEW ${match(SetBase.IPVS_IPS, 'dst')} -j REJECT --reject-with ${reject}`);

  // filter KUBE-IPVS-OUT-FILTER
  for (const spec of o.outFilterRules) fl(Chain.IPVS_OUT_FILTER, spec);

  return [
    { table: 'nat', chains: OWNED_CHAINS.nat, rules: nat },
    { table: 'filter', chains: OWNED_CHAINS.filter, rules: filter },
  ];
}

/** Canonical spec of a jump rule from a built-in chain. */
export function jumpRuleSpec(j: JumpRule): string {
  return `-m comment --comment ${quote(j.comment)} -j ${j.to}`;
}

/**
 * The jumps as a built-in chain reads after a fresh install: kube-proxy inserts each at position 1
 * in list order, so later entries of the same chain come first.
 */
export function jumpRulesInChainOrder(): JumpRule[] {
  const byChain = new Map<string, JumpRule[]>();
  for (const j of JUMP_RULES) {
    const k = `${j.table}/${j.from}`;
    byChain.set(k, [j, ...(byChain.get(k) ?? [])]);
  }
  return [...byChain.values()].flat();
}
