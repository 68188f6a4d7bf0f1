#!/usr/bin/env bash
# Installs what `make images` needs to build the TinyForge images without a registry:
# rootful podman (with runc: crun fails on these hosts) and debootstrap for the local Debian base.
# Idempotent; needs root or sudo. Not part of `make install` (only image builds need it).
set -euo pipefail
PKGS=(podman buildah runc debootstrap)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "container tools: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "installing container tools: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
