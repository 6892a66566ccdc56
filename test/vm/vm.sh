#!/usr/bin/env bash
# vm.sh — run one command as root inside a throw-away qemu VM that has a real
# IPVS-capable kernel (the host kernel may lack ip_vs / dummy).
#
#   test/vm/vm.sh [--mem 1G] [--cpus 2] [--timeout SECONDS] [--rw DIR]... -- COMMAND [ARGS...]
#
# The host's / is shared read-only over 9p and becomes the guest's /, so paths
# (the repo, node, ipvsadm, ...) are the same inside. The guest gets fresh
# tmpfs on /run, /tmp, /var/tmp, /dev/shm; --rw DIR shares a host directory
# read-write at the same path. COMMAND's stdout/stderr are streamed to ours
# over dedicated virtio serial ports (kernel log goes to a separate serial log);
# vm.sh exits with COMMAND's exit code, 124 on guest timeout, 125 on harness
# failure. See test/vm/README.md for the environment variables.
set -euo pipefail

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PROG=vm.sh

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 125; }
note() { [[ ${KUBE_IPVS_VM_QUIET:-0} == 1 ]] || printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() {
  sed -n 's/^#   //p' "${BASH_SOURCE[0]}" | head -1 >&2
  exit 125
}

# ---------------------------------------------------------------- arguments
MEM=${KUBE_IPVS_VM_MEM:-1G}
CPUS=${KUBE_IPVS_VM_CPUS:-2}
TIMEOUT=${KUBE_IPVS_VM_TIMEOUT:-600}
RW_DIRS=()
while (($#)); do
  case $1 in
    --mem) (($# >= 2)) || usage; MEM=$2; shift 2 ;;
    --mem=*) MEM=${1#*=}; shift ;;
    --cpus) (($# >= 2)) || usage; CPUS=$2; shift 2 ;;
    --cpus=*) CPUS=${1#*=}; shift ;;
    --timeout) (($# >= 2)) || usage; TIMEOUT=$2; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --rw) (($# >= 2)) || usage; RW_DIRS+=("$2"); shift 2 ;;
    --rw=*) RW_DIRS+=("${1#*=}"); shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) printf '%s: unknown option %q (put the command after --)\n' "$PROG" "$1" >&2; usage ;;
  esac
done
(($# >= 1)) || usage
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -gt 0 ]] || die "--timeout must be a positive integer (seconds), got '$TIMEOUT'"
[[ $CPUS =~ ^[0-9]+$ && $CPUS -gt 0 ]] || die "--cpus must be a positive integer, got '$CPUS'"
[[ $MEM =~ ^[0-9]+[MG]?$ ]] || die "--mem must look like 1G or 768M, got '$MEM'"
for i in "${!RW_DIRS[@]}"; do
  d=${RW_DIRS[$i]}
  [[ -d $d ]] || die "--rw $d: not a directory"
  RW_DIRS[$i]=$(cd "$d" && pwd -P)
  case ${RW_DIRS[$i]} in
    /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/run|/run/*|/tmp|/tmp/*) die "--rw ${RW_DIRS[$i]}: not shareable (hidden by the guest's own mounts)" ;;
  esac
done

# ---------------------------------------------------------------- host packages
# Tools the harness needs on the host, and tools tests commonly use in the guest
# (the guest runs the host's binaries).
REQUIRED_PKGS=(qemu-system-x86 linux-image-amd64 busybox-static kmod cpio gzip
  iproute2 ipvsadm ipset iptables conntrack curl socat)
ensure_packages() {
  local missing=() p
  for p in "${REQUIRED_PKGS[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ ${KUBE_IPVS_VM_NO_INSTALL:-0} == 1 ]] && die "missing packages: ${missing[*]} (KUBE_IPVS_VM_NO_INSTALL=1)"
  command -v apt-get >/dev/null || die "missing packages: ${missing[*]}, and no apt-get to install them"
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "missing packages: ${missing[*]}; run as root or install them"
    sudo=(sudo)
  fi
  note "installing missing packages: ${missing[*]}"
  { "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2 ||
    die "could not install: ${missing[*]}"
}
if command -v dpkg-query >/dev/null; then
  ensure_packages
else
  note "no dpkg: not checking packages"
fi

QEMU=${KUBE_IPVS_VM_QEMU:-$(command -v qemu-system-x86_64 || true)}
[[ -n $QEMU && -x $QEMU ]] || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
BUSYBOX=${KUBE_IPVS_VM_BUSYBOX:-/bin/busybox}
[[ -x $BUSYBOX ]] || die "static busybox not found at $BUSYBOX (apt-get install busybox-static)"
if command -v file >/dev/null && ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
  die "$BUSYBOX is not statically linked (apt-get install busybox-static)"
fi

# ---------------------------------------------------------------- kernel
# KUBE_IPVS_VM_KERNEL=/boot/vmlinuz-X, else the newest /boot/vmlinuz-* whose
# modules tree has ip_vs.
pick_kernel() {
  local k ver best=
  while IFS= read -r k; do
    ver=${k#/boot/vmlinuz-}
    [[ -r $k && -f /lib/modules/$ver/modules.dep ]] || continue
    grep -qE '(^|/)ip_vs\.ko' "/lib/modules/$ver/modules.dep" "/lib/modules/$ver/modules.builtin" 2>/dev/null || continue
    best=$k
  done < <(printf '%s\n' /boot/vmlinuz-* | sort -V)
  printf '%s' "$best"
}
KERNEL=${KUBE_IPVS_VM_KERNEL:-$(pick_kernel)}
[[ -n $KERNEL && -r $KERNEL ]] || die "no usable kernel in /boot with ip_vs modules (apt-get install linux-image-amd64)"
KVER=${KUBE_IPVS_VM_KERNEL_VERSION:-${KERNEL##*/vmlinuz-}}
MODDIR=/lib/modules/$KVER
[[ -f $MODDIR/modules.dep ]] || die "no modules for kernel $KVER in $MODDIR"

# ---------------------------------------------------------------- initramfs
# Small, kernel-specific and cached: busybox + the modules needed to reach the
# 9p root and the virtio devices. Everything else runs from the host's /.
INIT_MODULES=(virtio_pci virtio_net virtio_console 9pnet_virtio 9p)
CACHE_DIR=${KUBE_IPVS_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/kube-ipvs/vm}
INIT_SRC=$VM_DIR/guest/init
[[ -f $INIT_SRC ]] || die "missing $INIT_SRC"
# kernel usermode helper (module autoload) runs with the initramfs as root:
# hand it over to the real modprobe in the shared root (/init's cwd).
MODPROBE_HELPER='#!/bin/busybox sh
exec /bin/busybox chroot /proc/1/cwd /sbin/modprobe "$@"'
init_key=$( { cat "$INIT_SRC"; printf '%s\n' "${INIT_MODULES[@]}" "$MODPROBE_HELPER"; sha256sum "$BUSYBOX"; } | sha256sum | cut -c1-12)
INITRD=$CACHE_DIR/initramfs-$KVER-$init_key.cpio.gz

module_files() { # ordered, de-duplicated list of module files (dependencies first)
  local m line seen=" "
  for m in "${INIT_MODULES[@]}"; do
    if grep -qE "/$m\.ko" "$MODDIR/modules.builtin" 2>/dev/null; then continue; fi
    while read -r line; do
      [[ $line == insmod\ * ]] || continue
      line=${line#insmod }; line=${line%% *}
      [[ $seen == *" $line "* ]] && continue
      seen+="$line "
      printf '%s\n' "$line"
    done < <(modprobe -S "$KVER" --show-depends "$m") || die "modprobe cannot resolve $m for $KVER"
  done
}

build_initrd() {
  mkdir -p "$CACHE_DIR"
  local stage f base n=0
  stage=$(mktemp -d "$CACHE_DIR/.stage.XXXXXX")
  mkdir -p "$stage"/{bin,sbin,proc,sys,dev,newroot,modules}
  cp "$BUSYBOX" "$stage/bin/busybox"
  ln -s busybox "$stage/bin/sh"
  cp "$INIT_SRC" "$stage/init"
  chmod 755 "$stage/init"
  printf '%s\n' "$MODPROBE_HELPER" >"$stage/sbin/modprobe"
  chmod 755 "$stage/sbin/modprobe"
  : >"$stage/modules/order"
  while IFS= read -r f; do
    base=$(printf '%02d' "$n")-$(basename "$f"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
    case $f in
      *.ko) cp "$f" "$stage/modules/$base" ;;
      *.ko.xz) xz -dc "$f" >"$stage/modules/$base" ;;
      *.ko.zst) zstd -qdc "$f" >"$stage/modules/$base" ;;
      *.ko.gz) gzip -dc "$f" >"$stage/modules/$base" ;;
      *) die "unexpected module file $f" ;;
    esac
    printf '%s\n' "$base" >>"$stage/modules/order"
    n=$((n + 1))
  done < <(module_files)
  (cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$INITRD.tmp.$$"
  mv -f "$INITRD.tmp.$$" "$INITRD"
  rm -rf "$stage"
  note "built $INITRD ($n modules)"
}
[[ -s $INITRD ]] || build_initrd

