#!/usr/bin/env bash
# Prepares this machine to run custom blocks in containers (idempotent, cached):
#   - the Debian packages (podman, buildah, runc, busybox-static, debootstrap, docker-registry)
#     via install-system-deps.sh;
#   - TinyForge's containers.conf (runc + explicit ulimits) in ~/.cache/tinyforge, which every
#     podman call of TinyForge uses through CONTAINERS_CONF (the host's config is untouched);
#   - the local base images: a busybox-static one and Debian bookworm minbase + python3 + numpy
#     (debootstrap, then `podman import`; no container registry is contacted).
# Pass --tensorflow to also build the TensorFlow base for learning blocks (~1.5 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
PY=${PY:-.venv/bin/python}
"$PY" -m tinyforge.cli.main blocks setup "$@"
