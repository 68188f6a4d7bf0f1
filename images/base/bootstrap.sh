#!/usr/bin/env bash
# Builds a minimal Debian bookworm base image locally, for hosts that cannot pull from any
# registry: debootstrap (minbase + python3/venv + CA certificates) -> tar -> `podman import`.
#
# Usage: images/base/bootstrap.sh [IMAGE]   (default localhost/tinyforge/debian-base:bookworm)
# Env: ENGINE (podman|docker), DEBIAN_MIRROR, FORCE=1 to rebuild an existing image.
# Debian's python3 is 3.11 on bookworm, the version TinyForge targets.
set -euo pipefail
IMAGE="${1:-localhost/tinyforge/debian-base:bookworm}"
ENGINE="${ENGINE:-podman}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ "${FORCE:-0}" != 1 ] && $ENGINE image exists "$IMAGE" 2>/dev/null; then
  echo "base image $IMAGE: present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: run scripts/install-container-tools.sh" >&2; exit 1; }
ROOTFS="$(mktemp -d /tmp/tinyforge-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,tini \
  bookworm "$ROOTFS" "$MIRROR"
# Keep the image small: no apt lists, caches or docs.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
  "$ROOTFS"/var/cache/debconf/*-old
tar -C "$ROOTFS" -c . | $ENGINE import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$IMAGE"
echo "built $IMAGE"
