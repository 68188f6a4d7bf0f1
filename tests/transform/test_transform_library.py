"""The transformation library without the pipeline: request parsing, key naming, planning,
the executor choice for block images, and ``run_transform`` (the inprocess engine) as a job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hera_workflows.local import BlockStepExecutor, executor_for_image
from tests.blocks.conftest import EXAMPLE_BLOCKS, make_block
from tests.transform.conftest import RESAMPLE, har_csv, register
from tinyforge.blocks.contract import block_args
from tinyforge.blocks.manifest import load_manifest
from tinyforge.data.samples import SampleStore
from tinyforge.errors import FailedPrecondition, InvalidArgument, NotFound
from tinyforge.jobs.registry import register_job_kind
from tinyforge.store.models import JobStatus
from tinyforge.store.objects import validate_key
from tinyforge.transform.ingest import upload_tag
from tinyforge.transform.run import run_transform
from tinyforge.transform.source import (
    decode_segment,
    encode_segment,
    parse_request,
    parse_source,
)
from tinyforge.transform.stage import plan_transform
from tinyforge.workflows.executors import LocalProcessExecutor


@pytest.mark.parametrize(
    "name", ["walking", "at rest", "a=b", ".hidden", "straße/ü", "x=41", "100%", "a..b"]
)
def test_segment_encoding_roundtrips_and_makes_valid_keys(name: str) -> None:
    seg = encode_segment(name)
    assert validate_key(f"p/{seg}") == f"p/{seg}"
    assert decode_segment(seg) == name


def test_sources_parse_or_fail_naming_the_source() -> None:
    assert parse_source("dataset", 7).category == ""
    s = parse_source("dataset:training/slow walk", 7)
    assert (s.kind, s.category, s.label) == ("dataset", "training", "slow walk")
    assert parse_source("prefix:projects/7/files/raw", 7).prefix == "projects/7/files/raw/"
    assert parse_source("prefix:projects/7/files/", 7).prefix == "projects/7/files/"
    bad = [
        "dataset:validation",
        "prefix:projects/8/files/raw",
        "prefix:projects/7/raw/1",
        "prefix:projects/7/files/../../8/files",
        "prefix:",
        "bucket:x",
        "",
    ]
    for text in bad:
        with pytest.raises(InvalidArgument) as err:
            parse_source(text, 7)
        assert err.value.field == "source", text


def test_request_checks_every_parameter() -> None:
    ok = parse_request(
        3,
        {
            "block": "custom:resample-csv@2",
            "source": "dataset",
            "parameters": '{"target-frequency": 10}',
            "label": " idle ",
            "frequency": "26",
        },
    )
    assert (ok.block, ok.version, ok.label, ok.frequency_hz) == ("resample-csv", 2, "idle", 26.0)
    assert ok.params == {"target_frequency": 10} and ok.category == "split"
    base = {"block": "b", "source": "dataset"}
    for extra, field in [
        ({"block": "Bad Name"}, "block"),
        ({"parameters": "[1]"}, "parameters"),
        ({"parameters": "{nope"}, "parameters"),
        ({"category": "validation"}, "category"),
        ({"frequency": "-1"}, "frequency"),
        ({"frequency": "fast"}, "frequency"),
        ({"colour": "red"}, "colour"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            parse_request(3, {**base, **extra})
        assert err.value.field == field, extra


def test_plan_resolves_the_block_and_carries_its_args_and_resources(platform, tenant, har) -> None:
    pid = tenant.project_id
    register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    platform.ctx.objects.put_bytes(f"projects/{pid}/files/a/w.csv", har_csv(har, "walking", 0)[0])
    req = parse_request(
        pid,
        {"block": "resample-csv", "source": f"prefix:projects/{pid}/files/a",
         "parameters": json.dumps({"target-frequency": 20})},
    )  # fmt: skip
    plan = plan_transform(platform.ctx.db, platform.ctx.objects, pid, 41, req)
    manifest = load_manifest(RESAMPLE)
    expected_args = block_args(
        manifest, in_path="/block/in", in_is_file=False, out_dir="/block/out",
        params={"target_frequency": 20},
    )  # fmt: skip
    assert plan.args == expected_args
    assert plan.args[:4] == ["--in-directory", "/block/in", "--out-directory", "/block/out"]
    res = json.loads(RESAMPLE.joinpath("parameters.json").read_text())["info"]["resources"]
    patch = json.loads(plan.pod_spec_patch)
    (main,) = patch["containers"]
    assert main["name"] == "main" and main["args"] == expected_args
    assert main["resources"]["limits"]["memory"] == f"{res['memoryMb']}Mi"
    assert main["resources"]["limits"]["cpu"] == f"{res['cpus']:g}"
    assert patch["activeDeadlineSeconds"] == res["timeoutSeconds"]
    assert plan.in_key == f"projects/{pid}/files/a"  # a prefix is read where it is
    assert plan.out_key == f"projects/{pid}/transform/41/out"
    assert plan.image.startswith("tinyforge-local-block/")  # registered without an image
    assert plan.inputs == 1 and plan.block_ref == "resample-csv@1"


def test_plan_rejects_wrong_blocks_and_empty_sources(platform, tenant, monkeypatch) -> None:
    pid = tenant.project_id
    db, objects = platform.ctx.db, platform.ctx.objects
    register(platform, tenant.org_id, EXAMPLE_BLOCKS / "zcr-bands", "zcr")
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")

    def plan(**params: str) -> Any:
        return plan_transform(db, objects, pid, 5, parse_request(pid, params))

    with pytest.raises(InvalidArgument, match="is a dsp block") as err:
        plan(block="zcr", source="dataset")
    assert err.value.field == "block"
    with pytest.raises(NotFound, match="missing") as err:
        plan(block="missing", source="dataset")
    assert err.value.field == "block"
    with pytest.raises(InvalidArgument, match="parameters.time_column") as err:
        plan(block=block, source="dataset", parameters='{"time-column": 3}')
    with pytest.raises(InvalidArgument, match="no samples") as err:
        plan(block=block, source="dataset:anomaly")
    with pytest.raises(InvalidArgument, match="no objects under"):
        plan(block=block, source=f"prefix:projects/{pid}/files/empty")
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    with pytest.raises(FailedPrecondition, match="local command is disabled"):
        plan(block=block, source="dataset")
    assert list(objects.list(f"projects/{pid}/transform/")) == []


def test_block_images_run_as_registered_local_command_without_platform_env(
    platform, tenant, tmp_path: Path, monkeypatch
) -> None:
    """An image nobody can pull falls back to the version's local command; the step gets
    none of the platform's TINYFORGE_* settings."""
    script = "import os\nprint('db=' + os.environ.get('TINYFORGE_DATABASE_URL', 'unset'))\n"
    block_dir = make_block(tmp_path / "envblock", script, name="Env block")
    image = "127.0.0.1:9/nowhere/env-block:1"  # port 9 (discard): nothing answers
    register(platform, tenant.org_id, block_dir, "env-block", image=image)
    ex = executor_for_image(image, platform.ctx, tenant.org_id)
    assert isinstance(ex, BlockStepExecutor) and ex.engine == "local"
    lines: list[str] = []
    proc = ex.run(
        [], image=image, env={"TINYFORGE_DATABASE_URL": "sqlite:///secret.db", "X": "1"},
        workdir=tmp_path, mounts={}, timeout_s=60, log=lines.append, cancelled=lambda: False,
    )  # fmt: skip
    assert proc.exit_code == 0 and lines == ["db=unset"]
    # unknown images (not registered in this org) are not run as local commands
    other_org = platform.new_tenant().org_id
    assert getattr(executor_for_image(image, platform.ctx, other_org), "engine", "") == "podman"
    assert isinstance(executor_for_image("tinyforge/platform"), LocalProcessExecutor)
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "false")
    blocked = executor_for_image(image, platform.ctx, tenant.org_id)
    with pytest.raises(FileNotFoundError, match="local commands are disabled"):
        blocked.run([], image=image, env={}, workdir=tmp_path, mounts={}, timeout_s=1,
                    log=print, cancelled=lambda: False)  # fmt: skip


