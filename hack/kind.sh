#!/usr/bin/env bash
# `make kind-up|kind-down|kind-env`: the operator where users run it, a Deployment on a kind
# cluster. kind-up: node image (built here unless KIND_NODE_IMAGE names one) -> cluster ->
# the node's Docker engine gets the stack images -> operator installed from
# manifests/deploy/overlays/kind (exact shipped RBAC) -> mock upstream + sample stack Ready.
# kind-down removes exactly what kind-up made (cluster, its network) and puts the host
# sysctls back. Every step logs to $STATE_DIR/kind/logs/<step>.log; a failing step names it.
source "$(dirname "$0")/lib.sh"

export DOCKER_HOST="${DOCKER_HOST:-$(cat "$STATE_DIR/docker-host" 2>/dev/null || echo unix:///var/run/docker.sock)}"
KIND_STATE="$STATE_DIR/kind"
KIND_LOGS="$KIND_STATE/logs"
KIND_KUBECONFIG="$KIND_STATE/kubeconfig"
# Names of this checkout's cluster and network, so several checkouts on one engine coexist.
KIND_CLUSTER="${KIND_CLUSTER:-kongmasker-kind}"
KIND_NETWORK="${KIND_NETWORK:-$KIND_CLUSTER}"
NODE="$KIND_CLUSTER-control-plane"
SYSCTL_SNAPSHOT="$KIND_STATE/sysctl.snapshot"
# The host-wide sysctls the kubelet and the node's systemd change (docs/kind.md).
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
         kernel.keys.root_maxbytes fs.file-max fs.protected_hardlinks fs.protected_symlinks
         fs.protected_fifos fs.protected_regular fs.inotify.max_user_watches fs.inotify.max_user_instances)
mkdir -p "$KIND_LOGS"

# step NAME FIX COMMAND...: runs COMMAND with its output in NAME's log; on failure says which
# step failed, where its log is and what usually fixes it.
step() {
  local name="$1" fix="$2"; shift 2
  local logf="$KIND_LOGS/$name.log" t0=$SECONDS
  log "$name"
  if ! "$@" > "$logf" 2>&1; then
    tail -15 "$logf" >&2
    die "step '$name' failed after $((SECONDS - t0))s; log: $logf; fix: $fix"
  fi
}

kind_() { PATH="$REPO_ROOT/hack/kind:$BIN_DIR:$PATH" KIND_EXPERIMENTAL_DOCKER_NETWORK="$KIND_NETWORK" "$BIN_DIR/kind" "$@"; }
k() { "$BIN_DIR/kubectl" --kubeconfig "$KIND_KUBECONFIG" "$@"; }
node_docker() { docker exec -i "$NODE" docker "$@"; }
cluster_exists() { [[ -x "$BIN_DIR/kind" ]] && kind_ get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }

