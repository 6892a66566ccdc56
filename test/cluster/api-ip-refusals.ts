// Values for spec.externalIPs and status.loadBalancer.ingress[].ip, with whether kube-apiserver
// v1.36.3 refuses them: from pkg/apis/core/validation/validation.go (externalIPs:
// IsValidIPForLegacyField, then ValidateEndpointIP: unspecified, loopback, link-local unicast and
// link-local multicast refused; ingress IPs: IsValidIPForLegacyField only) and apimachinery's
// pkg/util/validation/ip.go (StrictIPCIDRValidation, on by default in 1.36: no leading 0s, no
// IPv4-mapped IPv6). test/api/refusals.test.ts checks every row against a real API server.
export interface IpRow {
  readonly ip: string;
  readonly externalIP: 'refused' | 'accepted';
  readonly ingressIP: 'refused' | 'accepted';
}

export const IP_ROWS: readonly IpRow[] = [
  { ip: '203.0.113.7', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: '2001:db8::7', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: '2001:DB8:0:0::7', externalIP: 'accepted', ingressIP: 'accepted' }, // legacy fields take non-canonical IPv6
  { ip: '0.0.0.0', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '::', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '127.0.0.1', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '127.9.9.9', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '::1', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '169.254.10.1', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: 'fe80::1', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: '224.0.0.5', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: 'ff02::5', externalIP: 'refused', ingressIP: 'accepted' },
  { ip: 'ff12::5', externalIP: 'refused', ingressIP: 'accepted' }, // Go: any flags nibble, scope 2
  // Multicast beyond link-local scope is not refused by the API server.
  { ip: '239.1.2.3', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: '224.0.1.1', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: 'ff05::2', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: '255.255.255.255', externalIP: 'accepted', ingressIP: 'accepted' },
  { ip: '010.1.2.3', externalIP: 'refused', ingressIP: 'refused' },
  { ip: '::ffff:1.2.3.4', externalIP: 'refused', ingressIP: 'refused' },
  { ip: ' 1.2.3.4', externalIP: 'refused', ingressIP: 'refused' },
  { ip: '1.2.3', externalIP: 'refused', ingressIP: 'refused' },
  { ip: '10.0.0.0/8', externalIP: 'refused', ingressIP: 'refused' },
  { ip: 'fe80::1%eth0', externalIP: 'refused', ingressIP: 'refused' },
];
