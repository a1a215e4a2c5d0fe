#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from a trap
# Runs one command inside a qemu VM booted on Debian's bookworm-backports 6.12
# kernel (kprobes, kprobe.multi/fprobe, BTF), for the code paths that the host's
# own kernel cannot exercise.
#
#   tests/vm/run-in-vm.sh [--timeout S] [--share DIR]... -- COMMAND [ARGS...]
#   tests/vm/run-in-vm.sh --prepare      # fetch the kernel, build the initramfs, nothing else
#
# The guest mounts the host's root read-only over virtio-9p with a tmpfs overlay on
# top and chroots into it, so COMMAND runs the project's own binaries and the host's
# bash/iproute2/iptables, in the same working directory as here. No network leaves the
# VM (-nic none). COMMAND's stdout and stderr (merged, through a pipe as under CI)
# stream to our stdout; the guest kernel's console goes to our stderr, prefixed.
#
# The guest has its own empty /tmp, /run and /dev/shm, so the host's are not seen
# through the root share. The working directory and every --share DIR (the files
# COMMAND reads: a checkout, a build dir) are therefore exported on their own when
# they lie under one of those, and mounted at the same path in the guest (read-only,
# with a tmpfs overlay, as the root). Paths under /proc, /sys or the rest of /dev
# cannot be shared: refused before the VM boots.
#
# Exit status: COMMAND's; 77 when qemu or the kernel cannot be had (nothing ran);
# 124 on timeout (qemu is killed); 125 when the VM failed before reporting a status.
#
# Cached (reused between runs) under ${PWRU_VM_CACHE:-/var/cache/pwru-vm}: the private
# apt lists, the unpacked kernel package, the initramfs (rebuilt when its inputs
# change). Environment knobs: PWRU_VM_KERNEL_PKG (exact package name),
# PWRU_VM_REFRESH=1 (ask the mirror for a newer kernel), PWRU_VM_MEM (MiB, 2048),
# PWRU_VM_SMP (2), PWRU_VM_APPEND (extra kernel arguments), PWRU_VM_KEEP_LOG=DIR
# (keep the raw serial logs there).
set -euo pipefail

PROG=run-in-vm
SUITE=bookworm-backports
# Debian's amd64 flavour of 6.12, e.g. linux-image-6.12.95+deb12-amd64.
KERNEL_PKG_RE='^linux-image-6\.12\.[0-9]+\+deb12(\.[0-9]+)?-amd64$'
# Modules the guest loads (with their dependencies, in order): veth for the tests,
# the 9p/overlay stack for the host-root share, and what the host's iptables (nft
# and legacy backends, with NAT for the DNAT case) and tc need.
GUEST_MODULES=(
  netfs 9pnet 9pnet_virtio 9p overlay
  veth
  crc32c_generic nfnetlink nf_tables nft_compat x_tables xt_tcpudp xt_mark xt_comment
  nf_reject_ipv4 nft_reject nft_reject_ipv4 nft_reject_inet ipt_REJECT
  ip_tables iptable_filter
  nf_conntrack nf_nat nft_chain_nat nft_nat xt_nat iptable_nat
  sch_ingress cls_bpf
)
EXIT_SKIP=77
EXIT_TIMEOUT=124
EXIT_VMFAIL=125

log() { echo "$PROG: $*" >&2; }
skip() { echo "SKIPPED: $*" >&2; exit "$EXIT_SKIP"; }
die() { log "$*"; exit "$EXIT_VMFAIL"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
  echo "usage: $0 [--timeout SECONDS] [--share DIR]... -- COMMAND [ARGS...]" >&2
  echo "       $0 --prepare" >&2
  exit 2
}

TIMEOUT=600
PREPARE_ONLY=0
SHARE_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) [ $# -ge 2 ] || usage; TIMEOUT=$2; shift 2 ;;
    --timeout=*) TIMEOUT=${1#--timeout=}; shift ;;
    --share) [ $# -ge 2 ] || usage; SHARE_ARGS+=("$2"); shift 2 ;;
    --share=*) SHARE_ARGS+=("${1#--share=}"); shift ;;
    --prepare) PREPARE_ONLY=1; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || usage
