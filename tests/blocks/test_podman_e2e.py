"""End to end: build block images from the local Debian base, push them to a real loopback OCI
registry, drop the local copies, then pull and run them — inside a LocalRunner workflow (a Hera
WorkflowTemplate whose step image is the block image) and through ``blocks run-local IMAGE`` —
and check the results equal the blocks' local-command runs on the same data.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hera.workflows import DAG, Container, Parameter, WorkflowTemplate
from typer.testing import CliRunner

from tests.blocks.conftest import EXAMPLE_BLOCKS
from tinyforge.blocks.run import run_block
from tinyforge.cli.main import app
from tinyforge.workflows.executors import LocalProcessExecutor
from tinyforge.workflows.podman import PodmanExecutor, Volume, image_exists
from tinyforge.workflows.runner import LocalRunner

pytestmark = [pytest.mark.slow, pytest.mark.podman]


def _cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, f"tinyforge {' '.join(args)} failed:\n{res.output}"
    return res.stdout


def _har_windows(shared_datasets: Path) -> np.ndarray:
    f = shared_datasets / "har_stm32_accel" / "walking" / "walking_01_26Hz_4g_mg.csv"
    if not f.is_file():
        pytest.skip("../shared/datasets/har_stm32_accel not present")
    a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return np.stack([a[s : s + 52].reshape(-1) for s in range(0, len(a) - 52, 26)])


def test_push_pull_and_run_dsp_block_in_a_workflow(
    base_image: str, oci_registry, tmp_path: Path, shared_datasets: Path
) -> None:
    from tinyforge.blocks.images import remove_image

    block = EXAMPLE_BLOCKS / "zcr-bands"
    pushed = _cli("blocks", "push", str(block), "--registry", oci_registry.address)
    remote = pushed.strip().splitlines()[-1]
    assert remote == f"{oci_registry.address}/tinyforge-blocks/zcr-and-band-energies:latest"
    listing = _cli("blocks", "ls", "--registry", oci_registry.address)
    assert remote in listing.split()
    # Only the registry has the image now: the runner must pull it.
    remove_image("localhost/tinyforge-blocks/zcr-and-band-energies:latest")
    remove_image(remote)
    assert not image_exists(remote)

    x = _har_windows(shared_datasets)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "X.npy", x)
    wf_out = tmp_path / "wf-out"
    wf_out.mkdir()
    params = {"axes": 3, "bands": 4, "log_energy": True}
    summary = (
        "import numpy as np, os, pathlib;"
        f"f = np.load({str(wf_out / 'features.npy')!r});"
        "p = pathlib.Path(os.environ['TINYFORGE_OUTPUT_ROOT']) / 'tmp/shape';"
        "p.parent.mkdir(parents=True, exist_ok=True); p.write_text('x'.join(map(str, f.shape)))"
    )
    with WorkflowTemplate(
        name="custom-dsp-features",
        entrypoint="main",
        arguments=[Parameter(name="params", value=json.dumps(params))],
    ) as wt:
        features = Container(
            name="features",
            image=remote,
            args=[
                "--in", "/block/in/X.npy", "--out", "/block/out/features.npy",
                "--params", "{{workflow.parameters.params}}",
            ],
        )  # fmt: skip
        summarize = Container(
            name="summarize",
            image="tinyforge/platform",
            command=[sys.executable, "-c", summary],
            outputs=[Parameter(name="shape", value_from={"path": "/tmp/shape"})],
        )
        with DAG(name="main"):
            features(name="features") >> summarize(name="summarize")

    block_exec = PodmanExecutor(
        memory_mb=512, cpus=1, pids_limit=128,
        volumes=[Volume(data, "/block/in", True), Volume(wf_out, "/block/out", False)],
    )  # fmt: skip
    local = LocalProcessExecutor()
    lines: list[str] = []
    runner = LocalRunner(executor_for_image=lambda img: block_exec if img == remote else local)
    try:
        run = runner.run(wt, log=lines.append)
        assert run.phase == "Succeeded", f"{run.message}\n" + "\n".join(lines)
        assert image_exists(remote)  # pulled from the registry
        assert any(line == f"[features] pulling {remote}" for line in lines)
        assert run.node("summarize").outputs["shape"] == f"{len(x)}x15"

        # The same block through its local command gives the same features.
        run_block(block, data / "X.npy", tmp_path / "local", params=params, engine="local")
        np.testing.assert_allclose(
            np.load(wf_out / "features.npy"),
            np.load(tmp_path / "local" / "features.npy"),
            rtol=1e-5, atol=1e-6,
        )  # fmt: skip

        # A failing block step fails its node with the block's own error in the message.
        shutil.rmtree(wf_out)
        wf_out.mkdir()
        bad = runner.run(wt, {"params": json.dumps({"axes": 3, "bands": 64})})
        assert bad.phase == "Failed"
        node = bad.node("features")
        assert node.phase == "Failed" and "exit code 1" in node.message
        assert "too short for 64 bands" in node.message
        assert bad.node("summarize").phase == "Omitted"
    finally:
        remove_image(remote)


def test_run_local_pulls_a_transform_block_image_by_reference(
    base_image: str, oci_registry, tmp_path: Path, shared_datasets: Path
) -> None:
    from tinyforge.blocks.images import remove_image

    block = EXAMPLE_BLOCKS / "resample-csv"
    remote = _cli("blocks", "push", str(block), "--registry", oci_registry.address).split()[-1]
    remove_image("localhost/tinyforge-blocks/resample-csv:latest")
    remove_image(remote)
    har = shared_datasets / "har_stm32_accel" / "stationary"
    if not har.is_dir():
        pytest.skip("../shared/datasets/har_stm32_accel not present")
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted(har.glob("*.csv"))[:3]:
        shutil.copy(f, src / f.name)
    try:
        out = _cli(
            "blocks", "run-local", remote, "--type", "transform", "--in", str(src),
            "--out", str(tmp_path / "container"), "--param", "target-frequency=50",
            "--param", "source-frequency=26", "--json",
        )  # fmt: skip
        result = json.loads(out)
        assert result["engine"] == "podman" and result["image"] == remote
        run_block(
            block, src, tmp_path / "local", engine="local",
            params={"target_frequency": 50, "source_frequency": 26},
        )  # fmt: skip
        for f in sorted(src.glob("*.csv")):
            # numpy 1.24 (Debian, in the image) and the venv's numpy write identical CSVs.
            assert (tmp_path / "container" / f.name).read_bytes() == (
                tmp_path / "local" / f.name
            ).read_bytes()
    finally:
        remove_image(remote)


def test_learn_block_container_on_the_tensorflow_base(podman_ready: None, tmp_path: Path) -> None:
    """The learn block's container path: TensorFlow comes from a base made from this venv."""
    from tinyforge.blocks.containers import TF_BASE_IMAGE, ensure_tensorflow_base_image
    from tinyforge.blocks.images import build_block_image

    if not image_exists(TF_BASE_IMAGE) and os.environ.get("TINYFORGE_TEST_TF_IMAGE") != "1":
        pytest.skip(
            f"{TF_BASE_IMAGE} is not built: it takes ~2 min and ~1.7 GB of disk "
            "(`tinyforge blocks setup --tensorflow`, or TINYFORGE_TEST_TF_IMAGE=1 to build it here)"
        )
    ensure_tensorflow_base_image()
    block = EXAMPLE_BLOCKS / "keras-dense"
    build_block_image(block, base_image=TF_BASE_IMAGE)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 3] > 0).astype(np.int64)
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "X_split_train.npy", x[:300])
    np.save(data / "Y_split_train.npy", y[:300])
    np.save(data / "X_split_test.npy", x[300:])
    np.save(data / "Y_split_test.npy", y[300:])
    res = run_block(block, data, tmp_path / "model", epochs=20, learning_rate=0.01, engine="podman")
    assert res.engine == "podman" and sorted(res.files) == ["metrics.json", "model.tflite"]
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tmp_path / "model" / "model.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    pred = []
    for row in x[300:]:
        interp.set_tensor(inp["index"], row[None, :])
        interp.invoke()
        pred.append(int(np.argmax(interp.get_tensor(out["index"])[0])))
    assert float(np.mean(np.array(pred) == y[300:])) >= 0.85  # a linear rule: easy to learn
