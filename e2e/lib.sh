# shellcheck shell=bash
# Shell helpers for the e2e scripts: two network namespaces joined by a veth,
# iptables rules inside them, one background process, and a cleanup that runs
# on every exit path. Source it from a bash script that uses `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_require_root
#   e2e_init pwru-demo-           # traps + sweep of crashed runs' leftovers
#   e2e_netns_pair                # E2E_NS_A/B, E2E_ADDR_A/B
#   e2e_iptables "$E2E_NS_B" -A INPUT -p tcp --dport 80 -j DROP
#
# Rules for traffic: addresses only inside the namespaces made here, nothing
# routed from the root namespace; every wait is bounded.

# shellcheck disable=SC2034  # E2E_BG_PID, E2E_BG_STATUS, E2E_NS_* etc. are for the caller
E2E_PREFIX=""
E2E_BG_PID=""
E2E_BG_STATUS=""
E2E_NETNS=()      # namespaces we created
E2E_RULES=()      # "ns<TAB>iptables args to delete" (tab-separated words)
E2E_BG_PIDS=()    # background process groups we started
E2E_TMPDIRS=()    # temp dirs to remove

e2e_log() { printf '%s: %s\n' "${E2E_NAME:-e2e}" "$*" >&2; }
e2e_die() { e2e_log "error: $*"; exit 1; }
# Runs a command; on failure names it (its own stderr is already shown).
e2e_run() { "$@" || e2e_die "command failed (exit $?): $*"; }

e2e_require_root() {
    [[ $(id -u) -eq 0 ]] || e2e_die "must run as root (network namespaces, iptables, eBPF)"
    local tool
    for tool in ip iptables timeout; do
        command -v "$tool" >/dev/null || e2e_die "'$tool' not found in PATH"
    done
}

# Installs the traps and removes leftovers of earlier runs that were killed
# before their trap could run. PREFIX names everything this script creates.
e2e_init() {
    E2E_PREFIX=$1
    trap e2e_cleanup EXIT
    # A signal must end the script through `exit`, so the EXIT trap runs.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    e2e_sweep_stale
}

