#!/usr/bin/env bash
# kube-ipvs as deploy/kube-ipvs-unprivileged.yaml runs it, for the VM scenarios: lib.sh puts this
# in KI when KUBE_IPVS_VM_CAPS is set ("manifest": the capabilities that manifest adds; or a list
# such as "net_admin" to try with fewer, or "none"). A `run` is preceded by what the manifest's
# privileged init container does, with every privilege: its modprobe line, then
# `run --init-only` (sysctls, IPVS timeouts); then the command runs as root with only those
# capabilities (the bounding set, with
# no_new_privs: nothing it starts regains others) and with /proc/sys and /sys read-only, as a
# container runtime mounts them for a non-privileged container. Each step execs, so the caller's
# $! is the kube-ipvs process itself (SIGTERM, SIGHUP and kill -9 reach it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAIN=$ROOT/dist/kube-ipvs.mjs
caps=${KUBE_IPVS_VM_CAPS:?set KUBE_IPVS_VM_CAPS (manifest, or e.g. net_admin,net_raw)}
# The manifest's main container's added capabilities, and its init container's modprobe line.
manifest() {
  (cd "$ROOT" && node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { parseAllDocuments } from "yaml";
    const docs = parseAllDocuments(readFileSync("deploy/kube-ipvs-unprivileged.yaml", "utf8")).map((d) => d.toJSON());
    const pod = docs.find((d) => d?.kind === "DaemonSet").spec.template.spec;
    if (process.argv[1] === "caps") console.log(pod.containers.find((c) => c.name === "kube-ipvs").securityContext.capabilities.add.map((c) => c.toLowerCase()).join(","));
    else console.log(pod.initContainers[0].args[0].split("\n").find((l) => l.trim().startsWith("modprobe")).trim());' "$1")
}
[[ $caps == manifest ]] && caps=$(manifest caps)
[[ $caps == none ]] && caps=
bounding=-all
for c in ${caps//,/ }; do bounding+=",+${c#cap_}"; done

if [[ ${1-} == run ]]; then
  init=yes
  for a in "$@"; do [[ $a == --cleanup || $a == --cleanup-ipvs || $a == --init-only || $a == --help || $a == -h ]] && init=no; done
  if [[ $init == yes ]]; then
    log=/tmp/kube-ipvs-limited-init.log
    sh -c "$(manifest modprobe)" >"$log" 2>&1 || true
    if ! node "$MAIN" run --init-only "${@:2}" >>"$log" 2>&1; then
      echo "limited.sh: the privileged --init-only step failed:" >&2
      cat "$log" >&2
      exit 1
    fi
  fi
fi
# shellcheck disable=SC2016 # expanded by the inner bash
exec unshare --mount --propagation private -- bash -c '
  mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys /proc/sys || exit 125
  mount -o remount,bind,ro /sys || exit 125
  bounding=$1; shift
  exec setpriv --no-new-privs --inh-caps=-all --ambient-caps=-all --bounding-set="$bounding" -- node "$@"' \
  limited "$bounding" "$MAIN" "$@"
