"""Helpers for the chart tests: find helm, render the chart (cached), load CRD schemas.

Rendering runs the real helm binary (installed by scripts/install-helm.sh into .venv/bin);
CRD schemas are the upstream copies in ../shared/schemas (see its README for strict mode).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.crd_schemas import CRDS, SCHEMAS, crd_errors, crd_validator, strict  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tinyforge"
VALUES_DIR = Path(__file__).resolve().parent / "values"
# Newest Kubernetes release kubernetes-validate ships schemas for.
KUBE_VERSION = "1.37.0"

# Custom resources with no official schema in ../shared/schemas (checked structurally instead).
UNSCHEMATIZED = {("gateway.networking.k8s.io/v1", "HTTPRoute")}


def helm_path() -> str | None:
    """The helm binary: the repo's .venv/bin/helm first, then PATH."""
    local = REPO / ".venv" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


@dataclass(frozen=True)
class Render:
    """Result of one `helm template` run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def docs(self) -> list[dict[str, Any]]:
        """Rendered objects (empty documents dropped)."""
        return [d for d in yaml.safe_load_all(self.stdout) if d]

    def find(self, kind: str, name_suffix: str = "") -> list[dict[str, Any]]:
        """Objects of `kind` whose name ends with `name_suffix`."""
        return [
            d
            for d in self.docs
            if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)
        ]

    def one(self, kind: str, name_suffix: str) -> dict[str, Any]:
        """Exactly one object of `kind` named ...`name_suffix`."""
        found = self.find(kind, name_suffix)
        assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
        return found[0]


def run_helm(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run helm with `args`; raises if helm is missing."""
    helm = helm_path()
    assert helm, "helm not installed"
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


@cache
def render(
    values: tuple[str, ...] = (),
    sets: tuple[str, ...] = (),
    chart: str = str(CHART),
    release: str = "tf",
    namespace: str = "tinyforge",
) -> Render:
    """`helm template` of `chart` with values files (names under VALUES_DIR) and --set args.

    Cached per argument tuple for the whole session: every test reading the same values
    shares one helm run.
    """
    args = ["template", release, chart, "--namespace", namespace]
    for v in values:
        args += ["-f", str(VALUES_DIR / v)]
    for s in sets:
        args += ["--set", s]
    proc = run_helm(args)
    return Render(proc.returncode, proc.stdout, proc.stderr)


def is_core(doc: dict[str, Any]) -> bool:
    """True for built-in Kubernetes kinds (validated by kubernetes-validate)."""
    key = (doc["apiVersion"], doc["kind"])
    return key not in CRDS and key not in UNSCHEMATIZED
