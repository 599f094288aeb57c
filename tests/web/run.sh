#!/usr/bin/env bash
# Runs the signature pad's end-to-end test (pad_e2e.mjs) in Debian's Chromium against a built
# srn-server. Usage: tests/web/run.sh SERVER_BINARY [OUT_DIR]
# Needs node (>= 20), npm and chromium (apt-get install nodejs npm chromium); installs the pinned
# playwright-core with `npm ci` on first use (no browser download). The signatures are read from
# $SRN_DATA_DIR (default: ../shared/data beside the repository); without them the test skips
# with exit code 77 (ctest's SKIP_RETURN_CODE, as the repository's other skipping tests).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
server=${1:?usage: tests/web/run.sh SERVER_BINARY [OUT_DIR]}
out=${2:-${TMPDIR:-/tmp}/srn-web-e2e}
[ -x "$server" ] || { echo "run.sh: no executable server at $server" >&2; exit 1; }
server=$(cd "$(dirname "$server")" && pwd)/$(basename "$server")
mkdir -p "$out"
out=$(cd "$out" && pwd)
data=${SRN_DATA_DIR:-$repo/../shared/data}
case $data in /*) ;; *) data=$PWD/$data ;; esac
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
cd "$here"
exec node pad_e2e.mjs --server="$server" --data="$data" --out="$out" --skip_exit_code=77
