#!/usr/bin/env bash
# The guest side of bench/compare.ts (npm run bench:compare), in ONE VM boot with a user network.
# For each proxy the conductor names, on a clean kernel, against the same cluster in the host's
# kube-apiserver, it measures:
#   cold     process start → first completed sync, then the kernel checked against the expected
#            counts (polled until complete); the reach probe times default/kubernetes answering
#            through its ClusterIP
#   churn    the host writes EndpointSlice changes for a while (POST /churn blocks until done),
#            marked each minute; then wait for the sync that covers the last one
#   idle     nothing changes for a while
#   restart  the proxy is stopped and started on the programmed node: time to its first sync and
#            the kernel write requests it made (kprobes on the kernel's write handlers)
# At each mark it records the time and the proxy's /proc counters (CPU incl. reaped children,
# RSS, peak RSS); the host computes the figures from these (bench/compare-report.ts).
#
# Conductor protocol (plain text; the guest needs only curl):
#   GET  /next  -> "run <label>" then "mode ipvs|nftables", "cmd <word>"..., "cleanup <word>"...,
#                  "expect <key> <n>"..., "churn <seconds>", "idle <seconds>", "cold-timeout <seconds>", "cold-attempts <n>"; or "done"
#   GET  /time  -> the host's epoch seconds (for the clock offset)
#   POST /churn?label=<label>&offset=<guest-host seconds>  -> "ok <changes>" when the writer is done
#   POST /result?label=<label>   body: the sections below
#   POST /startup               body: "<entry> <wall s> <user s> <sys s> <max RSS KB>" per --help run
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/vm/lib.sh"
. "$ROOT/test/fidelity/guest-lib.sh"
vm_require_guest

CONDUCTOR=${KUBE_IPVS_COMPARE_CONDUCTOR:?set by bench/compare.ts}
CA=${KUBE_IPVS_COMPARE_CA:?set by bench/compare.ts}
TOKEN_FILE=${KUBE_IPVS_COMPARE_TOKEN_FILE:?set by bench/compare.ts}
PROBE=(node "$ROOT/bench/compare-probe.mjs")
WORK=$(mktemp -d)
PROXY_PID=
REACH_PID=
FIRST_PID=
METRICS=http://127.0.0.1:10249/metrics
CLK_TCK=$(getconf CLK_TCK)
TRACING=/sys/kernel/tracing
# The kernel's handlers of write requests, by subsystem: IPVS generic netlink set commands, ipset
# netlink requests, nf_tables object changes (iptables-nft, the guest's iptables, and nft),
# addresses and links, conntrack deletions, sysctl writes.
KPROBES=(
  ipvs:ip_vs_genl_set_cmd
  ipset:ip_set_create ipset:ip_set_destroy ipset:ip_set_flush ipset:ip_set_rename ipset:ip_set_swap
  ipset:ip_set_uadd ipset:ip_set_udel
  nftables:nf_tables_newtable nftables:nf_tables_deltable nftables:nf_tables_newchain
  nftables:nf_tables_delchain nftables:nf_tables_newrule nftables:nf_tables_delrule
  nftables:nf_tables_newset nftables:nf_tables_delset nftables:nf_tables_newsetelem
  nftables:nf_tables_delsetelem nftables:nf_tables_newobj nftables:nf_tables_delobj
  address:inet_rtm_newaddr address:inet_rtm_deladdr address:inet6_rtm_newaddr address:inet6_rtm_deladdr
  link:rtnl_newlink link:rtnl_dellink
  conntrack:ctnetlink_del_conntrack
  sysctl:proc_sys_write
)

