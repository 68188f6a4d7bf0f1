"""Container failures of a block step end the transformation run with a clear message and
ingest nothing: a block over its memory limit (podman's OOM kill, from ``info.resources``) and a
registered image nobody serves. Local commands are disabled, so only podman could run them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.blocks.conftest import busybox_image  # noqa: F401  (fixture)
from tests.blocks.test_podman_blocks import shell_block  # noqa: F401  (fixture)
from tests.transform.conftest import register
from tests.transform.test_transform_pipeline import _ingested, _job, _run, _staged

pytestmark = pytest.mark.podman


def _files(platform: Any, pid: int) -> str:
    platform.ctx.objects.put_bytes(f"projects/{pid}/files/c/a.csv", b"t,x\n0,1\n10,2\n")
    return f"prefix:projects/{pid}/files/c"


def test_block_over_its_memory_limit_fails_the_run(
    platform: Any, tenant: Any, shell_block: Path, tmp_path: Path, monkeypatch  # noqa: F811
) -> None:
    from tinyforge.blocks.run import resolve_block

    image = resolve_block(shell_block).image
    limited = tmp_path / "limited"
    shutil.copytree(shell_block, limited)
    doc = json.loads((limited / "parameters.json").read_text())
    doc["info"]["resources"] = {"memoryMb": 32}
    (limited / "parameters.json").write_text(json.dumps(doc))
    ref = register(platform, tenant.org_id, limited, "shell-32m", image=image)
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    pid = tenant.project_id
    job_id = _job(platform, pid)
    run, lines = _run(platform, pid, job_id, block=ref, source=_files(platform, pid),
                      parameters=json.dumps({"mode": "oom"}))
    assert run.phase == "Failed", "\n".join(lines)
    node = run.node("run-block")
    assert "OOMKilled" in node.message and "allocating" in node.message, node.message
    assert _ingested(platform, pid, job_id) == [] and _staged(platform, pid) == []


def test_unreachable_block_image_fails_the_run(
    platform: Any, tenant: Any, shell_block: Path, monkeypatch  # noqa: F811
) -> None:
    ref = register(platform, tenant.org_id, shell_block, "shell-gone",
                   image="127.0.0.1:9/tinyforge-blocks/nothing:1")
    monkeypatch.setenv("TINYFORGE_BLOCKS_LOCAL_COMMANDS", "0")
    pid = tenant.project_id
    job_id = _job(platform, pid)
    run, lines = _run(platform, pid, job_id, block=ref, source=_files(platform, pid))
    assert run.phase in ("Failed", "Error"), "\n".join(lines)
    msg = run.node("run-block").message
    assert "127.0.0.1:9/tinyforge-blocks/nothing:1" in msg, msg
    assert _ingested(platform, pid, job_id) == [] and _staged(platform, pid) == []
