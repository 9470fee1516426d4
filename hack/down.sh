#!/usr/bin/env bash
# `make down`: undoes `make up`. Stacks are deleted first so the operator stops them
# gracefully (reverse order, Redis saved); then the operator, the mock upstream, the control
# plane and our dockerd stop. Afterwards it checks that none of our processes or mounts remain.
source "$(dirname "$0")/lib.sh"

if bash "$REPO_ROOT/hack/control-plane.sh" status 2>/dev/null; then
  if kubectl_ get crd kongmaskerstacks.kongmasker.io >/dev/null 2>&1 \
     && bash "$REPO_ROOT/hack/operator.sh" status 2>/dev/null; then
    log "deleting stacks (the operator stops them gracefully)"
    kubectl_ delete kongmaskerstacks --all -A --wait --timeout=180s >/dev/null || log "stack deletion timed out"
  fi
fi
[[ -f "$REPO_ROOT/hack/operator.sh" ]] && bash "$REPO_ROOT/hack/operator.sh" stop
if [[ -f "$STATE_DIR/docker-host" ]]; then docker_ rm -f "$MOCK_CONTAINER" >/dev/null 2>&1 || true; fi
bash "$REPO_ROOT/hack/control-plane.sh" stop
bash "$REPO_ROOT/hack/dockerd.sh" stop

left=""
for name in etcd kube-apiserver dockerd operator; do
  [[ -f "$STATE_DIR/$name.pid" ]] && kill -0 "$(cat "$STATE_DIR/$name.pid")" 2>/dev/null && left+=" $name"
done
grep -q " $STATE_DIR" /proc/mounts && left+=" mounts-under-$STATE_DIR"
[[ -z "$left" ]] || die "still running after down:$left"
log "down: no process or mount of ours left"
