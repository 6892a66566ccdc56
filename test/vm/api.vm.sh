#!/usr/bin/env bash
# The daemon in a real kernel against a real kube-apiserver (inside the VM; the host side is
# test/vm/api-host.ts, run by scripts/test-vm-api.sh, which passes KUBE_IPVS_API_DIR and boots the
# VM with a user-net NIC so 10.0.2.2 is the host's loopback). With curl as a cluster admin:
#   - a ClusterIP Service + EndpointSlice of two pods: `kube-ipvs run --kubeconfig` serves both;
#   - the slice PATCHed down to one pod: new requests reach only that one, within seconds;
#   - a LoadBalancer Service, externalTrafficPolicy Local, healthCheckNodePort 32000, one local
#     endpoint: the health check node port answers 200 localEndpoints 1; without the endpoint
#     503 localEndpoints 0;
#   - /healthz (kube-proxy's JSON), /metrics (sync and network-programming latency, the latter
#     from the slices' last-change-trigger-time annotation), /proxyMode;
#   - the ClusterIP Service deleted: the VIP stops answering, its virtual server and kube-ipvs0
#     address are gone.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest

API=${KUBE_IPVS_API_DIR:-}
[[ -n $API && -r $API/kubeconfig ]] || vm_die "KUBE_IPVS_API_DIR is not set or has no kubeconfig: run scripts/test-vm-api.sh on the host"
SERVER=$(<"$API/server")
TOKEN=$(<"$API/admin-token")
CA=$API/ca.crt
NODE=$(<"$API/node")
WORK=$(mktemp -d)
LOG=$WORK/daemon.log
DAEMON=
finish() {
  [[ -n $DAEMON ]] && kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  vm_cleanup
}
trap finish EXIT

api() { # api METHOD PATH [JSON]: prints the response body; fails (saying why) unless HTTP 2xx
  local method=$1 path=$2 body=${3-} code ctype=application/json
  [[ $method == PATCH ]] && ctype=application/merge-patch+json
  local args=(-sS --connect-timeout 5 --max-time 30 --cacert "$CA" -H "Authorization: Bearer $TOKEN"
    -H 'Accept: application/json' -X "$method" -o "$WORK/api.out" -w '%{http_code}')
  [[ -n $body ]] && args+=(-H "Content-Type: $ctype" --data-binary "$body")
  code=$(curl "${args[@]}" "$SERVER$path") || code=000
  if [[ $code != 2?? ]]; then
    vm_log "api $method $path: HTTP $code $(head -c 400 "$WORK/api.out" 2>/dev/null)"
    return 1
  fi
  cat "$WORK/api.out"
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
endpoints_json() { # endpoints_json IP...: the endpoints array, all ready on this node
  local ip sep='' out='['
  for ip in "$@"; do out+="$sep{\"addresses\":[\"$ip\"],\"conditions\":{\"ready\":true},\"nodeName\":\"$NODE\"}"; sep=,; done
  printf '%s]' "$out"
}
create_slice() { # create_slice SERVICE IP...: EndpointSlice SERVICE-1, port "http" 8080
  local svc=$1; shift
  api POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",
    \"metadata\":{\"name\":\"$svc-1\",\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"$svc\"},
      \"annotations\":{\"endpoints.kubernetes.io/last-change-trigger-time\":\"$(now)\"}},
    \"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],\"endpoints\":$(endpoints_json "$@")}" >/dev/null
}
patch_slice() { # patch_slice SERVICE IP...: the slice's endpoints become exactly these
  local svc=$1; shift
  api PATCH "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/$svc-1" \
    "{\"metadata\":{\"annotations\":{\"endpoints.kubernetes.io/last-change-trigger-time\":\"$(now)\"}},\"endpoints\":$(endpoints_json "$@")}" >/dev/null
}
wait_for() { # wait_for SECONDS WHAT CMD...: until CMD succeeds; says how long it took
  local t0=$SECONDS limit=$1 what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - t0 >= limit)); then bad "$what (not within $limit s)"; return 1; fi
    [[ -n $DAEMON ]] && ! kill -0 "$DAEMON" 2>/dev/null && { bad "$what: the daemon exited"; tail -20 "$LOG" >&2; return 1; }
    sleep 0.5
  done
  ok "$what ($((SECONDS - t0)) s)"
}
answers() { local body; body=$(vm_http_get - "http://$1/" --connect-timeout 2 --max-time 4) && [[ $body == *"$2"* ]]; }
rs_weight() { # rs_weight VIP:PORT RS:PORT: the real server's weight, empty when absent
  local out; out=$(ipvsadm -Ln -t "$1") || return 0
  awk -v rs="$2" '$2 == rs {print $4}' <<<"$out"
}
drained() { local w; w=$(rs_weight "$1" "$2"); [[ -z $w || $w == 0 ]]; }
hc() { # hc CODE N: the health check node port answers HTTP CODE with localEndpoints N
  local code body
  code=$(curl -sS --max-time 4 -o "$WORK/hc.body" -w '%{http_code}' http://127.0.0.1:32000/) || return 1
  body=$(<"$WORK/hc.body")
  [[ $code == "$1" && $body =~ \"localEndpoints\":\ ?$2[,}] ]]
}
gone() { # gone VIP: no virtual server, no kube-ipvs0 address, no answer
  local vs addrs
  vs=$(ipvsadm -Sn); addrs=$(ip -o addr show dev kube-ipvs0 2>/dev/null || true)
  [[ $vs != *"$1:"* && $addrs != *" $1/"* ]]
}

vm_log "== API server $SERVER, node $NODE"
ver=$(api GET /version) || vm_die "the API server is unreachable from the guest"
ok "the guest reaches the API server: $(tr -d ' \n' <<<"$ver" | grep -o '"gitVersion":"[^"]*"')"

vm_log "== a ClusterIP Service with two pods, then the daemon"
api POST /api/v1/namespaces/default/services '{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},
  "spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":80,"targetPort":8080,"protocol":"TCP"}]}}' >/dev/null ||
  vm_die "cannot create Service web"
