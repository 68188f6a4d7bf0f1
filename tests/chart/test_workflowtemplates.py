"""The chart turns each rendered WorkflowTemplate (files/workflowtemplates/, from
hera_workflows/) into a deployable one: release image, settings + secrets, workflow service
account, the pod labels the NetworkPolicies admit, the Argo namespace; nothing else changes,
in particular Argo's own ``{{...}}`` expressions reach the cluster untouched."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.chart.chartlib import CHART, crd_errors, render
from tests.chart.test_chart import SCENARIOS, container_env, scenario

SHIPPED = CHART / "files" / "workflowtemplates"
MARKER = "tinyforge/platform"  # hera_workflows.common.PLATFORM_IMAGE
BUILDER_MARKER = "tinyforge/builder"  # hera_workflows.common.BUILDER_IMAGE
DATA_VOLUME = {"name": "tinyforge-data", "emptyDir": {"sizeLimit": "2Gi"}}
POD_LABELS = {"tinyforge.io/object-store-client": "true", "tinyforge.io/database-client": "true"}


def shipped_templates() -> dict[str, dict[str, Any]]:
    """name -> the WorkflowTemplate as hera_workflows rendered it (before the chart)."""
    out = {}
    for path in sorted(SHIPPED.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[doc["metadata"]["name"]] = doc
    return out


def undo_chart_edits(wt: dict[str, Any], image: str, builder_image: str) -> dict[str, Any]:
    """The rendered template with the chart's additions taken out again."""
    wt = copy.deepcopy(wt)
    wt["metadata"].pop("namespace")
    wt["metadata"].pop("labels")
    spec = wt["spec"]
    spec.pop("serviceAccountName")
    spec["volumes"].remove(DATA_VOLUME)
    if not spec["volumes"]:
        spec.pop("volumes")
    labels = spec["podMetadata"]["labels"]
    for k in POD_LABELS:
        labels.pop(k)
    if not labels:
        spec["podMetadata"].pop("labels")
    if not spec["podMetadata"]:
        spec.pop("podMetadata")
    for t in spec["templates"]:
        for kind in ("container", "script"):
            c = t.get(kind)
            if c and c["image"] in (image, builder_image):
                c["image"] = MARKER if c["image"] == image else BUILDER_MARKER
                c.pop("envFrom")
                c.pop("env")
                c.pop("volumeMounts")
    return wt


def secret_env(deploy: dict[str, Any]) -> list[dict[str, Any]]:
    """The api container's env entries that carry the DB/S3 credentials."""
    return [
        e
        for name, e in container_env(deploy).items()
        if name.startswith(("TINYFORGE_DB_", "TINYFORGE_DATABASE_", "TINYFORGE_S3_"))
    ]


def test_every_shipped_template_is_made_deployable() -> None:
    shipped = shipped_templates()
    assert shipped, f"no rendered WorkflowTemplate in {SHIPPED} (make workflows)"
    for name in SCENARIOS:
        r = scenario(name)
        wts = {w["metadata"]["name"]: w for w in r.find("WorkflowTemplate")}
        assert set(wts) == set(shipped)
        deploy = r.one("Deployment", "-api")
        image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
        # build steps run in the builder Deployment's image (cross toolchains, emulators)
        builder = r.one("Deployment", "-builder")
        builder_image = builder["spec"]["template"]["spec"]["containers"][0]["image"]
        config = r.one("ConfigMap", "-config")
        sa = r.one("ServiceAccount", "-workflow")
        for wt_name, wt in wts.items():
            spec = wt["spec"]
            # Where and as whom the steps run
            assert wt["metadata"]["namespace"] == sa["metadata"]["namespace"]
            assert spec["serviceAccountName"] == sa["metadata"]["name"]
            assert POD_LABELS.items() <= spec["podMetadata"]["labels"].items()
            kinds = ("container", "script")
            as_shipped = {t["name"]: t for t in shipped[wt_name]["spec"]["templates"]}
            containers = []
            for t in spec["templates"]:
                for k in kinds:
                    if k not in t:
                        continue
                    shipped_image = as_shipped[t["name"]][k]["image"]
                    if shipped_image not in (MARKER, BUILDER_MARKER):
                        # a custom block's image (e.g. the transform pipeline's run-block):
                        # left as it is, and handed no platform settings or credentials
                        assert t[k] == as_shipped[t["name"]][k]
                        continue
                    want = image if shipped_image == MARKER else builder_image
                    containers.append((t[k], want))
            assert containers
            for c, want in containers:
                assert c["image"] == want
                assert {"configMapRef": {"name": config["metadata"]["name"]}} in c["envFrom"]
                assert c["env"] == secret_env(deploy)
                # the data dir every platform process creates: writable, as in the services
                assert c["volumeMounts"] == [
                    {"name": "tinyforge-data", "mountPath": config["data"]["TINYFORGE_DATA_DIR"]}
                ]
            assert DATA_VOLUME in spec["volumes"]
            # Nothing else changed: Argo expressions and the pipeline are as Hera rendered them
            assert undo_chart_edits(wt, image, builder_image) == shipped[wt_name], wt_name
            assert crd_errors(wt) == []