if [ "$PREPARE_ONLY" -eq 0 ] && [ $# -eq 0 ]; then usage; fi

T_START=$(now)

# ---------------------------------------------------------------------------
# What the guest must see beyond its root share (see the header). Decided before
# anything is fetched or booted, so a path that cannot be shared costs nothing.

# The guest's own mounts that hide the host's directories of the same name.
guest_private() {  # $1 = absolute, resolved path; 0 when the guest hides it
  case "$1" in
    /tmp|/tmp/*|/run|/run/*|/dev/shm|/dev/shm/*) return 0 ;;
  esac
  return 1
}
SHARES=()  # resolved directories to export, none inside another
add_share() {  # $1 = a directory (or a file: its directory) the command needs
  local p=$1 q i
  [ -e "$p" ] || { log "--share $p: no such file or directory"; exit 2; }
  [ -d "$p" ] || p=$(dirname -- "$p")
  p=$(cd -- "$p" && pwd -P) || { log "--share $1: cannot enter it"; exit 2; }
  case "$p" in
    /proc|/proc/*|/sys|/sys/*|/dev|/dev/*)
      if ! guest_private "$p"; then
        log "$p is under /proc, /sys or /dev, which the guest mounts itself: move the checkout and build dir elsewhere (e.g. under /var/tmp)"
        exit 2
      fi ;;
  esac
  case "$p" in
    *$'\n'*|*,*) log "$p: a directory whose name has a newline or a comma cannot be shared with the guest (qemu's -virtfs): move it"; exit 2 ;;
  esac
  guest_private "$p" || return 0  # the root share shows it
  for i in "${!SHARES[@]}"; do
    q=${SHARES[$i]}
    case "$p/" in "$q"/*) return 0 ;; esac                # inside a share already
    case "$q/" in "$p"/*) unset 'SHARES[i]' ;; esac        # contains a share: replaces it
  done
  SHARES=("${SHARES[@]}" "$p")
}
if [ "$PREPARE_ONLY" -eq 0 ]; then
  add_share "$PWD"
  for s in "${SHARE_ARGS[@]}"; do add_share "$s"; done
fi

# ---------------------------------------------------------------------------
# Host tools
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || skip "qemu-system-x86_64 is not installed (scripts/install-deps.sh installs qemu-system-x86)"
BUSYBOX=$(command -v busybox || true)
# The initramfs has no libraries: the busybox must be static (busybox-static).
if [ -z "$BUSYBOX" ] || ! { LC_ALL=C ldd "$BUSYBOX" 2>&1 || true; } | grep -q "not a dynamic"; then
  skip "a static busybox is not installed (scripts/install-deps.sh installs busybox-static)"
fi
for t in cpio gzip xz modinfo dpkg-deb apt-get apt-cache flock; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/install-deps.sh installs what the vm layer needs)"
done

# ---------------------------------------------------------------------------
# Cache
CACHE=${PWRU_VM_CACHE:-/var/cache/pwru-vm}
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  if [ -z "${PWRU_VM_CACHE:-}" ]; then
    CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pwru-vm
    mkdir -p "$CACHE" || skip "no writable cache directory (set PWRU_VM_CACHE)"
  else
    skip "cache directory $CACHE is not writable"
  fi
fi
CACHE=$(readlink -f "$CACHE")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pwru-vm.XXXXXX")
QEMU_PID=""
WATCHDOG_PID=""
STREAM_PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill -TERM "$QEMU_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$QEMU_PID" 2>/dev/null || true
  fi
  if [ -n "$WATCHDOG_PID" ]; then kill "$WATCHDOG_PID" 2>/dev/null || true; fi
  for p in "${STREAM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${PWRU_VM_KEEP_LOG:-}" ]; then
    if mkdir -p "$PWRU_VM_KEEP_LOG"; then cp -f "$TMP"/*.log "$PWRU_VM_KEEP_LOG"/ 2>/dev/null || true; fi
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------------------
# Kernel: bookworm-backports' 6.12 image, downloaded through the mirror the host's
# apt already uses (read from its sources at run time), unpacked into the cache.

# Prints "URI KEYRING" for the first Debian archive (not -security) in the host's
# apt sources.
host_mirror() {
  local f
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -r "$f" ] || continue
      awk '
        function flush() {
          if (uris != "" && types ~ /(^| )deb( |$)/ && suites !~ /-security/ && suites ~ /[a-z]/) {
            n = split(uris, u, " "); if (key == "") key = "-"
            for (i = 1; i <= n; i++) print u[i], key
          }
          uris = ""; types = ""; suites = ""; key = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        { line = $0; sub(/^[^:]*:[ \t]*/, "", line); f = tolower($1) }
        f == "uris:" { uris = line } f == "types:" { types = line }
        f == "suites:" { suites = line } f == "signed-by:" { key = line }
        END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue
      awk '
        $1 != "deb" { next }
        { key = "-"; i = 2
          if ($2 ~ /^\[/) {
            for (; i <= NF; i++) {
              if ($i ~ /^\[?signed-by=/) { key = $i; sub(/^\[?signed-by=/, "", key); sub(/\]$/, "", key) }
              if ($i ~ /\]$/) { i++; break }
            }
          }
          if ($(i + 1) ~ /-security/) next
          print $i, key }' "$f"
    done
  } | grep -E '^(https?|file)://' | grep -v -- '-security' | head -n 1
}

