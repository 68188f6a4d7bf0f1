"""Custom deploy blocks as a step of their own in the build pipeline (``tinyforge-build``).

With TINYFORGE_WORKFLOW_ENGINE=local, StartBuild ``custom:NAME`` runs ``build`` (C library,
verified on the target, block input staged) → ``deploy-block`` (the block's own step: here its
local command, as the local runner runs a registered block without an image) →
``build-finish`` (checks and stores the one file it wrote). The artifact equals, byte for byte,
what the in-process engine makes of the same build; a failing block fails the build and the job
naming the block with its last output lines, storing nothing and leaving no staged keys; a
built-in format goes through the same pipeline with ``deploy-block`` skipped. The templates
chain the stage the same way in ``tinyforge-build`` and at the end of ``tinyforge-retrain``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hera_workflows import PIPELINES, RESULTS
from hera_workflows.build import NAME as BUILD
from hera_workflows.training import RETRAIN
from tests.api.conftest import RunningPlatform, start_platform, stop_platform
from tests.blocks.conftest import EXAMPLE_BLOCKS, make_block
from tests.builder.conftest import Trained, train_project
from tests.dsp_service.conftest import FAILED, SUCCEEDED, run_job
from tests.train_service.conftest import job_result
from tinyforge.client import ApiError
from tinyforge.deploy import builds
from tinyforge.store.models import Build
from tinyforge.v1 import builder_service_pb2 as bpb

TARGET = "linux-x86_64"
FEW = {"test_windows": "5"}  # the C library is verified on a few windows (speed)

FAILING = """
import sys
print("packaging the C library")
print("boom: no space left for the vendor SDK", file=sys.stderr)
sys.exit(3)
"""
TWO_FILES = """
import argparse, os
ap = argparse.ArgumentParser()
for a in ("--metadata", "--in-directory", "--out-directory"):
    ap.add_argument(a, required=True)
a = ap.parse_args()
for n in ("one.bin", "two.bin"):
    open(os.path.join(a.out_directory, n), "wb").write(b"x")
