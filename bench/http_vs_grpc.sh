#!/usr/bin/env bash
# Verify over HTTP/JSON against Verify over gRPC, side by side on one server: the same requests
# (real SVC2004 signatures, written once by srn-loadgen), the same number of calls in flight, one
# after the other on the same machine.
#
#   bench/http_vs_grpc.sh BUILD_DIR [CONCURRENCY] [SECONDS]     (defaults: 8 calls, 20 s each)
#
# Needs wrk (Debian: apt-get install wrk), a build with -DSRN_BUILD_BENCH=ON and the SVC2004 data
# ($SRN_DATA_DIR, default ../shared/data). Prints one RESULT line:
#   RESULT http_vs_grpc concurrency=C grpc_per_s=G http_per_s=H ratio=H/G ...
set -euo pipefail

build="${1:?usage: bench/http_vs_grpc.sh BUILD_DIR [CONCURRENCY] [SECONDS]}"
concurrency="${2:-8}"
seconds="${3:-20}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
data="${SRN_DATA_DIR:-$here/../../shared/data}"
task2="$data/svc2004/Task2"
server="$build/server/srn-server"
loadgen="$build/bench/srn-loadgen"
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 2; }
[[ -x $loadgen ]] || { echo "no $loadgen: configure with -DSRN_BUILD_BENCH=ON and build" >&2; exit 2; }
[[ -d $task2 ]] || { echo "no SVC2004 data at $task2 (set SRN_DATA_DIR)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$server" --listen=127.0.0.1:0 --metrics_listen= --http_listen=127.0.0.1:0 --store=:memory: \
  --drain_seconds=0 2> "$work/server.log" &
pid=$!
for _ in $(seq 600); do
  grep -q "HTTP on port" "$work/server.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
grpc_port=$(sed -n 's/.* on port \([0-9]*\); metrics.*/\1/p' "$work/server.log")
http_port=$(sed -n 's/.*HTTP on port \([0-9]*\).*/\1/p' "$work/server.log")
[[ -n $grpc_port && -n $http_port ]] || { cat "$work/server.log" >&2; exit 1; }

common=(--target="127.0.0.1:$grpc_port" --rpc=verify --signatures="$task2" --payloads=64)
"$loadgen" "${common[@]}" --http_requests_out="$work/requests.tsv"
"$loadgen" "${common[@]}" --concurrency="$concurrency" --channels=1 --warmup=3 \
  --duration="$seconds" | tee "$work/grpc.txt"
grpc_per_s=$(sed -n 's/.*throughput \([0-9.]*\)\/s.*/\1/p' "$work/grpc.txt")

# wrk has no warm-up of its own: a short run first.
wrk -t1 -c"$concurrency" -d3s -s "$here/http_verify.lua" "http://127.0.0.1:$http_port" \
  -- "$work/requests.tsv" > /dev/null
wrk -t1 -c"$concurrency" -d"${seconds}s" -s "$here/http_verify.lua" \
  "http://127.0.0.1:$http_port" -- "$work/requests.tsv" | tee "$work/http.txt"
line=$(grep '^HTTP_RESULT' "$work/http.txt")
requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<< "$line")
wrk_seconds=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<< "$line")
non2xx=$(sed -n 's/.*non2xx=\([0-9]*\).*/\1/p' <<< "$line")
http_per_s=$(awk -v r="$requests" -v s="$wrk_seconds" 'BEGIN { printf "%.1f", r / s }')
ratio=$(awk -v h="$http_per_s" -v g="$grpc_per_s" 'BEGIN { printf "%.2f", h / g }')
echo "RESULT http_vs_grpc concurrency=$concurrency seconds=$seconds grpc_per_s=$grpc_per_s" \
  "http_per_s=$http_per_s ratio=$ratio http_non2xx=$non2xx"
[[ $non2xx == 0 ]]