snapshot_sysctls() {
  [[ -s "$SYSCTL_SNAPSHOT" ]] && return 0    # the state before the first kind-up wins
  local s; for s in "${SYSCTLS[@]}"; do
    [[ -r "/proc/sys/${s//./\/}" ]] && echo "$s=$(cat "/proc/sys/${s//./\/}")"
  done > "$SYSCTL_SNAPSHOT.tmp"
  mv "$SYSCTL_SNAPSHOT.tmp" "$SYSCTL_SNAPSHOT"
}
restore_sysctls() {
  [[ -s "$SYSCTL_SNAPSHOT" ]] || return 0
  local line key val cur
  while IFS='=' read -r key val; do
    cur="$(cat "/proc/sys/${key//./\/}" 2>/dev/null || true)"
    [[ "$cur" == "$val" ]] || { echo "$key $cur -> $val"; echo "$val" > "/proc/sys/${key//./\/}" 2>/dev/null || true; }
  done < "$SYSCTL_SNAPSHOT"
}

write_config() {
  local cni="true"
  # The public node image has kindnetd; ours uses containerd's CNI template (docs/kind.md).
  [[ -n "${KIND_NODE_IMAGE:-}" ]] && cni="false"
  cat > "$KIND_STATE/cluster.yaml" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  disableDefaultCNI: $cni
nodes:
  - role: control-plane
    # The operator's API calls are audited (hack/kind/audit/policy.yaml, tests/kind).
    extraMounts:
      - {hostPath: $REPO_ROOT/hack/kind/audit, containerPath: /etc/kubernetes/audit, readOnly: true}
    # kind v0.33 writes kubeadm v1beta3 for Kubernetes 1.34: extraArgs is a map.
    kubeadmConfigPatches:
      - |
        kind: ClusterConfiguration
        apiServer:
          extraArgs:
            audit-policy-file: /etc/kubernetes/audit/policy.yaml
            audit-log-path: /var/log/kubernetes/audit.log
            audit-log-maxsize: "50"
          extraVolumes:
            - {name: audit, hostPath: /etc/kubernetes/audit, mountPath: /etc/kubernetes/audit, readOnly: true, pathType: Directory}
            - {name: audit-log, hostPath: /var/log/kubernetes, mountPath: /var/log/kubernetes, pathType: DirectoryOrCreate}
YAML
}

# The host sysctls go back right after create, whether it worked or not.
create_cluster() {
  local rc=0
  kind_ create cluster --name "$KIND_CLUSTER" --image "$1" --config "$KIND_STATE/cluster.yaml" \
    --kubeconfig "$KIND_KUBECONFIG" --retain || rc=$?
  restore_sysctls
  return "$rc"
}

images_env() { bash "$REPO_ROOT/hack/build-images.sh" tags; }
image_of() { images_env | awk -F= -v n="$1" '$1 == n {print $2}'; }

load_images() {
  # The stack's images go to the node's Docker engine (the operator's Docker host), under
  # both their content tag and :dev; the operator image goes to the kubelet's containerd.
  local names=() n tag
  for n in redis gateway nginx backend mockupstream; do
    tag="$(image_of "$n")"; [[ -n "$tag" ]] || { echo "no image for $n: run make images"; return 1; }
    # Only what the node lacks: a warm run loads nothing.
    if [[ "$(node_docker image inspect -f '{{.Id}}' "kongmasker/$n:dev" 2>/dev/null)" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]]; then
      names+=("$tag" "kongmasker/$n:dev")
    fi
  done
  if (( ${#names[@]} )); then docker save "${names[@]}" | node_docker load; fi
  kind_ load docker-image --name "$KIND_CLUSTER" "$(image_of operator)"
}

install_operator() {
  # A throwaway overlay on top of the shipped one that only pins the operator image tag the
  # build produced.
  local over="$KIND_STATE/overlay" rel
  mkdir -p "$over"
  rel="$(realpath --relative-to="$over" "$REPO_ROOT/manifests/deploy/overlays/kind")"
  local tag gid
  tag="$(image_of operator)"
  gid="$(docker exec "$NODE" getent group docker | cut -d: -f3)"
  [[ -n "$gid" ]] || { echo "no docker group in the node"; return 1; }
  cat > "$over/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$rel]
images:
  - {name: kongmasker/operator, newTag: "${tag#*:}"}
YAML
  # The overlay says 101 (Debian's docker.io in our node image); a public node image got its
  # engine from the distribution at kind-up, with whatever gid it chose.
  if [[ "$gid" != 101 ]]; then
    cat >> "$over/kustomization.yaml" <<YAML
patches:
  - target: {kind: Deployment, name: kongmasker-operator}
    patch: '[{"op": "replace", "path": "/spec/template/spec/securityContext/supplementalGroups", "value": [$gid]}]'
YAML
  fi
  k apply --server-side -k "$over"
  k -n kongmasker-system rollout status deploy/kongmasker-operator --timeout=180s
}

# A public node image has no Docker engine: the node gets the distribution's, configured like
# ours (hack/kind/node/overlay/etc/docker/daemon.json), so the node is the operator's Docker host.
install_node_docker() {
  docker exec "$NODE" sh -c 'command -v dockerd' && return 0
  docker exec "$NODE" mkdir -p /etc/docker
  docker cp "$REPO_ROOT/hack/kind/node/overlay/etc/docker/daemon.json" "$NODE:/etc/docker/daemon.json"
  docker exec "$NODE" sh -euc 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io && systemctl enable --now docker'
}

# The mock AI API (the sample stack's upstream) as a container in the node.
start_mock_upstream() {
  [[ "$(node_docker inspect -f '{{.State.Running}}' kongmasker-kind-mock-upstream 2>/dev/null)" == true ]] && return 0
  node_docker rm -f kongmasker-kind-mock-upstream >/dev/null 2>&1 || true
  node_docker run -d --name kongmasker-kind-mock-upstream --network host \
    -e "MOCK_LISTEN=127.0.0.1:$MOCK_UPSTREAM_PORT" kongmasker/mockupstream:dev
}

up() {
  local t0=$SECONDS img="${KIND_NODE_IMAGE:-}"
  step build-kind "check the Go module proxy is reachable (go env GOPROXY)" bash "$REPO_ROOT/hack/build-kind.sh" kind
  step build-kubectl "check the Go module proxy is reachable (go env GOPROXY)" bash "$REPO_ROOT/hack/build-binaries.sh" k8s
  if [[ -z "$img" ]]; then
    step node-image "see the log; rebuild with: bash hack/kind-node-image.sh" \
      bash -c "bash '$REPO_ROOT/hack/kind-node-image.sh' > '$KIND_STATE/node-image.tag'"
    img="$(tail -1 "$KIND_STATE/node-image.tag")"
  fi
  step images "see the log; rebuild with: make images" bash "$REPO_ROOT/hack/build-images.sh" all
  snapshot_sysctls
  if cluster_exists && [[ "$(docker inspect -f '{{.State.Running}}' "$NODE" 2>/dev/null)" != true ]]; then
    log "cluster $KIND_CLUSTER exists but its node is not running: removing it"
    down
  fi
  if cluster_exists; then
    log "cluster $KIND_CLUSTER exists; reusing it"
  else
    write_config
    step create-cluster "make kind-down, then make kind-up again; node logs: docker logs $NODE" \
      create_cluster "$img"
  fi
  kind_ get kubeconfig --name "$KIND_CLUSTER" > "$KIND_KUBECONFIG"
  step node-ready "kubectl describe node $NODE (make kind-env first)" \
    k wait --for=condition=Ready "node/$NODE" --timeout=180s
  if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then
    step node-docker-install "needs the distribution's mirror from the node; see the log" install_node_docker
  fi
  step node-docker "docker exec $NODE journalctl -u docker" \
    bash -c "for i in \$(seq 300); do docker exec '$NODE' docker info >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
  step load-images "docker exec $NODE docker images; make images" load_images
  step install-operator "kubectl -n kongmasker-system describe pod; kubectl -n kongmasker-system logs deploy/kongmasker-operator" install_operator
  step mock-upstream "docker exec $NODE docker logs kongmasker-kind-mock-upstream" start_mock_upstream
  if [[ "${KIND_SAMPLE:-1}" == 1 ]]; then
    step sample-stack "kubectl describe kongmaskerstack demo; operator log" bash -c \
      "'$BIN_DIR/kubectl' --kubeconfig '$KIND_KUBECONFIG' apply -f '$REPO_ROOT/manifests/samples/stack.yaml' && \
       '$BIN_DIR/kubectl' --kubeconfig '$KIND_KUBECONFIG' wait --for=condition=Ready kongmaskerstack/demo --timeout=300s"
  fi
  log "kind cluster $KIND_CLUSTER up in $((SECONDS - t0))s"
  cat >&2 <<TXT

  eval "\$(make -s kind-env)"              # KUBECONFIG and PATH for kubectl and kind
  kubectl get kongmaskerstacks -A          # the sample stack 'demo'
  kubectl -n kongmasker-system logs deploy/kongmasker-operator
  docker exec $NODE docker ps              # the stack's containers, in the node's engine
  make kind-down                           # removes the cluster and its network

TXT
}

down() {
  if cluster_exists; then
    step delete-cluster "docker rm -f -v $NODE" kind_ delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG"
  fi
  # kind leaves its Docker network behind; this one is ours alone (named after the cluster).
  if docker network inspect "$KIND_NETWORK" >/dev/null 2>&1; then
    step remove-network "docker network rm $KIND_NETWORK" docker network rm "$KIND_NETWORK"
  fi
  restore_sysctls
  rm -f "$SYSCTL_SNAPSHOT" "$KIND_KUBECONFIG"
  log "kind cluster $KIND_CLUSTER removed"
}

env_() {
  echo "export KUBECONFIG=$KIND_KUBECONFIG"
  echo "export PATH=$BIN_DIR:\$PATH"
  echo "export KIND_CLUSTER=$KIND_CLUSTER"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_ ;;
  restore-sysctls) restore_sysctls ;;
  *) die "usage: $0 up|down|env|restore-sysctls" ;;
esac
