#!/usr/bin/env bash
# Installs the Debian (bookworm) packages srn needs, skipping those already present.
#
#   deploy/install-deps.sh            build + test dependencies (what the README and CI use)
#   deploy/install-deps.sh runtime    only the shared libraries the server and client need to run
#   deploy/install-deps.sh python     Python packages for the reference scripts, plots and example client
#   deploy/install-deps.sh sanitizers clang and its sanitizer runtimes (CI's ASan/UBSan/TSan builds)
#   deploy/install-deps.sh deploy     the validators the deployment tests run: promtool (package
#                                     prometheus) and kubectl (package kubernetes-client, skipped
#                                     when some kubectl is already installed)
#   deploy/install-deps.sh browser    Chromium for the signature pad's browser test (tests/web), and
#                                     Node.js with npm unless some node is already installed
#                                     (the test's playwright-core wants node >= 20)
#   deploy/install-deps.sh docker     the Docker engine (docker.io, not started) and debootstrap,
#                                     which makes the base images (tests/deploy/container_test.sh)
#
# Several groups may be given at once. This is the one list of packages: the README, .ci/run
# and the Dockerfile all call it.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates openssl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libssl-dev
  libeigen3-dev libabsl-dev prometheus-cpp-dev libcivetweb-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev libpq-dev
  postgresql  # the PostgreSQL store's tests start a throwaway server of their own
)
runtime_pkgs=(
  libgrpc++1.51 libprotobuf32 libsqlite3-0 libprometheus-cpp-pull1.0 libprometheus-cpp-core1.0
  libabsl20220623 libpq5 libcivetweb1 ca-certificates
)
sanitizer_pkgs=(clang libclang-rt-14-dev)
deploy_pkgs=(prometheus)
# Debian's kubectl; another kubectl (e.g. from Google's or Kubernetes' apt repository) owns the
# same path, so keep that one when present.
command -v kubectl >/dev/null 2>&1 || deploy_pkgs+=(kubernetes-client)
# The engine and what builds its base images; the Debian CLI matches the Debian engine.
docker_pkgs=(docker.io debootstrap)
browser_pkgs=(chromium)
command -v node >/dev/null 2>&1 || browser_pkgs+=(nodejs npm)
python_pkgs=(python3 python3-numpy python3-torch python3-sklearn python3-matplotlib python3-grpcio python3-protobuf)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)

want=()
for g in "${groups[@]}"; do
  case "$g" in
    build) want+=("${build_pkgs[@]}") ;;
    runtime) want+=("${runtime_pkgs[@]}") ;;
    python) want+=("${python_pkgs[@]}") ;;
    sanitizers) want+=("${sanitizer_pkgs[@]}") ;;
    deploy) want+=("${deploy_pkgs[@]}") ;;
    docker) want+=("${docker_pkgs[@]}") ;;
    browser) want+=("${browser_pkgs[@]}") ;;
    *)
      echo "install-deps.sh: unknown group '$g'" \
        "(build, runtime, python, sanitizers, deploy, docker, browser)" >&2
      exit 2
      ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#want[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The prometheus package only provides promtool here; its maintainer scripts would start a
# Prometheus daemon on port 9090. docker.io's would start a system Docker engine with a bridge and
# iptables rules; the container test starts its own, with neither. Unless the machine already has
# a policy (Docker images do), forbid service starts for the duration of this install.
policy=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" prometheus "* || " ${missing[*]} " == *" docker.io "* ]] &&
  [ ! -e "$policy" ]; then
  trap '$SUDO rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