def _transform_job(job: Any, params: dict[str, Any]) -> dict[str, Any]:
    return run_transform(job.platform, job, job.project_id, params)


def test_run_transform_is_the_inprocess_engine(platform, tenant, har, tmp_path: Path) -> None:
    register_job_kind("test.transform", _transform_job, replace=True)
    pid = tenant.project_id
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    objects = platform.ctx.objects
    objects.put_bytes(f"projects/{pid}/files/h/walking/w.csv", har_csv(har, "walking", 0)[0])
    objects.put_bytes(f"projects/{pid}/files/h/stationary/s.csv", har_csv(har, "stationary", 0)[0])
    params = {"block": block, "source": f"prefix:projects/{pid}/files/h",
              "parameters": '{"target_frequency": 50}', "category": "training"}  # fmt: skip
    job_id = platform.ctx.jobs.submit(pid, "test.transform", params)
    job = platform.ctx.jobs.wait(job_id, timeout=120)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["samples"] == 2 and job.result["labels"] == {"stationary": 1, "walking": 1}
    store = SampleStore(platform.ctx.db, objects)
    new = [s for s in store.iter_all(pid) if s.upload_source == upload_tag(job_id)]
    assert sorted(s.id for s in new) == sorted(job.result["sample_ids"])
    assert all(s.interval_ms == pytest.approx(20.0) and s.category == "training" for s in new)
    assert list(objects.list(f"projects/{pid}/transform/")) == []

    script = (
        "import sys\nprint('loading model weights')\n"
        "print('fatal: no GPU', file=sys.stderr)\nsys.exit(4)\n"
    )
    bad = register(platform, tenant.org_id, make_block(tmp_path / "bad", script, name="Bad"), "bad")
    job_id = platform.ctx.jobs.submit(
        pid, "test.transform", {**params, "block": bad, "parameters": "{}"}
    )
    job = platform.ctx.jobs.wait(job_id, timeout=120)
    assert job.status == JobStatus.FAILED
    assert "exited with code 4" in job.error and "fatal: no GPU" in job.error  # the log tail
    assert [s for s in store.iter_all(pid) if s.upload_source == upload_tag(job_id)] == []
    assert list(objects.list(f"projects/{pid}/transform/")) == []
