# Sourced by tests/k8s/scenarios/*.sh (run inside the cluster's mount
# namespace by k8s-layer.sh run): checks that report what failed, and the
# commands a user of the cluster runs.
# shellcheck shell=bash
# shellcheck disable=SC2034  # PLUGIN_RC and the like are read by the scenarios
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -euo pipefail

SCENARIO=$(basename "$0" .sh)
WORK="$K8S_DIR/scenarios/$SCENARIO"
rm -rf "$WORK" && mkdir -p "$WORK"
PLUGIN="$K8S_BUILD/kubectl-plugin/kubectl-pwru"
CHART_RENDER="$K8S_BUILD/tools/chart-render"
FAILURES=0

# check DESCRIPTION CMD...: one PASS/FAIL line; a failure does not stop the scenario.
check() {
  local what=$1
  shift
  if "$@"; then
    printf 'PASS %s: %s\n' "$SCENARIO" "$what"
  else
    printf 'FAIL %s: %s\n' "$SCENARIO" "$what"
    FAILURES=$((FAILURES + 1))
  fi
}
# require DESCRIPTION CMD...: as check, but the scenario cannot go on without it.
require() {
  check "$@" || true
  ((FAILURES == 0)) || finish
}
finish() {
  if ((FAILURES > 0)); then
    echo "$SCENARIO: $FAILURES check(s) failed; files in $WORK"
    exit 1
  fi
  echo "$SCENARIO: all checks passed"
  exit 0
}
# shellcheck disable=SC2154  # rc is set inside the trap's own text
trap 'rc=$?; [ $rc -ne 0 ] && [ $FAILURES -eq 0 ] && echo "FAIL $SCENARIO: a command failed (exit $rc, line $LINENO)"' EXIT

# has FILE PATTERN...: FILE has a line matching every (extended regex) PATTERN.
has() {
  local f=$1 line
  shift
  while IFS= read -r line; do
    local ok=1 p
    for p in "$@"; do [[ $line =~ $p ]] || { ok=0; break; }; done
    ((ok)) && return 0
  done <"$f"
  return 1
}
# count FILE PATTERN: lines matching.
count() { grep -cE -- "$2" "$1" || true; }

# The client certificate the chart made (Secret pwru-client-tls) as --tls-dir.
client_tls_dir() {
  local dir="$WORK/tls" k
  mkdir -p "$dir"
  for k in tls.crt tls.key ca.crt; do
    kc -n pwru get secret pwru-client-tls -o "jsonpath={.data.${k//./\\.}}" | base64 -d >"$dir/$k"
  done
  echo "$dir"
}

# pwru_plugin ARGS...: kubectl-pwru as the cluster's admin, from the control
# plane's netns (where kubectl runs), with the chart's client certificate.
pwru_plugin() {
  in_cp "$PLUGIN" --kubeconfig "$K8S_DIR/pki/admin.kubeconfig" --tls-dir "$TLS_DIR" "$@"
}

