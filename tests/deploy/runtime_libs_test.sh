#!/usr/bin/env bash
# The runtime image's libraries: every shared library srn-server and srnctl load (ldd) belongs to
# a Debian package that `deploy/install-deps.sh runtime` installs, directly or as a dependency,
# or to an essential package every Debian image has.
#
# Usage: runtime_libs_test.sh <source-dir> <binary>...   Exits 77 (skipped) off Debian.
set -euo pipefail
src=$1
shift
if ! command -v dpkg-query >/dev/null || ! command -v ldd >/dev/null; then
  echo "SKIP: needs dpkg-query and ldd (a Debian machine)"
  exit 77
fi

# The runtime group, read from the script itself.
runtime=$(sed -n '/^runtime_pkgs=(/,/)/p' "$src/deploy/install-deps.sh" | tr -d '()' | sed 's/runtime_pkgs=//')
[ -n "$runtime" ] || { echo "FAIL: no runtime_pkgs=(...) in deploy/install-deps.sh"; exit 1; }

# Its closure over installed packages' Depends/Pre-Depends (alternatives: every one counts), from
# one listing of all installed packages.
declare -A deps_of=()
while read -r pkg deps; do
  deps_of[$pkg]=$deps
done < <(dpkg-query -W -f='${Package}\t${Depends}, ${Pre-Depends}\n' | awk -F'\t' '{
  n = split($2, parts, /[,|]/); out = $1
  for (i = 1; i <= n; i++) {
    d = parts[i]; sub(/\(.*\)/, "", d); sub(/:any/, "", d); gsub(/ /, "", d)
    if (d != "") out = out " " d
  }
  print out
}')
declare -A closure=()
queue=($runtime)
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]%%:*}
  queue=("${queue[@]:1}")
  [ -n "${closure[$p]:-}" ] && continue
  closure[$p]=1
  for d in ${deps_of[$p]:-}; do
    [ -z "${closure[$d]:-}" ] && queue+=("$d")
  done
done
declare -A essential=()
while read -r pkg flag priority; do
  [[ $flag == yes || $priority == required ]] && essential[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${Essential:-no} ${Priority}\n' | awk '{print $1, ($2 == "" ? "no" : $2), $3}')

status=0
checked=0
libs=()
for bin in "$@"; do
  [ -x "$bin" ] || { echo "FAIL: $bin not built"; status=1; continue; }
  # Whole output first: under pipefail, `ldd | grep -q` fails when grep stops reading early.
  linked=$(ldd "$bin")
  if grep -q "not found" <<< "$linked"; then
    echo "FAIL: $bin has unresolved libraries:"; ldd "$bin" | grep "not found"; status=1
  fi
  libs+=($(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'))
done
# Library -> package, trying the path as linked and as resolved, with and without /usr (merged /usr).
declare -A owner=()
candidates=()
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  real=$(readlink -f "$lib")
  candidates+=("$lib" "$real" "/usr${lib#/usr}" "/usr${real#/usr}" "${lib#/usr}" "${real#/usr}")
done
while IFS= read -r line; do
  owner[${line#*: }]=${line%%:*}
done < <(dpkg-query -S $(printf '%s\n' "${candidates[@]}" | sort -u) 2>/dev/null | grep -v '^diversion' | sed 's/:[a-z0-9]*: /: /')
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  real=$(readlink -f "$lib")
  pkg=""
  for c in "$lib" "$real" "/usr${lib#/usr}" "/usr${real#/usr}" "${lib#/usr}" "${real#/usr}"; do
    [ -n "${owner[$c]:-}" ] && { pkg=${owner[$c]}; break; }
  done
  checked=$((checked + 1))
  if [ -z "$pkg" ]; then
    echo "FAIL: $lib belongs to no package"; status=1; continue
  fi
  if [ -z "${closure[$pkg]:-}" ] && [ -z "${essential[$pkg]:-}" ]; then
    echo "FAIL: $lib is in package $pkg, which the runtime group does not install"
    status=1
  fi
done
[ $checked -gt 10 ] || { echo "FAIL: only $checked libraries checked"; status=1; }
[ $status -eq 0 ] && echo "OK: $checked library references covered by:" $runtime
exit $status