create_slice web 10.244.1.2 10.244.1.3 || vm_die "cannot create EndpointSlice web-1"
node "$ROOT/dist/kube-ipvs.mjs" run --kubeconfig "$API/kubeconfig" --hostname-override "$NODE" \
  --healthz-bind-address 0.0.0.0:10256 --metrics-bind-address 127.0.0.1:10249 --log-format json >"$LOG" 2>&1 &
DAEMON=$!
# the pods start while the daemon does (both take a while under TCG)
vm_pod pod-a 10.244.1.2
vm_pod pod-b 10.244.1.3
vm_http_server pod-a 8080
vm_http_server pod-b 8080
wait_for 240 "the daemon serves the ClusterIP from the API" answers 10.96.0.10 pod- || { tail -20 "$LOG" >&2; vm_die "no service"; }
started=$(grep -m1 '"msg":"kube-ipvs starting"' "$LOG" || true)
[[ $started == *'"source":"api"'* && $started == *"\"server\":\"$SERVER\""* ]] && ok "the daemon reads the API ($SERVER) as kube-ipvs-node" ||
  bad "unexpected start line: $started"
seen=""
for _ in 1 2 3 4; do seen+="$(vm_http_get - http://10.96.0.10/ || true) "; done
[[ $seen == *pod-a* && $seen == *pod-b* ]] && ok "both pods answer" || bad "not balanced: $seen"

vm_log "== the slice loses pod-b"
patch_slice web 10.244.1.2 || bad "cannot patch EndpointSlice web-1"
wait_for 30 "pod-b gets no new connections (weight 0 or removed)" drained 10.96.0.10:80 10.244.1.3:8080
seen=""
for _ in 1 2 3 4; do seen+="$(vm_http_get - http://10.96.0.10/ || true) "; done
[[ $seen == *pod-a* && $seen != *pod-b* ]] && ok "new requests reach pod-a only" || bad "after the patch: $seen"

vm_log "== a LoadBalancer Service, externalTrafficPolicy Local, health check node port 32000"
api POST /api/v1/namespaces/default/services '{"apiVersion":"v1","kind":"Service","metadata":{"name":"lb","namespace":"default"},
  "spec":{"type":"LoadBalancer","clusterIP":"10.96.0.20","externalTrafficPolicy":"Local","healthCheckNodePort":32000,
    "ports":[{"name":"http","port":80,"targetPort":8080,"nodePort":30080,"protocol":"TCP"}]}}' >/dev/null || bad "cannot create Service lb"
