#!/usr/bin/env bash
# The operator tools on a real kernel (inside the VM), against a running daemon: `kube-ipvs
# status` shows the Services with their pods and the kernel's counts after real traffic;
# `kube-ipvs diff` says nothing differs, then after tampering (a real server, a set entry, a
# kube-ipvs0 address, a jump rule) lists each under its owner and exits 1, with the daemon and
# without it (--manifests); a full sync (SIGHUP) repairs it, counts the drift and diff exits 0;
# `kube-ipvs trace --live` walks the kernel's state and names the Service and pods.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
vm_require_guest
vm_trap_cleanup

DIR=$(mktemp -d)
LOG=$(mktemp)
OUT=$(mktemp)
NODE=$(hostname)
# The bundled CLI: one file to read over 9p instead of the module tree.
KB=(node "$ROOT/dist/kube-ipvs.mjs")

cat >"$DIR/cluster.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 10.96.0.10
  ports: [{ name: http, port: 80, protocol: TCP }]
---
apiVersion: v1
kind: Service
metadata: { name: shop, namespace: store }
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports: [{ name: http, port: 80, nodePort: 30080, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [10.244.1.2], nodeName: $NODE, targetRef: { kind: Pod, namespace: default, name: web-a } }
  - { addresses: [10.244.1.3], nodeName: $NODE, targetRef: { kind: Pod, namespace: default, name: web-b } }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: shop-1, namespace: store, labels: { kubernetes.io/service-name: shop } }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - { addresses: [10.244.1.2], nodeName: $NODE, targetRef: { kind: Pod, namespace: store, name: shop-a } }
YAML

answers() { local body; body=$(vm_http_get - "http://$1/") && [[ $body == *"$2"* ]]; }
diff_is() { # diff_is CODE ARGS...: kube-ipvs diff exits CODE (its output in $OUT)
  local want=$1 code=0
  shift
  "${KB[@]}" diff "$@" >"$OUT" 2>&1 || code=$?
  ((code == want))
}

vm_pod pod-a 10.244.1.2
vm_pod pod-b 10.244.1.3
vm_http_server pod-a 8080
vm_http_server pod-b 8080

# A long sync period: tampering stays until SIGHUP asks for the full sync (TCG is slow).
"${KB[@]}" run --manifests "$DIR" --ipvs-min-sync-period 0s --ipvs-sync-period 3600s --healthz-bind-address= \
  --metrics-bind-address 127.0.0.1:10249 --log-format json >>"$LOG" 2>&1 &
DAEMON=$!
vm_track "$DAEMON"
wait_until 60 "the daemon serves the ClusterIP" answers 10.96.0.10 pod-
served=0
for _ in 1 2 3 4 5 6; do
  if vm_http_get - http://10.96.0.10/ >/dev/null; then served=$((served + 1)); else vm_log "a request failed: $(ipvsadm -Ln -t 10.96.0.10:80 | tail -n +4 | tr -s ' ')"; fi
done
((served >= 5)) && ok "$served of 6 requests served" || bad "only $served of 6 requests served: $(tail -5 "$LOG")"

vm_log "== kube-ipvs status"
"${KB[@]}" status >"$OUT" 2>&1 && ok "status exits 0" || bad "status failed: $(cat "$OUT")"
grep -Eq '^default/web:http/TCP  ClusterIP  rr  10\.96\.0\.10:80$' "$OUT" && ok "web's virtual server" || bad "no web line: $(cat "$OUT")"
grep -Eq "^  10\.244\.1\.2:8080 +web-a +$NODE\\* +ready +1 " "$OUT" && ok "pod web-a on this node, ready, weight 1" || bad "no web-a line: $(cat "$OUT")"
grep -Eq "^store/shop:http/TCP  NodePort  rr  10\.96\.0\.20:80 .*10\.0\.2\.15:30080" "$OUT" && ok "shop's ClusterIP and node port" || bad "no shop line: $(cat "$OUT")"
"${KB[@]}" status web -o json >"$OUT"
node -e '
  const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const [p] = d.services;
  const conns = p.realServers.reduce((n, r) => n + r.activeConnections + r.inactiveConnections, 0);
  if (d.services.length !== 1 || p.key !== "default/web:http/TCP") throw new Error("filter: " + d.services.map((s) => s.key));
  const served = Number(process.argv[2]);
  if (p.virtualServers[0].stats.connections < served) throw new Error("the kernel counted " + p.virtualServers[0].stats.connections + " connections, not " + served);
  if (conns < served) throw new Error("active+inactive " + conns + " < " + served);
  if (p.realServers.map((r) => r.pod).join() !== "web-a,web-b") throw new Error("pods " + p.realServers.map((r) => r.pod));
