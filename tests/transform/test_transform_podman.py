"""End to end with containers: build the resample-csv block image from the local Debian base,
push it to a real loopback OCI registry, register it through the platform's BlockService, drop
the local image, and run ``tinyforge-transform`` with the local runner: the block step pulls and
runs the image under podman (local commands are disabled, so nothing else could run it), with
its input and output handed over as S3 artifacts of the platform's object store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hera_workflows.local import run_pipeline
from hera_workflows.transform import NAME
from tests.transform.conftest import RESAMPLE, har_csv
from tests.transform.test_transform_pipeline import (
    TARGET_HZ,
    _check_resampled,
    _ingested,
    _job,
    _staged,
)

pytestmark = [pytest.mark.slow, pytest.mark.podman]


def test_pushed_block_image_runs_in_the_transform_pipeline(
    platform: Any, tenant: Any, base_image: str, oci_registry: Any, har: Any, monkeypatch
) -> None:
    from tinyforge.blocks.images import build_block_image, push_block_image, remove_image
    from tinyforge.workflows.podman import image_exists

    local = build_block_image(RESAMPLE, tag="transform-e2e", base_image=base_image)
    remote = push_block_image(local, oci_registry.address)
    remove_image(local)
    remove_image(remote)
    assert not image_exists(remote)
    try:
        client = tenant.client()
        reg = client.register_block_dir(RESAMPLE, name="resample-e2e", image=remote)
        monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
        pid = tenant.project_id
        rows_of = {}
        for activity in ("walking", "stationary"):
            data, rows_of[activity] = har_csv(har, activity, 1)
            platform.ctx.objects.put_bytes(f"projects/{pid}/files/e2e/{activity}/a.csv", data)
        job_id = _job(platform, pid)
        lines: list[str] = []
        run = run_pipeline(
            platform.ctx,
            NAME,
            {
                "job-id": str(job_id),
                "project-id": str(pid),
                "block": f"resample-e2e@{reg.version}",
                "source": f"prefix:projects/{pid}/files/e2e",
                "parameters": json.dumps({"target-frequency": TARGET_HZ}),
            },
            log=lines.append,
        )
        assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines)
        assert image_exists(remote)  # pulled from the registry for the block step
        assert run.node("plan").outputs["image"] == remote
        new = _ingested(platform, pid, job_id)
        assert sorted(s.label for s in new) == ["stationary", "walking"]
        for s in new:
            _check_resampled(platform, s, rows_of[s.label])
        assert _staged(platform, pid) == []
    finally:
        remove_image(remote)