def test_step_pod_labels_are_the_ones_the_network_policies_admit() -> None:
    r = scenario("default")
    admitted = {}
    for policy in r.find("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                admitted.update(peer.get("podSelector", {}).get("matchLabels", {}))
    wt = r.find("WorkflowTemplate")[0]
    assert POD_LABELS.items() <= admitted.items()
    assert POD_LABELS.items() <= wt["spec"]["podMetadata"]["labels"].items()


def test_argo_expressions_are_not_evaluated_by_helm() -> None:
    text = "\n".join(p.read_text() for p in SHIPPED.glob("*.yaml"))
    rendered = yaml.safe_dump_all(scenario("default").find("WorkflowTemplate"))
    for expr in ("{{workflow.parameters.job-id}}", "{{workflow.status}}", "{{item}}"):
        assert expr in text and expr in rendered


def test_custom_images_get_no_platform_credentials(tmp_path: Path) -> None:
    chart = tmp_path / "tinyforge"
    shutil.copytree(CHART, chart)
    wt = next(iter(shipped_templates().values()))
    wt = copy.deepcopy(wt)
    wt["metadata"]["name"] = "with-block"
    block = copy.deepcopy(wt["spec"]["templates"][0])
    block["name"] = "custom-block"
    block["container"]["image"] = "registry.example.com/blocks/zcr:1"
    block["container"]["env"] = [{"name": "BLOCK_MODE", "value": "batch"}]
    wt["spec"]["templates"].append(block)
    # two documents in one file, as files/workflowtemplates/README.md allows
    (chart / "files" / "workflowtemplates" / "extra.yaml").write_text(
        "---\n" + yaml.safe_dump(wt) + "---\n" + yaml.safe_dump({**wt, "metadata": {"name": "b"}})
    )
    r = render((), (), str(chart), release="tf-blocks")
    assert r.returncode == 0, r.stderr
    names = sorted(w["metadata"]["name"] for w in r.find("WorkflowTemplate"))
    assert names == sorted([*shipped_templates(), "with-block", "b"])
    got = next(w for w in r.find("WorkflowTemplate") if w["metadata"]["name"] == "with-block")
    custom = next(t for t in got["spec"]["templates"] if t["name"] == "custom-block")
    assert custom["container"]["image"] == "registry.example.com/blocks/zcr:1"
    assert custom["container"]["env"] == [{"name": "BLOCK_MODE", "value": "batch"}]
    assert "envFrom" not in custom["container"] and "volumeMounts" not in custom["container"]
    assert crd_errors(got) == []


def test_settings_select_the_argo_engine() -> None:
    """The services' env (ConfigMap + secrets) configures job submission to Argo."""
    import pytest

    from tinyforge.config import Settings

    r = scenario("ha")
    cm = r.one("ConfigMap", "-config")["data"]
    env = dict(cm)
    for name, entry in container_env(r.one("Deployment", "-api")).items():
        env[name] = entry.get("value", "from-secret")
    mp = pytest.MonkeyPatch()
    try:
        for k, v in env.items():
            mp.setenv(k, v)
        s = Settings.from_env()
    finally:
        mp.undo()
    assert s.workflow_engine == "argo"
    assert s.argo_server.startswith("https://")
    # the services' ServiceAccount token (mounted: automountServiceAccountToken) for Argo
    assert s.argo_token_file == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    pod = r.one("Deployment", "-dsp")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    # workflows are created where the chart installed their templates
    assert s.argo_namespace == r.find("WorkflowTemplate")[0]["metadata"]["namespace"]
