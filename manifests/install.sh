#!/usr/bin/env bash
# Installs manifests/pwru.yaml (charts/pwru rendered with its defaults) without
# helm. The committed file carries no keys (its Secrets say <generated>): this
# script makes a fresh CA, the agents' server certificate (pwru-agent and the
# Service's names) and the kubectl-pwru client certificate with openssl, puts
# them in, and applies the result.
#   manifests/install.sh [--dry-run] [KUBECTL ARGS...]   (e.g. --context kind-pwru)
# --dry-run prints the filled manifest instead of applying it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dry_run=false
if [ "${1:-}" = --dry-run ]; then dry_run=true; shift; fi
days=365
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj /CN=pwru-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
issue() {  # issue NAME CN EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
issue server pwru-agent "subjectAltName=DNS:pwru-agent,DNS:pwru-agent.pwru.svc,DNS:pwru-agent.pwru.svc.cluster.local
extendedKeyUsage=serverAuth,clientAuth
keyUsage=digitalSignature,keyEncipherment"
issue client kubectl-pwru "extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment"

b64() { base64 -w0 < "$1"; }
# Fill each Secret's three keys: pwru-agent-tls gets the server pair, pwru-client-tls the client's.
awk -v ca="$(b64 ca.crt)" -v scrt="$(b64 server.crt)" -v skey="$(b64 server.key)" \
    -v ccrt="$(b64 client.crt)" -v ckey="$(b64 client.key)" '
  /^---/ { secret = "" }
  /^  name: pwru-agent-tls$/ { secret = "server" }
  /^  name: pwru-client-tls$/ { secret = "client" }
  /^  ca\.crt: <generated>$/ { sub(/<generated>/, ca) }
  /^  tls\.crt: <generated>$/ { sub(/<generated>/, secret == "server" ? scrt : ccrt) }
  /^  tls\.key: <generated>$/ { sub(/<generated>/, secret == "server" ? skey : ckey) }
  { print }
' "$here/pwru.yaml" > pwru.yaml
if grep -q '<generated>' pwru.yaml; then
  echo "install.sh: a <generated> placeholder is left in pwru.yaml; is manifests/pwru.yaml from scripts/render-manifests.sh?" >&2
  exit 1
fi
if $dry_run; then
  cat pwru.yaml
  exit 0
fi
kubectl "$@" create namespace pwru --dry-run=client -o yaml | kubectl "$@" apply -f -
kubectl "$@" apply -f pwru.yaml
echo "install.sh: applied; client certificate: kubectl -n pwru get secret pwru-client-tls"
