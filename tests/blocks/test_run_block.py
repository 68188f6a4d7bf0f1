"""run_block through the local-command engine: the contract, and every bad-block failure mode.

Each block here is a real process (``python3 main.py`` run with this interpreter). Failures must
be clear (type, message with the block's log tail) and leave nothing at the output location.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.blocks.conftest import make_block
from tinyforge.blocks.errors import BlockCancelled, BlockFailed, BlockTimedOut
from tinyforge.blocks.limits import BlockLimits
from tinyforge.blocks.run import run_block
from tinyforge.errors import FailedPrecondition, InvalidArgument

ECHO_ARGS = """
import json, sys, pathlib
args = sys.argv[1:]
out = pathlib.Path(args[args.index("--out-directory") + 1] if "--out-directory" in args
                   else pathlib.Path(args[args.index("--out") + 1]).parent)
out.mkdir(parents=True, exist_ok=True)
(out / "argv.json").write_text(json.dumps(args))
if "--out" in args:
    import numpy as np
    x = np.load(args[args.index("--in") + 1])
    np.save(args[args.index("--out") + 1], x.reshape(len(x), -1).sum(axis=1, keepdims=True))
print("done")
"""


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)


def test_transform_contract_args_and_atomic_publish(tmp_path: Path) -> None:
    params = [
        {"param": "target-rate", "name": "Rate", "type": "float", "value": 50, "min": 1},
        {"param": "mode", "name": "Mode", "type": "select", "value": "a", "valid": ["a", "b"]},
    ]
    block = make_block(tmp_path / "b", ECHO_ARGS, params=params)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.csv").write_text("1,2\n")
    out = tmp_path / "results" / "out"
    res = run_block(block, tmp_path / "in", out, params={"target_rate": "26", "mode": "b"})
    assert res.engine == "local" and res.files == ["argv.json"]
    argv = json.loads((out / "argv.json").read_text())
    assert argv == [
        "--in-directory", str((tmp_path / "in").resolve()),
        "--out-directory", argv[3],
        "--target-rate", "26.0",
        "--mode", "b",
    ]  # fmt: skip
    # The block wrote into a temporary sibling that was then renamed to the output.
    assert Path(argv[3]).parent == out.parent and ".partial-" in Path(argv[3]).name
    assert not Path(argv[3]).exists() and _leftovers(out.parent) == []


def test_dsp_and_learn_and_deploy_contract_args(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "X.npy", x)
    dsp = make_block(
        tmp_path / "dsp", ECHO_ARGS, btype="dsp",
        params=[{"param": "bands", "name": "Bands", "type": "int", "value": 3, "min": 1}],
    )  # fmt: skip
    run_block(dsp, tmp_path / "X.npy", tmp_path / "f", params={"bands": 5})
    argv = json.loads((tmp_path / "f" / "argv.json").read_text())
    assert argv[:2] == ["--in", str(tmp_path / "X.npy")]
    assert argv[2] == "--out" and argv[3].endswith("/features.npy")
    assert argv[4] == "--params" and json.loads(argv[5]) == {"bands": 5}
    np.testing.assert_array_equal(np.load(tmp_path / "f" / "features.npy")[:, 0], x.sum(axis=1))

    learn = make_block(
        tmp_path / "learn", ECHO_ARGS.replace("done", "model") + """
