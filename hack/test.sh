#!/usr/bin/env bash
# `make test`: installs what is missing, then runs every test. The engines (dockerd, the
# control plane, images) are started by the session fixtures in tests/conftest.py; starting
# them here first keeps their logs out of pytest's output and fails early with a clear message.
source "$(dirname "$0")/lib.sh"
bash "$REPO_ROOT/hack/deps.sh"
bash "$REPO_ROOT/hack/dockerd.sh" start
bash "$REPO_ROOT/hack/control-plane.sh" start
bash "$REPO_ROOT/hack/build-images.sh" all
# The kind suite's node image (cold: ~15 min of Go builds), built here rather than in its
# fixture, whose setup counts against pytest's per-test timeout.
bash "$REPO_ROOT/hack/kind-node-image.sh" >/dev/null
cd "$REPO_ROOT"
exec "$REPO_ROOT/.venv/bin/python" -m pytest "$@"
