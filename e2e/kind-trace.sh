#!/usr/bin/env bash
# Records packet trajectories in a kind cluster while another project's CI
# runs its tests: `start` before the tests, `collect` after them (also when
# they failed). The GitHub Action .github/actions/kind-trace runs exactly this.
#
#   e2e/kind-trace.sh start   [options]   # install the agents, attach, return
#   ... the tests run; kubectl pwru records in the background ...
#   e2e/kind-trace.sh collect [options]   # stop, render, summarize; always exit 0
#
# start: (1) with --install true, `kind load`s the image when asked and
# helm-installs charts/pwru; (2) waits until the pwru agent is Ready on every
# node (on timeout: one line per node whose agent is not, with its pod's
# state); (3) reads the client certificate from the chart's Secret; (4) starts
# `kubectl pwru --output-json` in the background and returns only once every
# target's agent has attached its trace (kubectl-pwru's --ready-file), or fails
# after --attach-timeout with kubectl-pwru's own messages.
# collect: SIGINT to kubectl-pwru and a bounded wait (then SIGKILL), renders the
# text timeline and a summary (events per node, drops with reason, function
# and node, losses per node) from the NDJSON with `kubectl-pwru --report`,
# prints the summary (and appends it to $GITHUB_STEP_SUMMARY when set). It
# never fails: a trace that could not be started or died is a warning line
# (`::warning::` on GitHub) and exit 0.
#
# Options (both modes take them; collect uses --output-dir, --stop-timeout, --plugin):
#   --cluster NAME          kind cluster (kubeconfig context kind-NAME); "" = the current context
#   --output-dir DIR        where the files go (default: pwru-trace)
#   --filter EXPR           pcap filter (default: "" = every packet in the targets' scope)
#   --targets "T ..."       kubectl-pwru targets: pod/NAME, deploy/NAME, node/NAME, ...;
#                           `nodes` = every node of the cluster (node-wide traces)
#   --selector SEL          trace the pods matching this label selector
#   --namespace NS          namespace of the targets (default: the context's)
#   --pwru-options "..."    more kubectl-pwru flags: pwru's --output-* flags,
#                           --output-limit-lines, --max-events, --agent-server-name, ...
#   --max-duration S        the trace's ceiling in seconds (0 = the agents' --max-duration)
#   --install true|false    helm-install the chart (default true)
#   --chart DIR             the chart (default: charts/pwru beside this script)
#   --values FILE           chart values file
#   --image REF             agent image (sets image.repository and image.tag)
#   --load-image true|false `kind load docker-image REF` first (an image the workflow built)
#   --agent-namespace NS    where the agents run (default pwru)
#   --agent-selector SEL    the agent pods' labels (default app.kubernetes.io/name=pwru-agent)
#   --tls-secret NAME       the client certificate Secret (default pwru-client-tls)
#   --ready-timeout S       for every agent to be Ready (default 180)
#   --attach-timeout S      for the trace to be attached on every node (default 120)
#   --stop-timeout S        for kubectl-pwru to exit after SIGINT (default 30)
#   --plugin PATH           kubectl-pwru binary (default: kubectl-pwru on PATH, else the
#                           one in --image, run with docker on the host network)
#
# Files in the output dir: trace.ndjson (the merged timeline, one JSON object
# per event, and node status lines), trace.txt (the same as pwru's text
# table), summary.md, kubectl-pwru.log (its stderr), attached.txt (the nodes
# whose trace was attached), agents.txt (the agent pods per node at start).
# The client key is kept outside it (a temp dir removed once kubectl-pwru has
# read it) so that uploading the dir as an artifact does not publish it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

mode=${1:-}
case $mode in
start | collect) shift ;;
-h | --help | "")
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    [[ -n $mode ]] && exit 0
    exit 2
    ;;
*)
    echo "kind-trace: unknown mode '$mode': use start or collect (see --help)" >&2
    exit 2
    ;;
esac

# A bad option: exit 2 for start; collect never fails the job, it warns.
usage_error() {
    if [[ $mode == collect ]]; then
        [[ ${GITHUB_ACTIONS:-} == true ]] && printf '::warning title=kind-trace::%s\n' "$*"
        printf 'kind-trace: warning: %s; nothing collected\n' "$*" >&2
        exit 0
    fi
    printf 'kind-trace: %s\n' "$*" >&2
    exit 2
}

