"""A block as a step of a Hera workflow run by the LocalRunner, through its local command.

The step is written for the container (image = the block image, paths under /block/in and
/block/out); ``executor_for_block(engine="local")`` maps those paths to host directories, so the
same definition runs without podman. The podman leg of this is in test_podman_e2e.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from hera.workflows import DAG, Container, Parameter, WorkflowTemplate

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tinyforge.blocks.run import executor_for_block, resolve_block, run_block
from tinyforge.workflows.executors import LocalProcessExecutor
from tinyforge.workflows.runner import LocalRunner


def _workflow(image: str, out_dir: Path) -> WorkflowTemplate:
    count = (
        "import numpy as np, os, pathlib;"
        f"f = np.load({str(out_dir / 'features.npy')!r});"
        "p = pathlib.Path(os.environ['TINYFORGE_OUTPUT_ROOT']) / 'tmp/rows';"
        "p.parent.mkdir(parents=True, exist_ok=True); p.write_text(str(f.shape[0]))"
    )
    with WorkflowTemplate(
        name="block-features",
        entrypoint="main",
        arguments=[Parameter(name="params", value='{"axes": 3, "bands": 4}')],
    ) as wt:
        block = Container(
            name="block",
            image=image,
            args=[
                "--in", "/block/in/X.npy", "--out", "/block/out/features.npy",
                "--params", "{{workflow.parameters.params}}",
            ],
            active_deadline_seconds=120,
        )  # fmt: skip
        rows = Container(
            name="rows",
            image="tinyforge/platform",
            command=[sys.executable, "-c", count],
            outputs=[Parameter(name="rows", value_from={"path": "/tmp/rows"})],
        )
        with DAG(name="main"):
            block(name="block") >> rows(name="rows")
    return wt


def test_block_step_runs_in_local_runner_via_local_command(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 64 * 3)).astype(np.float32)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "X.npy", x)
    out = tmp_path / "wf-out"
    out.mkdir()
    block = resolve_block(EXAMPLE_BLOCKS / "zcr-bands")
    assert block.image is not None
    block_exec = executor_for_block(
        block,
        volumes=[(tmp_path / "in", "/block/in", True), (out, "/block/out", False)],
        engine="local",
    )
    local = LocalProcessExecutor()
    runner = LocalRunner(executor_for_image=lambda img: block_exec if img == block.image else local)
    lines: list[str] = []
    run = runner.run(_workflow(block.image, out), log=lines.append)
    assert run.phase == "Succeeded", run.message + "\n" + "\n".join(lines)
    assert run.node("rows").outputs["rows"] == "20"
    assert "[block] 20 windows x 3 axes -> features (20, 15)" in lines
    direct = run_block(
        block, tmp_path / "in" / "X.npy", tmp_path / "direct",
        params={"axes": 3, "bands": 4}, engine="local",
    )  # fmt: skip
    assert direct.files == ["features.npy"]
    np.testing.assert_array_equal(
        np.load(out / "features.npy"), np.load(tmp_path / "direct" / "features.npy")
    )
    # Bad parameters make the block fail; the node says why and the next step never runs.
    bad = runner.run(_workflow(block.image, out), {"params": json.dumps({"axes": 5})})
    assert bad.phase == "Failed"
    assert "exit code 1" in bad.node("block").message
    assert "expected N x T x C or N x (T*5)" in bad.node("block").message
    assert bad.node("rows").phase == "Omitted"