# The DaemonSet's rollout is complete, not only "N pods ready": after a
# template change an old pod still counts as ready until the controller gets to
# its node and replaces it, which would end a trace a scenario has just started.
agents_ready() {
  local want=${#NODES[@]} status pods gen observed desired updated ready available
  status=$(kc -n pwru get ds pwru-agent -o jsonpath='{.metadata.generation} {.status.observedGeneration} {.status.desiredNumberScheduled} {.status.updatedNumberScheduled} {.status.numberReady} {.status.numberAvailable}' 2>/dev/null) || return 1
  read -r gen observed desired updated ready available <<<"$status"
  [ "$observed" = "$gen" ] && [ "$desired" = "$want" ] && [ "$updated" = "$want" ] &&
    [ "$ready" = "$want" ] && [ "$available" = "$want" ] || return 1
  # No pod of an earlier revision still terminating.
  pods=$(kc -n pwru get pods -l app.kubernetes.io/name=pwru-agent -o name 2>/dev/null | wc -l)
  [ "$pods" = "$want" ]
}

# The chart as tests/k8s/values-test.yaml sets it, applied with the real
# kubectl and its validation. EXTRA: more chart-render flags (--set ...).
apply_chart() {
  local out="$WORK/chart.yaml" flags=()
  # The API server's version, for the chart's version-gated fields.
  local usage
  usage=$("$CHART_RENDER" --help 2>&1 || true)
  if [[ $usage == *--kube-version* ]]; then
    flags+=(--kube-version "$(kc version -o json 2>/dev/null | jq -r .serverVersion.gitVersion)")
  fi
  "$CHART_RENDER" -n pwru -f "$K8S_HERE/values-test.yaml" "${flags[@]}" "$@" pwru "$K8S_SRC/charts/pwru" >"$out"
  kc create namespace pwru --dry-run=client -o yaml | kc apply -f - >/dev/null
  kc apply -f "$out" >"$WORK/apply.log" 2>&1 || { cat "$WORK/apply.log"; return 1; }
}

pod_ip() { kc get pod "$1" ${2:+-n "$2"} -o jsonpath='{.status.podIP}'; }

# start_plugin NAME ARGS...: kubectl-pwru in the background (as pwru_plugin),
# stdout NAME.out, stderr NAME.err in $WORK; PLUGIN_PID is kubectl-pwru's own
# pid (nsenter execs it), for SIGINT.
start_plugin() {
  local name=$1
  shift
  nsenter --net=/run/netns/$NS_CP -- "$PLUGIN" --kubeconfig "${PLUGIN_KUBECONFIG:-$K8S_DIR/pki/admin.kubeconfig}" \
    --tls-dir "$TLS_DIR" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PLUGIN_PID=$!
}
# wait_ready FILE SECONDS: the plugin's --ready-file (every target attached).
wait_ready() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$1" ] && return 0
    kill -0 "$PLUGIN_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stop_plugin SECONDS: SIGINT, then the exit code (124 when it did not exit in time).
stop_plugin() {
  kill -INT "$PLUGIN_PID" 2>/dev/null || true
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$PLUGIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PLUGIN_PID" 2>/dev/null; then
    kill -9 "$PLUGIN_PID"
    wait "$PLUGIN_PID" 2>/dev/null || true
    PLUGIN_RC=124
    return 0
  fi
  PLUGIN_RC=0
  wait "$PLUGIN_PID" || PLUGIN_RC=$?
}
# wait_plugin SECONDS: its own exit (e.g. --max-duration), then the exit code.
wait_plugin() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$PLUGIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  stop_plugin 10
}

# client_get http://IP/ [TIMEOUT]: one HTTP GET from the client pod (kubectl
# exec), with busybox nc: the static busybox's wget crashes in getaddrinfo
# (static glibc without its NSS libraries), even for an IP.
client_get() {
  local host=${1#http://}
  host=${host%/}
  local reply
  reply=$(kc exec client -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w ${2:-3} $host 80" 2>/dev/null) || true
  [[ $reply == *"200 OK"* ]]
}
client_get_fails() { ! client_get "$@"; }

# JSON checks on a --output-json file.
json_events_in_time_order() {  # every event's wall_ns >= the previous one's (but those marked late)
  jq -s -e '[.[] | select(.func != null and (.late // false) == false) | .wall_ns] | . as $t | (length > 0) and all(range(1; length); $t[.] >= $t[. - 1])' "$1" >/dev/null
}
json_events_on() {  # json_events_on FILE NODE [POD]: at least one event
  jq -s -e --arg n "$2" --arg p "${3:-}" '[.[] | select(.func != null and .node == $n and ($p == "" or .pod == $p))] | length > 0' "$1" >/dev/null
}
json_drop_on() {  # json_drop_on FILE NODE REASON_REGEX
  jq -s -e --arg n "$2" --arg r "$3" '[.[] | select(.func != null and .node == $n and ((.drop_reason // "") | test($r)))] | length > 0' "$1" >/dev/null
}
# summary_line FILE NODE: the exit summary's "  NODE: N events ..." with N > 0.
summary_has_events() { grep -E "^  $2: [1-9][0-9]* events " "$1" >/dev/null; }
# jq_true ARGS...: jq -e as a check (its output dropped).
jq_true() { jq "$@" >/dev/null; }