cluster="" out_dir=pwru-trace filter="" targets="" selector="" namespace="" pwru_options=""
max_duration=0 install=true chart="$here/../charts/pwru" values="" image="" load_image=false
agent_ns=pwru agent_selector=app.kubernetes.io/name=pwru-agent tls_secret=pwru-client-tls
ready_timeout=180 attach_timeout=120 stop_timeout=30 plugin=""
while (($#)); do
    opt=$1
    [[ $# -ge 2 ]] || usage_error "$opt needs a value (see --help)"
    val=$2
    shift 2
    case $opt in
    --cluster) cluster=$val ;;
    --output-dir) out_dir=$val ;;
    --filter) filter=$val ;;
    --targets) targets=$val ;;
    --selector) selector=$val ;;
    --namespace) namespace=$val ;;
    --pwru-options) pwru_options=$val ;;
    --max-duration) max_duration=$val ;;
    --install) install=$val ;;
    --chart) chart=$val ;;
    --values) values=$val ;;
    --image) image=$val ;;
    --load-image) load_image=$val ;;
    --agent-namespace) agent_ns=$val ;;
    --agent-selector) agent_selector=$val ;;
    --tls-secret) tls_secret=$val ;;
    --ready-timeout) ready_timeout=$val ;;
    --attach-timeout) attach_timeout=$val ;;
    --stop-timeout) stop_timeout=$val ;;
    --plugin) plugin=$val ;;
    *) usage_error "unknown option '$opt' (see --help)" ;;
    esac
done
for n in max_duration ready_timeout attach_timeout stop_timeout; do
    [[ ${!n} =~ ^[0-9]+$ ]] || usage_error "--${n//_/-} must be a number of seconds, not '${!n}'"
done
for b in install load_image; do
    [[ ${!b} == true || ${!b} == false ]] || usage_error "--${b//_/-} must be true or false, not '${!b}'"
done

on_github() { [[ ${GITHUB_ACTIONS:-} == true ]]; }
log() { printf 'kind-trace: %s\n' "$*" >&2; }
warn() {
    if on_github; then printf '::warning title=kind-trace::%s\n' "$*"; fi
    printf 'kind-trace: warning: %s\n' "$*" >&2
}
# A start failure: one line saying what is wrong, kept for collect's summary.
fail() {
    if on_github; then printf '::error title=kind-trace::%s\n' "$*"; fi
    printf 'kind-trace: error: %s\n' "$*" >&2
    printf '%s\n' "$*" >>"$out_dir/start-error.txt"
    exit 1
}

mkdir -p "$out_dir/.kind-trace" 2>/dev/null || usage_error "cannot create the output dir '$out_dir'"
out_dir=$(cd "$out_dir" && pwd)
state="$out_dir/.kind-trace" # pids and exit status; small, harmless in an artifact

kube=(kubectl)
[[ -n $cluster ]] && kube+=(--context "kind-$cluster")

# The plugin binary: given, recorded by start (collect uses the same), on
# PATH, or (start) the one in the agent image, run with Docker on the host's
# network: the image is built for Debian, a CI runner may be another system.
if [[ -z $plugin && -s $state/plugin ]]; then plugin=$(<"$state/plugin"); fi
if [[ -z $plugin ]]; then plugin=$(command -v kubectl-pwru || true); fi
if [[ -z $plugin && $mode == start && -n $image ]] && command -v docker >/dev/null; then
    plugin="$state/kubectl-pwru-in-docker"
    tmp_root=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
    kube_mounts=()
    IFS=: read -r -a kube_files <<<"${KUBECONFIG:-$HOME/.kube/config}"
    for f in "${kube_files[@]}"; do [[ -n $f ]] && kube_mounts+=(-v "$f:$f:ro"); done
    # --init forwards collect's SIGINT to kubectl-pwru; same paths inside and out.
    {
        echo '#!/usr/bin/env bash'
        printf 'exec docker run --rm --init --network host --user %q -e KUBECONFIG=%q' "$(id -u):$(id -g)" \
            "${KUBECONFIG:-$HOME/.kube/config}"
        printf ' %q' "${kube_mounts[@]}" -v "$out_dir:$out_dir" -v "$tmp_root:$tmp_root" --entrypoint kubectl-pwru "$image"
        echo ' "$@"'
    } >"$plugin"
    chmod +x "$plugin"
