#!/usr/bin/env bash
# Builds the stack's images with no registry: a Debian base from debootstrap + docker import,
# then one image per images/<name>/Dockerfile, built with --network host so apt reaches
# Debian's mirror. Python wheels are downloaded here on the host and installed in the image
# with --no-index, because HTTPS from inside a build may not be trusted.
#
# Every image is tagged kongmasker/<name>:<hash of its inputs> and kongmasker/<name>:dev, so an
# unchanged image is never rebuilt. `build-images.sh tags` prints NAME=IMAGE lines.
source "$(dirname "$0")/lib.sh"

export DOCKER_HOST="${DOCKER_HOST:-$(cat "$STATE_DIR/docker-host" 2>/dev/null || echo unix:///var/run/docker.sock)}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGES_DIR="$REPO_ROOT/images"
# The base changes only when this recipe does, not every day: the apt layers above it pull
# current packages and security fixes.
BASE_RECIPE="suite=$DEBIAN_SUITE variant=minbase include=ca-certificates mirror=$MIRROR v1"
BASE_TAG="kongmasker/base:$DEBIAN_SUITE-$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-12)"

lock build-images

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

build_base() {
  if have_image "$BASE_TAG"; then log "base $BASE_TAG present"; return; fi
  local tarball="$CACHE_DIR/rootfs/$(basename "${BASE_TAG/:/-}").tar"
  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    local root="$CACHE_DIR/rootfs/tree"
    rm -rf "$root"; mkdir -p "$root"
    log "debootstrap $DEBIAN_SUITE into $root"
    debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$root" "$MIRROR" \
      > "$CACHE_DIR/rootfs/debootstrap.log" 2>&1 || die "debootstrap failed, see $CACHE_DIR/rootfs/debootstrap.log"
    # Small images: no apt lists, no docs; apt keeps working because the Dockerfiles update.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
      > "$root/etc/dpkg/dpkg.cfg.d/01-nodoc"
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/01-norecommends"
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  log "importing $tarball as $BASE_TAG"
  docker import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_TAG" >/dev/null
}

# Stage the build context of one image: its folder, the Python sources it names and the
# wheels of its requirements. The tag hashes exactly this context plus the base tag.
stage() {
  local name="$1" ctx="$2" dir="$IMAGES_DIR/$1"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -a "$dir/." "$ctx/"
  if [[ -f "$dir/sources" ]]; then
    mkdir -p "$ctx/src"
    while read -r pkg; do
      [[ -z "$pkg" || "$pkg" == \#* ]] && continue
      (cd "$REPO_ROOT/operator" && find "$pkg" \( -name '*.py' -o -name '*.json' \) -print0 | xargs -0 -I{} cp --parents {} "$ctx/src/")
    done < "$dir/sources"
  fi
  if [[ -f "$dir/requirements.txt" ]]; then
    local wheels="$CACHE_DIR/wheels"
    mkdir -p "$wheels" "$ctx/wheels"
    # Only wheels for the image's Python (Debian bookworm: CPython 3.11.2, glibc 2.36, x86_64; markers such as python_full_version < "3.11.3" must see 3.11.2).
    pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --python-version 3.11.2 --implementation cp --abi cp311 \
      --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
      -r "$dir/requirements.txt" -d "$wheels" >/dev/null
    # Copy only what this requirement set resolves to, so the hash is stable.
    pip download --quiet --disable-pip-version-check --no-index --find-links "$wheels" --only-binary=:all: \
      --python-version 3.11.2 --implementation cp --abi cp311 \
      --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
      -r "$dir/requirements.txt" -d "$ctx/wheels" >/dev/null
  fi
}

context_hash() {
  local parents="$BASE_TAG"
  uses_python_base "$2" && parents+=" $PYTHON_BASE_TAG"
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$parents") | sha256sum | cut -c1-12
}

# The Python images start FROM python-base (ARG PYTHON_BASE); it is built first.
PYTHON_BASE_TAG=""
uses_python_base() { grep -q '^ARG PYTHON_BASE' "$IMAGES_DIR/$1/Dockerfile"; }

build_one() {
  local name="$1" ctx="$CACHE_DIR/contexts/$1"
  stage "$name" "$ctx"
  local tag="kongmasker/$name:$(context_hash "$ctx" "$name")"
  if have_image "$tag"; then
    log "$tag present"
  else
    log "building $tag"
    docker build --network host --build-arg "BASE=$BASE_TAG" --build-arg "PYTHON_BASE=$PYTHON_BASE_TAG" -t "$tag" "$ctx" \
      > "$CACHE_DIR/contexts/$name.build.log" 2>&1 \
      || { tail -30 "$CACHE_DIR/contexts/$name.build.log" >&2; die "build of $name failed (log: $CACHE_DIR/contexts/$name.build.log)"; }
  fi
  docker tag "$tag" "kongmasker/$name:dev"
  # Older builds of this image only take disk; one still used by a container stays.
  docker images "kongmasker/$name" --format '{{.Repository}}:{{.Tag}}' \
    | grep -v -e ":dev$" -e "^$tag$" | xargs -r docker rmi >/dev/null 2>&1 || true
  echo "$name=$tag" >> "$STATE_DIR/images.env.tmp"
}

all_names() { find "$IMAGES_DIR" -mindepth 2 -maxdepth 2 -name Dockerfile -printf '%h\n' | xargs -n1 basename | sort; }

case "${1:-all}" in
  base) build_base ;;
  tags) cat "$STATE_DIR/images.env" ;;
  all|*)
    build_base
    rm -f "$STATE_DIR/images.env.tmp"
    if [[ "${1:-all}" == all ]]; then names="$(all_names)"; else names="$*"; fi
    for n in $names; do
      if uses_python_base "$n" && [[ -z "$PYTHON_BASE_TAG" ]]; then
        build_one python-base
        PYTHON_BASE_TAG="$(awk -F= '$1 == "python-base" {print $2}' "$STATE_DIR/images.env.tmp" | tail -1)"
      fi
      [[ "$n" == python-base && -n "$PYTHON_BASE_TAG" ]] || build_one "$n"
    done
    # Keep the entries of images not rebuilt this time; the newest entry per name wins.
    { cat "$STATE_DIR/images.env.tmp"; cat "$STATE_DIR/images.env" 2>/dev/null || true; } \
      | awk -F= '!seen[$1]++' | sort > "$STATE_DIR/images.env.new"
    mv "$STATE_DIR/images.env.new" "$STATE_DIR/images.env"; rm -f "$STATE_DIR/images.env.tmp"
    ;;
esac