# mark NAME: the time and the proxy's counters, one line in $WORK/marks:
#   NAME epoch utime stime cutime cstime (clock ticks) rss_kb hwm_kb
mark() {
  local stat f=() k v rss=0 hwm=0
  if [[ -n $PROXY_PID ]] && read -r stat </proc/"$PROXY_PID"/stat 2>/dev/null; then
    read -r -a f <<<"${stat##*) }"
    while read -r k v _; do
      case $k in VmRSS:) rss=$v ;; VmHWM:) hwm=$v ;; esac
    done </proc/"$PROXY_PID"/status
  fi
  printf '%s %s %s %s %s %s %s %s\n' "$1" "$EPOCHREALTIME" "${f[11]:-0}" "${f[12]:-0}" "${f[13]:-0}" "${f[14]:-0}" "$rss" "$hwm" >>"$WORK/marks"
  # Per thread (name utime stime), to tell the main thread from the runtime's helpers.
  local t comm
  [[ -n $PROXY_PID ]] || return 0
  for t in /proc/"$PROXY_PID"/task/*; do
    read -r comm <"$t/comm" 2>/dev/null || continue
    read -r stat <"$t/stat" 2>/dev/null || continue
    read -r -a f <<<"${stat##*) }"
    printf '%s %s %s %s %s\n' "$1" "${t##*/}" "${comm// /_}" "${f[11]}" "${f[12]}" >>"$WORK/threads"
  done
}

metrics() { # metrics NAME: the proxy's metrics, kept for the host
  curl -fsS --max-time 30 "$METRICS" >"$WORK/metrics-$1" 2>/dev/null || : >"$WORK/metrics-$1"
}

# first_sync_metrics: in the background during a cold start, the first scrape that shows a
# completed IPv4 sync (metrics-first): the first sync's start and length, even when more syncs
# follow before wait_sync sees the proxy quiet.
first_sync_metrics() {
  while :; do
    if curl -fsS --max-time 5 "$METRICS" >"$WORK/metrics-first.tmp" 2>/dev/null &&
      grep -q '^kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"} [1-9]' "$WORK/metrics-first.tmp"; then
      mv "$WORK/metrics-first.tmp" "$WORK/metrics-first"
      return 0
    fi
    sleep 0.5
  done
}

