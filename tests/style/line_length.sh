#!/usr/bin/env bash
# Fails when a C++ or proto source line is longer than the 100 columns .clang-format states,
# naming each such line. Usage: line_length.sh <source root>
set -euo pipefail
root=${1:?usage: line_length.sh <source root>}
cd "$root"
long=$(find base model server client proto bench tests \
         \( -name '*.cc' -o -name '*.h' -o -name '*.proto' \) -type f -print0 |
       xargs -0 awk 'length($0) > 100 { printf "%s:%d: %d columns\n", FILENAME, FNR, length($0) }')
if [ -n "$long" ]; then
  printf '%s\n' "$long"
  echo "$(printf '%s\n' "$long" | wc -l) lines exceed 100 columns; reflow them (clang-format --lines=N:N FILE)" >&2
  exit 1
fi
echo "every source line fits in 100 columns"
