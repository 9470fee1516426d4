#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl of $K8S_VERSION, and etcd of $ETCD_VERSION, from the Go
# module proxy. k8s.io/kubernetes is not meant to be imported: its go.mod points every k8s.io
# staging module at ./staging, so a throwaway module requires it and replaces each staging
# module with the published v0.X.Y of the same release. A stamp per pin means an unchanged pin
# is never rebuilt.
source "$(dirname "$0")/lib.sh"

lock build-binaries

stamp_ok() { [[ -x "$BIN_DIR/$1" && "$(cat "$BIN_DIR/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$BIN_DIR/.$1.version"; }

build_k8s() {
  if stamp_ok kube-apiserver "$K8S_VERSION" && stamp_ok kubectl "$K8S_VERSION" \
     && stamp_ok kube-controller-manager "$K8S_VERSION"; then
    log "kube-apiserver, kube-controller-manager and kubectl $K8S_VERSION cached"; return
  fi
  local staging="v0.${K8S_VERSION#v1.}" work="$CACHE_DIR/build/k8s-$K8S_VERSION"
  mkdir -p "$work"
  log "building kube-apiserver + kubectl $K8S_VERSION (staging $staging) in $work"
  local modfile
  modfile="$(cd "$work" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module kongmasker.local/k8sbuild"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$modfile"
  } > "$work/go.mod"
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (
    cd "$work"
    go mod tidy -e >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/kubectl" k8s.io/kubernetes/cmd/kubectl
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/kube-controller-manager" \
      k8s.io/kubernetes/cmd/kube-controller-manager
  )
  stamp kube-apiserver "$K8S_VERSION"; stamp kubectl "$K8S_VERSION"; stamp kube-controller-manager "$K8S_VERSION"
  log "built $("$BIN_DIR/kube-apiserver" --version)"
}

build_etcd() {
  if stamp_ok etcd "$ETCD_VERSION"; then log "etcd $ETCD_VERSION cached"; return; fi
  local work="$CACHE_DIR/build/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  log "building etcd $ETCD_VERSION in $work"
  cat > "$work/go.mod" <<MOD
module kongmasker.local/etcdbuild

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (
    cd "$work"
    GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3
  )
  stamp etcd "$ETCD_VERSION"
  log "built $("$BIN_DIR/etcd" --version | head -1)"
}

# MinIO: the real S3-compatible server the backup store's tests run against (not part of
# `all`: only those tests need it). MinIO publishes no semver tags, so the pin is the module
# proxy's pseudo-version of a commit; a throwaway module requires it like the others.
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

build_minio() {
  if stamp_ok minio "$MINIO_VERSION"; then log "minio $MINIO_VERSION cached"; return; fi
  local work="$CACHE_DIR/build/minio-$MINIO_VERSION"
  mkdir -p "$work"
  log "building minio $MINIO_VERSION in $work (first time: several minutes)"
  cat > "$work/go.mod" <<MOD
module kongmasker.local/miniobuild

go 1.24.0

require github.com/minio/minio $MINIO_VERSION
MOD
  cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/minio/minio"
GO
  (
    cd "$work"
    GOFLAGS=-mod=mod go get "github.com/minio/minio@$MINIO_VERSION" >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/minio" github.com/minio/minio
  )
  stamp minio "$MINIO_VERSION"
  log "built minio $MINIO_VERSION"
}

case "${1:-all}" in
  etcd) build_etcd ;;
  k8s) build_k8s ;;
  minio) build_minio ;;
  all) build_etcd; build_k8s ;;
  *) die "usage: $0 [all|etcd|k8s|minio]" ;;
esac