kernel_counts() { # kernel_counts MODE: "key n key n" of what the proxy programmed
  if [[ $1 == nftables ]]; then
    local svc ep
    svc=$(nft list map ip kube-proxy service-ips 2>/dev/null | grep -o ' : goto ' | wc -l)
    # kube-proxy v1.36.3 gives endpoints chains of their own only for session affinity (none
    # here): each service-* chain DNATs with "numgen random mod N map { ... }" over its N
    # endpoints (nftables/proxier.go writeServiceToEndpointDNATs).
    ep=$(nft list table ip kube-proxy 2>/dev/null | awk '
      /^\tchain /{svc = ($2 ~ /^service-/)}
      svc && match($0, /numgen random mod [0-9]+/){n += substr($0, RSTART + 18, RLENGTH - 18)}
      END{print n + 0}')
    printf 'services %s endpoints %s\n' "$svc" "$ep"
  else
    awk '/^(TCP|UDP|SCTP|FWM) /{v++} /^  -> [0-9A-F]/{r++} END{printf "vs %d rs %d\n", v, r}' /proc/net/ip_vs 2>/dev/null || echo 'vs 0 rs 0'
  fi
}

complete() { # complete "key n key n": every expected count reached
  local -a c
  read -r -a c <<<"$1"
  local i
  for ((i = 0; i < ${#c[@]}; i += 2)); do
    [[ -n ${EXPECT[${c[i]}]:-} ]] || continue
    ((c[i + 1] >= EXPECT[${c[i]}])) || return 1
  done
  return 0
}

kprobes_on() {
  [[ -d $TRACING/events ]] || mount -t tracefs nodev "$TRACING" 2>/dev/null
  : >"$WORK/kprobes-missing"
  local e fn
  for e in "${KPROBES[@]}"; do
    fn=${e#*:}
    if echo "p:kbench/$fn $fn" >>"$TRACING/kprobe_events" 2>/dev/null &&
      echo 'hist:keys=common_pid' >"$TRACING/events/kbench/$fn/trigger" 2>/dev/null; then
      :
    else
      echo "$fn" >>"$WORK/kprobes-missing"
    fi
  done
}

kprobes_read() { # one line per probe: subsystem function hits
  local e fn hits
  for e in "${KPROBES[@]}"; do
    fn=${e#*:}
    [[ -r $TRACING/events/kbench/$fn/hist ]] || continue
    hits=$(awk '/^ *Hits:/{print $2; exit}' "$TRACING/events/kbench/$fn/hist")
    printf '%s %s %s\n' "${e%%:*}" "$fn" "${hits:-0}"
  done
}

kprobes_off() {
  local e fn
  for e in "${KPROBES[@]}"; do
    fn=${e#*:}
    [[ -e $TRACING/events/kbench/$fn/trigger ]] && echo '!hist:keys=common_pid' >"$TRACING/events/kbench/$fn/trigger" 2>/dev/null
    echo "-:kbench/$fn" >>"$TRACING/kprobe_events" 2>/dev/null
  done
  return 0
}

# Everything a proxy of either mode can leave behind (guest-lib's scrub, plus nftables).
scrub_all() {
  scrub
  nft flush ruleset 2>/dev/null
  return 0
}

# The kernel keeps each deleted real server in a trash list for IP_VS_DEST_TRASH_PERIOD (120 s,
# include/net/ip_vs.h) and walks that list for every real server added (ip_vs_trash_get_dest,
# net/netfilter/ipvs/ip_vs_ctl.c): a cold start right after another IPVS proxy's cleanup would pay
# for that proxy's real servers. Unloading ip_vs frees the trash; the next proxy finds ip_vs loaded
# and empty, as the first one did after boot (record_boot_state loads it).
fresh_ip_vs() {
  local mods
  mods=$(awk '$1 ~ /^ip_vs_/ {print $1}' /proc/modules)
  # shellcheck disable=SC2086 # module names
  if modprobe -r $mods ip_vs 2>/dev/null && modprobe ip_vs; then
    return 0
  fi
  vm_log "ip_vs did not unload ($(awk '$1 ~ /^ip_vs/ {print $1 " used by " $4}' /proc/modules | tr '\n' ' ')); waiting 180 s for its dest trash to expire"
  sleep 180
}

start_proxy() { # start_proxy LOG: runs CMD in the background as PROXY_PID
  "${CMD[@]}" >>"$1" 2>&1 &
  PROXY_PID=$!
}

# wait_complete MODE TIMEOUT: polls the kernel until the expected counts are there.
wait_complete() {
  local deadline=$((SECONDS + $2)) c next_log=$((SECONDS + 30))
  while :; do
    c=$(kernel_counts "$1")
    printf '%s %s\n' "$EPOCHREALTIME" "$c" >>"$WORK/counts"
    complete "$c" && return 0
    if ((SECONDS >= next_log)); then
      vm_log "not complete yet: $c (expected: $(for k in "${!EXPECT[@]}"; do printf '%s %s ' "$k" "${EXPECT[$k]}"; done))"
      next_log=$((SECONDS + 30))
    fi
    ((SECONDS < deadline)) || return 1
    kill -0 "$PROXY_PID" 2>/dev/null || return 1
    sleep 1
  done
}

send_result() { # send_result LABEL STATUS
  local f
  {
    echo "### status"
    echo "$2"
    for f in marks threads counts counts-restart reach clock churn kprobes kprobes-missing; do
      echo "### $f"
      cat "$WORK/$f" 2>/dev/null
    done
    for f in "$WORK"/metrics-*; do
      [[ -e $f ]] || continue
      echo "### ${f##*/}"
      cat "$f"
    done
    echo "### log-head"
    head -n 80 "$WORK/proxy.log" 2>/dev/null
    echo "### log"
    tail -n 60 "$WORK/proxy.log" 2>/dev/null
  } >"$WORK/result"
  conductor POST "/result?label=$1" "$WORK/result" >/dev/null
}

run_one() { # run_one LABEL MODE: CMD, CLEANUP, EXPECT, CHURN, IDLE, COLD_TIMEOUT, COLD_ATTEMPTS set by the caller
  local label=$1 mode=$2 t_churn
  rm -f "$WORK"/marks "$WORK"/threads "$WORK"/counts* "$WORK"/reach "$WORK"/clock "$WORK"/churn "$WORK"/kprobes* "$WORK"/metrics-* "$WORK"/proxy.log "$WORK"/ready
  scrub_all
  fresh_ip_vs

  # default/kubernetes through its ClusterIP, polled from before the proxy starts.
  "${PROBE[@]}" reach --ca "$CA" --token-file "$TOKEN_FILE" --ready "$WORK/ready" --timeout "$COLD_TIMEOUT" >"$WORK/reach" 2>/dev/null &
  REACH_PID=$!
  local i
  for i in $(seq 1 120); do [[ -e $WORK/ready ]] && break; sleep 0.5; done

  vm_log "$label: cold start"
  local attempt status
  for ((attempt = 1; attempt <= COLD_ATTEMPTS; attempt++)); do
    mark start
    start_proxy "$WORK/proxy.log"
    first_sync_metrics &
    FIRST_PID=$!
    wait_sync --since 0 --timeout "$COLD_TIMEOUT"
    status=$?
    kill "$FIRST_PID" 2>/dev/null
    wait "$FIRST_PID" 2>/dev/null
    FIRST_PID=
    ((status == 0)) && break
    # Say why (the proxy gone, or the wait over or failed), then, unless COLD_ATTEMPTS is 1, once
    # more on a clean kernel: a run lost to the VM (kube-proxy now and then stops logging after
    # "Caches are synced" and never syncs under TCG) must not read as a figure.
    mark failed
    {
      if kill -0 "$PROXY_PID" 2>/dev/null; then echo "compare guest: attempt $attempt: wait_sync ended with status $status, the proxy still running"; else echo "compare guest: attempt $attempt: the proxy exited"; fi
      dmesg | tail -n 5
    } >>"$WORK/proxy.log" 2>&1
    vm_log "$label: attempt $attempt: no first sync (wait status $status)"
    stop_proxy
    if ((attempt == COLD_ATTEMPTS)); then
      kill "$REACH_PID" 2>/dev/null
      send_result "$label" "no first sync within ${COLD_TIMEOUT}s ($COLD_ATTEMPTS attempt(s))"
      return
    fi
    "${CLEANUP[@]}" >"$WORK/cleanup.log" 2>&1
    scrub_all
    fresh_ip_vs
    rm -f "$WORK"/marks "$WORK"/threads "$WORK"/metrics-first*
    # The probe from before the proxy starts again.
    kill "$REACH_PID" 2>/dev/null
    wait "$REACH_PID" 2>/dev/null
    rm -f "$WORK/ready"
    "${PROBE[@]}" reach --ca "$CA" --token-file "$TOKEN_FILE" --ready "$WORK/ready" --timeout "$COLD_TIMEOUT" >"$WORK/reach" 2>/dev/null &
    REACH_PID=$!
    for i in $(seq 1 120); do [[ -e $WORK/ready ]] && break; sleep 0.5; done
  done
  mark synced
  metrics cold
  if wait_complete "$mode" "$COLD_TIMEOUT"; then mark complete; else mark incomplete; fi
  # The probe has the cold-start timeout; a proxy that never makes it reachable shows "none".
  for i in $(seq 1 60); do kill -0 "$REACH_PID" 2>/dev/null || break; sleep 1; done
  kill "$REACH_PID" 2>/dev/null
  wait "$REACH_PID" 2>/dev/null
  REACH_PID=
  # What is measured so far goes to the host after each phase: a run the VM's time limit cuts
  # short (upstream IPVS mode at thousands of Services) still gives its first figures.
  send_result "$label" "cut short after the cold start"

  vm_log "$label: churn"
  "${PROBE[@]}" clock --url "$CONDUCTOR" >"$WORK/clock" 2>&1
  metrics churn-baseline
  t_churn=$EPOCHREALTIME
  mark churn-start
  # A mark at each minute of the writer's: the report shows the churn's cost minute by minute.
  (for ((k = 1; ; k++)); do sleep 60; mark "churn-m$k"; done) &
  local ticker=$!
  # The sync that started after the last queued change; then let nothing change. The waiter starts
  # before the churn ends and judges once it has: started after, its first scrape would lump all
  # the churn's syncs together, and it would wait for the proxy's next periodic sync, charging
  # that sync to the churn. Its scrapes during the last seconds of the churn are few and small.
  rm -f "$WORK/churn-done"
  (
    sleep $((CHURN > 15 ? CHURN - 15 : 0))
    wait_sync --since "$t_churn" --baseline "$WORK/metrics-churn-baseline" --timeout "$COLD_TIMEOUT" --after "$WORK/churn-done"
  ) &
  local waiter=$!
  conductor POST "/churn?label=$label&offset=$(cut -d' ' -f1 "$WORK/clock")" >"$WORK/churn"
  kill "$ticker" 2>/dev/null
  wait "$ticker" 2>/dev/null
  mark churn-end
  : >"$WORK/churn-done"
  wait "$waiter"
  mark churn-synced
  metrics churn
  send_result "$label" "cut short after the churn"

  vm_log "$label: idle ${IDLE}s"
  mark idle-start
  metrics idle-start
  sleep "$IDLE"
  mark idle-end
  metrics idle
  send_result "$label" "cut short after the idle phase"

  vm_log "$label: restart"
  stop_proxy
  kprobes_on
  mark restart-start
  start_proxy "$WORK/proxy.log"
  if wait_sync --since 0 --timeout "$COLD_TIMEOUT"; then mark restart-synced; else mark restart-failed; fi
  kprobes_read >"$WORK/kprobes"
  kprobes_off
  metrics restart
  printf '%s %s\n' "$EPOCHREALTIME" "$(kernel_counts "$mode")" >"$WORK/counts-restart"
  stop_proxy
  "${CLEANUP[@]}" >"$WORK/cleanup.log" 2>&1
  scrub_all
  send_result "$label" ok
}

# `kube-ipvs --help` in the guest (files over 9p, JavaScript under TCG): wall, CPU and peak RSS,
# three runs each of this build and of KUBE_IPVS_COMPARE_BASELINE (another build's entry), if set.
startup_times() {
  local entry run
  for entry in "$ROOT/dist/kube-ipvs.mjs" ${KUBE_IPVS_COMPARE_BASELINE:+"$KUBE_IPVS_COMPARE_BASELINE"}; do
    for run in 1 2 3; do
      /usr/bin/time -f "$entry %e %U %S %M" node "$entry" --help 2>&1 >/dev/null | tail -n 1
    done
  done
}

trap 'kill "$REACH_PID" "$FIRST_PID" 2>/dev/null; stop_proxy; kprobes_off; scrub_all' EXIT
if [[ -x /usr/bin/time ]]; then
  startup_times >"$WORK/startup"
  conductor POST /startup "$WORK/startup" >/dev/null
fi
# Loaded now, so that the kprobes on their handlers can be placed before any proxy needs them.
modprobe ip_set 2>/dev/null
modprobe nf_tables 2>/dev/null
modprobe nf_conntrack_netlink 2>/dev/null
record_boot_state
scrub_all
while :; do
  conductor GET /next >"$WORK/next" || exit 1
  mapfile -t lines <"$WORK/next"
  [[ ${lines[0]:-} == done ]] && break
  read -r verb label <<<"${lines[0]}"
  [[ $verb == run ]] || vm_die "conductor said: ${lines[0]}"
  CMD=() CLEANUP=() CHURN=0 IDLE=60 COLD_TIMEOUT=3600 COLD_ATTEMPTS=2 mode=ipvs
  declare -A EXPECT=()
  for l in "${lines[@]:1}"; do
    read -r key rest <<<"$l"
    case $key in
      mode) mode=$rest ;;
      cmd) CMD+=("$rest") ;;
      cleanup) CLEANUP+=("$rest") ;;
      expect) read -r k n <<<"$rest"; EXPECT[$k]=$n ;;
      churn) CHURN=${rest%.*} ;;
      idle) IDLE=$rest ;;
      cold-timeout) COLD_TIMEOUT=$rest ;;
      cold-attempts) COLD_ATTEMPTS=$rest ;;
      *) vm_die "conductor said: $l" ;;
    esac
  done
  run_one "$label" "$mode"
done
echo "compare guest: done"
