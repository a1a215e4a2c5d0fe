#!/usr/bin/env bash
# Every BPF header compiles on its own, with only the includes it names: none
# relies on what another header included before it (libbpf-tools' rule).
#   tests/bpf_headers_alone.sh CLANG SOURCE_DIR
set -euo pipefail
clang=$1 src=$2
arch_inc=/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
failed=0
for h in "$src"/bpf/*.bpf.h "$src"/bpf/include/*.h; do
  if ! out=$(echo "#include \"$(basename "$h")\"" |
    "$clang" -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I"$src/bpf/include" -I"$src/bpf" \
      -I"$arch_inc" -fsyntax-only -x c - 2>&1); then
    echo "FAIL: ${h#"$src"/} does not compile alone:"
    echo "$out" | head -5
    failed=1
  fi
done
[ "$failed" -eq 0 ] && echo "every BPF header compiles alone"
exit "$failed"