api PATCH /api/v1/namespaces/default/services/lb/status '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.20"}]}}}' >/dev/null ||
  bad "cannot set the load balancer status"
create_slice lb 10.244.1.2 || bad "cannot create EndpointSlice lb-1"
wait_for 30 "the health check node port answers 200, localEndpoints 1" hc 200 1 || vm_log "last answer: $(cat "$WORK/hc.body" 2>/dev/null)"
vs=$(ipvsadm -Sn)
[[ $vs == *'-A -t 203.0.113.20:80 '* && $vs == *'-A -t 10.0.2.15:30080 '* ]] && ok "virtual servers for the LB ingress IP and the node port" ||
  bad "LB virtual servers missing: $vs"
answers 203.0.113.20 pod-a && ok "the LB ingress IP reaches the local pod" || bad "the LB ingress IP does not answer"
patch_slice lb || bad "cannot empty EndpointSlice lb-1"
wait_for 30 "without the local endpoint: 503, localEndpoints 0" hc 503 0 || vm_log "last answer: $(cat "$WORK/hc.body" 2>/dev/null)"

vm_log "== /healthz, /metrics, /proxyMode"
code=$(curl -sS --max-time 5 -o "$WORK/healthz" -w '%{http_code}' http://127.0.0.1:10256/healthz) || code=000
body=$(<"$WORK/healthz")
[[ $code == 200 && $body == *'"lastUpdated":"'* && $body == *'"currentTime":"'* && $body == *'"nodeEligible":true'* && $body == *'"healthy":true'* ]] &&
  ok "/healthz: 200 $body" || bad "/healthz: HTTP $code $body"
code=$(curl -sS --max-time 15 -o "$WORK/metrics" -w '%{http_code}' http://127.0.0.1:10249/metrics) || code=000
metrics=$(<"$WORK/metrics")
[[ $code == 200 ]] || bad "/metrics: HTTP $code $(head -c 300 <<<"$metrics")"
count() { awk -v m="$1" '$1 == m || $1 == m "{ip_family=\"IPv4\"}" {print $2}' <<<"$metrics"; } # IPv4's count
n=$(count kubeproxy_sync_proxy_rules_duration_seconds_count)
[[ ${n:-0} != 0 ]] && ok "/metrics: kubeproxy_sync_proxy_rules_duration_seconds, $n syncs" ||
  bad "/metrics: no kubeproxy_sync_proxy_rules_duration_seconds observations: $(grep kubeproxy_sync_proxy_rules_duration_seconds <<<"$metrics" | tail -4)"
n=$(count kubeproxy_network_programming_duration_seconds_count)
[[ ${n:-0} != 0 ]] && ok "/metrics: kubeproxy_network_programming_duration_seconds, $n observations (from last-change-trigger-time)" ||
  bad "/metrics: no kubeproxy_network_programming_duration_seconds observations: $(grep kubeproxy_network_programming_duration_seconds <<<"$metrics" | tail -4)"
mode=$(curl -sS --max-time 5 http://127.0.0.1:10249/proxyMode) || mode=
[[ $mode == ipvs ]] && ok "/proxyMode: ipvs" || bad "/proxyMode: '$mode'"

vm_log "== the ClusterIP Service is deleted"
api DELETE /api/v1/namespaces/default/services/web >/dev/null || bad "cannot delete Service web"
wait_for 30 "its virtual server and kube-ipvs0 address are gone" gone 10.96.0.10
answers 10.96.0.10 pod- && bad "the deleted VIP still answers" || ok "the VIP no longer answers"

errors=$(grep -c '"level":"error"' "$LOG" || true)
((errors == 0)) && ok "no errors in the daemon log" || bad "$errors error line(s) in the daemon log: $(grep '"level":"error"' "$LOG" | head -5)"
kill -TERM "$DAEMON"
wait "$DAEMON" && ok "the daemon exited 0 on SIGTERM" || bad "the daemon exited $? on SIGTERM"
DAEMON=
vm_log "daemon logged $(grep -c '"msg":"synced"' "$LOG") syncs"
((fails == 0)) || { tail -30 "$LOG" >&2; vm_die "$fails check(s) failed"; }
vm_log "api.vm.sh: all checks passed"
