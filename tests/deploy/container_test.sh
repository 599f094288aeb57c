#!/usr/bin/env bash
# The image built and run for real: builds the Dockerfile, runs the container as its non-root
# user with tokens, waits for its HEALTHCHECK to report healthy, enrolls and verifies a signature
# with the image's srnctl, and stops it within its grace period. .ci/run runs it.
#
#   tests/deploy/container_test.sh     exit 0 passed, 1 failed, 77 skipped (no engine to use)
#
# The engine: the one $DOCKER_HOST (or the default socket) reaches, else, as root, Debian's
# docker.io (deploy/install-deps.sh docker) started here on a private socket, with no bridge and
# no iptables rules, its data under $SRN_DOCKER_ROOT (default /var/lib/srn-docker, which keeps
# the base images and build cache for the next run), and stopped at the end. The base images
# come from deploy/docker/base-images.sh (debootstrap; no registry). Nothing but loopback is
# used: the build runs with --network host (apt reaches the Debian mirror), the container with
# --network none (a network namespace of its own with only loopback).
#
# The signatures are synthetic SVC2004 files written here (no data set needed): three signings
# of one made-up writer enrolled, a fourth must be accepted and another writer's rejected.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"

image=srn:container-test
build_image=srn-build:container-test
container=srn-container-test-$$
# The Dockerfile's uid and the server's default drain + grace (docs/DEPLOY.md: docker stop -t 20).
uid=10001
stop_timeout=20
health_timeout=120
start=$SECONDS

step() { printf '[container_test %3d s] %s\n' $((SECONDS - start)) "$*"; }
skip() { step "skipped: $*"; exit 77; }
fail() { step "FAIL: $*"; exit 1; }

work=$(mktemp -d)
started_engine=""
cleanup() {
  local rc=$?
  if [ -n "${have_container:-}" ]; then
    if [ $rc -ne 0 ]; then
      echo "--- container log (last 40 lines)"
      $docker logs --tail 40 "$container" 2>&1 || true
      echo "--- health checks"
      $docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' \
        "$container" 2>&1 || true
    fi
    $docker rm -f -v "$container" >/dev/null 2>&1 || true
  fi
  if [ -n "$started_engine" ]; then
    step "stopping the engine started here"
    kill -TERM "$started_engine" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$started_engine" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# --- the engine
docker=${DOCKER:-docker}
engine_ok() { $docker info >/dev/null 2>&1; }
if ! command -v "$docker" >/dev/null || ! engine_ok; then
  [ "$(id -u)" -eq 0 ] || skip "no Docker engine reachable, and starting one needs root"
  deploy/install-deps.sh docker >"$work/install.log" 2>&1 || {
    tail -n 5 "$work/install.log"
    skip "could not install docker.io and debootstrap (deploy/install-deps.sh docker)"
  }
  # The Debian client, which matches the Debian engine.
  docker=/usr/bin/docker
  run=/run/srn-docker
  export DOCKER_HOST=unix://$run.sock
  if engine_ok; then
    step "using the engine an earlier run left on $DOCKER_HOST"
    started_engine=$(cat "$run.pid")
  else
    root=${SRN_DOCKER_ROOT:-/var/lib/srn-docker}
    mkdir -p "$root" "$run"
    rm -f "$run.pid"
    step "starting dockerd (data root $root, socket $DOCKER_HOST)"
    dockerd --bridge=none --iptables=false --ip-masq=false --data-root "$root" \
      --exec-root "$run" --pidfile "$run.pid" --host "$DOCKER_HOST" >"$work/dockerd.log" 2>&1 &
    started_engine=$!
    for _ in $(seq 60); do
      engine_ok && break
      kill -0 "$started_engine" 2>/dev/null || break
      sleep 1
    done
    if ! engine_ok; then
      tail -n 15 "$work/dockerd.log"
      kill -0 "$started_engine" 2>/dev/null || started_engine=""
      skip "dockerd did not start (its log above)"
    fi
  fi
fi
step "engine: $($docker version -f 'Docker {{.Server.Version}}'), storage driver" \
  "$($docker info -f '{{.Driver}}')"

# --- base images and the build
t=$SECONDS
DOCKER=$docker deploy/docker/base-images.sh
step "base images ready in $((SECONDS - t)) s"

t=$SECONDS
build() {
  # Only the steps reach the output, with the time; the whole log is shown on failure.
  if ! $docker build --network host "$@" . 2>&1 | tee -a "$work/build.log" |
    while IFS= read -r line; do
      case "$line" in Step*) printf '[%(%T)T] %s\n' -1 "${line:0:96}" ;; esac
    done; then
    tail -n 60 "$work/build.log"
    fail "docker build failed"
  fi
}
step "docker build (the build stage, tagged so that its cache outlives a pruned image)"
build --target build -t "$build_image"
step "docker build (the image)"
build -t "$image"
# Earlier builds' images, now untagged (only on the engine of this test, not on someone's own).
if [ -n "$started_engine" ]; then $docker image prune -f >/dev/null; fi
step "built $image in $((SECONDS - t)) s ($($docker image inspect -f '{{.Size}}' "$image" |
  awk '{printf "%.0f MB", $1 / 1e6}'))"

