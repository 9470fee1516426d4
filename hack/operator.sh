#!/usr/bin/env bash
# Runs the operator from this checkout as a background process for the local environment
# (in a cluster it runs as manifests/deploy/). Metrics and liveness listen on 127.0.0.1.
source "$(dirname "$0")/lib.sh"
PID_FILE="$STATE_DIR/operator.pid"
alive() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

case "${1:-start}" in
  start)
    if alive; then log "operator already running (pid $(cat "$PID_FILE"))"; exit 0; fi
    log "starting the operator (log: $STATE_DIR/operator.log)"
    KUBECONFIG="$KUBECONFIG_PATH" DOCKER_HOST="$(cat "$STATE_DIR/docker-host")" \
    KONGMASKER_METRICS_ADDR="127.0.0.1:$OPERATOR_METRICS_PORT" \
    KONGMASKER_MOCK_UPSTREAM="http://127.0.0.1:$MOCK_UPSTREAM_PORT" \
      setsid "$REPO_ROOT/.venv/bin/python" -m kongmasker \
        --all-namespaces --liveness "http://127.0.0.1:$OPERATOR_HEALTH_PORT/healthz" \
        >> "$STATE_DIR/operator.log" 2>&1 < /dev/null &
    echo $! > "$PID_FILE"
    wait_for "operator liveness (see $STATE_DIR/operator.log)" 60 \
      curl -fsS "http://127.0.0.1:$OPERATOR_HEALTH_PORT/healthz"
    ;;
  stop)
    alive || { rm -f "$PID_FILE"; exit 0; }
    pid="$(cat "$PID_FILE")"; log "stopping the operator (pid $pid)"
    stop_pid "$pid" 30
    rm -f "$PID_FILE"
    ;;
  status) alive ;;
  *) die "usage: $0 start|stop|status" ;;
esac