' "$OUT" "$served" && ok "status -o json: the kernel counted the $served requests, pods named" || bad "status -o json: $(head -c 600 "$OUT")"

vm_log "== kube-ipvs diff on an intact node"
diff_is 0 && ok "diff exits 0" || bad "diff: $(cat "$OUT")"
diff_is 0 --manifests "$DIR" --hostname-override "$NODE" && ok "diff --manifests (no daemon needed) exits 0" || bad "diff --manifests: $(cat "$OUT")"

vm_log "== tampering"
ipvsadm -d -t 10.96.0.10:80 -r 10.244.1.3:8080
ipset del KUBE-CLUSTER-IP 10.96.0.20,tcp:80
ip addr del 10.96.0.20/32 dev kube-ipvs0
iptables -t filter -D INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
for args in "--manifests $DIR --hostname-override $NODE" ""; do
  read -r -a extra <<<"$args"
  if diff_is 1 "${extra[@]}"; then ok "diff ${args:-(daemon)} exits 1"; else bad "diff ${args:-(daemon)} did not exit 1: $(cat "$OUT")"; fi
  grep -Pzq '### Service default/web \(default/web:http/TCP\)\n# ipvsadm -Sn\n\+ -a -t 10\.96\.0\.10:80 -r 10\.244\.1\.3:8080 -m -w 1\n' "$OUT" && ok "the real server, under web" || bad "no real-server line under web: $(cat "$OUT")"
  grep -Pzq '### Service store/shop \(store/shop:http/TCP\)\n(.*\n)*\+ add KUBE-CLUSTER-IP 10\.96\.0\.20,tcp:80\n(.*\n)*\+ 10\.96\.0\.20/32\n' "$OUT" && ok "the set entry and the address, under shop" || bad "no set entry or address under shop: $(cat "$OUT")"
  grep -Pzq '### Node-wide.*\n# iptables-save -t filter\n\+ -A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER\n' "$OUT" && ok "the jump rule, node-wide" || bad "no jump line: $(cat "$OUT")"
done

vm_log "== a full sync repairs it and counts the drift"
kill -HUP "$DAEMON"
wait_until 30 "diff exits 0 again" diff_is 0
metrics=$(curl -sS http://127.0.0.1:10249/metrics)
for s in ipvs ipset netif iptables; do
  grep -Eq "^kube_ipvs_drift_detected_total\\{subsystem=\"$s\"\\} [1-9]" <<<"$metrics" && ok "drift counted for $s" || bad "no drift counted for $s: $(grep drift <<<"$metrics")"
done

vm_log "== kube-ipvs trace --live"
"${KB[@]}" trace --live --from 10.244.1.9 --to 10.96.0.10:80 --origin pod >"$OUT" 2>&1 && ok "trace --live exits 0" || bad "trace --live: $(cat "$OUT")"
grep -q '^verdict: load-balanced$' "$OUT" && ok "load-balanced" || bad "verdict: $(cat "$OUT")"
grep -q '^virtual server: 10.96.0.10:80/TCP (Service default/web:http/TCP)$' "$OUT" && ok "the Service is named" || bad "no Service: $(cat "$OUT")"
grep -Eq "^  10\.244\.1\.2:8080 \(pod web-a on $NODE\)" "$OUT" && grep -Eq "^  10\.244\.1\.3:8080 \(pod web-b on $NODE\)" "$OUT" && ok "both pods are named" || bad "pods: $(cat "$OUT")"
"${KB[@]}" trace --live --from 198.51.100.7 --to 10.0.2.15:30080 --origin external >"$OUT" 2>&1
grep -q '^virtual server: 10.0.2.15:30080/TCP (Service store/shop:http/TCP)$' "$OUT" && grep -q '^masquerade: yes$' "$OUT" && ok "a node port from outside: shop, masqueraded" || bad "node port: $(cat "$OUT")"
# The same address is web-a for web and shop-a for shop (as the slices say): named per Service.
grep -Eq "^  10\.244\.1\.2:8080 \(pod shop-a on $NODE\)" "$OUT" && ok "shop's pod is named as shop's slice says" || bad "shop's pod: $(cat "$OUT")"

kill -TERM "$DAEMON"
wait "$DAEMON" || true
((fails == 0)) || { tail -20 "$LOG" >&2; vm_die "$fails check(s) failed"; }
vm_log "tools.vm.sh: all checks passed"