fi

# ---------------------------------------------------------------- start ----

# Every node's agent pod Ready, or one line per node that has none.
wait_for_agents() {
    local deadline=$((SECONDS + ready_timeout)) nodes pods missing node line
    while :; do
        nodes=$("${kube[@]}" get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>"$state/kubectl.err") ||
            fail "cannot list the cluster's nodes: $(tr '\n' ' ' <"$state/kubectl.err")"
        [[ -n $nodes ]] || fail "the cluster has no nodes"
        # node <TAB> pod <TAB> phase <TAB> Ready condition <TAB> container waiting/terminated reasons
        pods=$("${kube[@]}" get pods -n "$agent_ns" -l "$agent_selector" -o jsonpath='{range .items[*]}{.spec.nodeName}{"\t"}{.metadata.name}{"\t"}{.status.phase}{"\t"}{range .status.conditions[?(@.type=="Ready")]}{.status}{end}{"\t"}{range .status.containerStatuses[*]}{.state.waiting.reason}{.state.terminated.reason}{" "}{end}{"\n"}{end}' 2>"$state/kubectl.err") ||
            fail "cannot list the agent pods ($agent_selector in namespace $agent_ns): $(tr '\n' ' ' <"$state/kubectl.err")"
        missing=()
        while read -r node; do
            # Any Ready agent pod on the node will do (a rolling update has two).
            awk -F'\t' -v n="$node" '$1 == n && $4 == "True" { ok = 1 } END { exit !ok }' <<<"$pods" ||
                missing+=("$node")
        done <<<"$nodes"
        ((${#missing[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            "${kube[@]}" get pods -n "$agent_ns" -o wide >"$out_dir/agents.txt" 2>&1 || true
            cat "$out_dir/agents.txt" >&2
            local why=() pod phase reasons
            for node in "${missing[@]}"; do
                line=$(awk -F'\t' -v n="$node" '$1 == n' <<<"$pods" | head -n1)
                if [[ -z $line ]]; then
                    why+=("node $node: no agent pod (does the DaemonSet tolerate its taints and match it?)")
                else
                    IFS=$'\t' read -r _ pod phase _ reasons <<<"$line"
                    why+=("node $node: pod $agent_ns/$pod is $phase${reasons:+ (${reasons% })}, not Ready")
                fi
            done
            local IFS=';'
            fail "the pwru agent did not become ready within ${ready_timeout} s on ${#missing[@]} node(s): ${why[*]}; see kubectl -n $agent_ns describe pod and logs"
        fi
        sleep 2
    done
    "${kube[@]}" get pods -n "$agent_ns" -l "$agent_selector" -o wide >"$out_dir/agents.txt" 2>&1 || true
    log "the pwru agent is ready on $(wc -l <<<"$nodes") node(s): $(tr '\n' ' ' <<<"$nodes")"
}

install_chart() {
    local helm_args=(upgrade --install pwru "$chart" --namespace "$agent_ns" --create-namespace)
    command -v helm >/dev/null || fail "helm not found on PATH (or run with --install false on a cluster that has the chart)"
    [[ -n $cluster ]] && helm_args+=(--kube-context "kind-$cluster")
    [[ -n $values ]] && helm_args+=(--values "$values")
    if [[ -n $image ]]; then
        # REF = REPOSITORY[:TAG]; a digest (@sha256:...) stays in the repository.
        local repo=$image tag=""
        if [[ $image != *@* && ${image##*/} == *:* ]]; then
            repo=${image%:*}
            tag=${image##*:}
        fi
        helm_args+=(--set "image.repository=$repo")
        [[ -n $tag ]] && helm_args+=(--set "image.tag=$tag")
        if [[ $load_image == true ]]; then
            command -v kind >/dev/null || fail "--load-image true needs kind on PATH"
            log "kind load docker-image $image"
            kind load docker-image "$image" ${cluster:+--name "$cluster"} >&2 ||
                fail "kind load docker-image $image failed (is the image built on this runner?)"
        fi
    fi
    log "helm ${helm_args[*]}"
    helm "${helm_args[@]}" >&2 || fail "helm could not install $chart into namespace $agent_ns (see above)"
}

# The chart's client certificate, in the layout kubectl-pwru's --tls-dir reads.
extract_tls() {
    local dir=$1 key file
    for key in tls.crt tls.key ca.crt; do
        file="$dir/$key"
        "${kube[@]}" get secret -n "$agent_ns" "$tls_secret" -o "jsonpath={.data.${key//./\\.}}" 2>"$state/kubectl.err" |
            base64 -d >"$file" 2>/dev/null || true
        [[ -s $file ]] || fail "cannot read $key of Secret $agent_ns/$tls_secret: $(tr '\n' ' ' <"$state/kubectl.err")(is the chart installed with its client certificate?)"
    done
}

start() {
    if [[ -s $state/pid && ! -e $state/exit ]] && kill -0 "$(<"$state/pid")" 2>/dev/null; then
        # Not through fail: the running trace's dir must not say it never started.
        log "error: a trace started earlier still runs in $out_dir (pid $(<"$state/pid")): collect it first, or use another --output-dir"
        exit 1
    fi
    rm -f "$out_dir/start-error.txt" "$out_dir/attached.txt" "$state/pid" "$state/exit" "$state/exit.tmp"
    [[ -n $plugin && -x $plugin ]] || fail "kubectl-pwru not found (put it on PATH or pass --plugin PATH)"
    command -v kubectl >/dev/null || fail "kubectl not found on PATH"
    [[ $install == true ]] && install_chart
    wait_for_agents

    local tls
    tls=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/kind-trace-tls.XXXXXX")
    # shellcheck disable=SC2064  # expand now: the dir of this run
    trap "rm -rf '$tls'" EXIT
    extract_tls "$tls"

    local args=(--agent-namespace "$agent_ns" --agent-selector "$agent_selector" --tls-dir "$tls"
        --output-json --ready-file "$out_dir/attached.txt")
    [[ -n $cluster ]] && args+=(--context "kind-$cluster")
    [[ -n $namespace ]] && args+=(-n "$namespace")
    [[ -n $selector ]] && args+=(-l "$selector")
    ((max_duration > 0)) && args+=(--max-duration "$max_duration")
    local t node tlist=()
    read -r -a tlist <<<"$targets"
    for t in "${tlist[@]}"; do
        if [[ $t == nodes ]]; then
            for node in $("${kube[@]}" get nodes -o jsonpath='{.items[*].metadata.name}'); do args+=("node/$node"); done
        else
            args+=("$t")
        fi
    done
    [[ -n $targets || -n $selector ]] || fail "nothing to trace: give --targets (pod/NAME, node/NAME, nodes, ...) or --selector"
    local opts=()
    read -r -a opts <<<"$pwru_options"
    args+=("${opts[@]}" -- "$filter")

    printf '%s\n' "$plugin" >"$state/plugin"
    log "kubectl-pwru ${args[*]}"
    # A session of its own (setsid), so that it outlives this step; the small
    # shell around it records its exit status for collect (written whole:
    # temp file, then rename).
    # shellcheck disable=SC2016  # expanded by the inner shell
    setsid bash -c 'set -m; "$@" & echo $! >"$0/pid"; wait $!; echo $? >"$0/exit.tmp"; mv "$0/exit.tmp" "$0/exit"' "$state" \
        "$plugin" "${args[@]}" >"$out_dir/trace.ndjson" 2>"$out_dir/kubectl-pwru.log" </dev/null &
    local deadline=$((SECONDS + attach_timeout))
    while [[ ! -s $out_dir/attached.txt ]]; do
        if [[ -e $state/exit ]]; then
            fail "kubectl-pwru exited (status $(<"$state/exit")) before the trace was attached on every node: $(tail -n 5 "$out_dir/kubectl-pwru.log" | tr '\n' ' ')"
        fi
        if ((SECONDS >= deadline)); then
            [[ -s $state/pid ]] && kill -INT "$(<"$state/pid")" 2>/dev/null
            fail "the trace was not attached on every node within ${attach_timeout} s: $(tail -n 5 "$out_dir/kubectl-pwru.log" | tr '\n' ' ')"
        fi
        sleep 0.2
    done
    local attached
    attached=$(tr '\n' ' ' <"$out_dir/attached.txt")
    # Targets that cannot be traced are one "kubectl-pwru: ..." line each,
    # printed before the ready file; the others are traced all the same.
    if grep -q '^kubectl-pwru: ' "$out_dir/kubectl-pwru.log"; then
        fail "the trace is attached on ${attached}only; not traced: $(grep '^kubectl-pwru: ' "$out_dir/kubectl-pwru.log" | tr '\n' ' ')(the attached nodes are recorded; collect as usual)"
    fi
    log "tracing; attached on: $attached"
    log "run '$0 collect --output-dir $out_dir' to stop it and summarize"
}

# -------------------------------------------------------------- collect ----

collect() {
    local problems=() pid="" status=""
    [[ -s $state/pid ]] && pid=$(<"$state/pid")
    if [[ -s $out_dir/start-error.txt && -z $pid ]]; then
        problems+=("the trace was not started: $(head -n1 "$out_dir/start-error.txt")")
    elif [[ -s $out_dir/start-error.txt ]]; then
        problems+=("start: $(head -n1 "$out_dir/start-error.txt")")
    elif [[ -z $pid ]]; then
        problems+=("no trace to collect in $out_dir (did start run with this --output-dir?)")
    fi
    if [[ -n $pid ]]; then
        if [[ -e $state/exit ]]; then
            status=$(<"$state/exit")
            problems+=("the trace had already ended before collect: kubectl-pwru exited with status $status$( ((status > 128)) && echo " (signal $((status - 128)))"); see kubectl-pwru.log")
        else
            kill -INT "$pid" 2>/dev/null || true
            local deadline=$((SECONDS + stop_timeout))
            while [[ ! -e $state/exit ]] && ((SECONDS < deadline)); do sleep 0.2; done
            if [[ ! -e $state/exit ]]; then
                kill -KILL "$pid" 2>/dev/null || true
                problems+=("kubectl-pwru did not stop within ${stop_timeout} s of SIGINT and was killed; the timeline may miss its last events")
                deadline=$((SECONDS + 5))
                while [[ ! -e $state/exit ]] && ((SECONDS < deadline)); do sleep 0.2; done
            else
                status=$(<"$state/exit")
                # 1: some target was not traced to its end (its own line is in the log).
                [[ $status == 0 ]] || problems+=("kubectl-pwru exited with status $status: $(grep -m3 '^kubectl-pwru: .*:' "$out_dir/kubectl-pwru.log" | tr '\n' ' ')")
            fi
        fi
    fi

    local summary="$out_dir/summary.md"
    printf '### kubectl pwru: where the packets went\n\nNo timeline was recorded.\n' >"$summary"
    if [[ -e $out_dir/trace.ndjson && -n $plugin && -x $plugin ]]; then
        "$plugin" --report "$out_dir/trace.ndjson" --report-log "$out_dir/kubectl-pwru.log" \
            --report-text "$out_dir/trace.txt" >"$state/summary.md" 2>"$state/report.err" &&
            mv "$state/summary.md" "$summary" ||
            problems+=("kubectl-pwru --report failed: $(tr '\n' ' ' <"$state/report.err")")
        [[ -s $state/report.err ]] && cat "$state/report.err" >&2
    elif [[ -e $out_dir/trace.ndjson ]]; then
        problems+=("kubectl-pwru not found: no summary (trace.ndjson is in $out_dir)")
    fi
    if ((${#problems[@]})); then
        {
            echo
            echo "**Tracing problems** (the tests' result is not affected):"
            for p in "${problems[@]}"; do echo "- $p"; done
        } >>"$summary"
    fi
    cat "$summary"
    [[ -n ${GITHUB_STEP_SUMMARY:-} ]] && cat "$summary" >>"$GITHUB_STEP_SUMMARY"
    for p in "${problems[@]}"; do warn "$p"; done
    log "files in $out_dir: $(find "$out_dir" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f ')"
    return 0
}

if [[ $mode == start ]]; then
    start
else
    # Never fail the user's job: whatever goes wrong here is a warning.
    collect || warn "collect failed (exit $?); the files so far are in $out_dir"
    exit 0
fi
