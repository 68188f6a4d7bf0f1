"""``tinyforge-transform`` end to end on the real platform: the local runner walks the same
WorkflowTemplate the cluster gets, the example resample-csv block runs as its registered local
command (from its stored source archive), and its output is ingested as samples."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hera_workflows.local import run_pipeline
from hera_workflows.transform import NAME
from tests.blocks.conftest import make_block
from tests.transform.conftest import HAR_HZ, RESAMPLE, har_csv, register
from tinyforge.data.canonical import TimeSeries
from tinyforge.data.samples import SampleStore, UploadOptions
from tinyforge.transform.ingest import upload_tag

TARGET_HZ = 50.0


def _job(platform: Any, project_id: int) -> int:
    """A job row tracking the run (the exit handler logs on it)."""
    with platform.ctx.db.session() as s:
        return platform.ctx.jobs.create(s, project_id, "dsp.generate_features", {}).id


def _run(platform: Any, project_id: int, job_id: int, **params: str) -> tuple[Any, list[str]]:
    lines: list[str] = []
    run = run_pipeline(
        platform.ctx,
        NAME,
        {"job-id": str(job_id), "project-id": str(project_id), **params},
        log=lines.append,
    )
    return run, lines


def _ingested(platform: Any, project_id: int, job_id: int) -> list[Any]:
    store = SampleStore(platform.ctx.db, platform.ctx.objects)
    return [s for s in store.iter_all(project_id) if s.upload_source == upload_tag(job_id)]


def _staged(platform: Any, project_id: int) -> list[str]:
    return [i.key for i in platform.ctx.objects.list(f"projects/{project_id}/transform/")]


def _check_resampled(platform: Any, sample: Any, rows: np.ndarray) -> None:
    """``sample`` holds ``rows`` (timestamp ms + 3 axes at 26 Hz) linearly resampled to 50 Hz."""
    series = TimeSeries.from_bytes(platform.ctx.objects.get_bytes(sample.canonical_key))
    assert sample.interval_ms == pytest.approx(1000.0 / TARGET_HZ)
    duration_s = (len(rows) - 1) / HAR_HZ
    assert series.values.shape == (math.floor(duration_s * TARGET_HZ + 1e-9) + 1, 3)
    t_new = np.arange(series.values.shape[0]) * 1000.0 / TARGET_HZ
    for axis in range(3):
        expected = np.interp(t_new, rows[:, 0], rows[:, axis + 1])
        np.testing.assert_allclose(series.values[:, axis], expected, rtol=1e-5, atol=1e-3)


def test_dataset_source_is_resampled_and_ingested_with_its_labels(platform, tenant, har) -> None:
    pid = tenant.project_id
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    store = SampleStore(platform.ctx.db, platform.ctx.objects)
    originals: dict[str, tuple[str, np.ndarray]] = {}
    for activity, label, i in [
        ("walking", "walking", 0),
        ("walking", "walking", 1),
        ("stationary", "at rest", 0),  # a label object keys cannot spell
    ]:
        data, rows = har_csv(har, activity, i)
        name = f"{activity}.{i}.csv"
        store.ingest_bytes(
            pid, data, UploadOptions(category="training", label=label, filename=name)
        )
        originals[name] = (label, rows)
    # a testing sample: not selected by dataset:training
    data, _rows = har_csv(har, "running", 0)
    store.ingest_bytes(
        pid, data, UploadOptions(category="testing", label="running", filename="r.csv")
    )

    job_id = _job(platform, pid)
    run, lines = _run(
        platform,
        pid,
        job_id,
        block=block,
        source="dataset:training",
        parameters=json.dumps({"target-frequency": TARGET_HZ}),
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines)
    summary = json.loads(run.node("ingest").outputs["summary"])
    new = _ingested(platform, pid, job_id)
    assert sorted(s.id for s in new) == sorted(summary["sample_ids"])
    assert summary["input_files"] == 3 and summary["output_files"] == 3 and summary["samples"] == 3
    assert summary["labels"] == {"at rest": 1, "walking": 2}
    assert summary["block"] == block and summary["source"] == "dataset:training"
    assert sum(summary["categories"].values()) == 3
    assert set(summary["categories"]) <= {"training", "testing"}  # split by content hash
    by_name = {s.filename: s for s in new}
    assert set(by_name) == set(originals)
    for name, (label, rows) in originals.items():
        assert by_name[name].label == label
        assert by_name[name].sample_metadata["transform_block"] == block
        _check_resampled(platform, by_name[name], rows)
    assert _staged(platform, pid) == []  # staged input and block output removed
    assert any(line.startswith("[run-block] ") for line in lines)  # the block's own output


def test_prefix_source_labels_from_folders_or_as_given(platform, tenant, har) -> None:
    pid = tenant.project_id
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    objects = platform.ctx.objects
    rows_of = {}
    for activity in ("walking", "stationary"):
        data, rows = har_csv(har, activity, 0)
        objects.put_bytes(f"projects/{pid}/files/har/{activity}/{activity}.csv", data)
        rows_of[activity] = rows
    objects.put_bytes(f"projects/{pid}/files/other/ignored.csv", har_csv(har, "running", 0)[0])

    job_id = _job(platform, pid)
    run, lines = _run(
        platform,
        pid,
        job_id,
        block=block,
        source=f"prefix:projects/{pid}/files/har",
        parameters=json.dumps({"target_frequency": TARGET_HZ}),
        category="testing",
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines)
    new = _ingested(platform, pid, job_id)
    assert sorted((s.label, s.category, s.filename) for s in new) == [
        ("stationary", "testing", "stationary.csv"),
        ("walking", "testing", "walking.csv"),
    ]
    for s in new:
        _check_resampled(platform, s, rows_of[s.label])
    # the source objects stay; only the job's staging keys are gone
    assert len(list(objects.list(f"projects/{pid}/files/"))) == 3
    assert _staged(platform, pid) == []

    job2 = _job(platform, pid)
    run, lines = _run(
        platform,
        pid,
        job2,
        block=block,
        source=f"prefix:projects/{pid}/files/har/walking/",
        parameters=json.dumps({"target_frequency": TARGET_HZ}),
        category="anomaly",
        label="gait",
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines)
    assert [(s.label, s.category) for s in _ingested(platform, pid, job2)] == [("gait", "anomaly")]
    assert json.loads(run.node("ingest").outputs["summary"])["labels"] == {"gait": 1}


FAILING = {
    "exits-non-zero": (
        "import sys\nprint('reading input')\nprint('boom: cannot parse sensor file', "
        "file=sys.stderr)\nsys.exit(3)\n",
        ["exit code 3", "boom: cannot parse sensor file"],
    ),
    "writes-nothing": (
        "print('nothing worth writing here')\n",
        ["wrote no output"],
    ),
    "writes-unparseable": (
        "import argparse, pathlib, shutil\n"
        "ap = argparse.ArgumentParser(); ap.add_argument('--in-directory');"
        " ap.add_argument('--out-directory'); a = ap.parse_args()\n"
        "out = pathlib.Path(a.out_directory); out.mkdir(parents=True, exist_ok=True)\n"
        "for p in pathlib.Path(a.in_directory).rglob('*.csv'):\n"
        "    shutil.copy(p, out / ('a-' + p.name))\n"
        "(out / 'z-broken.csv').write_text('time,value\\nnoon,high\\n')\n"
        "print('wrote outputs')\n",
        ["output file 'z-broken.csv' cannot be ingested", "invalid CSV"],
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_failing_block_fails_the_run_and_ingests_nothing(
    platform, tenant, har, tmp_path: Path, case: str
) -> None:
    pid = tenant.project_id
    script, expected = FAILING[case]
    block_dir = make_block(tmp_path / case, script, name=f"Failing {case}")
    block = register(platform, tenant.org_id, block_dir, case)
    objects = platform.ctx.objects
    objects.put_bytes(f"projects/{pid}/files/in/walking/w.csv", har_csv(har, "walking", 0)[0])
    before = SampleStore(platform.ctx.db, objects).summary(pid)
    job_id = _job(platform, pid)
    run, lines = _run(platform, pid, job_id, block=block, source=f"prefix:projects/{pid}/files/in")
    assert run.phase == "Failed"
    for text in expected:
        assert text in run.message, run.message + "\n--- run log ---\n" + "\n".join(lines)
    assert _ingested(platform, pid, job_id) == []
    assert SampleStore(platform.ctx.db, objects).summary(pid) == before
    assert _staged(platform, pid) == []  # the exit handler cleaned up
    assert run.exit_handler is not None and run.exit_handler.phase == "Succeeded"
    if case == "writes-nothing":  # the block's own words are in the run's log
        assert "[run-block] nothing worth writing here" in lines


def test_bad_requests_fail_in_plan_naming_the_parameter(platform, tenant, har) -> None:
    pid = tenant.project_id
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    other = tenant.new_project()
    platform.ctx.objects.put_bytes(f"projects/{other}/files/x/a.csv", har_csv(har, "walking", 0)[0])
    platform.ctx.objects.put_bytes(f"projects/{pid}/files/x/a.csv", har_csv(har, "walking", 0)[0])
    cases = [
        ({"parameters": json.dumps({"target-frequency": -5})}, "parameters.target_frequency"),
        ({"source": f"prefix:projects/{other}/files/x"}, f"projects/{pid}/files/"),
    ]
    for override, expected in cases:
        job_id = _job(platform, pid)
        params = {"block": block, "source": f"prefix:projects/{pid}/files/x", **override}
        run, _lines = _run(platform, pid, job_id, **params)
        assert run.phase == "Failed", override
        plan = run.node("plan")
        assert plan.phase == "Failed" and plan.attempts == 1  # bad input: exit 2, no retry
        assert expected in run.message, (override, run.message)
        assert run.node("run-block").phase == "Omitted"
        assert _ingested(platform, pid, job_id) == []
    assert _staged(platform, pid) == []


def test_job_on_the_local_engine_returns_the_ingest_summary(platform, tenant, har) -> None:
    """``run_pipeline_job`` with engine ``local``: what a service's job runs in embedded mode."""
    import dataclasses

    from hera_workflows.jobs import run_pipeline_job
    from tinyforge.jobs.registry import register_job_kind
    from tinyforge.store.models import JobStatus
    from tinyforge.transform.run import run_transform

    local_ctx = dataclasses.replace(
        platform.ctx, settings=dataclasses.replace(platform.ctx.settings, workflow_engine="local")
    )

    def job_fn(job: Any, params: dict[str, Any]) -> dict[str, Any]:
        return run_pipeline_job(
            job,
            local_ctx,
            NAME,
            params,
            inprocess=lambda: run_transform(local_ctx, job, job.project_id, params),
        )

    register_job_kind("test.transform-local", job_fn, replace=True)
    pid = tenant.project_id
    block = register(platform, tenant.org_id, RESAMPLE, "resample-csv")
    data, rows = har_csv(har, "running", 0)
    platform.ctx.objects.put_bytes(f"projects/{pid}/files/r/running/r.csv", data)
    params = {"block": block, "source": f"prefix:projects/{pid}/files/r", "frequency": ""}
    job_id = platform.ctx.jobs.submit(pid, "test.transform-local", params)
    job = platform.ctx.jobs.wait(job_id, timeout=180)
    assert job.status == JobStatus.SUCCEEDED, job.error
    (sample,) = _ingested(platform, pid, job_id)
    assert job.result["sample_ids"] == [sample.id] and job.result["labels"] == {"running": 1}
    doc = json.loads((RESAMPLE / "parameters.json").read_text())
    default_hz = next(p["value"] for p in doc["parameters"] if p["param"] == "target-frequency")
    assert sample.interval_ms == pytest.approx(1000.0 / default_hz)  # no parameters given
    logs = [r.line for r in platform.ctx.jobs.logs(job_id)]
    assert any(line.startswith("[run-block] ") for line in logs)
