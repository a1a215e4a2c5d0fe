#!/usr/bin/env bash
# manifests/install.sh as a user runs it (KUBECONFIG set, the machine's real
# kubectl, validation on), then file mode with the chart's default identity:
# the generated client certificate (CN kubectl-pwru) traces a pod; the agents
# refuse a certificate of the same CA with another name. Removes the install.
. "$(dirname "$0")/../scenario-lib.sh"

export KUBECONFIG="$K8S_DIR/pki/admin.kubeconfig"
# A fresh install, as a new user has (install.sh over a running install makes
# new certificates that running agents only serve once restarted).
kc delete namespace pwru --ignore-not-found --wait=true --timeout=120s >/dev/null
in_cp "$K8S_SRC/manifests/install.sh" >"$WORK/install.out" 2>&1 || true
require "manifests/install.sh applies manifests/pwru.yaml ($(grep -iE 'error|invalid|unknown' "$WORK/install.out" | head -2 | tr '\n' ' '))" \
  grep -q 'install.sh: applied' "$WORK/install.out"
check "the agent DaemonSet is Ready on both nodes" wait_until 180 "the pwru-agent DaemonSet" agents_ready
agents_ready || { kc -n pwru get pods -o wide; kc -n pwru describe pods | grep -A5 -iE 'warning|error' | head -20; }

TLS_DIR=$(client_tls_dir)
start_plugin default-identity --ready-file "$WORK/ready" --max-duration 20 pod/httpd -- 'tcp port 80'
if wait_ready "$WORK/ready" 90; then
  check "file mode: a GET to httpd while traced" client_get "http://$(pod_ip httpd)/"
  stop_plugin 30
  check "file mode: kubectl-pwru exits 0 (exit $PLUGIN_RC)" test "$PLUGIN_RC" -eq 0
  check "file mode: node-b's events in the exit summary" summary_has_events "$WORK/default-identity.err" node-b
else
  stop_plugin 10
  check "file mode: the default identity attached on node-b ($(tail -2 "$WORK/default-identity.err" | tr '\n' ' '))" false
fi

# A client certificate of another CA (the cluster's, not the install's):
# refused at the TLS handshake, one line, the trace ends with an error.
other="$WORK/other-tls"
mkdir -p "$other"
cp "$K8S_DIR/pki/alice.crt" "$other/tls.crt"
cp "$K8S_DIR/pki/alice.key" "$other/tls.key"
cp "$TLS_DIR/ca.crt" "$other/ca.crt"
TLS_DIR=$other start_plugin other-identity --max-duration 10 pod/httpd -- 'tcp port 80'
wait_plugin 60
check "file mode: a client certificate the agents' CA did not sign is refused (exit $PLUGIN_RC)" test "$PLUGIN_RC" -ne 0
check "file mode: the refusal is one line naming node-b's agent" has "$WORK/other-identity.err" 'kubectl-pwru: ' 'node-b'

kc delete namespace pwru --wait=true --timeout=120s >/dev/null
check "the install is removed (namespace pwru gone)" sh -c "! nsenter --net=/run/netns/$NS_CP kubectl --kubeconfig '$KUBECONFIG' get namespace pwru >/dev/null 2>&1"
finish
