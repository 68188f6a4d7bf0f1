"""The pipelines in hera_workflows/: schema-valid Argo objects, and runnable locally with the
same result as running the stages directly."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import numpy as np
import pytest

from hera_workflows import PIPELINES
from hera_workflows.features import NAME as FEATURES
from hera_workflows.local import run_pipeline
from hera_workflows.render import DEFAULT_OUT, render_all
from tests.crd_schemas import SCHEMAS, crd_errors
from tests.dsp_service.conftest import make_synthetic, ts_impulse
from tinyforge.dsp.registry import get_block
from tinyforge.features.generate import dataset_samples, load_windows
from tinyforge.features.store import load_features
from tinyforge.impulse import Impulse
from tinyforge.store.models import JobLog


def _need_schemas() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"../shared/schemas not present at {SCHEMAS}: cannot validate CRDs")


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_is_a_schema_valid_workflow_template(name: str) -> None:
    _need_schemas()
    doc = PIPELINES[name]().to_dict()
    assert doc["kind"] == "WorkflowTemplate"
    assert crd_errors(doc) == []


def test_a_broken_template_is_rejected_by_the_schema() -> None:
    _need_schemas()
    doc = PIPELINES[FEATURES]().to_dict()
    typo = copy.deepcopy(doc)
    typo["spec"]["entrypiont"] = typo["spec"].pop("entrypoint")
    assert any("entrypiont" in e for e in crd_errors(typo))
    wrong_type = copy.deepcopy(doc)
    wrong_type["spec"]["templates"][0]["retryStrategy"]["limit"] = [3]
    assert crd_errors(wrong_type)


def test_chart_ships_the_current_rendering() -> None:
    for name, text in render_all().items():
        path = DEFAULT_OUT / f"{name}.yaml"
        assert path.is_file() and path.read_text() == text, f"{path} is stale: make workflows"


def _job(platform: Any, project_id: int) -> int:
    """A job row to track the run (the exit handler logs on it)."""
    with platform.ctx.db.session() as s:
        return platform.ctx.jobs.create(s, project_id, "dsp.generate_features", {}).id


def test_feature_pipeline_fans_out_locally_and_equals_the_blocks(platform, tenant, client) -> None:
    make_synthetic(client, tenant.project_id, per_class=5)
    definition = ts_impulse()
    imp = client.create_impulse("pipeline", definition)
    job_id = _job(platform, tenant.project_id)
    lines: list[str] = []
    run = run_pipeline(
        platform.ctx,
        FEATURES,
        {
            "job-id": str(job_id),
            "project-id": str(tenant.project_id),
            "impulse-id": str(imp.impulse_id),
            "version": "0",
            "max-shards": "3",
            "min-samples-per-shard": "2",
        },
        log=lines.append,
    )
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines[-20:])
    shards = run.node("shard").children
    assert len(shards) == 3 and all(c.phase == "Succeeded" for c in shards)
    done = [re.search(r"shard \d+/3: (\d+) samples processed", ln) for ln in lines]
    processed = sum(int(m.group(1)) for m in done if m)
    assert processed == 10  # every sample computed exactly once across the shards
    # the exit handler ran as a real step and logged on the job
    with platform.ctx.db.session() as s:
        logs = [r.line for r in s.query(JobLog).filter(JobLog.job_id == job_id)]
    assert "workflow finished: Succeeded" in logs

    # Same features as running each stage directly: window every sample, run each block.
    impulse = Impulse.from_json(json.dumps(definition)).validate()
    refs = dataset_samples(platform.ctx.db, platform.ctx.objects, tenant.project_id)
    for block in impulse.processing:
        fm = load_features(platform.ctx.objects, tenant.project_id, imp.impulse_id, 1, block.name)
        b = get_block(block.block)
        cols = [impulse.input.axes.index(a) for a in impulse.block_axes(block)]
        expected = []
        for ref in sorted(refs, key=lambda r: r.id):
            windows, _starts = load_windows(platform.ctx.objects, ref, impulse)
            expected.append(
                b.features_batch(windows[..., cols], impulse.input.frequency_hz, block.params)
            )
        np.testing.assert_allclose(fm.X, np.concatenate(expected), rtol=1e-6, atol=1e-6)


def test_failing_pipeline_step_fails_the_run_and_publishes_nothing(platform, tenant) -> None:
    job_id = _job(platform, tenant.project_id)
    run = run_pipeline(
        platform.ctx,
        FEATURES,
        {"job-id": str(job_id), "project-id": str(tenant.project_id), "impulse-id": "999999"},
    )
    assert run.phase == "Failed", run.message
    assert run.node("plan").phase == "Failed"
    assert "impulse" in run.node("plan").message.lower()
    assert run.node("publish").phase == "Omitted"
    assert list(platform.ctx.objects.list(f"projects/{tenant.project_id}/features/")) == []
