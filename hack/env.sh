#!/usr/bin/env bash
# Prints export lines for the local environment; `eval "$(make -s env)"` in a shell.
# PATH holds the built kubectl and .venv/bin, where `kubectl-kongmasker` (the plugin) lives.
source "$(dirname "$0")/lib.sh"
echo "export KUBECONFIG=$KUBECONFIG_PATH"
echo "export DOCKER_HOST=$(cat "$STATE_DIR/docker-host" 2>/dev/null || echo "unix://$DOCKER_SOCK")"
echo "export PATH=$BIN_DIR:$REPO_ROOT/.venv/bin:\$PATH"
echo "export KONGMASKER_MOCK_UPSTREAM=http://127.0.0.1:$MOCK_UPSTREAM_PORT"
echo "export KONGMASKER_METRICS_URL=http://127.0.0.1:$OPERATOR_METRICS_PORT/metrics"
# Read by `kubectl kongmasker report` (the operator of `make up` logs there, hack/operator.sh).
echo "export KONGMASKER_OPERATOR_LOG=$STATE_DIR/operator.log"
