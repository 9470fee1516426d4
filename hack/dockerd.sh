#!/usr/bin/env bash
# Starts (or reuses) a Docker engine and records its address in $STATE_DIR/docker-host.
# There is no systemd here, so dockerd is started by hand and waited for. It runs with
# iptables, masquerade and IP forwarding off: containers reach each other and the host's
# loopback (host networking), never anything beyond this machine.
source "$(dirname "$0")/lib.sh"

HOST_FILE="$STATE_DIR/docker-host"
PID_FILE="$STATE_DIR/dockerd.pid"

# Graceful restarts hand a port over between two listeners (SO_REUSEPORT); without this the
# connections still queued on the closing listener are reset instead of moved to the new one.
# Containers use the host network namespace, so the host's setting is theirs (Linux >= 5.14).
migrate_connections() {
  local knob=/proc/sys/net/ipv4/tcp_migrate_req
  [[ -f "$knob" ]] || { log "no $knob (kernel < 5.14): graceful restarts may reset a few connections"; return; }
  [[ "$(cat "$knob")" == 1 ]] && return
  if echo 1 > "$knob" 2>/dev/null; then
    log "set net.ipv4.tcp_migrate_req=1 (graceful restarts migrate queued connections)"
  else
    log "cannot set net.ipv4.tcp_migrate_req=1 (not root?): graceful restarts may reset a few connections"
  fi
}

answers() { DOCKER_HOST="$1" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_installed() {
  command -v dockerd >/dev/null && command -v containerd >/dev/null && return
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
}

start() {
  lock dockerd
  migrate_connections
  ensure_installed
  command -v docker >/dev/null || die "no docker client on PATH"
  if [[ -S "$DOCKER_SOCK" ]] && answers "unix://$DOCKER_SOCK"; then
    echo "unix://$DOCKER_SOCK" > "$HOST_FILE"; log "dockerd already running at $DOCKER_SOCK"; return
  fi
  if [[ -z "${KONGMASKER_OWN_DOCKERD:-}" ]] && answers "unix:///var/run/docker.sock"; then
    echo "unix:///var/run/docker.sock" > "$HOST_FILE"; log "reusing the engine at /var/run/docker.sock"; return
  fi
  mkdir -p "$CACHE_DIR/docker" "$STATE_DIR/docker-exec"
  rm -f "$DOCKER_SOCK"
  log "starting dockerd at $DOCKER_SOCK (data root $CACHE_DIR/docker)"
  # setsid: dockerd must not die with the shell that started it (make up returns).
  setsid dockerd \
    --host "unix://$DOCKER_SOCK" \
    --data-root "$CACHE_DIR/docker" \
    --exec-root "$STATE_DIR/docker-exec" \
    --pidfile "$PID_FILE" \
    --iptables=false --ip-masq=false --ip-forward=false \
    --log-level warn \
    >"$STATE_DIR/dockerd.log" 2>&1 < /dev/null 9>&- &
  wait_for "dockerd at $DOCKER_SOCK (see $STATE_DIR/dockerd.log)" 60 answers "unix://$DOCKER_SOCK"
  echo "unix://$DOCKER_SOCK" > "$HOST_FILE"
  # The data root outlives the engine: containers of an engine that was killed (a session or
  # CI run that ended) would come back with their restart policies and hold ports. A freshly
  # started engine begins with none of ours; their volumes (Redis data) are kept.
  local stale; stale="$(DOCKER_HOST="unix://$DOCKER_SOCK" docker ps -aq --filter label=app.kubernetes.io/part-of=kongmasker)"
  if [[ -n "$stale" ]]; then
    log "removing $(wc -w <<< "$stale") container(s) left by an earlier engine"
    DOCKER_HOST="unix://$DOCKER_SOCK" docker rm -f $stale >/dev/null
  fi
  log "dockerd $(DOCKER_HOST="unix://$DOCKER_SOCK" docker version --format '{{.Server.Version}}') up"
}

stop() {
  [[ -f "$PID_FILE" ]] || { log "no dockerd of ours is running"; rm -f "$HOST_FILE"; return; }
  local pid; pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    # Every container of this private engine goes first (volumes stay), so no overlay or
    # netns mount outlives it and the next engine starts with none.
    local ids; ids="$(DOCKER_HOST="unix://$DOCKER_SOCK" docker ps -aq 2>/dev/null || true)"
    [[ -n "$ids" ]] && DOCKER_HOST="unix://$DOCKER_SOCK" docker rm -f $ids >/dev/null 2>&1 || true
    log "stopping dockerd (pid $pid)"
    stop_pid "$pid" 60
  fi
  rm -f "$PID_FILE" "$HOST_FILE" "$DOCKER_SOCK"
  # Mounts under the exec root are the engine's; anything left means it died uncleanly.
  grep -o " $STATE_DIR/docker-exec[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  host) cat "$HOST_FILE" ;;
  *) die "usage: $0 start|stop|host" ;;
esac