print("wrote two files")
"""


def _templates(name: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in PIPELINES[name]().to_dict()["spec"]["templates"]}


def test_build_pipelines_run_the_deploy_block_as_a_step_of_its_own() -> None:
    for name in (BUILD, RETRAIN):
        t = _templates(name)
        tasks = {x["name"]: x for x in t["main"]["dag"]["tasks"]}
        block, finish = tasks["deploy-block"], tasks["build-finish"]
        assert block["template"] == "deploy-block" and "build.Succeeded" in block["depends"]
        assert "tasks.build.outputs.parameters.custom" in block["when"]
        args = {p["name"]: p["value"] for p in block["arguments"]["parameters"]}
        assert args["image"] == "{{tasks.build.outputs.parameters.image}}"
        assert t["deploy-block"]["container"]["image"] == "{{inputs.parameters.image}}"
        assert "deploy-block.Failed" in finish["depends"]  # it fails the build naming the block
        assert t["build"]["container"]["image"] == "tinyforge/builder"
    assert RESULTS[BUILD] == ("build-finish", "summary")
    exit_tasks = {x["name"] for x in _templates(BUILD)["exit"]["dag"]["tasks"]}
    assert exit_tasks == {"build-cleanup", "record-status"}


# ----------------------------------------------------------------------------- local engine


@contextmanager
def _engine(p: RunningPlatform, engine: str) -> Iterator[None]:
    before = p.ctx.settings
    p.ctx.settings = dataclasses.replace(before, workflow_engine=engine)
    try:
        yield
    finally:
        p.ctx.settings = before


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("custom-deploy"), workflow_engine="local")
    yield p
    stop_platform(p)


@pytest.fixture(scope="module")
def trained(local_platform: RunningPlatform) -> Trained:
    # the model is set-up, not under test: trained in-process (the training pipeline has its
    # own tests)
    with _engine(local_platform, "inprocess"):
        return train_project(local_platform)


def _build(client: Any, fmt: str, parameters: dict[str, str] | None = None) -> tuple:
    resp = client.start_build(fmt, TARGET, model_id=0, options=dict(FEW),
                              parameters=dict(parameters or {}))
    job, lines, _ = run_job(client, resp.job_id)
    return job, client.get_build(resp.build_id), lines


def _objects(p: RunningPlatform, project_id: int, build_id: int) -> list[str]:
    return sorted(i.key for i in p.ctx.objects.list(builds.build_prefix(project_id, build_id)))


def _nothing_stored(p: RunningPlatform, trained: Trained, build: Any) -> None:
    assert build.state == bpb.BUILD_STATE_FAILED and build.artifact_size == 0
    assert _objects(p, trained.project_id, build.id) == []  # no artifact, no staged keys
    with pytest.raises(ApiError) as e:
        trained.client.download_artifact(build.id, p.ctx.settings.data_dir)
    assert e.value.code == "FAILED_PRECONDITION"


def test_custom_block_build_runs_as_its_own_step_like_inprocess(
    local_platform: RunningPlatform, trained: Trained, tmp_path: Path
) -> None:
    p, client = local_platform, trained.client
    client.register_block_dir(EXAMPLE_BLOCKS / "c-library-zip", name="c-library-zip")
    job, build, lines = _build(client, "custom:c-library-zip", {"library-name": "gesture_lib"})
    assert job.status == SUCCEEDED, job.error + "\n".join(lines[-30:])

    # the pipeline's steps, the block as its own step between build and build-finish
    assert "running pipeline tinyforge-build with the local runner" in lines
    order = [ln for ln in lines if ln.startswith("step ")]
    assert order.index("step build: Succeeded") < order.index("step deploy-block: Running")
    assert order.index("step deploy-block: Succeeded") < order.index("step build-finish: Running")
    assert "step build-finish: Succeeded" in order
    assert any(ln.startswith("[deploy-block] wrote ") and ".zip" in ln for ln in lines)
    assert not any(ln.startswith("[build] running block") for ln in lines)  # not in the build

    assert build.state == bpb.BUILD_STATE_READY and not build.error
    assert build.block_reference == "custom:c-library-zip@1"
    assert len(build.files) == 1 and build.files[0].endswith(".zip")
    # the job result is the stored build's
    result = job_result(job)
    assert result["build_id"] == build.id and result["sha256"] == build.artifact_sha256
    assert result["metrics"]["block"] == "custom:c-library-zip@1"
    # only the artifact remains: the staged block input and output are gone
    key = f"{builds.build_prefix(trained.project_id, build.id)}artifact.zip"
    assert _objects(p, trained.project_id, build.id) == [key]
    (tmp_path / "step").mkdir()
    (tmp_path / "inprocess").mkdir()
    path, size, sha = client.download_artifact(build.id, tmp_path / "step")
    piped = path.read_bytes()
    assert path.name == f"build-{build.id}-{build.files[0]}"
    assert size == len(piped) and sha == hashlib.sha256(piped).hexdigest()

    # the same build with the in-process engine (the block inside the build process)
    with p.ctx.db.session() as s:
        row = s.get(Build, build.id)
        row.state, row.artifact_key, row.files, row.metrics = builds.PENDING, "", [], {}
    p.ctx.objects.delete_prefix(builds.build_prefix(trained.project_id, build.id))
    inproc = builds.run_build(p.ctx.db, p.ctx.objects, trained.project_id, build.id)
    assert inproc["metrics"]["block_engine"] == "local"  # it really ran in-process
    again = client.get_build(build.id)
    assert list(again.files) == list(build.files)
    path2, _, _ = client.download_artifact(build.id, tmp_path / "inprocess")
    assert path2.read_bytes() == piped


def test_failing_block_fails_the_build_and_the_job_naming_it(
    local_platform: RunningPlatform, trained: Trained, tmp_path: Path
) -> None:
    client = trained.client
    client.register_block_dir(make_block(tmp_path / "fail", FAILING, btype="deploy"),
                              name="boom")
    job, build, lines = _build(client, "custom:boom")
    assert job.status == FAILED
    assert any(ln.startswith("step deploy-block: Failed") for ln in lines)
    for error in (job.error, build.error):
        assert "deploy block custom:boom@1" in error, error
        assert "exit code 3" in error and "boom: no space left for the vendor SDK" in error
        assert "packaging the C library" in error  # the block's log tail
    _nothing_stored(local_platform, trained, build)

    client.register_block_dir(make_block(tmp_path / "two", TWO_FILES, btype="deploy"),
                              name="two-files")
    job, build, lines = _build(client, "custom:two-files")
    assert job.status == FAILED
    assert "step deploy-block: Succeeded" in lines and any(
        ln.startswith("step build-finish: Failed") for ln in lines)
    for error in (job.error, build.error):
        assert "deploy block custom:two-files@1" in error, error
        assert "exactly one artifact file" in error and "one.bin, two.bin" in error
    _nothing_stored(local_platform, trained, build)


def test_builtin_format_goes_through_the_same_pipeline(
    local_platform: RunningPlatform, trained: Trained, tmp_path: Path
) -> None:
    client = trained.client
    job, build, lines = _build(client, "c-library")
    assert job.status == SUCCEEDED, job.error + "\n".join(lines[-30:])
    assert "step build: Succeeded" in lines and "step build-finish: Succeeded" in lines
    assert any(ln.startswith("step deploy-block: Skipped") for ln in lines)
    assert not any(ln.startswith("[deploy-block]") for ln in lines)
    assert build.state == bpb.BUILD_STATE_READY
    result = job_result(job)
    assert result["build_id"] == build.id and result["sha256"] == build.artifact_sha256
    path, _, sha = client.download_artifact(build.id, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha == build.artifact_sha256
    assert json.loads(build.metrics_json)["verified_on"]
