#!/usr/bin/env bash
# (c) The chart's authz.mode=rbac for real: the agents ask the API server
# (TokenReview, SubjectAccessReview) about the user's own token. The user is
# the service account shop/tracer, bound by RoleBindings to namespace shop
# (and to the chart's pwru-client Role, to reach the agents): it traces a pod
# in shop, and is refused with 403 and a reason for a pod in default and for
# a node-wide trace.
# authz.apiServer is set: there is no kube-proxy here, so the in-cluster
# Service address (KUBERNETES_SERVICE_HOST) is not routed; a real cluster
# leaves it empty.
. "$(dirname "$0")/../scenario-lib.sh"
require "the chart with authz.mode=rbac is accepted" apply_chart --set authz.mode=rbac --set "authz.apiServer=$API_URL"
# chart-render (unlike helm's lookup) makes new certificates on every render:
# restart the agents so that they serve the Secrets just applied.
kc -n pwru rollout restart ds/pwru-agent >/dev/null
check "the agents restart in rbac mode" kc -n pwru rollout status ds/pwru-agent --timeout=180s
TLS_DIR=$(client_tls_dir)

kc apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: ServiceAccount
metadata: {name: tracer, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: trace-pods, namespace: shop}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tracer, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: trace-pods}
subjects: [{kind: ServiceAccount, name: tracer, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: tracer, namespace: pwru}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pwru-client}
subjects: [{kind: ServiceAccount, name: tracer, namespace: shop}]
---
# Reading nodes, so that a node-wide trace gets as far as the agent, which
# must refuse it (nodes/proxy is not granted).
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pwru-test-node-reader}
rules:
  - {apiGroups: [""], resources: [nodes], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: pwru-test-node-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pwru-test-node-reader}
subjects: [{kind: ServiceAccount, name: tracer, namespace: shop}]
YAML
sa_token() {
  local s
  s=$(kc -n shop get sa tracer -o jsonpath='{.secrets[0].name}') && [ -n "$s" ] &&
    kc -n shop get secret "$s" -o jsonpath='{.data.token}' | base64 -d
}
require "the service account's token" wait_until 60 "shop/tracer's token" sa_token
cat >"$WORK/tracer.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: pwru-k8s, cluster: {server: "$API_URL", certificate-authority: "$K8S_DIR/pki/ca.crt"}}]
users: [{name: tracer, user: {token: "$(sa_token)"}}]
contexts: [{name: tracer, context: {cluster: pwru-k8s, user: tracer, namespace: shop}}]
current-context: tracer
EOF
export PLUGIN_KUBECONFIG="$WORK/tracer.kubeconfig"

shop_ip=$(pod_ip shop-web shop)
start_plugin shop --ready-file "$WORK/shop.ready" --output-json pod/shop-web -- 'tcp port 80'
if wait_ready "$WORK/shop.ready" 90; then
  client_get "http://$shop_ip/" || true
  sleep 2
fi
stop_plugin 30
check "rbac: the shop user traces shop/shop-web (exit $PLUGIN_RC; $(tail -2 "$WORK/shop.err" | tr '\n' ' '))" test "$PLUGIN_RC" -eq 0
check "rbac: shop/shop-web's events on node-a" json_events_on "$WORK/shop.out" node-a shop-web

start_plugin default -n default pod/httpd -- 'tcp port 80'
wait_plugin 60
check "rbac: a pod in default is refused (exit $PLUGIN_RC)" test "$PLUGIN_RC" -ne 0 -a "$PLUGIN_RC" -ne 124
check "rbac: one line with 403/forbidden and the reason" \
  test "$(count "$WORK/default.err" 'kubectl-pwru: .*(403|[Ff]orbidden).*(cannot|not allowed|may not)')" -eq 1

start_plugin node node/node-b
wait_plugin 60
check "rbac: a node-wide trace is refused (exit $PLUGIN_RC)" test "$PLUGIN_RC" -ne 0 -a "$PLUGIN_RC" -ne 124
check "rbac: one line with 403 and the agent's reason" \
  test "$(count "$WORK/node.err" 'kubectl-pwru: .*node-b.*(403|[Ff]orbidden).*')" -eq 1
kc delete clusterrolebinding,clusterrole pwru-test-node-reader >/dev/null 2>&1 || true
finish