# ---------------------------------------------------------------- fast kernel
# Decompressing an xz bzImage under TCG costs seconds; qemu boots an
# uncompressed vmlinux ELF directly through its PVH entry (CONFIG_PVH=y), so
# extract it once and cache it. Falls back to the bzImage.
extract_vmlinux() { # $1 bzImage, $2 output; tries each embedded compressed stream
  local magic tool off tmp=$2.tmp.$$
  for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08' 'lz4:\x02\x21\x4c\x18'; do
    tool=${magic%%:*}
    command -v "$tool" >/dev/null || continue
    while IFS=: read -r off _; do
      case $tool in
        xz) tail -c +$((off + 1)) "$1" | xz -dc --single-stream >"$tmp" 2>/dev/null ;;
        zstd) tail -c +$((off + 1)) "$1" | zstd -qdc >"$tmp" 2>/dev/null ;;
        gzip) tail -c +$((off + 1)) "$1" | gzip -dc >"$tmp" 2>/dev/null ;;
        lz4) tail -c +$((off + 1)) "$1" | lz4 -qdc >"$tmp" 2>/dev/null ;;
      esac
      if [[ $(head -c 4 "$tmp" 2>/dev/null | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
        mv -f "$tmp" "$2"; return 0
      fi
    done < <(LC_ALL=C grep -obUaP "${magic#*:}" "$1" 2>/dev/null | head -5)
  done
  rm -f "$tmp"
  return 1
}
BOOT_KERNEL=$KERNEL
if [[ ${KUBE_IPVS_VM_PVH:-1} == 1 && ${KUBE_IPVS_VM_ACCEL:-tcg} == tcg ]] &&
  grep -qx 'CONFIG_PVH=y' "/boot/config-$KVER" 2>/dev/null; then
  mkdir -p "$CACHE_DIR"
  vmlinux=$CACHE_DIR/vmlinux-$KVER-$(stat -c %s-%Y "$KERNEL")
  if [[ -s $vmlinux ]] || extract_vmlinux "$KERNEL" "$vmlinux"; then
    BOOT_KERNEL=$vmlinux
  else
    note "could not extract vmlinux from $KERNEL; booting the compressed image (slower)"
  fi
fi

# ---------------------------------------------------------------- run spec
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kube-ipvs-vm.XXXXXX")
QEMU_PID=
cleanup() {
  [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null || true
  [[ ${KUBE_IPVS_VM_KEEP:-0} == 1 ]] && { note "kept $WORK"; return; }
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
CTL=$WORK/ctl
mkdir -p "$CTL"
cp "$VM_DIR/guest/run.sh" "$CTL/run.sh"
printf '%s\0' "$@" >"$CTL/argv"
printf '%s' "$PWD" >"$CTL/cwd"
case $PWD/ in
  /tmp/*|/run/*|/var/tmp/*|/dev/*|/proc/*|/sys/*)
    note "warning: $PWD is hidden by the guest's own mounts; the command will not see its files" ;;
esac
GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if node_bin=$(command -v node); then
  node_dir=$(dirname "$node_bin")
  case ":$GUEST_PATH:" in *":$node_dir:"*) ;; *) GUEST_PATH=$GUEST_PATH:$node_dir ;; esac
fi
{
  printf '%s\0' "PATH=$GUEST_PATH" "HOME=/tmp/home" "USER=root" "LOGNAME=root" "TERM=dumb" \
    "LANG=C.UTF-8" "KUBE_IPVS_VM=1" "KUBE_IPVS_VM_TESTDIR=$VM_DIR"
  # pass KUBE_IPVS_* (harness knobs excluded) and the names listed in KUBE_IPVS_VM_PASSENV
  while IFS= read -r -d '' kv; do
    name=${kv%%=*}
    case $name in KUBE_IPVS_VM_*) continue ;; KUBE_IPVS_*) printf '%s\0' "$kv" ;; esac
  done < <(env -0)
  for name in ${KUBE_IPVS_VM_PASSENV:-}; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad name in KUBE_IPVS_VM_PASSENV: $name"
    [[ -v $name ]] && printf '%s\0' "$name=${!name}"
  done
} >"$CTL/env"
printf '%s\n' "${KUBE_IPVS_VM_NET:-none}" >"$CTL/net"
[[ ${KUBE_IPVS_VM_DEBUG:-0} == 1 ]] && : >"$CTL/debug"
printf '%s\n' "${KUBE_IPVS_VM_HOSTNAME:-kube-ipvs-vm}" >"$CTL/hostname"
: >"$CTL/rw"
for i in "${!RW_DIRS[@]}"; do printf 'rw%d\t%s\n' "$i" "${RW_DIRS[$i]}" >>"$CTL/rw"; done
# qemu "pipe" chardevs: it writes PATH.out and reads PATH.in
mkfifo "$WORK/stdout.in" "$WORK/stdout.out" "$WORK/stderr.in" "$WORK/stderr.out"

# ---------------------------------------------------------------- qemu
ACCEL=${KUBE_IPVS_VM_ACCEL:-tcg}
case $ACCEL in
  tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
  kvm) [[ -w /dev/kvm ]] || die "KUBE_IPVS_VM_ACCEL=kvm but /dev/kvm is not usable"; accel=(-accel kvm -cpu host) ;;
  *) die "KUBE_IPVS_VM_ACCEL must be tcg or kvm" ;;
esac
DEBUG=${KUBE_IPVS_VM_DEBUG:-0}
append="console=ttyS0 panic=-1 rdinit=/init net.ifnames=0 tsc=reliable no_timer_check i8042.noaux i8042.nokbd i8042.nopnp"
append+=" cryptomgr.notests mitigations=off audit=0 ${KUBE_IPVS_VM_APPEND:-}"
if [[ $DEBUG == 1 ]]; then append+=" loglevel=7"; else append+=" quiet loglevel=0"; fi
qemu=("$QEMU" -nodefaults -no-user-config -nographic -no-reboot -machine pc "${accel[@]}" ${KUBE_IPVS_VM_QEMU_EXTRA:-}
  -m "$MEM" -smp "$CPUS"
  -kernel "$BOOT_KERNEL" -initrd "$INITRD" -append "$append"
  -serial "file:$WORK/console.log" -monitor none
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$CTL,mount_tag=ctl,security_model=none,multidevs=remap"
  -device virtio-serial-pci,id=vser
  -chardev "pipe,id=cout,path=$WORK/stdout" -device virtserialport,bus=vser.0,nr=1,chardev=cout,name=stdout
  -chardev "pipe,id=cerr,path=$WORK/stderr" -device virtserialport,bus=vser.0,nr=2,chardev=cerr,name=stderr
  -device virtio-rng-pci)
for i in "${!RW_DIRS[@]}"; do
  qemu+=(-virtfs "local,path=${RW_DIRS[$i]},mount_tag=rw$i,security_model=none,multidevs=remap")
done
case ${KUBE_IPVS_VM_NET:-none} in
  none) ;;
  user) qemu+=(-netdev user,id=n0,net=10.0.2.0/24,host=10.0.2.2 -device virtio-net-pci,netdev=n0,romfile=) ;;
  # An existing tap device (the caller made it, e.g. in a network namespace of its own, and runs
  # vm.sh there): the guest's eth0 is its other end, 10.0.2.15/24 via 10.0.2.2 as with user.
  tap)
    tap=${KUBE_IPVS_VM_TAP:-}
    [[ -n $tap ]] || die "KUBE_IPVS_VM_NET=tap needs KUBE_IPVS_VM_TAP (the tap device's name)"
    [[ -e /sys/class/net/$tap/tun_flags ]] || die "KUBE_IPVS_VM_TAP=$tap: no such tap device in this network namespace"
    qemu+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device virtio-net-pci,netdev=n0,romfile=) ;;
  *) die "KUBE_IPVS_VM_NET must be none, user or tap" ;;
esac

# Stream the command's output while the guest runs; the cats see EOF when qemu
# exits (it holds the only write ends).
cat "$WORK/stdout.out" &
cat_out=$!
cat "$WORK/stderr.out" >&2 &
cat_err=$!
t0=$(date +%s.%N)
[[ $DEBUG == 1 ]] && note "qemu: ${qemu[*]}"
"${qemu[@]}" </dev/null >"$WORK/qemu.log" 2>&1 &
QEMU_PID=$!
timed_out=0
# watchdog: kill qemu after TIMEOUT seconds
(
  exec </dev/null >/dev/null 2>&1
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" &
  sp=$!
  wait "$sp"
  kill "$QEMU_PID" && : >"$WORK/timed-out"
) &
watchdog=$!
qemu_rc=0
wait "$QEMU_PID" || qemu_rc=$?
QEMU_PID=
kill "$watchdog" 2>/dev/null || true
wait "$watchdog" 2>/dev/null || true
[[ -e $WORK/timed-out ]] && timed_out=1
# qemu is gone; if it never opened a fifo, a cat is still blocked in open():
# open+close a write end (O_RDWR does not block) so every cat reaches EOF.
for f in "$WORK/stdout.out" "$WORK/stderr.out"; do exec {fd}<>"$f"; exec {fd}>&-; done
wait "$cat_out" "$cat_err" 2>/dev/null || true
t_end=$(date +%s.%N)

show_console() {
  printf '%s: ---- guest console (last 40 lines) ----\n' "$PROG" >&2
  tail -n 40 "$WORK/console.log" >&2 2>/dev/null || true
  printf '%s: ---- qemu ----\n' "$PROG" >&2
  tail -n 20 "$WORK/qemu.log" >&2 2>/dev/null || true
}
if ((timed_out)); then
  show_console
  printf '%s: error: guest timed out after %ss (use --timeout)\n' "$PROG" "$TIMEOUT" >&2
  exit 124
fi
if [[ ! -s $CTL/rc ]]; then
  show_console
  die "guest did not report an exit status (qemu exit $qemu_rc)"
fi
rc=$(<"$CTL/rc")
[[ $rc =~ ^[0-9]+$ ]] || die "guest reported a bad exit status '$rc'"
[[ $DEBUG == 1 ]] && show_console
if [[ -e $CTL/started ]]; then
  t_start=$(stat -c %.9Y "$CTL/started")
  t_done=$(stat -c %.9Y "$CTL/rc")
  note "$(LC_ALL=C awk -v a="$t0" -v b="$t_start" -v c="$t_done" -v d="$t_end" -v r="$rc" -v k="$KVER" \
    'BEGIN { printf "kernel %s: boot-to-command %.1fs, command %.1fs, total %.1fs, exit %d", k, b - a, c - b, d - a, r }')"
fi
exit "$rc"
