#!/usr/bin/env bash
# The local control plane: etcd, a real kube-apiserver on 127.0.0.1 (RBAC on) and a
# kube-controller-manager running only the controllers an operator's objects rely on
# (namespace deletion, garbage collection of owned objects, service accounts), with an admin
# kubeconfig at $STATE_DIR/kubeconfig. No scheduler and no kubelet: nothing here runs pods. Start is idempotent (a running plane is reused); stop
# ends exactly the processes whose pids this script recorded.
source "$(dirname "$0")/lib.sh"

PKI="$STATE_DIR/pki"
ETCD_DATA="$STATE_DIR/etcd"

pid_alive() { [[ -f "$STATE_DIR/$1.pid" ]] && kill -0 "$(cat "$STATE_DIR/$1.pid")" 2>/dev/null; }

# sign NAME SUBJECT EXT: a key and a certificate signed by the local CA, unless both exist
# (regenerating a cert that a running process holds would lock that process out).
sign() {
  local name="$1" subject="$2" ext="$3"
  [[ -f "$PKI/$name.crt" && -f "$PKI/$name.key" ]] && return
  printf '%s\n' "$ext" > "$PKI/$name.ext"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

gen_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    log "generating certificates in $PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kongmasker-local-ca" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  fi
  sign apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  sign admin "/O=system:masters/CN=kongmasker-admin" "extendedKeyUsage=clientAuth"
  sign kcm "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  if [[ ! -f "$PKI/sa.key" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
}

# kubeconfig FILE CERT_PREFIX
kubeconfig_for() {
  cat > "$1.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kongmasker-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: kongmasker-admin
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: kongmasker-local
  context: {cluster: kongmasker-local, user: kongmasker-admin, namespace: default}
current-context: kongmasker-local
KC
  mv "$1.tmp" "$1"
}
write_kubeconfig() {
  kubeconfig_for "$KUBECONFIG_PATH" admin
  kubeconfig_for "$STATE_DIR/kcm.kubeconfig" kcm
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q ok
}

start() {
  bash "$REPO_ROOT/hack/build-binaries.sh" all
  lock control-plane
  gen_pki
  write_kubeconfig
  if ! pid_alive etcd; then
    log "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT"
    mkdir -p "$ETCD_DATA"
    setsid "$BIN_DIR/etcd" --name kongmasker --data-dir "$ETCD_DATA" \
      --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "kongmasker=http://127.0.0.1:$ETCD_PEER_PORT" \
      --listen-metrics-urls "" --log-level warn --quota-backend-bytes 2147483648 \
      > "$STATE_DIR/etcd.log" 2>&1 < /dev/null 9>&- &
    echo $! > "$STATE_DIR/etcd.pid"
  fi
  wait_for "etcd (see $STATE_DIR/etcd.log)" 60 etcd_healthy
  if ! pid_alive kube-apiserver; then
    log "starting kube-apiserver on https://127.0.0.1:$APISERVER_PORT"
    setsid "$BIN_DIR/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
      --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
      --client-ca-file "$PKI/ca.crt" \
      --service-account-issuer https://kubernetes.default.svc \
      --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
      --service-cluster-ip-range 10.96.0.0/16 \
      --authorization-mode RBAC \
      --disable-admission-plugins ServiceAccount \
      --profiling=false --v=1 \
      > "$STATE_DIR/kube-apiserver.log" 2>&1 < /dev/null 9>&- &
    echo $! > "$STATE_DIR/kube-apiserver.pid"
  fi
  wait_for "kube-apiserver (see $STATE_DIR/kube-apiserver.log)" 120 apiserver_ready
  if ! pid_alive kube-controller-manager; then
    log "starting kube-controller-manager"
    setsid "$BIN_DIR/kube-controller-manager" \
      --kubeconfig "$STATE_DIR/kcm.kubeconfig" \
      --authentication-kubeconfig "$STATE_DIR/kcm.kubeconfig" \
      --authorization-kubeconfig "$STATE_DIR/kcm.kubeconfig" \
      --bind-address 127.0.0.1 --secure-port 0 \
      --controllers namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller \
      --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
      --use-service-account-credentials=true --leader-elect=false --v=1 \
      > "$STATE_DIR/kube-controller-manager.log" 2>&1 < /dev/null 9>&- &
    echo $! > "$STATE_DIR/kube-controller-manager.pid"
  fi
  # The default ServiceAccount appears once the controllers run: proof they are up.
  wait_for "kube-controller-manager (see $STATE_DIR/kube-controller-manager.log)" 60 \
    "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" get serviceaccount default -n default
  log "control plane ready: $("$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
}

stop_one() {
  local name="$1"
  pid_alive "$name" || { rm -f "$STATE_DIR/$name.pid"; return 0; }
  local pid; pid="$(cat "$STATE_DIR/$name.pid")"
  log "stopping $name (pid $pid)"
  stop_pid "$pid" 30
  rm -f "$STATE_DIR/$name.pid"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_one kube-controller-manager; stop_one kube-apiserver; stop_one etcd ;;
  reset) stop_one kube-controller-manager; stop_one kube-apiserver; stop_one etcd; rm -rf "$ETCD_DATA" "$PKI" ;;
  status) pid_alive etcd && pid_alive kube-apiserver && pid_alive kube-controller-manager && apiserver_ready ;;
  *) die "usage: $0 start|stop|reset|status" ;;
esac
