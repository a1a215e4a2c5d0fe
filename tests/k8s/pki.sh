#!/usr/bin/env bash
# The cluster's certificates and kubeconfigs, made with openssl in DIR:
#   tests/k8s/pki.sh DIR
# One CA signs every certificate (the API server's, the kubelets' and the
# users'); the service account tokens get their own RSA key.
set -euo pipefail
# shellcheck source=tests/k8s/lib.sh
. "$(dirname "$0")/lib.sh"
dir=$1
mkdir -p "$dir"
cd "$dir"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pwru-k8s-test-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

# issue NAME SUBJECT EXTENSIONS
issue() {
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
client="extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment"

issue apiserver /CN=kube-apiserver "subjectAltName=IP:$API_IP,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=digitalSignature,keyEncipherment"
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
issue admin "/O=system:masters/CN=admin" "$client"
issue controller-manager /CN=system:kube-controller-manager "$client"
issue scheduler /CN=system:kube-scheduler "$client"
for n in "${NODES[@]}"; do issue "$n" "/O=system:nodes/CN=system:node:$n" "$client"; done
# The RBAC scenario's user: no group, only what a RoleBinding grants.
issue alice /CN=alice "$client"

# kubeconfig NAME: a kubeconfig for certificate NAME.
kubeconfig() {
  cat >"$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pwru-k8s
  cluster:
    server: $API_URL
    certificate-authority: $dir/ca.crt
users:
- name: $1
  user:
    client-certificate: $dir/$1.crt
    client-key: $dir/$1.key
contexts:
- name: pwru-k8s
  context: {cluster: pwru-k8s, user: $1}
current-context: pwru-k8s
EOF
}
for k in admin controller-manager scheduler alice "${NODES[@]}"; do kubeconfig "$k"; done
