#!/usr/bin/env bash
# Fills krew/pwru.yaml for a release: version, each platform's archive URL and
# sha256. Run at release time on the archives to be uploaded:
#   krew/release.sh [--repo OWNER/NAME] [--manifest FILE] VERSION ARCHIVE...
# VERSION: vX.Y.Z (CMake's project version with a v). Each ARCHIVE is named
# kubectl-pwru_VERSION_linux_ARCH.tar.gz and holds the kubectl-pwru binary at
# its top (make one: tar -czf kubectl-pwru_v0.1.0_linux_amd64.tar.gz -C build/kubectl-plugin kubectl-pwru).
# --repo: the GitHub repository the release is on (default $GITHUB_REPOSITORY,
# else the manifest's current one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
manifest=$here/pwru.yaml
repo=${GITHUB_REPOSITORY:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) repo=$2; shift 2 ;;
    --manifest) manifest=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--repo OWNER/NAME] [--manifest FILE] VERSION ARCHIVE..." >&2; exit 2; }
version=$1; shift
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "release.sh: version '$version' is not vX.Y.Z" >&2; exit 2; }
if [ -z "$repo" ]; then
  repo=$(sed -n 's#^  homepage: https://github.com/##p' "$manifest")
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cp "$manifest" "$tmp"
sed -i -E "s#^(  version: ).*#\1$version#; s#^(  homepage: ).*#\1https://github.com/$repo#" "$tmp"
for archive in "$@"; do
  name=$(basename "$archive")
  [[ $name =~ ^kubectl-pwru_${version}_linux_(amd64|arm64)\.tar\.gz$ ]] \
    || { echo "release.sh: $name is not kubectl-pwru_${version}_linux_{amd64,arm64}.tar.gz" >&2; exit 2; }
  arch=${BASH_REMATCH[1]}
  tar -tzf "$archive" | grep -qx 'kubectl-pwru' \
    || { echo "release.sh: $archive has no kubectl-pwru at its top" >&2; exit 2; }
  sum=$(sha256sum "$archive" | cut -d' ' -f1)
  # The platform block whose arch is $arch: its uri and sha256 lines.
  awk -v arch="$arch" -v uri="https://github.com/$repo/releases/download/$version/$name" -v sum="$sum" '
    /^    - selector:/ { cur = "" }
    /^          arch: / { cur = $2 }
    cur == arch && /^      uri: / { print "      uri: " uri; next }
    cur == arch && /^      sha256: / { print "      sha256: \"" sum "\""; next }
    { print }
  ' "$tmp" > "$tmp.new" && mv "$tmp.new" "$tmp"
  echo "release.sh: linux/$arch $sum"
done
mv "$tmp" "$manifest"
trap - EXIT
echo "release.sh: wrote $manifest ($version)"
