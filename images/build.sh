#!/usr/bin/env bash
# Builds the TinyForge images with podman (or docker): `make images`.
#
#   platform     Dockerfile (repo root)            -> $REGISTRY/platform:$TAG
#   block-base   images/block-base/Dockerfile      -> $REGISTRY/block-base:$TAG
#   builder      services/builder/Dockerfile.builder   -> $REGISTRY/builder:$TAG
#                (platform + arm-none-eabi, RV32, QEMU, clang/wasi, node; needs APT access)
#   builder-esp-idf  services/builder/Dockerfile.esp-idf -> $REGISTRY/builder-esp-idf:$TAG
#                (FROM espressif/idf: IDF_IMAGE; needs a registry with it and APT access)
#
# Env knobs:
#   ENGINE      podman | docker (default: podman when present, else docker)
#   BASE_IMAGE  base with python3.11 + venv; default: a locally bootstrapped Debian bookworm
#               (images/base/bootstrap.sh), since no registry may be reachable. Set it to
#               docker.io/library/python:3.11-slim-bookworm where one is.
#   REGISTRY    image name prefix (default localhost/tinyforge); TAG (default: project version)
#   IMAGES      which images to build (default "platform block-base")
#   PUSH=1      push after building
# The wheels of TinyForge + dependencies are built on the host into .cache/image-wheels, so
# the container builds run with --network=none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${ENGINE:-}" ]; then
  if command -v podman >/dev/null; then ENGINE=podman; else ENGINE=docker; fi
fi
PY="${PY:-$ROOT/.venv/bin/python}"
VERSION="$("$PY" -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
REGISTRY="${REGISTRY:-localhost/tinyforge}"
TAG="${TAG:-$VERSION}"
IMAGES="${IMAGES:-platform block-base}"
LOCAL_BASE="$REGISTRY/debian-base:bookworm"
BASE_IMAGE="${BASE_IMAGE:-$LOCAL_BASE}"
WHEELS="$ROOT/.cache/image-wheels"

build_args=(--network=none -t)
pull_args=()
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/images/containers.conf}"
  # docker format keeps HEALTHCHECK; never pull what was built locally.
  pull_args=(--format docker)
  [ "$BASE_IMAGE" = "$LOCAL_BASE" ] && pull_args+=(--pull=never)
fi

if [ "$BASE_IMAGE" = "$LOCAL_BASE" ]; then
  ENGINE="$ENGINE" bash images/base/bootstrap.sh "$LOCAL_BASE"
fi

# Host-side wheelhouse: TinyForge itself (with generated gRPC stubs) + every dependency.
if [ ! -f tinyforge/v1/__init__.py ]; then make protos; fi
mkdir -p "$WHEELS"
rm -f "$WHEELS"/tinyforge-*.whl
echo "== wheelhouse: $WHEELS"
"$PY" -m pip wheel -q --wheel-dir "$WHEELS" .
case " $IMAGES " in *" builder "*) "$PY" -m pip wheel -q --wheel-dir "$WHEELS" esptool ;; esac
WHEEL_SHA="$(cat "$WHEELS"/tinyforge-*.whl | sha256sum | cut -d' ' -f1)"

for image in $IMAGES; do
  case "$image" in
    platform) dockerfile=Dockerfile ;;
    block-base) dockerfile=images/block-base/Dockerfile ;;
    # the builder images install Debian/Ubuntu packages: they build with the network
    builder) dockerfile=services/builder/Dockerfile.builder ;;
    builder-esp-idf) dockerfile=services/builder/Dockerfile.esp-idf ;;
    *) echo "unknown image $image" >&2; exit 2 ;;
  esac
  args=("${build_args[@]}")
  extra=()
  case "$image" in
    builder*) args=(-t); extra=(--build-arg "APT_MIRROR=${APT_MIRROR:-}") ;;
  esac
  [ "$image" = builder-esp-idf ] && [ -n "${IDF_IMAGE:-}" ] && extra+=(--build-arg "IDF_IMAGE=$IDF_IMAGE")
  ref="$REGISTRY/$image:$TAG"
  echo "== $ENGINE build $ref (base $BASE_IMAGE)"
  $ENGINE build "${pull_args[@]}" "${args[@]}" "$ref" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TINYFORGE_VERSION=$VERSION" \
    --build-arg "TINYFORGE_WHEEL_SHA256=$WHEEL_SHA" \
    "${extra[@]}" -f "$dockerfile" .
  if [ "${PUSH:-0}" = 1 ]; then $ENGINE push "$ref"; fi
done
