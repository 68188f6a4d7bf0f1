"""TINYFORGE_WORKFLOW_ENGINE=local end to end: GenerateFeatures through the gRPC API runs the
feature pipeline's Hera definition with the local runner (each step a local process) and gives
the same features as the in-process engine; the steps' logs reach WatchJob; cancelling the job
stops the running step processes (and what they started)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import RunningPlatform, make_settings, start_platform, stop_platform
from tests.dsp_service.conftest import generate, make_synthetic, ts_impulse
from tinyforge.config import Settings
from tinyforge.features import load_features
from tinyforge.v1 import common_pb2


@pytest.fixture(scope="module")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    data_dir = tmp_path_factory.mktemp("local-engine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYFORGE_WORKFLOW_ENGINE", "local")
        engine = Settings.from_env().workflow_engine
    assert engine == "local"
    p = start_platform(data_dir, workflow_engine=engine)
    assert make_settings(data_dir).workflow_engine == "inprocess"  # the default, for contrast
    yield p
    stop_platform(p)


def _features(p: RunningPlatform, project_id: int, impulse_id: int, block: str) -> Any:
    return load_features(p.ctx.objects, project_id, impulse_id, 1, block)


def test_local_engine_gives_the_inprocess_features(platform, local_platform) -> None:
    runs = {}
    for engine, p in (("inprocess", platform), ("local", local_platform)):
        assert p.ctx.settings.workflow_engine == engine
        tenant = p.new_tenant()
        client = tenant.client(default_project_id=tenant.project_id)
        make_synthetic(client, tenant.project_id, per_class=3, n=200)
        imp = client.create_impulse("same", ts_impulse())
        job, result, lines = generate(client, imp.impulse_id)
        assert job.status == common_pb2.JOB_STATUS_SUCCEEDED, job.error + "\n".join(lines[-20:])
        runs[engine] = (p, tenant.project_id, imp.impulse_id, job, result, lines)

    _, _, _, job, result, lines = runs["local"]
    # the pipeline's steps ran as processes and their output is the job's log
    assert "running pipeline tinyforge-generate-features with the local runner" in lines
    assert any(ln.startswith("[plan] ") and "samples to process" in ln for ln in lines)
    assert any(ln.startswith("[shard(0:") and "samples processed" in ln for ln in lines)
    assert any(ln.startswith("[publish] ") for ln in lines)
    assert job.progress == 1.0
    inproc = runs["inprocess"][4]
    for key in ("impulse_id", "version", "samples", "windows"):
        if key != "impulse_id":
            assert result[key] == inproc[key], key
    assert sorted(result["blocks"]) == sorted(inproc["blocks"])
    for block in result["blocks"]:
        a = _features(*runs["inprocess"][:3], block)
        b = _features(*runs["local"][:3], block)
        np.testing.assert_array_equal(a.X, b.X)
        assert a.labels == b.labels and a.classes == b.classes
        np.testing.assert_array_equal(a.window_index, b.window_index)
        assert result["blocks"][block]["shape"] == inproc["blocks"][block]["shape"]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _step_processes(data_dir: Path) -> list[int]:
    """Live ``tinyforge step`` processes working for the platform rooted at ``data_dir``."""
    marker = f"TINYFORGE_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"step" in cmd and marker in env and _alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def test_cancel_stops_the_running_step_processes(local_platform, tmp_path: Path) -> None:
    p = local_platform
    tenant = p.new_tenant()
    client = tenant.client(default_project_id=tenant.project_id)
    pids = tmp_path / "pids"
    pids.mkdir()
    block = tmp_path / "slow-block"
    block.mkdir()
    # a custom DSP block (local command) that records its pid and then takes its time
    (block / "main.py").write_text(
        "import os, time\n"
        f"open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close()\n"
        "print('block started', flush=True)\n"
        "time.sleep(300)\n"
    )
    (block / "parameters.json").write_text(
        json.dumps(
            {
                "version": 1,
                "type": "dsp",
                "info": {
                    "name": "Slow",
                    "localCommand": ["python3", "main.py"],
                    "resources": {"timeoutSeconds": 600},
                },
                "parameters": [],
            }
        )
    )
    make_synthetic(client, tenant.project_id, per_class=1, n=100)
    client.register_block_dir(block, name="slow")
    definition = ts_impulse()
    definition["processing"].append({"name": "slow", "block": "custom:slow", "params": {}})
    definition["learning"][0]["inputs"].append("slow")
    imp = client.create_impulse("slow", definition)
    resp = client.generate_features(imp.impulse_id)

    final, running, block_pid, lines = None, [], 0, []
    for event in client.watch_job(resp.job_id):
        if event.HasField("log"):
            lines.append(event.log.line)
            if "block started" in event.log.line and not block_pid:
                # the block runs as a step of its own (custom-dsp): its process is the step's
                block_pid = int(next(pids.iterdir()).name)
                running = _step_processes(p.ctx.settings.data_dir)
                assert _alive(block_pid)
                client.cancel_job(resp.job_id)
        else:
            final = event.job
    assert final is not None, lines
    assert final.status == common_pb2.JOB_STATUS_CANCELLED, final.error + "\n".join(lines[-20:])
    assert block_pid, "the block step never started: " + "\n".join(lines[-20:])
    assert not _alive(block_pid), "the block process survived the cancel"
    assert _step_processes(p.ctx.settings.data_dir) == []
    assert not any(_alive(pid) for pid in running)
    # nothing was published
    assert list(client.get_features(imp.impulse_id).blocks) == []
    assert os.path.isdir(pids)