# --- synthetic signatures: `writer` picks the shape, `signing` the small variations of one
# signing (a deterministic generator, the same with mawk and gawk)
sigs=$work/signatures
mkdir -p "$sigs"
signature() {
  awk -v writer="$1" -v signing="$2" '
    function noise() { state = (state * 16807) % 2147483647; return state / 2147483647 - 0.5 }
    BEGIN {
      pi = 3.14159265358979
      state = 1 + writer * 7919 + signing * 104729
      n = 180 + int((noise() + 0.5) * 20)
      fx = 1 + writer % 3; fy = 2 + writer % 2; gx = 3 + writer % 4; gy = 5 - writer % 3
      ax = 1 + 0.02 * noise(); ay = 1 + 0.02 * noise(); ph = 0.05 * noise()
      print n
      for (i = 0; i < n; i++) {
        t = i / n
        w = t + 0.01 * noise() * sin(pi * t)
        x = 5000 + ax * (6000 * w + 800 * sin(2 * pi * fx * w + ph) + 300 * sin(2 * pi * gx * w))
        y = 5000 + ay * (1200 * sin(2 * pi * fy * w + ph) + 400 * cos(2 * pi * gy * w))
        down = i % 60 != 59
        p = down ? 400 + 200 * sin(4 * pi * t) + 20 * noise() : 0
        printf "%d %d %d %d 1500 700 %d\n", x + 5 * noise(), y + 5 * noise(), 1000 + 10 * i, down, p
      }
    }' >"$sigs/W$1S$2.TXT"
}
for s in 1 2 3 4; do signature 3 "$s"; done
signature 5 1
chmod -R a+rX "$work"

# --- run
SRN_ADMIN_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
SRN_READER_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
export SRN_ADMIN_TOKEN SRN_READER_TOKEN
step "docker run (network none, the image's user and flags, tokens from the environment)"
$docker run -d --name "$container" --network none -e SRN_ADMIN_TOKEN -e SRN_READER_TOKEN \
  -v "$sigs:/signatures:ro" "$image" >/dev/null
have_container=1
[ "$($docker inspect -f '{{.Config.User}}' "$container")" = "$uid:$uid" ] ||
  fail "the image's user is not $uid:$uid"

t=$SECONDS
while :; do
  state=$($docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$container")
  [ "$state" = "running healthy" ] && break
  [ "${state%% *}" = running ] || fail "the container stopped before it was healthy ($state)"
  [ "${state#* }" = unhealthy ] && fail "the health check reports unhealthy"
  [ $((SECONDS - t)) -lt $health_timeout ] || fail "not healthy after $health_timeout s ($state)"
  sleep 1
done
step "healthy after $((SECONDS - t)) s"
server_uid=$($docker exec "$container" awk '/^Uid:/ {print $2}' /proc/1/status)
[ "$server_uid" = "$uid" ] || fail "srn-server runs as uid $server_uid, not $uid"

# The image's srnctl, with a token (never on a command line) or without one ("").
srnctl() {
  local token=$1
  shift
  if [ -n "$token" ]; then
    SRN_TOKEN=$token $docker exec -e SRN_TOKEN "$container" /usr/local/bin/srnctl "$@"
  else
    $docker exec "$container" /usr/local/bin/srnctl "$@"
  fi
}
if out=$(srnctl "" model-info 2>&1) || [[ $out != *UNAUTHENTICATED* ]]; then
  fail "model-info without a token was not refused as UNAUTHENTICATED: $out"
fi
step "without a token: ${out:0:80}"
srnctl "$SRN_ADMIN_TOKEN" enroll --subject=W3 /signatures/W3S{1,2,3}.TXT ||
  fail "enroll failed"
# The first line of verify: "ACCEPTED|REJECTED <subject>: score <s> ...".
verify() {
  local out
  out=$(srnctl "$SRN_READER_TOKEN" verify --subject=W3 "/signatures/$1") || fail "verify $1 failed"
  echo "$out" | sed 's/^/  /'
  read -r decision _ _ score _ <<<"$out"
  awk -v s="$score" 'BEGIN { exit !(s ~ /^[0-9.eE+-]+$/ && s >= 0 && s <= 1) }' ||
    fail "verify $1: score '$score' not in [0, 1]"
  [ "$decision" = "$2" ] || fail "verify $1: $decision, expected $2"
}
verify W3S4.TXT ACCEPTED
verify W5S1.TXT REJECTED
step "enrolled three signings; a fourth accepted, another writer's rejected"

# --- stop: SIGTERM drains (5 s), then calls in flight get up to 10 s
t=$SECONDS
$docker stop -t "$stop_timeout" "$container" >/dev/null
took=$((SECONDS - t))
code=$($docker inspect -f '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || fail "exit code $code after docker stop (${took} s)"
[ "$took" -lt "$stop_timeout" ] || fail "docker stop took $took s: killed, not drained"
# Read whole first: under pipefail, `docker logs | grep -q` fails when grep stops reading early.
server_log=$($docker logs "$container" 2>&1)
grep -q draining <<< "$server_log" || fail "no drain in the server's log"
step "stopped in $took s (exit code 0, drained)"
step "PASS in $((SECONDS - start)) s"