(out / "model.tflite").write_bytes(b"\\0\\0\\0\\0TFL3" + bytes(8))
""", btype="learn",
        params=[{"param": "epochs", "name": "Epochs", "type": "int", "value": 7, "min": 1}],
    )  # fmt: skip
    data = tmp_path / "data"
    data.mkdir()
    for n in ("X_split_train.npy", "Y_split_train.npy"):
        np.save(data / n, x)
    run_block(learn, data, tmp_path / "m", learning_rate=0.01)
    argv = json.loads((tmp_path / "m" / "argv.json").read_text())
    # epochs comes once, from the block's declared default; learning rate from the caller
    assert argv[4:] == ["--epochs", "7", "--learning-rate", "0.01"]

    deploy = make_block(tmp_path / "dep", ECHO_ARGS, btype="deploy")
    dep_in = tmp_path / "dep_in"
    dep_in.mkdir()
    (dep_in / "deployment-metadata.json").write_text('{"project": {"name": "p"}}')
    run_block(deploy, dep_in, tmp_path / "artifact")
    argv = json.loads((tmp_path / "artifact" / "argv.json").read_text())
    assert argv[:4] == [
        "--metadata",
        f"{dep_in}/deployment-metadata.json",
        "--in-directory",
        str(dep_in),
    ]


def test_invalid_parameters_json_is_rejected_naming_the_field(tmp_path: Path) -> None:
    block = make_block(tmp_path / "b", "print('never runs')")
    doc = json.loads((block / "parameters.json").read_text())
    doc["info"]["resources"] = {"memoryMb": 4}
    (block / "parameters.json").write_text(json.dumps(doc))
    (tmp_path / "in").mkdir()
    with pytest.raises(InvalidArgument) as exc:
        run_block(block, tmp_path / "in", tmp_path / "out")
    assert exc.value.field == "info.resources.memoryMb" and "16" in exc.value.message
    (block / "parameters.json").write_text('{"version": 1, "type": "transform", "info": ')
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        run_block(block, tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_invalid_parameter_value_names_parameter_and_range(tmp_path: Path) -> None:
    params = [{"param": "rate", "name": "Rate", "type": "float", "value": 50, "min": 1, "max": 100}]
    block = make_block(tmp_path / "b", ECHO_ARGS, params=params)
    (tmp_path / "in").mkdir()
    with pytest.raises(InvalidArgument) as exc:
        run_block(block, tmp_path / "in", tmp_path / "out", params={"rate": 500})
    assert exc.value.field == "parameters.rate" and "1..100" in exc.value.message
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_nonzero_exit_fails_with_log_tail_and_publishes_nothing(tmp_path: Path) -> None:
    script = """
    import sys, pathlib
    args = sys.argv[1:]
    out = pathlib.Path(args[args.index("--out-directory") + 1])
    (out / "half-written.csv").write_text("1,2")
    for i in range(100):
        print(f"progress line {i}")
    print("ValueError: column 'accX' not found", file=sys.stderr)
    sys.exit(3)
    """
    block = make_block(tmp_path / "b", script)
    (tmp_path / "in").mkdir()
    with pytest.raises(BlockFailed) as exc:
        run_block(block, tmp_path / "in", tmp_path / "out")
    err = exc.value
    assert "exited with code 3" in err.message
    assert err.log_tail[-1] == "ValueError: column 'accX' not found"
    assert "progress line 99" in err.message and "progress line 10\n" not in err.message
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_block_writing_no_output_fails(tmp_path: Path) -> None:
    block = make_block(tmp_path / "b", "print('thinking about it...')")
    (tmp_path / "in").mkdir()
    with pytest.raises(BlockFailed, match="wrote no output") as exc:
        run_block(block, tmp_path / "in", tmp_path / "out")
    assert exc.value.log_tail == ["thinking about it..."]
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_dsp_block_with_wrong_row_count_fails(tmp_path: Path) -> None:
    script = """
    import sys, numpy as np
    a = sys.argv[1:]
    np.save(a[a.index("--out") + 1], np.zeros((2, 3), dtype=np.float32))
    """
    np.save(tmp_path / "X.npy", np.zeros((5, 8), dtype=np.float32))
    block = make_block(tmp_path / "b", script, btype="dsp")
    with pytest.raises(BlockFailed, match=r"one row per input window \(5 rows\)"):
        run_block(block, tmp_path / "X.npy", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_time_limit_stops_the_block(tmp_path: Path) -> None:
    script = """
    import time
    print("starting long job", flush=True)
    time.sleep(60)
    """
    block = make_block(tmp_path / "b", script, resources={"timeoutSeconds": 30})
    (tmp_path / "in").mkdir()
    with pytest.raises(BlockTimedOut) as exc:
        run_block(block, tmp_path / "in", tmp_path / "out", limits=BlockLimits(timeout_s=1))
    assert "time limit of 1 s" in exc.value.message
    assert exc.value.log_tail == ["starting long job"]
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_cancel_stops_the_block(tmp_path: Path) -> None:
    script = """
    import time
    print("ready", flush=True)
    time.sleep(60)
    """
    block = make_block(tmp_path / "b", script)
    (tmp_path / "in").mkdir()
    started = threading.Event()
    with pytest.raises(BlockCancelled):
        run_block(
            block, tmp_path / "in", tmp_path / "out",
            log=lambda line: line == "ready" and started.set(),
            cancelled=started.is_set,
        )  # fmt: skip
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path) == []


def test_bad_inputs_and_existing_output_are_rejected(tmp_path: Path) -> None:
    block = make_block(tmp_path / "b", ECHO_ARGS)
    with pytest.raises(InvalidArgument, match="does not exist"):
        run_block(block, tmp_path / "missing", tmp_path / "out")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("keep me")
    with pytest.raises(InvalidArgument, match="not an empty directory"):
        run_block(block, tmp_path / "in", tmp_path / "out")
    assert (tmp_path / "out" / "old.txt").read_text() == "keep me"
    learn = make_block(tmp_path / "l", ECHO_ARGS, btype="learn")
    with pytest.raises(InvalidArgument, match="X_split_train.npy"):
        run_block(learn, tmp_path / "in", tmp_path / "out2")
    dsp = make_block(tmp_path / "d", ECHO_ARGS, btype="dsp")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InvalidArgument, match="not a valid .npy"):
        run_block(dsp, tmp_path / "bad.npy", tmp_path / "out3")


def test_block_without_local_command_needs_an_image(tmp_path: Path) -> None:
    block = make_block(tmp_path / "b", ECHO_ARGS)
    doc = json.loads((block / "parameters.json").read_text())
    del doc["info"]["localCommand"]
    (block / "parameters.json").write_text(json.dumps(doc))
    (tmp_path / "in").mkdir()
    with pytest.raises(FailedPrecondition, match="declares no info.localCommand"):
        run_block(block, tmp_path / "in", tmp_path / "out", engine="local")
