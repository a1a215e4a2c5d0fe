#!/usr/bin/env bash
# The tree follows its .clang-format files: the top one for the C++ tree,
# bpf/.clang-format (kernel style) for the BPF side. Fails naming each file
# that strays and the command that fixes it.
#   tests/format_check.sh SOURCE_DIR
set -euo pipefail
src=$1
cf=$(command -v clang-format-14 || true)
if [ -z "$cf" ]; then
  echo "clang-format-14 is not installed; run 'bash scripts/install-deps.sh test' (the README's test command does)"
  exit 1
fi
cd "$src"
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cc' '*.h' '*.c' |
  while read -r f; do [ -f "$f" ] && echo "$f"; done)
strays=()
for f in "${files[@]}"; do
  if ! "$cf" --dry-run -Werror "$f" >/dev/null 2>&1; then strays+=("$f"); fi
done
if [ "${#strays[@]}" -gt 0 ]; then
  for f in "${strays[@]}"; do
    echo "FAIL: $f is not formatted; run: clang-format-14 -i $f"
    "$cf" --dry-run "$f" 2>&1 | head -6 | sed 's/^/  /'
  done
  exit 1
fi
echo "${#files[@]} files follow .clang-format"
