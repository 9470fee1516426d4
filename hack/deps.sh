#!/usr/bin/env bash
# Installs what the project needs on a bare machine and is missing: Debian packages (the Docker
# engine, debootstrap, openssl, curl, promtool, tmux for the
# kubectl plugin's terminal test) and the Python virtualenv with the project.
# Quiet and quick when everything is already there.
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(docker.io debootstrap openssl curl ca-certificates prometheus lua5.1 tmux)
VENV="${KONGMASKER_VENV:-$REPO_ROOT/.venv}"

apt_missing() {
  local p missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

install_apt() {
  local missing; missing="$(apt_missing)"
  [[ -z "${missing// /}" ]] && return
  log "installing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  # Debian's prometheus package starts nothing without systemd; only promtool is used.
}

install_venv() {
  local stamp="$VENV/.kongmasker-deps"
  local want; want="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -c1-16)"
  if [[ -x "$VENV/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then return; fi
  command -v go >/dev/null || die "Go is required to build the control plane (see README)"
  log "installing the Python environment in $VENV"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO_ROOT[dataplane,test,dev]"
  echo "$want" > "$stamp"
}

install_apt
install_venv