APT_DIR=$CACHE/apt
APT_LIST=$APT_DIR/sources.list
apt_opts() {
  echo -o "Dir::Etc::SourceList=$APT_LIST" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" \
    -o "Dir::State::status=$APT_DIR/status" -o APT::Sandbox::User=root \
    -o Acquire::Languages=none -o Acquire::Retries=2 -o Acquire::http::Timeout=30 \
    -o Acquire::https::Timeout=30 -o Debug::NoLocking=1
}

newest_cached_kernel() {
  local d best=""
  for d in "$CACHE"/kernels/*/.complete; do
    [ -e "$d" ] || continue
    d=$(dirname "$d")
    best=$(printf '%s\n%s\n' "$best" "$(basename "$d")" | grep -v '^$' | sort -V | tail -n 1)
  done
  echo "$best"
}

fetch_kernel() {  # $1 = package name or "" (newest); prints the package name
  local pkg=$1 mirror uri key
  mirror=$(host_mirror) || true
  [ -n "$mirror" ] || { log "no Debian mirror found in the host's apt sources"; return 1; }
  read -r uri key <<<"$mirror"
  if [ "$key" = "-" ] || [ ! -r "$key" ]; then key=/usr/share/keyrings/debian-archive-keyring.gpg; fi
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  : >"$APT_DIR/status"
  echo "deb [signed-by=$key] $uri $SUITE main" >"$APT_LIST"
  log "updating the private apt lists for $SUITE (mirror from the host's apt sources)"
  # shellcheck disable=SC2046
  if ! timeout 300 apt-get -q $(apt_opts) update >"$TMP/apt.log" 2>&1; then
    sed 's/^/  /' "$TMP/apt.log" >&2; log "apt-get update failed"; return 1
  fi
  if [ -z "$pkg" ]; then
    # shellcheck disable=SC2046
    pkg=$(apt-cache $(apt_opts) search --names-only '^linux-image-6\.12\.' 2>/dev/null |
      awk '{print $1}' | grep -E "$KERNEL_PKG_RE" | sort -V | tail -n 1)
    [ -n "$pkg" ] || { log "no linux-image-6.12.*+deb12-amd64 package in $SUITE"; return 1; }
  fi
  if [ -e "$CACHE/kernels/$pkg/.complete" ]; then echo "$pkg"; return 0; fi
  log "downloading $pkg (about 106 MB, once; cached in $CACHE)"
  local dl=$CACHE/download.$$
  rm -rf "$dl"; mkdir -p "$dl"
  # shellcheck disable=SC2046
  if ! (cd "$dl" && timeout 900 apt-get -q $(apt_opts) download "$pkg") >"$TMP/apt.log" 2>&1; then
    sed 's/^/  /' "$TMP/apt.log" >&2; rm -rf "$dl"; log "apt-get download $pkg failed"; return 1
  fi
  local out=$CACHE/kernels/$pkg
  rm -rf "$out"; mkdir -p "$out"
  if ! dpkg-deb -x "$dl"/*.deb "$out"; then rm -rf "$dl" "$out"; die "dpkg-deb -x failed for $pkg"; fi
  rm -rf "$dl"
  touch "$out/.complete"
  # Keep only this kernel.
  local d
  for d in "$CACHE"/kernels/*; do [ "$d" = "$out" ] || rm -rf "$d"; done
  echo "$pkg"
}

exec 9>"$CACHE/.lock"
flock -w 1800 9 || die "could not lock $CACHE/.lock"

KPKG=${PWRU_VM_KERNEL_PKG:-}
if [ -n "$KPKG" ]; then
  [ -e "$CACHE/kernels/$KPKG/.complete" ] || KPKG=$(fetch_kernel "$KPKG") ||
    skip "could not obtain the kernel package $PWRU_VM_KERNEL_PKG from the Debian mirror"
else
  KPKG=$(newest_cached_kernel)
  if [ -z "$KPKG" ] || [ "${PWRU_VM_REFRESH:-0}" = 1 ]; then
    if new=$(fetch_kernel ""); then KPKG=$new
    elif [ -z "$KPKG" ]; then skip "could not obtain a 6.12 kernel from $SUITE through the host's Debian mirror"
    else log "refresh failed; using the cached $KPKG"
    fi
  fi
fi
KROOT=$CACHE/kernels/$KPKG
VMLINUZ=$(find "$KROOT/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit 2>/dev/null)
[ -n "$VMLINUZ" ] || die "no vmlinuz in $KROOT"
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR=$KROOT/lib/modules/$KVER
[ -d "$MODDIR" ] || die "no modules for $KVER in $KROOT"

# ---------------------------------------------------------------------------
# Initramfs: static busybox, the modules (decompressed, in dependency order) and
# /init. Rebuilt when the kernel, the module list, busybox or /init change.

write_init() {
  cat <<'INIT'
#!/bin/busybox sh
# /init of the pwru vm layer (generated by tests/vm/run-in-vm.sh)
/bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
read -r up _ </proc/uptime
echo "@@PWRU-VM-INIT uptime=$up@@"
hostname pwru-vm

fail() { echo "pwru-vm-init: $*"; echo "@@PWRU-VM-EXIT rc=125@@"; sleep 0.3; poweroff -f; }

for m in $(cat /modules/order); do
  insmod "/modules/$m.ko" || echo "pwru-vm-init: insmod $m failed"
done

mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
  fail "cannot mount the host root over 9p"
mount -t tmpfs -o size=1G,mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "cannot mount the overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
mount -t bpf bpf $R/sys/fs/bpf
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
# The host directories under the guest's own /tmp, /run, /dev/shm that the command
# needs (run-in-vm.sh --share), each read-only with its own tmpfs overlay.
i=0
while read -r tag dir; do
  [ -n "$tag" ] || continue
  i=$((i + 1))
  mkdir -p /share/$i /rw/share$i/upper /rw/share$i/work "$R$dir"
  mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose "$tag" /share/$i ||
    fail "cannot mount the host's $dir over 9p"
  mount -t overlay overlay -o lowerdir=/share/$i,upperdir=/rw/share$i/upper,workdir=/rw/share$i/work "$R$dir" ||
    fail "cannot mount the overlay on $dir"
done </pwru-vm/shares
mkdir -p $R/run/pwru-vm
cp /pwru-vm/cmd.sh $R/run/pwru-vm/cmd.sh

ulimit -n 65536
# The command's output goes through a pipe (as under CI) to the second serial port.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "@@PWRU-VM-START@@"
( env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb LANG=C.UTF-8 PWRU_VM=1 \
    chroot $R /bin/bash /run/pwru-vm/cmd.sh </dev/null 2>&1
  echo $? >/rc ) | cat >/dev/ttyS1
rc=$(cat /rc 2>/dev/null || echo 125)
echo "@@PWRU-VM-EXIT rc=$rc@@"
sleep 0.3
poweroff -f
INIT
}

# Prints the modules to load, dependencies first (skips built-in ones).
module_order() {
  local -A seen=()
  local -a order=()
  visit() {
    local m=$1 f deps d
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    if grep -qE "/${m//_/[_-]}\.ko(\.[a-z]+)?$" "$MODDIR/modules.builtin" 2>/dev/null; then return 0; fi
    f=$(find "$MODDIR/kernel" -name "$m.ko*" -print -quit)
    if [ -z "$f" ]; then
      f=$(find "$MODDIR/kernel" -name "${m//_/-}.ko*" -print -quit)
    fi
    [ -n "$f" ] || die "module $m not found in $KPKG"
    deps=$(modinfo -F depends "$f")
    for d in ${deps//,/ }; do visit "$d"; done
    # Soft dependencies ("pre: crc32c") are loaded first when a module of that
    # name exists; the rest are in GUEST_MODULES.
    for d in $(modinfo -F softdep "$f" | sed -n 's/.*pre:[[:space:]]*//p' | sed 's/[[:space:]]*post:.*//'); do
      if [ -n "$(find "$MODDIR/kernel" -name "$d.ko*" -print -quit)" ]; then visit "$d"; fi
    done
    order+=("$m=$f")
  }
  local m
  for m in "${GUEST_MODULES[@]}"; do visit "$m"; done
  printf '%s\n' "${order[@]}"
}

