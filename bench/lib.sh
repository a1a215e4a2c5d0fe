# shellcheck shell=bash
# Shared helpers of the bench scripts (sourced). Each bench prints its results
# as lines
#   RESULT<TAB>bench<TAB>what<TAB>ours<TAB>peer<TAB>ratio<TAB>note
# which bench/run.sh gathers into one table. Absolute numbers on these shared
# machines are noise; the ratio against a peer measured in the same run is the
# result.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO_DIR/build}
PWRU=${PWRU:-$BUILD_DIR/pwru}

now() { echo "${EPOCHREALTIME/,/.}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
log() { echo "bench: $*" >&2; }

# median of the numbers on stdin (one a line)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# column COL of a results file (one round a line): its median, its total
column_median() { awk -v c="$2" '{ print $c }' "$1" | median; }
column_total() { awk -v c="$2" '{ s += $c } END { print s + 0 }' "$1"; }
# a / b with 3 decimals; "n/a" when b is 0 or either is not a number
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0 || a !~ /^[0-9.e+-]+$/) print "n/a"; else printf "%.3f", a / b }'; }

# result BENCH WHAT OURS PEER RATIO NOTE
result() { printf 'RESULT\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }

need() {  # need TOOL...: exits 77 (skipped) with the reason when one is missing
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || { echo "SKIPPED: $t is not installed (scripts/install-deps.sh)"; exit 77; }
  done
}
need_root() { [ "$(id -u)" -eq 0 ] || { echo "SKIPPED: needs root (BPF, netns)"; exit 77; }; }

# The VM benches' first step: the guest kernel and initramfs, fetched once and
# cached. Exits 77 (skipped) when the VM cannot be had, 1 on an error.
vm_prepare() {
  "$REPO_DIR/tests/vm/run-in-vm.sh" --prepare >&2
  local rc=$?
  [ "$rc" -eq 77 ] && { echo "SKIPPED: the VM cannot be had (see above)"; exit 77; }
  [ "$rc" -eq 0 ] || exit 1
}

# "run_time_ns run_cnt" (kernel.bpf_stats_enabled=1) summed over the BPF
# programs whose ids the JSON array in file $1 lists.
bpf_prog_stats() {
  bpftool prog show -j 2>/dev/null | jq -r --slurpfile ids "$1" '
    [ .[] | select(.id as $i | $ids[0] | index($i)) ] |
    "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}

# The load of the machine, recorded with the numbers (other builds share it).
load_note() { uptime | sed 's/.*load average: /load /'; }

# The flood of the event-path benches: netns $NS_A (10.78.0.1, fva) -> $NS_B
# (10.78.0.2, fvb), where iptables drops UDP to port 9, so that every packet
# takes the same path (the same number of events). The neighbour entry is
# static: no ARP in the middle of a count. The caller deletes the two netns.
flood_pair() {
  ip netns add "$NS_A" && ip netns add "$NS_B" &&
    ip link add fva netns "$NS_A" type veth peer name fvb netns "$NS_B" &&
    ip -n "$NS_A" addr add 10.78.0.1/24 dev fva && ip -n "$NS_B" addr add 10.78.0.2/24 dev fvb &&
    ip -n "$NS_A" link set fva up && ip -n "$NS_B" link set fvb up &&
    ip netns exec "$NS_B" iptables -w 5 -A INPUT -p udp --dport 9 -j DROP &&
    ip -n "$NS_A" neigh replace 10.78.0.2 dev fva nud permanent \
      lladdr "$(ip -n "$NS_B" -o link show fvb | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)"
}
flood() {  # flood N: N datagrams as fast as one python process sends them
  ip netns exec "$NS_A" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
p = b"x" * 32
for _ in range(int(sys.argv[1])):
    s.sendto(p, ("10.78.0.2", 9))' "$1"
}
# settle FILE [PATTERN]: waits until FILE stops growing (0.5 s), prints when it
# last grew; with PATTERN, growth is of the lines matching it
settle() {
  local last=-1 size t_last
  t_last=$(now)
  for _ in $(seq 1200); do
    if [ -n "${2:-}" ]; then size=$(grep -c -- "$2" "$1" 2>/dev/null); else size=$(stat -c %s "$1" 2>/dev/null || echo 0); fi
    if [ "$size" != "$last" ]; then last=$size; t_last=$(now); elif awk -v a="$t_last" -v b="$(now)" 'BEGIN { exit !(b - a > 0.5) }'; then break; fi
    sleep 0.05
  done
  echo "$t_last"
}
