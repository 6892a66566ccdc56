#!/usr/bin/env bash
# The cluster's first scenario (docs/cluster.md), against a cluster from `cluster.sh up`; run by
# `cluster.sh scenario` inside the cluster's network namespace. Everything below is done by the real
# components: the Deployment controller makes the pods, the EndpointSlice controller the slices,
# kubelet + containerd run them, kube-ipvs programs the guest's kernel. Checks:
#   1. a Deployment of 3 agnhost netexec pods and a NodePort Service: the EndpointSlice controller
#      lists all 3 pods, ready;
#   2. requests through the ClusterIP and the NodePort, from a pod, from the node (a hostNetwork
#      pod) and, for the NodePort, from outside the node (this namespace), reach all 3 pods, in
#      rr's equal shares;
#   3. scaled to 1: only the remaining pod answers;
#   4. that pod deleted: only its replacement answers.
# Ends with "N passed, M failed"; exit 1 when anything failed.
set -euo pipefail

STATE=${KUBE_IPVS_CLUSTER_DIR:?run through test/cluster/cluster.sh scenario}
BIN=$(sed -n 's/^BIN=//p' "$STATE/env")
NS=scenario
NODE_IP=10.0.2.15
NODE_PORT=30080
N=12 # requests per check: rr gives each of 3 pods exactly 4
T0=$SECONDS
passed=0
failed=0

k() { "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig-admin" "$@"; }
say() { echo "scenario: $* [$((SECONDS - T0)) s]"; }
ok() { passed=$((passed + 1)); say "ok: $*"; }
bad() { failed=$((failed + 1)); say "FAIL: $*"; }
finish() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

# requests FROM TARGET: N GETs of TARGET/hostname, one answer (the pod's name, or "-") a line.
# FROM is a pod name (kubectl exec, curl inside it) or "outside" (curl here).
requests() {
  local from=$1 target=$2
  # Generous timeouts: under TCG on a loaded host one request can take several seconds.
  local loop="for i in \$(seq 1 $N); do curl -s --connect-timeout 5 --max-time 10 http://$target/hostname || printf -- -; echo; done"
  if [[ $from == outside ]]; then
    bash -c "$loop"
  else
    k -n "$NS" exec "$from" -- sh -c "$loop"
  fi
}

pods() { # names of the Deployment's pods that are Ready and not being deleted, sorted
  k -n "$NS" get pods -l app=netexec \
    -o 'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.metadata.deletionTimestamp}{"\n"}{end}' |
    awk '$2 == "True" && $3 == "" {print $1}' | sort
}

