"""Cluster side of the transform pipeline: the rendered template is schema-valid, and the chart
gives Argo the default artifact repository its key-only S3 artifacts resolve against."""

from __future__ import annotations

import copy

import pytest
import yaml

from hera_workflows.transform import NAME, transform_template
from tests.crd_schemas import SCHEMAS, crd_errors


def _run_block(doc: dict) -> dict:
    return next(t for t in doc["spec"]["templates"] if t["name"] == "run-block")


def test_rendered_template_is_valid_and_carries_artifacts_and_patch() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"../shared/schemas not present at {SCHEMAS}")
    doc = transform_template().to_dict()
    assert doc["metadata"]["name"] == NAME
    assert crd_errors(doc) == []
    t = _run_block(doc)
    assert t["podSpecPatch"] == "{{inputs.parameters.pod-spec-patch}}"
    assert t["container"]["image"] == "{{inputs.parameters.image}}"
    assert t["inputs"]["artifacts"] == [
        {"name": "in", "path": "/block/in", "s3": {"key": "{{inputs.parameters.in-key}}"}}
    ]
    (out,) = t["outputs"]["artifacts"]
    assert out["archive"] == {"none": {}} and out["path"] == "/block/out"
    assert "retryStrategy" not in t  # a block's exit status is its verdict
    broken = copy.deepcopy(doc)
    _run_block(broken)["outputs"]["artifacts"][0]["archive"] = {"none": "yes"}
    assert crd_errors(broken)


@pytest.mark.parametrize("scenario", ["default", "external"])
def test_chart_sets_the_default_artifact_repository_to_the_platform_bucket(scenario: str) -> None:
    from tests.chart.chartlib import helm_path
    from tests.chart.test_chart import scenario as render_scenario

    if helm_path() is None:
        pytest.skip("helm is not installed (scripts/install-helm.sh)")
    r = render_scenario(scenario)
    cm = r.one("ConfigMap", "artifact-repositories")
    key = cm["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
    repo = yaml.safe_load(cm["data"][key])["s3"]
    config = r.one("ConfigMap", "-config")["data"]
    wt = next(w for w in r.find("WorkflowTemplate") if w["metadata"]["name"] == NAME)
    assert cm["metadata"]["namespace"] == wt["metadata"]["namespace"]
    assert repo["bucket"] == config["TINYFORGE_S3_BUCKET"]
    assert (
        repo["endpoint"].split(".")[0].split(":")[0]
        == config["TINYFORGE_S3_ENDPOINT"].split(".")[0].split(":")[0]
    )
    assert repo["insecure"] == (config["TINYFORGE_S3_SECURE"] != "true")
    # the same credentials the platform's steps get
    api = r.one("Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in api["env"]}
    assert repo["accessKeySecret"] == env["TINYFORGE_S3_ACCESS_KEY"]
    assert repo["secretKeySecret"] == env["TINYFORGE_S3_SECRET_KEY"]
