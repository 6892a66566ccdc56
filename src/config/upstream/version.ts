// The upstream kube-proxy release whose flags, configuration and feature gates kube-ipvs follows.
export const KUBE_PROXY_VERSION = 'v1.36.3';