# Deletes PREFIX<pid>-* namespaces and temp dirs whose pid is gone (a live pid
# may be a concurrent run). Veths, addresses and rules go with the namespaces.
e2e_sweep_stale() {
    local path name pid
    for path in /run/netns/"$E2E_PREFIX"* /tmp/"$E2E_PREFIX"*; do
        [[ -e $path ]] || continue # the unmatched glob itself
        name=${path##*/}
        pid=${name#"$E2E_PREFIX"}
        pid=${pid%%-*}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        [[ $pid -eq $$ ]] && continue
        kill -0 "$pid" 2>/dev/null && continue
        e2e_log "removing stale $path (pid $pid is gone)"
        if [[ $path == /run/netns/* ]]; then
            ip netns del "$name" || true
        else
            rm -rf -- "$path"
        fi
    done
}

# Idempotent; runs from the EXIT trap, so it must not stop at the first error.
e2e_cleanup() {
    local rc=$? pid entry ns i args
    set +e
    for pid in "${E2E_BG_PIDS[@]}"; do
        # Its own process group (see e2e_start_bg): take anything it spawned too.
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    E2E_BG_PIDS=()
    for ((i = ${#E2E_RULES[@]} - 1; i >= 0; i--)); do
        entry=${E2E_RULES[i]}
        ns=${entry%%$'\t'*}
        [[ -e /run/netns/$ns ]] || continue
        IFS=$'\t' read -r -a args <<<"${entry#*$'\t'}"
        ip netns exec "$ns" iptables -w 5 "${args[@]}" 2>/dev/null ||
            e2e_log "warning: could not delete rule in $ns: ${args[*]}"
    done
    E2E_RULES=()
    for ns in "${E2E_NETNS[@]}"; do
        [[ -e /run/netns/$ns ]] && { ip netns del "$ns" || e2e_log "warning: could not delete netns $ns"; }
    done
    E2E_NETNS=()
    for entry in "${E2E_TMPDIRS[@]}"; do rm -rf -- "$entry"; done
    E2E_TMPDIRS=()
    return "$rc"
}

# Creates $E2E_PREFIX<pid>-a and -b joined by a veth created directly across
# them (never in the root netns). Sets E2E_NS_A, E2E_NS_B, E2E_ADDR_A, E2E_ADDR_B.
e2e_netns_pair() {
    local x=$(($$ % 250 + 1)) # differs between concurrent runs: pwru sees all namespaces
    E2E_NS_A="${E2E_PREFIX}$$-a"
    E2E_NS_B="${E2E_PREFIX}$$-b"
    E2E_ADDR_A="10.198.$x.1"
    E2E_ADDR_B="10.198.$x.2"
    # Registered before they exist: cleanup skips names that are not there.
    E2E_NETNS+=("$E2E_NS_A" "$E2E_NS_B")
    e2e_run ip netns add "$E2E_NS_A"
    e2e_run ip netns add "$E2E_NS_B"
    local ns
    for ns in "$E2E_NS_A" "$E2E_NS_B"; do
        # No IPv6 link-local/DAD chatter in the traces (best effort).
        ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1 \
            net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
    done
    e2e_run ip -n "$E2E_NS_A" link add veth-a type veth peer name veth-b netns "$E2E_NS_B"
    e2e_run ip -n "$E2E_NS_A" addr add "$E2E_ADDR_A/24" dev veth-a
    e2e_run ip -n "$E2E_NS_B" addr add "$E2E_ADDR_B/24" dev veth-b
    for ns in "$E2E_NS_A" "$E2E_NS_B"; do e2e_run ip -n "$ns" link set lo up; done
    e2e_run ip -n "$E2E_NS_A" link set veth-a up
    e2e_run ip -n "$E2E_NS_B" link set veth-b up
}

# e2e_iptables NS -A|-I CHAIN ...: adds a rule and remembers its -D form.
e2e_iptables() {
    local ns=$1
    shift
    ip netns exec "$ns" iptables -w 5 "$@" || e2e_die "iptables $* in $ns failed"
    local args=("$@") i
    for i in "${!args[@]}"; do
        case ${args[i]} in
        -A | --append) args[i]=-D ;;
        -I | --insert)
            args[i]=-D
            # "-I CHAIN N": -D would read N as a rule number.
            [[ ${args[i + 2]:-} =~ ^[0-9]+$ ]] && unset 'args[i+2]'
            ;;
        *) continue ;;
        esac
        local IFS=$'\t'
        E2E_RULES+=("$ns"$'\t'"${args[*]}")
        return 0
    done
}

# e2e_tcp_attempt NS ADDR PORT SECS: one TCP connect from inside NS.
# Returns 0 connected, 124 timed out (dropped), anything else refused/failed.
e2e_tcp_attempt() {
    local rc=0
    # shellcheck disable=SC2016  # $0 $1 are expanded by the inner bash
    ip netns exec "$1" timeout "$4" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null || rc=$?
    return "$rc"
}

# e2e_start_bg OUT ERR CMD...: starts CMD in the background, stdout/stderr to
# files; sets E2E_BG_PID. `set -m` gives it its own process group and, unlike
# a plain `&` in a script, does not start it with SIGINT ignored. setpriv's
# parent-death signal kills it if this script is SIGKILLed (no trap runs then).
e2e_start_bg() {
    local out=$1 err=$2 pdeath=()
    shift 2
    setpriv --help 2>/dev/null | grep -q -- --pdeathsig && pdeath=(setpriv --pdeathsig KILL --)
    set -m
    "${pdeath[@]}" "$@" >"$out" 2>"$err" &
    E2E_BG_PID=$!
    set +m
    E2E_BG_PIDS+=("$E2E_BG_PID")
}

# e2e_wait_for_file FILE SECS PID: 0 once FILE exists; 1 if PID exited first
# or SECS passed.
e2e_wait_for_file() {
    local file=$1 deadline=$((SECONDS + $2)) pid=$3
    while ((SECONDS < deadline)); do
        [[ -e $file ]] && return 0
        kill -0 "$pid" 2>/dev/null || { [[ -e $file ]]; return; }
        sleep 0.1
    done
    [[ -e $file ]]
}

# e2e_wait_for_text FILE TEXT SECS: 0 once FILE contains TEXT, 1 after SECS.
e2e_wait_for_text() {
    local deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    grep -qF -- "$2" "$1" 2>/dev/null
}

# e2e_stop_bg PID SECS: SIGINT, then waits up to SECS; after that SIGKILL to
# its group. Sets E2E_BG_STATUS to the exit status, or "timeout". Not for use
# in $(...): a subshell cannot wait for the parent's job.
e2e_stop_bg() {
    local pid=$1 deadline=$((SECONDS + $2)) rc=0
    kill -INT "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        E2E_BG_STATUS=timeout
    else
        wait "$pid" || rc=$?
        E2E_BG_STATUS=$rc
    fi
    local keep=() p
    for p in "${E2E_BG_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    E2E_BG_PIDS=("${keep[@]}")
}

# Sets E2E_TMP to a new temp dir, removed by the cleanup.
e2e_mktemp() {
    E2E_TMP=$(mktemp -d "/tmp/${E2E_PREFIX}$$-XXXXXX")
    E2E_TMPDIRS+=("$E2E_TMP")
}
