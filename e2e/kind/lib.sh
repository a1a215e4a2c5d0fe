# Shared by the e2e/kind scripts (sourced): logging and the repository root.
# shellcheck shell=bash
# shellcheck disable=SC2034  # used by the scripts that source this
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
log() { echo "[kind-e2e $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[kind-e2e] FAIL: $*" >&2; exit 1; }
need() {
  local t
  for t in "$@"; do command -v "$t" >/dev/null || die "$t is not on PATH (the kind e2e needs docker, kind, helm, kubectl)"; done
}
