"""Helpers for the chart tests: find helm, render the chart (cached), load CRD schemas.

Rendering runs the real helm binary (installed by scripts/install-helm.sh into .venv/bin);
CRD schemas are the upstream copies in ../shared/schemas (see its README for strict mode).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tinyforge"
VALUES_DIR = Path(__file__).resolve().parent / "values"
SCHEMAS = REPO / ".." / "shared" / "schemas"
# Newest Kubernetes release kubernetes-validate ships schemas for.
KUBE_VERSION = "1.37.0"

# Custom resources the chart may render -> (CRD file under SCHEMAS, served version).
CRDS: dict[tuple[str, str], tuple[str, str]] = {
    ("argoproj.io/v1alpha1", "WorkflowTemplate"): (
        "argo-workflows/argoproj.io_workflowtemplates.yaml",
        "v1alpha1",
    ),
    ("argoproj.io/v1alpha1", "Workflow"): ("argo-workflows/argoproj.io_workflows.yaml", "v1alpha1"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): (
        "kserve/serving.kserve.io_servingruntimes.yaml",
        "v1alpha1",
    ),
    ("serving.kserve.io/v1beta1", "InferenceService"): (
        "kserve/serving.kserve.io_inferenceservices.yaml",
        "v1beta1",
    ),
}
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


def strict(schema: Any) -> Any:
    """Deep copy of an OpenAPI schema with additionalProperties: false injected.

    On every object node that lists properties and neither sets additionalProperties nor
    x-kubernetes-preserve-unknown-fields (the "strict mode" of ../shared/schemas/README.md),
    so typos and unknown fields are rejected as `kubectl --validate=strict` would.
    """
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> Any:
    """A strict Draft 7 validator for one custom resource kind, from its official CRD."""
    import jsonschema

    rel, version = CRDS[(api_version, kind)]
    with open(SCHEMAS / rel) as fh:
        crd = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return jsonschema.Draft7Validator(strict(spec["schema"]["openAPIV3Schema"]))


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Strict-mode CRD validation errors of one custom resource ([] = valid)."""
    validator = crd_validator(doc["apiVersion"], doc["kind"])
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def is_core(doc: dict[str, Any]) -> bool:
    """True for built-in Kubernetes kinds (validated by kubernetes-validate)."""
    key = (doc["apiVersion"], doc["kind"])
    return key not in CRDS and key not in UNSCHEMATIZED
