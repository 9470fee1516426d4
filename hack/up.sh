#!/usr/bin/env bash
# `make up`: from a bare machine to a running sample stack. Each step is idempotent, so a
# second `make up` only starts what is not running.
source "$(dirname "$0")/lib.sh"
t0=$(date +%s)

bash "$REPO_ROOT/hack/deps.sh"
bash "$REPO_ROOT/hack/dockerd.sh" start
bash "$REPO_ROOT/hack/control-plane.sh" start
bash "$REPO_ROOT/hack/build-images.sh" all

log "installing CRDs"
kubectl_ apply --server-side --force-conflicts -f "$REPO_ROOT/crds/" >/dev/null
for crd in $(kubectl_ get -f "$REPO_ROOT/crds/" -o name); do
  kubectl_ wait --for=condition=Established --timeout=60s "$crd" >/dev/null
done

if docker_ image inspect kongmasker/mockupstream:dev >/dev/null 2>&1; then
  if [[ "$(docker_ inspect -f '{{.State.Running}}' "$MOCK_CONTAINER" 2>/dev/null)" != true ]]; then
    docker_ rm -f "$MOCK_CONTAINER" >/dev/null 2>&1 || true
    log "starting the mock AI upstream on 127.0.0.1:$MOCK_UPSTREAM_PORT"
    docker_ run -d --name "$MOCK_CONTAINER" --network host --restart unless-stopped \
      --label app.kubernetes.io/part-of=kongmasker --label app.kubernetes.io/component=mock-upstream \
      -e "MOCK_LISTEN=127.0.0.1:$MOCK_UPSTREAM_PORT" kongmasker/mockupstream:dev >/dev/null
  fi
  wait_for "mock upstream" 60 curl -fsS "http://127.0.0.1:$MOCK_UPSTREAM_PORT/health"
fi

if [[ -f "$REPO_ROOT/operator/kongmasker/__main__.py" ]]; then
  bash "$REPO_ROOT/hack/operator.sh" start
fi

if [[ -f "$REPO_ROOT/manifests/samples/stack.yaml" ]]; then
  log "applying manifests/samples/stack.yaml and waiting for Ready"
  kubectl_ apply -f "$REPO_ROOT/manifests/samples/stack.yaml" >/dev/null
  kubectl_ wait --for=condition=Ready --timeout=300s kongmaskerstack/demo -n default >/dev/null \
    || { kubectl_ get kongmaskerstack demo -n default -o yaml >&2; die "sample stack not Ready"; }
fi

log "up in $(( $(date +%s) - t0 ))s"
cat <<MSG

The Kong AWS Masker environment is up.
  eval "\$(make -s env)"                      # KUBECONFIG, DOCKER_HOST, PATH, endpoints
  kubectl get kongmaskerstacks                # alias: kms
  kubectl describe kongmaskerstack demo
  kubectl kongmasker status demo              # the plugin: status, monitor, logs, report,
  kubectl kongmasker monitor demo             #   restart, backup, restore, hibernate
  curl -s "\$(kubectl get kms demo -o jsonpath='{.status.endpoints.proxy}')/v1/messages" \\
       -H 'content-type: application/json' \\
       -d '{"messages":[{"role":"user","content":"why is i-1234567890abcdef0 slow?"}]}'
  curl -s "\$KONGMASKER_MOCK_UPSTREAM/__requests"   # what left the gateway: masked ids only
  make down                                   # stops everything this started
MSG
