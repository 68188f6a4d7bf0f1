#!/usr/bin/env bash
# Installs the Debian packages TinyForge needs (toolchains, emulators, PostgreSQL for the
# store tests). Idempotent: only missing packages are installed. Needs root or sudo.
set -euo pipefail
PKGS=(
  postgresql                                  # store tests' PostgreSQL leg
  gcc-arm-none-eabi libnewlib-arm-none-eabi   # Cortex-M4F builds
  qemu-system-arm                             # runs them (mps2-an386)
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf  # RV32IMC builds
  qemu-system-misc                            # runs them (riscv32 virt)
  clang lld wasi-libc libclang-rt-dev-wasm32  # WASM builds
  nodejs                                      # runs WASM builds (node:wasi)
  binutils cmake make gcc
  podman buildah runc busybox-static debootstrap docker-registry  # block containers + loopback registry
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node may come from elsewhere (e.g. a preinstalled nodejs); accept any node >= 18.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
