#!/usr/bin/env bash
# Bench 5c: pwru-agent under hostile clients (idle and slow-handshake floods,
# trickled heads on the health port, 10 MB bodies): a good client's /healthz
# times during each, and the agent's RSS and fds before, at peak and after.
# What and why: bench/agent_flood.py.
#
#   bench/agent_flood.sh [--quick]
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root; need openssl python3
AGENT=${AGENT:-$BUILD_DIR/agent/pwru-agent}
[ -x "$AGENT" ] || { echo "SKIPPED: no pwru-agent at $AGENT (build it)"; exit 77; }
exec python3 "$BENCH_DIR/agent_flood.py" --agent "$AGENT" "$@"
