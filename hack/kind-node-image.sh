#!/usr/bin/env bash
# Assembles the kind node image offline and prints its tag:
#   1. binaries (hack/build-binaries.sh k8s + etcd, hack/build-kind.sh binaries)
#   2. control-plane images: one Debian image with kube-apiserver, kube-controller-manager,
#      kube-scheduler, kube-proxy and etcd tagged under each registry.k8s.io name kubeadm
#      uses; coredns and pause FROM scratch
#   3. the node image (hack/kind/node/Dockerfile) on the project's Debian base, with those
#      images saved into /kind/images
# Every image is tagged by a hash of its inputs: an unchanged input set is never rebuilt.
source "$(dirname "$0")/lib.sh"

export DOCKER_HOST="${DOCKER_HOST:-$(cat "$STATE_DIR/docker-host" 2>/dev/null || echo unix:///var/run/docker.sock)}"
KIND_DIR="$REPO_ROOT/hack/kind"
WORK="$CACHE_DIR/contexts/kind-node"
LOG_DIR="$STATE_DIR/logs"; mkdir -p "$LOG_DIR"
ETCD_IMAGE_TAG="${ETCD_VERSION#v}-0"
PAUSE_VERSION="${PAUSE_VERSION:-3.10.1}"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
hash_dir() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "${2:-}") | sha256sum | cut -c1-12; }

# build_image NAME CONTEXT [BASE]: docker build tagged kongmasker/NAME:<hash>; prints the tag.
build_image() {
  local name="$1" ctx="$2" base="${3:-}" tag
  tag="kongmasker/$name:$(hash_dir "$ctx" "$base")"
  if ! have_image "$tag"; then
    log "building $tag"
    docker build --network host --build-arg "BASE=$base" -t "$tag" "$ctx" > "$LOG_DIR/$name.build.log" 2>&1 \
      || { tail -20 "$LOG_DIR/$name.build.log" >&2; die "step 'build $name image' failed; log: $LOG_DIR/$name.build.log"; }
  fi
  echo "$tag"
}

bash "$REPO_ROOT/hack/build-binaries.sh" all >&2
bash "$REPO_ROOT/hack/build-kind.sh" binaries >&2
bash "$REPO_ROOT/hack/build-images.sh" base >&2
BASE_TAG="$(docker images kongmasker/base --format '{{.Repository}}:{{.Tag}}' | grep ":$DEBIAN_SUITE-" | head -1)"
[[ -n "$BASE_TAG" ]] || die "no kongmasker/base image; run: bash hack/build-images.sh base"

lock kind-node-image
rm -rf "$WORK"; mkdir -p "$WORK/components/bin" "$WORK/coredns" "$WORK/pause"
cp "$KIND_DIR/components/Dockerfile" "$WORK/components/"
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd; do cp "$BIN_DIR/$b" "$WORK/components/bin/"; done
components="$(build_image kind-components "$WORK/components" "$BASE_TAG")"
cp "$BIN_DIR/coredns" "$WORK/coredns/"; printf 'FROM scratch\nCOPY coredns /coredns\nENTRYPOINT ["/coredns"]\n' > "$WORK/coredns/Dockerfile"
coredns="$(build_image kind-coredns "$WORK/coredns")"
cp "$BIN_DIR/pause" "$WORK/pause/"; printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' > "$WORK/pause/Dockerfile"
pause="$(build_image kind-pause "$WORK/pause")"

names=()
for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
  docker tag "$components" "registry.k8s.io/$c:$K8S_VERSION"; names+=("registry.k8s.io/$c:$K8S_VERSION")
done
docker tag "$components" "registry.k8s.io/etcd:$ETCD_IMAGE_TAG"; names+=("registry.k8s.io/etcd:$ETCD_IMAGE_TAG")
docker tag "$coredns" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"; names+=("registry.k8s.io/coredns/coredns:$COREDNS_VERSION")
docker tag "$pause" "registry.k8s.io/pause:$PAUSE_VERSION"; names+=("registry.k8s.io/pause:$PAUSE_VERSION")

# The node's context: kind's own files (from its Go module), ours, the node binaries.
kind_dir="$(GOFLAGS= go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
ctx="$WORK/node"
mkdir -p "$ctx/kind" "$ctx/bin" "$ctx/images"
cp -r "$kind_dir/images/base/files/etc" "$kind_dir/images/base/files/kind" "$kind_dir/images/base/files/usr" "$ctx/kind/"
chmod -R u+w "$ctx/kind"
cp -r "$KIND_DIR/node/Dockerfile" "$KIND_DIR/node/overlay" "$ctx/"
echo "$K8S_VERSION" > "$ctx/overlay/kind/version"
# containerd: the pause image kubeadm uses; the pod network from a CNI template (no kindnetd:
# its module is not on the proxy; ptp + host-local is right for one node); and runc may not
# lower oom_score_adj where CAP_SYS_RESOURCE is missing.
cfg="$ctx/kind/etc/containerd/config.toml"
sed -i -e "s#registry.k8s.io/pause:[0-9.]*#registry.k8s.io/pause:$PAUSE_VERSION#" \
       -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' "$cfg"
printf '\n[plugins."io.containerd.grpc.v1.cri".cni]\n  conf_template = "/etc/containerd/cni.template"\n' >> "$cfg"
for b in kubelet kubeadm kubectl; do cp "$BIN_DIR/$b" "$ctx/bin/"; done
ids="$(for n in "${names[@]}"; do docker image inspect -f '{{.Id}}' "$n"; done | tr '\n' ' ')"
tag="kongmasker/kind-node:$K8S_VERSION-$(hash_dir "$ctx" "$BASE_TAG $ids ${names[*]}")"
if have_image "$tag"; then
  log "$tag present"
else
  log "saving the control-plane images"
  docker save "${names[@]}" -o "$ctx/images/control-plane.tar"
  log "building $tag"
  docker build --network host --build-arg "BASE=$BASE_TAG" -t "$tag" "$ctx" > "$LOG_DIR/kind-node.build.log" 2>&1 \
    || { tail -20 "$LOG_DIR/kind-node.build.log" >&2; die "step 'build the kind node image' failed; log: $LOG_DIR/kind-node.build.log"; }
  rm -f "$ctx/images/control-plane.tar"
  # Older node images only take disk.
  docker images kongmasker/kind-node --format '{{.Repository}}:{{.Tag}}' | grep -v "^$tag$" \
    | xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "$tag"
