"""Custom DSP blocks in the feature pipeline run as steps of their own (``custom-dsp``, the
block's image; here its local command, as the local runner runs a version without an image),
never inside a shard step: TINYFORGE_WORKFLOW_ENGINE=local through the gRPC API gives what the
in-process engine gives and what the block run directly gives; re-runs compute nothing; a
failing block fails the job naming the block, publishes nothing and leaves no staging keys;
the shards fan out into one block step per shard."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from hera_workflows.features import NAME as FEATURES
from hera_workflows.local import run_pipeline
from tests.api.conftest import RunningPlatform, start_platform, stop_platform
from tests.blocks_service.test_custom_dsp import ZCR, _direct, _impulse
from tests.dsp_service.conftest import FAILED, SUCCEEDED, generate, make_synthetic
from tinyforge.features import load_features
from tinyforge.features.generate import dataset_samples, shard_of

BLOCKS = ("spectral", "stats", "zcr")


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("custom-dsp-local"), workflow_engine="local")
    yield p
    stop_platform(p)


def _staging(p: RunningPlatform, project_id: int) -> list[str]:
    return [o.key for o in p.ctx.objects.list(f"projects/{project_id}/features-staging/")]


def _project(p: RunningPlatform) -> tuple[Any, Any, Any]:
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    return tenant, client, make_synthetic(client, tenant.project_id, per_class=3, n=200)


def test_custom_block_runs_as_its_own_step_like_inprocess(platform, local_platform,
                                                          tmp_path) -> None:
    runs: dict[str, Any] = {}
    for engine, p in (("inprocess", platform), ("local", local_platform)):
        assert p.ctx.settings.workflow_engine == engine
        tenant, client, ds = _project(p)
        client.register_block_dir(ZCR, name="zcr-bands")
        imp = client.create_impulse("custom-step", _impulse("custom:zcr-bands"))
        job, result, lines = generate(client, imp.impulse_id)
        assert job.status == SUCCEEDED, job.error + "\n".join(lines[-30:])
        runs[engine] = (p, tenant, client, ds, imp, result, lines)

    p, tenant, client, ds, imp, result, lines = runs["local"]
    # the block ran as a step of its own (one shard: one block step), not inside the shard
    assert any(ln.startswith("step ") and "custom-dsp(0:" in ln and ln.endswith(": Running")
               for ln in lines), lines
    assert any(ln.startswith("step ") and "custom-dsp(0:" in ln and ln.endswith(": Succeeded")
               for ln in lines)
    said = [ln for ln in lines if "windows x 3 axes" in ln]  # what the block prints
    assert said and all(ln.startswith("[custom-dsp(0:") for ln in said), said
    assert any(ln.startswith("[shard(0:") and "staged" in ln for ln in lines)
    assert any(ln.startswith("[publish] ") and "computed by its step" in ln for ln in lines)
    assert result["blocks"]["zcr"]["processed_samples"] == len(ds.samples)
    assert result["blocks"]["zcr"]["shape"] == [12]
    assert _staging(p, tenant.project_id) == []  # the staging keys are gone

    # the same published features as the in-process engine, and as the block run directly
    for block in BLOCKS:
        a = load_features(runs["inprocess"][0].ctx.objects, runs["inprocess"][1].project_id,
                          runs["inprocess"][4].impulse_id, 1, block)
        b = load_features(p.ctx.objects, tenant.project_id, imp.impulse_id, 1, block)
        np.testing.assert_allclose(b.X, a.X, rtol=1e-6, atol=1e-6)
        assert b.labels == a.labels and b.manifest["output"] == a.manifest["output"]
    fm = load_features(p.ctx.objects, tenant.project_id, imp.impulse_id, 1, "zcr")
    assert fm.manifest["block_type"] == "custom:zcr-bands"
    direct = _direct(ds, sorted(ds.samples), {"bands": 3, "log_energy": True}, tmp_path / "d")
    np.testing.assert_allclose(fm.X, direct, rtol=1e-5, atol=1e-5)
    assert [list(b.shape) for b in client.get_features(imp.impulse_id).blocks
            if b.block == "zcr"] == [[12]]

    # a re-run computes nothing: no block step at all
    job, again, lines = generate(client, imp.impulse_id)
    assert job.status == SUCCEEDED, job.error
    assert {k: v["processed_samples"] for k, v in again["blocks"].items()} == \
        dict.fromkeys(BLOCKS, 0)
    assert not any("custom-dsp(" in ln for ln in lines)
    assert any(ln.startswith("[plan] ") and "0 samples to process" in ln for ln in lines)
    np.testing.assert_array_equal(
        load_features(p.ctx.objects, tenant.project_id, imp.impulse_id, 1, "zcr").X, fm.X)


def test_shards_fan_out_into_one_block_step_each(platform, tenant, client, tmp_path) -> None:
    ds = make_synthetic(client, tenant.project_id, per_class=5, n=200)
    client.register_block_dir(ZCR, name="zcr-bands")
    imp = client.create_impulse("sharded", _impulse("custom:zcr-bands"))
    with platform.ctx.db.session() as s:
        job_id = platform.ctx.jobs.create(s, tenant.project_id, "dsp.generate_features", {}).id
    # what a job that no longer exists left staged (a pipeline without the cleanup exit
    # handler, e.g. retrain, that failed) is swept by the next plan
    stale = f"projects/{tenant.project_id}/features-staging/{job_id + 10**6}/b2-s0/in/X.npy"
    platform.ctx.objects.put_bytes(stale, b"left over")
    lines: list[str] = []
    run = run_pipeline(
        platform.ctx,
        FEATURES,
        {"job-id": str(job_id), "project-id": str(tenant.project_id),
         "impulse-id": str(imp.impulse_id), "max-shards": "3", "min-samples-per-shard": "2"},
        log=lines.append,
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines[-30:])
    assert len(run.node("shard").children) == 3
    refs = dataset_samples(platform.ctx.db, platform.ctx.objects, tenant.project_id)
    busy = {shard_of(r.content_key, 3) for r in refs}  # shards with samples of the block
    steps = run.node("custom-dsp").children
    assert len(steps) == len(busy) and all(c.phase == "Succeeded" for c in steps)
    assert sorted(json.loads(c.name.split(":", 1)[1][:-1])["shard"] for c in steps) == \
        sorted(busy)
    fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, "zcr")
    direct = _direct(ds, sorted(ds.samples), {"bands": 3, "log_energy": True}, tmp_path / "d")
    np.testing.assert_allclose(fm.X, direct, rtol=1e-5, atol=1e-5)
    assert _staging(platform, tenant.project_id) == []


def test_the_pipeline_runs_custom_blocks_as_block_steps_between_shards_and_publish() -> None:
    from hera_workflows import PIPELINES
    from hera_workflows.common import BLOCK_STEP_INPUTS

    spec = PIPELINES[FEATURES]().to_dict()["spec"]
    templates = {t["name"]: t for t in spec["templates"]}
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    plan_out = "{{tasks.plan.outputs.parameters.custom-steps}}"
    dsp = tasks["custom-dsp"]
    assert dsp["withParam"] == plan_out and dsp["depends"] == "shard"
    assert {p["name"]: p["value"] for p in dsp["arguments"]["parameters"]} == \
        {n: f"{{{{item.{n}}}}}" for n in BLOCK_STEP_INPUTS}
    # the block's own image, S3 artifacts in and out, argv and resources in the patch
    block = templates[dsp["template"]]
    assert block["container"]["image"] == "{{inputs.parameters.image}}"
    assert block["podSpecPatch"] == "{{inputs.parameters.pod-spec-patch}}"
    assert [a["s3"]["key"] for a in block["inputs"]["artifacts"]] == \
        ["{{inputs.parameters.in-key}}"]
    assert [a["s3"]["key"] for a in block["outputs"]["artifacts"]] == \
        ["{{inputs.parameters.out-key}}"]
    # a bare depends accepts a skipped (empty) fan-out
    assert tasks["publish"]["depends"] == "custom-dsp"
    for name in ("shard", "publish"):
        args = {p["name"]: p["value"] for p in tasks[name]["arguments"]["parameters"]}
        assert args["custom-steps"] == plan_out
    # the exit handler removes the staging keys whatever happened, and records the status
    exit_tasks = {t["template"] for t in templates[spec["onExit"]]["dag"]["tasks"]}
    assert exit_tasks == {"features-cleanup", "record-status"}


_FAILING = {
    "exit": ("import sys\nprint('reading windows')\nprint('boom: cannot parse', file=sys.stderr)"
             "\nsys.exit(3)\n", "exit code 3", "boom: cannot parse"),
    "no-output": ("print('did nothing, on purpose')\n", "wrote no output", None),
    "bad-rows": ("import argparse, numpy as np\np = argparse.ArgumentParser()\n"
                 "p.add_argument('--in'); p.add_argument('--out'); p.add_argument('--params')\n"
                 "a = p.parse_args()\nnp.save(a.out, np.zeros((1, 2), np.float32))\n",
                 "one row per input window", None),
}


@pytest.mark.parametrize("kind", sorted(_FAILING))
def test_failing_block_step_fails_the_job_and_publishes_nothing(local_platform, tmp_path,
                                                               kind) -> None:
    script, reason, tail = _FAILING[kind]
    d = tmp_path / "bad-block"
    d.mkdir()
    (d / "main.py").write_text(textwrap.dedent(script))
    (d / "parameters.json").write_text(json.dumps({
        "version": 1, "type": "dsp",
        "info": {"name": "Bad", "localCommand": ["python3", "main.py"]}, "parameters": []}))
    tenant = local_platform.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    make_synthetic(client, tenant.project_id, per_class=1, n=200)
    client.register_block_dir(d, name="bad")
    imp = client.create_impulse("failing", _impulse("custom:bad", {}))
    job, _, lines = generate(client, imp.impulse_id)
    assert job.status == FAILED
    assert reason in job.error and "zcr (custom:bad@1), shard 0" in job.error, job.error
    if tail is not None:  # the block's log tail, in WatchJob
        assert tail in job.error
    assert any(ln.startswith("[custom-dsp(0:") for ln in lines)  # its log, in the job log
    # nothing published, no staging keys left
    assert list(client.get_features(imp.impulse_id).blocks) == []
    prefix = f"projects/{tenant.project_id}/features/{imp.impulse_id}/"
    assert [o.key for o in local_platform.ctx.objects.list(prefix)] == []
    assert _staging(local_platform, tenant.project_id) == []
