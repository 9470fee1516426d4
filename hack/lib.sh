# Shared settings for the hack/ scripts. Source it; it defines paths, pins and helpers.
# Why two roots: the cache (binaries, Go caches, rootfs, wheels, Docker's data root) is
# expensive to rebuild and is shared by every clone on this machine, so a fresh CI clone
# starts warm; the state (certs, etcd data, pids, logs, kubeconfig) belongs to the
# environment that is up right now and lives beside the checkout.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${KONGMASKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kongmasker}"
STATE_DIR="${KONGMASKER_STATE:-$REPO_ROOT/.local}"
BIN_DIR="$CACHE_DIR/bin"

# Pins. Changing one of these rebuilds what depends on it, nothing else.
K8S_VERSION="${K8S_VERSION:-v1.34.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"

# Loopback ports of the embedded control plane.
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${APISERVER_PORT:-16443}"

KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
DOCKER_SOCK="$STATE_DIR/docker.sock"

mkdir -p "$CACHE_DIR" "$STATE_DIR" "$BIN_DIR"

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then die "timed out after ${secs}s waiting for $what"; fi
    sleep 0.2
  done
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS for the process to exit, then SIGKILL.
stop_pid() {
  local pid="$1" deadline=$(( $(date +%s) + $2 ))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    (( $(date +%s) < deadline )) || { kill -KILL "$pid" 2>/dev/null; break; }
    sleep 0.2
  done
}

export GOMODCACHE="${GOMODCACHE:-$CACHE_DIR/go/mod}"
export GOCACHE="${GOCACHE:-$CACHE_DIR/go/build}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export PATH="$BIN_DIR:$PATH"

# Loopback ports of the local environment's own services.
MOCK_UPSTREAM_PORT="${MOCK_UPSTREAM_PORT:-18090}"
OPERATOR_METRICS_PORT="${OPERATOR_METRICS_PORT:-18080}"
OPERATOR_HEALTH_PORT="${OPERATOR_HEALTH_PORT:-18081}"
MOCK_CONTAINER="kongmasker-local-mock-upstream"

kubectl_() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
docker_() { DOCKER_HOST="$(cat "$STATE_DIR/docker-host")" docker "$@"; }

# lock NAME: hold an exclusive lock (fd 9) for the rest of this script. Test sessions, make
# targets and parallel runs may take the same step at once; the second waits instead of
# racing on shared staging folders, pid files and wheels. Daemons started under the lock
# must close fd 9 (`9>&-`), or they would hold it for their whole life.
lock() {
  exec 9>"$CACHE_DIR/.lock-$1"
  flock 9
}

# kind: the cluster tool and what its node image is made of (hack/build-kind.sh).
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.12.1}"
