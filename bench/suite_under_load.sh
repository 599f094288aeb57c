#!/usr/bin/env bash
# Runs the whole test suite of a build N times in a row while both cores are kept busy by
# stress-ng, and stops at the first failure: the check that no test depends on an idle machine.
#
#   bench/suite_under_load.sh BUILD_DIR [N]     (N defaults to 20)
#
# Needs stress-ng (Debian: apt-get install stress-ng). Prints one RESULT line:
#   RESULT suite_under_load runs=N passed=yes|no tests=T load=stress-ng-cpu-2 seconds=S
set -euo pipefail

build="${1:?usage: bench/suite_under_load.sh BUILD_DIR [N]}"
runs="${2:-20}"
if ! command -v stress-ng >/dev/null; then
  echo "stress-ng is not installed: apt-get install stress-ng" >&2
  exit 2
fi
if [[ ! -f "$build/CTestTestfile.cmake" ]]; then
  echo "$build is not a configured build directory: cmake -S . -B $build && cmake --build $build" >&2
  exit 2
fi

tests=$(ctest --test-dir "$build" -N | sed -n 's/^Total Tests: //p')
stress-ng --cpu "$(nproc)" --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true' EXIT

start=$(date +%s)
passed=yes
ctest --test-dir "$build" --repeat "until-fail:$runs" -j"$(nproc)" --output-on-failure \
  || passed=no
seconds=$(( $(date +%s) - start ))
echo "RESULT suite_under_load runs=$runs passed=$passed tests=$tests" \
  "load=stress-ng-cpu-$(nproc) seconds=$seconds"
[[ "$passed" == yes ]]
