#!/usr/bin/env bash
# Puts a `kubectl-pwru` on PATH that runs the one inside IMAGE with docker (the
# image's binary needs Debian bookworm's libraries, which a CI runner lacks):
# host network (the kind API server is 127.0.0.1:PORT), the kubeconfig and /tmp
# (trace.sh's --tls-dir) mounted at the same paths, signals forwarded.
#   e2e/kind/plugin-shim.sh IMAGE DIR      then: PATH=DIR:$PATH
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 IMAGE DIR" >&2; exit 2; }
image=$1 dir=$2
mkdir -p "$dir"
cat > "$dir/kubectl-pwru" <<SHIM
#!/usr/bin/env bash
kubeconfig=\${KUBECONFIG:-\$HOME/.kube/config}
kubeconfig=\${kubeconfig%%:*}
exec docker run --rm -i --network host --user "\$(id -u):\$(id -g)" \\
  -v "\$kubeconfig:\$kubeconfig:ro" -e KUBECONFIG="\$kubeconfig" -v /tmp:/tmp \\
  $image kubectl-pwru "\$@"
SHIM
chmod +x "$dir/kubectl-pwru"
echo "plugin-shim: $dir/kubectl-pwru runs kubectl-pwru from $image"
