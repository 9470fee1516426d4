#!/usr/bin/env bash
# Builds everything a kind cluster needs, offline, from pinned sources:
#   kind            Go module sigs.k8s.io/kind@$KIND_VERSION             -> $BIN_DIR/kind
#   node binaries   kubelet, kubeadm, kube-scheduler, kube-proxy of $K8S_VERSION (the same
#                   throwaway-module recipe as hack/build-binaries.sh)
#   coredns         Go module github.com/coredns/coredns@$COREDNS_VERSION with kubeadm's plugins
#   pause           gcc -static of build/pause/linux/pause.c from the k8s.io/kubernetes module
# and then the node image (hack/kind-node-image.sh). A stamp per pin: an unchanged pin is never
# rebuilt. Usage: build-kind.sh [all|kind|node-binaries|coredns|pause]
source "$(dirname "$0")/lib.sh"

stamp_ok() { [[ -x "$BIN_DIR/$1" && "$(cat "$BIN_DIR/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$BIN_DIR/.$1.version"; }

build_kind() {
  if stamp_ok kind "$KIND_VERSION"; then log "kind $KIND_VERSION cached"; return; fi
  log "building kind $KIND_VERSION"
  GOBIN="$BIN_DIR" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
  stamp kind "$KIND_VERSION"
}

# kubelet and friends from the same release as kube-apiserver; a work folder of their own so
# a build of the apiserver (another lock) never rewrites this module under us.
build_node_binaries() {
  local names=(kubelet kubeadm kube-scheduler kube-proxy) n all=1
  for n in "${names[@]}"; do stamp_ok "$n" "$K8S_VERSION" || all=0; done
  if (( all )); then log "${names[*]} $K8S_VERSION cached"; return; fi
  local staging="v0.${K8S_VERSION#v1.}" work="$CACHE_DIR/build/k8s-node-$K8S_VERSION"
  mkdir -p "$work"
  log "building ${names[*]} $K8S_VERSION in $work"
  local modfile
  modfile="$(cd "$work" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    printf 'module kongmasker.local/k8snodebuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\n' "$K8S_VERSION"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$modfile"
  } > "$work/go.mod"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (
    cd "$work"
    GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
    for n in "${names[@]}"; do
      CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$n" "k8s.io/kubernetes/cmd/$n"
      stamp "$n" "$K8S_VERSION"
    done
  )
  log "built ${names[*]} $K8S_VERSION"
}

build_coredns() {
  if stamp_ok coredns "$COREDNS_VERSION"; then log "coredns $COREDNS_VERSION cached"; return; fi
  local work="$CACHE_DIR/build/coredns-$COREDNS_VERSION"
  mkdir -p "$work"
  log "building coredns $COREDNS_VERSION in $work"
  printf 'module kongmasker.local/corednsbuild\n\ngo 1.24.0\n\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" > "$work/go.mod"
  cat > "$work/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// Only the plugins kubeadm's Corefile uses, in CoreDNS's own order (plugin.cfg).
func init() {
	dnsserver.Directives = []string{
		"reload", "bind", "ready", "health", "prometheus", "errors", "log", "loadbalance",
		"cache", "hosts", "kubernetes", "loop", "forward", "whoami",
	}
}

func main() { coremain.Run() }
GO
  (
    cd "$work"
    GOFLAGS=-mod=mod go get "github.com/coredns/coredns@$COREDNS_VERSION" >/dev/null
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/coredns" .
  )
  stamp coredns "$COREDNS_VERSION"
}

build_pause() {
  if stamp_ok pause "$K8S_VERSION"; then log "pause cached"; return; fi
  local dir
  dir="$(GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  command -v gcc >/dev/null || die "gcc is missing: apt-get install -y gcc libc6-dev"
  gcc -Os -static -o "$BIN_DIR/pause" "$dir/build/pause/linux/pause.c"
  strip "$BIN_DIR/pause" 2>/dev/null || true
  stamp pause "$K8S_VERSION"
}

case "${1:-all}" in
  kind) lock build-kind; build_kind ;;
  node-binaries) lock build-kind-node; build_node_binaries ;;
  coredns) lock build-kind-coredns; build_coredns ;;
  pause) lock build-kind; build_pause ;;
  binaries) lock build-kind; build_kind; build_pause; build_coredns; build_node_binaries ;;
  *) die "usage: $0 [kind|node-binaries|coredns|pause|binaries]" ;;
esac