INITRD_DIR=$CACHE/initramfs
INPUT_HASH=$( {
  echo "$KPKG"
  printf '%s\n' "${GUEST_MODULES[@]}"
  write_init
  sha256sum "$BUSYBOX" | awk '{print $1}'
} | sha256sum | cut -c1-16)
INITRD=$INITRD_DIR/$KVER-$INPUT_HASH.cpio.gz
if [ ! -s "$INITRD" ]; then
  log "building the initramfs ($KVER, busybox, ${#GUEST_MODULES[@]} modules + dependencies)"
  st=$TMP/initramfs
  mkdir -p "$st/bin" "$st/modules" "$st/pwru-vm"
  cp "$BUSYBOX" "$st/bin/busybox"
  write_init >"$st/init"
  chmod 0755 "$st/init"
  : >"$st/modules/order"
  module_order >"$TMP/modules"
  while IFS='=' read -r name file; do
    case "$file" in
      *.xz) xz -dc "$file" >"$st/modules/$name.ko" ;;
      *.zst) zstd -qdc "$file" >"$st/modules/$name.ko" ;;
      *.gz) gzip -dc "$file" >"$st/modules/$name.ko" ;;
      *) cp "$file" "$st/modules/$name.ko" ;;
    esac
    echo "$name" >>"$st/modules/order"
  done <"$TMP/modules"
  mkdir -p "$INITRD_DIR"
  (cd "$st" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) |
    gzip -1 >"$INITRD.tmp.$$"
  rm -f "$INITRD_DIR"/*.cpio.gz
  mv "$INITRD.tmp.$$" "$INITRD"
  rm -rf "$st"
fi
flock -u 9
exec 9>&-

if [ "$PREPARE_ONLY" -eq 1 ]; then
  log "ready: kernel $KVER ($KPKG), initramfs $INITRD"
  exit 0
fi

# ---------------------------------------------------------------------------
# The command, as a second (appended) initramfs archive: the kernel unpacks
# concatenated archives, so the cached one stays as it is.
mkdir -p "$TMP/cmd/pwru-vm"
{
  echo "# generated by tests/vm/run-in-vm.sh"
  printf 'cd -- %q || { echo "run-in-vm: the guest cannot see %q (pass it with --share)"; exit 125; }\n' \
    "$(pwd -P)" "$(pwd -P)"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$TMP/cmd/pwru-vm/cmd.sh"
# "TAG DIR" per extra 9p export, read by /init.
VIRTFS=()
: >"$TMP/cmd/pwru-vm/shares"
for i in "${!SHARES[@]}"; do
  echo "pwrushare$i ${SHARES[$i]}" >>"$TMP/cmd/pwru-vm/shares"
  VIRTFS+=(-virtfs "local,path=${SHARES[$i]},mount_tag=pwrushare$i,security_model=none,readonly=on,multidevs=remap")
done
(cd "$TMP/cmd" && find . -print0 | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 >"$TMP/cmd.cpio.gz"
cat "$INITRD" "$TMP/cmd.cpio.gz" >"$TMP/initrd.cpio.gz"

# ---------------------------------------------------------------------------
# Boot. ttyS0: kernel console and /init's markers; ttyS1: the command's output.
CONSOLE=$TMP/console.log
OUTPUT=$TMP/output.log
: >"$CONSOLE"; : >"$OUTPUT"
APPEND="console=ttyS0 panic=-1 quiet rcupdate.rcu_expedited=1 ${PWRU_VM_APPEND:-}"
[ ${#SHARES[@]} -eq 0 ] || log "sharing with the guest (hidden by its own /tmp, /run, /dev/shm): ${SHARES[*]}"
log "booting $KVER under qemu (TCG, ${PWRU_VM_SMP:-2} vCPUs, ${PWRU_VM_MEM:-2048} MiB; timeout ${TIMEOUT}s): $*"
T_BOOT=$(now)
"$QEMU" -nodefaults -no-user-config -machine q35,accel=tcg -cpu max \
  -smp "${PWRU_VM_SMP:-2}" -m "${PWRU_VM_MEM:-2048}" \
  -display none -no-reboot -nic none \
  -kernel "$VMLINUZ" -initrd "$TMP/initrd.cpio.gz" -append "$APPEND" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  "${VIRTFS[@]}" \
  -chardev file,id=con,path="$CONSOLE" -serial chardev:con \
  -chardev file,id=out,path="$OUTPUT" -serial chardev:out \
  </dev/null >"$TMP/qemu.log" 2>&1 &
QEMU_PID=$!

# The watchdog polls, so that nothing of it outlives qemu (a leftover `sleep`
# would hold our stdout open).
( exec >/dev/null 2>&1
  deadline=$((SECONDS + TIMEOUT))
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      touch "$TMP/timed-out"; kill -TERM "$QEMU_PID"; sleep 5; kill -KILL "$QEMU_PID"; exit 0
    fi
    sleep 0.5
  done ) &
WATCHDOG_PID=$!

# The command's output, as it comes.
tail -n +1 -s 0.2 -f --pid="$QEMU_PID" "$OUTPUT" | sed -u 's/\r$//' &
STREAM_PIDS+=($!)
# The console: markers are timed and hidden, the rest goes to stderr.
tail -n +1 -s 0.2 -f --pid="$QEMU_PID" "$CONSOLE" | while IFS= read -r line; do
  line=${line//$'\r'/}
  case "$line" in
    *@@PWRU-VM-INIT*) echo "$(now) $line" >"$TMP/init-seen" ;;
    *@@PWRU-VM-START@@*) now >"$TMP/start-seen" ;;
    *@@PWRU-VM-EXIT*) now >"$TMP/exit-seen" ;;
    ""|*"reboot: Power down"*) ;;
    *) echo "[guest console] $line" >&2 ;;
  esac
done &
STREAM_PIDS+=($!)

set +e
wait "$QEMU_PID"
QEMU_RC=$?
set -e
QEMU_PID=""
kill "$WATCHDOG_PID" 2>/dev/null || true
wait "$WATCHDOG_PID" 2>/dev/null || true
WATCHDOG_PID=""
for p in "${STREAM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
STREAM_PIDS=()
T_END=$(now)

summary() {
  local msg
  msg="total $(elapsed "$T_START" "$T_END") s"
  if [ -e "$TMP/init-seen" ]; then
    local t up
    read -r t up <"$TMP/init-seen"
    up=${up#*uptime=}; up=${up%@@}
    msg+=", boot to /init $(elapsed "$T_BOOT" "$t") s (guest uptime ${up} s)"
  fi
  if [ -e "$TMP/start-seen" ] && [ -e "$TMP/exit-seen" ]; then
    msg+=", command $(elapsed "$(cat "$TMP/start-seen")" "$(cat "$TMP/exit-seen")") s"
  fi
  log "$msg"
}

RC=$(tr -d '\r' <"$CONSOLE" | grep -ao '@@PWRU-VM-EXIT rc=[0-9]*@@' | tail -n 1 | grep -o '[0-9]*' || true)
if [ -e "$TMP/timed-out" ]; then
  summary
  log "TIMEOUT: the VM did not finish within ${TIMEOUT}s; qemu was killed"
  exit "$EXIT_TIMEOUT"
fi
if [ -z "$RC" ]; then
  summary
  log "the VM stopped (qemu exit $QEMU_RC) without reporting the command's status"
  sed 's/^/  qemu: /' "$TMP/qemu.log" >&2
  exit "$EXIT_VMFAIL"
fi
summary
exit "$RC"
