#!/bin/bash
# Runs inside the guest, chrooted into the host's / (9p, read-only), as root.
# vm.sh copies it into the control share (/run/kube-ipvs-vm) for each run:
# finishes the guest's setup, runs the command from the control share with
# its stdout/stderr on the virtio serial ports "stdout"/"stderr", and leaves
# the exit status in /run/kube-ipvs-vm/rc. The initramfs /init powers off.
set -u
CTL=/run/kube-ipvs-vm
exec </dev/null

port() { # /dev node of the virtio serial port named $1
  local p
  for p in /sys/class/virtio-ports/vport*; do
    [[ -r $p/name && $(<"$p/name") == "$1" ]] && { printf '/dev/%s' "${p##*/}"; return 0; }
  done
  return 1
}
out=$(port stdout) && err=$(port stderr) || {
  echo "kube-ipvs-vm: virtio serial ports not found" >/dev/console
  echo 125 >"$CTL/rc"; exit 125
}
exec 3>"$out" 4>"$err"
exec >/dev/console 2>&4   # setup chatter: errors to the host's stderr

debug=0; [[ -e $CTL/debug ]] && debug=1
stamp() { ((debug)) && printf 'kube-ipvs-vm: %s at %s\n' "$*" "$(cut -d' ' -f1 /proc/uptime)" >/dev/console; return 0; }
stamp "run.sh start"
fail() { printf 'kube-ipvs-vm: guest setup: %s\n' "$*" >&4; echo 125 >"$CTL/rc"; exit 125; }

# ---- writable places (the shared root is read-only)
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp || fail "mount /var/tmp"
mkdir -p /dev/pts /dev/shm /run/lock /run/netns /tmp/home
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail "mount /dev/shm"
[[ -L /dev/ptmx ]] || { rm -f /dev/ptmx; ln -s pts/ptmx /dev/ptmx; }
[[ -e /dev/fd ]] || ln -s /proc/self/fd /dev/fd
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
while IFS=$'\t' read -r tag path; do
  [[ -n $tag ]] || continue
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none "$tag" "$path" || fail "mount --rw $path"
done <"$CTL/rw"

stamp "mounts done"
# ---- identity and network
echo "$(<"$CTL/hostname")" >/proc/sys/kernel/hostname
# the node: eth0 (qemu user net or a tap) or a dummy node0, 10.0.2.15/24, default via 10.0.2.2
case $(<"$CTL/net") in
  user|tap) nodeif=eth0; create= ;;
  none) nodeif=node0; create="link add node0 type dummy" ;;
  *) fail "unknown KUBE_IPVS_VM_NET" ;;
esac
printf '%s\n' "link set lo up" ${create:+"$create"} "link set $nodeif up" \
  "addr add 10.0.2.15/24 dev $nodeif" "route add default via 10.0.2.2 dev $nodeif" |
  ip -batch - || fail "network setup ($nodeif)"

stamp "network done"
# ---- the command
mapfile -d '' -t argv <"$CTL/argv"
mapfile -d '' -t envv <"$CTL/env"
cwd=$(<"$CTL/cwd")
cd "$cwd" 2>/dev/null || { printf 'kube-ipvs-vm: warning: %s is not visible in the guest; running in /\n' "$cwd" >&4; cd /; }
: >"$CTL/started"
stamp "command start"
env -i "${envv[@]}" "${argv[@]}" >&3 2>&4 3>&- 4>&-
rc=$?
echo "$rc" >"$CTL/rc"
exit "$rc"