# balanced FROM TARGET EXPECTED...: every answer is one of EXPECTED, and each got N/#EXPECTED.
balanced() {
  local from=$1 target=$2
  shift 2
  (($#)) || { bad "$from -> $target: no pod to expect"; return; }
  local answers counts want=$((N / $#))
  answers=$(requests "$from" "$target") || { bad "$from -> $target: requests failed"; return; }
  counts=$(sort <<<"$answers" | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')
  local expect="" p
  for p in "$@"; do expect+="$p=$want "; done
  expect=$(tr ' ' '\n' <<<"$expect" | grep . | sort | tr '\n' ' ')
  if [[ $counts == "$expect" ]]; then ok "$from -> $target: $counts"; else bad "$from -> $target: got $counts, want $expect"; fi
}

# only FROM TARGET POD SECONDS: waits until N answers all come from POD.
only() {
  local from=$1 target=$2 pod=$3 limit=$4 t0=$SECONDS answers
  while :; do
    answers=$(requests "$from" "$target" || true)
    if [[ $(sort -u <<<"$answers") == "$pod" ]]; then
      ok "$from -> $target: all $N answers from $pod ($((SECONDS - t0)) s after the change)"
      return
    fi
    say "  $from -> $target: $(sort <<<"$answers" | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')(waiting for only $pod)"
    if ((SECONDS - t0 >= limit)); then
      bad "$from -> $target: after $limit s still answered by $(sort <<<"$answers" | uniq -c | tr '\n' ' ')(want only $pod)"
      return
    fi
    sleep 2
  done
}

slice_endpoints() { # the ready addresses of the Service's controller-managed slices, sorted
  k -n "$NS" get endpointslices -l kubernetes.io/service-name=netexec,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io \
    -o 'jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' | sort
}

k delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
k create namespace "$NS" >/dev/null
say "creating the Deployment (3 netexec pods), the Service and two client pods"
k -n "$NS" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: netexec}
spec:
  replicas: 3
  selector: {matchLabels: {app: netexec}}
  template:
    metadata: {labels: {app: netexec}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: netexec
        image: registry.k8s.io/e2e-test-images/agnhost:2.63.0
        imagePullPolicy: IfNotPresent
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata: {name: netexec}
spec:
  type: NodePort
  selector: {app: netexec}
  ports: [{port: 80, targetPort: 8080, nodePort: $NODE_PORT}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: registry.k8s.io/e2e-test-images/agnhost:2.63.0
    imagePullPolicy: IfNotPresent
    args: [pause]
---
apiVersion: v1
kind: Pod
metadata: {name: node-client}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: registry.k8s.io/e2e-test-images/agnhost:2.63.0
    imagePullPolicy: IfNotPresent
    args: [pause]
EOF
if k -n "$NS" rollout status deployment/netexec --timeout=600s >/dev/null &&
  k -n "$NS" wait --for=condition=Ready pod/client pod/node-client --timeout=600s >/dev/null; then
  ok "3 netexec pods and the 2 client pods Ready"
else
  bad "pods not Ready"
  k -n "$NS" get pods -o wide
  finish
  exit 1
fi

mapfile -t three < <(pods)
pod_ips=$(k -n "$NS" get pods -l app=netexec -o 'jsonpath={range .items[*]}{.status.podIP}{"\n"}{end}' | sort)
slices=""
for _ in $(seq 1 30); do
  slices=$(slice_endpoints)
  [[ $slices == "$pod_ips" ]] && break
  sleep 1
done
if [[ ${#three[@]} == 3 && $slices == "$pod_ips" ]]; then
  ok "the EndpointSlice controller lists the 3 pods: $(tr '\n' ' ' <<<"$slices")"
else
  bad "slices list '$(tr '\n' ' ' <<<"$slices")', pods are '$(tr '\n' ' ' <<<"$pod_ips")' (${#three[@]} ready)"
fi
cip=$(k -n "$NS" get service netexec -o 'jsonpath={.spec.clusterIP}')
say "ClusterIP $cip, NodePort $NODE_IP:$NODE_PORT; pods ${three[*]}"

for from in client node-client; do
  balanced "$from" "$cip" "${three[@]}"
  balanced "$from" "$NODE_IP:$NODE_PORT" "${three[@]}"
done
balanced outside "$NODE_IP:$NODE_PORT" "${three[@]}"

say "scaling to 1"
k -n "$NS" scale deployment/netexec --replicas=1 >/dev/null
left=""
for _ in $(seq 1 120); do
  mapfile -t now < <(pods)
  total=$(k -n "$NS" get pods -l app=netexec --no-headers 2>/dev/null | wc -l)
  [[ ${#now[@]} == 1 && $total == 1 ]] && { left=${now[0]}; break; }
  sleep 1
done
if [[ -n $left ]]; then
  ok "scaled to 1: $left remains"
  only client "$cip" "$left" 120
  only node-client "$NODE_IP:$NODE_PORT" "$left" 120
  only outside "$NODE_IP:$NODE_PORT" "$left" 120

  say "deleting $left"
  k -n "$NS" delete pod "$left" --wait=false >/dev/null
  new=""
  for _ in $(seq 1 300); do
    mapfile -t now < <(pods)
    [[ ${#now[@]} == 1 && ${now[0]} != "$left" ]] && { new=${now[0]}; break; }
    sleep 1
  done
  if [[ -n $new ]]; then
    ok "$left deleted: $new replaces it"
    only client "$cip" "$new" 120
    only node-client "$cip" "$new" 120
  else
    bad "no Ready replacement for $left within 300 s"
  fi
else
  bad "the Deployment did not come down to 1 Ready pod"
fi

[[ ${KUBE_IPVS_SCENARIO_KEEP:-0} == 1 ]] || k delete namespace "$NS" --wait=false >/dev/null
say "done"
finish
