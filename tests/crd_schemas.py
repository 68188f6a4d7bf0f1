"""Strict validation of custom resources (Argo, KServe) against the official CRD schemas.

The schemas are the upstream copies in ``../shared/schemas`` (see its README): "strict mode"
injects ``additionalProperties: false`` so typos and unknown fields fail as they would under
``kubectl --validate=strict``. Shared by the chart tests and the workflow rendering tests.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / ".." / "shared" / "schemas"

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
